"""The embedded demo archive: a two-domain spectrum simulator with ground truth.

``simulate_batch(collection, n, seed)`` gives in-memory spectra (Ondrejov CCD700,
air; LAMOST DR2, vacuum) and their truth table; ``generate_archive`` writes a
collection in the archives' real FITS formats under ``$home/archive/{collection}``
with ``catalogue.fits``, which the SSA and DataLink endpoints serve. See
docs/archive.md.
"""

from service.archive.simulate import simulate_batch, simulate_rows

__all__ = ["simulate_batch", "simulate_rows"]
