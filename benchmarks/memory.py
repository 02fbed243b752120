"""Memory benchmark: the peak memory of a training step's first call, each in a fresh process.

One pre-training step (`benchmarks.training_step`) of the dense loop and of
the default path, with and without XLA. The parent (`memory_figures`) starts
`benchmarks/run.py --child SPEC` once per workload; the child
(`measure_workload`) builds it and measures its own peak
(`benchmarks.harness.call_memory`: peak RSS during the first call, with
tracing and compilation, and during a second call, and the GPU's peaks where
there is one). A workload whose child fails reports "unavailable: <reason>".
"""

from pathlib import Path

from benchmarks.harness import call_memory, progress, run_in_child
from benchmarks.models import pretraining_setup
from benchmarks.training_step import (
    COMPILERS,
    TRAINING_PATHS,
    TRAINING_PRESET,
    training_step_function,
    variant_name,
)

RUN_SCRIPT = Path(__file__).resolve().parent / "run.py"
MEMORY_PATHS = ("dense", "default")


def memory_workloads(training_shape, compilers=tuple(COMPILERS)):
    """`{name: spec}` of every workload, for the training `(batch, length)`.

    >>> list(memory_workloads((8, 128), ("no_xla",)))
    ['training_dense_no_xla_8x128', 'training_default_no_xla_8x128']
    """
    batch, length = training_shape
    return {
        f"training_{variant_name(path, compiler)}_{batch}x{length}": dict(
            kind="training", path=path, compiler=compiler, batch=batch, length=length
        )
        for compiler in compilers
        for path in MEMORY_PATHS
    }


def measure_workload(spec, geometry):
    """In the child process: builds the workload, then measures its first call."""
    pretrainer, args, _, _ = pretraining_setup(
        TRAINING_PRESET, geometry, spec["batch"], spec["length"],
        skip_halted=TRAINING_PATHS[spec["path"]],
    )
    function = training_step_function(pretrainer, COMPILERS[spec["compiler"]])
    return call_memory(function, args)


def memory_figures(mode, training_shape, compilers=tuple(COMPILERS)):
    """Peak memory of each workload, each in a fresh child process of `run.py`,
    and the default path's peak over the dense loop's per compiler."""
    figures = {}
    for name, spec in memory_workloads(training_shape, compilers).items():
        progress(f"peak RSS: {name} in a fresh process")
        measured = run_in_child(RUN_SCRIPT, dict(spec, mode=mode))
        figures[name] = dict(measured, spec=spec)
    batch, length = training_shape
    ratios = {}
    for compiler in compilers:
        dense = figures[f"training_dense_{compiler}_{batch}x{length}"]
        default = figures[f"training_default_{compiler}_{batch}x{length}"]
        for key in (
            "peak_rss_mib",
            "second_call_increase_mib",
            "gpu_peak_mib",
            "second_call_gpu_peak_mib",
        ):
            if dense.get(key) and default.get(key):
                ratios[f"default_over_dense_{compiler}_{key}"] = default[key] / dense[key]
    return {"workloads": figures, "ratios": ratios}
