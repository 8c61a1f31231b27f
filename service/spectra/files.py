"""What counts as a spectrum file in an archive tree on local disk.

One definition for the operator's tree ingest (which walks a tree) and for the
archive roots (which serve files from it): a file the ingest would not read is
a file the service does not serve.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

#: File names read as spectra.
SUFFIXES = (".fits", ".fit", ".fits.gz", ".fit.gz")


def archive_files(root: Path) -> Iterator[str]:
    """Paths of the spectra under ``root``, relative and POSIX, in a stable sorted order."""
    for folder, subfolders, files in os.walk(root):
        subfolders.sort()
        here = Path(folder).relative_to(root).as_posix()
        prefix = "" if here == "." else f"{here}/"
        for name in sorted(files):
            if name.lower().endswith(SUFFIXES):
                yield prefix + name
