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


def command_parser(prog, description):
    """The `argparse.ArgumentParser` of a training command line, with the
    `HelpFormatter` (every default shown)."""
    return argparse.ArgumentParser(prog=prog, description=description, formatter_class=HelpFormatter)


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


def check_output_folders(parser, folders):
    """Ends the program with a one-line error when a folder named on the
    command line cannot be an output folder (see `output_folder_error`).

    Args:
        parser: the `argparse.ArgumentParser`.
        folders: `(flag, path)` pairs, e.g. `[("--out", args.model_dir)]`.
    """
    for flag, path in folders:
        error = output_folder_error(path, flag)
        if error:
            exit_with_error(parser, error)


def exit_with_error(parser, message):
    """`prog: error: message` on stderr and exit status 2: `parser.error`
    without the usage block, for errors in files rather than in flags."""
    parser.exit(2, f"{parser.prog}: error: {' '.join(str(message).split())}\n")


# The errors that bad input (files, folders, flags) raises during set-up.
SETUP_ERRORS = (SetupError, ValueError, OSError)


@contextlib.contextmanager
def as_setup_errors(errors=(ValueError, OSError)):
    """Turns `errors` raised inside the block into `SetupError`s with the
    same message: bad input found while setting up a run."""
    try:
        yield
    except SetupError:
        raise
    except errors as error:
        raise SetupError(str(error)) from error


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


def run_command(build_parser, validate_args, run, argv=None):
    """The `main` of a training command line: parses `argv`, checks the
    flags, and runs the job with its `SetupError`s as one-line errors.

    Args:
        build_parser: returns the `argparse.ArgumentParser`.
        validate_args: `validate_args(args, parser)`, the checks of the
            flags alone (argparse errors).
        run: `run(args)`, the job.
        argv: list of str, the arguments (default: `sys.argv[1:]`).

    Returns:
        0, the exit status of a job that ran.
    """
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    validate_args(args, parser)
    with one_line_errors(parser, (SetupError,)):
        run(args)
    return 0


def add_out_argument(group, default, help, metavar=None):
    """`--out` (and its older spelling `--model-dir`): the run's folder,
    `args.model_dir`."""
    group.add_argument(
        "--out", "--model-dir", dest="model_dir", metavar=metavar, default=default, help=help
    )


def add_batch_arguments(group):
    """`--batch-size` and `--accumulation-steps`."""
    group.add_argument("--batch-size", type=int, default=32, help="global batch per optimizer step")
    group.add_argument(
        "--accumulation-steps", type=int, default=1, help="micro-batches per optimizer step"
    )


def add_update_arguments(group):
    """`--weight-decay` and `--clip-norm`."""
    group.add_argument("--weight-decay", type=float, default=0.01, help="decoupled weight decay")
    group.add_argument("--clip-norm", type=float, default=1.0, help="global-norm clipping (0: none)")


def add_device_arguments(group, seed_help):
    """The flags of `training.training_loop.configure_process` and the
    strategy: `--strategy`, `--tpu`, `--cpu-devices`, `--jit-compile`,
    `--mixed-precision`, `--seed` (help: `seed_help`), `--deterministic`."""
    group.add_argument(
        "--strategy",
        default="auto",
        choices=("auto", "one_device", "mirrored", "multi_worker", "tpu"),
        help="tf.distribute strategy",
    )
    group.add_argument("--tpu", help="TPU name or address ('local' on Colab)")
    group.add_argument(
        "--cpu-devices", type=int, default=0, help="split the CPU into N logical devices (0: no split)"
    )
    group.add_argument("--jit-compile", action="store_true", help="XLA-compile the training step")
    group.add_argument(
        "--mixed-precision",
        choices=("bfloat16", "float16"),
        help="mixed-precision policy (default: float32)",
    )
    group.add_argument("--seed", type=int, default=0, help=seed_help)
    group.add_argument("--deterministic", action="store_true", help="enable TF op determinism")
