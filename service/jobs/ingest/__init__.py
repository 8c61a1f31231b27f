"""The ``ingest`` job type: spectra into a named dataset, through either of two doors.

``served``
    The UWS ``ingest`` job (``/ingest``): spectra an SSA query, DataLink IDs,
    access URLs or an uploaded table name, fetched over HTTP (never a local path
    a request names), read whole, adapted, appended chunk by chunk.
``tree``
    ``alvo ingest tree ROOT``: the operator's bulk door for a data release on
    local disk (4 M LAMOST files), reading only the H-alpha window of each file
    on a pool of forked processes.
``chunk``
    What both doors hand to the one writer,
    :meth:`service.store.datasets.Datasets.append`: a chunk of adapted
    features, their ``spectrum`` columns, labels and named failures.

The UWS job list runs ``service.jobs.ingest.served:run``. This file imports
nothing: the tree door's worker processes import ``tree`` and ``chunk``
without the served door's VO stack (astropy tables, SSA, DALI: ~0.6 s of CPU
in the fork server).
"""
