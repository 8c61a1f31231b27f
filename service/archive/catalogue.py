"""The archive's catalogue: one FITS binary table per collection, ground truth included.

``$home/archive/{collection}/catalogue.fits`` has one row per spectrum file; the
SSA and DataLink endpoints serve from it (through :func:`load_catalogue` and
:func:`resolve_file`). Columns (units in brackets):

Identification and access
    pubdid        publisher DID ``ivo://alvo.demo/{collection}?{obsid}``
    obsid         archive identifier (LAMOST OBSID number as text; CCD700 file stem)
    designation   ``Jhhmmss.ss+ddmmss.s`` from the position
    object        target name (``HD nnnnn`` for Ondrejov and shared stars, input-catalogue id)
    file          path of the FITS file relative to the collection folder
    format        MIME type, ``application/fits``
    size          file size [bytes]
    form          Ondrejov only: ``datalink`` (BINTABLE) or ``raw`` (IRAF 1-D image, ADU)
    medium        wavelength medium of the file: ``air`` (ondrejov) or ``vacuum`` (lamost)
    row           row number in the collection (what the seed makes)
Observation
    ra, dec       ICRS position [deg];  mjd  mid-exposure [d];  exptime [s]
    snr           signal-to-noise of the continuum at H-alpha (LAMOST: SN_R)
    sn_u .. sn_z  LAMOST only: per-band SNR as in the headers
    spec_start, spec_end  wavelengths of the first and last pixel with data [m]
                  (in the file's medium: SSA BAND)
    magnitude     V (Ondrejov) or r (LAMOST) [mag]
    planid, lmjd, spid, fiberid   LAMOST only: plate, local MJD, spectrograph, fibre
    shared        True for an observation of a star that both archives observed
Pipeline and ground truth
    pipeline_class, subclass   what an archive pipeline says (LAMOST ``STAR``/``Unknown``
                  and MK type; empty for Ondrejov)
    label         learning label: single-peak, double-peak, absorption, bad, unknown
                  (as an oracle would see it at this resolution)
    fine_class    physical class: absorption, single-peak, emission-in-absorption, p-cygni,
                  double-peak, shell, unknown, bad (see ``service.archive.classes``)
    teff [K], spectral_type, vsini [km/s], rv [km/s], ebv [mag]
    ew_halpha     equivalent width of H-alpha ±30 Å, noise-free [Å]; negative = emission
    emission_amplitude  peak height above the continuum [continuum units]
    peak_separation [km/s], vr_ratio (violet/red peak heights), central_depression
                  (share of the peak height), shell_depth [continuum units]; NaN when
                  the class has no such feature
    peaks_resolved  two emission peaks visible at this resolution
    artefact      for label 'bad': cosmic, dead, sky, zeros, nans or truncated; else ''
"""

from __future__ import annotations

from pathlib import Path

from astropy.table import Table

from service.reasons import AlvoError, Reason

CATALOGUE_FILE = "catalogue.fits"
DEMO_SEED = 1
#: Columns every collection's catalogue has (the SSA/DataLink contract).
REQUIRED_COLUMNS: tuple[str, ...] = (
    "pubdid", "obsid", "designation", "object", "ra", "dec", "mjd", "snr", "pipeline_class",
    "subclass", "label", "fine_class", "ew_halpha", "emission_amplitude", "peak_separation",
    "vr_ratio", "spec_start", "spec_end", "file", "format", "size", "magnitude", "medium",
)  # fmt: skip


def collection_root(home: str | Path, collection: str) -> Path:
    """``home/archive/{collection}``: where the files and the catalogue are."""
    return Path(home) / "archive" / collection


def catalogue_path(home: str | Path, collection: str) -> Path:
    return collection_root(home, collection) / CATALOGUE_FILE


def load_catalogue(home: str | Path, collection: str) -> Table:
    """The catalogue of ``collection`` under ``home`` as an astropy Table (strings as str).

    Raises AlvoError(UNKNOWN_COLLECTION) when the collection has no catalogue.
    """
    path = catalogue_path(home, collection)
    if not path.is_file():
        raise AlvoError(
            Reason.UNKNOWN_COLLECTION,
            f"no catalogue at {path}; run 'alvo archive generate --collection {collection}'",
        )
    table = Table.read(path, format="fits", character_as_bytes=False)
    return table


def resolve_file(home: str | Path, collection: str, relative: str) -> Path:
    """Absolute path of a catalogued file; refuses paths that leave the collection folder."""
    root = collection_root(home, collection).resolve()
    path = (root / relative).resolve()
    if root not in path.parents:
        raise AlvoError(
            Reason.PATH_OUTSIDE_COLLECTION, f"{relative!r} is not a file of {collection}"
        )
    return path
