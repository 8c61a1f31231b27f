"""service/jobs/eta.py: the jobInfo fraction is the part of the expected time spent."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

from service.jobs.eta import (
    RATES_FILE,
    RATES_KEPT,
    Rates,
    Stages,
    TrainTimes,
    epochs_left,
    previous_job,
    read_rates,
    record_rates,
)
from service.jobs.iterate import FINISH_SECONDS, IterateRequest, Iteration
from service.jobs.params import JobParams
from service.settings import Settings
from service.store.campaigns import Campaigns
from service.store.datasets import Datasets
from uws.models import JobParameters, JobRecord, Phase, ResultRecord
from uws.store import JobStore


def test_epochs_left_counts_patience_from_the_best_epoch_not_to_the_cap():
    assert epochs_left([1.0, 0.9], patience=10, cap=100) == 10  # improving: patience ahead
    assert epochs_left([1.0, 0.9, 0.95, 0.97], patience=10, cap=100) == 8  # best 2 epochs ago
    assert epochs_left([1.0, 0.9, 0.8], patience=10, cap=5) == 2  # the cap comes first
    assert epochs_left([0.5] + [0.6] * 10, patience=10, cap=100) == 0  # stops now
    assert epochs_left([], patience=10, cap=7) == 7


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_fraction_is_elapsed_over_elapsed_plus_left_and_none_when_unknown():
    reports: list[tuple[float | None, str]] = []
    clock = Clock()
    stages = Stages(lambda f, m="": reports.append((f, m)), [("a", 10.0), ("b", None)], clock)
    stages.begin("a", "a starts")
    assert reports[-1] == (None, "a starts")  # b's time is not known: no fraction
    stages.set("b", 30.0)
    clock.now = 10.0
    stage = stages.begin("b", "b starts")
    assert reports[-1][0] == pytest.approx(10 / 40)
    clock.now = 20.0
    stage.fraction(0.25, "a quarter of b's rows")  # 10 s for 25 %: 30 s more
    assert reports[-1][0] == pytest.approx(20 / 50)
    stage.seconds_left(5.0, "b knows better")
    assert reports[-1][0] == pytest.approx(20 / 25)


RATES = dict(
    prepare=0.1, setup=2.0, row_epoch=1e-3, epoch_ratio=1.5, after_fit=3.0,
    classify_row=2e-4, rest_row=2e-4,
)  # fmt: skip


def test_rates_one_job_records_are_read_by_the_next_as_medians(tmp_path):
    assert read_rates(tmp_path) is None  # a fresh service: nothing measured
    record_rates(tmp_path, Rates(**RATES))
    assert read_rates(tmp_path) == Rates(**RATES)
    # a stalled job among several moves the median little; only the last few are kept
    record_rates(tmp_path, Rates(**{**RATES, "after_fit": 30.0}))
    record_rates(tmp_path, Rates(**{**RATES, "after_fit": 4.0}))
    assert read_rates(tmp_path).after_fit == 4.0
    for _ in range(RATES_KEPT):
        record_rates(tmp_path, Rates(**{**RATES, "after_fit": 5.0}))
    assert read_rates(tmp_path).after_fit == 5.0
    assert len(json.loads((tmp_path / RATES_FILE).read_text())["jobs"]) == RATES_KEPT
    (tmp_path / RATES_FILE).write_text("{half a fi")
    assert read_rates(tmp_path) is None  # unreadable: no estimate, never a failed job


def test_a_first_iteration_estimates_from_the_services_rates_from_its_first_moment(tmp_path):
    """Issue 23: a campaign's first iterate job had no time left until its first
    training batches had run (a quarter of the job). With the rates an earlier job of
    the service recorded, its plan knows every stage's seconds at once, scaled by its
    own work: training rows x epochs, the pool's size for the steps after the fit."""
    settings = Settings(home=tmp_path, port=1, demo_archive_size=0, simbad="off")
    rng = np.random.default_rng(0)
    datasets = Datasets(settings)
    for name, domain, n in (
        ("src", "source", 300),
        ("pool", "target", 500),
        ("big", "target", 5000),
    ):
        rows = {"pubdid": [f"ivo://t/{name}?{i}" for i in range(n)]}
        labels = [
            ("single-peak", "absorption")[i % 2] if domain == "source" else "" for i in range(n)
        ]
        datasets.append(
            datasets.open_or_create(name, domain),
            rng.normal(size=(n, 140)).astype(np.float32),
            rows,
            labels,
        )
    campaigns = Campaigns(settings)

    def plan(target: str, epochs: int = 4) -> dict[str, float | None]:
        campaign = campaigns.get(target) or campaigns.create(target, "src", target)
        request = IterateRequest.from_params(
            JobParams([("CAMPAIGN", target), ("EPOCHS", str(epochs))])
        )
        job = Iteration(settings, campaigns, campaign, request, tmp_path / "job", lambda *a: None)
        plans.append(job)
        return dict(job.plan())

    plans: list[Iteration] = []

    assert plan("pool")["train"] is None  # a fresh service: the training's speed is unknown
    record_rates(tmp_path, Rates(**RATES))
    small, longer, big = plan("pool"), plan("pool", epochs=8), plan("big")
    first_epoch = 1 / RATES["epoch_ratio"]
    assert small["train"] == pytest.approx(2.0 + 1e-3 * 300 * (3 + first_epoch))
    assert longer["train"] == pytest.approx(2.0 + 1e-3 * 300 * (7 + first_epoch))
    # after the fit: seconds, from the pool's size (its sample embedded), not epochs
    assert small["after-fit"] == pytest.approx(3.0 + 2e-4 * 500)
    assert big["after-fit"] == pytest.approx(3.0 + 2e-4 * 5000)
    assert (small["classify"], big["rest"]) == pytest.approx((2e-4 * 500, 2e-4 * 5000))
    # so the job's first report has a fraction: the page shows a time left from the start
    reports: list[float | None] = []
    clock = Clock()
    clock.now = 1.0  # the worker's start since the job's startTime
    stages = Stages(lambda f, m="": reports.append(f), list(small.items()), clock, started=0.0)
    stages.begin("score")
    assert reports[-1] == pytest.approx(1.0 / (1.0 + sum(small.values())), abs=1e-4)
    # once its own training runs at half the recorded speed (a busier machine), the
    # stages it has not reached yet take twice their planned seconds
    job = plans[1]
    job.stages, job.rows = stages, 300
    job.rescale(per_epoch=2 * RATES["row_epoch"] * 300)
    assert stages.estimate("after-fit") == pytest.approx(2 * small["after-fit"])
    assert stages.estimate("rest") == pytest.approx(2 * small["rest"])
    # a later iteration: training and classification from the previous job, whose other
    # seconds are split by the rates among scoring, the steps after the fit and the rest
    # (all of it put last made the time left +57-100 % long during the training)
    started = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    campaigns.record_iteration(
        campaigns.require("pool"), 0, started=started,
        finished=started + dt.timedelta(seconds=20), train_seconds=6.0, classify_seconds=0.5,
    )  # fmt: skip
    later = plan("pool")
    assert later["score"] == pytest.approx(RATES["prepare"])
    assert later["after-fit"] == pytest.approx(small["after-fit"])
    assert (later["train"], later["classify"]) == pytest.approx((6.0, 0.5))
    assert later["rest"] == pytest.approx(20 - 6.0 - 0.5 - RATES["prepare"] - small["after-fit"])
    assert sum(v for k, v in later.items() if v is not None and k != "finish") == 20.0
    # no previous job's end seen: the finish stage takes the rates' (none recorded here)
    assert later["finish"] == FINISH_SECONDS
    # where the campaign's previous UWS job kept its account, each stage is planned as
    # long as it took there, and the finish from its last stage to its endTime
    store = JobStore(settings.sqlalchemy_url)
    store.migrate()
    took = {"start": 1.0, "score": 0.7, "train": 4.0, "after-fit": 1.2, "classify": 0.3}
    (tmp_path / "j0").mkdir()
    (tmp_path / "j0" / "summary.json").write_text(
        json.dumps({"time_left": {k: {"took": v} for k, v in {**took, "rest": 0.6}.items()}})
    )
    store.create(
        JobRecord("j0", "iterate", None, Phase.EXECUTING, started,
                  parameters=JobParameters([("CAMPAIGN", "pool")])),
    )  # fmt: skip
    store.complete(
        "j0", {Phase.EXECUTING}, [ResultRecord("summary", "summary.json")],
        start_time=started, end_time=started + dt.timedelta(seconds=8.5),
    )  # fmt: skip
    store.close()
    accounted = plan("pool")
    assert (accounted["train"], accounted["classify"]) == pytest.approx((4.0, 0.3))
    assert accounted["finish"] == pytest.approx(8.5 - 1.0 - 0.7 - 4.0 - 1.2 - 0.3 - 0.6)
    # the steps whose seconds vary most from job to job: the rates' medians
    assert accounted["after-fit"] == pytest.approx(small["after-fit"])
    assert accounted["rest"] == pytest.approx(small["rest"])
    # without rates (its previous job had none to record), all from the previous job
    (tmp_path / RATES_FILE).unlink()
    assert plan("pool") == pytest.approx(
        {**{k: v for k, v in took.items() if k != "start"}, "rest": 0.6, "finish": 0.7}
    )


def test_the_summary_accounts_each_stage_against_its_plan():
    now = [0.0]
    stages = Stages(lambda f, m: None, [("train", 2.0), ("rest", None)], lambda: now[0], 0.0)
    now[0] = 1.0
    stages.begin("train")
    stages.set("train", 2.5)  # the job learnt its speed
    now[0] = 4.0
    stages.begin("rest")
    now[0] = 6.0
    account = stages.account()
    assert account["start"] == {"took": 1.0}
    assert account["train"] == {"planned": 2.0, "estimated": 2.5, "took": 3.0}
    assert account["rest"] == {"planned": None, "estimated": None, "took": 2.0}


def test_a_later_iteration_plans_each_stage_and_the_finish_from_its_previous_job(tmp_path):
    """Issue 23: the last ~0.7 s of an iterate job (its results recorded, the UWS
    completion) belonged to no stage, so late estimates leaned short (-35 % at 75 %).
    The previous job of the campaign says how long each of its stages took (its
    summary's account) and, against its UWS endTime, how long its finish took."""
    url = f"sqlite:///{tmp_path / 'alvo.sqlite'}"
    store = JobStore(url)
    store.migrate()
    start = dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)
    took = {"start": 1.0, "score": 2.0, "train": 5.0, "after-fit": 1.5, "classify": 0.5}
    account = {k: {"took": v} for k, v in {**took, "rest": 0.4, "finish": 0.1}.items()}
    for job_id, campaign, end in (("j1", "c", 11.7), ("j2", "other", 30.0)):
        (tmp_path / "jobs" / job_id).mkdir(parents=True)
        (tmp_path / "jobs" / job_id / "summary.json").write_text(json.dumps({"time_left": account}))
        store.create(
            JobRecord(job_id, "iterate", None, Phase.EXECUTING, start,
                      parameters=JobParameters([("CAMPAIGN", campaign)])),
        )  # fmt: skip
        store.complete(
            job_id, {Phase.EXECUTING}, [ResultRecord("summary", "summary.json")],
            start_time=start, end_time=start + dt.timedelta(seconds=end),
        )  # fmt: skip
    store.close()
    previous = previous_job(url, "iterate", "CAMPAIGN", "c", tmp_path / "jobs")
    assert previous is not None
    assert previous.took == {**{k: v for k, v in took.items() if k != "start"}, "rest": 0.4}
    # its finish began at 1 + 2 + 5 + 1.5 + 0.5 + 0.4 = 10.4 s, it ended at 11.7 s
    assert previous.finish == pytest.approx(1.3)
    assert previous_job(url, "iterate", "CAMPAIGN", "none", tmp_path / "jobs") is None
    # the job saw it: its rates keep it, for a later campaign's first iteration
    record_rates(tmp_path, Rates(**RATES, finish=previous.finish))
    record_rates(tmp_path, Rates(**RATES))  # a job that saw none (or a record of before)
    assert read_rates(tmp_path).finish == pytest.approx(1.3)
    assert read_rates(tmp_path).train_tail is None
    record_rates(tmp_path, Rates(**RATES, train_tail=1.2))  # the fit's seconds after its epochs
    rates = read_rates(tmp_path)
    assert rates.train_tail == pytest.approx(1.2)
    assert rates.training_seconds(300, 4) == pytest.approx(
        Rates(**RATES).training_seconds(300, 4) + 1.2
    )


def test_the_first_epochs_batches_make_a_whole_later_epoch_by_the_batch_ratio(tmp_path):
    """A first epoch's batches leave out every epoch's validation: scaled by the first
    epoch's whole seconds (``epoch_ratio``), a training's first estimates ran 20-30 %
    short. Its batches alone are kept (``first_batches``), and the service's rates keep
    a later epoch over them (``batch_ratio``), older records without it still read."""
    times = TrainTimes(first_epoch=1.0, per_epoch=1.2, first_batches=0.8)
    assert times.batch_ratio == pytest.approx(1.5)
    assert times.epoch_ratio == pytest.approx(1.2)
    assert TrainTimes(per_epoch=1.2).batch_ratio is None  # no batch measured
    record_rates(tmp_path, Rates(**RATES))  # a record from before batch_ratio
    record_rates(tmp_path, Rates(**RATES, batch_ratio=1.4))
    record_rates(tmp_path, Rates(**RATES, batch_ratio=1.2))
    assert read_rates(tmp_path).batch_ratio == pytest.approx(1.3)  # median of those with it
