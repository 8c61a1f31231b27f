"""The learning jobs (iterate, train, classify) through the live service's UWS job lists.

The datasets are filled directly (features made from simple H-alpha profiles),
so this tests the job: training on the source set plus the oracle's labels,
classifying the pool, choosing the query batch and precision sample, recording
predictions and metrics, and writing lint-clean VOTables.
"""

from __future__ import annotations

import io
import json

import httpx
import numpy as np
import pytest
import sqlalchemy as sa
from astropy.io.votable import parse_single_table

from service.adapt import AdaptConfig
from service.jobs.eta import RATES_FILE
from service.learn.shift import recall_target_candidates
from service.net.uws_client import follow, submit
from service.settings import Settings
from service.store import schema
from service.store.datasets import Datasets
from service.store.engine import engine_for
from tests.vo_fixture import free_port, live_server
from tests.votable_check import votable_problems

CLASSES = ("single-peak", "double-peak", "absorption")


def profiles(kinds: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """z-scored 140-pixel H-alpha profiles of the given class indices."""
    grid = AdaptConfig().grid()
    x = (grid - 6564.6)[None, :]
    strength = rng.uniform(0.5, 2.0, (len(kinds), 1))
    single = 1 + strength * np.exp(-0.5 * (x / 3.0) ** 2)
    double = 1 + strength * (
        np.exp(-0.5 * ((x - 4) / 2.0) ** 2) + np.exp(-0.5 * ((x + 4) / 2.0) ** 2)
    )
    absorption = 1 - 0.4 * strength / 2 * np.exp(-0.5 * (x / 6.0) ** 2)
    flux = np.choose(kinds[:, None], [single, double, absorption])
    flux = flux + rng.normal(0, 0.05, flux.shape)
    return ((flux - flux.mean(1, keepdims=True)) / flux.std(1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    home = tmp_path_factory.mktemp("iterate-home")
    port = free_port()
    # SIMBAD off: the outcome must not depend on whether this machine has a network
    settings = Settings(home=home, port=port, demo_archive_size=0, simbad="off")
    rng = np.random.default_rng(3)
    datasets = Datasets(settings)
    source_kinds = rng.choice(3, 240, p=[0.4, 0.15, 0.45])
    pool_kinds = rng.choice(3, 400, p=[0.05, 0.03, 0.92])
    for name, domain, kinds, labels in (
        ("src", "source", source_kinds, [CLASSES[k] for k in source_kinds]),
        ("pool", "target", pool_kinds, [""] * len(pool_kinds)),
    ):
        dataset = datasets.open_or_create(name, domain)
        rows = {
            "pubdid": [f"ivo://t/{name}?{i}" for i in range(len(kinds))],
            "ra": rng.uniform(0, 360, len(kinds)).tolist(),
            "dec": rng.uniform(-10, 60, len(kinds)).tolist(),
            "datalink_url": [f"http://127.0.0.1:{port}/datalink/x?ID=ivo://t/{name}?{i}"
                             for i in range(len(kinds))],
        }  # fmt: skip
        datasets.append(dataset, profiles(kinds, rng), rows, labels)
    from service.app import create_app

    with live_server(create_app(settings), port, lifespan="on") as url:
        yield url, settings, pool_kinds


def iterate(base: str, **parameters: str):
    params = [("CAMPAIGN", "be"), ("MODEL", "small"), ("EPOCHS", "4"), ("BATCH", "20")]
    params += [(k.upper(), v) for k, v in parameters.items()]
    status = follow(submit(f"{base}/iterate", params), lambda s: None)
    assert status.phase == "COMPLETED", status.error
    return status


def table(url: str):
    body = httpx.get(url).content
    assert votable_problems(body) == []  # in process: never skipped for want of STILTS
    return parse_single_table(io.BytesIO(body)).to_table()


def test_two_iterations_with_oracle_labels_in_between(service):
    base, settings, pool_kinds = service
    # EXPLOIT=0: the original's batch, all by entropy (the default gives half to p(emission))
    first = iterate(
        base, SOURCE="src", TARGET="pool", PRECISION_SAMPLE="10", EXPLOIT="0", PADDING="20"
    )
    query = table(first.results["query"][0])
    roles = list(query["role"])
    # the precision sample is drawn first among the candidates, so it is never empty
    assert roles.count("precision-sample") == 10
    assert roles.count("query") + roles.count("padding") == 20
    assert all(query["reason"]) and len(set(query["reason"])) == len(set(roles))
    assert all("asked for" in why for why in query["reason"][query["role"] == "padding"])
    assert set(query["predicted_class"]) <= set(CLASSES)
    assert set(query["hou_verdict"]) <= {"emission", "none"}  # one name, as over TAP
    n_query = roles.count("query")
    assert np.all(np.diff(query["entropy"][:n_query]) <= 1e-6)  # most uncertain first
    candidates = table(first.results["candidates"][0])
    assert len(candidates) >= 20

    engine = engine_for(settings.sqlalchemy_url)
    with engine.connect() as conn:
        n_predictions = conn.scalar(sa.select(sa.func.count()).select_from(schema.prediction))
        emission = conn.scalar(
            sa.select(sa.func.count()).where(schema.prediction.c.predicted_class.in_(CLASSES[:2]))
        )
        n_file = conn.scalar(sa.select(schema.prediction_file.c.n_candidates))
    assert n_predictions == len(pool_kinds)
    # issue 25: "all predicted emission", the batch's query and sample spectra included
    with_batch = roles.count("precision-sample") + roles.count("query")
    assert n_file == emission == len(candidates) and with_batch > 0

    # the oracle labels the query batch and the precision sample with the truth
    labels = [
        {"pubdid": pubdid, "label": CLASSES[pool_kinds[int(pubdid.split("?")[1])]], "iteration": 0}
        for pubdid in query["pubdid"]
    ]
    # and calls three confident candidates outside the batch absorption (a cautious
    # oracle): the network, one label each against its source set (ORACLE_WEIGHT=1
    # below), keeps calling them emission
    outside = candidates[~np.isin(candidates["pubdid"], query["pubdid"])]
    # (the most likely emission: under CANDIDATES=auto's cut the most certain candidates
    # outside the batch may be absorption stars at its edge, p(absorption) ~0.9)
    emission = np.asarray(outside["p_single_peak"]) + np.asarray(outside["p_double_peak"])
    doubted = outside["pubdid"][np.argsort(emission)[-3:]]
    labels += [{"pubdid": p, "label": "absorption", "iteration": 0} for p in doubted]
    stored = httpx.post(f"{base}/campaigns/be/labels", json={"labels": labels}).json()
    assert stored["stored"] == len(labels)

    second = iterate(
        base,
        STRATEGY="diverse-entropy",
        WARM_START="true",
        TRAIN_BATCH_SIZE="128",
        EXPLOIT="0.25",
        LABEL_SHIFT="true",
        ORACLE_WEIGHT="1",
    )
    summary = httpx.get(second.results["summary"][0]).json()
    assert summary["iteration"] == 1
    # issue 23: the job's last stage, from its results to its UWS completion, planned from
    # the first job's account against its endTime; its training as the first one took
    before = httpx.get(first.results["summary"][0]).json()["time_left"]
    account = summary["time_left"]
    assert before["finish"]["took"] is not None and account["finish"]["planned"] is not None
    assert account["train"]["planned"] == pytest.approx(before["train"]["took"], abs=1e-3)
    # issue 25: a quarter of the batch (20) by emission probability; the pool's EM priors
    assert summary["exploit"] == 5 and "5 most likely emission" in summary["why"]["query"]
    # three priors rounded to 5 decimals: their sum is 1 within 3 half-units of the last
    assert len(summary["label_shift"]) == 3
    assert sum(summary["label_shift"]) == pytest.approx(1, abs=1.5e-5)
    with engine.connect() as conn:
        provenance = json.loads(
            conn.scalar(sa.select(schema.model.c.metrics).where(schema.model.c.iteration == 1))
        )
        kept = conn.execute(
            sa.select(schema.prediction.c.role, schema.prediction.c.labelled).where(
                schema.prediction.c.iteration == 0
            )
        ).all()
        latest = conn.scalar(sa.select(sa.func.count()).where(schema.prediction.c.iteration == 1))
        files = conn.execute(sa.select(schema.prediction_file.c.n_rows)).scalars().all()
    assert provenance["warm_started"] and provenance["train"]["batch_size"] == 128
    # iteration 0 keeps only what it selected; iteration 1 every pool spectrum; files: both
    assert 20 <= len(kept) < len(pool_kinds) and all(role for role, _ in kept)
    assert latest == len(pool_kinds) and files == [len(pool_kinds)] * 2
    assert summary["simbad"] == "skipped: switched off (ALVO_SIMBAD=off)"
    assert summary["embeddings"] == "network"  # the benchmarked diverse-entropy, not 3 numbers
    assert "network embeddings" in summary["why"]["query"]
    again = table(second.results["query"][0])
    assert not set(again["pubdid"]) & set(query["pubdid"])  # labelled spectra left the pool
    metrics = table(second.results["metrics"][0])
    assert list(metrics["iteration"]) == [0, 1]
    assert list(metrics["strategy"]) == ["entropy", "diverse-entropy"]
    assert list(metrics["n_labels"]) == [0, len(labels)]  # what each model was trained on
    assert list(metrics["n_answered"]) == [len(query), 0]  # what each batch got since
    assert not np.ma.is_masked(metrics["n_candidates"][0]) and metrics["n_candidates"][0] > 0
    for timing in ("train_seconds", "classify_seconds"):  # every row, not only the latest
        assert not np.ma.getmaskarray(metrics[timing]).any()
    # row 0 holds iteration 0's own scores: its batch was labelled with the truth
    assert 0.0 <= float(metrics["error"][0]) <= 1.0 and np.ma.is_masked(metrics["error"][1])
    sample = query["role"] == "precision-sample"
    truly = np.isin(
        query["pubdid"][sample], [f"ivo://t/pool?{i}" for i in np.flatnonzero(pool_kinds < 2)]
    )
    assert metrics["precision_emission"][0] == pytest.approx(truly.mean())
    assert metrics["n_sample_judged"][0] == 10
    # iteration 0 had no labelled candidate: the stratified estimate is the sample's
    assert metrics["precision_estimate"][0] == pytest.approx(truly.mean())
    assert 0 <= metrics["churn"][1] <= 1 and np.ma.is_masked(metrics["churn"][0])
    assert summary["churn"] == pytest.approx(float(metrics["churn"][1]))
    # issue 25: the catalogue takes the oracle's verdict where it gave one
    listed = set(table(second.results["candidates"][0])["pubdid"])
    asked = {label["pubdid"] for label in labels}
    stars = {label["pubdid"] for label in labels if label["label"] in CLASSES[:2]}
    assert summary["catalogue"] == len(listed - asked) + len(stars) == metrics["n_catalogue"][1]
    assert summary["catalogue"] < len(listed)  # the doubted ones are out of it
    assert metrics["catalogue_estimate"][0] == pytest.approx(truly.mean())  # none labelled yet
    assert set(summary["stopping"]) == {"stop", "reason", "evidence"}
    # issue 25: n_answered is a TAP column; precision_absorption (always empty) is gone
    tap = httpx.get(
        f"{base}/tap/sync",
        params={
            "LANG": "ADQL",
            "QUERY": "SELECT number, n_answered, churn, n_flipped, stop FROM alvo.iteration "
            "ORDER BY number",
        },
    )
    assert tap.status_code == 200, tap.text
    over_tap = parse_single_table(io.BytesIO(tap.content)).to_table()
    assert list(over_tap["n_answered"]) == [len(query), 0]
    assert int(over_tap["n_flipped"][1]) >= 0
    assert "precision_absorption" not in schema.iteration.c
    # the page's overview reads the same counts (issue 14: "oracle labels 0" after 100)
    campaign = httpx.get(f"{base}/campaigns/be").json()
    overview = campaign["iterations"]
    assert [it["n_answered"] for it in overview] == [len(query), 0]
    assert set(campaign["stopping"]) == {"stop", "reason", "evidence"}  # the page reads it
    assert campaign["stopping"]["stop"] is False  # two iterations: too early to say
    # a label that does not say its iteration (SAMP, files) is filed under its batch's
    late = {"pubdid": str(again["pubdid"][0]), "label": "not-sure"}
    httpx.post(f"{base}/campaigns/be/labels", json={"source": "samp", "labels": [late]})
    exported = httpx.get(f"{base}/campaigns/be/labels").json()["labels"]
    assert (exported[-1]["iteration"], exported[-1]["source"]) == (1, "samp")
    assert httpx.get(second.results["learning-curve"][0]).content[:8] == b"\x89PNG\r\n\x1a\n"
    assert httpx.get(second.results["confusion"][0]).content[:4] == b"\x89PNG"
    assert "confusion" not in first.results  # nothing to score before any label
    # issue 23: each job kept its rates for the next campaign's first time estimate
    rates = json.loads((settings.home / RATES_FILE).read_text())["jobs"]
    assert len(rates) == 2 and all(job["row_epoch"] > 0 and job["setup"] > 0 for job in rates)


def test_unknown_campaign_is_a_clear_error(service):
    base, _, _ = service
    refused = httpx.post(f"{base}/iterate", data={"CAMPAIGN": "nope"})  # a 400, no job
    assert refused.status_code == 400 and "UNKNOWN_CAMPAIGN" in refused.text
    assert "give SOURCE and TARGET" in refused.text
    response = httpx.post(f"{base}/iterate", data={"CAMPAIGN": "be", "STRATEGY": "psychic"})
    assert response.status_code == 400 and "entropy" in response.text


def test_train_then_classify(service):
    base, settings, pool_kinds = service
    params = [("DATASET", "src"), ("MODEL", "small"), ("EPOCHS", "6"), ("TEST_FRACTION", "0.25")]
    trained = follow(submit(f"{base}/train", params), lambda s: None)
    assert trained.phase == "COMPLETED", trained.error
    summary = httpx.get(trained.results["summary"][0]).json()
    assert summary["n_test"] == 60 and summary["n_train"] == 180
    confusion = table(trained.results["confusion"][0])
    assert int(np.sum(confusion["count"])) == 60
    assert httpx.get(trained.results["confusion-plot"][0]).content[:4] == b"\x89PNG"
    assert httpx.get(trained.results["training-curve"][0]).content[:4] == b"\x89PNG"
    provenance = httpx.get(trained.results["model-metadata"][0]).json()["provenance"]
    assert len(provenance["history"]["loss"]) == provenance["epochs_run"] == summary["epochs_run"]
    assert provenance["train"]["noise_augment"] == 1.0  # the service's default (domain gap)

    classified = follow(
        submit(f"{base}/classify", [("MODEL_ID", str(summary["model_id"])), ("DATASET", "pool")]),
        lambda s: None,
    )
    assert classified.phase == "COMPLETED", classified.error
    result = httpx.get(classified.results["summary"][0]).json()
    # issue 25: a classify job's rows are not a campaign's iteration 0
    engine = engine_for(settings.sqlalchemy_url)
    p = schema.prediction
    job_id = classified.url.rstrip("/").rsplit("/", 1)[-1]
    with engine.connect() as conn:
        mine = conn.execute(
            sa.select(p.c.iteration, p.c.model_id).where(p.c.job_id == job_id)
        ).all()
        files = conn.execute(
            sa.select(schema.prediction_file.c.iteration).where(
                schema.prediction_file.c.job_id == job_id
            )
        ).all()
        zero = conn.scalar(sa.select(sa.func.count()).where(p.c.iteration == 0))
        zero_campaign = conn.scalar(
            sa.select(sa.func.count()).where(p.c.iteration == 0, p.c.campaign_id.is_not(None))
        )
    assert mine and all(it is None and m == summary["model_id"] for it, m in mine)
    assert files == [(None,)] and zero == zero_campaign
    # Issue 15: alvo.model.path showed server file paths over TAP; now relative to home
    for published, column in [
        ("alvo.model", "path"),
        ("alvo.prediction_file", "path"),
        ("alvo.dataset", "feature_path"),
    ]:
        query = {"LANG": "ADQL", "QUERY": f"SELECT {column} FROM {published}"}
        tap = httpx.get(f"{base}/tap/sync", params=query)
        found = parse_single_table(io.BytesIO(tap.content)).to_table()[column]
        paths = [str(p) for p in found]
        assert paths and not any(p.startswith("/") or str(settings.home) in p for p in paths)
    assert result["hou_verdict"]["emission"] + result["hou_verdict"]["none"] == len(pool_kinds)
    assert result["classified"] == len(pool_kinds)
    candidates = table(classified.results["candidates"][0])
    assert len(candidates) == result["candidates"]
    assert set(candidates["predicted_class"]) <= {"single-peak", "double-peak"}
    # the profiles are easy: most true emitters of the pool are among the candidates
    found = {int(p.split("?")[1]) for p in candidates["pubdid"]}
    emitters = set(np.flatnonzero(pool_kinds < 2))
    assert len(found & emitters) >= 0.6 * len(emitters)


def test_classify_with_unknown_model_is_refused_at_creation(service):
    base, _, _ = service
    response = httpx.post(f"{base}/classify", data={"MODEL_ID": "999", "DATASET": "pool"})
    assert response.status_code == 400 and "UNKNOWN_MODEL" in response.text, response.text


def test_candidates_endpoint_serves_pyvo_and_binary2(service):
    from pyvo.dal import DALResults

    base, _, _ = service
    url = f"{base}/campaigns/be/candidates"
    tabledata = httpx.get(url, params={"ROLE": "query", "ITERATION": "0"})
    assert tabledata.status_code == 200 and b"<TABLEDATA>" in tabledata.content
    binary2 = httpx.get(
        url, params={"RESPONSEFORMAT": "application/x-votable+xml;serialization=BINARY2"}
    )
    assert b"<BINARY2>" in binary2.content and votable_problems(binary2.content) == []
    alias = httpx.get(url, params={"RESPONSEFORMAT": "votable/b2"})  # as TAP advertises it
    assert alias.status_code == 200 and b"<BINARY2>" in alias.content
    results = DALResults.from_result_url(url)  # pyvo as a VO client would read it
    assert len(results) > 0 and "entropy" in results.fieldnames
    missing = httpx.get(url, params={"ITERATION": "99"})
    assert missing.status_code == 404 and "no iteration 99" in missing.json()["error"]


def test_more_like_this_from_the_iterations_index(service, capsys):
    """The iterate job indexes the pool's embedding; /similar (pyvo, a DAL VOTable) and
    ``alvo similar`` answer from it with neighbours of the asked spectrum's own class."""
    from pyvo.dal import DALService

    from service.cli import main
    from service.store.campaigns import Campaigns
    from service.store.predictions import similarity_index_file

    base, settings, pool_kinds = service
    status = iterate(base, SOURCE="src", TARGET="pool")
    number = httpx.get(status.results["summary"][0]).json()["iteration"]
    campaign = Campaigns(settings).require("be")
    assert similarity_index_file(settings.home, campaign.campaign_id, number).is_file()
    surprises = table(status.results["surprises"][0])  # lint-clean, in process
    assert len(surprises) == 100 and list(surprises["rank"]) == list(range(1, 101))
    assert np.all(np.diff(surprises["surprise"]) <= 1e-6)  # most surprising first
    assert set(surprises["nearest_class"]) <= set(CLASSES)
    assert np.all(surprises["class_distance"] >= 0)
    with engine_for(settings.sqlalchemy_url).connect() as conn:
        stored = conn.execute(
            sa.select(schema.prediction.c.spectrum_id, schema.prediction.c.surprise).where(
                schema.prediction.c.iteration == number
            )
        ).all()
    assert len(stored) == len(pool_kinds) and all(s is not None for _, s in stored)
    best = max(stored, key=lambda row: row[1])
    assert int(surprises["spectrum_id"][0]) == best[0]  # the table is the stored ranking
    from pyvo.dal import TAPService

    tap = TAPService(f"{base}/tap")
    query = f"SELECT TOP 3 spectrum_id, surprise FROM alvo.prediction WHERE iteration = {number}"
    over_tap = tap.search(query + " ORDER BY surprise DESC").to_table()
    assert int(over_tap["spectrum_id"][0]) == best[0]
    ucds = tap.search(
        "SELECT ucd FROM TAP_SCHEMA.columns WHERE table_name = 'alvo.prediction' "
        "AND column_name = 'surprise'"
    ).to_table()
    assert list(ucds["ucd"]) == ["stat.value"]
    asked = [*[i for i in range(len(pool_kinds)) if pool_kinds[i] < 2][:5], 0, 1, 2]
    agree = []
    for i in asked:
        response = httpx.get(f"{base}/similar", params={"ID": f"ivo://t/pool?{i}", "K": "10"})
        assert response.status_code == 200, response.text
        assert votable_problems(response.content) == []
        found = parse_single_table(io.BytesIO(response.content)).to_table()
        assert list(found["rank"]) == list(range(1, 11))
        assert np.all(np.diff(found["distance"]) >= -1e-5)  # nearest first
        rows = [int(p.split("?")[1]) for p in found["pubdid"]]
        assert i not in rows and set(found["query_id"]) == {f"ivo://t/pool?{i}"}
        agree.append(np.mean(pool_kinds[rows] == pool_kinds[i]))
    assert np.mean(agree) > 0.6  # alike to the network: mostly the same class (random: ~0.1)
    results = DALService(f"{base}/similar").search(ID="ivo://t/pool?3", K=5, CAMPAIGN="be")
    assert len(results) == 5 and "distance" in results.fieldnames
    refused = httpx.get(f"{base}/similar", params={"ID": "ivo://t/nowhere"})
    assert refused.status_code == 404 and b"UNKNOWN_SPECTRUM" in refused.content
    assert httpx.get(f"{base}/similar", params={"ID": "x", "K": "0"}).status_code == 400
    capsys.readouterr()
    assert main(["similar", "ivo://t/pool?3", "--k", "3", "--service", base]) == 0
    printed = capsys.readouterr().out
    assert printed.count("ivo://t/pool?") >= 6  # three rows: the query_id and each pubdid


def test_relevance_answers_rerank_the_next_surprises_and_are_never_trained_on(service):
    """Issue 22: the oracle answers interesting/boring on the page's surprises view; the
    answers stay out of the training set, and the next iteration's surprises are re-ranked
    by them (answered ones left out; the order stored as prediction.surprise_rank)."""
    from service.store.campaigns import Campaigns

    base, settings, _ = service
    if httpx.get(f"{base}/campaigns/be").status_code == 404:  # run alone: one iteration first
        iterate(base, SOURCE="src", TARGET="pool")
    view = httpx.get(f"{base}/campaigns/be/batch", params={"ROLE": "surprise", "LIMIT": "30"})
    rows, number = view.json()["rows"], view.json()["iteration"]
    assert [r["surprise_rank"] for r in rows] == list(range(1, 31))  # the iterate job's order
    assert {r["role"] for r in rows} == {"surprise"}
    assert np.all(np.diff([r["surprise"] for r in rows]) <= 1e-6)  # no answers yet: by score
    campaigns = Campaigns(settings)
    campaign = campaigns.require("be")
    before = campaigns.training_set(campaign)
    liked, dull = rows[0], rows[1:21]
    answers = [{"spectrum_id": liked["id"], "label": "interesting", "iteration": number}]
    answers += [{"spectrum_id": r["id"], "label": "boring", "iteration": number} for r in dull]
    stored = httpx.post(f"{base}/campaigns/be/labels", json={"labels": answers}).json()
    assert stored["stored"] == 21 and stored["conflicts"] == []
    for was, now in zip(before, campaigns.training_set(campaign), strict=True):
        np.testing.assert_array_equal(was, now)  # what the next model trains on: unchanged
    again = httpx.get(f"{base}/campaigns/be/batch", params={"ROLE": "surprise", "LIMIT": "1"})
    assert again.json()["rows"][0]["relevance"] == "interesting"

    following = iterate(base, SURPRISES="40")
    surprises = table(following.results["surprises"][0])
    answered = {liked["id"], *(r["id"] for r in dull)}
    assert not answered & {int(i) for i in surprises["spectrum_id"]}  # not asked again
    relevance = np.asarray(surprises["relevance"])
    assert relevance.max() > 0.5 or relevance.min() < 0.5  # the answers moved something
    with engine_for(settings.sqlalchemy_url).connect() as conn:
        ranked = (
            conn.execute(
                sa.select(schema.prediction.c.spectrum_id)
                .where(schema.prediction.c.iteration == number + 1)
                .where(schema.prediction.c.surprise_rank.is_not(None))
                .order_by(schema.prediction.c.surprise_rank)
            )
            .scalars()
            .all()
        )
    assert ranked == [int(i) for i in surprises["spectrum_id"]]


def test_cascade_in_an_iteration_and_scored_by_over_tap(service):
    """CASCADE=on: the summary says what the cascade did (used, or the audit's reason for
    scoring everything with the reference net) and ``alvo.prediction.scored_by`` counts
    agree with it over TAP."""
    base, _, pool_kinds = service
    params = [("CAMPAIGN", "cascade"), ("SOURCE", "src"), ("TARGET", "pool"),
              ("MODEL", "small"), ("EPOCHS", "4"), ("BATCH", "20"), ("CASCADE", "on")]  # fmt: skip
    status = follow(submit(f"{base}/iterate", params), lambda s: None)
    assert status.phase == "COMPLETED", status.error
    summary = httpx.get(status.results["summary"][0]).json()
    cascade = summary["cascade"]
    assert cascade["scored_by_gate"] + cascade["scored_by_reference"] == len(pool_kinds)
    assert cascade["used"] == (cascade["audit"]["reason"] == "passed")
    assert cascade["gate_flops"] < 34e6 / 30
    query = (
        "SELECT p.scored_by, COUNT(*) AS n FROM alvo.prediction AS p "
        "JOIN alvo.campaign AS c ON p.campaign_id = c.campaign_id "
        "WHERE c.name = 'cascade' GROUP BY p.scored_by"
    )
    tap = httpx.get(f"{base}/tap/sync", params={"LANG": "ADQL", "QUERY": query})
    assert tap.status_code == 200, tap.text
    counts = parse_single_table(io.BytesIO(tap.content)).to_table()
    by = {str(k): int(n) for k, n in zip(counts["scored_by"], counts["n"], strict=True)}
    assert by.get("reference", 0) == cascade["scored_by_reference"]
    assert by.get("gate", 0) == cascade["scored_by_gate"]
    # the column is described in TAP_SCHEMA, so a TAP user can learn what "gate" means
    described = httpx.get(
        f"{base}/tap/sync",
        params={
            "LANG": "ADQL",
            "QUERY": "SELECT description FROM TAP_SCHEMA.columns "
            "WHERE table_name = 'alvo.prediction' AND column_name = 'scored_by'",
        },
    )
    text = parse_single_table(io.BytesIO(described.content)).to_table()["description"]
    assert "gate" in str(text[0]) and "reference" in str(text[0])


def test_candidates_argmax_is_the_seeds_and_auto_records_its_cut(service):
    """CANDIDATES=argmax counts what the seed counted (argmax of the recorded
    probabilities); the default, auto, at a campaign's first iteration (no pool label)
    takes the recall-targeted cut, says so in the summary and records each spectrum's
    class under it, so the candidates table and n_candidates agree with it."""
    base, settings, pool_kinds = service
    engine = engine_for(settings.sqlalchemy_url)
    p, c = schema.prediction.c, schema.campaign.c
    for name, extra in (("cut-argmax", [("CANDIDATES", "argmax")]), ("cut-auto", [])):
        params = [("CAMPAIGN", name), ("SOURCE", "src"), ("TARGET", "pool"),
                  ("MODEL", "small"), ("EPOCHS", "4"), ("BATCH", "20"), *extra]  # fmt: skip
        status = follow(submit(f"{base}/iterate", params), lambda s: None)
        assert status.phase == "COMPLETED", status.error
        summary = httpx.get(status.results["summary"][0]).json()
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(p.p_single_peak, p.p_double_peak, p.p_absorption, p.predicted_class)
                .join(schema.campaign, p.campaign_id == c.campaign_id)
                .where(c.name == name)
            ).all()
            n_file = conn.scalar(
                sa.select(schema.prediction_file.c.n_candidates)
                .join(schema.campaign, schema.prediction_file.c.campaign_id == c.campaign_id)
                .where(c.name == name)
            )
        assert len(rows) == len(pool_kinds)
        probabilities = np.array([r[:3] for r in rows], dtype=np.float64)
        recorded = np.isin([r[3] for r in rows], CLASSES[:2])
        listed = len(table(status.results["candidates"][0]))
        rule = summary["candidate_rule"]
        assert summary["candidates"] == recorded.sum() == n_file == listed
        if name == "cut-argmax":
            seeds = probabilities.argmax(axis=1) < 2  # the seed's candidates
            assert rule["rule"] == "argmax" and rule["j"] is None
            assert np.array_equal(recorded, seeds)
        else:
            cut, j = recall_target_candidates(probabilities.astype(np.float32), (0, 1), 0.95)
            assert rule["requested"] == "auto" and rule["pool_labels"] == 0
            assert rule["rule"] == "recall-target" and rule["j"] == j == summary["candidates"]
            assert rule["expected_recall"] >= 0.95
            assert np.array_equal(recorded, cut)
