"""The archive-scale campaign benchmark on a tiny pool: the 1 M-file run in
``docs/performance.md`` goes through this same code (sharded files -> ingest tree ->
iterate with a simulated oracle -> classify -> TAP), so a change that breaks it
fails here, not in the next hour-long benchmark run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
scale_campaign = pytest.importorskip("scale_campaign")


def test_a_tiny_campaign_runs_end_to_end_and_its_oracle_answers(tmp_path, monkeypatch) -> None:
    from service.jobs import learning as job_defaults
    from service.learn import configure_threads

    configure_threads()
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the stage's folder, deleted at its end
    args = argparse.Namespace(
        files=400, shard=200, keep_files=False, iterations=2, source_n=300, epochs=2,
        patience=1, batch_size=64, noise_augment=0.0, precision="auto", floor_n=400,
        backends="sqlite-local", noise_draw=job_defaults.NOISE_DRAW,
        schedule=job_defaults.LR_SCHEDULE, learning_rate=None,  # as an iterate job trains
        cascade=job_defaults.CASCADE, save_to=None, train_seed=None,
    )  # fmt: skip
    result = scale_campaign.stage_campaign(args)
    steps = result["backends"]["sqlite-local"]["steps"]
    assert steps["generate"]["shards"] == 2  # written, ingested and deleted one by one
    ingest = steps["ingest_tree"]
    assert ingest["added"] + ingest["failed"] == 400 and ingest["added"] > 380
    assert ingest["again_added"] == 0  # the re-run adds nothing
    assert steps["iterate_0"]["arithmetic"] == "fp32"  # 400 rows: under int8's threshold
    for number in (0, 1):  # every batch put to the oracle was answered and stored
        batch = steps[f"iterate_{number}"]["query"] + steps[f"iterate_{number}"]["padding"]
        assert steps[f"oracle_{number}"]["labels"] >= batch > 0
        assert steps[f"page_reads_{number}"]["rows"] >= batch  # the page reads the same batch
    answers = result["backends"]["sqlite-local"]["answers"]
    assert answers["tap_top100_entropy"] == 100 and answers["tap_class_counts"] >= 1
    assert answers["tap_queries"] == steps["iterate_0"]["query"] + steps["iterate_1"]["query"]
    assert steps["classify"]["ratio_to_bare_network"] > 0
    assert not list(tmp_path.glob("bench-scale-campaign-*"))  # files and homes removed
