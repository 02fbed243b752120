"""ALBERT-ACT's skip path against its dense path and keras-hub's ALBERT (issue 7).

    python benchmarks/run.py [--quick] [--json PATH | --regenerate]

Prints a table and writes every figure to JSON: `runs/benchmarks/results.json`
by default (not in git), `--json PATH` elsewhere; `--regenerate` replaces the
committed `benchmarks/results.json` (full runs only), whose figures
`benchmarks/RESULTS.md` and the README quote. Progress (each phase, each
timed round, each workload) goes to stderr. All timings are taken in this process, in one run, with the
variants timed in interleaved rounds (so a noisy neighbour slows all of them
alike); every target is a ratio of two figures of the same run. Peak RSS is
measured in one fresh child process per workload, from the child's own
`/proc/self/status`. `--quick` takes fewer rounds and a smaller training batch;
`--smoke` (for the test suite only) also shrinks the model, so its figures
mean nothing. See `benchmarks/README.md` for what each figure is.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_JSON = REPO / "runs" / "benchmarks" / "results.json"
COMMITTED_JSON = REPO / "benchmarks" / "results.json"
_START = time.perf_counter()


def progress(message):
    """One line of progress on stderr, with the seconds since the start."""
    print(f"[{time.perf_counter() - _START:.0f} s] {message}", file=sys.stderr, flush=True)
sys.path.insert(0, str(REPO))
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# ALBERT-base geometry, as the issue asks (and as the paper's three models).
BASE_GEOMETRY = dict(
    vocabulary_size=30000,
    embedding_dim=128,
    hidden_dim=768,
    num_heads=12,
    intermediate_dim=3072,
    max_sequence_length=512,
)
SMOKE_GEOMETRY = dict(
    vocabulary_size=500,
    embedding_dim=16,
    hidden_dim=64,
    num_heads=4,
    intermediate_dim=128,
    max_sequence_length=64,
)
MODES = {
    "full": dict(
        geometry=BASE_GEOMETRY,
        inference=((8, 128, 7), (1, 128, 15)),  # batch, sequence, rounds
        matmul_size=2048,
        training_batch=(8, 128),
        training_steps=2,
    ),
    "quick": dict(
        geometry=BASE_GEOMETRY,
        inference=((8, 128, 3), (1, 128, 4)),
        matmul_size=2048,
        training_batch=(2, 64),
        training_steps=1,
    ),
    "smoke": dict(
        geometry=SMOKE_GEOMETRY,
        inference=((8, 32, 2), (1, 32, 2)),
        matmul_size=512,
        training_batch=(2, 32),
        training_steps=1,
    ),
}
MAX_LAYERS = 24  # the cap of albert_act_base
# The halting unit of a freshly initialised model, rescaled so that the mean
# depth is about 10 with a few tokens at the cap of 24 (as the paper's base
# model): kernel x 1.5 (std 0.03) and bias -1.8 give a mean of 10.4 and 2% of
# the tokens at the cap on the full-mode batch (the run reports the depths).
HALTING_KERNEL_SCALE = 1.5
HALTING_BIAS = -1.8
SEED = 0
TRAINING_PRESETS = ("albert_act_tiny", "albert_act_base")
MASKED_FRACTION = 0.15

# Judged on the ratios of the first inference batch (8x128 but in --smoke).
TARGETS = (
    # name, ratio, comparison, threshold
    ("skip / dense tokens/s", "skip_over_dense", ">=", 1.8),
    ("skip / keras-hub 12 layers tokens/s", "skip_over_keras_hub_12", ">=", 1.1),
    ("dense / keras-hub 24 layers time per block", "dense_over_keras_hub_per_block", "<=", 1.1),
    ("skip useful GFLOP/s / matmul peak", "skip_useful_over_peak", ">=", 0.45),
)


# === Models and inputs ===


def set_halting(backbone):
    """Rescales the halting unit so that depths spread around 10 (see above)."""
    halting = backbone.get_layer("albert_act").halting_dense
    halting.kernel.assign(halting.kernel * HALTING_KERNEL_SCALE)
    halting.bias.assign([HALTING_BIAS])


def act_backbone(geometry, max_layers, skip_halted=None, ponder_weight=2.5e-4):
    import keras

    import keras_act

    keras.utils.set_random_seed(SEED)
    backbone = keras_act.AlbertActBackbone(
        **geometry, max_layers=max_layers, ponder_weight=ponder_weight
    )
    set_halting(backbone)
    backbone.get_layer("albert_act").skip_halted = skip_halted
    return backbone


def keras_hub_backbone(geometry, num_layers):
    import keras
    from keras_hub.models import AlbertBackbone

    keras.utils.set_random_seed(SEED)
    return AlbertBackbone(**geometry, num_layers=num_layers)


def token_inputs(batch, length, vocabulary_size, seed=SEED):
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    token_ids = rng.integers(5, vocabulary_size, size=(batch, length))
    return {
        "token_ids": tf.constant(token_ids, tf.int32),
        "segment_ids": tf.zeros((batch, length), tf.int32),
        "padding_mask": tf.ones((batch, length), tf.int32),
    }


def forward_function(backbone, inputs):
    """A `tf.function` (no XLA) of the backbone's `sequence_output`."""
    import tensorflow as tf

    signature = {k: tf.TensorSpec(v.shape, v.dtype) for k, v in inputs.items()}
    return tf.function(lambda x: backbone(x)["sequence_output"], input_signature=[signature])


# === FLOPs (a multiply-add is 2 FLOPs) ===


def projection_flops(hidden, intermediate):
    """FLOPs of one token through Q, K, V, output projection and feed-forward."""
    return 2 * (4 * hidden * hidden + 2 * hidden * intermediate)


def block_flops(hidden, intermediate, length):
    """FLOPs of one block application to one token in a row of `length` tokens."""
    return projection_flops(hidden, intermediate) + 4 * length * hidden


# === Timing ===


def run_once(function, *args):
    import tensorflow as tf

    start = time.perf_counter()
    tf.nest.map_structure(lambda t: t.numpy(), function(*args))
    return time.perf_counter() - start


def interleaved(functions, rounds, label=""):
    """Seconds per call of each `name: (function, args)`, over interleaved rounds."""
    for name, (function, args) in functions.items():  # trace, warm caches
        progress(f"{label}: tracing and first call of {name}")
        run_once(function, *args)
    seconds = {name: [] for name in functions}
    for index in range(rounds):
        for name, (function, args) in functions.items():
            seconds[name].append(run_once(function, *args))
        progress(f"{label}: round {index + 1}/{rounds} timed")
    return seconds


def summary(samples):
    import numpy as np

    return {"best": min(samples), "median": float(np.median(samples)), "samples": samples}


# === Figures ===


def matmul_peak_function(size):
    """Four chained `size`^3 float32 matmuls; returns (function, args, flops)."""
    import tensorflow as tf

    a = tf.random.stateless_normal((size, size), seed=(1, 2)) / size**0.5

    @tf.function
    def chain(x):
        for _ in range(4):
            x = tf.matmul(x, a)
        return x[0, 0]

    return chain, (a,), 4 * 2 * size**3


def matmul_floor_function(counts, changed, hidden, intermediate):
    """Only the matmuls of the projections at the given token counts.

    `counts[t]` tokens get Q, output projection and feed-forward at iteration
    t and `changed[t]` tokens new keys and values: what the skip path
    multiplies, without its gathers, scatters, attention, layer norms and
    halting. Returns `(function, args)`; the weights and tokens are
    arguments, so that nothing can be constant-folded.
    """
    import tensorflow as tf

    shapes = (
        (hidden, hidden),
        (hidden, 2 * hidden),
        (hidden, hidden),
        (hidden, intermediate),
        (intermediate, hidden),
        (max(changed), hidden),
    )
    args = (
        tuple(  # values of order 1 all the way (no denormals)
            tf.random.stateless_normal(shape, seed=(seed, 0)) / shape[0] ** 0.5
            for seed, shape in enumerate(shapes[:-1])
        )
        + (tf.random.stateless_normal(shapes[-1], seed=(9, 0)),)
    )

    @tf.function
    def floor(q, kv, o, up, down, tokens):
        # Each iteration feeds the next, so that no two are the same
        # computation (Grappler would merge them); one scalar rescale per
        # iteration keeps the values of order 1.
        x = tokens
        for running, fresh in zip(counts, changed, strict=True):
            key_values = tf.matmul(x[:fresh], kv)
            y = tf.matmul(tf.matmul(x[:running], q), o)
            y = tf.matmul(tf.nn.gelu(tf.matmul(y, up), approximate=True), down)
            y += key_values[:running, :hidden]
            x = y * tf.math.rsqrt(tf.reduce_mean(tf.square(y)) + 1e-6)
        return tf.reduce_sum(x)

    return floor, args


def ffn_functions(backbone, batch, length, repeats=5):
    """AlbertBlock's `hidden -> intermediate` EinsumDense vs the same 2-D matmul."""
    import tensorflow as tf

    dense = backbone.get_layer("albert_act").transformer_block._feedforward_intermediate_dense
    hidden = dense.kernel.shape[0]
    x = tf.random.stateless_normal((batch, length, hidden), seed=(7, 0))

    @tf.function
    def einsum_dense(x):
        return tf.add_n([tf.reduce_sum(dense(x + float(i))[:, :1]) for i in range(repeats)])

    @tf.function
    def matmul(x):
        flat = tf.reshape(x, [-1, hidden])
        outputs = [
            dense.activation(tf.matmul(flat + float(i), dense.kernel) + dense.bias)
            for i in range(repeats)
        ]
        return tf.add_n([tf.reduce_sum(y[:1]) for y in outputs])

    flops = repeats * 2 * batch * length * hidden * dense.kernel.shape[1]
    return {"ffn_einsum_dense": (einsum_dense, (x,)), "ffn_matmul": (matmul, (x,))}, flops


def with_matmul_feedforward(backbone):
    """Profiling only: the backbone's block with its feed-forward as 2-D matmuls.

    Overrides the `call` of this one `AlbertBlock` instance (nothing in
    keras_act changes) so that the two feed-forward `EinsumDense` layers run
    as `reshape -> tf.matmul -> reshape`: the same weights and math. It
    measures how much of the dense path's gap to keras-hub comes from
    TensorFlow's `Einsum` kernel.
    """
    import keras
    import tensorflow as tf

    block = backbone.get_layer("albert_act").transformer_block

    def matmul(layer, x):
        kernel = layer.kernel
        y = layer.activation(tf.matmul(tf.reshape(x, [-1, kernel.shape[0]]), kernel) + layer.bias)
        return tf.reshape(y, tf.concat([tf.shape(x)[:-1], [kernel.shape[1]]], 0))

    def call(inputs, padding_mask=None, training=None):
        mask = keras.ops.cast(padding_mask, "int32")[:, None, :]
        x = block._self_attention_layer(
            query=inputs, value=inputs, attention_mask=mask, training=training
        )
        x = block._self_attention_layer_norm(x + inputs)
        y = matmul(
            block._feedforward_output_dense, matmul(block._feedforward_intermediate_dense, x)
        )
        return block._feedforward_layer_norm(y + x)

    block.call = call
    return backbone


def depth_statistics(backbone, inputs, max_layers):
    """Depth figures of the batch, and the per-iteration token counts."""
    import keras
    import numpy as np

    encoder = backbone.get_layer("albert_act")
    embedded = backbone.get_layer("embedding_projection")
    probe = keras.Model(backbone.input, embedded.output)
    outputs = encoder(probe(inputs), padding_mask=inputs["padding_mask"], return_iterations=True)
    updates = outputs["updates"].numpy()
    iterations = int(outputs["num_iterations"])
    counts = [int((updates > t).sum()) for t in range(iterations)]
    return {
        "mean": float(updates.mean()),
        "min": int(updates.min()),
        "max": int(updates.max()),
        "fraction_at_cap": float((updates == max_layers).mean()),
        "iterations": iterations,
        "token_updates": int(updates.sum()),
        "histogram": np.bincount(updates.astype(int).ravel(), minlength=max_layers + 1).tolist(),
    }, counts


def inference_figures(geometry, batch, length, rounds, with_peak_and_profile, matmul_size):
    import numpy as np

    inputs = token_inputs(batch, length, geometry["vocabulary_size"])
    dense = act_backbone(geometry, MAX_LAYERS, skip_halted=False)
    skip = act_backbone(geometry, MAX_LAYERS, skip_halted=True)
    keras_hub = {n: keras_hub_backbone(geometry, n) for n in (12, 24)}
    depth, counts = depth_statistics(dense, inputs, MAX_LAYERS)
    # Same weights, same inputs: the two paths must agree before timing.
    a, b = dense(inputs), skip(inputs)
    np.testing.assert_array_equal(a["updates"], b["updates"])
    max_difference = float(np.abs(a["sequence_output"] - b["sequence_output"]).max())

    functions = {
        "act_dense": (forward_function(dense, inputs), (inputs,)),
        "act_skip": (forward_function(skip, inputs), (inputs,)),
        "keras_hub_12": (forward_function(keras_hub[12], inputs), (inputs,)),
        "keras_hub_24": (forward_function(keras_hub[24], inputs), (inputs,)),
    }
    hidden, intermediate = geometry["hidden_dim"], geometry["intermediate_dim"]
    if with_peak_and_profile:
        peak, peak_args, peak_flops = matmul_peak_function(matmul_size)
        functions["matmul_peak"] = (peak, peak_args)
        changed = [batch * length] + counts[:-1]
        functions["skip_matmul_floor"] = matmul_floor_function(
            counts, changed, hidden, intermediate
        )
        functions["keras_hub_12_matmul_floor"] = matmul_floor_function(
            [batch * length] * 12, [batch * length] * 12, hidden, intermediate
        )
        ffn, ffn_flops = ffn_functions(dense, batch, length)
        functions.update(ffn)
        patched = with_matmul_feedforward(act_backbone(geometry, MAX_LAYERS, skip_halted=False))
        np.testing.assert_array_equal(patched(inputs)["updates"], a["updates"])
        functions["act_dense_matmul_feedforward"] = (forward_function(patched, inputs), (inputs,))
    label = f"inference {batch}x{length}"
    seconds = {k: summary(v) for k, v in interleaved(functions, rounds, label).items()}

    tokens = batch * length
    best = {k: v["best"] for k, v in seconds.items()}
    median = {k: v["median"] for k, v in seconds.items()}
    useful_flops = depth["token_updates"] * block_flops(hidden, intermediate, length)
    models = ("act_dense", "act_skip", "keras_hub_12", "keras_hub_24")
    figures = {
        "batch": batch,
        "sequence_length": length,
        "depth": depth,
        "max_abs_difference_skip_vs_dense": max_difference,
        "seconds": seconds,
        "tokens_per_second": {k: tokens / best[k] for k in models},
        "tokens_per_second_median": {k: tokens / median[k] for k in models},
        "ms_per_block_application": {
            "act_dense": 1e3 * best["act_dense"] / depth["iterations"],
            "keras_hub_12": 1e3 * best["keras_hub_12"] / 12,
            "keras_hub_24": 1e3 * best["keras_hub_24"] / 24,
        },
        "useful_gflop": useful_flops / 1e9,
        "useful_gflops": {
            "act_skip": useful_flops / best["act_skip"] / 1e9,
            "act_dense": useful_flops / best["act_dense"] / 1e9,
        },
    }
    ratios = {
        "skip_over_dense": best["act_dense"] / best["act_skip"],
        "skip_over_keras_hub_12": best["keras_hub_12"] / best["act_skip"],
        "skip_over_keras_hub_24": best["keras_hub_24"] / best["act_skip"],
        "dense_over_keras_hub_per_block": (best["act_dense"] / depth["iterations"])
        / (best["keras_hub_24"] / 24),
        "skip_over_dense_median": median["act_dense"] / median["act_skip"],
        "skip_over_keras_hub_12_median": median["keras_hub_12"] / median["act_skip"],
    }
    if with_peak_and_profile:
        figures["matmul_peak_gflops"] = peak_flops / best["matmul_peak"] / 1e9
        ratios["skip_useful_over_peak"] = (
            figures["useful_gflops"]["act_skip"] / figures["matmul_peak_gflops"]
        )
        figures["profile"] = {
            "ffn_einsum_dense_gflops": ffn_flops / best["ffn_einsum_dense"] / 1e9,
            "ffn_matmul_gflops": ffn_flops / best["ffn_matmul"] / 1e9,
            "skip_over_its_matmul_floor": best["act_skip"] / best["skip_matmul_floor"],
            "keras_hub_12_over_its_matmul_floor": best["keras_hub_12"]
            / best["keras_hub_12_matmul_floor"],
            "dense_matmul_feedforward_over_keras_hub_per_block": (
                best["act_dense_matmul_feedforward"] / depth["iterations"]
            )
            / (best["keras_hub_24"] / 24),
            "running_tokens_per_iteration": counts,
        }
    figures["ratios"] = ratios
    return figures


def training_step_function(pretrainer, jit_compile, num_predictions):
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


def training_setup(preset, geometry, batch, length):
    import keras
    import numpy as np
    import tensorflow as tf

    import keras_act

    config = keras_act.AlbertActBackbone.architecture_presets()[preset]
    config.update(geometry)
    keras.utils.set_random_seed(SEED)
    backbone = keras_act.AlbertActBackbone(**config)
    set_halting(backbone)
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


def training_figures(geometry, batch, length, steps):
    figures = {}
    for preset in TRAINING_PRESETS:
        pretrainer, args, num_predictions, max_layers = training_setup(
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


# === Peak memory, one child process per workload ===


def memory_workloads(mode):
    batch, length, _ = MODES[mode]["inference"][0]
    train_batch, train_length = MODES[mode]["training_batch"]
    workloads = {
        f"inference_{variant}_{batch}x{length}": dict(
            kind="inference", variant=variant, batch=batch, length=length
        )
        for variant in ("act_dense", "act_skip", "keras_hub_12")
    }
    for preset in TRAINING_PRESETS:
        for jit in (False, True):
            name = f"training_{preset}_{'xla' if jit else 'no_xla'}_{train_batch}x{train_length}"
            workloads[name] = dict(
                kind="training",
                preset=preset,
                jit_compile=jit,
                batch=train_batch,
                length=train_length,
            )
    return workloads


def process_status_mib(field):
    """`VmRSS` (current) or `VmHWM` (peak) of this process, in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak_rss():
    """Resets `VmHWM` to the current RSS (Linux >= 4.0); False if not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def run_child(spec, out_path):
    """In a child process: build the workload, then run it once (the first call)."""
    geometry = MODES[spec["mode"]]["geometry"]
    if spec["kind"] == "inference":
        if spec["variant"] == "keras_hub_12":
            backbone = keras_hub_backbone(geometry, 12)
        else:
            backbone = act_backbone(geometry, MAX_LAYERS, skip_halted=spec["variant"] == "act_skip")
        inputs = token_inputs(spec["batch"], spec["length"], geometry["vocabulary_size"])
        function, args = forward_function(backbone, inputs), (inputs,)
    else:
        pretrainer, args, num_predictions, _ = training_setup(
            spec["preset"], geometry, spec["batch"], spec["length"]
        )
        function = training_step_function(pretrainer, spec["jit_compile"], num_predictions)
    before = process_status_mib("VmRSS")
    peak_before = process_status_mib("VmHWM")
    reset = reset_peak_rss()
    run_once(function, *args)
    peak = process_status_mib("VmHWM")
    result = {
        "rss_before_first_call_mib": before,
        "peak_rss_mib": max(peak, peak_before),
        "first_call_peak_rss_mib": peak if reset else None,
    }
    Path(out_path).write_text(json.dumps(result))


def memory_figures(mode):
    """Peak RSS of each workload, each in a fresh child process.

    The peaks are read from the child's own `/proc/self/status` (`VmHWM`):
    `ru_maxrss` from `wait4`/`getrusage` would not do, since on Linux a child
    inherits its parent's high-water mark across fork and exec.
    """
    figures = {}
    for name, spec in memory_workloads(mode).items():
        progress(f"peak RSS: {name} in a fresh process")
        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder) / "child.json"
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    json.dumps(dict(spec, mode=mode)),
                    "--child-out",
                    str(out),
                ],
                stdout=subprocess.DEVNULL,
                check=True,
            )
            figures[name] = dict(json.loads(out.read_text()), spec=spec)
    return figures


# === Report ===


def machine():
    import keras
    import keras_hub
    import tensorflow as tf

    model = platform.processor() or "unknown"
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in lscpu.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return {
        "cpu": model,
        "cores": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "keras_hub": keras_hub.__version__,
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads() or "default",
    }


def flat_ratios(inference):
    ratios = {}
    for key, figures in inference.items():
        for name, value in figures["ratios"].items():
            ratios[f"{name}_{key}"] = value
    return ratios


def evaluate_targets(inference):
    key, figures = next(iter(inference.items()))
    targets = []
    for description, name, comparison, threshold in TARGETS:
        value = figures["ratios"][name]
        met = value >= threshold if comparison == ">=" else value <= threshold
        targets.append(
            dict(
                name=f"{description}, {key}",
                figure=f"{name}_{key}",
                value=value,
                target=f"{comparison} {threshold}",
                met=bool(met),
            )
        )
    return targets


def format_table(results):
    lines = []
    m = results["machine"]
    lines.append(
        f"ALBERT-ACT benchmarks ({results['mode']}): {m['cpu']}, {m['cores']} cores, "
        f"TF {m['tensorflow']}, Keras {m['keras']}, keras-hub {m['keras_hub']}"
    )
    inference = results["inference"]
    first = next(iter(inference.values()))
    lines.append(
        f"matmul peak ({results['config']['matmul_size']}^3 fp32): "
        f"{first['matmul_peak_gflops']:.0f} GFLOP/s"
    )
    lines.append("")
    lines.append("Inference (tf.function, no XLA), cap 24; tokens/s of the best round (median)")
    header = (
        f"{'batch':>7} {'depth mean/max/at cap':>22} {'model':>22} {'tokens/s':>16} {'ms/block':>9}"
    )
    lines.append(header)
    names = {
        "act_dense": "ALBERT-ACT dense",
        "act_skip": "ALBERT-ACT skip",
        "keras_hub_12": "keras-hub 12 layers",
        "keras_hub_24": "keras-hub 24 layers",
    }
    for key, f in inference.items():
        d = f["depth"]
        depth = f"{d['mean']:.2f}/{d['max']}/{100 * d['fraction_at_cap']:.1f}%"
        for model, label in names.items():
            per_block = f["ms_per_block_application"].get(model)
            lines.append(
                f"{key:>7} {depth:>22} {label:>22} "
                f"{f['tokens_per_second'][model]:>7.0f} ({f['tokens_per_second_median'][model]:>6.0f})"
                f" {'' if per_block is None else f'{per_block:9.1f}'}"
            )
            depth = ""
        lines.append(
            f"{'':>7} useful GFLOP/s: skip {f['useful_gflops']['act_skip']:.0f}, "
            f"dense {f['useful_gflops']['act_dense']:.0f}; ratios: "
            + ", ".join(f"{k} {v:.2f}" for k, v in f["ratios"].items())
        )
    profile = first.get("profile")
    if profile:
        lines.append(
            f"profile: FFN hidden->intermediate as EinsumDense {profile['ffn_einsum_dense_gflops']:.0f}"
            f" GFLOP/s vs 2-D matmul {profile['ffn_matmul_gflops']:.0f}; skip path / its matmuls"
            f" {profile['skip_over_its_matmul_floor']:.2f}, keras-hub 12 / its matmuls "
            f"{profile['keras_hub_12_over_its_matmul_floor']:.2f}; dense with a 2-D matmul "
            f"feed-forward / keras-hub per block "
            f"{profile['dense_matmul_feedforward_over_keras_hub_per_block']:.2f}"
        )
    lines.append("")
    lines.append(
        "Training step (dense path, Adam, MLM + SOP + ponder cost); tokens/s (first call s)"
    )
    for preset, f in results["training"].items():
        lines.append(
            f"{preset:>16} cap {f['max_layers']:>2} batch {f['batch']}x{f['sequence_length']} "
            f"mean depth {f['mean_depth']:.2f}: no XLA {f['tokens_per_second']['no_xla']:.0f} "
            f"({f['first_call_seconds']['no_xla']:.0f} s), XLA {f['tokens_per_second']['xla']:.0f} "
            f"({f['first_call_seconds']['xla']:.0f} s)"
        )
    lines.append("")
    lines.append(
        "Peak RSS (MiB), one child process each: whole process, peak during the first "
        "call alone, RSS before the first call"
    )
    for name, f in results["memory"].items():
        first_call = f["first_call_peak_rss_mib"]
        first_call = "n/a" if first_call is None else f"{first_call:.0f}"
        lines.append(
            f"{name:>48} {f['peak_rss_mib']:6.0f} {first_call:>6} "
            f"{f['rss_before_first_call_mib']:6.0f}"
        )
    lines.append("")
    lines.append("Targets (ratios of this run)")
    for t in results["targets"]:
        lines.append(
            f"  {'MET ' if t['met'] else 'MISS'} {t['name']}: {t['value']:.2f} (target {t['target']})"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, smaller training batch")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny model, for the test suite (figures mean nothing)"
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument(
        "--json",
        default=str(DEFAULT_JSON),
        help="where to write the figures (default: %(default)s, not in git)",
    )
    output.add_argument(
        "--regenerate",
        action="store_true",
        help=f"replace the committed {COMMITTED_JSON.relative_to(REPO)} (full runs only); "
        "RESULTS.md and the README quote it, so update them too",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return run_child(json.loads(args.child), args.child_out)

    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    if args.regenerate and mode != "full":
        parser.error("--regenerate replaces the committed figures: only with a full run")
    json_path = Path(COMMITTED_JSON if args.regenerate else args.json)
    if json_path.is_dir():
        parser.error(f"--json {json_path} is a folder: give a file path")
    config = MODES[mode]
    start = time.perf_counter()
    results = {
        "mode": mode,
        "machine": machine(),
        "config": {
            "geometry": config["geometry"],
            "max_layers": MAX_LAYERS,
            "halting_kernel_scale": HALTING_KERNEL_SCALE,
            "halting_bias": HALTING_BIAS,
            "matmul_size": config["matmul_size"],
            "inference": [list(x) for x in config["inference"]],
            "training_batch": list(config["training_batch"]),
            "training_steps": config["training_steps"],
        },
    }
    inference = {}
    for index, (batch, length, rounds) in enumerate(config["inference"]):
        progress(f"inference {batch}x{length} ({rounds} rounds): building the models")
        inference[f"{batch}x{length}"] = inference_figures(
            config["geometry"], batch, length, rounds, index == 0, config["matmul_size"]
        )
    results["inference"] = inference
    progress("training steps")
    results["training"] = training_figures(
        config["geometry"], *config["training_batch"], config["training_steps"]
    )
    progress("peak RSS (child processes)")
    results["memory"] = memory_figures(mode)
    results["ratios"] = flat_ratios(inference)
    results["targets"] = evaluate_targets(inference)
    results["wall_seconds"] = time.perf_counter() - start

    print()
    print(format_table(results))
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {json_path} ({results['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
