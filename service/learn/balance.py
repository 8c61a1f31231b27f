"""Class balancing of a training set: SMOTE (the original), class weights, or none.

The source set is imbalanced (double-peak 1533 vs absorption 6102) and the
oracle's labels more so, so the network would learn the majority. The original
oversampled the minority classes with SMOTE (imbalanced-learn) before each
training; class weights reweight the loss instead and keep the set small.
"""

from __future__ import annotations

import numpy as np

from service.reasons import AlvoError, Reason

BALANCING: tuple[str, ...] = ("smote", "class-weight", "none")


def balance(
    x: np.ndarray, y: np.ndarray, method: str = "smote", seed: int = 0
) -> tuple[np.ndarray, np.ndarray, dict[int, float] | None]:
    """Balance (n, m) features ``x`` with (n,) int labels ``y``.

    Returns (x', y', class_weight): for "smote" x', y' hold synthetic minority
    rows appended (k = 5 neighbours, fewer for tiny classes; a class with a single
    member is duplicated instead, SMOTE needs two); for "class-weight" the input and
    weights n / (k * n_c) per class; for "none" the input and None.
    """
    if method not in BALANCING:
        raise AlvoError(Reason.BAD_PARAMETER, f"balancing {method!r} not in {BALANCING}")
    classes, counts = np.unique(y, return_counts=True)
    if method == "none" or classes.size < 2:
        return x, y, None
    if method == "class-weight":
        weights = y.size / (classes.size * counts)
        return x, y, {int(c): float(w) for c, w in zip(classes, weights, strict=True)}
    from imblearn.over_sampling import SMOTE, RandomOverSampler

    smallest = int(counts.min())
    sampler = (
        SMOTE(k_neighbors=min(5, smallest - 1), random_state=seed)
        if smallest >= 2
        else RandomOverSampler(random_state=seed)
    )
    x_res, y_res = sampler.fit_resample(x.reshape(len(x), -1), y)
    return x_res.astype(np.float32).reshape(-1, *x.shape[1:]), y_res, None
