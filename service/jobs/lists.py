"""The four job lists of alvo (``/ingest``, ``/train``, ``/classify``, ``/iterate``) and
the UWS service that serves them with the application's settings.

Each job list names its runner (``service.jobs.<type>:run``; ingest's is its served
door, ``service.jobs.ingest.served:run``), the validator that refuses bad parameters
when a job is created (a 400, not a failed job) and, where a job changes something
that has an owner, the check that its owner may.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from service.jobs import classify, iterate, train
from service.jobs.ingest import served
from service.jobs.params import (
    JobParams,
    existing_datasets,
    existing_model,
    labelled_dataset,
    validator,
)
from service.reasons import AlvoError, Reason
from service.settings import Settings
from service.store.campaigns import Campaigns
from service.store.datasets import Datasets
from service.store.ownership import may_change, refusal
from uws.auth import HeaderAuthenticator, anonymous
from uws.executors import make_executor
from uws.joblist import JobList
from uws.models import ForbiddenError, JobParameters, Phase
from uws.service import UWSService
from uws.store import JobStore


def job_lists(settings: Settings) -> list[JobList]:
    authorize = _authorizers(settings)
    return [
        JobList(
            "ingest",
            "service.jobs.ingest.served:run",
            validator=served.check,
            authorize=authorize["ingest"],
            max_execution_duration=24 * 3600,
            max_upload_bytes=settings.max_upload_bytes,
            description="Fill a named dataset from SSA, DataLink, access URLs or an upload.",
        ),
        JobList(
            "train",
            "service.jobs.train:run",
            validator=validator(
                train.TrainRequest.from_params,
                existing_datasets(settings, "DATASET"),
                labelled_dataset(settings, "DATASET"),
            ),
            authorize=authorize["train"],
            max_execution_duration=24 * 3600,
            description="Train a CNN on a labelled dataset; confusion matrix on a held-out part.",
        ),
        JobList(
            "classify",
            "service.jobs.classify:run",
            validator=validator(
                classify.ClassifyRequest.from_params,
                existing_datasets(settings, "DATASET"),
                existing_model(settings),
            ),
            authorize=authorize["classify"],
            max_execution_duration=24 * 3600,
            description="Classify a dataset with a trained model; candidate list as VOTable.",
        ),
        JobList(
            "iterate",
            "service.jobs.iterate:run",
            validator=validator(
                iterate.IterateRequest.from_params,
                existing_datasets(settings, "SOURCE", "TARGET"),
                _campaign_or_its_datasets(settings),
                _one_iteration_at_a_time(settings),
            ),
            authorize=authorize["iterate"],
            max_execution_duration=24 * 3600,
            description="One active-learning step: train, classify the pool, pick the query batch.",
        ),
    ]


def _authorizers(settings: Settings) -> dict[str, Callable[[str | None, JobParameters], None]]:
    """Per job list, the check run when a job is created: may its owner change what it names?

    Refusing at creation (HTTP 403) beats a job that fails later; the runners
    check again, as the dataset or campaign may be created meanwhile.
    """

    def ingest(owner: str | None, parameters: JobParameters) -> None:
        name = parameters.get("DATASET") or ""
        dataset = Datasets(settings).get(name) if name else None
        if dataset is not None and not may_change(dataset.owner, owner):
            raise ForbiddenError(
                str(refusal("dataset", name, dataset.owner, "ingest into a DATASET of your own"))
            )

    def readable(owner: str | None, parameters: JobParameters, *names: str) -> None:
        """A private dataset not the job owner's may not be trained on or searched."""
        datasets = Datasets(settings)
        for key in names:
            for name in parameters.getall(key):
                dataset = datasets.get(name)
                if dataset is not None and not dataset.may_read(owner):
                    raise ForbiddenError(
                        str(refusal("dataset", name, dataset.owner, "ask its owner to invite you"))
                    )

    def iterate(owner: str | None, parameters: JobParameters) -> None:
        readable(owner, parameters, "SOURCE", "TARGET")
        name = parameters.get("CAMPAIGN") or ""
        campaign = Campaigns(settings).get(name) if name else None
        if campaign is not None and not may_change(campaign.owner, owner):
            raise ForbiddenError(
                str(refusal("campaign", name, campaign.owner, "only its owner runs iterations"))
            )

    return {
        "ingest": ingest,
        "iterate": iterate,
        "train": lambda owner, parameters: readable(owner, parameters, "DATASET"),
        "classify": lambda owner, parameters: readable(owner, parameters, "DATASET"),
    }


def _campaign_or_its_datasets(settings: Settings) -> Callable[[JobParams], None]:
    """An iterate job names a campaign that exists, or SOURCE and TARGET to create it."""

    def check(params: JobParams) -> None:
        name = params.get("CAMPAIGN")
        if params.get("SOURCE") and params.get("TARGET"):
            return
        if name and Campaigns(settings).get(name) is None:
            raise AlvoError(
                Reason.UNKNOWN_CAMPAIGN,
                f"no campaign named {name!r}: give SOURCE and TARGET datasets to create it",
            )

    return check


def _one_iteration_at_a_time(settings: Settings) -> Callable[[JobParams], None]:
    """No second iterate job for a campaign while one is QUEUED or EXECUTING.

    Two would train on the same labels and race to write the same iteration; the
    refusal (409 ``ITERATION_RUNNING``) names the running job, so a page or a
    script can follow it instead. Checked when a job is created (and when its
    parameters change), with the job store the service itself uses.
    """
    stores: list[JobStore] = []  # one engine per job list, made on first use

    def check(params: JobParams) -> None:
        name = params.get("CAMPAIGN")
        if not name:
            return
        if not stores:
            stores.append(JobStore(settings.sqlalchemy_url))
        running = stores[0].with_parameter(
            "iterate", "CAMPAIGN", str(name), (Phase.QUEUED, Phase.EXECUTING)
        )
        if running:
            job = running[0]
            raise AlvoError(
                Reason.ITERATION_RUNNING,
                f"iterate job {job.id} ({job.phase.value}) works on campaign {name!r}: "
                f"follow iterate/{job.id}, or abort it first",
            )

    return check


def uws_service(settings: Settings, extra: Iterable[JobList] = ()) -> UWSService:
    """The job service of an app: every job list, on the settings' database and executor."""
    executor = make_executor(settings.executor, settings.workers, settings.dask_scheduler)
    authenticator = (
        HeaderAuthenticator(settings.auth_header) if settings.auth == "header" else anonymous
    )
    return UWSService(
        settings.sqlalchemy_url,
        executor,
        settings.home / "jobs",
        authenticator=authenticator,
        job_lists=[*job_lists(settings), *extra],
        base_url=settings.base_url or None,
        workers=settings.workers,
    )
