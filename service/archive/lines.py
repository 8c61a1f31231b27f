"""Line lists of the simulator: rest wavelengths (vacuum Å), strengths by temperature.

Depths are *intrinsic* (before rotation and the instrument's line-spread function
widen the line with its equivalent width conserved), for a strength of 1; the
strength of each family depends on the effective temperature (K):

* ``balmer``: peaks near A0-A1 (9500 K), weak in K stars and O/early B stars;
* ``metal``: neutral metals (Fe I, Ca I, Mg b, Na D, the G band), grow below ~7500 K;
* ``caii``: Ca II H&K and the IR triplet, strong in cool stars, present in A stars;
* ``hei``: He I, B stars only (> 11 000 K);
* ``ionised``: Si II / C II, late-B to early-A stars;
* ``dib``: diffuse interstellar bands, scale with reddening E(B-V), not with the star;
* ``telluric``: Earth's O2 and H2O, fixed in the observer's frame, scale with airmass.

Wavelengths measured in air (most tables) are converted with the IAU formula
(:func:`service.adapt.to_vacuum`).
"""

from __future__ import annotations

import numpy as np

from service.adapt import to_vacuum

HALPHA = 6564.614  # Å vacuum (6562.801 air)
HBETA = 4862.683
HGAMMA = 4341.684
HDELTA = 4102.892
HEPSILON = 3971.195
#: Balmer lines with the photospheric strength and width scaling relative to H-alpha.
BALMER = np.array([HALPHA, HBETA, HGAMMA, HDELTA, HEPSILON])
BALMER_DEPTH_SCALE = np.array([1.0, 1.1, 1.1, 1.1, 1.0])
BALMER_WIDTH_SCALE = np.array([1.0, 1.05, 1.05, 1.0, 0.9])
#: Emission of a Be-star disk in the higher Balmer lines, relative to H-alpha (decrement).
BALMER_EMISSION = np.array([1.0, 0.3, 0.12, 0.05, 0.0])

# (air Å, depth at strength 1, intrinsic sigma Å, family); air converted below.
_AIR_LINES = [
    # Ca II H&K and the IR triplet
    (3933.66, 0.80, 2.0, "caii"),
    (3968.47, 0.70, 2.0, "caii"),
    (8498.02, 0.45, 1.2, "caii"),
    (8542.09, 0.60, 1.5, "caii"),
    (8662.14, 0.55, 1.4, "caii"),
    # neutral metals and molecules
    (4226.73, 0.50, 0.6, "metal"),
    (4300.00, 0.35, 4.0, "metal"),  # CH G band (a blend)
    (4383.55, 0.35, 0.5, "metal"),
    (5167.32, 0.45, 0.6, "metal"),
    (5172.68, 0.50, 0.6, "metal"),
    (5183.60, 0.55, 0.6, "metal"),
    (5269.54, 0.35, 0.5, "metal"),
    (5328.04, 0.30, 0.5, "metal"),
    (5889.95, 0.60, 0.5, "metal"),
    (5895.92, 0.55, 0.5, "metal"),
    (6102.72, 0.25, 0.3, "metal"),
    (6122.22, 0.35, 0.3, "metal"),
    (6162.17, 0.35, 0.3, "metal"),
    (6439.07, 0.30, 0.15, "metal"),
    (6462.57, 0.25, 0.15, "metal"),
    (6494.98, 0.30, 0.15, "metal"),
    (6546.24, 0.20, 0.12, "metal"),
    (6592.91, 0.20, 0.12, "metal"),
    (6643.63, 0.20, 0.12, "metal"),
    (6717.68, 0.25, 0.15, "metal"),
    (7699.0, 0.30, 0.5, "metal"),
    # He I (B stars)
    (4026.19, 0.15, 1.0, "hei"),
    (4471.48, 0.18, 1.0, "hei"),
    (5875.62, 0.25, 0.8, "hei"),
    (6678.15, 0.22, 0.8, "hei"),
    # Si II / C II (late B, early A)
    (6347.11, 0.08, 0.4, "ionised"),
    (6371.37, 0.06, 0.4, "ionised"),
    (6578.05, 0.05, 0.4, "ionised"),
    (6582.88, 0.04, 0.4, "ionised"),
    # diffuse interstellar bands (depth per E(B-V) = 1 mag)
    (5780.48, 0.12, 1.0, "dib"),
    (5797.06, 0.06, 0.4, "dib"),
    (6283.84, 0.08, 2.0, "dib"),
    (6613.62, 0.05, 0.5, "dib"),
    # telluric (depth at airmass 1); broad bands as blends at low resolution
    (6277.0, 0.06, 0.25, "telluric"),
    (6287.0, 0.05, 0.25, "telluric"),
    (6295.9, 0.04, 0.25, "telluric"),
    (6543.91, 0.03, 0.10, "telluric"),
    (6548.62, 0.03, 0.10, "telluric"),
    (6552.63, 0.03, 0.10, "telluric"),
    (6557.17, 0.04, 0.10, "telluric"),
    (6564.21, 0.03, 0.10, "telluric"),
    (6572.09, 0.03, 0.10, "telluric"),
    (6574.85, 0.04, 0.10, "telluric"),
    (6586.57, 0.02, 0.10, "telluric"),
    (6599.32, 0.03, 0.10, "telluric"),
    (6870.0, 0.25, 4.0, "telluric"),  # O2 B band
    (7186.0, 0.10, 25.0, "telluric"),  # H2O
    (7605.0, 0.55, 6.0, "telluric"),  # O2 A band
    (8230.0, 0.10, 40.0, "telluric"),  # H2O
]
FAMILIES: tuple[str, ...] = ("caii", "metal", "hei", "ionised", "dib", "telluric")
LINE_WAVELENGTH = to_vacuum(np.array([line[0] for line in _AIR_LINES]))
LINE_DEPTH = np.array([line[1] for line in _AIR_LINES])
LINE_SIGMA = np.array([line[2] for line in _AIR_LINES])
LINE_FAMILY = np.array([FAMILIES.index(line[3]) for line in _AIR_LINES])

#: Night-sky emission lines (vacuum Å) whose residuals bad sky subtraction leaves.
SKY_LINES = to_vacuum(
    np.array(
        [
            5577.34,
            5889.95,
            5895.92,
            6300.30,
            6363.78,
            6498.7,
            6553.6,
            6577.2,
            6604.1,
            6863.9,
            7316.3,
            7340.9,
            7750.6,
            7794.1,
            7913.7,
            7993.3,
            8344.6,
            8399.2,
            8827.1,
        ]
    )
)


def balmer_strength(teff: np.ndarray) -> np.ndarray:
    """(n,) photospheric Balmer strength, 1 near 9500 K, ~0.4 at B2, ~0.25 at G2."""
    x = np.log10(teff / 9500.0)
    width = np.where(x > 0, 0.25, 0.12)
    return np.maximum(np.exp(-0.5 * (x / width) ** 2), 0.08)


def family_strength(teff: np.ndarray, ebv: np.ndarray, airmass: np.ndarray) -> np.ndarray:
    """(n, len(FAMILIES)) strength of each line family for each star."""
    metal = np.clip((7600.0 - teff) / 2600.0, 0.02, 1.3)
    caii = np.clip((12000.0 - teff) / 6000.0, 0.08, 1.2)
    hei = np.clip((teff - 11000.0) / 9000.0, 0.0, 1.0)
    ionised = np.exp(-0.5 * (np.log10(teff / 12000.0) / 0.08) ** 2)
    return np.stack([caii, metal, hei, ionised, ebv, airmass], axis=1)
