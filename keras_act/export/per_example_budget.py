"""Per-example depth budgets in an exported signature: one model run per distinct budget.

TF Serving's batcher (`--enable_batching`) concatenates every input of the
requests it merges along dimension 0, the depth-budget inputs (and their
SignatureDef defaults) included, so in a merged batch each text carries its
own `max_layers` and `halting_threshold`. `keras_act.AlbertAct` takes one
scalar budget per call. `PerExampleBudget` bridges the two without touching
the layers: it checks the two inputs (a scalar or `[1]` applies to every
text, `[batch]` gives one value per text), finds the distinct
`(max_layers, halting_threshold)` pairs of the batch (`tf.unique`), runs the
serving head on the whole batch once per pair (the first pair outside a
`tf.while_loop`, the others inside it; a batch of one budget, the usual
case, runs the head exactly once, as an export of scalar inputs did), and
takes each text's rows from the run of its own pair. Every run sees the
whole batch, so every output keeps the shape of a single run (the
masked-LM head's `[batch, P, k]` included) and each text's outputs are
those of the batch run with its budget for every text.
"""

import copy

import tensorflow as tf

from keras_act.export.request_checks import runtime_rank
from keras_act.layers.depth_control import depth_budget


def per_example_values(value, name, batch_size, check_values=None):
    """`value` as one value per example, `[batch_size]`, after shape checks.

    Args:
        value: a tensor of any rank (the signature input).
        name: str, the input's name (in the error).
        batch_size: int32 scalar tensor, the request's batch size.
        check_values: `None`, or a callable that takes the values as sent
            (flattened, after the shape check; so a value of an empty
            batch is checked too) and returns them once checked
            (`max_layers_in_range`, `threshold_in_range`).

    Returns:
        `value` broadcast to `[batch_size]`: a scalar or a `[1]` vector
        applies to every example; a `[batch_size]` vector is kept.

    Raises:
        `tf.errors.InvalidArgumentError` when the graph runs for any other
        shape, e.g. ``assertion failed: [`max_layers` must be a scalar or
        hold one value per example, shape [1] or [batch]; batch size, received
        shape:] [3] [2]``.

    Example:

    >>> per_example_values(tf.constant(2), "max_layers", tf.constant(3)).numpy().tolist()
    [2, 2, 2]
    >>> per_example_values(tf.constant([1, 2]), "max_layers", tf.constant(2)).numpy().tolist()
    [1, 2]
    """
    shape = tf.shape(value, out_type=tf.int32)
    size = tf.size(value, out_type=tf.int32)
    rank = runtime_rank(value)
    fits = tf.logical_or(
        tf.equal(rank, 0),
        tf.logical_and(
            tf.equal(rank, 1), tf.logical_or(tf.equal(size, 1), tf.equal(size, batch_size))
        ),
    )
    check = tf.debugging.Assert(
        fits,
        [
            f"`{name}` must be a scalar or hold one value per example, shape [1] or "
            "[batch]; batch size, received shape:",
            batch_size,
            shape,
        ],
    )
    with tf.control_dependencies([check]):
        values = tf.reshape(value, [-1])
    if check_values is not None:
        values = check_values(values)
    return tf.broadcast_to(values, tf.reshape(batch_size, [1]))


def max_layers_in_range(max_layers, cap):
    """`max_layers` once every value is in `[1, cap]`.

    Raises:
        `tf.errors.InvalidArgumentError` when the graph runs: ``[`max_layers`
        must be in [1, 6] (the trained cap). Received: max_layers=] [2 0]``.

    Example:

    >>> max_layers_in_range(tf.constant([1, 6]), 6).numpy().tolist()
    [1, 6]
    """
    check = tf.debugging.Assert(
        tf.reduce_all(tf.logical_and(max_layers >= 1, max_layers <= cap)),
        [f"`max_layers` must be in [1, {cap}] (the trained cap). Received: max_layers=",
         max_layers],
    )
    with tf.control_dependencies([check]):
        return tf.identity(max_layers)


def threshold_in_range(halting_threshold):
    """`halting_threshold` once every value is in `(0, 1]` (NaN is not).

    Raises:
        `tf.errors.InvalidArgumentError` when the graph runs:
        ``[`halting_threshold` must be in (0, 1]. Received:
        halting_threshold=] [nan]``.
    """
    check = tf.debugging.Assert(
        tf.reduce_all(tf.logical_and(halting_threshold > 0.0, halting_threshold <= 1.0)),
        ["`halting_threshold` must be in (0, 1]. Received: halting_threshold=",
         halting_threshold],
    )
    with tf.control_dependencies([check]):
        return tf.identity(halting_threshold)


def distinct_budgets(max_layers, halting_threshold):
    """The distinct `(max_layers, halting_threshold)` pairs of a batch.

    Args:
        max_layers: int32 `[batch]`.
        halting_threshold: float32 `[batch]`.

    Returns:
        A tuple `(pair_max_layers, pair_thresholds, pair_of_example)`: int32
        and float32 `[pairs]` in order of first appearance, and int32
        `[batch]`, the index of each example's pair.

    Example:

    >>> layers, thresholds, pair = distinct_budgets(
    ...     tf.constant([6, 2, 6, 6]), tf.constant([0.99, 0.99, 0.99, 0.5]))
    >>> layers.numpy().tolist(), pair.numpy().tolist()
    ([6, 2, 6], [0, 1, 0, 2])
    """
    # One int64 key per pair: max_layers in the high half, the threshold's
    # float32 bits in the low half (equal thresholds have equal bits; NaN
    # and 0 are refused before).
    bits = tf.cast(tf.bitcast(tf.cast(halting_threshold, tf.float32), tf.uint32), tf.int64)
    keys = tf.bitwise.bitwise_or(
        tf.bitwise.left_shift(tf.cast(max_layers, tf.int64), tf.constant(32, tf.int64)), bits
    )
    unique_keys, pair_of_example = tf.unique(keys, out_idx=tf.int32)
    first = tf.math.unsorted_segment_min(
        tf.range(tf.size(keys, out_type=tf.int32)), pair_of_example, tf.size(unique_keys)
    )
    return (
        tf.gather(max_layers, first),
        tf.gather(tf.cast(halting_threshold, tf.float32), first),
        pair_of_example,
    )


class PerExampleBudget:
    """Runs a serving head once per distinct depth budget of a batch.

    Args:
        max_layers: the signature input (any shape `per_example_values`
            accepts), int32.
        halting_threshold: the signature input, float32.
        batch_size: int32 scalar tensor, the request's batch size.
        default_max_layers: int, the trained cap (the signatures' default,
            and the largest value accepted).
        default_threshold: float, the trained `1 - act_epsilon` (the budget
            of a run over an empty batch).

    Example:

    ```python
    budget = PerExampleBudget(max_layers, halting_threshold, tf.shape(text)[0], 6, 0.99)
    outputs = budget.head(head)(features)  # each row with its own budget
    ```
    """

    def __init__(self, max_layers, halting_threshold, batch_size, default_max_layers,
                 default_threshold):
        max_layers = per_example_values(
            max_layers,
            "max_layers",
            batch_size,
            lambda values: max_layers_in_range(values, default_max_layers),
        )
        halting_threshold = per_example_values(
            halting_threshold, "halting_threshold", batch_size, threshold_in_range
        )
        layers, thresholds, self.pair_of_example = distinct_budgets(max_layers, halting_threshold)
        self.num_pairs = tf.size(layers)
        # An empty batch has no pair: its one run takes the defaults.
        self.pair_max_layers = tf.concat([layers, [default_max_layers]], axis=0)
        self.pair_thresholds = tf.concat(
            [thresholds, tf.constant([default_threshold], tf.float32)], axis=0
        )

    def run(self, call):
        """`call()` (a dict of `[batch, ...]` tensors) with each row's budget.

        `call` is traced twice: once for the first pair, once in the loop
        over the others.
        """

        def run_pair(index):
            with depth_budget(
                max_layers=self.pair_max_layers[index],
                halting_threshold=self.pair_thresholds[index],
            ):
                return dict(call())

        outputs = run_pair(0)
        invariants = {name: value.shape for name, value in outputs.items()}
        for name, shape in invariants.items():
            if shape.rank is None or shape.rank < 1:
                raise ValueError(
                    f"Per-example depth budgets need outputs of shape [batch, ...]; "
                    f"{name!r} has shape {shape}."
                )

        def body(index, merged):
            pair_outputs = run_pair(index)
            rows = tf.equal(self.pair_of_example, index)
            selected = {}
            for name, value in merged.items():
                mask = tf.reshape(rows, [-1] + [1] * (value.shape.rank - 1))
                selected[name] = tf.where(mask, pair_outputs[name], value)
            return index + 1, selected

        _, outputs = tf.while_loop(
            lambda index, _: index < self.num_pairs,
            body,
            (tf.constant(1), outputs),
            shape_invariants=(tf.TensorShape([]), invariants),
        )
        return outputs

    def head(self, head):
        """A shallow copy of a `ServingHead` whose calls run per budget.

        The copy is of a subclass of the head's own class, whose
        `__call__(features)` runs the head's through `run`: the head's
        `serve_texts` (words, answer texts, ...) runs once, on the merged
        outputs.
        """
        budgeted = copy.copy(head)
        budgeted.__class__ = _budgeted_class(type(head))
        budgeted._per_example_budget = self
        return budgeted


_BUDGETED_CLASSES = {}


def _budgeted_class(head_class):
    if head_class not in _BUDGETED_CLASSES:

        def __call__(self, features):
            return self._per_example_budget.run(
                lambda: head_class.__call__(self, features)
            )

        _BUDGETED_CLASSES[head_class] = type(
            f"PerExampleBudget{head_class.__name__}", (head_class,), {"__call__": __call__}
        )
    return _BUDGETED_CLASSES[head_class]


__all__ = [
    "PerExampleBudget",
    "distinct_budgets",
    "max_layers_in_range",
    "per_example_values",
    "threshold_in_range",
]
