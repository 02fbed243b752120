"""`fixed_depth`: `AlbertAct` and `AlbertActBackbone` with halting off.

Every real token gets exactly `n` updates, each replacing its state by the
block output; padding keeps its input state; `remainders` and
`halting_probability` are 0 and the ponder cost the constant `n`. The
argument is saved in the config and can be set on a trained model.
"""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_act
from keras_act.layers import depth_budget
from keras_act.layers.ponder import ponder_cost
from tests.helpers import TINY_ACT_CONFIG, tiny_act_layer, varied_depth_backbone

CAP = TINY_ACT_CONFIG["max_layers"]


def make_inputs(lengths=(10, 7, 3, 0), length=10, seed=0):
    rng = np.random.default_rng(seed)
    hidden = rng.normal(size=(len(lengths), length, TINY_ACT_CONFIG["hidden_dim"]))
    mask = (np.arange(length)[None, :] < np.array(lengths)[:, None]).astype("int32")
    return hidden.astype("float32"), mask


def block_applied(layer, hidden, mask, n):
    """The shared block applied `n` times by hand (plain ALBERT)."""
    state = tf.constant(hidden)
    for _ in range(n):
        state = layer.transformer_block(state, padding_mask=tf.cast(mask, bool))
    return state.numpy()


@pytest.fixture(scope="module")
def layer():
    return tiny_act_layer()


@pytest.mark.parametrize("n", [1, 3, CAP + 2])
def test_every_real_token_gets_exactly_n_block_outputs(layer, n):
    hidden, mask = make_inputs()
    layer.fixed_depth = n
    try:
        outputs = layer(hidden, padding_mask=mask)
        with_skip = layer(hidden, padding_mask=mask, skip_halted=True)
    finally:
        layer.fixed_depth = None
    real = mask.astype(bool)
    np.testing.assert_array_equal(outputs["updates"], n * mask)
    np.testing.assert_array_equal(outputs["remainders"], 0.0)
    np.testing.assert_array_equal(outputs["halting_probability"], 0.0)
    expected = block_applied(layer, hidden, mask, n)
    np.testing.assert_allclose(outputs["sequence_output"].numpy()[real], expected[real], atol=1e-5)
    # Padding is never updated.
    np.testing.assert_array_equal(outputs["sequence_output"].numpy()[~real], hidden[~real])
    # Fixed depth runs the same loop whatever `skip_halted` says.
    np.testing.assert_array_equal(with_skip["sequence_output"], outputs["sequence_output"])
    # The ponder cost is the constant n (rows with real tokens).
    cost = ponder_cost(outputs["updates"][:3], outputs["remainders"][:3], mask[:3])
    np.testing.assert_allclose(cost, n, rtol=1e-6)


def test_setting_none_returns_to_act_bit_for_bit(layer):
    hidden, mask = make_inputs()
    before = layer(hidden, padding_mask=mask)
    layer.fixed_depth = 2
    fixed = layer(hidden, padding_mask=mask)
    layer.fixed_depth = None
    after = layer(hidden, padding_mask=mask)
    assert not np.array_equal(fixed["updates"], before["updates"])
    for key in before:
        np.testing.assert_array_equal(after[key], before[key], err_msg=key)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_tf_function_and_xla_match_eager(jit_compile):
    layer = tiny_act_layer(fixed_depth=4)
    hidden, mask = make_inputs()
    eager = layer(hidden, padding_mask=mask)
    compiled = tf.function(lambda h, m: layer(h, padding_mask=m), jit_compile=jit_compile)
    got = compiled(hidden, mask)
    np.testing.assert_array_equal(got["updates"], eager["updates"])
    np.testing.assert_allclose(got["sequence_output"], eager["sequence_output"], atol=1e-5)


def test_depth_budget_lowers_n_and_ignores_the_threshold():
    layer = tiny_act_layer(fixed_depth=CAP + 2)
    hidden, mask = make_inputs()
    np.testing.assert_array_equal(
        layer(hidden, padding_mask=mask, max_layers=3)["updates"], 3 * mask
    )
    # Up to max(max_layers, n) is accepted; more is an error.
    full = layer(hidden, padding_mask=mask, max_layers=CAP + 2, halting_threshold=0.1)
    np.testing.assert_array_equal(full["updates"], (CAP + 2) * mask)
    with pytest.raises(ValueError, match=rf"at most the layer's cap \({CAP + 2}\)"):
        layer(hidden, padding_mask=mask, max_layers=CAP + 3)
    with depth_budget(max_layers=tf.constant(2)):
        np.testing.assert_array_equal(layer(hidden, padding_mask=mask)["updates"], 2 * mask)
    # A budget above n leaves n.
    small = tiny_act_layer(fixed_depth=2)
    np.testing.assert_array_equal(
        small(hidden, padding_mask=mask, max_layers=CAP)["updates"], 2 * mask
    )


def test_return_iterations_has_max_of_cap_and_n_rows():
    n = CAP + 2
    layer = tiny_act_layer(fixed_depth=n)
    hidden, mask = make_inputs()
    outputs = layer(hidden, padding_mask=mask, return_iterations=True)
    assert int(outputs["num_iterations"]) == n
    assert outputs["iteration_states"].shape == (n,) + hidden.shape
    np.testing.assert_allclose(outputs["iteration_states"][-1], outputs["sequence_output"], atol=0)
    np.testing.assert_array_equal(outputs["iteration_updates"][:, 0, 0], np.arange(1, n + 1))
    np.testing.assert_array_equal(outputs["iteration_update_weights"][0], mask)
    assert np.all(np.isnan(outputs["iteration_halting_logits"]))
    # The symbolic call (Functional models) agrees on the shapes.
    symbolic = layer(keras.Input((10, layer.hidden_dim)), return_iterations=True)
    assert symbolic["iteration_states"].shape == (n, None, 10, layer.hidden_dim)


def test_training_with_dropout_has_gradients_but_not_for_halting():
    layer = tiny_act_layer(fixed_depth=2, dropout=0.1)
    hidden, mask = make_inputs()
    with tf.GradientTape() as tape:
        outputs = layer(hidden, padding_mask=mask, training=True)
        loss = tf.reduce_sum(outputs["sequence_output"] ** 2)
    gradients = tape.gradient(loss, layer.trainable_variables)
    by_name = {v.path: g for v, g in zip(layer.trainable_variables, gradients, strict=True)}
    halting = [path for path in by_name if "halting_dense" in path]
    assert halting and all(by_name[path] is None for path in halting)
    assert all(g is not None for path, g in by_name.items() if path not in halting)
    # Dropout is active in training only.
    again = layer(hidden, padding_mask=mask, training=True)["sequence_output"]
    assert not np.allclose(again, outputs["sequence_output"])


@pytest.mark.parametrize(
    "value,message",
    [
        (0, "`fixed_depth` must be a positive int. Received: fixed_depth=0"),
        (True, "`fixed_depth` must be a positive int"),
        (2.0, "`fixed_depth` must be a positive int"),
    ],
)
def test_bad_fixed_depth_is_a_clear_error(layer, value, message):
    with pytest.raises(ValueError, match=message):
        keras_act.AlbertAct(**TINY_ACT_CONFIG, fixed_depth=value)
    with pytest.raises(ValueError, match=message):
        layer.fixed_depth = value
    assert layer.fixed_depth is None


def backbone_inputs(lengths=(12, 9, 4), length=12, seed=0):
    rng = np.random.default_rng(seed)
    mask = (np.arange(length)[None, :] < np.array(lengths)[:, None]).astype("int32")
    return {
        "token_ids": (rng.integers(4, 100, size=mask.shape) * mask).astype("int32"),
        "segment_ids": np.zeros(mask.shape, "int32"),
        "padding_mask": mask,
    }


def test_backbone_fixed_depth_config_setter_and_saving(tmp_path):
    backbone = varied_depth_backbone(vocabulary_size=100)
    inputs = backbone_inputs()
    act = backbone.predict(inputs, verbose=0)
    assert len(np.unique(act["updates"][inputs["padding_mask"] == 1])) > 1
    assert backbone.get_config()["fixed_depth"] is None

    backbone.fixed_depth = 8  # above the cap of 6
    fixed = backbone.predict(inputs, verbose=0)  # traced again
    np.testing.assert_array_equal(fixed["updates"], 8 * inputs["padding_mask"])
    assert backbone.get_config()["fixed_depth"] == 8
    assert backbone.encoder.get_config()["fixed_depth"] == 8

    path = os.path.join(tmp_path, "fixed.keras")
    backbone.save(path)
    restored = keras.saving.load_model(path)
    assert restored.fixed_depth == 8
    np.testing.assert_allclose(
        restored(inputs)["sequence_output"], fixed["sequence_output"], atol=1e-5
    )
    rebuilt = keras_act.AlbertActBackbone.from_config(backbone.get_config())
    assert rebuilt.encoder.fixed_depth == 8

    backbone.fixed_depth = None
    np.testing.assert_array_equal(backbone.predict(inputs, verbose=0)["updates"], act["updates"])


# === Equivalence with plain ALBERT (issue 13, part 1) ===
# Same random weights, copied by keras_act.convert (from_keras_hub_albert,
# load_hf_checkpoint); padded batch with mixed segments; outputs compared on
# real tokens (plain ALBERT also updates padding, which the ACT layer never
# does and which no real token sees) and on the pooled output.

EQUIVALENCE_TOLERANCE = 1e-5
TINY_ALBERT = dict(
    vocabulary_size=120,
    num_heads=4,
    embedding_dim=16,
    hidden_dim=32,
    intermediate_dim=64,
    max_sequence_length=32,
)


def padded_albert_batch(lengths=(16, 11, 5, 1), length=16, seed=0):
    rng = np.random.default_rng(seed)
    mask = (np.arange(length)[None, :] < np.array(lengths)[:, None]).astype("int32")
    return {
        "token_ids": (rng.integers(1, TINY_ALBERT["vocabulary_size"], mask.shape) * mask).astype(
            "int32"
        ),
        "segment_ids": (rng.integers(0, 2, mask.shape) * mask).astype("int32"),
        "padding_mask": mask,
    }


def max_differences(backbone, inputs, sequence_output, pooled_output):
    """max |difference| of the fixed-depth backbone's outputs, real tokens / pooled."""
    outputs = backbone(inputs)
    real = inputs["padding_mask"].astype(bool)
    return (
        float(np.max(np.abs(outputs["sequence_output"].numpy()[real] - sequence_output[real]))),
        float(np.max(np.abs(outputs["pooled_output"].numpy() - pooled_output))),
    )


@pytest.mark.parametrize("n", [1, 12])
def test_fixed_depth_equals_keras_hub_albert(n):
    import keras_hub

    from keras_act.convert import from_keras_hub_albert

    keras.utils.set_random_seed(n)
    albert = keras_hub.models.AlbertBackbone(
        num_layers=n, num_groups=1, num_inner_repetitions=1, dropout=0.0, **TINY_ALBERT
    )
    rng = np.random.default_rng(n)
    for variable in albert.weights:  # biases and layer norms drawn too
        if len(variable.shape) == 1:
            variable.assign(
                variable.numpy() + rng.normal(0.0, 0.1, variable.shape).astype("float32")
            )
    inputs = padded_albert_batch()
    expected = {key: value.numpy() for key, value in albert(inputs).items()}

    # A cap below n for n = 12: fixed depth may exceed max_layers.
    backbone = from_keras_hub_albert(albert, max_layers=min(n, 6))
    backbone.fixed_depth = n
    sequence, pooled = max_differences(
        backbone, inputs, expected["sequence_output"], expected["pooled_output"]
    )
    print(
        f"keras-hub AlbertBackbone(num_layers={n}): max |difference| sequence_output "
        f"{sequence:.2e}, pooled_output {pooled:.2e}"
    )
    assert sequence < EQUIVALENCE_TOLERANCE and pooled < EQUIVALENCE_TOLERANCE
    if n > 1:  # the same weights under ACT are another model
        backbone.fixed_depth = None
        assert (
            max_differences(
                backbone, inputs, expected["sequence_output"], expected["pooled_output"]
            )[0]
            > 1e-2
        )


@pytest.mark.parametrize("n", [1, 12])
def test_fixed_depth_equals_hugging_face_albert_model(n, tmp_path):
    import torch

    from keras_act.convert import load_hf_checkpoint
    from tests.helpers import random_plain_albert, save_plain_albert

    model = random_plain_albert(seed=n, num_hidden_layers=n)
    backbone = load_hf_checkpoint(str(save_plain_albert(model, tmp_path / "albert")))
    backbone.fixed_depth = n
    inputs = padded_albert_batch()
    with torch.no_grad():
        expected = model(
            input_ids=torch.tensor(inputs["token_ids"], dtype=torch.long),
            attention_mask=torch.tensor(inputs["padding_mask"], dtype=torch.long),
            token_type_ids=torch.tensor(inputs["segment_ids"], dtype=torch.long),
        )
    sequence, pooled = max_differences(
        backbone, inputs, expected.last_hidden_state.numpy(), expected.pooler_output.numpy()
    )
    print(
        f"transformers AlbertModel(num_hidden_layers={n}): max |difference| "
        f"sequence_output {sequence:.2e}, pooled_output {pooled:.2e}"
    )
    assert sequence < EQUIVALENCE_TOLERANCE and pooled < EQUIVALENCE_TOLERANCE
