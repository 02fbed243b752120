"""Gradients by recomputation: the backward pass reruns the forward.

A `tf.switch_case` differentiated by TensorFlow keeps the intermediates of
every branch (zeros for the branches not taken) for the backward pass; in a
`tf.while_loop` that is every branch's intermediates at every iteration.
`recompute_gradient(fn)` saves only `fn`'s inputs instead, and reruns `fn`
under a tape when the gradient is needed, so at most one iteration's
intermediates are alive at a time.
"""

import tensorflow as tf


def recompute_gradient(fn):
    """Wraps `fn` so that its gradient recomputes it from its inputs.

    Args:
        fn: a function of tensors (positional) returning a tuple of
            tensors. It must read no variable and capture no tensor: pass
            weights, and every tensor it reads, as inputs. Integer inputs
            get no gradient.

    Returns:
        A function with `fn`'s arguments and results, whose gradient is
        `fn`'s, computed by running `fn` again.

    Example:

    >>> square = recompute_gradient(lambda x: (x * x,))
    >>> x = tf.constant(3.0)
    >>> with tf.GradientTape() as tape:
    ...     tape.watch(x)
    ...     (y,) = square(x)
    >>> float(tape.gradient(y, x))
    6.0
    """

    @tf.custom_gradient
    def wrapped(*inputs):
        outputs = fn(*inputs)

        def gradient(*output_gradients):
            floats = [x for x in inputs if x.dtype.is_floating]
            with tf.GradientTape() as tape:
                tape.watch(floats)
                again = fn(*inputs)
            # Outputs that got no gradient (None) contribute nothing.
            output_gradients = [
                tf.zeros_like(output) if grad is None else grad
                for output, grad in zip(again, output_gradients, strict=True)
            ]
            float_gradients = iter(
                tape.gradient(
                    again,
                    floats,
                    output_gradients=output_gradients,
                    unconnected_gradients=tf.UnconnectedGradients.ZERO,
                )
            )
            return [next(float_gradients) if x.dtype.is_floating else None for x in inputs]

        return tuple(outputs), gradient

    return wrapped
