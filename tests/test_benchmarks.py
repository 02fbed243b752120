"""`benchmarks/run.py` runs end to end and reports every figure (no timing checks)."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MODELS = ("act_dense", "act_skip", "keras_hub_12", "keras_hub_24")
RATIOS = (
    "skip_over_dense",
    "skip_over_keras_hub_12",
    "skip_over_keras_hub_24",
    "dense_over_keras_hub_per_block",
)


def positive(value):
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


@pytest.mark.large
def test_benchmark_smoke_run_reports_every_figure(tmp_path):
    out = tmp_path / "results.json"
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "benchmarks/run.py", "--quick", "--smoke", "--json", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,  # ~2 min alone; the CI machine may be shared
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Targets" in result.stdout and "keras-hub 12 layers" in result.stdout
    # Progress: a line per phase, per timed round and per memory workload.
    for line in ("inference 8x32: round 2/2 timed", "training albert_act_base: round 1/1 timed",
                 "peak RSS: training_albert_act_base_xla_2x32 in a fresh process"):
        assert line in result.stderr, line
    results = json.loads(out.read_text())

    assert results["mode"] == "smoke"
    assert results["machine"]["cpu"] and results["machine"]["cores"] >= 1
    assert set(results["inference"]) == {"8x32", "1x32"}
    for key, figures in results["inference"].items():
        depth = figures["depth"]
        assert 1 <= depth["min"] <= depth["mean"] <= depth["max"] <= 24, key
        assert depth["iterations"] == depth["max"]
        assert sum(depth["histogram"]) == figures["batch"] * figures["sequence_length"]
        assert figures["max_abs_difference_skip_vs_dense"] < 1e-4
        for model in MODELS:
            assert positive(figures["tokens_per_second"][model]), (key, model)
            assert positive(figures["tokens_per_second_median"][model]), (key, model)
        for name in RATIOS:
            assert positive(figures["ratios"][name]), (key, name)
        assert positive(figures["useful_gflops"]["act_skip"])
        assert set(figures["ms_per_block_application"]) == {
            "act_dense",
            "keras_hub_12",
            "keras_hub_24",
        }
    # The matmul peak and the profile come with the first (main) batch.
    main = results["inference"]["8x32"]
    assert positive(main["matmul_peak_gflops"])
    assert positive(main["ratios"]["skip_useful_over_peak"])
    for name in (
        "ffn_einsum_dense_gflops",
        "ffn_matmul_gflops",
        "skip_over_its_matmul_floor",
        "keras_hub_12_over_its_matmul_floor",
    ):
        assert positive(main["profile"][name]), name
    assert main["profile"]["running_tokens_per_iteration"][0] == 8 * 32

    assert set(results["training"]) == {"albert_act_tiny", "albert_act_base"}
    for preset, figures in results["training"].items():
        for compiler in ("no_xla", "xla"):
            assert positive(figures["tokens_per_second"][compiler]), (preset, compiler)
            assert positive(figures["first_call_seconds"][compiler]), (preset, compiler)
        assert 1 <= figures["mean_depth"] <= figures["max_layers"]

    assert len(results["memory"]) == 7
    for name, figures in results["memory"].items():
        assert figures["peak_rss_mib"] >= figures["rss_before_first_call_mib"] > 0, name
    assert {t["figure"] for t in results["targets"]} == {
        "skip_over_dense_8x32",
        "skip_over_keras_hub_12_8x32",
        "dense_over_keras_hub_per_block_8x32",
        "skip_useful_over_peak_8x32",
    }
    for target in results["targets"]:
        assert isinstance(target["met"], bool) and positive(target["value"])


RESULTS = json.loads((REPO / "benchmarks" / "results.json").read_text())
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


def test_results_page_quotes_the_committed_run():
    """Every table figure of RESULTS.md is the committed results.json's, rounded."""
    page = (REPO / "benchmarks" / "RESULTS.md").read_text()
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


def test_readme_speed_table_is_the_committed_run():
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Speed") : readme.index("## Tests")]
    assert "`python benchmarks/run.py`" in section
    figures = RESULTS["inference"]["8x128"]
    names = {
        "ALBERT-ACT, dense loop": "act_dense",
        "ALBERT-ACT, skipping halted tokens": "act_skip",
        "keras-hub `AlbertBackbone`, 12 layers": "keras_hub_12",
        "keras-hub `AlbertBackbone`, 24 layers": "keras_hub_24",
    }
    rows = markdown_rows(section, "| model | tokens/s |")
    assert [name for name, _ in rows] == list(names)
    for name, tokens in rows:
        assert number(tokens) == round(figures["tokens_per_second"][names[name]]), name
    ratios = figures["ratios"]
    text = " ".join(section.split())
    assert f"mean depth {figures['depth']['mean']:.1f}" in text
    assert f"Skip / dense {ratios['skip_over_dense']:.2f}x" in text
    assert f"per block application {ratios['dense_over_keras_hub_per_block']:.2f}" in text
    assert f"{round(100 * ratios['skip_useful_over_peak'])}% of the measured matmul peak" in text
    assert f"skip / keras-hub 12 layers {ratios['skip_over_keras_hub_12']:.2f}x" in text


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
