"""The embedded demo archive: a two-domain spectrum simulator with ground truth.

``simulate_batch(collection, n, seed)`` gives in-memory spectra (Ondrejov CCD700,
air; LAMOST DR2, vacuum) and their truth table; ``generate_archive`` writes a
collection in the archives' real FITS formats under ``$home/archive/{collection}``
with ``catalogue.fits``, which the SSA and DataLink endpoints serve
(``load_catalogue``, ``resolve_file``); ``ensure_demo_archive`` makes the small
demo archive once. See docs/archive.md.
"""

from service.archive.catalogue import load_catalogue, resolve_file
from service.archive.generate import ensure_demo_archive, generate_archive
from service.archive.simulate import simulate_batch, simulate_rows

__all__ = [
    "ensure_demo_archive",
    "generate_archive",
    "load_catalogue",
    "resolve_file",
    "simulate_batch",
    "simulate_rows",
]
