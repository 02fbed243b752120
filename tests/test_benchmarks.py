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
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Targets" in result.stdout and "keras-hub 12 layers" in result.stdout
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
        "dense_matmul_feedforward_over_keras_hub_per_block",
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
