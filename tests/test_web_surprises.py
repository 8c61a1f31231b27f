"""The oracle page's surprises view, relevance answers and "more like this" (issue 22),
server side: the batch document's ``ROLE=surprise`` and ``ROLE=similar`` rows, the
interesting/boring answers kept apart from the class verdicts, and their undo."""

from __future__ import annotations

import numpy as np
import pytest
from starlette.testclient import TestClient

from service.app import create_app
from service.learn.similar import SimilarityIndex
from service.store.campaigns import Campaigns
from service.store.predictions import similarity_index_file
from tests.surprise_world import add_surprises
from tests.web_world import build_world

ANA = {"X-Forwarded-User": "ana"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    built = build_world(tmp_path_factory.mktemp("surprises-home"), port=8000)
    return built, add_surprises(built)


@pytest.fixture
def client(world):
    settings = world[0].settings.__class__(**{**world[0].settings.__dict__, "auth": "header"})
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_the_surprises_view_lists_the_ranked_surprises_with_the_relevance_keys(client, world):
    _, ranked = world
    document = client.get("/campaigns/be/batch?ROLE=surprise", headers=ANA).json()
    rows = document["rows"]
    assert [r["id"] for r in rows] == ranked  # the iterate job's order, not entropy's
    assert [r["surprise_rank"] for r in rows] == list(range(1, len(ranked) + 1))
    assert {r["role"] for r in rows} == {"surprise"}
    assert all(r["reason"].startswith("surprise #") for r in rows)
    assert rows[0]["surprise"] == pytest.approx(0.79) and rows[0]["adapted"]
    assert document["relevance_keys"] == {"i": "interesting", "b": "boring"}
    assert not set(document["relevance_keys"]) & set(document["keys"])  # no key twice
    limited = client.get("/campaigns/be/batch?ROLE=surprise&LIMIT=5", headers=ANA).json()
    assert [r["id"] for r in limited["rows"]] == ranked[:5]


def test_interesting_is_stored_apart_from_verdicts_and_can_be_undone(client, world):
    built, ranked = world
    campaigns = Campaigns(built.settings)
    campaign = campaigns.require("be")
    before = campaigns.training_set(campaign)
    verdicts = campaigns.labels(campaign)
    payload = {"source": "page", "labels": [{"spectrum_id": ranked[0], "label": "interesting",
                                             "iteration": 0}]}  # fmt: skip
    reply = client.post("/campaigns/be/labels", json=payload, headers=ANA).json()
    assert reply["stored"] == 1
    row = client.get("/campaigns/be/batch?ROLE=surprise&LIMIT=1", headers=ANA).json()["rows"][0]
    assert (row["relevance"], row["relevances"]) == ("interesting", {"ana": "interesting"})
    assert row["mine"] is None
    assert campaigns.labels(campaign) == verdicts  # no class verdict came with it
    for was, now in zip(before, campaigns.training_set(campaign), strict=True):
        np.testing.assert_array_equal(was, now)
    exported = client.get("/campaigns/be/labels?FORMAT=json").json()["labels"]
    assert "interesting" not in {x["label"] for x in exported}
    undone = client.post(
        "/campaigns/be/labels/undo", json={"spectrum_id": ranked[0], "relevance": True},
        headers=ANA,
    ).json()  # fmt: skip
    assert undone["label"] is None
    assert campaigns.relevance_per_user(campaign) == []


def test_more_like_this_rows_are_the_indexed_neighbours_with_role_similar(client, world):
    built, _ = world
    pubdid = client.get("/campaigns/be/batch?ROLE=surprise&LIMIT=1").json()["rows"][0]["pubdid"]
    document = client.get(f"/campaigns/be/batch?ROLE=similar&OF={pubdid}&K=7").json()
    rows = document["rows"]
    assert len(rows) == 7 and {r["role"] for r in rows} == {"similar"}
    assert all(r["like"] == pubdid and r["adapted"] and r["spectrum"] for r in rows)
    campaigns = Campaigns(built.settings)
    campaign = campaigns.require("be")
    path = similarity_index_file(built.settings.home, campaign.campaign_id, 0)
    index = SimilarityIndex.load(path)
    row = int(pubdid.rsplit("?", 1)[1])
    nearest, _ = index.neighbours(index.vector(row), 7, exclude=row)
    ids = campaigns.spectrum_ids(campaign.target)
    assert [r["id"] for r in rows] == [int(ids[r]) for r in nearest]  # nearest first
    missing = client.get("/campaigns/be/batch?ROLE=similar")
    assert missing.status_code == 400 and "OF=" in missing.json()["error"]
    too_many = client.get(f"/campaigns/be/batch?ROLE=similar&OF={pubdid}&K=1000")
    assert too_many.status_code == 400
    unknown = client.get("/campaigns/be/batch?ROLE=similar&OF=ivo://nowhere?1")
    assert unknown.status_code == 404
