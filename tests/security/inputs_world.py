"""A whole alvo app on a tiny fixture archive, for the hostile-input tests and the fuzzing.

Two collections of four synthetic spectra (SSA, DataLink, TAP all answer),
two alvo datasets (``src`` labelled, ``pool`` not), one campaign ``be`` and the
``model`` row of MODEL_ID 1 (no file behind it: a classify job of it fails when run):
enough for every parameter parser to reach its real work, small enough to
build in a second.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from starlette.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from service.store.datasets import Datasets
from service.store.models import record_model
from service.vocabulary import CLASSES
from tests.vo_fixture import make_archive

#: What an answer must never carry, whatever was asked.
TRACEBACK_MARKS = ("Traceback (most recent call last)", 'File "')


def build_home(home: Path) -> Settings:
    make_archive(home, n=4)
    settings = Settings(home=home, demo_archive_size=0, workers=1, simbad="off")
    datasets = Datasets(settings)
    for name, domain, labels in (("src", "source", ["absorption"] * 3), ("pool", "target", [])):
        dataset = datasets.open_or_create(name, domain)
        rows = {"pubdid": [f"ivo://t/{name}?{i}" for i in range(3)], "ra": [1.0, 2.0, 3.0]}
        datasets.append(dataset, np.zeros((3, 140), np.float32), rows, labels or ["", "", ""])
    assert record_model(datasets.engine, "models/absent.keras", "none", CLASSES, "{}") == 1
    return settings


@contextlib.contextmanager
def served(settings: Settings) -> Iterator[TestClient]:
    """The app with its lifespan running; server errors come back as 500s, not exceptions."""
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        created = client.post("/campaigns", json={"name": "be", "source": "src", "target": "pool"})
        assert created.status_code == 201, created.text
        yield client


def assert_clean(response) -> None:  # type: ignore[no-untyped-def]
    """No server error, and nothing of the service's insides in the answer."""
    assert response.status_code < 500, (response.status_code, response.text[:500])
    for mark in TRACEBACK_MARKS:
        assert mark not in response.text, response.text[:500]


@contextlib.contextmanager
def served_bare(settings: Settings) -> Iterator[TestClient]:
    """:func:`served` without its campaign (whose creation ``auth=header`` would refuse)."""
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client
