"""Argument checks shared by the layers, models, export and command lines.

TensorFlow-free: importing this module loads neither TensorFlow nor Keras, so
the command lines can check their arguments before the heavy imports.
"""

import math


def check_positive_int(name, value, allow_none=False):
    """Raise a `ValueError` naming `name` unless `value` is an int above 0.

    Booleans are refused (`True` is an `int` in Python, never a size).

    Args:
        name: str. The argument's name, as the user wrote it.
        value: the value received.
        allow_none: bool. Whether `None` is accepted (an optional size).

    Returns:
        `value`, unchanged.

    Example:

    >>> check_positive_int("num_classes", 3)
    3
    >>> check_positive_int("num_classes", 0)
    Traceback (most recent call last):
    ...
    ValueError: `num_classes` must be a positive int. Received: num_classes=0
    """
    if value is None and allow_none:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
    return value


def check_non_negative_float(name, value):
    """Raise a `ValueError` naming `name` unless `value` is a finite number >= 0.

    Args:
        name: str. The argument's name, as the user wrote it.
        value: the value received (int or float, not bool).

    Returns:
        `value`, unchanged.

    Example:

    >>> check_non_negative_float("ponder_weight", 1e-3)
    0.001
    >>> check_non_negative_float("ponder_weight", -1.0)
    Traceback (most recent call last):
    ...
    ValueError: `ponder_weight` must be a finite number >= 0. Received: ponder_weight=-1.0
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(
            f"`{name}` must be a finite number >= 0. Received: {name}={value!r}"
        )
    return value


def check_positive_flags(parser, args, names):
    """Stop a command line whose flags in `names` are not positive ints.

    A flag left out (`None`) is accepted. The first bad one ends the program
    through `parser.error` (usage, `prog: error: --flag must be positive`,
    exit status 2), as argparse reports its own errors.

    Args:
        parser: the `argparse.ArgumentParser` that parsed `args`.
        args: the parsed `argparse.Namespace`.
        names: the flags' destinations, e.g. `("batch_size", "steps")`;
            the message spells them as flags (`--batch-size`).

    Example:

    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="job")
    >>> _ = parser.add_argument("--batch-size", type=int, default=32)
    >>> _ = parser.add_argument("--steps", type=int)
    >>> check_positive_flags(parser, parser.parse_args([]), ("batch_size", "steps"))
    >>> check_positive_flags(parser, parser.parse_args(["--steps", "0"]), ("steps",))
    Traceback (most recent call last):
    ...
    SystemExit: 2
    """
    for name in names:
        try:
            check_positive_int(name, getattr(args, name), allow_none=True)
        except ValueError:
            parser.error(f"--{name.replace('_', '-')} must be positive")


def check_int_in_range(name, value, low, high, high_is=None):
    """Raise a `ValueError` naming `name` unless `value` is an int in `[low, high]`.

    Booleans are refused.

    Args:
        name: str. The argument's name, as the user wrote it.
        value: the value received.
        low: int, the smallest value accepted.
        high: int, the largest value accepted.
        high_is: optional str, what `high` is (said in the message).

    Returns:
        `value`, unchanged.

    Example:

    >>> check_int_in_range("top_k", 5, 1, 100, high_is="the vocabulary")
    5
    >>> check_int_in_range("top_k", 0, 1, 100, high_is="the vocabulary")
    Traceback (most recent call last):
    ...
    ValueError: `top_k` must be an int in [1, 100] (the vocabulary). Received: top_k=0
    """
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        said = f" ({high_is})" if high_is else ""
        raise ValueError(
            f"`{name}` must be an int in [{low}, {high}]{said}. Received: {name}={value!r}"
        )
    return value
