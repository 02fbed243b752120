"""The ACT halting step of ALBERT-ACT, as plain float32 TensorFlow math.

One call advances the halting accumulators of every token by one iteration of
the shared block. The arithmetic follows the authors' implementation operation
for operation (same comparisons, same order of additions), so halting
decisions are bit-for-bit those of the reference. `HaltingDense` is the
halting unit's projection, kept in float32 and out of quantization.
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="keras_act")
class HaltingDense(keras.layers.EinsumDense):
    """The halting unit's `[hidden, 1]` projection: float32, never quantized.

    An `EinsumDense` whose dtype is the one it is given (float32, or float64
    in a float64 model), never an entry of a `keras.DTypePolicyMap`, and
    whose `quantize()` does nothing. Quantizing it would save `hidden + 1`
    weights but could flip halting decisions (its sigmoid is accumulated and
    compared with `1 - act_epsilon`), changing how many layers every token
    gets; keeping it float32 also means a quantized model's `.keras` file
    and preset rebuild it exactly as saved.

    Args:
        *args: positional arguments of `keras.layers.EinsumDense`.
        dtype: the halting dtype, `"float32"` or `"float64"`. A
            `DTypePolicyMap` or quantized policy is refused. Defaults to
            `"float32"`.
        **kwargs: other keyword arguments of `keras.layers.EinsumDense`.

    Example:

    >>> layer = HaltingDense("abc,cd->abd", (None, 1), bias_axes="d")
    >>> layer.build((1, 2, 4))
    >>> layer.quantize("int8")
    >>> layer.quantization_mode is None
    True
    """

    def __init__(self, *args, dtype="float32", **kwargs):
        if dtype not in ("float32", "float64"):
            raise ValueError(
                "The halting unit computes in float32 (float64 in a float64 "
                f"model). Received: dtype={dtype!r}"
            )
        super().__init__(*args, dtype=dtype, **kwargs)

    def quantize(self, mode=None, type_check=True, config=None):
        """Does nothing: the halting unit stays float32 (see the class)."""
        del mode, type_check, config


def halting_step(probability, halting_probability, remainders, updates, threshold):
    """Advances the ACT accumulators by one iteration.

    A token is *running* while its cumulative halting probability is below 1.
    It halts at the first iteration where `cumulative + p > threshold`; it
    then receives the remainder `1 - cumulative` as its last update weight and
    its cumulative becomes 1. Running tokens get `p` as update weight.

    All tensors share one float dtype (float32, or float64 in float64
    models).

    Args:
        probability: float32 `[batch, seq]`, the halting unit's sigmoid output
            for this iteration.
        halting_probability: float32 `[batch, seq]`, cumulative halting
            probability before this iteration (1 for tokens that never run,
            such as padding).
        remainders: float32 `[batch, seq]`, remainders so far.
        updates: float32 `[batch, seq]`, number of updates so far.
        threshold: float32 scalar, `1 - act_epsilon`.

    Returns:
        A tuple `(update_weights, updated, halting_probability, remainders,
        updates)`. `update_weights` is the interpolation weight `w` of the new
        block output for this iteration (0 for halted tokens), `updated` a bool
        mask of the tokens that were updated at this iteration, and the other
        three are the advanced accumulators.
    """
    dtype = halting_probability.dtype
    running = tf.cast(halting_probability < 1.0, dtype)
    candidate = halting_probability + probability * running
    new_halted = tf.cast(candidate > threshold, dtype) * running
    still_running = tf.cast(candidate <= threshold, dtype) * running

    halting_probability = halting_probability + probability * still_running
    remainders = remainders + new_halted * (1.0 - halting_probability)
    halting_probability = halting_probability + new_halted * remainders
    updates = updates + still_running + new_halted

    update_weights = probability * still_running + new_halted * remainders
    updated = (still_running + new_halted) > 0.0
    return update_weights, updated, halting_probability, remainders, updates


def should_continue(halting_probability, updates, threshold, depth_limit):
    """Scalar bool: whether any token is still below threshold and the depth limit.

    Args:
        halting_probability: float `[batch, seq]`, cumulative halting
            probability (1 for halted tokens and padding).
        updates: float `[batch, seq]`, number of updates so far.
        threshold: scalar tensor of the halting dtype, the halting threshold
            of this call (`1 - act_epsilon` unless a depth budget lowers it).
        depth_limit: int32 scalar tensor (or int), the most updates a token
            may get in this call (the layer's `max_layers` unless a depth
            budget lowers it).

    Returns:
        A scalar bool tensor.
    """
    return tf.reduce_any(
        tf.logical_and(
            halting_probability < threshold,
            updates < tf.cast(depth_limit, updates.dtype),
        )
    )


def record_iteration(history, step, value):
    """Writes `value` as row `step` of `history` (`[max_layers, ...]`).

    The per-iteration arrays of `return_iterations=True`. A `history` known
    to be empty (a batch of 0 sequences, where no iteration runs) is
    returned as is: TensorFlow refuses, when the graph is built, to scatter
    into an empty tensor.

    Args:
        history: tensor `[max_layers, ...]`.
        step: int32 scalar, the iteration.
        value: tensor of the shape of one row of `history`.

    Returns:
        `history` with row `step` replaced by `value` (cast to its dtype).
    """
    if history.shape.num_elements() == 0:
        return history
    return tf.tensor_scatter_nd_update(
        history, [[step]], tf.cast(value, history.dtype)[tf.newaxis]
    )
