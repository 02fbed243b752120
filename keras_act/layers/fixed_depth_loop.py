"""`AlbertAct` with halting off: every real token gets exactly `n` updates.

With `fixed_depth=n`, `AlbertAct` is plain ALBERT (one shared block applied
`n` times, `num_groups=1`, `num_inner_repetitions=1`): the halting unit is
not evaluated, and each iteration replaces the state of every real token by
the block output. Padding is never updated (it keeps its input state, as in
the ACT loop); being masked as attention keys, it changes no real token.
"""

import tensorflow as tf

from keras_act.layers.halting import record_iteration


def fixed_depth_loop(
    layer, hidden_states, padding_mask, depth_limit, training=None, return_iterations=False
):
    """Applies `layer`'s shared block `depth_limit` times to every real token.

    The outputs follow the ACT loop's so that every consumer reads them the
    same way: `updates` is the number of block applications (`depth_limit`
    on real tokens, 0 on padding); `remainders` and `halting_probability`
    are 0 (the halting unit is not evaluated: a fixed-depth token is one
    that never halts and stops at the depth limit, as an ACT token stopped by
    its cap, which gets no remainder). The ponder cost `updates + remainders`
    is so the constant `depth_limit`, with no gradient.

    Args:
        layer: a built `keras_act.AlbertAct`.
        hidden_states: `[batch, seq, hidden]` in the layer's compute dtype.
        padding_mask: bool `[batch, seq]`, true for real tokens.
        depth_limit: int32 scalar tensor, the number of block applications,
            at most `layer.loop_length`.
        training: bool, whether dropout is active.
        return_iterations: bool, also return the per-iteration arrays (see
            `AlbertAct`; `iteration_halting_logits` are NaN, the update
            weights 1 on real tokens).

    Returns:
        The outputs dict of `AlbertAct.call`.
    """
    halting_dtype = layer._halting_dtype
    compute_dtype = layer.compute_dtype
    shape = tf.shape(hidden_states)
    real_tokens = tf.cast(padding_mask, halting_dtype)
    real = padding_mask[..., tf.newaxis]

    def condition(step, state, *trace):
        return step < depth_limit

    def body(step, state, *trace):
        block_output = layer.transformer_block(state, padding_mask=padding_mask, training=training)
        state = tf.where(real, tf.cast(block_output, compute_dtype), state)
        if trace:
            updates = tf.cast(step + 1, halting_dtype) * real_tokens
            values = (
                state,
                tf.fill(shape[:2], tf.constant(float("nan"), halting_dtype)),
                real_tokens,
                tf.zeros_like(real_tokens),
                tf.zeros_like(real_tokens),
                updates,
            )
            trace = tuple(
                record_iteration(history, step, value)
                for history, value in zip(trace, values, strict=True)
            )
        return (step + 1, state) + tuple(trace)

    trace = ()
    if return_iterations:
        token_shape = [layer.loop_length, shape[0], shape[1]]
        trace = (tf.zeros(token_shape + [layer.hidden_dim], halting_dtype),) + tuple(
            tf.zeros(token_shape, halting_dtype) for _ in range(5)
        )
    results = tf.while_loop(
        condition,
        body,
        (tf.constant(0, tf.int32), hidden_states) + trace,
        maximum_iterations=layer.loop_length,
    )
    step, state = results[:2]
    outputs = {
        "sequence_output": state,
        "updates": tf.cast(step, halting_dtype) * real_tokens,
        "remainders": tf.zeros_like(real_tokens),
        "halting_probability": tf.zeros_like(real_tokens),
    }
    if return_iterations:
        outputs["num_iterations"] = step
        outputs["iterations"] = results[2:]
    return outputs
