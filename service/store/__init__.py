"""Everything alvo keeps: the only SQL of :mod:`service` (besides the ADQL engine).

``schema`` (result tables + their VO column metadata), ``migrations`` (their Alembic
history), ``engine`` (one engine per database URL and process, WAL on SQLite, the
tables at the newest revision), ``features`` (the float32 feature store),
``datasets``, ``campaigns`` (source set, pool, attributed verdicts),
``predictions`` (Parquet file + the SQL rows TAP publishes), ``ownership`` (who may
change or label what), ``archive_roots`` (the operator's trusted local trees),
``demo`` (generated rows for tests and benchmarks). Nothing here knows of jobs,
protocols or pages: they call in, never the other way round.
"""
