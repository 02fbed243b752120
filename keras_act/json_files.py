"""`read_json_file`: a JSON file's content, or an error naming the file."""

import json


def read_json_file(file_path, error_class=ValueError):
    """Reads a JSON file; invalid JSON is an error that names the file.

    Callers check the shape of the content (e.g. "a JSON object") with their
    own words: a preset's `config.json` and a checkpoint's are read here.

    Args:
        file_path: str, the file to read.
        error_class: the exception class raised for invalid JSON (a
            `ValueError` subclass, e.g. `keras_act.convert.CheckpointError`).

    Returns:
        The decoded content.

    Raises:
        error_class: `"{file_path} is not valid JSON: ..."`.

    Example:

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "config.json")
    >>> _ = open(path, "w").write('{"model_type": "albert_act"')
    >>> read_json_file(path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: .../config.json is not valid JSON: Expecting ',' delimiter: ...
    """
    try:
        with open(file_path, encoding="utf-8") as file:
            return json.load(file)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise error_class(f"{file_path} is not valid JSON: {error}.") from error
