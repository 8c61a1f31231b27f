"""VOTable documents from the metadata templates in ``votable_templates/``.

A template is a complete VOTable 1.4 document that holds everything a reader
needs to understand the data -- FIELDs and PARAMs with names, UCDs, utypes,
units and descriptions, INFOs and DataLink service descriptors -- and empty
TABLEs. Code only adds what varies per request: the rows, a few PARAM values
(an accessURL, the collection's instrument) and sometimes whole elements
copied from the template (one service descriptor per dataset).

Why not astropy's VOTable tree for the whole document: it invents ``ID``
attributes from names (so a PARAM ``ID`` and a FIELD ``ID`` collide), escapes
PARAM values twice and writes ``"0 0"`` for an empty interval; and its writer
takes about 30 µs a cell. So the document is kept as an lxml tree, exactly as
written in the template, and the DATA of each TABLE (TABLEDATA, BINARY2 or BINARY) is
encoded a column at a time by :mod:`service.vo.votable_encoding` and spliced in
when the document is written. Templates use the VOTable namespace as their
default namespace (no prefix), as the encoded DATA does.

Usage::

    doc = templates.load("ssa.xml")
    doc.set_param("datalink_accessURL", f"{base}/datalink/ondrejov")
    doc.fill("results", {"ssa_pubDID": pubdids, "ssa_snr": snr, ...})
    body = doc.to_bytes()
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from lxml import etree

from service.vo.votable_encoding import FieldType, encode

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "votable_templates"
VOTABLE_NS = "http://www.ivoa.net/xml/VOTable/v1.3"
NS = {"v": VOTABLE_NS}
#: BINARY (1) has no null flags: a null integer is written as 0 there.
SERIALIZATIONS = ("tabledata", "binary2", "binary")

_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, remove_blank_text=True, huge_tree=True
)


def parse_xml(data: bytes) -> etree._Element:
    """Parse XML safely (no entities, no network): the one parser for VOTables here."""
    return etree.fromstring(data, parser=_PARSER)


def v(tag: str) -> str:
    """The qualified name of a VOTable 1.3/1.4 element, e.g. ``v("INFO")``."""
    return f"{{{VOTABLE_NS}}}{tag}"


class VOTableDocument:
    """A VOTable template being filled for one response."""

    def __init__(self, root: etree._Element) -> None:
        self.root = root
        self._data: dict[str, str] = {}  # marker comment text -> encoded DATA element

    # --- finding elements ---------------------------------------------------
    def find(self, xpath: str) -> etree._Element:
        """The single element matching ``xpath`` (prefix ``v:`` for VOTable)."""
        found = self.root.xpath(xpath, namespaces=NS)
        if len(found) != 1:
            raise KeyError(f"template has {len(found)} elements matching {xpath!r}")
        return found[0]

    def by_id(self, element_id: str) -> etree._Element:
        return self.find(f"//*[@ID='{element_id}']")

    def table(self, name_or_id: str) -> etree._Element:
        return self.find(f"//v:TABLE[@name='{name_or_id}' or @ID='{name_or_id}']")

    # --- changing it ----------------------------------------------------------
    def set_param(self, name_or_id: str, value: object, **attributes: str) -> None:
        """Set a PARAM's ``value`` (found by ID, else by a unique name)."""
        found = self.root.xpath(f"//v:PARAM[@ID='{name_or_id}']", namespaces=NS)
        param = found[0] if found else self.find(f"//v:PARAM[@name='{name_or_id}']")
        param.set("value", _param_text(value))
        for key, text in attributes.items():
            param.set(key, text)

    def set_params(self, values: Mapping[str, object]) -> None:
        for key, value in values.items():
            self.set_param(key, value)

    def remove(self, xpath: str) -> int:
        """Remove every element matching ``xpath``; returns how many."""
        found = self.root.xpath(xpath, namespaces=NS)
        for element in found:
            element.getparent().remove(element)
        return len(found)

    def copy_element(self, element_id: str, new_id: str) -> etree._Element:
        """Insert a deep copy of an element right after the last copy.

        Every ID inside the copy gets the suffix that turns ``element_id`` into
        ``new_id`` (``proc`` -> ``proc-3`` makes ``proc_ID`` -> ``proc_ID-3``),
        so documents with several copies stay valid XML.
        """
        original = self.by_id(element_id)
        suffix = new_id[len(element_id) :] if new_id.startswith(element_id) else f"-{new_id}"
        clone = copy.deepcopy(original)
        for node in clone.iter():
            if node.get("ID"):
                node.set("ID", node.get("ID") + suffix)
        clone.set("ID", new_id)
        original.getparent().append(clone)
        return clone

    def fill(
        self,
        table: str,
        columns: Mapping[str, Any],
        serialization: str = "tabledata",
    ) -> None:
        """Add the rows of ``columns`` (FIELD ID or name -> array) to a TABLE.

        Arrays are aligned with the FIELDs by the FIELD's ID, else its name; a
        FIELD with no array is written as null. Masked arrays and ``None`` in
        object arrays become nulls. All arrays must have the same length.
        """
        element = self.table(table)
        if serialization not in SERIALIZATIONS:
            raise ValueError(f"serialization must be one of {SERIALIZATIONS}")
        fields = element.findall(v("FIELD"))
        keys = [f.get("ID") or f.get("name") for f in fields]
        lengths = {len(columns[k]) for k in keys if k in columns}
        if len(lengths) > 1:
            raise ValueError(f"columns of different lengths: {sorted(lengths)}")
        nrows = lengths.pop() if lengths else 0
        types = [FieldType(f.get("datatype", "char"), f.get("arraysize")) for f in fields]
        data = encode(serialization, types, [columns.get(k) for k in keys], nrows)  # type: ignore[arg-type]
        for old in element.findall(v("DATA")):
            element.remove(old)
        for old in element.xpath("comment()"):
            if old.text in self._data:
                del self._data[old.text]
                element.remove(old)
        # The encoded DATA is spliced in by to_bytes(): a marker holds its place,
        # after the FIELD/PARAM/GROUP/LINK metadata and before trailing INFOs.
        token = f"alvo-data-{uuid.uuid4().hex}"
        self._data[token] = data
        marker = etree.Comment(token)
        trailing = element.findall(v("INFO"))
        anchor = trailing[0] if trailing and _after_metadata(element, trailing[0]) else None
        if anchor is not None:
            anchor.addprevious(marker)
        else:
            element.append(marker)

    def to_bytes(self) -> bytes:
        text = etree.tostring(self.root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
        for token, data in self._data.items():
            text = text.replace(f"<!--{token}-->".encode(), data.encode("utf-8"), 1)
        return text


def load(name: str) -> VOTableDocument:
    """A fresh, modifiable copy of ``votable_templates/<name>``."""
    return VOTableDocument(parse_xml(_template_bytes(name)))


def _template_bytes(name: str) -> bytes:
    path = (TEMPLATE_DIR / name).resolve()
    if path.parent != TEMPLATE_DIR.resolve():
        raise ValueError(f"not a template name: {name!r}")
    return path.read_bytes()


def _param_text(value: object) -> str:
    if isinstance(value, (list, tuple, np.ndarray)):
        return " ".join(_param_text(item) for item in value)
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return str(value)


def _after_metadata(table: etree._Element, info: etree._Element) -> bool:
    """True if ``info`` comes after all FIELDs (a trailing INFO of VOTable 1.4)."""
    children = list(table)
    last_field = max((i for i, c in enumerate(children) if c.tag == v("FIELD")), default=-1)
    return children.index(info) > last_field
