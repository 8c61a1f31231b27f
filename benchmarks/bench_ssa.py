"""SSA selection speed: our vectorised cone + band + time filter vs astropy SkyCoord.

Builds a synthetic catalogue of N spectra (default 1 000 000, like a large
LAMOST pool), runs the same SSA query both ways and prints the ratio
(reference time / our time; > 1 means faster). The two must select the same rows.

    .venv/bin/python benchmarks/bench_ssa.py [N]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord

from service.vo import dali, ssa
from service.vo.holdings import COLLECTIONS, Catalogue


def synthetic_catalogue(n: int, seed: int = 1) -> Catalogue:
    rng = np.random.default_rng(seed)
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    start = rng.uniform(3.6e-7, 3.8e-7, n)
    columns = {
        "pubdid": np.char.add("ivo://alvo.demo/lamost?", np.arange(n).astype(str)),
        "file": np.char.add("spectra/", np.arange(n).astype(str)),
        "ra": ra,
        "dec": dec,
        "spec_start": start,
        "spec_end": start + rng.uniform(4e-7, 5.5e-7, n),
        "mjd": rng.uniform(55900, 56500, n),
    }
    return Catalogue(COLLECTIONS["lamost"], Path("."), columns)


def best_of(repeats: int, func) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        begin = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - begin)
    return min(times), result


def main(n: int) -> None:
    catalogue = synthetic_catalogue(n)
    params = dali.DaliParams(
        [("REQUEST", "queryData"), ("POS", "150.0,20.0"), ("SIZE", "10"),
         ("BAND", "6.5e-7/6.6e-7"), ("TIME", "56000/56300")]
    )  # fmt: skip
    query = ssa.parse_query(params)

    def reference() -> np.ndarray:
        coords = SkyCoord(catalogue["ra"] * u.deg, catalogue["dec"] * u.deg)
        near = coords.separation(SkyCoord(150 * u.deg, 20 * u.deg)).deg <= 5.0
        band = (catalogue["spec_start"] <= 6.6e-7) & (catalogue["spec_end"] >= 6.5e-7)
        when = (catalogue["mjd"] >= 56000) & (catalogue["mjd"] <= 56300)
        return np.flatnonzero(near & band & when)

    ours_s, ours = best_of(5, lambda: ssa.select(catalogue, query))
    ref_s, expected = best_of(3, reference)
    assert np.array_equal(np.sort(ours), expected), "the two selections differ"
    print(
        f"bench_ssa: N={n} rows, {len(expected)} selected; ours {ours_s * 1e3:.1f} ms, "
        f"astropy SkyCoord {ref_s * 1e3:.1f} ms; ratio {ref_s / ours_s:.1f}x"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
