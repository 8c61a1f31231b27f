"""The job types keep the UWS runner contract in one place (service/jobs/runner.py).

A refusal anywhere in a runner is an AlvoError with a named reason and ends the
job as ``"CODE: detail"``; the jobs' own "not found" cases have names too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from service.jobs import classify, iterate, train
from service.jobs.runner import job_runner
from service.reasons import AlvoError, Reason
from service.settings import Settings
from service.store.datasets import Datasets
from uws.models import JobParameters
from uws.runner import RunnerJob, UWSJobError


def _job(job_list: str, **parameters: str) -> RunnerJob:
    return RunnerJob("job1", None, job_list, JobParameters(tuple(parameters.items())), {})


def _ignore(fraction: float | None, message: str = "") -> None:
    return None


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A job folder under an alvo home with a settings snapshot (as the service makes)."""
    Settings(home=tmp_path).save_snapshot()
    folder = tmp_path / "jobs" / "job1"
    folder.mkdir(parents=True)
    return folder


def test_a_named_refusal_is_the_jobs_error_and_anything_else_passes() -> None:
    @job_runner
    def refuses(job: RunnerJob, workdir: Path, progress: object) -> None:
        raise AlvoError(Reason.UNKNOWN_DATASET_NAME, "no dataset named 'x'")

    @job_runner
    def breaks(job: RunnerJob, workdir: Path, progress: object) -> None:
        raise ZeroDivisionError("a bug")

    @job_runner
    def works(job: RunnerJob, workdir: Path, progress: object) -> dict[str, str]:
        return {"doc": "https://example.org/x"}

    with pytest.raises(UWSJobError) as refused:
        refuses(_job("x"), Path("."), _ignore)
    assert refused.value.message == "UNKNOWN_DATASET_NAME: no dataset named 'x'"
    assert isinstance(refused.value.__cause__, AlvoError)
    with pytest.raises(ZeroDivisionError):  # uws logs it and shows only INTERNAL_ERROR
        breaks(_job("x"), Path("."), _ignore)
    assert works(_job("x"), Path("."), _ignore) == {"doc": "https://example.org/x"}
    assert works.__name__ == "works"


def test_unknown_model_campaign_and_unlabelled_dataset_have_names(workdir: Path) -> None:
    settings = Settings.for_job(workdir)
    datasets = Datasets(settings)
    pool = datasets.open_or_create("pool", "target")
    rows = {"pubdid": ["ivo://x?1"], "access_url": ["https://example.org/1.fits"]}
    datasets.append(pool, np.zeros((1, 140), np.float32), rows, [""], "")

    cases = [
        (classify.run, _job("classify", MODEL_ID="999", DATASET="pool"), "UNKNOWN_MODEL"),
        (iterate.run, _job("iterate", CAMPAIGN="nothing"), "UNKNOWN_CAMPAIGN"),
        (train.run, _job("train", DATASET="pool"), "UNLABELLED_DATASET"),
    ]
    for run, job, reason in cases:
        with pytest.raises(UWSJobError) as failed:
            run(job, workdir, _ignore)
        assert failed.value.message.startswith(f"{reason}: "), failed.value.message


def test_jobs_raise_named_reasons_and_wrap_them_in_one_place() -> None:
    """No bare LookupError/ValueError/KeyError, and UWSJobError only in job_runner."""
    found = []
    for path in sorted((Path(__file__).resolve().parents[1] / "service" / "jobs").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                name = getattr(node.exc.func, "id", "")
                bare = name in ("ValueError", "LookupError", "KeyError")
                if bare or (name == "UWSJobError" and path.name != "runner.py"):
                    found.append(f"{path.name}:{node.lineno}: raise {name}")
    assert found == []


def test_importing_the_jobs_package_imports_no_job() -> None:
    """A worker that needs one job module (an ingest chunk, a Dask task) gets that one."""
    code = "import service.jobs, sys; print(sorted(m for m in sys.modules if m[:8] == 'service.'))"
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "['service.jobs']"
