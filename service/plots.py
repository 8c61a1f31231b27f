"""PNG figures an astronomer checks by eye: a spectrum beside what the network sees.

Built on :class:`matplotlib.figure.Figure` with the Agg canvas (no pyplot, no
global state), so it is safe in worker processes and web handlers alike.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from service.adapt import AdaptedBatch, to_air
from service.spectra.spectrum import Spectrum

HALPHA_VACUUM = 6564.614  # Å
#: Native panel range around H-alpha, Å (in the spectrum's own medium).
NATIVE_VIEW = (6480.0, 6770.0)


def _title(spectrum: Spectrum, fallback: str) -> str:
    meta = spectrum.meta
    name = meta.object or meta.designation or meta.obsid or fallback
    where = meta.collection or meta.instrument
    return f"{name} ({where})" if where else name


def spectrum_figure(
    spectra: Sequence[Spectrum], batch: AdaptedBatch, names: Sequence[str] = ()
) -> Figure:
    """One row per spectrum: native flux around H-alpha | adapted feature vector.

    The native panel is in the spectrum's own medium and units, with the H-alpha
    position in that medium and the feature window shaded; the right panel shows
    the ``config.n`` features against their vacuum wavelengths, or the reason the
    spectrum could not be adapted.
    """
    config = batch.config
    grid = config.grid()
    rows = len(spectra)
    fig = Figure(figsize=(11.0, 2.8 * rows + 0.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 2, squeeze=False, width_ratios=(1.4, 1.0))
    for i, spectrum in enumerate(spectra):
        native, adapted = axes[i]
        air = spectrum.medium == "air"
        halpha = float(to_air(HALPHA_VACUUM)) if air else HALPHA_VACUUM
        window = (
            (float(to_air(config.start)), float(to_air(config.stop)))
            if air
            else (
                config.start,
                config.stop,
            )
        )
        lam = spectrum.wavelength
        view = (lam >= NATIVE_VIEW[0]) & (lam <= NATIVE_VIEW[1])
        good = spectrum.good & (spectrum.flux != 0)  # adapt() treats exact zeros as drop-outs
        native.plot(lam[view], np.where(good, spectrum.flux, np.nan)[view], lw=0.7, color="k")
        bad = view & ~good
        if bad.any():
            native.plot(lam[bad], np.zeros(bad.sum()), "|", color="tab:red", label="masked")
            native.legend(loc="upper right", fontsize=8)
        native.axvspan(*window, color="tab:blue", alpha=0.08, lw=0)
        native.axvline(halpha, color="tab:red", lw=0.6, ls=":")
        native.set_xlim(*NATIVE_VIEW)
        native.set_xlabel(f"wavelength ({spectrum.medium}) [Å]")
        native.set_ylabel("flux")
        name = names[i] if i < len(names) else f"spectrum {i}"
        native.set_title(
            f"{_title(spectrum, name)}, native, R≈{spectrum.resolving_power:.0f}\n{name}",
            fontsize=10,
        )

        if i in batch.failures:
            error = batch.failures[i]
            adapted.text(
                0.5, 0.5, f"{error.reason.code}\n{error.detail}", ha="center", va="center",
                wrap=True, fontsize=9, color="tab:red", transform=adapted.transAxes,
            )  # fmt: skip
            adapted.set_axis_off()
            continue
        adapted.plot(grid, batch.features[i], ".-", ms=3, lw=0.7, color="tab:blue")
        adapted.axvline(HALPHA_VACUUM, color="tab:red", lw=0.6, ls=":")
        adapted.set_xlim(config.start, config.stop)
        adapted.set_xlabel("wavelength (vacuum) [Å]")
        adapted.set_ylabel(config.scaling)
        adapted.set_title(
            f"adapted: {config.n} px, blur {config.blur}\n"
            f"{config.rebin} rebin, {100 * batch.coverage[i]:.0f}% of pixels good",
            fontsize=10,
        )
    fig.suptitle(f"alvo adaptation {config.fingerprint}", fontsize=8, color="0.4")
    return fig


def save_png(fig: Figure, target: str | Path | io.BytesIO, dpi: int = 110) -> None:
    """Write a figure as PNG to a path or a binary buffer."""
    fig.savefig(target, format="png", dpi=dpi)


def learning_curve_figure(
    x: Sequence[float],
    series: dict[str, Sequence[float]],
    xlabel: str = "oracle labels",
    ylabel: str = "error",
    title: str = "",
) -> Figure:
    """Lines of ``series`` (name -> values aligned with ``x``); NaN values leave gaps."""
    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for name, values in series.items():
        ax.plot(x, np.asarray(values, dtype=float), marker="o", markersize=3, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend(frameon=False)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def confusion_figure(matrix: np.ndarray, classes: Sequence[str], title: str = "") -> Figure:
    """A confusion matrix (rows: true class, columns: predicted), counts and row shares."""
    matrix = np.asarray(matrix)
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig = Figure(figsize=(4.8, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    ticks = np.arange(len(classes))
    ax.set_xticks(ticks, classes, rotation=30, ha="right")
    ax.set_yticks(ticks, classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), count in np.ndenumerate(matrix):
        colour = "white" if shares[i, j] > 0.6 else "black"
        ax.text(j, i, f"{count}\n{shares[i, j]:.0%}", ha="center", va="center", color=colour)
    if title:
        ax.set_title(title, fontsize=10)
    return fig
