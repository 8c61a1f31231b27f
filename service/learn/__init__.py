"""The learning core: CNN, balancing, query strategies, Hou et al. baseline, simulation.

Plain functions and small classes on numpy arrays (no web, database or file
formats besides the model file), so the same code runs in a test, a local worker
and on a Dask cluster. TensorFlow is imported only inside the functions that
need it, so importing this package is cheap.
"""

from service.learn.balance import BALANCING, balance
from service.learn.hou import hou_rule
from service.learn.labels import training_targets
from service.learn.loop import (
    ActiveLearningConfig,
    IterationResult,
    Problem,
    SimulatedOracle,
    run_active_learning,
)
from service.learn.model import (
    VARIANTS,
    SpectrumClassifier,
    TrainConfig,
    build_network,
    configure_threads,
)
from service.learn.precision import clopper_pearson_lower, precision_sample
from service.learn.query import STRATEGIES, entropy, select_query
from service.learn.scoring import PRECISIONS, choose_precision, cpu_flags, isa
from service.learn.step import Batch, score_batch, select_batch

__all__ = [
    "BALANCING",
    "PRECISIONS",
    "STRATEGIES",
    "VARIANTS",
    "ActiveLearningConfig",
    "Batch",
    "IterationResult",
    "Problem",
    "SimulatedOracle",
    "SpectrumClassifier",
    "TrainConfig",
    "balance",
    "build_network",
    "choose_precision",
    "clopper_pearson_lower",
    "configure_threads",
    "cpu_flags",
    "entropy",
    "hou_rule",
    "isa",
    "precision_sample",
    "run_active_learning",
    "score_batch",
    "select_batch",
    "select_query",
    "training_targets",
]
