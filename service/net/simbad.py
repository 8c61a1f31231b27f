"""SIMBAD identifications for candidates, via astroquery, never at the cost of a job.

The original run found that a third of its candidates were new objects; which
are known is what an astronomer asks first. One batched cone query (SIMBAD
TAP through ``astroquery.simbad``) covers up to 300 positions; each position
takes the nearest SIMBAD object within ``radius``. When SIMBAD cannot be
reached (no network, a time-out, a change of its API) the cross-match is
*skipped* and the reason returned: the caller records it, and nothing fails.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

#: SIMBAD answers cone lists of up to this many centres without a TAP upload.
BATCH = 300


@dataclasses.dataclass(frozen=True)
class CrossMatch:
    identifiers: list[str | None]  # SIMBAD main_id per position, None if none within radius
    skipped: str = ""  # why the cross-match did not run (empty: it ran)


def simbad_identify(
    ra: Sequence[float], dec: Sequence[float], radius_arcsec: float = 3.0, simbad: Any = None
) -> CrossMatch:
    """Nearest SIMBAD main identifier within ``radius_arcsec`` of each (ra, dec), degrees."""
    ra_arr, dec_arr = np.asarray(ra, dtype=float), np.asarray(dec, dtype=float)
    identifiers: list[str | None] = [None] * len(ra_arr)
    usable = np.flatnonzero(np.isfinite(ra_arr) & np.isfinite(dec_arr))
    if usable.size == 0:
        return CrossMatch(identifiers)
    try:
        import astropy.units as u
        from astropy.coordinates import SkyCoord
        from astroquery.simbad import Simbad

        client = simbad or Simbad()
        for start in range(0, usable.size, BATCH):
            rows = usable[start : start + BATCH]
            centres = SkyCoord(ra_arr[rows], dec_arr[rows], unit="deg")
            found = client.query_region(centres, radius=radius_arcsec * u.arcsec)
            if found is None or len(found) == 0:
                continue
            names = {c.lower(): c for c in found.colnames}
            objects = SkyCoord(found[names["ra"]], found[names["dec"]], unit="deg")
            nearest, separation, _ = centres.match_to_catalog_sky(objects)
            for row, index, sep in zip(rows, nearest, separation.arcsec, strict=True):
                if sep <= radius_arcsec:
                    identifiers[row] = str(found[names["main_id"]][index]).strip()
    except Exception as error:  # any failure of the remote service skips, never fails
        reason = " ".join(str(error).split()) or type(error).__name__
        return CrossMatch([None] * len(ra_arr), skipped=f"SIMBAD not reachable: {reason}"[:300])
    return CrossMatch(identifiers)
