"""Every way an input can be bad, with a name a user can look up.

Modelled on astropy.io.votable's numbered warnings: each reason has a stable
code (used in UWS error summaries, the per-spectrum failure table of an ingest
and in tests) and a sentence that tells the user what went wrong and what to do.
Add new reasons here, never ad hoc strings elsewhere.
"""

from __future__ import annotations

import enum


class Reason(enum.Enum):
    """A named, documented reason why a spectrum, upload or query was refused."""

    # --- files -------------------------------------------------------------
    CORRUPT_FITS = "The file is not readable FITS (truncated, or not FITS at all)."
    UNKNOWN_FORMAT = (
        "The file is valid FITS/VOTable but matches none of the known spectrum "
        "layouts (LAMOST DR1/DR2, Ondrejov CCD700 image or BINTABLE, IVOA Spectrum DM)."
    )
    WRONG_HDU_LAYOUT = "The HDU holding the spectrum has an unexpected shape or columns."
    MISSING_KEYWORD = "A header keyword needed to build the wavelength axis is missing."
    BAD_WAVELENGTH = "The wavelength axis is not finite and strictly increasing."
    BAD_FLUX = "The flux has no finite, non-zero values where they are needed."
    NO_HALPHA_COVERAGE = (
        "The spectrum does not cover the H-alpha window 6519-6732 A used by the classifier."
    )
    TOO_MANY_MASKED = "Too many pixels in the H-alpha window are masked or not finite."
    CORRUPT_VOTABLE = "The VOTable is not well-formed or not valid VOTable."
    UNREADABLE_FILE = "The spectrum file could not be opened (missing, a folder, or no permission)."
    SPECTRUM_TOO_LARGE = (
        "The spectrum file is larger than any spectrum the readers accept "
        "(256 MiB, VOTable 64 MiB, gzip expanding past 256 MiB)."
    )
    # --- network -----------------------------------------------------------
    SSA_TIMEOUT = "The SSA or DataLink service did not answer within the time limit."
    SSA_ERROR = "The SSA service answered with an error document."
    HTTP_ERROR = "Fetching the spectrum failed with an HTTP error status or a broken connection."
    RESPONSE_TOO_LARGE = "A remote spectrum or document exceeds the size the service accepts."
    DATALINK_NO_THIS = "The DataLink document has no #this link for the dataset."
    FETCH_TIMEOUT = (
        "A remote server (spectrum file, LABELS, UPLOAD URL) did not send its whole answer "
        "within the service's fetch deadline (ALVO_FETCH_TIMEOUT); try again later or "
        "give another URL."
    )
    FETCH_REFUSED = (
        "The service does not fetch from this URL: only http(s) to public addresses, the "
        "service itself, and what the operator allows (ALVO_FETCH_ALLOW)."
    )
    # --- requests ----------------------------------------------------------
    UPLOAD_TOO_LARGE = "The uploaded file exceeds the service's size limit."
    BAD_PARAMETER = "A request parameter is missing or has an invalid value."
    BAD_QUERY = "The ADQL query could not be parsed or refers to unknown tables/columns."
    QUERY_TIMEOUT = "The query ran longer than the service's time limit; narrow it (TOP, WHERE)."
    BAD_UPLOAD = "An UPLOAD table is missing, not a readable VOTable, or has unusable columns."
    UNKNOWN_COLLECTION = "The archive has no collection of this name (SSA/DataLink path)."
    UNKNOWN_DATASET = "No dataset with this publisher DID (DataLink ID, SSA PUBDID) exists."
    BAD_MODEL_FILE = (
        "The model file or its metadata sidecar (.keras.json) is missing or unreadable."
    )
    MODEL_ADAPTATION_MISMATCH = (
        "The model was trained on features made with another adaptation configuration; "
        "re-adapt the spectra with the model's configuration or train a new model."
    )
    INTERNAL_ERROR = (
        "The service failed on an unexpected error; its log holds the details (by job ID)."
    )
    NOT_YOURS = (
        "The dataset or campaign belongs to another user: others may read it, train on it "
        "and (if invited as oracles) label it, but only its owner may change it."
    )
    SIGN_IN_REQUIRED = (
        "The service runs with auth=header: anonymous callers may read but not change "
        "anything; go through the authenticating proxy."
    )
    # --- jobs --------------------------------------------------------------
    SERVICE_RESTARTED = (
        "The service stopped or restarted while the job was EXECUTING; its worker died "
        "with it and the job did not finish. Create the job again (an ingest re-run adds "
        "only the spectra still missing)."
    )
    WORKER_LOST = (
        "The process running the job died (killed, out of memory) without reporting; "
        "the job did not finish. Create it again, with a smaller CHUNK if memory ran out."
    )

    @property
    def code(self) -> str:
        return self.name

    @property
    def explanation(self) -> str:
        return str(self.value)


class AlvoError(Exception):
    """An error with a :class:`Reason`; ``str()`` is ``"CODE: detail"``."""

    def __init__(self, reason: Reason, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail or reason.explanation
        super().__init__(f"{reason.code}: {self.detail}")


class SpectrumError(AlvoError):
    """A spectrum could not be read or used; the reason names why."""
