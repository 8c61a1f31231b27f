"""What the labelling page marks on a native spectrum: dead runs and cosmic-ray spikes.

Found with the same function ingest uses (:func:`service.spectra.defects.find_defects`),
on the pixels the page plots, so a spectrum flagged in ``spectrum.quality_flag``
shows where; ingested before the check (no flag stored), it still shows them.
A dead run's pixels lose their 1-sigma error: the page draws no band across it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from service.spectra.defects import find_defects


def defect_marks(
    wavelength: np.ndarray, flux: np.ndarray, mask: np.ndarray
) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Per spectrum ``{"dead": [[first Å, last Å], ...], "spikes": [Å, ...]}`` (empty
    lists when clean) and the (k, p) dead pixels.

    wavelength : (p,) Å as plotted (vacuum); flux, mask : (k, p), mask True = bad.
    """
    flux = np.atleast_2d(np.asarray(flux, dtype=np.float64))
    found = find_defects(flux, mask)
    k = flux.shape[0]
    edges = np.diff(np.pad(found.dead.astype(np.int8), ((0, 0), (1, 1))), axis=1)
    marks: list[dict[str, Any]] = []
    for row in range(k):  # per spectrum, a handful of runs each: no loop over pixels
        starts = np.flatnonzero(edges[row] == 1)
        stops = np.flatnonzero(edges[row] == -1) - 1
        marks.append(
            {
                "dead": [
                    [round(float(wavelength[a]), 2), round(float(wavelength[b]), 2)]
                    for a, b in zip(starts.tolist(), stops.tolist(), strict=True)
                ],
                "spikes": [round(float(x), 2) for x in wavelength[found.spikes[row]]],
            }
        )
    return marks, found.dead
