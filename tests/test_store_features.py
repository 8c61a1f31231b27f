"""The feature store stays a valid .npy through appends, row i <-> spectrum i."""

from __future__ import annotations

import numpy as np
import pytest

from service.store.features import FeatureStore


def test_appends_are_memory_mapped_in_order(tmp_path):
    store = FeatureStore.create(tmp_path / "f.npy", width=140)
    first = np.random.default_rng(1).normal(size=(5, 140))
    second = np.random.default_rng(2).normal(size=(3, 140))
    assert store.append(first) == range(0, 5)
    assert store.append(second) == range(5, 8)
    mapped = store.array()
    assert isinstance(mapped, np.memmap) and mapped.dtype == np.float32
    np.testing.assert_array_equal(mapped, np.vstack([first, second]).astype(np.float32))
    assert np.load(tmp_path / "f.npy").shape == (8, 140)  # plain numpy reads it too


def test_wrong_width_is_refused(tmp_path):
    store = FeatureStore.create(tmp_path / "f.npy", width=140)
    with pytest.raises(ValueError, match=r"\(k, 140\)"):
        store.append(np.zeros((2, 100)))
    assert len(store) == 0


def test_empty_store_has_no_rows(tmp_path):
    assert FeatureStore.create(tmp_path / "f.npy", width=7).array().shape == (0, 7)
