"""Named datasets: spectrum rows in the result tables plus their feature store.

A dataset is what an ingest fills and what training and classification read:
``spectrum`` rows (identifiers, position, access) in the database and, row for
row, the adapted 140-pixel vectors in ``$ALVO_HOME/datasets/<name>/features.npy``.
The feature store is appended to before its rows are committed, so a crash can
leave unreferenced feature rows at the end (harmless: ``row_index`` is the
truth) but never a row without its features.

Appending is idempotent. A spectrum is known in its dataset by its publisher
DID and by its access URL (a unique index on ``(dataset_id, pubdid or
access_url)`` backs this). :meth:`Datasets.append` adds only the spectra the
dataset does not hold yet, under a per-dataset lock, so re-running
an ingest adds nothing and re-running a killed one adds exactly what is
missing: every chunk is committed whole (features, rows, labels and count in
one step), so a dataset is never left with half a chunk.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from service.reasons import AlvoError, Reason
from service.settings import Settings
from service.store import privacy, schema
from service.store.engine import engine_for
from service.store.features import FeatureStore
from service.store.ownership import may_change, may_read, refusal
from service.store.spectrum_keys import SpectrumKeys, hashes_of, repeats
from service.vocabulary import CLASSES, FEATURE_PIXELS, POSITION_OUT_OF_RANGE

#: One ``spectrum`` column to store: a list, or an array (numbers; NaN is NULL).
Column = Sequence[Any] | np.ndarray


@dataclasses.dataclass(frozen=True)
class Dataset:
    dataset_id: int
    name: str
    domain: str
    collection: str
    feature_path: Path
    owner: str | None = None  # who may add to it (None: anyone); see service.store.ownership
    private: bool = False  # rows over TAP for owner and readers only (service.store.privacy)
    readers: tuple[str, ...] = ()  # whom the owner invited to read it, when private

    def may_read(self, user: str | None) -> bool:
        """Whether ``user`` may see, train on or search this dataset."""
        return may_read(self.owner, self.private, self.readers, user)

    @property
    def features(self) -> FeatureStore:
        return FeatureStore(self.feature_path)


class Datasets:
    """The datasets of one alvo home and database."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = engine_for(settings.sqlalchemy_url)

    def get(self, name: str) -> Dataset | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(schema.dataset).where(schema.dataset.c.name == name)
            ).first()
        return _dataset(row, self.settings.home) if row else None

    def require(self, name: str) -> Dataset:
        found = self.get(name)
        if found is None:
            raise AlvoError(
                Reason.UNKNOWN_DATASET_NAME,
                f"no dataset named {name!r}{self._known()}; ingest it first",
            )
        return found

    def _known(self) -> str:
        """The names to suggest after a miss: on a shared (auth=header) service, none --
        a mistyped name must not reveal what everybody else has."""
        if self.settings.auth == "header":
            return " (SELECT name FROM alvo.dataset over TAP lists those shared)"
        return f" (known: {', '.join(self.names()) or 'none yet'})"

    def names(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.scalars(sa.select(schema.dataset.c.name).order_by("name")))

    def open_or_create(
        self,
        name: str,
        domain: str,
        collection: str = "",
        owner: str | None = None,
        private: bool = False,
    ) -> Dataset:
        """The dataset ``name`` to add to; created empty (owned by ``owner``) if new.

        A second ingest appends to it -- if ``owner`` may change it
        (``PermissionError`` otherwise, see :mod:`service.store.ownership`).
        ``private``: its rows are shown over TAP only to ``owner`` and the readers
        it invites (:mod:`service.store.privacy`); a dataset never becomes public again.
        """
        if private and owner is None:
            raise AlvoError(
                Reason.BAD_PARAMETER,
                "PRIVATE needs a signed-in user (ALVO_AUTH=header): an anonymous dataset "
                "could be read by no one",
            )
        existing = self.get(name)
        if existing is not None:
            if not may_change(existing.owner, owner):
                raise refusal("dataset", name, existing.owner, "ingest into a DATASET of your own")
            if existing.domain != domain:
                raise AlvoError(
                    Reason.BAD_PARAMETER,
                    f"dataset {name!r} is a {existing.domain} dataset, not {domain}; "
                    "use another DATASET name",
                )
            if private and not existing.private:
                privacy.share(self.engine, name, owner)
                return self.require(name)
            return existing
        path = (self.settings.home / "datasets" / name / "features.npy").resolve()
        FeatureStore.create(path, FEATURE_PIXELS)
        with self.engine.begin() as conn:
            conn.execute(
                schema.dataset.insert().values(
                    name=name,
                    learning_domain=domain,
                    collection=collection,
                    # relative to home: the table is published over TAP, and a server's
                    # file paths are nobody's business (older rows: absolute)
                    feature_path=str(path.relative_to(self.settings.home.resolve())),
                    n_spectra=0,
                    n_failed=0,
                    created=schema.utcnow(),
                    owner=owner,
                    private=private,
                )
            )
        return self.require(name)

    def append(
        self,
        dataset: Dataset,
        features: np.ndarray,
        rows: Mapping[str, Column],
        labels: Sequence[str] = (),
        oracle_user: str = "",
        known: SpectrumKeys | None = None,
    ) -> list[int]:
        """Add spectra (features + ``spectrum`` columns); return their spectrum ids.

        The one writer of both ingest doors (:mod:`service.jobs.ingest`): under
        the dataset's lock and in one transaction, it drops the spectra the
        dataset holds already (:meth:`absent`), appends the features of the
        others, bulk-inserts their rows (``rows``: columns as lists or arrays; a
        float NaN is NULL), their labels and the dataset's new count.
        ``labels`` (one per row, '' for none) are stored as verdicts without a
        campaign: the labels of a labelled source set. ``known``, the dataset's
        hashed keys (:meth:`spectrum_keys`), answers "held already?" for a bulk
        ingest without asking the database per chunk.
        """
        if len(features) == 0:
            return []
        n = len(features)
        pubdids, urls = _column(rows, "pubdid", n), _column(rows, "access_url", n)
        hashes = hashes_of([*pubdids, *urls]) if known is not None else None  # outside the lock
        with dataset_lock(dataset), self.engine.begin() as conn:
            keep = np.flatnonzero(self._new(conn, dataset, pubdids, urls, known, hashes))
            if len(keep) == 0:
                return []
            if len(keep) < len(features):
                features = np.asarray(features)[keep]
                rows = {name: _take(values, keep) for name, values in rows.items()}
                labels = [labels[i] for i in keep.tolist() if i < len(labels)]
            indices = dataset.features.append(features)
            columns: dict[str, Any] = {
                name: _nulls(values) if name in _FLOAT_COLUMNS else values
                for name, values in rows.items()
            }
            _null_impossible_positions(columns, len(indices))
            columns["row_index"] = np.arange(indices.start, indices.stop)
            columns["dataset_id"] = [dataset.dataset_id] * len(indices)
            columns.setdefault("learning_domain", [dataset.domain] * len(indices))
            schema.bulk_insert(conn, schema.spectrum, columns)
            ids = list(
                conn.execute(
                    sa.select(schema.spectrum.c.spectrum_id)
                    .where(schema.spectrum.c.dataset_id == dataset.dataset_id)
                    .where(schema.spectrum.c.row_index >= indices.start)
                    .order_by(schema.spectrum.c.row_index)
                )
                .scalars()
                .all()
            )
            verdicts = [
                {
                    "spectrum_id": sid,
                    "label": lab,
                    "oracle_user": oracle_user,
                    "labelled": schema.utcnow(),
                    "source": "ingest",  # LABELS file or the references' label column
                }
                for sid, lab in zip(ids, labels, strict=False)
                if lab
            ]
            if verdicts:
                conn.execute(schema.label.insert(), verdicts)
            conn.execute(
                schema.dataset.update()
                .where(schema.dataset.c.dataset_id == dataset.dataset_id)
                .values(n_spectra=schema.dataset.c.n_spectra + len(ids))
            )
            collections = sorted(str(c) for c in set(columns.get("collection", [])) if c)
            if collections:  # the dataset's collection(s), from its spectra, when not given
                table = schema.dataset
                conn.execute(
                    table.update()
                    .where(table.c.dataset_id == dataset.dataset_id)
                    .where(sa.or_(table.c.collection.is_(None), table.c.collection == ""))
                    .values(collection=",".join(collections))
                )
        if known is not None and hashes is not None:  # committed: now they are the dataset's
            known.add(np.concatenate([hashes[:n][keep], hashes[n:][keep]]), indices.stop)
        return ids

    def spectrum_keys(self, dataset: Dataset) -> SpectrumKeys:
        """The hashed DIDs and URLs of the dataset's spectra, for a bulk ingest (streamed)."""
        return SpectrumKeys(self.engine, dataset.dataset_id)

    def absent(
        self,
        conn: sa.Connection,
        dataset: Dataset,
        rows: Mapping[str, Column],
        known: SpectrumKeys | None = None,
    ) -> np.ndarray:
        """Which of ``rows`` (``spectrum`` columns) are new to the dataset: a bool mask.

        A row is not new if a stored spectrum, or an earlier row of ``rows``,
        has its publisher DID or its access URL (the same file reached by
        another route: SSA first, a plain URL later). Rows with neither are
        always new. Stored spectra are looked up in the database, or in
        ``known`` brought up to date. Call it inside :func:`dataset_lock` and
        the transaction that inserts the rows, so nobody adds the same spectra
        in between.
        """
        n = _row_count(rows)
        pubdids, urls = _column(rows, "pubdid", n), _column(rows, "access_url", n)
        return self._new(conn, dataset, pubdids, urls, known, None)

    def _new(
        self,
        conn: sa.Connection,
        dataset: Dataset,
        pubdids: list[str],
        urls: list[str],
        known: SpectrumKeys | None,
        hashes: np.ndarray | None,
    ) -> np.ndarray:
        """:meth:`absent` of rows with these DIDs and URLs ('' for none); ``hashes`` are
        their :func:`~service.store.spectrum_keys.hashes_of` (DIDs, then URLs), if at hand."""
        n = len(pubdids)
        if known is not None:
            known.refresh(conn)
            hashes = hashes_of([*pubdids, *urls]) if hashes is None else hashes
            held = known.holds(hashes[:n]) | known.holds(hashes[n:])
            return ~(held | repeats(hashes, n))
        seen = self.stored_keys(conn, dataset, [k for k in (*pubdids, *urls) if k])
        new = np.ones(n, dtype=bool)
        for i, keys in enumerate(zip(pubdids, urls, strict=True)):
            present = [k for k in keys if k]
            if any(k in seen for k in present):
                new[i] = False
            seen.update(present)  # a repeat later in the same batch is not new
        return new

    def stored_keys(self, conn: sa.Connection, dataset: Dataset, keys: Sequence[str]) -> set[str]:
        """Publisher DIDs and access URLs of the dataset's spectra that match any of ``keys``."""
        spectrum = schema.spectrum
        found: set[str] = set()
        wanted = sorted(set(keys))
        for start in range(0, len(wanted), _KEYS_PER_QUERY):
            some = wanted[start : start + _KEYS_PER_QUERY]
            query = sa.select(spectrum.c.pubdid, spectrum.c.access_url).where(
                spectrum.c.dataset_id == dataset.dataset_id,
                sa.or_(spectrum.c.pubdid.in_(some), spectrum.c.access_url.in_(some)),
            )
            for pubdid, access_url in conn.execute(query):
                found.update(k for k in (pubdid, access_url) if k)
        return found

    def ingested(self, name: str, keys: Sequence[str]) -> set[str]:
        """Of ``keys`` (publisher DIDs, access URLs), those dataset ``name`` holds already.

        For an ingest that resumes: it need not fetch again what a killed run
        stored. Empty if the dataset does not exist yet.
        """
        dataset = self.get(name)
        if dataset is None:
            return set()
        with self.engine.connect() as conn:
            return self.stored_keys(conn, dataset, keys) & set(keys)

    def count_failures(self, dataset: Dataset, n_failed: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                schema.dataset.update()
                .where(schema.dataset.c.dataset_id == dataset.dataset_id)
                .values(n_failed=schema.dataset.c.n_failed + n_failed)
            )

    def spectra(self, dataset: Dataset, columns: Sequence[str] = ()) -> dict[str, np.ndarray]:
        """The ``spectrum`` columns of a dataset, ordered by feature row."""
        table = schema.spectrum
        chosen = [table.c[name] for name in columns] or list(table.c)
        query = sa.select(*chosen).where(table.c.dataset_id == dataset.dataset_id)
        with self.engine.connect() as conn:
            result = conn.execute(query.order_by(table.c.row_index)).all()
        return {
            column.name: np.array([row[i] for row in result], dtype=object)
            for i, column in enumerate(chosen)
        }

    def with_pubdid(self, pubdid: str, columns: Sequence[str], limit: int) -> list[dict[str, Any]]:
        """``spectrum`` columns of at most ``limit`` spectra with publisher DID ``pubdid``,
        in any dataset (one file may have been ingested into several)."""
        table = schema.spectrum
        query = sa.select(*(table.c[name] for name in columns)).where(table.c.pubdid == pubdid)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query.limit(limit))]

    def rows_of(self, dataset: Dataset, identifiers: Sequence[str]) -> dict[str, int]:
        """``{identifier: feature row}`` of the spectra of ``dataset`` named by publisher DID
        or by alvo ``spectrum_id`` (digits); identifiers it does not hold are left out."""
        table = schema.spectrum
        numbers = [int(i) for i in identifiers if i.isdecimal() and len(i) < 19]
        query = sa.select(table.c.pubdid, table.c.spectrum_id, table.c.row_index).where(
            table.c.dataset_id == dataset.dataset_id,
            sa.or_(table.c.pubdid.in_(list(identifiers)), table.c.spectrum_id.in_(numbers)),
        )
        with self.engine.connect() as conn:
            found = conn.execute(query).all()
        rows = {}
        for pubdid, spectrum_id, row in found:
            for key in (str(pubdid), str(spectrum_id)):
                if key in identifiers:
                    rows[key] = int(row)
        return rows

    def ids_at_rows(self, dataset: Dataset, rows: Sequence[int]) -> dict[int, int]:
        """``{feature row: spectrum_id}`` of these rows of ``dataset`` (an indexed lookup,
        not a scan of the dataset: "more like this" answers from it per request)."""
        table = schema.spectrum
        query = sa.select(table.c.row_index, table.c.spectrum_id).where(
            table.c.dataset_id == dataset.dataset_id,
            table.c.row_index.in_([int(r) for r in rows]),
        )
        with self.engine.connect() as conn:
            return {int(row): int(sid) for row, sid in conn.execute(query)}

    def at_rows(
        self, dataset: Dataset, rows: Sequence[int], columns: Sequence[str]
    ) -> dict[int, dict[str, Any]]:
        """``{feature row: {column: value}}`` of these rows of ``dataset`` (indexed lookup)."""
        table = schema.spectrum
        query = sa.select(table.c.row_index, *(table.c[name] for name in columns)).where(
            table.c.dataset_id == dataset.dataset_id,
            table.c.row_index.in_([int(r) for r in rows]),
        )
        with self.engine.connect() as conn:
            return {
                int(r.row_index): {c: r._mapping[c] for c in columns} for r in conn.execute(query)
            }

    def record_simbad_ids(self, identifiers: Iterable[tuple[int, str]]) -> None:
        """Store the SIMBAD main identifier found for each ``(spectrum_id, identifier)``."""
        table = schema.spectrum
        with self.engine.begin() as conn:
            for spectrum_id, identifier in identifiers:
                conn.execute(
                    table.update()
                    .where(table.c.spectrum_id == int(spectrum_id))
                    .values(simbad_id=identifier)
                )

    def source_labels(self, dataset: Dataset) -> dict[int, str]:
        """Campaign-free labels of a dataset: ``{row_index: verdict}`` (latest wins)."""
        spectrum, label = schema.spectrum, schema.label
        query = (
            sa.select(spectrum.c.row_index, label.c.label)
            .join(label, label.c.spectrum_id == spectrum.c.spectrum_id)
            .where(spectrum.c.dataset_id == dataset.dataset_id)
            .where(label.c.campaign_id.is_(None))
            .order_by(label.c.label_id)
        )
        with self.engine.connect() as conn:
            return {int(row): str(verdict) for row, verdict in conn.execute(query)}

    def has_class_labels(self, dataset: Dataset) -> bool:
        """Whether a campaign-free label gives one of ``spectrum``'s rows a class to train on."""
        spectrum, label = schema.spectrum, schema.label
        query = (
            sa.select(label.c.label_id)
            .join(spectrum, label.c.spectrum_id == spectrum.c.spectrum_id)
            .where(spectrum.c.dataset_id == dataset.dataset_id)
            .where(label.c.campaign_id.is_(None))
            .where(label.c.label.in_(CLASSES))
            .limit(1)
        )
        with self.engine.connect() as conn:
            return conn.scalar(query) is not None


#: ``spectrum`` columns of floating-point numbers: a NaN there is stored as NULL.
_FLOAT_COLUMNS = frozenset(c.name for c in schema.spectrum.c if isinstance(c.type, sa.Float))
#: Identities per ``IN (...)`` query: far below every database's parameter limit.
_KEYS_PER_QUERY = 500


def _row_count(rows: Mapping[str, Column]) -> int:
    return len(next(iter(rows.values()), []))


def _column(rows: Mapping[str, Column], name: str, n: int) -> list[str]:
    values = rows[name] if name in rows else [None] * n
    return [str(v) if v else "" for v in values]


def _take(values: Column, keep: np.ndarray) -> Column:
    """The ``keep`` (indices) of a column, an array staying an array."""
    if isinstance(values, np.ndarray):
        return values[keep]
    return [values[i] for i in keep.tolist()]


def _null_impossible_positions(columns: dict[str, Any], n: int) -> None:
    """Store a position no sky has (Dec outside [-90, 90], RA outside [0, 360)) as NULL
    ``ra``/``dec``, flagged in ``position_flag``: a broken header must not place a
    spectrum on TAP's sky (a cone search, a cross-match), nor cost the spectrum itself."""
    if "ra" not in columns and "dec" not in columns:
        return
    ra = np.array([np.nan if v is None else v for v in columns.get("ra", [None] * n)], float)
    dec = np.array([np.nan if v is None else v for v in columns.get("dec", [None] * n)], float)
    impossible = ((ra < 0) | (ra >= 360)) | ((dec < -90) | (dec > 90))  # NaN compares False
    if not impossible.any():
        return
    for name in ("ra", "dec"):
        if name in columns:
            values = np.asarray(columns[name], dtype=object)
            values[impossible] = None
            columns[name] = values
    flags = np.asarray(columns.get("position_flag", [None] * n), dtype=object)
    flags[impossible] = POSITION_OUT_OF_RANGE
    columns["position_flag"] = flags


def _nulls(values: Column) -> Column:
    """A column with each float NaN or infinity (a header without the value) as None (NULL)."""
    if isinstance(values, np.ndarray):
        if values.dtype.kind != "f":
            return values
        nullable = values.astype(object)
        nullable[~np.isfinite(values)] = None
        return nullable
    return [None if isinstance(v, float) and not math.isfinite(v) else v for v in values]


@contextlib.contextmanager
def dataset_lock(dataset: Dataset) -> Iterator[None]:
    """Hold the dataset's write lock: one appender at a time per dataset on this host.

    Two ingests into one dataset would otherwise write the feature store at the
    same offset, and could both find a spectrum absent and both add it.
    """
    lock_path = dataset.feature_path.with_name("append.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        try:
            import fcntl
        except ImportError:  # not POSIX: one appender per dataset is the caller's duty
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _dataset(row: Any, home: Path) -> Dataset:
    stored = Path(row.feature_path)
    return Dataset(
        dataset_id=int(row.dataset_id),
        name=str(row.name),
        domain=str(row.learning_domain),
        collection=str(row.collection or ""),
        feature_path=stored if stored.is_absolute() else Path(home).resolve() / stored,
        owner=row.owner,
        private=bool(row.private),
        readers=privacy.readers_of(row.readers),
    )
