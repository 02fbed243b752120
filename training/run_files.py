"""Files a training run keeps in its model dir, written so that a reader never
sees half of one, and a run killed while writing leaves the previous copy.

Several processes can share a model dir (the workers of a
`MultiWorkerMirroredStrategy` on a shared file system, a run restarted while
the killed one is still being torn down), so every file is written to a
temporary name in the same folder and moved into place with `os.replace`,
which is atomic on POSIX and Windows.
"""

import hashlib
import json
import os
import re
import shutil
import socket
import time

from keras_act.atomic_files import (  # noqa: F401 - the run's writers, re-exported
    save_model_atomically,
    staging_prefix,
    write_folder_atomically,
    write_text_atomically,
)

# Leftovers of a killed writer older than this are removed by the next run.
STALE_SECONDS = 600
# `.writing-<pid>@<host>~...`: the staging names of this module (and of
# `training.vocab`) say who writes them, so a run removes a dead writer's
# at once and never a live one's on the same host.
_OWNED_RE = re.compile(r"^\.(?:writing|old|training)-(\d+)@(.+?)~")
_LEFTOVER_RE = re.compile(r"^(?:\.(?:writing|old|training)-.*|ckpt-\d+_temp)$")


def differing_keys(previous, current):
    """The sorted keys whose values differ between two dicts (or are in one only)."""
    return sorted(key for key in set(previous) | set(current) if previous.get(key) != current.get(key))


def record_run_config(model_dir, run_config):
    """Returns the run configuration recorded in `model_dir`, recording
    `run_config` there first if there is none.

    The caller compares the two and refuses to resume another run's
    checkpoints.

    Args:
        model_dir: str, the run's folder (must exist).
        run_config: a JSON-serialisable dict.

    Returns:
        The recorded dict (`run_config` itself on a new run).

    Raises:
        ValueError: `run_config.json` exists but is not valid JSON.
    """
    previous = read_run_config(model_dir)
    if previous is None:
        path = os.path.join(model_dir, "run_config.json")
        write_text_atomically(path, json.dumps(run_config, indent=2, sort_keys=True))
        return run_config
    return previous


def read_run_config(model_dir):
    """The run configuration recorded in `model_dir`, or None.

    Raises:
        ValueError: `run_config.json` is not a JSON object.
    """
    path = os.path.join(model_dir, "run_config.json")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf8") as file:
        try:
            content = json.load(file)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(
                f"{path} is not valid JSON ({error}); it records the run's settings, "
                "so restore it or use another model dir."
            ) from None
    if not isinstance(content, dict):
        raise ValueError(
            f"{path} holds a {type(content).__name__}, not a JSON object of the run's "
            "settings; restore it or use another model dir."
        )
    return content


def _process_is_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _newest_mtime(path):
    newest = os.lstat(path).st_mtime
    if os.path.isdir(path) and not os.path.islink(path):
        for root, folders, files in os.walk(path):
            for name in folders + files:
                try:
                    newest = max(newest, os.lstat(os.path.join(root, name)).st_mtime)
                except FileNotFoundError:
                    pass
    return newest


def is_stale_leftover(path, max_age=STALE_SECONDS, now=None):
    """Whether `path` is the leftover of a killed writer.

    Leftovers are the staging names of this module and of `training.vocab`
    (`.writing-*`, `.old-*`, `.training-*`) and TensorFlow's checkpoint
    staging folders (`ckpt-N_temp`). One of a process of this host that no
    longer runs is stale at once; any other (another host's, or one of
    TensorFlow's, which say nothing of their writer) once nothing in it
    changed for `max_age` seconds, so that a concurrent writer (another
    worker sharing the model dir) keeps its files.

    Args:
        path: str, a file or folder.
        max_age: float, seconds.
        now: float, the current time (`time.time()` by default).

    Returns:
        bool.
    """
    name = os.path.basename(path)
    if not _LEFTOVER_RE.match(name):
        return False
    owner = _OWNED_RE.match(name)
    if owner and owner.group(2) == socket.gethostname():
        pid = int(owner.group(1))
        if pid == os.getpid():
            return False
        if not _process_is_alive(pid):
            return True
    try:
        age = (time.time() if now is None else now) - _newest_mtime(path)
    except FileNotFoundError:  # its writer just finished
        return False
    return age > max_age


def remove_stale_leftovers(*folders, max_age=STALE_SECONDS):
    """Removes the leftovers of killed runs (see `is_stale_leftover`) found
    directly in `folders` (missing folders are skipped).

    Args:
        *folders: str, e.g. a model dir and its `checkpoints/`.
        max_age: float, seconds.

    Returns:
        The sorted list of removed paths.
    """
    removed = []
    for folder in folders:
        if not os.path.isdir(folder):
            continue
        for name in os.listdir(folder):
            path = os.path.join(folder, name)
            if not is_stale_leftover(path, max_age):
                continue
            try:
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                else:
                    os.remove(path)
            except FileNotFoundError:
                continue
            removed.append(path)
    return sorted(removed)


def file_sha256(path):
    """The hex sha256 of a file's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def vocabulary_mismatch(model_dir, previous, current):
    """A message naming both vocabularies when a run dir was trained with
    another one than `current`, else None.

    Both dicts are run configurations with `vocab` (a path or description)
    and `vocab_sha256` (of the SentencePiece model's content). A config
    recorded without `vocab_sha256` (an older run) is compared by path.
    """
    before, now = previous.get("vocab_sha256"), current.get("vocab_sha256")
    if before is None:
        if "vocab" not in previous or previous.get("vocab") == current.get("vocab"):
            return None
    elif before == now:
        return None
    described = lambda config: (  # noqa: E731
        f"{config.get('vocab')}"
        + (f" (sha256 {config['vocab_sha256'][:12]})" if config.get("vocab_sha256") else "")
    )
    return (
        f"{model_dir} was trained with the vocabulary {described(previous)}, not "
        f"{described(current)}: resuming would train its embeddings under other ids. "
        "Use the same vocabulary, or another output folder."
    )

