"""The Colab notebook: it stops with a plain message without a TPU, and runs
top to bottom on the CPU (demo configuration) when asked to."""

from pathlib import Path

import nbformat
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO_ROOT / "notebooks" / "pretrain_on_tpu.ipynb"


def notebook_with_settings(run_on_cpu):
    """The notebook, its first code cell's settings pointed at this checkout
    (keras-act is importable here, so the cell installs nothing)."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    first = next(cell for cell in notebook.cells if cell.cell_type == "code")
    for setting in ("KERAS_ACT_SOURCE = ", "RUN_ON_CPU_IF_NO_TPU = False"):
        assert setting in first.source, f"the first code cell lost its setting {setting!r}"
    first.source = first.source.replace(
        'KERAS_ACT_SOURCE = "', f'KERAS_ACT_SOURCE = {str(REPO_ROOT)!r}  # was "', 1
    ).replace("RUN_ON_CPU_IF_NO_TPU = False", f"RUN_ON_CPU_IF_NO_TPU = {run_on_cpu}", 1)
    return notebook


def outputs_text(notebook):
    return "\n".join(
        output.get("text", "")
        + str(output.get("data", {}).get("text/plain", ""))
        + output.get("evalue", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    )


def client(notebook, tmp_path):
    from nbclient import NotebookClient

    return NotebookClient(
        notebook, timeout=900, kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )


def test_first_cell_installs_with_the_readme_tpu_recipe():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    first = next(cell for cell in notebook.cells if cell.cell_type == "code").source
    assert "## Install on GPU and TPU" in first and '"# TPU" in line' in first
    assert "TPU VM or Colab TPU" in (REPO_ROOT / "README.md").read_text()


@pytest.mark.large
def test_notebook_without_a_tpu_says_so_and_stops(tmp_path):
    from nbclient.exceptions import CellExecutionError

    notebook = notebook_with_settings(run_on_cpu=False)
    with pytest.raises(CellExecutionError, match="RUN_ON_CPU_IF_NO_TPU"):
        client(notebook, tmp_path).execute()
    text = outputs_text(notebook)
    assert "There is no TPU in this runtime" in text
    assert "Stopped: no TPU" in text
    assert not (tmp_path / "albert_act_colab").exists()  # nothing ran on the CPU


@pytest.mark.large
def test_notebook_runs_on_cpu_when_asked(tmp_path):
    notebook = notebook_with_settings(run_on_cpu=True)
    source = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    assert 'TPUClusterResolver(tpu="local")' in source
    client(notebook, tmp_path).execute()
    text = outputs_text(notebook)
    assert "There is no TPU in this runtime" in text
    assert "running the small demo configuration on the CPU" in text
    assert "step 60/60" in text
    assert "dev sst2" in text
    assert (tmp_path / "albert_act_colab" / "saved_models" / "demo_sentiment" / "1").is_dir()
    assert "[CLS]" in text
