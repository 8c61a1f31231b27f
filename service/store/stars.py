"""The same star elsewhere: its other spectra, its neighbours on the sky, earlier verdicts.

A spectrum on the labelling page is one observation of one star; the oracle judges
better knowing what else the tables hold about it -- other epochs and the other
archive's spectrum of the same star (same designation or object name, or within
an arcsecond or two), sources close enough to share the fibre, and the verdicts
given on any of them before, in this campaign or another (or as a source-set label).
Across every dataset: the same star may be in the source set and in the pool.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa

from service.store import schema

#: ``spectrum`` columns of each spectrum found near a position.
NEAR_COLUMNS = ("spectrum_id", "designation", "object", "ra", "dec", "collection", "mjd")


def spectra_near(engine: sa.Engine, dec_deg: np.ndarray, reach_deg: float) -> list[dict[str, Any]]:
    """Every spectrum whose declination lies within ``reach_deg`` of one of ``dec_deg``:
    :data:`NEAR_COLUMNS` and ``access_url``. One query over declination bands (the
    ``dec`` index); separations in right ascension are the caller's, in numpy."""
    spectrum = schema.spectrum
    bands = [spectrum.c.dec.between(d - reach_deg, d + reach_deg) for d in dec_deg]
    if not bands:
        return []
    query = sa.select(*(spectrum.c[c] for c in NEAR_COLUMNS), spectrum.c.access_url).where(
        sa.or_(*bands)
    )
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def verdicts_on_same_stars(
    engine: sa.Engine, ids: Sequence[int]
) -> dict[int, list[dict[str, Any]]]:
    """Per spectrum of ``ids``, every verdict given on it or on another spectrum with its
    designation or object name, oldest first: ``label``, ``oracle_user``, ``iteration``,
    ``campaign_id`` and ``campaign`` (its name; None for a source-set label),
    ``collection`` (of the spectrum judged) and ``same_spectrum``."""
    spectrum, label, camp = schema.spectrum, schema.label, schema.campaign
    with engine.connect() as conn:
        own = conn.execute(
            sa.select(spectrum.c.spectrum_id, spectrum.c.designation, spectrum.c.object).where(
                spectrum.c.spectrum_id.in_(ids)
            )
        ).all()
        names = {str(n) for _, d, o in own for n in (d, o) if n}
        if not names:
            names = {"\x00"}
        other = spectrum.alias("other")
        query = (
            sa.select(
                other.c.spectrum_id,
                other.c.designation,
                other.c.object,
                other.c.collection,
                label.c.label,
                label.c.oracle_user,
                label.c.iteration,
                label.c.campaign_id,
                camp.c.name,
            )
            .join(label, label.c.spectrum_id == other.c.spectrum_id)
            .outerjoin(camp, camp.c.campaign_id == label.c.campaign_id)
            .where(
                sa.or_(
                    other.c.spectrum_id.in_(ids),
                    other.c.designation.in_(names),
                    other.c.object.in_(names),
                )
            )
            .order_by(label.c.label_id)
        )
        found = conn.execute(query).all()
    verdicts: dict[int, list[dict[str, Any]]] = {}
    for sid, designation, name in own:
        keys = {k for k in (designation, name) if k}
        for hit in found:
            same = int(hit.spectrum_id) == sid
            if same or keys & {hit.designation, hit.object}:
                verdicts.setdefault(int(sid), []).append(
                    {
                        "label": hit.label,
                        "oracle_user": hit.oracle_user,
                        "iteration": hit.iteration,
                        "campaign_id": hit.campaign_id,
                        "campaign": hit.name,
                        "collection": hit.collection,
                        "same_spectrum": same,
                    }
                )
    return verdicts
