"""``alvo adapt pairs``: measure how well adaptation maps Ondrejov spectra onto LAMOST.

For the stars observed by both archives (``pairs.csv`` of the real test data),
both members are adapted and the adapted Ondrejov spectrum is compared with its
LAMOST twin: residual RMS (in z-score units) and Pearson correlation, for
(a) the original σ = 7 CCD700 pixels, (b) the kernel derived from resolving
powers and (c) the σ that fits each pair best; and, to show where the rest of
the mismatch comes from, (d) the kernel from resolving powers with ``continuum="linear"``:
both spectra divided by a straight continuum through the window's outer 15
pixels on each side. The table is what docs/adaptation.md reports.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from service.adapt import AdaptConfig
    from service.spectra import Spectrum

DEFAULT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real"
#: σ values (CCD700 pixels) scanned for the per-pair best fit, 0.25 px steps.
SIGMA_SCAN_PX = tuple(0.25 * k for k in range(1, 121))


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "adapt",
        help="domain-adaptation checks on real spectra",
        description="Check the Ondrejov -> LAMOST domain adaptation on real spectra.",
    )
    actions = parser.add_subparsers(dest="adapt_action", metavar="ACTION", required=True)
    pairs = actions.add_parser(
        "pairs",
        help="compare adapted Ondrejov spectra with their LAMOST twins",
        description=(
            "Adapt both members of each Ondrejov/LAMOST pair in PAIRS.csv and print, per pair "
            "and in total, residual RMS and Pearson r between the adapted spectra for "
            "(a) sigma = 7 CCD700 px, (b) the kernel from resolving powers, (c) the best "
            "sigma per pair."
        ),
    )
    pairs.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="folder holding pairs.csv and the spectra"
    )
    pairs.add_argument("--csv", type=Path, help="also write the table as CSV here")
    pairs.add_argument("--rebin", choices=["flux-conserving", "linear"], default="flux-conserving")
    pairs.add_argument("--scaling", choices=["zscore", "minmax"], default="zscore")
    pairs.set_defaults(func=pairs_command)


@dataclasses.dataclass
class PairRow:
    """One pair's agreement after adaptation, for the three blur choices."""

    ondrejov: str
    lamost: str
    label: str
    rms_fixed: float
    r_fixed: float
    rms_resolving: float
    r_resolving: float
    best_sigma_px: float
    rms_best: float
    r_best: float
    rms_continuum: float
    r_continuum: float


def _agreement(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise residual RMS and Pearson r of (k, m) features a against (m,) b."""
    import numpy as np

    rms = np.sqrt(np.mean((a - b[None, :]) ** 2, axis=1))
    az = (a - a.mean(axis=1, keepdims=True)) / a.std(axis=1, keepdims=True)
    bz = (b - b.mean()) / b.std()
    return rms, np.mean(az * bz[None, :], axis=1)


def _adapted(spectrum: Spectrum, config: AdaptConfig) -> np.ndarray:
    from service.adapt import adapt

    batch = adapt([spectrum], config)
    if batch.failures:
        raise batch.failures[0]
    return batch.features[0].astype("float64")


def compare_pair(source: Spectrum, target: Spectrum, base: AdaptConfig) -> tuple[float, ...]:
    """(rms, r) for σ = 7 px, for resolving powers, (σ, rms, r) for the best σ, and
    (rms, r) for resolving powers after continuum division."""
    import numpy as np

    base = dataclasses.replace(base, continuum="none")  # (a)-(c): the blur alone
    b = _adapted(target, base)
    configs = [
        dataclasses.replace(base, blur="fixed-pixels", sigma_px=7.0),
        dataclasses.replace(base, blur="resolving-power"),
        *(dataclasses.replace(base, blur="fixed-pixels", sigma_px=s) for s in SIGMA_SCAN_PX),
    ]
    rms, r = _agreement(np.array([_adapted(source, c) for c in configs]), b)
    best = 2 + int(np.argmin(rms[2:]))
    flat = dataclasses.replace(base, blur="resolving-power", continuum="linear")
    rms_c, r_c = _agreement(_adapted(source, flat)[None, :], _adapted(target, flat))
    return (
        rms[0], r[0], rms[1], r[1], SIGMA_SCAN_PX[best - 2], rms[best], r[best], rms_c[0], r_c[0]
    )  # fmt: skip


def measure_pairs(data: Path, base: AdaptConfig) -> list[PairRow]:
    """Adapt and compare every pair listed in data/pairs.csv."""
    from tqdm import tqdm

    from service.spectra import read_spectrum

    with open(data / "pairs.csv", newline="") as handle:
        entries = list(csv.DictReader(handle))
    rows = []
    for entry in tqdm(entries, desc="pairs", unit="pair", disable=not sys.stderr.isatty()):
        source = read_spectrum(data / entry["ondrejov_file"])
        target = read_spectrum(data / entry["lamost_file"])
        numbers = compare_pair(source, target, base)
        rows.append(
            PairRow(
                Path(entry["ondrejov_file"]).stem,
                Path(entry["lamost_file"]).stem,
                entry["ondrejov_label"],
                *(float(x) for x in numbers),
            )
        )
    return rows


def format_table(rows: Sequence[PairRow]) -> str:
    """Markdown table, one line per pair plus the mean over all pairs."""
    import numpy as np

    head = (
        "| Ondřejov | LAMOST | label | RMS σ=7px | r σ=7px | RMS R-kernel | r R-kernel "
        "| best σ px | RMS best | r best | RMS cont. | r cont. |\n"
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    lines = [
        f"| {p.ondrejov} | {p.lamost} | {p.label} | {p.rms_fixed:.3f} | {p.r_fixed:.3f} "
        f"| {p.rms_resolving:.3f} | {p.r_resolving:.3f} | {p.best_sigma_px:.2f} "
        f"| {p.rms_best:.3f} | {p.r_best:.3f} | {p.rms_continuum:.3f} | {p.r_continuum:.3f} |"
        for p in rows
    ]
    cols = np.array([dataclasses.astuple(p)[3:] for p in rows], dtype=np.float64)
    mean = cols.mean(axis=0)
    lines.append(
        f"| **mean of {len(rows)}** | | | {mean[0]:.3f} | {mean[1]:.3f} | {mean[2]:.3f} "
        f"| {mean[3]:.3f} | {mean[4]:.2f} | {mean[5]:.3f} | {mean[6]:.3f} "
        f"| {mean[7]:.3f} | {mean[8]:.3f} |"
    )
    return head + "\n".join(lines)


def pairs_command(args: argparse.Namespace) -> int:
    from service.adapt import AdaptConfig
    from service.reasons import AlvoError

    if not (args.data / "pairs.csv").exists():
        print(f"no pairs.csv in {args.data}", file=sys.stderr)
        return 2
    base = AdaptConfig(rebin=args.rebin, scaling=args.scaling)
    try:
        rows = measure_pairs(args.data, base)
    except AlvoError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"adaptation config: rebin={base.rebin} scaling={base.scaling}")
    print(format_table(rows))
    if args.csv:
        with open(args.csv, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow([f.name for f in dataclasses.fields(PairRow)])
            writer.writerows(dataclasses.astuple(p) for p in rows)
    return 0
