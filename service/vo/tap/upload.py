"""DALI UPLOAD of user tables: ``UPLOAD=name,param:part`` with a VOTable in that form part.

Each uploaded table becomes a temporary table of the query's connection,
queryable as ``TAP_UPLOAD.name`` (TAP 1.1 §3.3.5). Inline uploads
(``param:part``) and ``http(s)://`` URLs (TAPRegExt's mandatory upload-http)
are accepted; a URL is fetched once by :mod:`service.net.fetch`, confined to
public addresses unless the operator allows more (docs/security.md), within
the fetch deadline and at most the upload size limit.
"""

from __future__ import annotations

import dataclasses
import io
import re
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa
from astropy.io import votable as astropy_votable

from service.reasons import AlvoError, Reason
from service.store.schema import ColumnMeta

if TYPE_CHECKING:
    from service.settings import Settings

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
MAX_UPLOAD_ROWS = 100_000
UPLOAD_PREFIX = "tap_upload_"


def upload_error(detail: str) -> AlvoError:
    return AlvoError(Reason.BAD_UPLOAD, detail)


@dataclasses.dataclass
class UploadTable:
    """An uploaded table: its ADQL name, columns (name -> values) and their metadata."""

    name: str
    columns: dict[str, list[object]]
    meta: dict[str, ColumnMeta]

    @property
    def adql_name(self) -> str:
        return f"TAP_UPLOAD.{self.name}"

    @property
    def sql_name(self) -> str:
        return UPLOAD_PREFIX + self.name.lower()


def parse_upload_param(values: list[str]) -> list[tuple[str, str]]:
    """``UPLOAD`` values ``name,param:part`` or ``name,URL`` (``;`` separates several)
    -> (name, part or URL)."""
    pairs = []
    for value in values:
        for item in value.split(";"):
            name, sep, where = item.strip().partition(",")
            if not sep or not name or not where:
                raise upload_error(f"UPLOAD {item!r} is not 'name,param:part'")
            if not _NAME.match(name):
                raise upload_error(f"UPLOAD table name {name!r} is not an ADQL identifier")
            if where.startswith("param:"):
                pairs.append((name, where[len("param:") :]))
            elif is_url(where):
                pairs.append((name, where))
            else:
                raise upload_error(
                    f"UPLOAD {name}: {where!r} is neither param:part nor http(s) URL"
                )
    return pairs


def is_url(where: str) -> bool:
    return where.startswith(("http://", "https://"))


async def fetch_upload(name: str, url: str, settings: Settings, max_bytes: int) -> bytes:
    """Download an UPLOAD given by URL into memory, as every fetch: confined, within the
    fetch deadline (``ALVO_FETCH_TIMEOUT``), at most ``max_bytes``; failures keep their
    reason (``FETCH_TIMEOUT``, ``FETCH_REFUSED``, ``HTTP_ERROR``, ``RESPONSE_TOO_LARGE``)."""
    from service.net.fetch import FetchPolicy, fetch_document_async

    policy = FetchPolicy.from_settings(settings, max_bytes=max_bytes)
    return await fetch_document_async(url, policy=policy, what=f"UPLOAD {name}:")


def read_upload(name: str, data: bytes) -> UploadTable:
    """Read the first table of an uploaded VOTable; refuse what cannot be queried."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            document = astropy_votable.parse(io.BytesIO(data), verify="ignore")
            table = document.get_first_table()
    except Exception as error:
        raise upload_error(f"UPLOAD {name}: not a readable VOTable ({error})") from None
    if len(table.array) > MAX_UPLOAD_ROWS:
        raise upload_error(f"UPLOAD {name}: {len(table.array)} rows; at most {MAX_UPLOAD_ROWS}")
    columns: dict[str, list[object]] = {}
    meta: dict[str, ColumnMeta] = {}
    for field in table.fields:
        column = field.name
        if not _NAME.match(column) or column.lower() in columns:
            raise upload_error(f"UPLOAD {name}: column name {column!r} is not a unique identifier")
        values = table.array[field.ID or field.name]
        datatype, python = _kind(field.datatype, field.arraysize)
        declared = field.datatype if datatype != "char" and not field.arraysize else datatype
        raw = np.ma.getdata(values)
        mask = np.asarray(np.ma.getmaskarray(values), dtype=bool).reshape(len(raw), -1)
        nulls = [bool(row.any()) for row in mask]
        columns[column.lower()] = [
            None if null else python(v) for v, null in zip(raw, nulls, strict=True)
        ]
        meta[column.lower()] = ColumnMeta(
            name=column.lower(),
            datatype=declared,
            arraysize="*" if datatype == "char" else None,
            description=(field.description or "").strip(),
            ucd=field.ucd,
            unit=str(field.unit) if field.unit else None,
            utype=field.utype,
            xtype=field.xtype,
            principal=False,
            indexed=False,
        )
    if not columns:
        raise upload_error(f"UPLOAD {name}: the table has no columns")
    return UploadTable(name, columns, meta)


def _kind(datatype: str, arraysize: str | None) -> Any:
    if arraysize and datatype not in ("char", "unicodeChar"):
        return "char", lambda v: " ".join(str(x) for x in np.ravel(v))
    if datatype in ("short", "int", "long", "unsignedByte"):
        return "long", int
    if datatype in ("float", "double"):
        return "double", float
    if datatype == "boolean":
        return "boolean", bool
    return "char", lambda v: v.decode() if isinstance(v, bytes) else str(v)


_KINDS = {
    "short": "long",
    "int": "long",
    "long": "long",
    "unsignedByte": "long",
    "float": "double",
    "double": "double",
    "boolean": "boolean",
}
_SQL_TYPES = {"long": sa.BigInteger, "double": sa.Float, "boolean": sa.Boolean, "char": sa.Text}


def create_temporary(conn: sa.Connection, uploads: Mapping[str, UploadTable]) -> None:
    """Create and fill a temporary table per upload on this connection."""
    for upload in uploads.values():
        md = sa.MetaData()
        table = sa.Table(
            upload.sql_name,
            md,
            *(
                sa.Column(c, _SQL_TYPES[_KINDS.get(upload.meta[c].datatype, "char")]())
                for c in upload.columns
            ),
            prefixes=["TEMPORARY"],
        )
        table.create(conn)
        n = len(next(iter(upload.columns.values())))
        if n:
            conn.execute(
                table.insert(),
                [{c: values[i] for c, values in upload.columns.items()} for i in range(n)],
            )
