"""A minimal UWS service whose one job starts a child process and waits for it.

``python -m tests.security.family_app --store URL --workdir DIR --port N``

A job that starts processes of its own (a compiler, a shell tool, a pool) is
what abort and a crashed service must not leave behind: the tests kill this
service or abort its job and look for the job's child with psutil.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from uws import JobList, UWSService
from uws.serving import serve


def run(job: Any, workdir: Path, progress: Any) -> dict[str, Path]:
    """Start ``sleep 600``, say its pid, and wait for it (until killed)."""
    child = subprocess.Popen(["sleep", "600"])
    (workdir / "child.pid").write_text(str(child.pid))
    progress(0.5, f"child={child.pid}")
    child.wait()
    (workdir / "done.txt").write_text("the child ended")
    return {"done": workdir / "done.txt"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    jobs = UWSService(
        args.store,
        "local",
        args.workdir,
        job_lists=[JobList("family", "tests.security.family_app:run")],
        workers=1,
    )
    app = Starlette(routes=jobs.routes(), lifespan=jobs.lifespan)
    serve(app, jobs, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
