"""One chunk of an ingest, whichever door it came through: what the one writer stores.

Both doors read and adapt their spectra chunk by chunk in a worker (a Dask
task, a process forked from a fork server, or the job's own process) and hand
back a :class:`Chunk`; the caller gives it to the one writer,
:meth:`service.store.datasets.Datasets.append` (under the dataset's lock,
idempotent). :func:`describe` fills the ``spectrum`` columns the same way for
both, so a file ingested by ``alvo ingest tree`` and the same file fetched by an
``ingest`` job make the same row, access URL aside.

A chunk holds columns, not rows: the features as one float32 array, the numeric
``spectrum`` columns as float64 arrays (NaN where the file says nothing: NULL
in SQL) and the text ones as lists of str, which pickle as a few buffers per
chunk. Per spectrum only what cannot be batched happens: one attribute lookup
per column.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np

from service.reasons import AlvoError, Reason
from service.spectra.access import SpectrumReference
from service.spectra.spectrum import SpectrumMeta

#: ``spectrum`` columns an ingest fills, through either door.
ROW_COLUMNS = (
    "pubdid", "obsid", "designation", "object", "ra", "dec", "mjd", "snr", "pipeline_class",
    "access_url", "datalink_id", "datalink_url", "collection", "magnitude", "quality_flag",
)  # fmt: skip
#: The numeric ones: float64 arrays, NaN where the file has no value (NULL in SQL).
FLOAT_COLUMNS = ("ra", "dec", "mjd", "snr", "magnitude")
#: The ones copied from the file's header as they are.
TEXT_COLUMNS = ("obsid", "designation", "object", "pipeline_class", "collection")


@dataclasses.dataclass(frozen=True)
class Failure:
    """A spectrum left out, and the named reason why (a row of the ``failures`` table).

    ``reference`` is what the request or the tree named it by (access URL, DID,
    or the file's path under the tree's root).
    """

    reference: str
    pubdid: str
    reason: Reason
    detail: str

    @classmethod
    def of(cls, reference: str, pubdid: str, error: AlvoError) -> Failure:
        """Kept as reason and detail, not the exception: a chunk travels between processes."""
        return cls(reference, pubdid, error.reason, error.detail)


@dataclasses.dataclass
class Chunk:
    """One chunk's good spectra (features, ``spectrum`` columns, labels) and its failures.

    features : (n, 140) float32, adapted (``service.adapt``)
    columns : :data:`ROW_COLUMNS` -> (n,) float64 array or list of n str (``quality_flag``:
        an object array, None where clean)
    labels : n verdicts, '' where none (a labelled source set has them)
    resolving_powers : (n,) λ/Δλ of each spectrum as read (``DOMAIN=auto`` looks at it)
    """

    features: np.ndarray
    columns: dict[str, np.ndarray | list[str]]
    labels: list[str]
    resolving_powers: np.ndarray
    failures: list[Failure]


def describe(
    features: np.ndarray,
    metas: Sequence[SpectrumMeta],
    references: Sequence[SpectrumReference],
    resolving_powers: np.ndarray,
    failures: list[Failure],
    labels: Mapping[str, str] | None = None,
    flags: Sequence[str] | None = None,
) -> Chunk:
    """The chunk of the spectra read from ``references``, with what their files say.

    The archive's DID (SSA, DataLink) names a spectrum, the file's own (e.g.
    Ondrejov DS_IDPUB, LAMOST OBSID) otherwise; DataLink gets that DID when the
    archive has a DataLink service. A position the file lacks is the archive's.
    A spectrum's label is its reference's (an uploaded table's ``label``
    column), else the one ``labels`` gives its DID. ``flags`` are the spectra's
    ``quality_flag`` (:mod:`service.spectra.defects`; '' clean, stored NULL).
    """
    labels = labels or {}
    columns: dict[str, np.ndarray | list[str]] = {}
    for name in ("ra", "dec"):
        own = np.array([getattr(m, name) for m in metas], dtype=np.float64)
        given = np.array([getattr(r, name) for r in references], dtype=np.float64)
        columns[name] = np.where(np.isfinite(own), own, given)
    for name in ("mjd", "snr"):
        columns[name] = np.array([getattr(m, name) for m in metas], dtype=np.float64)
    columns["magnitude"] = np.array(
        [m.extra.get("magnitude", math.nan) for m in metas], dtype=np.float64
    )
    for name in TEXT_COLUMNS:
        columns[name] = [getattr(m, name) for m in metas]
    pubdids = [r.pubdid or m.pubdid for r, m in zip(references, metas, strict=True)]
    columns["pubdid"] = pubdids
    columns["access_url"] = [r.access_url for r in references]
    columns["datalink_id"] = [
        p if r.datalink else "" for r, p in zip(references, pubdids, strict=True)
    ]
    columns["datalink_url"] = [r.datalink for r in references]
    columns["quality_flag"] = np.array([f or None for f in (flags or [""] * len(metas))], object)
    chosen = [
        r.label or labels.get(p) or labels.get(m.pubdid) or ""
        for r, p, m in zip(references, pubdids, metas, strict=True)
    ]
    return Chunk(
        np.asarray(features, dtype=np.float32), columns, chosen, resolving_powers, failures
    )
