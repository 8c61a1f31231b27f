"""Is the simulator realistic? Measured against the real spectra of ``shared/data/real``.

Three checks, printed as a report (``alvo archive realism``):

1. *Feature distributions*: H-alpha equivalent width (continuum-normalised,
   ±30 Å), noise (DER_SNR) of real and simulated spectra of each domain.
2. *Adapted vectors*: both go through :func:`service.adapt.adapt`; a PCA fitted
   on the simulated vectors; each real vector's distance to its nearest
   simulated neighbour compared with the simulated spectra's own
   nearest-neighbour distances (ratio ≈ 1: real spectra sit inside the cloud).
3. *Transfer*: a classifier trained only on simulated spectra (both domains)
   labels the real ones: γ Cas, BT CMi (both archives), ub240016, vl070030 and
   their LAMOST twins as emission; Vega, the other Ondrejov stars and the LAMOST
   DR2 stars as absorption.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from service.adapt import AdaptConfig, adapt, to_vacuum
from service.archive import simulate_batch
from service.archive.lines import HALPHA
from service.spectra import Spectrum, read_spectrum
from service.spectra.checks import der_snr
from service.vocabulary import ABSORPTION, CLASSES, TARGET_CLASSES

#: The realism check's two sides: emission (either target class) or absorption.
EMISSION = "emission"
SIDES = (ABSORPTION, EMISSION)
EMISSION_FILES = {
    "ondrejov/gamma-cas-emission.fits",
    "ondrejov/bt-cmi-ondrejov.fits",
    "ondrejov/ub240016.fits",
    "ondrejov/vl070030.fits",
    "lamost-dr1/bt-cmi-lamost.fits",
}
#: Files whose class we do not know (HD 208905 raw frame, the SN_R 3 'Unknown').
UNLABELLED = {"ondrejov/oe270005.fits", "lamost-dr2/spec-55919-B5591903_sp01-001.fits"}


def real_examples(real: Path) -> list[tuple[str, str, Spectrum]]:
    """(relative path, 'emission'|'absorption', spectrum) of the labelled real spectra."""
    twins = {}
    with open(real / "pairs.csv") as handle:
        for row in csv.DictReader(handle):
            twins[row["lamost_file"]] = row["ondrejov_label"]
    out = []
    files = sorted(real.glob("ondrejov/*.fits")) + sorted(real.glob("lamost-dr2/*.fits"))
    files += [real / name for name in sorted(twins)] + [real / "lamost-dr1/bt-cmi-lamost.fits"]
    for path in files:
        name = str(path.relative_to(real))
        if name in UNLABELLED or not path.exists():
            continue
        if name in EMISSION_FILES:
            label = EMISSION
        else:
            label = EMISSION if twins.get(name) == "emission" else ABSORPTION
        out.append((name, label, read_spectrum(path)))
    return out


def halpha_ew(spectrum: Spectrum) -> float:
    """EW (Å) of H-alpha ±30 Å after dividing by a line through two side windows; < 0 emission."""
    lam = spectrum.wavelength if spectrum.medium == "vacuum" else to_vacuum(spectrum.wavelength)
    flux, good = spectrum.flux, spectrum.good
    side = good & (
        ((lam > HALPHA - 60) & (lam < HALPHA - 35)) | ((lam > HALPHA + 35) & (lam < HALPHA + 60))
    )
    line = good & (np.abs(lam - HALPHA) < 30)
    if side.sum() < 5 or line.sum() < 5:
        return float("nan")
    slope, intercept = np.polyfit(lam[side], flux[side], 1)
    normalised = flux[line] / (slope * lam[line] + intercept)
    return float(np.sum((1 - normalised) * np.gradient(lam[line])))


def _quantiles(values: np.ndarray) -> str:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return "-"
    q = np.percentile(values, [10, 50, 90])
    return f"{q[0]:7.2f} {q[1]:7.2f} {q[2]:7.2f}"


def simulated(n: int, seed: int) -> dict[str, tuple[list[Spectrum], np.ndarray]]:
    """Training spectra of both domains: Ondrejov priors, LAMOST with 30 % emission."""
    source, source_truth = simulate_batch("ondrejov", n, seed)
    target, target_truth = simulate_batch("lamost", n, seed + 1, emission_fraction=0.3)
    return {
        "ondrejov": (source, np.asarray(source_truth["label"])),
        "lamost": (target, np.asarray(target_truth["label"])),
    }


def binary(labels: np.ndarray) -> np.ndarray:
    """'emission' for single/double-peak, 'absorption', '' for labels not trained on."""
    return np.select(
        [np.isin(labels, TARGET_CLASSES), labels == ABSORPTION],
        [EMISSION, ABSORPTION],
        "",
    )


def classifiers() -> dict[str, Any]:
    """Two quick, untuned sklearn models on the adapted vectors (the CNN is service.learn's)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    return {
        "logistic regression": LogisticRegression(max_iter=2000, C=0.3),
        "random forest": RandomForestClassifier(300, min_samples_leaf=2, random_state=0, n_jobs=2),
    }


class ProjectCnn:
    """service.learn's reference CNN behind the two-method interface used here.

    Trained on the three learning classes (single-peak, double-peak, absorption),
    its probabilities folded into emission vs absorption.
    """

    def __init__(self, epochs: int = 12) -> None:
        self.epochs = epochs
        self.classes_ = np.array(SIDES)
        self.model: Any = None

    def fit_labels(self, x: np.ndarray, labels: np.ndarray) -> ProjectCnn:
        from service.learn import SpectrumClassifier, TrainConfig

        keep = np.isin(labels, CLASSES)
        y = np.array([CLASSES.index(v) for v in labels[keep]])
        config = TrainConfig(epochs=self.epochs, patience=3, seed=0)
        adapt_config = AdaptConfig()
        self.model = SpectrumClassifier.train(
            x[keep], y, config, adapt_config=adapt_config.to_dict(),
            adapt_fingerprint=adapt_config.fingerprint,
        )  # fmt: skip
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        p = self.model.predict_proba(x)
        emission = p[:, [CLASSES.index(c) for c in TARGET_CLASSES]].sum(axis=1)
        return np.stack([1 - emission, emission], axis=1)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.classes_[(self.predict_proba(x)[:, 1] > 0.5).astype(int)]


def report_transfer(
    title: str, model: Any, examples: list, real_x: np.ndarray, real_y: np.ndarray
) -> float:
    """Print each real spectrum's predicted class; return the accuracy."""
    predicted = model.predict(real_x)
    proba = model.predict_proba(real_x)[:, list(model.classes_).index(EMISSION)]
    correct = predicted == real_y
    print(f"  {title}:")
    for (name, label, _), p, ok, pe in zip(examples, predicted, correct, proba, strict=True):
        verdict = "ok " if ok else "NO "
        print(f"    {verdict} {name:58s} true {label:10s} predicted {p:10s} p(em)={pe:.2f}")
    recall = {c: correct[real_y == c].mean() for c in SIDES}
    print(
        f"    accuracy {correct.mean():.3f} ({correct.sum()}/{correct.size}); recall emission "
        f"{recall[EMISSION]:.2f}, absorption {recall[ABSORPTION]:.2f}"
    )
    return float(correct.mean())


def main(
    real: Path, n: int = 6000, seed: int = 7, plot: Path | None = None, cnn: bool = False
) -> int:
    from sklearn.decomposition import PCA
    from sklearn.neighbors import NearestNeighbors

    config = AdaptConfig()
    examples = real_examples(Path(real))
    real_x = adapt([s for _, _, s in examples], config).features
    real_y = np.array([label for _, label, _ in examples])
    real_domain = np.array(
        ["ondrejov" if n.startswith("ondrejov") else "lamost" for n, _, _ in examples]
    )
    sims = simulated(n, seed)

    print("1. H-alpha EW (Å; <0 emission) and DER_SNR: 10/50/90 percentiles")
    for domain, (spectra, labels) in sims.items():
        for cls in SIDES:
            chosen = binary(labels) == cls
            ew = np.array([halpha_ew(s) for s, c in zip(spectra, chosen, strict=True) if c])
            snr = np.array(
                [der_snr(s.flux[s.good]) for s, c in zip(spectra, chosen, strict=True) if c]
            )
            mask = (real_domain == domain) & (real_y == cls)
            real_ew = np.array([halpha_ew(examples[i][2]) for i in np.flatnonzero(mask)])
            real_snr = np.array(
                [der_snr(examples[i][2].flux[examples[i][2].good]) for i in np.flatnonzero(mask)]
            )
            tag = f"  {domain:8s} {cls:10s}"
            print(f"{tag} EW sim {_quantiles(ew)} | real {_quantiles(real_ew)} (n={mask.sum()})")
            print(f"  {'':8s} {'':10s} SNR sim {_quantiles(snr)} | real {_quantiles(real_snr)}")

    xs, ys, ds, fine = [], [], [], []
    for domain, (spectra, labels) in sims.items():
        batch = adapt(spectra, config)
        keep = np.isfinite(batch.features).all(axis=1) & (binary(labels) != "")
        xs.append(batch.features[keep])
        ys.append(binary(labels)[keep])
        ds.append(np.full(keep.sum(), domain))
        fine.append(labels[keep])
    sim_x, sim_y, sim_d = np.concatenate(xs), np.concatenate(ys), np.concatenate(ds)

    print("2. adapted vectors, PCA 10: NN distance of real / of simulated spectra (1 = alike)")
    pca = PCA(10, random_state=0).fit(sim_x)
    sim_p, real_p = pca.transform(sim_x), pca.transform(real_x)
    for domain in ("ondrejov", "lamost"):
        pool = sim_p[sim_d == domain]
        nn = NearestNeighbors(n_neighbors=2).fit(pool)
        own = np.median(nn.kneighbors(pool[:2000])[0][:, 1])
        mine = real_p[real_domain == domain]
        theirs = nn.kneighbors(mine, n_neighbors=1)[0][:, 0]
        ratio, high = np.median(theirs) / own, np.percentile(theirs, 90) / own
        print(f"  {domain:8s} median NN distance real/sim = {ratio:5.2f} (90th pct {high:5.2f})")

    print("3. classifiers trained on simulated spectra only, applied to the real ones")
    for title, model in classifiers().items():
        model.fit(sim_x, sim_y)
        report_transfer(title, model, examples, real_x, real_y)
    if cnn:
        network = ProjectCnn().fit_labels(sim_x, np.concatenate(fine))
        report_transfer("service.learn reference CNN", network, examples, real_x, real_y)
    if plot:
        from service.archive.realism_plot import side_by_side

        side_by_side(plot, config.grid(), real_x, real_y, real_domain, sim_x, sim_y, sim_d, pca)
        print(f"plot: {plot}")
    return 0
