"""The archive on disk: real formats read back unchanged, catalogue, idempotent demo."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from service.archive.catalogue import (
    REQUIRED_COLUMNS,
    catalogue_path,
    load_catalogue,
    resolve_file,
)
from service.archive.generate import ensure_demo_archive, generate_archive
from service.archive.instruments import LAMOST_COEFF0, LAMOST_COEFF1
from service.reasons import AlvoError
from service.spectra import read_spectrum

N = 300


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("archive-home")
    ensure_demo_archive(home, N)
    return home


@pytest.mark.parametrize("collection", ["ondrejov", "lamost"])
def test_catalogue_has_the_contract_columns(home, collection):
    table = load_catalogue(home, collection)
    assert len(table) == N
    assert set(REQUIRED_COLUMNS) <= set(table.colnames)
    assert len(set(table["pubdid"])) == N
    assert all(
        p == f"ivo://alvo.demo/{collection}?{o}"
        for p, o in zip(table["pubdid"], table["obsid"], strict=True)
    )
    assert (table["spec_start"] < table["spec_end"]).all()
    assert (table["spec_start"] > 3e-7).all() and (table["spec_end"] < 1e-6).all()
    assert set(table["format"]) == {"application/fits"}
    assert set(table["medium"]) == {"air" if collection == "ondrejov" else "vacuum"}
    sizes = [resolve_file(home, collection, f).stat().st_size for f in table["file"]]
    assert list(table["size"]) == sizes
    assert (table["dec"] >= -25).all() and (table["dec"] <= 90).all()


@pytest.mark.parametrize("collection", ["ondrejov", "lamost"])
def test_every_file_reads_back_as_its_catalogue_row(home, collection):
    table = load_catalogue(home, collection)
    for row in table:
        spectrum = read_spectrum(resolve_file(home, collection, row["file"]))
        assert spectrum.medium == row["medium"]
        assert spectrum.meta.ra == pytest.approx(row["ra"], abs=6e-4)  # raw: 0.1 s of RA
        assert spectrum.meta.dec == pytest.approx(row["dec"], abs=1e-4)
        lam = spectrum.wavelength[spectrum.good] * 1e-10
        assert lam[0] == pytest.approx(row["spec_start"], rel=1e-6)
        assert lam[-1] == pytest.approx(row["spec_end"], rel=1e-6)
        if collection == "lamost":
            assert spectrum.meta.pipeline_class.startswith(str(row["pipeline_class"]))
            assert spectrum.meta.snr == pytest.approx(row["sn_r"])
        else:
            assert spectrum.meta.obsid == row["obsid"]
            assert spectrum.meta.mjd == pytest.approx(row["mjd"], abs=1e-5)


def test_lamost_grid_is_exactly_coeff0_coeff1(home):
    table = load_catalogue(home, "lamost")
    with fits.open(resolve_file(home, "lamost", table["file"][0])) as hdus:
        header, data = hdus[0].header, hdus[0].data
        assert data.shape == (5, 3909)
        assert (header["COEFF0"], header["COEFF1"]) == (LAMOST_COEFF0, LAMOST_COEFF1)
        grid = 10 ** (header["COEFF0"] + header["COEFF1"] * np.arange(3909))
        assert np.array_equal(data[2], grid.astype(np.float32))
        assert header["VACUUM"] is True and header["DESIG"].startswith("LAMOST J")
        for key in ("RA", "DEC", "CLASS", "SUBCLASS", "SN_U", "SN_G", "SN_R", "SN_I", "SN_Z",
                    "MJD", "LMJD", "OBSID", "PLANID"):  # fmt: skip
            assert key in header, key
        hdus.verify("exception")


def test_ondrejov_files_are_air_in_both_forms(home):
    table = load_catalogue(home, "ondrejov")
    forms = set(table["form"])
    assert forms == {"raw", "datalink"}
    raw = table[table["form"] == "raw"][0]
    with fits.open(resolve_file(home, "ondrejov", raw["file"])) as hdus:
        header = hdus[0].header
        assert header["CDELT1"] == pytest.approx(0.2567, abs=1e-4)
        assert header["OBSERVAT"] == "ONDREJOV" and header["BUNIT"] == "ADU"
        assert np.median(hdus[0].data) > 1000  # ADU, not normalised
        hdus.verify("exception")
    table_row = table[table["form"] == "datalink"][0]
    with fits.open(resolve_file(home, "ondrejov", table_row["file"])) as hdus:
        header = hdus[1].header
        assert hdus[1].columns.names == ["spectral", "flux"]
        for key in ("DS_IDPUB", "OBJECT", "RA", "DEC", "TMID", "FLUX_CAL"):
            assert key in header, key
        assert 6260 < hdus[1].data["spectral"][0] < 6790  # air Å around H-alpha
        hdus.verify("exception")


def test_demo_archive_is_idempotent(home):
    path = catalogue_path(home, "lamost")
    before = path.stat().st_mtime_ns
    ensure_demo_archive(home, N)
    assert path.stat().st_mtime_ns == before


def test_archive_is_the_same_whatever_the_chunks_and_workers(tmp_path):
    one = generate_archive(tmp_path / "a", "lamost", 1100, seed=4, chunk_size=512)
    two = generate_archive(tmp_path / "b", "lamost", 1100, seed=4, chunk_size=1024, workers=2)
    first, second = (
        load_catalogue(tmp_path / "a", "lamost"),
        load_catalogue(tmp_path / "b", "lamost"),
    )
    assert list(first["file"]) == list(second["file"])
    for name in ("label", "snr", "ra", "size"):
        assert np.array_equal(first[name], second[name]), name
    for relative in first["file"][::97]:
        a = (one.parent / relative).read_bytes()
        b = (two.parent / relative).read_bytes()
        assert a == b


def test_paths_outside_the_collection_are_refused(home):
    with pytest.raises(AlvoError, match="PATH_OUTSIDE_COLLECTION"):
        resolve_file(home, "lamost", "../ondrejov/catalogue.fits")
    with pytest.raises(AlvoError, match="UNKNOWN_COLLECTION"):
        load_catalogue(home, "sdss")


def test_cli_generates_a_collection(tmp_path, capsys):
    from service.cli import main

    assert main(["archive", "generate", "--collection", "ondrejov", "--n", "40", "--seed", "2",
                 "--home", str(tmp_path)]) == 0  # fmt: skip
    assert len(load_catalogue(tmp_path, "ondrejov")) == 40
    assert "catalogue.fits" in capsys.readouterr().out
