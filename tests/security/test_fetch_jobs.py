"""The fetch rules seen from outside: every job path of a live service, hostile URLs.

One live service (2 workers, ``fetch_timeout`` 3 s, on loopback: the desktop
case) takes jobs whose references point at a slow-loris server, a silent one,
local files and link-local addresses. Each job must end within its deadline
with a named reason, say nothing about the service's own files, show no
traceback, and leave the job system free for other jobs.
"""

from __future__ import annotations

import datetime
import threading
import time

import httpx
import pytest
import uvicorn
from lxml import etree

from service.net.uws_client import SAFE_PARSER, UWS_NS, follow, submit
from service.settings import Settings
from tests.security.hostile_servers import FixedAnswer, Silent, SlowLoris, running
from tests.vo_fixture import free_port, live_server

DEADLINE_S = 3
#: job start-up (a fresh worker process imports numpy, astropy, pyvo) on a loaded machine;
#: the hostile servers hold on for LIFETIME_S, far longer than deadline + slack
SLACK_S = 30
LIFETIME_S = 150
QUICK_TAP = "SELECT TOP 1 table_name FROM TAP_SCHEMA.tables"


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    home = tmp_path_factory.mktemp("fetch-home")
    port = free_port()
    # from the environment, as an operator sets it (a service without the setting runs too)
    environment = {"ALVO_FETCH_TIMEOUT": str(DEADLINE_S)}
    settings = Settings.from_env(environment, home=home, port=port, demo_archive_size=0, workers=2)
    from service.app import create_app

    with live_server(create_app(settings), port, lifespan="on") as url:
        yield url


@pytest.fixture(scope="module")
def servers():
    with (
        running(SlowLoris(lifetime_s=LIFETIME_S)) as slow,
        running(Silent(lifetime_s=LIFETIME_S)) as silent,
        running(FixedAnswer(b"pubdid,label\n")) as good,
    ):
        yield {"slow-loris": slow, "silent": silent, "good": good}


def execution_s(job_url: str) -> float:
    """endTime - startTime of a finished job (its time on a worker, not in the queue)."""
    root = etree.fromstring(httpx.get(job_url).content, SAFE_PARSER)
    start, end = (
        datetime.datetime.fromisoformat(root.findtext(f"{{{UWS_NS}}}{name}").replace("Z", "+00:00"))
        for name in ("startTime", "endTime")
    )
    return (end - start).total_seconds()


def finish(job_url: str, bound_s: float) -> tuple[object, float]:
    """Follow a job, failing (not hanging) when it runs past ``bound_s``."""
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(follow(job_url, lambda s: None)))
    thread.daemon = True
    thread.start()
    thread.join(bound_s)
    assert result, f"{job_url} still not finished after {bound_s} s"
    return result[0], execution_s(job_url)


def reasons(status) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return httpx.get(status.results["summary"][0]).json()["reasons"]


# --- one job per fetch path, against each hostile server -----------------------------------------
PATHS = {
    "ingest URL": lambda url, good: [("URL", url)],
    "LABELS": lambda url, good: [("URL", good), ("LABELS", url)],
    "UPLOAD refs by URL": lambda url, good: [("UPLOAD", f"refs,{url}")],
    "SSA": lambda url, good: [("SSA", url)],
    "DataLink": lambda url, good: [("DATALINK", url), ("ID", "ivo://x/y?1")],
}
EXPECTED = {
    "ingest URL": ("summary", "FETCH_TIMEOUT"),
    "LABELS": ("error", "FETCH_TIMEOUT: LABELS"),
    "UPLOAD refs by URL": ("error", "FETCH_TIMEOUT: UPLOAD refs"),
    "SSA": ("error", "SSA_TIMEOUT: SSA"),
    "DataLink": ("summary", "SSA_TIMEOUT"),
}


@pytest.mark.parametrize("kind", ["slow-loris", "silent"])
def test_every_ingest_path_ends_within_its_deadline_with_a_named_reason(service, servers, kind):
    hostile, good = servers[kind], servers["good"].url("/x.fits")
    jobs = {
        path: submit(f"{service}/ingest", [("DATASET", "h"), *make(hostile.url(f"/{i}"), good)])
        for i, (path, make) in enumerate(PATHS.items())
    }
    for path, job_url in jobs.items():
        status, seconds = finish(job_url, bound_s=len(jobs) * (DEADLINE_S + SLACK_S))
        where, expected = EXPECTED[path]
        if where == "summary":
            assert status.phase == "COMPLETED", (path, status.error)
            assert reasons(status) == {expected: 1}, path
        else:
            assert status.phase == "ERROR" and status.error.startswith(expected), (path, status)
        assert seconds < DEADLINE_S + SLACK_S, (path, seconds)


@pytest.mark.parametrize("kind", ["slow-loris", "silent"])
def test_tap_uploads_by_url_end_within_the_deadline(service, servers, kind):
    url = servers[kind].url("/table.vot")
    query = {"LANG": "ADQL", "QUERY": "SELECT * FROM TAP_UPLOAD.t", "UPLOAD": f"t,{url}"}
    began = time.monotonic()
    response = httpx.post(f"{service}/tap/sync", data=query, timeout=DEADLINE_S + SLACK_S)
    assert time.monotonic() - began < DEADLINE_S + 5
    assert "FETCH_TIMEOUT: UPLOAD t:" in response.text and "Traceback" not in response.text
    status, seconds = finish(submit(f"{service}/tap/async", list(query.items())), SLACK_S * 2)
    assert status.phase == "ERROR" and status.error.startswith("FETCH_TIMEOUT: UPLOAD t:")
    assert seconds < DEADLINE_S + SLACK_S


def test_two_stuck_jobs_do_not_stall_the_job_system(service, servers):
    """2 workers, both on slow fetches: a quick job still runs, and finishes while one waits."""
    slow = servers["slow-loris"]
    long = submit(  # 20 URLs, 4 at a time per host, each cut at 3 s: >= 15 s on its worker
        f"{service}/ingest",
        [("DATASET", "long")] + [("URL", slow.url(f"/l{i}")) for i in range(20)],
    )
    short = submit(f"{service}/ingest", [("DATASET", "short"), ("URL", slow.url("/s"))])
    quick = submit(f"{service}/tap/async", [("LANG", "ADQL"), ("QUERY", QUICK_TAP)])
    status, _ = finish(quick, bound_s=DEADLINE_S + 2 * SLACK_S)
    assert status.phase == "COMPLETED", status.error
    long_phase = etree.fromstring(httpx.get(long).content, SAFE_PARSER).findtext(
        f"{{{UWS_NS}}}phase"
    )
    assert long_phase == "EXECUTING"  # the quick job ran and finished meanwhile
    for job_url, n in ((short, 1), (long, 20)):
        status, seconds = finish(job_url, bound_s=5 * DEADLINE_S + 2 * SLACK_S)
        assert status.phase == "COMPLETED" and reasons(status) == {"FETCH_TIMEOUT": n}
        assert seconds < (n + 3) // 4 * DEADLINE_S + SLACK_S


# --- file disclosure, SSRF and tracebacks ---------------------------------------------------------
@pytest.mark.parametrize(
    "labels", ["/etc/passwd", "file:///etc/passwd", "/no/such/file", "../../settings.json"]
)
def test_labels_never_read_a_file_of_the_service(service, labels):
    response = httpx.post(
        f"{service}/ingest", data={"DATASET": "x", "URL": "http://x/", "LABELS": labels}
    )
    assert response.status_code == 400
    assert "root:" not in response.text and "No such file" not in response.text
    # an existing and a missing file get the same answer: no existence oracle
    assert "LABELS" in response.text and "http(s) URL" in response.text


def test_link_local_and_private_references_are_refused(service):
    metadata = "http://169.254.169.254/latest/meta-data/"
    status, _ = finish(
        submit(
            f"{service}/ingest",
            [("DATASET", "ssrf"), ("URL", metadata), ("URL", "http://10.0.0.1/x.fits")],
        ),
        bound_s=2 * SLACK_S,
    )
    assert status.phase == "COMPLETED" and reasons(status) == {"FETCH_REFUSED": 2}
    for parameters in ([("SSA", metadata)], [("URL", "http://x.org/a"), ("LABELS", metadata)]):
        status, _ = finish(
            submit(f"{service}/ingest", [("DATASET", "s"), *parameters]), SLACK_S * 2
        )
        assert status.phase == "ERROR" and status.error.startswith("FETCH_REFUSED"), status.error


@pytest.mark.parametrize("answer", ["404", "nothing listening"])
def test_failed_label_fetches_are_named_reasons_not_tracebacks(service, answer):
    with running(FixedAnswer(status="404 Not Found")) as missing:
        labels = missing.url() if answer == "404" else f"http://127.0.0.1:{free_port()}/l.csv"
        job = submit(f"{service}/ingest", [("DATASET", "t"), ("URL", labels), ("LABELS", labels)])
        status, _ = finish(job, SLACK_S * 2)
    assert status.phase == "ERROR" and status.error.startswith("HTTP_ERROR: LABELS"), status.error
    error_document = httpx.get(f"{status.url}/error").text
    assert "Traceback" not in error_document and "URLError" not in error_document


def test_tap_sync_upload_from_a_slow_server_does_not_block_shutdown(tmp_path, servers):
    """uvicorn waits for open requests on shutdown: a fetch without deadline held it forever."""
    from service.vo.tap.routes import standalone_app

    port = free_port()
    app = standalone_app(Settings(home=tmp_path, port=port, fetch_timeout=DEADLINE_S))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive()
        threading.Event().wait(0.02)
    slow = SlowLoris(lifetime_s=LIFETIME_S)
    with running(slow):
        query = {"LANG": "ADQL", "QUERY": "SELECT * FROM TAP_UPLOAD.t", "UPLOAD": f"t,{slow.url()}"}
        client = threading.Thread(
            target=lambda: httpx.post(
                f"http://127.0.0.1:{port}/tap/sync", data=query, timeout=LIFETIME_S
            ),
            daemon=True,
        )
        client.start()
        assert slow.connected.wait(SLACK_S)  # the request is in flight, fetching
        began = time.monotonic()
        server.should_exit = True
        thread.join(DEADLINE_S + SLACK_S)
        assert not thread.is_alive() and time.monotonic() - began < DEADLINE_S + SLACK_S
