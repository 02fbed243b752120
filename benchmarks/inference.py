"""Inference benchmarks: every path of `AlbertAct`, with and without XLA, and the references.

Outside XLA (`tf.function`, `jit_compile=False`), at one batch shape, timed in
interleaved rounds: the dense loop (`skip_halted=False`), the default path
(`None`), today's data-dependent skip path (`True`), the static ladder path
(`"static"`), keras-hub's 12-layer `AlbertBackbone`, and the lower-precision
rows (int8 after `quantize("int8")`; bfloat16 only where the hardware has it).
Under XLA (`jit_compile=True`): the dense loop, the static path and the
default path. Hugging Face's PyTorch `AlbertModel` with 24 and 12 layers runs
in its own process (`benchmarks/pytorch_reference.py`). Every ACT path is
checked against the dense loop of the same weights (equal `updates`, largest
output difference); a path that cannot run reports "unavailable: <reason>".
FLOPs count a multiply-add as 2.
"""

from pathlib import Path

import benchmarks.capacity as capacity
from benchmarks.harness import (
    bfloat16_hardware,
    first_calls,
    progress,
    run_json_child,
    timed_summaries,
)
from benchmarks.models import (
    MAX_LAYERS,
    act_backbone,
    capacity_ladder,
    forward_function,
    keras_hub_backbone,
    token_inputs,
)

REFERENCE_SCRIPT = Path(__file__).resolve().parent / "pytorch_reference.py"

# name: (skip_halted, capacity kind) of each ACT path timed outside XLA.
ACT_PATHS = {
    "act_dense": (False, "dense"),
    "act_default": (None, None),  # the kind: that of the path it took (`path_taken`)
    "act_dynamic": (True, "dynamic"),
    "act_static": ("static", "static"),
}
# Under XLA, `True` takes the static ladder (the contract of issue 12).
XLA_PATHS = {
    "xla_dense": (False, "dense"),
    "xla_static": ("static", "static"),
    "xla_default": (None, None),
}


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


# === Depths and checks ===


def depth_statistics(updates, max_layers):
    """Depth figures of a batch from its `updates` (all tokens real)."""
    import numpy as np

    updates = np.asarray(updates)
    return {
        "mean": float(updates.mean()),
        "min": int(updates.min()),
        "max": int(updates.max()),
        "fraction_at_cap": float((updates == max_layers).mean()),
        "iterations": int(updates.max()),
        "token_updates": int(updates.sum()),
        "histogram": np.bincount(updates.astype(int).ravel(), minlength=max_layers + 1).tolist(),
    }


def against_reference(outputs, reference):
    """Equal `updates` and the largest output difference against the dense loop's."""
    import numpy as np

    updates_equal = bool(np.array_equal(outputs["updates"], reference["updates"]))
    changed = outputs["updates"] != reference["updates"]
    return {
        "updates_equal_dense": updates_equal,
        "fraction_of_tokens_with_other_updates": float(changed.mean()),
        "mean_updates_difference": float((outputs["updates"] - reference["updates"]).mean()),
        "max_abs_difference_vs_dense": float(
            np.abs(outputs["sequence_output"] - reference["sequence_output"]).max()
        ),
    }


def path_taken(outputs, name, candidates):
    """Which of `candidates` gave bit for bit the outputs of `name` (the automatic path).

    Same weights and inputs: the path the automatic choice took gives the
    same bits as that path forced explicitly. None if no candidate does.
    """
    import numpy as np

    if name not in outputs:
        return None
    for candidate in candidates:
        if candidate in outputs and all(
            np.array_equal(outputs[name][key], outputs[candidate][key]) for key in outputs[name]
        ):
            return candidate
    return None


def capacity_by_path(running, tokens, kinds, ladder):
    """`benchmarks.capacity.path_capacity` of each path."""
    return {
        name: capacity.path_capacity(kind, running, tokens, ladder=ladder)
        for name, kind in kinds.items()
        if kind is not None
    }


def timed_paths(functions, rounds, label, reference=None):
    """First calls, checks against `reference` (or the dense loop), timed rounds.

    Returns:
        `(seconds, first_call_seconds, checks, unavailable, outputs)`.
    """
    working, outputs, first, reasons = first_calls(functions, label)
    reference = reference if reference is not None else outputs.get("act_dense")
    checks = {
        name: against_reference(result, reference)
        for name, result in outputs.items()
        if reference is not None and "updates" in result
    }
    seconds = timed_summaries(working, rounds, label, warm_up=False)
    return seconds, first, checks, reasons, outputs


def rates(seconds, tokens):
    """Tokens per second of the best and the median round of each function."""
    return (
        {k: tokens / v["best"] for k, v in seconds.items()},
        {k: tokens / v["median"] for k, v in seconds.items()},
    )


def ratio(seconds, faster, slower, statistic="best"):
    """`slower`'s time over `faster`'s (a speed-up of `faster`), or None if either is missing."""
    if faster not in seconds or slower not in seconds:
        return None
    return seconds[slower][statistic] / seconds[faster][statistic]


# === Outside XLA ===


def inference_figures(geometry, batch, length, rounds):
    """Every inference figure outside XLA, at one batch shape (see benchmarks/README.md)."""
    progress(f"inference {batch}x{length} ({rounds} rounds): building the models")
    inputs = token_inputs(batch, length, geometry["vocabulary_size"])
    backbones = {
        name: act_backbone(geometry, MAX_LAYERS, skip_halted=skip)
        for name, (skip, _) in ACT_PATHS.items()
    }
    ladder = capacity_ladder(backbones["act_static"])
    functions = {name: (forward_function(b, inputs), (inputs,)) for name, b in backbones.items()}
    functions["keras_hub_12"] = (forward_function(keras_hub_backbone(geometry, 12), inputs), (inputs,))
    lower_precision = {}
    quantized = act_backbone(geometry, MAX_LAYERS)
    try:
        quantized.quantize("int8")
        functions["act_int8"] = (forward_function(quantized, inputs), (inputs,))
    except Exception as error:  # reported as unavailable
        lower_precision["act_int8"] = {"unavailable": f"unavailable: quantize('int8'): {error}"}
    hardware = bfloat16_hardware()
    if hardware["available"]:
        bf16 = act_backbone(geometry, MAX_LAYERS, dtype="mixed_bfloat16")
        functions["act_bfloat16"] = (forward_function(bf16, inputs), (inputs,))
    else:
        lower_precision["act_bfloat16"] = {
            "unavailable": "unavailable: no native bfloat16 here (the CPU has neither "
            f"{' nor '.join(f.upper() for f in ('avx512_bf16', 'amx_bf16'))}; no GPU)",
        }
    del backbones, quantized

    label = f"inference {batch}x{length}"
    seconds, first, checks, reasons, outputs = timed_paths(functions, rounds, label)
    tokens = batch * length
    best, median = rates(seconds, tokens)
    dense_updates = outputs["act_dense"]["updates"]
    depth = depth_statistics(dense_updates, MAX_LAYERS)
    running = capacity.running_tokens(dense_updates.ravel())
    kinds = {name: kind for name, (_, kind) in ACT_PATHS.items()}
    taken = path_taken(outputs, "act_default", ("act_dynamic", "act_static", "act_dense"))
    kinds["act_default"] = ACT_PATHS[taken][1] if taken else None
    kinds["act_int8"] = "dense"  # a quantized block runs the dense loop
    capacities = capacity_by_path(running, tokens, kinds, ladder)
    capacities["keras_hub_12"] = capacity.path_capacity("fixed", running, tokens, layers=12)
    useful_flops = depth["token_updates"] * block_flops(
        geometry["hidden_dim"], geometry["intermediate_dim"], length
    )
    for name in ("act_int8", "act_bfloat16"):
        if name in reasons:
            lower_precision[name] = {"unavailable": reasons[name]}
        elif name in checks:
            default = outputs.get("act_default") or outputs["act_dense"]
            lower_precision[name] = dict(
                against_reference(outputs[name], default),
                tokens_per_second=best[name],
                speed_over_default=ratio(seconds, name, "act_default"),
            )
    lower_precision["bfloat16_hardware"] = hardware
    figures = {
        "batch": batch,
        "sequence_length": length,
        "depth": depth,
        "capacity_ladder": ladder,
        "default_path_took": taken,
        "seconds": seconds,
        "first_call_seconds": first,
        "tokens_per_second": best,
        "tokens_per_second_median": median,
        "checks": checks,
        "unavailable": reasons,
        "capacity": capacities,
        "lower_precision": lower_precision,
        "useful_gflop": useful_flops / 1e9,
        "useful_gflops": {k: useful_flops / v["best"] / 1e9 for k, v in seconds.items()},
    }
    figures["ratios"] = {
        f"{name}{suffix}": ratio(seconds, faster, slower, statistic)
        for name, faster, slower in (
            ("default_over_dense", "act_default", "act_dense"),
            ("default_over_dynamic", "act_default", "act_dynamic"),
            ("default_over_keras_hub_12", "act_default", "keras_hub_12"),
            ("dynamic_over_dense", "act_dynamic", "act_dense"),
            ("static_over_dense", "act_static", "act_dense"),
            ("dynamic_over_keras_hub_12", "act_dynamic", "keras_hub_12"),
        )
        for suffix, statistic in (("", "best"), ("_median", "median"))
    }
    return figures, outputs["act_dense"]


# === Under XLA ===


def xla_inference_figures(geometry, batch, length, rounds, reference):
    """The dense loop, the static path and the default path, each XLA-compiled.

    `reference`: the dense loop's outputs outside XLA, for the checks.
    """
    progress(f"XLA inference {batch}x{length} ({rounds} rounds): building the models")
    inputs = token_inputs(batch, length, geometry["vocabulary_size"])
    backbones = {
        name: act_backbone(geometry, MAX_LAYERS, skip_halted=skip)
        for name, (skip, _) in XLA_PATHS.items()
    }
    ladder = capacity_ladder(backbones["xla_static"])
    functions = {
        name: (forward_function(b, inputs, jit_compile=True), (inputs,))
        for name, b in backbones.items()
    }
    label = f"XLA inference {batch}x{length}"
    seconds, first, checks, reasons, outputs = timed_paths(functions, rounds, label, reference)
    tokens = batch * length
    best, median = rates(seconds, tokens)
    running = capacity.running_tokens(reference["updates"].ravel())
    kinds = {name: kind for name, (_, kind) in XLA_PATHS.items()}
    taken = path_taken(outputs, "xla_default", ("xla_static", "xla_dense"))
    kinds["xla_default"] = XLA_PATHS[taken][1] if taken else None
    return {
        "batch": batch,
        "sequence_length": length,
        "capacity_ladder": ladder,
        "default_path_took": taken,
        "seconds": seconds,
        "first_call_seconds": first,
        "tokens_per_second": best,
        "tokens_per_second_median": median,
        "checks": checks,
        "unavailable": reasons,
        "capacity": capacity_by_path(running, tokens, kinds, ladder),
        "ratios": {
            "static_over_dense": ratio(seconds, "xla_static", "xla_dense"),
            "default_over_dense": ratio(seconds, "xla_default", "xla_dense"),
            "static_over_dense_median": ratio(seconds, "xla_static", "xla_dense", "median"),
            "default_over_dense_median": ratio(seconds, "xla_default", "xla_dense", "median"),
        },
    }


# === Hugging Face's PyTorch ALBERT, in its own processes ===


def pytorch_reference_figures(geometry, batch, length, rounds, depths=(24, 12)):
    """`benchmarks/pytorch_reference.py` at each depth, each in a fresh process."""
    import json

    figures = {}
    for layers in depths:
        progress(f"PyTorch reference: Hugging Face AlbertModel, {layers} layers, in a fresh process")
        figures[f"hf_{layers}"] = run_json_child(
            REFERENCE_SCRIPT,
            [
                f"--layers={layers}",
                f"--batch={batch}",
                f"--length={length}",
                f"--rounds={rounds}",
                f"--geometry={json.dumps(geometry)}",
            ],
        )
    return figures
