"""The README's commands and quick start work as written."""

import re
import subprocess
from pathlib import Path

import numpy as np

from tests.helpers import bash_blocks, block_commands

REPO_ROOT = Path(__file__).resolve().parents[1]
README = (REPO_ROOT / "README.md").read_text()


def first_commands():
    """The README's first bash block, comments dropped (read as
    tests/test_documented_commands.py reads every documented command)."""
    first_block = bash_blocks(README)[0]
    return [command.split("#")[0].strip() for command in block_commands(first_block)]


def test_readme_starts_with_setup_main_job_and_tests():
    setup, main_job, tests = first_commands()
    # One line: a fresh virtualenv (Debian/Ubuntu refuse pip in the system
    # Python), activated, and everything installed into it.
    assert setup == 'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[dev]"'
    assert main_job == "python -m training.pretrain"
    assert tests == "python -m pytest"


def test_ci_runs_the_readme_setup_and_tests_in_a_fresh_virtualenv_outside_the_clone(tmp_path):
    """.ci/run takes its set-up and test lines from the README itself."""
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert "mktemp -d" in ci and "readme_command 1" in ci and "readme_command 3" in ci
    # The extraction .ci/run uses gives exactly the README's lines.
    script = ci[ci.index("readme_command() {") : ci.index("setup_line=")]
    out = subprocess.run(
        ["bash", "-c", script + "readme_command 1; readme_command 2; readme_command 3"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    assert out == first_commands()


def test_quick_start_runs_on_the_authors_base_checkpoint(shared_dir):
    code = re.search(r"## Quick start.*?```python\n(.*?)```", README, re.S).group(1)
    checkpoint = shared_dir / "fixtures" / "albert_act_reference" / "base_shape"
    vocab = shared_dir / "data" / "albert_v2_spiece.model"
    code = code.replace('"hf://asi/albert-act-base"', repr(str(checkpoint)))
    code = code.replace('"spiece.model"', repr(str(vocab)))
    namespace = {}
    exec(compile(code, "README quick start", "exec"), namespace)
    inputs, updates = namespace["inputs"], namespace["outputs"]["updates"].numpy()
    ids = np.asarray(inputs["token_ids"])[0]
    # [CLS], the 15 pieces of the sentence, [SEP], then padding.
    assert ids[:17].tolist() == [2, 21, 12667, 19, 14, 772, 16, 14, 19777, 15272, 17, 94, 1139, 2401, 13, 9, 3]
    assert updates.shape == (1, 32)
    assert np.all(updates[0, :17] >= 1) and np.all(updates[0, 17:] == 0)
