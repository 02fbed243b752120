"""`python -m keras_act.analysis` end to end, in its own process."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from keras_act.analysis import sentence_depths
from tests.helpers import ANALYSIS_SEQUENCE_LENGTH as SEQUENCE_LENGTH
from tests.helpers import ANALYSIS_TEXTS as TEXTS
from tests.helpers import analysis_setup, child_environment

REPO_ROOT = Path(__file__).resolve().parents[1]
PNG_SIZES = {  # (height, width) at the default sizes and 100 dpi
    "depth_histograms.png": (600, 1400),
    "depth_profiles.png": (400, 1200),
}


def run_cli(*args, check=True):
    result = subprocess.run(
        [sys.executable, "-m", "keras_act.analysis", *map(str, args)],
        cwd=REPO_ROOT,
        env=child_environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result


def table_rows(stdout):
    """`(piece, updates)` of each token line of the printed tables, per sentence."""
    tables = []
    for line in stdout.splitlines():
        if line.startswith("Layers per token for:"):
            tables.append([])
        elif tables and line[:4].strip().isdigit():
            fields = line.split()
            tables[-1].append((fields[1], float(fields[3])))
    return tables


@pytest.fixture(scope="module")
def setup():
    return analysis_setup()


@pytest.mark.large
def test_text_and_corpus_on_a_preset(setup, tmp_path):
    out = tmp_path / "out"
    args = ["--model", setup.preset, "--corpus", setup.corpus, "--out", out, "--paper", "tiny"]
    args += ["--sequence-length", SEQUENCE_LENGTH, "--max-examples", 40, "--batch-size", 8]
    for text in TEXTS:
        args += ["--text", text]
    result = run_cli(*args)

    expected = sentence_depths(setup.backbone, TEXTS, tokenizer=setup.tokenizer)
    tables = table_rows(result.stdout)
    assert tables == [
        list(zip(d.pieces, d.updates.tolist(), strict=True)) for d in expected
    ]
    assert "| Category | Tokens | Mean updates | Paper (tiny) |" in result.stdout

    data = json.loads((out / "depth_statistics.json").read_text())
    assert data["num_examples"] == 40 and data["max_layers"] == 6
    assert data["metadata"]["sequence_length"] == SEQUENCE_LENGTH
    rows = {row["name"]: row for row in data["categories"]}
    assert rows["cls"]["count"] == 40 and rows["sep"]["count"] == 80
    assert rows["mask_mask"]["count"] > 0 and len(rows["all"]["histogram"]) == 7
    markdown = (out / "depth_statistics.md").read_text()
    mean = rows["all"]["mean_updates"]
    assert f"| All tokens | {rows['all']['count']} | {mean:.2f} | 3.8 |" in markdown

    sentences = json.loads((out / "sentence_depths.json").read_text())
    assert [s["text"] for s in sentences] == TEXTS
    assert sentences[0]["updates"] == expected[0].updates.tolist()
    for name, size in PNG_SIZES.items():
        assert imread(out / name).shape[:2] == size, name
    heatmap = imread(out / "depth_heatmap.png")
    assert heatmap.shape[0] > 100 and heatmap[..., :3].std() > 0.05


@pytest.mark.large
def test_saved_model(setup, tmp_path):
    out = tmp_path / "out"
    result = run_cli(
        "--model", setup.version_dir, "--text", TEXTS[1], "--corpus", setup.corpus,
        "--out", out, "--max-examples", 16, "--sequence-length", SEQUENCE_LENGTH,
        "--heatmap-sentences", 2,
    )
    expected = sentence_depths(setup.backbone, TEXTS[1:2], tokenizer=setup.tokenizer)[0]
    assert table_rows(result.stdout) == [list(zip(expected.pieces, expected.updates.tolist(), strict=True))]
    data = json.loads((out / "depth_statistics.json").read_text())
    # The cap comes from the export's keras_act_model.json.
    assert data["num_examples"] == 16 and data["max_layers"] == 6
    assert len({row["name"]: row for row in data["categories"]}["all"]["histogram"]) == 7
    assert {p.name for p in out.iterdir()} == {
        "depth_statistics.md",
        "depth_statistics.json",
        "depth_heatmap.png",
        "depth_histograms.png",
        "depth_profiles.png",
        "sentence_depths.json",
    }


@pytest.mark.large
def test_authors_checkpoint_and_json_output(setup, reference_dir):
    import keras_act

    checkpoint = reference_dir / "tiny_random"
    result = run_cli("--model", checkpoint, "--vocab", setup.vocab, "--text", TEXTS[0], "--json")
    (printed,) = json.loads(result.stdout)
    backbone = keras_act.convert.load_hf_checkpoint(str(checkpoint))
    (expected,) = sentence_depths(backbone, TEXTS[:1], tokenizer=setup.tokenizer)
    assert printed["pieces"] == expected.pieces
    np.testing.assert_array_equal(printed["updates"], expected.updates)
    np.testing.assert_allclose(printed["remainders"], expected.remainders, atol=1e-6)
    assert len(printed["step_halting_probabilities"][0]) == expected.updates[0]


def test_help_shows_every_flag_with_its_default():
    from keras_act.analysis.__main__ import build_parser

    parser = build_parser()
    text = parser.format_help()
    for action in parser._actions:
        assert action.help, action.option_strings
    # Defaults are shown, including those that follow the model.
    for default in ("default: 16", "default: 0", "default: 6", "default: 1"):
        assert default in text, default
    assert "max_sequence_length when" in " ".join(text.split())


def _one_line_error(main, argv, capsys):
    with pytest.raises(SystemExit) as error:
        main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert error.value.code == 2, err
    assert "Traceback" not in err and len(lines) == 1, err
    return lines[0]


def test_bad_arguments(tmp_path, capsys):
    from keras_act.analysis.__main__ import main

    for argv, message in (
        (["--model", str(tmp_path)], "give --text and/or --corpus"),
        (["--model", str(tmp_path), "--corpus", str(tmp_path / "no.txt"), "--out", "o"], "corpus file not found"),
        (["--model", str(tmp_path), "--corpus", __file__], "--corpus needs --out"),
        (["--model", str(tmp_path), "--text", "a", "--batch-size", "0"], "--batch-size must be positive"),
        (["--model", str(tmp_path), "--text", "a", "--sequence-length", "-3"], "--sequence-length must be positive"),
    ):
        assert message in _one_line_error(main, argv, capsys)


def test_setup_errors_are_one_line(tmp_path, capsys):
    """Errors found before and while loading the model: one line, exit status 2."""
    from keras_act.analysis.__main__ import main

    setup = analysis_setup()
    existing_file = tmp_path / "report.txt"
    existing_file.write_text("not a folder\n")
    binary = tmp_path / "corpus.bin"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9 au lait. the end.\n".encode("latin-1"))
    blank = tmp_path / "blank.txt"
    blank.write_text("\n\n   \n")
    one_token = tmp_path / "one_token.txt"
    one_token.write_text("the\n")
    not_a_model = tmp_path / "not_a_model"
    not_a_model.mkdir()
    (not_a_model / "config.json").write_text("[1, 2]")
    out = str(tmp_path / "out")
    corpus = ["--model", setup.preset, "--corpus"]
    for argv, message in (
        (["--model", str(tmp_path / "missing"), "--text", "a"], "missing: no such file or directory"),
        (corpus + [setup.corpus, "--out", str(existing_file)], "is an existing file, not a folder"),
        (corpus + [str(binary), "--out", out], "corpus.bin is not UTF-8 text (a NUL byte at offset 8"),
        (corpus + [str(latin1), "--out", out], "latin1.txt is not UTF-8 text (byte 3: invalid"),
        (corpus + [str(tmp_path), "--out", out], "is a folder: give the text files in it"),
        (corpus + [str(blank), "--out", out], "has no usable document"),
        (corpus + [str(one_token), "--out", out], "no sentence pair for pre-training"),
        (corpus + [setup.corpus, "--out", out, "--sequence-length", "65"],
         "--sequence-length 65 exceeds the model's max_sequence_length 64"),
        (["--model", str(not_a_model), "--text", "a"], f"cannot load --model {not_a_model}: "),
    ):
        assert message in _one_line_error(main, argv, capsys), argv


@pytest.mark.large
def test_corpus_length_follows_the_model(tmp_path):
    """No --sequence-length: the model's max_sequence_length (64) when below 128,
    in a fresh process, as the README's command (which failed with a traceback)."""
    setup = analysis_setup()
    out = tmp_path / "out"
    result = run_cli("--model", setup.preset, "--corpus", setup.corpus, "--out", out, "--max-examples", 8)
    data = json.loads((out / "depth_statistics.json").read_text())
    assert data["metadata"]["sequence_length"] == 64 and data["num_examples"] == 8
    assert "8/8 examples" in result.stderr


def test_loading_errors_are_one_line(tmp_path, capsys, monkeypatch):
    """An hf:// path without network: whatever the loader raises is printed as one line."""
    from keras_act.analysis.__main__ import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    line = _one_line_error(main, ["--model", "hf://asi/no-such-checkpoint", "--text", "a"], capsys)
    assert line.startswith("python -m keras_act.analysis: error: cannot load --model hf://asi/no-such-checkpoint: ")
