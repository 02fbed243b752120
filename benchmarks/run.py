"""ALBERT-ACT's paths with and without XLA, in inference and training, against the references (issue 12).

    python benchmarks/run.py [--quick] [--json PATH | --regenerate]

Prints a table and writes every figure to JSON: `runs/benchmarks/results.json`
by default (not in git), `--json PATH` elsewhere; `--regenerate` (full runs
only) replaces the committed `benchmarks/results.json` and rewrites the
generated sections of `benchmarks/RESULTS.md` and the README's speed table
from it (`benchmarks/report.py`). Progress (each phase, each timed round,
each child process) goes to stderr. All timings of the TensorFlow models
are taken in this process, in one run, with the variants timed in
interleaved rounds (so a noisy neighbour slows all of them alike); every
target is a ratio of two figures of the same run. Hugging Face's PyTorch
ALBERT runs in its own processes (`benchmarks/pytorch_reference.py`), and
each peak-memory workload in a fresh child process. A path that cannot run
here (not built, refused in this context) is reported as "unavailable:
<reason>", never ends the run. `--quick` runs everything on a tiny model
with few rounds, for the test suite: its figures mean nothing. See
`benchmarks/README.md` for what each figure is.

This file is the command line, the run's plan and its targets; the harness
(timing, child processes, JSON) is `benchmarks/harness.py`, the models
`benchmarks/models.py`, and each benchmark has its own file (`inference.py`,
`training_step.py`, `memory.py`, `pytorch_reference.py`; the capacity
accounting `capacity.py`; the table and the Markdown: `report.py`).
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

from benchmarks.harness import machine, progress, write_json  # noqa: E402
from benchmarks.inference import (  # noqa: E402
    inference_figures,
    pytorch_reference_figures,
    xla_inference_figures,
)
from benchmarks.memory import measure_workload, memory_figures  # noqa: E402
from benchmarks.models import (  # noqa: E402
    BASE_GEOMETRY,
    HALTING_BIAS,
    HALTING_KERNEL_SCALE,
    MAX_LAYERS,
    SMOKE_GEOMETRY,
)
from benchmarks.report import format_table, write_generated_sections  # noqa: E402
from benchmarks.training_step import training_figures  # noqa: E402

DEFAULT_JSON = REPO / "runs" / "benchmarks" / "results.json"
COMMITTED_JSON = REPO / "benchmarks" / "results.json"

# What each mode runs: the model geometry, the batch (batch, sequence
# length), the timed rounds outside and under XLA and of the PyTorch
# reference, the training batch, the timed training steps and the compilers
# of the peak-memory workloads.
MODE_FIELDS = (
    "geometry",
    "batch",
    "rounds",
    "xla_rounds",
    "reference_rounds",
    "training_batch",
    "training_steps",
    "memory_compilers",
)
MODES = {
    name: dict(zip(MODE_FIELDS, values, strict=True))
    for name, values in {
        "full": (BASE_GEOMETRY, (8, 128), 5, 5, 7, (8, 128), 3, ("no_xla", "xla")),
        "quick": (SMOKE_GEOMETRY, (8, 32), 2, 2, 2, (2, 32), 1, ("no_xla",)),
    }.items()
}

# name, figure (in results["ratios"]), comparison, threshold, the check that
# must hold for the figure to count (in results["checks"]).
TARGETS = (
    ("XLA inference: static path / XLA dense loop tokens/s", "xla_static_over_dense", ">=", 1.6,
     "xla_static"),
    ("training step outside XLA: default path / dense", "training_default_over_dense_no_xla",
     ">=", 1.5, "training_default_no_xla"),
    ("training step under XLA: default path / dense", "training_default_over_dense_xla", ">=",
     1.3, "training_default_xla"),
    # "No higher than dense", within the 2% that peak RSS moves between runs.
    ("training step peak RSS outside XLA: default / dense",
     "memory_default_over_dense_no_xla_peak_rss_mib", "<=", 1.02, None),
    ("training step peak RSS under XLA: default / dense",
     "memory_default_over_dense_xla_peak_rss_mib", "<=", 1.02, None),
    ("inference outside XLA: default path / today's skip path", "default_over_dynamic", ">=",
     1.0, "act_default"),
    ("inference outside XLA: default path / keras-hub 12 layers", "default_over_keras_hub_12",
     ">=", 1.2, "act_default"),
    ("inference outside XLA: default path / Hugging Face PyTorch 24 layers",
     "default_over_hf_24", ">=", 3.0, "act_default"),
)
# A path counts as correct if its `updates` equal the dense loop's and its
# outputs are within this of the dense loop's (training: the first step's
# loss, relative).
OUTPUT_TOLERANCE = 1e-4
LOSS_TOLERANCE = 1e-4


def run_child(spec, out_path):
    """In a child process: measures one memory workload, writes its JSON."""
    figures = measure_workload(spec, MODES[spec["mode"]]["geometry"])
    Path(out_path).write_text(json.dumps(figures))


def path_checks(results):
    """`{path: {"ok", ...}}`: whether each ACT path gave the dense loop's results."""
    checks = {}
    for section in ("inference", "xla_inference"):
        for name, check in results[section]["checks"].items():
            ok = check["updates_equal_dense"] and (
                check["max_abs_difference_vs_dense"] <= OUTPUT_TOLERANCE
            )
            checks[name] = dict(check, ok=bool(ok))
    for name, check in results["training"]["checks"].items():
        ok = check["mean_depth_equal_dense"] and (
            check["first_loss_relative_difference_vs_dense"] <= LOSS_TOLERANCE
        )
        checks[f"training_{name}"] = dict(check, ok=bool(ok))
    return checks


def flat_ratios(results):
    """The ratios the targets and the tables quote, in one flat dict (None: unavailable)."""
    inference = results["inference"]
    ratios = {f"xla_{k}": v for k, v in results["xla_inference"]["ratios"].items()}
    ratios.update({f"training_{k}": v for k, v in results["training"]["ratios"].items()})
    ratios.update({f"memory_{k}": v for k, v in results["memory"]["ratios"].items()})
    ratios.update(inference["ratios"])
    default = inference["tokens_per_second"].get("act_default")
    for name, figures in results["pytorch_reference"].items():
        theirs = figures.get("tokens_per_second")
        ratios[f"default_over_{name}"] = default / theirs if default and theirs else None
    return ratios


def evaluate_targets(ratios, checks, targets=TARGETS):
    """Each target against the ratios of this run.

    A target is met only if its figure is there and the path it measures gave
    the dense loop's results (`checks`).

    Returns:
        A list of `{"name", "figure", "value", "target", "met", "status"}`,
        `status` one of "met", "missed", "unavailable" or "wrong results".

    >>> evaluate_targets({"a": 2.0, "b": None}, {"p": {"ok": True}},
    ...                  (("A", "a", ">=", 1.5, "p"), ("B", "b", "<=", 1.0, None)))[1]["status"]
    'unavailable'
    """
    evaluated = []
    for description, name, comparison, threshold, check in targets:
        value = ratios.get(name)
        if value is None:
            status = "unavailable"
        elif check is not None and not checks.get(check, {}).get("ok", False):
            status = "wrong results"
        elif (value >= threshold) if comparison == ">=" else (value <= threshold):
            status = "met"
        else:
            status = "missed"
        evaluated.append(
            dict(
                name=description,
                figure=name,
                value=value,
                target=f"{comparison} {threshold}",
                met=status == "met",
                status=status,
            )
        )
    return evaluated


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="tiny model, few rounds: a smoke run (figures mean nothing)"
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
        help=f"replace the committed {COMMITTED_JSON.relative_to(REPO)} (full runs only) and "
        "rewrite the generated sections of benchmarks/RESULTS.md and README.md from it",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return run_child(json.loads(args.child), args.child_out)

    mode = "quick" if args.quick else "full"
    if args.regenerate and mode != "full":
        parser.error("--regenerate replaces the committed figures: only with a full run")
    json_path = Path(COMMITTED_JSON if args.regenerate else args.json)
    if json_path.is_dir():
        parser.error(f"--json {json_path} is a folder: give a file path")
    config = MODES[mode]
    start = time.perf_counter()
    batch, length = config["batch"]
    results = {
        "mode": mode,
        "command": "python benchmarks/run.py" + (" --quick" if args.quick else ""),
        "machine": machine(),
        "config": {
            **{k: list(v) if isinstance(v, tuple) else v for k, v in config.items()},
            "max_layers": MAX_LAYERS,
            "halting_kernel_scale": HALTING_KERNEL_SCALE,
            "halting_bias": HALTING_BIAS,
        },
    }
    geometry = config["geometry"]
    results["inference"], dense_outputs = inference_figures(
        geometry, batch, length, config["rounds"]
    )
    results["pytorch_reference"] = pytorch_reference_figures(
        geometry, batch, length, config["reference_rounds"]
    )
    results["xla_inference"] = xla_inference_figures(
        geometry, batch, length, config["xla_rounds"], dense_outputs
    )
    del dense_outputs
    progress("training steps")
    results["training"] = training_figures(
        geometry, *config["training_batch"], config["training_steps"]
    )
    progress("peak memory (child processes)")
    results["memory"] = memory_figures(mode, config["training_batch"], config["memory_compilers"])
    results["checks"] = path_checks(results)
    results["ratios"] = flat_ratios(results)
    results["targets"] = evaluate_targets(results["ratios"], results["checks"])
    results["wall_seconds"] = time.perf_counter() - start

    print()
    print(format_table(results))
    write_json(json_path, results)
    print(f"\nwrote {json_path} ({results['wall_seconds']:.0f} s)")
    if args.regenerate:
        for path in write_generated_sections(results):
            print(f"rewrote the generated section of {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
