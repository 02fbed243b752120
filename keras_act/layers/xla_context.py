"""Whether the code being traced will be compiled by XLA."""

import tensorflow as tf

try:  # TensorFlow has no public API for this question.
    from tensorflow.python.ops.control_flow_util import GraphOrParentsInXlaContext
except ImportError:  # pragma: no cover - depends on the TensorFlow build
    GraphOrParentsInXlaContext = None


def inside_xla_context():
    """Returns whether the current trace is compiled by XLA.

    True while tracing a `tf.function(jit_compile=True)` (directly or inside
    one, e.g. Keras' `compile(jit_compile=True)` steps) and inside TPU
    replication, which trace their bodies in an XLA control-flow context.
    False in eager mode, in plain `tf.function`s and when the TensorFlow
    build has no way to tell (then a caller that compiles with XLA must ask
    for the dense path itself).

    Returns:
        bool.

    Example:

    >>> inside_xla_context()
    False
    >>> tf.function(lambda: tf.constant(inside_xla_context()), jit_compile=True)()
    <tf.Tensor: shape=(), dtype=bool, numpy=True>
    """
    if tf.executing_eagerly() or GraphOrParentsInXlaContext is None:
        return False
    return bool(GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph()))


def compiled_by_xla():
    """Whether the current trace is compiled by XLA: True, False or None.

    Like `inside_xla_context`, but says `None` ("cannot tell") where that
    function guesses `False`: a graph being traced while this TensorFlow
    build has no probe. Eager code is never compiled (`False`).

    Returns:
        True, False or None.

    Example:

    >>> compiled_by_xla()
    False
    """
    if tf.executing_eagerly():
        return False
    if GraphOrParentsInXlaContext is None:
        return None
    return bool(GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph()))
