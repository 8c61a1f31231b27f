"""TAP results as documents: VOTable (TABLEDATA, BINARY, BINARY2) and CSV.

The VOTable FIELDs carry the metadata of :mod:`service.store.schema` (the
same words as TAP_SCHEMA); the DATA is encoded by the shared
:class:`service.vo.templates.VOTableDocument` (astropy underneath), and the
status INFOs follow DALI 1.1: ``QUERY_STATUS=OK`` before the table,
``QUERY_STATUS=OVERFLOW`` after it when MAXREC cut the result.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import numpy as np
from lxml import etree

from service import __version__
from service.store.schema import ColumnMeta
from service.vo import dali
from service.vo.tap.query import QueryResult
from service.vo.templates import VOTABLE_NS, VOTableDocument, v

CSV_MEDIA_TYPE = "text/csv"
_NUMPY = {
    "long": np.int64,
    "int": np.int32,
    "short": np.int16,
    "double": np.float64,
    "float": np.float32,
    "boolean": np.bool_,
}


def field_element(meta: ColumnMeta) -> etree._Element:
    """A VOTable FIELD for one column's metadata."""
    field = etree.Element(v("FIELD"), name=meta.name, datatype=meta.datatype)
    for attribute in ("arraysize", "unit", "ucd", "utype", "xtype"):
        value = getattr(meta, attribute)
        if value:
            field.set(attribute, value)
    if meta.description:
        etree.SubElement(field, v("DESCRIPTION")).text = meta.description
    return field


def votable(result: QueryResult, serialization: str = "tabledata") -> bytes:
    """The result as a VOTable 1.4 document."""
    root = etree.Element(v("VOTABLE"), nsmap={None: VOTABLE_NS}, version="1.4")
    resource = etree.SubElement(root, v("RESOURCE"), type="results")
    resource.append(dali.status_info("OK"))
    etree.SubElement(resource, v("INFO"), name="QUERY", value=result.query)
    etree.SubElement(resource, v("INFO"), name="SERVICE", value=f"alvo {__version__}")
    table = etree.SubElement(resource, v("TABLE"), name="results")
    for meta in result.metas:
        table.append(field_element(meta))
    document = VOTableDocument(root)
    columns = {
        meta.name: _array(values, meta)
        for meta, values in zip(result.metas, result.columns, strict=True)
    }
    document.fill("results", columns, serialization)
    if result.overflow:
        dali.add_overflow_info(root)
    return document.to_bytes()


def _array(values: list[Any], meta: ColumnMeta) -> Any:
    dtype = _NUMPY.get(meta.datatype)
    if dtype is None:
        return np.array([None if v is None else str(v) for v in values], dtype=object)
    mask = np.array([v is None for v in values], dtype=bool)
    filled: np.ndarray = np.array([0 if v is None else v for v in values], dtype=dtype)
    return np.ma.array(filled, mask=mask) if mask.any() else filled


def csv_bytes(result: QueryResult) -> bytes:
    """The result as CSV (RFC 4180): a header line of names, empty cells for nulls."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(result.names)
    for row in zip(*result.columns, strict=True):
        writer.writerow(["" if value is None else value for value in row])
    return out.getvalue().encode()
