"""Fine (physical) classes of simulated spectra, their learning labels and priors.

Fine classes say what the star does; labels say what the learning core is told
(the classes of :mod:`service.vocabulary` plus ``bad`` and the source's ``unknown``).
Four fine classes are the label they become, and are spelled by the vocabulary's names:

=====================  ================  ==========================================
fine class             label             what it is
=====================  ================  ==========================================
absorption             absorption        photospheric H-alpha (B...K) and metal lines
single-peak            single-peak       one emission peak (Be/Ae, T Tauri, CV ...)
emission-in-absorption single-peak       emission filling the core of broad wings
p-cygni                single-peak       emission with a blue-shifted absorption
double-peak            double-peak       disk profile: two peaks, V/R, depression
shell                  double-peak       disk seen edge-on: deep narrow central dip
unknown                unknown           weak, ambiguous emission at low SNR (source)
bad                    bad               instrumental artefacts (see ``artefacts``)
=====================  ================  ==========================================

A double-peaked disk whose peaks the instrument cannot separate (LAMOST,
R ≈ 1800, smears peaks closer than ~ 200 km/s) is *labelled* ``single-peak``:
the label is what an oracle sees in that spectrum (:func:`observed_label`); so
is emission too weak to show there (``absorption``; see
:func:`service.archive.physics.emission_visible`).
"""

from __future__ import annotations

import numpy as np

from service.vocabulary import ABSORPTION, BAD, DOUBLE_PEAK, SINGLE_PEAK

#: What the Ondrejov label file calls an ambiguous profile (the service's ``not-sure``).
UNKNOWN = "unknown"

FINE_CLASSES: tuple[str, ...] = (
    ABSORPTION,
    SINGLE_PEAK,
    "emission-in-absorption",
    "p-cygni",
    DOUBLE_PEAK,
    "shell",
    UNKNOWN,
    BAD,
)
LABELS: tuple[str, ...] = (SINGLE_PEAK, DOUBLE_PEAK, ABSORPTION, BAD, UNKNOWN)
LABEL_OF: dict[str, str] = {
    ABSORPTION: ABSORPTION,
    SINGLE_PEAK: SINGLE_PEAK,
    "emission-in-absorption": SINGLE_PEAK,
    "p-cygni": SINGLE_PEAK,
    DOUBLE_PEAK: DOUBLE_PEAK,
    "shell": DOUBLE_PEAK,
    UNKNOWN: UNKNOWN,
    BAD: BAD,
}
EMISSION_FINE = (SINGLE_PEAK, "emission-in-absorption", "p-cygni", DOUBLE_PEAK, "shell")

#: Ondrejov CCD700 labels (13 334): emission 5301, absorption 6102, unknown 398, double-peak 1533.
ONDREJOV_COUNTS = {"emission": 5301, ABSORPTION: 6102, UNKNOWN: 398, DOUBLE_PEAK: 1533}
#: How the archive's "emission" and "double-peak" split into fine classes (our choice).
SINGLE_SPLIT = {SINGLE_PEAK: 0.65, "emission-in-absorption": 0.25, "p-cygni": 0.10}
DOUBLE_SPLIT = {DOUBLE_PEAK: 0.80, "shell": 0.20}
#: LAMOST emission-line stars: single vs double peaked as in the published candidates
#: (3731 single-peak, 648 double-peak of 4379).
TARGET_DOUBLE_SHARE = 648 / 4379
DEFAULT_EMISSION_FRACTION = 0.01
DEFAULT_BAD_FRACTION = 0.005


def source_priors() -> dict[str, float]:
    """Fine-class probabilities of the Ondrejov-like source set (sum 1)."""
    total = sum(ONDREJOV_COUNTS.values())
    emission = ONDREJOV_COUNTS["emission"] / total
    double = ONDREJOV_COUNTS[DOUBLE_PEAK] / total
    priors = {k: emission * v for k, v in SINGLE_SPLIT.items()}
    priors.update({k: double * v for k, v in DOUBLE_SPLIT.items()})
    priors[ABSORPTION] = ONDREJOV_COUNTS[ABSORPTION] / total
    priors[UNKNOWN] = ONDREJOV_COUNTS[UNKNOWN] / total
    priors[BAD] = 0.0
    return priors


def target_priors(
    emission_fraction: float = DEFAULT_EMISSION_FRACTION,
    bad_fraction: float = DEFAULT_BAD_FRACTION,
) -> dict[str, float]:
    """Fine-class probabilities of the LAMOST-like pool: emission rare (sum 1).

    emission_fraction : share of emission-line spectra, 0.001-0.03 is realistic
    bad_fraction : share of spectra with instrumental artefacts
    """
    if not (0.0 <= emission_fraction <= 1.0 and 0.0 <= bad_fraction <= 1.0 - emission_fraction):
        from service.reasons import AlvoError, Reason

        raise AlvoError(
            Reason.BAD_PARAMETER,
            f"emission_fraction {emission_fraction} and bad_fraction {bad_fraction} "
            "must be shares in [0, 1] summing to at most 1",
        )
    double = emission_fraction * TARGET_DOUBLE_SHARE
    single = emission_fraction - double
    priors = {k: single * v for k, v in SINGLE_SPLIT.items()}
    priors.update({k: double * v for k, v in DOUBLE_SPLIT.items()})
    priors[BAD] = bad_fraction
    priors[UNKNOWN] = 0.0
    priors[ABSORPTION] = 1.0 - emission_fraction - bad_fraction
    return priors


def prior_vector(priors: dict[str, float]) -> np.ndarray:
    """(len(FINE_CLASSES),) probabilities in :data:`FINE_CLASSES` order."""
    p = np.array([priors.get(name, 0.0) for name in FINE_CLASSES], dtype=np.float64)
    return p / p.sum()


def labels_of(fine: np.ndarray) -> np.ndarray:
    """(n,) learning labels of (n,) fine-class names."""
    names = np.array(FINE_CLASSES)
    order = np.argsort(names)
    index = order[np.searchsorted(names, fine, sorter=order)]
    return np.array([LABEL_OF[name] for name in FINE_CLASSES])[index]


def observed_label(
    fine: np.ndarray, peaks_resolved: np.ndarray, emission_visible: np.ndarray
) -> np.ndarray:
    """Labels as seen: a disk whose peaks are not resolved reads as single-peak, and
    emission too weak to show at this resolution (< 10 % of the continuum after the
    line-spread function) reads as absorption."""
    labels = labels_of(fine)
    blurred = (labels == DOUBLE_PEAK) & ~peaks_resolved
    labels = np.where(blurred, SINGLE_PEAK, labels)
    hidden = np.isin(labels, (SINGLE_PEAK, DOUBLE_PEAK)) & ~emission_visible
    return np.where(hidden, ABSORPTION, labels)
