"""A full disk is a named refusal, never a lost or half-stored label (issue 24).

``ALVO_HOME`` lives on a small tmpfs that the test mounts (root only: skipped, with
the reason, elsewhere) and fills with a ballast file. Label POSTs then meet
SQLite's ``SQLITE_FULL`` (or ``ENOSPC`` from the WAL): each must be answered 507
``DISK_FULL`` with nothing of it stored, while reads go on answering and every label
acknowledged before stays; once the ballast is gone the same POST is stored. A job
whose files meet ``ENOSPC`` ends as ``DISK_FULL`` through the one job wrapper.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from service.app import create_app
from service.jobs.runner import job_runner
from service.settings import Settings
from service.store import schema
from service.store.datasets import Datasets
from service.store.engine import ENGINES, engine_for
from tests.durability.storm import CAMPAIGN, build_home, pubdid
from tests.peers.postgres import postgres  # noqa: F401  (the session fixture)
from uws.runner import UWSJobError

pytestmark = pytest.mark.durability


@contextlib.contextmanager
def small_filesystem(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``path`` for the test's duration."""
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited tmpfs needs root (the CI machine runs as root)")
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        ENGINES.clear()
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(folder: Path, piece: int | None = None) -> Any:
    """Write ballast until the file system says it is full: one file (returned), or
    files of ``piece`` bytes each (their list: deleting some frees that much)."""
    if piece is not None:
        pieces = []
        while True:
            path = folder / f"ballast-{len(pieces)}"
            pieces.append(path)
            try:
                path.write_bytes(b"\0" * piece)
            except OSError as error:
                assert error.errno == errno.ENOSPC
                return pieces
    ballast = folder / "ballast"
    block = b"\0" * (256 * 1024)
    with ballast.open("wb") as out:
        try:
            while True:
                out.write(block)
                out.flush()
        except OSError as error:
            assert error.errno == errno.ENOSPC
    return ballast


def labels_of(client: TestClient) -> dict[str, str]:
    answer = client.get(f"/campaigns/{CAMPAIGN}/labels?FORMAT=json")
    assert answer.status_code == 200, answer.text
    return {row["pubdid"]: row["label"] for row in answer.json()["labels"]}


def post(client: TestClient, first: int, count: int, verdict: str) -> int:
    body = {
        "labels": [{"pubdid": pubdid(i), "label": verdict} for i in range(first, first + count)]
    }
    return client.post(f"/campaigns/{CAMPAIGN}/labels", json=body).status_code


def test_labels_on_a_full_disk_are_refused_by_name_and_nothing_is_lost(tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "home", "6m") as home:
        settings = build_home(home, pool_size=2000)
        with TestClient(create_app(settings)) as client:
            assert post(client, 0, 10, "absorption") in (200, 201)
            before = labels_of(client)
            assert len(before) == 10
            ballast = fill(home)
            # The WAL may still hold free pages: post until the database needs more.
            statuses, first = [], 10
            while first < 1500 and 507 not in statuses:
                statuses.append(post(client, first, 50, "single-peak"))
                first += 50
            assert 507 in statuses, f"no POST met the full disk: {statuses}"
            assert set(statuses) <= {200, 201, 507}, statuses
            refused_at = first - 50
            during = labels_of(client)  # the service keeps answering reads
            acknowledged = {pubdid(i) for i in range(10, refused_at)}
            assert set(during) == set(before) | acknowledged
            assert not any(pubdid(i) in during for i in range(refused_at, refused_at + 50))
            ballast.unlink()
            assert post(client, refused_at, 50, "single-peak") in (200, 201)
            after = labels_of(client)
            assert {pubdid(i) for i in range(refused_at, refused_at + 50)} <= set(after)
            assert {k: after[k] for k in before} == before


def test_a_job_that_meets_a_full_disk_ends_as_disk_full(tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "jobs", "1m") as workdir:

        @job_runner
        def write_results(job: object, folder: Path, progress: object) -> dict[str, object]:
            (folder / "model.keras").write_bytes(b"\0" * (4 * 1024 * 1024))
            return {}

        with pytest.raises(UWSJobError, match=r"^DISK_FULL: "):
            write_results(None, workdir, None)  # type: ignore[arg-type]


N_FILES = 1200  # LAMOST-like FITS files of the simulator (~87 kB each, outside the tmpfs)


def spectra_state(settings: Settings) -> tuple[int, int, int, int]:
    """(dataset n_spectra, spectrum rows, distinct keys, feature-store rows) of 'tree'."""
    dataset = Datasets(settings).require("tree")
    s = schema.spectrum.c
    with engine_for(settings.sqlalchemy_url).connect() as conn:
        rows, keys, top = conn.execute(
            sa.select(sa.func.count(), sa.func.count(sa.distinct(s.access_url)),
                      sa.func.max(s.row_index)).where(s.dataset_id == dataset.dataset_id)
        ).one()  # fmt: skip
        n = conn.scalar(
            sa.select(schema.dataset.c.n_spectra).where(schema.dataset.c.name == "tree")
        )
    assert top is None or top < len(dataset.features)  # every row has its features
    return int(n), int(rows), int(keys), len(dataset.features)


def test_a_long_ingest_meets_a_full_disk_stops_by_name_and_resumes(tmp_path: Path, capsys) -> None:
    from service.archive.generate import generate_archive
    from service.cli import main

    generate_archive(tmp_path / "make", "lamost", N_FILES, seed=7)
    root = tmp_path / "make" / "archive" / "lamost"
    (root / "catalogue.fits").unlink()
    with small_filesystem(tmp_path / "home", "8m") as home:
        settings = build_home(home, pool_size=20)
        with TestClient(create_app(settings)) as client:
            assert post(client, 0, 10, "absorption") in (200, 201)
            before = labels_of(client)
        ballast = fill(home, piece=64 * 1024)
        for piece in ballast[:6]:  # ~380 kB free: a few chunks of 100 spectra fit
            piece.unlink()
        tree = ["ingest", "tree", str(root), "--dataset", "tree", "--home", str(home),
                "--workers", "1", "--chunk", "100"]  # fmt: skip
        assert main(tree) == 1
        assert "DISK_FULL: " in capsys.readouterr().err
        n, rows, keys, _ = spectra_state(settings)
        assert 0 < n < N_FILES and n == rows == keys
        stored_before = n
        with TestClient(create_app(settings)) as client:  # the service answers, labels intact
            assert labels_of(client) == before
        for piece in ballast[6:]:
            piece.unlink()
        capsys.readouterr()
        assert main(tree) == 0
        summary = json.loads(capsys.readouterr().out)
        n, rows, keys, _ = spectra_state(settings)
        assert summary["skipped"] == stored_before  # nothing stored before is read again
        failed = sum(summary["failed"].values())  # the simulator's few unreadable files
        assert n == rows == keys == stored_before + summary["added"] == N_FILES - failed
        with TestClient(create_app(settings)) as client:
            assert labels_of(client) == before


@pytest.mark.peers
def test_a_prediction_write_on_a_full_postgresql_tablespace_ends_as_disk_full(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """PostgreSQL's ``disk_full`` (53100) while a pool's predictions are written.

    The ``prediction`` table (and its indexes) is moved to a tablespace on a 4 MiB tmpfs
    (the rest of the database, its WAL included, stays on the cluster's disk), the tmpfs
    is filled, and a pool's predictions are written through the job wrapper: the job
    ends ``DISK_FULL``, the transaction stored nothing (no ``prediction_file`` row, no
    prediction), the labels are intact and the service answers; after space is freed
    the same write succeeds.
    """
    import pwd
    import tempfile

    import numpy as np

    from service.store import predictions
    from service.store.campaigns import Campaigns, Verdict

    cluster = request.getfixturevalue("postgres")
    url = cluster.create_database("disk_full_predictions")
    pool = 6000
    settings = build_home(tmp_path / "home", pool, url)
    campaigns = Campaigns(settings)
    campaign = campaigns.require(CAMPAIGN)
    campaigns.add_labels(campaign, [Verdict("absorption", pubdid=pubdid(i)) for i in range(20)])
    engine = engine_for(url)
    mount = Path(tempfile.mkdtemp(prefix="alvo-tablespace-"))  # /tmp: postgres can reach it
    mount.chmod(0o755)
    name = f"alvo_small_{os.getpid()}"
    with small_filesystem(mount, "4m"):
        space = mount / "tablespace"
        space.mkdir()
        user = pwd.getpwnam("postgres")
        os.chown(space, user.pw_uid, user.pw_gid)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text(f"CREATE TABLESPACE {name} LOCATION '{space}'"))
            conn.execute(sa.text(f"ALTER TABLE prediction SET TABLESPACE {name}"))
            for index in sa.inspect(conn).get_indexes("prediction"):
                conn.execute(sa.text(f'ALTER INDEX "{index["name"]}" SET TABLESPACE {name}'))
        ballast = fill(mount)
        with engine.connect() as conn:
            sids = np.array(conn.execute(sa.select(schema.spectrum.c.spectrum_id)).scalars().all())
        rng = np.random.default_rng(0)
        p = rng.dirichlet([1, 1, 1], len(sids))
        roles = np.array(["query"] * 10 + [""] * (len(sids) - 10), object)
        table = predictions.columns(
            sids, p, -(p * np.log(p)).sum(1), np.zeros(len(sids), bool), roles,
            np.zeros(len(sids), bool),
        )  # fmt: skip
        scoring = predictions.Scoring(campaign.campaign_id, 0, None, "job1")

        @job_runner
        def write_predictions(job: object, folder: Path, progress: object) -> dict[str, object]:
            predictions.record(engine, tmp_path / "home" / "predictions", table, scoring)
            return {}

        def count(table: sa.Table) -> int:
            with engine.connect() as conn:
                return int(conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)

        with pytest.raises(UWSJobError, match=r"^DISK_FULL: "):
            write_predictions(None, tmp_path, None)  # type: ignore[arg-type]
        assert count(schema.prediction) == 0 and count(schema.prediction_file) == 0
        with TestClient(create_app(settings)) as client:  # answers; labels intact
            assert len(labels_of(client)) == 20
        ballast.unlink()
        write_predictions(None, tmp_path, None)  # type: ignore[arg-type]
        assert count(schema.prediction) == len(sids) and count(schema.prediction_file) == 1
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("ALTER TABLE prediction SET TABLESPACE pg_default"))
            for index in sa.inspect(conn).get_indexes("prediction"):
                conn.execute(sa.text(f'ALTER INDEX "{index["name"]}" SET TABLESPACE pg_default'))
            conn.execute(sa.text(f"DROP TABLESPACE {name}"))
        engine.dispose()


def test_a_training_that_cannot_save_its_model_ends_as_disk_full_and_resumes(
    tmp_path: Path,
) -> None:
    """The iterate job trains, then saves its model under ``models/``: with that folder
    on a full file system it ends as ``DISK_FULL`` (not INTERNAL_ERROR from Keras'
    own exception), the labels and datasets stay as they were, nothing of the
    iteration is stored, and the same job succeeds once space is freed."""
    from service.jobs import iterate
    from tests.durability.test_restore_iterate import PARAMS, batch, ingest, labels
    from uws.models import JobParameters
    from uws.runner import RunnerJob

    settings, _ = ingest(tmp_path / "home")
    before = labels(settings), len(Datasets(settings).require("pool").features)
    parameters = JobParameters(tuple({**PARAMS, "SOURCE": "src", "TARGET": "pool"}.items()))
    job = RunnerJob("iterate-full", None, "iterate", parameters, {})
    workdir = settings.home / "jobs" / "iterate-full"
    workdir.mkdir(parents=True)
    with small_filesystem(settings.home / "models" / "be", "16m") as models:
        ballast = fill(models)
        with pytest.raises(UWSJobError, match=r"^DISK_FULL: .*\(.*\)$") as failed:
            iterate.run(job, workdir, lambda fraction, message="": None)
        assert "No space left" in str(failed.value)  # the operator sees what ran out
        assert (labels(settings), len(Datasets(settings).require("pool").features)) == before
        assert batch(settings, 0) == []  # nothing of the failed iteration half-stored
        ballast.unlink()
        iterate.run(job, workdir, lambda fraction, message="": None)
        assert len(batch(settings, 0)) == int(PARAMS["BATCH"])
        assert (models / "iteration-0.keras").is_file()
