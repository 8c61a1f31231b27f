"""Spectra of both archives in one type; readers chosen by content, not file name."""

from service.spectra.spectrum import Medium, Spectrum, SpectrumMeta

__all__ = ["Medium", "Spectrum", "SpectrumMeta"]
