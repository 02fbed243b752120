"""Files a training run keeps in its model dir, written so that a reader never
sees half of one, and a run killed while writing leaves the previous copy.

Several processes can share a model dir (the workers of a
`MultiWorkerMirroredStrategy` on a shared file system, a run restarted while
the killed one is still being torn down), so every file is written to a
temporary name in the same folder and moved into place with `os.replace`,
which is atomic on POSIX and Windows.
"""

import json
import os
import shutil
import tempfile


def _give_default_mode(path):
    """`mkstemp`/`mkdtemp` make private (0600/0700) files and folders; give
    `path` the mode of any new one (readable by a server or a colleague).
    (`keras_act.export.atomic` does the same for exported versions; this
    module stays free of TensorFlow imports.)"""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if os.path.isdir(path) else 0o666) & ~umask)


def write_text_atomically(path, text):
    """Writes `text` (UTF-8) to `path` so that readers see all of it or none.

    Args:
        path: str or path-like, the file to (over)write; its folder must exist.
        text: str.

    Returns:
        `path`.
    """
    folder = os.path.dirname(os.path.abspath(path))
    handle, staging = tempfile.mkstemp(dir=folder, prefix=".writing-", suffix=os.path.basename(path))
    try:
        with os.fdopen(handle, "w", encoding="utf8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        _give_default_mode(staging)
        os.replace(staging, path)
    except BaseException:
        if os.path.exists(staging):
            os.remove(staging)
        raise
    return path


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
    path = os.path.join(model_dir, "run_config.json")
    if not os.path.isfile(path):
        write_text_atomically(path, json.dumps(run_config, indent=2, sort_keys=True))
        return run_config
    with open(path, encoding="utf8") as file:
        try:
            return json.load(file)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"{path} is not valid JSON ({error}); it records the run's settings, "
                "so restore it or use another model dir."
            ) from None


def save_model_atomically(model, path):
    """`model.save(path)` (a `.keras` file) through a temporary file beside it.

    Args:
        model: a Keras model.
        path: str, the `.keras` file to (over)write.

    Returns:
        `path`.
    """
    folder = os.path.dirname(os.path.abspath(path))
    handle, staging = tempfile.mkstemp(dir=folder, prefix=".writing-", suffix=".keras")
    os.close(handle)
    try:
        model.save(staging)
        _give_default_mode(staging)
        os.replace(staging, path)
    finally:
        if os.path.exists(staging):
            os.remove(staging)
    return path


def write_folder_atomically(path, write):
    """Fills a folder through `write(staging_dir)` and moves it to `path`.

    `write` fills a fresh temporary folder beside `path`; only when it
    returns does that folder replace `path` (an existing `path` is moved
    aside first and removed after), so `path` always holds a complete
    copy, old or new, except for the moment between two renames.

    Args:
        path: str, the folder to (re)write.
        write: a callable taking the staging folder's path.

    Returns:
        `path`.

    Example:

    ```python
    write_folder_atomically("run/preset", lambda d: (backbone.save_to_preset(d),
                                                     tokenizer.save_to_preset(d)))
    ```
    """
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(dir=parent, prefix=f".writing-{os.path.basename(path)}-")
    try:
        _give_default_mode(staging)
        write(staging)
        previous = None
        if os.path.exists(path):
            previous = tempfile.mkdtemp(dir=parent, prefix=f".old-{os.path.basename(path)}-")
            os.rmdir(previous)
            os.rename(path, previous)
        os.rename(staging, path)
        if previous:
            shutil.rmtree(previous, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path
