"""alvo: active deep learning for rare objects in spectral archives, as a VO service.

The numerical core (:mod:`service.spectra`, :mod:`service.adapt`,
:mod:`service.learn`) imports no web framework and no database; the VO
endpoints (:mod:`service.vo`), job types (:mod:`service.jobs`) and pages
(:mod:`service.web`) call into it.
"""

__version__ = "0.1.0"
