"""What the command lines of `training` share: `--help` that shows every
default, and setup errors as one line (never a traceback).

Example:

```python
parser = argparse.ArgumentParser(prog="python -m training.x", formatter_class=HelpFormatter)
parser.add_argument("--out", "--model-dir", dest="model_dir", default="runs/x", help="output folder")
with one_line_errors(parser):
    run(parser.parse_args())
```
"""

import argparse
import contextlib
import os


class SetupError(ValueError):
    """Bad input found before training: a clear message, no traceback."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """`--help` with `(default: ...)` after every help line whose default
    is a value (a default of None or False is said by the help text)."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def output_folder_error(path, flag):
    """A one-line message when `path` cannot be an output folder (it, or a
    folder above it, is an existing file), else None.

    Args:
        path: str, the folder named on the command line.
        flag: str, the flag that named it (for the message).
    """
    if not path or "://" in path:
        return None
    current = os.path.abspath(path)
    while True:
        if os.path.exists(current) and not os.path.isdir(current):
            if current == os.path.abspath(path):
                return f"{flag} {path} is an existing file, not a folder"
            return f"{flag} {path}: {current} is an existing file, not a folder"
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent


def exit_with_error(parser, message):
    """`prog: error: message` on stderr and exit status 2: `parser.error`
    without the usage block, for errors in files rather than in flags."""
    parser.exit(2, f"{parser.prog}: error: {' '.join(str(message).split())}\n")


# The errors that bad input (files, folders, flags) raises during set-up.
SETUP_ERRORS = (SetupError, ValueError, OSError)


@contextlib.contextmanager
def one_line_errors(parser, errors=SETUP_ERRORS):
    """Turns `errors` raised inside the block into `prog: error: message`
    on stderr and exit status 2, as `parser.error` does.

    Args:
        parser: the `argparse.ArgumentParser` (for its `prog`).
        errors: the exception classes to report in one line.
    """
    try:
        yield
    except errors as error:
        message = str(error) or type(error).__name__
        if isinstance(error, OSError) and error.filename and str(error.filename) not in message:
            message = f"{error.filename}: {message}"
        exit_with_error(parser, message)
