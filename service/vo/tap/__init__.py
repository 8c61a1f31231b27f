"""TAP 1.1 (sync + async) with ADQL 2.0 over the result tables. See docs/tap.md.

``routes`` (HTTP: sync, async UWS list, VOSI documents), ``execute`` (one
``doQuery``, shared by sync and async), ``adql`` (ADQL -> SQL), ``query``
(confined, read-only execution), ``tap_schema`` (TAP_SCHEMA from the schema's
``Column.info``), ``metadata`` (VOSI tables, TAPRegExt capabilities, DALI
examples), ``upload`` (``UPLOAD=`` tables), ``output`` (VOTable and CSV
documents), ``sphere`` (ADQL geometry on SQLite).
"""
