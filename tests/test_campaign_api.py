"""The campaign API the labelling pages and SAMP listener use."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from astropy.io.votable import parse_single_table
from astropy.table import Table
from starlette.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from service.store.datasets import Datasets
from tests.votable_check import votable_problems


@pytest.fixture
def client(tmp_path):
    settings = Settings(home=tmp_path, auth="header")
    datasets = Datasets(settings)
    for name, domain, labels in (("src", "source", ["absorption"] * 3), ("pool", "target", [])):
        dataset = datasets.open_or_create(name, domain)
        rows = {"pubdid": [f"ivo://t/{name}?{i}" for i in range(3)], "ra": [1.0, 2.0, 3.0]}
        datasets.append(dataset, np.zeros((3, 140), np.float32), rows, labels or ["", "", ""])
    # auth=header: the proxy names the user; anonymous callers only read (tests/security)
    with TestClient(create_app(settings), headers={"X-Forwarded-User": "cara"}) as test_client:
        yield test_client


def _create(client):
    campaign = {"name": "be", "source": "src", "target": "pool", "oracles": ["ana", "ben"]}
    response = client.post("/campaigns", json=campaign)
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
    assert no_pool.status_code == 400 and "target: required" in no_pool.json()["error"]
    page = client.get("/oracle/nope")
    assert page.status_code == 404 and "No campaign named nope" in page.text
    _create(client)
    again = client.post("/campaigns", json={"name": "be", "source": "src", "target": "pool"})
    assert again.status_code == 409 and "exists" in again.json()["error"]
    assert again.json()["reason"] == "NAME_IN_USE"
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
    assert first == {"stored": 1, "unchanged": 0, "noted": 0, "unknown": [], "conflicts": []}
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
    assert votable_problems(exported.content) == []
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
    own_page = {"Origin": "http://127.0.0.1:8000"}  # the configured service, not Host
    own = client.post("/campaigns/be/labels", json=verdict, headers=own_page)
    assert own.status_code == 200 and own.json()["stored"] == 1
    assert client.get("/campaigns/be/labels").json()["labels"] != []


def _labels_table(labels: list[str]) -> bytes:
    table = Table({"pubdid": [f"ivo://t/pool?{i}" for i in range(len(labels))], "label": labels})
    body = io.BytesIO()
    table.write(body, format="votable")
    return body.getvalue()


def test_the_same_labels_sent_twice_are_stored_once(client):
    """Issue 15: re-sending a labelled table over SAMP doubled the labels (14 -> 28)."""
    _create(client)
    body = _labels_table(["bad", "double-peak", "absorption"])
    for expected in ((3, 0), (0, 3)):
        outcome = client.post(
            "/campaigns/be/labels", content=body, headers={"content-type": VOTABLE}
        ).json()
        assert (outcome["stored"], outcome["unchanged"]) == expected
    changed = client.post(
        "/campaigns/be/labels", json={"labels": [{"pubdid": "ivo://t/pool?0", "label": "bad"},
                                                 {"pubdid": "ivo://t/pool?1", "label": "bad"}]},
    ).json()  # fmt: skip
    assert (changed["stored"], changed["unchanged"]) == (1, 1)  # a changed verdict is kept
    exported = client.get("/campaigns/be/labels").json()["labels"]
    assert [x["label"] for x in exported] == ["bad", "double-peak", "absorption", "bad"]


def test_labels_say_how_they_came(client):
    """Labels from a CSV file were stored with source 'votable'."""
    _create(client)
    client.post("/campaigns/be/labels", content=b"pubdid,label\nivo://t/pool?0,bad\n",
                headers={"content-type": "text/csv"})  # fmt: skip
    client.post("/campaigns/be/labels", content=_labels_table(["", "bad"]),
                headers={"content-type": VOTABLE})  # fmt: skip
    exported = client.get("/campaigns/be/labels").json()["labels"]
    assert [x["source"] for x in exported] == ["csv", "votable"]


def test_labels_export_follows_the_accept_header(client):
    _create(client)
    client.post("/campaigns/be/labels", content=_labels_table(["bad"]),
                headers={"content-type": VOTABLE})  # fmt: skip
    response = client.get("/campaigns/be/labels", headers={"accept": VOTABLE})
    assert response.headers["content-type"].startswith(VOTABLE)
    assert votable_problems(response.content) == []
    assert client.get("/campaigns/be/labels").headers["content-type"] == "application/json"


VOTABLE = "application/x-votable+xml"


def test_a_comment_and_a_flag_travel_with_the_label(client):
    """Issue 23: no place to write a comment or flag a spectrum; now each verdict carries
    both, in every way labels come in (JSON, CSV, VOTable) and go out (exports, TAP)."""
    _create(client)
    note = "emission core inside the absorption: single-peak by convention"
    sent = {"source": "page", "labels": [
        {"pubdid": "ivo://t/pool?0", "label": "single-peak", "comment": note, "flag": True},
        {"pubdid": "ivo://t/pool?1", "label": "absorption"}]}  # fmt: skip
    assert client.post("/campaigns/be/labels", json=sent).json()["stored"] == 2
    # the same verdict with another comment is a note on it, not a second verdict
    again = {"labels": [{"pubdid": "ivo://t/pool?1", "label": "absorption", "comment": "shell?"}]}
    outcome = client.post("/campaigns/be/labels", json=again).json()
    assert (outcome["stored"], outcome["noted"], outcome["unchanged"]) == (0, 1, 0)
    # a verdict that says nothing of them keeps the user's comment and flag
    changed = {"labels": [{"pubdid": "ivo://t/pool?0", "label": "double-peak"}]}
    assert client.post("/campaigns/be/labels", json=changed).json()["stored"] == 1
    exported = client.get("/campaigns/be/labels?FORMAT=json").json()["labels"]
    assert [(x["label"], x["comment"], x["flag"]) for x in exported] == [
        ("single-peak", note, True),
        ("absorption", "shell?", False),
        ("double-peak", note, True),
    ]
    votable = client.get("/campaigns/be/labels?FORMAT=votable").content
    assert votable_problems(votable) == []
    back = parse_single_table(io.BytesIO(votable))
    assert back.get_field_by_id("comment").ucd == "meta.note"
    assert list(back.to_table()["flag"]) == [True, False, True]
    csv_text = client.get("/campaigns/be/labels?FORMAT=csv").text
    assert csv_text.splitlines()[0].endswith(",comment,flag") and note in csv_text
    # a CSV (or VOTable, or SAMP) table with comment and flag columns
    upload = b'pubdid,label,comment,flag\nivo://t/pool?2,bad,"cosmic ray, 6571 A",yes\n'
    client.post("/campaigns/be/labels", content=upload, headers={"content-type": "text/csv"})
    assert (
        client.get("/campaigns/be/labels").json()["labels"][-1]["comment"] == "cosmic ray, 6571 A"
    )
    # queryable over TAP, as the schema describes them
    tap = client.get("/tap/sync", params={"REQUEST": "doQuery", "LANG": "ADQL", "FORMAT": "csv",
        "QUERY": "SELECT comment FROM alvo.label WHERE flag = 1 ORDER BY label_id"})  # fmt: skip
    found = [row["comment"] for row in csv.DictReader(io.StringIO(tap.text))]
    assert found == [note, note, "cosmic ray, 6571 A"]
    described = client.get("/tap/sync", params={"REQUEST": "doQuery", "LANG": "ADQL",
        "FORMAT": "csv", "QUERY": "SELECT column_name, ucd, description FROM TAP_SCHEMA.columns "
        "WHERE table_name = 'alvo.label' AND column_name IN ('comment', 'flag')"})  # fmt: skip
    ucds = {r["column_name"]: r["ucd"] for r in csv.DictReader(io.StringIO(described.text))}
    assert ucds == {"comment": "meta.note", "flag": "meta.code.qual"}


def test_a_votable_from_topcat_brings_comments_and_flags(client):
    """TOPCAT (a file upload or a table sent back over SAMP) writes a boolean flag column."""
    _create(client)
    table = Table({"pubdid": ["ivo://t/pool?0", "ivo://t/pool?1"], "label": ["bad", "not-sure"],
                   "comment": ["sky residual", ""], "flag": [False, True]})  # fmt: skip
    body = io.BytesIO()
    table.write(body, format="votable")
    client.post("/campaigns/be/labels", content=body.getvalue(), headers={"content-type": VOTABLE})
    exported = client.get("/campaigns/be/labels").json()["labels"]
    assert [(x["comment"], x["flag"], x["source"]) for x in exported] == [
        ("sky residual", False, "votable"),
        (None, True, "votable"),
    ]


def test_a_comment_too_long_is_refused_with_its_reason(client):
    _create(client)
    long = {"labels": [{"pubdid": "ivo://t/pool?0", "label": "bad", "comment": "x" * 1001}]}
    refused = client.post("/campaigns/be/labels", json=long)
    assert refused.status_code == 413 and refused.json()["reason"] == "COMMENT_TOO_LONG"
    flag = {"labels": [{"pubdid": "ivo://t/pool?0", "label": "bad", "flag": "maybe"}]}
    assert client.post("/campaigns/be/labels", json=flag).status_code == 400
    assert client.get("/campaigns/be/labels").json()["labels"] == []
