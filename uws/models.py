"""What a UWS job is, and the rules of its phases -- no HTTP, no SQL.

The job record (:class:`JobRecord`) is what the store keeps and the routes
render. The phase rules (which transition is allowed from where, when a WAIT
blocks, which values of executionDuration and destruction are acceptable) live
here so that the store, the service and the HTTP layer all obey one copy of
them. Violations raise :class:`UWSError` subclasses, each carrying the HTTP
status a web layer should answer with (the class knows the number, not HTTP).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence

from vo_models.uws.types import ErrorType
from vo_models.uws.types import ExecutionPhase as Phase

__all__ = [
    "ACTIVE",
    "FINAL",
    "WAITABLE",
    "BadRequestError",
    "ConflictError",
    "ErrorInfo",
    "ErrorType",
    "ForbiddenError",
    "JobFilter",
    "JobParameters",
    "JobRecord",
    "NotFoundError",
    "PayloadTooLargeError",
    "Phase",
    "ResultRecord",
    "UWSError",
    "UnauthorizedError",
]

#: Phases in which the job may still change by itself (WAIT blocks in them, UWS 1.1 §2.2.3.1).
WAITABLE = frozenset({Phase.PENDING, Phase.QUEUED, Phase.EXECUTING})
#: Phases in which the job holds (or may soon hold) a worker.
ACTIVE = frozenset({Phase.QUEUED, Phase.EXECUTING, Phase.HELD, Phase.SUSPENDED})
#: Phases from which no transition except ARCHIVED (at destruction) is possible.
FINAL = frozenset({Phase.COMPLETED, Phase.ERROR, Phase.ABORTED, Phase.ARCHIVED})
#: Phases an ABORT request moves to ABORTED.
ABORTABLE = frozenset({Phase.PENDING, Phase.QUEUED, Phase.EXECUTING, Phase.HELD, Phase.SUSPENDED})
#: Phases a RUN request moves to QUEUED.
RUNNABLE = frozenset({Phase.PENDING, Phase.HELD})
#: Most jobs a LAST filter may ask for (the list is cut there anyway).
MAX_LAST = 100_000
#: Characters an XML 1.0 document cannot carry (control characters, U+FFFE/U+FFFF, lone
#: surrogates): a job whose RUNID or parameters held one could never be shown again.
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class UWSError(Exception):
    """A request the UWS rules refuse; ``status`` is the HTTP code to answer with.

    ``reason`` is the name a client can look up (the application's list of
    reasons: BAD_PARAMETER, BODY_TOO_LARGE...); the answer's text starts with it.
    """

    status = 400
    reason: str | None = None

    def __init__(self, message: str, reason: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.reason
        self.status = status or self.status

    @property
    def text(self) -> str:
        """What the client reads: ``"REASON: message"``."""
        return f"{self.reason}: {self.message}" if self.reason else self.message


class BadRequestError(UWSError):
    status = 400
    reason = "BAD_PARAMETER"


class UnauthorizedError(UWSError):
    status = 401


class ForbiddenError(UWSError):
    status = 403


class NotFoundError(UWSError):
    status = 404
    reason = "UNKNOWN_JOB"


class ConflictError(UWSError):
    """The request is well formed but the job's phase does not allow it."""

    status = 409
    reason = "JOB_PHASE_CONFLICT"


class PayloadTooLargeError(UWSError):
    status = 413
    reason = "BODY_TOO_LARGE"


@dataclasses.dataclass(frozen=True)
class ErrorInfo:
    """Why a job ended in ERROR: a one-line summary and an optional longer detail."""

    message: str
    detail: str | None = None
    type: ErrorType = ErrorType.FATAL


@dataclasses.dataclass(frozen=True)
class ResultRecord:
    """One result: ``location`` is a path relative to the job's workdir or an absolute URL."""

    id: str
    location: str
    mime_type: str | None = None
    size: int | None = None

    @property
    def is_url(self) -> bool:
        return "://" in self.location


class JobParameters(Mapping[str, str]):
    """Multi-valued parameters with case-insensitive names (UWS 1.1 §2.2.3, DALI §3.1).

    Names are kept lower-case; ``params["MAXREC"]`` is the first value given,
    :meth:`getall` all of them in the order they were posted.
    """

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        self._pairs: list[tuple[str, str]] = [(k.lower(), v) for k, v in pairs]

    def __getitem__(self, name: str) -> str:
        for key, value in self._pairs:
            if key == name.lower():
                return value
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(k for k, _ in self._pairs))

    def __len__(self) -> int:
        return len(dict.fromkeys(k for k, _ in self._pairs))

    def __repr__(self) -> str:
        return f"JobParameters({self._pairs!r})"

    def getall(self, name: str) -> list[str]:
        return [v for k, v in self._pairs if k == name.lower()]

    def pairs(self) -> list[tuple[str, str]]:
        return list(self._pairs)

    def replaced(self, update: JobParameters) -> JobParameters:
        """These parameters with every name present in ``update`` replaced by its values."""
        names = set(update)
        kept = [(k, v) for k, v in self._pairs if k not in names]
        return JobParameters(kept + update.pairs())


@dataclasses.dataclass(frozen=True)
class JobRecord:
    """Everything UWS says about one job (times are aware UTC datetimes)."""

    id: str
    job_list: str
    owner: str | None
    phase: Phase
    creation_time: dt.datetime
    run_id: str | None = None
    quote: dt.datetime | None = None
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    execution_duration: int = 0
    destruction: dt.datetime | None = None
    parameters: JobParameters = dataclasses.field(default_factory=JobParameters)
    uploads: Mapping[str, str] = dataclasses.field(default_factory=dict)
    results: Sequence[ResultRecord] = ()
    error: ErrorInfo | None = None
    progress: float | None = None
    progress_message: str | None = None
    #: When the job made its latest progress report (the service's clock).
    progress_time: dt.datetime | None = None
    worker: str | None = None
    #: The job this one was run again from (``POST {job}/again``), if any.
    parent: str | None = None


@dataclasses.dataclass(frozen=True)
class JobFilter:
    """The UWS 1.1 job-list filters (§2.2.2.1): PHASE (ORed), AFTER, LAST."""

    phases: frozenset[Phase] = frozenset()
    after: dt.datetime | None = None
    last: int | None = None

    @property
    def include_archived(self) -> bool:
        """ARCHIVED jobs are listed only when explicitly asked for."""
        return Phase.ARCHIVED in self.phases

    @classmethod
    def from_query(
        cls, phases: Sequence[str], after: Sequence[str], last: Sequence[str]
    ) -> JobFilter:
        parsed = frozenset(parse_phase(p) for p in phases)
        when = parse_time(after[-1], "AFTER") if after else None
        count = None
        if last:
            text = last[-1].strip()
            if not text.isdecimal() or not 0 < int(text[:12]) <= MAX_LAST or len(text) > 12:
                raise BadRequestError(
                    f"LAST must be a whole number of jobs from 1 to {MAX_LAST}, not {text[:40]!r}"
                )
            count = int(text)
        return cls(phases=parsed, after=when, last=count)


def check_xml_text(value: str, what: str) -> None:
    """Refuse text that the job document could not hold (a 400 at creation, not a 500 later)."""
    bad = NOT_XML.search(value)
    if bad is not None:
        raise BadRequestError(
            f"{what} holds the character U+{ord(bad.group()):04X}, which XML cannot carry; "
            "remove control characters",
            reason="BAD_REQUEST_BODY",
        )


def parse_phase(value: str) -> Phase:
    try:
        return Phase(value.strip().upper())
    except ValueError:
        raise BadRequestError(f"unknown UWS phase {value!r}") from None


def parse_time(value: str, what: str) -> dt.datetime:
    """An ISO 8601 instant; no zone means UTC (UWS times are UTC)."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        when = dt.datetime.fromisoformat(text)
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        return when.astimezone(dt.UTC)
    except (ValueError, OverflowError):  # OverflowError: year 9999 in a zone east of UTC
        raise BadRequestError(
            f"{what} must be an ISO 8601 time such as 2030-01-31T12:00:00Z"
        ) from None


def format_time(when: dt.datetime | None) -> str:
    """UWS text form of an instant: ISO 8601, millisecond precision, ``Z``."""
    if when is None:
        return ""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


_clock_lock = threading.Lock()
_last_now = dt.datetime.min.replace(tzinfo=dt.UTC)


def utcnow() -> dt.datetime:
    """The current UTC time, never earlier than a previous answer in this process.

    A virtual machine's wall clock can step back a few milliseconds while it is
    being slewed; creationTime <= startTime <= endTime must hold regardless.
    """
    global _last_now
    with _clock_lock:
        _last_now = max(_last_now, dt.datetime.now(dt.UTC))
        return _last_now


# -- transition rules -------------------------------------------------------------------------


def check_run(phase: Phase) -> bool:
    """True if PHASE=RUN moves the job to QUEUED; False if it is a harmless no-op."""
    if phase in RUNNABLE:
        return True
    if phase in (Phase.QUEUED, Phase.EXECUTING):
        return False
    raise ConflictError(f"the job is {phase.value}; it cannot be run again (create a new job)")


def check_abort(phase: Phase) -> bool:
    """True if PHASE=ABORT moves the job to ABORTED; False if it already is."""
    if phase in ABORTABLE:
        return True
    if phase == Phase.ABORTED:
        return False
    raise ConflictError(f"the job is {phase.value}; there is nothing to abort")


def check_parameters_editable(phase: Phase) -> None:
    if phase != Phase.PENDING:
        raise ConflictError(
            f"parameters can only be changed while the job is PENDING (it is {phase.value})"
        )


def check_settable(phase: Phase, what: str) -> None:
    if phase in FINAL:
        raise ConflictError(f"the job is {phase.value}; its {what} can no longer be changed")


def choose_execution_duration(value: str | int, maximum: int) -> int:
    """The executionDuration (s) the server grants for a requested one; 0 means unlimited.

    A request above ``maximum`` (or 0 when the server has a maximum) is lowered
    to the maximum, as UWS lets the server choose; a malformed or negative value
    is refused.
    """
    try:
        seconds = int(str(value).strip())
    except ValueError:
        raise BadRequestError(f"EXECUTIONDURATION must be whole seconds, not {value!r}") from None
    if seconds < 0:
        raise BadRequestError("EXECUTIONDURATION must be >= 0 (0 means unlimited)")
    if maximum > 0 and (seconds == 0 or seconds > maximum):
        return maximum
    return seconds


def choose_destruction(
    requested: dt.datetime, now: dt.datetime, maximum: dt.timedelta | None
) -> dt.datetime:
    """The destruction time granted for a requested one.

    A time in the past is refused (obeying it would destroy the job at once,
    Vollt #57); one beyond ``now + maximum`` is lowered to that limit.
    """
    if requested <= now:
        raise BadRequestError(
            f"DESTRUCTION {format_time(requested)} is in the past; give a future time"
        )
    if maximum is not None and requested > now + maximum:
        return now + maximum
    return requested


def should_wait(phase: Phase, wait_for: Phase | None) -> bool:
    """Whether a WAIT request blocks (UWS 1.1 §2.2.3.1).

    It blocks only in PENDING/QUEUED/EXECUTING, and, when the client named a
    PHASE, only while the job is still in that phase.
    """
    if phase not in WAITABLE:
        return False
    return wait_for is None or wait_for == phase


def wait_seconds(value: str, maximum: float) -> float:
    """Seconds a WAIT may block: ``-1`` (or more than the maximum) means the maximum."""
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if math.isnan(seconds):
        raise BadRequestError(f"WAIT must be a number of seconds or -1, not {value[:40]!r}")
    if seconds < 0 or seconds > maximum:
        return maximum
    return seconds
