"""Exact parity with the authors' PyTorch ALBERT-ACT (../shared fixtures).

Every fixture folder, both input files and every weight format present are
imported through `keras_act.convert.load_hf_checkpoint`. On real tokens:
`updates` exactly equal, hidden states, pooler, per-iteration states and
pre-training logits within atol = rtol = 1e-5.

Deliberate difference: the reference lets padding run through the loop (it can
keep the loop going after every real token halted, see
`io_pad_extends_loop.npz`); we halt padding from the start. The tests below
check that real tokens are unaffected and that our loop stops at the largest
real depth.
"""

import functools

import keras
import numpy as np
import pytest

from keras_act.convert import load_hf_checkpoint
from tests.helpers import REFERENCE_DIR

TOLERANCE = dict(atol=1e-5, rtol=1e-5)
CASES = ("tiny_random", "small_mixed_depth", "base_shape")
INPUT_FILES = {
    "tiny_random": ("io.npz", "io_pad_extends_loop.npz"),
    "small_mixed_depth": ("io.npz", "io_pad_extends_loop.npz"),
    "base_shape": ("io.npz",),
}
WEIGHT_FILES = {
    "tiny_random": ("model.safetensors", "pytorch_model.bin", "tf_model.h5"),
    "small_mixed_depth": ("model.safetensors", "tf_model.h5"),
    "base_shape": ("model.safetensors",),
}
CASE_INPUTS = [(case, name) for case in CASES for name in INPUT_FILES[case]]
CASE_WEIGHTS = [(case, name) for case in CASES for name in WEIGHT_FILES[case]]


@pytest.fixture(autouse=True)
def _needs_reference(reference_dir):
    pass


@functools.cache
def load_model(case, weight_file="model.safetensors", heads=False):
    return load_hf_checkpoint(str(REFERENCE_DIR / case / weight_file), pretraining_heads=heads)


@functools.cache
def load_io(case, name):
    return dict(np.load(REFERENCE_DIR / case / name))


def backbone_inputs(io):
    return {
        "token_ids": io["input_ids"],
        "segment_ids": io["token_type_ids"],
        "padding_mask": io["attention_mask"],
    }


def assert_close_on_real(actual, expected, mask, what):
    actual = np.asarray(actual)
    np.testing.assert_allclose(actual[mask], expected[mask], err_msg=what, **TOLERANCE)


def test_every_fixture_is_covered():
    folders = {p.name for p in REFERENCE_DIR.iterdir() if p.is_dir()}
    assert folders == set(CASES)
    for case in CASES:
        present = {p.name for p in (REFERENCE_DIR / case).glob("io*.npz")}
        assert present == set(INPUT_FILES[case]), case
        weights = {
            p.name
            for p in (REFERENCE_DIR / case).iterdir()
            if p.name in ("model.safetensors", "pytorch_model.bin", "tf_model.h5")
        }
        assert weights == set(WEIGHT_FILES[case]), case


@pytest.mark.parametrize("case,input_file", CASE_INPUTS)
def test_backbone_outputs_match_reference(case, input_file):
    io = load_io(case, input_file)
    outputs = load_model(case)(backbone_inputs(io))
    mask = io["attention_mask"].astype(bool)

    np.testing.assert_array_equal(outputs["updates"].numpy(), io["updates"])
    assert_close_on_real(
        outputs["sequence_output"], io["last_hidden_state"], mask, "sequence_output"
    )
    np.testing.assert_allclose(
        outputs["pooled_output"].numpy(), io["pooler_output"], **TOLERANCE
    )
    # Remainders of real tokens are the reference's; 0 on padding.
    assert_close_on_real(outputs["remainders"], io["remainders"], mask, "remainders")
    np.testing.assert_array_equal(outputs["remainders"].numpy()[~mask], 0.0)


@pytest.mark.parametrize("case,weight_file", CASE_WEIGHTS)
def test_every_weight_format_gives_the_reference(case, weight_file):
    io = load_io(case, "io.npz")
    outputs = load_model(case, weight_file)(backbone_inputs(io))
    mask = io["attention_mask"].astype(bool)
    np.testing.assert_array_equal(outputs["updates"].numpy(), io["updates"])
    assert_close_on_real(
        outputs["sequence_output"], io["last_hidden_state"], mask, weight_file
    )
    np.testing.assert_allclose(
        outputs["pooled_output"].numpy(), io["pooler_output"], **TOLERANCE
    )


@pytest.mark.parametrize("case,weight_file", CASE_WEIGHTS)
def test_weight_formats_load_identical_variables(case, weight_file):
    reference = load_model(case)
    other = load_model(case, weight_file)
    for a, b in zip(reference.weights, other.weights, strict=True):
        assert a.path == b.path
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


@pytest.mark.parametrize("case,input_file", CASE_INPUTS)
def test_embeddings_and_projection_match_reference(case, input_file):
    io = load_io(case, input_file)
    backbone = load_model(case)
    probe = keras.Model(
        backbone.input,
        {
            "embedding_output": backbone.get_layer("embeddings_layer_norm").output,
            "encoder_input": backbone.get_layer("embedding_projection").output,
        },
    )
    outputs = probe(backbone_inputs(io))
    np.testing.assert_allclose(
        outputs["embedding_output"].numpy(), io["embedding_output"], **TOLERANCE
    )
    np.testing.assert_allclose(
        outputs["encoder_input"].numpy(), io["encoder_input_hidden"], **TOLERANCE
    )


@pytest.mark.parametrize("case,input_file", CASE_INPUTS)
def test_every_iteration_matches_reference(case, input_file):
    io = load_io(case, input_file)
    encoder = load_model(case).get_layer("albert_act")
    outputs = encoder(
        io["encoder_input_hidden"],
        padding_mask=io["attention_mask"],
        return_iterations=True,
    )
    mask = io["attention_mask"].astype(bool)
    num_iterations = int(outputs["num_iterations"])
    real_depth = int(io["updates"][mask].max())

    # Our loop stops at the largest depth of a real token.
    assert num_iterations == real_depth
    if input_file == "io.npz":
        assert num_iterations == int(io["num_iterations"])
    else:
        # The reference's padding kept its loop running for longer.
        assert num_iterations < int(io["num_iterations"])

    pairs = {
        "iteration_states": "iter_hidden_states",
        "iteration_halting_logits": "iter_halting_logits",
        "iteration_update_weights": "iter_update_weights",
        "iteration_halting_probability": "iter_halting_probability",
        "iteration_remainders": "iter_remainders",
    }
    for ours, theirs in pairs.items():
        actual = outputs[ours].numpy()[:num_iterations]
        expected = io[theirs][:num_iterations]
        for t in range(num_iterations):
            assert_close_on_real(actual[t], expected[t], mask, f"{ours}[{t}]")
    np.testing.assert_array_equal(
        outputs["iteration_updates"].numpy()[:num_iterations][:, mask],
        io["iter_n_updates"][:num_iterations][:, mask],
    )
    # Rows past the last iteration stay empty.
    assert not np.any(outputs["iteration_updates"].numpy()[num_iterations:])
    # Halting probability: exactly 1 for halted tokens, as the reference; the
    # plain sum of p for tokens stopped by the cap.
    ours = outputs["halting_probability"].numpy()[mask]
    theirs = io["halting_probability"][mask]
    halted = theirs == 1.0
    assert halted.any() and (~halted).any() == (real_depth == encoder.max_layers)
    np.testing.assert_array_equal(ours[halted], 1.0)
    np.testing.assert_allclose(ours[~halted], theirs[~halted], **TOLERANCE)


@pytest.mark.parametrize("case,input_file", CASE_INPUTS)
def test_padding_never_changes_real_tokens(case, input_file):
    """Each row alone, without padding, gives the batched result."""
    io = load_io(case, input_file)
    backbone = load_model(case)
    batched = backbone(backbone_inputs(io))
    for row, length in enumerate(io["attention_mask"].sum(axis=1)):
        alone = backbone(
            {key: value[row : row + 1, :length] for key, value in backbone_inputs(io).items()}
        )
        np.testing.assert_array_equal(
            alone["updates"].numpy()[0], batched["updates"].numpy()[row, :length]
        )
        np.testing.assert_allclose(
            alone["sequence_output"].numpy()[0],
            batched["sequence_output"].numpy()[row, :length],
            **TOLERANCE,
        )


@pytest.mark.parametrize("case,input_file", CASE_INPUTS)
def test_pretraining_heads_match_reference(case, input_file):
    io = load_io(case, input_file)
    pretrainer = load_model(case, heads=True)
    batch, length = io["input_ids"].shape
    inputs = backbone_inputs(io)
    inputs["mask_positions"] = np.tile(np.arange(length, dtype="int32"), (batch, 1))
    outputs = pretrainer(inputs)
    mask = io["attention_mask"].astype(bool)
    assert_close_on_real(outputs["mlm_logits"], io["prediction_logits"], mask, "mlm")
    np.testing.assert_allclose(outputs["sop_logits"].numpy(), io["sop_logits"], **TOLERANCE)
    np.testing.assert_array_equal(outputs["updates"].numpy(), io["updates"])


def test_pretraining_heads_tie_decoder_to_embeddings():
    pretrainer = load_model("tiny_random", heads=True)
    assert pretrainer.mlm_head.token_embedding is pretrainer.backbone.token_embedding
    # One embedding matrix only: the decoder has no weight of its own.
    embeddings = [w for w in pretrainer.weights if w.path.endswith("embeddings")]
    assert [w.path for w in embeddings].count("token_embedding/embeddings") == 1
