"""The shared ALBERT block applied to the running tokens only.

This is the per-iteration computation of `AlbertAct`'s skip path (the loop
itself is in `skip_halted_loop.py`). Tokens that have halted keep their state
from then on, so a dense iteration spends most of its FLOPs on outputs that
are thrown away. Here tokens are `[num_tokens, hidden]` matrices with their
flat positions (`b * seq + t`), sent through the block's own kernels and
biases (no variable is created):

1. `update_cache`: the tokens whose state changed at the previous iteration
   get new keys and values, scattered into `[batch, heads, seq, head_dim]`
   caches. Tokens that halted earlier keep the keys and values of their
   final state, which is what the dense path recomputes for them.
2. `__call__`: the queries of the running tokens are scattered into a dense
   layout `[batch, heads, slots, head_dim]`, as many slots as the busiest row
   has running tokens, zeros elsewhere. The attention itself is then two
   batched matmuls against the caches, which are kept head-major for them:
   an `Einsum` on token-major caches transposes both caches at every
   iteration, which made the attention about 1.5x slower and the whole
   default path 2.5% (best of 15 rounds) to 10% (median) slower at
   ALBERT-base geometry, 8x128. (Gathering keys and values per
   query token instead would materialise `[tokens, seq, hidden]`, which costs
   more than the whole dense path.) The context of the running tokens is
   gathered back and goes through the output projection, residual, layer
   norm, feed-forward, residual and layer norm, on the running tokens only.

Every projection is one 2-D `tf.matmul` (TensorFlow's CPU `Einsum` kernel
reaches about half the speed of `MatMul` for the `hidden -> intermediate`
shape), with bias and activation in the form oneDNN fuses into the matmul.
The result equals the block's output on the running tokens up to float
rounding.
"""

import math

import tensorflow as tf


def running_positions(mask):
    """Flat positions (`b * seq + t`) of the true entries of a `[batch, seq]` mask.

    Args:
        mask: bool tensor `[batch, seq]`.

    Returns:
        int32 tensor `[num_true]`, in row-major order.
    """
    return tf.cast(tf.where(tf.reshape(mask, [-1]))[:, 0], tf.int32)


class DenseProjection:
    """An `EinsumDense` projection as one 2-D matmul on `[tokens, features]`.

    Reads the layer's `kernel` (folded to `[input_dim, outputs]`) and `bias`
    once, and applies its activation; creates no variable. Bias and
    activation follow the matmul in the form oneDNN fuses into it.

    Args:
        layer: a built `keras.layers.EinsumDense` whose equation contracts
            the last `input_dim` features of its input.
        input_dim: int, number of input features the layer contracts.
        dtype: the compute dtype.

    Returns:
        Called on a `[tokens, input_dim]` tensor, the `[tokens, outputs]`
        result (the layer's output features flattened).

    Example:

    >>> import keras
    >>> layer = keras.layers.EinsumDense("abc,cd->abd", (None, 4), bias_axes="d")
    >>> layer.build((1, 2, 3))
    >>> DenseProjection(layer, 3, "float32")(tf.ones((5, 3))).shape
    TensorShape([5, 4])
    """

    def __init__(self, layer, input_dim, dtype):
        self.kernel = tf.reshape(tf.cast(layer.kernel, dtype), [input_dim, -1])
        if layer.bias is None:
            self.bias = tf.zeros(tf.shape(self.kernel)[1:], dtype)
        else:
            self.bias = tf.reshape(tf.cast(layer.bias, dtype), [-1])
        self.activation = layer.activation

    def __call__(self, inputs):
        return self.activation(tf.nn.bias_add(tf.matmul(inputs, self.kernel), self.bias))


class RunningTokenBlock:
    """An `AlbertBlock` on the running tokens of a batch.

    Built once per call of `AlbertAct`, before its loop, from the block's
    sublayers; holds tensors read from their variables, and no variable.
    Keys and values live in two caches `[batch, heads, seq, head_dim]`. In
    training, the block's own dropout layers (attention probabilities,
    attention output, feed-forward output) act on the running tokens' rows,
    with the seed generators the dense path uses.

    Args:
        block: a built `keras_act.layers.AlbertBlock`.
        hidden_dim: int, the block's hidden size.

    Example:

    >>> import keras_act
    >>> block = keras_act.AlbertBlock(num_heads=2, intermediate_dim=8)
    >>> block.build((None, None, 4))
    >>> running = RunningTokenBlock(block, 4)
    >>> states = tf.random.normal((2 * 3, 4))  # batch 2, seq 3, flattened
    >>> cache = running.update_cache(states, tf.range(6), *running.empty_cache(2, 3))
    >>> positions = tf.constant([0, 4])  # the running tokens
    >>> running(tf.gather(states, positions), positions, *cache, tf.ones((2, 3), bool)).shape
    TensorShape([2, 4])
    """

    def __init__(self, block, hidden_dim):
        attention = block._self_attention_layer
        dtype = block.compute_dtype
        self.dtype = dtype
        self.hidden_dim = hidden_dim
        self.num_heads = attention.num_heads
        self.head_dim = attention.key_dim
        self.scale = 1.0 / math.sqrt(float(self.head_dim))
        # Softmax in float32 at least, as Keras' attention.
        self.softmax_dtype = "float64" if dtype == "float64" else "float32"
        self.query = DenseProjection(attention.query_dense, hidden_dim, dtype)
        # The attention's 1/sqrt(head_dim), folded into the query projection.
        self.query.kernel *= self.scale
        self.query.bias *= self.scale
        self.key = DenseProjection(attention.key_dense, hidden_dim, dtype)
        self.value = DenseProjection(attention.value_dense, hidden_dim, dtype)
        self.attention_output = DenseProjection(
            attention.output_dense, self.num_heads * self.head_dim, dtype
        )
        self.attention_layer_norm = block._self_attention_layer_norm
        self.intermediate = DenseProjection(
            block._feedforward_intermediate_dense, hidden_dim, dtype
        )
        self.output = DenseProjection(
            block._feedforward_output_dense, block.intermediate_dim, dtype
        )
        self.output_layer_norm = block._feedforward_layer_norm
        self.dropout_rate = block.dropout
        self.attention_probability_dropout = getattr(attention, "_dropout_layer", None)
        self.attention_dropout = block._self_attention_dropout
        self.feedforward_dropout = block._feedforward_dropout

    def empty_cache(self, batch_size, seq_length):
        """Zero `(key_cache, value_cache)`, each `[batch, heads, seq, head_dim]`."""
        shape = [batch_size, self.num_heads, seq_length, self.head_dim]
        return tf.zeros(shape, self.dtype), tf.zeros(shape, self.dtype)

    def update_cache(self, states, positions, key_cache, value_cache):
        """Replaces the keys and values of the tokens at `positions`.

        Args:
            states: `[num_changed, hidden]`, the new states of the tokens.
            positions: int32 `[num_changed]`, their flat positions `b * seq + t`.
            key_cache: `[batch, heads, seq, head_dim]` keys.
            value_cache: `[batch, heads, seq, head_dim]` values.

        Returns:
            The tuple `(key_cache, value_cache)`, updated.
        """
        indices = self._cache_indices(positions, tf.shape(key_cache)[2])
        rows = [-1, self.head_dim]  # token-major, as `indices`
        key_cache = tf.tensor_scatter_nd_update(
            key_cache, indices, tf.reshape(self.key(states), rows)
        )
        value_cache = tf.tensor_scatter_nd_update(
            value_cache, indices, tf.reshape(self.value(states), rows)
        )
        return key_cache, value_cache

    def _cache_indices(self, positions, seq_length):
        """`(b, head, t)` of every head of every token, token-major: `[tokens * heads, 3]`."""
        batch = tf.repeat(positions // seq_length, self.num_heads)
        heads = tf.tile(tf.range(self.num_heads), tf.shape(positions))
        time = tf.repeat(positions % seq_length, self.num_heads)
        return tf.stack([batch, heads, time], axis=1)

    def __call__(self, inputs, positions, key_cache, value_cache, padding_mask, training=False):
        """The block output of the running tokens.

        Args:
            inputs: `[num_running, hidden]`, the running tokens' states.
            positions: int32 `[num_running]`, their flat positions, in
                row-major order (as `running_positions` gives them).
            key_cache: `[batch, heads, seq, head_dim]` keys of every token's
                current state (see `update_cache`).
            value_cache: `[batch, heads, seq, head_dim]` values, likewise.
            padding_mask: bool `[batch, seq]`, true for tokens that may be
                attended to.
            training: Python bool, whether the block's dropout is active.

        Returns:
            `[num_running, hidden]`, in the order of `positions`.
        """
        shape = tf.shape(padding_mask)
        batch_size, seq_length = shape[0], shape[1]
        # Each running token's slot among the running tokens of its row
        # (positions are sorted row-major); a row with none gets no slot.
        rows = positions // seq_length
        counts = tf.math.bincount(rows, minlength=batch_size, dtype=tf.int32)
        slots = tf.range(tf.size(positions)) - tf.gather(tf.cumsum(counts, exclusive=True), rows)
        slot_indices = tf.stack([rows, slots], axis=1)

        queries = tf.reshape(self.query(inputs), [-1, self.num_heads, self.head_dim])
        queries = tf.scatter_nd(
            slot_indices,
            queries,
            tf.stack([batch_size, tf.reduce_max(counts), self.num_heads, self.head_dim]),
        )
        queries = tf.transpose(queries, [0, 2, 1, 3])  # [batch, heads, slots, head_dim]
        logits = tf.matmul(queries, key_cache, transpose_b=True)
        # Padding keys get exactly zero weight.
        bias = tf.where(padding_mask, 0.0, -1e9)[:, tf.newaxis, tf.newaxis, :]
        logits = tf.cast(logits, self.softmax_dtype) + tf.cast(bias, self.softmax_dtype)
        probabilities = tf.cast(tf.nn.softmax(logits), self.dtype)
        dropout = training and self.dropout_rate > 0.0
        if dropout and self.attention_probability_dropout is not None:
            probabilities = self.attention_probability_dropout(probabilities, training=True)
        context = tf.transpose(tf.matmul(probabilities, value_cache), [0, 2, 1, 3])
        context = tf.reshape(
            tf.gather_nd(context, slot_indices), [-1, self.num_heads * self.head_dim]
        )

        attended = self.attention_output(context)
        if dropout:
            attended = self.attention_dropout(attended, training=True)
        x = self.attention_layer_norm(attended + inputs)
        hidden = self.output(self.intermediate(x))
        if dropout:
            hidden = self.feedforward_dropout(hidden, training=True)
        return self.output_layer_norm(hidden + x)
