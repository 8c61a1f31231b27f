"""A real single-node SLURM for tests: munged, slurmctld and slurmd on this machine.

Use the session fixture in a test module::

    from tests.peers.slurm import slurm  # noqa: F401  (re-export the fixture)

    def test_something(slurm):
        slurm.run("sbatch", "--wrap", "hostname")   # SLURM_CONF points at this cluster
        slurm.node                                   # this machine's hostname

or, outside pytest, ``with SlurmCluster.started() as cluster: ...``.

How it works: a minimal ``slurm.conf`` for this one node (its hostname, 2 CPUs,
the real memory of ``/proc/meminfo``, no cgroups, no accounting, free ports)
in a temporary directory; a private ``munged`` (as the ``munge`` user, with the
system's key, its socket in that directory, named to SLURM by ``AuthInfo``);
``slurmctld`` and ``slurmd`` in the foreground as children of the test
process. :meth:`SlurmCluster.wait_idle` waits, with a deadline, until ``sinfo``
shows the node idle. ``SLURM_CONF`` is set in this process's environment for
the session, so ``sbatch``/``scancel`` run by any library (dask-jobqueue) reach
this cluster. At the end the daemons are stopped (by the ids this fixture
started) and the directory deleted.

The daemons run as root (SLURM's ``SlurmUser``/``SlurmdUser``); elsewhere, or
when Debian's ``slurm-wlm`` and ``munge`` are not installed (``make test``
installs them through tests/peers/install-debian-deps.sh), the fixture skips
with the reason.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

DAEMONS = ("munged", "slurmctld", "slurmd")
TOOLS = ("sinfo", "sbatch", "squeue", "scancel")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def real_memory_mib() -> int:
    """MemTotal of /proc/meminfo in MiB: what slurmd finds and checks RealMemory against."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise RuntimeError("no MemTotal in /proc/meminfo")


def missing() -> str | None:
    """Why a SLURM cannot be started here, or None."""
    if os.geteuid() != 0:
        return "a private SLURM needs root (its daemons run as SlurmUser=root)"
    lost = [tool for tool in (*DAEMONS, *TOOLS) if shutil.which(tool, path=_path()) is None]
    if lost:
        return f"{', '.join(lost)} not installed (Debian: slurm-wlm munge)"
    if not Path("/etc/munge/munge.key").is_file():
        return "no /etc/munge/munge.key (Debian's munge package makes it)"
    try:
        pwd.getpwnam("munge")
    except KeyError:
        return "no munge user (Debian's munge package makes it)"
    return None


def _path() -> str:
    return os.environ.get("PATH", "") + ":/usr/sbin:/sbin"


class SlurmCluster:
    """One running single-node cluster; ``env`` is what its client commands need."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.node = socket.gethostname()
        self.cpus = 2
        self.memory_mib = real_memory_mib()
        self.conf = root / "slurm.conf"
        self.munge_socket = root / "munge" / "munge.socket"
        self._daemons: list[subprocess.Popen[bytes]] = []

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf), "PATH": _path()}

    def write_conf(self) -> None:
        state = self.root / "state"
        spool = self.root / "spool"
        state.mkdir()
        spool.mkdir()
        self.conf.write_text(
            f"""\
ClusterName=alvotest
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.munge_socket}
StateSaveLocation={state}
SlurmdSpoolDir={spool}
SlurmctldPidFile={self.root / "slurmctld.pid"}
SlurmdPidFile={self.root / "slurmd.pid"}
SlurmctldLogFile={self.root / "slurmctld.log"}
SlurmdLogFile={self.root / "slurmd.log"}
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
KillWait=5
SlurmdTimeout=30
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mib} State=UNKNOWN
PartitionName=debug Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
"""
        )

    def start(self) -> None:
        self.write_conf()
        munge_dir = self.munge_socket.parent
        munge_dir.mkdir(mode=0o755)
        user = pwd.getpwnam("munge")
        os.chown(munge_dir, user.pw_uid, user.pw_gid)
        os.chmod(self.root, 0o755)  # munged (as munge) must reach its socket directory
        self._spawn(
            "runuser", "-u", "munge", "--", shutil.which("munged", path=_path()) or "munged",
            "--foreground", f"--socket={self.munge_socket}",
            f"--pid-file={munge_dir / 'munged.pid'}", f"--log-file={munge_dir / 'munged.log'}",
            f"--seed-file={munge_dir / 'munged.seed'}",
        )  # fmt: skip
        self._until(self.munge_socket.exists, 20, "munged made no socket")
        # -i: ignore any state a crashed earlier run left (there is none: a fresh directory)
        self._spawn("slurmctld", "-D", "-i", "-f", str(self.conf))
        self._spawn("slurmd", "-D", "-f", str(self.conf), "-N", self.node)

    def _spawn(self, *command: str) -> None:
        name = Path(command[0]).name
        log = open(self.root / f"{name}.stdout", "wb")  # noqa: SIM115 (kept open for the child)
        self._daemons.append(
            subprocess.Popen(
                list(command),
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    def _until(self, condition: object, seconds: float, what: str) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if callable(condition) and condition():
                return
            for daemon in self._daemons:
                if daemon.poll() is not None:
                    raise RuntimeError(f"{daemon.args} exited ({daemon.returncode}): {self.logs()}")
            time.sleep(0.2)
        raise RuntimeError(f"{what} within {seconds:.0f} s: {self.logs()}")

    def node_state(self) -> str:
        done = self.run("sinfo", "--noheader", "--nodes", self.node, "--format=%T", check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    def wait_idle(self, seconds: float = 60) -> None:
        """Until ``sinfo`` shows the node idle (slurmd registered with slurmctld)."""
        self._until(lambda: self.node_state() == "idle", seconds, "the node did not become idle")

    def run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(command), env=self.env, capture_output=True, text=True, timeout=30, check=check
        )

    def jobs(self) -> list[tuple[str, str]]:
        """(job id, state) of every job still known to slurmctld."""
        out = self.run("squeue", "--noheader", "--format=%i %T").stdout
        return [tuple(line.split()[:2]) for line in out.splitlines() if line.strip()]  # type: ignore[misc]

    def logs(self) -> str:
        tails = []
        for name in ("slurmctld.log", "slurmd.log", "munge/munged.log", "slurmd.stdout"):
            path = self.root / name
            if path.exists():
                tails.append(f"--- {name}\n" + "\n".join(path.read_text().splitlines()[-15:]))
        return "\n".join(tails)

    def stop(self) -> None:
        for daemon in reversed(self._daemons):
            if daemon.poll() is None:
                daemon.terminate()
        for daemon in reversed(self._daemons):
            try:
                daemon.wait(timeout=15)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait(timeout=5)

    @classmethod
    @contextlib.contextmanager
    def started(cls) -> Iterator[SlurmCluster]:
        root = Path(tempfile.mkdtemp(prefix="alvo-slurm-"))
        cluster = cls(root)
        try:
            cluster.start()
            cluster.wait_idle()
            yield cluster
        finally:
            cluster.stop()
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def slurm() -> Iterator[SlurmCluster]:
    why = missing()
    if why:
        pytest.skip(why)
    with SlurmCluster.started() as cluster:
        before = os.environ.get("SLURM_CONF")
        os.environ["SLURM_CONF"] = str(cluster.conf)
        try:
            yield cluster
        finally:
            if before is None:
                os.environ.pop("SLURM_CONF", None)
            else:
                os.environ["SLURM_CONF"] = before
