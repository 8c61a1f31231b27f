"""Drive real desktop VO tools over SAMP and report what they received, as JSON.

Run by ``test_samp_desktop.py`` inside a private network namespace (``unshare
-n``; TOPCAT and JSAMP bind every interface and TOPCAT's port is fixed), with a
fresh HOME so no stale ``~/.samp`` lockfile interferes. It starts a JSAMP hub,
the JSAMP snooper (it logs every message it receives, standing in for SPLAT-VO,
which cannot be installed here), and TOPCAT on an Xvfb display, then sends
alvo's messages through :class:`service.vo.samp.SampMessenger`.

Usage: python samp_desktop_scenario.py VOTABLE_PATH OUT_DIR
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from service.vo import samp

DISPLAY = ":98"
PEERS = {"topcat", "snooper", "aladin"}


def wait_for(condition, timeout_s: float, what: str):  # type: ignore[no-untyped-def]
    """Poll ``condition`` until it returns a truthy value; fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise TimeoutError(f"{what} did not happen within {timeout_s} s")


def attempt(messenger, message, recipient):  # type: ignore[no-untyped-def]
    """The reply if the recipient took the message, else None (so it can be retried)."""
    try:
        reply = {name.lower(): value for name, value in messenger.send(message, recipient).items()}
    except Exception:
        return None
    return reply if reply[recipient]["samp.status"] == "samp.ok" else None


def client_names(client) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {
        cid: client.get_metadata(cid).get("samp.name", "")
        for cid in client.get_registered_clients()
    }


def main(votable: Path, out: Path) -> dict:
    home = Path(os.environ["HOME"])
    env = dict(os.environ, JAVA_TOOL_OPTIONS=f"-Duser.home={home}", DISPLAY=DISPLAY)
    procs: list[subprocess.Popen] = []
    report: dict = {}

    def start(args: list[str], log: str) -> subprocess.Popen:
        handle = open(out / log, "w")  # noqa: SIM115 - lives as long as the process
        proc = subprocess.Popen(
            args, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
        procs.append(proc)
        return proc

    try:
        start(["Xvfb", DISPLAY, "-screen", "0", "1280x1024x24", "-nolisten", "tcp"], "xvfb.log")
        start(["jsamp", "hub", "-mode", "no-gui", "-profiles", "std"], "hub.log")
        wait_for(lambda: (home / ".samp").exists(), 30, "the JSAMP hub writing ~/.samp")
        start(["jsamp", "snooper", "-clientname", "snooper"], "snooper.log")
        start(["topcat", "-Xmx512M", "-nohub"], "topcat.log")
        start(["aladin", "-local", "-noreleasetest", "-nolog", "-noplugin"], "aladin.log")

        with samp.connect(name="alvo-test") as client:
            messenger = samp.SampMessenger(client, timeout_s=30)

            def subscribed() -> set[str]:
                """Peers that have declared their subscriptions (they register first)."""
                tables = {n.lower() for n in messenger.recipients("table.load.votable").values()}
                names = {n.lower() for n in client_names(client).values()}
                return (tables | ({"snooper"} & names)) & PEERS

            wait_for(lambda: subscribed() == PEERS, 120, f"{sorted(PEERS)} subscribing")
            report["clients"] = sorted(client_names(client).values())
            url = votable.resolve().as_uri()

            reply = messenger.send(samp.table_load_message(url, "cand-1", "candidates"), "topcat")
            report["table_load"] = reply
            topcat_id = next(c for c, n in client_names(client).items() if n == "topcat")
            pull = {"samp.mtype": "table.get.stil", "samp.params": {"format": "votable"}}
            # TOPCAT acknowledges table.load before the table joins its list: ask until it has.
            pulled = wait_for(
                lambda: client.call_and_wait(topcat_id, pull, "30").get("samp.result"),
                30,
                "TOPCAT listing the loaded table",
            )
            with urllib.request.urlopen(pulled["url"], timeout=30) as response:
                (out / "from-topcat.vot").write_bytes(response.read())
            report["table_get"] = str(out / "from-topcat.vot")
            report["highlight"] = messenger.send(
                samp.highlight_row_message("cand-1", url, 2), "topcat"
            )
            report["select"] = messenger.send(
                samp.select_rows_message("cand-1", url, [0, 1]), "topcat"
            )
            # Aladin registers before its GUI exists and faults on messages until then:
            # retry the first one until it is taken.
            report["aladin_table_load"] = wait_for(
                lambda: attempt(
                    messenger, samp.table_load_message(url, "cand-1", "candidates"), "aladin"
                ),
                120,
                "Aladin accepting a table",
            )
            report["point_at"] = {
                name.lower(): reply
                for name, reply in messenger.send(
                    samp.point_at_message(10.5, 41.25), "aladin"
                ).items()
            }
            # Nothing installed here subscribes to spectra: the snooper logs the broadcast.
            messenger.send(
                samp.spectrum_load_message(
                    "http://127.0.0.1:8000/datalink/lamost/files/x.fits",
                    {"ssa:Access.Format": "application/fits", "ssa:Target.Name": "BT CMi"},
                    "ivo://alvo.demo/lamost?1",
                    "BT CMi",
                )
            )
            wait_for(
                lambda: "spectrum.load.ssa-generic" in (out / "snooper.log").read_text(),
                20,
                "the snooper logging spectrum.load.ssa-generic",
            )
            report["snooper_log"] = (out / "snooper.log").read_text()
            if shutil.which("import"):
                subprocess.run(
                    ["import", "-window", "root", str(out / "topcat.png")], env=env, timeout=30
                )
    finally:
        end_process_groups(procs)
    return report


def end_process_groups(procs: list[subprocess.Popen]) -> None:
    """SIGTERM each process's group, newest first, then wait (kill after 10 s): the
    topcat and aladin scripts do not exec java, so ending the leader is not enough."""
    for proc in reversed(procs):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    votable_path, out_dir = Path(sys.argv[1]), Path(sys.argv[2])
    out_dir.mkdir(parents=True, exist_ok=True)
    result = main(votable_path, out_dir)
    (out_dir / "report.json").write_text(json.dumps(result, indent=1, default=str))
    print(json.dumps(result, default=str))
