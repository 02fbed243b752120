"""The README's install recipes (CPU, GPU, TPU) each leave one TensorFlow.

The recipes are read from README.md itself: the set-up line of the first
bash block (CPU) and the lines of "Install on GPU and TPU", so the page and
this test cannot drift apart. The CPU and TPU recipes run in fresh virtualenvs
(`tensorflow-tpu` and `libtpu` come from the package index and run CPU ops
here; no TPU can be reached), then `import keras_act` and three pre-training
steps. The GPU recipe's `[and-cuda]` wheels are ~3 GB: only its resolution is
checked (`pip install --dry-run --report`, which reads the wheels' metadata).
"""

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

REPO_ROOT = Path(__file__).resolve().parents[1]
README = (REPO_ROOT / "README.md").read_text()
TPU_REQUIREMENTS = REPO_ROOT / "requirements-tpu.txt"

# Every distribution that installs the `tensorflow` Python package.
TENSORFLOW_DISTRIBUTIONS = {
    "tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tensorflow-tpu", "tensorflow-intel",
    "tensorflow-macos", "tensorflow-aarch64", "intel-tensorflow", "tf-nightly",
    "tf-nightly-cpu", "tf-nightly-gpu", "tf-nightly-tpu",
}
# What the TPU recipe installs with --no-deps (they declare plain `tensorflow`).
NO_DEPS = {"tensorflow-text", "tensorflow-serving-api", "keras-hub"}
RECIPE_TIMEOUT_S = 1800


def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def recipe(kind):
    """The README's install command for `kind` ("CPU", "GPU" or "TPU")."""
    if kind == "CPU":
        block = re.search(r"```bash\n(.*?)```", README, re.S).group(1)
        return block.splitlines()[0].split("#")[0].strip()
    section = re.search(r"^## Install on GPU and TPU\n(.*?)^## ", README, re.S | re.M).group(1)
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    lines = [line for line in block.splitlines() if re.search(rf"#\s*{kind}\b", line)]
    assert len(lines) == 1, f"README's 'Install on GPU and TPU' has {len(lines)} {kind} lines"
    return lines[0].split("#")[0].strip()


def setup_requirements():
    """setup.py's install_requires, as packaging Requirements by name."""
    tree = ast.parse((REPO_ROOT / "setup.py").read_text())
    call = next(node for node in ast.walk(tree) if isinstance(node, ast.Call)
                and getattr(node.func, "id", None) == "setup")
    keyword = next(k for k in call.keywords if k.arg == "install_requires")
    return {canonical(Requirement(r).name): Requirement(r) for r in ast.literal_eval(keyword.value)}


def file_requirements(path):
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return {canonical(Requirement(line).name): Requirement(line) for line in lines if line}


def no_deps_requirements(command):
    """The quoted requirements of the TPU recipe's `pip install --no-deps` step."""
    step = command[command.index("pip install --no-deps"):]
    return {canonical(Requirement(r).name): Requirement(r) for r in re.findall(r'"([^"]+)"', step)}


def test_setup_supports_tensorflow_2_20_and_2_21():
    requirements = setup_requirements()
    for name in ("tensorflow", "tensorflow-text", "tensorflow-serving-api"):
        for version, supported in (("2.19.0", False), ("2.20.0", True), ("2.21.0", True),
                                   ("2.22.0", False)):
            assert requirements[name].specifier.contains(version) is supported, (name, version)
    assert requirements["tensorboard"].specifier.contains("2.20.0")


def test_tpu_recipe_installs_what_setup_requires_with_tensorflow_tpu():
    """requirements-tpu.txt + the --no-deps step = setup.py, tensorflow -> tensorflow-tpu."""
    command = recipe("TPU")
    assert "pip install -r requirements-tpu.txt" in command and "-e ." in command
    required = setup_requirements()
    listed = file_requirements(TPU_REQUIREMENTS)
    no_deps = no_deps_requirements(command)
    assert set(no_deps) == NO_DEPS
    # Everything setup.py requires, less TensorFlow and the --no-deps ones, is
    # listed with the same range.
    for name, requirement in required.items():
        if name == "tensorflow" or name in NO_DEPS:
            assert name not in listed, f"requirements-tpu.txt must not list {name}"
        else:
            assert name in listed, f"requirements-tpu.txt lacks {requirement}"
            assert listed[name].specifier == requirement.specifier, (listed[name], requirement)
    # tensorflow-tpu and the --no-deps versions are ones setup.py accepts.
    (tpu_version,) = (Version(s.version) for s in listed["tensorflow-tpu"].specifier)
    assert required["tensorflow"].specifier.contains(tpu_version)
    assert not set(listed) & (TENSORFLOW_DISTRIBUTIONS - {"tensorflow-tpu"})
    for name, requirement in no_deps.items():
        (spec,) = requirement.specifier
        assert required[name].specifier.contains(spec.version), (requirement, required[name])
        if name != "keras-hub":  # TF's own packages: the same minor as tensorflow-tpu.
            assert Version(spec.version).release[:2] == tpu_version.release[:2], requirement


def pip_list(python):
    out = subprocess.run([str(python), "-m", "pip", "list", "--format=json"],
                         capture_output=True, text=True, check=True).stdout
    return {canonical(d["name"]): d["version"] for d in json.loads(out)}


def run_recipe(kind, tmp_path):
    """Runs the README's `kind` recipe in a fresh virtualenv under tmp_path."""
    venv = tmp_path / "venv"
    command = recipe(kind).replace(".venv", str(venv))
    done = subprocess.run(["bash", "-c", command], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=RECIPE_TIMEOUT_S,
                          env={**os.environ, "PIP_PROGRESS_BAR": "off"})
    assert done.returncode == 0, f"{kind} recipe failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return venv / "bin" / "python"


def check_one_tensorflow_and_pretraining(python, tmp_path, expected, env=None):
    installed = pip_list(python)
    assert {name for name in installed if name in TENSORFLOW_DISTRIBUTIONS} == {expected}
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    env.pop("PYTHONPATH", None)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    check = subprocess.run(
        [str(python), "-c", "import keras_act, tensorflow as tf; print(tf.__version__, keras_act.__file__)"],
        cwd=run_dir, capture_output=True, text=True, env=env, timeout=600)
    assert check.returncode == 0, check.stderr[-3000:]
    assert check.stdout.split()[0] == installed[expected]
    pretrain = subprocess.run(
        [str(python), "-m", "training.pretrain", "--steps", "3", "--batch-size", "4",
         "--sequence-length", "32", "--log-every", "1", "--out", str(run_dir / "pretrain"),
         "--export-dir", str(run_dir / "saved_models")],
        cwd=run_dir, capture_output=True, text=True, env=env, timeout=1200)
    assert pretrain.returncode == 0, pretrain.stdout[-3000:] + pretrain.stderr[-3000:]
    assert "step 3/3" in pretrain.stdout + pretrain.stderr
    return installed


@pytest.mark.large
def test_cpu_recipe_in_a_fresh_virtualenv(tmp_path):
    # .ci/run makes its fresh virtualenv with this very recipe (the README's
    # set-up line) and names it in KERAS_ACT_FRESH_VENV: then the running
    # environment is the one to check, and making a second one would only
    # repeat the install. Elsewhere the test makes its own.
    fresh = os.environ.get("KERAS_ACT_FRESH_VENV")
    if fresh and Path(sys.prefix).resolve() == Path(fresh).resolve():
        python = Path(fresh) / "bin" / "python"
    else:
        python = run_recipe("CPU", tmp_path)
    installed = check_one_tensorflow_and_pretraining(python, tmp_path, "tensorflow")
    assert Version(installed["tensorflow"]).release[:2] in ((2, 20), (2, 21))


@pytest.mark.large
def test_tpu_recipe_in_a_fresh_virtualenv(tmp_path):
    """tensorflow-tpu 2.20 + libtpu from the index, no plain tensorflow; CPU ops run."""
    python = run_recipe("TPU", tmp_path)
    # Off a TPU VM, libtpu would ask the (absent) GCP metadata server for the
    # TPU workers 30 times before TensorFlow finishes importing.
    off_tpu_vm = {"TPU_SKIP_MDS_QUERY": "1", "TPU_WORKER_HOSTNAMES": "localhost"}
    installed = check_one_tensorflow_and_pretraining(python, tmp_path, "tensorflow-tpu", off_tpu_vm)
    assert Version(installed["tensorflow-tpu"]).release[:2] == (2, 20)
    (libtpu,) = file_requirements(TPU_REQUIREMENTS)["libtpu"].specifier
    assert installed["libtpu"] == libtpu.version
    for name in NO_DEPS:
        assert name in installed, name
    # The --no-deps packages miss only their declared plain `tensorflow`.
    check = subprocess.run([str(python), "-m", "pip", "check"], capture_output=True, text=True)
    problems = [line for line in check.stdout.splitlines() if line.strip()]
    assert problems, "pip check found nothing: is plain tensorflow installed after all?"
    for line in problems:
        assert re.search(r"requires tensorflow, which is not installed", line, re.I), line


@pytest.mark.large
def test_gpu_recipe_resolves_to_one_tensorflow_with_cuda(tmp_path):
    """pip resolves the GPU recipe (metadata only: the CUDA wheels are ~3 GB)."""
    command = recipe("GPU")
    pip_args = command[command.index("pip install") + len("pip install"):]
    report = tmp_path / "report.json"
    done = subprocess.run(
        ["bash", "-c", f"{sys.executable} -m pip install --dry-run --ignore-installed "
                       f"--quiet --report {report} {pip_args}"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=RECIPE_TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-3000:]
    resolved = {canonical(item["metadata"]["name"]): item["metadata"]["version"]
                for item in json.loads(report.read_text())["install"]}
    assert {name for name in resolved if name in TENSORFLOW_DISTRIBUTIONS} == {"tensorflow"}
    assert Version(resolved["tensorflow"]).release[:2] in ((2, 20), (2, 21))
    assert any(name.startswith("nvidia-cudnn") for name in resolved), sorted(resolved)
    assert "keras-act" in resolved and "tensorflow-text" in resolved
