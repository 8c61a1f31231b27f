"""ADQL 2.0 to SQL for PostgreSQL (+pgSphere) and the embedded SQLite, on queryparser's tree.

queryparser-python3 parses ADQL with its ANTLR grammar and translates it to
PostgreSQL + pgSphere (``CONTAINS(POINT, CIRCLE)`` -> ``spoint @ scircle``,
``TOP n`` -> ``LIMIT n``...). On top of that this module

- refuses everything but one SELECT: a syntax error, a second statement after
  ``;``, a function that ADQL does not define (``pg_sleep``, ``pg_read_file``,
  ``load_extension``...) or a table that is not published all raise
  :class:`AdqlError` with a message naming what is wrong;
- maps every published ADQL table name (``alvo.prediction``,
  ``TAP_SCHEMA.columns``, ``TAP_UPLOAD.targets``) to the SQL name it has in
  the database, so only published tables can be reached;
- neutralises queryparser's ``eval()`` of geometry arguments (it would run a
  Python expression written in the query) by converting values itself;
- for SQLite, translates the geometry with the same tree walk to SQL functions
  that :mod:`service.vo.tap.sphere` registers on each connection
  (``adql_contains``, ``adql_in_circle``, ``adql_sep``...), adding a
  declination band before an ``adql_in_circle`` so a cone search uses the index
  on ``dec``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import antlr4
from antlr4.atn.PredictionMode import PredictionMode
from queryparser.adql import adqltranslator as qp
from queryparser.adql.ADQLLexer import ADQLLexer
from queryparser.adql.ADQLParser import ADQLParser
from queryparser.adql.ADQLParser import ADQLParser as P
from queryparser.exceptions import QueryError

from service.reasons import AlvoError, Reason

DIALECTS = ("sqlite", "postgresql")

#: Functions a query may call: ADQL 2.0's own (the grammar knows the math,
#: trigonometric and aggregate ones) plus these string functions of ADQL 2.1.
ALLOWED_FUNCTIONS = frozenset({"lower", "upper"})
#: Longest QUERY accepted, characters (checked before parsing).
MAX_QUERY_CHARS = 64 * 1024
#: Deepest parenthesis nesting accepted (the parser recurses per level).
MAX_NESTING = 40
#: ADQL geometry functions that neither translation implements (refused by name).
_UNSUPPORTED = frozenset({"AREA", "CENTROID", "COORD1", "COORD2", "COORDSYS", "REGION"})


class AdqlError(AlvoError):
    """An ADQL query that cannot run; ``str()`` says why."""

    def __init__(self, detail: str) -> None:
        super().__init__(Reason.BAD_QUERY, detail)


@dataclasses.dataclass(frozen=True)
class Translation:
    """A translated query: ``sql``, the published ADQL tables it reads (lower case) and
    ``aliases``: output name -> table column name, for plain columns renamed with AS."""

    sql: str
    tables: frozenset[str]
    aliases: Mapping[str, str] = dataclasses.field(default_factory=dict)


def translate(adql: str, tables: Mapping[str, str], dialect: str = "sqlite") -> Translation:
    """Translate one ADQL SELECT to ``dialect``'s SQL.

    ``tables`` maps each published ADQL table name, lower case and qualified
    (``alvo.prediction``) or not (``prediction``), to its SQL name.
    """
    if dialect not in DIALECTS:
        raise ValueError(f"dialect must be one of {DIALECTS}")
    adql = _without_comments(_bounded(adql))
    if not adql.strip():
        raise AdqlError("QUERY is empty")
    try:
        return _translate(adql, tables, dialect)
    except RecursionError:  # the parser and the tree walks recurse once per nesting level
        raise AdqlError(
            "the query is nested too deeply or chains too many conditions for the parser; "
            "simplify it (use IN (...) instead of many ORs)"
        ) from None


def _translate(adql: str, tables: Mapping[str, str], dialect: str) -> Translation:
    translator = _parse(adql)
    aliases = _column_aliases(translator.tree)
    used = _map_tables(translator.tree, tables)
    _check_functions(translator.tree)
    if dialect == "postgresql":
        geometry: qp.ADQLGeometryTranslationVisitor = _SafeGeometry("postgresql")
    else:
        geometry = _SqliteGeometry("postgresql")
    try:
        geometry.visit(translator.tree)
        if isinstance(geometry, _SqliteGeometry):
            functions: qp.ADQLFunctionsTranslationVisitor = _SqliteFunctions(
                geometry.contexts, "postgresql", geometry.shapes
            )
        else:
            functions = _PgFunctions(geometry.contexts, "postgresql")
        functions.visit(translator.tree)
        sql = translator.translate(functions)
    except QueryError as error:
        raise AdqlError(str(error)) from None
    except (ValueError, IndexError, AttributeError, TypeError) as error:
        raise AdqlError(f"unsupported construct in the query ({error})") from None
    return Translation(sql.rstrip(";").strip(), frozenset(used), aliases)


# --- parsing and checks -----------------------------------------------------------------
def _bounded(adql: str) -> str:
    """Refuse, before any parsing, a query too long or too deeply nested to be meant."""
    if len(adql) > MAX_QUERY_CHARS:
        raise AdqlError(
            f"QUERY is {len(adql)} characters; at most {MAX_QUERY_CHARS} (upload long "
            "lists of values as a TAP UPLOAD table and join it)"
        )
    depth = deepest = 0
    for char in adql:
        depth += {"(": 1, ")": -1}.get(char, 0)
        deepest = max(deepest, depth)
    if deepest > MAX_NESTING:
        raise AdqlError(f"QUERY nests parentheses {deepest} deep; at most {MAX_NESTING}")
    return adql


def _without_comments(adql: str) -> str:
    """The query with its ADQL 2.1 ``--`` comments blanked (not those inside quotes).

    The grammar queryparser uses predates comments; blanking them keeps every
    other character where it was, so syntax errors still point to the right column.
    """
    out = list(adql)
    quote: str | None = None
    i = 0
    while i < len(adql):
        char = adql[i]
        if quote is not None:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif adql.startswith("--", i):
            end = adql.find("\n", i)
            end = len(adql) if end < 0 else end
            out[i:end] = " " * (end - i)
            i = end
            continue
        i += 1
    return "".join(out)


def _parse(adql: str) -> qp.ADQLQueryTranslator:
    """Parse with queryparser's grammar, SLL first (fast), full LL only if SLL fails.

    ANTLR's two-stage strategy: an SLL parse without errors is the correct
    parse, and costs ~3 ms against ~150 ms for queryparser's default LL mode;
    only a query SLL cannot parse is parsed again in LL (which then reports
    any real syntax error).
    """
    translator = qp.ADQLQueryTranslator()
    translator._query = adql.lstrip("\n").rstrip().rstrip(";") + ";"
    for mode in (PredictionMode.SLL, PredictionMode.LL):
        stream = antlr4.CommonTokenStream(ADQLLexer(antlr4.InputStream(translator._query)))
        parser = ADQLParser(stream)
        parser._interp.predictionMode = mode
        listener = qp.SyntaxErrorListener()
        parser._listeners = [listener]
        tree = parser.query()
        if not listener.syntax_errors:
            break
    if listener.syntax_errors:
        line, column, token = listener.syntax_errors[0]
        raise AdqlError(f"syntax error at line {line}, column {column + 1}, near {token!r}")
    translator.stream, translator.parser, translator.tree = stream, parser, tree
    translator.syntax_error_listener = listener
    translator.walker = antlr4.ParseTreeWalker()
    tokens = translator.stream.tokens
    last = translator.tree.stop.tokenIndex if translator.tree.stop is not None else -1
    trailing = [t for t in tokens[last + 1 :] if t.type != antlr4.Token.EOF and t.text.strip()]
    semicolons = [t for t in tokens[: last + 1] if t.text == ";"]
    if trailing or len(semicolons) > 1:
        raise AdqlError("only one SELECT statement may be given (found text after ';')")
    return translator


def _walk(node: antlr4.ParserRuleContext) -> Any:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(getattr(current, "children", None) or []))


def _column_aliases(tree: antlr4.ParserRuleContext) -> dict[str, str]:
    """``SELECT t.ra AS x``: {"x": "ra"} for the outer select list (lower case)."""
    select_list = next((n for n in _walk(tree) if isinstance(n, P.Select_listContext)), None)
    aliases: dict[str, str] = {}
    for node in (select_list.children or []) if select_list is not None else []:
        derived = _find(node, P.Derived_columnContext)
        if derived is None or len(derived.children) < 2:
            continue
        value, alias = derived.children[0], derived.children[-1]
        reference = _find(value, P.Column_referenceContext)
        if reference is None or reference.getText() != value.getText():
            continue
        name = reference.children[-1].getText().strip('"').lower()
        aliases[alias.children[-1].getText().strip('"').lower()] = name
    return aliases


def _map_tables(tree: antlr4.ParserRuleContext, tables: Mapping[str, str]) -> set[str]:
    """Rewrite published table names to SQL names; refuse unknown tables in FROM."""
    used = set()
    for node in list(_walk(tree)):
        if not isinstance(node, P.Table_nameContext):
            continue
        name = node.getText().lower()
        in_from = isinstance(node.parentCtx, P.Table_referenceContext)
        if name not in tables:
            if in_from:
                raise AdqlError(f"table {node.getText()!r} does not exist (see TAP_SCHEMA.tables)")
            continue  # a qualifier that is a correlation name (an alias)
        used.add(name)
        terminal = node
        while not isinstance(terminal, antlr4.TerminalNode):
            terminal = terminal.children[0]
        terminal.symbol.text = tables[name]
        qp._remove_children(node)
        if isinstance(node.children[0], antlr4.ParserRuleContext):
            node.children[0].children = [terminal]
            terminal.parentCtx = node.children[0]
            # the identifier's own text must not win over the new name
            node.children[0].__class__ = P.Catalog_nameContext
    return used


def _check_functions(tree: antlr4.ParserRuleContext) -> None:
    for node in _walk(tree):
        if isinstance(node, P.User_defined_functionContext):
            name = node.children[0].getText()
            if name.lower() not in ALLOWED_FUNCTIONS:
                raise AdqlError(f"function {name!r} is not an ADQL function this service offers")
        elif isinstance(node, antlr4.TerminalNode) and node.getText().upper() in _UNSUPPORTED:
            raise AdqlError(
                f"{node.getText().upper()} is not supported; use POINT, CIRCLE, BOX, "
                "POLYGON, CONTAINS, INTERSECTS and DISTANCE"
            )


# --- value conversion without eval ------------------------------------------------------
def _values(ctx: antlr4.ParserRuleContext, index: int) -> list[float | str]:
    """Numbers stay numbers, anything else is passed on as SQL text (never ``eval``-ed)."""
    out: list[float | str] = []
    for text in ctx.children[index].getText().split(","):
        try:
            out.append(float(text))
        except ValueError:
            out.append(text)
    return out


class _SafeGeometry(qp.ADQLGeometryTranslationVisitor):
    def _convert_values(self, ctx: Any, cidx: Any) -> Any:
        return _values(ctx, cidx)

    def visitCircle(self, ctx: Any) -> Any:  # noqa: N802
        _check_radius(_circle_args(ctx)[2])
        return super().visitCircle(ctx)

    def visitBox(self, ctx: Any) -> Any:  # noqa: N802
        s = 4 if len(ctx.children) > 8 else 2
        if any(isinstance(v, str) for j in (s, s + 2, s + 4) for v in _values(ctx, j)):
            raise AdqlError("BOX takes numeric centre and size (degrees)")
        return super().visitBox(ctx)


class _Predicates(qp.ADQLFunctionsTranslationVisitor):
    """``1 = CONTAINS(a, b)`` / ``INTERSECTS(...) = 0``: the function's SQL, negated for 0."""

    def _predicate(self, ctx: Any, name: str, visit: Any) -> None:
        left, right = ctx.children[0].getText(), ctx.children[2].getText()
        if left in ("0", "1"):
            flag, inner, reverse = left, ctx.children[2], False
        elif right in ("0", "1"):
            flag, inner, reverse = right, ctx.children[0], True
        else:
            raise QueryError(f"The function {name} allows comparison to 1 or 0 only.")
        visit(inner)
        text = self.contexts[inner]
        if flag == "0":
            text = f"NOT ({text})"
        qp._remove_children(ctx, reverse=reverse)
        self.contexts[ctx] = text

    def visitContains_predicate(self, ctx: Any) -> Any:  # noqa: N802
        self._predicate(ctx, "CONTAINS", self.visitContains)

    def visitIntersects_predicate(self, ctx: Any) -> Any:  # noqa: N802
        self._predicate(ctx, "INTERSECTS", self.visitIntersects)


class _PgFunctions(_Predicates):
    def visitComparison_predicate(self, ctx: Any) -> Any:  # noqa: N802
        """``DISTANCE(...) < r`` stays a comparison: pgSphere 1.1 has no ``spoint_dwithin``."""
        return self.visitChildren(ctx)

    def visitIntersects(self, ctx: Any) -> Any:  # noqa: N802
        """pgSphere has no ``spoint && shape``: a point intersects what contains it."""
        first, second = ctx.children[2], ctx.children[4]
        for point, other in ((first, second), (second, first)):
            found = _find(point, P.PointContext)
            if found is not None and _is_simple(point, found):
                a = self.contexts.get(point.children[0], point.getText())
                b = self.contexts.get(other.children[0], other.getText())
                qp._remove_children(ctx)
                self.contexts[ctx] = f"{a} @ {b}"
                return
        super().visitIntersects(ctx)

    def visitDistance(self, ctx: Any, dwithin_radius: Any = None) -> Any:  # noqa: N802
        if not isinstance(ctx.children[2], P.Coord_valueContext):  # DISTANCE(ra, dec, ra, dec)
            a, b, c, d = (ctx.children[i].getText() for i in (2, 4, 6, 8))
            for _ in range(ctx.getChildCount() - 1):
                ctx.removeLastChild()
            text = (
                f"DEGREES(spoint(RADIANS({a}), RADIANS({b})) <-> "
                f"spoint(RADIANS({c}), RADIANS({d})))"
            )
            if dwithin_radius is not None:
                text = (
                    f"spoint_dwithin(spoint(RADIANS({a}), RADIANS({b})), "
                    f"spoint(RADIANS({c}), RADIANS({d})), RADIANS({dwithin_radius}))"
                )
            self.contexts[ctx] = text
            return None
        return super().visitDistance(ctx, dwithin_radius)


# --- SQLite ---------------------------------------------------------------------------------
def _num(value: float | str) -> str:
    return repr(value) if isinstance(value, float) else f"({value})"


class _SqliteGeometry(_SafeGeometry):
    """Geometry constructors as SQLite functions returning DALI-like text (``point ra dec``).

    ``shapes`` keeps each POINT's and CIRCLE's arguments (their tree nodes are
    emptied by the translation) for the cone fast path of :class:`_SqliteFunctions`.
    """

    def __init__(self, output_sql: str) -> None:
        super().__init__(output_sql)
        self.shapes: dict[antlr4.ParserRuleContext, tuple[float | str, ...]] = {}

    def visitPoint(self, ctx: Any) -> Any:  # noqa: N802
        coords = _point_coords(ctx)
        self.shapes[ctx] = tuple(coords[:2])
        qp._remove_children(ctx)
        self.contexts[ctx] = f"adql_point({_num(coords[0])}, {_num(coords[1])})"

    def visitCircle(self, ctx: Any) -> Any:  # noqa: N802
        ra, dec, radius = _circle_args(ctx)
        _check_radius(radius)
        self.shapes[ctx] = (ra, dec, radius)
        qp._remove_children(ctx)
        self.contexts[ctx] = f"adql_circle({_num(ra)}, {_num(dec)}, {_num(radius)})"

    def visitBox(self, ctx: Any) -> Any:  # noqa: N802
        s = 4 if len(ctx.children) > 8 else 2
        args = [_values(ctx, j)[i] for j in (s, s + 2, s + 4) for i in range(len(_values(ctx, j)))]
        qp._remove_children(ctx)
        self.contexts[ctx] = "adql_box(" + ", ".join(_num(a) for a in args) + ")"

    def visitPolygon(self, ctx: Any) -> Any:  # noqa: N802
        args = []
        for j in range(2, len(ctx.children), 2):
            values = _values(ctx, j)
            if len(values) > 1:
                args.extend(values)
        qp._remove_children(ctx)
        self.contexts[ctx] = "adql_polygon(" + ", ".join(_num(a) for a in args) + ")"


def _check_radius(radius: float | str) -> None:
    """pgSphere's limit, applied on both databases so they answer alike."""
    if isinstance(radius, float) and not 0.0 <= radius <= 90.0:
        raise AdqlError(f"CIRCLE radius {radius:g} is outside 0-90 degrees")


def _point_coords(ctx: antlr4.ParserRuleContext) -> list[float | str]:
    coords: list[float | str] = []
    if len(ctx.children) > 4:
        for j in (2, 4):
            coords.extend(_values(ctx, j))
    else:
        coords.extend(_values(ctx, 2))
    return coords[1:] if len(coords) == 3 else coords


def _circle_args(ctx: antlr4.ParserRuleContext) -> tuple[float | str, float | str, float | str]:
    """(ra, dec, radius) of a CIRCLE with a coordinate pair or an explicit POINT centre."""
    s = 4 if isinstance(ctx.children[2], P.Coord_sysContext) else 2
    radius = _values(ctx, s + 2)[0]
    centre = ctx.children[s]
    if isinstance(centre.children[0], P.CoordinatesContext):
        ra, dec = _values(centre, 0)[:2]
        return ra, dec, radius
    point = _find(centre, P.PointContext)
    if point is None:
        raise AdqlError("CIRCLE needs a coordinate pair or a POINT as its centre")
    ra, dec = _point_coords(point)[:2]
    return ra, dec, radius


def _find(ctx: antlr4.ParserRuleContext, kind: type) -> antlr4.ParserRuleContext | None:
    for node in _walk(ctx):
        if isinstance(node, kind):
            return node
    return None


class _SqliteFunctions(_Predicates):
    """Predicates and DISTANCE as SQLite function calls (see :mod:`service.vo.tap.sphere`)."""

    def __init__(self, contexts: Any, output_sql: Any, shapes: Any = None) -> None:
        super().__init__(contexts, output_sql)
        self.shapes = shapes or {}

    def _geometry(self, ctx: Any, index: Any) -> Any:
        return self._get_geometry_value(ctx, index)

    def visitContains(self, ctx: Any) -> Any:  # noqa: N802
        point = _find(ctx.children[2], P.PointContext)
        circle = _find(ctx.children[4], P.CircleContext)
        if point in self.shapes and circle in self.shapes and _is_simple(ctx.children[2], point):
            self.contexts[ctx] = _cone(self.shapes[point], self.shapes[circle])
        else:
            a, b = self._geometry(ctx, 2), self._geometry(ctx, 4)
            self.contexts[ctx] = f"(adql_contains({a}, {b}) = 1)"
        qp._remove_children(ctx)

    def visitIntersects(self, ctx: Any) -> Any:  # noqa: N802
        a, b = self._geometry(ctx, 2), self._geometry(ctx, 4)
        qp._remove_children(ctx)
        self.contexts[ctx] = f"(adql_intersects({a}, {b}) = 1)"

    def visitComparison_predicate(self, ctx: Any) -> Any:  # noqa: N802
        return self.visitChildren(ctx)

    def visitDistance(self, ctx: Any, dwithin_radius: Any = None) -> Any:  # noqa: N802
        if isinstance(ctx.children[2], P.Coord_valueContext):
            points = [_find(ctx.children[i], P.PointContext) for i in (2, 4)]
            if all(p in self.shapes for p in points):
                coords = [c for p in points for c in self.shapes[p]]
                text = "adql_sep(" + ", ".join(_num(c) for c in coords) + ")"
            else:
                a, b = self._geometry(ctx, 2), self._geometry(ctx, 4)
                text = f"adql_distance({a}, {b})"
        else:
            coords = [_values(ctx, i)[0] for i in (2, 4, 6, 8)]
            text = "adql_sep(" + ", ".join(_num(c) for c in coords) + ")"
        for _ in range(ctx.getChildCount() - 1):
            ctx.removeLastChild()
        self.contexts[ctx] = text


def _is_simple(value: antlr4.ParserRuleContext, point: antlr4.ParserRuleContext) -> bool:
    """True if a CONTAINS argument is just the POINT (not a column holding a geometry)."""
    return value.getText() == point.getText()


def _cone(point: tuple[float | str, ...], circle: tuple[float | str, ...]) -> str:
    """Point-in-circle, behind cheap SQL filters when the circle is constant.

    A declination band (``dec BETWEEN d-r AND d+r``: the ``(dec, ra)`` index
    serves it) and, away from the poles, an RA window of half-width
    ``r / cos(|d| + r)`` (split where it wraps through 0/360), so the exact
    Python test only runs on the few rows in the circle's bounding box.
    """
    x, y = point[:2]
    ra, dec, radius = circle
    test = f"adql_in_circle({_num(x)}, {_num(y)}, {_num(ra)}, {_num(dec)}, {_num(radius)}) = 1"
    if not (isinstance(dec, float) and isinstance(radius, float) and isinstance(y, str)):
        return f"({test})"
    lo, hi = max(-90.0, dec - radius), min(90.0, dec + radius)
    filters = [f"{y} BETWEEN {lo!r} AND {hi!r}"]
    if isinstance(ra, float) and isinstance(x, str) and abs(dec) + radius < 89.0:
        half = radius / math.cos(math.radians(abs(dec) + radius))
        start, end = (ra - half) % 360.0, (ra + half) % 360.0
        if half >= 180.0:
            pass
        elif start <= end:
            filters.append(f"{x} BETWEEN {start!r} AND {end!r}")
        else:
            filters.append(f"({x} >= {start!r} OR {x} <= {end!r})")
    return "(" + " AND ".join([*filters, test]) + ")"
