"""Every command-line tool documents every flag and says its defaults.

Each CLI is run as a user runs it (`python -m ...` / `python benchmarks/...`),
in a child process whose `argparse.ArgumentParser.parse_args` is replaced by a
probe that writes the parser's options out and exits, so what is checked is
the parser the tool really builds, before it loads TensorFlow models or data.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

CLIS = {
    "training.pretrain": ["-m", "training.pretrain"],
    "training.finetune": ["-m", "training.finetune"],
    "training.vocab": ["-m", "training.vocab"],
    "keras_act.convert": ["-m", "keras_act.convert"],
    "keras_act.export": ["-m", "keras_act.export"],
    "keras_act.analysis": ["-m", "keras_act.analysis"],
    "benchmarks/run.py": ["benchmarks/run.py"],
    "benchmarks/serving_load.py": ["benchmarks/serving_load.py"],
    "benchmarks/tokenizer_throughput.py": ["benchmarks/tokenizer_throughput.py"],
}

# Runs the CLI with parse_args replaced: the first parser that parses prints
# its options as JSON and the process exits before any work.
PROBE = r"""
import argparse, json, runpy, sys

def probe(self, *args, **kwargs):
    shows_defaults = issubclass(self.formatter_class, argparse.ArgumentDefaultsHelpFormatter)
    options = []
    for action in self._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        options.append({
            "flags": list(action.option_strings) or [action.dest],
            "help": action.help,
            "default": repr(action.default),
            "positional": not action.option_strings,
            "takes_value": action.nargs != 0,
            "shows_default": shows_defaults or "%(default)" in (action.help or ""),
        })
    print("PROBE" + json.dumps(options))
    sys.exit(0)

argparse.ArgumentParser.parse_args = probe
target = sys.argv[1]
sys.argv = [target]
if target.endswith(".py"):
    runpy.run_path(target, run_name="__main__")
else:
    runpy.run_module(target, run_name="__main__", alter_sys=True)
"""


def parser_options(cli):
    args = CLIS[cli]
    target = args[-1]
    result = subprocess.run(
        [sys.executable, "-c", PROBE, target],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("PROBE")]
    assert lines, f"{cli} built no parser:\n{result.stdout}\n{result.stderr[-3000:]}"
    return json.loads(lines[0][len("PROBE") :])


@pytest.mark.parametrize("cli", sorted(CLIS))
def test_every_flag_has_help_and_shows_its_default(cli):
    options = parser_options(cli)
    assert options
    missing_help = [o["flags"][0] for o in options if not (o["help"] or "").strip()]
    assert not missing_help, f"{cli}: flags without a help line: {missing_help}"
    # A flag that takes a value and has a default says what the default is.
    hidden_defaults = [
        o["flags"][0]
        for o in options
        if o["takes_value"] and not o["positional"] and o["default"] not in ("None", "'==SUPPRESS=='")
        and not o["shows_default"]
    ]
    assert not hidden_defaults, f"{cli}: defaults not shown in --help: {hidden_defaults}"


@pytest.mark.parametrize(
    "cli",
    ["training.pretrain", "training.finetune", "keras_act.convert", "keras_act.export", "keras_act.analysis"],
)
def test_model_and_output_are_named_the_same_way_everywhere(cli):
    """Every CLI that reads a model takes --model; every CLI that writes a folder takes --out."""
    flags = {flag for option in parser_options(cli) for flag in option["flags"]}
    if cli != "training.pretrain":  # pre-training starts from nothing unless --init/--model.
        assert "--model" in flags, f"{cli} has no --model"
    assert "--out" in flags, f"{cli} has no --out"
