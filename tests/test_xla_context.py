"""The XLA-context probe: the one use of TensorFlow internals in keras_act.

`keras_act.layers.xla_context` asks TensorFlow's internal
`control_flow_util.GraphOrParentsInXlaContext` whether the code being traced
will be compiled by XLA (no public API answers this). These tests pin the
TensorFlow versions it was checked on, so that an upgrade that moves or
removes the symbol fails here, by name, rather than silently switching
`AlbertAct` to its dense path under XLA.
"""

import tensorflow as tf

from keras_act.layers import xla_context

# The TensorFlow versions the probe was checked on (major.minor).
SUPPORTED_TENSORFLOW = ("2.20", "2.21")


def test_tensorflow_version_is_one_the_probe_was_checked_on():
    version = ".".join(tf.__version__.split(".")[:2])
    assert version in SUPPORTED_TENSORFLOW, (
        f"TensorFlow {tf.__version__} is not one of {SUPPORTED_TENSORFLOW}, the versions "
        "keras_act/layers/xla_context.py was checked on: run this file, and if it passes, "
        "add the version to SUPPORTED_TENSORFLOW."
    )


def test_the_internal_symbol_exists():
    assert xla_context.GraphOrParentsInXlaContext is not None, (
        "tensorflow.python.ops.control_flow_util.GraphOrParentsInXlaContext is gone from "
        f"TensorFlow {tf.__version__}: keras_act/layers/xla_context.py needs another way to "
        "tell whether a trace is compiled by XLA."
    )


def test_probe_is_true_only_under_jit_compile():
    probe = lambda: tf.constant(xla_context.inside_xla_context())  # noqa: E731
    assert xla_context.inside_xla_context() is False  # eagerly
    assert not bool(tf.function(probe)())
    assert bool(tf.function(probe, jit_compile=True)())


def test_probe_sees_xla_from_a_nested_function():
    # A fresh inner function each time: tf.function reuses a trace, made
    # inside or outside XLA, for the same input signature.
    def nested(jit_compile):
        inner = tf.function(lambda: tf.constant(xla_context.inside_xla_context()))
        return bool(tf.function(lambda: inner(), jit_compile=jit_compile)())

    assert nested(jit_compile=True)
    assert not nested(jit_compile=False)
