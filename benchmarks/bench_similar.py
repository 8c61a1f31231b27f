""" "More like this" at scale: the HNSW index (hnswlib) against exact search, and faiss.

Makes an embedding-like pool of N rows x 32 dimensions (a mixture of 200 Gaussian
clusters of unequal size and spread: what the projected network embedding of a
spectrum pool looks like -- classes, sub-classes, a continuum between them), then, in
the same run:

* hnswlib (alvo's choice, the parameters of ``service.learn.similar``): build time on
  the cores given, one-query latency (single thread, as a web request runs it: p50 and
  p99 over Q queries), recall@10 against exact search;
* reference: exact search (faiss IndexFlatL2 -- BLAS brute force -- one query at a time,
  single thread) on the same queries: its latency is the answer time without an index;
* with ``--faiss-hnsw``: faiss's own HNSW (IndexHNSWFlat, same M and beams) for the choice.

Prints the numbers and the ratio exact / hnswlib latency. Goal: recall@10 >= 0.95 and a
query <= 50 ms at 4.1 M rows (``docs/discovery.md``).

    .venv/bin/python benchmarks/bench_similar.py [N=1000000] [Q=500] [--faiss-hnsw] [--sweep]

``--sweep`` also prints recall@10 and latency for search beams (ef) 32..256.
``--http`` measures instead a whole ``/similar`` request (uvicorn, SQLite lookups, VOTable)
on the web tests' 240-row campaign world: the per-request cost besides the index query.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from service.learn.similar import (  # noqa: E402
    CONSTRUCTION_BEAM,
    DIMENSIONS,
    LINKS,
    SEARCH_BEAM,
    SimilarityIndex,
    recall_at,
)


def pool(n: int, d: int = DIMENSIONS, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sizes = rng.dirichlet(np.full(200, 0.5))
    centres = rng.normal(0, 4, (200, d))
    spread = rng.uniform(0.3, 1.5, 200)
    which = rng.choice(200, n, p=sizes)
    x = centres[which] + rng.normal(size=(n, d)) * spread[which, None]
    return x.astype(np.float32)


def timed_queries(search, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    found, seconds = [], []
    for q in queries:
        started = time.perf_counter()
        found.append(search(q))
        seconds.append(time.perf_counter() - started)
    return np.array(found), np.array(seconds) * 1e3


def http_latency() -> None:
    import tempfile

    import httpx

    from service.learn.similar import fit_projection
    from service.store.campaigns import Campaigns
    from service.store.predictions import similarity_index_file
    from tests.web_world import served_world

    with tempfile.TemporaryDirectory() as home, served_world(Path(home)) as (url, world):
        campaign = Campaigns(world.settings).require(world.campaign)
        features = campaign.target.features.array()
        projection = fit_projection(features, 16)
        path = similarity_index_file(world.settings.home, campaign.campaign_id, 0)
        SimilarityIndex.build(projection(features), projection).save(path)
        with httpx.Client() as http:
            http.get(f"{url}/similar", params={"ID": "ivo://t/pool?1"})  # loads the index
            ms = []
            for i in range(100):
                started = time.perf_counter()
                answer = http.get(f"{url}/similar", params={"ID": f"ivo://t/pool?{i}", "K": "10"})
                ms.append((time.perf_counter() - started) * 1e3)
                assert answer.status_code == 200, answer.text
    print(f"HTTP /similar K=10 (240-row pool): p50 {np.median(ms):.1f} ms, "
          f"p90 {np.percentile(ms, 90):.1f} ms, load {os.getloadavg()[0]:.2f}")  # fmt: skip


def main() -> None:
    if "--http" in sys.argv:
        http_latency()
        return
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 1_000_000
    q = int(args[1]) if len(args) > 1 else 500
    import faiss

    load = os.getloadavg()
    print(f"pool {n} x {DIMENSIONS}, {q} queries, {os.cpu_count()} CPUs, load {load[0]:.2f}")
    x = pool(n)
    rng = np.random.default_rng(1)
    queries_rows = rng.choice(n, q, replace=False)
    queries = x[queries_rows]

    faiss.omp_set_num_threads(1)
    flat = faiss.IndexFlatL2(DIMENSIONS)
    flat.add(x)
    truth, exact_ms = timed_queries(lambda v: flat.search(v[None], 11)[1][0], queries)
    truth = np.array([t[t != r][:10] for t, r in zip(truth, queries_rows, strict=True)])

    started = time.perf_counter()
    index = SimilarityIndex.build(x, threads=os.cpu_count() or 1)
    build_s = time.perf_counter() - started
    index.index.set_num_threads(1)  # type: ignore[attr-defined]
    found, hnsw_ms = timed_queries(lambda v: index.neighbours(v, 10, exclude=None)[0], queries)
    found = np.array([f[f != r][:10] for f, r in zip(
        [index.neighbours(v, 11)[0] for v in queries], queries_rows, strict=True)])  # fmt: skip
    recall = recall_at(found, truth)
    print(f"hnswlib M={LINKS} efC={CONSTRUCTION_BEAM} ef={SEARCH_BEAM}: build {build_s:.1f} s, "
          f"query p50 {np.median(hnsw_ms):.3f} ms p99 {np.percentile(hnsw_ms, 99):.3f} ms, "
          f"recall@10 {recall:.4f}")  # fmt: skip
    if "--sweep" in sys.argv:  # the search beam: recall against time
        for beam in (32, 64, 128, 256):
            index.index.set_ef(beam)  # type: ignore[attr-defined]
            got, ms = timed_queries(lambda v: index.index.knn_query(v[None], 11)[0][0], queries)  # type: ignore[attr-defined]
            got = np.array([g[g != r][:10] for g, r in zip(got, queries_rows, strict=True)])
            print(f"  ef={beam}: recall@10 {recall_at(got, truth):.4f}, p50 {np.median(ms):.3f} ms")
    print(f"exact (faiss IndexFlatL2, 1 thread): query p50 {np.median(exact_ms):.2f} ms "
          f"p99 {np.percentile(exact_ms, 99):.2f} ms")  # fmt: skip
    print(f"ratio exact / hnswlib (p50 query): {np.median(exact_ms) / np.median(hnsw_ms):.0f}x")
    if "--faiss-hnsw" in sys.argv:
        other = faiss.IndexHNSWFlat(DIMENSIONS, LINKS)
        other.hnsw.efConstruction = CONSTRUCTION_BEAM
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        started = time.perf_counter()
        other.add(x)
        build = time.perf_counter() - started
        faiss.omp_set_num_threads(1)
        other.hnsw.efSearch = SEARCH_BEAM
        got, ms = timed_queries(lambda v: other.search(v[None], 11)[1][0], queries)
        got = np.array([g[g != r][:10] for g, r in zip(got, queries_rows, strict=True)])
        print(f"faiss HNSWFlat (same M, beams): build {build:.1f} s, query p50 "
              f"{np.median(ms):.3f} ms, recall@10 {recall_at(got, truth):.4f}")  # fmt: skip
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
