"""service/jobs/eta.py: the jobInfo fraction is the part of the expected time spent."""

from __future__ import annotations

import pytest

from service.jobs.eta import Stages, epochs_left


def test_epochs_left_counts_patience_from_the_best_epoch_not_to_the_cap():
    assert epochs_left([1.0, 0.9], patience=10, cap=100) == 10  # improving: patience ahead
    assert epochs_left([1.0, 0.9, 0.95, 0.97], patience=10, cap=100) == 8  # best 2 epochs ago
    assert epochs_left([1.0, 0.9, 0.8], patience=10, cap=5) == 2  # the cap comes first
    assert epochs_left([0.5] + [0.6] * 10, patience=10, cap=100) == 0  # stops now
    assert epochs_left([], patience=10, cap=7) == 7


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_fraction_is_elapsed_over_elapsed_plus_left_and_none_when_unknown():
    reports: list[tuple[float | None, str]] = []
    clock = Clock()
    stages = Stages(lambda f, m="": reports.append((f, m)), [("a", 10.0), ("b", None)], clock)
    stages.begin("a", "a starts")
    assert reports[-1] == (None, "a starts")  # b's time is not known: no fraction
    stages.set("b", 30.0)
    clock.now = 10.0
    stage = stages.begin("b", "b starts")
    assert reports[-1][0] == pytest.approx(10 / 40)
    clock.now = 20.0
    stage.fraction(0.25, "a quarter of b's rows")  # 10 s for 25 %: 30 s more
    assert reports[-1][0] == pytest.approx(20 / 50)
    stage.seconds_left(5.0, "b knows better")
    assert reports[-1][0] == pytest.approx(20 / 25)
