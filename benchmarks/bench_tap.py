"""TAP benchmark: a cone query and a top-N-by-entropy query over N generated predictions.

For each database (SQLite always; PostgreSQL + pgSphere when ``--postgres`` or
a local PostgreSQL install is found, started throwaway like the tests do) it
fills the result tables with ``--rows`` target spectra and one prediction per
spectrum, then times, as the median of ``--repeat`` runs,

- ``cone``: candidates within 1 degree, through the whole TAP path (ADQL ->
  SQL -> confined execution) -- the index: the ``dec`` B-tree with the
  declination band the SQLite translation adds, or pgSphere's GiST index on
  ``spoint(radians(ra), radians(dec))`` on PostgreSQL;
- ``top100``: the 100 highest-entropy predictions of the campaign's iteration
  -- the index: ``prediction(campaign_id, iteration, entropy)``, read backwards;

and, as the reference measured in the same run, the same SQL with the index
switched off (SQLite ``NOT INDEXED``; PostgreSQL ``enable_indexscan`` /
``enable_bitmapscan`` off). It prints latencies and the ratio reference/TAP.

    python benchmarks/bench_tap.py --rows 4000000         # the issue's size
    python benchmarks/bench_tap.py --rows 200000 --no-postgres
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import sqlalchemy as sa
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.store import demo
from service.vo.tap.query import TapDatabase

CONE = (
    "SELECT s.spectrum_id, s.ra, s.dec, p.entropy FROM alvo.spectrum AS s "
    "JOIN alvo.prediction AS p ON p.spectrum_id = s.spectrum_id "
    "WHERE 1 = CONTAINS(POINT('ICRS', s.ra, s.dec), CIRCLE('ICRS', 83.8, -5.4, 1))"
)
TOP = (
    "SELECT TOP 100 prediction_id, spectrum_id, entropy FROM alvo.prediction "
    "WHERE campaign_id = 1 AND iteration = 1 ORDER BY entropy DESC"
)
REFERENCE_SQL = {
    "sqlite": {
        "cone": "SELECT s.spectrum_id, s.ra, s.dec, p.entropy FROM spectrum AS s NOT INDEXED "
        "JOIN prediction AS p ON p.spectrum_id = s.spectrum_id "
        "WHERE adql_in_circle(s.ra, s.dec, 83.8, -5.4, 1.0) = 1",
        "top100": "SELECT prediction_id, spectrum_id, entropy FROM prediction NOT INDEXED "
        "WHERE campaign_id = 1 AND iteration = 1 ORDER BY entropy DESC LIMIT 100",
    },
    "postgresql": {
        "cone": "SELECT s.spectrum_id, s.ra, s.dec, p.entropy FROM spectrum AS s "
        "JOIN prediction AS p ON p.spectrum_id = s.spectrum_id WHERE spoint(RADIANS(s.ra), "
        "RADIANS(s.dec)) @ scircle(spoint(RADIANS(83.8), RADIANS(-5.4)), RADIANS(1.0))",
        "top100": "SELECT prediction_id, spectrum_id, entropy FROM prediction "
        "WHERE campaign_id = 1 AND iteration = 1 ORDER BY entropy DESC LIMIT 100",
    },
}


def median_seconds(action: Callable[[], object], repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def fill(url: str, rows: int) -> float:
    engine = sa.create_engine(url)
    start = time.perf_counter()
    with tqdm(total=int(rows * 2.1), unit="row", desc="generate", leave=False) as bar:
        demo.fill_demo(engine, rows, iterations=1, chunk=100_000, progress=bar.update)
    with engine.begin() as conn:
        conn.execute(sa.text("ANALYZE"))
    engine.dispose()
    return time.perf_counter() - start


def reference(url: str, dialect: str, name: str) -> Callable[[], int]:
    """The same query with the index unusable, on a plain connection."""
    engine = sa.create_engine(url)
    if dialect == "sqlite":
        from service.vo.tap import sphere

        sa.event.listen(engine, "connect", lambda dbapi, _: sphere.register(dbapi))

    def run() -> int:
        with engine.connect() as conn:
            if dialect == "postgresql":
                conn.execute(sa.text("SET enable_indexscan = off"))
                conn.execute(sa.text("SET enable_bitmapscan = off"))
            return len(conn.execute(sa.text(REFERENCE_SQL[dialect][name])).all())

    return run


def bench(url: str, dialect: str, rows: int, repeat: int) -> list[str]:
    seconds = fill(url, rows)
    db = TapDatabase(url, timeout_s=600)
    db.setup()
    lines = [f"{dialect}: {rows:,} spectra + {rows:,} predictions generated in {seconds:.0f} s"]
    print(lines[0], flush=True)
    for name, adql_text in (("cone", CONE), ("top100", TOP)):
        tap_s, result = median_seconds(lambda q=adql_text: db.run(q, 1_000_000), repeat)
        ref_s, n_ref = median_seconds(reference(url, dialect, name), max(1, repeat // 2))
        n = result.nrows  # type: ignore[attr-defined]
        assert n == n_ref, f"{name}: TAP gave {n} rows, the reference {n_ref}"
        lines.append(
            f"  {name:7s} {n:6d} rows  TAP {tap_s * 1e3:8.1f} ms   no-index reference "
            f"{ref_s * 1e3:9.1f} ms   ratio {ref_s / tap_s:7.1f}x"
        )
        print(lines[-1], flush=True)
    db.dispose()
    return lines


@contextlib.contextmanager
def postgres_url(enabled: bool) -> Iterator[str | None]:
    if not enabled:
        yield None
        return
    from tests.peers.postgres import PostgresCluster, find_bin

    if find_bin() is None:
        yield None
        return
    with PostgresCluster.started() as cluster:
        url = cluster.create_database("bench")
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE EXTENSION pg_sphere"))
        engine.dispose()
        yield url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=4_000_000, help="spectra = predictions")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args(argv)
    report = []
    with tempfile.TemporaryDirectory(prefix="alvo-bench-tap-") as folder:
        if not args.no_sqlite:
            report += bench(
                f"sqlite:///{Path(folder) / 'bench.sqlite'}", "sqlite", args.rows, args.repeat
            )
    with postgres_url(not args.no_postgres) as url:
        if url:
            report += bench(url, "postgresql", args.rows, args.repeat)
        else:
            report.append("postgresql: skipped (not installed or --no-postgres)")
    print("\nsummary:\n" + "\n".join(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
