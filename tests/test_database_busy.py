"""A write that meets the database locked by a long one is answered 503, never 500.

Recording a 4.1 M-row pool holds SQLite's write lock for ~50 s; a label sent then
waits the busy timeout (the URL's ``timeout``, 30 s unless given) and must come
back as a retryable refusal the labelling page queues, with nothing half-written.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from starlette.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from service.store.datasets import Datasets

VERDICT = {"labels": [{"pubdid": "ivo://t/pool?0", "label": "single-peak"}]}


@pytest.fixture
def home(tmp_path: Path) -> Iterator[tuple[TestClient, Path]]:
    database = tmp_path / "alvo.sqlite"
    settings = Settings(home=tmp_path, database_url=f"sqlite:///{database}?timeout=0.5")
    datasets = Datasets(settings)
    sets = (("src", "source", ["absorption"] * 3), ("pool", "target", [""] * 3))
    for name, domain, labels in sets:
        rows = {"pubdid": [f"ivo://t/{name}?{i}" for i in range(3)], "ra": [1.0, 2.0, 3.0]}
        datasets.append(datasets.open_or_create(name, domain), np.zeros((3, 140), np.float32),
                        rows, labels)  # fmt: skip
    with TestClient(create_app(settings)) as client:
        campaign = {"name": "be", "source": "src", "target": "pool"}
        assert client.post("/campaigns", json=campaign).status_code == 201
        yield client, database


@contextlib.contextmanager
def write_lock(database: Path) -> Iterator[None]:
    """Hold SQLite's write lock from another connection, as a long ``record`` does."""
    other = sqlite3.connect(database, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_a_label_during_a_long_write_is_503_and_can_be_sent_again(home) -> None:
    client, database = home
    with write_lock(database):
        busy = client.post("/campaigns/be/labels", json=VERDICT)
    assert busy.status_code == 503, busy.text
    assert busy.json()["reason"] == "DATABASE_BUSY"
    assert int(busy.headers["retry-after"]) > 0
    assert client.get("/campaigns/be/labels").json()["labels"] == []  # nothing half-written
    again = client.post("/campaigns/be/labels", json=VERDICT)
    assert again.status_code == 200, again.text
    assert len(client.get("/campaigns/be/labels").json()["labels"]) == 1


def test_a_job_created_during_a_long_write_is_503(home) -> None:
    client, database = home
    with write_lock(database):
        busy = client.post("/iterate", data={"CAMPAIGN": "be"})
    assert busy.status_code == 503, busy.text
    assert busy.text.startswith("DATABASE_BUSY")
    assert int(busy.headers["retry-after"]) > 0
    listed = client.get("/iterate")
    assert listed.status_code == 200 and "uws:jobref" not in listed.text  # no half-made job
