"""A minimal UWS application, for tests, benchmarks and as a template.

``create_app(store_url, executor, workdir)`` serves two job lists:

``/demo``
    runner :func:`demo`, steered by the ``TASK`` parameter: ``echo`` (default;
    writes the parameters and uploads to result files), ``sleep`` (``SECONDS``,
    reporting progress and its process id), ``fail`` (a clean UWS error),
    ``crash`` (an unexpected exception), ``url`` (a result that is a URL).
``/tap/async``
    runner :func:`tap_query`: a stand-in for a TAP query, returning a one-row
    VOTable as result ``result`` (what TAP clients such as pyvo fetch).

Run it: ``python -m uws.example [port]``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from uws.executors import Executor
from uws.joblist import JobList
from uws.models import BadRequestError, JobParameters
from uws.runner import Progress, RunnerJob, UWSJobError
from uws.service import UWSService

TASKS = ("echo", "sleep", "fail", "crash", "url")


def check_demo(parameters: JobParameters) -> None:
    task = parameters.get("task", "echo")
    if task not in TASKS:
        raise BadRequestError(f"TASK must be one of {', '.join(TASKS)}, not {task!r}")
    if "seconds" in parameters:
        float(parameters["seconds"])  # ValueError -> 400


def demo(job: RunnerJob, workdir: Path, progress: Progress) -> Any:
    task = job.parameters.get("task", "echo")
    if task == "sleep":
        seconds = float(job.parameters.get("seconds", "1"))
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            _write(workdir / "heartbeat.tmp", repr(time.monotonic())).replace(workdir / "heartbeat")
            progress(1 - left / seconds, f"pid={os.getpid()}")
            time.sleep(min(0.05, left))
        return {"slept": _write(workdir / "slept.txt", f"{seconds}\n")}
    if task == "fail":
        raise UWSJobError("the demo job failed as asked", detail="TASK=fail was given")
    if task == "crash":
        raise ZeroDivisionError("division by zero in the demo runner")
    if task == "url":
        return {"link": ("https://www.ivoa.net/documents/UWS/", "text/html")}
    progress(0.5, "echoing")
    lines = [f"{name}={value}" for name, value in job.parameters.pairs()]
    results: dict[str, Any] = {
        "parameters": (_write(workdir / "params.txt", "\n".join(lines)), "text/plain")
    }
    for name, where in job.uploads.items():
        if "://" not in where:
            results[f"upload-{name}"] = (where, "application/octet-stream")
    return results


def tap_query(job: RunnerJob, workdir: Path, progress: Progress) -> Any:
    query = job.parameters.get("query", "")
    if not query:
        raise UWSJobError("QUERY is missing")
    progress(0.5, "querying")
    votable = (
        '<?xml version="1.0"?>\n<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">'
        '<RESOURCE type="results"><INFO name="QUERY_STATUS" value="OK"/><TABLE>'
        '<FIELD name="n" datatype="int"/><FIELD name="query" datatype="char" arraysize="*"/>'
        "<DATA><TABLEDATA><TR><TD>1</TD><TD></TD></TR></TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>\n"
    )
    path = workdir / "result.vot"
    path.write_text(votable)
    return {"result": (path, "application/x-votable+xml")}


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def job_lists(max_upload_bytes: int = 1 << 20) -> list[JobList]:
    return [
        JobList(
            "demo",
            "uws.example:demo",
            validator=check_demo,
            max_execution_duration=600,
            max_wait=30,
            max_upload_bytes=max_upload_bytes,
        ),
        JobList("tap", "uws.example:tap_query", path="/tap/async", max_wait=30),
    ]


def create_app(
    store_url: str,
    executor: Executor | str = "local",
    workdir: str | Path = "var/uws",
    **options: Any,
) -> Starlette:
    """The example application; ``extra_routes`` are mounted beside the job lists."""
    extra = options.pop("extra_routes", [])
    service = UWSService(store_url, executor, workdir, job_lists=job_lists(), **options)
    app = Starlette(routes=[*service.routes(), *extra], lifespan=service.lifespan)
    app.state.uws = service
    return app


if __name__ == "__main__":
    import uvicorn

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8001
    uvicorn.run(create_app("sqlite:///var/uws-example.sqlite"), port=port)
