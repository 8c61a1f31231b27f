"""Jobs on Dask workers get a plain process's malloc, not the nanny's throttled one.

The probe asks glibc itself: a 1 MiB block taken while the mmap threshold is the
nanny's 128 KiB is a separate mmapped region (``mallinfo2().hblks`` grows); with
the job's thresholds it comes from the heap.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.uws.test_executors import RecordingSink
from uws.runner import WorkOrder

REPO = Path(__file__).resolve().parents[2]
NANNY_ENVIRONMENT = {"MALLOC_TRIM_THRESHOLD_": "65536"}

pytestmark = pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="the allocator tuning is glibc's mallopt"
)


class MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                     "uordblks", "fordblks", "keepcost")
    ]  # fmt: skip


def mebibyte_is_mmapped() -> bool:
    """Whether glibc serves a fresh 1 MiB block by mmap (the nanny's setting)."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    before = libc.mallinfo2().hblks
    block = libc.malloc(1 << 20)
    after = libc.mallinfo2().hblks
    libc.free(block)
    return after > before


def probe_runner(job: Any, workdir: Path, progress: Any) -> dict[str, Any]:
    """A UWS runner reporting what its own process does with a 1 MiB block."""
    path = workdir / "probe.json"
    path.write_text(json.dumps({"mmapped": mebibyte_is_mmapped(), "pid": os.getpid()}))
    return {"probe": (path, "application/json")}


def probe_chunk(chunk: int) -> tuple[int, bool]:
    return chunk, mebibyte_is_mmapped()


def fan_out_probes(chunks: list[int]) -> list[tuple[int, bool]]:
    from service.jobs.fanout import map_chunks

    return list(map_chunks(probe_chunk, chunks, window=2))


def probes_in_a_process(environment: dict[str, str], script: str) -> dict[str, bool]:
    """Run ``script`` (with ``probe`` and ``job_allocator`` imported) in a fresh process
    whose environment is this one's, less the nanny's variable, plus ``environment``."""
    prelude = (
        "import json\n"
        "from tests.uws.test_allocator import mebibyte_is_mmapped as probe\n"
        "from uws.executors.allocator import job_allocator\n"
    )
    inherited = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}
    done = subprocess.run(
        [sys.executable, "-c", prelude + script],
        env={**inherited, "PYTHONPATH": str(REPO), **environment},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def test_thresholds_hold_while_jobs_run_and_come_back_after() -> None:
    script = (
        "seen = {'before': probe()}\n"
        "with job_allocator():\n"
        "    with job_allocator():\n"
        "        pass\n"
        "    seen['inside'] = probe()  # the outer job still runs\n"
        "seen['after'] = probe()\n"
        "print(json.dumps(seen))\n"
    )
    seen = probes_in_a_process(NANNY_ENVIRONMENT, script)
    assert seen == {"before": True, "inside": False, "after": True}


def test_a_plain_process_keeps_its_dynamic_thresholds() -> None:
    """Without the nanny's variable glibc raises its mmap threshold past a freed 1 MiB
    block by itself; a job must not pin it back to 128 KiB when it ends."""
    script = (
        "probe()  # if mmapped, freeing it raises the threshold past 1 MiB\n"
        "seen = {'warm': probe()}\n"
        "with job_allocator():\n"
        "    pass\n"
        "seen['after a job'] = probe()\n"
        "print(json.dumps(seen))\n"
    )
    assert probes_in_a_process({}, script) == {"warm": False, "after a job": False}


@pytest.fixture(scope="module")
def nanny_cluster() -> Iterator[str]:
    """A real LocalCluster whose worker processes start under Dask's nanny environment."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        yield cluster.scheduler_address


def test_the_nanny_throttles_a_plain_task(nanny_cluster: str) -> None:
    """Guards the other tests: Dask still starts workers with the variable."""
    from distributed import Client

    with Client(nanny_cluster) as client:
        assert client.submit(mebibyte_is_mmapped, pure=False).result() is True


def test_a_job_on_a_worker_runs_unthrottled(nanny_cluster: str, tmp_path: Path) -> None:
    from uws.executors.dask import DaskExecutor

    executor = DaskExecutor(address=nanny_cluster)
    sink = RecordingSink()
    executor.start(sink)
    try:
        executor.submit(
            WorkOrder(
                job_id="probe", job_list="demo", runner=f"{__name__}:probe_runner", owner=None,
                parameters=(), uploads=(), workdir=str(tmp_path / "probe"),
            )
        )  # fmt: skip
        outcome = sink.wait_for("outcome", "probe", timeout=60)[2]
    finally:
        executor.close()
    assert outcome[0] == "completed", outcome
    probe = json.loads((tmp_path / "probe" / "probe.json").read_text())
    assert probe["pid"] != os.getpid() and probe["mmapped"] is False


def test_fanned_out_chunks_run_unthrottled(nanny_cluster: str) -> None:
    from distributed import Client

    with Client(nanny_cluster) as client:
        seen = client.submit(fan_out_probes, [1, 2, 3, 4], pure=False).result()
    assert seen == [(1, False), (2, False), (3, False), (4, False)]
