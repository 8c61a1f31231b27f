"""How right is an iterate job's time left? Estimated vs actual at 25, 50 and 75 % of the job.

Starts the service on a fresh home with the demo archive (``N`` spectra per
collection, default 2000), ingests the labelled source and the pool through the UWS
job lists, then runs ``CAMPAIGNS`` campaigns (default 2) on them, one after the other,
each ``ITERATIONS`` iterate jobs (default 2) with the service's default training. The
first iteration of the first campaign runs on a fresh service (no rates measured
yet: its training's time is unknown until its first batches); the first iteration
of a later campaign has the rates the service measured in the earlier jobs
(``eta-rates.json``); later iterations have their campaign's previous one. Every 0.5 s it reads
the job's jobInfo fraction ``f`` and, like the page (``static/jobs.js``), takes
the time left as ``elapsed x (1 - f) / f`` at each new fraction, counted down
until the next. After the job it compares, at 25/50/75 % of its actual duration,
that estimate with the actual time left (error = estimated / actual - 1; goal
within 30 %). Also prints what the page of before would have said: the fraction of
epochs to the cap, extrapolated linearly since it first moved.

    .venv/bin/python benchmarks/bench_eta.py [N] [ITERATIONS] [CAMPAIGNS]
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from xml.etree import ElementTree

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from service.archive.generate import ensure_demo_archive  # noqa: E402
from service.jobs.eta import RATES_FILE  # noqa: E402
from service.settings import Settings  # noqa: E402
from tests.vo_fixture import free_port, live_server  # noqa: E402

UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"
JOBINFO = "{urn:x-uws:jobinfo}"


#: One look at a job: (seconds since its startTime, fraction, message, when reported).
Seen = tuple[float, float | None, str, float]


def wait(client: httpx.Client, url: str) -> list[Seen]:
    """Poll a job to its end; returns (seconds since its startTime, fraction, message,
    seconds since its startTime when the job reported that fraction)."""
    seen: list[Seen] = []
    start = None
    while True:
        doc = ElementTree.fromstring(client.get(url).content)
        phase = doc.findtext(f"{UWS}phase")
        started = doc.findtext(f"{UWS}startTime")
        if started and start is None:
            start = dt.datetime.fromisoformat(started.replace("Z", "+00:00")).timestamp()
        progress = doc.find(f".//{JOBINFO}progress")
        if start is not None and progress is not None:
            raw, said = progress.get("fraction"), progress.get("time")
            now = time.time() - start
            reported = now  # as the page does: as of the job's report, not of this look
            if said:
                reported = dt.datetime.fromisoformat(said.replace("Z", "+00:00")).timestamp()
                reported = min(now, reported - start)
            seen.append((now, float(raw) if raw else None, progress.text or "", reported))
        if phase in ("COMPLETED", "ERROR", "ABORTED"):
            if phase != "COMPLETED":
                raise SystemExit(f"{url}: {phase} {doc.findtext(f'.//{UWS}message')}")
            ended = doc.findtext(f"{UWS}endTime") or ""
            total = dt.datetime.fromisoformat(ended.replace("Z", "+00:00")).timestamp() - start
            seen.append((total, 1.0, "end", total))
            return seen
        time.sleep(0.5)


def estimate_at(seen: list[Seen], t: float) -> float | None:
    """The page's time left at ``t``: at the last new fraction seen by then, elapsed x
    (1 - f) / f as of when the job reported it, counted down since."""
    last = None
    previous = None
    for when, fraction, _, reported in seen:
        if when > t:
            break
        if fraction is not None and fraction != previous and 0 < fraction < 1:
            last = (reported, reported * (1 - fraction) / fraction)
        previous = fraction
    return None if last is None else max(0.0, last[1] - (t - last[0]))


def rates_recorded(home: Path) -> int:
    """Iterate jobs whose rates the service keeps (service/jobs/eta.py)."""
    path = home / RATES_FILE
    return len(json.loads(path.read_text())["jobs"]) if path.exists() else 0


def main() -> None:
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    iterations = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    campaigns = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    home = Path(tempfile.mkdtemp(prefix="bench-eta-"))
    ensure_demo_archive(home, size)
    port = free_port()
    settings = Settings(home=home, port=port, demo_archive_size=size, simbad="off")
    from service.app import create_app

    print(f"load before: {os.getloadavg()}")
    with live_server(create_app(settings), port, lifespan="on") as url:
        client = httpx.Client(timeout=60)
        for dataset, ssa, extra in (
            ("demo-source", "ondrejov", {"LABELS": f"{url}/archive/ondrejov/labels.csv"}),
            ("demo-pool", "lamost", {}),
        ):
            domain = "source" if dataset.endswith("source") else "target"
            data = {"DATASET": dataset, "DOMAIN": domain, "SSA": f"{url}/ssa/{ssa}", **extra}
            job = client.post(f"{url}/ingest", data={**data, "PHASE": "RUN"}).headers["location"]
            wait(client, job if job.startswith("http") else f"{url}{job}")
        table = []
        for campaign in range(campaigns):
            name = f"demo-{campaign}"
            for number in range(iterations):
                recorded = rates_recorded(home)
                data = {"CAMPAIGN": name, "PHASE": "RUN"}
                if number == 0:
                    data |= {"SOURCE": "demo-source", "TARGET": "demo-pool"}
                job = client.post(f"{url}/iterate", data=data).headers["location"]
                seen = wait(client, job if job.startswith("http") else f"{url}{job}")
                total = seen[-1][0]
                if os.environ.get("VERBOSE"):
                    shown = None
                    for when, fraction, message, _ in seen:
                        if (fraction, message) != shown:
                            print(f"  {when:6.1f} s  {fraction}  {message[:90]}")
                        shown = (fraction, message)
                first = next((w for w, f, *_ in seen if f is not None and 0 < f < 1), None)
                history = "previous iteration" if number else f"service rates of {recorded} jobs"
                print(
                    f"\n{name} iteration {number} ({history}): {total:.1f} s; "
                    f"first estimate at {first if first is None else round(first, 1)} s"
                )
                job_url = job if job.startswith("http") else f"{url}{job}"
                reply = client.get(f"{job_url}/results/summary", follow_redirects=True)
                if reply.status_code == 200:  # each stage: planned, last estimated, taken
                    stages = reply.json().get("time_left", {})
                    print("  stages (planned / last estimate / took, s):", ", ".join(
                        f"{k} {v.get('planned')}/{v.get('estimated')}/{v.get('took')}"
                        for k, v in stages.items()))  # fmt: skip
                row = [name, str(number), history, f"{total:.1f} s"]
                for share in (0.25, 0.5, 0.75):
                    t = share * total
                    guess, actual = estimate_at(seen, t), total - t
                    error = "no estimate" if guess is None else f"{guess / actual - 1:+.0%}"
                    shown = "–" if guess is None else f"{guess:.1f} s"
                    print(
                        f"  at {share:.0%} ({t:.1f} s): estimated {shown}, "
                        f"actual {actual:.1f} s: {error}"
                    )
                    row.append(f"{shown} vs {actual:.1f} s ({error})")
                table.append(row)
        print("\n| campaign | iteration | estimated from | job | at 25 % | at 50 % | at 75 % |")
        print("|---|---|---|---|---|---|---|")
        for row in table:
            print("| " + " | ".join(row) + " |")
        kept = json.loads((home / RATES_FILE).read_text())["jobs"] if rates_recorded(home) else []
        for job in kept:  # what each job measured (service/jobs/eta.py, Rates)
            print("rates:", {k: float(f"{v:.3g}") for k, v in job.items() if k != "recorded"})
        print(f"load after: {os.getloadavg()}")
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
