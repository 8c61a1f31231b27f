"""A campaign backup as a file: a gzipped tar of six VOTables.

``campaign.xml`` (one row), ``spectra.xml``, ``labels.xml``, ``iterations.xml``,
``batches.xml`` and ``relevance.xml`` (the interesting/boring answers; absent from
backups made before they existed: read as none), each a VOTable 1.4 whose FIELDs are
the result tables' own columns (:mod:`service.store.backup` names them; the metadata
comes from the schema, as TAP's does), so each table opens in TOPCAT and passes
``stilts votlint``. Times are ISO 8601 ``timestamp`` strings to the microsecond, so a
restore stores them exactly.
"""

from __future__ import annotations

import datetime as dt
import io
import tarfile
from collections.abc import Sequence
from typing import Any

import numpy as np
from lxml import etree

from service import __version__
from service.reasons import AlvoError, Reason
from service.store import backup as store
from service.store.schema import ColumnMeta, column_meta
from service.vo.tap.output import field_element
from service.vo.templates import VOTABLE_NS, VOTableDocument, v

#: file name in the tarball -> (the backup's attribute, its columns)
TABLES: dict[str, tuple[str, tuple[Any, ...]]] = {
    "campaign.xml": ("campaign", store.CAMPAIGN_COLUMNS),
    "spectra.xml": ("spectra", store.SPECTRUM_COLUMNS),
    "labels.xml": ("labels", store.LABEL_COLUMNS),
    "iterations.xml": ("iterations", store.ITERATION_COLUMNS),
    "batches.xml": ("batches", store.BATCH_COLUMNS),
    "relevance.xml": ("relevance", store.RELEVANCE_COLUMNS),
}
#: Files a backup made by an earlier alvo may lack (read as no rows).
OPTIONAL = {"relevance.xml"}
_NUMPY = {"int": np.int32, "long": np.int64, "double": np.float64, "boolean": np.bool_}


def write_backup(backup: store.CampaignBackup) -> bytes:
    """The backup as a gzipped tar of VOTables."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for filename, (attribute, columns) in TABLES.items():
            rows = getattr(backup, attribute)
            rows = [rows] if isinstance(rows, dict) else rows
            data = table_votable(filename.removesuffix(".xml"), columns, rows)
            info = tarfile.TarInfo(filename)
            info.size, info.mtime, info.mode = len(data), int(dt.datetime.now().timestamp()), 0o644
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def read_backup(data: bytes) -> store.CampaignBackup:
    """A backup from the bytes :func:`write_backup` made; ``BAD_BACKUP`` if they are not."""
    tables: dict[str, list[dict[str, Any]]] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            for filename, (attribute, columns) in TABLES.items():
                if filename in OPTIONAL and filename not in tar.getnames():
                    tables[attribute] = []
                    continue
                member = tar.extractfile(filename)
                if member is None:
                    raise KeyError(filename)
                tables[attribute] = table_rows(member.read(), columns)
    except (tarfile.TarError, KeyError, EOFError, OSError) as error:
        raise AlvoError(
            Reason.BAD_BACKUP, f"not a campaign backup ({type(error).__name__}: {error})"
        ) from None
    if len(tables["campaign"]) != 1:
        raise AlvoError(Reason.BAD_BACKUP, "campaign.xml must hold exactly one row")
    return store.CampaignBackup(
        campaign=tables["campaign"][0],
        spectra=tables["spectra"],
        labels=tables["labels"],
        iterations=tables["iterations"],
        batches=tables["batches"],
        relevance=tables["relevance"],
    )


def table_votable(name: str, columns: Sequence[Any], rows: list[dict[str, Any]]) -> bytes:
    """One VOTable 1.4 document of ``rows``, FIELDs from the schema's column metadata."""
    root = etree.Element(v("VOTABLE"), nsmap={None: VOTABLE_NS}, version="1.4")
    resource = etree.SubElement(root, v("RESOURCE"), type="results")
    etree.SubElement(resource, v("INFO"), name="QUERY_STATUS", value="OK")
    etree.SubElement(resource, v("INFO"), name="SERVICE", value=f"alvo {__version__}")
    table = etree.SubElement(resource, v("TABLE"), name=name)
    metas = [column_meta(c) for c in columns]
    for meta in metas:
        table.append(field_element(meta))
    document = VOTableDocument(root)
    document.fill(
        name,
        {
            m.name: _array([r[c.name] for r in rows], m.datatype)
            for c, m in zip(columns, metas, strict=True)
        },
    )
    return document.to_bytes()


def table_rows(data: bytes, columns: Sequence[Any]) -> list[dict[str, Any]]:
    """The rows of a VOTable :func:`table_votable` wrote, as Python values of the columns'
    types (``None`` for nulls)."""
    from astropy.io.votable import parse_single_table
    from astropy.io.votable.exceptions import VOTableSpecError

    try:
        table = parse_single_table(io.BytesIO(data), verify="ignore").to_table()
        metas = {c.name: column_meta(c) for c in columns}
        absent = {k for k, m in metas.items() if m.name not in table.colnames}
        if absent - store.OPTIONAL_COLUMNS:  # columns every backup has: unreadable without
            raise KeyError(", ".join(sorted(absent - store.OPTIONAL_COLUMNS)))
        values = {
            k: [None] * len(table) if k in absent else [_value(x, m) for x in table[m.name]]
            for k, m in metas.items()
        }
    except (ValueError, KeyError, VOTableSpecError, etree.LxmlError) as error:
        raise AlvoError(
            Reason.BAD_BACKUP,
            f"a table of the backup is unreadable ({type(error).__name__}: {error})",
        ) from None
    count = len(table)
    return [{name: column[i] for name, column in values.items()} for i in range(count)]


def _array(values: list[Any], datatype: str) -> Any:
    dtype = _NUMPY.get(datatype)
    if dtype is None:
        text = [x.isoformat() if isinstance(x, dt.datetime) else x for x in values]
        return np.array([None if x is None else str(x) for x in text], dtype=object)
    mask = np.array([x is None for x in values], dtype=bool)
    filled: np.ndarray = np.array([0 if x is None else x for x in values], dtype=dtype)
    return np.ma.array(filled, mask=mask) if mask.any() else filled


def _value(value: Any, meta: ColumnMeta) -> Any:
    """A VOTable cell as the Python value its column stores (``meta``: the column's FIELD)."""
    if value is np.ma.masked or value is None:
        return None
    if meta.datatype in ("int", "long"):
        return int(value)
    if meta.datatype == "boolean":
        return bool(value)
    if meta.datatype == "double":
        number = float(value)
        return None if np.isnan(number) else number
    text = value.decode() if isinstance(value, bytes) else str(value)
    if meta.xtype == "timestamp":  # an empty TD of a char FIELD is null
        return dt.datetime.fromisoformat(text) if text else None
    return text or None  # VOTable has no empty string apart from null; the store restores
    # the columns where '' means something (a user's name, a description) as ''
