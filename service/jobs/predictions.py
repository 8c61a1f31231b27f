"""Classifying a feature store and recording the predictions: shared by classify and iterate."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import sqlalchemy as sa

from service.tables import schema

CLASSES = schema.CLASSES
#: Rows per INSERT batch when writing a pool's predictions.
INSERT_CHUNK = 20_000


@dataclasses.dataclass
class Predictions:
    """Per feature row: class probabilities (NaN rows where the features were NaN)."""

    probabilities: np.ndarray  # (n, 3) float32, columns in CLASSES order
    hou: np.ndarray  # (n,) bool, Hou et al. (2016) rule on the same features
    seconds: float

    @property
    def finite(self) -> np.ndarray:
        return np.isfinite(self.probabilities).all(axis=1)

    @property
    def predicted(self) -> np.ndarray:
        return np.argmax(np.nan_to_num(self.probabilities, nan=-1.0), axis=1)

    @property
    def entropy(self) -> np.ndarray:
        from service.learn import entropy

        return np.asarray(entropy(np.nan_to_num(self.probabilities, nan=1 / 3)))

    def candidates(self) -> np.ndarray:
        """Rows predicted as an emission class (the original's positives)."""
        from service.learn import TARGET_CLASSES

        among = [CLASSES.index(c) for c in TARGET_CLASSES]
        return np.isin(self.predicted, among) & self.finite


def classify(classifier: object, features: np.ndarray) -> Predictions:
    """Stream ``features`` (a memory map is fine) through the classifier and the Hou rule."""
    from service.adapt import AdaptConfig
    from service.learn import hou_rule

    started = time.perf_counter()
    probabilities = classifier.predict_proba(features)  # type: ignore[attr-defined]
    seconds = time.perf_counter() - started
    hou = np.zeros(len(features), dtype=bool)
    for start in range(0, len(features), 100_000):  # bounded memory over a memmap
        chunk = np.asarray(features[start : start + 100_000])
        hou[start : start + len(chunk)] = hou_rule(chunk, AdaptConfig().grid())
    return Predictions(probabilities, hou, seconds)


def write_predictions(
    engine: sa.Engine,
    spectrum_ids: np.ndarray,
    predictions: Predictions,
    roles: np.ndarray,
    campaign_id: int | None,
    iteration: int,
) -> int:
    """Insert one ``prediction`` row per classified spectrum; returns how many."""
    entropies, predicted = predictions.entropy, predictions.predicted
    probabilities = predictions.probabilities
    rows = np.flatnonzero(predictions.finite & (spectrum_ids >= 0))
    with engine.begin() as conn:
        for start in range(0, len(rows), INSERT_CHUNK):
            conn.execute(
                schema.prediction.insert(),
                [
                    {
                        "spectrum_id": int(spectrum_ids[i]),
                        "campaign_id": campaign_id,
                        "iteration": iteration,
                        "predicted_class": CLASSES[predicted[i]],
                        "p_single_peak": float(probabilities[i, 0]),
                        "p_double_peak": float(probabilities[i, 1]),
                        "p_absorption": float(probabilities[i, 2]),
                        "entropy": float(entropies[i]),
                        "hou_verdict": "emission" if predictions.hou[i] else "none",
                        "role": roles[i] or None,
                    }
                    for i in rows[start : start + INSERT_CHUNK]
                ],
            )
    return len(rows)
