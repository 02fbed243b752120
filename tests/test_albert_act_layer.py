"""`AlbertAct`: the halting loop in eager, graph and XLA, gradients, dtypes."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras_hub.src.tests.test_case import TestCase

import keras_act
from keras_act.layers.halting import halting_step
from tests.helpers import TINY_ACT_CONFIG as CONFIG
from tests.helpers import tiny_act_layer as make_layer


def make_inputs(batch=3, length=10, lengths=(10, 7, 3), seed=0):
    rng = np.random.default_rng(seed)
    hidden = rng.normal(size=(batch, length, CONFIG["hidden_dim"])).astype("float32")
    mask = (np.arange(length)[None, :] < np.array(lengths)[:, None]).astype("int32")
    return hidden, mask


def test_outputs_shapes_and_dtypes():
    layer = make_layer()
    hidden, mask = make_inputs()
    outputs = layer(hidden, padding_mask=mask)
    assert set(outputs) == {"sequence_output", "updates", "remainders", "halting_probability"}
    assert outputs["sequence_output"].shape == hidden.shape
    for key in ("updates", "remainders", "halting_probability"):
        assert outputs[key].shape == mask.shape
        assert outputs[key].dtype == tf.float32
        # Zero on padding.
        np.testing.assert_array_equal(outputs[key].numpy()[mask == 0], 0.0)
    updates = outputs["updates"].numpy()[mask == 1]
    assert updates.min() >= 1 and updates.max() <= CONFIG["max_layers"]
    # Padding states are never updated.
    np.testing.assert_array_equal(
        outputs["sequence_output"].numpy()[mask == 0], hidden[mask == 0]
    )


def test_depth_varies_per_token():
    layer = make_layer()
    hidden, mask = make_inputs()
    updates = layer(hidden, padding_mask=mask)["updates"].numpy()[mask == 1]
    assert len(np.unique(updates)) > 1


def test_without_padding_mask_every_token_is_real():
    layer = make_layer()
    hidden, _ = make_inputs()
    with_mask = layer(hidden, padding_mask=np.ones(hidden.shape[:2], "int32"))
    without = layer(hidden)
    np.testing.assert_array_equal(without["updates"], with_mask["updates"])
    np.testing.assert_array_equal(without["sequence_output"], with_mask["sequence_output"])


def test_halted_tokens_are_frozen_and_loop_stops_at_largest_real_depth():
    layer = make_layer()
    hidden, mask = make_inputs()
    outputs = layer(hidden, padding_mask=mask, return_iterations=True)
    steps = int(outputs["num_iterations"])
    updates = outputs["updates"].numpy()
    assert steps == int(updates.max())
    states = outputs["iteration_states"].numpy()
    for b, t in zip(*np.nonzero(mask), strict=True):
        depth = int(updates[b, t])
        # After its last update a token's state never changes, bit for bit.
        for s in range(depth, steps):
            np.testing.assert_array_equal(states[s, b, t], states[depth - 1, b, t])
        np.testing.assert_array_equal(
            outputs["iteration_updates"].numpy()[depth - 1, b, t], depth
        )


def test_halting_step_against_hand_computed_values():
    p = tf.constant([[0.5, 0.995, 0.45, 0.7]])
    hp = tf.constant([[0.0, 0.0, 0.6, 1.0]])
    zeros = tf.zeros_like(p)
    weights, updated, hp, rem, upd = halting_step(p, hp, zeros, zeros, tf.constant(0.99))
    # Token 0 keeps running, token 1 halts at once (remainder 1), token 2
    # halts with remainder 0.4, token 3 (already halted) is untouched.
    np.testing.assert_allclose(weights, [[0.5, 1.0, 0.4, 0.0]], rtol=1e-6)
    np.testing.assert_array_equal(updated, [[True, True, True, False]])
    np.testing.assert_allclose(hp, [[0.5, 1.0, 1.0, 1.0]], rtol=1e-6)
    np.testing.assert_allclose(rem, [[0.0, 1.0, 0.4, 0.0]], rtol=1e-6)
    np.testing.assert_array_equal(upd, [[1.0, 1.0, 1.0, 0.0]])


def test_tokens_stopped_by_the_cap_have_no_remainder():
    # A strongly negative halting bias: no token halts before the cap.
    layer = make_layer(halting_bias=-8.0)
    hidden, mask = make_inputs()
    outputs = layer(hidden, padding_mask=mask)
    np.testing.assert_array_equal(outputs["updates"].numpy()[mask == 1], CONFIG["max_layers"])
    np.testing.assert_array_equal(outputs["remainders"].numpy(), 0.0)
    assert outputs["halting_probability"].numpy().max() < 0.99


def test_all_padding_row_gives_zero_updates_and_no_nan():
    layer = make_layer()
    hidden, mask = make_inputs(lengths=(10, 0, 3))
    outputs = layer(hidden, padding_mask=mask)
    np.testing.assert_array_equal(outputs["updates"].numpy()[1], 0.0)
    for value in outputs.values():
        assert np.all(np.isfinite(value.numpy()))
    # Only padding: the loop does not run at all.
    only_padding = layer(hidden, padding_mask=np.zeros_like(mask), return_iterations=True)
    assert int(only_padding["num_iterations"]) == 0
    np.testing.assert_array_equal(only_padding["sequence_output"], hidden)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_tf_function_and_xla_match_eager(jit_compile):
    layer = make_layer()
    hidden, mask = make_inputs()
    eager = layer(hidden, padding_mask=mask)
    compiled = tf.function(
        lambda h, m: layer(h, padding_mask=m),
        jit_compile=jit_compile,
        input_signature=[
            tf.TensorSpec(hidden.shape, tf.float32),
            tf.TensorSpec(mask.shape, tf.int32),
        ],
    )
    result = compiled(hidden, mask)
    np.testing.assert_array_equal(result["updates"], eager["updates"])
    np.testing.assert_allclose(
        result["sequence_output"], eager["sequence_output"], atol=1e-5, rtol=1e-5
    )


def test_xla_loop_has_static_shapes_and_scalar_condition():
    layer = make_layer()
    hidden, mask = make_inputs()
    fn = tf.function(lambda h, m: layer(h, padding_mask=m), jit_compile=True)
    hlo = fn.experimental_get_compiler_ir(hidden, mask)(stage="hlo")
    assert "while" in hlo
    # Every shape in the compiled program is static (no dynamic dims).
    assert "<=" not in hlo


def test_gradients_through_the_loop_match_finite_differences():
    keras.utils.set_random_seed(1)
    layer = keras_act.AlbertAct(
        **CONFIG,
        dtype="float64",
        kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.2),
        halting_bias_initializer=keras.initializers.Constant(-1.0),
    )
    hidden, mask = make_inputs()
    hidden = hidden.astype("float64")
    layer.build(hidden.shape)
    probe = np.random.default_rng(2).normal(size=hidden.shape)

    def loss_fn():
        outputs = layer(hidden, padding_mask=mask)
        ponder_cost = tf.reduce_sum(outputs["updates"] + outputs["remainders"])
        return tf.reduce_sum(outputs["sequence_output"] * probe) + tf.cast(
            ponder_cost, tf.float64
        )

    variables = [layer.halting_dense.bias, layer.halting_dense.kernel] + [
        v for v in layer.transformer_block.trainable_variables if "feedforward_output" in v.path
    ]
    with tf.GradientTape() as tape:
        loss = loss_fn()
    gradients = tape.gradient(loss, [v.value for v in variables])
    assert all(g is not None for g in gradients)
    # The ponder cost reaches the halting unit through the remainders.
    assert float(tf.reduce_max(tf.abs(gradients[0]))) > 0

    rng = np.random.default_rng(3)
    for variable, gradient in zip(variables, gradients, strict=True):
        direction = rng.normal(size=variable.shape)
        original = variable.numpy()
        eps = 1e-6
        variable.assign(original + eps * direction)
        plus = float(loss_fn())
        variable.assign(original - eps * direction)
        minus = float(loss_fn())
        variable.assign(original)
        numeric = (plus - minus) / (2 * eps)
        analytic = float(tf.reduce_sum(gradient * direction))
        np.testing.assert_allclose(analytic, numeric, rtol=1e-4, atol=1e-6, err_msg=variable.path)


def test_xla_gradients_match_eager_gradients():
    layer = make_layer()
    hidden, mask = make_inputs()

    def grads(h, m):
        with tf.GradientTape() as tape:
            outputs = layer(h, padding_mask=m, training=False)
            loss = tf.reduce_sum(outputs["sequence_output"] ** 2) + tf.reduce_sum(
                outputs["remainders"]
            )
        return tape.gradient(loss, layer.trainable_variables)

    eager = grads(hidden, mask)
    compiled = tf.function(grads, jit_compile=True)(hidden, mask)
    for a, b in zip(eager, compiled, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_keeps_halting_in_float32(policy):
    reference = make_layer()
    hidden, mask = make_inputs()
    expected = reference(hidden, padding_mask=mask)
    try:
        keras.config.set_dtype_policy(policy)
        layer = make_layer()
    finally:
        keras.config.set_dtype_policy("float32")
    assert layer.compute_dtype == policy.split("_")[1]
    assert layer.halting_dense.compute_dtype == "float32"
    for variable in layer.weights:
        assert variable.dtype == "float32"
    layer.set_weights(reference.get_weights())
    outputs = layer(hidden, padding_mask=mask)
    assert outputs["sequence_output"].dtype == layer.compute_dtype
    for key in ("updates", "remainders", "halting_probability"):
        assert outputs[key].dtype == tf.float32
        assert np.all(np.isfinite(outputs[key].numpy()))
    # Low precision moves a few halting decisions at most.
    agreement = np.mean(outputs["updates"].numpy() == expected["updates"].numpy())
    assert agreement > 0.8
    tf.function(lambda h, m: layer(h, padding_mask=m), jit_compile=True)(hidden, mask)


def test_dropout_is_active_in_training_only():
    layer = make_layer(dropout=0.3)
    hidden, mask = make_inputs()
    a = layer(hidden, padding_mask=mask, training=False)["sequence_output"]
    b = layer(hidden, padding_mask=mask, training=False)["sequence_output"]
    np.testing.assert_array_equal(a, b)
    c = layer(hidden, padding_mask=mask, training=True)["sequence_output"]
    assert not np.allclose(a, c)


def test_get_config_round_trip():
    layer = make_layer(act_epsilon=0.05, activation="gelu", dropout=0.1)
    config = layer.get_config()
    clone = keras_act.AlbertAct.from_config(config)
    assert clone.get_config() == config
    hidden, mask = make_inputs()
    clone.build(hidden.shape)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(
        clone(hidden, padding_mask=mask)["updates"], layer(hidden, padding_mask=mask)["updates"]
    )
    serialized = keras.saving.serialize_keras_object(layer)
    assert serialized["registered_name"] == "keras_act>AlbertAct"


def test_shared_block_is_built_once_with_one_set_of_weights():
    layer = make_layer()
    names = [w.path for w in layer.weights]
    assert len(names) == len(set(names))
    # One attention block and one halting unit, whatever `max_layers` is.
    assert len(layer.weights) == len(make_layer(max_layers=24).weights)
    assert sum("query/kernel" in name for name in names) == 1


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(hidden_dim=30), "divisible by `num_heads`"),
        (dict(max_layers=0), "max_layers"),
        (dict(act_epsilon=1.5), "act_epsilon"),
        (dict(activation="no_such_fn"), "Unknown activation"),
    ],
)
def test_bad_arguments_name_the_problem(overrides, message):
    with pytest.raises(ValueError, match=message):
        keras_act.AlbertAct(**dict(CONFIG, **overrides))


def test_wrong_hidden_size_is_a_clear_error():
    layer = keras_act.AlbertAct(**CONFIG)
    with pytest.raises(ValueError, match="hidden_dim"):
        layer(np.zeros((1, 4, 16), "float32"))


# === keras-hub's own test harness ===


class AlbertActHarnessTest(TestCase):
    def test_layer_harness(self):
        rng = np.random.default_rng(0)
        self.run_layer_test(
            cls=keras_act.AlbertAct,
            init_kwargs=dict(hidden_dim=8, num_heads=2, intermediate_dim=16, max_layers=3),
            input_data={
                "hidden_states": rng.normal(size=(2, 5, 8)).astype("float32"),
                "padding_mask": np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], "int32"),
            },
            expected_output_shape={
                "sequence_output": (2, 5, 8),
                "updates": (2, 5),
                "remainders": (2, 5),
                "halting_probability": (2, 5),
            },
            # The block's attention (8), feed-forward (4), two layer norms
            # (4) and the halting unit (2).
            expected_num_trainable_weights=18,
            # Not applicable: the halting outputs stay float32 under a
            # float16 policy (test_mixed_precision_keeps_halting_in_float32).
            run_precision_checks=False,
            # Its XLA-compiled fit takes minutes on CPU; the backbone's
            # test_fit_step_with_jit_compile trains the same loop under XLA.
            run_training_check=False,
        )
