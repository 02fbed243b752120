"""`ServingHead`, the base class of serving heads, and what heads share.

A serving head turns the preprocessed features (`token_ids`, `segment_ids`,
`padding_mask`, `[batch, seq]` int32) into a dict of output tensors of the
SavedModel's signatures. The exporter adds `token_ids`, `token_pieces` and
`padding_mask` to every head's outputs, so a client can read how many layers
(`updates`) each token of its text received.
"""

import keras
import tensorflow as tf

from keras_act.models.albert_act_backbone import AlbertActBackbone

DEFAULT_WARMUP_TEXTS = (
    "The quick brown fox jumps over the lazy dog.",
    "How many layers does each token need?",
    "",
)


class ServingHead:
    """Base class of serving heads.

    Subclasses build, in `__init__`, whatever they need from the model
    (outside any `tf.function`: no variable may be created while tracing)
    and implement `__call__(features)`, which runs inside the exported
    signature functions.

    Args:
        model: the Keras model to serve.
        tokenizer: the model's `AlbertActTokenizer`.
        top_k: int, the number of fills a masked-LM head returns per
            `[MASK]`; other heads ignore it. Defaults to 5.

    Returns:
        Calling the head on a features dict returns a dict of output
        tensors that includes float32 `updates` `[batch, seq]`.

    Example:

    ```python
    class SpanHead(keras_act.export.ServingHead):
        def __call__(self, features):
            outputs = self.model(features)
            return {"start_logits": outputs["start"], "updates": outputs["updates"]}

    keras_act.export.register_serving_head(MySpanModel, SpanHead)
    ```
    """

    #: Texts written to the warm-up file when the caller gives none.
    warmup_texts = DEFAULT_WARMUP_TEXTS
    #: Names of the raw-text signature's inputs; `None`: `text` (and
    #: `text_pair` for a pair preprocessor), see `text_input_names`.
    text_input_names = None
    #: Rank of each raw-text input (`[batch]`: 1); `None`: all 1.
    text_input_ranks = None
    #: Rank of the token-id signature's inputs (`[batch, seq]`: 2).
    token_ids_rank = 2

    def __init__(self, model, tokenizer, top_k=5):
        self.model = model
        self.tokenizer = tokenizer
        self.top_k = top_k

    def __call__(self, features):
        raise NotImplementedError(f"{type(self).__name__} must implement `__call__`.")

    def features_from_texts(self, preprocessor, texts):
        """The model's features from the raw-text inputs.

        Args:
            preprocessor: the export's preprocessor.
            texts: a dict of string tensors `[batch]`, in the order of the
                signature's inputs.

        Returns:
            A dict of int32 `token_ids`, `segment_ids`, `padding_mask`
            `[batch, seq]`.
        """
        values = tuple(texts.values())
        preprocessed = preprocessor(x=values[0] if len(values) == 1 else values)
        if isinstance(preprocessed, tuple):
            preprocessed = preprocessed[0]
        return {name: preprocessed[name] for name in ("token_ids", "segment_ids", "padding_mask")}

    def serve_texts(self, preprocessor, texts):
        """The raw-text signature: returns `(outputs, features)`.

        Defaults to the head's outputs on `features_from_texts`; heads that
        also answer in terms of the text (words, answer strings) override it.
        """
        features = self.features_from_texts(preprocessor, texts)
        return self(features), features


class LogitsHead(ServingHead):
    """A head over a model's `logits` and the per-token `updates`.

    `self.logits_and_updates(features)` returns both, computed once
    (`logits_and_updates_function`).
    """

    def __init__(self, model, tokenizer, top_k=5):
        super().__init__(model, tokenizer, top_k=top_k)
        self.logits_and_updates = logits_and_updates_function(model)


def vocabulary_table(tokenizer, size):
    """A string constant of the tokenizer's pieces, padded with `""` to `size`.

    Example:

    >>> class Pieces:
    ...     def get_vocabulary(self):
    ...         return ["<pad>", "[CLS]"]
    >>> vocabulary_table(Pieces(), 3).numpy().tolist()
    [b'<pad>', b'[CLS]', b'']
    """
    pieces = list(tokenizer.get_vocabulary())
    return tf.constant(pieces + [""] * max(0, size - len(pieces)))


def is_classifier(model, min_classes=1):
    """Whether the model's output is logits `[batch, num_classes]`.

    Example:

    >>> import keras
    >>> inputs = keras.Input((4,))
    >>> is_classifier(keras.Model(inputs, keras.layers.Dense(3)(inputs)), min_classes=2)
    True
    """
    spec = output_spec(model)
    if isinstance(spec, dict):
        spec = spec.get("logits")
    return (
        spec is not None
        and not isinstance(spec, (dict, list, tuple))
        and len(spec.shape) == 2
        and spec.shape[-1] is not None
        and spec.shape[-1] >= min_classes
    )


def takes_token_ids(model):
    """Whether the model's inputs are the `[batch, seq]` token-id dict."""
    try:
        inputs = model.input
    except (AttributeError, ValueError):
        return False
    names = ("token_ids", "segment_ids", "padding_mask")
    return (
        isinstance(inputs, dict)
        and set(inputs) == set(names)
        and all(len(inputs[name].shape) == 2 for name in names)
    )


def output_spec(model):
    """The symbolic output structure of a Functional model, else `None`."""
    try:
        return model.output
    except (AttributeError, ValueError):
        return None


def logits_and_updates_function(model):
    """A callable `features -> {"logits", "updates"}` for a model with logits.

    Per-token `updates` come from, in order: the model's `depth_model`
    (keras-act tasks: a view of the same layers returning `logits` and
    `updates`), the model's own outputs (a dict with `"updates"`), or the
    call of its `backbone` inside the model's graph (a Functional
    keras-hub-style task, re-traced with `keras.models.clone_model` on the
    same layers to reach that call). In all three nothing is computed twice;
    a model whose graph cannot be re-traced runs the backbone a second time
    for them.

    Raises:
        ValueError: for a model with none of these.
    """
    depth_model = getattr(model, "depth_model", None)
    if isinstance(depth_model, keras.Model) and {"logits", "updates"} <= set(
        output_spec(depth_model) or ()
    ):
        return lambda features: depth_model(features, training=False)
    output = output_spec(model)
    if isinstance(output, dict) and "updates" in output:
        return lambda features: model(features, training=False)
    backbone = getattr(model, "backbone", None)
    if not isinstance(backbone, AlbertActBackbone):
        raise ValueError(
            f"Serving {type(model).__name__} needs per-token `updates`: the model "
            "must return them (a dict with 'logits' and 'updates') or have a "
            f"`backbone` attribute that is an AlbertActBackbone. Received: "
            f"backbone={backbone!r}"
        )
    depth_model = _graph_with_backbone_updates(model, backbone)
    if depth_model is not None:
        return lambda features: depth_model(features, training=False)

    def run_twice(features):
        outputs = model(features, training=False)
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs
        return {"logits": logits, "updates": backbone(features, training=False)["updates"]}

    return run_twice


def _graph_with_backbone_updates(model, backbone):
    """`model`'s graph (same layers) returning `logits` and the `updates` of
    its one call of `backbone`, or `None`."""
    calls = []

    def call(layer, *args, **kwargs):
        outputs = layer(*args, **kwargs)
        if layer is backbone:
            calls.append(outputs)
        return outputs

    try:
        traced = keras.models.clone_model(
            model, clone_function=lambda layer: layer, call_function=call
        )
        if len(calls) != 1:
            return None
        output = traced.output
        logits = output["logits"] if isinstance(output, dict) else output
        return keras.Model(traced.input, {"logits": logits, "updates": calls[0]["updates"]})
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
