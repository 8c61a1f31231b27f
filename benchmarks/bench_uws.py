"""UWS job system at scale: 10 000 jobs, filtered listings, 500 concurrent WAITs.

Starts the example UWS application (``uws.example``) under uvicorn in a
subprocess (SQLite store, local executor), then

1. creates N jobs (default 10 000) over HTTP, 16 clients at a time;
2. lists them with UWS filters (PHASE, LAST, AFTER) -- goal < 100 ms each --
   and compares each with the same selection done by a bare SQL query on the
   database file (the reference: ratio = HTTP time / bare SQL time);
3. holds W (default 500) WAIT requests open at once on PENDING jobs, reports the
   server's memory (RSS) before and while holding them, then sets all those jobs
   running and reports how fast the WAITs are answered (latency after the phase
   change), compared with a plain GET (the reference).

    .venv/bin/python benchmarks/bench_uws.py [N] [W]
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
GOAL_MS = 100.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(db: Path, work: Path, port: int) -> subprocess.Popen[bytes]:
    code = (
        "import uvicorn\n"
        "from starlette.responses import PlainTextResponse\n"
        "from starlette.routing import Route\n"
        "from uws.example import create_app\n"
        "async def waiting(request):\n"
        "    return PlainTextResponse(str(request.app.state.uws.waiting()))\n"
        f"app = create_app('sqlite:///{db}', 'local', '{work}', workers=2,\n"
        "                 extra_routes=[Route('/_bench/waiting', waiting)])\n"
        f"uvicorn.run(app, host='127.0.0.1', port={port}, log_level='warning', backlog=4096)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code], cwd=REPO)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/demo?LAST=1", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the UWS server did not start")


def timed(function, repeat: int = 7) -> float:  # type: ignore[no-untyped-def]
    """Median wall time of ``function()`` in milliseconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def create_jobs(base: str, n: int) -> list[str]:
    with httpx.Client(base_url=base, timeout=60) as http:

        def one(i: int) -> str:
            response = http.post("/demo", data={"TASK": "echo", "index": str(i)})
            assert response.status_code == 303, response.text
            return response.headers["location"]

        with ThreadPoolExecutor(16) as pool:
            return list(pool.map(one, range(n)))


def bench_listing(base: str, db: Path, since: dt.datetime) -> bool:
    after = since.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    stamp = f"{since:%Y-%m-%d %H:%M:%S.%f}"
    cases = [
        ("PHASE=COMPLETED", {"PHASE": "COMPLETED"}, "phase = 'COMPLETED'", None),
        ("PHASE=QUEUED&PHASE=EXECUTING", {"PHASE": ["QUEUED", "EXECUTING"]},
         "phase IN ('QUEUED', 'EXECUTING')", None),
        ("LAST=100", {"LAST": "100"}, "phase != 'ARCHIVED'", 100),
        ("PHASE=PENDING&LAST=50", {"PHASE": "PENDING", "LAST": "50"}, "phase = 'PENDING'", 50),
        ("AFTER=<last W>", {"AFTER": after}, f"creation_time > '{stamp}'", None),
        ("no filter (all)", {}, "phase != 'ARCHIVED'", None),
    ]  # fmt: skip
    ok = True
    connection = sqlite3.connect(db)
    print(f"{'listing':32s} {'jobs':>6s} {'HTTP ms':>8s} {'SQL ms':>7s} {'ratio':>6s}  goal")
    with httpx.Client(base_url=base, timeout=60) as http:
        for label, params, where, limit in cases:
            count = len(http.get("/demo", params=params).content.split(b"<uws:jobref ")) - 1
            http_ms = timed(lambda p=params: http.get("/demo", params=p))
            sql = (
                "SELECT id, phase, run_id, owner, creation_time FROM uws_job WHERE job_list='demo' "
                f"AND owner IS NULL AND {where} ORDER BY creation_time DESC"
                + (f" LIMIT {limit}" if limit else "")
            )
            sql_ms = timed(lambda q=sql: connection.execute(q).fetchall())
            filtered = bool(params)
            verdict = ("ok" if http_ms < GOAL_MS else "MISSED") if filtered else "(info)"
            ok &= http_ms < GOAL_MS or not filtered
            ratio = http_ms / sql_ms
            print(f"{label:32s} {count:6d} {http_ms:8.1f} {sql_ms:7.2f} {ratio:6.1f}  {verdict}")
    return ok


async def raw_request(port: int, method: str, path: str, body: str = "") -> tuple[int, bytes]:
    """One HTTP/1.1 request on its own connection, with bare asyncio streams.

    (httpx's async pool slows down quadratically with hundreds of open
    connections, which would measure the client rather than the server.)
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    if body:
        head += (
            f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n"
        )
    writer.write((head + "\r\n" + body).encode())
    await writer.drain()
    response = await reader.read()
    writer.close()
    return int(response.split(b" ", 2)[1]), response


async def bench_waits(port: int, urls: list[str], pid: int) -> None:
    paths = ["/" + u.split("/", 3)[3] for u in urls]
    plain = []
    for path in paths[:50]:
        start = time.perf_counter()
        await raw_request(port, "GET", path)
        plain.append((time.perf_counter() - start) * 1000)
    before = rss_mib(pid)
    answered: dict[str, float] = {}
    aborted: dict[str, float] = {}

    async def wait(path: str) -> None:
        status, _ = await raw_request(port, "GET", path + "?WAIT=60&PHASE=PENDING")
        assert status == 200
        answered[path] = time.perf_counter()

    async def abort(path: str) -> None:
        status, _ = await raw_request(port, "POST", path + "/phase", "PHASE=ABORT")
        assert status == 303
        aborted[path] = time.perf_counter()

    tasks = [asyncio.create_task(wait(p)) for p in paths]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until the server holds them all
        held = int((await raw_request(port, "GET", "/_bench/waiting"))[1].rsplit(b"\n", 1)[-1])
        if held >= len(paths):
            break
        await asyncio.sleep(0.1)
    holding = rss_mib(pid)
    start = time.perf_counter()
    await asyncio.gather(*(abort(p) for p in paths))  # every job leaves PENDING
    await asyncio.gather(*tasks)
    total = (max(answered.values()) - start) * 1000
    # how long after its ABORT was acknowledged each WAIT was answered (< 0: before)
    latency = sorted((answered[p] - aborted[p]) * 1000 for p in paths)
    print(f"\n{len(paths)} concurrent WAITs held: server RSS {before:.0f} MiB -> {holding:.0f} MiB "
          f"({(holding - before) * 1024 / len(paths):.1f} KiB per WAIT)")  # fmt: skip
    print(f"WAIT answered after its job's ABORT was acknowledged: "
          f"p50 {latency[len(latency) // 2]:.1f} ms, max {latency[-1]:.1f} ms; "
          f"all {len(paths)} ABORTs + answers took {total:.0f} ms")  # fmt: skip
    print(
        f"reference: plain GET of a job p50 {statistics.median(plain):.1f} ms; "
        f"slowest WAIT answer after its ABORT / plain GET = "
        f"{latency[-1] / statistics.median(plain):.1f}"
    )


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    w = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory(prefix="bench-uws-") as root:
        db, port = Path(root) / "uws.sqlite", free_port()
        server = start_server(db, Path(root) / "work", port)
        base = f"http://127.0.0.1:{port}"
        try:
            start = time.perf_counter()
            urls = create_jobs(base, n - w)
            since = dt.datetime.now(dt.UTC)
            urls += create_jobs(base, w)
            seconds = time.perf_counter() - start
            print(f"created {n} jobs over HTTP in {seconds:.1f} s ({n / seconds:.0f} jobs/s)\n")
            # a few jobs in other phases, so that the PHASE filters select something
            with httpx.Client(base_url=base, timeout=60) as http:
                for url in urls[:20]:
                    http.post(url + "/phase", data={"PHASE": "RUN"})
            ok = bench_listing(base, db, since)
            asyncio.run(bench_waits(port, urls[-w:], server.pid))
        finally:
            server.terminate()
            server.wait(timeout=30)
    print("\nlisting goal (< 100 ms with filters):", "met" if ok else "MISSED")


if __name__ == "__main__":
    main()
