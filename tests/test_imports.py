"""The library's imports: self-contained, acyclic, lazy, and still loadable by Keras.

- No module of `keras_act/` imports `training`, `benchmarks` or `tests`
  (anywhere, even inside a function).
- The module-level imports among `keras_act` modules form no cycle.
- `import keras_act` and its TensorFlow-free modules import no TensorFlow.
- A `.keras` file and a preset load in a fresh process that only did
  `import keras_act` (its classes are registered once Keras is imported).
"""

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = REPO_ROOT / "keras_act"
FORBIDDEN_PACKAGES = ("training", "benchmarks", "tests")
# Modules that must import without TensorFlow, Keras or keras-hub.
TENSORFLOW_FREE_MODULES = (
    "keras_act",
    "keras_act.checks",
    "keras_act.data",
    "keras_act.data.text_corpus",
    "keras_act.data.sentence_order",
    "keras_act.export.atomic",
    "keras_act.keras_registration",
    "keras_act.lazy_imports",
    "keras_act.layers",
    "keras_act.models",
    "keras_act.tokenizers",
    "keras_act.tokenizers.special_tokens",
    "training.run_files",
    "training.demo_corpus",
    "training.vocab",
)
HEAVY_MODULES = ("tensorflow", "keras", "keras_hub")


def package_modules(package_dir=PACKAGE_DIR):
    """`{module name: source path}` of every module of a package folder."""
    root = package_dir.parent
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _absolute(module, is_package, node):
    """The absolute module name of an `ImportFrom` (relative ones resolved)."""
    if not node.level:
        return node.module
    package = module.split(".") if is_package else module.split(".")[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _is_type_checking_block(node):
    """`if TYPE_CHECKING:` (or `typing.TYPE_CHECKING`): never run."""
    test = node.test if isinstance(node, ast.If) else None
    return getattr(test, "id", getattr(test, "attr", None)) == "TYPE_CHECKING"


def imported_names(module, path, module_level_only):
    """The module names an AST imports: `import a.b` gives `a.b`; `from a import
    b` gives `a` and `a.b` (which may be a module). With `module_level_only`,
    imports inside functions (run later, not at import time) and in
    `if TYPE_CHECKING:` blocks (never run) are left out; those in class
    bodies, other `if` and `try` blocks are kept."""
    tree = ast.parse(path.read_text(encoding="utf8"), filename=str(path))
    is_package = path.name == "__init__.py"
    names = []

    def visit(node):
        for child in ast.iter_child_nodes(node):
            if module_level_only and (
                isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                or _is_type_checking_block(child)
            ):
                continue
            if isinstance(child, ast.Import):
                names.extend(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = _absolute(module, is_package, child)
                names.append(base)
                names.extend(f"{base}.{alias.name}" for alias in child.names)
            visit(child)

    visit(tree)
    return names


def import_graph(modules):
    """The module-level import edges among `modules` (a dict name -> path).

    Importing `a.b.c` first runs the `__init__` of `a` and `a.b`, so an edge
    goes to each of them as well, except to the importer's own packages:
    those have started importing before the importer, so they are no cycle.
    """
    graph = {}
    for module, path in modules.items():
        own_packages = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)}
        if path.name == "__init__.py":
            own_packages.add(module)
        targets = set()
        for name in imported_names(module, path, module_level_only=True):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                target = ".".join(parts[:i])
                if target in modules and target not in own_packages and target != module:
                    targets.add(target)
        graph[module] = sorted(targets)
    return graph


def find_cycle(graph):
    """A cycle of `graph` as a list `[a, b, ..., a]`, or None."""
    state = {}
    stack = []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in graph.get(node, ()):
            if state.get(target) == "open":
                return stack[stack.index(target) :] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_library_never_imports_training_benchmarks_or_tests():
    offenders = []
    for module, path in package_modules().items():
        for name in imported_names(module, path, module_level_only=False):
            if name.split(".")[0] in FORBIDDEN_PACKAGES:
                offenders.append(f"{path.relative_to(REPO_ROOT)} imports {name}")
    assert not offenders, "keras_act/ must be self-contained:\n" + "\n".join(sorted(set(offenders)))


def test_the_library_has_no_import_cycle():
    cycle = find_cycle(import_graph(package_modules()))
    assert cycle is None, "import cycle among keras_act modules: " + " -> ".join(cycle)


def test_the_cycle_finder_reports_a_package_init_cycle(tmp_path):
    """The eager `__init__` of the old `keras_act.models` made a cycle through
    `keras_act.tokenizers`; the graph must show such a cycle."""
    files = {
        "pkg/__init__.py": "",
        "pkg/models/__init__.py": "from pkg.models.preprocessor import P\n",
        "pkg/models/backbone.py": "import os\n",
        "pkg/models/preprocessor.py": "from pkg.tokenizers.tokenizer import T\n",
        "pkg/tokenizers/__init__.py": "",
        "pkg/tokenizers/tokenizer.py": (
            "from typing import TYPE_CHECKING\n"
            "from pkg.models.backbone import B\n"
            "if TYPE_CHECKING:\n    import pkg.models.preprocessor\n"
            "def later():\n    import pkg.models.preprocessor\n"
        ),
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = import_graph(package_modules(tmp_path / "pkg"))
    assert find_cycle(graph) == [
        "pkg.models",
        "pkg.models.preprocessor",
        "pkg.tokenizers.tokenizer",
        "pkg.models",
    ]
    # A package's own submodules importing each other is no cycle; a
    # function-level or `TYPE_CHECKING` import is not an import-time edge.
    (tmp_path / "pkg/models/__init__.py").write_text("")
    assert find_cycle(import_graph(package_modules(tmp_path / "pkg"))) is None


def test_every_registering_module_is_registered_on_keras_import():
    from keras_act.keras_registration import REGISTERING_MODULES

    registering = sorted(
        module
        for module, path in package_modules().items()
        if "register_keras_serializable" in path.read_text(encoding="utf8")
        and module != "keras_act.keras_registration"
    )
    assert sorted(REGISTERING_MODULES) == registering


def _run_python(code, timeout=600):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_tensorflow_free_modules_import_without_tensorflow():
    output = _run_python(
        f"""
        import importlib, json, sys
        heavy = {{}}
        for name in {TENSORFLOW_FREE_MODULES!r}:
            importlib.import_module(name)
            heavy[name] = sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules)
        print(json.dumps(heavy))
        """
    )
    heavy = json.loads(output.strip().splitlines()[-1])
    assert heavy == {name: [] for name in TENSORFLOW_FREE_MODULES}


def test_import_keras_act_alone_loads_no_tensorflow():
    _run_python("import keras_act, sys; assert 'tensorflow' not in sys.modules")


PUBLIC_API = [
    "AlbertAct",
    "AlbertActBackbone",
    "AlbertActMultipleChoice",
    "AlbertActMultipleChoicePreprocessor",
    "AlbertActPairPreprocessor",
    "AlbertActPreprocessor",
    "AlbertActPretrainer",
    "AlbertActQuestionAnswerer",
    "AlbertActQuestionAnswererPreprocessor",
    "AlbertActTextClassifier",
    "AlbertActTextClassifierPreprocessor",
    "AlbertActTextRegressor",
    "AlbertActTokenClassifier",
    "AlbertActTokenClassifierPreprocessor",
    "AlbertActTokenizer",
    "AlbertBlock",
    "__version__",
    "convert",
]


def test_the_public_api_is_unchanged():
    import keras_act

    assert keras_act.__all__ == PUBLIC_API


def test_public_names_are_imported_on_first_use():
    output = _run_python(
        """
        import sys
        import keras_act
        assert "keras_act.models.albert_act_backbone" not in sys.modules
        names = dir(keras_act)
        assert set(keras_act.__all__) <= set(names), names
        backbone_cls = keras_act.AlbertActBackbone
        from keras_act.models.albert_act_backbone import AlbertActBackbone
        assert backbone_cls is AlbertActBackbone
        from keras_act.models import AlbertActTask
        from keras_act.tokenizers import AlbertActTokenizer
        assert keras_act.AlbertActTokenizer is AlbertActTokenizer
        assert keras_act.convert.load_hf_checkpoint.__module__ == "keras_act.convert.hf_checkpoint"
        assert AlbertActTask.__name__ == "AlbertActTask"
        # Subpackages are attributes on first use, as when imported eagerly.
        assert keras_act.models.AlbertActTask is AlbertActTask
        assert keras_act.data.text_corpus.split_sentences("It rained. We stayed.") == ["It rained.", "We stayed."]
        for name in keras_act.__all__:
            getattr(keras_act, name)
        try:
            keras_act.NoSuchName
        except AttributeError as error:
            print(error)
        """
    )
    assert "module 'keras_act' has no attribute 'NoSuchName'" in output


def test_public_names_stay_what_they_are_after_their_modules_are_imported():
    # Importing a submodule binds its name on the package: a public function
    # named like a submodule (`keras_act.layers.ponder_cost` was both) then
    # became the module once the task models had imported it.
    output = _run_python(
        """
        import importlib, inspect, pkgutil
        import keras_act
        from keras_act.models import albert_act_task  # imports the layers' modules
        for info in pkgutil.walk_packages(keras_act.__path__, "keras_act."):
            if info.ispkg:
                package = importlib.import_module(info.name)
                for name in getattr(package, "__all__", []):
                    value = getattr(package, name)
                    assert not inspect.ismodule(value) or name == "convert", (info.name, name, value)
        from keras_act.layers import ponder_cost
        print(ponder_cost.__module__, callable(ponder_cost))
        """
    )
    assert "keras_act.layers.ponder True" in output


def test_a_public_name_that_is_also_a_submodule_is_refused(tmp_path):
    package = tmp_path / "clash"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "from keras_act.lazy_imports import lazy_attributes\n"
        "if TYPE_CHECKING:\n"
        "    from clash.tools import helper\n"
        "__getattr__, __dir__, __all__ = lazy_attributes(__name__, __file__)\n"
    )
    (package / "tools.py").write_text("def helper():\n    return 1\n")
    (package / "helper.py").write_text("")
    result = subprocess.run(
        [sys.executable, "-c", "import clash"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO_ROOT)])},
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "public name 'helper' (from clash.tools) is also the name of a submodule clash.helper" in result.stderr


@pytest.mark.parametrize(
    "first_import",
    [
        "import keras",
        "import tensorflow",
    ],
)
def test_saved_model_and_preset_load_after_import_keras_act_only(tmp_path, first_import):
    """A fresh process that only did `import keras_act` loads keras-act's
    `.keras` files and presets however Keras comes to be imported."""
    import keras
    import numpy as np

    import keras_act
    from tests.helpers import tiny_backbone, train_tiny_sentencepiece

    backbone = tiny_backbone(60)
    tokenizer = keras_act.AlbertActTokenizer(
        proto=str(train_tiny_sentencepiece(tmp_path / "spm.model", vocab_size=60))
    )
    backbone.save(tmp_path / "backbone.keras")
    backbone.save_to_preset(str(tmp_path / "preset"))
    tokenizer.save_to_preset(str(tmp_path / "preset"))
    inputs = {
        "token_ids": np.array([[2, 10, 11, 3, 0]], "int32"),
        "segment_ids": np.zeros((1, 5), "int32"),
        "padding_mask": np.array([[1, 1, 1, 1, 0]], "int32"),
    }
    expected = keras.ops.convert_to_numpy(backbone(inputs)["sequence_output"])
    np.save(tmp_path / "expected.npy", expected)
    np.savez(tmp_path / "inputs.npz", **inputs)

    output = _run_python(
        f"""
        import sys
        import keras_act
        assert "tensorflow" not in sys.modules
        {first_import}
        import keras
        import keras_hub
        import numpy as np

        inputs = dict(np.load({str(tmp_path / "inputs.npz")!r}))
        expected = np.load({str(tmp_path / "expected.npy")!r})
        loaded = keras.saving.load_model({str(tmp_path / "backbone.keras")!r})
        from_preset = keras_hub.models.Backbone.from_preset({str(tmp_path / "preset")!r})
        tokenizer = keras_hub.tokenizers.Tokenizer.from_preset({str(tmp_path / "preset")!r})
        for model in (loaded, from_preset):
            assert type(model).__name__ == "AlbertActBackbone", type(model)
            got = keras.ops.convert_to_numpy(model(inputs)["sequence_output"])
            np.testing.assert_allclose(got, expected, atol=1e-5)
        print(type(tokenizer).__name__)
        """
    )
    assert output.strip().splitlines()[-1] == "AlbertActTokenizer"
