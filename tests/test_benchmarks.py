"""`benchmarks/run.py` runs end to end and reports every figure (no timing checks)."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import report  # noqa: E402
from benchmarks.harness import first_calls  # noqa: E402
from benchmarks.run import evaluate_targets  # noqa: E402

INFERENCE_PATHS = ("act_dense", "act_default", "act_dynamic", "act_static", "keras_hub_12", "act_int8")
XLA_PATHS = ("xla_dense", "xla_static", "xla_default")
TRAINING_VARIANTS = tuple(
    f"{path}_{compiler}" for path in ("dense", "skip", "default") for compiler in ("no_xla", "xla")
)


def positive(value):
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def timed_or_unavailable(section, names):
    """Every path has a speed, or a reason why it could not run."""
    for name in names:
        if name in section["tokens_per_second"]:
            assert positive(section["tokens_per_second"][name]), name
            assert positive(section["tokens_per_second_median"][name]), name
        else:
            assert section["unavailable"][name].startswith("unavailable: "), name


@pytest.mark.large
def test_benchmark_quick_run_reports_every_figure(tmp_path):
    out = tmp_path / "results.json"
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "benchmarks/run.py", "--quick", "--json", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,  # ~3 min alone; the CI machine may be shared
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Targets" in result.stdout and "Training step" in result.stdout
    for line in ("inference 8x32: round 2/2 timed", "XLA inference 8x32: round 2/2 timed",
                 "training albert_act_base: round 1/1 timed",
                 "PyTorch reference: Hugging Face AlbertModel, 24 layers",
                 "peak RSS: training_default_no_xla_2x32 in a fresh process"):
        assert line in result.stderr, line
    results = json.loads(out.read_text())
    assert results["mode"] == "quick"
    assert results["machine"]["cpu"] and results["machine"]["cores"] >= 1

    inference, xla = results["inference"], results["xla_inference"]
    tokens = inference["batch"] * inference["sequence_length"]
    depth = inference["depth"]
    assert 1 <= depth["min"] <= depth["mean"] <= depth["max"] <= 24
    assert sum(depth["histogram"]) == tokens
    timed_or_unavailable(inference, INFERENCE_PATHS)
    timed_or_unavailable(xla, XLA_PATHS)
    # The dense loop and the default path always run, and agree.
    for section, dense, default in ((inference, "act_dense", "act_default"),
                                    (xla, "xla_dense", "xla_default")):
        assert dense in section["tokens_per_second"] and default in section["tokens_per_second"]
        assert section["checks"][default]["updates_equal_dense"]
        assert section["checks"][default]["max_abs_difference_vs_dense"] < 1e-4
        assert section["default_path_took"] is not None
    # Capacity vs running tokens, per iteration, for every path.
    running = inference["capacity"]["act_dense"]["running_tokens_per_iteration"]
    assert running[0] == tokens and len(running) == depth["max"]
    assert sum(running) == depth["token_updates"]
    for section in (inference, xla):
        for name, figures in section["capacity"].items():
            if "unavailable" in figures or name == "keras_hub_12":  # fixed depth: below
                continue
            assert figures["running_tokens_per_iteration"] == running, name
            computed = figures["capacity_per_iteration"]
            assert all(c >= n for c, n in zip(computed, running, strict=True)), name
            assert figures["waste"] >= 0, name
    assert inference["capacity"]["act_dynamic"]["waste"] == 0
    assert inference["capacity"]["keras_hub_12"]["rows_computed"] == 12 * tokens

    for name in ("hf_24", "hf_12"):
        figures = results["pytorch_reference"][name]
        assert positive(figures["tokens_per_second"]), name
        assert figures["layers"] == int(name[3:])
    lower = inference["lower_precision"]
    assert "available" in lower["bfloat16_hardware"]
    assert "unavailable" in lower["act_bfloat16"] or positive(lower["act_bfloat16"]["tokens_per_second"])
    assert positive(lower["act_int8"]["tokens_per_second"])
    assert 0 <= lower["act_int8"]["fraction_of_tokens_with_other_updates"] <= 1

    training = results["training"]
    timed_or_unavailable(training, TRAINING_VARIANTS)
    for name in ("dense_no_xla", "dense_xla", "default_no_xla", "default_xla"):
        assert 1 <= training["mean_depth"][name] <= 24, name
    for name in ("default_no_xla", "default_xla"):
        assert training["checks"][name]["first_loss_relative_difference_vs_dense"] < 1e-4

    workloads = results["memory"]["workloads"]
    assert set(workloads) == {"training_dense_no_xla_2x32", "training_default_no_xla_2x32"}
    for name, figures in workloads.items():
        assert figures["peak_rss_mib"] >= figures["rss_before_first_call_mib"] > 0, name
    assert positive(results["ratios"]["memory_default_over_dense_no_xla_peak_rss_mib"])
    assert len(results["targets"]) == 8
    for target in results["targets"]:
        assert target["status"] in ("met", "missed", "unavailable", "wrong results"), target
        assert target["met"] == (target["status"] == "met")
    # The Markdown of RESULTS.md and the README renders from these figures.
    as_full = dict(results, mode="full")
    for text in (report.results_section(as_full), report.readme_table(as_full)):
        assert "| --- |" in text and report.PLACEHOLDER not in text


def test_a_path_that_cannot_run_is_reported_not_raised():
    import tensorflow as tf

    @tf.function
    def refused(x):
        raise ValueError("`skip_halted='static'` is not a known path")

    working, outputs, seconds, reasons = first_calls(
        {"refused": (refused, (tf.ones([2]),)), "fine": (tf.function(lambda x: x * 2), (tf.ones([2]),))}
    )
    assert set(working) == set(outputs) == set(seconds) == {"fine"}
    assert reasons == {
        "refused": "unavailable: ValueError: `skip_halted='static'` is not a known path"
    }


def test_a_target_counts_only_with_correct_results():
    checks = {"right": {"ok": True}, "wrong": {"ok": False}}
    targets = (
        ("fast and right", "a", ">=", 1.5, "right"),
        ("fast but wrong", "a", ">=", 1.5, "wrong"),
        ("slow", "b", ">=", 1.5, "right"),
        ("not measured", "c", ">=", 1.5, "right"),
    )
    statuses = [t["status"] for t in evaluate_targets({"a": 2.0, "b": 1.2, "c": None}, checks, targets)]
    assert statuses == ["met", "wrong results", "missed", "unavailable"]


def test_generated_sections_match_the_committed_figures():
    """RESULTS.md's issue-12 figures and the README's speed table are report.py's rendering
    of the committed benchmarks/results.json (or say how to produce it)."""
    results = report.load_results(report.COMMITTED_JSON)
    for path, expected in report.generated_pages(results).items():
        assert path.read_text() == expected, f"{path} is stale: python benchmarks/report.py --write"


RESULTS = json.loads((REPO / "benchmarks" / "results_issue7.json").read_text())
MODEL_ROWS = {
    "ALBERT-ACT dense path": "act_dense",
    "ALBERT-ACT skip path": "act_skip",
    "keras-hub `AlbertBackbone`, 12 layers": "keras_hub_12",
    "keras-hub `AlbertBackbone`, 24 layers": "keras_hub_24",
}


def markdown_rows(text, header_start):
    """The cells of the Markdown table whose header starts with `header_start`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip().strip("*") for cell in line.strip().strip("|").split("|")])
    return rows


def number(cell):
    return float(cell.replace(",", "").replace("*", "").split()[0])


def test_results_page_quotes_the_issue7_run():
    """Every table figure of RESULTS.md's issue 7 section is results_issue7.json's, rounded."""
    page = (REPO / "benchmarks" / "RESULTS.md").read_text()
    page = page[page.index("## Issue 7") :]
    assert RESULTS["mode"] == "full"
    for batch, model, best, median, per_block in markdown_rows(page, "| batch | model |"):
        figures = RESULTS["inference"][batch]
        key = MODEL_ROWS[model]
        assert number(best) == round(figures["tokens_per_second"][key]), (batch, model)
        assert number(median) == round(figures["tokens_per_second_median"][key]), (batch, model)
        if per_block:
            assert number(per_block) == round(figures["ms_per_block_application"][key], 1)
    for preset, cap, depth, no_xla, xla, first in markdown_rows(page, "| preset | cap |"):
        figures = RESULTS["training"][preset.strip("`")]
        assert int(cap) == figures["max_layers"] and number(depth) == round(figures["mean_depth"], 2)
        assert number(no_xla) == round(figures["tokens_per_second"]["no_xla"])
        assert number(xla) == round(figures["tokens_per_second"]["xla"])
        seconds = [float(s.strip().rstrip("s")) for s in first.split("/")]
        assert seconds == [round(figures["first_call_seconds"][k]) for k in ("no_xla", "xla")]
    memory = markdown_rows(page, "| workload | peak RSS |")
    assert len(memory) == len(RESULTS["memory"])
    for (name, peak, before), figures in zip(memory, RESULTS["memory"].values(), strict=True):
        assert number(peak) == round(figures["peak_rss_mib"]), name
        assert number(before) == round(figures["rss_before_first_call_mib"]), name
    targets = markdown_rows(page, "| target | reached |")
    for (_, reached, _), target in zip(targets, RESULTS["targets"], strict=True):
        assert number(reached) == round(target["value"], 2), target["name"]
    main = RESULTS["inference"]["8x128"]
    for quoted in (
        f"**{round(main['matmul_peak_gflops'])} GFLOP/s**",
        f"{main['depth']['token_updates']:,} token updates",
        f"{main['useful_gflop']:.1f}\nGFLOP at 8x128",
        f"skip path {round(main['useful_gflops']['act_skip'])}",
        f"{main['seconds']['skip_matmul_floor']['best']:.3f} s",
        f"{main['seconds']['keras_hub_12_matmul_floor']['best']:.3f} s",
        f"= {main['profile']['skip_over_its_matmul_floor']:.2f}",
        f"at {round(main['profile']['ffn_einsum_dense_gflops'])} GFLOP/s",
        f"reaches {round(main['profile']['ffn_matmul_gflops'])}",
    ):
        assert quoted in page, quoted


def test_default_output_is_a_run_folder_and_regenerating_is_explicit():
    run = [sys.executable, "benchmarks/run.py"]
    help_text = subprocess.run(
        [*run, "--help"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert "runs/benchmarks/results.json" in help_text and "--regenerate" in help_text
    refused = subprocess.run(
        [*run, "--quick", "--regenerate"], cwd=REPO, capture_output=True, text=True
    )
    assert refused.returncode == 2
    assert "--regenerate replaces the committed figures: only with a full run" in refused.stderr


@pytest.mark.large
def test_pretrain_speed_runs_the_dense_and_default_paths_on_the_same_data(tmp_path):
    """benchmarks/pretrain_speed.py: two real `python -m training.pretrain` runs, one per path,
    same seed and vocabulary: the same loss curve, examples/s of both."""
    import random

    rng = random.Random(0)
    syllables = "ka lo mi ter sun ba ri do pe na vu go".split()
    words = ["".join(rng.choice(syllables) for _ in range(rng.randint(1, 3))) for _ in range(150)]
    documents = [
        "\n".join(" ".join(rng.choice(words) for _ in range(rng.randint(5, 12))) + " ." for _ in range(6))
        for _ in range(40)
    ]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join(documents) + "\n")
    out = tmp_path / "pretrain.json"
    result = subprocess.run(
        [sys.executable, "benchmarks/pretrain_speed.py", "--preset", "demo", "--corpus", str(corpus),
         "--steps", "3", "--log-every", "1", "--batch-size", "2", "--sequence-length", "32",
         "--vocab-size", "60", "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=1800,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads(out.read_text())
    for path in ("dense", "auto"):
        assert figures[path]["steps"] == [1, 2, 3], path
        assert positive(figures[path]["examples_per_second"]), path
        assert len(figures[path]["loss"]) == 3 and all(positive(x) for x in figures[path]["loss"])
    # Same seed, data and vocabulary: only float rounding differs between the paths.
    assert figures["comparison"]["loss_max_relative_difference"] < 1e-3
    assert positive(figures["comparison"]["default_over_dense_examples_per_second"])
    assert "### Pre-training end to end" in report.pretraining_section(figures)


def test_pretrain_speed_refuses_a_missing_corpus(tmp_path):
    result = subprocess.run(
        [sys.executable, "benchmarks/pretrain_speed.py", "--corpus", str(tmp_path / "none.txt")],
        cwd=REPO, capture_output=True, text=True,
    )
    assert result.returncode == 2
    assert f"--corpus {tmp_path / 'none.txt'}: no such file" in result.stderr
