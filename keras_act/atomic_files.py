"""Files and folders written so that a reader never sees half of one.

Every file is written to a temporary name in the same folder and moved into
place with `os.replace` (atomic on POSIX and Windows), so a writer killed
half-way leaves the previous copy. Staging names start with
`staging_prefix()` (`.writing-<pid>@<host>~...`), which says who writes
them, so a later run can tell a dead writer's leftovers from a live one's
(`training.run_files.remove_stale_leftovers`).

TensorFlow-free: importing this module loads neither TensorFlow nor Keras.
"""

import os
import shutil
import socket
import tempfile


def staging_prefix(kind="writing", name=""):
    """The prefix of a staging file or folder of this process.

    Args:
        kind: str, what the staging name is for (`writing`, `old`, ...).
        name: str, the name of the file or folder being written.

    Returns:
        `.{kind}-{pid}@{host}~{name}-`.

    Example:

    >>> import os
    >>> staging_prefix(name="preset").startswith(f".writing-{os.getpid()}@")
    True
    """
    return f".{kind}-{os.getpid()}@{socket.gethostname()}~{name}-"


def give_default_mode(path):
    """Gives `path` the mode of any new file or folder (under the umask).

    `mkstemp`/`mkdtemp` make private (0600/0700) files and folders; what
    they stage must stay readable by a server or a colleague once published.

    Example:

    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> oct(os.stat(folder).st_mode & 0o077)
    '0o0'
    >>> give_default_mode(folder)
    >>> umask = os.umask(0); _ = os.umask(umask)
    >>> os.stat(folder).st_mode & 0o777 == 0o777 & ~umask
    True
    """
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

    Example:

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "notes.txt")
    >>> _ = write_text_atomically(path, "complete")
    >>> open(path).read(), os.listdir(os.path.dirname(path))
    ('complete', ['notes.txt'])
    """
    folder = os.path.dirname(os.path.abspath(path))
    handle, staging = tempfile.mkstemp(
        dir=folder, prefix=staging_prefix(), suffix=os.path.basename(path)
    )
    try:
        with os.fdopen(handle, "w", encoding="utf8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        give_default_mode(staging)
        os.replace(staging, path)
    except BaseException:
        if os.path.exists(staging):
            os.remove(staging)
        raise
    return path


def save_model_atomically(model, path, prefix=None):
    """`model.save(path)` (a `.keras` file) through a temporary file beside it.

    Args:
        model: a Keras model.
        path: str, the `.keras` file to (over)write.
        prefix: optional str, the staging file's name prefix (default:
            `staging_prefix()`).

    Returns:
        `path`.
    """
    folder = os.path.dirname(os.path.abspath(path))
    handle, staging = tempfile.mkstemp(
        dir=folder, prefix=prefix or staging_prefix(), suffix=".keras"
    )
    os.close(handle)
    try:
        model.save(staging)
        give_default_mode(staging)
        os.replace(staging, path)
    finally:
        if os.path.exists(staging):
            os.remove(staging)
    return path


def write_folder_atomically(path, write, prefix=None, old_prefix=None):
    """Fills a folder through `write(staging_dir)` and moves it to `path`.

    `write` fills a fresh temporary folder beside `path`; only when it
    returns does that folder replace `path` (an existing `path` is moved
    aside first and removed after), so `path` always holds a complete
    copy, old or new, except for the moment between two renames.

    Args:
        path: str, the folder to (re)write.
        write: a callable taking the staging folder's path.
        prefix: optional str, the staging folder's name prefix (default:
            `staging_prefix(name=basename)`).
        old_prefix: optional str, the prefix the old `path` is moved aside
            to (default: `staging_prefix("old", basename)`).

    Returns:
        `path`.

    Example:

    >>> import os, tempfile
    >>> preset = os.path.join(tempfile.mkdtemp(), "preset")
    >>> write = lambda folder: open(os.path.join(folder, "config.json"), "w").close()
    >>> _ = write_folder_atomically(preset, write)
    >>> os.listdir(preset), len(os.listdir(os.path.dirname(preset)))
    (['config.json'], 1)
    """
    path = os.path.abspath(path)
    parent, name = os.path.dirname(path), os.path.basename(path)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(dir=parent, prefix=prefix or staging_prefix(name=name))
    try:
        give_default_mode(staging)
        write(staging)
        previous = None
        if os.path.exists(path):
            previous = tempfile.mkdtemp(dir=parent, prefix=old_prefix or staging_prefix("old", name))
            os.rmdir(previous)
            os.rename(path, previous)
        os.rename(staging, path)
        if previous:
            shutil.rmtree(previous, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path
