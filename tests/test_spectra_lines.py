"""service/spectra/lines.py: EW(Hα) of known profiles."""

from __future__ import annotations

import numpy as np

from service.spectra.lines import HALPHA, halpha_equivalent_width


def test_equivalent_width_of_gaussian_lines_with_its_error():
    wavelength = np.arange(6500.0, 6740.0, 1.0)
    area_one = np.exp(-0.5 * ((wavelength - HALPHA) / 2.0) ** 2) / (2.0 * np.sqrt(2 * np.pi))
    # continuum 100: an emission line of EW -10 Å, an absorption line of +4 Å, none
    flux = 100.0 + np.vstack([1000.0 * area_one, -400.0 * area_one, 0.0 * area_one])
    sigma = np.full(flux.shape, 2.0)
    ew, error = halpha_equivalent_width(wavelength, flux, sigma)
    np.testing.assert_allclose(ew, [-10.0, 4.0, 0.0], atol=0.02)
    # 30 pixels of 1 Å with sigma 2 on a continuum of 100: sqrt(30) * 0.02 Å
    np.testing.assert_allclose(error, np.sqrt(30) * 0.02, rtol=0.01)


def test_no_value_across_a_gap_or_off_the_window():
    wavelength = np.arange(6500.0, 6740.0, 1.0)
    flux = np.full((2, wavelength.size), 100.0)
    flux[0, 55:75] = np.nan  # 20 dead pixels inside the line band
    ew, error = halpha_equivalent_width(wavelength, flux, np.ones_like(flux))
    assert np.isnan(ew[0]) and np.isnan(error[0]) and abs(ew[1]) < 1e-9
    far = halpha_equivalent_width(np.arange(4000.0, 4200.0), np.ones((1, 200)), np.ones((1, 200)))
    assert np.isnan(far[0]).all()
