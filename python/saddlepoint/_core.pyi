"""Type stubs of the Rust extension. Every array argument is a C-contiguous, aligned NumPy array;
float arrays of one call share one dtype (float32 or float64), chosen by the first argument.
Outputs are written in place; the GIL is released while a kernel runs.

One guard checks every call before anything is written: a wrong type or dtype is a TypeError; a
wrong shape, a strided or misaligned array, a read-only output, or an output sharing memory with
any other argument (views of one buffer at any offset included) is a ValueError naming the
argument(s). Arguments that are only read may share memory. A scalar out of range is a ValueError
(never OverflowError). A bug inside a kernel raises RuntimeError("internal error in ...").

Zero sizes: elementwise kernels, dense layers, softmax, one_hot, gather_rows, dropout, the
optimizer updates, norm_part (0.0), all_finite (True), scale_/clamp_ and layer norm over zero
rows give empty (or unchanged) results; a dense layer with no input features writes out = bias
(or zeros); a backward pass over no rows adds nothing to the parameter gradients. Batch norm
with no channels gives empty results; its statistics and training forward over channels with no
values (zero batch or length) are a ValueError, and its backward then leaves the parameter
gradients unchanged. A mean loss over no elements (mse, l1, bce, cross-entropy with no rows or
no classes) and layer norm with zero features are a ValueError."""

from typing import Optional, Sequence, TypeVar, Union

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.floating]
IntArray = npt.NDArray[np.int64]
FloatArrays = Union[Sequence[FloatArray], FloatArray]  # a list of arrays, or one array (a list of one)
_V = TypeVar("_V")
PerTensor = Union[_V, Sequence[_V]]  # one value for every tensor, or one per tensor

def dense_forward(x: FloatArray, weight: FloatArray, bias: Optional[FloatArray], out: FloatArray) -> None: ...
def dense_backward(
    x: FloatArray,
    weight: FloatArray,
    grad_output: FloatArray,
    grad_weight: Optional[FloatArray],
    grad_bias: Optional[FloatArray],
    grad_input: Optional[FloatArray],
    accumulate: bool = True,
) -> None: ...
def conv2d_forward(
    x: FloatArray,
    weight: FloatArray,
    bias: Optional[FloatArray],
    out: FloatArray,
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
    columns: Optional[FloatArray] = None,
) -> None: ...
def conv2d_backward(
    x: FloatArray,
    weight: FloatArray,
    grad_output: FloatArray,
    grad_weight: Optional[FloatArray],
    grad_bias: Optional[FloatArray],
    grad_input: Optional[FloatArray],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
    accumulate: bool = True,
    columns: Optional[FloatArray] = None,
) -> None: ...
def activation_forward(kind: str, x: FloatArray, out: FloatArray, negative_slope: float = 0.01) -> None: ...
def activation_backward(
    kind: str,
    x: FloatArray,
    output: FloatArray,
    grad_output: FloatArray,
    grad_input: FloatArray,
    negative_slope: float = 0.01,
) -> None: ...
def mse_loss(input: FloatArray, target: FloatArray, grad_input: FloatArray) -> float: ...
def l1_loss(input: FloatArray, target: FloatArray, grad_input: FloatArray) -> float: ...
def binary_cross_entropy_with_logits(
    input: FloatArray, target: FloatArray, grad_input: FloatArray
) -> float: ...
def cross_entropy(
    input: FloatArray,
    target: FloatArray | IntArray,
    grad_input: FloatArray,
    weight: Optional[FloatArray] = None,
    label_smoothing: float = 0.0,
) -> float: ...
def softmax(x: FloatArray, out: FloatArray) -> None: ...
def log_softmax(x: FloatArray, out: FloatArray) -> None: ...
def one_hot(labels: IntArray, out: FloatArray) -> None: ...

# Multi-tensor optimizer steps (PyTorch's "foreach" path): each call steps every tensor of a
# parameter group, with the GIL released once. Each array argument is a list with one array per
# param array (one array is a list of one), each like its param (shape and dtype); optional state
# is such a list or None. Per-tensor scalars are one value for all tensors or a list of one value
# per tensor. No written array may share memory with any other array of the call. A rejected call
# writes nothing; results are the bits of one call per tensor, for any thread count.
def sgd_step(
    param: FloatArrays,
    grad: FloatArrays,
    momentum_buffer: Optional[FloatArrays],
    *,
    lr: float,
    momentum: float,
    dampening: float,
    nesterov: bool,
    weight_decay: float,
    maximize: bool,
    first_step: PerTensor[bool],
) -> None: ...
def adagrad_step(
    param: FloatArrays,
    grad: FloatArrays,
    sum: FloatArrays,
    *,
    clr: PerTensor[float],
    eps: float,
    weight_decay: float,
    maximize: bool,
) -> None: ...
def rmsprop_step(
    param: FloatArrays,
    grad: FloatArrays,
    square_avg: FloatArrays,
    grad_avg: Optional[FloatArrays],
    momentum_buffer: Optional[FloatArrays],
    *,
    lr: float,
    alpha: float,
    eps: float,
    weight_decay: float,
    momentum: float,
    maximize: bool,
) -> None: ...
def adam_step(
    param: FloatArrays,
    grad: FloatArrays,
    exp_avg: FloatArrays,
    exp_avg_sq: FloatArrays,
    max_exp_avg_sq: Optional[FloatArrays],
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled_weight_decay: bool,
    maximize: bool,
    step_size: PerTensor[float],
    bias_correction2_sqrt: PerTensor[float],
) -> None: ...
def norm_part(x: FloatArray, norm_type: float) -> float: ...
def all_finite(x: FloatArray) -> bool: ...
def scale_(x: FloatArray, factor: float) -> None: ...
def clamp_(x: FloatArray, clip_value: float) -> None: ...
def batch_norm_statistics(x: FloatArray, mean: FloatArray, var: FloatArray) -> None: ...
def batch_norm_forward_train(
    x: FloatArray,
    weight: Optional[FloatArray],
    bias: Optional[FloatArray],
    eps: float,
    factor: float,
    running_mean: Optional[FloatArray],
    running_var: Optional[FloatArray],
    out: FloatArray,
    save_mean: FloatArray,
    save_invstd: FloatArray,
) -> None: ...
def batch_norm_normalize(
    x: FloatArray,
    mean: FloatArray,
    invstd: FloatArray,
    weight: Optional[FloatArray],
    bias: Optional[FloatArray],
    out: FloatArray,
) -> None: ...
def batch_norm_backward(
    x: FloatArray,
    grad_output: FloatArray,
    mean: FloatArray,
    invstd: FloatArray,
    weight: Optional[FloatArray],
    batch_stats: bool,
    grad_input: Optional[FloatArray],
    grad_weight: Optional[FloatArray],
    grad_bias: Optional[FloatArray],
) -> None: ...
def layer_norm_forward(
    x: FloatArray,
    features: int,
    weight: Optional[FloatArray],
    bias: Optional[FloatArray],
    eps: float,
    out: FloatArray,
    mean: FloatArray,
    invstd: FloatArray,
) -> None: ...
def layer_norm_backward(
    x: FloatArray,
    grad_output: FloatArray,
    features: int,
    mean: FloatArray,
    invstd: FloatArray,
    weight: Optional[FloatArray],
    grad_input: FloatArray,
    grad_weight: Optional[FloatArray],
    grad_bias: Optional[FloatArray],
) -> None: ...
def dropout_forward(x: FloatArray, p: float, seed: int, out: FloatArray, mask: FloatArray) -> None: ...
def gather_rows(x: FloatArray, indices: IntArray, out: FloatArray) -> None: ...

# 2-D pooling on NCHW arrays (N, C, H, W), C, H, W >= 1; sizes are (height, width) pairs.
# OH = (H + 2 * padding[0] - kernel_size[0]) // stride[0] + 1, alike OW; padding <= kernel_size // 2.
# Backward passes overwrite grad_input. Results are bit-identical for any thread count.
def max_pool2d_forward(
    x: FloatArray,
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    out: FloatArray,
    indices: IntArray,
) -> None: ...
def max_pool2d_backward(grad_output: FloatArray, indices: IntArray, grad_input: FloatArray) -> None: ...
def avg_pool2d_forward(
    x: FloatArray,
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    out: FloatArray,
) -> None: ...
def avg_pool2d_backward(
    grad_output: FloatArray,
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    grad_input: FloatArray,
) -> None: ...
def adaptive_avg_pool2d_forward(x: FloatArray, out: FloatArray) -> None: ...
def adaptive_avg_pool2d_backward(grad_output: FloatArray, grad_input: FloatArray) -> None: ...
def matmul_simd() -> str | None: ...  # "avx512", "avx2" or None; SADDLEPOINT_SIMD caps it
def set_num_threads(n: int) -> None:  # 1 <= n <= max(4 * available cores, 64)
    """Sets the number of threads the kernels use: from 1 to 4 per available core, at least 64.

    The thread that first starts the kernels' threads (normally Python's main thread) works as
    one of them; after a parallel kernel the others spin for up to 0.2 ms waiting for the next
    one, then sleep. Threads of a count no longer in use end. Results are bit-identical for
    any thread count. The environment's thread count (``SADDLEPOINT_NUM_THREADS``, else
    ``OMP_NUM_THREADS``) sets it at import.

    Parameters
    ----------
    n : int
        The number of threads.

    Raises
    ------
    ValueError
        ``n`` below 1 or above ``max(4 * available cores, 64)``.

    Examples
    --------
    >>> before = sp.get_num_threads()
    >>> sp.set_num_threads(1)
    >>> sp.get_num_threads()
    1
    >>> sp.set_num_threads(before)
    """

def get_num_threads() -> int:
    """The number of threads the kernels use (see :func:`set_num_threads`).

    Examples
    --------
    >>> sp.get_num_threads() >= 1
    True
    """
