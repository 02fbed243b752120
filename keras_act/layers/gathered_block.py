"""The ALBERT block and halting unit on gathered rows, as pure functions.

The static-shape skip path (`static_skip_loop.py`) runs the block on a
buffer of gathered token rows. Its per-iteration computation recomputes
itself in the backward pass (`recompute.py`), which needs every weight as an
explicit input rather than a variable read inside: `block_weights` reads
them once, before the loop, into a dict of tensors, and `gathered_block` /
`halting_logits` use only that dict.

The attention of the gathered queries is exact and never costs more than the
dense path's: the queries are scattered into a `[batch, slots, heads,
head_dim]` layout (each query in its own sequence's row, `slots` at most the
sequence length) and attend to the `[batch, seq]` key/value cache of every
token's current state.
"""

import math

import keras
import tensorflow as tf


def block_weights(layer):
    """The tensors `gathered_block` and `halting_logits` use, read once.

    Args:
        layer: a built `keras_act.AlbertAct` (its block not quantized).

    Returns:
        A dict of tensors: projection kernels `[inputs, outputs]` and biases
        in the compute dtype (the query's scaled by `1/sqrt(head_dim)`),
        layer-norm `gamma`/`beta` in their variable dtype, and the halting
        unit's kernel and bias in the halting dtype.
    """
    block = layer.transformer_block
    attention = block._self_attention_layer
    dtype = block.compute_dtype
    hidden_dim = layer.hidden_dim
    scale = 1.0 / math.sqrt(float(attention.key_dim))

    def dense(sublayer, input_dim, dtype=dtype):
        kernel = tf.reshape(tf.cast(sublayer.kernel, dtype), [input_dim, -1])
        bias = tf.reshape(tf.cast(sublayer.bias, dtype), [-1])
        return kernel, bias

    weights = {}
    for name, sublayer, input_dim in (
        ("query", attention.query_dense, hidden_dim),
        ("key", attention.key_dense, hidden_dim),
        ("value", attention.value_dense, hidden_dim),
        ("attention_output", attention.output_dense, attention.num_heads * attention.key_dim),
        ("intermediate", block._feedforward_intermediate_dense, hidden_dim),
        ("output", block._feedforward_output_dense, block.intermediate_dim),
    ):
        weights[name + "_kernel"], weights[name + "_bias"] = dense(sublayer, input_dim)
    weights["query_kernel"] = weights["query_kernel"] * tf.cast(scale, dtype)
    weights["query_bias"] = weights["query_bias"] * tf.cast(scale, dtype)
    for name, norm in (
        ("attention_norm", block._self_attention_layer_norm),
        ("output_norm", block._feedforward_layer_norm),
    ):
        weights[name + "_gamma"] = tf.convert_to_tensor(norm.gamma)
        weights[name + "_beta"] = tf.convert_to_tensor(norm.beta)
    weights["halting_kernel"], weights["halting_bias"] = dense(
        layer.halting_dense, hidden_dim, layer._halting_dtype
    )
    return weights


def project(inputs, weights, name, activation=None):
    """`inputs @ kernel + bias` (then `activation`) on `[rows, features]`."""
    outputs = tf.nn.bias_add(tf.matmul(inputs, weights[name + "_kernel"]), weights[name + "_bias"])
    return outputs if activation is None else activation(outputs)


def dropout(inputs, rate, seed):
    """Stateless dropout (identity when `seed` is None or `rate` is 0)."""
    if seed is None or not rate:
        return inputs
    return tf.nn.experimental.stateless_dropout(inputs, rate=rate, seed=seed)


class GatheredBlockSpec:
    """The static facts `gathered_block` needs about an `AlbertAct`.

    Args:
        layer: a built `keras_act.AlbertAct`.
    """

    def __init__(self, layer):
        block = layer.transformer_block
        attention = block._self_attention_layer
        self.num_heads = attention.num_heads
        self.head_dim = attention.key_dim
        self.dtype = block.compute_dtype
        self.softmax_dtype = "float64" if self.dtype == "float64" else "float32"
        self.activation = block._feedforward_intermediate_dense.activation
        self.epsilon = block.layer_norm_epsilon
        self.dropout = block.dropout
        self.halting_dtype = layer._halting_dtype


def gathered_block(
    spec, weights, rows, query_slots, place_rows, slots, keys, values, key_bias, seed=None
):
    """The block output of gathered rows.

    Args:
        spec: a `GatheredBlockSpec`.
        weights: the dict of `block_weights`.
        rows: `[capacity, hidden]`, the gathered states.
        query_slots: int32 `[capacity]`, each row's place `b * slots + i` in
            the `[batch, slots]` query layout; a padding slot of the buffer
            may name any place (its output is some finite value).
        place_rows: int32 `[batch * slots]`, the inverse: the row of each
            place, or `capacity` for an empty place.
        slots: int (or int32 scalar), query places per sequence.
        keys: `[batch, seq, heads, head_dim]`, every token's current keys.
        values: `[batch, seq, heads, head_dim]`, likewise.
        key_bias: `[batch, 1, 1, seq]`, 0 for real keys, -1e9 for padding.
        seed: int32 `[2]` stateless seed of the dropout (None: no dropout).

    Returns:
        `[capacity, hidden]`.
    """
    batch_size = tf.shape(keys)[0]
    places = batch_size * slots
    queries = tf.reshape(project(rows, weights, "query"), [-1, spec.num_heads, spec.head_dim])
    # Gathers, not scatters: XLA's CPU scatter is a slow serial loop.
    queries = tf.gather(append_zero_row(queries), place_rows)
    queries = tf.reshape(queries, tf.stack([batch_size, slots, spec.num_heads, spec.head_dim]))
    logits = tf.einsum("bqhd,bkhd->bhqk", queries, keys)
    logits = tf.cast(logits, spec.softmax_dtype) + tf.cast(key_bias, spec.softmax_dtype)
    probabilities = tf.cast(tf.nn.softmax(logits), spec.dtype)
    probabilities = dropout(probabilities, spec.dropout, _fold(seed, 0))
    context = tf.einsum("bhqk,bkhd->bqhd", probabilities, values)
    context = tf.reshape(context, [-1, spec.num_heads * spec.head_dim])
    context = tf.gather(context, tf.minimum(query_slots, tf.maximum(places - 1, 0)))

    attended = dropout(project(context, weights, "attention_output"), spec.dropout, _fold(seed, 1))
    x = _layer_norm(attended + rows, weights, "attention_norm", spec.epsilon)
    hidden = project(project(x, weights, "intermediate", spec.activation), weights, "output")
    hidden = dropout(hidden, spec.dropout, _fold(seed, 2))
    return _layer_norm(hidden + x, weights, "output_norm", spec.epsilon)


def append_zero_row(rows):
    """`rows` `[n, ...]` with a row of zeros appended: `[n + 1, ...]`.

    A pad, not a concatenation: the gradient of a concatenation of gathered
    rows selects the gathered indices with a data-dependent `tf.where`, a
    dynamic shape under XLA; the pad's gradient is a static slice.

    Example:

    >>> append_zero_row(tf.ones([2, 3])).numpy().sum(axis=1).tolist()
    [3.0, 3.0, 0.0]
    """
    return tf.pad(rows, [[0, 1]] + [[0, 0]] * (len(rows.shape) - 1))


def halting_logits(spec, weights, block_output):
    """The halting unit's logits `[capacity]` (halting dtype) of block outputs."""
    return project(tf.cast(block_output, spec.halting_dtype), weights, "halting")[:, 0]


def key_values(spec, weights, rows):
    """The keys and values `[rows, heads * head_dim]` of states `rows`."""
    return project(rows, weights, "key"), project(rows, weights, "value")


def _layer_norm(x, weights, name, epsilon):
    return keras.ops.layer_normalization(
        x, weights[name + "_gamma"], weights[name + "_beta"], epsilon=epsilon
    )


def _fold(seed, site):
    if seed is None:
        return None
    return tf.random.experimental.stateless_fold_in(seed, site)
