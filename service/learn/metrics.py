"""Classification metrics on integer labels: confusion matrix, error, precision, recall.

Plain numpy so the active-learning loop, the web layer and the benchmark agree
on one definition. Rows of the confusion matrix are the truth, columns the
prediction (scikit-learn's convention).
"""

from __future__ import annotations

import numpy as np


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """(k, k) int64 counts, [true class, predicted class]; labels < 0 in truth are ignored."""
    truth = np.asarray(truth, dtype=np.int64)
    predicted = np.asarray(predicted, dtype=np.int64)
    keep = truth >= 0
    flat = truth[keep] * n_classes + predicted[keep]
    return np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def error_rate(confusion: np.ndarray) -> float:
    """Share of misclassified spectra (1 - accuracy)."""
    total = confusion.sum()
    return float(1.0 - np.trace(confusion) / total) if total else float("nan")


def precision_recall(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-class precision and recall, NaN where undefined (nothing predicted / present)."""
    diag = np.diag(confusion).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = diag / confusion.sum(axis=0)
        recall = diag / confusion.sum(axis=1)
    return precision, recall


def binary_precision_recall(truth: np.ndarray, detected: np.ndarray) -> tuple[float, float]:
    """Precision and recall of a boolean detector against boolean truth."""
    truth = np.asarray(truth, dtype=bool)
    detected = np.asarray(detected, dtype=bool)
    hits = float(np.count_nonzero(truth & detected))
    n_detected = np.count_nonzero(detected)
    n_true = np.count_nonzero(truth)
    precision = hits / n_detected if n_detected else float("nan")
    recall = hits / n_true if n_true else float("nan")
    return precision, recall


def precision_at_recall(truth: np.ndarray, score: np.ndarray, recall: float) -> tuple[float, float]:
    """Precision of ``score >= t`` for the largest threshold t whose recall reaches ``recall``.

    Used to put the CNN beside a fixed-rule detector: at the rule's recall, how
    precise is the network? Returns (precision, threshold); NaN when no positives.
    """
    truth = np.asarray(truth, dtype=bool)
    n_true = np.count_nonzero(truth)
    if n_true == 0 or not np.isfinite(recall):
        return float("nan"), float("nan")
    order = np.argsort(-np.asarray(score, dtype=float), kind="stable")
    hits = np.cumsum(truth[order])
    need = int(np.ceil(recall * n_true - 1e-9))
    k = int(np.searchsorted(hits, max(need, 1)))  # first position reaching the recall
    return float(hits[k] / (k + 1)), float(score[order[k]])
