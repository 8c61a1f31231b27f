"""How oracle verdicts become training targets.

The words themselves (the three classes, ``not-sure`` and ``bad``) are defined in
:mod:`service.vocabulary`. The verdicts that are not classes are *kept* (they count
as labels used and leave the pool) but are not trained on unless a caller maps
them to a class explicitly (``extra``), because they are not classes of the sky.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from service.reasons import AlvoError, Reason
from service.vocabulary import CLASSES, VERDICTS

#: Integer code of a verdict that is not trained on.
NOT_TRAINED = -1


def verdict_codes(verdicts: Sequence[str]) -> np.ndarray:
    """(n,) int8 index into :data:`service.vocabulary.VERDICTS`; refuses unknown ones by name."""
    lookup = {v: i for i, v in enumerate(VERDICTS)}
    try:
        return np.array([lookup[v] for v in verdicts], dtype=np.int8)
    except KeyError as exc:
        raise AlvoError(
            Reason.BAD_PARAMETER, f"verdict {exc.args[0]!r} not one of {VERDICTS}"
        ) from None


def training_targets(
    codes: np.ndarray,
    classes: Sequence[str] = CLASSES,
    extra: Mapping[str, str] | None = None,
) -> np.ndarray:
    """Map verdict codes (indices into VERDICTS) to class indices for training.

    codes : (n,) int, index into :data:`~service.vocabulary.VERDICTS`
    extra : optional mapping of an extra verdict to a class, e.g. ``{"bad": "single-peak"}``
        to train artefacts as candidates; unmapped extras become :data:`NOT_TRAINED`.
    Returns (n,) int64 class index into ``classes`` or NOT_TRAINED.
    """
    extra = dict(extra or {})
    table = np.full(len(VERDICTS), NOT_TRAINED, dtype=np.int64)
    for i, verdict in enumerate(VERDICTS):
        name = extra.get(verdict, verdict)
        if name in classes:
            table[i] = list(classes).index(name)
        elif verdict in extra:
            raise AlvoError(Reason.BAD_PARAMETER, f"{verdict!r} mapped to unknown class {name!r}")
    return table[np.asarray(codes, dtype=np.int64)]


def class_indices(names: Sequence[str], classes: Sequence[str] = CLASSES) -> np.ndarray:
    """Indices of ``names`` in ``classes`` (e.g. the target classes)."""
    missing = [n for n in names if n not in classes]
    if missing:
        raise AlvoError(Reason.BAD_PARAMETER, f"classes {missing} not among {tuple(classes)}")
    return np.array([list(classes).index(n) for n in names], dtype=np.int64)
