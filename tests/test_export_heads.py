"""`keras_act.export.heads`: one serving head per file, found by the registry."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import train_tiny_sentencepiece

REPO = Path(__file__).resolve().parents[1]

# Every task built on one tiny backbone, then its head looked up through the
# public name alone, in a fresh process (no head module imported before).
_FRESH_PROCESS_LOOKUP = """
import json, os, sys
os.environ["KERAS_BACKEND"] = "tensorflow"
import keras_act
from keras_act.export import serving_head_for
backbone = keras_act.AlbertActBackbone(
    vocabulary_size=200, num_layers=1, num_heads=1, hidden_dim=4, intermediate_dim=8,
    embedding_dim=4, max_sequence_length=8, max_layers=2)
models = [
    backbone,
    keras_act.AlbertActPretrainer(backbone),
    keras_act.AlbertActTextClassifier(backbone, 3),
    keras_act.AlbertActTextRegressor(backbone),
    keras_act.AlbertActTokenClassifier(backbone, 3),
    keras_act.AlbertActQuestionAnswerer(backbone),
    keras_act.AlbertActMultipleChoice(backbone),
]
tokenizer = keras_act.AlbertActTokenizer(proto=sys.argv[1])
print(json.dumps({type(m).__name__: type(serving_head_for(m, tokenizer)).__name__ for m in models}))
"""


def test_every_built_in_head_is_registered_in_a_fresh_process(tmp_path):
    """`keras_act.export` imports lazily: asking for `serving_head_for` must
    register every built-in head (the task heads were registered only when
    their module happened to be imported)."""
    vocab = train_tiny_sentencepiece(tmp_path / "tiny.model", vocab_size=200)
    result = subprocess.run(
        [sys.executable, "-c", _FRESH_PROCESS_LOOKUP, str(vocab)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "AlbertActBackbone": "BackboneHead",
        "AlbertActPretrainer": "MaskedLMHead",
        "AlbertActTextClassifier": "ClassifierHead",
        "AlbertActTextRegressor": "RegressorHead",
        "AlbertActTokenClassifier": "TokenClassifierHead",
        "AlbertActQuestionAnswerer": "QuestionAnswererHead",
        "AlbertActMultipleChoice": "MultipleChoiceHead",
    }


def test_each_head_module_holds_one_head():
    from keras_act.export import heads
    from keras_act.export.heads.base import ServingHead

    folder = Path(heads.__file__).parent
    for path in sorted(folder.glob("*.py")):
        if path.stem in ("__init__", "base", "registry"):
            continue
        module = __import__(f"keras_act.export.heads.{path.stem}", fromlist=["_"])
        defined = [
            value
            for value in vars(module).values()
            if isinstance(value, type)
            and issubclass(value, ServingHead)
            and value.__module__ == module.__name__
        ]
        assert len(defined) == 1, (path.name, defined)


@pytest.mark.parametrize("name", ["serving_heads", "task_heads"])
def test_the_old_head_modules_are_gone(name):
    with pytest.raises(ModuleNotFoundError):
        __import__(f"keras_act.export.{name}")
