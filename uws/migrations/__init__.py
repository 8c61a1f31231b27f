"""Alembic migrations of the UWS job store, run by :meth:`uws.store.JobStore.migrate` on startup."""
