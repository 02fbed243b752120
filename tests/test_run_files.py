"""The model dir's files are written whole, even with several writers."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from training.run_files import record_run_config, write_text_atomically

REPO_ROOT = Path(__file__).resolve().parents[1]

WRITER = """
import sys
from training.run_files import write_text_atomically
path, letter = sys.argv[1], sys.argv[2]
for _ in range(150):
    write_text_atomically(path, letter * 2_000_000)
"""


def test_readers_never_see_half_a_file_while_two_processes_write_it(tmp_path):
    path = tmp_path / "shared.txt"
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), letter], cwd=REPO_ROOT)
        for letter in "ab"
    ]
    reads = 0
    while any(writer.poll() is None for writer in writers):
        if path.exists():
            text = path.read_text()
            assert text in ("a" * 2_000_000, "b" * 2_000_000), f"read {len(text)} characters"
            reads += 1
    assert all(writer.returncode == 0 for writer in writers)
    assert reads > 0
    assert [p.name for p in tmp_path.iterdir()] == ["shared.txt"]  # no staging file left


def test_a_failed_write_leaves_the_old_file_and_no_staging_file(tmp_path):
    path = tmp_path / "config.json"
    write_text_atomically(path, "old")
    with pytest.raises(TypeError):
        write_text_atomically(path, b"not text")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_record_run_config_records_once_and_returns_the_recorded_one(tmp_path):
    first = {"backbone": {"hidden_dim": 8}, "steps": 3}
    assert record_run_config(str(tmp_path), first) == first
    assert json.loads((tmp_path / "run_config.json").read_text()) == first
    assert record_run_config(str(tmp_path), {"backbone": {"hidden_dim": 16}}) == first


def test_a_corrupt_run_config_is_named(tmp_path):
    (tmp_path / "run_config.json").write_text("{not json")
    with pytest.raises(ValueError, match="run_config.json is not valid JSON"):
        record_run_config(str(tmp_path), {"steps": 3})


def test_vocabulary_training_leaves_only_its_two_files(tmp_path):
    from training.vocab import train_vocabulary

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(f"the cat number {i} sat on the mat" for i in range(300)))
    model = train_vocabulary([corpus], 40, tmp_path / "vocab", seed=1)
    assert sorted(p.name for p in (tmp_path / "vocab").iterdir()) == ["spiece.model", "spiece.vocab"]
    assert model.stat().st_size > 0
    with pytest.raises(ValueError, match="could not train"):
        train_vocabulary([corpus], 10_000, tmp_path / "too_big", seed=1)
    assert list((tmp_path / "too_big").iterdir()) == []


def _tiny_model(units):
    import keras

    inputs = keras.Input((3,))
    return keras.Model(inputs, keras.layers.Dense(units)(inputs))


class _Unsaveable:
    """Fails half-way through a save, after files were started."""

    def __init__(self, model):
        self.model = model

    def save(self, path):
        with open(path, "wb") as file:
            file.write(b"PK half a zip")
        raise OSError("disk full")


def test_save_model_atomically_replaces_whole_files_or_keeps_the_old_one(tmp_path):
    import keras

    from training.run_files import save_model_atomically

    path = tmp_path / "model.keras"
    save_model_atomically(_tiny_model(2), str(path))
    assert keras.saving.load_model(path).output.shape[-1] == 2
    with pytest.raises(OSError, match="disk full"):
        save_model_atomically(_Unsaveable(_tiny_model(5)), str(path))
    assert keras.saving.load_model(path).output.shape[-1] == 2  # the old one, whole
    save_model_atomically(_tiny_model(4), str(path))
    assert keras.saving.load_model(path).output.shape[-1] == 4
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]


def test_write_folder_atomically_replaces_a_folder_or_keeps_the_old_one(tmp_path):
    from training.run_files import write_folder_atomically

    def write(content):
        def fill(folder):
            for name in ("a.txt", "b.txt"):
                (Path(folder) / name).write_text(content)

        return fill

    def fail(folder):
        (Path(folder) / "a.txt").write_text("half")
        raise RuntimeError("killed")

    target = tmp_path / "preset"
    write_folder_atomically(str(target), write("one"))
    with pytest.raises(RuntimeError, match="killed"):
        write_folder_atomically(str(target), fail)
    assert {p.name: p.read_text() for p in target.iterdir()} == {"a.txt": "one", "b.txt": "one"}
    write_folder_atomically(str(target), write("two"))
    assert {p.name: p.read_text() for p in target.iterdir()} == {"a.txt": "two", "b.txt": "two"}
    assert [p.name for p in tmp_path.iterdir()] == ["preset"]


def test_written_files_have_the_default_mode_not_a_private_one(tmp_path):
    import os

    from training.run_files import save_model_atomically, write_folder_atomically

    umask = os.umask(0o022)
    try:
        write_text_atomically(tmp_path / "a.txt", "text")
        save_model_atomically(_tiny_model(2), str(tmp_path / "m.keras"))
        write_folder_atomically(str(tmp_path / "preset"), lambda folder: None)
    finally:
        os.umask(umask)
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    assert modes == {"a.txt": 0o644, "m.keras": 0o644, "preset": 0o755}


def _age(path, seconds):
    then = time.time() - seconds
    for root, folders, files in os.walk(path) if path.is_dir() else [(None, [], [])]:
        for name in folders + files:
            os.utime(os.path.join(root, name), (then, then))
    os.utime(path, (then, then))


def test_stale_leftovers_of_killed_runs_are_removed_and_live_writers_kept(tmp_path):
    from training.run_files import remove_stale_leftovers, staging_prefix

    host = socket.gethostname()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)  # exited: its staging files are leftovers
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        checkpoints = tmp_path / "checkpoints"
        checkpoints.mkdir()
        files = {
            "dead": tmp_path / f".writing-{dead_pid}@{host}~-abc.keras",
            "live": tmp_path / f".writing-{live.pid}@{host}~-def.keras",
            "mine": tmp_path / f"{staging_prefix()}ghi.keras",
            "other_host_fresh": tmp_path / ".writing-12@elsewhere~-jkl.keras",
            "other_host_old": tmp_path / ".writing-13@elsewhere~-mno.keras",
            "old_format_old": tmp_path / ".writing-pqrrun_config.json",
            "keep": tmp_path / "run_config.json",
        }
        for path in files.values():
            path.write_text("x")
        old_temp = checkpoints / "ckpt-7_temp"
        fresh_temp = checkpoints / "ckpt-8_temp"
        for folder in (old_temp, fresh_temp):
            folder.mkdir()
            (folder / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"\0" * 10)
        _age(old_temp, 3600)
        _age(files["other_host_old"], 3600)
        _age(files["old_format_old"], 3600)
        # A folder whose own mtime is old but that was written to just now:
        # a concurrent writer's, kept.
        _age(fresh_temp, 3600)
        (fresh_temp / "part-00000-of-00001.index").write_bytes(b"\0")

        removed = remove_stale_leftovers(str(tmp_path), str(checkpoints), str(tmp_path / "absent"))
    finally:
        live.kill()
        live.wait()
    expected = [files["dead"], files["other_host_old"], files["old_format_old"], old_temp]
    assert removed == sorted(str(p) for p in expected)
    for path in expected:
        assert not path.exists()
    for name in ("live", "mine", "other_host_fresh", "keep"):
        assert files[name].exists(), name
    assert fresh_temp.exists()


def test_vocabulary_mismatch_names_both_vocabularies():
    from training.run_files import vocabulary_mismatch

    a = {"vocab": "/runs/a/spiece.model", "vocab_sha256": "a" * 64}
    moved = {"vocab": "/elsewhere/spiece.model", "vocab_sha256": "a" * 64}
    other = {"vocab": "/data/other.model", "vocab_sha256": "b" * 64}
    assert vocabulary_mismatch("run", a, moved) is None  # same content, another path
    message = vocabulary_mismatch("run", a, other)
    assert "/runs/a/spiece.model (sha256 aaaaaaaaaaaa)" in message
    assert "/data/other.model (sha256 bbbbbbbbbbbb)" in message
    # A run recorded before the digest was: compared by path.
    assert vocabulary_mismatch("run", {"vocab": "/x.model"}, other) is not None
    assert vocabulary_mismatch("run", {"vocab": "/data/other.model"}, other) is None
