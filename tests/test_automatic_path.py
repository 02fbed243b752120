"""The path `AlbertAct(skip_halted=None)` takes in each context, and that it runs.

Eager mode and `tf.function` without XLA take the data-dependent skip path,
in inference and in training; XLA takes the static skip path
(`STATIC_PATH_DIFFERENTIATES_UNDER_XLA`; the dense loop if it is False); a
trace whose compiler cannot be told takes the XLA choice, which compiles
everywhere, so a wrong guess never fails. Every context gives the dense
path's results.
"""

import numpy as np
import pytest
import tensorflow as tf

from keras_act.layers import albert_act as albert_act_module
from keras_act.layers import xla_context
from tests.helpers import TINY_ACT_CONFIG as CONFIG
from tests.helpers import tiny_act_layer as make_layer

XLA_PATH = "static" if albert_act_module.STATIC_PATH_DIFFERENTIATES_UNDER_XLA else "dense"


@pytest.fixture
def path_spy(monkeypatch):
    """Records the path each `AlbertAct` call (or trace) takes."""
    taken = []
    original = albert_act_module.AlbertAct._resolve_skip_halted

    def spy(self, *args):
        skip = original(self, *args)
        taken.append(skip or "dense")
        return skip

    monkeypatch.setattr(albert_act_module.AlbertAct, "_resolve_skip_halted", spy)
    return taken


def make_inputs(lengths=(10, 7, 3, 0), length=10, seed=0):
    rng = np.random.default_rng(seed)
    hidden = rng.normal(size=(len(lengths), length, CONFIG["hidden_dim"])).astype("float32")
    mask = (np.arange(length)[None, :] < np.array(lengths)[:, None]).astype("int32")
    return tf.constant(hidden), tf.constant(mask)


def step(layer, training, skip_halted=None):
    """One call; in training, also the gradient of a loss on it."""

    def run(hidden, mask):
        with tf.GradientTape() as tape:
            tape.watch(hidden)
            outputs = layer(hidden, padding_mask=mask, training=training, skip_halted=skip_halted)
            loss = tf.reduce_sum(outputs["sequence_output"] ** 2) + tf.reduce_sum(
                outputs["remainders"]
            )
        # (An inference call differentiated under XLA:
        # tests/test_albert_act_layer.py::test_xla_gradients_match_eager_gradients.)
        gradient = tape.gradient(loss, hidden) if training else tf.zeros_like(hidden)
        return outputs["updates"], outputs["sequence_output"], gradient

    return run


def assert_as_dense(result, layer, hidden, mask, training):
    expected = step(layer, training, skip_halted=False)(hidden, mask)
    updates, sequence_output, gradient = result
    np.testing.assert_array_equal(updates, expected[0])
    np.testing.assert_allclose(sequence_output, expected[1], atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(gradient, expected[2], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    "context,training,expected",
    [
        ("eager", False, "dynamic"),
        ("eager", True, "dynamic"),
        ("tf.function", False, "dynamic"),
        ("tf.function", True, "dynamic"),
        ("jit_compile", False, XLA_PATH),
        pytest.param(
            "jit_compile", True, XLA_PATH, marks=pytest.mark.large
        ),  # ~60-90 s under load: XLA compiles the ladder's forward and backward
    ],
)
def test_the_automatic_path_of_each_context_runs_and_equals_dense(
    path_spy, context, training, expected
):
    layer = make_layer()
    hidden, mask = make_inputs()
    run = step(layer, training)
    if context != "eager":
        run = tf.function(run, jit_compile=context == "jit_compile")
    result = run(hidden, mask)
    assert path_spy == [expected]
    assert_as_dense(result, layer, hidden, mask, training)


def test_a_context_that_cannot_be_told_takes_the_xla_choice_and_compiles(path_spy, monkeypatch):
    """Without TensorFlow's XLA-context probe, a traced call cannot tell
    whether XLA compiles it: it takes the path the layer takes under XLA,
    and that trace, reused inside a `jit_compile=True` function (a
    `tf.function` reuses its trace for the same inputs), compiles and gives
    the dense path's results. The data-dependent path would fail there."""
    monkeypatch.setattr(xla_context, "GraphOrParentsInXlaContext", None)
    layer = make_layer()
    hidden, mask = make_inputs()
    # Eager code is never compiled: still the data-dependent path.
    eager = layer(hidden, padding_mask=mask)
    assert path_spy == ["dynamic"]
    inner = tf.function(lambda h, m: layer(h, padding_mask=m)["updates"])
    np.testing.assert_array_equal(inner(hidden, mask), eager["updates"])
    outer = tf.function(lambda h, m: inner(h, m), jit_compile=True)
    np.testing.assert_array_equal(outer(hidden, mask), eager["updates"])
    assert path_spy == ["dynamic", XLA_PATH]  # one trace, reused under XLA
