"""docs/serving.md shows real exchanges and commands that work."""

import json
import os
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest

from keras_act.export.__main__ import build_parser
from tests.serving_docs_example import (
    DOCS,
    documented_blocks,
    export_demo,
    run_examples,
    run_local_query,
)


def _assert_json_equal(actual, documented, path="$"):
    """Same structure and values; floats to float32 precision."""
    assert type(actual) is type(documented) or {type(actual), type(documented)} <= {int, float}, (
        path
    )
    if isinstance(documented, dict):
        assert sorted(actual) == sorted(documented), path
        for key in documented:
            _assert_json_equal(actual[key], documented[key], f"{path}.{key}")
    elif isinstance(documented, list):
        assert len(actual) == len(documented), path
        for index, (a, d) in enumerate(zip(actual, documented, strict=True)):
            _assert_json_equal(a, d, f"{path}[{index}]")
    elif isinstance(documented, float):
        np.testing.assert_allclose(actual, documented, rtol=1e-5, atol=1e-9, err_msg=path)
    else:
        assert actual == documented, path


@pytest.fixture(scope="module")
def demo(shared_dir, tmp_path_factory):
    """The documentation's demo export: `ROOT/saved_models/albert_act_mlm/1`."""
    root = tmp_path_factory.mktemp("docs_demo")
    export_demo(root / "saved_models", shared_dir / "data" / "albert_v2_spiece.model")
    return root


@pytest.mark.large
def test_documented_exchanges_are_what_the_export_answers(demo):
    blocks = documented_blocks()
    bodies = {name: blocks[f"rest-{name}-request"] for name in ("row", "columnar")}
    path = demo / "saved_models" / "albert_act_mlm" / "1"
    results = run_examples(path, bodies, blocks["grpc-client"])
    for name in ("row", "columnar"):
        answer = results["rest"][name]
        assert answer["status"] == 200, answer
        documented = json.loads(blocks[f"rest-{name}-response"])
        _assert_json_equal(answer["body"], documented)
    client = results["grpc_client"]
    assert client["error"] is None
    assert client["stdout"].rstrip("\n") == blocks["grpc-client-output"].rstrip("\n")


@pytest.mark.large
def test_documented_local_query_runs_as_written(demo):
    """The page's Python query: a fresh process, TensorFlow and TF Text only."""
    code = documented_blocks()["python-local"]
    completed = run_local_query(code, demo)
    assert completed.returncode == 0, completed.stderr[-3000:]
    *printed, imported = completed.stdout.rstrip("\n").splitlines()
    assert "\n".join(printed) == documented_blocks()["python-local-output"].rstrip("\n")
    assert imported == "imported: []"  # keras-act is not needed
    # Without `import tensorflow_text`, the error the page quotes.
    assert "import tensorflow_text" in code
    without = run_local_query(code.replace("import tensorflow_text", "import json"), demo)
    assert without.returncode != 0
    assert "Op type not registered 'NormalizeUTF8'" in without.stderr
    documented = " ".join(DOCS.read_text(encoding="utf-8").split())
    assert "Op type not registered 'NormalizeUTF8'" in documented


def test_documented_responses_have_the_documented_shapes():
    blocks = documented_blocks()
    request = json.loads(blocks["rest-row-request"])
    rows = json.loads(blocks["rest-row-response"])["predictions"]
    assert len(rows) == len(request["instances"])
    for instance, row in zip(request["instances"], rows, strict=True):
        masks = instance["text"].count("[MASK]")
        assert (
            len(row["mask_positions"]) == 2 and sum(p >= 0 for p in row["mask_positions"]) == masks
        )
        assert np.shape(row["top_k_ids"]) == (2, 3)
        assert [row["token_pieces"][p] for p in row["mask_positions"] if p >= 0] == [
            "[MASK]"
        ] * masks
        assert all(
            (u == 0) == (m == 0) for u, m in zip(row["updates"], row["padding_mask"], strict=True)
        )


def test_documented_commands_parse():
    text = DOCS.read_text(encoding="utf-8")
    commands = [
        shlex.split(line.replace("\\\n", " "))
        for line in re.findall(r"^python -m keras_act\.export (?:.*\\\n)*.*$", text, re.M)
    ]
    assert len(commands) == 3
    parser = build_parser()
    for command in commands:
        args = parser.parse_args(command[3:])
        assert args.model and args.out.startswith("saved_models/")


def test_documented_models_config_parses():
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    text = DOCS.read_text(encoding="utf-8")
    block = re.search(r"```text\n(model_config_list \{.*?)```", text, re.S).group(1)
    config = text_format.Parse(block, model_server_config_pb2.ModelServerConfig())
    assert config.model_config_list.config[0].name == "albert_act_demo"


# === Load figures: written by benchmarks/serving_load.py only ===

SERVING_LOAD_JSON = DOCS.parents[1] / "benchmarks" / "serving_load.json"
SERVING_LOAD_COMMAND = (
    "python benchmarks/serving_load.py --batching --json benchmarks/serving_load.json"
)


def test_serving_load_figures_name_the_command_that_wrote_them():
    from benchmarks.serving_load import TABLE_END, TABLE_START, figures_table

    figures = json.loads(SERVING_LOAD_JSON.read_text(encoding="utf-8"))
    assert figures["command"] == SERVING_LOAD_COMMAND
    assert (figures["threads"], figures["requests"]) == (8, 2000)
    assert figures["identical_to_single_threaded"] is True
    # The batched run: every request answered, as unbatched (floats within
    # float32 noise).
    assert figures["batched_errors"] == [] and figures["batched_non_float_mismatches"] == 0
    assert figures["batched_max_float_difference"] < 1e-4
    page = DOCS.read_text(encoding="utf-8")
    text = " ".join(page.split())
    assert f"`{SERVING_LOAD_COMMAND}` (8 threads, 2,000 requests" in text
    assert f"{TABLE_START}\n{figures_table(figures)}\n{TABLE_END}" in page


@pytest.mark.large
def test_serving_load_script_writes_the_committed_figures(tmp_path):
    out = tmp_path / "load.json"
    script = SERVING_LOAD_JSON.with_name("serving_load.py")
    completed = subprocess.run(
        [
            sys.executable, str(script), "--quick", "--batching", "--requests", "16",
            "--json", str(out),
        ],
        cwd=DOCS.parents[1],
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        timeout=900,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    figures = json.loads(out.read_text(encoding="utf-8"))
    committed = json.loads(SERVING_LOAD_JSON.read_text(encoding="utf-8"))
    assert sorted(figures) == sorted(committed)
    assert figures["command"] == (
        f"python benchmarks/serving_load.py --quick --batching --requests 16 --json {out}"
    )
    assert (figures["threads"], figures["requests"], figures["mismatches"]) == (8, 16, 0)
    assert figures["batched_errors"] == [] and figures["batched_non_float_mismatches"] == 0
