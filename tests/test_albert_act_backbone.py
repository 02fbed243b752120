"""`AlbertActBackbone`: outputs, presets, saving, and bad input."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_act

TINY = dict(
    vocabulary_size=300,
    embedding_dim=16,
    hidden_dim=32,
    num_heads=4,
    intermediate_dim=64,
    max_layers=6,
    max_sequence_length=64,
)


@pytest.fixture(scope="module")
def backbone():
    keras.utils.set_random_seed(0)
    return keras_act.AlbertActBackbone(**TINY)


def make_inputs(lengths=(12, 5), length=12, seed=0):
    rng = np.random.default_rng(seed)
    batch = len(lengths)
    mask = (np.arange(length)[None, :] < np.array(lengths)[:, None]).astype("int32")
    token_ids = rng.integers(5, TINY["vocabulary_size"], size=(batch, length)).astype("int32")
    token_ids[:, 0] = 2
    token_ids *= mask
    segment_ids = np.zeros((batch, length), "int32")
    segment_ids[0, 6:] = 1
    return {"token_ids": token_ids, "segment_ids": segment_ids * mask, "padding_mask": mask}


def assert_same_outputs(a, b):
    assert set(a) == set(b)
    for key in a:
        np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]), err_msg=key)


def test_outputs_on_numpy_and_tensors(backbone):
    inputs = make_inputs()
    outputs = backbone(inputs)
    assert set(outputs) == {"sequence_output", "pooled_output", "updates", "remainders"}
    assert outputs["sequence_output"].shape == (2, 12, 32)
    assert outputs["pooled_output"].shape == (2, 32)
    assert outputs["updates"].dtype == tf.float32
    np.testing.assert_array_equal(outputs["updates"].numpy()[1, 5:], 0.0)
    assert outputs["updates"].numpy()[1, :5].min() >= 1
    tensors = {k: tf.constant(v) for k, v in inputs.items()}
    assert_same_outputs(backbone(tensors), outputs)
    # predict() on a dict of arrays gives the same numbers.
    predicted = backbone.predict(inputs, verbose=0)
    np.testing.assert_allclose(predicted["sequence_output"], outputs["sequence_output"], atol=1e-6)


def test_xla_compiled_backbone_matches_eager(backbone):
    inputs = make_inputs()
    eager = backbone(inputs)
    compiled = tf.function(backbone, jit_compile=True)(inputs)
    np.testing.assert_array_equal(compiled["updates"], eager["updates"])
    np.testing.assert_allclose(
        compiled["sequence_output"], eager["sequence_output"], atol=1e-5, rtol=1e-5
    )


def test_fit_step_with_jit_compile(backbone):
    keras.utils.set_random_seed(1)
    model = keras_act.AlbertActBackbone(**TINY)
    inputs = make_inputs()
    outputs = model(model.input)
    ponder = keras.layers.Lambda(lambda u: tf.reduce_mean(u, axis=1, keepdims=True))(
        outputs["updates"]
    )
    head = keras.layers.Dense(1)(outputs["pooled_output"])
    trainer = keras.Model(model.input, keras.layers.Add()([head, ponder * 0.0]))
    trainer.compile(optimizer="adam", loss="mse", jit_compile=True)
    before = [w.numpy().copy() for w in model.trainable_weights]
    history = trainer.fit(inputs, np.ones((2, 1)), epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    changed = [not np.array_equal(a, w.numpy()) for a, w in zip(before, model.trainable_weights, strict=True)]
    assert any(changed)


def test_presets_hold_the_papers_three_models():
    presets = keras_act.AlbertActBackbone.architecture_presets()
    assert set(presets) == {"albert_act_tiny", "albert_act_small", "albert_act_base"}
    expected = {"albert_act_tiny": (6, 1e-3), "albert_act_small": (12, 5e-4), "albert_act_base": (24, 2.5e-4)}
    for name, (cap, tau) in expected.items():
        config = presets[name]
        assert (config["max_layers"], config["ponder_weight"]) == (cap, tau)
        assert (
            config["vocabulary_size"],
            config["embedding_dim"],
            config["hidden_dim"],
            config["num_heads"],
            config["intermediate_dim"],
        ) == (30000, 128, 768, 12, 3072)


@pytest.mark.large
def test_from_preset_builds_offline():
    backbone = keras_act.AlbertActBackbone.from_preset("albert_act_small")
    assert backbone.max_layers == 12 and backbone.ponder_weight == 5e-4
    assert backbone.hidden_dim == 768
    outputs = backbone(make_inputs())
    assert outputs["sequence_output"].shape == (2, 12, 768)
    # Overrides apply on top of the preset.
    smaller = keras_act.AlbertActBackbone.from_preset("albert_act_tiny", max_sequence_length=128)
    assert smaller.max_sequence_length == 128 and smaller.max_layers == 6


def test_unknown_preset_is_a_clear_error():
    with pytest.raises(ValueError, match="albert_act_tiny"):
        keras_act.AlbertActBackbone.from_preset("albert_act_huge")


def test_save_to_preset_and_from_preset_round_trip(backbone, tmp_path):
    backbone.save_to_preset(str(tmp_path / "preset"))
    restored = keras_act.AlbertActBackbone.from_preset(str(tmp_path / "preset"))
    assert isinstance(restored, keras_act.AlbertActBackbone)
    assert restored.get_config() == backbone.get_config()
    inputs = make_inputs()
    assert_same_outputs(restored(inputs), backbone(inputs))


def test_keras_file_round_trip(backbone, tmp_path):
    path = str(tmp_path / "backbone.keras")
    backbone.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, keras_act.AlbertActBackbone)
    inputs = make_inputs()
    assert_same_outputs(restored(inputs), backbone(inputs))


def test_get_config_round_trip(backbone):
    config = backbone.get_config()
    clone = keras_act.AlbertActBackbone.from_config(config)
    assert clone.get_config() == config
    clone.set_weights(backbone.get_weights())
    inputs = make_inputs()
    assert_same_outputs(clone(inputs), backbone(inputs))


def test_all_padding_row_gives_zero_updates_and_no_nan(backbone):
    inputs = make_inputs(lengths=(12, 0))
    outputs = backbone(inputs)
    np.testing.assert_array_equal(outputs["updates"].numpy()[1], 0.0)
    for value in outputs.values():
        assert np.all(np.isfinite(value.numpy()))


@pytest.mark.parametrize("mode", ["eager", "graph"])
@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda x: x["token_ids"].__setitem__((0, 3), 300), "vocabulary_size=300"),
        (lambda x: x["token_ids"].__setitem__((0, 3), -1), "token_ids"),
        (lambda x: x["segment_ids"].__setitem__((0, 3), 2), "num_segments=2"),
        (lambda x: x.__setitem__("padding_mask", x["padding_mask"][:, :-1]), "padding_mask"),
        (lambda x: x.__setitem__("segment_ids", x["segment_ids"][:1]), "segment_ids"),
    ],
)
def test_bad_inputs_are_clear_errors(backbone, mode, corrupt, message):
    inputs = make_inputs()
    corrupt(inputs)
    call = backbone if mode == "eager" else tf.function(backbone)
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        call(inputs)


def test_sequence_longer_than_position_table_is_a_clear_error(backbone):
    inputs = make_inputs(lengths=(65,), length=65)
    with pytest.raises(tf.errors.InvalidArgumentError, match="max_sequence_length=64"):
        backbone(inputs)


def test_bad_constructor_arguments_name_the_value():
    with pytest.raises(ValueError, match="vocabulary_size=0"):
        keras_act.AlbertActBackbone(**dict(TINY, vocabulary_size=0))
    with pytest.raises(ValueError, match="ponder_weight"):
        keras_act.AlbertActBackbone(**dict(TINY, ponder_weight=-1.0))


def test_mixed_precision_backbone():
    keras.utils.set_random_seed(0)
    model = keras_act.AlbertActBackbone(**TINY, dtype="mixed_bfloat16")
    outputs = model(make_inputs())
    assert outputs["sequence_output"].dtype == tf.bfloat16
    assert outputs["updates"].dtype == tf.float32
    assert model.get_layer("albert_act").halting_dense.compute_dtype == "float32"


def test_skip_halted_is_a_backbone_argument(backbone):
    dense = keras_act.AlbertActBackbone(**TINY, skip_halted=False)
    assert dense.get_layer("albert_act").skip_halted is False
    assert keras_act.AlbertActBackbone.from_config(dense.get_config()).skip_halted is False
    dense.set_weights(backbone.get_weights())
    inputs = make_inputs()
    a, b = dense(inputs), backbone(inputs)
    np.testing.assert_array_equal(a["updates"], b["updates"])
    np.testing.assert_allclose(a["sequence_output"], b["sequence_output"], atol=1e-5, rtol=1e-5)
