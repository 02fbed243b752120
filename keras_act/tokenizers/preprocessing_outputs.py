"""keras-hub's output convention for preprocessing layers, with public APIs only.

keras-hub's tokenizers and preprocessors (its `preprocessing_function`)
hand their outputs back in the form the caller can use:

- in a graph (`tf.data`, `tf.function`, an exported SavedModel): TensorFlow
  tensors, untouched;
- called eagerly inside a Grain pipeline, whose workers pickle every
  element: NumPy arrays, and Python lists for ragged and string outputs;
- called eagerly elsewhere: backend tensors. Under the TensorFlow backend
  ragged and string outputs stay `tf.RaggedTensor` / string tensors (the
  TensorFlow backend's own types); under another backend they become Python
  lists, as keras-hub's.

Only the outermost call converts: a preprocessor calling its tokenizer gets
TensorFlow tensors.
"""

import functools
import inspect
import os
import sys
import threading

import keras
import numpy as np
import tensorflow as tf

_DEPTH = threading.local()
_GRAIN_FRAMES = (
    os.path.join("grain", "_src", "python", "dataset"),
    os.path.join("grain", "_src", "python", "data_loader"),
)


def in_grain_pipeline():
    """Whether the caller runs inside a Grain dataset or data loader.

    Returns:
        bool: true when a frame of the call stack belongs to Grain's
        `MapDataset` / `IterDataset` / `DataLoader` code.

    Example:

    >>> in_grain_pipeline()
    False
    """
    if "grain" not in sys.modules:
        return False
    frame = inspect.currentframe()
    while frame is not None:
        if any(marker in frame.f_code.co_filename for marker in _GRAIN_FRAMES):
            return True
        frame = frame.f_back
    return False


def _to_python(value):
    """A ragged or string tensor as (nested) Python lists of ints, floats, str."""
    if isinstance(value, tf.RaggedTensor):
        value = value.to_list()
    else:
        value = value.numpy()
        value = value.tolist() if isinstance(value, np.ndarray) else value
    if value and _holds_bytes(value):
        value = _decode(value)
    return value


def _holds_bytes(value):
    while isinstance(value, list) and value:
        value = value[0]
    return isinstance(value, bytes)


def _decode(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def convert_outputs(outputs):
    """Converts the outputs of an eager preprocessing call (see the module).

    Args:
        outputs: a nest of `tf.Tensor`, `tf.RaggedTensor` and `None`.

    Returns:
        The same nest, converted for the caller: NumPy arrays and Python
        lists inside a Grain pipeline, backend tensors elsewhere.

    Example:

    >>> import tensorflow as tf
    >>> convert_outputs({"ids": tf.constant([1, 2])})["ids"].numpy().tolist()
    [1, 2]
    """
    grain = in_grain_pipeline()
    keep_tf_types = keras.config.backend() == "tensorflow"

    def convert(value):
        if not isinstance(value, (tf.Tensor, tf.RaggedTensor)):
            return value
        ragged_or_text = isinstance(value, tf.RaggedTensor) or value.dtype == tf.string
        if grain:
            return _to_python(value) if ragged_or_text else value.numpy()
        if ragged_or_text:
            return value if keep_tf_types else _to_python(value)
        return keras.ops.convert_to_tensor(value)

    return keras.tree.map_structure(convert, outputs)


def preprocessing_outputs(method):
    """Decorates a tokenizer's or preprocessor's method with the convention.

    Graph calls and calls nested in another decorated call return the
    method's TensorFlow tensors as they are; the outermost eager call
    converts them with `convert_outputs`.

    Args:
        method: the method to decorate.

    Returns:
        The decorated method.
    """

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        if not tf.executing_eagerly() or getattr(_DEPTH, "value", 0):
            return method(*args, **kwargs)
        _DEPTH.value = 1
        try:
            outputs = method(*args, **kwargs)
        finally:
            _DEPTH.value = 0
        return convert_outputs(outputs)

    return wrapper
