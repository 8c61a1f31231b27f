"""Every fetch ends by its total deadline, with a named reason, against hostile servers.

A slow-loris server (one byte every half second: no read ever times out) and a
silent one (accepts, never answers) against each way the service fetches:
spectra (:class:`Fetcher`), whole documents (LABELS, UPLOAD), SSA and DataLink
queries. The deadline is small here (2 s); the servers would hold on for
minutes, so a fetch without a total deadline fails the time bound.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import pyvo.dal.adhoc
import pyvo.dal.ssa  # noqa: F401

from service.net.fetch import Fetcher, FetchPolicy, fetch_document
from service.reasons import AlvoError, Reason
from service.spectra.access import SSAQuery, datalink_references, ssa_references
from tests.security.hostile_servers import Silent, SlowLoris, running

DEADLINE_S = 2.0
SLACK_S = 3.0  # start-up of the client, thread scheduling on a loaded machine
POLICY = FetchPolicy(deadline_s=DEADLINE_S, idle_s=DEADLINE_S, backoff_s=0.05)

HOSTILE = {
    "slow-loris": SlowLoris,
    "slow-headers": lambda lifetime_s: SlowLoris(lifetime_s=lifetime_s, headers_too=True),
    "silent": Silent,
}


def timed(call: Callable[[], object]) -> tuple[object, float]:
    began = time.monotonic()
    try:
        result: object = call()
    except AlvoError as error:
        result = error
    return result, time.monotonic() - began


@pytest.fixture(params=sorted(HOSTILE))
def hostile(request):
    with running(HOSTILE[request.param](lifetime_s=60)) as server:
        yield server


def test_spectrum_fetch_ends_at_the_deadline(hostile, tmp_path):
    results, elapsed = timed(lambda: Fetcher(tmp_path, POLICY).fetch_all([hostile.url("/s.fits")]))
    (result,) = results  # type: ignore[misc]
    assert result.error.reason is Reason.FETCH_TIMEOUT, result.error
    assert elapsed < DEADLINE_S + SLACK_S
    assert not list(tmp_path.rglob("*.part"))  # nothing half-written left in the cache


def test_document_fetch_ends_at_the_deadline(hostile):
    error, elapsed = timed(lambda: fetch_document(hostile.url(), policy=POLICY, what="LABELS"))
    assert isinstance(error, AlvoError) and error.reason is Reason.FETCH_TIMEOUT
    assert error.detail.startswith("LABELS ") and elapsed < DEADLINE_S + SLACK_S


def test_ssa_query_ends_at_the_deadline_as_ssa_timeout(hostile):
    error, elapsed = timed(lambda: ssa_references(hostile.url("/ssa"), SSAQuery(), POLICY))
    assert isinstance(error, AlvoError) and error.reason is Reason.SSA_TIMEOUT
    assert elapsed < DEADLINE_S + SLACK_S


def test_datalink_query_ends_at_the_deadline_as_ssa_timeout(hostile):
    found, elapsed = timed(lambda: datalink_references(hostile.url("/dl"), ["ivo://x?1"], POLICY))
    assert [f.reason for f in found] == [Reason.SSA_TIMEOUT]  # type: ignore[union-attr]
    assert elapsed < DEADLINE_S + SLACK_S


def test_the_connection_is_let_go(tmp_path):
    """A fetch that gives up closes its connection: the server is not left holding it."""
    with running(SlowLoris(lifetime_s=60)) as server:
        Fetcher(tmp_path, POLICY).fetch_all([server.url()])
        server.stopped.wait(1.0)  # the server notices the close at its next byte
        assert server.accepted == 1 and server.open == 0


def test_a_document_without_end_is_cut_at_the_size_cap():
    """SSA/DataLink responses are read whole into memory: a cap, not the archive, says when."""

    class Endless(SlowLoris):
        def answer(self, connection):
            connection.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            while not self._expired():
                connection.sendall(b"10000\r\n" + b"x" * 0x10000 + b"\r\n")

    with running(Endless(lifetime_s=60)) as server:
        policy = FetchPolicy(deadline_s=30, max_bytes=1_000_000)
        error, _ = timed(lambda: ssa_references(server.url("/ssa"), SSAQuery(), policy))
        assert isinstance(error, AlvoError) and error.reason is Reason.RESPONSE_TOO_LARGE
