"""The model, requests and responses of the examples in docs/serving.md.

    python tests/serving_docs_example.py

exports the documentation's demo model (a small randomly initialised
`AlbertActPretrainer` on ALBERT's vocabulary, seed 0) to
`saved_models/albert_act_mlm/1` in a temporary folder, sends the documented
REST bodies and runs the documented gRPC client through the test stand-in of
the model server (the isolated session process of benchmarks/serving_session.py),
runs the documented local Python query in a fresh process, and prints the
responses and outputs as they appear in docs/serving.md.
`tests/test_export_docs.py` checks that the documentation still shows what
this prints.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "serving.md"
MODEL_NAME = "albert_act_mlm"
SEQUENCE_LENGTH = 12
TOP_K = 3


def documented_blocks(text=None):
    """The fenced blocks after `<!-- example: NAME -->` markers, by name."""
    text = DOCS.read_text(encoding="utf-8") if text is None else text
    pattern = re.compile(r"<!-- example: ([\w-]+) -->\s*```\w*\n(.*?)```", re.S)
    return {name: body for name, body in pattern.findall(text)}


def export_demo(base_dir, vocab):
    """Exports the demo masked-LM model; returns the version folder."""
    import keras_act
    from keras_act.export import export_saved_model
    from keras_act.tokenizers import AlbertActTokenizer
    from tests.helpers import tiny_backbone

    tokenizer = AlbertActTokenizer(proto=str(vocab))
    # The tests' tiny backbone, at the default 512 positions, seed 0.
    backbone = tiny_backbone(tokenizer.vocabulary_size(), seed=0, max_sequence_length=512)
    pretrainer = keras_act.AlbertActPretrainer(backbone)
    return export_saved_model(
        pretrainer,
        tokenizer,
        os.path.join(base_dir, MODEL_NAME),
        sequence_length=SEQUENCE_LENGTH,
        top_k=TOP_K,
    )


def run_examples(version_dir, rest_bodies, grpc_client_code):
    """Sends the REST bodies and runs the gRPC client in the isolated session."""
    from benchmarks.serving_client import run_isolated

    return run_isolated(
        {
            "version_dir": version_dir,
            "model_name": MODEL_NAME,
            "rest": rest_bodies,
            "grpc_client_code": grpc_client_code,
        }
    )


def run_local_query(code, root):
    """Runs the documented local query in a fresh `python -I` process.

    Args:
        code: the Python of the example (its path is relative to `root`).
        root: the folder holding `saved_models/albert_act_mlm/1`.

    Returns:
        The `subprocess.CompletedProcess` (text); the code's output ends
        with one line naming any keras-act module it imported.
    """
    check = (
        "\nimport sys as _sys\n"
        "print('imported:', sorted(m for m in _sys.modules if m.split('.')[0] == 'keras_act'))\n"
    )
    return subprocess.run(
        [sys.executable, "-I", "-c", code + check],
        cwd=root,
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES=""),
        timeout=600,
    )


def format_json(value, indent=0):
    """JSON with one line per key of the top two levels, lists kept inline."""
    pad = " " * indent
    if isinstance(value, dict) and value:
        items = [
            f'{pad}  "{key}": {format_json(item, indent + 2).lstrip()}'
            for key, item in value.items()
        ]
        return pad + "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        items = [format_json(item, indent + 2) for item in value]
        return pad + "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return pad + json.dumps(value, ensure_ascii=False)


def main():
    vocab = Path(os.environ.get("KERAS_ACT_SHARED", REPO.parent / "shared")) / "data"
    vocab = vocab / "albert_v2_spiece.model"
    blocks = documented_blocks()
    bodies = {name: blocks[f"rest-{name}-request"] for name in ("row", "columnar")}
    with tempfile.TemporaryDirectory() as work:
        path = export_demo(os.path.join(work, "saved_models"), vocab)
        results = run_examples(path, bodies, blocks["grpc-client"])
        local = run_local_query(blocks["python-local"], work)
    for name in ("row", "columnar"):
        answer = results["rest"][name]
        print(f"<!-- example: rest-{name}-response -->\n```json")
        print(format_json(answer["body"]))
        print("```\n")
    client = results["grpc_client"]
    if client["error"]:
        print(client["error"], file=sys.stderr)
        return 1
    print("<!-- example: grpc-client-output -->\n```text")
    print(client["stdout"].rstrip())
    print("```\n")
    if local.returncode != 0:
        print(local.stderr[-3000:], file=sys.stderr)
        return 1
    print("<!-- example: python-local-output -->\n```text")
    print("\n".join(local.stdout.rstrip().splitlines()[:-1]))
    print("```")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
