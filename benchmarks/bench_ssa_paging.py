"""SSA listing past MAXREC: how fast ``ssa_listing`` pages an archive by sky tiles.

A catalogue of N spectra (default 50 000, uniform on the sky; only the
catalogue, no files: listing reads no spectrum) is served by alvo's own SSA
on loopback with ``ALVO_SSA_MAXREC`` (default 1000), in this process (uvicorn
in a thread: server and client share the interpreter, so the rate is a floor).
The script lists the whole sky and one 60-degree cone and prints queries,
tiles, records and records per second; both listings must find exactly the
catalogue's spectra (the cone's by separation), each once.

    .venv/bin/python benchmarks/bench_ssa_paging.py [--n 50000] [--server-maxrec 1000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_ssa import synthetic_catalogue
from service.settings import Settings
from service.spectra import sky_tiles
from service.spectra.access import SSAQuery, ssa_listing
from tests.vo_fixture import free_port, live_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--server-maxrec", type=int, default=1000)
    args = parser.parse_args()
    catalogue = synthetic_catalogue(args.n)
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        root = home / "archive" / "lamost"
        root.mkdir(parents=True)
        columns = dict(catalogue.columns)
        columns["label"] = np.full(args.n, "")
        Table(columns).write(root / "catalogue.fits")
        port = free_port()
        settings = Settings(
            home=home, port=port, demo_archive_size=0, ssa_maxrec=args.server_maxrec
        )
        from starlette.applications import Starlette

        from service.vo import ssa

        app = Starlette(routes=ssa.routes(settings))
        with live_server(app, port) as url:
            cone = (120.0, 30.0), 60.0
            for name, query, expected in (
                ("whole sky", SSAQuery(maxrec=10_000_000), args.n),
                (
                    "60-degree cone",
                    SSAQuery(pos=cone[0], size=cone[1], maxrec=10_000_000),
                    sum(
                        sky_tiles.in_cone(float(ra), float(dec), *cone)
                        for ra, dec in zip(columns["ra"], columns["dec"], strict=True)
                    ),
                ),
            ):
                begin = time.perf_counter()
                listing = ssa_listing(f"{url}/ssa/lamost", query)
                elapsed = time.perf_counter() - begin
                keys = {r.pubdid for r in listing.references}
                assert len(keys) == len(listing.references) == expected, (len(keys), expected)
                assert not listing.too_dense
                print(
                    f"{name}: {expected} records, server MAXREC {args.server_maxrec}: "
                    f"{listing.queries} queries ({listing.tiles} tiles) in {elapsed:.1f} s = "
                    f"{expected / elapsed:.0f} records/s, {listing.queries / elapsed:.1f} queries/s"
                )


if __name__ == "__main__":
    main()
