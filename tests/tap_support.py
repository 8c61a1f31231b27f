"""Shared by the TAP tests: demo databases and a real uvicorn serving TAP."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import sqlalchemy as sa

from service.store import demo

REPO = Path(__file__).resolve().parents[1]


def sqlite_demo(folder: Path, n_spectra: int = 2000) -> str:
    """A SQLite file under ``folder`` with generated result rows; returns its URL."""
    folder.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{(folder / 'alvo.sqlite').resolve()}"
    engine = sa.create_engine(url)
    demo.fill_demo(engine, n_spectra)
    engine.dispose()
    return url


def postgres_demo(cluster, name: str, n_spectra: int = 2000) -> str:  # type: ignore[no-untyped-def]
    """A fresh database on the test cluster, pgSphere enabled, demo rows; returns its URL."""
    url = cluster.create_database(name)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_sphere"))
    demo.fill_demo(engine, n_spectra)
    engine.dispose()
    return url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def tap_server(
    home: Path, database_url: str = "", factory: str = "service.vo.tap.routes:standalone_app"
) -> Iterator[str]:
    """Run ``uvicorn --factory FACTORY`` (TAP alone, or ``service.app:create_app``, the
    whole service) on a free port; yield the /tap URL."""
    port = free_port()
    env = dict(os.environ, ALVO_HOME=str(home), ALVO_PORT=str(port), ALVO_DATABASE_URL=database_url)
    env.setdefault("OMP_NUM_THREADS", "1")
    log = open(home / "uvicorn.log", "wb")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", factory,
         "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}/tap"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError((home / "uvicorn.log").read_text())
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/availability", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError("uvicorn did not answer within 60 s")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


#: ADQL queries whose answers must be the same on SQLite and PostgreSQL.
CROSS_DATABASE_QUERIES = (
    "SELECT COUNT(*) AS n FROM alvo.spectrum",
    "SELECT TOP 10 prediction_id, entropy FROM alvo.prediction ORDER BY entropy DESC",
    "SELECT iteration, predicted_class, COUNT(*) AS n, AVG(entropy) AS mean_entropy "
    "FROM alvo.prediction GROUP BY iteration, predicted_class ORDER BY iteration, predicted_class",
    "SELECT s.spectrum_id, p.iteration FROM alvo.spectrum AS s "
    "JOIN alvo.prediction AS p ON p.spectrum_id = s.spectrum_id "
    "WHERE 1 = CONTAINS(POINT('ICRS', s.ra, s.dec), CIRCLE('ICRS', 83.8, -5.4, 12)) "
    "ORDER BY s.spectrum_id, p.iteration",
    "SELECT spectrum_id FROM alvo.spectrum "
    "WHERE CONTAINS(POINT('ICRS', ra, dec), BOX('ICRS', 200, 30, 20, 10)) = 1 ORDER BY spectrum_id",
    "SELECT spectrum_id FROM alvo.spectrum WHERE 1 = CONTAINS(POINT(ra, dec), "
    "POLYGON(10, 10, 40, 12, 35, 45, 8, 30)) ORDER BY spectrum_id",
    "SELECT spectrum_id FROM alvo.spectrum WHERE 1 = CONTAINS(POINT(ra, dec), "
    "POLYGON(0, 60, 120, 60, 240, 60)) ORDER BY spectrum_id",
    "SELECT spectrum_id FROM alvo.spectrum WHERE 1 = CONTAINS(POINT(ra, dec), "
    "CIRCLE(358, 40, 9)) ORDER BY spectrum_id",
    "SELECT spectrum_id FROM alvo.spectrum WHERE 1 = CONTAINS(POINT(ra, dec), "
    "CIRCLE(10, -84, 5)) ORDER BY spectrum_id",
    "SELECT spectrum_id FROM alvo.spectrum WHERE 1 = INTERSECTS(POINT(ra, dec), "
    "CIRCLE(300, -60, 9)) ORDER BY spectrum_id",
    "SELECT spectrum_id FROM alvo.spectrum WHERE 0 = CONTAINS(POINT(ra, dec), "
    "CIRCLE(0, 0, 85)) ORDER BY spectrum_id",
    "SELECT TOP 20 spectrum_id, DISTANCE(POINT(ra, dec), POINT(120.5, 33.3)) AS d "
    "FROM alvo.spectrum ORDER BY d",
    "SELECT spectrum_id FROM alvo.spectrum WHERE DISTANCE(POINT(ra, dec), POINT(45, 45)) < 7 "
    "ORDER BY spectrum_id",
    "SELECT spectrum_id FROM alvo.spectrum WHERE 1 = CONTAINS(CIRCLE(POINT(ra, dec), 0.5), "
    "CIRCLE(250, 10, 8)) ORDER BY spectrum_id",
    "SELECT l.label, COUNT(*) AS n FROM alvo.label AS l GROUP BY l.label ORDER BY l.label",
    "SELECT TOP 5 spectrum_id, ROUND(snr, 3) AS snr3, ABS(dec) AS adec, SQRT(snr) AS rs, "
    "LOG10(snr) AS lg, LOG(snr) AS ln FROM alvo.spectrum ORDER BY spectrum_id",
    "SELECT MAX(number) AS last_iteration, MIN(error) AS best FROM alvo.iteration",
)
