"""Under the dask executor an ingest's chunks run as tasks on a real Dask cluster."""

from __future__ import annotations

import httpx
import pytest

from service.datasets import Datasets
from service.settings import Settings
from service.uws_client import follow, submit
from tests.vo_fixture import catalogue_real_files, free_port, live_server


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as local:
        yield local.scheduler_address


def test_chunks_fan_out_to_the_cluster(real_data, tmp_path, cluster):
    from service.app import create_app

    lamost = sorted((real_data / "lamost-dr2").glob("*.fits"))[:7]
    catalogue_real_files(tmp_path, {"lamost": lamost})
    port = free_port()
    settings = Settings(
        home=tmp_path, port=port, demo_archive_size=0, executor="dask", dask_scheduler=cluster
    )
    with live_server(create_app(settings), port, lifespan="on") as base:
        status = follow(
            submit(
                f"{base}/ingest",
                [("DATASET", "pool"), ("SSA", f"{base}/ssa/lamost"), ("CHUNK", "3")],
            ),
            lambda s: None,
        )
        assert status.phase == "COMPLETED", status.error
        summary = httpx.get(status.results["summary"][0]).json()
    assert summary["chunks"] == 3 and summary["chunks_ran_on"] == "dask cluster"
    dataset = Datasets(settings).require("pool")
    rows = Datasets(settings).spectra(dataset, ["row_index", "pubdid"])
    assert list(rows["row_index"]) == list(range(7))  # all three chunks, appended in order
    assert dataset.features.array().shape == (7, 140)
