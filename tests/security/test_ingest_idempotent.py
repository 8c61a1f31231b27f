"""Ingest is idempotent and resumable (issue 12).

Before: a killed ingest left a partial dataset and re-running it duplicated
rows (2747 rows for 1997 publisher DIDs). Now a spectrum is stored once per
dataset, by publisher DID or access URL, and a re-run adds exactly what is
missing; the feature store row <-> ``spectrum.row_index`` contract holds.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import uuid
from pathlib import Path

import httpx
import numpy as np
import pytest
import sqlalchemy as sa
from astropy.io import fits

from service.net.uws_client import follow, submit
from service.settings import Settings
from service.store import schema
from service.store.datasets import Datasets
from service.store.spectrum_keys import hashes_of
from tests.peers.postgres import postgres  # noqa: F401  (the session fixture)
from tests.security.processes import HoldingServer, family, role, survivors, wait_until
from tests.vo_fixture import free_port, live_server, make_archive


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request, tmp_path):
    if request.param == "sqlite":
        return Settings(home=tmp_path)
    url = request.getfixturevalue("postgres").create_database(f"ingest_{uuid.uuid4().hex[:10]}")
    return Settings(home=tmp_path, database_url=url)


def rows(n: int, start: int = 0, **extra: list[str]) -> dict[str, list]:
    return {
        "pubdid": [f"ivo://t/pool?{i}" for i in range(start, start + n)],
        "access_url": [f"http://archive.example/{i}.fits" for i in range(start, start + n)],
        **extra,
    }


def features(n: int, start: int = 0) -> np.ndarray:
    return np.arange(start, start + n, dtype=np.float32)[:, None] * np.ones((1, 140), np.float32)


def stored(datasets: Datasets, name: str) -> dict[str, np.ndarray]:
    return datasets.spectra(datasets.require(name), ["pubdid", "access_url", "row_index"])


def test_appending_the_same_spectra_again_adds_nothing(settings):
    datasets = Datasets(settings)
    pool = datasets.open_or_create("pool", "target")
    assert len(datasets.append(pool, features(5), rows(5))) == 5
    assert datasets.append(pool, features(5), rows(5)) == []
    # half old, half new: only the new ones, with their own features
    assert len(datasets.append(pool, features(4, start=3), rows(4, start=3))) == 2
    # the same file under no DID, or under another DID, is the same spectrum
    assert (
        datasets.append(pool, features(1), {"access_url": ["http://archive.example/0.fits"]}) == []
    )
    again = rows(1, pubdid=["ivo://other/did"])
    assert datasets.append(pool, features(1), again) == []
    # repeats inside one batch count once
    twice = {k: v * 2 for k, v in rows(1, start=20).items()}
    assert len(datasets.append(pool, features(2, start=20), twice)) == 1
    table = stored(datasets, "pool")
    assert len(table["pubdid"]) == len(set(table["pubdid"])) == 8
    assert datasets.require("pool").features.array().shape[0] >= 8
    array = datasets.require("pool").features.array()
    for pubdid, row in zip(table["pubdid"], table["row_index"], strict=True):
        assert array[row, 0] == float(pubdid.rsplit("?", 1)[1])  # row i <-> spectrum row i
    with datasets.engine.connect() as conn:
        n_spectra = conn.scalar(sa.select(schema.dataset.c.n_spectra))
    assert n_spectra == 8


def test_a_bulk_ingests_hashed_keys_decide_as_the_database_does(settings):
    """``alvo ingest tree`` gives the one writer the dataset's keys as 64-bit hashes (no
    query per chunk): they drop what the database check drops, also what another
    writer stored after they were read, and what the writer itself added."""
    datasets = Datasets(settings)
    pool = datasets.open_or_create("pool", "target")
    datasets.append(pool, features(3), rows(3))
    known = datasets.spectrum_keys(pool)
    asked = ["ivo://t/pool?1", "http://archive.example/2.fits", "ivo://t/pool?3", ""]
    assert known.holds(hashes_of(asked)).tolist() == [True, True, False, False]
    datasets.append(pool, features(2, start=3), rows(2, start=3))  # another writer, since
    assert len(datasets.append(pool, features(6), rows(6), known=known)) == 1  # only ?5
    assert datasets.append(pool, features(1, start=5), rows(1, start=5), known=known) == []
    other_did = rows(1, pubdid=["ivo://other/did"])  # the file ?0 under another DID
    assert datasets.append(pool, features(1), other_did, known=known) == []
    twice = {k: v * 2 for k, v in rows(1, start=20).items()}
    assert len(datasets.append(pool, features(2, start=20), twice, known=known)) == 1
    table = stored(datasets, "pool")
    assert sorted(table["pubdid"]) == sorted(rows(6)["pubdid"] + ["ivo://t/pool?20"])
    array = datasets.require("pool").features.array()
    for pubdid, row in zip(table["pubdid"], table["row_index"], strict=True):
        assert array[row, 0] == float(pubdid.rsplit("?", 1)[1])  # row i <-> spectrum row i


def test_the_database_refuses_a_duplicate_spectrum(settings):
    datasets = Datasets(settings)
    pool = datasets.open_or_create("pool", "target")
    datasets.append(pool, features(1), rows(1))
    record = {"dataset_id": pool.dataset_id, "row_index": 99, "pubdid": "ivo://t/pool?0"}
    with pytest.raises(sa.exc.IntegrityError), datasets.engine.begin() as conn:
        conn.execute(schema.spectrum.insert(), [record])


def test_concurrent_appends_of_one_batch_store_it_once(settings):
    datasets = Datasets(settings)
    pool = datasets.open_or_create("pool", "target")
    barrier = threading.Barrier(4)
    added: list[int] = []

    def append() -> None:
        barrier.wait()
        added.append(len(Datasets(settings).append(pool, features(50), rows(50))))

    threads = [threading.Thread(target=append) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(added) == [0, 0, 0, 50]
    assert len(stored(datasets, "pool")["pubdid"]) == 50
    assert datasets.require("pool").features.array().shape[0] == 50


# --- a real ingest job, killed and run again --------------------------------------------------


@pytest.fixture
def archive(tmp_path):
    home = tmp_path / "home"
    catalogue = make_archive(home, n=6)["lamost"]
    for i, name in enumerate(catalogue["file"]):  # each file its own DID (OBSID)
        fits.setval(home / "archive" / "lamost" / name, "OBSID", value=1000 + i)
    files = {
        f"/{i}.fits": (home / "archive" / "lamost" / name).read_bytes()
        for i, name in enumerate(catalogue["file"])
    }
    port = free_port()
    settings = Settings.from_env(
        {"ALVO_FETCH_ALLOW": "127.0.0.0/8"}, home=home, port=port, demo_archive_size=0, workers=1
    )
    from service.app import create_app

    with live_server(create_app(settings), port, lifespan="on") as url:
        yield url, settings, files


def ingest(base: str, server: HoldingServer) -> str:
    parameters = [("DATASET", "pool"), ("DOMAIN", "target"), ("CHUNK", "2")]
    parameters += [("URL", f"{server.url}/{i}.fits") for i in range(6)]
    return submit(f"{base}/ingest", parameters)


def test_a_killed_ingest_rerun_completes_to_exactly_the_right_count(archive):
    base, settings, files = archive
    first_four = {path: body for path, body in files.items() if path < "/4"}
    server = HoldingServer(first_four)
    with server.running():
        job = ingest(base, server)
        assert server.requested.wait(timeout=120)  # chunks 1 and 2 stored, chunk 3 held
        workers = [p for p in family(os.getpid()) if role(p) == "job"]
        assert len(workers) == 1
        workers[0].send_signal(signal.SIGKILL)
        wait_until(lambda: not survivors(workers), 20, "the ingest worker to die")
        killed = follow(job, lambda status: None)
        assert killed.phase == "ERROR" and killed.error.startswith("WORKER_LOST")
        datasets = Datasets(settings)
        assert len(stored(datasets, "pool")["pubdid"]) == 4  # whole chunks only

        server.files = files  # the archive answers again
        rerun = follow(ingest(base, server), lambda status: None)
        assert rerun.phase == "COMPLETED", rerun.error
        summary = httpx.get(rerun.results["summary"][0]).json()
        assert (summary["added"], summary["already_present"]) == (2, 4)

        third = follow(ingest(base, server), lambda status: None)
        summary = httpx.get(third.results["summary"][0]).json()
        assert (summary["added"], summary["already_present"], summary["failed"]) == (0, 6, 0)

    table = stored(datasets, "pool")
    assert sorted(table["access_url"]) == sorted(f"{server.url}{path}" for path in files)
    rows_of_features = datasets.require("pool").features.array()
    assert sorted(table["row_index"]) == sorted(set(table["row_index"]))
    assert max(table["row_index"]) < len(rows_of_features)
    assert np.isfinite(rows_of_features[list(table["row_index"])]).all()


def test_an_old_database_with_duplicates_still_starts(tmp_path, caplog):
    """Duplicates left by ingests before the fix block the unique index: say so, go on."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.sqlite'}")
    schema.create_all(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX ux_spectrum_identity")
        conn.execute(schema.dataset.insert().values(name="pool"))
        twice = [{"dataset_id": 1, "row_index": i, "pubdid": "ivo://t/pool?0"} for i in range(2)]
        conn.execute(schema.spectrum.insert(), twice)
    schema.create_all(engine)
    assert "ux_spectrum_identity" in caplog.text and "re-ingest" in caplog.text


@pytest.mark.parametrize("owner", [None, "alice"])
def test_an_ingest_whose_every_spectrum_is_refused_creates_and_claims_no_dataset(tmp_path, owner):
    """Before, the first chunk created the dataset (owned by the job's owner) even when
    all its spectra failed: the name was taken, under auth by whoever tried first."""
    from service.jobs.ingest import served
    from uws.models import JobParameters
    from uws.runner import RunnerJob

    settings = Settings(home=tmp_path, fetch_allow="127.0.0.0/8", workers=1)
    settings.save_snapshot()
    workdir = tmp_path / "jobs" / "job1"
    workdir.mkdir(parents=True)
    junk = {f"/{i}.fits": b"SIMPLE  =  not a spectrum" for i in range(3)}
    with HoldingServer(junk).running() as server:
        urls = tuple(("URL", f"{server.url}/{i}.fits") for i in range(3))
        job = RunnerJob("job1", owner, "ingest", JobParameters((("DATASET", "gone"), *urls)), {})
        results = served.run(job, workdir, lambda fraction, message="": None)
    summary = json.loads(Path(results["summary"][0]).read_text())
    assert summary["added"] == 0 and summary["failed"] == 3, summary
    assert Datasets(settings).get("gone") is None
    datasets = Datasets(settings)  # the name is free: anyone may ingest into it
    assert datasets.open_or_create("gone", "target", owner="bob").owner == "bob"
