"""ONNX export: a model's inference form as an ONNX file that onnxruntime (or any ONNX runtime)
runs without saddlepoint, built with the ``onnx`` package's helpers (``pip install
'saddlepoint[onnx]'``).

Each layer becomes the ONNX operators that compute what the layer computes in eval mode:

==================================  ============================================================
layer                               ONNX
==================================  ============================================================
``Dense`` (``Linear``)              ``Gemm`` with ``transB=1`` (the weight stays (out, in))
``ReLU``, ``Sigmoid``, ``Tanh``     ``Relu``, ``Sigmoid``, ``Tanh``
``HardSigmoid``                     ``HardSigmoid`` with ``alpha=1/6``, ``beta=0.5``
                                    (``relu6(x + 3)/6 = clip(x/6 + 1/2, 0, 1)``); in float64
                                    ``Clip(x + 3, 0, 6)/6``, which onnxruntime runs
``LeakyReLU``                       ``LeakyRelu`` with ``alpha = negative_slope``
``Identity``, ``Dropout``           ``Identity`` (dropout is the identity in eval mode)
``BatchNorm1d``, ``BatchNorm2d``    ``BatchNormalization`` with the running statistics and
                                    ``eps``; without running statistics (eval mode then uses
                                    the batch's), the batch statistics by ``ReduceMean``
``LayerNorm``                       ``LayerNormalization`` (opset >= 17), or its arithmetic
                                    (``ReduceMean``, ``Sub``, ``Sqrt``, ...) under opset 17
``Conv2d``                          ``Conv`` (stride, padding, dilation, groups, bias)
``MaxPool2d``                       ``MaxPool`` (``ceil_mode=0``)
``AvgPool2d``                       ``AveragePool`` with ``count_include_pad=1``: the library's
                                    padding counts as zeros, as PyTorch's default
``AdaptiveAvgPool2d``               ``GlobalAveragePool`` to 1x1; ``AveragePool`` when the input's
                                    size is a multiple of the output's (the windows are then
                                    equal and disjoint); otherwise NotImplementedError
``Flatten``, ``Unflatten``          ``Reshape``
``Sequential``                      its layers in order, nested ones too
==================================  ============================================================

The batch dimension is dynamic (named ``batch``); the input is named ``input``, the output
``output``. The file holds the network alone: a classifier's output is its logits, as
``model(x)`` returns them (the softmax or sigmoid lives in the loss, not the model), and a run
folder's preprocessing and target encoding stay with the run (``saddlepoint.load_run``).

A float64 model is written in float64 and is valid ONNX, but onnxruntime's CPU provider (1.32)
has no float64 ``Conv``, ``AveragePool`` or ``GlobalAveragePool``: export such a model after
``model.to(numpy.float32)``. ONNX attributes are float32, so ``LeakyReLU``'s slope and the
``eps`` of ``BatchNormalization`` and ``LayerNormalization`` are rounded to float32 in any file.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..nn import (
    AdaptiveAvgPool2d,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    Dense,
    Dropout,
    Flatten,
    HardSigmoid,
    Identity,
    LayerNorm,
    LeakyReLU,
    MaxPool2d,
    ReLU,
    Sequential,
    Sigmoid,
    Tanh,
    Unflatten,
)
from ..validation import is_integer
from .files import atomic_write

#: The opset the file declares unless ``save_onnx`` is told another: the first with
#: ``LayerNormalization``, run by onnxruntime >= 1.14.
DEFAULT_OPSET = 17
#: The oldest opset written (``Gemm`` with an optional bias, ``Reshape`` with 0 = "keep").
MIN_OPSET = 13

#: What ``save_onnx`` and ``saddlepoint train --onnx`` say when the onnx package is missing.
MISSING_ONNX = "ONNX export needs the onnx package: pip install 'saddlepoint[onnx]'"

#: A shape as the export follows it: the batch size (index 0) is None, the others are known
#: sizes, but for a dimension a ``Flatten(0)`` merged with the batch's: its size as a text
#: (``"batch*486"``), the symbol the file gives it.
Shape = tuple

_UNARY = {ReLU: "Relu", Sigmoid: "Sigmoid", Tanh: "Tanh", Identity: "Identity", Dropout: "Identity"}
#: The layers that take input of any shape and keep it: they do not tell the model's input size.
_ANY_SHAPE = frozenset(_UNARY) | {LeakyReLU, HardSigmoid}


def require_onnx():
    """The ``onnx`` module; ImportError with :data:`MISSING_ONNX` when it is not installed."""
    try:
        import onnx
    except ImportError:
        raise ImportError(MISSING_ONNX) from None
    return onnx


def save_onnx(model, path, *, input_shape=None, opset: int = DEFAULT_OPSET) -> None:
    """Writes ``model``'s inference form (eval mode: running statistics, no dropout) to ``path``
    as an ONNX model, checked by ``onnx.checker.check_model`` (with shape inference) before it
    is written, atomically. The model itself is left as it was (its mode included).

    Parameters
    ----------
    model : Module
        A layer of the library or a (nested) ``Sequential`` of them; see the module's table.
        The output is what ``model.eval()(x)`` returns: logits for a classifier.
    path : str or Path
        The file to write (``.onnx``), in a folder that exists.
    input_shape : sequence of int, optional
        The shape of one sample, without the batch dimension: ``(C, H, W)`` for images. By
        default it comes from the first layer that fixes it: ``(in_features,)`` for
        ``Dense``, ``(C·H·W,)`` for ``Unflatten(1, (C, H, W))``, ``(num_features,)`` for
        ``BatchNorm1d``, ``normalized_shape`` for ``LayerNorm``. A model that starts with a
        convolution or a pooling needs it (nothing in the model says the images' size).
    opset : int, default 17
        The ONNX opset the file declares, from 13 to the newest the installed onnx knows.
        Under 17, ``LayerNorm`` is written as its arithmetic.

    Raises
    ------
    TypeError
        A layer save_onnx does not know (a user's own Module), named by its class and its
        position in the model; a model whose parameters mix float32 and float64.
    NotImplementedError
        An ``AdaptiveAvgPool2d`` whose output size does not divide the input size (not 1x1),
        or an ``Unflatten`` of the batch dimension.
    ValueError
        A bad ``input_shape`` or ``opset``; a missing ``input_shape`` the model needs; an input
        shape a layer does not take (named with the shape it gets).
    FileNotFoundError
        The folder of ``path`` does not exist.
    ImportError
        The onnx package is not installed.

    Notes
    -----
    The input is ``input`` of shape (batch, \\*input_shape) and dtype float32 or float64, the
    model's parameters' (float32 for a model without any); the output is ``output``.

    Examples
    --------
    >>> import onnxruntime
    >>> model = sp.mlp([4, 8, 3], rng=0)
    >>> sp.save_onnx(model, "model.onnx")
    >>> session = onnxruntime.InferenceSession("model.onnx")
    >>> x = np.ones((2, 4), dtype=np.float32)
    >>> bool(np.allclose(session.run(None, {"input": x})[0], model.eval()(x), atol=1e-5))
    True
    """
    onnx = require_onnx()
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"path {str(path)!r}: the folder {str(path.parent)!r} does not exist")
    if path.is_dir():
        raise IsADirectoryError(f"path {str(path)!r} is a folder, not a file")
    newest = onnx.defs.onnx_opset_version()
    if not is_integer(opset) or not MIN_OPSET <= opset <= newest:
        raise ValueError(
            f"opset must be an integer from {MIN_OPSET} to {newest} (the installed onnx's newest), got {opset!r}"
        )
    layers = list(_leaves(model, ""))
    for where, layer in layers:
        _check_known(where, layer)
    dtype = _model_dtype(model)
    sample_shape = _input_shape(layers, input_shape)
    graph = _Graph(onnx, int(opset), dtype)
    name, shape = "input", (None,) + sample_shape
    for where, layer in layers:
        name, shape = _CONVERTERS[type(layer)](graph, where, layer, name, shape)
    graph.finish(name)
    elem_type = onnx.helper.np_dtype_to_tensor_dtype(dtype)
    inputs = [onnx.helper.make_tensor_value_info("input", elem_type, _dims((None,) + sample_shape))]
    outputs = [onnx.helper.make_tensor_value_info("output", elem_type, _dims(shape))]
    onnx_graph = onnx.helper.make_graph(
        graph.nodes, "saddlepoint", inputs, outputs, initializer=graph.initializers, doc_string=repr(model)
    )
    opsets = [onnx.helper.make_opsetid("", int(opset))]
    # The oldest IR version that carries this opset, so that older runtimes read the file too.
    proto = onnx.helper.make_model(
        onnx_graph,
        opset_imports=opsets,
        ir_version=onnx.helper.find_min_ir_version_for(opsets),
        producer_name="saddlepoint",
    )
    onnx.checker.check_model(proto, full_check=True)
    atomic_write(path, proto.SerializeToString())


def _dims(shape: Shape) -> list:
    """An ONNX value's dimensions: the batch size as the symbol ``batch``."""
    return ["batch" if n is None else n for n in shape]


def _leaves(model, where: str):
    """``(position, layer)`` of every layer in order, nested ``Sequential`` opened; the position
    is the state-dict prefix (``"2.0"``), or ``""`` for a model that is one layer."""
    if type(model) is Sequential:
        for i, layer in enumerate(model.layers):
            yield from _leaves(layer, f"{where}.{i}" if where else str(i))
    else:
        yield where, model


def _describe(where: str, layer) -> str:
    return f"layer {where} ({type(layer).__name__})" if where else f"the model ({type(layer).__name__})"


def _model_dtype(model) -> np.dtype:
    """The dtype of the model's parameters and floating-point buffers (float32 if it has none)."""
    arrays = [p.data for p in model.parameters()] + [b for _, b in model.named_buffers()]
    dtypes = {a.dtype for a in arrays if a.dtype.kind == "f"}
    if len(dtypes) > 1:
        raise TypeError(
            f"the model's parameters must all be float32 or all float64 to export, got {sorted(map(str, dtypes))}"
        )
    return dtypes.pop() if dtypes else np.dtype(np.float32)


def _input_shape(layers, input_shape) -> Shape:
    """One sample's shape: ``input_shape`` checked, or what the first layers fix."""
    if input_shape is not None:
        try:
            sizes = tuple(input_shape)
        except TypeError:  # not a sequence
            sizes = ()
        if not sizes or not all(is_integer(n) and n >= 1 for n in sizes):
            raise ValueError(
                f"input_shape must be a non-empty sequence of positive sizes of one sample "
                f"(without the batch dimension), got {input_shape!r}"
            )
        return tuple(int(n) for n in sizes)
    for where, layer in layers:
        kind = type(layer)
        if kind is Dense:
            return (layer.in_features,)
        if kind is Unflatten and layer.dim in (1, -1):
            return (math.prod(layer.unflattened_size),)
        if kind is BatchNorm1d:
            return (layer.num_features,)
        if kind is LayerNorm:
            return tuple(layer.normalized_shape)
        if kind not in _ANY_SHAPE:
            raise ValueError(
                f"save_onnx needs input_shape=(...) (one sample's shape, without the batch "
                f"dimension, such as (channels, height, width)): the model starts with "
                f"{_describe(where, layer)}, which does not fix the size of its input"
            )
    raise ValueError(
        "save_onnx needs input_shape=(...) (one sample's shape, without the batch dimension): "
        "no layer of the model fixes the size of its input"
    )


class _Graph:
    """The nodes and initializers being built, and their unique names."""

    def __init__(self, onnx, opset: int, dtype: np.dtype):
        self.onnx, self.opset, self.dtype = onnx, opset, dtype
        self.nodes: list = []
        self.initializers: list = []
        self._names: set[str] = {"input", "output"}

    def _unique(self, name: str) -> str:
        candidate, n = name, 1
        while candidate in self._names:
            candidate, n = f"{name}_{n}", n + 1
        self._names.add(candidate)
        return candidate

    def constant(self, name: str, value, dtype=None) -> str:
        """An initializer holding ``value`` (the model's dtype unless ``dtype``); its name."""
        array = np.asarray(value, dtype=self.dtype if dtype is None else dtype)
        name = self._unique(name)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], where: str, **attributes) -> str:
        """One node computing ``op`` of ``inputs`` (``""``: an optional input left out); its output."""
        output = self._unique(f"{where or 'model'}/{op}")
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [output], name=output, **attributes))
        return output

    def reduce_mean(self, x: str, axes: list[int], where: str) -> str:
        """``ReduceMean`` keeping the reduced axes (an attribute before opset 18, an input since)."""
        if self.opset >= 18:
            return self.node(
                "ReduceMean", [x, self.constant(_prefix(where, "axes"), axes, np.int64)], where, keepdims=1
            )
        return self.node("ReduceMean", [x], where, axes=axes, keepdims=1)

    def finish(self, last: str) -> None:
        """Names the last value ``output`` (an ``Identity`` of the input for an empty model)."""
        if last == "input":
            self.nodes.append(self.onnx.helper.make_node("Identity", ["input"], ["output"], name="output"))
            return
        if self.nodes[-1].output[0] == last:  # the last node computes it: rename its output
            self.nodes[-1].output[0] = "output"
        else:
            self.nodes.append(self.onnx.helper.make_node("Identity", [last], ["output"], name="output"))


def _prefix(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _check_known(where: str, layer) -> None:
    """TypeError unless ``layer`` is one of the library's layers (a subclass is not: its
    ``forward`` may compute something else)."""
    kind = type(layer)
    if kind not in _CONVERTERS:
        known = ", ".join(sorted(cls.__name__ for cls in _CONVERTERS))
        raise TypeError(
            f"save_onnx cannot export {_describe(where, layer)}: it knows only the library's layers "
            f"({known}, and Sequential), not {kind.__module__}.{kind.__qualname__}"
        )


def _shape_text(shape: Shape) -> str:
    return "(" + ", ".join("batch" if n is None else str(n) for n in shape) + ")"


def _wrong_input(where: str, layer, expected: str, shape: Shape) -> ValueError:
    return ValueError(
        f"{_describe(where, layer)} takes input of shape {expected}, but gets {_shape_text(shape)} "
        f"(from input_shape and the layers before it)"
    )


def _unary(graph, where, layer, x, shape):
    return graph.node(_UNARY[type(layer)], [x], where), shape


def _leaky_relu(graph, where, layer, x, shape):
    return graph.node("LeakyRelu", [x], where, alpha=float(layer.negative_slope)), shape


def _hard_sigmoid(graph, where, layer, x, shape):
    if graph.dtype == np.float64:
        # onnxruntime has no float64 HardSigmoid: relu6(x + 3)/6 as it reads, with Clip.
        shifted = graph.node("Add", [x, graph.constant(_prefix(where, "three"), 3.0)], where)
        bounds = [graph.constant(_prefix(where, "zero"), 0.0), graph.constant(_prefix(where, "six"), 6.0)]
        clipped = graph.node("Clip", [shifted, *bounds], where)
        return graph.node("Div", [clipped, bounds[1]], where), shape
    # relu6(x + 3)/6 = clip(x/6 + 1/2, 0, 1): ONNX's max(0, min(1, alpha·x + beta)).
    return graph.node("HardSigmoid", [x], where, alpha=1.0 / 6.0, beta=0.5), shape


def _dense(graph, where, layer, x, shape):
    if len(shape) != 2 or shape[1] != layer.in_features:
        raise _wrong_input(where, layer, f"(batch, {layer.in_features})", shape)
    weight = graph.constant(_prefix(where, "weight"), layer.weight.data)
    bias = "" if layer.bias is None else graph.constant(_prefix(where, "bias"), layer.bias.data)
    return graph.node("Gemm", [x, weight, bias] if bias else [x, weight], where, transB=1), (
        shape[0],
        layer.out_features,
    )


def _batch_norm(graph, where, layer, x, shape):
    c = layer.num_features
    if type(layer) is BatchNorm2d:
        if len(shape) != 4 or shape[1] != c:
            raise _wrong_input(where, layer, f"(batch, {c}, height, width)", shape)
    elif len(shape) not in (2, 3) or shape[1] != c:
        raise _wrong_input(where, layer, f"(batch, {c}) or (batch, {c}, length)", shape)
    weight = np.ones(c) if layer.weight is None else layer.weight.data
    bias = np.zeros(c) if layer.bias is None else layer.bias.data
    if not layer.track_running_stats:  # eval mode normalizes with the batch's statistics
        per_channel = (c,) + (1,) * (len(shape) - 2)
        axes = [0] + list(range(2, len(shape)))
        return _normalize(
            graph, where, x, axes, layer.eps, weight.reshape(per_channel), bias.reshape(per_channel)
        ), shape
    inputs = [
        x,
        graph.constant(_prefix(where, "weight"), weight),
        graph.constant(_prefix(where, "bias"), bias),
        graph.constant(_prefix(where, "running_mean"), layer.running_mean),
        graph.constant(_prefix(where, "running_var"), layer.running_var),
    ]
    return graph.node("BatchNormalization", inputs, where, epsilon=float(layer.eps)), shape


def _normalize(graph, where, x, axes, eps, weight, bias) -> str:
    """``(x − mean)/√(var + eps)·weight + bias`` with the mean and biased variance over ``axes``."""
    centered = graph.node("Sub", [x, graph.reduce_mean(x, axes, where)], where)
    variance = graph.reduce_mean(graph.node("Mul", [centered, centered], where), axes, where)
    scale = graph.node(
        "Sqrt", [graph.node("Add", [variance, graph.constant(_prefix(where, "eps"), eps)], where)], where
    )
    normalized = graph.node("Div", [centered, scale], where)
    if weight is None:
        return normalized
    scaled = graph.node("Mul", [normalized, graph.constant(_prefix(where, "weight"), weight)], where)
    return graph.node("Add", [scaled, graph.constant(_prefix(where, "bias"), bias)], where)


def _layer_norm(graph, where, layer, x, shape):
    k = len(layer.normalized_shape)
    if len(shape) <= k or tuple(shape[-k:]) != tuple(layer.normalized_shape):
        raise _wrong_input(
            where, layer, f"(batch, ..., {', '.join(map(str, layer.normalized_shape))})", shape
        )
    weight = None if layer.weight is None else layer.weight.data
    bias = None if layer.bias is None else layer.bias.data
    if graph.opset < 17:
        if weight is not None and bias is None:
            bias = np.zeros_like(weight)
        return _normalize(graph, where, x, list(range(-k, 0)), layer.eps, weight, bias), shape
    scale = graph.constant(
        _prefix(where, "weight"), np.ones(layer.normalized_shape) if weight is None else weight
    )
    inputs = [x, scale] + ([] if bias is None else [graph.constant(_prefix(where, "bias"), bias)])
    return graph.node("LayerNormalization", inputs, where, axis=-k, epsilon=float(layer.eps)), shape


def _image(where, layer, shape, channels=None) -> tuple[int, int]:
    """The height and width of an image batch ``shape`` a layer takes."""
    if len(shape) != 4 or (channels is not None and shape[1] != channels):
        raise _wrong_input(where, layer, f"(batch, {channels or 'channels'}, height, width)", shape)
    return shape[2], shape[3]


def _pair(value) -> tuple[int, int]:
    return (int(value), int(value)) if is_integer(value) else (int(value[0]), int(value[1]))


def _pooled(where, layer, size: tuple[int, int], kernel, stride, padding, dilation=(1, 1)) -> tuple[int, int]:
    """The output's height and width of a window operation; ValueError if the windows do not fit."""
    out = tuple(
        (n + 2 * p - d * (k - 1) - 1) // s + 1
        for n, k, s, p, d in zip(size, kernel, stride, padding, dilation)
    )
    if min(out) < 1:
        raise ValueError(
            f"{_describe(where, layer)}: its window does not fit an image of {size[0]}x{size[1]} "
            f"(see input_shape and the layers before it)"
        )
    return out[0], out[1]


def _conv(graph, where, layer, x, shape):
    size = _image(where, layer, shape, layer.in_channels)
    out = _pooled(where, layer, size, layer.kernel_size, layer.stride, layer.padding, layer.dilation)
    inputs = [x, graph.constant(_prefix(where, "weight"), layer.weight.data)]
    if layer.bias is not None:
        inputs.append(graph.constant(_prefix(where, "bias"), layer.bias.data))
    ph, pw = layer.padding
    attributes = dict(
        kernel_shape=list(layer.kernel_size),
        strides=list(layer.stride),
        pads=[ph, pw, ph, pw],
        dilations=list(layer.dilation),
        group=layer.groups,
    )
    return graph.node("Conv", inputs, where, **attributes), (shape[0], layer.out_channels) + out


def _window_pool(graph, where, layer, x, shape):
    kernel, stride, padding = (_pair(v) for v in (layer.kernel_size, layer.stride, layer.padding))
    out = _pooled(where, layer, _image(where, layer, shape), kernel, stride, padding)
    attributes = dict(kernel_shape=list(kernel), strides=list(stride), pads=[padding[0], padding[1]] * 2)
    if type(layer) is AvgPool2d:  # the library counts the zero padding in each window's mean
        node = graph.node("AveragePool", [x], where, count_include_pad=1, **attributes)
    else:
        node = graph.node("MaxPool", [x], where, **attributes)
    return node, shape[:2] + out


def _adaptive_avg_pool(graph, where, layer, x, shape):
    (h, w), (oh, ow) = _image(where, layer, shape), _pair(layer.output_size)
    if (oh, ow) == (1, 1):
        return graph.node("GlobalAveragePool", [x], where), shape[:2] + (1, 1)
    if h % oh or w % ow:
        raise NotImplementedError(
            f"save_onnx cannot export {_describe(where, layer)} with output_size {(oh, ow)} on "
            f"{h}x{w} maps: ONNX has no adaptive pooling, and its windows are not all the same "
            f"size unless the output size divides the input size (or is 1x1)"
        )
    kernel = [h // oh, w // ow]
    return graph.node("AveragePool", [x], where, kernel_shape=kernel, strides=kernel), shape[:2] + (oh, ow)


def _reshape(graph, where, x, target: list[int]) -> str:
    """``Reshape`` to ``target`` (0: keep the input's size at that index; -1: what is left)."""
    return graph.node("Reshape", [x, graph.constant(_prefix(where, "shape"), target, np.int64)], where)


def _flatten(graph, where, layer, x, shape):
    rank = len(shape)
    start = layer.start_dim + rank if layer.start_dim < 0 else layer.start_dim
    end = layer.end_dim + rank if layer.end_dim < 0 else layer.end_dim
    if not (0 <= start < rank and 0 <= end < rank) or start > end:
        dims = f"dimensions {layer.start_dim} to {layer.end_dim}, the first not after the last"
        raise _wrong_input(where, layer, f"with {dims}", shape)
    merged = shape[start : end + 1]
    size: int | str
    if all(is_integer(n) for n in merged):
        size = math.prod(merged)
    else:  # the batch merged with other dimensions: a size known only when the model runs
        size = "*".join(map(str, _dims(merged)))
    # The leading sizes are kept where they are (0), the batch's included; the merged one is -1.
    target = [0] * start + [-1] + list(shape[end + 1 :])
    return _reshape(graph, where, x, target), shape[:start] + (size,) + shape[end + 1 :]


def _unflatten(graph, where, layer, x, shape):
    dim = layer.dim + len(shape) if layer.dim < 0 else layer.dim
    sizes = tuple(layer.unflattened_size)
    if dim == 0:
        raise NotImplementedError(
            f"save_onnx cannot export {_describe(where, layer)}: it splits the batch dimension, "
            f"which the ONNX model leaves free"
        )
    if not 0 < dim < len(shape) or shape[dim] != math.prod(sizes):
        expected = ", ".join(["batch", "..."][: max(dim, 1)] + [str(math.prod(sizes)), "..."])
        raise _wrong_input(
            where, layer, f"({expected}) with {math.prod(sizes)} in dimension {layer.dim}", shape
        )
    target = [0] * dim + list(sizes) + list(shape[dim + 1 :])
    return _reshape(graph, where, x, target), shape[:dim] + sizes + shape[dim + 1 :]


_CONVERTERS = {
    **{kind: _unary for kind in _UNARY},
    LeakyReLU: _leaky_relu,
    HardSigmoid: _hard_sigmoid,
    Dense: _dense,
    BatchNorm1d: _batch_norm,
    BatchNorm2d: _batch_norm,
    LayerNorm: _layer_norm,
    Conv2d: _conv,
    MaxPool2d: _window_pool,
    AvgPool2d: _window_pool,
    AdaptiveAvgPool2d: _adaptive_avg_pool,
    Flatten: _flatten,
    Unflatten: _unflatten,
}
