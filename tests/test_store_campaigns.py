"""Datasets and campaigns over the result tables: labels, conflicts, training sets."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from service.reasons import AlvoError, Reason
from service.settings import Settings
from service.store.campaigns import Campaigns, Verdict
from service.store.datasets import Datasets
from tests.peers.postgres import postgres  # noqa: F401  (the session fixture)


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request, tmp_path):
    """Every test on the embedded SQLite and on a real PostgreSQL."""
    if request.param == "sqlite":
        return Settings(home=tmp_path)
    cluster = request.getfixturevalue("postgres")
    url = cluster.create_database(f"campaigns_{uuid.uuid4().hex[:10]}")
    return Settings(home=tmp_path, database_url=url)


def _fill(datasets, name, domain, n, labels=(), start=0):
    dataset = datasets.open_or_create(name, domain)
    features = np.arange(n * 140, dtype=np.float32).reshape(n, 140)
    numbers = range(start, start + n)
    rows = {"pubdid": [f"ivo://t/{name}?{i}" for i in numbers], "ra": [float(i) for i in numbers]}
    datasets.append(dataset, features, rows, labels=list(labels) or [""] * n)
    return dataset


def test_dataset_rows_and_features_stay_aligned(settings):
    datasets = Datasets(settings)
    dataset = _fill(datasets, "pool", "target", 4)
    _fill(datasets, "pool", "target", 2, start=4)  # a second ingest appends new spectra
    columns = datasets.spectra(datasets.require("pool"), ["row_index", "pubdid"])
    assert list(columns["row_index"]) == list(range(6))
    assert dataset.features.array().shape == (6, 140)
    assert datasets.require("pool").name == "pool"
    with pytest.raises(AlvoError, match="target dataset"):
        datasets.open_or_create("pool", "source")
    with pytest.raises(AlvoError, match="ingest it first") as unknown:
        datasets.require("nope")
    assert unknown.value.reason is Reason.UNKNOWN_DATASET_NAME


def test_training_set_joins_source_labels_and_oracle_classes(settings):
    datasets = Datasets(settings)
    _fill(datasets, "src", "source", 3, ["single-peak", "absorption", "not-sure"])
    _fill(datasets, "pool", "target", 5)
    campaigns = Campaigns(settings)
    campaign = campaigns.create("c1", "src", "pool", batch_size=2)
    outcome = campaigns.add_labels(
        campaign,
        [
            Verdict("double-peak", pubdid="ivo://t/pool?3", user="ana"),
            Verdict("bad", pubdid="ivo://t/pool?1", user="ana"),
            Verdict("absorption", pubdid="ivo://t/elsewhere?1", user="ana"),
        ],
    )
    assert outcome.stored == 2 and outcome.unknown == ["ivo://t/elsewhere?1"]
    features, y, target_rows = campaigns.training_set(campaign)
    # source: single-peak (row 0) and absorption (row 1); not-sure is not trained on
    # pool: double-peak at row 3; 'bad' at row 1 is kept but not trained on
    assert list(y) == [0, 2, 1] and list(target_rows) == [3]
    np.testing.assert_array_equal(features[2], campaign.target.features.array()[3])
    assert campaigns.pool_verdicts(campaign) == {1: "bad", 3: "double-peak"}


def test_disagreeing_users_are_a_conflict_not_an_overwrite(settings):
    datasets = Datasets(settings)
    _fill(datasets, "src", "source", 1, ["absorption"])
    _fill(datasets, "pool", "target", 3)
    campaigns = Campaigns(settings)
    campaign = campaigns.create("c2", "src", "pool")
    campaigns.add_labels(campaign, [Verdict("single-peak", pubdid="ivo://t/pool?0", user="ana")])
    outcome = campaigns.add_labels(
        campaign, [Verdict("absorption", pubdid="ivo://t/pool?0", user="ben")]
    )
    assert outcome.conflicts and outcome.conflicts[0]["verdicts"] == {
        "ana": "single-peak",
        "ben": "absorption",
    }
    assert campaigns.pool_verdicts(campaign) == {}  # not trained on while disputed
    # ...but not asked again either: a dispute is settled on the page
    assert campaigns.judged_pool_rows(campaign).tolist() == [0]
    campaigns.add_labels(campaign, [Verdict("absorption", pubdid="ivo://t/pool?0", user="ana")])
    assert campaigns.conflicts(campaign) == []  # ana changed her mind: agreement
    assert campaigns.pool_verdicts(campaign) == {0: "absorption"}


def test_unknown_verdict_is_refused(settings):
    datasets = Datasets(settings)
    _fill(datasets, "src", "source", 1, ["absorption"])
    _fill(datasets, "pool", "target", 1)
    campaigns = Campaigns(settings)
    campaign = campaigns.create("c3", "src", "pool")
    with pytest.raises(AlvoError, match="not one of"):
        campaigns.add_labels(campaign, [Verdict("emission", pubdid="ivo://t/pool?0")])


def test_relevance_answers_are_kept_apart_from_the_training_verdicts(settings):
    """interesting/boring (issue 22) are stored in their own table: the class verdicts,
    the training set and the pool the oracle is asked about do not see them."""
    datasets = Datasets(settings)
    _fill(datasets, "src", "source", 2, ["single-peak", "absorption"])
    _fill(datasets, "pool", "target", 5)
    campaigns = Campaigns(settings)
    campaign = campaigns.create("c1", "src", "pool", batch_size=2)
    campaigns.add_labels(campaign, [Verdict("double-peak", pubdid="ivo://t/pool?3", user="ana")])
    before = campaigns.training_set(campaign)
    outcome = campaigns.add_labels(
        campaign,
        [
            Verdict("interesting", pubdid="ivo://t/pool?3", user="ana", iteration=0),
            Verdict("boring", pubdid="ivo://t/pool?1", user="ana", iteration=0),
            Verdict("interesting", pubdid="ivo://t/pool?1", user="ben", iteration=0),
            Verdict("boring", pubdid="ivo://t/pool?1", user="ana"),  # the same again: no row
        ],
    )
    assert (outcome.stored, outcome.unchanged, outcome.unknown) == (3, 1, [])
    after = campaigns.training_set(campaign)
    for was, now in zip(before, after, strict=True):
        np.testing.assert_array_equal(was, now)
    assert campaigns.labels(campaign) == {campaigns.spectrum_ids(campaign.target)[3]: "double-peak"}
    assert list(campaigns.judged_pool_rows(campaign)) == [3]  # still asked about by class
    assert campaigns.conflicts(campaign) == []
    rows, relevance = campaigns.pool_relevance(campaign)
    assert list(rows) == [1, 3] and list(relevance) == [0.5, 1.0]  # ana boring, ben interesting
    sid = int(campaigns.spectrum_ids(campaign.target)[1])
    assert campaigns.undo_verdict(campaign, sid, "ana", relevance=True) is None
    assert sorted(campaigns.relevance_per_user(campaign))[0][2] == "interesting"  # ben's
    with pytest.raises(AlvoError, match="interesting, boring"):
        campaigns.add_labels(campaign, [Verdict("weird", pubdid="ivo://t/pool?1")])
