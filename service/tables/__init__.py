"""alvo's result tables (SQLAlchemy Core) and TAP 1.1 over them.

``schema`` (tables + VO column metadata), ``demo`` (generated rows),
``adql`` (ADQL -> SQL), ``sphere`` (SQLite geometry), ``tap_schema``,
``query`` (confined execution), ``upload``, ``output``, ``vosi``, ``tap``
(request handling shared by sync and async). See docs/tap.md.
"""
