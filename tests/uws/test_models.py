"""The phase rules, parameters and the store's compare-and-set, without HTTP."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest

from uws import models
from uws.models import (
    BadRequestError,
    ConflictError,
    JobFilter,
    JobParameters,
    JobRecord,
    Phase,
)
from uws.runner import Result, UWSJobError, normalise_results
from uws.store import JobStore

NOW = dt.datetime(2030, 1, 1, 12, tzinfo=dt.UTC)


def test_parameters_are_case_insensitive_and_multi_valued() -> None:
    params = JobParameters([("MAXREC", "10"), ("Upload", "a,param:a"), ("upload", "b,param:b")])
    assert params["maxrec"] == params["MaxRec"] == "10"
    assert params.getall("UPLOAD") == ["a,param:a", "b,param:b"]
    assert list(params) == ["maxrec", "upload"] and len(params) == 2
    replaced = params.replaced(JobParameters([("upload", "c,param:c")]))
    assert replaced.pairs() == [("maxrec", "10"), ("upload", "c,param:c")]
    with pytest.raises(KeyError):
        params["query"]


def test_job_filter_parsing() -> None:
    where = JobFilter.from_query(["pending", "COMPLETED"], ["2030-01-01T00:00:00Z"], ["5"])
    assert where.phases == {Phase.PENDING, Phase.COMPLETED}
    assert where.after == dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    assert where.last == 5 and not where.include_archived
    assert JobFilter.from_query(["ARCHIVED"], [], []).include_archived
    for phases, after, last in ((["NOPE"], [], []), ([], ["noon"], []), ([], [], ["-1"])):
        with pytest.raises(BadRequestError):
            JobFilter.from_query(phases, after, last)
    # a time without zone is UTC
    assert models.parse_time("2030-01-01T01:00:00", "AFTER").hour == 1


def test_run_and_abort_rules() -> None:
    assert models.check_run(Phase.PENDING) and models.check_run(Phase.HELD)
    assert not models.check_run(Phase.QUEUED) and not models.check_run(Phase.EXECUTING)
    for final in (Phase.COMPLETED, Phase.ERROR, Phase.ABORTED, Phase.ARCHIVED):
        with pytest.raises(ConflictError):
            models.check_run(final)
    assert models.check_abort(Phase.EXECUTING) and not models.check_abort(Phase.ABORTED)
    with pytest.raises(ConflictError):
        models.check_abort(Phase.COMPLETED)
    with pytest.raises(ConflictError):
        models.check_parameters_editable(Phase.QUEUED)


def test_execution_duration_and_destruction_choices() -> None:
    assert models.choose_execution_duration("30", 600) == 30
    assert models.choose_execution_duration("0", 600) == 600  # unlimited is not on offer
    assert models.choose_execution_duration("0", 0) == 0
    assert models.choose_execution_duration(10**9, 600) == 600
    for bad in ("-1", "x", "1.5"):
        with pytest.raises(BadRequestError):
            models.choose_execution_duration(bad, 600)
    week = dt.timedelta(days=7)
    assert models.choose_destruction(NOW + dt.timedelta(days=1), NOW, week) == NOW + dt.timedelta(
        days=1
    )
    assert models.choose_destruction(NOW + dt.timedelta(days=99), NOW, week) == NOW + week
    with pytest.raises(BadRequestError, match="past"):
        models.choose_destruction(NOW - dt.timedelta(seconds=1), NOW, week)


def test_wait_rules() -> None:
    assert models.should_wait(Phase.EXECUTING, None)
    assert models.should_wait(Phase.QUEUED, Phase.QUEUED)
    assert not models.should_wait(Phase.QUEUED, Phase.EXECUTING)
    assert not models.should_wait(Phase.COMPLETED, None)
    assert models.wait_seconds("-1", 30) == 30
    assert models.wait_seconds("5", 30) == 5
    assert models.wait_seconds("3600", 30) == 30
    with pytest.raises(BadRequestError):
        models.wait_seconds("forever", 30)


def test_results_must_be_files_inside_the_workdir(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hello")
    records = normalise_results(
        {"a": "a.txt", "web": ("https://example.org/x", "text/html")}, tmp_path
    )
    assert records[0].location == "a.txt" and records[0].size == 5
    assert records[0].mime_type == "text/plain"
    assert records[1].is_url and records[1].mime_type == "text/html"
    assert (
        normalise_results([Result("b", tmp_path / "a.txt", "x/y")], tmp_path)[0].mime_type == "x/y"
    )
    with pytest.raises(UWSJobError):
        normalise_results({"passwd": "/etc/passwd"}, tmp_path)
    with pytest.raises(UWSJobError):
        normalise_results({"gone": "missing.txt"}, tmp_path)
    with pytest.raises(UWSJobError):
        normalise_results([("x", "a.txt"), ("x", "a.txt")], tmp_path)


@pytest.fixture
def store(tmp_path: Path) -> JobStore:
    jobs = JobStore(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    jobs.migrate()
    jobs.migrate()  # idempotent
    return jobs


def _record(ident: str, owner: str | None = None, created: dt.datetime = NOW) -> JobRecord:
    return JobRecord(
        id=ident,
        job_list="demo",
        owner=owner,
        phase=Phase.PENDING,
        creation_time=created,
        destruction=created + dt.timedelta(days=1),
        parameters=JobParameters([("a", "1")]),
    )


def test_store_transitions_are_compare_and_set(store: JobStore) -> None:
    store.create(_record("j1"))
    wins: list[bool] = []
    barrier = threading.Barrier(8)

    def run() -> None:
        barrier.wait()
        wins.append(store.transition("j1", Phase.QUEUED, {Phase.PENDING}))

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wins.count(True) == 1  # exactly one request moved the job
    assert store.transition("j1", Phase.ABORTED, {Phase.QUEUED, Phase.EXECUTING})
    # a late "completed" from the worker cannot resurrect the aborted job
    assert not store.complete("j1", {Phase.EXECUTING}, [], end_time=NOW)
    job = store.get("j1")
    assert job is not None and job.phase == Phase.ABORTED and job.results == ()


def test_store_lists_by_owner_and_filters(store: JobStore) -> None:
    for i in range(5):
        store.create(_record(f"a{i}", "alice", NOW + dt.timedelta(minutes=i)))
    store.create(_record("b0", "bob"))
    store.create(_record("anon"))
    store.archive("a0", NOW)
    alice = [r.id for r in store.list_jobs("demo", "alice", JobFilter())]
    assert alice == ["a4", "a3", "a2", "a1"]  # newest first, ARCHIVED hidden
    assert [r.id for r in store.list_jobs("demo", None, JobFilter())] == ["anon"]
    archived = JobFilter(phases=frozenset({Phase.ARCHIVED}))
    assert [r.id for r in store.list_jobs("demo", "alice", archived)] == ["a0"]
    recent = JobFilter(after=NOW + dt.timedelta(minutes=2), last=1)
    assert [r.id for r in store.list_jobs("demo", "alice", recent)] == ["a4"]
    assert store.next_alarm() == NOW + dt.timedelta(days=1)
    assert set(store.expired(NOW + dt.timedelta(days=2))) == {"a1", "a2", "a3", "a4", "b0", "anon"}


def test_migrations_build_exactly_the_declared_schema(store: JobStore) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from uws.schema import metadata

    with store.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"version_table": "uws_alembic_version"}
        )
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_header_authenticator() -> None:
    from types import SimpleNamespace

    from uws.auth import HeaderAuthenticator, anonymous
    from uws.models import UnauthorizedError

    def request(**headers: str) -> SimpleNamespace:
        return SimpleNamespace(headers={k.replace("_", "-"): v for k, v in headers.items()})

    header = HeaderAuthenticator()
    assert header(request(**{"X-Forwarded-User": " alice "})) == "alice"
    assert header(request(**{"Remote-User": "bob"})) is None  # one header only, never a second
    assert HeaderAuthenticator("Remote-User")(request(**{"Remote-User": "bob"})) == "bob"
    assert header(request()) is None and anonymous(request(X_Forwarded_User="x")) is None
    with pytest.raises(UnauthorizedError):
        HeaderAuthenticator(required=True)(request())
