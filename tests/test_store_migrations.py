"""The result tables' Alembic history (service/store/migrations): a new database ends
exactly as ``schema.metadata`` says, and a kept old home is upgraded with every label.

The old homes under ``tests/data/homes/`` were made by the code of earlier commits,
not by today's; ``tests/data/make_old_homes.py`` makes them again and says how:

* ``before-owners`` -- main at 10906a6, the last schema before any migration (no
  owners, no spectrum identity index, predictions without model and job, no
  ``prediction_file``, no ``archive_root``), rollback journal;
* ``before-alembic`` -- main at f859ef0, today's tables but no version table (kept
  for later schema changes, issue 24), WAL.

Both hold the same story: two datasets, campaign ``be-stars``, three source labels
from ingest and six verdicts on the pool by ana and ben (one changed, one conflict).
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
import warnings
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from service.settings import Settings
from service.store import migrations, schema
from service.store.campaigns import Campaigns
from service.store.datasets import Datasets
from tests.peers.postgres import postgres  # noqa: F401  (the session fixture)

HOMES = Path(__file__).parent / "data" / "homes"


def structure(engine: sa.Engine) -> dict[str, Any]:
    """Tables, columns in order, keys, unique constraints and index definitions, as the
    database itself reports them (Alembic's own version table left out)."""
    inspector = sa.inspect(engine)
    # SQLite's expression index (ux_spectrum_identity) is compared below as written
    warnings.filterwarnings("ignore", "Skipped unsupported reflection", sa.exc.SAWarning)
    tables: dict[str, Any] = {}
    for table in sorted(set(inspector.get_table_names()) - {migrations.VERSION_TABLE}):
        columns = inspector.get_columns(table)
        tables[table] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], c.get("default"), c.get("comment"))
                for c in columns
            ],
            "primary key": inspector.get_pk_constraint(table)["constrained_columns"],
            "foreign keys": sorted(
                (f["name"] or "", *f["constrained_columns"], f["referred_table"])
                for f in inspector.get_foreign_keys(table)
            ),
            "unique": sorted(
                tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)
            ),
        }
        if engine.dialect.supports_comments:
            tables[table]["comment"] = inspector.get_table_comment(table)["text"]
    # the indexes as written (the inspector skips SQLite's expression index)
    if engine.dialect.name == "sqlite":
        query = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
    else:
        query = "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
    with engine.connect() as conn:
        indexes = sorted(
            tuple(row)
            for row in conn.exec_driver_sql(query)
            if migrations.VERSION_TABLE not in row[0]
        )
    return {"tables": tables, "indexes": indexes}


def as_metadata_makes_it(url: str) -> dict[str, Any]:
    engine = sa.create_engine(url)
    schema.metadata.create_all(engine)
    made = structure(engine)
    engine.dispose()
    return made


def test_a_new_database_is_what_the_metadata_describes(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'new.sqlite'}")
    assert migrations.upgrade(engine)
    assert migrations.current(engine) == migrations.head()
    assert structure(engine) == as_metadata_makes_it(f"sqlite:///{tmp_path / 'metadata.sqlite'}")
    assert not migrations.upgrade(engine)  # up to date: only read


def test_processes_that_start_together_migrate_one_at_a_time(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'race.sqlite'}"
    engines = [sa.create_engine(url, connect_args={"timeout": 30}) for _ in range(4)]
    failures: list[BaseException] = []

    def start(engine: sa.Engine) -> None:
        try:
            schema.create_all(engine)
        except BaseException as error:  # reported below
            failures.append(error)

    threads = [threading.Thread(target=start, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert migrations.current(engines[0]) == migrations.head()


def raw_labels(database: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(database) as conn:
        return conn.execute("SELECT * FROM label ORDER BY label_id").fetchall()


@pytest.mark.parametrize("home", ["before-owners", "before-alembic"])
def test_an_old_home_is_upgraded_with_every_label_intact(home: str, tmp_path: Path) -> None:
    shutil.copytree(HOMES / home, tmp_path / "home")
    database = tmp_path / "home" / "alvo.sqlite"
    before = raw_labels(database)
    assert len(before) == 9

    settings = Settings(home=tmp_path / "home", demo_archive_size=0)
    campaigns = Campaigns(settings)  # opening the store migrates
    engine = campaigns.engine
    assert migrations.current(engine) == migrations.head()
    assert structure(engine) == as_metadata_makes_it(f"sqlite:///{tmp_path / 'metadata.sqlite'}")
    # every column the label had before holds what it held (later ones come null)
    assert [row[: len(before[0])] for row in raw_labels(database)] == before
    assert {row[len(before[0]) :] for row in raw_labels(database)} == {(None, None)}

    campaign = campaigns.require("be-stars")
    assert campaigns.pool_verdicts(campaign) == {0: "single-peak", 2: "not-sure", 3: "bad"}
    (conflict,) = campaigns.conflicts(campaign)
    assert conflict["verdicts"] == {"ana": "double-peak", "ben": "absorption"}
    assert campaign.target.name == "lamost-pool"
    source = Datasets(settings).require("ondrejov-src")
    assert Datasets(settings).source_labels(source) == {
        0: "single-peak",
        1: "double-peak",
        2: "absorption",
    }
    owned = home != "before-owners"
    assert (campaign.owner, campaign.oracles) == (("ana", ("ben",)) if owned else (None, ()))
    assert source.owner == ("ana" if owned else None)


# --- PostgreSQL ---------------------------------------------------------------------------------


@pytest.mark.peers
def test_postgresql_new_and_old_databases_end_as_the_metadata_describes(postgres) -> None:  # noqa: F811
    reference = as_metadata_makes_it(postgres.create_database("migrate_reference"))
    new = sa.create_engine(postgres.create_database("migrate_new"))
    assert migrations.upgrade(new)
    assert structure(new) == reference

    # a database as the first release left it: the tables of 0001, no version table, labels
    old = sa.create_engine(postgres.create_database("migrate_old"))
    migrations.upgrade(old, "0001")
    with old.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE {migrations.VERSION_TABLE}")
        conn.exec_driver_sql("INSERT INTO dataset (name) VALUES ('pool')")
        conn.exec_driver_sql("INSERT INTO campaign (name) VALUES ('be')")
        conn.exec_driver_sql("INSERT INTO spectrum (dataset_id, row_index) VALUES (1, 0), (1, 1)")
        conn.exec_driver_sql(
            "INSERT INTO label (spectrum_id, campaign_id, label, oracle_user) "
            "VALUES (1, 1, 'single-peak', 'ana'), (2, 1, 'bad', 'ben')"
        )
    assert migrations.upgrade(old)
    assert structure(old) == reference
    with old.connect() as conn:
        labels = conn.execute(sa.select(schema.label.c.label).order_by("label_id")).scalars()
        assert list(labels) == ["single-peak", "bad"]
    for engine in (new, old):
        engine.dispose()
