"""keras-hub conventions a keras-hub user relies on: quantization, preprocessors.

Quantization runs keras-hub's own harness (`TestCase.run_quantization_test`)
on a tiny `AlbertActBackbone`, then checks what the harness does not: that a
quantized backbone reloads from `.keras` and presets with identical outputs
and `updates`. Preprocessors: `sequence_length` set after construction takes
effect and survives `get_config()`.
"""

import keras
import numpy as np
import pytest
from keras_hub.src.tests.test_case import TestCase

from keras_act import AlbertActBackbone
from tests.helpers import tiny_albert_proto as tiny_proto

TINY = dict(
    vocabulary_size=50,
    embedding_dim=8,
    hidden_dim=16,
    num_heads=2,
    intermediate_dim=32,
    max_layers=4,
    max_sequence_length=16,
)


def tiny_inputs():
    return {
        "token_ids": np.array([[2, 5, 7, 3, 0, 0], [2, 9, 11, 12, 13, 3]], "int32"),
        "segment_ids": np.array([[0, 0, 0, 0, 0, 0], [0, 0, 0, 1, 1, 1]], "int32"),
        "padding_mask": np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], "int32"),
    }


def assert_same_outputs(actual, expected):
    assert set(actual) == set(expected)
    for key in expected:
        np.testing.assert_array_equal(np.asarray(actual[key]), np.asarray(expected[key]), key)


class QuantizationHarnessTest(TestCase):
    def test_keras_hub_quantization_harness(self):
        # The harness maps every plain Dense/EinsumDense/Embedding to a
        # quantized policy; the halting unit is a `HaltingDense`, which it
        # (like `Model.quantize`) leaves float32.
        backbone = AlbertActBackbone(**TINY)
        self.run_quantization_test(
            instance=backbone,
            cls=AlbertActBackbone,
            init_kwargs=dict(TINY),
            input_data=tiny_inputs(),
        )


def quantized_backbone(mode):
    keras.utils.set_random_seed(3)
    backbone = AlbertActBackbone(**TINY)
    backbone(tiny_inputs())
    backbone.quantize(mode)
    return backbone


@pytest.mark.parametrize("mode", ["int8", "float8"])
def test_quantize_leaves_the_halting_unit_float32(mode):
    backbone = quantized_backbone(mode)
    halting = backbone.get_layer("albert_act").halting_dense
    assert halting.quantization_mode is None
    assert [v.dtype for v in halting.weights] == ["float32", "float32"]
    quantized = [
        layer.path for layer in backbone._flatten_layers() if layer.quantization_mode
    ]
    assert "albert_act/transformer_block/self_attention_layer/query" in quantized
    policy_map = backbone.get_config()["dtype"]
    assert policy_map["class_name"] == "DTypePolicyMap"
    assert "albert_act/halting_dense" not in policy_map["config"]["policy_map"]
    assert "albert_act/transformer_block/self_attention_layer/query" in (
        policy_map["config"]["policy_map"]
    )


@pytest.mark.parametrize("mode", ["int8", "float8"])
def test_quantized_backbone_reloads_from_keras_file_and_preset(mode, tmp_path):
    backbone = quantized_backbone(mode)
    expected = backbone(tiny_inputs())

    path = tmp_path / "quantized.keras"
    backbone.save(path)
    from_file = keras.models.load_model(path)
    assert_same_outputs(from_file(tiny_inputs()), expected)

    backbone.save_to_preset(str(tmp_path / "preset"))
    from_preset = AlbertActBackbone.from_preset(str(tmp_path / "preset"))
    assert from_preset.get_layer("albert_act").halting_dense.quantization_mode is None
    assert_same_outputs(from_preset(tiny_inputs()), expected)


def test_quantized_block_runs_on_the_dense_path():
    # The skip path reads the block's float kernels; a quantized block's are
    # int8 (scales apart), so inference falls back to the dense path.
    backbone = quantized_backbone("int8")
    encoder = backbone.get_layer("albert_act")
    hidden = np.random.default_rng(0).normal(size=(2, 6, 16)).astype("float32")
    mask = tiny_inputs()["padding_mask"]
    automatic = encoder(hidden, padding_mask=mask)
    dense = encoder(hidden, padding_mask=mask, skip_halted=False)
    assert_same_outputs(automatic, dense)
    with pytest.raises(ValueError, match="quantized"):
        encoder(hidden, padding_mask=mask, skip_halted=True)


def preprocessor_cases():
    import keras_act

    return [
        (keras_act.AlbertActPreprocessor, ["The fox ran far away.", "A cat."]),
        (keras_act.AlbertActPairPreprocessor, (["The fox ran."], ["A cat sat down."])),
        (keras_act.AlbertActTextClassifierPreprocessor, ["The fox ran far.", "A cat."]),
        (
            keras_act.AlbertActMultipleChoicePreprocessor,
            (["The fox ran."], [["It fell down.", "A cat sat."]]),
        ),
    ]


@pytest.mark.parametrize("case", range(4))
def test_sequence_length_set_after_construction(case, tiny_tokenizer, tmp_path):
    cls, x = preprocessor_cases()[case]
    preprocessor = cls(tiny_tokenizer, sequence_length=12)
    assert preprocessor(x)["token_ids"].shape[-1] == 12
    preprocessor.sequence_length = 6
    outputs = preprocessor(x)
    for key in ("token_ids", "segment_ids", "padding_mask"):
        assert outputs[key].shape[-1] == 6, key

    copy = cls.from_config(preprocessor.get_config())
    preprocessor.tokenizer.save_assets(str(tmp_path))
    copy.tokenizer.load_assets(str(tmp_path))
    assert copy.sequence_length == 6
    assert_same_outputs(copy(x), outputs)

    with pytest.raises(ValueError, match="sequence_length"):
        preprocessor.sequence_length = 2


# === keras-hub's preprocessing harness ===


class PreprocessingHarnessTest(TestCase):
    """keras-hub's `run_preprocessing_layer_test` / `run_preprocessor_test`:
    config round trip, direct call == `tf.data` (batched and unbatched) ==
    Grain (outputs NumPy / Python only), and `sequence_length` set later."""

    def tokenizer(self):
        from keras_act import AlbertActTokenizer

        return AlbertActTokenizer(proto=tiny_proto())

    def test_tokenizer(self):
        from keras_act import AlbertActTokenizer

        # Lower-case, normalised text: `detokenize` gives the input back.
        texts = ["the fox ran far away .", "a big red house", "it was on the river"]
        output = self.run_preprocessing_layer_test(
            cls=AlbertActTokenizer,
            init_kwargs={"proto": tiny_proto()},
            input_data=texts,
            return_output=True,
        )
        assert [len(ids) for ids in output.to_list()] == [
            len(self.tokenizer().tokenize(t)) for t in texts
        ]

    def run_preprocessor(self, cls, input_data, **kwargs):
        self.init_kwargs = {"tokenizer": self.tokenizer(), "sequence_length": 12, **kwargs}
        return self.run_preprocessor_test(
            cls=cls, init_kwargs=self.init_kwargs, input_data=input_data
        )

    def test_preprocessor(self):
        from keras_act import AlbertActPreprocessor

        self.run_preprocessor(
            AlbertActPreprocessor, (["The fox ran far away.", "A cat."], [1, 0], [1.0, 0.5])
        )

    def test_pair_preprocessor(self):
        from keras_act import AlbertActPairPreprocessor

        self.run_preprocessor(
            AlbertActPairPreprocessor, ((["The fox ran.", "A cat"], ["A cat sat down.", "No"]), [1, 0])
        )

    def test_text_classifier_preprocessor(self):
        from keras_act import AlbertActTextClassifierPreprocessor

        self.run_preprocessor(
            AlbertActTextClassifierPreprocessor, (["The fox ran far.", "A cat."], [1, 0])
        )

    def test_multiple_choice_preprocessor(self):
        from keras_act import AlbertActMultipleChoicePreprocessor

        self.run_preprocessor(
            AlbertActMultipleChoicePreprocessor,
            ((["The fox ran.", "An owl"], [["It fell.", "A cat sat."], ["ran", "big owl"]]), [0, 1]),
        )

    def test_question_answerer_preprocessor(self):
        from keras_act import AlbertActQuestionAnswererPreprocessor

        y = {"answer_start": [8, 2], "answer_text": ["ran", "big"]}
        self.run_preprocessor(
            AlbertActQuestionAnswererPreprocessor,
            ((["where", "what owl"], ["The fox ran far.", "A big owl."]), y),
            max_question_length=4,
        )

    def test_token_classifier_preprocessor(self):
        from keras_act import AlbertActTokenClassifierPreprocessor

        words = tf_ragged([["The", "fox", "ran"], ["A", "big", "owl", "sat"]])
        labels = tf_ragged([[0, 1, 0], [0, 2, 1, 0]], "int32")
        self.run_preprocessor(AlbertActTokenClassifierPreprocessor, (words, labels))


def tf_ragged(rows, dtype="string"):
    import tensorflow as tf

    return tf.ragged.constant(rows, dtype=dtype)
