"""Integer versions written atomically, and the export's argument checks."""

import os
import signal
import stat
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import tensorflow as tf

from keras_act.export import archive as archive_module
from keras_act.export import export_saved_model, list_versions, next_version, write_version
from keras_act.export.atomic import (
    STAGING_PREFIX,
    UNLOCKED_STALE_AFTER_S,
    check_version,
    remove_stale_staging,
)
from keras_act.export.warmup import models_config_text, write_models_config
from keras_act.tokenizers import (
    AlbertActPairPreprocessor,
    AlbertActPreprocessor,
    AlbertActTokenizer,
)
from tests.helpers import tiny_backbone, train_tiny_sentencepiece


def _write_files(staging):
    with open(os.path.join(staging, "saved_model.pb"), "wb") as file:
        file.write(b"graph")


# === Version numbers ===


def test_next_version_is_one_more_than_the_highest(tmp_path):
    assert next_version(tmp_path / "absent") == 1
    assert next_version(tmp_path) == 1
    for name in ("1", "3", "10x", ".tmp-export-abc", "models.config"):
        (tmp_path / name).mkdir() if name != "models.config" else (tmp_path / name).write_text("")
    (tmp_path / "7").write_text("a file, not a version")
    assert list_versions(tmp_path) == [1, 3]
    assert next_version(tmp_path) == 4


@pytest.mark.parametrize("version", [0, -1, True, "3", 1.5])
def test_bad_version_numbers_are_named(version):
    with pytest.raises(ValueError, match=f"version={version!r}"):
        check_version(version)


# === Atomic publication ===


def test_version_is_staged_beside_the_versions_then_renamed(tmp_path):
    seen = {}

    def write(staging):
        seen["staging"] = staging
        seen["parent"] = os.path.dirname(staging)
        seen["versions_while_writing"] = list_versions(tmp_path)
        _write_files(staging)

    path = write_version(str(tmp_path), write)
    assert path == os.path.join(str(tmp_path), "1")
    assert seen["parent"] == str(tmp_path)
    assert os.path.basename(seen["staging"]).startswith(STAGING_PREFIX)
    assert seen["versions_while_writing"] == []
    assert not os.path.exists(seen["staging"])
    assert os.listdir(tmp_path) == ["1"]
    assert open(os.path.join(path, "saved_model.pb"), "rb").read() == b"graph"


def test_published_version_has_the_mode_of_a_new_folder(tmp_path):
    path = write_version(str(tmp_path), _write_files)
    (tmp_path / "plain").mkdir()
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode == stat.S_IMODE(os.stat(tmp_path / "plain").st_mode)
    assert mode & stat.S_IRUSR and mode & stat.S_IXUSR


def test_failed_write_publishes_nothing(tmp_path):
    def write(staging):
        _write_files(staging)
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_version(str(tmp_path), write)
    assert os.listdir(tmp_path) == []


def test_existing_version_is_an_error_before_writing(tmp_path):
    (tmp_path / "2").mkdir()
    calls = []
    with pytest.raises(FileExistsError, match=r"Version 2 exists already: .*2"):
        write_version(str(tmp_path), calls.append, version=2)
    assert calls == []
    assert write_version(str(tmp_path), _write_files, version=5).endswith("5")


def test_racing_writer_takes_the_next_number(tmp_path):
    def write(staging):
        # Another exporter publishes version 1 while this one writes.
        os.mkdir(tmp_path / "1")
        (tmp_path / "1" / "saved_model.pb").write_bytes(b"other")
        _write_files(staging)

    assert write_version(str(tmp_path), write) == os.path.join(str(tmp_path), "2")
    assert (tmp_path / "1" / "saved_model.pb").read_bytes() == b"other"


def test_racing_writer_of_an_explicit_version_is_an_error(tmp_path):
    def write(staging):
        os.mkdir(tmp_path / "4")
        _write_files(staging)

    with pytest.raises(FileExistsError, match="Version 4 exists already"):
        write_version(str(tmp_path), write, version=4)
    assert os.listdir(tmp_path) == ["4"]
    assert os.listdir(tmp_path / "4") == []


# === Leftovers of killed exports ===

# A child that starts writing a version and waits (holding its staging
# folder) until it is told to go on or is killed.
_WRITER = """
import os, sys, time
from keras_act.export.atomic import write_version

base_dir, ready, go = sys.argv[1:]

def write(staging):
    with open(os.path.join(staging, "saved_model.pb"), "wb") as file:
        file.write(b"child")
    open(ready, "w").close()
    while not os.path.exists(go):
        time.sleep(0.05)

print(write_version(base_dir, write), flush=True)
"""


def _start_writer(base_dir, tmp_path, name):
    ready, go = tmp_path / f"{name}.ready", tmp_path / f"{name}.go"
    before = set(os.listdir(base_dir))
    child = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(base_dir), str(ready), str(go)],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    deadline = time.monotonic() + 300
    while not ready.exists():
        assert child.poll() is None, "the writer died"
        assert time.monotonic() < deadline, "the writer did not start"
        time.sleep(0.1)
    (staging,) = [n for n in set(os.listdir(base_dir)) - before if n.startswith(STAGING_PREFIX)]
    return child, go, base_dir / staging


def test_next_export_removes_the_leftovers_of_a_killed_one_only(tmp_path):
    base_dir = tmp_path / "model"
    base_dir.mkdir()
    running, go, running_staging = _start_writer(base_dir, tmp_path, "running")
    killed, _, killed_staging = _start_writer(base_dir, tmp_path, "killed")
    try:
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=60)
        assert killed_staging.is_dir()  # what a killed export leaves
        # An old leftover without a lock file (an older keras-act), and a
        # fresh folder without one (an export that has just created it).
        old, fresh = base_dir / f"{STAGING_PREFIX}old", base_dir / f"{STAGING_PREFIX}fresh"
        old.mkdir()
        fresh.mkdir()
        hour_ago = time.time() - UNLOCKED_STALE_AFTER_S - 60
        os.utime(old, (hour_ago, hour_ago))

        assert write_version(str(base_dir), _write_files) == str(base_dir / "1")
        assert not killed_staging.exists() and not old.exists()
        # The running export's folder is untouched; it publishes afterwards.
        assert running_staging.is_dir() and fresh.is_dir()
        go.touch()
        stdout, _ = running.communicate(timeout=60)
    finally:
        for child in (running, killed):
            if child.poll() is None:
                child.kill()
                child.wait()
    assert running.returncode == 0
    assert stdout.strip() == str(base_dir / "2")
    assert (base_dir / "2" / "saved_model.pb").read_bytes() == b"child"
    assert sorted(os.listdir(base_dir / "2")) == ["saved_model.pb"]  # no lock file
    assert set(os.listdir(base_dir)) == {"1", "2", fresh.name}


def test_remove_stale_staging_keeps_other_folders(tmp_path):
    for name in ("1", "models.config", "notes"):
        (tmp_path / name).mkdir()
    (tmp_path / f"{STAGING_PREFIX}file").write_text("a file, not a staging folder")
    assert remove_stale_staging(str(tmp_path)) == []
    assert remove_stale_staging(str(tmp_path / "absent")) == []
    assert len(os.listdir(tmp_path)) == 4


def test_base_folder_that_is_a_file_is_a_clear_error(tiny, tmp_path):
    tokenizer, backbone = tiny
    path = tmp_path / "saved_models"
    path.write_text("a file")
    with pytest.raises(NotADirectoryError, match="saved_models exists and is not a folder"):
        write_version(str(path), _write_files)
    with pytest.raises(NotADirectoryError, match="saved_models exists and is not a folder"):
        export_saved_model(backbone, tokenizer, str(path), sequence_length=8)
    assert path.read_text() == "a file"


# === Exports ===


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    vocab = train_tiny_sentencepiece(tmp_path_factory.mktemp("vocab") / "tiny.model")
    tokenizer = AlbertActTokenizer(proto=vocab)
    return tokenizer, tiny_backbone(tokenizer.vocabulary_size())


@pytest.mark.large
def test_model_server_never_sees_a_half_written_version(tiny, tmp_path):
    """A watcher polls the base folder as the model server does, during two exports."""
    tokenizer, backbone = tiny
    base_dir = str(tmp_path / "watched")
    required = (
        "saved_model.pb",
        "variables/variables.index",
        "assets.extra/tf_serving_warmup_requests",
    )
    incomplete, seen = [], set()
    done = threading.Event()

    def poll():
        for version in list_versions(base_dir):
            folder = os.path.join(base_dir, str(version))
            seen.add(version)
            missing = [f for f in required if not os.path.exists(os.path.join(folder, f))]
            if missing:
                incomplete.append((version, missing))

    def watch():
        while not done.is_set():
            poll()
            time.sleep(0.002)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        first = export_saved_model(backbone, tokenizer, base_dir, sequence_length=8, verify=False)
        second = export_saved_model(backbone, tokenizer, base_dir, sequence_length=8)
    finally:
        done.set()
        watcher.join()
    poll()
    assert incomplete == []
    assert seen == {1, 2}
    assert (first, second) == (os.path.join(base_dir, "1"), os.path.join(base_dir, "2"))
    assert sorted(os.listdir(base_dir)) == ["1", "2", "batching_parameters.txt", "models.config"]

    # An existing version is an error, raised before anything is written.
    with pytest.raises(FileExistsError, match="Version 2 exists already"):
        export_saved_model(backbone, tokenizer, base_dir, version=2, sequence_length=8)
    assert sorted(os.listdir(base_dir)) == ["1", "2", "batching_parameters.txt", "models.config"]


@pytest.mark.large
def test_failure_while_writing_leaves_no_version(tiny, tmp_path, monkeypatch):
    tokenizer, backbone = tiny
    base_dir = tmp_path / "failing"
    written = []

    def broken(version_dir, **kwargs):
        written.extend(os.listdir(version_dir))  # the SavedModel is written by now
        raise tf.errors.InvalidArgumentError(None, None, "warm-up request 0 failed")

    monkeypatch.setattr(archive_module, "run_warmup_requests", broken)
    with pytest.raises(tf.errors.InvalidArgumentError, match="warm-up request 0 failed"):
        export_saved_model(backbone, tokenizer, str(base_dir), sequence_length=8)
    assert "saved_model.pb" in written
    assert os.listdir(base_dir) == []


def test_models_config_is_written_once(tmp_path):
    path = write_models_config(str(tmp_path), "albert_act")
    assert 'name: "albert_act"' in open(path, encoding="utf-8").read()
    with open(path, "w", encoding="utf-8") as file:
        file.write("# edited by hand\n")
    assert write_models_config(str(tmp_path), "albert_act") == path
    assert open(path, encoding="utf-8").read() == "# edited by hand\n"
    assert sorted(os.listdir(tmp_path)) == ["models.config"]


def test_models_config_names_the_model_and_paths(tmp_path):
    text = models_config_text("albert_act", str(tmp_path / "albert_act"))
    assert 'name: "albert_act"' in text
    assert 'base_path: "/models/albert_act"' in text
    assert str(tmp_path / "albert_act") in text
    assert "docker run" in text and "tensorflow_model_server" in text


# === Argument checks ===


def test_tokenizer_is_wrapped_in_a_preprocessor(tiny):
    tokenizer, backbone = tiny
    preprocessor = archive_module.resolve_preprocessor(backbone, tokenizer, 12)
    assert isinstance(preprocessor, AlbertActPreprocessor)
    assert preprocessor.sequence_length == 12
    default = archive_module.resolve_preprocessor(backbone, tokenizer)
    assert default.sequence_length == backbone.max_sequence_length


def test_preprocessor_sequence_length_can_be_changed(tiny):
    tokenizer, backbone = tiny
    pair = AlbertActPairPreprocessor(tokenizer, sequence_length=32)
    assert archive_module.resolve_preprocessor(backbone, pair) is pair
    shorter = archive_module.resolve_preprocessor(backbone, pair, 10)
    assert type(shorter) is AlbertActPairPreprocessor and shorter.sequence_length == 10
    assert shorter.tokenizer is tokenizer
    features = shorter((tf.constant(["a b"]), tf.constant(["c"])))
    assert np.asarray(features["token_ids"]).shape == (1, 10)


@pytest.mark.parametrize("length", [2, 65, "16", True])
def test_bad_sequence_length_is_named(tiny, length, tmp_path):
    tokenizer, backbone = tiny
    with pytest.raises(ValueError, match=rf"sequence_length={length!r}"):
        export_saved_model(backbone, tokenizer, str(tmp_path), sequence_length=length)
    assert os.listdir(tmp_path) == []


def test_bad_preprocessing_is_named(tiny, tmp_path):
    tokenizer, backbone = tiny
    with pytest.raises(ValueError, match="Received: 'spiece.model'"):
        export_saved_model(backbone, "spiece.model", str(tmp_path))
    with pytest.raises(ValueError, match="AlbertActBackbone has no `preprocessor`"):
        export_saved_model(backbone, None, str(tmp_path))
    with pytest.raises(ValueError, match="must be a Keras model"):
        export_saved_model(tokenizer, tokenizer, str(tmp_path))
    small = tiny_backbone(50)
    with pytest.raises(
        ValueError, match=r"tokenizer has \d+ pieces but the model's vocabulary_size is 50"
    ):
        export_saved_model(small, tokenizer, str(tmp_path), sequence_length=8)
    long = AlbertActPreprocessor(tokenizer, sequence_length=128)
    with pytest.raises(
        ValueError, match="sequence_length=128 exceeds the model's max_sequence_length=64"
    ):
        export_saved_model(backbone, long, str(tmp_path))
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "texts, message",
    [
        ("one string", "must be a non-empty list"),
        ([], "must be a non-empty list"),
        ([("a", "b")], "must hold strings"),
        ([3], "must hold strings"),
    ],
)
def test_bad_warmup_texts_are_named(tiny, tmp_path, texts, message):
    tokenizer, backbone = tiny
    with pytest.raises(ValueError, match=message):
        export_saved_model(
            backbone, tokenizer, str(tmp_path), sequence_length=8, warmup_texts=texts
        )


def test_pair_warmup_texts_must_be_pairs(tiny, tmp_path):
    tokenizer, backbone = tiny
    pair = AlbertActPairPreprocessor(tokenizer, sequence_length=8)
    with pytest.raises(ValueError, match=r"must hold \(text, text_pair\) pairs. Received: 'a'"):
        export_saved_model(backbone, pair, str(tmp_path), warmup_texts=["a"])
