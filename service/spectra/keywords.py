"""Header values as the readers need them: typed, unit-converted, and never a traceback.

Archive headers are untidy (the Ondrejov raw frames give RA as ``'21:57:18.2'``,
LAMOST as degrees; empty values such as ``GRATCWAV=   /``), so every reader reads
keywords through these helpers. ``header`` is anything with ``.get`` (an astropy
``Header`` or the plain dict of :mod:`service.spectra.fitsheader`).
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping
from typing import Any

from service.reasons import Reason, SpectrumError

MJD_ZERO = datetime.datetime(1858, 11, 17)


def get(header: Mapping[str, Any], key: str) -> Any:
    """A keyword's value; None when absent or unparsable (astropy raises VerifyError)."""
    try:
        return header.get(key)
    except Exception:  # astropy.io.fits.verify.VerifyError on a malformed card
        return None


def string(header: Mapping[str, Any], key: str, default: str = "") -> str:
    """A keyword as a stripped string ("" when absent or empty)."""
    value = get(header, key)
    if value is None or isinstance(value, bool):
        return default
    return str(value).strip() or default


def number(header: Mapping[str, Any], key: str) -> float:
    """A keyword as a float, NaN when absent or not a number."""
    value = get(header, key)
    if isinstance(value, bool) or value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def required(header: Mapping[str, Any], key: str, why: str) -> float:
    """A numeric keyword the wavelength axis cannot do without (``MISSING_KEYWORD``)."""
    value = number(header, key)
    if not math.isfinite(value):
        raise SpectrumError(Reason.MISSING_KEYWORD, f"{key} missing or not a number ({why})")
    return value


def angle(value: Any, hours: bool) -> float:
    """Degrees from a number of degrees or a sexagesimal string (hours if ``hours``)."""
    if value is None or isinstance(value, bool):
        return math.nan
    if isinstance(value, int | float):
        return float(value)
    parts = str(value).strip().replace(":", " ").split()
    if not parts:
        return math.nan
    try:
        if len(parts) == 1:
            return float(parts[0])
        sign = -1.0 if parts[0].startswith("-") else 1.0
        magnitude = sum(abs(float(p)) / 60.0**i for i, p in enumerate(parts[:3]))
    except ValueError:
        return math.nan
    return sign * magnitude * (15.0 if hours else 1.0)


def mjd_from_iso(date: str, time: str = "") -> float:
    """MJD (UTC) of an ISO date (``2011-12-20T20:01:42.62``), optionally with a separate time."""
    stamp = date.strip()
    if time and "T" not in stamp:
        stamp = f"{stamp}T{time.strip()}"
    try:
        moment = datetime.datetime.fromisoformat(stamp)
    except ValueError:
        return math.nan
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.UTC).replace(tzinfo=None)
    return (moment - MJD_ZERO).total_seconds() / 86400.0
