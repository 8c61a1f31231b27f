"""The ``campaign`` stage of ``bench_scale.py``: one LAMOST-sized campaign end to end.

generate the pool as LAMOST DR2 files (the simulator, in shards, in parallel) ->
``alvo ingest tree`` each shard (features) -> the labelled source set -> ``iterate``
(train, classify the pool, pick the query batch, record) -> the labelling page's store
reads of the batch (``page_reads``) -> a simulated oracle
answering each batch from the simulator's truth -> ``classify`` with the last
model -> TAP queries over the predictions. Every step prints wall time, peak RSS
so far and disk, and the pool steps their ratio to a floor measured in the same
run (the bare reader for ingest, the bare network on in-memory rows for scoring).

Why shards: 1 M LAMOST files are ~83 GB, more than a development disk holds. Each
shard is written, ingested and deleted before the next (ingest only needs the files
once: features and metadata are what the campaign uses), so the disk peak is one
shard. ``--keep-files`` keeps them (small pools; the backend comparison re-ingests).

The same campaign runs on each ``--backends`` entry (``sqlite-local``,
``postgres-dask``: a throwaway PostgreSQL cluster and a Dask ``LocalCluster`` of two
workers, the job itself a task on it as under ``ALVO_EXECUTOR=dask``) and the
answers are compared: query batches, candidate counts and TAP results must be equal.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import json
import multiprocessing
import os
import resource
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

#: Files simulated per write task (whole simulator blocks) and per shard.
WRITE_CHUNK = 4096
TAP_QUERIES = {
    "top100_entropy": "SELECT TOP 100 s.pubdid, p.entropy FROM alvo.prediction AS p "
    "JOIN alvo.spectrum AS s ON s.spectrum_id = p.spectrum_id "
    "WHERE p.campaign_id = {campaign} AND p.iteration = {last} ORDER BY p.entropy DESC, s.pubdid",
    "class_counts": "SELECT predicted_class, COUNT(*) AS n FROM alvo.prediction "
    "WHERE campaign_id = {campaign} AND iteration = {last} GROUP BY predicted_class "
    "ORDER BY predicted_class",
    "queries": "SELECT s.pubdid, p.iteration FROM alvo.prediction AS p JOIN alvo.spectrum AS s "
    "ON s.spectrum_id = p.spectrum_id WHERE p.role = 'query' ORDER BY p.iteration, s.pubdid",
}


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def hwm_mib() -> float:
    """This process's own peak RSS (``VmHWM``): unlike ``ru_maxrss``, which Linux carries
    over fork and exec, so a spawned Dask worker would report its parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def disk_mib(path: Path) -> float:
    if not path.exists():
        return 0.0
    if path.is_file():
        return path.stat().st_size / 2**20
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


class Steps:
    """Prints and keeps each step's seconds, rate and peak RSS so far."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.done: dict[str, dict[str, Any]] = {}

    @contextlib.contextmanager
    def step(self, name: str, n: int | None = None, **extra: Any) -> Iterator[dict[str, Any]]:
        record: dict[str, Any] = dict(extra)
        started = time.perf_counter()
        yield record
        seconds = time.perf_counter() - started
        inside = dict(record)
        record.clear()  # in place: the caller may add to it after the step
        record.update(seconds=round(seconds, 1), **inside)
        if n:
            record["per_s"] = round(n / seconds)
        record["peak_rss_mib"] = round(peak_rss_mib())
        self.done[name] = record
        print(f"[{self.label}] {name}: {record}", flush=True)


# ----------------------------------------------------------------------------------- pool
def generate_shards(
    folder: Path, n: int, shard: int, seed: int, workers: int = 2
) -> Iterator[tuple[Path, dict[str, str], float]]:
    """Write the pool shard by shard: yields (shard root, {observation: truth label}, seconds).

    Rows are numbered across shards, so the pool is the same whatever the shard
    size; the caller ingests (and may delete) a shard before asking for the next.
    """
    from service.archive.generate import write_chunk

    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        for number, first in enumerate(range(0, n, shard)):
            started = time.perf_counter()
            root = folder / f"shard-{number:03d}"
            last = min(first + shard, n)
            tasks = [
                pool.submit(write_chunk, str(root), "lamost", a, min(a + WRITE_CHUNK, last),
                            seed, None)
                for a in range(first, last, WRITE_CHUNK)
            ]  # fmt: skip
            truth: dict[str, str] = {}
            for task in tasks:
                columns = task.result()
                keys = [observation(str(d)) for d in columns["pubdid"].tolist()]
                truth.update(zip(keys, columns["label"].tolist(), strict=True))
            yield root, truth, time.perf_counter() - started


def source_set(datasets: Any, n: int, seed: int) -> int:
    """The labelled Ondrejov-like source set (simulated, adapted): rows added."""
    from service.adapt import adapt
    from service.archive.simulate import simulate_batch

    spectra, truth = simulate_batch("ondrejov", n, seed, 0.4)
    features = np.asarray(adapt(spectra).features, np.float32)
    keep = np.flatnonzero(np.isfinite(features).all(axis=1))
    dataset = datasets.open_or_create("source", "source", "ondrejov")
    rows = {"pubdid": [str(truth["pubdid"][i]) for i in keep],
            "collection": ["ondrejov"] * len(keep)}  # fmt: skip
    labels = [oracle_label(str(truth["label"][i])) for i in keep]
    return len(datasets.append(dataset, features[keep], rows, labels))


def oracle_label(truth: str) -> str:
    from service.vocabulary import NOT_SURE, VERDICTS

    return truth if truth in VERDICTS else NOT_SURE


# ------------------------------------------------------------------------------ campaign
@dataclasses.dataclass
class Backend:
    """Where a campaign's tables live and where its jobs run."""

    name: str  # sqlite-local | postgres-dask
    database_url: str = ""
    client: Any = None  # a distributed.Client for postgres-dask

    def run(self, function: Any, *args: Any) -> Any:
        """``function(*args)`` here, or as a cluster task (as ALVO_EXECUTOR=dask runs jobs)."""
        if self.client is None:
            return function(*args)
        return self.client.submit(function, *args, pure=False).result()


@contextlib.contextmanager
def open_backend(name: str, folder: Path) -> Iterator[Backend]:
    """``{sqlite|postgres}-{local|dask}``: PostgreSQL is a throwaway real server (as in
    the tests), Dask a ``LocalCluster`` of two single-threaded worker processes."""
    import sys

    database, _, executor = name.partition("-")
    if database not in ("sqlite", "postgres") or executor not in ("local", "dask"):
        raise SystemExit(f"backend {name!r}: give {{sqlite|postgres}}-{{local|dask}}")
    with contextlib.ExitStack() as stack:
        url = ""
        if database == "postgres":
            sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's tests/
            from tests.peers.postgres import PostgresCluster

            server = stack.enter_context(PostgresCluster.started())
            url = server.create_database("bench")
        client = None
        if executor == "dask":
            from distributed import Client, LocalCluster

            cluster = stack.enter_context(LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                local_directory=str(folder / "dask"),
            ))  # fmt: skip
            client = stack.enter_context(Client(cluster))
        yield Backend(name, url, client)


def iterate_once(settings: Any, campaign_name: str, request: Any, workdir: Path) -> dict:
    """One ``iterate`` job's work (the job's own code) -- here or on a Dask worker."""
    from service.jobs.iterate import Iteration
    from service.learn import configure_threads
    from service.store.campaigns import Campaigns

    configure_threads()
    campaigns = Campaigns(settings)
    campaign = campaigns.require(campaign_name)
    workdir.mkdir(parents=True, exist_ok=True)
    iteration = Iteration(settings, campaigns, campaign, request, workdir, lambda *a: None)
    outputs = iteration.run()
    summary = (workdir / "summary.json").read_text()
    return {"outputs": sorted(outputs), "summary": summary, "rss_mib": round(peak_rss_mib())}


def observation(pubdid: str) -> str:
    """The observation a publisher DID names (its query part): the simulator's catalogue
    says ``ivo://alvo.demo/lamost?N`` and the files it writes ``ivo://lamost.org/spectrum?N``,
    so the truth is matched on N. (Keyed on the whole DID, the simulated oracle of earlier
    runs found no spectrum and answered "not sure" to every one.)"""
    return pubdid.rsplit("?", 1)[-1]


def answer_batch(campaigns: Any, campaign: Any, number: int, truth: dict[str, str]) -> int:
    """The simulated oracle labels iteration ``number``'s query batch from the truth."""
    import sqlalchemy as sa

    from service.store import schema
    from service.store.campaigns import Verdict
    from service.vocabulary import BATCH_ROLES

    p, s = schema.prediction, schema.spectrum
    with campaigns.engine.connect() as conn:
        rows = conn.execute(
            sa.select(s.c.spectrum_id, s.c.pubdid)
            .join(p, p.c.spectrum_id == s.c.spectrum_id)
            .where(p.c.campaign_id == campaign.campaign_id)
            .where(p.c.iteration == number)
            .where(p.c.role.in_(BATCH_ROLES))
        ).all()
    verdicts = [
        Verdict(oracle_label(truth.get(observation(pubdid), "")), spectrum_id=int(sid),
                user="simulated-oracle",
                source="bench", iteration=number)
        for sid, pubdid in rows
    ]  # fmt: skip
    known = sum(observation(str(pubdid)) in truth for _, pubdid in rows)
    if rows and not known:
        raise SystemExit(f"the simulated oracle knows none of the {len(rows)} batch spectra")
    return campaigns.add_labels(campaign, verdicts).stored


def page_reads(campaigns: Any, campaign: Any, number: int) -> int:
    """The store reads the labelling page makes for a batch (its rows, their labels, the
    batches of every iteration for each row's history); the spectra's files are not
    read (the stage deletes each shard). Returns the batch's rows."""
    from service.store.candidates import candidate_rows
    from service.vocabulary import BATCH_ROLES
    from service.web.oracle import PAGE_COLUMNS

    rows = candidate_rows(
        campaigns.engine, campaign.campaign_id, number, list(BATCH_ROLES), PAGE_COLUMNS
    )
    campaigns.batch_predictions(campaign)
    return len(rows)


def classify_once(settings: Any, dataset_name: str, model_path: str, job_id: str) -> dict:
    """A ``classify`` job's work: the pool scored with a model, its candidates recorded."""
    from service.jobs.learning import classify, scoring_precision, write_predictions
    from service.learn import configure_threads
    from service.store.campaigns import Campaigns
    from service.store.predictions import Scoring

    configure_threads()
    campaigns = Campaigns(settings)
    dataset = campaigns.datasets.require(dataset_name)
    precision = scoring_precision(settings, len(dataset.features))
    predictions = classify(model_path, dataset.feature_path, precision=precision)
    roles = np.where(predictions.candidates(), "candidate", "").astype(object)
    ids = campaigns.spectrum_ids(dataset)
    scoring = Scoring(None, None, None, job_id, predictions.arithmetic)
    started = time.perf_counter()
    write_predictions(settings, ids, predictions, roles, np.zeros(len(ids), bool), scoring)
    return {
        "arithmetic": predictions.arithmetic,
        "int8_agreement": predictions.int8_agreement,
        "classify_s": round(predictions.seconds, 1),
        "record_s": round(time.perf_counter() - started, 1),
        "candidates": int(predictions.candidates().sum()),
    }


def scoring_floor(model_path: Path, features: np.ndarray, precision: str) -> float:
    """Spectra/s of the bare network on in-memory rows (no store, no chunks, no SQL)."""
    from service.jobs.learning import load_model
    from service.learn.model import finite_rows

    rows = np.ascontiguousarray(features[np.isfinite(features).all(axis=1)], np.float32)
    scorer = load_model(model_path).scorer(
        precision, finite_rows(rows) if precision == "int8" else None
    )
    scorer(rows[:512])  # trace / build once
    started = time.perf_counter()
    for start in range(0, len(rows), 4096):
        scorer(rows[start : start + 4096])
    return len(rows) / (time.perf_counter() - started)


@dataclasses.dataclass
class Pool:
    """The simulated pool: shards written on demand (and kept or deleted) and its truth."""

    folder: Path
    n: int
    shard: int
    seed: int
    keep: bool
    truth: dict[str, str] = dataclasses.field(default_factory=dict)
    kept: list[Path] = dataclasses.field(default_factory=list)
    generated: bool = False

    def shards(self, steps: Steps) -> Iterator[Path]:
        """Shard roots to ingest: made now (first campaign) or the kept ones (later ones)."""
        if self.generated:
            yield from self.kept
            return
        seconds, disk_peak = 0.0, 0.0
        for root, truth, made_in in generate_shards(
            self.folder / "files", self.n, self.shard, self.seed
        ):
            self.truth.update(truth)
            seconds += made_in
            disk_peak = max(disk_peak, disk_mib(root))
            print(f"[{steps.label}] shard {root.name}: {len(truth)} files in {made_in:.0f} s",
                  flush=True)  # fmt: skip
            yield root
            if self.keep:
                self.kept.append(root)
            else:
                shutil.rmtree(root)
        self.generated = True
        per_file = disk_peak / min(self.n, self.shard)
        steps.done["generate"] = {
            "seconds": round(seconds, 1), "per_s": round(self.n / seconds),
            "disk_peak_mib": round(disk_peak), "shards": -(-self.n // self.shard),
            "disk_1M_files_gib": round(per_file * 1e6 / 1024, 1),
        }  # fmt: skip
        print(f"[{steps.label}] generate: {steps.done['generate']}", flush=True)


def run_campaign(backend: Backend, home: Path, pool: Pool, args: Any) -> dict:
    """Ingest the pool, then iterate with the simulated oracle, classify and ask TAP."""
    from service.jobs.ingest.tree import ingest_tree
    from service.jobs.iterate import IterateRequest
    from service.learn.model import TrainConfig
    from service.settings import Settings
    from service.spectra.bulk import read_halpha_windows
    from service.spectra.files import archive_files
    from service.store.campaigns import Campaigns
    from service.store.datasets import Datasets
    from service.vo.tap.query import TapDatabase

    steps = Steps(backend.name)
    settings = Settings(
        home=home, database_url=backend.database_url, simbad="off",
        executor="dask" if backend.client is not None else "local",
        scoring_precision=args.precision,
    )  # fmt: skip
    ingest_s, added, failed, floor_rate = 0.0, 0, 0, None
    for root in pool.shards(steps):
        if floor_rate is None:  # the bare reader on the first shard: the floor per process
            sample = [root / r for r in list(archive_files(root))[:4000]]
            started = time.perf_counter()
            read_halpha_windows(sample)
            floor_rate = len(sample) / (time.perf_counter() - started)
        summary = ingest_tree(settings, root, "pool", workers=2)
        print(f"[{steps.label}] ingested {root.name}: {summary['added']} added in "
              f"{summary['seconds']:.0f} s", flush=True)  # fmt: skip
        ingest_s += summary["seconds"]
        added += summary["added"]
        failed += sum(summary["failed"].values())
        last_root = root
    again = ingest_tree(settings, last_root, "pool", workers=2)
    datasets = Datasets(settings)
    dataset = datasets.require("pool")
    steps.done["ingest_tree"] = {
        "seconds": round(ingest_s, 1), "per_s": round(pool.n / ingest_s), "added": added,
        "failed": failed, "bare_reader_per_s_1_process": round(floor_rate or 0),
        "ratio_to_2_bare_readers": round(pool.n / ingest_s / (2 * (floor_rate or 1)), 2),
        "again_added": again["added"], "features_mib": round(disk_mib(dataset.feature_path)),
        "peak_rss_mib": round(peak_rss_mib()),
    }  # fmt: skip
    print(f"[{steps.label}] ingest_tree: {steps.done['ingest_tree']}", flush=True)
    with steps.step("source_set") as record:
        record["rows"] = source_set(datasets, args.source_n, seed=3)
    campaigns = Campaigns(settings)
    campaigns.create("scale", "source", "pool", batch_size=100)
    from service.jobs import learning as job_defaults

    constant = args.schedule == "constant"
    training = TrainConfig(
        epochs=args.epochs or (100 if constant else job_defaults.ONE_CYCLE_EPOCHS),
        patience=args.patience, batch_size=args.batch_size, noise_augment=args.noise_augment,
        noise_draw=args.noise_draw, schedule=args.schedule,
        learning_rate=args.learning_rate or (1e-3 if constant else job_defaults.LEARNING_RATE),
        oracle_weight=job_defaults.ORACLE_WEIGHT,  # as an iterate job trains
        seed=args.train_seed or 0,
    )  # fmt: skip
    request = IterateRequest(
        campaign="scale",
        source=None,
        target=None,
        strategy="entropy",
        batch=None,
        precision_sample=30,
        padding=100,  # a full batch for the simulated oracle, as the oracle asks on the page
        training=training,
        serialization="tabledata",
        broadcast=False,
        cascade=args.cascade,
    )
    answers: dict[str, Any] = {"candidates": []}
    for number in range(args.iterations):
        with steps.step(f"iterate_{number}", len(dataset.features)) as record:
            done = backend.run(
                iterate_once, settings, "scale", request, home / "jobs" / f"it{number}"
            )
            summary = json.loads(done["summary"])
            record.update(seconds_inside=summary["seconds"], arithmetic=summary["arithmetic"],
                          cascade=summary["cascade"],
                          candidates=summary["candidates"], query=summary["query"],
                          padding=summary["padding"],
                          job_rss_mib=done["rss_mib"])  # fmt: skip
            model = home / "models" / "scale" / f"iteration-{number}.keras.json"
            if model.exists():  # what the training ran: epochs and its seconds
                trained = json.loads(model.read_text())["provenance"]
                record.update(epochs=trained["epochs_run"], fit_s=trained["seconds"])
        answers["candidates"].append(summary["candidates"])
        with steps.step(f"page_reads_{number}") as record:
            record["rows"] = page_reads(campaigns, campaigns.require("scale"), number)
        with steps.step(f"oracle_{number}") as record:
            record["labels"] = answer_batch(
                campaigns, campaigns.require("scale"), number, pool.truth
            )
    model_path = home / "models" / "scale" / f"iteration-{args.iterations - 1}.keras"
    with steps.step("classify", len(dataset.features)) as record:
        record.update(
            backend.run(classify_once, settings, "pool", str(model_path), "bench-classify")
        )
    features = np.asarray(dataset.features.array()[: args.floor_n])
    floor = scoring_floor(model_path, features, record["arithmetic"])
    record["bare_network_per_s"] = round(floor)
    record["ratio_to_bare_network"] = round(record["per_s"] / floor, 2)
    tap = TapDatabase(settings.sqlalchemy_url, timeout_s=3600)
    keys = {"campaign": campaigns.require("scale").campaign_id, "last": args.iterations - 1}
    for name, adql in TAP_QUERIES.items():
        with steps.step(f"tap_{name}") as record:
            table = tap.run(adql.format(**keys), maxrec=100_000)
            rows = list(zip(*[list(map(str, c)) for c in table.columns], strict=True))
            record["rows"] = len(rows)
        answers[f"tap_{name}"] = rows
    steps.done["disk"] = {
        "features_mib": round(disk_mib(dataset.feature_path)),
        "predictions_mib": round(disk_mib(home / "predictions")),
        "database_mib": round(database_mib(settings)),
    }
    if backend.client is not None:
        rss = backend.client.run(hwm_mib)
        steps.done["dask_worker_peak_rss_mib"] = sorted(round(v) for v in rss.values())
    return {"steps": steps.done, "answers": answers}


def database_mib(settings: Any) -> float:
    import sqlalchemy as sa

    if not settings.database_url:
        return disk_mib(settings.home / "alvo.sqlite")
    engine = sa.create_engine(settings.sqlalchemy_url)
    with engine.connect() as conn:
        return conn.scalar(sa.text("SELECT pg_database_size(current_database())")) / 2**20


def stage_campaign(args: Any) -> dict:
    import tempfile

    from service.learn import configure_threads

    configure_threads()
    folder = Path(tempfile.mkdtemp(prefix="bench-scale-campaign-"))
    backends = args.backends.split(",")
    pool = Pool(folder, args.files, args.shard, seed=5, keep=args.keep_files or len(backends) > 1)
    results: dict[str, Any] = {}
    try:
        for name in backends:
            with open_backend(name, folder) as backend:
                results[name] = run_campaign(backend, folder / name, pool, args)
            if args.save_to:  # the trained nets and the pool's features, for the pool stage
                saved = Path(args.save_to) / name
                shutil.copytree(folder / name / "models", saved / "models", dirs_exist_ok=True)
                shutil.copy2(folder / name / "datasets" / "pool" / "features.npy", saved)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    first = backends[0]
    same = {
        name: {key: results[name]["answers"][key] == results[first]["answers"][key]
               for key in results[first]["answers"]}
        for name in backends[1:]
    }  # fmt: skip
    for result in results.values():
        result["answers"] = {k: (len(v) if k.startswith("tap") else v)
                             for k, v in result.pop("answers").items()}  # fmt: skip
    return {"files": args.files, "cpus": os.cpu_count(), "backends": results,
            "same_answers_as_" + first: same}  # fmt: skip
