"""`AlbertActBackbone`: outputs, presets, saving, and bad input."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras_hub.src.tests.test_case import TestCase

import keras_act
from tests.helpers import tiny_backbone_config

TINY = tiny_backbone_config(300)


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


# === Inputs that must never give silently wrong numbers ===


@pytest.fixture(scope="module")
def dense_backbone(backbone):
    """The same weights on the dense loop (the reference of the skip path)."""
    dense = keras_act.AlbertActBackbone(**TINY, skip_halted=False)
    dense.set_weights(backbone.get_weights())
    return dense


@pytest.fixture(scope="module")
def preprocessor(tmp_path_factory):
    from tests.helpers import train_tiny_sentencepiece

    proto = train_tiny_sentencepiece(tmp_path_factory.mktemp("vocab") / "spiece.model")
    tokenizer = keras_act.AlbertActTokenizer(proto=proto)
    return keras_act.AlbertActPreprocessor(tokenizer, sequence_length=8)


def assert_close_outputs(a, b):
    assert set(a) == set(b)
    for key in a:
        assert a[key].shape == b[key].shape, key
        np.testing.assert_allclose(np.asarray(a[key]), np.asarray(b[key]), atol=1e-5, err_msg=key)


@pytest.mark.parametrize("batch", ["empty", "padding_only"])
def test_empty_and_padding_only_batches_run_eagerly(backbone, dense_backbone, preprocessor, batch):
    if batch == "empty":
        inputs = preprocessor([])
        assert inputs["token_ids"].shape == (0, 8)
    else:
        inputs = {k: np.zeros((3, 8), "int32") for k in ("token_ids", "segment_ids", "padding_mask")}
    eager = backbone(inputs)  # the skip path (it failed in TensorArray.concat)
    graph = tf.function(backbone)(inputs)
    dense = dense_backbone(inputs)
    assert eager["sequence_output"].shape == (len(inputs["token_ids"]), 8, 32)
    assert_close_outputs(eager, graph)
    assert_close_outputs(eager, dense)
    np.testing.assert_array_equal(eager["updates"], 0.0)


def call_in(mode, model, inputs):
    if mode == "eager":
        return model(inputs)
    if mode == "tf.function":
        return tf.function(model)({k: tf.constant(v) for k, v in inputs.items()})
    return model.predict(inputs, verbose=0)


BAD_CASTS = [
    # (input, dtype, bad value, what the error shows)
    ("token_ids", "int64", 2**32 + 5, "4294967301"),
    ("token_ids", "float32", 5.99, "5.99"),
    ("token_ids", "uint32", 2**31 + 5, "2147483653"),
    ("segment_ids", "int64", 2**32 + 1, "4294967297"),
    ("padding_mask", "float32", 0.5, "0.5"),
]


@pytest.mark.parametrize("mode", ["eager", "tf.function", "predict"])
@pytest.mark.parametrize("name, dtype, value, shown", BAD_CASTS)
def test_values_the_int32_cast_would_change_are_refused(backbone, mode, name, dtype, value, shown):
    # Before: 2**32 + 5 wrapped to id 5, 5.99 became 5, silently.
    inputs = make_inputs()
    inputs[name] = inputs[name].astype(dtype)
    inputs[name][0, 3] = value
    with pytest.raises(tf.errors.InvalidArgumentError, match=rf"`{name}` must hold") as error:
        call_in(mode, backbone, inputs)
    assert shown in str(error.value) and "0, 3" in str(error.value).replace("[0 3]", "0, 3")


@pytest.mark.parametrize("mode", ["eager", "tf.function", "predict"])
@pytest.mark.parametrize("value", [-1, 2])
def test_padding_mask_must_be_zero_or_one(backbone, mode, value):
    # Before: a mask of -1 or 2 counted as a real token.
    inputs = make_inputs()
    inputs["padding_mask"][1, 2] = value
    with pytest.raises(tf.errors.InvalidArgumentError, match="`padding_mask` must be 1") as error:
        call_in(mode, backbone, inputs)
    assert str(value) in str(error.value)


def test_inputs_the_cast_keeps_give_the_same_numbers(backbone):
    inputs = make_inputs()
    expected = backbone(inputs)
    for converted in (
        {k: v.astype("int64") for k, v in inputs.items()},
        {k: v.astype("float32") for k, v in inputs.items()},  # whole numbers
        dict(inputs, padding_mask=inputs["padding_mask"].astype(bool)),
    ):
        assert_same_outputs(backbone(converted), expected)
    # int64 inputs under XLA: the check compiles.
    compiled = tf.function(backbone, jit_compile=True)(
        {k: tf.constant(v, tf.int64) for k, v in inputs.items()}
    )
    np.testing.assert_array_equal(compiled["updates"], expected["updates"])


@pytest.mark.parametrize("mode", ["eager", "tf.function", "predict"])
def test_task_model_refuses_ids_the_cast_would_change(backbone, mode):
    classifier = keras_act.AlbertActTextClassifier(backbone, num_classes=2)
    inputs = make_inputs()
    expected = classifier.predict(inputs, verbose=0)
    np.testing.assert_allclose(
        classifier.predict({k: v.astype("int64") for k, v in inputs.items()}, verbose=0),
        expected,
        atol=1e-6,
    )
    inputs["token_ids"] = inputs["token_ids"].astype("int64")
    inputs["token_ids"][1, 1] = 2**32 + 5
    with pytest.raises(tf.errors.InvalidArgumentError, match="`token_ids` must hold.*4294967301"):
        call_in(mode, classifier, inputs)


def test_pretrainer_refuses_ids_the_cast_would_change(backbone):
    pretrainer = keras_act.AlbertActPretrainer(backbone)
    inputs = make_inputs()
    inputs["mask_positions"] = np.array([[1, 2], [1, 3]], "int64")
    inputs["token_ids"] = inputs["token_ids"].astype("float64")
    inputs["token_ids"][0, 1] = 7.5
    with pytest.raises(tf.errors.InvalidArgumentError, match="`token_ids` must hold integers.*7.5"):
        pretrainer(inputs)


@pytest.mark.parametrize("mode", ["eager", "static", "dynamic"])
def test_sequence_length_zero_is_a_clear_error(backbone, mode):
    # Before: a BiasAdd or strided_slice error.
    inputs = {k: np.zeros((2, 0), "int32") for k in ("token_ids", "segment_ids", "padding_mask")}
    if mode == "eager":
        call = backbone
    elif mode == "static":
        call = tf.function(backbone)
    else:
        spec = tf.TensorSpec([None, None], tf.int32)
        call = tf.function(backbone, input_signature=[{k: spec for k in inputs}])
    with pytest.raises(tf.errors.InvalidArgumentError, match="sequence length is 0") as error:
        call(inputs)
    assert "2, 0" in str(error.value).replace("[2 0]", "2, 0")


# === keras-hub's own test harness ===

# Smaller than TINY: the harness builds the backbone a dozen times.
HARNESS_CONFIG = tiny_backbone_config(
    300, embedding_dim=4, hidden_dim=8, num_heads=2, intermediate_dim=16, max_layers=3
)


class BackboneHarnessTest(TestCase):
    def test_backbone_harness(self):
        self.run_backbone_test(
            cls=keras_act.AlbertActBackbone,
            init_kwargs=dict(HARNESS_CONFIG),
            input_data=make_inputs(),
            expected_output_shape={
                "sequence_output": (2, 12, 8),
                "pooled_output": (2, 8),
                "updates": (2, 12),
                "remainders": (2, 12),
            },
            # Not applicable: `updates` and `remainders` stay float32 under a
            # float16 policy (test_mixed_precision_backbone checks the rest).
            run_mixed_precision_check=False,
            # Run by tests/test_keras_hub_conventions.py::QuantizationHarnessTest.
            run_quantization_check=False,
        )

    def test_model_saving_harness(self):
        self.run_model_saving_test(
            cls=keras_act.AlbertActBackbone,
            init_kwargs=dict(HARNESS_CONFIG),
            input_data=make_inputs(),
        )

    def test_preset_harness(self):
        keras.utils.set_random_seed(0)
        original = keras_act.AlbertActBackbone(**HARNESS_CONFIG)
        preset = os.path.join(self.get_temp_dir(), "preset")
        original.save_to_preset(preset)
        # Unknown presets raise; the preset's weights give the same outputs.
        self.run_preset_test(
            cls=keras_act.AlbertActBackbone,
            preset=preset,
            input_data=make_inputs(),
            expected_output=original(make_inputs()),
        )
