"""Depth budgets: `AlbertAct`'s `max_layers` / `halting_threshold` call
arguments and the `keras_act.layers.depth_budget` context manager.

- No budget gives exactly the layer's results (bit for bit).
- `max_layers=k` gives every token at most `k` updates and exactly the
  results of a layer whose cap is `k` (same weights); a lower threshold gives
  fewer updates. On the skip and the dense path, eagerly, in `tf.function`
  with tensor values, under XLA and in a Functional backbone traced inside
  `with depth_budget(...)`.
- Bad values: Python values raise a `ValueError` naming the argument; tensor
  values an `InvalidArgumentError` when run (clipped under XLA).
"""

import itertools
import threading

import numpy as np
import pytest
import tensorflow as tf

import keras_act
from keras_act.layers import depth_budget
from keras_act.layers.depth_control import current_depth_budget
from tests.helpers import TINY_ACT_CONFIG, tiny_act_layer, varied_depth_backbone

CAP = TINY_ACT_CONFIG["max_layers"]
KEYS = ("sequence_output", "updates", "remainders", "halting_probability")


def make_inputs(lengths=(10, 7, 3, 0), length=10, seed=0):
    rng = np.random.default_rng(seed)
    hidden = rng.normal(size=(len(lengths), length, TINY_ACT_CONFIG["hidden_dim"]))
    mask = (np.arange(length)[None, :] < np.array(lengths)[:, None]).astype("int32")
    return hidden.astype("float32"), mask


def assert_identical(actual, expected):
    for key in KEYS:
        np.testing.assert_array_equal(
            np.asarray(actual[key]), np.asarray(expected[key]), err_msg=key
        )


def layer_with_cap(layer, cap):
    """A layer like `layer` (same weights) whose `max_layers` is `cap`."""
    config = dict(layer.get_config(), max_layers=cap)
    other = keras_act.AlbertAct.from_config(config)
    other.build((None, None, layer.hidden_dim))
    other.set_weights(layer.get_weights())
    return other


@pytest.fixture(scope="module")
def layer():
    return tiny_act_layer()


@pytest.mark.parametrize("skip_halted", [True, False, "static"])
def test_no_budget_is_the_layer_default(layer, skip_halted):
    hidden, mask = make_inputs()
    plain = layer(hidden, padding_mask=mask, skip_halted=skip_halted)
    # The explicit defaults, as Python values and as tensors.
    for budget in (
        dict(max_layers=CAP, halting_threshold=1.0 - layer.act_epsilon),
        dict(max_layers=tf.constant(CAP), halting_threshold=tf.constant(1.0 - layer.act_epsilon)),
    ):
        assert_identical(layer(hidden, padding_mask=mask, skip_halted=skip_halted, **budget), plain)
    with depth_budget():
        assert_identical(layer(hidden, padding_mask=mask, skip_halted=skip_halted), plain)


@pytest.mark.parametrize("skip_halted", [True, False, "static"])
@pytest.mark.parametrize("max_layers", [1, 2, 4])
def test_max_layers_equals_a_layer_with_that_cap(layer, skip_halted, max_layers):
    hidden, mask = make_inputs()
    full = layer(hidden, padding_mask=mask, skip_halted=skip_halted)
    assert np.max(full["updates"]) > max_layers  # the budget binds
    expected = layer_with_cap(layer, max_layers)(hidden, padding_mask=mask, skip_halted=skip_halted)
    for value in (max_layers, tf.constant(max_layers), np.int64(max_layers), np.array(max_layers)):
        budgeted = layer(hidden, padding_mask=mask, skip_halted=skip_halted, max_layers=value)
        assert np.max(budgeted["updates"]) <= max_layers
        assert_identical(budgeted, expected)


@pytest.mark.parametrize("skip_halted", [True, False, "static"])
def test_lower_threshold_gives_fewer_updates(layer, skip_halted):
    hidden, mask = make_inputs()
    updates = [
        np.asarray(
            layer(hidden, padding_mask=mask, skip_halted=skip_halted, halting_threshold=t)[
                "updates"
            ]
        )
        for t in (0.99, 0.7, 0.4)
    ]
    for higher, lower in itertools.pairwise(updates):
        assert np.all(lower <= higher)
        assert lower.sum() < higher.sum()
    # Padding still gets none.
    assert np.all(updates[-1][mask == 0] == 0)


@pytest.mark.parametrize("skip_halted", [None, True])
@pytest.mark.parametrize("jit_compile", [False, True])
def test_tensor_budget_in_tf_function(layer, jit_compile, skip_halted):
    """Default and skip paths (data-dependent in tf.function, static ladder
    under XLA) with tensor budgets, against the eager dense loop."""
    hidden, mask = make_inputs()

    @tf.function(
        jit_compile=jit_compile,
        input_signature=[tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.float32)],
    )
    def run(max_layers, threshold):
        return layer(
            hidden,
            padding_mask=mask,
            skip_halted=skip_halted,
            max_layers=max_layers,
            halting_threshold=threshold,
        )

    for max_layers, threshold in ((CAP, 1.0 - layer.act_epsilon), (2, 0.99), (CAP, 0.5), (3, 0.6)):
        expected = layer(
            hidden,
            padding_mask=mask,
            skip_halted=False,
            max_layers=max_layers,
            halting_threshold=threshold,
        )
        got = run(tf.constant(max_layers), tf.constant(threshold))
        np.testing.assert_array_equal(got["updates"], expected["updates"])
        np.testing.assert_allclose(got["sequence_output"], expected["sequence_output"], atol=1e-5)
    assert run.experimental_get_tracing_count() == 1  # one trace served every budget


def backbone_inputs(lengths=(12, 9, 4), length=12, seed=0):
    rng = np.random.default_rng(seed)
    mask = (np.arange(length)[None, :] < np.array(lengths)[:, None]).astype("int32")
    return {
        "token_ids": (rng.integers(4, 100, size=mask.shape) * mask).astype("int32"),
        "segment_ids": np.zeros(mask.shape, "int32"),
        "padding_mask": mask,
    }


@pytest.mark.parametrize("skip_halted", [True, False, "static"])
def test_functional_backbone_traced_inside_depth_budget(skip_halted):
    backbone = varied_depth_backbone(vocabulary_size=100)
    backbone.encoder.skip_halted = skip_halted
    inputs = backbone_inputs()
    signature = {name: tf.TensorSpec([None, None], tf.int32, name=name) for name in inputs}

    @tf.function(
        input_signature=[signature, tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.float32)]
    )
    def serve(features, max_layers, threshold):
        with depth_budget(max_layers=max_layers, halting_threshold=threshold):
            return backbone(features)

    full = backbone(inputs)
    cap = backbone.max_layers
    assert np.max(full["updates"]) > 2
    got = serve(inputs, tf.constant(cap), tf.constant(1.0 - backbone.act_epsilon))
    np.testing.assert_array_equal(got["updates"], full["updates"])
    np.testing.assert_allclose(got["sequence_output"], full["sequence_output"], atol=1e-5)

    capped = serve(inputs, tf.constant(2), tf.constant(1.0 - backbone.act_epsilon))
    assert np.max(capped["updates"]) == 2
    with depth_budget(max_layers=2):  # eager, Python value
        expected = backbone(inputs)
    np.testing.assert_array_equal(capped["updates"], expected["updates"])
    np.testing.assert_allclose(capped["pooled_output"], expected["pooled_output"], atol=1e-5)

    early = serve(inputs, tf.constant(cap), tf.constant(0.5))
    assert np.sum(early["updates"]) < np.sum(full["updates"])
    # Outside the context the backbone is back to its own budget.
    np.testing.assert_array_equal(backbone(inputs)["updates"], full["updates"])


def test_context_nests_inherits_and_is_restored(layer):
    hidden, mask = make_inputs()
    assert current_depth_budget() == (None, None)
    with depth_budget(halting_threshold=0.5):
        with depth_budget(max_layers=2):
            assert current_depth_budget() == (2, 0.5)
            inner = layer(hidden, padding_mask=mask)
            # Call arguments win over the context.
            own = layer(hidden, padding_mask=mask, max_layers=CAP, halting_threshold=0.99)
        assert current_depth_budget() == (None, 0.5)
    assert current_depth_budget() == (None, None)
    assert_identical(inner, layer(hidden, padding_mask=mask, max_layers=2, halting_threshold=0.5))
    assert_identical(own, layer(hidden, padding_mask=mask))


def test_context_is_per_thread():
    seen = {}
    inside = threading.Event()
    release = threading.Event()

    def holder():
        with depth_budget(max_layers=3):
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    inside.wait(10)
    seen["other thread"] = current_depth_budget()
    release.set()
    thread.join()
    assert seen["other thread"] == (None, None)


@pytest.mark.parametrize(
    "budget,message",
    [
        (dict(max_layers=0), "`max_layers` must be an int >= 1"),
        (dict(max_layers=CAP + 1), rf"at most the layer's cap \({CAP}\)"),
        (dict(max_layers=True), "`max_layers` must be an int"),
        (dict(max_layers=2.0), "`max_layers` must be an int"),
        (dict(halting_threshold=0.0), r"`halting_threshold` must be a float in \(0, 1\]"),
        (dict(halting_threshold=1.5), r"`halting_threshold` must be a float in \(0, 1\]"),
        (dict(halting_threshold=float("nan")), "`halting_threshold` must be a float"),
        (dict(max_layers=tf.constant(2.0)), "`max_layers` must be an integer tensor"),
        (dict(max_layers=tf.constant([2, 3])), "`max_layers` must be a scalar tensor"),
        (dict(halting_threshold=tf.constant(1)), "`halting_threshold` must be a float tensor"),
    ],
)
def test_bad_python_values_name_the_argument(layer, budget, message):
    hidden, mask = make_inputs()
    with pytest.raises(ValueError, match=message):
        layer(hidden, padding_mask=mask, **budget)


def test_bad_context_values_fail_at_the_with():
    with pytest.raises(ValueError, match="`max_layers` must be an int >= 1"):
        with depth_budget(max_layers=-1):
            pass
    with pytest.raises(ValueError, match="`halting_threshold`"):
        with depth_budget(halting_threshold=2.0):
            pass


@pytest.mark.parametrize(
    "budget,message",
    [
        (dict(max_layers=0), r"`max_layers` must be in \[1, 6\]"),
        (dict(max_layers=CAP + 1), r"`max_layers` must be in \[1, 6\]"),
        (dict(halting_threshold=0.0), r"`halting_threshold` must be in \(0, 1\]"),
        (dict(halting_threshold=float("nan")), r"`halting_threshold` must be in \(0, 1\]"),
    ],
)
def test_bad_tensor_values_raise_when_run(layer, budget, message):
    hidden, mask = make_inputs()
    values = {
        "max_layers": budget.get("max_layers", CAP),
        "halting_threshold": budget.get("halting_threshold", 0.99),
    }

    @tf.function(input_signature=[tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.float32)])
    def run(max_layers, threshold):
        return layer(hidden, padding_mask=mask, max_layers=max_layers, halting_threshold=threshold)

    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        run(tf.constant(values["max_layers"]), tf.constant(values["halting_threshold"]))
    # The function still serves good values afterwards.
    assert np.max(run(tf.constant(2), tf.constant(0.99))["updates"]) == 2


def test_xla_clips_tensor_values(layer):
    hidden, mask = make_inputs()

    @tf.function(
        jit_compile=True,
        input_signature=[tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.float32)],
    )
    def run(max_layers, threshold):
        return layer(hidden, padding_mask=mask, max_layers=max_layers, halting_threshold=threshold)

    full = layer(hidden, padding_mask=mask, skip_halted=False)
    np.testing.assert_array_equal(
        run(tf.constant(100), tf.constant(0.99))["updates"], full["updates"]
    )
    one = layer(hidden, padding_mask=mask, skip_halted=False, max_layers=1)
    np.testing.assert_array_equal(run(tf.constant(0), tf.constant(0.99))["updates"], one["updates"])
    # A threshold above 1 is 1 (tokens halt only when p sums past 1).
    at_one = layer(hidden, padding_mask=mask, skip_halted=False, halting_threshold=1.0)
    np.testing.assert_array_equal(
        run(tf.constant(CAP), tf.constant(7.0))["updates"], at_one["updates"]
    )
