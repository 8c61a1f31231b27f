"""The Hou et al. (2016, RAA 16, 138) rule for H-alpha emission, as a baseline detector.

Hou et al. searched LAMOST DR2 for early-type emission-line stars with three
tests around the H-alpha pixel n0 (native LAMOST pixels, ~1.51 Å at H-alpha):

1. mean(f[n0-5 .. n0+5]) > f_conti[n0]          (net emission near the line)
2. mean(f[n0-1 .. n0+1]) > mean(f[n0-2 .. n0+2])  (a peak, not a plateau)
3. max(f[n0-1 .. n0+1]) >= max(f[n0-2 .. n0+2])   (the maximum sits at the line)

We apply it to the **adapted 140-pixel features**, not to native flux, because
(a) the 140-pixel grid step (1.532 Å) equals LAMOST's native step at H-alpha to
1.5 %, so "n0 +- 5 pixels" covers the same wavelengths Hou et al. used;
(b) all three tests are invariant under a positive affine change of flux, so the
per-spectrum z-score or min-max scaling of the features changes no verdict;
(c) the rule then sees exactly what the CNN sees, on every archive, so the
comparison measures the classifier, not a difference in preprocessing.
The continuum ``f_conti`` is a straight line fitted (least squares, all rows in one
product) to the pixels farther than ``continuum_gap`` Å from H-alpha.
"""

from __future__ import annotations

import numpy as np

#: H-alpha, vacuum, Å (the feature grid is vacuum).
HALPHA_VACUUM = 6564.614


def continuum_at(
    features: np.ndarray, grid: np.ndarray, at: float, gap: float = 25.0
) -> np.ndarray:
    """(n,) linear continuum of each row evaluated at wavelength ``at`` (Å).

    The line is fitted to pixels with ``|grid - at| > gap``; one pseudo-inverse
    serves every row.
    """
    outside = np.abs(grid - at) > gap
    design = np.stack([np.ones(outside.sum()), grid[outside] - at], axis=1)
    coefficients = np.linalg.pinv(design) @ np.asarray(features, dtype=np.float64)[:, outside].T
    return coefficients[0]  # intercept = value at ``at``


def hou_rule(
    features: np.ndarray,
    grid: np.ndarray,
    halpha: float = HALPHA_VACUUM,
    continuum_gap: float = 25.0,
) -> np.ndarray:
    """(n,) bool: True where Hou et al.'s three criteria all hold (emission detected).

    features : (n, m) flux on the vacuum ``grid`` (m,) Å, any positive affine scaling;
        rows with NaN are never detected.
    """
    f = np.asarray(features, dtype=np.float64)
    n0 = int(np.argmin(np.abs(grid - halpha)))
    if n0 < 5 or n0 + 5 >= f.shape[1]:
        raise ValueError("H-alpha +- 5 pixels must lie inside the grid")
    window = lambda half: f[:, n0 - half : n0 + half + 1]  # noqa: E731
    conti = continuum_at(f, grid, grid[n0], continuum_gap)
    first = window(5).mean(axis=1) > conti
    second = window(1).mean(axis=1) > window(2).mean(axis=1)
    third = window(1).max(axis=1) >= window(2).max(axis=1)
    return first & second & third & np.isfinite(f).all(axis=1)
