"""Fine (physical) classes of simulated spectra, their learning labels and priors.

Fine classes say what the star does; labels say what the learning core is told
(``service.learn.labels.CLASSES`` plus ``bad`` and the source's ``unknown``):

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

FINE_CLASSES: tuple[str, ...] = (
    "absorption",
    "single-peak",
    "emission-in-absorption",
    "p-cygni",
    "double-peak",
    "shell",
    "unknown",
    "bad",
)
LABELS: tuple[str, ...] = ("single-peak", "double-peak", "absorption", "bad", "unknown")
LABEL_OF: dict[str, str] = {
    "absorption": "absorption",
    "single-peak": "single-peak",
    "emission-in-absorption": "single-peak",
    "p-cygni": "single-peak",
    "double-peak": "double-peak",
    "shell": "double-peak",
    "unknown": "unknown",
    "bad": "bad",
}
EMISSION_FINE = ("single-peak", "emission-in-absorption", "p-cygni", "double-peak", "shell")

#: Ondrejov CCD700 labels (13 334): emission 5301, absorption 6102, unknown 398, double-peak 1533.
ONDREJOV_COUNTS = {"emission": 5301, "absorption": 6102, "unknown": 398, "double-peak": 1533}
#: How the archive's "emission" and "double-peak" split into fine classes (our choice).
SINGLE_SPLIT = {"single-peak": 0.65, "emission-in-absorption": 0.25, "p-cygni": 0.10}
DOUBLE_SPLIT = {"double-peak": 0.80, "shell": 0.20}
#: LAMOST emission-line stars: single vs double peaked as in the published candidates
#: (3731 single-peak, 648 double-peak of 4379).
TARGET_DOUBLE_SHARE = 648 / 4379
DEFAULT_EMISSION_FRACTION = 0.01
DEFAULT_BAD_FRACTION = 0.005


def source_priors() -> dict[str, float]:
    """Fine-class probabilities of the Ondrejov-like source set (sum 1)."""
    total = sum(ONDREJOV_COUNTS.values())
    emission = ONDREJOV_COUNTS["emission"] / total
    double = ONDREJOV_COUNTS["double-peak"] / total
    priors = {k: emission * v for k, v in SINGLE_SPLIT.items()}
    priors.update({k: double * v for k, v in DOUBLE_SPLIT.items()})
    priors["absorption"] = ONDREJOV_COUNTS["absorption"] / total
    priors["unknown"] = ONDREJOV_COUNTS["unknown"] / total
    priors["bad"] = 0.0
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
    priors["bad"] = bad_fraction
    priors["unknown"] = 0.0
    priors["absorption"] = 1.0 - emission_fraction - bad_fraction
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
    blurred = (labels == "double-peak") & ~peaks_resolved
    labels = np.where(blurred, "single-peak", labels)
    hidden = np.isin(labels, ("single-peak", "double-peak")) & ~emission_visible
    return np.where(hidden, "absorption", labels)
