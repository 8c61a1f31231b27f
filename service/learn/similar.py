""" "More like this": the nearest pool spectra of a spectrum in the network's embedding.

The network's penultimate layer (``embedding``, 512 values for the reference net) is
what it learnt to tell the classes by, so two spectra close there look alike *to the
classifier*: the oracle who found one odd object asks for more of the same. Each
iteration projects the pool's embeddings onto their first :data:`DIMENSIONS` principal
components (fitted on a sample of the pool; 512 float32 values per spectrum would be
8 GB at 4.1 M) and indexes those vectors with HNSW (hnswlib): a query is a fraction of
a millisecond and its top 10 agree with exact search on >= 0.95 of the neighbours
(``tests/test_learn_similar.py``, ``benchmarks/bench_similar.py``, docs/discovery.md).

Arrays only: the job layer scores the pool, the store names the files.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

#: Principal components kept of the embedding: the indexed vector's length.
DIMENSIONS = 32
#: HNSW graph degree and construction beam (hnswlib's M and ef_construction).
LINKS = 16
CONSTRUCTION_BEAM = 100
#: Search beam (hnswlib's ef): recall@10 0.9998 at 200 000 rows and 0.980 at 1 M, where
#: 64 gave 0.948-0.963 and 128 0.964; 0.33 ms a query at 1 M (docs/discovery.md).
SEARCH_BEAM = 256
#: Rows of the pool the projection is fitted on (evenly spread over the pool).
PROJECTION_SAMPLE = 20_000


@dataclasses.dataclass(frozen=True)
class Projection:
    """Centring and principal axes: ``(x - mean) @ axes`` maps (n, d) to (n, k)."""

    mean: np.ndarray  # (d,) float32
    axes: np.ndarray  # (d, k) float32

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """(n, k) float32 coordinates of (n, d) embeddings (NaN rows stay NaN)."""
        return np.asarray((np.asarray(x, np.float32) - self.mean) @ self.axes, np.float32)


def fit_projection(sample: np.ndarray, dimensions: int = DIMENSIONS) -> Projection:
    """Principal axes of (n, d) embeddings (finite rows), at most ``dimensions`` of them."""
    x = np.asarray(sample, np.float64)
    x = x[np.isfinite(x).all(axis=1)]
    mean = x.mean(axis=0) if len(x) else np.zeros(sample.shape[1])
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    k = min(dimensions, vt.shape[0])
    return Projection(mean.astype(np.float32), np.ascontiguousarray(vt[:k].T, np.float32))


def sample_rows(n: int, size: int = PROJECTION_SAMPLE) -> np.ndarray:
    """``size`` row numbers evenly spread over ``n`` rows (all of them if fewer)."""
    return (
        np.unique(np.linspace(0, n - 1, min(n, size)).astype(np.int64)) if n else np.zeros(0, int)
    )


class SimilarityIndex:
    """An HNSW index over (n, k) vectors, labelled by row number; NaN rows are left out."""

    def __init__(self, index: object, projection: Projection | None = None) -> None:
        self.index = index
        self.projection = projection

    @classmethod
    def build(
        cls, vectors: np.ndarray, projection: Projection | None = None, threads: int = -1
    ) -> SimilarityIndex:
        import hnswlib

        vectors = np.ascontiguousarray(vectors, np.float32)
        rows = np.flatnonzero(np.isfinite(vectors).all(axis=1))
        index = hnswlib.Index(space="l2", dim=vectors.shape[1])
        index.init_index(
            max_elements=max(len(rows), 1), M=LINKS, ef_construction=CONSTRUCTION_BEAM,
            random_seed=1,
        )  # fmt: skip
        if len(rows):
            index.add_items(vectors[rows], rows, num_threads=threads)
        index.set_ef(SEARCH_BEAM)
        return cls(index, projection)

    def __len__(self) -> int:
        return int(self.index.get_current_count())  # type: ignore[attr-defined]

    def __contains__(self, row: int) -> bool:
        try:
            self.index.get_items([int(row)])  # type: ignore[attr-defined]
        except RuntimeError:
            return False
        return True

    def vector(self, row: int) -> np.ndarray:
        """The indexed (k,) vector of pool row ``row`` (KeyError if not indexed)."""
        try:
            return np.asarray(self.index.get_items([int(row)]), np.float32)[0]  # type: ignore[attr-defined]
        except RuntimeError:
            raise KeyError(row) from None

    def neighbours(
        self, vector: np.ndarray, k: int, exclude: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(rows, Euclidean distances) of the ``k`` nearest indexed vectors, nearest first;
        ``exclude`` (the query's own row) is left out."""
        want = min(k + (exclude is not None), len(self))
        if want <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        self.index.set_ef(max(SEARCH_BEAM, want))  # type: ignore[attr-defined]
        labels, squared = self.index.knn_query(np.asarray(vector, np.float32)[None], k=want)  # type: ignore[attr-defined]
        rows, distances = labels[0].astype(np.int64), np.sqrt(np.maximum(squared[0], 0))
        keep = rows != exclude if exclude is not None else np.ones(len(rows), bool)
        return rows[keep][:k], distances[keep][:k].astype(np.float32)

    def save(self, path: Path) -> Path:
        """The index at ``path`` and its projection beside it (``path`` + ``.npz``)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        self.index.save_index(str(partial))  # type: ignore[attr-defined]
        if self.projection is not None:
            with open(_projection_file(path), "wb") as out:
                np.savez(out, mean=self.projection.mean, axes=self.projection.axes)
        partial.replace(path)  # readers see a whole index or none
        return path

    @classmethod
    def load(cls, path: Path) -> SimilarityIndex:
        import hnswlib

        projection = None
        if _projection_file(path).exists():
            with np.load(_projection_file(path)) as saved:
                projection = Projection(saved["mean"], saved["axes"])
        dimensions = projection.axes.shape[1] if projection is not None else DIMENSIONS
        index = hnswlib.Index(space="l2", dim=dimensions)
        index.load_index(str(path))
        index.set_ef(SEARCH_BEAM)
        return cls(index, projection)


def _projection_file(path: Path) -> Path:
    return path.with_name(path.name + ".npz")


def exact_neighbours(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """(q, k) rows of the ``k`` nearest finite vectors of each query by brute force
    (the reference the index is measured against)."""
    x = np.asarray(vectors, np.float32)
    finite = np.asarray(np.isfinite(x).all(axis=1))
    x = np.where(finite[:, None], x, 0)
    norms: np.ndarray = np.where(finite, (x * x).sum(axis=1), np.inf)
    out = np.empty((len(queries), k), np.int64)
    for i, q in enumerate(np.asarray(queries, np.float32)):
        d = norms - 2 * x @ q
        nearest = np.argpartition(d, k)[:k]
        out[i] = nearest[np.argsort(d[nearest])]
    return out


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each row of ``truth`` that the same row of ``found`` holds."""
    hits = [
        len(set(f.tolist()) & set(t.tolist())) / len(t) for f, t in zip(found, truth, strict=True)
    ]
    return float(np.mean(hits)) if hits else 1.0
