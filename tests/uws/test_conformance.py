"""Black-box UWS 1.1 conformance, modelled on CADC's UWS test suite.

Runs over HTTP against a live uvicorn server for each backend in
``conftest.BACKENDS`` (SQLite and PostgreSQL stores, local and Dask executors).
Every XML answer is validated against the UWS 1.1 XSD by the client hook.
"""

from __future__ import annotations

import datetime as dt
import os
import time

import httpx

from tests.uws.conftest import UWS_NS, XSI_NIL, client, parse, wait_until
from tests.uws.helpers import (
    create,
    heartbeat_stops,
    job,
    parameters,
    phase,
    progress_pid,
    results,
    text,
    wait_final,
    wait_phase,
)


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _utc(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_new_job_is_pending_with_a_complete_document(http: httpx.Client) -> None:
    url = create(http, TASK="echo", Foo="a", FOO="b", bar="c")
    document = job(http, url)
    assert document.tag == UWS_NS + "job" and document.get("version") == "1.1"
    assert text(document, "jobId") == url.rsplit("/", 1)[1]
    assert text(document, "phase") == "PENDING"
    created = _utc(text(document, "creationTime") or "")
    assert abs((dt.datetime.now(dt.UTC) - created).total_seconds()) < 30
    for nillable in ("ownerId", "quote", "startTime", "endTime"):
        element = document.find(UWS_NS + nillable)
        assert element is not None and element.get(XSI_NIL) == "true", nillable
    assert text(
        document,
        "destruction",
    ).endswith("Z")  # type: ignore[union-attr]
    # names are case-insensitive (kept lower-case); repeated names are multi-valued
    assert parameters(document) == [("task", "echo"), ("foo", "a"), ("foo", "b"), ("bar", "c")]
    assert results(document) == {}


def test_phase_run_on_creation_runs_to_completion_with_results(http: httpx.Client) -> None:
    url = create(http, TASK="echo", PHASE="RUN", colour="red")
    document = wait_final(http, url)
    assert text(document, "phase") == "COMPLETED"
    start, end = _utc(text(document, "startTime") or ""), _utc(text(document, "endTime") or "")
    assert _utc(text(document, "creationTime") or "") <= start <= end
    links = results(document)
    assert links == {"parameters": url + "/results/parameters"}
    reference = document.find(f"{UWS_NS}results/{UWS_NS}result")
    assert reference is not None and reference.get("mime-type") == "text/plain"
    content = http.get(links["parameters"])
    assert content.status_code == 200
    assert content.text.splitlines() == ["task=echo", "colour=red"]
    assert int(reference.get("size") or -1) == len(content.content)
    # the /results resource says the same as the job document
    listed = parse(http.get(url + "/results").content)
    assert listed.tag == UWS_NS + "results" and len(listed) == 1
    progress = document.find(f"{UWS_NS}jobInfo/{{urn:x-uws:jobinfo}}progress")
    assert progress is not None and float(progress.get("fraction") or 0) == 1.0
    # when the job reported it, so a client that looks later estimates as of then
    assert start <= _utc(progress.get("time") or "") <= end + dt.timedelta(seconds=1)
    assert http.get(url + "/results/nonexistent").status_code == 404


def test_job_list_filters_phase_after_last(http: httpx.Client) -> None:
    before = dt.datetime.now(dt.UTC)
    pending = create(http, TASK="echo")
    done = create(http, TASK="echo", PHASE="RUN")
    wait_final(http, done)
    newest = create(http, TASK="echo")

    def ids(**query: object) -> list[str]:
        response = http.get("/demo", params=list(_pairs(query)))
        assert response.status_code == 200, response.text
        root = parse(response.content)
        assert root.tag == UWS_NS + "jobs" and root.get("version") == "1.1"
        return [ref.get("id") or "" for ref in root.iter(UWS_NS + "jobref")]

    key = {u.rsplit("/", 1)[1]: u for u in (pending, done, newest)}
    mine = [i for i in ids() if i in key]
    assert mine == [newest.rsplit("/", 1)[1], done.rsplit("/", 1)[1], pending.rsplit("/", 1)[1]]
    completed = ids(PHASE="COMPLETED")
    assert done.rsplit("/", 1)[1] in completed and pending.rsplit("/", 1)[1] not in completed
    both = ids(PHASE=["PENDING", "COMPLETED"])  # repeated PHASE is ORed
    assert set(key) <= set(both)
    assert set(ids(AFTER=_iso(before))) >= set(key)
    assert ids(AFTER=_iso(dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))) == []
    assert ids(LAST=1) == [newest.rsplit("/", 1)[1]]
    assert ids(LAST=2, PHASE="PENDING")[0] == newest.rsplit("/", 1)[1]
    assert http.get("/demo", params={"LAST": "0"}).status_code == 400
    assert http.get("/demo", params={"PHASE": "SLEEPING"}).status_code == 400
    assert http.get("/demo", params={"AFTER": "yesterday"}).status_code == 400
    # jobref carries phase, ownerId (nil) and creationTime and links to the job
    root = parse(http.get("/demo", params={"LAST": "1"}).content)
    ref = root.find(UWS_NS + "jobref")
    assert ref is not None and ref.get("{http://www.w3.org/1999/xlink}href") == newest
    assert ref.find(UWS_NS + "phase") is not None and ref.find(UWS_NS + "creationTime") is not None


def _pairs(query: dict[str, object]) -> list[tuple[str, str]]:
    return [(k, str(x)) for k, v in query.items() for x in (v if isinstance(v, list) else [v])]


def test_phase_resource_run_abort_and_refusals(http: httpx.Client) -> None:
    url = create(http, TASK="sleep", SECONDS=30)
    assert phase(http, url) == "PENDING"
    assert http.post(url + "/phase", data={"PHASE": "SUSPEND"}).status_code == 400
    assert http.post(url + "/phase", data={}).status_code == 400
    response = http.post(url + "/phase", data={"PHASE": "RUN"})
    assert response.status_code == 303 and response.headers["location"] == url
    wait_phase(http, url, "EXECUTING")
    response = http.post(url + "/phase", data={"phase": "abort"})  # names and values any case
    assert response.status_code == 303
    document = job(http, url)
    assert text(document, "phase") == "ABORTED"
    assert text(document, "endTime")
    assert http.post(url + "/phase", data={"PHASE": "RUN"}).status_code == 409
    assert http.post(url + "/phase", data={"PHASE": "ABORT"}).status_code == 303  # idempotent
    completed = create(http, PHASE="RUN")
    wait_final(http, completed)
    assert http.post(completed + "/phase", data={"PHASE": "ABORT"}).status_code == 409


def test_abort_stops_the_work(http: httpx.Client, live) -> None:
    url = create(http, TASK="sleep", SECONDS=60, PHASE="RUN")
    wait_phase(http, url, "EXECUTING")
    document = wait_until(lambda: _with_progress(http, url), what="first progress report")
    pid = progress_pid(document)  # type: ignore[arg-type]
    assert http.post(url + "/phase", data={"PHASE": "ABORT"}).status_code == 303
    assert phase(http, url) == "ABORTED"
    if live.executor == "local":  # the worker process is killed
        assert pid is not None
        wait_until(lambda: not _alive(pid), timeout=10, what=f"worker {pid} to be gone")
    # the runner writes a heartbeat every 0.05 s while it runs: it must have stopped
    heartbeat = live.workdir / url.rsplit("/", 1)[1] / "heartbeat"
    heartbeat_stops(heartbeat)
    assert results(job(http, url)) == {}


def _with_progress(http: httpx.Client, url: str):  # type: ignore[no-untyped-def]
    document = job(http, url)
    return document if progress_pid(document) is not None else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is dead too
        return stat.read().split()[2] != "Z"


def test_execution_duration_resource(http: httpx.Client) -> None:
    url = create(http, TASK="echo")
    assert http.get(url + "/executionduration").text == "600"
    assert text(job(http, url), "executionDuration") == "600"
    assert (
        http.post(url + "/executionduration", data={"EXECUTIONDURATION": "30"}).status_code == 303
    )
    assert http.get(url + "/executionduration").text == "30"
    assert text(job(http, url), "executionDuration") == "30"
    # above the maximum (or 0 = unlimited) the server grants its maximum
    http.post(url + "/executionduration", data={"EXECUTIONDURATION": "100000"})
    assert http.get(url + "/executionduration").text == "600"
    for bad in ("-5", "soon", "1.5"):
        response = http.post(url + "/executionduration", data={"EXECUTIONDURATION": bad})
        assert response.status_code == 400, bad
    http.post(url + "/phase", data={"PHASE": "RUN"})
    wait_final(http, url)
    response = http.post(url + "/executionduration", data={"EXECUTIONDURATION": "5"})
    assert response.status_code == 409


def test_destruction_resource_refuses_the_past(http: httpx.Client) -> None:
    url = create(http, TASK="echo")
    current = http.get(url + "/destruction").text
    assert current == text(job(http, url), "destruction")
    wanted = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    assert http.post(url + "/destruction", data={"DESTRUCTION": _iso(wanted)}).status_code == 303
    assert abs((_utc(http.get(url + "/destruction").text) - wanted).total_seconds()) < 0.01
    past = _iso(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
    response = http.post(url + "/destruction", data={"DESTRUCTION": past})
    assert response.status_code == 400 and "past" in response.text
    assert abs((_utc(http.get(url + "/destruction").text) - wanted).total_seconds()) < 0.01
    assert http.post(url + "/destruction", data={"DESTRUCTION": "tomorrow"}).status_code == 400
    far = _iso(dt.datetime.now(dt.UTC) + dt.timedelta(days=3650))  # beyond the 30-day limit
    http.post(url + "/destruction", data={"DESTRUCTION": far})
    granted = _utc(http.get(url + "/destruction").text)
    assert granted < dt.datetime.now(dt.UTC) + dt.timedelta(days=31)
    assert phase(http, url) == "PENDING"


def test_quote_and_owner_resources(http: httpx.Client) -> None:
    url = create(http, TASK="echo")
    assert http.get(url + "/quote").status_code == 200
    assert http.get(url + "/quote").text == ""  # unknown, as the nil quote in the document
    assert http.get(url + "/owner").text == ""


def test_parameters_resource_only_while_pending(http: httpx.Client) -> None:
    url = create(http, TASK="echo", alpha="1", beta="2")
    document = parse(http.get(url + "/parameters").content)
    assert document.tag == UWS_NS + "parameters"
    assert parameters(document) == [("task", "echo"), ("alpha", "1"), ("beta", "2")]
    response = http.post(url + "/parameters", data={"ALPHA": "10", "alpha": "11", "gamma": "3"})
    assert response.status_code == 303
    assert parameters(job(http, url)) == [
        ("task", "echo"), ("beta", "2"), ("alpha", "10"), ("alpha", "11"), ("gamma", "3"),
    ]  # fmt: skip
    assert http.post(url + "/parameters", data={"TASK": "nonsense"}).status_code == 400
    http.post(url + "/phase", data={"PHASE": "RUN"})
    wait_final(http, url)
    response = http.post(url + "/parameters", data={"alpha": "99"})
    assert response.status_code == 409
    assert ("alpha", "99") not in parameters(job(http, url))


def test_validator_refuses_bad_parameters_at_creation(http: httpx.Client) -> None:
    response = http.post("/demo", data={"TASK": "explode"})
    assert response.status_code == 400 and "TASK must be one of" in response.text
    response = http.post("/demo", data={"TASK": "sleep", "SECONDS": "long"})
    assert response.status_code == 400
    assert http.post("/demo", data={"PHASE": "ABORT"}).status_code == 400


def test_runner_errors_become_error_phase_with_a_dali_error_document(http: httpx.Client) -> None:
    clean = create(http, TASK="fail", PHASE="RUN")
    document = wait_final(http, clean)
    assert text(document, "phase") == "ERROR"
    summary = document.find(UWS_NS + "errorSummary")
    assert summary is not None and summary.get("type") == "fatal"
    assert summary.findtext(UWS_NS + "message") == "the demo job failed as asked"
    error = http.get(clean + "/error")
    assert error.status_code == 200
    assert error.headers["content-type"].startswith("application/x-votable+xml")
    votable = parse(error.content)
    status = votable.find(".//{http://www.ivoa.net/xml/VOTable/v1.3}INFO[@name='QUERY_STATUS']")
    assert status is not None and status.get("value") == "ERROR"
    assert status.text == "the demo job failed as asked"
    crash = create(http, TASK="crash", PHASE="RUN")
    document = wait_final(http, crash)
    message = document.findtext(f"{UWS_NS}errorSummary/{UWS_NS}message") or ""
    # a runner's bug is logged; the client gets a named reason, never its text or traceback
    assert message.startswith("INTERNAL_ERROR: ") and crash.rsplit("/", 1)[1] in message
    error_text = http.get(crash + "/error").text
    assert "Traceback" not in error_text and "ZeroDivisionError" not in error_text
    fine = create(http, TASK="echo")
    assert http.get(fine + "/error").status_code == 404


def test_dali_error_document_passes_votlint(http: httpx.Client) -> None:
    from tests.peers.stilts import votlint

    url = create(http, TASK="fail", PHASE="RUN")
    wait_final(http, url)
    assert votlint(http.get(url + "/error").content) == []


def test_delete_and_post_action_delete(http: httpx.Client) -> None:
    for how in ("DELETE", "ACTION"):
        url = create(http, TASK="echo", PHASE="RUN")
        wait_final(http, url)
        if how == "DELETE":
            response = http.delete(url)
        else:
            response = http.post(url, data={"ACTION": "DELETE"})
        assert response.status_code == 303
        assert response.headers["location"] == str(http.base_url).rstrip("/") + "/demo"
        assert http.get(url).status_code == 404
        assert http.get(url + "/phase").status_code == 404
        assert url.rsplit("/", 1)[1] not in http.get("/demo").text
    url = create(http, TASK="echo")
    assert http.post(url, data={"ACTION": "EXPLODE"}).status_code == 400
    assert http.delete(str(http.base_url).rstrip("/") + "/demo/doesnotexist").status_code == 404


def test_wait_blocks_only_while_the_phase_can_change(http: httpx.Client) -> None:
    pending = create(http, TASK="echo")
    started = time.monotonic()
    assert text(job(http, pending, WAIT=1), "phase") == "PENDING"
    assert 0.9 <= time.monotonic() - started < 5  # blocked for its full second
    started = time.monotonic()
    job(http, pending, WAIT=10, PHASE="EXECUTING")  # not in that phase: answer at once
    assert time.monotonic() - started < 1
    done = create(http, TASK="echo", PHASE="RUN")
    wait_final(http, done)
    started = time.monotonic()
    job(http, done, WAIT=-1)  # a final phase never blocks
    assert time.monotonic() - started < 1
    assert http.get(pending, params={"WAIT": "soon"}).status_code == 400


def test_wait_returns_as_soon_as_the_phase_changes(http: httpx.Client) -> None:
    url = create(http, TASK="sleep", SECONDS=1.5, PHASE="RUN")
    wait_phase(http, url, "EXECUTING")
    deadline = time.monotonic() + 30
    document = job(http, url, WAIT=-1)  # the server's maximum is 30 s
    while text(document, "phase") == "EXECUTING" and time.monotonic() < deadline:
        document = job(http, url, WAIT=-1)  # a progress report answers it too (UWS 1.1)
    returned = dt.datetime.now(dt.UTC)
    assert text(document, "phase") == "COMPLETED"
    ended = _utc(text(document, "endTime") or "")
    # the reference: what one plain request costs on this (possibly busy) machine right now
    started = time.monotonic()
    job(http, url)
    plain = time.monotonic() - started
    late = (returned - ended).total_seconds()
    assert late < 0.3 + 2 * plain, (late, plain)  # woken by the change, not by a 1 s poll


def test_users_see_only_their_own_jobs(live, uws_schema) -> None:
    with client(live, uws_schema, "alice") as alice, client(live, uws_schema, "bob") as bob:
        url = create(alice, TASK="echo")
        document = job(alice, url)
        assert text(document, "ownerId") == "alice"
        assert alice.get(url + "/owner").text == "alice"
        assert bob.get(url).status_code == 404
        assert bob.post(url + "/phase", data={"PHASE": "RUN"}).status_code == 404
        assert bob.delete(url).status_code == 404
        assert url.rsplit("/", 1)[1] not in bob.get("/demo").text
        assert url.rsplit("/", 1)[1] in alice.get("/demo").text
    with client(live, uws_schema) as anonymous:
        assert anonymous.get(url).status_code == 404


def test_uploads_with_dali_syntax_and_a_size_limit(http: httpx.Client) -> None:
    payload = b"<VOTABLE/>\n" * 10
    url = create(
        http,
        files={"tablefile": ("t.vot", payload, "application/x-votable+xml")},
        TASK="echo",
        UPLOAD="mytable,param:tablefile",
        PHASE="RUN",
    )
    document = wait_final(http, url)
    assert ("upload", "mytable,param:tablefile") in parameters(document)
    links = results(document)
    assert http.get(links["upload-mytable"]).content == payload
    # an upload by URL is passed on, not fetched by the service
    url = create(http, TASK="echo", UPLOAD="remote,https://example.org/t.vot")
    assert ("upload", "remote,https://example.org/t.vot") in parameters(job(http, url))
    # a part named in UPLOAD must exist; odd URIs are refused
    missing = http.post("/demo", data={"UPLOAD": "t,param:nothere"}, files={"x": ("a", b"1")})
    assert missing.status_code == 400
    assert http.post("/demo", data={"UPLOAD": "t,file:///etc/passwd"}).status_code == 400
    too_big = http.post(
        "/demo", data={"UPLOAD": "t,param:f"}, files={"f": ("big", b"x" * (2 << 20))}
    )
    assert too_big.status_code == 413


def test_execution_duration_is_enforced(http: httpx.Client, live) -> None:
    url = create(http, TASK="sleep", SECONDS=60, EXECUTIONDURATION=1, PHASE="RUN")
    started = time.monotonic()
    document = wait_final(http, url)
    assert time.monotonic() - started < 15
    assert text(document, "phase") == "ERROR"
    message = document.findtext(f"{UWS_NS}errorSummary/{UWS_NS}message") or ""
    assert "executionDuration of 1 s" in message
    if live.executor == "local":
        pid = progress_pid(document)
        assert pid is not None
        wait_until(lambda: not _alive(pid), timeout=10, what="the overdue worker to be killed")


def test_destruction_archives_the_job_keeping_its_record(http: httpx.Client) -> None:
    url = create(http, TASK="echo", PHASE="RUN")
    document = wait_final(http, url)
    result_url = results(document)["parameters"]
    assert http.get(result_url).status_code == 200
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    assert http.post(url + "/destruction", data={"DESTRUCTION": _iso(soon)}).status_code == 409
    pending = create(http, TASK="echo")
    http.post(pending + "/destruction", data={"DESTRUCTION": _iso(soon)})
    document = job(http, pending, WAIT=10)  # PENDING -> ARCHIVED is a phase change: WAIT wakes
    assert text(document, "phase") == "ARCHIVED"
    ident = pending.rsplit("/", 1)[1]
    assert ident not in http.get("/demo").text
    assert ident in http.get("/demo", params={"PHASE": "ARCHIVED"}).text
    assert parameters(document) == [("task", "echo")]  # the record is kept


def test_destruction_of_a_completed_job_removes_its_results(live, uws_schema) -> None:
    # a finished job's destruction cannot be moved (409 above); so use a fresh job whose
    # destruction is set while PENDING, then run it to completion before that time passes
    with client(live, uws_schema) as http:
        url = create(http, TASK="echo")
        soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3)
        http.post(url + "/destruction", data={"DESTRUCTION": _iso(soon)})
        http.post(url + "/phase", data={"PHASE": "RUN"})
        document = wait_final(http, url)
        assert text(document, "phase") == "COMPLETED"
        link = results(document)["parameters"]
        assert http.get(link).status_code == 200
        wait_until(lambda: phase(http, url) == "ARCHIVED", timeout=15, what="ARCHIVED")
        archived = job(http, url)
        assert results(archived) == {}
        assert http.get(link).status_code == 404


def test_concurrent_phase_changes_leave_consistent_jobs(http: httpx.Client) -> None:
    from concurrent.futures import ThreadPoolExecutor

    urls = [create(http, TASK="sleep", SECONDS=0.3) for _ in range(6)]
    requests = [(u, verb) for u in urls for verb in ("RUN", "ABORT", "RUN", "ABORT")]
    with ThreadPoolExecutor(8) as pool:
        codes = list(
            pool.map(
                lambda r: http.post(r[0] + "/phase", data={"PHASE": r[1]}).status_code, requests
            )
        )
    assert set(codes) <= {303, 409}, codes  # never a 5xx
    for url in urls:
        document = wait_final(http, url)
        final = text(document, "phase")
        assert final in {"ABORTED", "COMPLETED"}
        if final == "ABORTED":
            assert results(document) == {}
    time.sleep(0.5)  # a late worker report must not resurrect an aborted job
    assert all(phase(http, u) in {"ABORTED", "COMPLETED"} for u in urls)


def test_parameters_posted_to_the_job_resource_while_pending(http: httpx.Client) -> None:
    """UWS 1.0 clients (uws-client) post new parameter values to the job itself."""
    url = create(http, TASK="echo", alpha="1")
    assert http.post(url, data={"alpha": "2", "PHASE": "RUN"}).status_code == 303
    document = wait_final(http, url)
    assert ("alpha", "2") in parameters(document) and text(document, "phase") == "COMPLETED"
    assert http.post(url, data={"alpha": "3"}).status_code == 409
    assert http.post(url, data={}).status_code == 400


def test_phase_abort_posted_to_the_job_url_is_not_a_parameter(http: httpx.Client) -> None:
    """Vollt #112: PHASE=ABORT sent to the job itself must abort, not become a parameter."""
    url = create(http, TASK="sleep", SECONDS=30, PHASE="RUN")
    assert http.post(url, data={"PHASE": "ABORT"}).status_code == 303
    document = job(http, url)
    assert text(document, "phase") == "ABORTED"
    assert ("phase", "ABORT") not in parameters(document)
