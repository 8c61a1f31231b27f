"""TAP's metadata documents: VOSI tables 1.1, TAPRegExt capabilities, DALI examples.

All three are built from the same sources as TAP_SCHEMA
(:func:`service.vo.tap.tap_schema.published` and ``Column.info``), so the
``/tables`` document, TAP_SCHEMA and query results agree -- which is exactly
what ``stilts taplint`` cross-checks.
"""

from __future__ import annotations

import html

import sqlalchemy as sa
from lxml import etree

from service.store.schema import column_meta
from service.vo.tap import tap_schema
from service.vocabulary import TARGET_CLASSES

VOSI_TABLES = "http://www.ivoa.net/xml/VOSITables/v1.0"
VOSI_CAPABILITIES = "http://www.ivoa.net/xml/VOSICapabilities/v1.0"
VR = "http://www.ivoa.net/xml/VOResource/v1.0"
VS = "http://www.ivoa.net/xml/VODataService/v1.1"
TR = "http://www.ivoa.net/xml/TAPRegExt/v1.0"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XHTML = "http://www.w3.org/1999/xhtml"

GEOMETRY_FEATURES = ("POINT", "CIRCLE", "BOX", "POLYGON", "CONTAINS", "INTERSECTS", "DISTANCE")
#: (media type, alias) of every RESPONSEFORMAT offered.
OUTPUT_FORMATS = (
    ("application/x-votable+xml", "votable"),
    ("application/x-votable+xml;serialization=BINARY2", "votable/b2"),
    ("text/csv", "csv"),
)


def _xsi(element: etree._Element, value: str) -> None:
    element.set(f"{{{XSI}}}type", value)


def _to_bytes(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


# --- VOSI tables ----------------------------------------------------------------------------
def table_element(
    adql_name: str, table: sa.Table, keys: list[tap_schema.ForeignKey], detail: bool = True
) -> etree._Element:
    """A VODataService ``table`` with its columns and the foreign keys leaving it."""
    element = etree.Element("table", type="table")
    etree.SubElement(element, "name").text = adql_name
    if table.comment:
        etree.SubElement(element, "description").text = table.comment
    if not detail:
        return element
    for column in table.columns:
        meta = column_meta(column)
        node = etree.SubElement(element, "column")
        etree.SubElement(node, "name").text = meta.name
        if meta.description:
            etree.SubElement(node, "description").text = meta.description
        if meta.unit:
            etree.SubElement(node, "unit").text = meta.unit
        if meta.ucd:
            etree.SubElement(node, "ucd").text = meta.ucd
        if meta.utype:
            etree.SubElement(node, "utype").text = meta.utype
        datatype = etree.SubElement(node, "dataType")
        _xsi(datatype, "vs:VOTableType")
        if meta.arraysize:
            datatype.set("arraysize", meta.arraysize)
        if meta.xtype:
            datatype.set("extendedType", meta.xtype)
        datatype.text = meta.datatype
        if meta.indexed:
            etree.SubElement(node, "flag").text = "indexed"
        if column.primary_key:
            etree.SubElement(node, "flag").text = "primary"
        if meta.principal:
            etree.SubElement(node, "flag").text = "principal"
    for fk in keys:
        if fk.from_table != adql_name:
            continue
        key = etree.SubElement(element, "foreignKey")
        etree.SubElement(key, "targetTable").text = fk.target_table
        pair = etree.SubElement(key, "fkColumn")
        etree.SubElement(pair, "fromColumn").text = fk.from_column
        etree.SubElement(pair, "targetColumn").text = fk.target_column
        etree.SubElement(key, "description").text = fk.description
    return element


def tableset(dialect: str, detail: bool = True) -> bytes:
    """The ``vosi:tableset`` of every published schema and table."""
    root = etree.Element(
        f"{{{VOSI_TABLES}}}tableset", nsmap={"vosi": VOSI_TABLES, "vs": VS, "xsi": XSI}
    )
    by_schema: dict[str, list[tuple[str, sa.Table]]] = {}
    published = tap_schema.published(dialect)
    keys = tap_schema.foreign_keys(dialect)
    for adql_name, table in published.items():
        by_schema.setdefault(adql_name.split(".")[0], []).append((adql_name, table))
    for schema_name, description in tap_schema.SCHEMA_DESCRIPTIONS.items():
        node = etree.SubElement(root, "schema")
        etree.SubElement(node, "name").text = schema_name
        etree.SubElement(node, "description").text = description
        for adql_name, table in by_schema.get(schema_name, []):
            node.append(table_element(adql_name, table, keys, detail))
    return _to_bytes(root)


def single_table(dialect: str, name: str) -> bytes | None:
    """``/tables/{name}``: one ``vosi:table``; None if no table has that name."""
    published = tap_schema.published(dialect)
    keys = tap_schema.foreign_keys(dialect)
    for adql_name, table in published.items():
        if adql_name.lower() == name.lower():
            element = table_element(adql_name, table, keys)
            root = etree.Element(
                f"{{{VOSI_TABLES}}}table",
                nsmap={"vosi": VOSI_TABLES, "vs": VS, "xsi": XSI},
                type="table",
            )
            root.extend(list(element))
            return _to_bytes(root)
    return None


# --- capabilities ---------------------------------------------------------------------------
def capabilities(base: str, limits: dict[str, int]) -> bytes:
    """VOSI capabilities of the TAP service at ``base`` (…/tap), with its TAPRegExt record.

    ``limits``: default_maxrec, max_maxrec (rows), max_upload_bytes, retention_s,
    execution_s.
    """
    root = etree.Element(
        f"{{{VOSI_CAPABILITIES}}}capabilities",
        nsmap={"vosi": VOSI_CAPABILITIES, "vr": VR, "vs": VS, "tr": TR, "xsi": XSI},
    )
    tap = etree.SubElement(root, "capability", standardID="ivo://ivoa.net/std/TAP")
    _xsi(tap, "tr:TableAccess")
    _interface(tap, base, version="1.1")
    language = etree.SubElement(tap, "language")
    etree.SubElement(language, "name").text = "ADQL"
    version = etree.SubElement(language, "version")
    version.set("ivo-id", "ivo://ivoa.net/std/ADQL#v2.0")
    version.text = "2.0"
    etree.SubElement(
        language, "description"
    ).text = "ADQL 2.0 with geometry, on PostgreSQL + pgSphere or the embedded SQLite"
    features = etree.SubElement(
        language, "languageFeatures", type="ivo://ivoa.net/std/TAPRegExt#features-adqlgeo"
    )
    for form in GEOMETRY_FEATURES:
        etree.SubElement(etree.SubElement(features, "feature"), "form").text = form
    for media, alias in OUTPUT_FORMATS:
        output = etree.SubElement(tap, "outputFormat")
        etree.SubElement(output, "mime").text = media
        etree.SubElement(output, "alias").text = alias
    for method in ("upload-inline", "upload-http", "upload-https"):
        upload = etree.SubElement(tap, "uploadMethod")
        upload.set("ivo-id", f"ivo://ivoa.net/std/TAPRegExt#{method}")
    for element, value, unit in (
        ("retentionPeriod", limits["retention_s"], None),
        ("executionDuration", limits["execution_s"], None),
        ("outputLimit", (limits["default_maxrec"], limits["max_maxrec"]), "row"),
        ("uploadLimit", (limits["max_upload_bytes"], limits["max_upload_bytes"]), "byte"),
    ):
        node = etree.SubElement(tap, element)
        default, hard = value if isinstance(value, tuple) else (value, value)
        for name, number in (("default", default), ("hard", hard)):
            child = etree.SubElement(node, name)
            child.text = str(number)
            if unit:
                child.set("unit", unit)
    for standard, path in (
        ("ivo://ivoa.net/std/VOSI#capabilities", "capabilities"),
        ("ivo://ivoa.net/std/VOSI#availability", "availability"),
        ("ivo://ivoa.net/std/VOSI#tables-1.1", "tables"),
        ("ivo://ivoa.net/std/DALI#examples", "examples"),
    ):
        capability = etree.SubElement(root, "capability", standardID=standard)
        _interface(capability, f"{base}/{path}", role=None)
    return _to_bytes(root)


def _interface(
    capability: etree._Element, url: str, version: str | None = None, role: str | None = "std"
) -> None:
    interface = etree.SubElement(capability, "interface")
    _xsi(interface, "vs:ParamHTTP")
    if role:
        interface.set("role", role)
    if version:
        interface.set("version", version)
    etree.SubElement(interface, "accessURL", use="base").text = url


# --- examples -------------------------------------------------------------------------------
#: The emission classes as an ADQL list of string literals.
_TARGET_CLASSES_ADQL = ", ".join(f"'{c}'" for c in TARGET_CLASSES)
EXAMPLES = (
    (
        "top-entropy",
        "The most uncertain spectra of the last iteration",
        "The oracle's next query batch: among the spectra of a campaign's latest iteration, "
        "those whose class probabilities have the highest entropy.",
        "SELECT TOP 100 s.designation, s.ra, s.dec, p.predicted_class, p.p_single_peak,\n"
        "       p.p_double_peak, p.p_absorption, p.entropy, s.access_url\n"
        "FROM alvo.prediction AS p\n"
        "JOIN alvo.spectrum AS s ON s.spectrum_id = p.spectrum_id\n"
        "JOIN (SELECT campaign_id, MAX(number) AS latest FROM alvo.iteration\n"
        "      GROUP BY campaign_id) AS l\n"
        "  ON l.campaign_id = p.campaign_id AND l.latest = p.iteration\n"
        "ORDER BY entropy DESC",
        ("alvo.prediction", "alvo.spectrum"),
    ),
    (
        "candidates-in-cone",
        "Emission-line candidates within a cone",
        "Spectra predicted as single- or double-peak emission within 10 degrees of "
        "(RA, Dec) = (83.8, -5.4), nearest first.",
        "SELECT s.designation, s.ra, s.dec, p.iteration, p.predicted_class, p.entropy,\n"
        "       DISTANCE(POINT('ICRS', s.ra, s.dec), POINT('ICRS', 83.8, -5.4)) AS dist\n"
        "FROM alvo.prediction AS p JOIN alvo.spectrum AS s ON s.spectrum_id = p.spectrum_id\n"
        "WHERE 1 = CONTAINS(POINT('ICRS', s.ra, s.dec), CIRCLE('ICRS', 83.8, -5.4, 10))\n"
        f"  AND p.predicted_class IN ({_TARGET_CLASSES_ADQL})\n"
        "ORDER BY dist",
        ("alvo.prediction", "alvo.spectrum"),
    ),
    (
        "learning-curve",
        "The learning curve of each campaign",
        "Error and precision per iteration: how the classifier improved as the oracle labelled.",
        "SELECT c.name AS campaign, i.number AS iteration, i.n_labels, i.error,\n"
        "       i.precision_single_peak, i.precision_double_peak\n"
        "FROM alvo.iteration AS i JOIN alvo.campaign AS c ON c.campaign_id = i.campaign_id\n"
        "ORDER BY campaign, iteration",
        ("alvo.iteration", "alvo.campaign"),
    ),
    (
        "labels-per-class",
        "How many spectra the oracle put in each class",
        "Counts of oracle verdicts per label, over all campaigns.",
        "SELECT label, COUNT(*) AS n FROM alvo.label GROUP BY label ORDER BY n DESC",
        ("alvo.label",),
    ),
)


def examples_document() -> bytes:
    """DALI 1.1 examples: XHTML+RDFa, one ``typeof="example"`` div per query."""
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML+RDFa 1.1//EN" '
        '"http://www.w3.org/MarkUp/DTD/xhtml-rdfa-2.dtd">',
        f'<html xmlns="{XHTML}" xml:lang="en"><head><title>alvo TAP examples</title></head>',
        '<body vocab="http://www.ivoa.net/rdf/examples#"><h1>Example queries for alvo</h1>',
    ]
    for ident, name, text, query, tables in EXAMPLES:
        table_spans = " ".join(f'<span property="table">{t}</span>' for t in tables)
        parts.append(
            f'<div id="{ident}" resource="#{ident}" typeof="example">'
            f'<h2 property="name">{html.escape(name)}</h2>'
            f"<p>{html.escape(text)} Tables: {table_spans}</p>"
            f'<pre property="query">{html.escape(query)}</pre></div>'
        )
    parts.append("</body></html>")
    return "\n".join(parts).encode()
