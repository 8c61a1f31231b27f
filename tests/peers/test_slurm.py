"""The service on a real single-node SLURM (``--executor slurm``, deploy/slurm).

dask-jobqueue's ``SLURMCluster`` starts the Dask workers through ``sbatch``; an
``iterate`` and a ``classify`` job run on them and give the local executor's
answers; a worker's SLURM job cancelled with ``scancel`` mid-run ends the UWS
job in ERROR with the lost-worker reason, not EXECUTING forever.
"""

from __future__ import annotations

import io
import time

import httpx
import numpy as np
import pytest
from astropy.io.votable import parse_single_table

from service.net.uws_client import follow, job_status, submit
from service.settings import Settings
from service.store.datasets import Datasets
from service.vocabulary import CLASSES
from tests.peers.slurm import SlurmCluster, slurm  # noqa: F401  (the session fixture)
from tests.test_learning_jobs import profiles
from tests.vo_fixture import free_port, live_server

pytest.importorskip("dask_jobqueue", reason="dask-jobqueue (the test extra) is not installed")

ITERATE = [("SOURCE", "src"), ("TARGET", "pool"), ("MODEL", "small"), ("EPOCHS", "3"),
           ("BATCH", "20"), ("PRECISION_SAMPLE", "10"), ("SEED", "7")]  # fmt: skip


def fill(settings: Settings) -> None:
    rng = np.random.default_rng(5)
    datasets = Datasets(settings)
    for name, domain, kinds in (
        ("src", "source", rng.choice(3, 240, p=[0.4, 0.15, 0.45])),
        ("pool", "target", rng.choice(3, 300, p=[0.05, 0.03, 0.92])),
    ):
        labels = [CLASSES[k] for k in kinds] if domain == "source" else [""] * len(kinds)
        rows = {
            "pubdid": [f"ivo://t/{name}?{i}" for i in range(len(kinds))],
            "ra": rng.uniform(0, 360, len(kinds)).tolist(),
            "dec": rng.uniform(-10, 60, len(kinds)).tolist(),
        }
        datasets.append(datasets.open_or_create(name, domain), profiles(kinds, rng), rows, labels)


def run_jobs(base: str, campaign: str, model_id: int | None) -> dict[str, object]:
    """An iterate job on ``campaign``, then a classify job of ``model_id`` (default: the
    iteration's own model) over the pool: what each answered."""
    iterated = follow(submit(f"{base}/iterate", [("CAMPAIGN", campaign), *ITERATE]), print)
    assert iterated.phase == "COMPLETED", iterated.error
    query = votable(iterated.results["query"][0])
    found = votable(iterated.results["candidates"][0])
    if model_id is None:  # the iteration's own model: the newest
        tap = {"LANG": "ADQL", "QUERY": "SELECT MAX(model_id) AS m FROM alvo.model"}
        model_id = int(votable(httpx.get(f"{base}/tap/sync", params=tap).url)["m"][0])
    classified = follow(
        submit(f"{base}/classify", [("MODEL_ID", str(model_id)), ("DATASET", "pool")]), print
    )
    assert classified.phase == "COMPLETED", classified.error
    candidates = votable(classified.results["candidates"][0])
    return {
        "model_id": model_id,
        "batch": [(str(p), str(r)) for p, r in zip(query["pubdid"], query["role"], strict=True)],
        "iterate_classes": classes(found),
        "classify": httpx.get(classified.results["summary"][0]).json()["hou_verdict"],
        "classify_classes": classes(candidates),
    }


def classes(candidates) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """How many candidates of each predicted class."""
    names, counts = np.unique(
        np.asarray(candidates["predicted_class"], dtype=str), return_counts=True
    )
    return dict(zip(names.tolist(), counts.tolist(), strict=True))


def votable(url: str):  # type: ignore[no-untyped-def]
    return parse_single_table(io.BytesIO(httpx.get(url).content)).to_table()


@pytest.fixture(scope="module")
def served(slurm: SlurmCluster, tmp_path_factory):  # noqa: F811
    """The same home served first with the local executor, then with ``--executor slurm``."""
    from service.app import create_app

    home = tmp_path_factory.mktemp("slurm-home")
    common = {"home": home, "demo_archive_size": 0, "simbad": "off"}
    fill(Settings(**common))  # type: ignore[arg-type]
    port = free_port()
    with live_server(create_app(Settings(port=port, **common)), port, lifespan="on") as base:  # type: ignore[arg-type]
        local = run_jobs(base, "here", None)
    port = free_port()
    settings = Settings(
        port=port, executor="slurm", slurm_jobs=1, slurm_cores=2, slurm_memory="3GiB",
        slurm_walltime="00:10:00", **common,  # type: ignore[arg-type]
    )  # fmt: skip
    with live_server(create_app(settings), port, lifespan="on") as base:
        yield base, local, settings


def worker_jobs(slurm: SlurmCluster) -> list[str]:  # noqa: F811
    out = slurm.run("squeue", "--noheader", "--name=alvo-worker", "--format=%i %T").stdout
    return [line.split()[0] for line in out.splitlines() if "RUNNING" in line]


def test_iterate_and_classify_on_slurm_workers_match_the_local_run(served, slurm):  # noqa: F811
    base, local, settings = served
    started = time.monotonic()
    remote = run_jobs(base, "there", int(local["model_id"]))  # type: ignore[call-overload]
    print(f"iterate + classify on SLURM workers: {time.monotonic() - started:.1f} s")
    assert worker_jobs(slurm), "no Dask worker runs as a SLURM job"
    # the jobs ran on the SLURM worker, not in the service's process
    log = list((settings.home / "slurm").glob("*.err"))
    assert log and any("Starting Worker" in p.read_text() for p in log)
    assert remote["batch"] == local["batch"]  # the same query batch and precision sample
    assert remote["iterate_classes"] == local["iterate_classes"]
    assert remote["classify"] == local["classify"]
    assert remote["classify_classes"] == local["classify_classes"]


def test_scancel_of_the_worker_ends_the_job_in_a_named_error(served, slurm):  # noqa: F811
    base, _, _ = served
    url = submit(
        f"{base}/iterate",
        [("CAMPAIGN", "cancelled"), *ITERATE[:3], ("EPOCHS", "200"), *ITERATE[4:]],
    )
    deadline = time.monotonic() + 60
    status = job_status(url, httpx.get(url).content)
    while status.phase in ("PENDING", "QUEUED") and time.monotonic() < deadline:
        answer = httpx.get(url, params={"WAIT": "10", "PHASE": status.phase}, timeout=30)
        status = job_status(url, answer.content)
    assert status.phase == "EXECUTING", status
    jobs = worker_jobs(slurm)
    assert jobs
    slurm.run("scancel", *jobs)
    started = time.monotonic()
    status = job_status(url, httpx.get(url).content)
    while status.phase == "EXECUTING" and time.monotonic() < started + 60:
        # a progress report also answers a WAIT (UWS 1.1: before its timeout)
        answer = httpx.get(url, params={"WAIT": "60", "PHASE": "EXECUTING"}, timeout=90)
        status = job_status(url, answer.content)
    assert status.phase == "ERROR", status
    assert status.error.startswith("WORKER_LOST:") and "left the cluster" in status.error
    lost_after = time.monotonic() - started
    print(f"scancel -> ERROR in {lost_after:.1f} s")
    assert lost_after < 60
