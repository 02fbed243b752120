"""Gradients by recomputation: the backward pass reruns the forward.

A `tf.switch_case` differentiated by TensorFlow keeps the intermediates of
every branch (zeros for the branches not taken) for the backward pass; in a
`tf.while_loop` that is every branch's intermediates at every iteration.
`recomputed_switch_case` saves only the inputs instead, and its gradient is
a `tf.switch_case` of its own, on the same index, whose branch reruns the
forward branch under a tape. No gradient of a `tf.switch_case` is ever
built: under XLA, TensorFlow's (the gradient of a conditional inside a
`tf.while_loop` inside a custom gradient) crashed the compiler with more
than one branch.
"""

import tensorflow as tf


def recomputed_switch_case(branches):
    """`tf.switch_case` over `branches`, its gradient computed by rerunning them.

    Args:
        branches: a non-empty list of functions of the same tensors
            (positional) returning tuples of tensors of the same structure.
            They must read no variable and capture no tensor: pass weights,
            and every tensor they read, as inputs. Integer inputs get no
            gradient.

    Returns:
        A function `(branch_index, *inputs)` that runs
        `branches[branch_index](*inputs)` (int32 scalar `branch_index`;
        with one branch, it is not read). Its gradient runs the same branch
        again under a tape (in its own `tf.switch_case`), so at most one
        branch's intermediates are alive at a time.

    Example:

    >>> square_or_cube = recomputed_switch_case(
    ...     [lambda x: (x * x,), lambda x: (x * x * x,)]
    ... )
    >>> x = tf.constant(3.0)
    >>> with tf.GradientTape() as tape:
    ...     tape.watch(x)
    ...     (y,) = square_or_cube(tf.constant(1), x)
    >>> float(y), float(tape.gradient(y, x))
    (27.0, 27.0)
    """
    branches = list(branches)

    def switch(branch_index, functions):
        if len(functions) == 1:
            return functions[0]()
        return tf.switch_case(branch_index, functions)

    @tf.custom_gradient
    def wrapped(branch_index, *inputs):
        outputs = switch(branch_index, [lambda b=b: tuple(b(*inputs)) for b in branches])

        def gradient(*output_gradients):
            floats = [x for x in inputs if x.dtype.is_floating]

            def branch_gradient(branch):
                def run():
                    with tf.GradientTape() as tape:
                        tape.watch(floats)
                        again = branch(*inputs)
                    # Outputs that got no gradient (None) contribute nothing.
                    upstream = [
                        tf.zeros_like(output) if grad is None else grad
                        for output, grad in zip(again, output_gradients, strict=True)
                    ]
                    return tuple(
                        tape.gradient(
                            again,
                            floats,
                            output_gradients=upstream,
                            unconnected_gradients=tf.UnconnectedGradients.ZERO,
                        )
                    )

                return run

            float_gradients = iter(
                switch(branch_index, [branch_gradient(branch) for branch in branches])
            )
            return [None] + [
                next(float_gradients) if x.dtype.is_floating else None for x in inputs
            ]

        return tuple(outputs), gradient

    return wrapped

