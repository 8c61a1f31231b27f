"""Live UWS servers (uvicorn subprocesses) over SQLite or PostgreSQL, local or Dask executor.

Every XML answer any test receives through :func:`client` is validated against
the bundled UWS 1.1 schema by an httpx response hook, so no document escapes
validation.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import xmlschema
from lxml import etree

from tests.peers.postgres import PostgresCluster, free_port
from tests.peers.postgres import postgres as postgres  # re-exported session fixture
from uws.xml import UWS_XSD

REPO = Path(__file__).resolve().parents[2]
UWS_NS = "{http://www.ivoa.net/xml/UWS/v1.0}"
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True)

#: Backends the conformance suite runs against: each store with each executor at least once.
BACKENDS = ["sqlite-local", "postgres-local", "postgres-dask"]


@pytest.fixture(scope="session")
def uws_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(UWS_XSD))


def parse(content: bytes) -> etree._Element:
    return etree.fromstring(content, SAFE_PARSER)


class LiveServer:
    """``python -m tests.uws.server`` on a free port; restartable on the same store."""

    def __init__(self, store: str, executor: str, workdir: Path, workers: int = 2) -> None:
        self.store = store
        self.executor = executor
        self.workdir = workdir
        self.workers = workers
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = workdir.parent / f"server-{uuid.uuid4().hex[:6]}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LiveServer:
        env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
        command = [
            sys.executable, "-m", "tests.uws.server", "--store", self.store,
            "--executor", self.executor, "--workdir", str(self.workdir),
            "--port", str(self.port), "--workers", str(self.workers),
        ]  # fmt: skip
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"UWS server exited: {self.log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/demo?LAST=1", timeout=2).status_code == 200:
                    return self
            time.sleep(0.1)
        raise RuntimeError(f"UWS server did not start: {self.log.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self, sig: int = signal.SIGTERM) -> LiveServer:
        self.stop(sig)
        return self.start()


def _validating_hook(schema: xmlschema.XMLSchema) -> Callable[[httpx.Response], None]:
    def check(response: httpx.Response) -> None:
        response.read()
        kind = response.headers.get("content-type", "")
        if response.status_code == 200 and kind.startswith("text/xml"):
            root = parse(response.content)
            assert root.tag.startswith(UWS_NS), root.tag
            schema.validate(etree.tostring(root).decode())

    return check


@contextlib.contextmanager
def client(
    server: LiveServer, schema: xmlschema.XMLSchema, user: str | None = None
) -> Iterator[httpx.Client]:
    headers = {"X-Forwarded-User": user} if user else {}
    with httpx.Client(
        base_url=server.url,
        headers=headers,
        follow_redirects=False,
        timeout=60,
        event_hooks={"response": [_validating_hook(schema)]},
    ) as http:
        yield http


def make_store(kind: str, postgres: PostgresCluster | None, root: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{root / 'uws.sqlite'}"
    assert postgres is not None
    return postgres.create_database("uws_" + uuid.uuid4().hex[:10])


@pytest.fixture(scope="session")
def workroot() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="uws-tests-") as root:
        yield Path(root)


@pytest.fixture
def server_factory(
    request: pytest.FixtureRequest, workroot: Path
) -> Iterator[Callable[..., LiveServer]]:
    """Start servers on demand (``factory("sqlite", "local")``); all stopped at the end."""
    started: list[LiveServer] = []

    def factory(store: str = "sqlite", executor: str = "local", workers: int = 2) -> LiveServer:
        pg = request.getfixturevalue("postgres") if store == "postgres" else None
        root = Path(tempfile.mkdtemp(dir=workroot))
        server = LiveServer(make_store(store, pg, root), executor, root / "work", workers)
        started.append(server)
        return server.start()

    yield factory
    for server in started:
        server.stop(signal.SIGKILL)


@pytest.fixture(scope="module", params=BACKENDS)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """One server per backend for a whole conformance module."""
    store, executor = request.param.split("-")
    pg = request.getfixturevalue("postgres") if store == "postgres" else None
    root = tmp_path_factory.mktemp(request.param)
    server = LiveServer(make_store(store, pg, root), executor, root / "work")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def http(live: LiveServer, uws_schema: xmlschema.XMLSchema) -> Iterator[httpx.Client]:
    with client(live, uws_schema) as session:
        yield session


def wait_until(predicate: Callable[[], object], timeout: float = 20.0, what: str = "") -> object:
    """Re-check a condition until it holds (a bounded wait, not a hope-sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(0.05)
