"""Shared pytest configuration and fixtures of keras-act's tests."""

import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

# `../shared` beside the repository (read-only data and reference fixtures);
# a user's clone has none, CI always has it.
SHARED_DIR = Path(
    os.environ.get("KERAS_ACT_SHARED", Path(__file__).resolve().parents[2] / "shared")
)
REFERENCE_DIR = SHARED_DIR / "fixtures" / "albert_act_reference"


def require_shared(path=SHARED_DIR):
    """Skips the calling test when `path` (under ../shared) is absent."""
    if not Path(path).exists():
        pytest.skip(
            f"{path} is absent: the shared data/fixtures folder is only beside "
            "the repository on CI and developer machines (set KERAS_ACT_SHARED)."
        )
    return Path(path)


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
