"""A new halting unit that makes every token start at a chosen depth.

A plain ALBERT (Hugging Face or keras-hub) has no halting unit: when its
shared layer becomes the ACT block of an `AlbertActBackbone`, the unit is
new. With a zero kernel, every token gets the same halting probability
`p = sigmoid(bias)` at every step, so it halts after exactly the first `n`
steps with `n * p > 1 - act_epsilon`. Choosing `p` in the middle of the
interval that gives `n = initial_depth` makes every token start at that
depth, far from the boundaries (float rounding cannot move it); training
then learns from there which tokens need more or fewer layers.
"""

import math

import numpy as np

from keras_act.checks import check_int_in_range, check_positive_int


def halting_probability_for_depth(initial_depth, act_epsilon=0.01):
    """The constant per-step halting probability that halts at `initial_depth`.

    With threshold `t = 1 - act_epsilon`, a token whose halting probability
    is `p` at every step halts at the first step `n` with `n * p > t`. The
    probability is

    - `p = t / (initial_depth - 0.5)` for `initial_depth >= 2` (then
      `(d - 1) * p < t < d * p`, both by a margin of `p / 2`);
    - `p = (1 + t) / 2` for `initial_depth == 1` (the first step crosses).

    Args:
        initial_depth: int >= 1, the number of updates every token gets.
        act_epsilon: float in (0, 1), the backbone's `act_epsilon`.

    Returns:
        A float in (0, 1).

    Example:

    >>> round(halting_probability_for_depth(12), 6)  # 0.99 / 11.5
    0.086087
    >>> halting_probability_for_depth(1)
    0.995
    """
    check_positive_int("initial_depth", initial_depth)
    if not 0.0 < act_epsilon < 1.0:
        raise ValueError(f"act_epsilon must be in (0, 1). Received: act_epsilon={act_epsilon!r}")
    threshold = 1.0 - act_epsilon
    if initial_depth == 1:
        return (1.0 + threshold) / 2.0
    return threshold / (initial_depth - 0.5)


def halting_bias_for_depth(initial_depth, act_epsilon=0.01):
    """The halting bias `logit(p)` of `halting_probability_for_depth`.

    Args:
        initial_depth: int >= 1, the number of updates every token gets.
        act_epsilon: float in (0, 1), the backbone's `act_epsilon`.

    Returns:
        A float, `log(p / (1 - p))`.

    Example:

    >>> round(halting_bias_for_depth(12), 4)
    -2.3624
    """
    probability = halting_probability_for_depth(initial_depth, act_epsilon)
    return math.log(probability / (1.0 - probability))


def default_initial_depth(max_layers):
    """Half the cap, rounded up: room for tokens to go deeper or shallower.

    Example:

    >>> default_initial_depth(12), default_initial_depth(1)
    (6, 1)
    """
    return max(1, math.ceil(max_layers / 2))


def initialize_halting(backbone, initial_depth=None):
    """Sets a backbone's halting unit so every token starts at `initial_depth`.

    The halting kernel becomes zero and the bias
    `halting_bias_for_depth(initial_depth, backbone.act_epsilon)`, so every
    real token gets exactly `initial_depth` updates, whatever its text, until
    training changes the unit.

    Args:
        backbone: a built `keras_act.AlbertActBackbone`.
        initial_depth: optional int in `[1, backbone.max_layers]`. Defaults
            to `default_initial_depth(backbone.max_layers)` (half the cap,
            rounded up).

    Returns:
        The `initial_depth` used.

    Raises:
        ValueError: for an `initial_depth` outside `[1, max_layers]`.

    Example:

    >>> import keras_act
    >>> backbone = keras_act.AlbertActBackbone(
    ...     vocabulary_size=50, embedding_dim=8, hidden_dim=16, num_heads=2,
    ...     intermediate_dim=32, max_layers=6, max_sequence_length=16)
    >>> initialize_halting(backbone, initial_depth=4)
    4
    >>> inputs = {"token_ids": np.array([[2, 7, 9, 3]]),
    ...           "segment_ids": np.zeros((1, 4), "int32"),
    ...           "padding_mask": np.ones((1, 4), "int32")}
    >>> backbone(inputs)["updates"].numpy().tolist()
    [[4.0, 4.0, 4.0, 4.0]]
    """
    max_layers = backbone.max_layers
    if initial_depth is None:
        initial_depth = default_initial_depth(max_layers)
    check_int_in_range("initial_depth", initial_depth, 1, max_layers, high_is="max_layers")
    halting_dense = backbone.get_layer("albert_act").halting_dense
    kernel, bias = halting_dense.kernel, halting_dense.bias
    kernel.assign(np.zeros(kernel.shape, kernel.dtype))
    value = halting_bias_for_depth(int(initial_depth), backbone.act_epsilon)
    bias.assign(np.full(bias.shape, value, bias.dtype))
    return int(initial_depth)
