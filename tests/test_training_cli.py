"""The command lines of `training` (pretrain, finetune, vocab) agree:
`--help` shows every flag with a help line and its default, `--model` and
`--out` name a model and an output folder (the old `--init` and
`--model-dir` still work), and an output folder that is a file is a
one-line error (in-process: these checks run before TensorFlow)."""

import argparse

import pytest

from training import finetune, pretrain, vocab

PARSERS = {
    "pretrain": pretrain.build_parser,
    "finetune": finetune.build_parser,
    "vocab": vocab.build_parser,
}


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_help_has_a_line_and_the_default_of_every_flag(name):
    parser = PARSERS[name]()
    text = " ".join(parser.format_help().split())
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        flag = action.option_strings[0]
        assert (action.help or "").strip(), f"{name} {flag} has no help line"
        assert flag in text
        if action.default not in (None, False):
            assert f"(default: {action.default})" in text, f"{name} {flag} hides its default"


@pytest.mark.parametrize(
    "name, base, new, old, dest",
    [
        ("pretrain", [], "--out", "--model-dir", "model_dir"),
        ("finetune", ["--task", "sst2", "--model", "m"], "--out", "--model-dir", "model_dir"),
        ("finetune", ["--task", "sst2"], "--model", "--init", "init"),
    ],
)
def test_one_spelling_everywhere_and_the_old_one_kept(name, base, new, old, dest):
    parser = PARSERS[name]()
    assert getattr(parser.parse_args([*base, new, "somewhere"]), dest) == "somewhere"
    assert getattr(parser.parse_args([*base, old, "somewhere"]), dest) == "somewhere"


def test_an_output_folder_that_is_a_file_is_a_one_line_error(tmp_path, capsys):
    existing = tmp_path / "notes.txt"
    existing.write_text("mine")
    below = existing / "run"
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("some text\n")
    cases = [
        (pretrain.main, ["--out", str(existing)], f"--out {existing} is an existing file"),
        (pretrain.main, ["--model-dir", str(below)], f"--out {below}: {existing} is an existing file"),
        (pretrain.main, ["--export-dir", str(existing)], f"--export-dir {existing} is an existing file"),
        (vocab.main, ["--corpus", str(corpus), "--vocab-size", "20", "--out", str(existing)],
         f"--out {existing} is an existing file"),
    ]  # fmt: skip
    for main, argv, message in cases:
        with pytest.raises(SystemExit) as raised:
            main(argv)
        assert raised.value.code == 2
        err = capsys.readouterr().err
        assert err.strip().splitlines() == [err.strip()], err
        assert message in err and "Traceback" not in err
    assert existing.read_text() == "mine"
