"""The campaign API the labelling pages and SAMP listener use."""

from __future__ import annotations

import io

import numpy as np
import pytest
from astropy.io.votable import parse_single_table
from astropy.table import Table
from starlette.testclient import TestClient

from service.app import create_app
from service.datasets import Datasets
from service.settings import Settings
from tests.peers.stilts import votlint


@pytest.fixture
def client(tmp_path):
    settings = Settings(home=tmp_path, auth="header")
    datasets = Datasets(settings)
    for name, domain, labels in (("src", "source", ["absorption"] * 3), ("pool", "target", [])):
        dataset = datasets.open_or_create(name, domain)
        rows = {"pubdid": [f"ivo://t/{name}?{i}" for i in range(3)], "ra": [1.0, 2.0, 3.0]}
        datasets.append(dataset, np.zeros((3, 140), np.float32), rows, labels or ["", "", ""])
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _create(client):
    response = client.post("/campaigns", json={"name": "be", "source": "src", "target": "pool"})
    assert response.status_code == 201, response.text


def test_create_and_summarise(client):
    _create(client)
    assert client.get("/campaigns").json() == {"campaigns": ["be"]}
    summary = client.get("/campaigns/be").json()
    assert summary["source"] == "src" and summary["target"] == "pool"
    assert summary["batch_size"] == 100 and summary["iterations"] == []


def test_bad_requests_are_4xx_with_a_reason(client):
    assert client.get("/campaigns/nope").status_code == 404
    missing = client.post("/campaigns", json={"name": "x", "source": "src", "target": "none"})
    assert missing.status_code == 404 and "ingest it first" in missing.json()["error"]
    bad_name = client.post("/campaigns", json={"name": "../x", "source": "src", "target": "pool"})
    assert bad_name.status_code == 400
    no_pool = client.post("/campaigns", data={"name": "x", "source": "src"})
    assert no_pool.status_code == 400 and "source and target" in no_pool.json()["error"]
    page = client.get("/oracle/nope")
    assert page.status_code == 404 and "No campaign named nope" in page.text
    _create(client)
    again = client.post("/campaigns", json={"name": "be", "source": "src", "target": "pool"})
    assert again.status_code == 400 and "exists" in again.json()["error"]
    verdict = {"labels": [{"pubdid": "ivo://t/pool?0", "label": "emission"}]}
    assert client.post("/campaigns/be/labels", json=verdict).status_code == 400


def test_labels_are_attributed_and_conflicts_reported(client):
    _create(client)
    ana = {"X-Forwarded-User": "ana"}
    ben = {"X-Forwarded-User": "ben"}
    first = client.post(
        "/campaigns/be/labels",
        json={"source": "page", "labels": [{"pubdid": "ivo://t/pool?1", "label": "single-peak"}]},
        headers=ana,
    ).json()
    assert first == {"stored": 1, "unknown": [], "conflicts": []}
    second = client.post(
        "/campaigns/be/labels",
        json={"labels": [{"pubdid": "ivo://t/pool?1", "label": "absorption"}]},
        headers=ben,
    ).json()
    assert second["conflicts"][0]["verdicts"] == {"ana": "single-peak", "ben": "absorption"}
    exported = client.get("/campaigns/be/labels?FORMAT=json").json()["labels"]
    assert [(x["oracle_user"], x["label"]) for x in exported] == [
        ("ana", "single-peak"),
        ("ben", "absorption"),
    ]


def test_votable_round_trip(client):
    _create(client)
    table = Table({"pubdid": ["ivo://t/pool?0", "ivo://t/pool?2"], "label": ["bad", "double-peak"]})
    body = io.BytesIO()
    table.write(body, format="votable")
    stored = client.post(
        "/campaigns/be/labels",
        files={"file": ("labels.vot", body.getvalue(), "application/x-votable+xml")},
    ).json()
    assert stored["stored"] == 2
    exported = client.get("/campaigns/be/labels?FORMAT=votable")
    assert exported.headers["content-type"].startswith("application/x-votable+xml")
    assert votlint(exported.content) == []
    back = parse_single_table(io.BytesIO(exported.content)).to_table()
    assert list(back["label"]) == ["bad", "double-peak"]
    csv_text = client.get("/campaigns/be/labels?FORMAT=csv").text
    assert csv_text.splitlines()[0].startswith("pubdid,")


def test_pages_of_other_sites_cannot_write(client):
    """A form on another site posting to the local service (CSRF) is refused, and stores nothing."""
    _create(client)
    verdict = {"labels": [{"pubdid": "ivo://t/pool?0", "label": "single-peak"}]}
    evil = {"Origin": "http://evil.example"}
    refused = client.post("/campaigns/be/labels", json=verdict, headers=evil)
    assert refused.status_code == 403 and "evil.example" in refused.text
    assert client.get("/campaigns/be/labels").json()["labels"] == []
    assert client.post("/ingest", data={"DATASET": "x"}, headers=evil).status_code == 403
    assert client.get("/ingest").text.count("<uws:jobref") == 0
    # its own pages (same origin) and VO clients (no Origin) go on as before
    own = client.post("/campaigns/be/labels", json=verdict, headers={"Origin": "http://testserver"})
    assert own.status_code == 200 and own.json()["stored"] == 1
    assert client.get("/campaigns/be/labels").json()["labels"] != []
