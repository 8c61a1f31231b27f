"""Time to a named error for every fetch path against a slow-loris and a silent server.

Starts ``alvo serve`` (from ``--repo``, so an older checkout can be measured
the same way) on loopback with ``ALVO_FETCH_TIMEOUT=--deadline`` and enough
workers that no job waits in the queue, then points one job per fetch path at
each hostile server (:mod:`tests.security.hostile_servers`): ingest ``URL``,
``LABELS``, ``UPLOAD`` refs by URL, ``SSA``, ``DATALINK``, TAP async and sync
``UPLOAD`` by URL. Prints, per case, the seconds the job spent executing (or
the sync request took) and the named reason it ended with; a case still
running after ``--cap`` seconds prints ``>cap``.

``--sequential`` runs one case at a time, so the seconds are not inflated by
fourteen job processes starting at once on a small machine.

With ``--stall`` it measures the job system instead: 2 workers, both busy with
a slow-loris ingest, and the seconds until a third, quick TAP job completes.

    .venv/bin/python benchmarks/bench_fetch.py [--repo DIR] [--deadline 3] [--cap 150]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import datetime
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from lxml import etree

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from service.net.uws_client import submit  # noqa: E402
from tests.security.hostile_servers import FixedAnswer, Silent, SlowLoris, running  # noqa: E402
from tests.vo_fixture import free_port  # noqa: E402

UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"
QUICK_TAP = "SELECT TOP 1 table_name FROM TAP_SCHEMA.tables"


@contextlib.contextmanager
def alvo_serve(repo: Path, deadline: int, workers: int) -> Iterator[str]:
    home = Path(tempfile.mkdtemp(prefix="bench-fetch-"))
    port = free_port()
    env = dict(
        os.environ,
        PYTHONPATH=str(repo),
        ALVO_HOME=str(home),
        ALVO_PORT=str(port),
        ALVO_DEMO_ARCHIVE_SIZE="0",
        ALVO_WORKERS=str(workers),
        ALVO_FETCH_TIMEOUT=str(deadline),  # an older service ignores it
        ALVO_SIMBAD="off",
    )
    log = (home / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve"], cwd=repo, env=env, stdout=log, stderr=log
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/tap/availability", timeout=2).status_code == 200:
                    break
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def outcome(job_url: str, cap: float) -> tuple[str, str]:
    """(seconds executing, reason) once the job ends, or (">cap", phase) when it does not."""
    began = time.monotonic()
    while time.monotonic() - began < cap:
        wait = str(max(1, min(30, int(cap - (time.monotonic() - began)))))
        root = etree.fromstring(httpx.get(job_url, params={"WAIT": wait}, timeout=90).content)
        phase = root.findtext(f"{UWS}phase")
        if phase in ("COMPLETED", "ERROR", "ABORTED"):
            start, end = (
                datetime.datetime.fromisoformat(root.findtext(f"{UWS}{n}").replace("Z", "+00:00"))
                for n in ("startTime", "endTime")
            )
            return f"{(end - start).total_seconds():.1f}", reason(root, job_url)
    return f">{cap:g}", f"still {phase}"


def reason(root: etree._Element, job_url: str) -> str:
    message = root.findtext(f".//{UWS}errorSummary/{UWS}message")
    if message:
        return message.split(":")[0] + (" (traceback)" if _traceback(job_url) else "")
    summary = next((r for r in root.iter(f"{UWS}result") if r.get("id") == "summary"), None)
    if summary is None:
        return "COMPLETED"
    href = summary.get("{http://www.w3.org/1999/xlink}href")
    return ",".join(httpx.get(href).json()["reasons"]) or "COMPLETED"


def _traceback(job_url: str) -> bool:
    return "Traceback" in httpx.get(f"{job_url}/error").text


def sync_upload(base: str, url: str, cap: float) -> tuple[str, str]:
    query = {"LANG": "ADQL", "QUERY": "SELECT * FROM TAP_UPLOAD.t", "UPLOAD": f"t,{url}"}
    began = time.monotonic()
    try:
        text = httpx.post(f"{base}/tap/sync", data=query, timeout=cap).text
    except httpx.TimeoutException:
        return f">{cap:g}", "no answer"
    named = text.split("QUERY_STATUS", 1)[-1].split(">", 1)[-1].split(":")[0].strip()
    return f"{time.monotonic() - began:.1f}", named


def cases(hostile: str, good: str) -> dict[str, list[tuple[str, str]]]:
    """The ingest parameters of each fetch path, ``hostile`` where the fetch goes."""
    return {
        "ingest URL": [("URL", hostile)],
        "LABELS": [("URL", good), ("LABELS", hostile)],
        "UPLOAD refs by URL": [("UPLOAD", f"refs,{hostile}")],
        "SSA": [("SSA", hostile)],
        "DataLink": [("DATALINK", hostile), ("ID", "ivo://x/y?1")],
    }


def measure_paths(repo: Path, deadline: int, cap: float, sequential: bool) -> None:
    servers = {"slow-loris": SlowLoris(lifetime_s=cap + 60), "silent": Silent(lifetime_s=cap + 60)}
    with (
        running(servers["slow-loris"]),
        running(servers["silent"]),
        running(FixedAnswer()) as good,
        alvo_serve(repo, deadline, workers=16) as base,
        concurrent.futures.ThreadPoolExecutor(1 if sequential else 32) as pool,
    ):
        pending = {}
        for kind, server in servers.items():
            tap = [("LANG", "ADQL"), ("QUERY", "SELECT * FROM TAP_UPLOAD.t")]
            jobs = {
                path: (f"{base}/ingest", [("DATASET", "h"), *parameters])
                for path, parameters in cases(server.url("/ingest"), good.url()).items()
            }
            jobs["TAP async UPLOAD"] = (
                f"{base}/tap/async",
                [*tap, ("UPLOAD", f"t,{server.url('/t')}")],
            )
            for path, (job_list, parameters) in jobs.items():
                pending[(path, kind)] = pool.submit(
                    lambda j=job_list, p=parameters: outcome(submit(j, p), cap)
                )
            pending[("TAP sync UPLOAD", kind)] = pool.submit(
                sync_upload, base, server.url("/s"), cap
            )
        print(f"repo {repo}  ALVO_FETCH_TIMEOUT={deadline}  cap {cap:g} s")
        print(f"{'path':22} {'server':11} {'seconds':>8}  reason")
        for (path, kind), future in pending.items():
            seconds, named = future.result()
            print(f"{path:22} {kind:11} {seconds:>8}  {named}")


def measure_stall(repo: Path, deadline: int, cap: float) -> None:
    with (
        running(SlowLoris(lifetime_s=cap + 60)) as slow,
        alvo_serve(repo, deadline, workers=2) as base,
    ):
        for i in range(2):
            submit(f"{base}/ingest", [("DATASET", f"s{i}"), ("URL", slow.url(f"/{i}"))])
        began = time.monotonic()
        quick = submit(f"{base}/tap/async", [("LANG", "ADQL"), ("QUERY", QUICK_TAP)])
        seconds, named = outcome(quick, cap)
        waited = time.monotonic() - began
        ended = f"ended {named} after" if not seconds.startswith(">") else f"was {named} after"
        print(f"2 workers busy on slow-loris ingests: a quick TAP job {ended} {waited:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", type=Path, default=REPO, help="checkout whose service to run")
    parser.add_argument("--deadline", type=int, default=3, help="ALVO_FETCH_TIMEOUT, seconds")
    parser.add_argument("--cap", type=float, default=150, help="give up on a case after this")
    parser.add_argument("--stall", action="store_true", help="measure the 2-worker stall instead")
    parser.add_argument(
        "--sequential", action="store_true", help="one case at a time (no start-up contention)"
    )
    args = parser.parse_args()
    if args.stall:
        measure_stall(args.repo.resolve(), args.deadline, args.cap)
    else:
        measure_paths(args.repo.resolve(), args.deadline, args.cap, args.sequential)


if __name__ == "__main__":
    main()
