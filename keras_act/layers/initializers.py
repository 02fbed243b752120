"""Weight initializers of ALBERT-ACT: ALBERT's, and fresh copies of one."""

import keras


def albert_act_kernel_initializer(stddev=0.02):
    """ALBERT's kernel initializer: a truncated normal of `stddev` 0.02.

    Args:
        stddev: float, the standard deviation. Defaults to `0.02`.

    Returns:
        A `keras.initializers.TruncatedNormal`.

    Example:

    >>> albert_act_kernel_initializer().get_config()["stddev"]
    0.02
    """
    return keras.initializers.TruncatedNormal(stddev=stddev)


def clone_initializer(initializer):
    """A new initializer with the same config as `initializer`.

    Keras initializers with a seed draw the same values on every call; each
    layer gets its own copy so that weights sharing an initializer differ.

    Args:
        initializer: a Keras initializer (object, name or config).

    Returns:
        A new `keras.initializers.Initializer` of the same class and config.

    Example:

    >>> original = albert_act_kernel_initializer()
    >>> copy = clone_initializer(original)
    >>> copy is original, copy.get_config() == original.get_config()
    (False, True)
    """
    return keras.initializers.get(keras.initializers.serialize(initializer))
