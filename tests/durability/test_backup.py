"""``alvo campaign export`` / ``import``: a campaign restored into a fresh home is the same
campaign -- every label with its verdict, user, time, source and iteration, in order; the
campaign's parameters; its iterations and batches -- and importing twice adds nothing.

The homes are built through the store (no CNN, no ingest job): what is under test is
what a backup holds and how it is put back, on SQLite and on a real PostgreSQL.
"""

from __future__ import annotations

import io
import tarfile
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from service.cli import main
from service.reasons import AlvoError, Reason
from service.settings import Settings
from service.store import schema
from service.store.backup import CampaignBackup, read_backup, restore
from service.store.campaigns import Campaigns, Verdict
from service.store.datasets import Datasets
from service.store.engine import ENGINES
from service.vo.backup_tables import TABLES
from service.vo.backup_tables import read_backup as read_file
from tests.peers.postgres import postgres  # noqa: F401  (the session fixture)
from tests.peers.stilts import votlint

pytestmark = pytest.mark.durability

POOL = 12


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request):
    """A function that gives a fresh database URL ('' is the home's own SQLite)."""
    if request.param == "sqlite":
        return lambda: ""
    cluster = request.getfixturevalue("postgres")
    return lambda: cluster.create_database(f"backup_{uuid.uuid4().hex[:10]}")


def _ingest(settings: Settings, names: tuple[str, ...] = ("src", "pool"), pool: int = POOL) -> None:
    """The two datasets, as an ingest would leave them (DIDs and access URLs)."""
    datasets = Datasets(settings)
    for name in names:
        domain, count = ("source", 3) if name == "src" else ("target", pool)
        dids = [f"ivo://backup/{name}?{i}" for i in range(count)]
        rows = {
            "pubdid": dids,
            "access_url": [f"https://archive.example/{name}/{i}.fits" for i in range(count)],
            "ra": [float(i) for i in range(count)],
            "dec": [1.0] * count,
        }
        labels = ["absorption"] * count if domain == "source" else [""] * count
        features = np.full((count, 140), 0.5, np.float32)
        datasets.append(datasets.open_or_create(name, domain), features, rows, labels)


def _campaign(settings: Settings) -> None:
    """Campaign 'drill': owner, oracles, three users' verdicts (one changed, one undone,
    a disagreement, one on the source set), an iteration row and its batch."""
    campaigns = Campaigns(settings)
    campaign = campaigns.create(
        "drill", "src", "pool", batch_size=5, description="Be stars", owner="alice",
        oracles=("bob", "carol"),
    )  # fmt: skip
    pool, src = "ivo://backup/pool?", "ivo://backup/src?"
    with campaigns.engine.begin() as conn:
        sids = dict(
            conn.execute(sa.select(schema.spectrum.c.pubdid, schema.spectrum.c.spectrum_id)).all()
        )
        conn.execute(
            schema.prediction.insert(),
            [
                {
                    "spectrum_id": sids[f"{pool}{i}"],
                    "campaign_id": campaign.campaign_id,
                    "iteration": 0,
                    "predicted_class": "single-peak",
                    "role": role,
                    "p_single_peak": 0.7,
                    "p_double_peak": 0.1,
                    "p_absorption": 0.2,
                    "entropy": 0.8,
                }
                for i, role in enumerate(["query"] * 3 + ["precision-sample"] * 2)
            ],
        )
    campaigns.record_iteration(campaign, 0, strategy="entropy", n_labels=0, n_candidates=4)
    add = campaigns.add_labels
    add(campaign, [Verdict("single-peak", pubdid=f"{pool}{i}", user="alice") for i in range(5)])
    add(campaign, [Verdict("absorption", pubdid=f"{pool}1", user="alice", source="page")])
    # a comment and a flag (issue 23) are backed up and restored with their verdict
    note = Verdict("double-peak", pubdid=f"{pool}2", user="bob", source="samp",
                   comment="V>R shoulder, unresolved", flag=True)  # fmt: skip
    add(campaign, [note])
    add(campaign, [Verdict("bad", pubdid=f"{pool}7", user="carol", source="csv")])
    add(campaign, [Verdict("not-sure", pubdid=f"{pool}8", user="carol")])
    campaigns.undo_verdict(campaign, int(sids[f"{pool}8"]), "carol")
    add(campaign, [Verdict("absorption", pubdid=f"{src}0", user="", source="votable")])
    add(campaign, [Verdict("interesting", pubdid=f"{pool}3", user="alice", iteration=0),
                   Verdict("boring", pubdid=f"{pool}9", user="bob")])  # fmt: skip


def _comparable(backup: CampaignBackup) -> dict[str, Any]:
    """A backup with its datasets by name instead of the ids of one database."""
    names = backup.dataset_names()

    def by_name(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**row, "dataset_id": names[int(row["dataset_id"])]} for row in rows]

    campaign = dict(backup.campaign)
    for key in ("source_dataset_id", "target_dataset_id"):
        campaign[key] = names[int(campaign[key])]
    return {
        "campaign": campaign,
        "spectra": sorted(by_name(backup.spectra), key=lambda r: (r["dataset_id"], r["row_index"])),
        "labels": by_name(backup.labels),
        "iterations": backup.iterations,
        "batches": by_name(backup.batches),
        "relevance": by_name(backup.relevance),
    }


def _home(tmp_path: Path, name: str, url: str) -> Settings:
    (tmp_path / name).mkdir()
    return Settings(home=tmp_path / name, database_url=url)


def test_export_import_restores_the_campaign_exactly_once(tmp_path, database, monkeypatch, capsys):
    old = _home(tmp_path, "old", database())
    _ingest(old)
    _campaign(old)
    before = read_backup(old, "drill")
    assert len(before.labels) == 9 and len(before.batches) == 5  # what the drill made
    assert len(before.relevance) == 2  # interesting/boring: kept apart, backed up too
    assert [r["comment"] for r in before.labels if r["flag"]] == ["V>R shoulder, unresolved"]

    archive = tmp_path / "drill.tar.gz"
    monkeypatch.setenv("ALVO_DATABASE_URL", old.database_url)
    assert main(["campaign", "export", "drill", "-o", str(archive), "--home", str(old.home)]) == 0
    ENGINES.clear()

    # the fresh home ingests the datasets in the other order: other dataset and spectrum ids
    new = _home(tmp_path, "new", database())
    _ingest(new, ("pool", "src"))
    monkeypatch.setenv("ALVO_DATABASE_URL", new.database_url)
    for _ in range(2):  # importing twice adds nothing
        assert main(["campaign", "import", str(archive), "--home", str(new.home)]) == 0
    printed = capsys.readouterr().out
    assert "9 labels added, 0 already present, 1 iterations added, 2 interesting" in printed
    assert "0 labels added, 9 already present, 0 iterations added" in printed

    after = read_backup(new, "drill")
    assert _comparable(after) == _comparable(before)  # same verdicts, users, times, order
    old_c, new_c = Campaigns(old), Campaigns(new)
    a, b = old_c.require("drill"), new_c.require("drill")
    assert (b.owner, b.oracles, b.batch_size) == ("alice", ("bob", "carol"), 5)
    assert new_c.conflicts(b) and len(new_c.conflicts(b)) == len(old_c.conflicts(a))
    assert new_c.last_iteration(b) == 0  # the next iterate is number 1, as it would have been
    assert sorted(new_c.pool_verdicts(b).items()) == sorted(old_c.pool_verdicts(a).items())


def test_import_without_the_datasets_is_refused_naming_them(tmp_path):
    old = _home(tmp_path, "old", "")
    _ingest(old)
    _campaign(old)
    from service.vo.backup_tables import write_backup

    data = write_backup(read_backup(old, "drill"))
    bare = _home(tmp_path, "bare", "")
    _ingest(bare, ("src",))  # no pool
    with pytest.raises(AlvoError) as missing:
        restore(bare, read_file(data))
    assert missing.value.reason is Reason.BACKUP_DATASETS_MISSING
    assert "'pool' (12 spectra) is not ingested" in missing.value.detail
    short = _home(tmp_path, "short", "")
    _ingest(short, pool=POOL - 2)  # a pool that lacks two spectra
    with pytest.raises(AlvoError, match=r"'pool' lacks 2 of the backup's 12 spectra.*example"):
        restore(short, read_file(data))
    assert Campaigns(short).get("drill") is None  # nothing was stored
    with pytest.raises(AlvoError) as bad:
        read_file(b"not a tarball")
    assert bad.value.reason is Reason.BAD_BACKUP


def test_every_table_of_an_export_is_valid_votable(tmp_path):
    settings = _home(tmp_path, "home", "")
    _ingest(settings)
    _campaign(settings)
    from service.vo.backup_tables import write_backup

    data = write_backup(read_backup(settings, "drill"))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert sorted(tar.getnames()) == sorted(TABLES)
        for name in TABLES:
            member = tar.extractfile(name)
            assert member is not None
            assert votlint(member.read()) == [], name
