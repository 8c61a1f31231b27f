"""Archive scale on one machine: scoring arithmetic, prediction storage and TAP at 4.1 M rows.

Stages (each in its own process, so peak RSS is per stage):

``scoring``  a trained model scores the same feature rows in fp32, bf16 and int8
             (``service.learn.scoring``), the variants interleaved and repeated
             (the machine may be shared): best and median spectra/s, argmax agreement
             with fp32, largest probability difference, emission precision/recall
             against the simulator's truth; the pool path (``classify`` over a
             feature store, chunked) against the bare network on an in-memory array
             (the "bare-model floor") in the same run; the 4.1 M time extrapolated.
``storage``  4.1 M synthetic predictions recorded twice (two iterations) through
             ``service.store.predictions`` on SQLite (or ``--database postgresql``), as the
             service does it (the selected rows first: ``batch_first_s``, when the oracle
             can start; then the pool, indexes rebuilt around the load) and with the
             indexes kept, interleaved: wall time, peak RSS, bytes on disk, rows in SQL,
             against the floor of writing the same columns with ``numpy.savez``;
             then TAP's ADQL over them (top-100 entropy, class counts);
``campaign`` a whole campaign (``benchmarks/scale_campaign.py``): ``--files`` LAMOST
             files generated in ``--shard``-sized shards (each ingested, then deleted:
             1 M files are ~80 GB) -> ``ingest tree`` -> a labelled source set ->
             ``--iterations`` iterate jobs, each batch answered by a simulated oracle
             -> classify -> TAP; per step seconds, rate, peak RSS, disk, and ratios to
             the bare reader / bare network measured in the same run. On each of
             ``--backends`` (sqlite-local, postgres-dask, ...) with the answers compared;
``pool``     ``classify`` over a feature store of ``--pool-n`` rows (``--features``
             tiled, e.g. the campaign's 1 M-row pool to 4.1 M) with ``--model``, and
             the cascade (``--methods cascade,full``) over the same rows: seconds,
             rate, peak RSS of each, the cascade's argmax agreement, emission recall
             lost, precision/recall delta (with ``--truth``), top-100 entropy overlap;
``turnaround`` one iteration's training from scratch or warm-started from the
             previous iteration, batch 64 or 256, patience 10 or 3 (``--turn-n``
             simulated labels): seconds, epochs, accuracy, emission precision/recall.

The ISA the run had is printed first. With ``--model``/``--features``/``--truth``
the scoring stage uses a model and labelled features you give; otherwise it
simulates LAMOST spectra and trains a reference net first (minutes).

    .venv/bin/python benchmarks/bench_scale.py [--stage STAGE|all]  (STAGE: as above)
        [--n 20000] [--files 20000] [--storage-n 4100000] [--repeats 3]
        [--storage-variants rebuild,kept] [--database sqlite|postgresql]
        [--model M.keras --features X.npy --truth Y.npy]
        [--stage campaign --files 1000000 --shard 100000 --backends sqlite-local,postgres-dask]
"""

# ruff: noqa: E402  (thread limits must be set before numpy/TF are imported)
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import contextlib
import dataclasses
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scale_campaign import disk_mib, peak_rss_mib

LAMOST_DR2 = 4_100_000
PRECISIONS = ("fp32", "bf16", "int8")


def machine() -> str:
    from service.learn import cpu_flags, isa

    load = os.getloadavg()
    return (
        f"ISA {isa(cpu_flags())}, {os.cpu_count()} CPUs, load average {load[0]:.1f}/{load[1]:.1f}"
    )


# ------------------------------------------------------------------------------- scoring
def simulated(n: int, seed: int, emission: float) -> tuple[np.ndarray, np.ndarray]:
    from service.adapt import adapt
    from service.archive.simulate import simulate_batch
    from service.vocabulary import CLASSES

    spectra, truth = simulate_batch("lamost", n, seed, emission)
    x = np.asarray(adapt(spectra).features, np.float32)
    y = np.array([CLASSES.index(c) if c in CLASSES else -1 for c in truth["label"].astype(str)])
    keep = np.isfinite(x).all(axis=1) & (y >= 0)
    return x[keep], y[keep]


def trained_model(args: argparse.Namespace, folder: Path) -> Path:
    from service.adapt import AdaptConfig
    from service.learn.model import SpectrumClassifier, TrainConfig

    if args.model:
        return Path(args.model)
    seed = args.train_seed  # None: the net of the first runs; S: other data and weights
    x, y = simulated(8000, 1 if seed is None else 100 + seed, 0.4)
    config = TrainConfig(epochs=15, patience=3, batch_size=128, seed=seed or 0)
    adaptation = AdaptConfig()
    started = time.perf_counter()
    model = SpectrumClassifier.train(
        x, y, config, adapt_config=adaptation.to_dict(), adapt_fingerprint=adaptation.fingerprint
    )
    print(f"trained the reference net on {len(x)} simulated spectra in "
          f"{time.perf_counter() - started:.0f} s")  # fmt: skip
    return model.save(folder / "reference.keras")


def emission_scores(predicted: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(precision, recall) of 'emission' (single- or double-peak) against the truth (class
    indices; -1: no class, e.g. an artefact the oracle would not call a star)."""
    said, true = predicted < 2, (truth >= 0) & (truth < 2)
    hits = np.sum(said & true)
    return hits / max(1, said.sum()), hits / max(1, true.sum())


def stage_scoring(args: argparse.Namespace) -> dict:
    from service.jobs.learning import classify
    from service.learn import configure_threads
    from service.learn.model import SpectrumClassifier, finite_rows
    from service.store.features import FeatureStore

    configure_threads()
    folder = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    model_path = trained_model(args, folder)
    if args.features:
        x = np.load(args.features, mmap_mode="r")[: args.n]
        y = np.load(args.truth)[: len(x)]
    else:
        x, y = simulated(args.n, 2, 0.05)
    x = np.ascontiguousarray(x, dtype=np.float32)
    model = SpectrumClassifier.load(model_path)
    calibration = finite_rows(x)
    scorers = {p: model.scorer(p, calibration) for p in PRECISIONS}
    rates: dict[str, list[float]] = {p: [] for p in PRECISIONS}
    outputs: dict[str, np.ndarray] = {}
    for p in PRECISIONS:
        scorers[p](x[:512])  # trace / warm up
    for _ in range(args.repeats):
        for p in PRECISIONS:  # interleaved: a load change hits every variant alike
            started = time.perf_counter()
            outputs[p] = np.concatenate(
                [scorers[p](x[i : i + 4096])[0] for i in range(0, len(x), 4096)]
            )
            rates[p].append(len(x) / (time.perf_counter() - started))
    reference = outputs["fp32"].argmax(axis=1)
    result: dict = {"n": len(x), "variants": {}}
    for p in PRECISIONS:
        predicted = outputs[p].argmax(axis=1)
        precision, recall = emission_scores(predicted, y)
        result["variants"][p] = {
            "best_per_s": round(max(rates[p])),
            "median_per_s": round(float(np.median(rates[p]))),
            "agreement": float((predicted == reference).mean()),
            "max_abs_dp": float(np.abs(outputs[p] - outputs["fp32"]).max()),
            "precision": round(float(precision), 4),
            "recall": round(float(recall), 4),
            "hours_at_4_1M": round(LAMOST_DR2 / max(rates[p]) / 3600, 2),
        }
    # the pool path (feature store, chunks, NaN handling) against the bare network
    store = FeatureStore.create(folder / "features.npy", x.shape[1])
    store.append(x)
    for p in ("fp32", "int8"):
        started = time.perf_counter()
        classify(model_path, store.path, precision=p, chunk=max(4096, len(x) // 4))
        path_rate = len(x) / (time.perf_counter() - started)
        result["variants"][p]["pool_path_per_s"] = round(path_rate)
        result["variants"][p]["path_over_floor"] = round(path_rate / max(rates[p]), 2)
    shutil.rmtree(folder, ignore_errors=True)  # the model and the feature store
    return result


def stage_pool(args: argparse.Namespace) -> dict:
    """``classify`` over a whole feature store (memory map, chunks) at ``--pool-n`` rows,
    and the cascade (``classify_cascade``) over the same rows, side by side.

    The store is ``--features`` tiled up to ``--pool-n`` rows (real adapted features,
    e.g. the campaign stage's 1 M-row pool, repeated to LAMOST DR2's 4.1 M); scored
    in the arithmetic "auto" picks here, against the bare network on 20 000 of the
    rows in memory, in the same run. The cascade's gate learns from ``--labelled``
    (features and classes, .npy; default: 3 000 simulated spectra) plus its own
    distillation sample of the pool. Each method's peak RSS is measured from a reset
    high-water mark (``/proc/self/clear_refs``); ``--methods`` picks and orders them.
    """
    from scale_campaign import hwm_mib, scoring_floor

    from service.jobs.learning import classify, classify_cascade, load_model, scoring_precision
    from service.learn import configure_threads
    from service.settings import Settings
    from service.store.features import FeatureStore

    configure_threads()
    if not (args.model and args.features):
        raise SystemExit("the pool stage needs --model M.keras and --features X.npy")
    source = np.load(args.features, mmap_mode="r")
    truth_source = np.load(args.truth) if args.truth else None
    folder = Path(tempfile.mkdtemp(prefix="bench-scale-pool-"))
    store = FeatureStore.create(folder / "pool.npy", source.shape[1])
    started = time.perf_counter()
    while len(store) < args.pool_n:
        for start in range(0, len(source), 200_000):
            take = min(200_000, len(source) - start, args.pool_n - len(store))
            if take <= 0:
                break
            store.append(np.asarray(source[start : start + take]))
    tiled_s = time.perf_counter() - started
    truth = None
    if truth_source is not None:
        truth = np.resize(truth_source, len(store))  # tiled like the features
    if args.labelled:
        labelled = (np.load(f"{args.labelled}_x.npy"), np.load(f"{args.labelled}_y.npy"))
    else:
        labelled = simulated(3000, 77, 0.4)
    precision = scoring_precision(Settings(), len(store))
    result: dict = {
        "rows": len(store), "distinct_rows": len(source),
        "store_gib": round(store.path.stat().st_size / 2**30, 2), "tile_s": round(tiled_s, 1),
        "load_before": round(os.getloadavg()[0], 1),
    }  # fmt: skip
    if precision != "int8":  # load and trace once, so the first method does not pay it
        load_model(args.model).scorer(precision)(np.asarray(source[:512], np.float32))
    outputs = {}
    for method in args.methods.split(","):
        reset_peak_rss()
        rss_before = hwm_mib()
        started = time.perf_counter()
        if method == "cascade":
            out = classify_cascade(
                args.model, store.path, labelled, precision=precision, seed=args.cascade_seed
            )
        else:
            out = classify(args.model, store.path, precision=precision)
        seconds = time.perf_counter() - started
        outputs[method] = out
        result[method] = {
            "seconds": round(seconds, 1), "per_s": round(len(store) / seconds),
            "arithmetic": out.arithmetic, "int8_agreement": out.int8_agreement,
            "candidates": int(out.candidates().sum()),
            "peak_rss_mib": round(hwm_mib()), "rss_before_mib": round(rss_before),
            "load_after": round(os.getloadavg()[0], 1),
        }  # fmt: skip
        if out.cascade is not None:
            result[method]["cascade"] = out.cascade
        if truth is not None:
            precision_, recall = emission_scores(out.predicted, truth)
            result[method].update(precision=round(float(precision_), 5),
                                  recall=round(float(recall), 5))  # fmt: skip
        print(method, result[method], flush=True)
    if {"full", "cascade"} <= set(outputs):
        result["cascade_vs_full"] = compare_scorings(outputs["full"], outputs["cascade"])
        if truth is not None:
            delta = {k: result["cascade"][k] - result["full"][k] for k in ("recall", "precision")}
            result["cascade_vs_full"].update(
                {f"{k}_delta_pt": round(100 * v, 3) for k, v in delta.items()}
            )
        result["speedup"] = round(result["full"]["seconds"] / result["cascade"]["seconds"], 2)
    arithmetic = next(iter(outputs.values())).arithmetic
    floor = scoring_floor(Path(args.model), np.asarray(source[:20_000]), arithmetic)
    result["bare_network_per_s"] = round(floor)
    shutil.rmtree(folder, ignore_errors=True)
    return result


def reset_peak_rss() -> None:
    """Reset this process's VmHWM (Linux >= 4.0), so the next peak is one method's own."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def compare_scorings(full, cascade) -> dict:  # type: ignore[no-untyped-def]
    """The cascade's answers against full reference scoring of the same rows: argmax
    agreement, emission recall lost (full's emission rows the cascade calls absorption),
    the candidate sets, the top-100 entropy batch among candidates (what the query
    batch is drawn from) and the precision sample's population (the candidates)."""
    a, b = full.predicted, cascade.predicted
    emission_a, emission_b = full.candidates(), cascade.candidates()

    def top(predictions, candidates, k=100):  # type: ignore[no-untyped-def]
        return set(np.argsort(-np.where(candidates, predictions.entropy, -1.0))[:k].tolist())

    both = int((emission_a & emission_b).sum())
    return {
        "argmax_agreement": round(float((a == b).mean()), 6),
        "emission_recall_lost_pt": round(100 * float((emission_a & ~emission_b).sum())
                                         / max(1, int(emission_a.sum())), 4),
        "candidates_full": int(emission_a.sum()), "candidates_cascade": int(emission_b.sum()),
        "candidate_jaccard": round(both / max(1, int((emission_a | emission_b).sum())), 6),
        "top100_entropy_same": len(top(full, emission_a) & top(cascade, emission_b)),
    }  # fmt: skip


# ------------------------------------------------------------------------------- storage
def synthetic_pool(n: int, seed: int) -> dict[str, np.ndarray]:
    from service.store import predictions as store

    rng = np.random.default_rng(seed)
    p = rng.dirichlet((0.3, 0.2, 2.0), n).astype(np.float32)
    entropy = -np.sum(p * np.log(np.clip(p, 1e-30, None)), axis=1)
    roles = np.full(n, "", dtype=object)
    roles[np.argmax(p, axis=1) < 2] = "candidate"
    roles[np.argsort(-entropy)[:100]] = "query"
    labelled = np.zeros(n, bool)
    labelled[rng.choice(n, 500, replace=False)] = True
    ids = np.arange(1, n + 1, dtype=np.int64)
    return store.columns(ids, p, entropy, rng.random(n) < 0.02, roles, labelled)


#: Storage variants: indexes dropped and built again around a large load (the service's
#: path on SQLite; on PostgreSQL the service keeps them, see ``schema.bulk_load``), and
#: every index kept and updated row by row (what ``record`` did on both before).
STORAGE_VARIANTS = ("rebuild", "kept")


def postgres_cluster(stack: contextlib.ExitStack):  # type: ignore[no-untyped-def]
    """A throwaway PostgreSQL cluster (the tests' one), stopped when ``stack`` closes."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.peers.postgres import PostgresCluster

    return stack.enter_context(PostgresCluster.started())


def storage_engine(url: str, n: int):  # type: ignore[no-untyped-def]
    """The service's engine on ``url`` (SQLite: WAL, synchronous=NORMAL), tables made;
    on PostgreSQL, which checks foreign keys, with spectra 1..n for the predictions."""
    import sqlalchemy as sa

    from service.store import schema
    from uws.store import make_engine

    engine = make_engine(url)
    if url.startswith("sqlite"):
        with engine.connect() as conn:  # as JobStore.migrate sets it on the service's file
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        # synthetic spectrum ids have no spectrum rows: the service checks them, cheaply
        # (ids come in order), the benchmark cannot
        sa.event.listen(
            engine, "connect", lambda dbapi, _: dbapi.execute("PRAGMA foreign_keys=OFF")
        )
        engine.dispose()
    schema.create_all(engine)
    with engine.begin() as conn:
        conn.execute(schema.campaign.insert().values(campaign_id=1, name="scale"))
        if not url.startswith("sqlite"):
            conn.execute(schema.dataset.insert().values(dataset_id=1, name="pool"))
            ids = np.arange(1, n + 1)
            spectra = {"spectrum_id": ids, "dataset_id": np.ones(n, int), "row_index": ids - 1}
            schema.bulk_insert(conn, schema.spectrum, {**spectra, "pubdid": ids.astype(str)})
    return engine


def stage_storage(args: argparse.Namespace) -> dict:
    """Two iterations recorded per variant, the variants interleaved per iteration, each
    into its own database; the numpy floor measured before each iteration."""
    import sqlalchemy as sa

    from service.store import predictions as store
    from service.store import schema
    from service.vo.tap.query import TapDatabase

    folder = Path(tempfile.mkdtemp(prefix="bench-scale-store-"))
    variants = args.storage_variants.split(",")
    result: dict = {"n": args.storage_n, "database": args.database, "iterations": []}
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, folder, ignore_errors=True)  # GiBs at 4.1 M rows
        cluster = postgres_cluster(stack) if args.database == "postgresql" else None
        urls = {  # a fresh database per variant, as the service opens it
            v: cluster.create_database(f"store_{v}")
            if cluster
            else f"sqlite:///{folder / f'store_{v}.sqlite'}"
            for v in variants
        }
        engines = {v: storage_engine(url, args.storage_n) for v, url in urls.items()}
        for number in (0, 1):
            table = synthetic_pool(args.storage_n, number)
            started = time.perf_counter()
            floor_path = folder / f"floor-{number}.npz"
            np.savez(floor_path, **{k: v.astype(str) if v.dtype == object else v
                                    for k, v in table.items()})  # fmt: skip
            floor = time.perf_counter() - started
            floor_path.unlink()
            for variant in variants if number % 2 == 0 else variants[::-1]:  # neither always first
                share, dialects = schema.REBUILD_SHARE, schema.REBUILD_DIALECTS
                if variant == "kept":
                    schema.REBUILD_SHARE = float("inf")
                else:  # rebuilt on PostgreSQL too, to measure it
                    schema.REBUILD_DIALECTS = frozenset({"sqlite", "postgresql"})
                scoring = store.Scoring(1, number, None, f"j{number}")
                started = time.perf_counter()
                batch_rows = store.record_selected(engines[variant], table, scoring)
                batch_s = time.perf_counter() - started  # the oracle can label from here
                done = store.record(engines[variant], folder / variant / "predictions",
                                    table, scoring)  # fmt: skip
                seconds = time.perf_counter() - started
                schema.REBUILD_SHARE, schema.REBUILD_DIALECTS = share, dialects
                result["iterations"].append({
                    "iteration": number, "variant": variant, "seconds": round(seconds, 1),
                    "batch_first_s": round(batch_s, 1), "batch_rows": batch_rows,
                    "floor_npz_s": round(floor, 1), "ratio": round(seconds / floor, 1),
                    "sql_rows": done["sql_rows"], "deleted": done["deleted"],
                    "parquet_mib": round(disk_mib(done["path"]), 1),
                    "load": round(os.getloadavg()[0], 1),
                })  # fmt: skip
                print(result["iterations"][-1], flush=True)
        url = urls[variants[0]]
        with engines[variants[0]].connect() as conn:
            result["sql_rows_total"] = conn.scalar(
                sa.select(sa.func.count()).select_from(schema.prediction)
            )
        if args.database == "sqlite":
            result["sqlite_mib"] = round(disk_mib(folder / f"store_{variants[0]}.sqlite"), 1)
        for engine in engines.values():
            engine.dispose()
        database = TapDatabase(url, timeout_s=600)
        for name, adql in {
            "top100_entropy": "SELECT TOP 100 spectrum_id, entropy FROM alvo.prediction "
            "WHERE campaign_id = 1 AND iteration = 1 ORDER BY entropy DESC",
            "class_counts": "SELECT predicted_class, COUNT(*) AS n FROM alvo.prediction "
            "WHERE iteration = 1 GROUP BY predicted_class",
            "class_counts_campaign": "SELECT predicted_class, COUNT(*) AS n FROM alvo.prediction "
            "WHERE campaign_id = 1 AND iteration = 1 GROUP BY predicted_class",
            "queries_all_iterations": "SELECT COUNT(*) AS n FROM alvo.prediction "
            "WHERE role = 'query'",
        }.items():
            started = time.perf_counter()
            rows = database.run(adql, maxrec=1000)
            result[f"tap_{name}_s"] = round(time.perf_counter() - started, 2)
            result[f"tap_{name}_rows"] = len(rows.columns[0])
        database.dispose()
    return result


# ---------------------------------------------------------------------------- turnaround
def stage_turnaround(args: argparse.Namespace) -> dict:
    """Training time of one iteration: from scratch or warm, batch 64 or 256, patience.

    The "previous iteration" is trained on all but the newest 100 labels; each run
    then trains on all of them and is scored on the scoring stage's test rows.
    """
    from service.adapt import AdaptConfig
    from service.learn import configure_threads
    from service.learn.model import SpectrumClassifier, TrainConfig

    configure_threads()
    adaptation = AdaptConfig()
    keys = {"adapt_config": adaptation.to_dict(), "adapt_fingerprint": adaptation.fingerprint}
    x, y = simulated(args.turn_n, 7, 0.4)
    if args.features:
        xt, yt = np.load(args.features)[:8000], np.load(args.truth)[:8000]
    else:
        xt, yt = simulated(8000, 2, 0.05)
    runs: dict = {}
    previous: dict = {}
    for batch, patience in ((64, 10), (256, 10), (256, 3)):
        config = TrainConfig(variant=args.variant, batch_size=batch, patience=patience)
        if patience not in previous:
            previous[patience] = SpectrumClassifier.train(x[:-100], y[:-100], config, **keys)
        for warm in (False, True):
            started = time.perf_counter()
            model = SpectrumClassifier.train(
                x,
                y,
                dataclasses.replace(config, warm_start=warm),
                initial=previous[patience],
                **keys,
            )
            predicted = model.predict_proba(xt).argmax(axis=1)
            precision, recall = emission_scores(predicted, yt)
            name = f"{'warm' if warm else 'scratch'} batch {batch} patience {patience}"
            runs[name] = {
                "seconds": round(time.perf_counter() - started, 1),
                "epochs": model.provenance["epochs_run"],
                "accuracy": round(float((predicted == yt).mean()), 4),
                "precision": round(float(precision), 4),
                "recall": round(float(recall), 4),
            }
            print(name, runs[name], flush=True)
    return {"n_train": len(x), "variant": args.variant, "runs": runs}


# --------------------------------------------------------------------------------- driver
def stage_campaign(args: argparse.Namespace) -> dict:
    from scale_campaign import stage_campaign as run

    return run(args)


STAGES = {
    "scoring": stage_scoring,
    "campaign": stage_campaign,
    "pool": stage_pool,
    "storage": stage_storage,
    "turnaround": stage_turnaround,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", default="all", choices=[*STAGES, "all"])
    parser.add_argument("--n", type=int, default=20_000, help="spectra scored per variant")
    parser.add_argument(
        "--files",
        type=int,
        default=20_000,
        help="LAMOST files the campaign stage generates and ingests (1 M took the "
        "simulator 20 min on 2 cores; hence the small default)",
    )
    parser.add_argument("--storage-n", type=int, default=LAMOST_DR2, help="predictions stored")
    parser.add_argument("--pool-n", type=int, default=LAMOST_DR2, help="rows the pool stage scores")
    parser.add_argument(
        "--storage-variants",
        default=",".join(STORAGE_VARIANTS),
        help="storage stage: rebuild (indexes dropped and built again around a large load: "
        "the service on SQLite), kept (indexes updated row by row: the service on "
        "PostgreSQL), comma-separated, run interleaved",
    )
    parser.add_argument(
        "--database",
        default="sqlite",
        choices=["sqlite", "postgresql"],
        help="storage stage: the embedded SQLite file, or a throwaway PostgreSQL cluster "
        "(tests/peers/postgres.py: needs the postgresql-15 binaries)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats")
    parser.add_argument("--model", help="a trained .keras model (default: train one)")
    parser.add_argument(
        "--train-seed",
        type=int,
        help="seed of the trained net's data, weights (campaign stage: of its training)",
    )
    parser.add_argument("--features", help="(n, 140) float32 .npy to score")
    parser.add_argument("--truth", help="(n,) class index .npy for --features")
    parser.add_argument(
        "--methods",
        default="cascade,full",
        help="pool stage: cascade and/or full (reference net on every row), in this order",
    )
    parser.add_argument(
        "--labelled",
        help="pool stage: PREFIX of PREFIX_x.npy / PREFIX_y.npy, the labels the cascade's gate "
        "learns from (default: 3 000 simulated spectra)",
    )
    parser.add_argument("--cascade-seed", type=int, default=0, help="pool stage: audit/sample seed")
    parser.add_argument("--turn-n", type=int, default=2400, help="labels of the turnaround stage")
    parser.add_argument("--variant", default="reference", help="network of the turnaround stage")
    campaign = parser.add_argument_group("campaign stage")
    campaign.add_argument(
        "--backends",
        default="sqlite-local",
        help="comma-separated: sqlite-local, postgres-dask (same answers?)",
    )
    campaign.add_argument(
        "--shard",
        type=int,
        default=100_000,
        help="files written, ingested and deleted at a time (disk peak)",
    )
    campaign.add_argument("--keep-files", action="store_true", help="keep every shard")
    campaign.add_argument(
        "--save-to",
        help="copy each backend's trained nets and pool features here (for --stage pool)",
    )
    campaign.add_argument("--iterations", type=int, default=2, help="iterate jobs, each answered")
    campaign.add_argument("--source-n", type=int, default=2000, help="labelled source spectra")
    from service.jobs import learning as job_defaults  # what an iterate job trains with

    campaign.add_argument(
        "--epochs",
        type=int,
        help="default: the service's (the one-cycle schedule's length, else 100 with "
        "early stopping)",
    )
    campaign.add_argument(
        "--noise-draw",
        default=job_defaults.NOISE_DRAW,
        help="stored | per-epoch; default: the service's %(default)s (before: stored)",
    )
    campaign.add_argument(
        "--schedule",
        default=job_defaults.LR_SCHEDULE,
        help="constant | one-cycle; default: the service's %(default)s (before: constant)",
    )
    campaign.add_argument(
        "--learning-rate",
        type=float,
        help="Adam's (peak) rate; default: the service's for the schedule",
    )
    campaign.add_argument(
        "--patience",
        type=int,
        default=job_defaults.PATIENCE,
        help="default: the service's %(default)s (the original: 10)",
    )
    campaign.add_argument(
        "--batch-size",
        type=int,
        default=job_defaults.TRAIN_BATCH_SIZE,
        help="default: the service's %(default)s (the original: 64)",
    )
    campaign.add_argument(
        "--noise-augment",
        type=float,
        default=job_defaults.NOISE_AUGMENT,
        help="default: the service's %(default)s (the original: 0)",
    )
    campaign.add_argument("--precision", default="auto", help="ALVO_SCORING_PRECISION")
    campaign.add_argument(
        "--cascade",
        default=job_defaults.CASCADE,
        choices=job_defaults.CASCADE_CHOICES,
        help="the iterate jobs' CASCADE (default: the service's %(default)s)",
    )
    campaign.add_argument("--floor-n", type=int, default=20_000,
                          help="pool rows the bare network is timed on")  # fmt: skip
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        started = time.perf_counter()
        out = STAGES[args.stage](args)
        out.update(
            wall_s=round(time.perf_counter() - started, 1), peak_rss_mib=round(peak_rss_mib())
        )
        print("RESULT " + json.dumps(out))
        return
    print(machine())
    chosen = [s for s in STAGES if s != "pool" or args.features]  # pool: only with features
    for stage in chosen if args.stage == "all" else [args.stage]:
        command = [sys.executable, __file__, *sys.argv[1:], "--stage", stage, "--child"]
        child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        lines = []
        for line in child.stdout or ():  # each step as it finishes: a long stage shows progress
            if line.startswith("RESULT "):
                lines.append(line)
            else:
                print(line, end="", flush=True)
        if child.wait() != 0 or not lines:
            raise SystemExit(f"stage {stage} failed")
        print(f"== {stage}\n{json.dumps(json.loads(lines[-1][7:]), indent=1)}")
    print(machine())


if __name__ == "__main__":
    main()
