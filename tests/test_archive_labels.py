"""The demo archive publishes its source labels (only those) beside its SSA service."""

from __future__ import annotations

import csv
import io

import pytest
from starlette.testclient import TestClient

from service.app import create_app
from service.settings import Settings


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from service.archive.generate import ensure_demo_archive

    home = tmp_path_factory.mktemp("labels-home")
    ensure_demo_archive(home, 40)
    return TestClient(create_app(Settings(home=home, demo_archive_size=0)))


def test_source_labels_are_a_csv_of_verdicts(client):
    from service.archive.catalogue import load_catalogue

    response = client.get("/archive/ondrejov/labels.csv")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    catalogue = load_catalogue(client.app.state.settings.home, "ondrejov")
    assert [r["pubdid"] for r in rows] == list(catalogue["pubdid"])
    assert {r["label"] for r in rows} <= {
        "single-peak", "double-peak", "absorption", "not-sure", "bad"
    }  # fmt: skip


def test_pool_truth_is_not_published(client):
    response = client.get("/archive/lamost/labels.csv")
    assert response.status_code == 404 and "oracle" in response.text
