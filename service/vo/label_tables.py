"""Oracle labels in files: VOTables (from TOPCAT, SAMP, our exports) and CSV.

One parser for every way labels arrive (the ``LABELS`` of an ingest, an upload
to a campaign, a table sent back over SAMP), so the same names and the same
errors apply everywhere: a row needs an identifier column and a ``label``
column, and may have a ``comment`` and a ``flag`` (true: needs a second look);
unknown verdicts are refused naming the row (and the verdict, when it is a short
word: no error echoes the content of a file). Every way a file can be wrong is
``BAD_LABEL_FILE`` with what to do about it, never a parser's own text.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from typing import Any

from service.reasons import AlvoError, Reason
from service.vocabulary import ABSORPTION, DOUBLE_PEAK, NOT_SURE, SINGLE_PEAK, VERDICTS

#: Columns that identify a spectrum, most specific first (case-insensitive).
ID_COLUMNS = ("pubdid", "ssa_pubdid", "obs_publisher_did", "pub_did", "obsid", "spectrum_id", "id")
LABEL_COLUMNS = ("label", "verdict", "class")
#: Optional columns: the oracle's note and the "needs a second look" flag.
COMMENT_COLUMNS = ("comment", "note", "notes")
FLAG_COLUMNS = ("flag", "flagged")
#: How a flag cell may say yes or no (VOTable booleans arrive as True/False).
_YES, _NO = {"true", "t", "yes", "y", "1"}, {"false", "f", "no", "n", "0", ""}
#: The class codes of the Ondrejov label file (0 emission, 1 absorption, 2 unknown, 3 double).
ONDREJOV_CODES = {"0": SINGLE_PEAK, "1": ABSORPTION, "2": NOT_SURE, "3": DOUBLE_PEAK}


@dataclasses.dataclass(frozen=True)
class OracleLabel:
    spectrum: str  # the identifier found in the table (pubdid, obsid...)
    label: str
    comment: str | None = None  # None: the table has no comment column
    flag: bool | None = None  # None: the table has no flag column


def parse_labels(data: bytes) -> list[OracleLabel]:
    """Labels from a VOTable or a CSV file; rows with an empty label are skipped.

    Raises ``AlvoError(BAD_LABEL_FILE)`` saying what to fix: the encoding, the
    VOTable, a missing column, a verdict of a row.
    """
    if b"<VOTABLE" in data[:4000].upper():
        names, rows = _votable_rows(data)
    else:
        names, rows = _csv_rows(data)
    columns = {name.lower().strip(): name for name in names}
    label_column = next((columns[c] for c in LABEL_COLUMNS if c in columns), None)
    if label_column is None:
        raise bad_file(
            f"the table has no 'label' column (nor {', '.join(LABEL_COLUMNS[1:])}): add one "
            f"with a verdict per row ({', '.join(VERDICTS)})"
        )
    id_column = next((columns[c] for c in ID_COLUMNS if c in columns), None)
    if id_column is None:
        raise bad_file(f"the table has no identifier column: add one of {', '.join(ID_COLUMNS)}")
    comment_column = next((columns[c] for c in COMMENT_COLUMNS if c in columns), None)
    flag_column = next((columns[c] for c in FLAG_COLUMNS if c in columns), None)
    labels = []
    for number, row in enumerate(rows):
        label = _text(row[label_column]).lower()
        label = ONDREJOV_CODES.get(label, label)
        if not label:
            continue
        if label not in VERDICTS:
            raise bad_file(
                f"row {number}: label {_quoted(label)}is not one of {', '.join(VERDICTS)}"
            )
        flag = None
        if flag_column is not None:
            word = _text(row[flag_column]).lower()
            if word not in _YES | _NO:
                raise bad_file(f"row {number}: flag {_quoted(word)}is not true or false")
            flag = word in _YES if word else None
        labels.append(
            OracleLabel(
                spectrum=_text(row[id_column]),
                label=label,
                # an empty cell says nothing: the user's latest comment stays
                comment=(_text(row[comment_column]) or None) if comment_column else None,
                flag=flag,
            )
        )
    return labels


def bad_file(detail: str) -> AlvoError:
    return AlvoError(Reason.BAD_LABEL_FILE, detail)


def _votable_rows(data: bytes) -> tuple[list[str], list[dict[str, Any]]]:
    from astropy.io.votable import parse_single_table

    try:
        table = parse_single_table(io.BytesIO(data)).to_table()
    except Exception:  # astropy/expat fail in their own words; none of them helps the user
        raise bad_file(
            "the VOTable could not be read (not well-formed, or no TABLE with data): "
            "save it again from TOPCAT, or send a CSV with 'pubdid' and 'label' columns"
        ) from None
    names = list(table.colnames)
    return names, [dict(zip(names, row, strict=True)) for row in table]


def _csv_rows(data: bytes) -> tuple[list[str], list[dict[str, Any]]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise bad_file(
            f"the file is not UTF-8 text (byte {error.start} is not): save the CSV as "
            "UTF-8, or send a VOTable"
        ) from None
    reader = csv.DictReader(io.StringIO(text))
    try:
        return list(reader.fieldnames or []), list(reader)
    except csv.Error:  # a field over csv's limit (128 KiB), a NUL byte
        raise bad_file(
            f"the CSV could not be read at line {reader.line_num}: one identifier and one "
            "verdict per line, comma-separated, no field longer than 128 KiB"
        ) from None


def _quoted(label: str) -> str:
    """A wrong verdict as the user typed it (a typo is worth showing), or nothing.

    Only a short word is echoed: a table may come from a URL the user does not
    control, and an error message must not become a way to read it.
    """
    return f"{label!r} " if _WORD.fullmatch(label) else ""


_WORD = re.compile(r"[a-z0-9 _-]{1,24}")


def _text(value: Any) -> str:
    if value is None or bool(getattr(value, "mask", False)):
        return ""
    if isinstance(value, bytes):
        value = value.decode()
    return str(value).strip()
