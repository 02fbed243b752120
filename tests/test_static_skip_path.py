"""`AlbertAct`'s static-shape skip path (`skip_halted="static"`, XLA).

It must give the dense path's `updates` exactly and its outputs within 1e-5
on padded batches, under `jit_compile=True` with no dynamic shape in the
compiled program, and outside XLA too; `skip_halted=True` takes it under XLA.
"""

import re

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_act
from keras_act.layers.capacity_ladder import check_capacity_ladder, ladder_capacities
from tests.helpers import TINY_ACT_CONFIG as CONFIG
from tests.helpers import tiny_act_layer as make_layer

TOLERANCE = dict(atol=1e-5, rtol=1e-5)


def make_inputs(lengths=(10, 7, 3, 0), length=10, seed=0):
    rng = np.random.default_rng(seed)
    hidden = rng.normal(size=(len(lengths), length, CONFIG["hidden_dim"])).astype("float32")
    mask = (np.arange(length)[None, :] < np.array(lengths)[:, None]).astype("int32")
    return hidden, mask


def assert_same_result(static, dense, hidden, mask):
    np.testing.assert_array_equal(static["updates"], dense["updates"])
    np.testing.assert_allclose(static["sequence_output"], dense["sequence_output"], **TOLERANCE)
    for key in ("remainders", "halting_probability"):
        np.testing.assert_allclose(static[key], dense[key], err_msg=key, **TOLERANCE)
    # Padding (and the all-padding row) keeps its input state.
    np.testing.assert_array_equal(
        np.asarray(static["sequence_output"])[mask == 0], hidden[mask == 0]
    )


def xla_static(layer, **kwargs):
    return tf.function(
        lambda h, m: layer(h, padding_mask=m, skip_halted="static", **kwargs), jit_compile=True
    )


@pytest.mark.parametrize(
    "seed,halting_bias,ladder",
    [
        (0, -1.0, None),  # mixed depths, the default ladder
        (1, -2.5, (0.3, 1.0)),  # deeper, some tokens at the cap; a coarse ladder
        (3, -8.0, (1.0,)),  # no token halts: one full buffer
    ],
)
def test_static_path_equals_dense_path_under_xla(seed, halting_bias, ladder):
    overrides = {} if ladder is None else {"capacity_ladder": ladder}
    layer = make_layer(seed=seed, halting_bias=halting_bias, **overrides)
    hidden, mask = make_inputs(seed=seed)
    dense = layer(hidden, padding_mask=mask, skip_halted=False)
    assert_same_result(xla_static(layer)(hidden, mask), dense, hidden, mask)


@pytest.mark.parametrize("mode", ["eager", "tf.function"])
def test_static_path_outside_xla(mode):
    layer = make_layer()
    hidden, mask = make_inputs()
    call = lambda h, m: layer(h, padding_mask=m, skip_halted="static")  # noqa: E731
    if mode == "tf.function":
        call = tf.function(
            call,
            input_signature=[
                tf.TensorSpec([None, None, CONFIG["hidden_dim"]], tf.float32),
                tf.TensorSpec([None, None], tf.int32),
            ],
        )
    dense = layer(hidden, padding_mask=mask, skip_halted=False)
    assert_same_result(call(hidden, mask), dense, hidden, mask)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])  # ~40 s each
def test_static_path_in_mixed_precision_under_xla(policy):
    layer = make_layer(dtype=policy)
    hidden, mask = make_inputs()
    dense = layer(hidden, padding_mask=mask, skip_halted=False)
    static = xla_static(layer)(hidden, mask)
    assert static["sequence_output"].dtype == dense["sequence_output"].dtype
    np.testing.assert_array_equal(static["updates"], dense["updates"])
    # The tolerance of the dynamic skip path in half precision.
    np.testing.assert_allclose(
        np.asarray(static["sequence_output"], "float32"),
        np.asarray(dense["sequence_output"], "float32"),
        atol=1e-2 if policy == "mixed_float16" else 5e-2,
    )


def test_compiled_program_has_only_static_shapes():
    layer = make_layer()
    hidden, mask = make_inputs()
    hlo = xla_static(layer).experimental_get_compiler_ir(hidden, mask)(stage="hlo")
    shapes = re.findall(r"\b(?:f32|s32|pred|f16|bf16)\[[^\]]*\]", hlo)
    assert shapes
    # A bounded dimension prints as `<=n`, an unbounded one as `?`.
    assert not [shape for shape in shapes if "<=" in shape or "?" in shape]
    # One branch per capacity of the ladder (40 tokens: 5, 10, ..., 40 rows).
    assert "conditional" in hlo
    assert ladder_capacities(layer.capacity_ladder, 40) == [5, 10, 15, 20, 25, 30, 35, 40]
    assert "f32[5,32]" in hlo and "f32[35,32]" in hlo


def test_return_iterations_on_the_static_path():
    layer = make_layer()
    hidden, mask = make_inputs()
    dense = layer(hidden, padding_mask=mask, return_iterations=True, skip_halted=False)
    static = xla_static(layer, return_iterations=True)(hidden, mask)
    assert set(static) == set(dense)
    assert int(static["num_iterations"]) == int(dense["num_iterations"])
    np.testing.assert_array_equal(static["iteration_updates"], dense["iteration_updates"])
    for key in ("iteration_states", "iteration_update_weights", "iteration_remainders"):
        np.testing.assert_allclose(static[key], dense[key], err_msg=key, **TOLERANCE)


def test_true_takes_the_static_path_under_xla_and_dynamic_is_refused_there():
    layer = make_layer()
    hidden, mask = make_inputs()
    dense = layer(hidden, padding_mask=mask, skip_halted=False)
    xla_true = tf.function(lambda h, m: layer(h, padding_mask=m, skip_halted=True), jit_compile=True)
    assert_same_result(xla_true(hidden, mask), dense, hidden, mask)
    with pytest.raises(ValueError, match="dynamic.*XLA"):
        tf.function(lambda h: layer(h, skip_halted="dynamic"), jit_compile=True)(hidden)


def test_quantized_block_refuses_the_static_path():
    layer = make_layer()
    for sublayer in layer.transformer_block._flatten_layers():
        if isinstance(sublayer, keras.layers.EinsumDense):
            sublayer.quantize("int8")
    hidden, mask = make_inputs()
    with pytest.raises(ValueError, match="quantized"):
        layer(hidden, padding_mask=mask, skip_halted="static")


def test_capacity_ladder_config_round_trip_and_check():
    layer = make_layer(capacity_ladder=(1.0, 0.25, 0.5), skip_halted="static")
    config = layer.get_config()
    assert config["capacity_ladder"] == [0.25, 0.5, 1.0]
    assert config["skip_halted"] == "static"
    restored = keras_act.AlbertAct.from_config(config)
    assert restored.capacity_ladder == (0.25, 0.5, 1.0)
    assert restored.get_config() == config
    for bad in ((0.5,), (), (0.0, 1.0), (1.5, 1.0), "ab"):
        with pytest.raises(ValueError, match="capacity_ladder"):
            check_capacity_ladder(bad)
    with pytest.raises(ValueError, match="capacity_ladder"):
        keras_act.AlbertAct(**CONFIG, capacity_ladder=(0.5,))
