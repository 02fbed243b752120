"""Training through `AlbertAct`'s static skip path (outside XLA and under XLA).

With `training=True` the static path applies dropout to the gathered rows and
its backward pass recomputes each iteration (`keras_act/layers/recompute.py`);
with dropout 0 its gradients equal the dense path's within 1e-4.
"""

import re

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import TINY_ACT_CONFIG as CONFIG
from tests.helpers import run_module
from tests.helpers import tiny_act_layer as make_layer


def make_inputs(lengths=(10, 7, 3, 0), length=10, seed=0):
    rng = np.random.default_rng(seed)
    hidden = rng.normal(size=(len(lengths), length, CONFIG["hidden_dim"])).astype("float32")
    mask = (np.arange(length)[None, :] < np.array(lengths)[:, None]).astype("int32")
    return tf.constant(hidden), mask


def gradients(layer, hidden, mask, skip_halted, training):
    with tf.GradientTape() as tape:
        tape.watch(hidden)
        outputs = layer(hidden, padding_mask=mask, skip_halted=skip_halted, training=training)
        loss = tf.reduce_sum(outputs["sequence_output"] ** 2) + tf.reduce_sum(
            outputs["remainders"]
        )
    return tape.gradient(loss, [hidden] + layer.trainable_variables)


def test_training_gradients_of_the_static_path_equal_the_dense_path():
    layer = make_layer()  # dropout 0
    hidden, mask = make_inputs()
    dense = gradients(layer, hidden, mask, False, training=True)
    static = gradients(layer, hidden, mask, "static", training=True)
    assert len(static) == len(dense) == 1 + len(layer.trainable_variables)
    for variable, expected, got in zip(
        [hidden] + layer.trainable_variables, dense, static, strict=True
    ):
        assert got is not None
        name = getattr(variable, "path", "hidden_states")
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4, err_msg=name)


def test_static_path_applies_dropout_in_training_only():
    layer = make_layer(dropout=0.3)
    hidden, mask = make_inputs()
    dense = layer(hidden, padding_mask=mask, skip_halted=False)
    inference = layer(hidden, padding_mask=mask, skip_halted="static")
    np.testing.assert_array_equal(inference["updates"], dense["updates"])
    np.testing.assert_allclose(
        inference["sequence_output"], dense["sequence_output"], atol=1e-5, rtol=1e-5
    )
    first = layer(hidden, padding_mask=mask, skip_halted="static", training=True)
    second = layer(hidden, padding_mask=mask, skip_halted="static", training=True)
    real = mask == 1
    out = first["sequence_output"].numpy()
    assert np.isfinite(out).all()
    # Dropout changes the real tokens, with a fresh mask per call; padding
    # keeps its input state.
    assert not np.allclose(out[real], dense["sequence_output"].numpy()[real], atol=1e-3)
    assert not np.allclose(out[real], second["sequence_output"].numpy()[real], atol=1e-3)
    np.testing.assert_array_equal(out[~real], hidden.numpy()[~real])
    grads = gradients(layer, hidden, mask, "static", training=True)
    assert all(np.isfinite(g).all() for g in grads)


# === Under XLA: the training step compiled with jit_compile=True ===
#
# TensorFlow's gradient of the ladder's `tf.switch_case` (inside the
# per-iteration custom gradient, inside the halting loop) aborted the whole
# process under XLA with more than one rung ("Check failed: size ==
# kUnboundedSize" in XlaCaseOp), so the step runs in a child process
# (`python -m tests.test_skip_path_training OUT`, see the end of this file):
# a regression fails the test instead of killing pytest.

XLA_LADDER = (0.25, 1.0)  # two rungs: 10 and 40 rows of the 40 tokens
# Half precision moves outputs and gradients (relative to the largest) by up
# to these on the dense path itself, against float32 (as in
# tests/test_dynamic_skip_training.py); the static path must stay within them.
HALF_PRECISION_TOLERANCE = {
    "mixed_bfloat16": dict(outputs=5e-2, gradients=5e-2),
    "mixed_float16": dict(outputs=1e-2, gradients=5e-3),
}
# name, skip_halted, traced with unknown shapes
XLA_VARIANTS = (
    ("dense", False, False),
    ("static", "static", False),
    ("static_unknown_shapes", "static", True),
)


def xla_training_step(layer, skip_halted, unknown_shapes=False):
    """A jit-compiled step: outputs and gradients of a loss of every output.

    With `unknown_shapes`, traced with `None` dimensions (as Keras' `fit`
    traces): the sizes are known only when XLA compiles.
    """

    def step(hidden, mask):
        with tf.GradientTape() as tape:
            tape.watch(hidden)
            outputs = layer(hidden, padding_mask=mask, skip_halted=skip_halted, training=True)
            sequence_output = tf.cast(outputs["sequence_output"], "float32")  # mixed precision
            loss = tf.reduce_sum(sequence_output**2) + tf.reduce_sum(outputs["remainders"])
        grads = tape.gradient(loss, [hidden] + layer.trainable_variables)
        return outputs, grads

    signature = None
    if unknown_shapes:
        signature = [
            tf.TensorSpec([None, None, CONFIG["hidden_dim"]], tf.float32),
            tf.TensorSpec([None, None], tf.int32),
        ]
    return tf.function(step, jit_compile=True, input_signature=signature)


def xla_training_child(out_dir):
    """The child process: the dense and static XLA steps' results, and the HLO."""
    import json
    from pathlib import Path

    out_dir = Path(out_dir)
    layer = make_layer(capacity_ladder=XLA_LADDER)
    hidden, mask = make_inputs()
    arrays = {}
    for name, skip, unknown in XLA_VARIANTS:
        step = xla_training_step(layer, skip, unknown)
        outputs, grads = step(hidden, tf.constant(mask))
        for key in ("sequence_output", "updates", "remainders", "halting_probability"):
            arrays[f"{name}/{key}"] = outputs[key].numpy()
        for i, grad in enumerate(grads):
            arrays[f"{name}/grad{i}"] = grad.numpy()
        if name == "static":
            hlo = step.experimental_get_compiler_ir(hidden, tf.constant(mask))(stage="hlo")
            (out_dir / "static_step.hlo").write_text(hlo)
    # Mixed precision: the same weights, the dense and static XLA steps.
    for policy in HALF_PRECISION_TOLERANCE:
        half = make_layer(capacity_ladder=XLA_LADDER, dtype=policy)
        half.set_weights(layer.get_weights())
        for name, skip in (("dense", False), ("static", "static")):
            outputs, grads = xla_training_step(half, skip)(hidden, tf.constant(mask))
            arrays[f"{policy}/{name}/dtype"] = np.array(outputs["sequence_output"].dtype.name)
            for key in ("sequence_output", "updates"):
                arrays[f"{policy}/{name}/{key}"] = tf.cast(outputs[key], "float32").numpy()
            for i, grad in enumerate(grads):
                arrays[f"{policy}/{name}/grad{i}"] = tf.cast(grad, "float32").numpy()
    names = ["hidden_states"] + [v.path for v in layer.trainable_variables]
    (out_dir / "names.json").write_text(json.dumps(names))
    np.savez(out_dir / "results.npz", **arrays)


@pytest.fixture(scope="module")
def xla_training_results(tmp_path_factory):
    import json

    out_dir = tmp_path_factory.mktemp("xla_training")
    run_module("tests.test_skip_path_training", [str(out_dir)])
    results = dict(np.load(out_dir / "results.npz"))
    names = json.loads((out_dir / "names.json").read_text())
    return results, names, (out_dir / "static_step.hlo").read_text()


@pytest.mark.large  # the child compiles seven training steps (~2 min of CPU)
@pytest.mark.parametrize("variant", ["static", "static_unknown_shapes"])
def test_xla_training_step_of_the_static_path_equals_the_dense_path(
    xla_training_results, variant
):
    results, names, _ = xla_training_results
    _, mask = make_inputs()
    # The batch is padded and both rungs run: some iteration has more running
    # tokens than the small buffer holds, a later one at most that many.
    updates = results["dense/updates"]
    running = [int(((updates > i) & (mask == 1)).sum()) for i in range(int(updates.max()))]
    small = XLA_LADDER[0] * mask.size
    assert any(count > small for count in running) and any(0 < c <= small for c in running)
    np.testing.assert_array_equal(results[f"{variant}/updates"], updates)
    for key in ("sequence_output", "remainders", "halting_probability"):
        np.testing.assert_allclose(
            results[f"{variant}/{key}"], results[f"dense/{key}"], atol=1e-5, rtol=1e-5, err_msg=key
        )
    # Relative to the largest gradient: some are rounding noise around 0
    # (the key bias's: the softmax ignores a shift of every logit).
    scale = max(float(np.abs(results[f"dense/grad{i}"]).max()) for i in range(len(names)))
    for i, name in enumerate(names):
        expected, got = results[f"dense/grad{i}"], results[f"{variant}/grad{i}"]
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * scale, err_msg=name)


def largest_difference(got, expected, scale=1.0):
    return max(float(np.max(np.abs(g - e))) for g, e in zip(got, expected, strict=True)) / scale


@pytest.mark.large  # shares the child of the test above
@pytest.mark.parametrize("policy", sorted(HALF_PRECISION_TOLERANCE))
def test_xla_training_step_of_the_static_path_in_mixed_precision(xla_training_results, policy):
    results, names, _ = xla_training_results
    tolerance = HALF_PRECISION_TOLERANCE[policy]
    compute_dtype = policy.removeprefix("mixed_")
    grads = lambda prefix: [results[f"{prefix}/grad{i}"] for i in range(len(names))]  # noqa: E731
    exact = grads("dense")
    scale = max(float(np.abs(g).max()) for g in exact)
    np.testing.assert_array_equal(
        results[f"{policy}/static/updates"], results[f"{policy}/dense/updates"]
    )
    for path in ("dense", "static"):
        prefix = f"{policy}/{path}"
        assert str(results[f"{prefix}/dtype"]) == compute_dtype
        outputs_error = largest_difference(
            [results[f"{prefix}/sequence_output"]], [results["dense/sequence_output"]]
        )
        assert outputs_error < tolerance["outputs"], (path, outputs_error)
        gradients_error = largest_difference(grads(prefix), exact, scale)
        assert gradients_error < tolerance["gradients"], (path, gradients_error)
    between = largest_difference(grads(f"{policy}/static"), grads(f"{policy}/dense"), scale)
    assert between < tolerance["gradients"], between


@pytest.mark.large  # shares the child of the test above
def test_xla_training_step_of_the_static_path_has_only_static_shapes(xla_training_results):
    _, _, hlo = xla_training_results
    shapes = re.findall(r"\b(?:f32|s32|s64|pred|f16|bf16)\[[^\]]*\]", hlo)
    assert shapes
    # A bounded dimension prints as `<=n`, an unbounded one as `?`; XLA marks
    # a dynamic size with set-dimension-size.
    assert not [shape for shape in shapes if "<=" in shape or "?" in shape]
    assert "set-dimension-size" not in hlo and "is_dynamic_dimension" not in hlo
    # The forward and the backward pass each choose a rung: two conditionals
    # of two branches, one per capacity (10 and 40 of the 40 rows).
    assert hlo.count("conditional(") >= 2
    assert "f32[10,32]" in hlo and "f32[40,32]" in hlo


if __name__ == "__main__":
    import sys

    xla_training_child(sys.argv[1])
