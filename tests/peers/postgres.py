"""A throwaway, real PostgreSQL 15 cluster for tests (shared by every engineer).

Use the session fixture in a test module or conftest::

    from tests.peers.postgres import postgres  # noqa: F401  (re-export the fixture)

    def test_something(postgres):
        url = postgres.url                       # postgresql+psycopg://postgres@127.0.0.1:PORT/postgres
        other = postgres.create_database("tap")  # a fresh, empty database; returns its URL

or, outside pytest, ``with PostgresCluster.started() as pg: ...``.

How it works: ``initdb`` a new cluster in a temporary directory (trust
authentication, fsync off: it is disposable), ``pg_ctl start`` it on a free
localhost port with its socket in that directory, and ``pg_ctl stop -m
immediate`` plus delete it at the end. As root, PostgreSQL refuses to run, so
the binaries run as the ``postgres`` user through ``runuser``. The binaries
are found in ``$ALVO_PG_BIN``, ``/usr/lib/postgresql/15/bin`` or via
``pg_config --bindir``; when none is found the fixture skips with the reason
(``make test`` installs Debian's ``postgresql-15`` and ``postgresql-15-pgsphere``
through tests/peers/install-debian-deps.sh). pgSphere is enabled per database
with ``CREATE EXTENSION pg_sphere`` (Debian's pgsphere 1.2 script fails on
PostgreSQL >= 15.20 -- "commutator operator @> is already the commutator of
operator <@" -- until tests/peers/patch_pgsphere.py, run by
install-debian-deps.sh, drops the offending clauses of its legacy operators).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

CANDIDATES = (
    "/usr/lib/postgresql/15/bin",
    "/usr/lib/postgresql/16/bin",
    "/usr/lib/postgresql/17/bin",
)


def find_bin() -> Path | None:
    """The directory holding initdb / pg_ctl / psql, or None."""
    for candidate in (os.environ.get("ALVO_PG_BIN", ""), *CANDIDATES):
        if candidate and (Path(candidate) / "initdb").is_file():
            return Path(candidate)
    pg_config = shutil.which("pg_config")
    if pg_config:
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True).stdout
        if (Path(found.strip()) / "initdb").is_file():
            return Path(found.strip())
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresCluster:
    """One running cluster; ``url`` is a SQLAlchemy URL of its ``postgres`` database."""

    def __init__(self, bindir: Path, root: Path, port: int, as_user: str | None) -> None:
        self.bindir = bindir
        self.root = root
        self.data = root / "data"
        self.port = port
        self.as_user = as_user

    @property
    def url(self) -> str:
        return self.url_of("postgres")

    def url_of(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / tool), *args]
        if self.as_user:
            command = ["runuser", "-u", self.as_user, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)

    def _checked(self, tool: str, *args: str) -> None:
        done = self._run(tool, *args)
        if done.returncode != 0:
            log = (
                (self.root / "postgres.log").read_text()
                if (self.root / "postgres.log").exists()
                else ""
            )
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr}\n{log[-2000:]}")

    def start(self) -> None:
        self._checked(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"
        )
        self.resume()

    def resume(self) -> None:
        """Start the server on its data directory (again, after :meth:`halt`)."""
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._checked(
            "pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data),
            "-l", str(self.root / "postgres.log"), "-o", options,
        )  # fmt: skip

    def halt(self) -> None:
        """Stop the server as an operator's restart does (``-m fast``: every session is
        ended, the data kept); :meth:`resume` starts it again on the same port."""
        self._checked("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.data))

    def stop(self) -> None:
        self._run("pg_ctl", "stop", "-m", "immediate", "-D", str(self.data))

    def create_database(self, name: str) -> str:
        """Create an empty database ``name``; return its SQLAlchemy URL."""
        self._checked("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return self.url_of(name)

    @classmethod
    @contextlib.contextmanager
    def started(cls) -> Iterator[PostgresCluster]:
        bindir = find_bin()
        if bindir is None:
            raise FileNotFoundError("PostgreSQL binaries (initdb, pg_ctl) not found")
        as_user = None
        root = Path(tempfile.mkdtemp(prefix="alvo-pg-"))
        if os.geteuid() == 0:  # PostgreSQL will not run as root
            as_user = "postgres"
            account = pwd.getpwnam(as_user)
            os.chown(root, account.pw_uid, account.pw_gid)
            root.chmod(0o700)
        cluster = cls(bindir, root, free_port(), as_user)
        try:
            cluster.start()
            yield cluster
        finally:
            cluster.stop()
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A real PostgreSQL cluster for the whole test session (skips if not installed)."""
    if find_bin() is None:
        pytest.skip("PostgreSQL not installed (Debian postgresql-15; or set ALVO_PG_BIN)")
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        if os.geteuid() == 0:
            pytest.skip("running as root but there is no 'postgres' user to run PostgreSQL as")
    with PostgresCluster.started() as cluster:
        yield cluster
