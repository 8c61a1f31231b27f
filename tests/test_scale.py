"""Archive-scale paths on a small pool: reduced-precision scoring, its fp32 fallback, and the
prediction store (Parquet + SQL) as TAP sees it. The benchmark (benchmarks/bench_scale.py)
runs the same code at 4.1 M rows."""

from __future__ import annotations

import io
import shutil
import warnings

import numpy as np
import pytest
import sqlalchemy as sa
from astropy.io import votable
from starlette.applications import Starlette
from starlette.testclient import TestClient

from service.jobs.learning import scoring_precision
from service.learn import configure_threads
from service.learn import scoring as scorers
from service.learn.model import SpectrumClassifier, TrainConfig, build_network
from service.settings import Settings
from service.store import predictions as store
from service.store import schema
from service.vo.tap import routes as tap_routes
from tests.tap_support import sqlite_demo
from tests.test_learn_model import ADAPT, FINGERPRINT, _data

configure_threads(2, 1)
AMX = "fpu avx2 avx512f avx512_bf16 avx512_vnni amx_bf16 amx_int8 amx_tile"
ZEN3 = "fpu avx2 fma"
OLD = "fpu sse2 sse4_2 avx"


# ------------------------------------------------------------------ choosing the arithmetic
def test_auto_prefers_bf16_on_amx_then_int8_and_falls_back_to_fp32() -> None:
    assert scorers.choose_precision("auto", scorers.cpu_flags(AMX)) == "bf16"
    assert scorers.choose_precision("auto", scorers.cpu_flags(ZEN3)) == "int8"
    assert scorers.choose_precision("auto", scorers.cpu_flags(OLD)) == "fp32"
    small = scorers.REDUCED_MIN_ROWS - 1  # a demo-sized pool: building int8 costs more
    assert scorers.choose_precision("auto", scorers.cpu_flags(AMX), small) == "fp32"
    assert scorers.choose_precision("int8", scorers.cpu_flags(ZEN3), small) == "int8"  # asked
    assert scorers.choose_precision("bf16", scorers.cpu_flags(ZEN3)) == "fp32"
    assert scorers.choose_precision("int8", scorers.cpu_flags(ZEN3)) == "int8"  # asked for
    assert scorers.choose_precision("int8", scorers.cpu_flags(OLD)) == "fp32"
    assert scorers.choose_precision("bf16", scorers.cpu_flags(OLD)) == "fp32"
    assert scorers.choose_precision("int8", scorers.cpu_flags(AMX)) == "int8"
    assert scorers.choose_precision("fp32", scorers.cpu_flags(AMX)) == "fp32"
    assert scorers.isa(scorers.cpu_flags(AMX)) == "AMX (bf16, int8)"
    assert scorers.isa(scorers.cpu_flags(ZEN3)) == "AVX2"


def test_the_setting_simulates_a_cpu_without_the_instructions() -> None:
    lacking = Settings(scoring_precision="bf16", cpu_flags=ZEN3)
    having = Settings(scoring_precision="bf16", cpu_flags=AMX)
    assert scoring_precision(lacking) == "fp32"
    assert scoring_precision(having) == "bf16"
    assert scoring_precision(Settings(scoring_precision="int8", cpu_flags=OLD)) == "fp32"
    assert scoring_precision(Settings(cpu_flags=ZEN3), n_rows=10**6) == "int8"
    assert scoring_precision(Settings(cpu_flags=ZEN3), n_rows=2000) == "fp32"
    assert Settings.from_env({"ALVO_SCORING_PRECISION": "int8"}).scoring_precision == "int8"


# ------------------------------------------------------------------------- agreement
@pytest.fixture(scope="module")
def trained() -> SpectrumClassifier:
    x, y = _data(900, seed=3)
    config = TrainConfig(variant="small", epochs=8, seed=7)
    return SpectrumClassifier.train(x, y, config, adapt_config=ADAPT, adapt_fingerprint=FINGERPRINT)


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_reduced_precision_agrees_with_fp32_on_a_trained_model(trained, precision) -> None:
    x, y = _data(3000, seed=11)
    reference, embedding = trained.score(x)
    reduced, reduced_embedding = trained.score(x, precision=precision)
    assert reduced.dtype == np.float32 and reduced.shape == reference.shape
    assert reduced_embedding.shape == embedding.shape
    agreement = (reduced.argmax(axis=1) == reference.argmax(axis=1)).mean()
    assert agreement >= 0.995, agreement
    difference = np.abs(reduced - reference).max(axis=1)
    assert np.quantile(difference, 0.99) < 0.05  # int8: a rare row near a boundary moves more
    accuracy = (reduced.argmax(axis=1) == y).mean()
    assert accuracy >= (reference.argmax(axis=1) == y).mean() - 0.005


def test_int8_keeps_nan_rows_and_one_quantisation_across_chunks(trained) -> None:
    x, _ = _data(400, seed=5)
    x[7] = np.nan
    calibration = x[100:400]
    whole = trained.score(x, precision="int8", calibration=calibration)[0]
    parts = np.concatenate(
        [trained.score(x[:200], precision="int8")[0], trained.score(x[200:], precision="int8")[0]]
    )
    assert np.isnan(whole[7]).all() and np.isfinite(np.delete(whole, 7, axis=0)).all()
    np.testing.assert_array_equal(np.isnan(parts), np.isnan(whole))


def test_int8_is_used_only_where_it_agrees_with_fp32_on_the_pool(tmp_path) -> None:
    from service.adapt import AdaptConfig
    from service.jobs.learning import classify
    from service.store.features import FeatureStore

    adaptation = AdaptConfig()  # classify() refuses a model of another adaptation
    x, y = _data(900, seed=3)
    config = TrainConfig(variant="small", epochs=8, seed=7)
    model = SpectrumClassifier.train(
        x, y, config, adapt_config=adaptation.to_dict(), adapt_fingerprint=adaptation.fingerprint
    )
    model_path = model.save(tmp_path / "model.keras")
    x, _ = _data(3000, seed=13)
    alike = FeatureStore.create(tmp_path / "alike.npy", x.shape[1])
    alike.append(x)
    kept = classify(model_path, alike.path, precision="int8")
    assert kept.arithmetic == "int8" and kept.int8_agreement >= 0.999
    # calibrated on the first 2048 rows, checked on later ones 40x brighter than anything
    # calibrated: int8 clips those rows, disagrees, and the pool is scored in float32
    unlike = FeatureStore.create(tmp_path / "unlike.npy", x.shape[1])
    unlike.append(np.concatenate([x[:2048], 40 * x[2048:]]))
    fallen = classify(model_path, unlike.path, precision="int8")
    assert fallen.arithmetic == "fp32" and fallen.int8_agreement < 0.999
    reference = classify(model_path, unlike.path, precision="fp32")
    np.testing.assert_array_equal(fallen.probabilities, reference.probabilities)
    assert reference.int8_agreement is None


def test_the_int8_check_grows_with_the_pool_and_scores_in_bounded_batches() -> None:
    from service.jobs.learning import CHECK_ROWS, check_rows
    from service.learn.scoring import agreement

    assert check_rows(3000) == CHECK_ROWS[0]  # small pools: the floor
    assert check_rows(4_100_000) == 41_000  # 1 % of LAMOST DR2
    assert check_rows(50_000_000) == CHECK_ROWS[1]
    seen: list[int] = []

    def scorer(shift: int):
        def score(rows: np.ndarray) -> tuple[np.ndarray, None]:
            seen.append(len(rows))
            return np.eye(3)[(rows[:, 0].astype(int) + shift * (rows[:, 1] > 0)) % 3], None

        return score

    rows = np.stack([np.arange(1000) % 3, (np.arange(1000) % 10 == 0) * 1.0], axis=1)
    share = agreement(scorer(0), scorer(1), rows, batch=64)
    assert share == 0.9  # every tenth row disagrees
    assert max(seen) == 64 and sum(seen) == 2 * len(rows)  # never the whole sample at once


@pytest.mark.parametrize("variant", ["small", "same", "batchnorm"])
def test_the_onnx_export_computes_what_keras_computes(variant) -> None:
    network = build_network(variant)
    rng = np.random.default_rng(0)
    weights = [w + rng.normal(0, 0.05, w.shape).astype(np.float32) for w in network.get_weights()]
    network.set_weights([np.abs(w) + 0.5 if w.ndim == 1 and i % 4 == 3 and variant == "batchnorm"
                         else w for i, w in enumerate(weights)])  # fmt: skip
    x = rng.standard_normal((64, 140)).astype(np.float32)
    keras_p, keras_e = scorers.fp32_scorer(network)(x)
    onnx_p, onnx_e = scorers.onnx_fp32_scorer(network)(x)
    np.testing.assert_allclose(onnx_p, keras_p, atol=2e-5)
    np.testing.assert_allclose(onnx_e, keras_e, rtol=1e-3, atol=1e-3)


# ----------------------------------------------------------------- the prediction store
@pytest.fixture(scope="module")
def world(tmp_path_factory):
    home = tmp_path_factory.mktemp("scale-home")
    url = sqlite_demo(home, 300)
    return home, sa.create_engine(url)


def _pool(engine, n: int, seed: int):
    with engine.connect() as conn:
        ids = np.array(
            conn.scalars(
                sa.select(schema.spectrum.c.spectrum_id).order_by("spectrum_id").limit(n)
            ).all(),
            dtype=np.int64,
        )
    rng = np.random.default_rng(seed)
    p = rng.dirichlet((0.3, 0.2, 2.0), len(ids)).astype(np.float32)
    p[3] = np.nan  # a spectrum whose features failed: no row anywhere
    entropy = -np.sum(p * np.log(p), axis=1)
    roles = np.full(len(ids), "", dtype=object)
    roles[np.argmax(p, axis=1) < 2] = "candidate"
    roles[:5] = "query"
    labelled = np.zeros(len(ids), bool)
    labelled[10:14] = True
    return store.columns(ids, p, entropy, rng.random(len(ids)) < 0.1, roles, labelled)


def _tap(home, adql):
    settings = Settings(home=home)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client = TestClient(Starlette(routes=tap_routes.routes(settings)))
        params = {"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": adql}
        response = client.get("/tap/sync", params=params)
        assert response.status_code == 200, response.text
        return votable.parse_single_table(io.BytesIO(response.content)).to_table()


def test_predictions_round_trip_through_parquet_sql_and_tap(world) -> None:
    home, engine = world
    with engine.connect() as conn:
        campaign_id = conn.scalar(sa.select(sa.func.min(schema.campaign.c.campaign_id)))
        model_id = conn.scalar(sa.select(sa.func.min(schema.model.c.model_id)))
    folder = home / "predictions"
    first, second = _pool(engine, 250, 1), _pool(engine, 250, 2)
    older = store.record(engine, folder, first, store.Scoring(campaign_id, 50, model_id, "j50"))
    newer = store.record(engine, folder, second, store.Scoring(campaign_id, 51, model_id, "j51"))
    classify = _pool(engine, 250, 3)
    classify["labelled"][:] = False  # a classify job has no oracle
    store.record(engine, folder, classify, store.Scoring(None, None, model_id, "jc", "int8"))

    back = store.read_file(newer["path"])
    assert len(back["spectrum_id"]) == 249  # the NaN row is not a prediction
    for name, values in second.items():
        np.testing.assert_array_equal(back[name], values)
    # the latest iteration: every row; the one before: selected or labelled rows only
    latest = _tap(home, f"SELECT COUNT(*) AS n FROM alvo.prediction WHERE iteration = 51 "
                        f"AND campaign_id = {campaign_id}")  # fmt: skip
    assert int(latest["n"][0]) == 249 == newer["sql_rows"]
    kept = _tap(home, "SELECT role, labelled FROM alvo.prediction WHERE job_id = 'j50'")
    expected = int(np.sum((first["role"] != None) | first["labelled"]))  # noqa: E711
    assert len(kept) == expected < 249 and older["sql_rows"] == 249
    assert all(r is not None and r != "" for r in kept["role"][~kept["labelled"].astype(bool)])
    # a classify job: its candidates only, told apart by job and model
    joined = (
        "SELECT p.role, p.model_id, m.model_id AS m FROM alvo.prediction AS p "
        "JOIN alvo.model AS m ON m.model_id = p.model_id WHERE p.job_id = 'jc'"
    )
    rows = _tap(home, joined)
    assert len(rows) == int(np.sum(classify["role"] != None))  # noqa: E711
    assert set(rows["role"]) <= {"candidate", "query"} and set(rows["m"]) == {model_id}
    files = _tap(home, "SELECT job_id, n_rows, arithmetic FROM alvo.prediction_file "
                       "ORDER BY prediction_file_id")  # fmt: skip
    assert list(files["job_id"]) == ["j50", "j51", "jc"] and list(files["n_rows"]) == [249] * 3
    assert list(files["arithmetic"]) == ["fp32", "fp32", "int8"]


def _synthetic(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.dirichlet((0.3, 0.2, 2.0), n).astype(np.float32)
    entropy = -np.sum(p * np.log(p), axis=1)
    roles = np.where(np.argmax(p, axis=1) < 2, "candidate", "").astype(object)
    ids = np.arange(1, n + 1, dtype=np.int64)
    return store.columns(ids, p, entropy, rng.random(n) < 0.1, roles, np.zeros(n, bool))


def test_a_large_load_rebuilds_the_indexes_in_its_transaction(tmp_path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'a.sqlite'}")
    schema.create_all(engine)
    with engine.begin() as conn:
        conn.execute(schema.campaign.insert().values(campaign_id=1, name="c"))
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2].strip()))
    names = {index.name for index in schema.prediction.indexes}

    def indexes() -> set[str]:
        return {i["name"] for i in sa.inspect(engine).get_indexes("prediction")}

    store.record(engine, tmp_path, _synthetic(2000, 1), store.Scoring(1, 0, None, "j0"))
    assert sum(s.startswith("DROP INDEX") for s in statements) == len(names)
    assert indexes() == names
    done = store.record(engine, tmp_path, _synthetic(2000, 2), store.Scoring(1, 1, None, "j1"))
    assert done["deleted"] > 1000 and indexes() == names
    # a classify job's few candidates into the large table: the indexes stay
    statements.clear()
    few = _synthetic(2000, 3)
    few["role"][100:] = None
    store.record(engine, tmp_path, few, store.Scoring(None, None, None, "jc"))
    assert not any(s.startswith("DROP INDEX") for s in statements)
    # the predicted-class counts of an iteration read the class index, not the table
    with engine.connect() as conn:
        plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT predicted_class, COUNT(*) FROM prediction "
            "WHERE campaign_id = 1 AND iteration = 1 GROUP BY predicted_class"))  # fmt: skip
    assert "COVERING INDEX ix_prediction_class" in plan, plan
    # a failure inside the load rolls the dropped indexes and the deletes back
    with engine.connect() as conn:
        before = conn.scalar(sa.select(sa.func.count()).select_from(schema.prediction))
    with pytest.raises(ZeroDivisionError), engine.begin() as conn:
        conn.execute(schema.prediction_file.insert().values(iteration=9))
        with schema.bulk_load(conn, schema.prediction, 10**6):
            conn.execute(sa.delete(schema.prediction))
            1 / 0  # noqa: B018
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(schema.prediction)) == before
    assert indexes() == names
    # without an open SQLite transaction the DROP INDEX would commit at once: refused
    with (
        pytest.raises(RuntimeError),
        engine.connect() as conn,
        schema.bulk_load(conn, schema.prediction, 10**6),
    ):
        pass
    assert indexes() == names


# -------------------------------------------------------------------- bulk ingest of a tree
class _KilledError(Exception):
    pass


def test_tree_ingest_is_idempotent_and_resumes_after_a_kill(tmp_path) -> None:
    from service.archive.generate import generate_archive
    from service.jobs.ingest.tree import ingest_tree
    from service.spectra.files import archive_files
    from service.store.datasets import Datasets

    generate_archive(tmp_path / "make", "lamost", 300, seed=4)
    root = tmp_path / "make" / "archive" / "lamost"
    (root / "catalogue.fits").unlink()  # the simulator's truth, not an archive file
    (root / "0000" / "notes.txt").write_text("not a spectrum")
    files = list(archive_files(root))
    assert len(files) == 300 and files == sorted(files) == list(archive_files(root))
    settings = Settings(home=tmp_path / "home")

    def kill_after_first_chunk(done: int, added: int) -> None:
        raise _KilledError

    with pytest.raises(_KilledError):
        ingest_tree(settings, root, "pool", workers=1, chunk=64, progress=kill_after_first_chunk)
    resumed = ingest_tree(settings, root, "pool", workers=2, chunk=64)
    again = ingest_tree(settings, root, "pool", workers=1, chunk=64)
    failed = sum(resumed["failed"].values())
    assert failed < 10 and 54 <= resumed["skipped"] <= 64  # the first chunk stayed in
    assert resumed["skipped"] + resumed["added"] + failed == 300
    assert again["added"] == 0 and again["skipped"] == 300 - failed  # failures are retried
    dataset = Datasets(settings).require("pool")
    spectra = Datasets(settings).spectra(dataset, ["pubdid", "row_index", "ra"])
    assert len(set(spectra["pubdid"])) == len(spectra["pubdid"]) == 300 - failed
    assert all(p.startswith("ivo://") for p in spectra["pubdid"])  # the header's OBSID
    features = np.asarray(dataset.features.array())[spectra["row_index"].astype(int)]
    assert np.isfinite(features).all() and np.isfinite(spectra["ra"].astype(float)).all()


def test_a_tree_holding_one_spectrum_twice_ingests_it_once(tmp_path) -> None:
    """A copied file (another URL, the same DID) in another chunk is stored once: the
    writer both doors share drops it; the tree's own check once let it reach the
    unique index, which failed the whole ingest."""
    from service.archive.generate import generate_archive
    from service.jobs.ingest.tree import ingest_tree
    from service.spectra.files import archive_files
    from service.store.datasets import Datasets

    generate_archive(tmp_path / "make", "lamost", 24, seed=6)
    root = tmp_path / "make" / "archive" / "lamost"
    (root / "catalogue.fits").unlink()
    first = next(iter(archive_files(root)))
    (root / "zz").mkdir()
    shutil.copyfile(root / first, root / "zz" / "copy.fits")  # walked last: another chunk
    settings = Settings(home=tmp_path / "home")
    summary = ingest_tree(settings, root, "pool", workers=1, chunk=8)
    failed = sum(summary["failed"].values())
    assert summary["files"] == 25 and summary["added"] == 24 - failed
    spectra = Datasets(settings).spectra(Datasets(settings).require("pool"), ["pubdid"])
    assert len(set(spectra["pubdid"])) == len(spectra["pubdid"]) == 24 - failed


def test_known_keys_are_found_by_binary_search_as_isin_finds_them() -> None:
    """``among`` replaced ``np.isin`` (which re-hashed every known key per chunk)."""
    from service.store.spectrum_keys import among

    rng = np.random.default_rng(0)
    known = np.unique(rng.integers(-(2**62), 2**62, 50_000))
    keys = np.concatenate([
        rng.choice(known, 300), rng.integers(-(2**62), 2**62, 300),
        [known[0], known[-1], known[0] - 1, known[-1] + 1],
    ])  # fmt: skip
    np.testing.assert_array_equal(among(keys, known), np.isin(keys, known))
    assert not among(keys, known[:0]).any()
