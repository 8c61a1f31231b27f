"""A real GAVO DaCHS publishing the real Ondrejov spectra over SSA + DataLink.

The Ondrejov archive alvo's source domain comes from is a DaCHS SSAP +
DataLink service, so DaCHS is the reference our SSA/DataLink client must work
against. Use the session fixture::

    from tests.peers.dachs import dachs_ondrejov  # noqa: F401  (re-export the fixture)

    def test_something(dachs_ondrejov):
        dachs_ondrejov.ssa_url       # http://127.0.0.1:8080/ondrejov/q/ssa/ssap.xml
        dachs_ondrejov.datalink_url  # .../ondrejov/q/sdl/dlmeta  (the {links} endpoint)
        dachs_ondrejov.sources       # {publisher DID: the real file it was made from}

What the fixture does (as root, with Debian's ``gavodachs2-server``; it skips
with the reason otherwise), each step idempotent so that a run killed half-way
leaves nothing that breaks the next one:

1. ``/etc/gavo.rc``: a loopback server on port 8080, authority alvo.test.local.
2. The PostgreSQL cluster DaCHS was installed into is started when it is down.
3. ``/var/gavo/inputs/ondrejov/``: the RD committed as
   ``tests/peers/dachs/ondrejov/q.rd`` and copies of the real BINTABLE-form
   spectra of ``../shared/data/real/ondrejov/`` in ``data/`` (the raw 1-D image
   ``oe270005.fits`` is left out: the real archive's DataLink form is the table).
4. ``dachs imp //obscore`` when ObsCore is missing; ``dachs imp q`` and
   ``dachs pub q`` only when the RD, the data or the configuration changed
   since the last import (a SHA-256 stamp) or the table is gone: a cached
   start takes a few seconds instead of ~45.
5. A server left by an earlier run is stopped (SIGTERM to the PID in
   ``/var/gavo/state/web.pid``, as ``dachs serve stop`` does), ``dachs serve
   start``, then the SSA endpoint is polled until it answers; the server is
   stopped the same way at the end of the session.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

HERE = Path(__file__).resolve().parent
RD_SOURCE = HERE / "dachs" / "ondrejov" / "q.rd"
RESOURCE = "ondrejov"
HOST, PORT = "127.0.0.1", 8080
BASE_URL = f"http://{HOST}:{PORT}"
GAVO_RC = Path("/etc/gavo.rc")
GAVO_RC_TEXT = f"""\
# Written by alvo's tests/peers/dachs.py: a loopback-only DaCHS for peer tests.
[web]
serverURL: {BASE_URL}
bindAddress: {HOST}
serverPort: {PORT}

[ivoa]
authority: alvo.test.local
"""
GAVO_ROOT = Path("/var/gavo")
#: The raw CCD700 image: not the form the Ondrejov DataLink service delivers.
RAW_IMAGES = frozenset({"oe270005.fits"})
START_TIMEOUT_S = 60.0


@dataclasses.dataclass(frozen=True)
class DachsService:
    """A running DaCHS: its endpoints and the files behind each publisher DID."""

    ssa_url: str
    datalink_url: str
    dlget_url: str
    sources: dict[str, Path]


def _skip_reason() -> str | None:
    if shutil.which("dachs") is None:
        return "GAVO DaCHS not installed (Debian gavodachs2-server; make test installs it as root)"
    if os.geteuid() != 0:
        return "GAVO DaCHS tests run as root (they write /etc/gavo.rc and /var/gavo/inputs)"
    if not GAVO_ROOT.is_dir():
        return f"GAVO DaCHS installed but {GAVO_ROOT} is missing (its setup did not finish)"
    return None


def _run(*command: str, cwd: Path | None = None, timeout: float = 300) -> str:
    """Run a DaCHS/PostgreSQL command; its output, or a failure showing it."""
    done = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-3000:]}"
            f"\n{done.stderr[-3000:]}"
        )
    return done.stdout


def _ensure_postgres() -> None:
    """Start DaCHS's cluster (the first one pg_lsclusters lists) if it is down."""
    listed = _run("pg_lsclusters", "--no-header").split()
    if len(listed) < 4:
        raise RuntimeError("pg_lsclusters lists no PostgreSQL cluster for DaCHS")
    version, cluster, status = listed[0], listed[1], listed[3]
    if status != "online":
        _run("pg_ctlcluster", version, cluster, "start", timeout=120)


def _database() -> str:
    dsn = GAVO_ROOT / "etc" / "dsn"
    for line in dsn.read_text().splitlines() if dsn.exists() else []:
        key, _, value = line.partition("=")
        if key.strip() == "database":
            return value.strip()
    return "gavo"


def _tables_exist(*names: str) -> bool:
    query = " and ".join(f"to_regclass('{name}') is not null" for name in names)
    out = _run(
        "runuser", "-u", "postgres", "--", "psql", "-d", _database(), "-tAc", f"select {query}"
    )
    return out.strip() == "t"


def _stage(resdir: Path, spectra: list[Path]) -> str:
    """Copy the RD and spectra into the resource directory; their joint SHA-256."""
    digest = hashlib.sha256(GAVO_RC_TEXT.encode())
    data = resdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    wanted = {path.name for path in spectra}
    for stale in data.iterdir():
        if stale.name not in wanted:
            stale.unlink()
    for source, target in [(RD_SOURCE, resdir / "q.rd")] + [(p, data / p.name) for p in spectra]:
        content = source.read_bytes()
        digest.update(target.name.encode() + b"\0" + hashlib.sha256(content).digest())
        if not target.exists() or target.read_bytes() != content:
            target.write_bytes(content)
    return digest.hexdigest()


def _import(resdir: Path, digest: str) -> None:
    stamp = resdir / ".alvo-import.sha256"
    if not _tables_exist("ivoa._obscoresources"):
        _run("dachs", "imp", "//obscore")
        stamp.unlink(missing_ok=True)  # re-register our table in the fresh ObsCore
    current = stamp.read_text().strip() if stamp.exists() else ""
    if current == digest and _tables_exist(f"{RESOURCE}.data"):
        return
    stamp.unlink(missing_ok=True)
    _run("dachs", "imp", "q", cwd=resdir)
    _run("dachs", "pub", "q", cwd=resdir)
    stamp.write_text(digest + "\n")


def _wait_until_answering(url: str, timeout_s: float) -> None:
    """Poll the SSA endpoint until DaCHS serves a VOTable (it forks into the background)."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, params={"REQUEST": "queryData", "MAXREC": "1"}, timeout=5)
            if response.status_code == 200 and b"<VOTABLE" in response.content[:2000]:
                return
            last = f"HTTP {response.status_code}"
        except httpx.TransportError as error:
            last = error.__class__.__name__
        time.sleep(0.2)
    log = GAVO_ROOT / "logs" / "dcErrors"
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    raise RuntimeError(f"DaCHS did not answer {url} within {timeout_s} s ({last})\n{tail}")


def _port_holder() -> str:
    """What answers on the DaCHS port now ('' when nothing does)."""
    try:
        response = httpx.get(BASE_URL + "/", timeout=2)
    except httpx.TransportError:
        return ""
    return response.headers.get("server", "an unknown server")


def _stop_server(timeout_s: float = 30.0) -> None:
    """Stop the DaCHS server named by its PID file (what ``dachs serve stop`` does).

    Signalled directly: ``dachs serve stop`` spends seconds importing DaCHS
    first. A PID file whose process is gone is removed.
    """
    pidfile = GAVO_ROOT / "state" / "web.pid"
    try:
        pid = int(pidfile.read_text().split()[0])
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        pidfile.unlink(missing_ok=True)  # stale: no such process
        return
    if b"dachs" not in command:  # the number was reused by another process
        pidfile.unlink(missing_ok=True)
        return
    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            os.kill(pid, 0)  # raises once the process has exited
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    pidfile.unlink(missing_ok=True)


@contextlib.contextmanager
def _setup_lock() -> Iterator[None]:
    """Two pytest sessions must not import into the same DaCHS at once."""
    with open(GAVO_ROOT / "state" / "alvo-tests.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


@contextlib.contextmanager
def started_dachs(real_data: Path) -> Iterator[DachsService]:
    """Set up, import and serve the Ondrejov resource; stop the server afterwards."""
    spectra = sorted(p for p in (real_data / "ondrejov").glob("*.fits") if p.name not in RAW_IMAGES)
    resdir = GAVO_ROOT / "inputs" / RESOURCE
    with _setup_lock():
        if not GAVO_RC.exists() or GAVO_RC.read_text() != GAVO_RC_TEXT:
            GAVO_RC.write_text(GAVO_RC_TEXT)
        _ensure_postgres()
        _import(resdir, _stage(resdir, spectra))
        _stop_server()  # one left by an earlier run may serve an older RD
        holder = _port_holder()
        if holder:
            pytest.skip(f"port {PORT} is taken by {holder}; DaCHS cannot serve there")
        _run("dachs", "serve", "start", timeout=120)
    rd_url = f"{BASE_URL}/{RESOURCE}/q"
    service = DachsService(
        ssa_url=f"{rd_url}/ssa/ssap.xml",
        datalink_url=f"{rd_url}/sdl/dlmeta",
        dlget_url=f"{rd_url}/sdl/dlget",
        sources={_pubdid(path): path for path in spectra},
    )
    try:
        _wait_until_answering(service.ssa_url, START_TIMEOUT_S)
        yield service
    finally:
        _stop_server()


def _pubdid(path: Path) -> str:
    from astropy.io import fits

    return str(fits.getval(path, "DS_IDPUB", ext=1))


@pytest.fixture(scope="session")
def dachs_ondrejov(real_data: Path) -> Iterator[DachsService]:
    """DaCHS serving the real Ondrejov spectra over SSA + DataLink on loopback."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    with started_dachs(real_data) as service:
        yield service
