"""Package attributes imported on first use (PEP 562 module `__getattr__`).

A keras-act package writes its public imports as usual, but under
`if typing.TYPE_CHECKING:` (type checkers and editors read them; Python does
not run them), then asks `lazy_attributes` for its `__getattr__`, `__dir__`
and `__all__`: each public name is imported from its module when first used,
so importing a TensorFlow-free module of the package does not import
TensorFlow. This module imports neither TensorFlow nor Keras.
"""

import ast
import importlib
import importlib.util
import sys


def type_checking_imports(source):
    """The `from M import N` names of the `if TYPE_CHECKING:` blocks of a module.

    Args:
        source: str, the module's source.

    Returns:
        A dict of public name to the module it is imported from.

    Example:

    >>> type_checking_imports('''
    ... import typing
    ... if typing.TYPE_CHECKING:
    ...     from math import sqrt
    ...     from os import path as os_path
    ... ''')
    {'sqrt': 'math', 'os_path': 'os'}
    """
    sources = {}
    for node in ast.parse(source).body:
        test = node.test if isinstance(node, ast.If) else None
        name = getattr(test, "attr", getattr(test, "id", None))
        if name != "TYPE_CHECKING":
            continue
        for statement in node.body:
            if isinstance(statement, ast.ImportFrom) and not statement.level:
                for alias in statement.names:
                    sources[alias.asname or alias.name] = statement.module
    return sources


def lazy_attributes(package, init_file):
    """The `__getattr__`, `__dir__` and `__all__` of a package with lazy names.

    Args:
        package: str, the package's `__name__`.
        init_file: str, its `__init__.py` (`__file__`), whose
            `if TYPE_CHECKING:` imports name the public attributes (see
            `type_checking_imports`; `from keras_act import convert` makes
            a submodule public). Any other submodule is imported on first
            use too, but is neither in `__all__` nor listed by `__dir__`.

    Returns:
        A tuple `(__getattr__, __dir__, __all__)` to assign in the package's
        `__init__.py`.
    """
    with open(init_file, encoding="utf8") as file:
        sources = type_checking_imports(file.read())
    for name, module in sources.items():
        # Importing submodule `package.name` rebinds the package attribute
        # `name` to that module, hiding a public name imported from elsewhere.
        if module != package and _is_submodule(package, name):
            raise ImportError(
                f"{package}: public name {name!r} (from {module}) is also the "
                f"name of a submodule {package}.{name}; rename one of them."
            )

    def __getattr__(name):
        if name in sources:
            if sources[name] == package:  # `from package import submodule`
                value = importlib.import_module(f"{package}.{name}")
            else:
                value = getattr(importlib.import_module(sources[name]), name)
        elif not name.startswith("_") and _is_submodule(package, name):
            # `import keras_act` then `keras_act.models.AlbertActTask`, as
            # when every subpackage was imported eagerly.
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module '{package}' has no attribute '{name}'")
        if package in sys.modules:  # later lookups skip `__getattr__`
            setattr(sys.modules[package], name, value)
        return value

    def __dir__():
        namespace = vars(sys.modules[package]) if package in sys.modules else {}
        return sorted(set(namespace) | set(sources))

    return __getattr__, __dir__, sorted(sources)


def _is_submodule(package, name):
    try:
        return importlib.util.find_spec(f"{package}.{name}") is not None
    except ImportError:  # `package` is no package
        return False
