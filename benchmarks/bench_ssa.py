"""SSA speed: selection and response encoding, each against an astropy reference.

1. Selection: a synthetic catalogue of N spectra (default 1 000 000, like a
   large LAMOST pool), one cone + BAND + TIME query, our vectorised filter vs
   astropy SkyCoord separations. Both must select the same rows.
2. Encoding: a 10 000-row SSA response (MAXREC's hard limit) written as
   TABLEDATA by our column-wise encoder vs astropy's VOTable writer on the
   same FIELDs; both documents must parse to the same values.

Each prints the ratio reference time / our time (> 1: we are faster).

    .venv/bin/python benchmarks/bench_ssa.py [N]
"""

from __future__ import annotations

import io
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord

from service.vo import dali, ssa, templates
from service.vo.holdings import COLLECTIONS, Catalogue


def synthetic_catalogue(n: int, seed: int = 1) -> Catalogue:
    rng = np.random.default_rng(seed)
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    start = rng.uniform(3.6e-7, 3.8e-7, n)
    columns = {
        "pubdid": np.char.add("ivo://alvo.demo/lamost?", np.arange(n).astype(str)),
        "obsid": np.arange(n).astype(str),
        "designation": np.char.add("J", np.arange(n).astype(str)),
        "object": np.char.add("HD ", np.arange(n).astype(str)),
        "pipeline_class": np.full(n, "STAR"),
        "format": np.full(n, "application/fits"),
        "size": np.full(n, 83520),
        "snr": rng.uniform(2, 200, n),
        "magnitude": rng.uniform(6, 17, n),
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


def encoding(catalogue: Catalogue, rows: int = 10_000) -> None:
    query = ssa.parse_query(dali.DaliParams([("REQUEST", "queryData")]))
    indices = np.arange(rows)

    def ours() -> bytes:
        return ssa.response_document(catalogue, indices, query, "http://x")

    def reference() -> bytes:  # astropy's writer, same FIELDs and values
        doc = templates.load("ssa.xml")
        fields = doc.table("results").findall(templates.v("FIELD"))
        columns = ssa.result_columns(catalogue, indices, query, "http://x")
        shell = b"".join(templates.etree.tostring(f) for f in fields)
        votable = parse_votable(
            b'<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">'
            b"<RESOURCE><TABLE>" + shell + b"</TABLE></RESOURCE></VOTABLE>"
        )
        table = votable.get_first_table()
        table.create_arrays(rows)
        for field in table.fields:
            if field.ID in columns:
                table.array[field.ID] = columns[field.ID]
            else:
                table.array.mask[field.ID] = True
        out = io.BytesIO()
        votable.to_xml(out)
        return out.getvalue()

    ours_s, mine = best_of(3, ours)
    ref_s, theirs = best_of(1, reference)
    a, b = (parse_votable(x).get_first_table().array for x in (mine, theirs))
    assert list(a["ssa_pubDID"]) == list(b["ssa_pubDID"]) and np.allclose(
        a["ssa_snr"], b["ssa_snr"]
    )
    print(
        f"bench_ssa: {rows}-row TABLEDATA response; ours {ours_s:.2f} s, "
        f"astropy writer {ref_s:.2f} s; ratio {ref_s / ours_s:.1f}x"
    )


def parse_votable(data: bytes):  # type: ignore[no-untyped-def]
    from astropy.io.votable import parse

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return parse(io.BytesIO(data))


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    main(n)
    encoding(synthetic_catalogue(20_000))
