"""Acknowledged labels survive kill -9 of ``alvo serve``, on SQLite and on PostgreSQL.

A bounded storm (tests/durability/storm.py): four clients POST labels as JSON,
SAMP-relayed JSON, CSV and VOTable while the service is SIGKILLed at seeded random
moments and restarted, at least 20 times. Afterwards every label of an acknowledged
POST is stored exactly once with its verdict, and a POST that got an error or no
answer is wholly stored or not at all. Each database's storm stops by itself after
its 20 kills or 75 s, whichever comes first (~40 s on a quiet machine).
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
#: The storm's time bound; a machine so loaded that a restart takes ~7 s instead of
#: ~1.6 s reaches it first, and then at least ``FEWEST`` kills must have happened.
SECONDS = 75.0
FEWEST = 8
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
    assert result.rounds >= ROUNDS or (result.seconds >= SECONDS and result.rounds >= FEWEST), (
        result.line()
    )
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
