"""Spectra of both archives in one type; readers chosen by content, not file name.

``read_spectrum(path | bytes | file)`` reads one file (LAMOST DR1/DR2, Ondrejov
CCD700 raw image or DataLink BINTABLE, IVOA Spectrum DM FITS or VOTable);
``check_halpha_coverage(spectrum)`` refuses one that misses 6519-6732 Å;
``read_halpha_windows(paths)`` is the bulk path that reads only the H-alpha slice.
See docs/readers.md.
"""

from service.spectra.bulk import HalphaWindows, WindowGroup, read_halpha_windows
from service.spectra.checks import check_halpha_coverage
from service.spectra.read import read_spectrum
from service.spectra.spectrum import Medium, Spectrum, SpectrumMeta

__all__ = [
    "HalphaWindows",
    "Medium",
    "Spectrum",
    "SpectrumMeta",
    "WindowGroup",
    "check_halpha_coverage",
    "read_halpha_windows",
    "read_spectrum",
]
