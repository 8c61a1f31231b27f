"""``alvo serve`` forked from a parent that has imported it already: a restart in a storm
costs the service's start, not Python's imports.

Where a restart's time goes (measured for issue 24, docs/operations.md): ~75 % of
``alvo serve``'s time to first answer is importing its modules (astropy, scipy,
SQLAlchemy, queryparser, vo-models...), the rest is ``create_app``, the UWS start
(database check, restart sweep, fork server) and uvicorn's bind. The imports are the
same every round and have nothing to do with durability, so a storm pays them once: a
*zygote* process imports ``service.cli`` and everything ``alvo serve`` imports, then,
per round, forks a child that runs ``alvo serve`` itself (``service.cli.main``). The
child is the whole service -- its own database connections, UWS store, fork server,
uvicorn -- and it is what the storm SIGKILLs; nothing it opened existed before the fork.

The zygote is driven over its stdin/stdout, one line per command: ``start`` answers the
child's pid; ``quit`` ends it. Children are reaped by the zygote (SIGCHLD ignored there,
restored in each child, whose fork server needs ``waitpid``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.security.processes import REPO, wait_until

ZYGOTE = """
import os, signal, sys
import service.cli, service.commands.serve, service.app, service.http.head, uws.serving
import service.net.confinement
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # killed children are reaped by the kernel
for line in sys.stdin:
    if line.strip() != "start":
        break
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        os.dup2(os.open(os.environ["ALVO_STORM_LOG"], os.O_WRONLY | os.O_APPEND), 1)
        os.dup2(1, 2)
        code = 1
        try:
            code = service.cli.main(["serve"])
        finally:
            os._exit(code)
    print(pid, flush=True)
"""


class PreImportedService:
    """``alvo serve`` on ``home`` and ``port`` (settings as :func:`alvo_serve`'s), each
    start a fork of one pre-imported zygote; the same ``start``/``kill9``/``stop``."""

    def __init__(self, home: Path, port: int, **settings: str) -> None:
        self.port = port
        self.log = home.parent / f"serve-{port}.log"
        self.log.touch()
        env = {
            "ALVO_HOME": str(home),
            "ALVO_PORT": str(port),
            "ALVO_DEMO_ARCHIVE_SIZE": "0",
            "ALVO_WORKERS": "1",
            "ALVO_SIMBAD": "off",
            "ALVO_STORM_LOG": str(self.log),
            **{f"ALVO_{k.upper()}": v for k, v in settings.items()},
        }
        environment = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", **env)
        self.zygote = subprocess.Popen(
            [sys.executable, "-c", ZYGOTE], cwd=REPO, env=environment, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )  # fmt: skip
        self.pid: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, probe: str, timeout: float = 120) -> PreImportedService:
        assert self.zygote.stdin is not None and self.zygote.stdout is not None
        self.zygote.stdin.write("start\n")
        self.zygote.stdin.flush()
        self.pid = int(self.zygote.stdout.readline())

        def answers() -> bool:
            assert self.pid is not None
            if not _alive(self.pid):
                raise AssertionError(f"service exited: {self.log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(self.url + probe, timeout=2).status_code == 200
            return False

        wait_until(answers, timeout, "the forked alvo serve to answer")
        return self

    def kill9(self) -> None:
        """SIGKILL the service with its helpers (its fork server and job processes, which
        inherit its listening socket: left alive they keep the port from the next start)
        and wait until none of them runs (the zygote reaps the service)."""
        assert self.pid is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        wait_until(lambda: not _group_alive(self.pid), 30, "the killed service to be gone")

    def stop(self) -> None:
        """Stop the service (SIGTERM, as an operator would) and the zygote."""
        if self.pid is not None and _alive(self.pid):
            os.kill(self.pid, signal.SIGTERM)
            with contextlib.suppress(AssertionError):
                wait_until(lambda: not _alive(self.pid), 30, "the service to stop")
            if _alive(self.pid):
                os.kill(self.pid, signal.SIGKILL)
        if self.zygote.poll() is None:
            assert self.zygote.stdin is not None
            with contextlib.suppress(BrokenPipeError):
                self.zygote.stdin.write("quit\n")
                self.zygote.stdin.close()
            try:
                self.zygote.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.zygote.kill()


def _alive(pid: int | None) -> bool:
    """Whether ``pid`` runs (a zombie does not count: it is dead, only not yet reaped)."""
    if pid is None:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def _group_alive(pgid: int | None) -> bool:
    """Whether any process of group ``pgid`` runs (zombies do not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if fields[0] != "Z" and int(fields[2]) == pgid:
                return True
    return False
