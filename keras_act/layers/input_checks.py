"""Clear errors for bad backbone inputs, in the graph.

Two checks, at the two places where a bad value could otherwise turn into a
silently wrong number:

- `LosslessInputCast`, a mixin of the Functional models (the backbone and the
  tasks), looks at each input *before* Keras casts it to the dtype of its
  `keras.Input`: an int64 token id `2**32 + 5` or a float id `5.99` would
  become id 5 in int32. A value that the cast would change is an error.
- `TokenInputCheck`, the backbone's first layer, checks the values after the
  cast: ranges of token and segment ids, a padding mask of 0/1 only, shapes,
  and a sequence length between 1 and the position table's size.

Both raise `tf.errors.InvalidArgumentError` naming the input, the rule, the
first bad value and where it is, eagerly, in `tf.function` and in exported
SavedModels. The checks have static shapes, so they also compile with XLA.
"""

import keras
import numpy as np
import tensorflow as tf


def assert_all(ok, values, name, rule):
    """Raises `InvalidArgumentError` unless every entry of `ok` is true.

    The error names the input, the rule, and the first entry where `ok` is
    false (its index and its value in `values`).

    Args:
        ok: bool tensor, true where `values` is valid.
        values: tensor of the shape of `ok`, the input's values.
        name: str, the input's name.
        rule: str, what the input must be (a sentence).

    Returns:
        A list of the ops to run before the input is used (empty eagerly,
        where the check runs at once).

    Example:

    >>> assert_all(tf.constant([True]), tf.constant([3]), "token_ids", "ids must be >= 0.")
    []
    """
    if tf.executing_eagerly() and bool(tf.reduce_all(ok)):
        return []
    flat_bad = tf.concat([tf.logical_not(tf.reshape(ok, [-1])), [True]], 0)
    # The first bad entry (the padding `True` when there is none, so an
    # empty input needs no special case).
    first = tf.argmax(tf.cast(flat_bad, tf.int32), output_type=tf.int32)
    value = tf.gather(tf.concat([tf.reshape(values, [-1]), tf.zeros([1], values.dtype)], 0), first)
    # (Clipped into range, as the index of an input without a bad entry is
    # computed too but never shown.)
    within = tf.maximum(tf.minimum(first, tf.size(values, out_type=tf.int32) - 1), 0)
    index = _unravel(within, tf.shape(values), values.shape.rank)
    if tf.executing_eagerly():
        location = ", ".join(str(i) for i in index.numpy().tolist())
        raise tf.errors.InvalidArgumentError(
            None,
            None,
            f"{rule} Received: {name}[{location}] = {_format(value.numpy())} "
            f"({name} has shape {values.shape.as_list()}, dtype {values.dtype.name}).",
        )
    return [
        tf.debugging.Assert(
            tf.reduce_all(ok),
            [f"{rule} Received: {name} at index", index, "holds the value", value],
            name=f"check_{name}",
        )
    ]


def _unravel(flat_index, shape, rank):
    """`tf.unravel_index` for one index, in ops that XLA compiles."""
    index = []
    for axis in reversed(range(rank)):
        size = tf.maximum(shape[axis], 1)
        index.append(flat_index % size)
        flat_index = flat_index // size
    return tf.stack(index[::-1])


def _format(value):
    # numpy's str() gives the shortest repr: 5.99 for a float32 5.99.
    return str(value.item() if isinstance(value, np.integer) else value)


def check_lossless_cast(x, name, dtype):
    """Checks that casting `x` to the integer `dtype` keeps every value.

    Args:
        x: a tensor or array, as given by the caller.
        name: str, the input's name (for the error).
        dtype: str or `tf.DType`, the integer dtype Keras will cast `x` to.

    Returns:
        `x` as a tensor of its own dtype (unchanged), after the check; `x`
        itself when it is `None`, symbolic, not numeric, already of `dtype`,
        or boolean (whose cast to 0/1 loses nothing).
    """
    dtype = tf.as_dtype(dtype)
    if x is None or isinstance(x, keras.KerasTensor) or not dtype.is_integer:
        return x
    if not tf.is_tensor(x):
        try:
            x = tf.convert_to_tensor(x)
        except (TypeError, ValueError):
            return x  # Keras' own conversion reports it.
    if x.dtype in (dtype, tf.bool) or not (x.dtype.is_integer or x.dtype.is_floating):
        return x
    converted = tf.cast(x, dtype)
    ok = tf.logical_and(
        tf.equal(tf.cast(converted, x.dtype), x),
        tf.equal(converted < 0, x < 0),
    )
    if x.dtype.is_floating:
        rule = (
            f"`{name}` must hold integers: it is cast to {dtype.name}, and a "
            f"fraction (or a value outside {dtype.name}) would silently become "
            "another id."
        )
    else:
        rule = (
            f"`{name}` must hold values that {dtype.name} can represent: it is "
            f"cast to {dtype.name}, which would silently turn the value into "
            "another one."
        )
    checks = assert_all(ok, x, name, rule)
    if not checks:
        return x
    with tf.control_dependencies(checks):
        return tf.identity(x)


def _assert_sequence_length(token_ids):
    """Refuses a sequence length of 0 (whose error would come from a slice)."""
    message = (
        "The sequence length is 0: `token_ids`, `segment_ids` and `padding_mask` "
        "need at least one position per sequence (shape [batch, seq] with "
        "seq >= 1; a batch of 0 sequences is fine). Received: token_ids of shape"
    )
    length = token_ids.shape[1] if token_ids.shape.rank else None
    if length == 0 or (tf.executing_eagerly() and tf.shape(token_ids)[1] == 0):
        # Known now (eagerly, or a static shape in a graph): said now.
        raise tf.errors.InvalidArgumentError(
            None, None, f"{message} {token_ids.shape.as_list()}."
        )
    return tf.debugging.Assert(tf.shape(token_ids)[1] > 0, [message, tf.shape(token_ids)])


class LosslessInputCast:
    """Mixin of a Functional model: refuses inputs that its cast would change.

    Keras casts each input of a Functional model to the dtype of its
    `keras.Input` (int32 for token ids), which wraps an int64 `2**32 + 5` to
    5 and truncates a float `5.99` to 5. With this mixin first among its
    bases, such an input is an `InvalidArgumentError` naming it, the value
    and its index, whether the model is called eagerly, in `tf.function`,
    through `predict()` or as a layer of a bigger model.

    Example:

    >>> class Model(LosslessInputCast, keras.Model):
    ...     pass
    >>> ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    >>> model = Model(ids, ids + 0)
    >>> model(np.array([[5]], "int64")).numpy()
    array([[5]], dtype=int32)
    """

    def _convert_inputs_to_tensors(self, flat_inputs):
        checked = [
            check_lossless_cast(x, getattr(tensor, "name", "input"), tensor.dtype)
            for x, tensor in zip(flat_inputs, self._inputs, strict=True)
        ]
        return super()._convert_inputs_to_tensors(checked)


@keras.saving.register_keras_serializable(package="keras_act")
class TokenInputCheck(keras.layers.Layer):
    """Checks `token_ids`, `segment_ids` and `padding_mask` before embedding.

    Token ids must lie in `[0, vocabulary_size)`, segment ids in
    `[0, num_segments)`, the padding mask must be 0 or 1, the sequence must
    hold at least one token and fit the position table, and the three inputs
    must have one shape. A violation raises `tf.errors.InvalidArgumentError`
    naming the input, the rule and the first bad value, instead of an obscure
    gather error (or, on accelerators, silently wrong embeddings). The checks
    are graph ops, so they also hold inside `tf.function` and in exported
    SavedModels; XLA compiles them away.

    Args:
        vocabulary_size: int, number of token ids.
        num_segments: int, number of segment ids.
        max_sequence_length: int, size of the position table.
        **kwargs: other keyword arguments of `keras.layers.Layer`.

    Returns:
        The three inputs, unchanged, as a tuple `(token_ids, segment_ids,
        padding_mask)`.

    Example:

    >>> check = TokenInputCheck(vocabulary_size=10, num_segments=2, max_sequence_length=8)
    >>> ids, segments, mask = check(tf.constant([[2, 5]]), tf.zeros((1, 2), "int32"), tf.ones((1, 2), "int32"))
    >>> ids.shape
    TensorShape([1, 2])
    """

    def __init__(self, vocabulary_size, num_segments, max_sequence_length, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size = vocabulary_size
        self.num_segments = num_segments
        self.max_sequence_length = max_sequence_length

    def call(self, token_ids, segment_ids, padding_mask):
        token_ids = tf.convert_to_tensor(token_ids)
        segment_ids = tf.convert_to_tensor(segment_ids)
        padding_mask = tf.convert_to_tensor(padding_mask)
        shape = tf.shape(token_ids)
        checks = [
            tf.debugging.assert_equal(
                tf.shape(segment_ids),
                shape,
                message="`segment_ids` must have the shape of `token_ids`",
            ),
            tf.debugging.assert_equal(
                tf.shape(padding_mask),
                shape,
                message="`padding_mask` must have the shape of `token_ids`",
            ),
            tf.debugging.assert_less_equal(
                shape[1],
                self.max_sequence_length,
                message=(
                    "The sequence length exceeds the position table: at most "
                    f"max_sequence_length={self.max_sequence_length} tokens"
                ),
            ),
            _assert_sequence_length(token_ids),
        ]
        checks += self._check_range(token_ids, "token_ids", self.vocabulary_size, "vocabulary_size")
        checks += self._check_range(segment_ids, "segment_ids", self.num_segments, "num_segments")
        if padding_mask.dtype != tf.bool:
            checks += assert_all(
                tf.logical_or(
                    tf.equal(padding_mask, tf.zeros([], padding_mask.dtype)),
                    tf.equal(padding_mask, tf.ones([], padding_mask.dtype)),
                ),
                padding_mask,
                "padding_mask",
                "`padding_mask` must be 1 for real tokens and 0 for padding (or "
                "boolean): any other value is refused.",
            )
        with tf.control_dependencies(checks):
            return (
                tf.identity(token_ids),
                tf.identity(segment_ids),
                tf.identity(padding_mask),
            )

    @staticmethod
    def _check_range(values, name, size, size_name):
        return assert_all(
            tf.logical_and(values >= 0, values < tf.cast(size, values.dtype)),
            values,
            name,
            f"`{name}` must be >= 0 and < {size_name}={size}.",
        )

    def compute_output_spec(self, token_ids, segment_ids, padding_mask):
        return tuple(
            keras.KerasTensor(x.shape, dtype=x.dtype)
            for x in (token_ids, segment_ids, padding_mask)
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "num_segments": self.num_segments,
                "max_sequence_length": self.max_sequence_length,
            }
        )
        return config
