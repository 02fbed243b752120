"""The isolated serving process (benchmarks/serving_session.py) in a virtualenv.

The serving checks run `python -I -S benchmarks/serving_session.py`: no `.pth`
files, no current folder, so no keras-act. Under `-S` the interpreter does not
know it is in a virtualenv, so the child is handed the parent's own
site-packages folders. This test builds a virtualenv in which tensorflow is
found only through the virtualenv's site-packages (its base interpreter's
folders are not used), runs a client there, and checks what the child imports.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.serving_client import REPO, parent_site_packages

REPOSITORY_PACKAGES = ("keras_act", "training", "__editable__")


def _virtualenv_with_these_packages(root):
    """A new virtualenv whose site-packages links this interpreter's packages.

    Every entry of this interpreter's site-packages is linked into the new
    virtualenv's, except `.pth` files and keras-act's own install (so
    keras-act is importable there only from the current folder, as in a
    clone). The virtualenv's base interpreter is this one's base, whose own
    site-packages the child must not rely on.

    Returns:
        `(python, site_packages)` of the new virtualenv.
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    completed = subprocess.run(
        [str(python), "-c", "import site; print(site.getsitepackages()[0])"],
        capture_output=True,
        text=True,
        check=True,
    )
    target = Path(completed.stdout.strip())
    for folder in parent_site_packages():
        for entry in Path(folder).iterdir():
            name = entry.name
            if name.endswith(".pth") or name.startswith(REPOSITORY_PACKAGES):
                continue
            if not (target / name).exists():
                (target / name).symlink_to(entry)
    return python, target


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX virtualenv layout")
def test_isolated_child_imports_tensorflow_of_a_virtualenv_and_no_keras_act(tmp_path):
    python, site_packages = _virtualenv_with_these_packages(tmp_path / "venv")
    client = (
        "import json\n"
        "from benchmarks.serving_client import parent_site_packages, run_isolated\n"
        "print(json.dumps({'given': parent_site_packages(), "
        "'isolation': run_isolated({})['isolation']}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    completed = subprocess.run(
        [str(python), "-c", client],
        cwd=REPO,
        env=dict(env, TF_CPP_MIN_LOG_LEVEL="3"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    isolation = report["isolation"]
    # The client handed the child its virtualenv's site-packages...
    assert report["given"] == [str(site_packages.resolve())]
    # ...where the child found tensorflow, running with -I -S.
    assert isolation["isolated"] and isolation["no_site"]
    assert isolation["tensorflow_file"].startswith(str(site_packages.resolve()) + os.sep)
    assert isolation["tensorflow_text"]
    # The repository is not on its path and its packages do not import.
    assert str(REPO) not in isolation["sys_path"]
    assert isolation["keras_act_on_path"] is False
    for package in ("keras_act", "keras_hub", "training"):
        error = isolation["import_errors"][package]
        assert error is not None and error.startswith("ModuleNotFoundError"), (package, error)
    assert isolation["modules"] == []


def test_isolated_child_requires_the_site_packages_folders(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-I", "-S", str(REPO / "benchmarks" / "serving_session.py"), "a", "b"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode != 0
    assert "--site-packages DIR" in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1
