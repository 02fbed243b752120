"""Readers for the weight files of Hugging Face ALBERT-ACT checkpoints.

Every reader returns a flat `{name: numpy array}` dict in the PyTorch
state-dict naming and layout of the authors' `AlbertActModel` (Linear weights
`[out, in]`). Nothing here unpickles arbitrary data: `pytorch_model.bin` is
read only with `torch.load(weights_only=True)`.
"""

import os

import numpy as np

# Leaf names of TF (Keras 2) ALBERT weights, mapped to PyTorch leaf names.
_TF_LEAVES = {"kernel": "weight", "bias": "bias", "gamma": "weight", "beta": "bias"}


def read_safetensors(path):
    """Reads a `.safetensors` file into a dict of numpy arrays."""
    from safetensors.numpy import load_file

    try:
        return dict(load_file(path))
    except Exception as error:  # safetensors raises its own error types
        raise ValueError(f"Cannot read safetensors file {path}: {error}") from error


def read_pytorch_bin(path):
    """Reads a `pytorch_model.bin` state dict, without unpickling code.

    Raises:
        ImportError: when PyTorch is not installed (with a hint to use the
            checkpoint's `model.safetensors` instead).
    """
    try:
        import torch
    except ImportError as error:
        raise ImportError(
            f"{path} is a PyTorch pickle; reading it needs `torch` "
            "(it is loaded with torch.load(weights_only=True), never unpickled "
            "otherwise). Install torch, or use the checkpoint's "
            "`model.safetensors` instead."
        ) from error
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(
            f"Cannot read {path} with torch.load(weights_only=True): {error}. "
            "Prefer the checkpoint's `model.safetensors`."
        ) from error
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(
            f"{path} holds a {type(state).__name__}, not a state dict "
            "{name: tensor}: it is not a checkpoint of a model."
        )
    not_tensors = sorted(
        str(name) for name, value in state.items() if not isinstance(value, torch.Tensor)
    )
    if not_tensors:
        raise ValueError(
            f"{path} is not a state dict {{name: tensor}}: the entries "
            f"{not_tensors[:5]} are not tensors."
        )
    return {name: tensor.detach().cpu().numpy() for name, tensor in state.items()}


def read_tf_h5(path):
    """Reads a transformers `tf_model.h5` (Keras 2 HDF5 weights).

    Weight names such as
    `tf_albert_act_model/albert/encoder/albert_layer/ffn/kernel:0` lose their
    first component (the Keras model name, which changes from process to
    process), the main-layer prefix `albert/` and the `:0`; list indices
    written `_._N` by transformers (plain ALBERT's
    `albert_layer_groups_._0/albert_layers_._0`) become `.N`; kernels are
    transposed to the PyTorch `[out, in]` layout.
    """
    import h5py

    def text(value):
        return value.decode("utf8") if isinstance(value, bytes) else str(value)

    try:
        return _read_tf_h5(path, h5py, text)
    except (OSError, KeyError, TypeError) as error:
        # h5py's words for a truncated or damaged file ("truncated file:
        # eof = ...", "bad object header version number", ...).
        raise ValueError(
            f"Cannot read {path}: not a complete HDF5 weights file ({error}). "
            "Download it again, or use the checkpoint's `model.safetensors`."
        ) from error


def _read_tf_h5(path, h5py, text):
    weights = {}
    with h5py.File(path, "r") as file:
        if "layer_names" not in file.attrs:
            raise ValueError(f"{path} is not a Keras HDF5 weights file (no `layer_names`).")
        for layer_name in map(text, file.attrs["layer_names"]):
            group = file[layer_name]
            for weight_name in map(text, group.attrs.get("weight_names", [])):
                array = np.asarray(group[weight_name])
                parts = weight_name.split(":")[0].replace("_._", "/").split("/")[1:]
                if parts and parts[0] == "albert":
                    parts = parts[1:]
                leaf = parts[-1]
                if leaf == "kernel":
                    array = array.T
                if leaf in _TF_LEAVES:
                    parts[-1] = _TF_LEAVES[leaf]
                elif leaf == "embeddings":
                    parts[-1] = "weight"
                weights[".".join(parts)] = array
    return weights


_READERS = {
    ".safetensors": read_safetensors,
    ".bin": read_pytorch_bin,
    ".h5": read_tf_h5,
}


def read_weights(path):
    """Reads a checkpoint weight file, choosing the reader by its extension."""
    extension = os.path.splitext(path)[1]
    if extension not in _READERS:
        raise ValueError(
            f"Unsupported weight file {path}: expected one of "
            f"{sorted(_READERS)} (model.safetensors, pytorch_model.bin, tf_model.h5)."
        )
    return _READERS[extension](path)
