"""Inference benchmark: ALBERT-ACT's skip path against its dense path and keras-hub's ALBERT.

At one batch shape, times (interleaved, in one run) a `tf.function` of the
dense path, the skip path and keras-hub's `AlbertBackbone` with 12 and 24
layers; with `with_peak_and_profile`, also a float32 matmul peak, the matmuls
alone of the skip path and of keras-hub (their "floors"), and the block's
feed-forward projection as `EinsumDense` against a 2-D matmul. FLOPs count a
multiply-add as 2.
"""

from benchmarks.harness import progress, timed_summaries
from benchmarks.models import (
    MAX_LAYERS,
    act_backbone,
    forward_function,
    keras_hub_backbone,
    token_inputs,
)

# === FLOPs ===


def projection_flops(hidden, intermediate):
    """FLOPs of one token through Q, K, V, output projection and feed-forward.

    >>> projection_flops(768, 3072)
    14155776
    """
    return 2 * (4 * hidden * hidden + 2 * hidden * intermediate)


def block_flops(hidden, intermediate, length):
    """FLOPs of one block application to one token in a row of `length` tokens.

    >>> block_flops(768, 3072, 128) - projection_flops(768, 3072)
    393216
    """
    return projection_flops(hidden, intermediate) + 4 * length * hidden


# === What is timed beside the models ===


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


# === The benchmark ===


def inference_figures(geometry, batch, length, rounds, with_peak_and_profile, matmul_size):
    """Every inference figure of one batch shape (see benchmarks/README.md)."""
    import numpy as np

    progress(f"inference {batch}x{length} ({rounds} rounds): building the models")
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
    seconds = timed_summaries(functions, rounds, f"inference {batch}x{length}")

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
            "running_tokens_per_iteration": counts,
        }
    figures["ratios"] = ratios
    return figures
