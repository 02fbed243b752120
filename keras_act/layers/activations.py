"""Activation names of ALBERT configs, resolved to Keras functions."""

import keras


def gelu_approximate(x):
    """GELU with the tanh approximation (Hugging Face's `"gelu_new"`)."""
    return keras.activations.gelu(x, approximate=True)


def gelu_exact(x):
    """GELU with the exact erf formula (Hugging Face's `"gelu"`)."""
    return keras.activations.gelu(x, approximate=False)


# Names used by Hugging Face ALBERT configs (`hidden_act`) and by Keras.
_ACTIVATIONS = {
    "gelu_new": gelu_approximate,
    "gelu_approximate": gelu_approximate,
    "gelu_pytorch_tanh": gelu_approximate,
    "gelu": gelu_exact,
}


def get_activation(name):
    """Returns the Keras activation function for an ALBERT activation name.

    `"gelu_new"` (the default of ALBERT and of the reference) is the
    tanh-approximated GELU; `"gelu"` is the exact one. Any other name is
    looked up with `keras.activations.get`.

    Args:
        name: str, an activation name such as `"gelu_new"` or `"relu"`.

    Returns:
        A callable activation function.

    Example:

    >>> get_activation("gelu_new")  # doctest: +ELLIPSIS
    <function gelu_approximate at ...>
    """
    if not isinstance(name, str):
        raise TypeError(
            "`activation` must be the name of an activation, such as "
            f"'gelu_new' or 'relu'. Received: activation={name!r}"
        )
    if name in _ACTIVATIONS:
        return _ACTIVATIONS[name]
    try:
        return keras.activations.get(name)
    except ValueError as error:
        raise ValueError(
            f"Unknown activation {name!r}. Use one of "
            f"{sorted(_ACTIVATIONS)} or a Keras activation name."
        ) from error
