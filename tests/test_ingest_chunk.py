"""A tree ingest's worker gives, per file, what the full reader and adaptation give: the
same features, header columns, ``file://`` URL (``Path.resolve().as_uri()``) and named
failure, though it builds them as columns and joins URLs as strings."""

from __future__ import annotations

import math
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from service.adapt import AdaptConfig, adapt
from service.jobs.ingest.chunk import FLOAT_COLUMNS, ROW_COLUMNS, TEXT_COLUMNS
from service.jobs.ingest.served import screen_spectrum
from service.jobs.ingest.tree import Appender, file_url, read_chunk
from service.reasons import Reason, SpectrumError
from service.spectra import read_spectrum


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> tuple[Path, list[str]]:
    from service.archive.generate import generate_archive
    from service.spectra.files import archive_files

    folder = tmp_path_factory.mktemp("chunk tree")  # a space: URLs must quote it
    generate_archive(folder / "make", "lamost", 80, seed=9)
    root = folder / "make" / "archive" / "lamost"
    (root / "catalogue.fits").unlink()
    first = next(iter(archive_files(root)))
    shutil.copy(root / first, root / "0000" / "spéc #1.fits")  # quoting, a duplicate DID
    (root / "0000" / "empty.fits").write_bytes(b"")
    return root, list(archive_files(root))


def test_file_url_is_what_pathlib_writes(tree) -> None:
    root, files = tree
    for relative in files:
        assert file_url(str(root), relative) == (root / relative).resolve().as_uri()
    assert file_url("/", "a b/c%.fits") == Path("/a b/c%.fits").as_uri()


def test_read_chunk_gives_the_full_readers_values(tree) -> None:
    root, files = tree
    chunk = read_chunk(files, str(root))
    failed = {failure.reference: failure.reason.name for failure in chunk.failures}
    assert failed["0000/empty.fits"] == "CORRUPT_FITS" and len(failed) < 10
    good = [r for r in files if r not in failed]
    assert len(chunk.features) == len(good) and set(chunk.columns) == set(ROW_COLUMNS)
    config = AdaptConfig()
    for row, relative in enumerate(good):
        full = read_spectrum(root / relative)
        flag = screen_spectrum(full, config)  # what the served door does before adapting
        assert (chunk.columns["quality_flag"][row] or "") == flag
        np.testing.assert_allclose(
            chunk.features[row], adapt([full], config).features[0], rtol=1e-5, atol=1e-5
        )
        url = (root / relative).resolve().as_uri()
        assert chunk.columns["access_url"][row] == url
        assert chunk.columns["pubdid"][row] == (full.meta.pubdid or url)
        for name in (*FLOAT_COLUMNS, *TEXT_COLUMNS):
            value = chunk.columns[name][row]
            expected = getattr(full.meta, name, full.meta.extra.get(name, math.nan))
            if name in FLOAT_COLUMNS:
                assert value == expected or (math.isnan(value) and math.isnan(expected)), name
            else:
                assert value == expected, name
        assert chunk.columns["datalink_id"][row] == chunk.columns["datalink_url"][row] == ""
    for failure in chunk.failures:  # the full path fails on them too, for a named reason
        relative = failure.reference
        assert failure.reason.name in Reason.__members__
        try:
            spectrum = read_spectrum(root / relative)
            screen_spectrum(spectrum, config)
            batch = adapt([spectrum], config)
        except SpectrumError:
            continue
        assert batch.failures and np.isnan(batch.features[0]).all(), relative


def test_the_append_overlaps_the_next_chunk() -> None:
    """A tree ingest hands a chunk to its appender and sends the workers the next one
    while the first is still being stored (the append is off the readers' path)."""
    release, stored = threading.Event(), []

    def store(chunk) -> None:  # type: ignore[no-untyped-def]
        assert release.wait(10)
        stored.append(chunk)

    with Appender(store, depth=2) as appender:
        appender.put("first")
        appender.put("second")  # returns although "first" is not stored yet
        assert stored == []
        release.set()
    assert stored == ["first", "second"]  # in order, all of them, by the end


def test_an_append_that_fails_fails_the_ingest() -> None:
    def store(chunk) -> None:  # type: ignore[no-untyped-def]
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"), Appender(store) as appender:
        appender.put("first")
