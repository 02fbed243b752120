"""Files a training run keeps in its model dir, written so that a reader never
sees half of one.

Several processes can share a model dir (the workers of a
`MultiWorkerMirroredStrategy` on a shared file system, a run restarted while
the killed one is still being torn down), so every file is written to a
temporary name in the same folder and moved into place with `os.replace`,
which is atomic on POSIX and Windows.
"""

import json
import os
import tempfile


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
        os.replace(staging, path)
    except BaseException:
        if os.path.exists(staging):
            os.remove(staging)
        raise
    return path


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
