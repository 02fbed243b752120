"""`AlbertAct`'s skip path: equal to the dense path, and when it is taken.

The skip path (`skip_halted=True`) runs the block only on tokens still
running. It must give the dense path's `updates` exactly and its outputs
within 1e-5 (padding included, on the reference fixtures too), in eager mode,
in `tf.function` and in exported SavedModels. Which path `skip_halted=None`
takes in each context: tests/test_automatic_path.py.
"""

import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_act
from keras_act.layers import albert_act as albert_act_module
from keras_act.layers.running_tokens import DenseProjection, RunningTokenBlock
from keras_act.layers.xla_context import inside_xla_context
from tests.helpers import REFERENCE_DIR
from tests.helpers import TINY_ACT_CONFIG as CONFIG
from tests.helpers import tiny_act_layer as make_layer

TOLERANCE = dict(atol=1e-5, rtol=1e-5)
ACCUMULATORS = ("updates", "remainders", "halting_probability")
# What `skip_halted=None` takes under XLA.
XLA_DEFAULT = "skip" if albert_act_module.STATIC_PATH_DIFFERENTIATES_UNDER_XLA else "dense"


def make_inputs(lengths=(10, 7, 3, 0), length=10, seed=0):
    rng = np.random.default_rng(seed)
    hidden = rng.normal(size=(len(lengths), length, CONFIG["hidden_dim"])).astype("float32")
    mask = (np.arange(length)[None, :] < np.array(lengths)[:, None]).astype("int32")
    return hidden, mask


def assert_same_result(skip, dense, mask):
    """`updates` exact; every other output within 1e-5 on every token."""
    np.testing.assert_array_equal(skip["updates"], dense["updates"])
    np.testing.assert_allclose(skip["sequence_output"], dense["sequence_output"], **TOLERANCE)
    for key in ("remainders", "halting_probability"):
        np.testing.assert_allclose(skip[key], dense[key], err_msg=key, **TOLERANCE)


@pytest.fixture
def path_spy(monkeypatch):
    """Records, per `AlbertAct` call (or trace), which path was taken."""
    taken = []
    original = albert_act_module.AlbertAct._resolve_skip_halted

    def spy(self, *args):
        skip = original(self, *args)
        taken.append("skip" if skip else "dense")
        return skip

    monkeypatch.setattr(albert_act_module.AlbertAct, "_resolve_skip_halted", spy)
    return taken


@pytest.mark.parametrize(
    "seed,halting_bias",
    [
        (0, -1.0),  # mixed depths
        (1, -2.5),  # deeper, some tokens stopped by the cap
        (2, 8.0),  # every token halts at its first update
        (3, -8.0),  # no token halts: every real token reaches the cap
    ],
)
@pytest.mark.parametrize("mode", ["eager", "tf.function"])
def test_skip_path_equals_dense_path(mode, seed, halting_bias):
    layer = make_layer(seed=seed, halting_bias=halting_bias)
    hidden, mask = make_inputs(seed=seed)
    dense = layer(hidden, padding_mask=mask, skip_halted=False)
    call = functools.partial(layer, skip_halted=True)
    if mode == "tf.function":
        call = tf.function(call)
    skip = call(hidden, padding_mask=mask)
    assert_same_result(skip, dense, mask)
    # Padding and the all-padding row are untouched.
    np.testing.assert_array_equal(skip["sequence_output"].numpy()[mask == 0], hidden[mask == 0])
    updates = dense["updates"].numpy()[mask == 1]
    assert updates.min() >= 1 and updates.max() <= CONFIG["max_layers"]


@pytest.mark.parametrize("mode", ["eager", "tf.function"])
@pytest.mark.parametrize("lengths", [(), (0, 0, 0)], ids=["empty_batch", "padding_only"])
@pytest.mark.parametrize("return_iterations", [False, True])
def test_skip_path_runs_no_iteration_as_the_dense_path(mode, lengths, return_iterations):
    # No token to run: the loop does not iterate. Eagerly this failed in
    # `TensorArray.concat()` of zero elements (an unrelated ConcatV2 error).
    layer = make_layer()
    hidden, mask = make_inputs(lengths=lengths)
    dense = layer(hidden, padding_mask=mask, skip_halted=False, return_iterations=return_iterations)
    for skip_halted in (True, False):
        call = functools.partial(layer, skip_halted=skip_halted, return_iterations=return_iterations)
        if mode == "tf.function":
            call = tf.function(call)  # (with return_iterations, both paths failed to trace)
        outputs = call(hidden, padding_mask=mask)
        assert set(outputs) == set(dense)
        for key in dense:
            np.testing.assert_array_equal(np.asarray(outputs[key]), np.asarray(dense[key]), err_msg=key)
        np.testing.assert_array_equal(outputs["sequence_output"], hidden)


@pytest.mark.parametrize("batch,length", [(1, 8), (1, 1), (2, 1)])
def test_skip_path_in_tf_function_with_static_shapes(batch, length):
    layer = make_layer()
    hidden, mask = make_inputs(lengths=(length,) * batch, length=length)
    dense = layer(hidden, padding_mask=mask, skip_halted=False)
    skip = tf.function(lambda h, m: layer(h, padding_mask=m, skip_halted=True))(hidden, mask)
    assert skip["sequence_output"].shape == hidden.shape
    assert_same_result(skip, dense, mask)


@pytest.mark.parametrize("batch", [1, 2])
def test_backbone_in_tf_function_with_static_batch_of_one(batch):
    keras.utils.set_random_seed(0)
    backbone = keras_act.AlbertActBackbone(
        vocabulary_size=50, embedding_dim=8, **CONFIG, max_sequence_length=16
    )
    inputs = {
        "token_ids": tf.constant(np.arange(batch * 16).reshape(batch, 16) % 50, tf.int32),
        "segment_ids": tf.zeros((batch, 16), tf.int32),
        "padding_mask": tf.ones((batch, 16), tf.int32),
    }
    signature = {key: tf.TensorSpec(value.shape, value.dtype) for key, value in inputs.items()}
    outputs = tf.function(backbone, input_signature=[signature])(inputs)
    # Training takes the dense path (no dropout in this backbone).
    dense = tf.function(lambda x: backbone(x, training=True), input_signature=[signature])
    expected = dense(inputs)
    np.testing.assert_array_equal(outputs["updates"], expected["updates"])
    np.testing.assert_allclose(outputs["sequence_output"], expected["sequence_output"], **TOLERANCE)


def test_skip_path_without_padding_mask_and_with_unknown_shapes():
    layer = make_layer()
    hidden, _ = make_inputs(lengths=(10, 10))
    call = tf.function(
        lambda h: layer(h, skip_halted=True),
        input_signature=[tf.TensorSpec([None, None, CONFIG["hidden_dim"]], tf.float32)],
    )
    dense = layer(hidden, skip_halted=False)
    assert_same_result(call(hidden), dense, None)
    # The same trace serves another batch and sequence length.
    other, _ = make_inputs(lengths=(4, 6, 1), length=6, seed=5)
    assert_same_result(call(other), layer(other, skip_halted=False), None)


def test_skip_path_runs_the_block_on_running_tokens_only(monkeypatch):
    """Rows through the feed-forward = the sum of the tokens' depths."""
    layer = make_layer(intermediate_dim=48)  # a kernel shape of its own
    hidden, mask = make_inputs()
    rows = []
    original = DenseProjection.__call__

    def counting(self, inputs):
        if self.kernel.shape == (CONFIG["hidden_dim"], 48):
            rows.append(int(inputs.shape[0]))
        return original(self, inputs)

    monkeypatch.setattr(DenseProjection, "__call__", counting)
    outputs = layer(hidden, padding_mask=mask, skip_halted=True)
    updates = outputs["updates"].numpy()
    # One call per iteration, with the tokens still running at it.
    assert rows == [int((updates > step).sum()) for step in range(int(updates.max()))]
    assert sum(rows) == updates.sum() < updates.max() * mask.sum()


def test_return_iterations_on_the_skip_path():
    layer = make_layer()
    hidden, mask = make_inputs()
    dense = layer(hidden, padding_mask=mask, return_iterations=True, skip_halted=False)
    skip = layer(hidden, padding_mask=mask, return_iterations=True, skip_halted=True)
    assert set(skip) == set(dense)
    assert int(skip["num_iterations"]) == int(dense["num_iterations"])
    np.testing.assert_array_equal(skip["iteration_updates"], dense["iteration_updates"])
    for key in (
        "iteration_states",
        "iteration_update_weights",
        "iteration_halting_probability",
        "iteration_remainders",
    ):
        np.testing.assert_allclose(skip[key], dense[key], err_msg=key, **TOLERANCE)
    # Halting logits exist only for tokens that ran at that iteration.
    steps = int(skip["num_iterations"])
    previous = np.concatenate(
        [np.zeros((1,) + mask.shape), dense["iteration_updates"].numpy()[: steps - 1]]
    )
    ran = dense["iteration_updates"].numpy()[:steps] > previous
    logits = skip["iteration_halting_logits"].numpy()[:steps]
    assert np.isnan(logits[~ran]).all() and ran.any() and (~ran).any()
    np.testing.assert_allclose(
        logits[ran], dense["iteration_halting_logits"].numpy()[:steps][ran], **TOLERANCE
    )


@pytest.mark.parametrize("mode", ["eager", "tf.function"])
def test_gradients_through_the_skip_path_equal_the_dense_path(mode):
    layer = make_layer()
    hidden, mask = make_inputs()
    hidden = tf.constant(hidden)

    def gradients(skip_halted):
        with tf.GradientTape() as tape:
            tape.watch(hidden)
            outputs = layer(hidden, padding_mask=mask, skip_halted=skip_halted)
            loss = tf.reduce_sum(outputs["sequence_output"] ** 2) + tf.reduce_sum(
                outputs["remainders"]
            )
        return tape.gradient(loss, [hidden] + layer.trainable_variables)

    if mode == "tf.function":
        gradients = tf.function(gradients)
    for dense, skip in zip(gradients(False), gradients(True), strict=True):
        assert skip is not None
        np.testing.assert_allclose(skip, dense, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("policy", ["mixed_float16", "float64"])
def test_skip_path_in_other_dtypes(policy):
    layer = make_layer(dtype=policy)
    hidden, mask = make_inputs()
    dense = layer(hidden, padding_mask=mask, skip_halted=False)
    skip = layer(hidden, padding_mask=mask, skip_halted=True)
    assert skip["sequence_output"].dtype == dense["sequence_output"].dtype
    assert skip["updates"].dtype == dense["updates"].dtype
    np.testing.assert_array_equal(skip["updates"], dense["updates"])
    # float64: Keras' attention (the dense path) itself has errors ~1e-8.
    atol = 1e-2 if policy == "mixed_float16" else 1e-7
    np.testing.assert_allclose(
        np.asarray(skip["sequence_output"], "float64"),
        np.asarray(dense["sequence_output"], "float64"),
        atol=atol,
    )


def test_default_rule(path_spy):
    layer = make_layer()
    hidden, mask = make_inputs()
    reference = layer(hidden, padding_mask=mask, skip_halted=False)
    assert path_spy.pop() == "dense"

    # Eager inference: skip.
    assert_same_result(layer(hidden, padding_mask=mask), reference, mask)
    assert path_spy.pop() == "skip"
    # `tf.function` without XLA: skip.
    assert_same_result(
        tf.function(lambda h, m: layer(h, padding_mask=m))(hidden, mask), reference, mask
    )
    assert path_spy.pop() == "skip"
    # Training: the data-dependent skip path too (the whole choice in each
    # context: tests/test_automatic_path.py).
    layer(hidden, padding_mask=mask, training=True)
    assert path_spy.pop() == "skip"
    # XLA: the dense path, or the static skip path once its backward pass
    # compiles with XLA.
    xla = tf.function(lambda h, m: layer(h, padding_mask=m), jit_compile=True)
    assert_same_result(xla(hidden, mask), reference, mask)
    assert path_spy.pop() == XLA_DEFAULT
    # Per-iteration analysis records every token's halting logits: dense.
    layer(hidden, padding_mask=mask, return_iterations=True)
    assert path_spy.pop() == "dense"
    # `training=False` is inference.
    layer(hidden, padding_mask=mask, training=False)
    assert path_spy.pop() == "skip"
    assert not path_spy


def test_constructor_default_and_call_override(path_spy):
    hidden, mask = make_inputs()
    layer = make_layer(skip_halted=False)
    layer(hidden, padding_mask=mask)
    layer(hidden, padding_mask=mask, skip_halted=True)
    layer(hidden, padding_mask=mask, return_iterations=True, skip_halted=True)
    assert path_spy == ["dense", "skip", "skip"]
    path_spy.clear()
    layer = make_layer(skip_halted=True)
    layer(hidden, padding_mask=mask)
    layer(hidden, padding_mask=mask, skip_halted=False)
    assert path_spy == ["skip", "dense"]


def test_keras_compile_jit_compile_takes_the_xla_default_path(path_spy):
    layer = make_layer()
    hidden, mask = make_inputs()
    inputs = keras.Input((None, CONFIG["hidden_dim"]))
    padding = keras.Input((None,), dtype="int32")
    model = keras.Model([inputs, padding], layer(inputs, padding_mask=padding)["updates"])
    path_spy.clear()
    model.compile(jit_compile=True)
    predicted = model.predict([hidden, mask], batch_size=len(mask), verbose=0)
    assert path_spy == [XLA_DEFAULT]
    model.compile(jit_compile=False)
    np.testing.assert_array_equal(
        model.predict([hidden, mask], batch_size=len(mask), verbose=0), predicted
    )
    assert path_spy == [XLA_DEFAULT, "skip"]


def test_exported_saved_model_runs_the_skip_path(tmp_path, path_spy):
    layer = make_layer()
    hidden, mask = make_inputs()
    archive = keras.export.ExportArchive()
    archive.track(layer)
    archive.add_endpoint(
        "serve",
        lambda h, m: layer(h, padding_mask=m),
        input_signature=[
            tf.TensorSpec([None, None, CONFIG["hidden_dim"]], tf.float32),
            tf.TensorSpec([None, None], tf.int32),
        ],
    )
    archive.write_out(str(tmp_path / "exported"), verbose=False)
    assert set(path_spy) == {"skip"}
    restored = tf.saved_model.load(str(tmp_path / "exported"))
    assert_same_result(
        restored.serve(hidden, mask), layer(hidden, padding_mask=mask, skip_halted=False), mask
    )


def test_explicit_dynamic_skip_under_xla_is_a_clear_error():
    layer = make_layer()
    hidden, mask = make_inputs()
    # Under XLA, `True` takes the static path (tests/test_static_skip_path.py);
    # the data-dependent one is refused there. (Both train outside XLA:
    # tests/test_dynamic_skip_training.py, tests/test_skip_path_training.py.)
    with pytest.raises(ValueError, match="XLA"):
        tf.function(lambda h: layer(h, skip_halted="dynamic"), jit_compile=True)(hidden)


@pytest.mark.parametrize("value", ["yes", 1, 0.0])
def test_bad_skip_halted_names_the_value(value):
    with pytest.raises(ValueError, match=f"skip_halted={value!r}"):
        keras_act.AlbertAct(**CONFIG, skip_halted=value)
    layer = make_layer()
    hidden, _ = make_inputs()
    with pytest.raises(ValueError, match=f"skip_halted={value!r}"):
        layer(hidden, skip_halted=value)


@pytest.mark.parametrize("skip_halted", [None, True, False])
def test_config_round_trip(skip_halted):
    layer = make_layer(skip_halted=skip_halted)
    config = layer.get_config()
    assert config["skip_halted"] is skip_halted
    restored = keras_act.AlbertAct.from_config(config)
    assert restored.skip_halted is skip_halted
    assert restored.get_config() == config


def test_skip_path_creates_no_variables():
    layer = make_layer()
    before = [w.path for w in layer.weights]
    hidden, mask = make_inputs()
    layer(hidden, padding_mask=mask, skip_halted=True)
    tf.function(lambda h, m: layer(h, padding_mask=m, skip_halted=True))(hidden, mask)
    assert [w.path for w in layer.weights] == before
    RunningTokenBlock(layer.transformer_block, layer.hidden_dim)
    assert [w.path for w in layer.weights] == before


def test_inside_xla_context():
    assert not inside_xla_context()
    assert not tf.function(inside_xla_context)()
    assert tf.function(lambda: tf.constant(inside_xla_context()), jit_compile=True)()


# === The authors' reference fixtures (../shared) ===

CASE_INPUTS = [
    ("tiny_random", "io.npz"),
    ("tiny_random", "io_pad_extends_loop.npz"),
    ("small_mixed_depth", "io.npz"),
    ("small_mixed_depth", "io_pad_extends_loop.npz"),
    ("base_shape", "io.npz"),
]


@functools.cache
def load_encoder(case):
    from keras_act.convert import load_hf_checkpoint

    backbone = load_hf_checkpoint(str(REFERENCE_DIR / case / "model.safetensors"))
    return backbone.get_layer("albert_act")


@pytest.mark.parametrize("case,input_file", CASE_INPUTS)
@pytest.mark.parametrize("mode", ["eager", "tf.function"])
def test_both_paths_match_the_reference(reference_dir, case, input_file, mode):
    io = dict(np.load(reference_dir / case / input_file))
    encoder = load_encoder(case)
    mask = io["attention_mask"].astype(bool)
    for skip_halted in (True, False):
        call = functools.partial(encoder, skip_halted=skip_halted)
        if mode == "tf.function":
            call = tf.function(call)
        outputs = call(io["encoder_input_hidden"], padding_mask=io["attention_mask"])
        np.testing.assert_array_equal(outputs["updates"].numpy(), io["updates"])
        np.testing.assert_allclose(
            outputs["sequence_output"].numpy()[mask],
            io["last_hidden_state"][mask],
            err_msg=f"skip_halted={skip_halted}",
            **TOLERANCE,
        )
        np.testing.assert_allclose(
            outputs["remainders"].numpy()[mask], io["remainders"][mask], **TOLERANCE
        )
