"""The halting loop of `AlbertAct`'s static-shape skip path (XLA, TPUs).

Every array of this loop has a shape fixed by the input's, so XLA compiles
it. Token arrays are flat (`b * seq + t`) with one extra *trash* row at the
end. At each iteration:

1. The running tokens (cumulative halting probability below 1) are listed
   in row-major order at the front of a `[batch * seq + 1]` vector of
   positions; the other entries name the trash row.
2. The smallest capacity of the ladder (`capacity_ladder.py`) that holds
   them is chosen, and `tf.switch_case` runs that capacity's branch: it
   gathers that many rows (states and halting accumulators), runs the block
   (attention against the key/value cache of every token), the halting
   unit, the halting step and the interpolation on them
   (`gathered_block.py`), computes the new keys and values of the updated
   rows, and scatters everything back. Slots past the running tokens read
   and write the trash row: its halting probability is 1, so the halting
   step leaves it as it is, and no real token reads it.

Halted tokens keep the state, keys and values of their last update, as in
the dense path, which recomputes the same keys and values for them. In
training the iteration recomputes itself in the backward pass
(`recompute.py`): only its inputs are kept per iteration, not the
intermediates of every branch.
"""

import tensorflow as tf

from keras_act.layers.capacity_ladder import ladder_capacities, rung
from keras_act.layers.gathered_block import (
    GatheredBlockSpec,
    append_zero_row,
    block_weights,
    gathered_block,
    halting_logits,
    key_values,
)
from keras_act.layers.halting import halting_step, record_iteration, should_continue
from keras_act.layers.recompute import recomputed_switch_case


def static_skip_loop(
    layer,
    hidden_states,
    padding_mask,
    threshold,
    depth_limit,
    training=False,
    return_iterations=False,
):
    """Runs `layer`'s halting loop on a ladder of static-shape buffers.

    Args:
        layer: a built `keras_act.AlbertAct` (its block not quantized).
        hidden_states: `[batch, seq, hidden]` in the layer's compute dtype.
        padding_mask: bool `[batch, seq]`, true for real tokens.
        threshold: halting-dtype scalar, a token halts when its cumulative
            halting probability would exceed it.
        depth_limit: int32 scalar, at most `layer.max_layers`: the loop stops
            after this many iterations.
        training: Python bool, whether dropout is active (on the gathered
            rows) and the backward pass recomputes each iteration.
        return_iterations: bool, also return the per-iteration arrays (see
            `AlbertAct`); `iteration_halting_logits` are NaN for tokens that
            did not run at that iteration.

    Returns:
        The outputs dict of `AlbertAct.call`, before masking of padding.
    """
    halting_dtype = layer._halting_dtype
    compute_dtype = layer.compute_dtype
    hidden_dim = layer.hidden_dim
    spec = GatheredBlockSpec(layer)
    weights = block_weights(layer)

    batch_size, seq_length = _dims(hidden_states)
    num_tokens = batch_size * seq_length
    capacities = ladder_capacities(layer.capacity_ladder, num_tokens)
    shape = tf.shape(hidden_states)
    real_flat = tf.reshape(tf.cast(padding_mask, halting_dtype), [-1])

    flat_inputs = tf.reshape(hidden_states, [-1, hidden_dim])
    # The trash row: finite, with unit variance (its layer norms stay tame).
    trash = tf.cast(tf.range(hidden_dim) % 2 * 2 - 1, compute_dtype)[tf.newaxis]
    states = tf.concat([flat_inputs, trash], 0)
    keys, values = key_values(spec, weights, states)
    trash_entry = tf.ones([1], halting_dtype)
    halting_probability = tf.concat([1.0 - real_flat, trash_entry], 0)  # padding starts halted
    remainders = tf.zeros_like(halting_probability)
    updates = tf.zeros_like(halting_probability)
    key_mask_bias = tf.where(padding_mask, 0.0, -1e9)[:, tf.newaxis, tf.newaxis, :]
    seed = None
    if training and spec.dropout:
        seed = tf.cast(
            layer.transformer_block._feedforward_dropout.seed_generator.next(), tf.int32
        )

    def iteration(step, states, keys, values, halting_probability, remainders, updates):
        running = tf.reshape(halting_probability[:-1] < 1.0, shape[:2])
        flat_running = tf.reshape(running, [-1])
        count = tf.reduce_sum(tf.cast(flat_running, tf.int32))
        # Slot i < count holds the position of the i-th running token; the
        # others hold the trash row's position.
        order = tf.cumsum(tf.cast(flat_running, tf.int32)) - 1
        slot_positions = tf.tensor_scatter_nd_update(
            tf.fill([num_tokens + 1], num_tokens),
            tf.where(flat_running, order, num_tokens)[:, tf.newaxis],
            tf.range(num_tokens),
        )
        # Each running token's rank among the running tokens of its sequence.
        row_rank = tf.reshape(tf.cumsum(tf.cast(running, tf.int32), axis=1) - 1, [-1])
        row_rank = tf.concat([row_rank, [0]], 0)
        row_counts = tf.reduce_sum(tf.cast(running, tf.int32), axis=1)
        # Each token's slot in the buffer, `num_tokens` if it is not running.
        token_slot = tf.concat([tf.where(flat_running, order, num_tokens), [num_tokens]], 0)
        step_seed = None if seed is None else tf.random.experimental.stateless_fold_in(seed, step)

        inputs = dict(
            weights,
            slot_positions=slot_positions,
            row_rank=row_rank,
            row_counts=row_counts,
            token_slot=token_slot,
            key_mask_bias=key_mask_bias,
            threshold=threshold,
            states=states,
            keys=keys,
            values=values,
            halting_probability=halting_probability,
            remainders=remainders,
            updates=updates,
        )
        if step_seed is not None:
            inputs["seed"] = step_seed
        input_names = sorted(inputs)

        def branch(index):
            def run(*values):
                tensors = dict(zip(input_names, values, strict=True))
                capacity, seq, tokens = capacities[index], seq_length, num_tokens
                if not isinstance(capacity, int):
                    # Sizes known only when compiled (e.g. Keras' `fit`):
                    # from a float input's shape. An integer tensor from
                    # outside is no compile-time constant in the backward
                    # pass under XLA (popped from the loop's accumulator).
                    bias_shape = tf.shape(tensors["key_mask_bias"])
                    seq, tokens = bias_shape[3], bias_shape[0] * bias_shape[3]
                    capacity = ladder_capacities(layer.capacity_ladder, tokens)[index]
                return _branch(capacity, seq, spec, tokens, tensors)()

            return run

        # Every tensor the iteration reads is an input (see `recompute.py`).
        switch = recomputed_switch_case([branch(i) for i in range(len(capacities))])
        return switch(rung(capacities, count), *(inputs[name] for name in input_names))

    def condition(step, states, keys, values, halting_probability, remainders, updates, *trace):
        return should_continue(halting_probability, updates, threshold, depth_limit)

    def body(step, states, keys, values, halting_probability, remainders, updates, *trace):
        (
            states, keys, values, halting_probability, remainders, updates, logits, weights_,
        ) = iteration(step, states, keys, values, halting_probability, remainders, updates)
        if trace:
            values_ = tuple(
                value[:-1]
                for value in (states, logits, weights_, halting_probability, remainders, updates)
            )
            trace = tuple(
                record_iteration(history, step, tf.reshape(value, tf.shape(history)[1:]))
                for history, value in zip(trace, values_, strict=True)
            )
        return (step + 1, states, keys, values, halting_probability, remainders, updates) + tuple(trace)

    trace = ()
    if return_iterations:
        token_shape = [layer.max_layers, shape[0], shape[1]]
        trace = (tf.zeros(token_shape + [hidden_dim], halting_dtype),) + tuple(
            tf.zeros(token_shape, halting_dtype) for _ in range(5)
        )
    loop_vars = (
        tf.constant(0, tf.int32), states, keys, values, halting_probability, remainders, updates,
    ) + trace
    results = tf.while_loop(condition, body, loop_vars, maximum_iterations=layer.max_layers)
    step, states, _, _, halting_probability, remainders, updates = results[:7]

    def to_tokens(flat):
        tokens = tf.reshape(flat[:-1], shape[:2])
        tokens.set_shape(hidden_states.shape[:2])
        return tokens

    sequence_output = tf.reshape(states[:-1], shape)
    sequence_output.set_shape(hidden_states.shape)
    outputs = {
        "sequence_output": sequence_output,
        "updates": to_tokens(updates),
        "remainders": to_tokens(remainders),
        "halting_probability": to_tokens(halting_probability),
    }
    if return_iterations:
        outputs["num_iterations"] = step
        outputs["iterations"] = results[7:]
    return outputs


def _branch(capacity, seq_length, spec, num_tokens, tensors):
    """The iteration on a buffer of `capacity` rows (a `tf.switch_case` branch)."""
    weights = tensors
    slot_positions, row_rank = tensors["slot_positions"], tensors["row_rank"]
    states, keys, values = (tensors[k] for k in ("states", "keys", "values"))
    halting_probability, remainders, updates = (
        tensors[k] for k in ("halting_probability", "remainders", "updates")
    )

    def run():
        halting_dtype = halting_probability.dtype
        positions = slot_positions[:capacity]
        real = positions < num_tokens
        # Queries go to `[batch, slots]`: a sequence has at most
        # min(capacity, seq) running tokens.
        if isinstance(capacity, int) and isinstance(seq_length, int):
            slots = min(capacity, seq_length)
        else:
            slots = tf.minimum(capacity, seq_length)
        query_slots = tf.where(
            real, positions // seq_length * slots + tf.gather(row_rank, positions), 0
        )
        row_counts = tensors["row_counts"]
        place = tf.range(slots)[tf.newaxis, :]
        place_rows = tf.reshape(
            tf.where(
                place < row_counts[:, tf.newaxis],
                tf.cumsum(row_counts, exclusive=True)[:, tf.newaxis] + place,
                capacity,
            ),
            [-1],
        )
        rows = tf.gather(states, positions)
        # The `[batch, seq]` shape from a float input's own shape: an integer
        # input used as a shape is no compile-time constant in the backward
        # pass under XLA, where it is popped from the loop's accumulator.
        bias_shape = tf.shape(tensors["key_mask_bias"])
        grid = tf.stack([bias_shape[0], bias_shape[3], spec.num_heads, spec.head_dim])
        block_output = gathered_block(
            spec,
            weights,
            rows,
            query_slots,
            place_rows,
            slots,
            tf.reshape(keys[:-1], grid),
            tf.reshape(values[:-1], grid),
            tensors["key_mask_bias"],
            tensors.get("seed"),
        )
        logits = halting_logits(spec, weights, block_output)
        update_weights, _, new_probability, new_remainders, new_updates = halting_step(
            tf.sigmoid(logits),
            tf.gather(halting_probability, positions),
            tf.gather(remainders, positions),
            tf.gather(updates, positions),
            tensors["threshold"],
        )
        mixing = update_weights[:, tf.newaxis]
        mixed = tf.cast(
            tf.cast(block_output, halting_dtype) * mixing
            + tf.cast(rows, halting_dtype) * (1.0 - mixing),
            rows.dtype,
        )
        new_keys, new_values = key_values(spec, weights, mixed)
        # Back to the token arrays by gathers (XLA's CPU scatter is a slow
        # serial loop): each running token reads its slot; the others, the
        # trash row included, keep their values.
        slot = tf.minimum(tensors["token_slot"], capacity)
        updated = slot < capacity

        def back(full, new, fill=None):
            new = tf.gather(append_zero_row(new), slot)
            mask = tf.reshape(updated, [-1] + [1] * (len(new.shape) - 1))
            return tf.where(mask, new, full if fill is None else fill)

        nan = tf.fill([num_tokens + 1], tf.constant(float("nan"), halting_dtype))
        return (
            back(states, mixed),
            back(keys, new_keys),
            back(values, new_values),
            back(halting_probability, new_probability),
            back(remainders, new_remainders),
            back(updates, new_updates),
            back(None, logits, nan),
            back(None, update_weights, tf.zeros_like(updates)),
        )

    return run


def _dims(hidden_states):
    """(batch, seq): Python ints where the shape is static, else int32 scalars."""
    static = hidden_states.shape
    dynamic = tf.shape(hidden_states)
    return tuple(
        static[axis] if static[axis] is not None else dynamic[axis] for axis in (0, 1)
    )
