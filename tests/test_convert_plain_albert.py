"""Plain ALBERT (Hugging Face `model_type: albert`, keras-hub `AlbertBackbone`) into ALBERT-ACT.

Small random ALBERTs are built with transformers and saved here in each
format (`model.safetensors`, `pytorch_model.bin`, `tf_model.h5`); the
imported backbone is checked layer by layer against the PyTorch modules
(the fixed-depth equality of the whole model is `test_fixed_depth*`'s).
"""

import keras
import numpy as np
import pytest

from keras_act.convert import (
    CheckpointError,
    from_keras_hub_albert,
    halting_bias_for_depth,
    load_hf_checkpoint,
)
from keras_act.convert.__main__ import main as convert_main
from tests.helpers import random_plain_albert, save_plain_albert

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

ATOL = 1e-5
TOKEN_IDS = np.array([[2, 17, 45, 9, 3, 60, 3, 0], [2, 88, 5, 101, 3, 0, 0, 0]], np.int32)
SEGMENT_IDS = np.array([[0, 0, 0, 0, 0, 1, 1, 0], [0] * 8], np.int32)
PADDING_MASK = (TOKEN_IDS > 0).astype(np.int32)
INPUTS = {"token_ids": TOKEN_IDS, "segment_ids": SEGMENT_IDS, "padding_mask": PADDING_MASK}


@pytest.fixture(scope="module")
def albert_pretraining():
    return random_plain_albert(pretraining=True, seed=3)


@pytest.fixture(scope="module", params=["safetensors", "bin", "h5"])
def checkpoint(request, albert_pretraining, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"albert_{request.param}")
    return save_plain_albert(albert_pretraining, folder, request.param)


def torch_tensor(array, dtype=torch.float32):
    return torch.tensor(np.asarray(array), dtype=dtype)


def assert_block_matches(backbone, albert):
    """Embeddings, the shared layer and the pooler, each against PyTorch's."""
    projection = keras.Model(backbone.inputs, backbone.get_layer("embedding_projection").output)
    hidden = projection(INPUTS).numpy()
    with torch.no_grad():
        embedded = albert.embeddings(
            torch_tensor(TOKEN_IDS, torch.long), token_type_ids=torch_tensor(SEGMENT_IDS, torch.long)
        )
        expected = albert.encoder.embedding_hidden_mapping_in(embedded).numpy()
    np.testing.assert_allclose(hidden, expected, atol=ATOL)

    block = backbone.get_layer("albert_act").transformer_block
    layer = albert.encoder.albert_layer_groups[0].albert_layers[0]
    extended = (1.0 - torch_tensor(PADDING_MASK))[:, None, None, :] * torch.finfo(torch.float32).min
    with torch.no_grad():
        expected = layer(torch_tensor(hidden), extended)[0].numpy()
    np.testing.assert_allclose(block(hidden, padding_mask=PADDING_MASK).numpy(), expected, atol=ATOL)

    with torch.no_grad():
        expected = albert.pooler_activation(albert.pooler(torch_tensor(hidden[:, 0]))).numpy()
    np.testing.assert_allclose(
        backbone.get_layer("pooled_dense")(hidden[:, 0]).numpy(), expected, atol=ATOL
    )


def test_every_format_lands_each_weight_in_its_layer(checkpoint, albert_pretraining):
    backbone = load_hf_checkpoint(str(checkpoint), initial_depth=2)
    assert backbone.max_layers == 4  # the checkpoint's num_hidden_layers
    assert_block_matches(backbone, albert_pretraining.albert)
    halting = backbone.get_layer("albert_act").halting_dense
    np.testing.assert_array_equal(halting.kernel.numpy(), 0.0)
    np.testing.assert_allclose(halting.bias.numpy(), [halting_bias_for_depth(2)], rtol=1e-6)


def test_every_format_carries_the_pretraining_heads(checkpoint, albert_pretraining):
    pretrainer = load_hf_checkpoint(str(checkpoint), pretraining_heads=True)
    state = {k: v.numpy() for k, v in albert_pretraining.state_dict().items()}
    weights = {variable.path: variable.numpy() for variable in pretrainer.weights}
    np.testing.assert_allclose(
        weights["mlm_head/intermediate_dense/kernel"], state["predictions.dense.weight"].T
    )
    np.testing.assert_allclose(
        weights["mlm_head/intermediate_layer_norm/gamma"], state["predictions.LayerNorm.weight"]
    )
    np.testing.assert_allclose(weights["mlm_head/output_bias"], state["predictions.bias"])
    np.testing.assert_allclose(weights["sop_head/kernel"], state["sop_classifier.classifier.weight"].T)
    np.testing.assert_allclose(weights["sop_head/bias"], state["sop_classifier.classifier.bias"])


def test_imported_pretrainer_at_fixed_depth_gives_the_pretraining_logits(checkpoint, albert_pretraining):
    """Whole-model check of the import with its heads: at fixed depth (plain
    ALBERT), MLM and SOP logits equal `AlbertForPreTraining`'s."""
    pretrainer = load_hf_checkpoint(str(checkpoint), pretraining_heads=True)
    pretrainer.backbone.fixed_depth = albert_pretraining.config.num_hidden_layers
    positions = np.array([[1, 3, 5], [1, 2, 3]], np.int32)
    outputs = pretrainer({**INPUTS, "mask_positions": positions})
    with torch.no_grad():
        expected = albert_pretraining(
            input_ids=torch_tensor(TOKEN_IDS, torch.long),
            token_type_ids=torch_tensor(SEGMENT_IDS, torch.long),
            attention_mask=torch_tensor(PADDING_MASK, torch.long),
        )
    mlm = np.take_along_axis(expected.prediction_logits.numpy(), positions[..., None], axis=1)
    np.testing.assert_allclose(outputs["mlm_logits"].numpy(), mlm, atol=ATOL)
    np.testing.assert_allclose(outputs["sop_logits"].numpy(), expected.sop_logits.numpy(), atol=ATOL)


@pytest.mark.parametrize("initial_depth", [1, 3, 6])
def test_mean_depth_on_random_text_is_the_initial_depth(tmp_path, initial_depth):
    albert = random_plain_albert(seed=5, num_hidden_layers=6)
    folder = save_plain_albert(albert, tmp_path / "albert")
    backbone = load_hf_checkpoint(str(folder), initial_depth=initial_depth)
    rng = np.random.default_rng(initial_depth)
    lengths = rng.integers(3, 17, size=8)
    mask = (np.arange(16) < lengths[:, None]).astype(np.int32)
    token_ids = rng.integers(5, 120, size=(8, 16)).astype(np.int32) * mask
    updates = backbone(
        {"token_ids": token_ids, "segment_ids": np.zeros_like(mask), "padding_mask": mask}
    )["updates"].numpy()
    mean_depth = updates[mask > 0].mean()
    assert abs(mean_depth - initial_depth) <= 1.0
    # With the zero halting kernel every real token gets exactly that depth.
    np.testing.assert_array_equal(updates[mask > 0], initial_depth)


def test_default_depth_is_half_the_cap_and_max_layers_sets_the_cap(tmp_path):
    folder = save_plain_albert(random_plain_albert(seed=1), tmp_path / "albert")
    backbone = load_hf_checkpoint(str(folder), max_layers=7)
    assert backbone.max_layers == 7
    updates = backbone(INPUTS)["updates"].numpy()
    np.testing.assert_array_equal(updates[PADDING_MASK > 0], 4)


@pytest.mark.parametrize("key", ["num_hidden_groups", "inner_group_num"])
def test_several_different_layers_are_refused_saying_why(tmp_path, key):
    albert = random_plain_albert(seed=1, **{key: 2})
    folder = save_plain_albert(albert, tmp_path / "albert")
    with pytest.raises(CheckpointError, match=rf"{key}=2, but ALBERT-ACT repeats one shared layer"):
        load_hf_checkpoint(str(folder))


def test_initial_depth_out_of_range_is_refused(tmp_path):
    folder = save_plain_albert(random_plain_albert(seed=1), tmp_path / "albert")
    with pytest.raises(ValueError, match=r"initial_depth.*\[1, 4\]"):
        load_hf_checkpoint(str(folder), initial_depth=5)


def test_initial_depth_and_max_layers_are_refused_for_an_albert_act_checkpoint(reference_dir):
    tiny = str(reference_dir / "tiny_random")
    with pytest.raises(CheckpointError, match="initial_depth=3 applies to plain ALBERT"):
        load_hf_checkpoint(tiny, initial_depth=3)
    with pytest.raises(CheckpointError, match="max_layers=3 applies to plain ALBERT"):
        load_hf_checkpoint(tiny, max_layers=3)


def test_masked_lm_checkpoint_without_pooler_and_sop_head_warns_and_keeps_the_mlm_head(tmp_path):
    from transformers import AlbertForMaskedLM

    pretraining = random_plain_albert(pretraining=True, seed=2)
    masked_lm = AlbertForMaskedLM(pretraining.config).eval()
    masked_lm.load_state_dict(pretraining.state_dict(), strict=False)
    folder = tmp_path / "masked_lm"
    masked_lm.save_pretrained(folder)
    with pytest.warns(UserWarning) as caught:
        pretrainer = load_hf_checkpoint(str(folder), pretraining_heads=True)
    messages = " ".join(str(warning.message) for warning in caught)
    assert "no pooler (pooler.weight" in messages
    assert "no sentence-order head (sop_classifier" in messages
    bias = next(v for v in pretrainer.weights if v.path == "mlm_head/output_bias")
    np.testing.assert_allclose(bias.numpy(), masked_lm.predictions.bias.detach().numpy())


def test_cli_converts_a_plain_albert_with_its_initial_depth(tmp_path, capsys):
    folder = save_plain_albert(random_plain_albert(seed=4), tmp_path / "albert", "bin")
    out = tmp_path / "preset"
    assert convert_main([str(folder), str(out), "--initial-depth", "3", "--max-layers", "8"]) == 0
    assert "Converted" in capsys.readouterr().out
    import keras_act

    backbone = keras_act.AlbertActBackbone.from_preset(str(out))
    assert backbone.max_layers == 8
    np.testing.assert_array_equal(backbone(INPUTS)["updates"].numpy()[PADDING_MASK > 0], 3)


def test_cli_refuses_a_bad_initial_depth_in_one_line(tmp_path, capsys):
    folder = save_plain_albert(random_plain_albert(seed=4), tmp_path / "albert")
    with pytest.raises(SystemExit) as exit_info:
        convert_main([str(folder), str(tmp_path / "out"), "--initial-depth", "9"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "initial_depth" in err and "[1, 4]" in err


# === keras-hub AlbertBackbone ===


def keras_hub_albert(**overrides):
    import keras_hub

    keras.utils.set_random_seed(0)
    albert = keras_hub.models.AlbertBackbone(
        **{
            "vocabulary_size": 120,
            "num_layers": 4,
            "num_heads": 4,
            "embedding_dim": 16,
            "hidden_dim": 32,
            "intermediate_dim": 64,
            "max_sequence_length": 32,
            **overrides,
        }
    )
    for variable in albert.weights:  # biases and layer norms off 0 and 1
        variable.assign(variable.numpy() + 0.1 * np.random.default_rng(1).normal(size=variable.shape))
    return albert


@pytest.mark.parametrize("as_folder", [False, True])
def test_keras_hub_albert_object_or_preset_folder(tmp_path, as_folder):
    albert = keras_hub_albert()
    source = albert
    if as_folder:
        albert.save_to_preset(str(tmp_path / "preset"))
        source = str(tmp_path / "preset")
    backbone = from_keras_hub_albert(source, initial_depth=3)
    theirs = {variable.path: variable.numpy() for variable in albert.weights}
    for variable in backbone.weights:
        path = variable.path.replace("albert_act/transformer_block/", "group_0_inner_layer_0/")
        if "halting_dense" in path:
            continue
        np.testing.assert_array_equal(variable.numpy(), theirs.pop(path), err_msg=path)
    assert not theirs  # every keras-hub weight was used
    # The shared layer computes the same function in both models.
    hidden = np.random.default_rng(0).normal(size=(2, 8, 32)).astype("float32")
    ours = backbone.get_layer("albert_act").transformer_block(hidden, padding_mask=PADDING_MASK)
    layer = albert.get_layer("group_0_inner_layer_0")
    np.testing.assert_allclose(ours.numpy(), layer(hidden, padding_mask=PADDING_MASK).numpy(), atol=ATOL)
    np.testing.assert_array_equal(backbone(INPUTS)["updates"].numpy()[PADDING_MASK > 0], 3)


def test_keras_hub_albert_of_several_groups_is_refused():
    with pytest.raises(ValueError, match="num_groups=2, but ALBERT-ACT repeats one shared layer"):
        from_keras_hub_albert(keras_hub_albert(num_groups=2))


def test_keras_hub_folder_without_preset_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a keras-hub preset folder"):
        from_keras_hub_albert(str(tmp_path))


def test_cli_converts_a_keras_hub_preset_folder(tmp_path, capsys):
    albert = keras_hub_albert()
    albert.save_to_preset(str(tmp_path / "keras_hub"))
    out = tmp_path / "preset"
    assert convert_main([str(tmp_path / "keras_hub"), str(out), "--initial-depth", "2"]) == 0
    assert "keras-hub AlbertBackbone" in capsys.readouterr().out
    import keras_act

    backbone = keras_act.AlbertActBackbone.from_preset(str(out))
    np.testing.assert_array_equal(backbone(INPUTS)["updates"].numpy()[PADDING_MASK > 0], 2)
    theirs = {variable.path: variable.numpy() for variable in albert.weights}
    np.testing.assert_array_equal(
        backbone.get_layer("albert_act").transformer_block.weights[0].numpy(),
        theirs["group_0_inner_layer_0/self_attention_layer/query/kernel"],
    )
