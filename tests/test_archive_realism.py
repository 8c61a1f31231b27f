"""A model trained only on simulated spectra labels the real ones (shared/data/real)."""

from __future__ import annotations

import numpy as np


def test_simulated_training_labels_real_spectra(real_data):
    from sklearn.linear_model import LogisticRegression

    from service.adapt import adapt
    from service.archive.realism import binary, real_examples, simulated

    examples = real_examples(real_data)
    real_x = adapt([s for _, _, s in examples]).features
    real_y = np.array([label for _, label, _ in examples])
    assert (real_y == "emission").sum() == 7 and len(real_y) == 40
    xs, ys = [], []
    for spectra, labels in simulated(1024, seed=7).values():
        x = adapt(spectra).features
        keep = np.isfinite(x).all(axis=1) & (binary(labels) != "")
        xs.append(x[keep])
        ys.append(binary(labels)[keep])
    model = LogisticRegression(max_iter=2000, C=0.3).fit(np.concatenate(xs), np.concatenate(ys))
    predicted = model.predict(real_x)
    emission = real_y == "emission"
    assert (predicted[emission] == "emission").all(), [
        e[0]
        for e, p in zip(examples, predicted, strict=True)
        if p != "emission" and e[1] == "emission"
    ]
    assert (predicted == real_y).mean() >= 0.9
