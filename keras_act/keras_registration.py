"""Registers keras-act's Keras classes as soon as Keras is imported.

`import keras_act` imports no TensorFlow: its public names are imported on
first use. Keras, however, finds the class of a saved object
(`"keras_act>AlbertActBackbone"` in a `.keras` file or a preset's
`config.json`) only among the classes registered so far, which the modules
defining them do when they are imported. So that
`keras.saving.load_model(...)` or `keras_hub.models.Backbone.from_preset(...)`
works in a process that did no more than `import keras_act`, the modules of
`REGISTERING_MODULES` are imported:

- by `install()` itself when Keras is imported already;
- otherwise right after Keras is imported: a finder in `sys.meta_path` notes
  when the imports of TensorFlow, TensorFlow Text, Keras, keras-hub and
  keras-act's own modules start and finish, and once the outermost of them
  has finished with Keras imported, imports the registering modules (never
  while one of those is half-imported, which would import it circularly),
  then removes itself.

This module imports neither TensorFlow nor Keras.
"""

import importlib
import importlib.abc
import sys
import threading
import warnings

#: The keras-act modules that register Keras classes
#: (`keras.saving.register_keras_serializable`).
REGISTERING_MODULES = (
    "keras_act.layers.albert_act",
    "keras_act.layers.albert_block",
    "keras_act.layers.halting",
    "keras_act.layers.input_checks",
    "keras_act.layers.ponder",
    "keras_act.models.albert_act_backbone",
    "keras_act.models.albert_act_multiple_choice",
    "keras_act.models.albert_act_multiple_choice_preprocessor",
    "keras_act.models.albert_act_pretrainer",
    "keras_act.models.albert_act_question_answerer",
    "keras_act.models.albert_act_question_answerer_preprocessor",
    "keras_act.models.albert_act_text_classifier",
    "keras_act.models.albert_act_text_classifier_preprocessor",
    "keras_act.models.albert_act_text_regressor",
    "keras_act.models.albert_act_token_classifier",
    "keras_act.models.albert_act_token_classifier_preprocessor",
    "keras_act.tokenizers.albert_act_preprocessor",
    "keras_act.tokenizers.albert_act_tokenizer",
)

# Top-level packages whose import may import Keras, or is imported by the
# registering modules (registering while one is half-imported would fail).
_WATCHED_PACKAGES = frozenset({"tensorflow", "tensorflow_text", "keras", "keras_hub"})

_lock = threading.RLock()
_state = {"imports_in_progress": 0, "registered": False}


def register_keras_classes():
    """Imports every module of `REGISTERING_MODULES` (imports TensorFlow).

    Returns:
        The tuple of imported module names.
    """
    with _lock:
        _state["registered"] = True
        _uninstall()
    for name in REGISTERING_MODULES:
        importlib.import_module(name)
    return REGISTERING_MODULES


def install():
    """Registers keras-act's Keras classes now if Keras is imported, else
    once it is (see the module docstring). Called by `import keras_act`."""
    with _lock:
        if _state["registered"]:
            return
        if "keras" not in sys.modules:
            if not any(isinstance(finder, _ImportWatcher) for finder in sys.meta_path):
                sys.meta_path.insert(0, _ImportWatcher())
            return
    register_keras_classes()


def _uninstall():
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _ImportWatcher)]


def _watched(fullname):
    return fullname in _WATCHED_PACKAGES or fullname.startswith("keras_act.")


def _import_finished():
    with _lock:
        _state["imports_in_progress"] -= 1
        ready = (
            _state["imports_in_progress"] == 0
            and not _state["registered"]
            and "keras" in sys.modules
        )
    if ready:
        try:
            register_keras_classes()
        except Exception as error:  # noqa: BLE001 - never break the user's import
            warnings.warn(
                f"keras_act could not register its Keras classes ({error!r}); "
                "import keras_act.models before loading a keras-act model.",
                stacklevel=2,
            )


class _CountingLoader(importlib.abc.Loader):
    """Delegates to a module's own loader, counting the imports in progress."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        # The module's own loader, not this wrapper, stays its `__loader__`.
        module.__loader__ = self._loader
        with _lock:
            _state["imports_in_progress"] += 1
        succeeded = False
        try:
            self._loader.exec_module(module)
            succeeded = True
        finally:
            if succeeded:
                _import_finished()
            else:
                with _lock:
                    _state["imports_in_progress"] -= 1

    def __getattr__(self, name):
        return getattr(self._loader, name)


class _ImportWatcher(importlib.abc.MetaPathFinder):
    """Finds watched modules with the other finders and counts their imports."""

    def find_spec(self, fullname, path, target=None):
        if not _watched(fullname) or _state["registered"]:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _CountingLoader(spec.loader)
                return spec
        return None
