"""The labelling page drives a real Aladin (Debian's, under Xvfb) over SAMP.

The hub is pyvo's, with the Web Profile on (its consent dialog says yes), its
lockfile where Aladin looks for one (``~/.samp`` of a fresh HOME). Aladin is started
once for the module. In Chromium the page connects through the Web Profile; the
``s`` key sends ``coord.pointAt.sky`` and ``script.aladin.send`` (the field in view)
as calls: Aladin must answer ``samp.ok`` to both and then stand at the spectrum
(``coord.get.sky``). The "Footprint → Aladin" button sends Aladin a ``load`` script
of the campaign's MOC URL: Aladin answers ``samp.ok`` and turns to the service.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from service.archive.skyimage import ALADIN_JAR
from service.vo import samp
from tests.peers.samp_desktop_scenario import end_process_groups, wait_for
from tests.peers.test_web_samp import AcceptingDialog
from tests.vo_fixture import free_port, live_server
from tests.web_world import build_world, chromium

TOOLS = ("Xvfb", "java")
#: Where Aladin's replies are kept by the page (label.js), one per call answered.
REPLIED = """([what, who]) => (alvo.sampReplies || []).some(
    r => r.what === what && r.name.toLowerCase().includes(who) && r.status === "samp.ok")"""


@pytest.fixture(scope="module")
def desktop(tmp_path_factory, artifacts):
    """The hub's Web Profile URL; the hub and Aladin run on a private X display."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing or not ALADIN_JAR.is_file():
        pytest.skip(f"Aladin peers not installed: {', '.join(missing) or ALADIN_JAR}")
    from pyvo.samp import SAMPHubServer

    home = tmp_path_factory.mktemp("aladin-home")
    patch = pytest.MonkeyPatch()
    patch.setenv("HOME", str(home))
    patch.setenv("SAMP_HUB", f"std-lockurl:{(home / '.samp').as_uri()}")
    dialog = AcceptingDialog()
    hub = SAMPHubServer(
        web_profile=True, web_port=0, addr="127.0.0.1", lockfile=str(home / ".samp"),
        web_profile_dialog=dialog,
    )  # fmt: skip
    hub.start()
    dialog.thread.start()
    procs: list[subprocess.Popen] = []
    log = artifacts / "aladin-samp.log"
    try:
        read, write = os.pipe()  # Xvfb writes the display number it found free
        procs.append(subprocess.Popen(
            ["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
            pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        ))  # fmt: skip
        os.close(write)
        with os.fdopen(read) as display:
            number = display.readline().strip()
        env = dict(os.environ, DISPLAY=f":{number}", HOME=str(home),
                   JAVA_TOOL_OPTIONS=f"-Duser.home={home}")  # fmt: skip
        with open(log, "w") as out:
            procs.append(subprocess.Popen(
                ["java", "-Xmx768m", "-jar", str(ALADIN_JAR), "-local", "-noreleasetest", "-nolog",
                 "-noplugin"],
                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            ))  # fmt: skip
        with samp.connect(name="alvo-test") as client:
            messenger = samp.SampMessenger(client, timeout_s=20)

            def takes_scripts() -> bool:
                # Aladin registers before its GUI exists and faults on messages until then
                sync = {"samp.mtype": "script.aladin.send", "samp.params": {"script": "sync"}}
                try:
                    reply = messenger.send(sync, "aladin")
                except Exception:
                    return False
                return next(iter(reply.values()))["samp.status"] == "samp.ok"

            wait_for(takes_scripts, 150, "Aladin registering and taking scripts")
        yield f"http://localhost:{hub._web_port}/"
    finally:
        end_process_groups(procs)
        dialog.running = False
        hub.stop()
        patch.undo()


class Recorder:
    """An ASGI wrapper that remembers each request's path and method."""

    def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
        self.app = app
        self.seen: list[tuple[str, str]] = []  # (path, method)

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] == "http":
            self.seen.append((scope["path"], scope["method"]))
        await self.app(scope, receive, send)


def test_s_moves_aladin_and_the_footprint_goes_to_it(desktop, tmp_path: Path, artifacts):
    from service.app import create_app

    hub_url = desktop
    port = free_port()
    world = build_world(tmp_path, port, n_pool=60, batch=20, sample=5)
    app = Recorder(create_app(world.settings))
    with live_server(app, port, lifespan="on") as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{url}/oracle/be?samp={hub_url}")
        page.wait_for_selector("body[data-ready='1']")
        page.locator("#samp-connect").click()
        page.wait_for_selector("#samp-status:has-text('connected')")
        row = page.evaluate("alvo.rows[alvo.view[alvo.cursor]]")
        page.locator("#rows").focus()
        page.keyboard.press("s")
        page.wait_for_function(REPLIED, arg=["coord.pointAt.sky", "aladin"], timeout=30_000)
        page.wait_for_function(REPLIED, arg=["zoom", "aladin"], timeout=30_000)
        with samp.connect(name="alvo-test") as client:
            aladin = next(
                c for c in client.get_registered_clients()
                if client.get_metadata(c).get("samp.name", "").lower() == "aladin"
            )  # fmt: skip
            where = {"samp.mtype": "coord.get.sky", "samp.params": {}}

            def at_the_spectrum() -> bool:  # Aladin moves after it answers
                got = client.call_and_wait(aladin, where, "20")["samp.result"]
                return (
                    abs(float(got["ra"]) - row["ra"]) < 1e-4
                    and abs(float(got["dec"]) - row["dec"]) < 1e-4
                )

            wait_for(at_the_spectrum, 20, "Aladin standing at the spectrum")
        page.locator("#samp-moc").click()
        page.wait_for_function(REPLIED, arg=["footprint", "aladin"], timeout=30_000)
        # Aladin acts on the URL (the page only sends it): it asks the service first
        # whether it is a HiPS. (Aladin 12.001 then stops, "Data format not recognized",
        # without fetching the MOC -- as for any MOC URL; see docs/discovery.md.)
        wait_for(
            lambda: any(path.startswith("/campaigns/be/moc") for path, _ in app.seen),
            30,
            "Aladin asking the service for the footprint",
        )
        assert errors == []
