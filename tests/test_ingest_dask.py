"""Under the dask executor an ingest's and a classification's chunks run as tasks on a
real Dask cluster."""

from __future__ import annotations

import httpx
import pytest

from service.net.uws_client import follow, submit
from service.settings import Settings
from service.store.datasets import Datasets
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


def test_classification_fans_out_and_matches_the_local_run(tmp_path, cluster):
    """A pool is classified in chunks on the cluster; the result equals one local pass."""
    import numpy as np
    from distributed import Client, get_task_stream

    from service.adapt import AdaptConfig
    from service.jobs.learning import classify
    from service.learn import SpectrumClassifier, TrainConfig
    from service.store.features import FeatureStore

    rng = np.random.default_rng(0)
    config = AdaptConfig()
    model = SpectrumClassifier.train(
        rng.normal(size=(60, 140)).astype(np.float32), np.arange(60) % 3,
        TrainConfig(variant="small", epochs=1, seed=0),
        adapt_config=config.to_dict(), adapt_fingerprint=config.fingerprint,
    )  # fmt: skip
    model_path = model.save(tmp_path / "m.keras")
    pool = FeatureStore.create(tmp_path / "pool.npy", 140)
    rows = rng.normal(size=(10, 140)).astype(np.float32)
    rows[4] = np.nan  # a spectrum adaptation refused
    pool.append(rows)

    local = classify(model_path, pool.path)
    local_int8 = classify(model_path, pool.path, precision="int8")
    with Client(cluster) as client, get_task_stream(client) as tasks:
        remote = client.submit(classify, model_path, pool.path, None, (0.0, 1.0), 3).result()
        remote_int8 = client.submit(
            classify, model_path, pool.path, None, (0.0, 1.0), 3, "int8"
        ).result()
    # int8 chunks on the workers share the local run's one quantisation (same calibration)
    np.testing.assert_allclose(remote_int8.probabilities, local_int8.probabilities, atol=1e-6)
    chunk_tasks = [t for t in tasks.data if str(t["key"]).startswith("_classify_rows")]
    assert len(chunk_tasks) == 8  # 10 rows in chunks of 3, each its own task (fp32, int8)
    np.testing.assert_allclose(remote.probabilities, local.probabilities, atol=1e-5)
    assert np.isnan(remote.probabilities[4]).all() and np.isfinite(remote.probabilities[5]).all()
    assert (remote.hou == local.hou).all()


def _train_and_score(seed: int):
    """A small network trained and scored wherever this runs (here, or on a worker)."""
    import numpy as np

    from service.adapt import AdaptConfig
    from service.learn import SpectrumClassifier, TrainConfig

    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 140)).astype(np.float32)
    y = np.arange(300) % 3
    x[y == 0, 60:70] += 2
    config = AdaptConfig()
    model = SpectrumClassifier.train(
        x, y, TrainConfig(variant="small", epochs=2, patience=1, seed=seed),
        adapt_config=config.to_dict(), adapt_fingerprint=config.fingerprint,
    )  # fmt: skip
    return model.score(x)[0]


def test_training_on_a_worker_gives_the_model_a_plain_process_gives(cluster):
    """An iterate job trains on a Dask worker: its model must not depend on where it ran
    (unseeded Keras initialisers drew from Python's global random, which the worker's
    event loop also draws from, so the same labels gave another model there)."""
    import numpy as np
    from distributed import Client

    here = _train_and_score(0)
    with Client(cluster) as client:
        there = [client.submit(_train_and_score, 0, pure=False).result() for _ in range(2)]
    np.testing.assert_array_equal(there[0], here)
    np.testing.assert_array_equal(there[1], here)
    assert not np.array_equal(_train_and_score(1), here)  # the seed still matters
