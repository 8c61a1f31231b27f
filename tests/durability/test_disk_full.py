"""A full disk is a named refusal, never a lost or half-stored label (issue 24).

``ALVO_HOME`` lives on a small tmpfs that the test mounts (root only: skipped, with
the reason, elsewhere) and fills with a ballast file. Label POSTs then meet
SQLite's ``SQLITE_FULL`` (or ``ENOSPC`` from the WAL): each must be answered 507
``DISK_FULL`` with nothing of it stored, while reads go on answering and every label
acknowledged before stays; once the ballast is gone the same POST is stored. A job
whose files meet ``ENOSPC`` ends as ``DISK_FULL`` through the one job wrapper.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from service.app import create_app
from service.jobs.runner import job_runner
from service.store.engine import ENGINES
from tests.durability.storm import CAMPAIGN, build_home, pubdid
from uws.runner import UWSJobError

pytestmark = pytest.mark.durability


@contextlib.contextmanager
def small_filesystem(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``path`` for the test's duration."""
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited tmpfs needs root (the CI machine runs as root)")
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        ENGINES.clear()
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(folder: Path) -> Path:
    """Write a ballast file until the file system says it is full; return it."""
    ballast = folder / "ballast"
    block = b"\0" * (256 * 1024)
    with ballast.open("wb") as out:
        try:
            while True:
                out.write(block)
                out.flush()
        except OSError as error:
            assert error.errno == errno.ENOSPC
    return ballast


def labels_of(client: TestClient) -> dict[str, str]:
    answer = client.get(f"/campaigns/{CAMPAIGN}/labels?FORMAT=json")
    assert answer.status_code == 200, answer.text
    return {row["pubdid"]: row["label"] for row in answer.json()["labels"]}


def post(client: TestClient, first: int, count: int, verdict: str) -> int:
    body = {
        "labels": [{"pubdid": pubdid(i), "label": verdict} for i in range(first, first + count)]
    }
    return client.post(f"/campaigns/{CAMPAIGN}/labels", json=body).status_code


def test_labels_on_a_full_disk_are_refused_by_name_and_nothing_is_lost(tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "home", "6m") as home:
        settings = build_home(home, pool_size=2000)
        with TestClient(create_app(settings)) as client:
            assert post(client, 0, 10, "absorption") in (200, 201)
            before = labels_of(client)
            assert len(before) == 10
            ballast = fill(home)
            # The WAL may still hold free pages: post until the database needs more.
            statuses, first = [], 10
            while first < 1500 and 507 not in statuses:
                statuses.append(post(client, first, 50, "single-peak"))
                first += 50
            assert 507 in statuses, f"no POST met the full disk: {statuses}"
            assert set(statuses) <= {200, 201, 507}, statuses
            refused_at = first - 50
            during = labels_of(client)  # the service keeps answering reads
            acknowledged = {pubdid(i) for i in range(10, refused_at)}
            assert set(during) == set(before) | acknowledged
            assert not any(pubdid(i) in during for i in range(refused_at, refused_at + 50))
            ballast.unlink()
            assert post(client, refused_at, 50, "single-peak") in (200, 201)
            after = labels_of(client)
            assert {pubdid(i) for i in range(refused_at, refused_at + 50)} <= set(after)
            assert {k: after[k] for k in before} == before


def test_a_job_that_meets_a_full_disk_ends_as_disk_full(tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "jobs", "1m") as workdir:

        @job_runner
        def write_results(job: object, folder: Path, progress: object) -> dict[str, object]:
            (folder / "model.keras").write_bytes(b"\0" * (4 * 1024 * 1024))
            return {}

        with pytest.raises(UWSJobError, match=r"^DISK_FULL: "):
            write_results(None, workdir, None)  # type: ignore[arg-type]
