"""The Hou et al. (2016) rule on idealised H-alpha profiles on the 140-pixel grid."""

from __future__ import annotations

import numpy as np
import pytest

from service.learn.hou import HALPHA_VACUUM, continuum_at, hou_rule

GRID = np.linspace(6519.0, 6732.0, 140)


def _profile(amplitude: float, width: float = 2.5, offset: float = 0.0) -> np.ndarray:
    slope = 1.0 + 0.02 * (GRID - 6600.0) / 100.0
    return slope + amplitude * np.exp(-0.5 * ((GRID - HALPHA_VACUUM - offset) / width) ** 2)


def test_emission_detected_absorption_not() -> None:
    rows = np.stack([_profile(0.8), _profile(0.2), _profile(-0.4), _profile(0.0)])
    assert hou_rule(rows, GRID).tolist() == [True, True, False, False]


def test_peak_away_from_halpha_fails_criteria_two_and_three() -> None:
    assert not hou_rule(_profile(0.8, offset=6.0)[None], GRID)[0]


def test_invariant_under_positive_affine_scaling() -> None:
    rng = np.random.default_rng(0)
    rows = np.stack([_profile(a) for a in rng.uniform(-0.5, 0.5, 200)])
    rows += rng.normal(0, 0.01, rows.shape)
    z = (rows - rows.mean(axis=1, keepdims=True)) / rows.std(axis=1, keepdims=True)
    lo, hi = rows.min(axis=1, keepdims=True), rows.max(axis=1, keepdims=True)
    minmax = 2 * (rows - lo) / (hi - lo) - 1
    expected = hou_rule(rows, GRID)
    assert 20 < expected.sum() < 180
    assert (hou_rule(z, GRID) == expected).all() and (hou_rule(minmax, GRID) == expected).all()


def test_continuum_is_the_straight_line_outside_the_line() -> None:
    rows = _profile(1.0)[None]
    n0 = int(np.argmin(np.abs(GRID - HALPHA_VACUUM)))
    expected = 1.0 + 0.02 * (GRID[n0] - 6600.0) / 100.0
    assert continuum_at(rows, GRID, GRID[n0])[0] == pytest.approx(expected, abs=1e-4)


def test_nan_rows_are_never_detected() -> None:
    row = _profile(1.0)
    row[3] = np.nan
    assert not hou_rule(row[None], GRID)[0]
