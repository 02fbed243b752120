"""The depth budget of an `AlbertAct` call: a cap on layers, a halting threshold.

An operator can trade quality for latency without retraining by giving a
trained ACT model a smaller cap on the number of block applications per
token (`max_layers`) or a lower halting threshold (`halting_threshold`: a
token halts as soon as its cumulative halting probability would exceed it,
so a lower threshold halts earlier). Both reach the loop of
`keras_act.AlbertAct` either as its call arguments or, when those are
`None`, from the innermost enclosing `with depth_budget(...)`, which is read
when the layer is called (traced): a Functional backbone or task, traced
inside the context (e.g. in an export's `tf.function` whose signature has
the two values as scalar tensors), so honours a budget without a new model
input.

`resolve_depth_budget` turns these values into the two scalar tensors every
loop receives: `threshold` (halting dtype) and `depth_limit` (int32, at most
the layer's cap).
"""

import contextlib
import contextvars
import numbers

import numpy as np
import tensorflow as tf

from keras_act.layers.xla_context import inside_xla_context

# (max_layers, halting_threshold) of the innermost `depth_budget`; one per
# thread (and per asyncio task), so concurrent tracing does not mix budgets.
_CURRENT_BUDGET = contextvars.ContextVar("keras_act_depth_budget", default=(None, None))


@contextlib.contextmanager
def depth_budget(max_layers=None, halting_threshold=None):
    """Context manager: the depth budget of the `AlbertAct` calls traced inside.

    Every `keras_act.AlbertAct` called inside the `with` block (directly, in
    an `AlbertActBackbone` or a task, eagerly or while a `tf.function` is
    traced) whose own `max_layers` / `halting_threshold` call arguments are
    `None` uses these values. A value left `None` here is inherited from an
    enclosing `depth_budget`, else it is the layer's own (its `max_layers`
    and `1 - act_epsilon`). The budget is read when the layer is traced: a
    `tf.function` traced before the `with` block keeps the graph it traced.
    The context is per thread.

    Args:
        max_layers: `None`, an int >= 1 or an int32 scalar tensor: at most
            that many block applications per token (a Python int above a
            layer's `max_layers` raises a `ValueError` at the call; tensor
            values are handled as in `resolve_depth_budget`).
        halting_threshold: `None`, a float in (0, 1] or a float scalar
            tensor: a token halts once its cumulative halting probability
            would exceed it.

    Example:

    >>> import keras_act
    >>> import numpy as np
    >>> layer = keras_act.AlbertAct(
    ...     hidden_dim=8, num_heads=2, intermediate_dim=16, max_layers=6
    ... )
    >>> with keras_act.layers.depth_budget(max_layers=2):
    ...     outputs = layer(np.ones((1, 3, 8), "float32"))
    >>> float(np.max(outputs["updates"])) <= 2
    True
    """
    if max_layers is not None and not tf.is_tensor(max_layers):
        max_layers = _python_max_layers(max_layers, cap=None)
    if halting_threshold is not None and not tf.is_tensor(halting_threshold):
        halting_threshold = _python_threshold(halting_threshold)
    outer_max_layers, outer_threshold = _CURRENT_BUDGET.get()
    token = _CURRENT_BUDGET.set(
        (
            outer_max_layers if max_layers is None else max_layers,
            outer_threshold if halting_threshold is None else halting_threshold,
        )
    )
    try:
        yield
    finally:
        _CURRENT_BUDGET.reset(token)


def current_depth_budget():
    """The `(max_layers, halting_threshold)` of the innermost `depth_budget`.

    Returns:
        A tuple of two values, each `None` outside any `depth_budget` that
        set it.
    """
    return _CURRENT_BUDGET.get()


def resolve_depth_budget(max_layers, halting_threshold, cap, act_epsilon, dtype):
    """The `(threshold, depth_limit)` scalar tensors of one `AlbertAct` call.

    `None` arguments are taken from the enclosing `depth_budget`, else they
    are the layer's own: `cap` and `1 - act_epsilon` (exactly the constants
    the loop used before depth budgets existed, so results are unchanged).

    Python values are checked now: a `ValueError` names the argument.
    Tensor values are checked when the graph runs: outside XLA, a value out
    of range (`max_layers` not in `[1, cap]`, `halting_threshold` not in
    `(0, 1]`, NaN) raises `tf.errors.InvalidArgumentError` naming the
    argument (a served request gets that error; the server keeps serving).
    XLA does not compile such checks: under XLA a tensor `max_layers` is
    clipped into `[1, cap]` and a threshold out of `(0, 1]` is clipped into
    it (NaN becomes 1). A tensor must be a scalar (of any integer dtype for
    `max_layers`, any float dtype for `halting_threshold`); another rank or
    dtype raises a `ValueError` when traced.

    Args:
        max_layers: `None`, int or integer scalar tensor.
        halting_threshold: `None`, float or float scalar tensor.
        cap: int, the largest allowed `max_layers` (the layer's cap).
        act_epsilon: float, the layer's `act_epsilon`.
        dtype: the halting dtype (`"float32"` or `"float64"`).

    Returns:
        A tuple `(threshold, depth_limit)`: a scalar tensor of `dtype` and an
        int32 scalar tensor in `[1, cap]`.

    Example:

    >>> threshold, depth_limit = resolve_depth_budget(None, 0.5, 12, 0.01, "float32")
    >>> float(threshold), int(depth_limit)
    (0.5, 12)
    """
    context_max_layers, context_threshold = _CURRENT_BUDGET.get()
    if max_layers is None:
        max_layers = context_max_layers
    if halting_threshold is None:
        halting_threshold = context_threshold

    if max_layers is None:
        depth_limit = tf.constant(cap, tf.int32)
    elif tf.is_tensor(max_layers):
        depth_limit = _tensor_max_layers(max_layers, cap)
    else:
        depth_limit = tf.constant(_python_max_layers(max_layers, cap), tf.int32)

    if halting_threshold is None:
        threshold = tf.constant(1.0 - act_epsilon, dtype)
    elif tf.is_tensor(halting_threshold):
        threshold = _tensor_threshold(halting_threshold, dtype)
    else:
        threshold = tf.constant(_python_threshold(halting_threshold), dtype)
    return threshold, depth_limit


def _scalar_value(name, value):
    """A 0-d NumPy array or NumPy scalar as a Python scalar; others unchanged."""
    if isinstance(value, (np.ndarray, np.generic)):
        if np.ndim(value) != 0:
            raise ValueError(
                f"`{name}` must be a scalar. Received: {name} of shape {np.shape(value)}"
            )
        return value.item()
    return value


def _python_max_layers(value, cap):
    value = _scalar_value("max_layers", value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(
            f"`max_layers` must be an int >= 1 (or an int32 scalar tensor). "
            f"Received: max_layers={value!r}"
        )
    if cap is not None and value > cap:
        raise ValueError(
            f"`max_layers` must be at most the layer's cap ({cap}). Received: max_layers={value!r}"
        )
    return int(value)


def _python_threshold(value):
    value = _scalar_value("halting_threshold", value)
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not 0.0 < float(value) <= 1.0
    ):
        raise ValueError(
            "`halting_threshold` must be a float in (0, 1] (or a float scalar "
            f"tensor). Received: halting_threshold={value!r}"
        )
    return float(value)


def _check_scalar(name, value):
    if value.shape.rank is not None and value.shape.rank != 0:
        raise ValueError(
            f"`{name}` must be a scalar tensor. Received: {name} of shape {value.shape}"
        )


def _tensor_max_layers(value, cap):
    _check_scalar("max_layers", value)
    if not value.dtype.is_integer:
        raise ValueError(
            "`max_layers` must be an integer tensor (int32). Received: "
            f"max_layers of dtype {value.dtype.name}"
        )
    value = tf.reshape(tf.cast(value, tf.int64), [])
    if not inside_xla_context():
        check = tf.debugging.Assert(
            tf.logical_and(value >= 1, value <= cap),
            [f"`max_layers` must be in [1, {cap}] (the layer's cap). Received: max_layers=", value],
        )
        with tf.control_dependencies([check]):
            value = tf.identity(value)
    return tf.cast(tf.clip_by_value(value, 1, cap), tf.int32)


def _tensor_threshold(value, dtype):
    _check_scalar("halting_threshold", value)
    if not value.dtype.is_floating:
        raise ValueError(
            "`halting_threshold` must be a float tensor. Received: "
            f"halting_threshold of dtype {value.dtype.name}"
        )
    value = tf.reshape(tf.cast(value, dtype), [])
    if not inside_xla_context():
        check = tf.debugging.Assert(
            tf.logical_and(value > 0.0, value <= 1.0),
            ["`halting_threshold` must be in (0, 1]. Received: halting_threshold=", value],
        )
        with tf.control_dependencies([check]):
            value = tf.identity(value)
    # Clipping (XLA): the smallest positive value, 1 for NaN and above 1.
    tiny = np.finfo(tf.as_dtype(dtype).as_numpy_dtype).tiny
    return tf.where(
        value > 0.0,
        tf.minimum(value, tf.constant(1.0, dtype)),
        tf.where(tf.math.is_nan(value), tf.constant(1.0, dtype), tf.constant(tiny, dtype)),
    )
