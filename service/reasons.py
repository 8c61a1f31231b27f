"""Every way an input can be bad, with a name a user can look up.

Modelled on astropy.io.votable's numbered warnings: each reason has a stable
code (used in UWS error summaries, the per-spectrum failure table of an ingest
and in tests) and a sentence that tells the user what went wrong and what to do.
Add new reasons here, never ad hoc strings elsewhere.

A reason's value is its explanation, or ``(explanation, HTTP status)`` when a
request refused for it should not be answered with 400: 404 for something
unknown, 403 for something not the caller's, 409 for a conflict with what
exists, 413 for a body too large, 502/504 when an upstream service failed.
:func:`service.http.errors` renders every :class:`AlvoError` with that status,
so handlers raise and never pick numbers themselves.
"""

from __future__ import annotations

import enum

#: HTTP status of a request refused for a reason that does not name one.
DEFAULT_HTTP_STATUS = 400


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
    SSA_TIMEOUT = ("The SSA or DataLink service did not answer within the time limit.", 504)
    SSA_ERROR = ("The SSA service answered with an error document.", 502)
    SSA_TOO_DENSE = (
        "An SSA sky tile at the smallest tile size still overflowed the service's MAXREC: "
        "spectra beyond its first page were not listed (narrow BAND/TIME, or ask the archive).",
        502,
    )
    HTTP_ERROR = (
        "Fetching the spectrum failed with an HTTP error status or a broken connection.",
        502,
    )
    RESPONSE_TOO_LARGE = (
        "A remote spectrum or document exceeds the size the service accepts.",
        502,
    )
    DATALINK_NO_THIS = "The DataLink document has no #this link for the dataset."
    FETCH_TIMEOUT = (
        "A remote server (spectrum file, LABELS, UPLOAD URL) did not send its whole answer "
        "within the service's fetch deadline (ALVO_FETCH_TIMEOUT); try again later or "
        "give another URL.",
        504,
    )
    FETCH_REFUSED = (
        "The service does not fetch from this URL: only http(s) to public addresses, the "
        "service itself, and what the operator allows (ALVO_FETCH_ALLOW)."
    )
    # --- requests ----------------------------------------------------------
    UPLOAD_TOO_LARGE = ("The uploaded file exceeds the service's size limit.", 413)
    BAD_PARAMETER = "A request parameter is missing or has an invalid value."
    BAD_QUERY = "The ADQL query could not be parsed or refers to unknown tables/columns."
    QUERY_TIMEOUT = "The query ran longer than the service's time limit; narrow it (TOP, WHERE)."
    BAD_UPLOAD = "An UPLOAD table is missing, not a readable VOTable, or has unusable columns."
    UNKNOWN_COLLECTION = ("The archive has no collection of this name (SSA/DataLink path).", 404)
    UNKNOWN_DATASET = (
        "No dataset with this publisher DID (DataLink ID, SSA PUBDID) exists.",
        404,
    )
    BAD_MODEL_FILE = (
        "The model file or its metadata sidecar (.keras.json) is missing or unreadable."
    )
    UNKNOWN_MODEL = (
        "No trained model has this MODEL_ID; the alvo.model table (over TAP) lists the "
        "models that train and iterate jobs made.",
        404,
    )
    UNLABELLED_DATASET = (
        "The dataset has no spectrum labelled with a class (single-peak, double-peak or "
        "absorption) to train on; ingest it with LABELS, or let a campaign (iterate) train "
        "on the oracle's labels."
    )
    MODEL_ADAPTATION_MISMATCH = (
        "The model was trained on features made with another adaptation configuration; "
        "re-adapt the spectra with the model's configuration or train a new model."
    )
    NOT_YOURS = (
        "The dataset or campaign belongs to another user: others may read it, train on it "
        "and (if invited as oracles) label it, but only its owner may change it.",
        403,
    )
    SIGN_IN_REQUIRED = (
        "The service runs with auth=header: anonymous callers may read but not change "
        "anything; go through the authenticating proxy.",
        401,
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
    # --- the service's own requests (campaigns, labels, jobs) ----------------------------
    BODY_TOO_LARGE = (
        "The request body, or one form field of it, exceeds the service's size limit; "
        "send less at once (split a label file, upload a large table as a file part).",
        413,
    )
    REQUEST_HEAD_TOO_LARGE = (
        "The request line and headers together exceed the service's limit "
        "(ALVO_MAX_HEAD_BYTES); send fewer or shorter headers, parameters in a POST body.",
        431,
    )
    URL_TOO_LONG = (
        "The request line (the URL with its query) alone exceeds the service's head limit "
        "(ALVO_MAX_HEAD_BYTES); send the parameters in a POST body instead.",
        414,
    )
    BAD_REQUEST_BODY = (
        "The request body is not what the Content-Type says (broken multipart, JSON "
        "or form encoding), or holds characters XML cannot carry."
    )
    BAD_LABEL = (
        "A label is malformed: each needs a 'label' verdict and a 'pubdid' (or integer "
        "'spectrum_id'), as text and numbers, not lists, objects or null."
    )
    BAD_LABEL_FILE = (
        "The label upload is not a readable VOTable or CSV with an identifier and a "
        "'label' column (a FITS or binary body, a field over the size limit...)."
    )
    UNKNOWN_CAMPAIGN = ("No campaign of this name exists; create it first (POST /campaigns).", 404)
    UNKNOWN_ITERATION = ("The campaign has no iteration of this number yet; run /iterate.", 404)
    ITERATION_RUNNING = (
        "An iterate job of this campaign is queued or executing already; follow that job "
        "(its URL is in the message) or abort it before starting another.",
        409,
    )
    UNKNOWN_SPECTRUM = (
        "No ingested spectrum has this identifier (publisher DID, or alvo spectrum_id).",
        404,
    )
    NO_SIMILARITY_INDEX = (
        "The campaign has no 'more like this' index yet (an iterate job builds one); run /iterate.",
        409,
    )
    UNKNOWN_DATASET_NAME = (
        "No alvo dataset (a set of ingested spectra) of this name exists; ingest it first.",
        404,
    )
    NAME_IN_USE = ("A campaign or dataset of this name exists already; choose another.", 409)
    BAD_BACKUP = (
        "The file is not a campaign backup 'alvo campaign export' wrote (a gzipped tar of "
        "campaign.xml, spectra.xml, labels.xml, iterations.xml and batches.xml VOTables), "
        "or one of its tables is unreadable or lacks a column."
    )
    BACKUP_DATASETS_MISSING = (
        "The backup's labels are on spectra this service has not ingested: a dataset of "
        "the backup is missing, or lacks some of its spectra (matched by dataset name and "
        "publisher DID). Ingest the same spectra under the same dataset names, then import "
        "again; nothing was stored.",
        409,
    )
    PATH_OUTSIDE_COLLECTION = (
        "The file path leaves the collection's folder ('..', an absolute path or a link).",
        404,
    )
    UNKNOWN_FILE = ("The collection or archive root has no spectrum file at this path.", 404)
    OUTSIDE_ARCHIVE_ROOT = (
        "The service reads and serves local files only under an operator's archive root "
        "(a folder given to 'alvo ingest tree' or listed in ALVO_ARCHIVE_ROOTS); this one "
        "is not under one, leaves it ('..', an absolute path, a link pointing out) or is "
        "not a regular spectrum file. A user-given file:// URL is never read.",
        404,
    )
    UNKNOWN_JOB = ("No UWS job of this id exists in this job list (or it was destroyed).", 404)
    JOB_PHASE_CONFLICT = (
        "The job's phase does not allow this (parameters of a job that ran, RUN of a "
        "finished job...); create a new job instead.",
        409,
    )
    DATABASE_BUSY = (
        "Another job is writing a large result (a pool's predictions: about 50 s at 4 "
        "million spectra on SQLite) and held the database past the wait; nothing was "
        "stored. Send the same request again after the Retry-After seconds.",
        503,
    )
    DATABASE_UNAVAILABLE = (
        "The database does not answer (PostgreSQL restarting or stopped, the network to "
        "it down); nothing was stored. The service reconnects by itself when it is back: "
        "send the same request again after the Retry-After seconds.",
        503,
    )
    DISK_FULL = (
        "The disk that holds the service's files or its database is full; nothing of "
        "this request or job was stored, and what was stored before (labels above all) "
        "is intact. The operator frees space (docs/operations.md); then send the request "
        "or run the job again.",
        507,
    )
    INTERNAL_ERROR = (
        "The service failed on something it did not foresee; the operator's log has the "
        "details (by job ID for a job). Please report it with the request that caused it.",
        500,
    )
    COMMENT_TOO_LONG = (
        "A label's comment is longer than the label table keeps (MAX_COMMENT "
        "characters, docs/labelling.md); shorten it, or put the long text elsewhere and "
        "link it.",
        413,
    )
    DEAD_PIXELS = (
        "A run of identical flux values (a dead or saturated detector stretch, a pipeline "
        "fill value) in the H-alpha window is wider than adaptation bridges (6 A): the "
        "classifier would read the flat stretch as a line. Shorter runs and cosmic-ray "
        "spikes are masked and the spectrum kept, flagged in spectrum.quality_flag."
    )
    SKY_TOOL_FAILED = (
        "A build step of the sky panel failed: fetching Aladin Lite with npm (offline, or "
        "not the pinned file) or making the demo archive's sky with Hipsgen (Debian's "
        "aladin and java). The page works without it and says so; the detail says what "
        "the tool answered.",
        503,
    )

    @property
    def code(self) -> str:
        return self.name

    @property
    def explanation(self) -> str:
        return str(self.value[0] if isinstance(self.value, tuple) else self.value)

    @property
    def http_status(self) -> int:
        """The HTTP status a request refused for this reason is answered with."""
        return int(self.value[1]) if isinstance(self.value, tuple) else DEFAULT_HTTP_STATUS


class AlvoError(Exception):
    """An error with a :class:`Reason`; ``str()`` is ``"CODE: detail"``.

    ``detail`` says what to do about it; ``status`` is the HTTP status a web
    request refused with it is answered with (the reason's, unless given).
    """

    def __init__(self, reason: Reason, detail: str = "", status: int | None = None) -> None:
        self.reason = reason
        self.detail = detail or reason.explanation
        self.status = reason.http_status if status is None else status
        super().__init__(f"{reason.code}: {self.detail}")


class SpectrumError(AlvoError):
    """A spectrum could not be read or used; the reason names why."""
