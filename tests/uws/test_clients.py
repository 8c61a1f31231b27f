"""Real UWS clients against a live server: pyvo (parsing and the async TAP flow) and the
``uws`` command-line client of the PyPI package uws-client."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from astropy.table import Table
from pyvo.dal.tap import AsyncTAPJob
from pyvo.io import uws as pyvo_uws

from tests.uws.conftest import LiveServer, client
from tests.uws.helpers import create, wait_final


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> LiveServer:
    root = tmp_path_factory.mktemp("clients")
    live = LiveServer(f"sqlite:///{root / 'uws.sqlite'}", "local", root / "work").start()
    yield live  # type: ignore[misc]
    live.stop()


def test_pyvo_parses_job_and_job_list(server: LiveServer, uws_schema) -> None:
    with client(server, uws_schema) as http:
        url = create(http, TASK="echo", PHASE="RUN", RUNID="pyvo-run", note="x")
        wait_final(http, url)
        parsed = pyvo_uws.parse_job(io.BytesIO(http.get(url).content))
        listing = pyvo_uws.parse_job_list(io.BytesIO(http.get("/demo").content))
    assert parsed.jobid == url.rsplit("/", 1)[1]
    assert parsed.phase == "COMPLETED"
    assert parsed.version == "1.1"
    assert parsed.runid == "pyvo-run"
    assert parsed.creationtime is not None and parsed.endtime >= parsed.starttime
    assert {p.id_: p.content for p in parsed.parameters}["note"] == "x"
    assert [r.id_ for r in parsed.results] == ["parameters"]
    assert parsed.results[0].href == url + "/results/parameters"
    assert parsed.jobinfo is not None
    assert parsed.jobid in [ref.jobid for ref in listing]


def test_pyvo_async_tap_flow_with_wait(server: LiveServer) -> None:
    upload = Table({"ra": [10.0], "dec": [20.0]})
    job = AsyncTAPJob.create(server.url + "/tap", "SELECT 1", uploads={"mine": upload})
    assert job.phase == "PENDING"
    assert job._job.version == "1.1"  # so pyvo will send WAIT=-1 while waiting
    job.execution_duration = 120
    assert job.execution_duration.sec == 120
    job.run()
    job.wait(timeout=30)  # GET ...?WAIT=-1 until COMPLETED
    assert job.phase == "COMPLETED"
    job.raise_if_error()
    table = job.fetch_result().to_table()
    assert list(table["n"]) == [1]
    parameters = {p.id_: p.content for p in job.job.parameters}
    assert parameters["query"] == "SELECT 1"
    assert parameters["upload"] == "mine,param:mine"
    job.delete()
    assert AsyncTAPJob.create(server.url + "/tap", "SELECT 2").phase == "PENDING"


# -- the uws command-line client (uws-client is Python 2 only) ----------------------------------

UWS_CLIENT_CACHE = Path(
    os.environ.get("ALVO_UWS_CLIENT_DIR", Path.home() / ".cache/alvo/uws-client-py27")
)


def _python27() -> str | None:
    for candidate in (
        os.environ.get("ALVO_PYTHON27", ""),
        shutil.which("python2.7") or "",
        str(Path.home() / ".pyenv/versions/2.7.18/bin/python2.7"),
    ):
        if candidate and Path(candidate).is_file():
            check = subprocess.run([candidate, "-c", "print 1"], capture_output=True)
            if check.returncode == 0:
                return candidate
    return None


@pytest.fixture(scope="module")
def uws_cli() -> list[str]:
    """``python2.7 -m`` for uws-client's CLI, installed once into a cache folder.

    uws-client (the PyPI package providing the ``uws`` command) is Python 2 code,
    and it installs a top-level package named ``uws`` that would shadow ours, so
    it lives in its own Python 2.7 target folder, not in the project venv.
    """
    python = _python27()
    if python is None:
        pytest.skip("uws-client needs Python 2.7 (set ALVO_PYTHON27); none found")
    if not (UWS_CLIENT_CACHE / "uws" / "cli" / "main.py").exists():
        install = subprocess.run(
            [
                python,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--target",
                str(UWS_CLIENT_CACHE),
                "uws-client",
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if install.returncode != 0:
            pytest.skip(f"could not install uws-client for Python 2.7: {install.stderr[-500:]}")
    return [python, "-c", "import sys; from uws.cli.main import main; sys.argv[0] = 'uws'; main()"]


def _uws(cli: list[str], server: LiveServer, *args: str) -> str:
    env = dict(os.environ, PYTHONPATH=str(UWS_CLIENT_CACHE))
    run = subprocess.run(
        [*cli, "-H", server.url + "/demo", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=server.workdir.parent,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "An error occurred" not in run.stdout, run.stdout
    return run.stdout


def test_uws_cli_drives_a_job_end_to_end(
    uws_cli: list[str], server: LiveServer, uws_schema
) -> None:
    created = _uws(uws_cli, server, "job", "new", "TASK=echo", "colour=blue")
    job_id = next(line.split()[-1] for line in created.splitlines() if line.startswith("Job ID:"))
    assert "PENDING" in _uws(uws_cli, server, "job", "phase", job_id)
    _uws(uws_cli, server, "job", "set", job_id, "colour=green")
    _uws(uws_cli, server, "job", "run", job_id)
    shown = _uws(uws_cli, server, "job", "show", job_id, "--wait", "10", "--phase", "QUEUED")
    assert job_id in shown
    with client(server, uws_schema) as http:
        wait_final(http, f"{server.url}/demo/{job_id}")
    assert "COMPLETED" in _uws(uws_cli, server, "job", "show", job_id)
    listed = _uws(uws_cli, server, "list", "--completed", "--last", "50")
    assert job_id in listed
    _uws(uws_cli, server, "job", "results", job_id, "parameters", "-f", job_id)
    downloaded = server.workdir.parent / f"{job_id}.parameters"
    assert downloaded.read_text().splitlines() == ["task=echo", "colour=green"]
    _uws(uws_cli, server, "job", "delete", job_id)
    with client(server, uws_schema) as http:
        assert http.get(f"{server.url}/demo/{job_id}").status_code == 404
