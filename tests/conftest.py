"""Shared pytest configuration and fixtures of keras-act's tests.

The helpers themselves (tiny models, vocabularies, `require_shared`) are in
`tests/helpers.py`.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from tests.helpers import (  # noqa: E402
    ALBERT_SPIECE,
    REFERENCE_DIR,
    SHARED_DIR,
    glue_sentences,
    hf_albert_tokenizer,
    require_shared,
    synthetic_corpus,
)


@pytest.fixture(scope="session")
def shared_dir():
    """The `../shared` folder; skips the test when it is absent."""
    return require_shared(SHARED_DIR)


@pytest.fixture(scope="session")
def reference_dir():
    """The folder of the authors' reference fixtures; skips when absent."""
    return require_shared(REFERENCE_DIR)


# The tokenizer and preprocessor tests' fixtures (a module that defines its
# own fixture of the same name uses its own).


@pytest.fixture(scope="module")
def spiece():
    """ALBERT's own SentencePiece model (../shared); skips when absent."""
    return require_shared(ALBERT_SPIECE)


@pytest.fixture(scope="module")
def tokenizer(spiece):
    """`AlbertActTokenizer` on ALBERT's own SentencePiece model."""
    from keras_act import AlbertActTokenizer

    return AlbertActTokenizer(proto=str(spiece))


@pytest.fixture(scope="module")
def hf(spiece):
    """The reference: the slow `transformers.AlbertTokenizer` on the same model."""
    return hf_albert_tokenizer(spiece)


@pytest.fixture(scope="module")
def glue():
    """Every sentence of GLUE CoLA dev and SST-2 dev (../shared)."""
    return glue_sentences()


@pytest.fixture(scope="module")
def tiny_spiece(tmp_path_factory):
    """A small ALBERT-compatible model trained here, for tests without ../shared."""
    from training.vocab import train_vocabulary

    folder = tmp_path_factory.mktemp("tiny_vocab")
    return train_vocabulary([synthetic_corpus(folder / "corpus.txt")], 120, folder)


@pytest.fixture(scope="module")
def tiny_tokenizer(tiny_spiece):
    """`AlbertActTokenizer` on `tiny_spiece`."""
    from keras_act import AlbertActTokenizer

    return AlbertActTokenizer(proto=str(tiny_spiece))


def pytest_configure(config):
    config.addinivalue_line("markers", "large: slow tests (seconds to minutes)")
