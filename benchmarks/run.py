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

This file is the command line and the run's plan; the harness (timing,
child-process memory probes, JSON) is `benchmarks/harness.py`, the models
`benchmarks/models.py`, and each benchmark has its own file
(`inference.py`, `training_step.py`, `memory.py`; the table: `report.py`).
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks.harness import (  # noqa: E402
    evaluate_targets,
    flat_ratios,
    machine,
    progress,
    write_json,
)
from benchmarks.inference import inference_figures  # noqa: E402
from benchmarks.memory import measure_workload, memory_figures  # noqa: E402
from benchmarks.models import (  # noqa: E402
    BASE_GEOMETRY,
    HALTING_BIAS,
    HALTING_KERNEL_SCALE,
    MAX_LAYERS,
    SMOKE_GEOMETRY,
)
from benchmarks.report import format_table  # noqa: E402
from benchmarks.training_step import training_figures  # noqa: E402

DEFAULT_JSON = REPO / "runs" / "benchmarks" / "results.json"
COMMITTED_JSON = REPO / "benchmarks" / "results.json"

# What each mode runs: the model geometry, the inference batches (batch,
# sequence length, timed rounds), the size of the matmul-peak matrices, the
# training batch (batch, sequence length) and the timed training steps.
MODE_FIELDS = ("geometry", "inference", "matmul_size", "training_batch", "training_steps")
MODES = {
    name: dict(zip(MODE_FIELDS, values, strict=True))
    for name, values in {
        "full": (BASE_GEOMETRY, ((8, 128, 7), (1, 128, 15)), 2048, (8, 128), 2),
        "quick": (BASE_GEOMETRY, ((8, 128, 3), (1, 128, 4)), 2048, (2, 64), 1),
        "smoke": (SMOKE_GEOMETRY, ((8, 32, 2), (1, 32, 2)), 512, (2, 32), 1),
    }.items()
}

# Judged on the ratios of the first inference batch (8x128 but in --smoke).
TARGETS = (
    # name, ratio, comparison, threshold
    ("skip / dense tokens/s", "skip_over_dense", ">=", 1.8),
    ("skip / keras-hub 12 layers tokens/s", "skip_over_keras_hub_12", ">=", 1.1),
    ("dense / keras-hub 24 layers time per block", "dense_over_keras_hub_per_block", "<=", 1.1),
    ("skip useful GFLOP/s / matmul peak", "skip_useful_over_peak", ">=", 0.45),
)


def run_child(spec, out_path):
    """In a child process: measures one memory workload, writes its JSON."""
    figures = measure_workload(spec, MODES[spec["mode"]]["geometry"])
    Path(out_path).write_text(json.dumps(figures))


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
        inference[f"{batch}x{length}"] = inference_figures(
            config["geometry"], batch, length, rounds, index == 0, config["matmul_size"]
        )
    results["inference"] = inference
    progress("training steps")
    results["training"] = training_figures(
        config["geometry"], *config["training_batch"], config["training_steps"]
    )
    progress("peak RSS (child processes)")
    main_batch, main_length, _ = config["inference"][0]
    results["memory"] = memory_figures(mode, (main_batch, main_length), config["training_batch"])
    results["ratios"] = flat_ratios(inference)
    main_key, main_figures = next(iter(inference.items()))
    results["targets"] = evaluate_targets(main_figures["ratios"], TARGETS, main_key)
    results["wall_seconds"] = time.perf_counter() - start

    print()
    print(format_table(results))
    write_json(json_path, results)
    print(f"\nwrote {json_path} ({results['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
