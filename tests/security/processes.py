"""Test helpers for process lifecycles: the process tree of a service, bounded waits,
and an HTTP server that holds every request it gets (a fetch that never ends).

``alvo serve`` and the UWS test servers run as real subprocesses here; what is
checked is the operating system's view (psutil), not the service's own account.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil

REPO = Path(__file__).resolve().parents[2]


def wait_until(predicate: Callable[[], object], timeout: float, what: str) -> object:
    """Re-check ``predicate`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def alive(process: psutil.Process) -> bool:
    """Running and not a zombie (a dead child its new parent has not reaped yet)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def family(pid: int) -> list[psutil.Process]:
    """Every live descendant of ``pid`` (fork server, resource tracker, job processes...)."""
    return [p for p in psutil.Process(pid).children(recursive=True) if alive(p)]


def role(process: psutil.Process) -> str:
    """What a descendant of a service is, from its command line."""
    with contextlib.suppress(psutil.Error):
        command = " ".join(process.cmdline())
        if "forkserver" in command:
            parent = process.parent()
            if parent is not None and "forkserver" in " ".join(parent.cmdline()):
                return "job"  # forked by the fork server: same command line, a job process
            return "forkserver"
        if "resource_tracker" in command:
            return "resource tracker"
        return "job child" if "sleep" in command else "other"
    return "gone"


def survivors(processes: list[psutil.Process]) -> list[str]:
    return [f"{p.pid} ({role(p)})" for p in processes if alive(p)]


class ServiceProcess:
    """A service started as a subprocess (``command``) that answers on ``url + probe``."""

    def __init__(self, command: list[str], env: dict[str, str], port: int, log: Path) -> None:
        self.command, self.env, self.port, self.log = command, env, port, log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, probe: str, timeout: float = 120) -> ServiceProcess:
        environment = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", **self.env)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.command, cwd=REPO, env=environment, stdout=log, stderr=subprocess.STDOUT
            )

        def answers() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"service exited: {self.log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(self.url + probe, timeout=2).status_code == 200
            return False

        wait_until(answers, timeout, f"{self.command[:4]} to answer")
        return self

    def kill9(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def alvo_serve(home: Path, port: int, **settings: str) -> ServiceProcess:
    """``alvo serve`` on ``home`` and ``port``, one worker, no demo archive."""
    env = {
        "ALVO_HOME": str(home),
        "ALVO_PORT": str(port),
        "ALVO_DEMO_ARCHIVE_SIZE": "0",
        "ALVO_WORKERS": "1",
        "ALVO_SIMBAD": "off",
        "ALVO_FETCH_ALLOW": "127.0.0.0/8",  # the holding server below is on loopback
        **{f"ALVO_{k.upper()}": v for k, v in settings.items()},
    }
    command = [sys.executable, "-m", "service.cli", "serve"]
    return ServiceProcess(command, env, port, home.parent / f"serve-{port}.log")


class HoldingServer:
    """An HTTP server that holds each request, never answering until released.

    Paths in ``files`` (``/name`` -> bytes) are served at once instead.
    ``requested`` is set when the first held request arrives: from then on a
    job fetching from it is certainly running, and stays so (no timing guess).
    """

    def __init__(self, files: dict[str, bytes] | None = None) -> None:
        self.requested = threading.Event()
        self.release = threading.Event()
        self.files = dict(files or {})
        holder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = holder.files.get(self.path)
                if body is not None:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/fits")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                holder.requested.set()
                holder.release.wait(timeout=600)
                with contextlib.suppress(OSError):
                    self.send_error(503, "released")

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    @contextlib.contextmanager
    def running(self) -> Iterator[HoldingServer]:
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.release.set()
            self.server.shutdown()
            self.server.server_close()
