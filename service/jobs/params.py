"""Typed access to a job's parameters, with the errors UWS clients should see.

Job parameters follow DALI conventions (case-insensitive names, empty value =
not given), so they are read through :class:`service.vo.dali.DaliParams` and
its parsers; the same checks run when a job is created (a 400 from the
validator) and when it runs (a clean UWS error), never a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from service.reasons import AlvoError, Reason
from service.settings import Settings
from service.store.datasets import Datasets
from service.store.models import model_path
from service.vo.dali import DaliParams, bad_parameter
from uws.models import BadRequestError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class JobParams(DaliParams):
    """Parameters of one alvo job."""

    def required(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise bad_parameter(name.upper(), "is required")
        return value

    def identifier(self, name: str, default: str | None = None) -> str:
        """A dataset/campaign/model name: letters, digits, ``_ . -``; at most 64."""
        value = self.get(name, default) if default is not None else self.required(name)
        assert value is not None
        if not NAME.match(value):
            raise bad_parameter(
                name.upper(), f"{value!r}: use letters, digits, '_', '.', '-' (at most 64)"
            )
        return value

    def number(
        self, name: str, default: float, lo: float = float("-inf"), hi: float = float("inf")
    ) -> float:
        text = self.get(name)
        if text is None:
            return default
        try:
            value = float(text)
        except ValueError:
            raise bad_parameter(name.upper(), f"{text!r} is not a number") from None
        if not lo <= value <= hi:
            raise bad_parameter(name.upper(), f"{value} is outside [{lo}, {hi}]")
        return value

    def integer(self, name: str, default: int, lo: int = 0, hi: int = 2**31 - 1) -> int:
        text = self.get(name)
        if text is None:
            return default
        try:
            value = int(text)
        except ValueError:
            raise bad_parameter(name.upper(), f"{text!r} is not an integer") from None
        if not lo <= value <= hi:
            raise bad_parameter(name.upper(), f"{value} is outside [{lo}, {hi}]")
        return value

    def choice(self, name: str, choices: Iterable[str], default: str) -> str:
        options = list(choices)
        value = (self.get(name) or default).lower()
        if value not in options:
            raise bad_parameter(name.upper(), f"{value!r} is not one of {', '.join(options)}")
        return value

    def flag(self, name: str, default: bool = False) -> bool:
        return self.choice(
            name, ["true", "false", "yes", "no", "1", "0"], str(default).lower()
        ) in (
            "true",
            "yes",
            "1",
        )


def validator(*checks: Callable[[JobParams], object]) -> Callable[[object], None]:
    """A UWS job-list validator running each check on the parameters.

    Every refusal is a 400 at job creation (UWS has no other status for a bad
    job), its text ``"REASON: detail"`` -- an unknown dataset included, which
    over plain HTTP would be a 404 -- but for a conflict with another job
    (``ITERATION_RUNNING``), which stays a 409.
    """

    def validate(parameters: object) -> None:
        params = JobParams(parameters.pairs())  # type: ignore[attr-defined]
        try:
            for check in checks:
                check(params)
        except AlvoError as error:
            # a conflict with another job (409) stays one; any other refusal is a 400
            status = 409 if error.status == 409 else None
            raise BadRequestError(error.detail, reason=error.reason.code, status=status) from None

    return validate


def existing_datasets(settings: Settings, *names: str) -> Callable[[JobParams], None]:
    """A check that the datasets named by parameters ``names`` exist (when given)."""

    def check(params: JobParams) -> None:
        given = [(name, params.get(name)) for name in names if params.get(name)]
        if given:
            datasets = Datasets(settings)
            for name, value in given:
                if datasets.get(str(value)) is None:
                    raise AlvoError(
                        Reason.UNKNOWN_DATASET_NAME,
                        f"{name}: no dataset named {value!r}; ingest it first (/ingest)",
                    )

    return check


def existing_model(settings: Settings) -> Callable[[JobParams], None]:
    """A check that ``MODEL_ID`` names a trained model (a classify job would fail later)."""

    def check(params: JobParams) -> None:
        model_id = params.integer("MODEL_ID", 0, 1, 2**31 - 1)
        if model_id and model_path(Datasets(settings).engine, model_id) is None:
            raise AlvoError(
                Reason.UNKNOWN_MODEL,
                f"MODEL_ID: no model with MODEL_ID={model_id}; the alvo.model table (TAP) "
                "lists the models train and iterate jobs made",
            )

    return check


def labelled_dataset(settings: Settings, name: str) -> Callable[[JobParams], None]:
    """A check that dataset parameter ``name`` has class labels to train on."""

    def check(params: JobParams) -> None:
        value = params.get(name)
        datasets = Datasets(settings)
        dataset = datasets.get(str(value)) if value else None
        if dataset is not None and not datasets.has_class_labels(dataset):
            raise AlvoError(
                Reason.UNLABELLED_DATASET,
                f"{name}: dataset {value!r} has no class labels to train on; ingest it "
                "with LABELS, or run a campaign (/iterate) on the oracle's labels",
            )

    return check
