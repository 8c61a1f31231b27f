"""The UWS job types of alvo: glue between :mod:`uws` and the numerical core.

Each module (``ingest``, ``train``, ``classify``, ``iterate``) has the same
shape: a request dataclass built from the job's parameters (the validator runs
the same parsing when the job is created, so bad parameters are a 400, not a
failed job), and ``run(job, workdir, progress) -> results`` typed by
:mod:`uws.runner`, whose named refusals :func:`service.jobs.runner.job_runner`
turns into the job's error. :mod:`service.jobs.lists` gathers them into the UWS
service. Nothing is imported here, so a process that needs one job module (an
ingest chunk's worker, a Dask task) does not import them all.
"""
