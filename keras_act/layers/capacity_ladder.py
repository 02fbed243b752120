"""The capacity ladder of `AlbertAct`'s static-shape skip path.

Under XLA every shape is fixed when the program is compiled, so the running
tokens of an iteration cannot be gathered into a buffer of their own size.
The static path gathers them into one of a few buffers instead: a *ladder*
of capacities, fractions of `batch * seq`, the smallest that holds them all
taken at each iteration (`tf.switch_case`). A ladder of 8 even steps computes
at most 1/8 of `batch * seq` rows more than the tokens need.
"""

import math

import tensorflow as tf

# Eight even steps. Measured under XLA on the shared 2-core CPU (under load),
# hidden 256, batch 8 x 128, mean depth 6.3 of 12, best of 7 interleaved
# calls: 4 steps 1.33x the dense loop, 8 steps 1.42x, 16 steps 1.46x (twice
# the branches to compile for 3%).
DEFAULT_CAPACITY_LADDER = (0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0)


def check_capacity_ladder(ladder):
    """Returns `ladder` as a sorted tuple of floats, or raises `ValueError`.

    Args:
        ladder: a non-empty sequence of fractions in (0, 1] that contains 1
            (the buffer that holds every token).

    Returns:
        A tuple of floats, ascending, without repeats.

    Example:

    >>> check_capacity_ladder([1, 0.5, 0.25])
    (0.25, 0.5, 1.0)
    """
    try:
        values = tuple(float(value) for value in ladder)
    except (TypeError, ValueError):
        values = ()
    if (
        not values
        or any(isinstance(value, bool) for value in ladder)
        or not all(0.0 < value <= 1.0 for value in values)
        or 1.0 not in values
    ):
        raise ValueError(
            "`capacity_ladder` must be a non-empty sequence of fractions of "
            "batch x seq in (0, 1] that contains 1 (the full buffer). "
            f"Received: capacity_ladder={ladder!r}"
        )
    return tuple(sorted(set(values)))


def ladder_capacities(ladder, num_tokens):
    """The buffer sizes of `ladder` for `num_tokens` tokens, ascending.

    Args:
        ladder: a checked ladder (see `check_capacity_ladder`).
        num_tokens: int, or int32 scalar tensor when the shape is only known
            at run time.

    Returns:
        A list of ints (`ceil(fraction * num_tokens)`, repeats removed, the
        last one `num_tokens`) when `num_tokens` is an int, else a list of
        int32 scalar tensors, one per fraction.

    Example:

    >>> ladder_capacities((0.25, 0.5, 1.0), 10)
    [3, 5, 10]
    """
    if isinstance(num_tokens, int):
        capacities = sorted({min(num_tokens, math.ceil(f * num_tokens)) for f in ladder})
        return capacities or [0]
    total = tf.cast(num_tokens, tf.float64)
    return [
        tf.minimum(num_tokens, tf.cast(tf.math.ceil(f * total), tf.int32)) for f in ladder
    ]


def rung(capacities, count):
    """Index of the smallest capacity that holds `count` tokens (int32 scalar).

    Example:

    >>> int(rung([3, 5, 10], tf.constant(4)))
    1
    """
    return tf.add_n(
        [tf.zeros([], tf.int32)]
        + [tf.cast(capacity < count, tf.int32) for capacity in capacities[:-1]]
    )
