"""Shared pytest configuration and fixtures of keras-act's tests.

The helpers themselves (tiny models, vocabularies, `require_shared`) are in
`tests/helpers.py`.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from tests.helpers import REFERENCE_DIR, SHARED_DIR, require_shared  # noqa: E402


@pytest.fixture(scope="session")
def shared_dir():
    """The `../shared` folder; skips the test when it is absent."""
    return require_shared(SHARED_DIR)


@pytest.fixture(scope="session")
def reference_dir():
    """The folder of the authors' reference fixtures; skips when absent."""
    return require_shared(REFERENCE_DIR)


def pytest_configure(config):
    config.addinivalue_line("markers", "large: slow tests (seconds to minutes)")
