"""The halting loop of `AlbertAct`'s skip path.

The dense path keeps `[batch, seq, hidden]` states and runs the block on all
of them at every iteration. This loop carries instead the tokens updated at
the previous iteration as a compact `[num_updated, hidden]` matrix with their
flat positions. At each iteration:

1. Their keys and values are computed and scattered into the caches, so a
   token that halted keeps the keys and values of its final state.
2. Those still running go through the block (`RunningTokenBlock`) and the
   halting unit; the halting step itself works on `[batch, seq]` arrays,
   exactly as in the dense path (running tokens are exactly the tokens it
   updates).
3. Those that halted at the previous iteration have their final state: it is
   written once to a `TensorArray`, and the new states of the running tokens
   become the next compact matrix.

After the loop, every final state is scattered into the input states once
(padding, never updated, keeps its input state). Nothing of size
`[batch, seq, hidden]` is written per iteration but the key/value cache.
"""

import tensorflow as tf

from keras_act.layers.halting import halting_step, record_iteration, should_continue
from keras_act.layers.running_tokens import DenseProjection, RunningTokenBlock, running_positions


def skip_halted_loop(
    layer,
    hidden_states,
    padding_mask,
    threshold,
    depth_limit,
    return_iterations=False,
    training=False,
):
    """Runs `layer`'s halting loop on running tokens only.

    Args:
        layer: a built `keras_act.AlbertAct`.
        hidden_states: `[batch, seq, hidden]` in the layer's compute dtype.
        padding_mask: bool `[batch, seq]`, true for real tokens.
        threshold: scalar tensor of the halting dtype, this call's halting
            threshold (`keras_act.layers.depth_control.resolve_depth_budget`).
        depth_limit: int32 scalar tensor, this call's cap on updates per
            token (at most `layer.max_layers`).
        return_iterations: bool, also return the per-iteration arrays (see
            `AlbertAct`); `iteration_halting_logits` are NaN for tokens that
            did not run at that iteration.
        training: Python bool, whether the block's dropout is active (on the
            running tokens' rows). Gradients flow in both modes.

    Returns:
        The outputs dict of `AlbertAct.call`, before masking of padding.
    """
    halting_dtype = layer._halting_dtype
    compute_dtype = layer.compute_dtype
    hidden_dim = layer.hidden_dim
    shape = tf.shape(hidden_states)
    num_tokens = shape[0] * shape[1]
    real_tokens = tf.cast(padding_mask, halting_dtype)
    block = RunningTokenBlock(layer.transformer_block, hidden_dim)
    halting_unit = DenseProjection(layer.halting_dense, hidden_dim, halting_dtype)

    def to_tokens(flat):
        tokens = tf.reshape(flat, tf.shape(real_tokens))
        tokens.set_shape(real_tokens.shape)
        return tokens

    flat_inputs = tf.reshape(hidden_states, [-1, hidden_dim])
    # Before the first iteration every real token "was just updated": its
    # keys and values are computed then.
    updated_positions = running_positions(padding_mask)
    updated = tf.gather(flat_inputs, updated_positions)

    def body(step, halting_probability, remainders, updates, updated, updated_positions, *rest):
        key_cache, value_cache, finished, finished_positions, *trace = rest
        key_cache, value_cache = block.update_cache(
            updated, updated_positions, key_cache, value_cache
        )
        # Of the tokens updated at the previous iteration, those still
        # running go on; the others have reached their final state.
        running = tf.gather(tf.reshape(halting_probability < 1.0, [-1]), updated_positions)
        keep = tf.cast(tf.where(running)[:, 0], tf.int32)
        done = tf.cast(tf.where(tf.logical_not(running))[:, 0], tf.int32)
        # Slot 0 holds the empty first element (see `final_states`).
        finished = finished.write(step + 1, tf.gather(updated, done))
        finished_positions = finished_positions.write(step + 1, tf.gather(updated_positions, done))

        positions = tf.gather(updated_positions, keep)
        inputs = tf.gather(updated, keep)
        block_output = block(
            inputs, positions, key_cache, value_cache, padding_mask, training=training
        )
        logits = halting_unit(tf.cast(block_output, halting_dtype))[:, 0]
        indices = positions[:, tf.newaxis]
        # Halted tokens get logit 0 here; `halting_step` ignores them.
        halting_logits = to_tokens(tf.scatter_nd(indices, logits, [num_tokens]))
        (
            update_weights,
            _,
            halting_probability,
            remainders,
            updates,
        ) = halting_step(
            tf.sigmoid(halting_logits), halting_probability, remainders, updates, threshold
        )
        # The dense path's interpolation, on the running tokens only.
        weights = tf.gather(tf.reshape(update_weights, [-1]), positions)[:, tf.newaxis]
        mixed = tf.cast(block_output, halting_dtype) * weights + tf.cast(inputs, halting_dtype) * (
            1.0 - weights
        )
        updated = tf.cast(mixed, compute_dtype)

        if trace:
            # Analysis only: the dense states, and NaN logits for the tokens
            # that did not run.
            states = tf.tensor_scatter_nd_update(trace[0], indices, updated)
            nan = tf.fill([num_tokens], tf.constant(float("nan"), halting_dtype))
            values = (
                tf.reshape(states, shape),
                to_tokens(tf.tensor_scatter_nd_update(nan, indices, logits)),
                update_weights,
                halting_probability,
                remainders,
                updates,
            )
            trace = [states] + [
                record_iteration(history, step, value)
                for history, value in zip(trace[1:], values, strict=True)
            ]
        return (
            step + 1,
            halting_probability,
            remainders,
            updates,
            updated,
            positions,
            key_cache,
            value_cache,
            finished,
            finished_positions,
            *trace,
        )

    def condition(step, halting_probability, remainders, updates, *rest):
        return should_continue(halting_probability, updates, threshold, depth_limit)

    def final_states(dtype, width):
        # One empty element first: `concat()` of a TensorArray that was never
        # written to fails eagerly (an empty batch, or every token padding,
        # runs no iteration).
        array = tf.TensorArray(
            dtype, size=0, dynamic_size=True, infer_shape=False, element_shape=width
        )
        return array.write(0, tf.zeros([0] + width[1:], dtype))

    trace = ()
    if return_iterations:
        token_shape = [layer.max_layers, shape[0], shape[1]]
        trace = (
            flat_inputs,
            tf.zeros(token_shape + [hidden_dim], halting_dtype),
            *(tf.zeros(token_shape, halting_dtype) for _ in range(5)),
        )
    loop_vars = (
        tf.constant(0, tf.int32),
        1.0 - real_tokens,  # padding starts halted
        tf.zeros_like(real_tokens),
        tf.zeros_like(real_tokens),
        updated,
        updated_positions,
        *block.empty_cache(shape[0], shape[1]),
        final_states(compute_dtype, [None, hidden_dim]),
        final_states(tf.int32, [None]),
    ) + trace
    shape_invariants = [None] * len(loop_vars)
    shape_invariants[4] = tf.TensorShape([None, hidden_dim])
    shape_invariants[5] = tf.TensorShape([None])
    results = tf.while_loop(
        condition,
        body,
        loop_vars,
        shape_invariants=tuple(shape_invariants),
        maximum_iterations=layer.max_layers,
    )
    step, halting_probability, remainders, updates, updated, updated_positions = results[:6]
    finished, finished_positions = results[8:10]
    # Every real token's final state is written exactly once.
    states = tf.tensor_scatter_nd_update(
        flat_inputs,
        tf.concat([finished_positions.concat(), updated_positions], 0)[:, tf.newaxis],
        tf.concat([finished.concat(), updated], 0),
    )
    sequence_output = tf.reshape(states, shape)
    sequence_output.set_shape(hidden_states.shape)
    outputs = {
        "sequence_output": sequence_output,
        "updates": updates,
        "remainders": remainders,
        "halting_probability": halting_probability,
    }
    if return_iterations:
        outputs["num_iterations"] = step
        outputs["iterations"] = results[11:]
    return outputs
