"""The models and inputs the benchmarks time: ALBERT-ACT and keras-hub's ALBERT.

(Hugging Face's PyTorch ALBERT is timed in its own process:
`benchmarks/pytorch_reference.py`.)

All models have random weights (nothing can be downloaded); the halting unit
of ALBERT-ACT is rescaled so that the depths spread as the paper's base
model's (see `set_halting`).
"""

SEED = 0

GEOMETRY_FIELDS = (
    "vocabulary_size",
    "embedding_dim",
    "hidden_dim",
    "num_heads",
    "intermediate_dim",
    "max_sequence_length",
)
# ALBERT-base geometry, as issue 7 asks (and as the paper's three models).
BASE_GEOMETRY = dict(zip(GEOMETRY_FIELDS, (30000, 128, 768, 12, 3072, 512), strict=True))
# A tiny model, for the test suite's smoke run only (its figures mean nothing).
SMOKE_GEOMETRY = dict(zip(GEOMETRY_FIELDS, (500, 16, 64, 4, 128, 64), strict=True))
# A small backbone (hidden size 32, at most 6 layers) for quick serving runs;
# `vocabulary_size` comes from the tokenizer.
SMALL_SERVING_CONFIG = dict(
    embedding_dim=16, hidden_dim=32, num_heads=4, intermediate_dim=64, max_layers=6
)
MAX_LAYERS = 24  # the cap of albert_act_base
# The halting unit of a freshly initialised model, rescaled so that the mean
# depth is about 10 with a few tokens at the cap of 24 (as the paper's base
# model): kernel x 1.5 (std 0.03) and bias -1.8 give a mean of 10.4 and 2% of
# the tokens at the cap on the full-mode batch (the run reports the depths).
HALTING_KERNEL_SCALE = 1.5
HALTING_BIAS = -1.8
MASKED_FRACTION = 0.15


def set_halting(backbone):
    """Rescales the halting unit so that depths spread around 10 (see above)."""
    halting = backbone.get_layer("albert_act").halting_dense
    halting.kernel.assign(halting.kernel * HALTING_KERNEL_SCALE)
    halting.bias.assign([HALTING_BIAS])


def act_backbone(geometry, max_layers, skip_halted=None, ponder_weight=2.5e-4, dtype=None):
    """An `AlbertActBackbone` of `geometry` (seed `SEED`), halting rescaled.

    Every backbone built here has the same weights (same seed), whatever
    its path or dtype policy. `skip_halted` is set on the `AlbertAct`
    layer as an attribute, not checked here: a value the layer does not
    know (yet) fails at the first call, which the benchmarks report as
    "unavailable".
    """
    import keras

    import keras_act

    keras.utils.set_random_seed(SEED)
    backbone = keras_act.AlbertActBackbone(
        **geometry, max_layers=max_layers, ponder_weight=ponder_weight, dtype=dtype
    )
    set_halting(backbone)
    backbone.get_layer("albert_act").skip_halted = skip_halted
    return backbone


def capacity_ladder(backbone):
    """The static path's ladder of capacities (fractions), or None if the layer has none."""
    ladder = getattr(backbone.get_layer("albert_act"), "capacity_ladder", None)
    return None if ladder is None else [float(f) for f in ladder]


def keras_hub_backbone(geometry, num_layers):
    """keras-hub's `AlbertBackbone` of `geometry` with `num_layers` layers."""
    import keras
    from keras_hub.models import AlbertBackbone

    keras.utils.set_random_seed(SEED)
    return AlbertBackbone(**geometry, num_layers=num_layers)


def token_inputs(batch, length, vocabulary_size, seed=SEED):
    """Random token ids, one segment, no padding: the backbone's input dict."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    token_ids = rng.integers(5, vocabulary_size, size=(batch, length))
    return {
        "token_ids": tf.constant(token_ids, tf.int32),
        "segment_ids": tf.zeros((batch, length), tf.int32),
        "padding_mask": tf.ones((batch, length), tf.int32),
    }


def forward_function(backbone, inputs, jit_compile=False):
    """A `tf.function` of the backbone: `{"sequence_output", "updates"}` (float32).

    keras-hub's backbones have no `updates`: theirs is the sequence output only.
    """
    import tensorflow as tf

    signature = {k: tf.TensorSpec(v.shape, v.dtype) for k, v in inputs.items()}

    def forward(x):
        outputs = backbone(x)
        result = {"sequence_output": tf.cast(outputs["sequence_output"], "float32")}
        if "updates" in outputs:
            result["updates"] = tf.cast(outputs["updates"], "float32")
        return result

    return tf.function(forward, input_signature=[signature], jit_compile=jit_compile)


def pretraining_setup(preset, geometry, batch, length, skip_halted=None):
    """An `AlbertActPretrainer` of `preset` in `geometry` and one random batch.

    `skip_halted` is set on its `AlbertAct` layer (as in `act_backbone`).

    Returns:
        `(pretrainer, (inputs, mlm_labels, sop_labels), num_predictions,
        max_layers)`: `MASKED_FRACTION` of the positions are predicted.
    """
    import keras
    import numpy as np
    import tensorflow as tf

    import keras_act

    config = keras_act.AlbertActBackbone.architecture_presets()[preset]
    config.update(geometry)
    keras.utils.set_random_seed(SEED)
    backbone = keras_act.AlbertActBackbone(**config)
    set_halting(backbone)
    backbone.get_layer("albert_act").skip_halted = skip_halted
    pretrainer = keras_act.AlbertActPretrainer(backbone)
    num_predictions = max(1, round(MASKED_FRACTION * length))
    rng = np.random.default_rng(SEED)
    inputs = token_inputs(batch, length, config["vocabulary_size"])
    positions = np.sort(
        np.stack([rng.choice(length, num_predictions, replace=False) for _ in range(batch)]),
        axis=1,
    )
    inputs["mask_positions"] = tf.constant(positions, tf.int32)
    labels = tf.constant(
        rng.integers(5, config["vocabulary_size"], (batch, num_predictions)), tf.int32
    )
    sop = tf.constant(rng.integers(0, 2, (batch,)), tf.int32)
    return pretrainer, (inputs, labels, sop), num_predictions, config["max_layers"]
