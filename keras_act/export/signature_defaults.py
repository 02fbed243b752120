"""Optional signature inputs: default values written into a saved SavedModel.

A TF1 session (the model server's loader, `saved_model_cli run`) feeds a
signature's inputs to the MetaGraph's placeholders, and a `Placeholder`
must be fed. TensorFlow's own mechanism for an input a request may omit is a
`PlaceholderWithDefault` plus the SignatureDef's `defaults` entry (written
by `tf.saved_model.save` for a `tf.function` whose arguments have tensor
default values; the model server feeds `defaults` for inputs a request
leaves out: `GetInputValues` in tensorflow/cc/saved_model/util.cc).
`keras.export.ExportArchive` saves concrete functions, which lose their
default values, so `add_signature_defaults` writes both afterwards: the
placeholder of each such input becomes a `PlaceholderWithDefault` of the
default constant, and the default goes into `SignatureDef.defaults`.
`tf.saved_model.load` users are not affected by it: a restored signature
function still takes every input (see docs/serving.md).
"""

import os

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

SAVED_MODEL_FILE = "saved_model.pb"


def add_signature_defaults(saved_model_dir, defaults):
    """Makes inputs of every signature optional, with default values.

    Args:
        saved_model_dir: a SavedModel folder (rewritten in place: call it on
            a staging folder, before the version is published).
        defaults: dict of input name to a NumPy scalar or array; every
            signature that has an input of that name gets the default (its
            dtype must be the input's).

    Returns:
        A dict of signature name to the sorted input names made optional.

    Raises:
        ValueError: an input's placeholder is missing, is not a
            `Placeholder`, or its dtype differs from the default's.
    """
    path = os.path.join(saved_model_dir, SAVED_MODEL_FILE)
    saved_model = saved_model_pb2.SavedModel()
    with open(path, "rb") as file:
        saved_model.ParseFromString(file.read())
    changed = {}
    for meta_graph in saved_model.meta_graphs:
        nodes = {node.name: node for node in meta_graph.graph_def.node}
        for signature_name, signature in meta_graph.signature_def.items():
            for input_name, value in defaults.items():
                if input_name not in signature.inputs:
                    continue
                value = np.asarray(value)
                info = signature.inputs[input_name]
                node_name = info.name.split(":")[0]
                node = nodes.get(node_name)
                dtype = tf.dtypes.as_dtype(value.dtype)
                if node is None or node.op != "Placeholder":
                    raise ValueError(
                        f"{path}: input {input_name!r} of signature {signature_name!r} is "
                        f"not fed through a Placeholder (node {node_name!r}: "
                        f"{None if node is None else node.op})."
                    )
                if info.dtype != dtype.as_datatype_enum:
                    raise ValueError(
                        f"{path}: input {input_name!r} of signature {signature_name!r} is "
                        f"{tf.dtypes.as_dtype(info.dtype).name}; its default is {dtype.name}."
                    )
                proto = tf.make_tensor_proto(value, dtype=dtype)
                constant = meta_graph.graph_def.node.add()
                constant.name = f"{node_name}/default_value"
                constant.op = "Const"
                constant.attr["dtype"].type = dtype.as_datatype_enum
                constant.attr["value"].tensor.CopyFrom(proto)
                node.op = "PlaceholderWithDefault"
                del node.input[:]
                node.input.append(constant.name)
                # PlaceholderWithDefault has `dtype` and `shape`, as Placeholder
                # (whose `shape` may be left out when unknown: it is required here).
                for key in list(node.attr):
                    if key not in ("dtype", "shape") and not key.startswith("_"):
                        del node.attr[key]
                if "shape" not in node.attr:
                    node.attr["shape"].shape.unknown_rank = True
                signature.defaults[input_name].CopyFrom(proto)
                changed.setdefault(signature_name, []).append(input_name)
    with open(path, "wb") as file:
        file.write(saved_model.SerializeToString())
    return {name: sorted(inputs) for name, inputs in changed.items()}


__all__ = ["add_signature_defaults"]
