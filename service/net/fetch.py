"""Fetch from wherever a user points: confined, bounded in time and size, retried, cached.

Every user-given reference goes through this module -- spectrum access URLs
(``URL``, SSA/DataLink/upload references), SSA and DataLink queries,
``LABELS``, TAP ``UPLOAD`` by URL -- so one set of rules holds for all:

* **confined**: http(s) only, public addresses only unless allowed
  (:mod:`service.net.confinement`), every redirect hop checked again;
* **a total deadline** per fetch (``ALVO_FETCH_TIMEOUT``): redirects, retries
  and every byte of the body together. A server that sends one byte every few
  seconds, or accepts and never answers, ends as ``FETCH_TIMEOUT`` (or
  ``SSA_TIMEOUT`` for an SSA/DataLink query) when the deadline passes, not never;
* **a size cap** (``ALVO_FETCH_MAX_BYTES``), checked while reading.

An ingest of thousands of references must not hammer one archive, must
survive a flaky connection, and must not download a spectrum twice:
:class:`Fetcher` downloads many URLs concurrently (per-host limit) into a disk
cache. Each URL ends as a :class:`Fetched` with either the bytes' path in the
cache or a named :class:`~service.reasons.AlvoError`; one bad URL never stops
the rest. Documents read whole (SSA/DataLink responses, label tables, TAP
uploads) come from :func:`fetch_document`.

Retried: connection errors, HTTP 429 and 5xx (exponential backoff and
``Retry-After``), within the deadline. Not retried: other 4xx, refused URLs,
oversized responses, a server that stops sending.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import functools
import hashlib
import io
import os
import ssl
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import urlsplit

import httpcore
import httpx

from service.net.confinement import ConfinedBackend, Confinement, refused
from service.reasons import AlvoError, Reason

if TYPE_CHECKING:
    from service.settings import Settings

Progress = Callable[[int, int], None]
Params = dict[str, str] | httpx.QueryParams | None
VOTABLE_SNIFF = b"<VOTABLE"


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
    """How hard to try and where: times in seconds, ``max_bytes`` caps one response.

    ``deadline_s`` is the whole fetch of one URL (redirects, retries, body);
    ``idle_s`` the longest wait for one step (connect, the next bytes).
    Picklable, so it travels with ingest chunks to Dask workers.
    """

    deadline_s: float = 120.0
    idle_s: float = 30.0
    retries: int = 3
    backoff_s: float = 0.5
    per_host: int = 4
    total: int = 16
    max_bytes: int = 64 * 1024 * 1024
    max_redirects: int = 5
    confinement: Confinement = dataclasses.field(default_factory=Confinement)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> FetchPolicy:
        """The operator's limits (``ALVO_FETCH_*``) and fence; ``overrides`` win."""
        deadline = float(settings.fetch_timeout)
        values: dict[str, Any] = {
            "deadline_s": deadline,
            "idle_s": min(cls.idle_s, deadline),
            "max_bytes": settings.fetch_max_bytes,
            "confinement": Confinement.from_settings(settings),
        }
        return cls(**{**values, **overrides})


@functools.lru_cache(maxsize=4)
def _ssl_context(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    """One verifying SSL context per CA setting: loading the CA bundle takes ~30 ms, and
    every document fetch (each SSA page of a paged listing) makes a client."""
    return httpx.create_ssl_context()


def confined_client(policy: FetchPolicy) -> httpx.AsyncClient:
    """An httpx client that connects only where ``policy.confinement`` allows.

    Redirects are not followed by httpx but by :func:`_open` (each hop checked);
    proxies from the environment are ignored, as a proxy would hide the address
    the confinement must see (CA bundles from ``SSL_CERT_FILE`` still apply).
    """
    context = _ssl_context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    transport = httpx.AsyncHTTPTransport(verify=context, trust_env=False)
    # httpx has no public hook for httpcore's network backend: swap the pool it made
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=context,
        max_connections=policy.total,
        network_backend=ConfinedBackend(policy.confinement),
    )
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(policy.idle_s),
        follow_redirects=False,
        trust_env=False,
    )


@contextlib.asynccontextmanager
async def _open(
    client: httpx.AsyncClient, url: str, params: Params, policy: FetchPolicy
) -> AsyncIterator[httpx.Response]:
    """GET ``url`` following redirects by hand, every hop checked against the fence."""
    policy.confinement.check_url(url)
    try:
        target = httpx.URL(url, params=params) if params else httpx.URL(url)
    except httpx.InvalidURL:
        raise refused(f"{url!r} is not a URL") from None
    for _ in range(policy.max_redirects + 1):
        policy.confinement.check_url(str(target))
        response = await client.send(client.build_request("GET", target), stream=True)
        if not response.is_redirect:
            try:
                yield response
            finally:
                await response.aclose()
            return
        await response.aclose()
        target = response.url.join(response.headers["Location"])
    raise AlvoError(Reason.HTTP_ERROR, f"{url}: more than {policy.max_redirects} redirects")


async def _read_body(response: httpx.Response, url: str, max_bytes: int, out: BinaryIO) -> None:
    """Copy the body into ``out``, refusing it as soon as it passes ``max_bytes``."""
    declared = response.headers.get("Content-Length", "")
    too_large = AlvoError(Reason.RESPONSE_TOO_LARGE, f"{url}: more than {max_bytes} bytes")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise too_large
        out.write(chunk)


def _timeout(url: str, policy: FetchPolicy, reason: Reason, what: str = "") -> AlvoError:
    prefix = f"{what} " if what else ""
    return AlvoError(
        reason,
        f"{prefix}{url}: no complete answer within {policy.deadline_s:g} s "
        f"(the server sent nothing for {policy.idle_s:g} s, or too slowly)",
    )


async def fetch_document_async(
    url: str,
    params: Params = None,
    policy: FetchPolicy | None = None,
    what: str = "",
    timeout_reason: Reason = Reason.FETCH_TIMEOUT,
    error_votables: bool = False,
) -> bytes:
    """The body at ``url``, read whole into memory within the deadline and size cap.

    ``what`` names the fetch in errors (``"SSA"``, ``"LABELS"``).
    ``error_votables``: an HTTP error status whose body is a VOTable is returned,
    for the caller's parser to read the service's own error message (DALI).
    """
    policy = policy or FetchPolicy()
    prefix = f"{what} " if what else ""
    body = io.BytesIO()
    try:
        async with (
            asyncio.timeout(policy.deadline_s),
            confined_client(policy) as client,
            _open(client, url, params, policy) as response,
        ):
            await _read_body(response, url, policy.max_bytes, body)
    except (TimeoutError, httpx.TimeoutException):
        raise _timeout(url, policy, timeout_reason, what) from None
    except httpx.HTTPError as error:
        raise AlvoError(Reason.HTTP_ERROR, f"{prefix}{url}: {_transport_failure(error)}") from None
    except AlvoError as error:
        raise AlvoError(error.reason, f"{prefix}{error.detail}") from None
    data = body.getvalue()
    if response.status_code >= 400 and not (
        error_votables and VOTABLE_SNIFF in data[:4000].upper()
    ):
        raise AlvoError(Reason.HTTP_ERROR, f"{prefix}{url}: HTTP {response.status_code}")
    return data


def fetch_document(url: str, params: Params = None, **options: Any) -> bytes:
    """Blocking :func:`fetch_document_async` (same options), for job runners."""
    return asyncio.run(fetch_document_async(url, params, **options))


def _transport_failure(error: httpx.HTTPError) -> str:
    """A broken connection in words, without the library's internals."""
    if "CERTIFICATE_VERIFY_FAILED" in str(error):
        return "its TLS certificate is not trusted (expired, self-signed or for another name)"
    words: dict[type[httpx.HTTPError], str] = {
        httpx.ConnectError: "cannot connect",
        httpx.RemoteProtocolError: "the server broke the HTTP protocol or closed the connection",
    }
    return words.get(type(error), error.__class__.__name__)


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
            async with total, hosts[_host(url)]:  # waiting here is not the URL's time
                result = await self._fetch_one(client, url)
            done += 1
            if progress:
                progress(done, len(urls))
            return result

        async with confined_client(policy) as client:
            return list(await asyncio.gather(*(one(client, url) for url in urls)))

    async def _fetch_one(self, client: httpx.AsyncClient, url: str) -> Fetched:
        try:
            self.policy.confinement.check_url(url)
        except AlvoError as error:
            return Fetched(url, error=error)
        target = self.cache_path(url)
        if target.exists():
            return Fetched(url, target, from_cache=True)
        try:
            async with asyncio.timeout(self.policy.deadline_s):
                await self._with_retries(client, url, target)
            return Fetched(url, target)
        except TimeoutError:
            return Fetched(url, error=_timeout(url, self.policy, Reason.FETCH_TIMEOUT))
        except AlvoError as error:
            return Fetched(url, error=error)

    async def _with_retries(self, client: httpx.AsyncClient, url: str, target: Path) -> None:
        """Download, retrying what may pass; raises the last error as an AlvoError."""
        error: AlvoError | None = None
        for attempt in range(self.policy.retries + 1):
            if attempt:
                await asyncio.sleep(self._delay(attempt, error))
            try:
                await self._download(client, url, target)
                return
            except _RetryableError as failure:
                error = failure.error
            except httpx.ReadTimeout:  # a server that stops sending will not resume
                raise _timeout(url, self.policy, Reason.FETCH_TIMEOUT) from None
            except httpx.TimeoutException:
                error = _timeout(url, self.policy, Reason.FETCH_TIMEOUT)
            except httpx.TransportError as failure:
                error = AlvoError(Reason.HTTP_ERROR, f"{url}: {_transport_failure(failure)}")
            except httpx.HTTPError as failure:  # e.g. a body that does not decode: not retried
                raise AlvoError(
                    Reason.HTTP_ERROR, f"{url}: {_transport_failure(failure)}"
                ) from None
        assert error is not None
        raise error

    def _delay(self, attempt: int, error: AlvoError | None) -> float:
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            return float(retry_after)
        return float(self.policy.backoff_s * 2 ** (attempt - 1))

    async def _download(self, client: httpx.AsyncClient, url: str, target: Path) -> None:
        async with _open(client, url, None, self.policy) as response:
            if response.status_code == 429 or response.status_code >= 500:
                error = AlvoError(Reason.HTTP_ERROR, f"{url}: HTTP {response.status_code}")
                error.retry_after = _retry_after(response)  # type: ignore[attr-defined]
                raise _RetryableError(error)
            if response.status_code >= 400:
                raise AlvoError(Reason.HTTP_ERROR, f"{url}: HTTP {response.status_code}")
            target.parent.mkdir(parents=True, exist_ok=True)
            handle, partial = tempfile.mkstemp(dir=target.parent, suffix=".part")
            try:
                with os.fdopen(handle, "wb") as out:
                    await _read_body(response, url, self.policy.max_bytes, out)
                os.replace(partial, target)  # atomic: the cache never holds half a file
            finally:
                if os.path.exists(partial):
                    os.unlink(partial)


def _host(url: str) -> str:
    """The per-host key of a URL (the URL itself when it has none: it will be refused)."""
    try:
        return urlsplit(url).netloc
    except ValueError:
        return url


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return min(float(value), 60.0) if value.replace(".", "", 1).isdigit() else None


class _RetryableError(Exception):
    def __init__(self, error: AlvoError) -> None:
        self.error = error
