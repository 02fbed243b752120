"""Every command of README.md and docs/*.md works as written, in sequence.

The commands are read from the ```bash blocks of the pages themselves, so the
pages and this test cannot drift apart. They run in order (README.md, then
docs/serving.md, then docs/depth_analysis.md) in one scratch folder, each on
what the previous ones wrote: the main job (`python -m training.pretrain`)
runs once and every later command uses its `runs/pretrain/` and
`saved_models/`. Only the changes of `SUBSTITUTIONS` are made (data paths to
../shared, and the few cuts in size named there), and only the commands of
`SKIPPED` are not run, each for the reason given.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import (
    SHARED_DIR,
    bash_blocks,
    block_commands,
    child_environment,
    require_shared,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
# The pages, in the order a new user meets them.
PAGES = ("README.md", "docs/serving.md", "docs/depth_analysis.md")

# (documented text, what it becomes, why). `{work}` is the scratch folder,
# `{shared}` the ../shared folder.
SUBSTITUTIONS = (
    ("SST-2/train.tsv", "{work}/sst2_train_head.tsv",
     "the first 256 examples of ../shared/data/glue/SST-2/train.tsv: all 67,349 take an hour"),
    ("SST-2/dev.tsv", "{shared}/data/glue/SST-2/dev.tsv", "GLUE data in ../shared"),
    ("held_out.txt", "{work}/held_out.txt",
     "the WikiText-2 articles that docs/depth_analysis.md holds out "
     "(tail -n +3347 of ../shared/data/corpus/wikitext2_wiki.valid.tokens)"),
    ("/work/shared", "{shared}", "../shared, wherever it is"),
    ("--steps 1000", "--steps 4",
     "docs/depth_analysis.md's pre-training: 4 steps (not 24 minutes) for the commands after it"),
    ("mnli.keras", "runs/finetune/model.keras",
     "no documented command trains MNLI: the SST-2 classifier of the README's "
     "fine-tuning command stands in (a text classifier serves pairs)"),
    ("/tmp/", "{work}/tmp/", "scratch files stay in the test's folder"),
)

# Start of a documented command (as `normalize` writes it) -> why it is not run.
SKIPPED = {
    "python3 -m venv": "the set-up (network, minutes): .ci/run runs it in a fresh virtualenv",
    "python -m pytest": "the test suite, of which this test is part",
    "python -m training.pretrain --preset albert_act_base": "needs a TPU (--strategy tpu) and a gs:// bucket",
    "python -m training.finetune --task cola --tfds glue/cola": (
        "downloads GLUE through TFDS (network); my_checkpoint/ is a placeholder"
    ),
    "python -m keras_act.analysis --model PATH": (
        "a synopsis (PATH, FILE, DIR placeholders); the same commands run above on real paths"
    ),
    "python -m keras_act.convert hf://": (
        "downloads from the Hugging Face hub (network); tests/test_convert.py and "
        "tests/test_convert_plain_albert.py convert local copies"
    ),
    "python -m training.pretrain --init hf://": (
        "downloads albert-base-v2 (network); tests/test_training_init.py continues from a local ALBERT"
    ),
    "docker run": "needs docker and the tensorflow/serving image (network)",
    "tensorflow_model_server": (
        "the model server binary is not installed here; tests/test_export_docs.py runs the "
        "documented exchanges against the export"
    ),
    "curl": "needs a running model server (see tensorflow_model_server)",
}
COMMAND_TIMEOUT_S = 1200


def normalize(command):
    """A command as one line: words joined by one space, comments dropped."""
    return " ".join(shlex.split(command.replace("\\\n", " "), comments=True))


def documented_commands():
    """`(page, command)` of every command of `PAGES`, in order."""
    result = []
    for page in PAGES:
        text = (REPO_ROOT / page).read_text(encoding="utf-8")
        for block in bash_blocks(text):
            result.extend((page, command) for command in block_commands(block))
    return result


def skip_reason(command):
    line = normalize(command)
    for start, reason in SKIPPED.items():
        if line.startswith(start):
            return reason
    return None


def substitute(command, work, shared):
    """`command` with every `SUBSTITUTIONS` entry replaced, in one pass (a
    replacement is never replaced again)."""
    table = {old: new.format(work=work, shared=shared) for old, new, _ in SUBSTITUTIONS}
    pattern = "|".join(re.escape(old) for old in sorted(table, key=len, reverse=True))
    return re.sub(pattern, lambda match: table[match.group(0)], command)


def is_assignment(command):
    return re.fullmatch(r"[A-Za-z_]\w*=\S+", command.strip()) is not None


def test_every_command_is_found_and_every_table_entry_is_used():
    commands = documented_commands()
    lines = [normalize(command) for _, command in commands]
    assert "python -m training.pretrain" in lines  # the main job
    assert sum(line.startswith("python -m keras_act.analysis") for line in lines) >= 6
    assert any(line.startswith("python -m keras_act.export") for line in lines)
    for start in SKIPPED:
        assert any(line.startswith(start) for line in lines), f"SKIPPED entry matches nothing: {start}"
    for old, _, _ in SUBSTITUTIONS:
        assert any(old in command for _, command in commands), f"SUBSTITUTIONS entry unused: {old}"
    # The multi-line `python -c "..."` is one command.
    (python_c,) = [c for _, c in commands if c.startswith("python -c")]
    assert python_c.count("\n") >= 5 and python_c.rstrip().endswith('"')


def test_substitutions_apply_once():
    command = "python x.py --train SST-2/train.tsv --out /tmp/depth_init --vocab /work/shared/v"
    assert substitute(command, "/tmp/w", "/s") == (
        "python x.py --train /tmp/w/sst2_train_head.tsv --out /tmp/w/tmp/depth_init --vocab /s/v"
    )


def test_block_commands_joins_continuations_and_quotes():
    block = 'A=1\n# a comment\nrun --x \\\n    --y  # trailing\npython -c "\nprint(1)\n"\n\n'
    assert block_commands(block) == ["A=1", "run --x \\\n    --y  # trailing", 'python -c "\nprint(1)\n"']
    assert normalize("run --x \\\n    --y  # trailing") == "run --x --y"


def _prepare_work_dir(work, shared):
    (work / "tmp").mkdir(parents=True)
    # Inputs named by SUBSTITUTIONS.
    with open(shared / "data" / "glue" / "SST-2" / "train.tsv", encoding="utf-8") as file:
        head = [next(file) for _ in range(257)]  # header + 256 examples
    (work / "sst2_train_head.tsv").write_text("".join(head), encoding="utf-8")
    lines = (shared / "data" / "corpus" / "wikitext2_wiki.valid.tokens").read_text(
        encoding="utf-8"
    ).splitlines(keepends=True)
    (work / "held_out.txt").write_text("".join(lines[3346:]), encoding="utf-8")
    # Commands that run a script of the repository by its path.
    (work / "benchmarks").symlink_to(REPO_ROOT / "benchmarks")


def _run(command, work, env):
    start = time.time()
    result = subprocess.run(
        ["bash", "-c", "set -eo pipefail\n" + command],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
    )
    return result, time.time() - start


def _last_lines(text, count=3):
    lines = [line for line in text.splitlines() if line.strip() and "AutoGraph" not in line]
    return " | ".join(lines[-count:])


@pytest.mark.large
def test_documented_commands_run_in_sequence(tmp_path):
    require_shared(SHARED_DIR / "data")
    shared = SHARED_DIR
    work = tmp_path / "work"
    _prepare_work_dir(work, shared)
    env = child_environment()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    # `python` is this interpreter, as in the user's activated virtualenv.
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])

    report, failures = [], []
    previous_page, assignments = None, []
    for page, command in documented_commands():
        if page != previous_page:
            previous_page, assignments = page, []
        reason = skip_reason(command)
        line = normalize(command)
        if reason:
            report.append(f"SKIP {page}: {line[:90]} ({reason})")
            continue
        script = substitute(command, work, shared)
        if is_assignment(script):
            assignments.append(script)
            continue
        result, seconds = _run("\n".join([*assignments, script]), work, env)
        status = "ok" if result.returncode == 0 else f"FAIL (exit {result.returncode})"
        report.append(f"{status} {seconds:.0f} s {page}: {line[:90]}")
        if result.returncode != 0:
            failures.append(f"{page}: {line}\n    -> {_last_lines(result.stderr or result.stdout)}")
    print("\n".join(report))

    # docs/depth_analysis.md: the exported SavedModel gives the preset's table.
    tables = {
        name: work / "runs" / "depth_analysis" / name / "depth_statistics.json"
        for name in ("report", "saved_model_report")
    }
    if all(path.is_file() for path in tables.values()):
        import json

        preset, saved = (json.loads(path.read_text()) for path in tables.values())
        assert saved["categories"] == preset["categories"]
        assert saved["max_layers"] == preset["max_layers"] == 6
    else:
        failures.append(f"docs/depth_analysis.md: tables missing: {[str(p) for p in tables.values()]}")
    assert not failures, "documented commands that fail:\n" + "\n".join(failures)
    shutil.rmtree(work, ignore_errors=True)
