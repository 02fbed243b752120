"""Training benchmark: one pre-training step (forward, backward, LAMB update) per path and compiler.

`AlbertActPretrainer` of the `albert_act_base` preset (cap 24, the halting
unit rescaled as for inference): masked LM on 15% of the positions, sentence
order and the ponder cost, `keras.optimizers.Lamb`, one `tf.function` with
`jit_compile=False` and one with `True`, for the dense loop
(`skip_halted=False`), the skip path (`True`: the data-dependent gather
outside XLA, the static ladder under XLA) and the default (`None`). Every
variant starts from the same weights; the first step's loss of each is
checked against the dense loop's. A variant that cannot run reports
"unavailable: <reason>".
"""

from benchmarks.harness import first_calls, progress, timed_summaries
from benchmarks.models import pretraining_setup

TRAINING_PRESET = "albert_act_base"
# name: skip_halted of each path of the training step.
TRAINING_PATHS = {"dense": False, "skip": True, "default": None}
COMPILERS = {"no_xla": False, "xla": True}


def training_step_function(pretrainer, jit_compile):
    """A `tf.function` of one LAMB step on the MLM + SOP + ponder-cost loss.

    The function returns the loss and the batch's mean depth.
    """
    import keras
    import tensorflow as tf

    backbone = pretrainer.backbone
    optimizer = keras.optimizers.Lamb(1e-5)
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


def variant_name(path, compiler):
    """`"dense_no_xla"`, `"skip_xla"`, ...

    >>> variant_name("skip", "xla")
    'skip_xla'
    """
    return f"{path}_{compiler}"


def training_figures(geometry, batch, length, steps):
    """Tokens per second, first-call seconds and first loss of each path and compiler."""
    functions = {}
    for path, skip in TRAINING_PATHS.items():
        for compiler, jit in COMPILERS.items():
            pretrainer, args, _, max_layers = pretraining_setup(
                TRAINING_PRESET, geometry, batch, length, skip_halted=skip
            )
            functions[variant_name(path, compiler)] = (
                training_step_function(pretrainer, jit),
                args,
            )
    label = f"training {TRAINING_PRESET}"
    progress(f"{label}: {len(functions)} variants, batch {batch}x{length}")
    working, outputs, first, reasons = first_calls(functions, label)
    seconds = timed_summaries(working, steps, label, warm_up=False)
    tokens = batch * length
    first_loss = {name: float(result[0]) for name, result in outputs.items()}
    mean_depth = {name: float(result[1]) for name, result in outputs.items()}
    figures = {
        "preset": TRAINING_PRESET,
        "optimizer": "keras.optimizers.Lamb",
        "max_layers": max_layers,
        "batch": batch,
        "sequence_length": length,
        "mean_depth": mean_depth,
        "first_step_loss": first_loss,
        "first_call_seconds": first,
        "seconds": seconds,
        "tokens_per_second": {k: tokens / v["best"] for k, v in seconds.items()},
        "tokens_per_second_median": {k: tokens / v["median"] for k, v in seconds.items()},
        "unavailable": reasons,
    }
    checks = {}
    for compiler in COMPILERS:
        dense = first_loss.get(variant_name("dense", compiler))
        for path in ("skip", "default"):
            name = variant_name(path, compiler)
            if dense is not None and name in first_loss:
                checks[name] = {
                    "first_loss_relative_difference_vs_dense": abs(first_loss[name] - dense)
                    / abs(dense),
                    "mean_depth_equal_dense": mean_depth[name]
                    == mean_depth[variant_name("dense", compiler)],
                }
    figures["checks"] = checks

    def speedup(path, compiler, statistic="best"):
        fast, slow = variant_name(path, compiler), variant_name("dense", compiler)
        if fast not in seconds or slow not in seconds:
            return None
        return seconds[slow][statistic] / seconds[fast][statistic]

    figures["ratios"] = {
        f"{path}_over_dense_{compiler}{suffix}": speedup(path, compiler, statistic)
        for path in ("skip", "default")
        for compiler in COMPILERS
        for suffix, statistic in (("", "best"), ("_median", "median"))
    }
    return figures
