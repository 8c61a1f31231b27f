"""Fetch many spectra over HTTP: concurrent, polite, retried, cached on disk.

An ingest of thousands of SSA/DataLink references must not hammer one archive,
must survive a flaky connection, and must not download a spectrum twice. Each
URL ends as a :class:`Fetched` with either the bytes' path in the cache or a
named :class:`~service.reasons.AlvoError`; one bad URL never stops the rest.

Retried: time-outs, connection errors, HTTP 429 and 5xx (with exponential
backoff and ``Retry-After``). Not retried: other 4xx, oversized responses.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import hashlib
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from service.reasons import AlvoError, Reason

Progress = Callable[[int, int], None]


@dataclasses.dataclass(frozen=True)
class Fetched:
    url: str
    path: Path | None = None
    error: AlvoError | None = None
    from_cache: bool = False

    @property
    def ok(self) -> bool:
        return self.path is not None


@dataclasses.dataclass(frozen=True)
class FetchPolicy:
    """How hard to try. Times in seconds; ``max_bytes`` caps one response."""

    timeout_s: float = 30.0
    retries: int = 3
    backoff_s: float = 0.5
    per_host: int = 4
    total: int = 16
    max_bytes: int = 50 * 1024 * 1024


class Fetcher:
    """Downloads into ``cache_dir`` (content addressed by URL)."""

    def __init__(self, cache_dir: Path, policy: FetchPolicy | None = None) -> None:
        self.cache_dir = Path(cache_dir)
        self.policy = policy or FetchPolicy()

    def cache_path(self, url: str) -> Path:
        digest = hashlib.sha256(url.encode()).hexdigest()
        return self.cache_dir / digest[:2] / digest[2:]

    def fetch_all(self, urls: Sequence[str], progress: Progress | None = None) -> list[Fetched]:
        """Blocking wrapper of :meth:`fetch_many` for job runners."""
        return asyncio.run(self.fetch_many(urls, progress))

    async def fetch_many(
        self, urls: Sequence[str], progress: Progress | None = None
    ) -> list[Fetched]:
        """Fetch every URL; results in the order of ``urls``."""
        policy = self.policy
        total = asyncio.Semaphore(policy.total)
        hosts: dict[str, asyncio.Semaphore] = collections.defaultdict(
            lambda: asyncio.Semaphore(policy.per_host)
        )
        done = 0

        async def one(client: httpx.AsyncClient, url: str) -> Fetched:
            nonlocal done
            async with total, hosts[urlsplit(url).netloc]:
                result = await self._fetch_one(client, url)
            done += 1
            if progress:
                progress(done, len(urls))
            return result

        limits = httpx.Limits(max_connections=policy.total)
        timeout = httpx.Timeout(policy.timeout_s)
        async with httpx.AsyncClient(timeout=timeout, limits=limits, follow_redirects=True) as c:
            return list(await asyncio.gather(*(one(c, url) for url in urls)))

    async def _fetch_one(self, client: httpx.AsyncClient, url: str) -> Fetched:
        target = self.cache_path(url)
        if target.exists():
            return Fetched(url, target, from_cache=True)
        if urlsplit(url).scheme not in ("http", "https"):
            return Fetched(url, error=AlvoError(Reason.BAD_PARAMETER, f"not an HTTP URL: {url}"))
        error: AlvoError | None = None
        for attempt in range(self.policy.retries + 1):
            if attempt:
                await asyncio.sleep(self._delay(attempt, error))
            try:
                await self._download(client, url, target)
                return Fetched(url, target)
            except _PermanentError as failure:
                return Fetched(url, error=failure.error)
            except _RetryableError as failure:
                error = failure.error
            except httpx.TimeoutException:
                error = AlvoError(
                    Reason.SSA_TIMEOUT, f"{url}: no answer within {self.policy.timeout_s} s"
                )
            except httpx.TransportError as failure:
                error = AlvoError(Reason.HTTP_ERROR, f"{url}: {failure.__class__.__name__}")
        assert error is not None
        return Fetched(url, error=error)

    def _delay(self, attempt: int, error: AlvoError | None) -> float:
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            return float(retry_after)
        return float(self.policy.backoff_s * 2 ** (attempt - 1))

    async def _download(self, client: httpx.AsyncClient, url: str, target: Path) -> None:
        async with client.stream("GET", url) as response:
            if response.status_code == 429 or response.status_code >= 500:
                error = AlvoError(Reason.HTTP_ERROR, f"{url}: HTTP {response.status_code}")
                error.retry_after = _retry_after(response)  # type: ignore[attr-defined]
                raise _RetryableError(error)
            if response.status_code >= 400:
                raise _PermanentError(
                    AlvoError(Reason.HTTP_ERROR, f"{url}: HTTP {response.status_code}")
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            handle, partial = tempfile.mkstemp(dir=target.parent, suffix=".part")
            size = 0
            try:
                with os.fdopen(handle, "wb") as out:
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > self.policy.max_bytes:
                            raise _PermanentError(
                                AlvoError(
                                    Reason.RESPONSE_TOO_LARGE,
                                    f"{url}: more than {self.policy.max_bytes} bytes",
                                )
                            )
                        out.write(chunk)
                os.replace(partial, target)  # atomic: the cache never holds half a file
            finally:
                if os.path.exists(partial):
                    os.unlink(partial)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return min(float(value), 60.0) if value.replace(".", "", 1).isdigit() else None


class _RetryableError(Exception):
    def __init__(self, error: AlvoError) -> None:
        self.error = error


class _PermanentError(Exception):
    def __init__(self, error: AlvoError) -> None:
        self.error = error
