"""Acknowledged labels survive kill -9 of ``alvo serve``, on SQLite and on PostgreSQL.

A bounded storm (tests/durability/storm.py): four clients POST labels as JSON,
SAMP-relayed JSON, CSV and VOTable while the service is SIGKILLed at seeded random
moments and restarted, at least 20 times. Afterwards every label of an acknowledged
POST is stored exactly once with its verdict, and a POST that got an error or no
answer is wholly stored or not at all. Each database's storm stops by itself after
its 20 kills or 90 s, whichever comes first; it must reach the 20 kills. Restarts are
``alvo serve`` forked from a pre-imported parent (tests/durability/preimported.py):
~0.4 s each instead of the 6-17 s a cold start takes on a loaded machine, of which
~75 % is Python importing the service's modules.
"""

from __future__ import annotations

import sys
import time

import pytest

from tests.durability.storm import Storm, build_home, plan, stored_labels, tally
from tests.peers.postgres import postgres  # noqa: F401  (the session fixture)

pytestmark = [
    pytest.mark.durability,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kill -9 of a subprocess"),
]

ROUNDS = 20
#: The storm's time bound: 20 kills take ~30 s at a load average of 16 on 2 cores.
SECONDS = 90.0
POOL = 6000
SEED = 24


def storm(tmp_path, database_url: str, settings: dict[str, str]):  # type: ignore[no-untyped-def]
    import random

    home = tmp_path / "home"
    built = build_home(home, POOL, database_url)
    posts = plan(POOL, random.Random(SEED))
    started = time.monotonic()
    service = Storm(home, settings, posts, SEED)
    kills = service.run(ROUNDS, SECONDS)
    result = tally(posts, stored_labels(built.sqlalchemy_url), kills, time.monotonic() - started)
    starts = sorted(service.startups)
    print(result.line(), f"; restart to first answer: median {starts[len(starts) // 2]:.2f} s")
    return result


def check(result) -> None:  # type: ignore[no-untyped-def]
    assert result.rounds >= ROUNDS, result.line()
    assert result.posts["acknowledged"] > 0, result.line()
    assert result.posts["no answer"] > 0, "no kill met a POST in flight: " + result.line()
    assert not result.errors, result.errors
    assert not result.missing, result.missing[:10]
    assert not result.duplicated, result.duplicated[:10]
    assert not result.wrong, result.wrong[:10]
    assert not result.half_stored, result.half_stored[:10]
    assert result.present_labels == result.acknowledged_labels


def test_acknowledged_labels_survive_kill9_on_sqlite(tmp_path) -> None:
    check(storm(tmp_path, "", {}))


def test_acknowledged_labels_survive_kill9_on_postgresql(tmp_path, request) -> None:
    cluster = request.getfixturevalue("postgres")
    url = cluster.create_database(f"storm_{int(time.time() * 1000) % 10**9}")
    check(storm(tmp_path, url, {"database_url": url}))
