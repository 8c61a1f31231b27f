"""Scoring a pool at the CPU's limit: float32, bfloat16 or int8, chosen by what the CPU has.

Classifying the 4.1 M-spectrum LAMOST pool is ~140 TFLOP of the reference net. In
float32 on two AVX2 cores that is many minutes; CPUs with AMX (``amx_bf16``,
``amx_int8``) or AVX-512 BF16/VNNI run the same network in bfloat16 or int8 several
times faster. Three scorers compute the same forward pass:

``fp32``  Keras/TensorFlow in float32 -- the reference, always available;
``bf16``  Keras under the ``mixed_bfloat16`` policy (weights copied from the float32
          net; the softmax stays float32), fast where oneDNN has AMX or AVX-512 BF16;
``int8``  the network exported to ONNX and statically quantised (per-channel QDQ,
          calibrated on rows of the pool being scored), run by onnxruntime; fast
          with VNNI (AVX-512 VNNI, AVX-VNNI or AMX-INT8).

:func:`choose_precision` maps a requested precision ("auto" by default) and the CPU
flags to the one that will actually run: a reduced precision whose instructions the
CPU lacks falls back to float32, which is never slower than an emulated bf16 or int8.
The flags are read from ``/proc/cpuinfo`` unless given (a setting can pass a
simulated set, which is how the fallback is tested on any machine).
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

#: The precisions a caller may ask for; "auto" lets the CPU decide.
PRECISIONS = ("auto", "fp32", "bf16", "int8")
#: CPU flags (as /proc/cpuinfo spells them) with which a reduced precision runs natively.
#: int8 runs on AVX2's integer multiply-adds too: measured 2-3.5x fp32 on AVX2-only
#: Zen 3 (docs/performance.md); bf16 without AVX-512 BF16/AMX is emulated and no
#: faster than fp32, so "auto" never picks it there.
FAST_FLAGS = {
    "bf16": frozenset({"amx_bf16", "avx512_bf16"}),
    "int8": frozenset({"amx_int8", "avx512_vnni", "avx_vnni", "avx2"}),
}
#: Below this many rows "auto" scores in float32: building and checking the int8
#: session (~3 s) costs more than it saves on a small pool (the demo's 2 000 rows
#: take ~1.5 s in float32).
REDUCED_MIN_ROWS = 20_000
#: int8 is used for a pool only if its argmax agrees with float32 on at least this
#: share of a check sample of that pool (:func:`agreement`); the issue's accuracy bar.
INT8_AGREEMENT = 0.999
#: Layers of the int8 network left in float32 (see :func:`quantized_onnx`). Measured on
#: a trained reference net and 20 000 simulated LAMOST spectra (docs/performance.md):
#: all-int8 agreed with fp32 on 99.895 % of argmaxes (largest |dp| 0.69); the first
#: convolution in float32 (0.2 % of the FLOPs) gave 99.985 % (|dp| <= 0.06).
FLOAT_LAYERS: tuple[str, ...] = ("first",)

#: A scorer: (n, m) float32 finite features -> ((n, k) probabilities, (n, d) embedding).
Scorer = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def cpu_flags(text: str | None = None) -> frozenset[str]:
    """The CPU's feature flags: from ``text`` ("avx2 amx_bf16 ..."), else /proc/cpuinfo."""
    if text is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return frozenset()
        line = next((s for s in cpuinfo.splitlines() if s.startswith(("flags", "Features"))), "")
        text = line.partition(":")[2]
    return frozenset(text.replace(",", " ").split())


def isa(flags: Iterable[str]) -> str:
    """The widest matrix/vector ISA among ``flags``, in words (printed by the benchmark)."""
    flags = set(flags)
    for names, words in (
        ({"amx_bf16", "amx_int8"}, "AMX (bf16, int8)"),
        ({"avx512_bf16"}, "AVX-512 BF16"),
        ({"avx512_vnni"}, "AVX-512 VNNI"),
        ({"avx512f"}, "AVX-512"),
        ({"avx_vnni"}, "AVX2 + AVX-VNNI"),
        ({"avx2"}, "AVX2"),
    ):
        if names & flags:
            return words
    return "baseline (no AVX2)"


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def choose_precision(requested: str, flags: Iterable[str], n_rows: int | None = None) -> str:
    """The precision that runs: ``requested`` where the CPU has its instructions, else fp32.

    "auto" prefers bf16 (AMX/AVX-512 BF16), then int8 (AVX2 or better, with
    onnxruntime), then fp32; for a pool of fewer than :data:`REDUCED_MIN_ROWS`
    rows it keeps fp32. An explicit "bf16" needs AMX/AVX-512 BF16 and an explicit
    "int8" at least AVX2 (:data:`FAST_FLAGS`); without them it gets fp32: the
    emulated path is slower than float32 and no more accurate. int8 is still
    subject to the per-pool agreement check (:func:`agreement`).
    """
    from service.reasons import AlvoError, Reason

    if requested not in PRECISIONS:
        raise AlvoError(Reason.BAD_PARAMETER, f"precision {requested!r} not one of {PRECISIONS}")
    flags = frozenset(flags)

    def runs(precision: str, table: dict[str, frozenset[str]]) -> bool:
        return bool(table[precision] & flags) and (precision != "int8" or onnxruntime_available())

    if requested == "auto":
        if n_rows is not None and n_rows < REDUCED_MIN_ROWS:
            return "fp32"
        return next((p for p in ("bf16", "int8") if runs(p, FAST_FLAGS)), "fp32")
    return requested if requested == "fp32" or runs(requested, FAST_FLAGS) else "fp32"


def agreement(reference: Scorer, candidate: Scorer, rows: np.ndarray, batch: int = 4096) -> float:
    """Share of ``rows`` whose predicted class ``candidate`` and ``reference`` agree on.

    Why per pool: int8's ranges are calibrated on the pool's own rows, and a pool
    unlike the one the accuracy was measured on (other survey, other noise) could
    clip differently. Checking a sample of *other* rows than the calibration ones
    costs ~1-2 s and turns "measured once on simulated spectra" into "checked on
    this pool, else float32".
    """
    if not len(rows):
        return 1.0
    same = 0
    for start in range(0, len(rows), batch):  # one batch's activations at a time
        part = rows[start : start + batch]
        same += int(np.sum(reference(part)[0].argmax(axis=1) == candidate(part)[0].argmax(axis=1)))
    return same / len(rows)


# --------------------------------------------------------------------------- scorers
def fp32_scorer(network: Any) -> Scorer:
    """The network's own float32 forward pass (one trace for any batch size)."""
    return _keras_scorer(network)


def bf16_scorer(network: Any) -> Scorer:
    """A ``mixed_bfloat16`` copy of ``network`` (bf16 compute, float32 weights and softmax)."""
    import keras

    def to_bf16(layer: Any) -> Any:
        config = layer.get_config()
        config["dtype"] = "float32" if layer.name == "probabilities" else "mixed_bfloat16"
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(network, clone_function=to_bf16)
    copy.set_weights(network.get_weights())
    return _keras_scorer(copy)


def _keras_scorer(network: Any) -> Scorer:
    import keras
    import tensorflow as tf

    both = keras.Model(
        network.inputs, [network.output, network.get_layer("embedding").output], name="scoring"
    )
    signature = [tf.TensorSpec((None, network.input_shape[1], 1), tf.float32)]

    @tf.function(input_signature=signature)
    def forward(x: Any) -> Any:
        p, e = both(x, training=False)
        return tf.cast(p, tf.float32), tf.cast(e, tf.float32)

    def score(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p, e = forward(x[:, :, None])
        return p.numpy(), e.numpy()

    return score


def int8_scorer(
    network: Any,
    calibration: np.ndarray,
    threads: int = 2,
    keep_float: tuple[str, ...] = FLOAT_LAYERS,
) -> Scorer:
    """The network as an int8 onnxruntime session, calibrated on ``calibration`` rows."""
    import onnxruntime as ort

    model = quantized_onnx(network, calibration, keep_float)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )

    def score(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p, e = session.run(["probabilities", "embedding"], {"features": x})
        return p, e

    return score


def onnx_fp32_scorer(network: Any, threads: int = 2) -> Scorer:
    """The float32 ONNX export run by onnxruntime (for comparison in the benchmark)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        to_onnx(network).SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    return lambda x: tuple(session.run(["probabilities", "embedding"], {"features": x}))  # type: ignore[return-value]


def make_scorer(network: Any, precision: str, calibration: np.ndarray | None = None) -> Scorer:
    """The scorer of an already chosen precision ("fp32", "bf16" or "int8")."""
    if precision == "bf16":
        return bf16_scorer(network)
    if precision == "int8":
        if calibration is None:
            raise ValueError("int8 scoring needs calibration rows")
        return int8_scorer(network, calibration)
    return fp32_scorer(network)


# ----------------------------------------------------------------------- ONNX export
def to_onnx(network: Any) -> Any:
    """The Keras CNN as a float32 ONNX graph with outputs ``probabilities`` and ``embedding``.

    Walks the layers in order: Conv1D (batch normalisation folded in), MaxPooling1D,
    Flatten (channels-last order, as Keras flattens), Dense, Activation; Dropout is
    dropped (inference). Input ``features`` is (n, m) float32.
    """
    from onnx import TensorProto, helper, numpy_helper

    nodes: list[Any] = []
    weights: list[Any] = []
    counter = iter(range(10_000))

    def constant(array: np.ndarray) -> str:
        name = f"w{next(counter)}"
        weights.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(op: str, inputs: list[str], **attributes: Any) -> str:
        out = f"t{next(counter)}"
        nodes.append(helper.make_node(op, inputs, [out], name=f"{op}_{out}", **attributes))
        return out

    def activation(x: str, name: str) -> str:
        if name == "relu":
            return node("Relu", [x])
        if name == "softmax":
            return node("Softmax", [x], axis=-1)
        if name == "linear":
            return x
        raise ValueError(f"activation {name!r} has no ONNX mapping here")

    n_pixels = int(network.input_shape[1])
    x = node("Reshape", ["features", constant(np.array([-1, 1, n_pixels], np.int64))])
    layers = [layer for layer in network.layers if layer.__class__.__name__ != "InputLayer"]
    outputs: dict[str, str] = {}
    pending_conv: tuple[np.ndarray, np.ndarray, str] | None = None
    for layer in layers:
        kind = layer.__class__.__name__
        if pending_conv is not None and kind != "BatchNormalization":
            kernel, bias, padding = pending_conv
            x = _conv(node, constant, x, kernel, bias, padding)
            pending_conv = None
        if kind == "Conv1D":
            params = layer.get_weights()
            kernel = params[0]  # (k, in, out)
            bias = params[1] if len(params) > 1 else np.zeros(kernel.shape[2], np.float32)
            pending_conv = (kernel, bias, layer.padding)
            if layer.activation.__name__ != "linear":
                x = _conv(node, constant, x, kernel, bias, layer.padding)
                pending_conv = None
                x = activation(x, layer.activation.__name__)
        elif kind == "BatchNormalization":
            assert pending_conv is not None, "batch normalisation follows a convolution"
            gamma, beta, mean, variance = layer.get_weights()
            scale = gamma / np.sqrt(variance + layer.epsilon)
            kernel, bias, padding = pending_conv
            pending_conv = (kernel * scale, (bias - mean) * scale + beta, padding)
        elif kind == "Activation":
            x = activation(x, layer.activation.__name__)
        elif kind == "MaxPooling1D":
            size = int(layer.pool_size[0])
            x = node("MaxPool", [x], kernel_shape=[size], strides=[int(layer.strides[0])])
        elif kind == "Flatten":
            x = node("Transpose", [x], perm=[0, 2, 1])
            x = node("Flatten", [x], axis=1)
        elif kind == "Dense":
            kernel, bias = layer.get_weights()
            x = node("Gemm", [x, constant(kernel), constant(bias)])
            x = activation(x, layer.activation.__name__)
            outputs[layer.name] = x
        elif kind == "Dropout":
            continue
        else:
            raise ValueError(f"layer {kind} has no ONNX mapping here")
    nodes.append(helper.make_node("Identity", [outputs["probabilities"]], ["probabilities"]))
    nodes.append(helper.make_node("Identity", [outputs["embedding"]], ["embedding"]))
    graph = helper.make_graph(
        nodes,
        network.name,
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, n_pixels])],
        [
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, None]),
            helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [None, None]),
        ],
        weights,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _conv(
    node: Any, constant: Any, x: str, kernel: np.ndarray, bias: np.ndarray, padding: str
) -> str:
    width = kernel.shape[0]
    pads = [(width - 1) // 2, width // 2] if padding == "same" else [0, 0]
    w = np.transpose(kernel, (2, 1, 0)).astype(np.float32)  # (out, in, k)
    return node("Conv", [x, constant(w), constant(bias.astype(np.float32))], pads=pads)


def quantized_onnx(
    network: Any, calibration: np.ndarray, keep_float: tuple[str, ...] = FLOAT_LAYERS
) -> Any:
    """The ONNX export quantised to int8 (QDQ, per-channel weights, u8 activations).

    ``keep_float``: "first" (the first convolution, which sees the raw features with
    their rare tall emission peaks) and/or "last" (the output layer) stay float32.
    """
    import tempfile

    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    rows = np.asarray(calibration, dtype=np.float32)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(np.array_split(rows, max(1, len(rows) // 256)))

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.batches, None)
            return None if batch is None else {"features": batch}

    graph = to_onnx(network)
    weighted = [n.name for n in graph.graph.node if n.op_type in ("Conv", "Gemm")]
    excluded = [weighted[0]] * ("first" in keep_float) + [weighted[-1]] * ("last" in keep_float)
    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder, "fp32.onnx"), Path(folder, "int8.onnx")
        onnx.save(graph, source)
        with _quiet_preprocessing_advice():
            quantize_static(
                str(source),
                str(target),
                Reader(),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                op_types_to_quantize=["Conv", "Gemm", "MatMul"],
                nodes_to_exclude=excluded,
            )
        return onnx.load(target)


class _PreprocessingAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Please consider")


@contextlib.contextmanager
def _quiet_preprocessing_advice() -> Iterator[None]:
    """Drop onnxruntime's "consider pre-processing" advice, logged twice on the root logger
    for every quantisation: shape inference changes nothing on this fixed graph, and
    the advice filled every job's log and the benchmark's output."""
    root = logging.getLogger()
    advice = _PreprocessingAdvice()
    root.addFilter(advice)
    try:
        yield
    finally:
        root.removeFilter(advice)


@functools.lru_cache(maxsize=1)
def machine_flags() -> frozenset[str]:
    """This machine's CPU flags, read once per process."""
    return cpu_flags()
