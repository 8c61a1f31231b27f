"""The side-by-side picture of real and simulated adapted spectra (docs/img)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from service.vocabulary import ABSORPTION


def side_by_side(
    path: Path,
    grid: np.ndarray,
    real_x: np.ndarray,
    real_y: np.ndarray,
    real_d: np.ndarray,
    sim_x: np.ndarray,
    sim_y: np.ndarray,
    sim_d: np.ndarray,
    pca: Any,
) -> None:
    """Rows: Ondrejov, LAMOST; columns: real vectors, simulated vectors, PCA plane."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"emission": "tab:red", ABSORPTION: "tab:blue"}
    fig, axes = plt.subplots(2, 3, figsize=(13, 7), sharex="col")
    rng = np.random.default_rng(0)
    for r, domain in enumerate(("ondrejov", "lamost")):
        ax_real, ax_sim, ax_pca = axes[r]
        for x, y in zip(real_x[real_d == domain], real_y[real_d == domain], strict=True):
            ax_real.plot(grid, x, color=colours[y], lw=0.8, alpha=0.8)
        pool = np.flatnonzero(sim_d == domain)
        for cls in (ABSORPTION, "emission"):
            chosen = pool[sim_y[pool] == cls]
            for i in rng.choice(chosen, min(12, chosen.size), replace=False):
                ax_sim.plot(grid, sim_x[i], color=colours[cls], lw=0.6, alpha=0.6)
        sim_p = pca.transform(sim_x[pool])
        ax_pca.scatter(
            sim_p[:, 0], sim_p[:, 1], s=2, c=[colours[c] for c in sim_y[pool]], alpha=0.15
        )
        mine = real_d == domain
        real_p = pca.transform(real_x[mine])
        ax_pca.scatter(real_p[:, 0], real_p[:, 1], s=40, c=[colours[c] for c in real_y[mine]],
                       edgecolors="k", marker="*")  # fmt: skip
        ax_real.set_title(f"{domain}: real (adapted)")
        ax_sim.set_title(f"{domain}: simulated (adapted)")
        ax_pca.set_title(f"{domain}: PCA (dots simulated, stars real)")
        ax_real.set_ylabel("z-scored flux")
    for ax in axes[1, :2]:
        ax.set_xlabel("vacuum wavelength [Å]")
    axes[1, 2].set_xlabel("PC1")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=60)
    plt.close(fig)
