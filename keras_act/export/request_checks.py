"""Checks of a request's tensor shapes, run in the exported graph first.

The TF Serving model server (and the TF1 session loader it uses, and a
Python client calling `tf.saved_model.load(path).signatures[...]`) feeds a
request's tensors to a signature without comparing their shapes with the
SignatureDef's: a scalar, a `[1, 0]` or `[3, 0]` string tensor where the
signature says `[batch]` reaches the graph as sent, and TF Text's ops crash
the whole process on some of them. Every input of an exported signature
therefore passes `checked_input` before anything else sees it: a tensor of
another rank, or with no choices, is answered with `INVALID_ARGUMENT`
naming the input, and the process serves the next request.

The rank is taken in a way graph optimisation cannot fold: inside the
signature function the input's static shape is the signature's, so
`tf.rank` (or the size of `tf.shape`) is replaced by that constant and the
check vanishes. `runtime_rank` counts the entries of the shape through
`tf.where`, whose output size has no static value. A `tf.ensure_shape`
after the checks keeps the signature's shape as a second guard.
"""

import tensorflow as tf

#: The axis names of the signatures' inputs. An axis between `batch` and
#: the last one (`seq` of token ids) holds the choices of
#: `AlbertActMultipleChoice`, and must not be empty.
BATCH_AXIS = "batch"
CHOICES_AXIS = "num_choices"
SEQUENCE_AXIS = "seq"


def runtime_rank(tensor):
    """The rank of `tensor` when the graph runs (never a folded constant).

    Args:
        tensor: a tensor of any rank.

    Returns:
        An int32 scalar tensor.

    Example:

    >>> int(runtime_rank(tf.zeros([3, 0])))
    2
    """
    shape = tf.shape(tensor, out_type=tf.int32)
    entries = tf.where(tf.greater_equal(shape, 0))
    return tf.shape(entries, out_type=tf.int32)[0]


def text_axes(rank):
    """The axis names of a raw-text input of `rank`: `[batch]`, or
    `[batch, num_choices]`."""
    return (BATCH_AXIS,) + (CHOICES_AXIS,) * (rank - 1)


def token_ids_axes(rank):
    """The axis names of a token-id input of `rank`: `[batch, seq]`, or
    `[batch, num_choices, seq]`."""
    return (BATCH_AXIS,) + (CHOICES_AXIS,) * (rank - 2) + (SEQUENCE_AXIS,)


def checked_input(tensor, name, axes):
    """`tensor` after run-time checks of its rank and inner sizes.

    Args:
        tensor: a signature input.
        name: str, the input's name in the signature (named in errors).
        axes: the names of its axes (`text_axes`, `token_ids_axes`); a
            `num_choices` axis must not be empty.

    Returns:
        `tensor`, through an op that runs only once the checks passed, with
        the static shape `[None] * len(axes)`.

    Raises:
        `tf.errors.InvalidArgumentError` when the graph runs, e.g.
        ``assertion failed: [`text` must be a string tensor of shape [batch];
        received shape] [3 0]``.

    Example:

    ```python
    text = checked_input(text, "text", text_axes(1))
    ```
    """
    rank = len(axes)
    shape = tf.shape(tensor, out_type=tf.int32)
    expected = f"`{name}` must be a {tensor.dtype.name} tensor of shape [{', '.join(axes)}]"
    rank_check = tf.debugging.Assert(
        tf.equal(runtime_rank(tensor), rank), [f"{expected}; received shape", shape]
    )
    checks = [rank_check]
    with tf.control_dependencies([rank_check]):  # `shape[axis]` exists only then
        for axis, axis_name in enumerate(axes):
            if axis_name == CHOICES_AXIS:
                checks.append(
                    tf.debugging.Assert(
                        tf.greater(shape[axis], 0),
                        [f"{expected} with at least one choice; received shape", shape],
                    )
                )
    with tf.control_dependencies(checks):
        return tf.ensure_shape(tensor, [None] * rank)


def checked_inputs(inputs, axes):
    """`checked_input` on each input of a dict.

    Args:
        inputs: a dict of the signature's input tensors, by name.
        axes: a dict of their axis names, by input name.

    Returns:
        A dict of the checked tensors, in the order of `inputs`.
    """
    return {name: checked_input(value, name, axes[name]) for name, value in inputs.items()}
