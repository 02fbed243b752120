"""Memory benchmark: the peak RSS of each workload's first call, each in a fresh process.

Inference of the dense path, the skip path and keras-hub with 12 layers at
the main batch, and a training step of each preset with and without XLA.
The parent (`memory_figures`) starts `benchmarks/run.py --child SPEC` once
per workload; the child (`measure_workload`) builds it and measures its own
peak (`benchmarks.harness.first_call_memory`).
"""

from pathlib import Path

from benchmarks.harness import first_call_memory, progress, run_in_child
from benchmarks.models import (
    MAX_LAYERS,
    act_backbone,
    forward_function,
    keras_hub_backbone,
    pretraining_setup,
    token_inputs,
)
from benchmarks.training_step import TRAINING_PRESETS, training_step_function

RUN_SCRIPT = Path(__file__).resolve().parent / "run.py"


def memory_workloads(inference_shape, training_shape):
    """`{name: spec}` of every workload, for `(batch, length)` of each kind."""
    batch, length = inference_shape
    train_batch, train_length = training_shape
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


def measure_workload(spec, geometry):
    """In the child process: builds the workload, then measures its first call."""
    if spec["kind"] == "inference":
        if spec["variant"] == "keras_hub_12":
            backbone = keras_hub_backbone(geometry, 12)
        else:
            backbone = act_backbone(geometry, MAX_LAYERS, skip_halted=spec["variant"] == "act_skip")
        inputs = token_inputs(spec["batch"], spec["length"], geometry["vocabulary_size"])
        function, args = forward_function(backbone, inputs), (inputs,)
    else:
        pretrainer, args, num_predictions, _ = pretraining_setup(
            spec["preset"], geometry, spec["batch"], spec["length"]
        )
        function = training_step_function(pretrainer, spec["jit_compile"], num_predictions)
    return first_call_memory(function, args)


def memory_figures(mode, inference_shape, training_shape):
    """Peak RSS of each workload, each in a fresh child process of `run.py`."""
    figures = {}
    for name, spec in memory_workloads(inference_shape, training_shape).items():
        progress(f"peak RSS: {name} in a fresh process")
        measured = run_in_child(RUN_SCRIPT, dict(spec, mode=mode))
        figures[name] = dict(measured, spec=spec)
    return figures
