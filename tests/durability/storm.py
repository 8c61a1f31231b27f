"""A Jepsen-style storm of label POSTs against an ``alvo serve`` that is killed at random.

The one thing alvo holds that cannot be recomputed is the oracle's labels, so the
check is the one the most trusted stores pass: every POST the service acknowledged
(2xx) is in the database afterwards exactly once, and every POST that got an error
or no answer at all is either wholly stored or not at all (a five-row CSV is never
three rows).

How a storm goes: a home with a source set, a pool of ``pool_size`` spectra and a
campaign; a plan of POSTs, each naming spectra no other POST names (so each row of
the ``label`` table belongs to exactly one POST), rotating through the formats a
label reaches the service in -- JSON from the labelling page, JSON marked ``samp``
(a table TOPCAT sent over SAMP, relayed by the page), CSV and VOTable files;
``clients`` threads take POSTs off the plan while the service is up; a controller
thread lets it run a seeded random moment, SIGKILLs it, starts it again on the same
port, ``rounds`` times. Each start is ``alvo serve`` forked from a parent that imported
it once (:mod:`tests.durability.preimported`): a restart costs the service's start, not
Python's imports. The storm ends by itself when the rounds or the plan run
out or ``seconds`` pass, whichever comes first.
"""

from __future__ import annotations

import dataclasses
import io
import random
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import sqlalchemy as sa
from astropy.table import Table

from service.settings import Settings
from service.store import schema
from service.store.campaigns import Campaigns
from service.store.datasets import Datasets
from service.store.engine import ENGINES
from service.vocabulary import VERDICTS
from tests.durability.preimported import PreImportedService
from tests.security.processes import free_port

CAMPAIGN = "storm"
FORMATS = ("json", "samp", "csv", "votable")
VOTABLE = "application/x-votable+xml"
#: Verdicts a storm gives, one per row (each row its own spectrum, so any will do).
STORM_VERDICTS = VERDICTS


def pubdid(row: int) -> str:
    return f"ivo://storm/pool?{row}"


def build_home(home: Path, pool_size: int, database_url: str = "") -> Settings:
    """A home with a 3-spectrum source set, a ``pool_size`` pool and campaign ``storm``.

    Built through the store directly (no CNN, no ingest): what is under test is the
    label path, and a pool of zero-feature spectra is as good a target as any.
    """
    home.mkdir(parents=True, exist_ok=True)
    settings = Settings(home=home, database_url=database_url)
    datasets = Datasets(settings)
    for name, domain, count, label in (("src", "source", 3, "absorption"),
                                       ("pool", "target", pool_size, "")):  # fmt: skip
        ids = [f"ivo://storm/{name}?{i}" for i in range(count)]
        rows = {"pubdid": ids, "ra": [10.0] * count, "dec": [20.0] * count}
        features = np.zeros((count, 140), np.float32)
        datasets.append(datasets.open_or_create(name, domain), features, rows, [label] * count)
    Campaigns(settings).create(CAMPAIGN, "src", "pool")
    ENGINES.clear()  # the service, not this process, holds the database from now on
    return settings


@dataclasses.dataclass
class Post:
    """One planned POST: its format and its rows ``(pubdid, verdict)``."""

    number: int
    form: str
    rows: list[tuple[str, str]]
    outcome: str = "unsent"  # acknowledged | error NNN | no answer
    detail: str = ""

    def request(self) -> dict[str, object]:
        """The keyword arguments of ``httpx.post`` that send it."""
        labels = [{"pubdid": p, "label": v} for p, v in self.rows]
        if self.form in ("json", "samp"):
            source = "samp" if self.form == "samp" else "page"
            return {"json": {"labels": labels, "source": source}}
        if self.form == "csv":
            body = "pubdid,label\n" + "".join(f"{p},{v}\n" for p, v in self.rows)
            return {"content": body.encode(), "headers": {"content-type": "text/csv"}}
        table = Table({"pubdid": [p for p, _ in self.rows], "label": [v for _, v in self.rows]})
        out = io.BytesIO()
        table.write(out, format="votable")
        return {"content": out.getvalue(), "headers": {"content-type": VOTABLE}}


def plan(pool_size: int, rng: random.Random, most_rows: int = 6) -> list[Post]:
    """POSTs of 1..``most_rows`` rows that cover the pool, each spectrum in one POST."""
    posts, row = [], 0
    while row < pool_size:
        size = min(rng.randint(1, most_rows), pool_size - row)
        rows = [(pubdid(r), rng.choice(STORM_VERDICTS)) for r in range(row, row + size)]
        posts.append(Post(len(posts), FORMATS[len(posts) % len(FORMATS)], rows))
        row += size
    return posts


@dataclasses.dataclass
class Tally:
    """What a storm did and what the database holds afterwards."""

    rounds: int
    seconds: float
    posts: Counter[str]
    acknowledged_labels: int
    present_labels: int
    missing: list[str]  # acknowledged rows not stored
    duplicated: list[str]  # rows stored more than once
    half_stored: list[str]  # unacknowledged POSTs with some rows but not all
    wrong: list[str]  # rows stored with another verdict than sent
    errors: Counter[str]

    def line(self) -> str:
        return (
            f"{self.rounds} kills in {self.seconds:.1f} s; POSTs {dict(self.posts)}; labels "
            f"acknowledged {self.acknowledged_labels}, present {self.present_labels}; "
            f"missing {len(self.missing)}, duplicated {len(self.duplicated)}, "
            f"half-stored {len(self.half_stored)}; errors {dict(self.errors)}"
        )


class Storm:
    """Clients POSTing labels to a service that a controller kills and restarts."""

    def __init__(
        self,
        home: Path,
        settings: dict[str, str],
        posts: list[Post],
        seed: int,
        clients: int = 4,
    ) -> None:
        self.home, self.settings, self.posts = home, settings, posts
        self.rng = random.Random(seed)
        self.clients = clients
        self.port = free_port()
        self.up = threading.Event()  # set while the service answers and may be posted to
        self.done = threading.Event()
        self._next = 0
        self._lock = threading.Lock()
        self.service: PreImportedService | None = None
        self.startups: list[float] = []  # seconds each start took to answer

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/campaigns/{CAMPAIGN}/labels"

    def _take(self) -> Post | None:
        with self._lock:
            if self._next >= len(self.posts):
                return None
            self._next += 1
            return self.posts[self._next - 1]

    def _client(self) -> None:
        with httpx.Client(timeout=20) as http:
            while not self.done.is_set():
                if not self.up.wait(timeout=0.2):
                    continue
                post = self._take()
                if post is None:
                    return
                try:
                    answer = http.post(self.url, **post.request())  # type: ignore[arg-type]
                except httpx.HTTPError as error:
                    post.outcome, post.detail = "no answer", type(error).__name__
                    continue
                if answer.is_success:
                    stored = answer.json()["stored"]
                    post.outcome = "acknowledged"
                    post.detail = "" if stored == len(post.rows) else f"stored {stored}"
                else:
                    post.outcome, post.detail = f"error {answer.status_code}", answer.text[:200]

    def _start(self) -> None:
        if self.service is None:
            self.service = PreImportedService(self.home, self.port, **self.settings)
        started = time.monotonic()
        self.service.start("/availability", timeout=60)
        self.startups.append(time.monotonic() - started)
        self.up.set()

    def run(self, rounds: int, seconds: float, longest_up: float = 0.5) -> int:
        """Kill and restart the service ``rounds`` times (or until ``seconds`` pass or
        the plan runs out); the number of kills done. Leaves the service stopped."""
        threads = [threading.Thread(target=self._client, daemon=True) for _ in range(self.clients)]
        deadline = time.monotonic() + seconds
        kills = 0
        self._start()
        for thread in threads:
            thread.start()
        try:
            while kills < rounds and time.monotonic() < deadline and self._next < len(self.posts):
                time.sleep(self.rng.uniform(0.05, longest_up))  # the random moment of the kill
                assert self.service is not None
                self.up.clear()  # POSTs in flight meet the kill; no new one starts
                self.service.kill9()
                kills += 1
                self._start()
            # the last round: let the clients finish what they hold, then stop them
            time.sleep(0.5)
        finally:
            self.done.set()
            for thread in threads:
                thread.join(timeout=30)
            if self.service is not None:
                self.service.stop()
        return kills


def stored_labels(database_url: str) -> list[tuple[str, str]]:
    """Every ``(pubdid, verdict)`` row of the campaign's labels, duplicates kept."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            return [
                (str(p), str(v))
                for p, v in conn.execute(
                    sa.select(schema.spectrum.c.pubdid, schema.label.c.label).join(
                        schema.spectrum, schema.spectrum.c.spectrum_id == schema.label.c.spectrum_id
                    )
                )
            ]
    finally:
        engine.dispose()


def tally(posts: list[Post], stored: list[tuple[str, str]], kills: int, seconds: float) -> Tally:
    """Compare what the clients were told with what the database holds."""
    counts = Counter(p for p, _ in stored)
    verdicts = dict(stored)
    missing, duplicated, half, wrong = [], [], [], []
    acknowledged = 0
    for post in posts:
        present = [p for p, _ in post.rows if counts[p]]
        for p, verdict in post.rows:
            if counts[p] > 1:
                duplicated.append(p)
            if counts[p] and verdicts[p] != verdict:
                wrong.append(p)
        if post.outcome == "acknowledged":
            acknowledged += len(post.rows)
            missing += [p for p, _ in post.rows if not counts[p]]
        elif present and len(present) != len(post.rows):
            half.append(f"POST {post.number} ({post.form}, {post.outcome}): "
                        f"{len(present)} of {len(post.rows)} rows")  # fmt: skip
        elif present and post.outcome == "unsent":
            half.append(f"POST {post.number} was never sent but is stored")
    acknowledged_present = sum(
        1 for post in posts if post.outcome == "acknowledged" for p, _ in post.rows if counts[p]
    )
    return Tally(
        rounds=kills,
        seconds=seconds,
        posts=Counter(post.outcome for post in posts),
        acknowledged_labels=acknowledged,
        present_labels=acknowledged_present,
        missing=missing,
        duplicated=duplicated,
        half_stored=half,
        wrong=wrong,
        errors=Counter(
            f"{post.outcome}: {post.detail[:80]}"
            for post in posts
            if post.outcome.startswith("error") or (post.outcome == "acknowledged" and post.detail)
        ),
    )
