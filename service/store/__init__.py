"""Everything alvo keeps: the only SQL of :mod:`service` (besides the ADQL engine).

``schema`` (result tables + their VO column metadata), ``migrations`` (their Alembic
history), ``engine`` (one engine per database URL and process, WAL on SQLite, the
tables at the newest revision), ``features`` (the float32 feature store),
``datasets``, ``campaigns`` (source set, pool, attributed verdicts),
``predictions`` (Parquet file + the SQL rows TAP publishes), ``candidates`` (the one
query behind every candidate list: VOTables and the labelling page), ``models``
(trained networks), ``stars`` (the same star's other spectra, its neighbours and
earlier verdicts), ``health`` (whether the database answers), ``ownership`` (who may
change or label what), ``archive_roots`` (the operator's trusted local trees),
``demo`` (generated rows for tests and benchmarks). Nothing here knows of jobs,
protocols or pages: they call in, never the other way round.
"""
