"""One active-learning step on arrays: which pool spectra the oracle sees next, and why.

The served ``iterate`` job and the benchmarked protocol (:mod:`service.learn.loop`)
both call :func:`select_batch`, so what the benchmark measures is what a campaign
runs. Arrays in (pool probabilities, which rows are labelled already, the
network's embeddings on demand), roles and scores out; no model, table or file.

Order of the draw, and why:

1. **precision sample** -- ``precision_sample`` rows drawn uniformly at random
   among the unlabelled spectra *predicted* as emission. Drawn first, so it is
   an unbiased sample of the candidates and is never emptied by the query batch
   (when there were fewer candidates than the batch, the batch used to take them
   all and the promised sample was empty).
2. **query** -- ``exploit`` (a fraction) of the ``batch``: the open spectra most
   likely to be emission (p(single) + p(double), :func:`~service.learn.query.exploit_sampling`),
   so the oracle sees the stars first -- the exploitation part; then the rest of
   the batch: the most useful of the remaining candidates by the query strategy
   (highest entropy by default) -- the exploration part that teaches the network.
3. **padding** -- only if fewer than ``batch`` candidates remain. The served
   ``iterate`` job pads only when asked (``padding=N``, its ``PADDING``): at
   most N spectra drawn at random among the unlabelled ones predicted as
   absorption, a stated sample whose emission stars estimate what the network
   misses. The benchmarked protocol (``padding=None``) fills the batch to
   ``batch`` by the same strategy, as the original did. Padding rows may well be
   certain (entropy ~0): they are there because no uncertain candidate was left,
   and say so.

Either way every candidate the pool has is shown to the oracle when candidates
are scarce; only the role names differ.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from service.learn.precision import precision_sample as draw_sample
from service.learn.query import (
    NEEDS_EMBEDDINGS,
    NEEDS_SAMPLES,
    UNRESTRICTED,
    entropy,
    exploit_sampling,
    get_strategy,
    select_query,
)
from service.learn.shift import argmax_candidates
from service.vocabulary import CANDIDATE, PADDING, PRECISION_SAMPLE, QUERY


class LazyEmbeddings:
    """Embeddings of pool rows, computed only for the rows a strategy materialises.

    ``embed(rows)`` returns the (len(rows), d) penultimate-layer activations of
    those pool rows. Indexing returns another lazy view; ``np.asarray`` computes.
    ``diverse-entropy`` thus runs the network on its shortlist (5 x batch rows),
    never on a LAMOST-sized pool.
    """

    def __init__(self, embed: Callable[[np.ndarray], np.ndarray], rows: np.ndarray) -> None:
        self.embed = embed
        self.rows = np.asarray(rows, dtype=np.int64)

    def __len__(self) -> int:
        return int(self.rows.size)

    def __getitem__(self, index: np.ndarray) -> LazyEmbeddings:
        return LazyEmbeddings(self.embed, self.rows[index])

    def __array__(self, dtype: Any = None, copy: object = None) -> np.ndarray:
        values = np.asarray(self.embed(self.rows))
        return values if dtype is None else values.astype(dtype)


@dataclasses.dataclass(frozen=True)
class Batch:
    """What one step chose, per pool row.

    role : (n,) str -- '', 'candidate', 'query', 'precision-sample' or 'padding'
    score : (n,) float -- predictive entropy (nats), NaN where probabilities are NaN
    n_candidates : pool spectra predicted as emission (labelled or not)
    n_open_candidates : of them, those not labelled yet (what the draw chose among)
    strategy : the query strategy's name
    embedded : True when the strategy clustered network embeddings
    n_exploit : query rows picked as the most likely emission (the exploitation part)
    """

    role: np.ndarray
    score: np.ndarray
    n_candidates: int
    n_open_candidates: int
    strategy: str
    embedded: bool
    n_exploit: int = 0

    def rows(self, *roles: str) -> np.ndarray:
        """Pool rows with any of ``roles``, in row order."""
        return np.flatnonzero(np.isin(self.role, roles))

    def reason(self, role: str) -> str:
        """Why a row with ``role`` is in the batch, in the oracle's words."""
        return reason(role, self.strategy, self.n_open_candidates, self.embedded, self.n_exploit)


def reason(
    role: str,
    strategy: str,
    open_candidates: int | None,
    embedded: bool = False,
    n_exploit: int = 0,
) -> str:
    """Text for the ``reason`` column of a query table (also rebuilt from stored roles)."""
    among = (
        "the spectra predicted as emission"
        if open_candidates is None
        else f"the {open_candidates} unlabelled spectra predicted as emission"
    )
    how = f"{strategy}{' over network embeddings' if embedded else ''}"
    if role == QUERY and strategy in UNRESTRICTED:
        return f"query: drawn by {strategy} among all unlabelled spectra, whatever predicted"
    if role == QUERY:
        if n_exploit:
            return (
                f"query: the {n_exploit} most likely emission stars (p(single) + p(double)), "
                f"then the most useful by {how} among {among}"
            )
        return f"query: most useful by {how} among {among}"
    if role == PRECISION_SAMPLE:
        return f"precision sample: drawn at random among {among}, to estimate their precision"
    if role == PADDING:
        return (
            f"padding: predicted absorption; in the batch because only {among} "
            f"were left and padding was asked for (may be certain)"
        )
    if role == CANDIDATE:
        return "candidate: predicted as emission, not in this batch"
    return ""


def select_batch(
    probabilities: np.ndarray,
    labelled: np.ndarray,
    batch: int,
    precision_sample: int,
    rng: np.random.Generator,
    strategy: str = "entropy",
    among: Sequence[int] | np.ndarray = (0, 1),
    embed: Callable[[np.ndarray], np.ndarray] | None = None,
    exploit: float = 0.0,
    padding: int | None = None,
    mc: Callable[[np.ndarray], np.ndarray] | None = None,
    candidate: np.ndarray | None = None,
) -> Batch:
    """Roles and scores of one active-learning step.

    probabilities : (n, k) class probabilities of the pool (NaN rows: unusable)
    labelled : (n,) bool, or an array of pool row indices the oracle has labelled
    batch : query-batch size; precision_sample : size of the random candidate sample
    among : class indices that count as emission (the candidates)
    embed : ``embed(rows) -> (len(rows), d)`` network embeddings, needed by the
        strategies in :data:`service.learn.query.NEEDS_EMBEDDINGS`; without it
        those refuse (clustering 3 probabilities is not the benchmarked method)
    exploit : fraction (0-1) of ``batch`` given to the most likely emission stars
        among the open spectra, before the strategy picks the rest
    padding : None: fill the batch to ``batch`` with predicted absorption by the
        strategy (the benchmarked protocol); N: at most N of them, at random
    mc : ``mc(rows) -> (T, len(rows), k)`` Monte-Carlo dropout passes of those pool
        rows, needed by the strategies in :data:`service.learn.query.NEEDS_SAMPLES`
        (``bald``), which call it on their entropy shortlist only
    candidate : (n,) bool, the candidate set (:func:`service.learn.shift.candidate_cut`);
        None: argmax over ``among``, the seed's. The precision sample, the query's
        restriction, padding and ``n_candidates`` all follow it
    """
    probabilities = np.asarray(probabilities)
    n = len(probabilities)
    get_strategy(strategy)  # refuse an unknown name before any work
    usable = np.isfinite(probabilities).all(axis=1)
    done = np.zeros(n, dtype=bool)
    if np.asarray(labelled).dtype == bool:
        done[:] = labelled
    else:
        done[np.asarray(labelled, dtype=np.int64)] = True
    score = np.full(n, np.nan)
    score[usable] = entropy(probabilities[usable])
    if candidate is None:
        candidate = argmax_candidates(probabilities, among)
    candidate = usable & np.asarray(candidate, dtype=bool)
    open_rows = np.flatnonzero(usable & ~done)
    open_candidates = open_rows[candidate[open_rows]]

    drawn = draw_sample(
        probabilities[open_rows], precision_sample, rng, among, inside=candidate[open_rows]
    )
    sample = np.sort(open_rows[drawn])
    rest = np.setdiff1d(open_rows, sample, assume_unique=True)
    if not 0.0 <= exploit <= 1.0:
        raise ValueError(f"exploit must be a fraction in [0, 1], not {exploit}")
    n_exploit = min(round(exploit * batch), rest.size)
    likely = rest[exploit_sampling(probabilities[rest], n_exploit, rng, among)]
    rest = np.setdiff1d(rest, likely, assume_unique=True)
    embedded = strategy in NEEDS_EMBEDDINGS
    if embedded and embed is None:
        raise ValueError(f"strategy {strategy!r} needs the network's embeddings (embed=...)")
    embeddings = LazyEmbeddings(embed, rest) if embedded and embed is not None else None
    if strategy in NEEDS_SAMPLES and mc is None:
        raise ValueError(f"strategy {strategy!r} needs Monte-Carlo dropout passes (mc=...)")
    samples = LazyEmbeddings(mc, rest) if mc is not None else None  # same laziness
    explore = batch - likely.size
    picked = rest[
        select_query(
            probabilities[rest],
            explore,
            rng,
            strategy,
            None if strategy in UNRESTRICTED else among,
            embeddings=embeddings,  # type: ignore[arg-type]  # lazy: computed for the shortlist only
            samples=samples,  # type: ignore[arg-type]
            inside=candidate[rest],
        )
    ]  # candidates first, then the rest: see select_query
    picked = np.r_[likely, picked].astype(np.int64)

    if padding is not None:  # candidates only, then the asked-for random sample
        queried = picked[candidate[picked]]
        certain = rest[~candidate[rest]]
        size = min(padding, batch - queried.size, certain.size)
        picked = np.concatenate([queried, rng.choice(certain, size=max(size, 0), replace=False)])
    role = np.full(n, "", dtype=object)
    role[candidate] = CANDIDATE
    role[sample] = PRECISION_SAMPLE
    unrestricted = strategy in UNRESTRICTED  # chose among every open spectrum: no padding
    role[picked] = np.where(candidate[picked] | unrestricted, QUERY, PADDING)
    return Batch(
        role=role,
        score=score,
        n_candidates=int(candidate.sum()),
        n_open_candidates=int(open_candidates.size),
        strategy=strategy,
        embedded=embedded,
        n_exploit=int(likely.size),
    )


def score_batch(
    predicted: Sequence[str],
    role: Sequence[str],
    verdict: Sequence[str | None],
    classes: Sequence[str],
    emission: Sequence[str],
) -> dict[str, float | int]:
    """What the oracle's verdicts say about one iteration's batch (its metrics row).

    predicted, role, verdict : per batch row, the model's class, its role and the
        oracle's verdict (None: not labelled yet; 'not-sure'/'bad': no class)
    Only rows with a class verdict count. Returns (keys absent when undefined):
    ``error`` on the query rows (padding is left out: it is certain by design);
    ``precision_emission`` -- precision sample called any emission class, i.e.
    emission vs absorption, what a search for emission-line stars needs;
    ``precision_<class>`` -- exact-class precision per predicted class; each
    precision with its Clopper-Pearson ``_lower`` bound; ``n_sample_judged``.
    """
    from service.learn.precision import clopper_pearson_lower

    said = np.asarray(verdict, dtype=object)
    model, kind = np.asarray(predicted, dtype=object), np.asarray(role, dtype=object)
    judged = np.isin(said, np.asarray(classes, dtype=object))
    out: dict[str, float | int] = {}
    query = judged & (kind == QUERY)
    if query.any():
        out["error"] = float(np.mean(model[query] != said[query]))
    sample = judged & (kind == PRECISION_SAMPLE)
    out["n_sample_judged"] = int(sample.sum())

    def precision(key: str, rows: np.ndarray, hits: np.ndarray) -> None:
        if rows.any():
            k, n = int((rows & hits).sum()), int(rows.sum())
            out[key], out[f"{key}_lower"] = k / n, clopper_pearson_lower(k, n)

    precision("precision_emission", sample, np.isin(said, np.asarray(emission, dtype=object)))
    for name in emission:  # the sample is drawn among predicted emission only
        key = f"precision_{name.replace('-', '_')}"
        precision(key, sample & (model == name), np.asarray(said == name, dtype=bool))
    return out
