"""Integer version folders, published atomically.

The TF Serving model server watches a base folder and loads its highest
integer sub-folder. A version is therefore written into a temporary folder
beside the versions (`base/.tmp-export-XXXX`, a name the server ignores),
flushed to disk, and renamed to `base/<version>` in one `os.rename`: the
server sees no version or a complete one, never a half-written one.

An export that is killed leaves its temporary folder behind; the next export
into the same base folder removes it (`remove_stale_staging`). A live
export holds an exclusive lock (`fcntl.flock`) on a file of its temporary
folder while it writes, which the system releases when the process dies, so
a folder is removed only when no process writes it any more.
"""

import errno
import logging
import os
import shutil
import tempfile
import time

from keras_act.atomic_files import give_default_mode

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no file locks, ages only
    fcntl = None

STAGING_PREFIX = ".tmp-export-"
LOCK_FILE = ".export-in-progress"
#: A temporary folder without a lock file (left by an older keras-act, or
#: where file locks do not exist) is a leftover once untouched this long.
UNLOCKED_STALE_AFTER_S = 3600

_logger = logging.getLogger(__name__)


def list_versions(base_dir):
    """The integer version folders of `base_dir`, sorted (empty if it is absent)."""
    if not os.path.isdir(base_dir):
        return []
    return sorted(
        int(name)
        for name in os.listdir(base_dir)
        if name.isdigit() and os.path.isdir(os.path.join(base_dir, name))
    )


def next_version(base_dir):
    """The next free version: one more than the highest, or 1.

    Example:

    >>> next_version("saved_models/does_not_exist")
    1
    """
    versions = list_versions(base_dir)
    return versions[-1] + 1 if versions else 1


def check_version(version):
    """Checks a version number: a positive int (the server's folder names)."""
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"`version` must be a positive int. Received: version={version!r}")
    return version


def write_version(base_dir, write, version=None, max_attempts=100):
    """Writes a new version folder of `base_dir` atomically.

    Args:
        base_dir: the model's base folder (created if needed).
        write: a callable `write(staging_dir)` that fills the folder.
        version: int, the version to publish; `None` publishes the next
            free one (another writer racing for the same number is skipped
            past).
        max_attempts: int, how many version numbers to try when `version`
            is `None`.

    Returns:
        The path of the published version folder, `base_dir/<version>`.

    Raises:
        FileExistsError: `version` exists already (before or after writing).
        Any exception of `write`: the staging folder is removed, nothing is
        published.

    Example:

    ```python
    path = write_version("saved_models/albert_act", archive.write_out)
    ```
    """
    if version is not None:
        check_version(version)
        check_free(base_dir, version)
    check_base_dir(base_dir)
    os.makedirs(base_dir, exist_ok=True)
    remove_stale_staging(base_dir)
    staging = tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=base_dir)
    lock = _lock(staging)
    try:
        # A server running as another user must read the version.
        give_default_mode(staging)
        write(staging)
        if lock is not None:
            # Not part of the version; the lock itself is held until the end.
            os.remove(os.path.join(staging, LOCK_FILE))
        _fsync_tree(staging)
        path = _publish(staging, base_dir, version, max_attempts)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        if lock is not None:
            lock.close()
    _fsync(base_dir)
    return path


def check_base_dir(base_dir):
    """Raises `NotADirectoryError` if `base_dir` exists and is not a folder."""
    if os.path.exists(base_dir) and not os.path.isdir(base_dir):
        raise NotADirectoryError(
            f"{base_dir} exists and is not a folder: the export's base folder "
            "(saved_models/NAME) holds one sub-folder per version."
        )
    return base_dir


def remove_stale_staging(base_dir):
    """Removes the temporary folders that killed exports left in `base_dir`.

    A folder `base_dir/.tmp-export-*` is removed when no process holds the
    lock of its `.export-in-progress` file (its export died), or, having no
    such file, when it has not changed for `UNLOCKED_STALE_AFTER_S` seconds.
    The folder of an export that is still running is kept.

    Args:
        base_dir: the model's base folder.

    Returns:
        The list of removed folders (each is also logged as a warning).
    """
    if not os.path.isdir(base_dir):
        return []
    removed = []
    for name in sorted(os.listdir(base_dir)):
        path = os.path.join(base_dir, name)
        if not name.startswith(STAGING_PREFIX) or not os.path.isdir(path):
            continue
        if _is_stale(path):
            shutil.rmtree(path, ignore_errors=True)
            if not os.path.exists(path):
                removed.append(path)
                _logger.warning("Removed %s, the temporary folder of a killed export.", path)
    return removed


def _lock(staging):
    """Creates and locks the staging folder's lock file; `None` without locks."""
    if fcntl is None:  # pragma: no cover
        return None
    lock = open(os.path.join(staging, LOCK_FILE), "w")  # noqa: SIM115 - held open
    fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock


def _is_stale(path):
    lock_path = os.path.join(path, LOCK_FILE)
    if fcntl is not None:
        try:
            lock = open(lock_path)  # noqa: SIM115 - closed below
        except FileNotFoundError:
            pass
        except OSError:
            return False
        else:
            with lock:
                try:
                    fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    return False  # held: its export is running
                return True
    try:
        age = time.time() - os.stat(path).st_mtime
    except OSError:
        return False
    return age > UNLOCKED_STALE_AFTER_S


def check_free(base_dir, version):
    """Raises `FileExistsError` if `base_dir/<version>` exists; returns the path."""
    path = os.path.join(base_dir, str(version))
    if os.path.lexists(path):
        raise FileExistsError(
            f"Version {version} exists already: {path}. Versions are never "
            "overwritten; pass another `version` or none (the next free one)."
        )
    return path


def _publish(staging, base_dir, version, max_attempts):
    candidates = [version] if version is not None else range(next_version(base_dir), 2**62)
    for attempt, candidate in enumerate(candidates):
        if attempt >= max_attempts:
            break
        try:
            # `rename` would replace an empty folder: check first.
            path = check_free(base_dir, candidate)
            os.rename(staging, path)
            return path
        except FileExistsError:
            if version is not None:
                raise
        except OSError as error:
            if error.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            if version is not None:
                raise FileExistsError(
                    f"Version {version} was created by another writer: "
                    f"{os.path.join(base_dir, str(version))}."
                ) from None
    raise FileExistsError(f"No free version folder in {base_dir} after {max_attempts} attempts.")


def _fsync(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. folders on some filesystems
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _fsync_tree(root):
    """Flushes every file and folder under `root` to disk."""
    for directory, _, files in os.walk(root):
        for name in files:
            _fsync(os.path.join(directory, name))
        _fsync(directory)
