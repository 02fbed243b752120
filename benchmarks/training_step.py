"""Training benchmark: one pre-training step of `AlbertActPretrainer`, with and without XLA.

Masked LM on 15% of the positions, sentence order and the ponder cost; Adam;
a `tf.function` with `jit_compile=False` and `True`, on the `albert_act_tiny`
(cap 6) and `albert_act_base` (cap 24) presets. Training always takes the
dense path.
"""

import time

from benchmarks.harness import interleaved, progress, summary
from benchmarks.models import pretraining_setup

TRAINING_PRESETS = ("albert_act_tiny", "albert_act_base")


def training_step_function(pretrainer, jit_compile, num_predictions):
    """A `tf.function` of one Adam step on the MLM + SOP + ponder-cost loss.

    The function returns the loss and the batch's mean depth.
    """
    import keras
    import tensorflow as tf

    backbone = pretrainer.backbone
    optimizer = keras.optimizers.Adam(1e-5)
    optimizer.build(pretrainer.trainable_variables)

    def step(inputs, mlm_labels, sop_labels):
        with tf.GradientTape() as tape:
            outputs = pretrainer(inputs, training=True)
            mlm = keras.losses.sparse_categorical_crossentropy(
                mlm_labels, outputs["mlm_logits"], from_logits=True
            )
            sop = keras.losses.sparse_categorical_crossentropy(
                sop_labels, outputs["sop_logits"], from_logits=True
            )
            real = tf.cast(inputs["padding_mask"], "float32")
            ponder = tf.reduce_sum((outputs["updates"] + outputs["remainders"]) * real)
            loss = (
                tf.reduce_mean(mlm)
                + tf.reduce_mean(sop)
                + backbone.ponder_weight * ponder / tf.reduce_sum(real)
            )
        gradients = tape.gradient(loss, pretrainer.trainable_variables)
        optimizer.apply(gradients, pretrainer.trainable_variables)
        return loss, tf.reduce_sum(outputs["updates"]) / tf.reduce_sum(real)

    return tf.function(step, jit_compile=jit_compile)


def training_figures(geometry, batch, length, steps):
    """Tokens per second and first-call seconds of each preset, per compiler."""
    figures = {}
    for preset in TRAINING_PRESETS:
        pretrainer, args, num_predictions, max_layers = pretraining_setup(
            preset, geometry, batch, length
        )
        functions = {
            f"xla_{jit}": (training_step_function(pretrainer, jit, num_predictions), args)
            for jit in (False, True)
        }
        first = {}
        depth = None
        for name, (function, function_args) in functions.items():
            progress(f"training {preset}: first call (tracing, compiling) of {name}")
            start = time.perf_counter()
            _, depth = function(*function_args)
            first[name] = time.perf_counter() - start
        timed = interleaved(functions, steps, f"training {preset}")
        seconds = {k: summary(v) for k, v in timed.items()}
        tokens = batch * length
        figures[preset] = {
            "max_layers": max_layers,
            "batch": batch,
            "sequence_length": length,
            "mean_depth": float(depth),
            "first_call_seconds": {
                "no_xla": first["xla_False"],
                "xla": first["xla_True"],
            },
            "seconds": {"no_xla": seconds["xla_False"], "xla": seconds["xla_True"]},
            "tokens_per_second": {
                "no_xla": tokens / seconds["xla_False"]["best"],
                "xla": tokens / seconds["xla_True"]["best"],
            },
        }
    return figures
