"""IVOA Spectrum DM spectra as SSA services deliver them, written here and read back.

The VOTable follows GAVO DaCHS's SDM 1 output (``//soda#sdm_genData``): the SSA
columns become PARAMs whose ``ssa:`` utypes are rewritten to ``spec:Spectrum.``
ones, the position is a 2-element ``double`` in degrees, the spectral resolution is
in metres, the medium is in ``Char.SpectralAxis.Ucd``. The FITS form follows
DaCHS's ``makeSDMFITS``: lower-case ``TUTYPn`` and utypes mapped to keywords.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from astropy.io import fits

from service.reasons import Reason, SpectrumError
from service.spectra import check_halpha_coverage, read_spectrum

pytestmark = pytest.mark.filterwarnings("error")

WAVELENGTH = np.linspace(6400.0, 6800.0, 801)  # Å
FLUX = 1.0 + 0.5 * np.exp(-0.5 * ((WAVELENGTH - 6562.8) / 1.5) ** 2)
ERROR = np.full_like(FLUX, 0.02)


def dachs_votable(
    spectral_ucd: str = "em.wl;obs.atmos",
    specres_m: str = "1.2e-10",
    unit: str = "Angstrom",
    flux: np.ndarray = FLUX,
) -> bytes:
    scale = {"Angstrom": 1.0, "nm": 0.1, "m": 1e-10}[unit]
    rows = "\n".join(
        f"<TR><TD>{float(w) * scale!r}</TD><TD>{float(f)!r}</TD><TD>{float(e)!r}</TD></TR>"
        for w, f, e in zip(WAVELENGTH, flux, ERROR, strict=True)
    )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<VOTABLE version="1.3" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">
<RESOURCE type="results" utype="spec:Spectrum">
<INFO name="QUERY_STATUS" value="OK"/>
<TABLE utype="spec:Spectrum">
<PARAM arraysize="*" datatype="char" name="ssa_pubDID" ucd="meta.ref.ivoid"
  utype="spec:Spectrum.Curation.PublisherDID" value="ivo://example.org/ssa?demo/a1"/>
<PARAM arraysize="*" datatype="char" name="ssa_targname" ucd="meta.id;src"
  utype="spec:Spectrum.Target.Name" value="BT CMi"/>
<PARAM arraysize="2" datatype="double" name="ssa_location" ucd="pos.eq" unit="deg"
  utype="spec:Spectrum.Char.SpatialAxis.Coverage.Location.Value"
  value="119.2666125 2.9508333"/>
<PARAM datatype="double" name="ssa_dateObs" ucd="time.epoch" unit="d"
  utype="spec:Spectrum.Char.TimeAxis.Coverage.Location.Value" value="56699.994"/>
<PARAM datatype="double" name="ssa_specres" ucd="spect.resolution;em.wl" unit="m"
  utype="spec:Spectrum.Char.SpectralAxis.Resolution" value="{specres_m}"/>
<PARAM arraysize="*" datatype="char" name="ssa_spectralucd" ucd="meta.ucd"
  utype="spec:Spectrum.Char.SpectralAxis.Ucd" value="{spectral_ucd}"/>
<PARAM arraysize="*" datatype="char" name="ssa_collection"
  utype="spec:Spectrum.DataID.Collection" value="demo"/>
<PARAM arraysize="*" datatype="char" name="ssa_instrument" ucd="meta.id;instr"
  utype="spec:Spectrum.DataID.Instrument" value="CCD700"/>
<PARAM datatype="float" name="ssa_snr" ucd="stat.snr"
  utype="spec:Spectrum.Derived.SNR" value="55.5"/>
<FIELD datatype="double" name="spectral" ucd="{spectral_ucd}" unit="{unit}"
  utype="spec:Spectrum.Data.SpectralAxis.Value"/>
<FIELD datatype="double" name="flux" ucd="phot.flux.density;em.wl"
  utype="spec:Spectrum.Data.FluxAxis.Value"/>
<FIELD datatype="double" name="flux_error" ucd="stat.error;phot.flux.density;em.wl"
  utype="spec:Spectrum.Data.FluxAxis.Accuracy.StatError"/>
<DATA><TABLEDATA>
{rows}
</TABLEDATA></DATA>
</TABLE>
</RESOURCE>
</VOTABLE>
""".encode()


def dachs_fits(**extra: object) -> bytes:
    table = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="spectral", format="D", unit="Angstrom", array=WAVELENGTH),
            fits.Column(name="flux", format="D", array=FLUX),
            fits.Column(name="flux_error", format="D", array=ERROR),
        ]
    )
    header = table.header
    header["TUTYP1"] = "spec:spectrum.data.spectralaxis.value"
    header["TUTYP2"] = "spec:spectrum.data.fluxaxis.value"
    header["TUTYP3"] = "spec:spectrum.data.fluxaxis.accuracy.staterror"
    header["DS_IDPUB"] = "ivo://example.org/ssa?demo/f1"
    header["OBJECT"] = "gamma Cas"
    header["RA"] = 14.1772
    header["DEC"] = 60.7167
    header["TMID"] = (55887.79, "[d]")
    header["SPEC_RES"] = (3.6e-11, "[m]")
    header["COLLECT1"] = "demo"
    for key, value in extra.items():
        header[key] = value
    out = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(out)
    return out.getvalue()


def test_dachs_sdm_votable_reads_with_its_metadata() -> None:
    spectrum = read_spectrum(dachs_votable())
    meta = spectrum.meta
    np.testing.assert_allclose(spectrum.wavelength, WAVELENGTH)
    np.testing.assert_allclose(spectrum.flux, FLUX)
    np.testing.assert_allclose(spectrum.ivar, 1 / ERROR**2)
    assert spectrum.medium == "air" and meta.extra["medium_source"] == "ucd"
    assert spectrum.resolving_power == pytest.approx(np.median(WAVELENGTH) / 1.2)
    assert meta.pubdid == "ivo://example.org/ssa?demo/a1" and meta.object == "BT CMi"
    assert (meta.ra, meta.dec) == (119.2666125, 2.9508333)
    assert meta.mjd == 56699.994 and meta.snr == pytest.approx(55.5)
    assert meta.collection == "demo" and meta.instrument == "CCD700"
    check_halpha_coverage(spectrum)


@pytest.mark.parametrize("unit", ["nm", "m"])
def test_votable_spectral_units_are_converted_to_angstrom(unit: str) -> None:
    spectrum = read_spectrum(dachs_votable(unit=unit))
    np.testing.assert_allclose(spectrum.wavelength, WAVELENGTH, rtol=1e-12)


def test_votable_without_medium_hint_defaults_to_vacuum() -> None:
    spectrum = read_spectrum(dachs_votable(spectral_ucd="em.wl"))
    assert spectrum.medium == "vacuum" and spectrum.meta.extra["medium_source"] == "default"


def test_dachs_sdm_fits_reads_with_its_metadata() -> None:
    spectrum = read_spectrum(dachs_fits())
    meta = spectrum.meta
    np.testing.assert_array_equal(spectrum.wavelength, WAVELENGTH)
    np.testing.assert_array_equal(spectrum.flux, FLUX)
    assert spectrum.medium == "vacuum" and meta.extra["medium_source"] == "default"
    assert spectrum.resolving_power == pytest.approx(np.median(WAVELENGTH) / 0.36)
    assert meta.pubdid == "ivo://example.org/ssa?demo/f1" and meta.object == "gamma Cas"
    assert (meta.ra, meta.dec, meta.mjd) == (14.1772, 60.7167, 55887.79)
    assert meta.collection == "demo"


def test_sdm_fits_medium_and_resolving_power_keywords() -> None:
    spectrum = read_spectrum(dachs_fits(AIRORVAC="air", SPEC_RP=5000.0))
    assert spectrum.medium == "air" and spectrum.resolving_power == 5000.0
    assert read_spectrum(dachs_fits(VACUUM=False)).medium == "air"


def test_sdm_without_resolution_uses_the_nyquist_default() -> None:
    data = dachs_votable().replace(b'name="ssa_specres"', b'name="other"')
    data = data.replace(b"Spectrum.Char.SpectralAxis.Resolution", b"Spectrum.Other")
    spectrum = read_spectrum(data)
    assert spectrum.meta.extra["resolving_power_source"] == "sampling"
    assert spectrum.resolving_power == pytest.approx(np.median(WAVELENGTH) / (2 * 0.5))


def test_hostile_and_broken_votables() -> None:
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE VOTABLE [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><VOTABLE>&b;</VOTABLE>'
    )
    external = (
        b'<?xml version="1.0"?><!DOCTYPE VOTABLE [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b"<VOTABLE>&x;</VOTABLE>"
    )
    for data, reason in [
        (laughs, Reason.CORRUPT_VOTABLE),
        (external, Reason.CORRUPT_VOTABLE),
        (dachs_votable()[:-300], Reason.CORRUPT_VOTABLE),  # cut mid-document
        (b"<VOTABLE version='1.3'><RESOURCE/></VOTABLE>", Reason.WRONG_HDU_LAYOUT),
    ]:
        with pytest.raises(SpectrumError) as caught:
            read_spectrum(data)
        assert caught.value.reason is reason, data[:60]


def test_votable_with_nan_or_zero_flux_is_refused() -> None:
    for flux in (np.full_like(FLUX, np.nan), np.zeros_like(FLUX)):
        with pytest.raises(SpectrumError) as caught:
            read_spectrum(dachs_votable(flux=flux))
        assert caught.value.reason is Reason.BAD_FLUX
