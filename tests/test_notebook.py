"""The Colab notebook runs top to bottom on the CPU (demo configuration)."""

from pathlib import Path

import nbformat
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO_ROOT / "notebooks" / "pretrain_on_tpu.ipynb"


@pytest.mark.large
def test_notebook_runs_on_cpu(tmp_path):
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    source = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    assert 'TPUClusterResolver(tpu="local")' in source
    client = NotebookClient(
        notebook,
        timeout=900,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    outputs = [
        output.get("text", "") + str(output.get("data", {}).get("text/plain", ""))
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    ]
    text = "\n".join(outputs)
    assert "step 60/60" in text
    assert "dev sst2" in text
    assert (tmp_path / "albert_act_colab" / "saved_models" / "demo_sentiment" / "1").is_dir()
    assert "[CLS]" in text
