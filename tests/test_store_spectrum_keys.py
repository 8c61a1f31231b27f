"""A bulk ingest's hashed keys answer as the writer's string check would (the one
writer, :meth:`service.store.datasets.Datasets.append`, uses either)."""

from __future__ import annotations

import numpy as np

from service.store.spectrum_keys import hashes_of, key, repeats


def repeats_by_strings(pubdids: list[str], urls: list[str]) -> list[bool]:
    """The writer's rule on strings: a row is a repeat if an earlier row had its DID or URL."""
    seen: set[str] = set()
    repeated = []
    for keys in zip(pubdids, urls, strict=True):
        present = [k for k in keys if k]
        repeated.append(any(k in seen for k in present))
        seen.update(present)
    return repeated


def test_repeats_within_a_chunk_are_those_the_string_rule_finds() -> None:
    rng = np.random.default_rng(3)
    names = [""] + [f"ivo://t/pool?{i}" for i in range(12)] + [f"http://a/{i}" for i in range(12)]
    for n in (0, 1, 2, 7, 40):
        for _ in range(50):
            pubdids = [names[i] for i in rng.integers(0, len(names), n)]
            urls = [names[i] for i in rng.integers(0, len(names), n)]
            found = repeats(hashes_of([*pubdids, *urls]), n).tolist()
            assert found == repeats_by_strings(pubdids, urls), (pubdids, urls)


def test_a_row_naming_itself_twice_is_no_repeat() -> None:
    """A tree file without a DID is named by its URL in both columns."""
    url = "file:///data/spec-1.fits"
    assert repeats(hashes_of([url, url]), 1).tolist() == [False]
    assert hashes_of(["", url]).tolist()[0] == -1


def test_hashes_are_the_keys_one_by_one() -> None:
    texts = ["", "ivo://lamost.org/spectrum?spec-1", "file:///data/sp%C3%A9c%20%231.fits", "x"]
    assert hashes_of(texts).tolist() == [-1, *(key(t) for t in texts[1:])]
    assert (hashes_of(texts)[1:] >= 0).all() and hashes_of([]).shape == (0,)
