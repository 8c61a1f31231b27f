"""Fetching against a real HTTP server on loopback that misbehaves on purpose."""

from __future__ import annotations

import asyncio
import threading

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from service.net.fetch import Fetcher, FetchPolicy
from service.reasons import Reason


class Archive:
    """A tiny archive whose endpoints fail in the ways real ones do."""

    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        self.active = 0
        self.max_active = 0
        self.release = asyncio.Event()

    def app(self) -> Starlette:
        async def ok(request):
            return self._count(
                request, Response(b"SIMPLE  = T" + request.path_params["n"].encode())
            )

        async def flaky(request):
            n = self._count(request)
            if n <= 2:
                return Response(b"busy", status_code=503, headers={"Retry-After": "0"})
            return Response(b"finally")

        async def missing(request):
            return self._count(request, Response(b"no", status_code=404))

        async def slow(request):
            self._count(request)
            await asyncio.sleep(1.5)
            return Response(b"late")

        async def huge(request):
            return self._count(request, Response(b"x" * 5000))

        async def gated(request):
            self._count(request)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            await asyncio.sleep(0.05)
            self.active -= 1
            return Response(b"ok")

        return Starlette(
            routes=[
                Route("/ok/{n}", ok),
                Route("/flaky", flaky),
                Route("/missing", missing),
                Route("/slow", slow),
                Route("/huge", huge),
                Route("/gated/{n}", gated),
            ]
        )

    def _count(self, request, response=None):
        key = request.url.path
        self.hits[key] = self.hits.get(key, 0) + 1
        return response if response is not None else self.hits[key]


@pytest.fixture(scope="module")
def archive():
    state = Archive()
    config = uvicorn.Config(state.app(), host="127.0.0.1", port=0, log_level="error")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    state.base = f"http://127.0.0.1:{port}"
    yield state
    server.should_exit = True
    thread.join(5)


def fetcher(tmp_path, **policy):
    return Fetcher(tmp_path / "cache", FetchPolicy(**{"backoff_s": 0.01, **policy}))


def test_each_url_gets_a_result_in_order(archive, tmp_path):
    urls = [f"{archive.base}/ok/{i}" for i in range(5)] + [f"{archive.base}/missing"]
    results = fetcher(tmp_path).fetch_all(urls)
    assert [r.url for r in results] == urls
    assert [r.path.read_bytes()[-1:] for r in results[:5]] == [b"0", b"1", b"2", b"3", b"4"]
    assert results[5].error.reason is Reason.HTTP_ERROR and "404" in results[5].error.detail


def test_server_errors_are_retried_client_errors_are_not(archive, tmp_path):
    flaky, missing = fetcher(tmp_path, retries=3).fetch_all(
        [f"{archive.base}/flaky", f"{archive.base}/missing"]
    )
    assert flaky.ok and flaky.path.read_bytes() == b"finally"
    assert archive.hits["/flaky"] == 3
    assert not missing.ok


def test_timeout_is_named(archive, tmp_path):
    (result,) = fetcher(tmp_path, idle_s=0.2, retries=1).fetch_all([f"{archive.base}/slow"])
    assert result.error.reason is Reason.FETCH_TIMEOUT


def test_oversized_response_is_refused_and_not_cached(archive, tmp_path):
    client = fetcher(tmp_path, max_bytes=1000)
    (result,) = client.fetch_all([f"{archive.base}/huge"])
    assert result.error.reason is Reason.RESPONSE_TOO_LARGE
    assert not client.cache_path(f"{archive.base}/huge").exists()
    assert not list((tmp_path / "cache").rglob("*.part"))


def test_second_fetch_comes_from_cache(archive, tmp_path):
    url = f"{archive.base}/ok/cached"
    client = fetcher(tmp_path)
    first = client.fetch_all([url])[0]
    before = archive.hits["/ok/cached"]
    second = client.fetch_all([url])[0]
    assert not first.from_cache and second.from_cache
    assert archive.hits["/ok/cached"] == before


def test_per_host_limit_is_respected(archive, tmp_path):
    archive.max_active = 0
    urls = [f"{archive.base}/gated/{i}" for i in range(12)]
    seen = []
    results = fetcher(tmp_path, per_host=3).fetch_all(urls, progress=lambda d, n: seen.append(d))
    assert all(r.ok for r in results)
    assert archive.max_active == 3
    assert seen == list(range(1, 13))


def test_non_http_url_is_refused(tmp_path):
    (result,) = fetcher(tmp_path).fetch_all(["file:///etc/passwd"])
    assert result.error.reason is Reason.FETCH_REFUSED
