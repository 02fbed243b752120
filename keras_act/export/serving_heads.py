"""Serving heads: what each kind of model returns from its exported signatures.

A serving head turns the preprocessed features (`token_ids`, `segment_ids`,
`padding_mask`, `[batch, seq]` int32) into a dict of output tensors of the
SavedModel's signatures. The exporter adds `token_ids`, `token_pieces` and
`padding_mask` to every head's outputs, so a client can read how many layers
(`updates`) each token of its text received.

Heads are looked up by model class through a registry; supporting a new task
type is one call:

```python
keras_act.export.register_serving_head(AlbertActTextClassifier, ClassifierHead)
```

Built-in heads: `BackboneHead` (`AlbertActBackbone`), `MaskedLMHead`
(`AlbertActPretrainer`) and `ClassifierHead` (any model whose output is
logits `[batch, num_classes]`; used for unregistered models of that shape);
the fine-tuning tasks' heads are in `task_heads.py`. A head can also define
the raw-text signature's inputs (`text_input_names`) and answer in terms of
the text (`serve_texts`).
"""

import keras
import tensorflow as tf

from keras_act.models.albert_act_backbone import AlbertActBackbone
from keras_act.models.albert_act_pretrainer import AlbertActPretrainer

_SERVING_HEADS = {}

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


class BackboneHead(ServingHead):
    """Serves an `AlbertActBackbone`: its encodings and per-token depth.

    Returns:
        A dict of float32 `sequence_output` `[batch, seq, hidden_dim]`,
        `pooled_output` `[batch, hidden_dim]` and `updates` `[batch, seq]`.

    Example:

    ```python
    head = BackboneHead(backbone, tokenizer)
    head(preprocessor(["a text"]))["pooled_output"]
    ```
    """

    def __call__(self, features):
        outputs = self.model(features, training=False)
        return {
            "sequence_output": outputs["sequence_output"],
            "pooled_output": outputs["pooled_output"],
            "updates": outputs["updates"],
        }


class MaskedLMHead(ServingHead):
    """Serves an `AlbertActPretrainer`: the top-k fills of each `[MASK]`.

    The `[MASK]` tokens of the (tokenized) input are found in the graph; the
    masked-LM head reads them and returns the `top_k` most probable tokens of
    each. A text without `[MASK]` gives empty fills (`P = 0`); in a batch,
    rows with fewer masks than the longest are padded with `-1` positions and
    ids, `""` pieces and `0` scores. A `[MASK]` cut off by truncation is not
    predicted.

    Returns:
        A dict of `mask_positions` int32 `[batch, P]` (the index of each
        `[MASK]` in the sequence, `-1` for padding), `top_k_ids` int32
        `[batch, P, top_k]`, `top_k_pieces` string `[batch, P, top_k]`,
        `top_k_scores` float32 `[batch, P, top_k]` (softmax probabilities,
        best first) and `updates` float32 `[batch, seq]`.

    Example:

    ```python
    head = MaskedLMHead(pretrainer, tokenizer, top_k=3)
    head(preprocessor(["The capital of France is [MASK]."]))["top_k_pieces"]
    ```
    """

    warmup_texts = (
        "[MASK] is the capital of France.",
        "The [MASK] sat on the [MASK].",
        "No mask in this one.",
    )

    def __init__(self, model, tokenizer, top_k=5):
        super().__init__(model, tokenizer, top_k=top_k)
        vocabulary_size = model.backbone.vocabulary_size
        if (
            isinstance(top_k, bool)
            or not isinstance(top_k, int)
            or not 1 <= top_k <= vocabulary_size
        ):
            raise ValueError(
                f"`top_k` must be an int in [1, {vocabulary_size}] (the vocabulary). "
                f"Received: top_k={top_k!r}"
            )
        self.mask_token_id = tokenizer.mask_token_id
        self.pieces = vocabulary_table(tokenizer, vocabulary_size)

    def __call__(self, features):
        token_ids = features["token_ids"]
        is_mask = tf.logical_and(
            tf.equal(token_ids, self.mask_token_id), tf.not_equal(features["padding_mask"], 0)
        )
        indices = tf.broadcast_to(tf.range(tf.shape(token_ids)[1]), tf.shape(token_ids))
        mask_positions = tf.ragged.boolean_mask(indices, is_mask).to_tensor(default_value=-1)
        is_real = mask_positions >= 0
        # keras-hub's MaskedLMHead gathers with `take_along_axis`, which fails
        # on a batch of 0 rows (GatherV2): an empty batch runs on one row of
        # `<pad>` tokens instead, whose outputs are dropped.
        batch = tf.shape(token_ids)[0]
        extra = tf.cast(tf.equal(batch, 0), tf.int32)

        def padded(value, fill=0):
            return tf.pad(value, [[0, extra], [0, 0]], constant_values=fill)

        outputs = self.model(
            {
                "token_ids": padded(token_ids),
                "segment_ids": padded(features["segment_ids"]),
                "padding_mask": padded(features["padding_mask"], fill=1),
                "mask_positions": padded(tf.maximum(mask_positions, 0)),
            },
            training=False,
        )
        outputs = {name: outputs[name][:batch] for name in ("mlm_logits", "updates")}
        scores = tf.nn.softmax(tf.cast(outputs["mlm_logits"], "float32"), axis=-1)
        top_scores, top_ids = tf.math.top_k(scores, k=self.top_k)
        real = tf.broadcast_to(is_real[..., tf.newaxis], tf.shape(top_ids))
        return {
            "mask_positions": mask_positions,
            "top_k_ids": tf.where(real, top_ids, -1),
            "top_k_pieces": tf.where(real, tf.gather(self.pieces, top_ids), ""),
            "top_k_scores": tf.where(real, top_scores, 0.0),
            "updates": outputs["updates"],
        }


class ClassifierHead(ServingHead):
    """Serves a classifier: any model whose output is logits `[batch, classes]`.

    The model takes the features dict and returns logits (a tensor, or a dict
    with `"logits"`). Per-token `updates` come from, in order: the model's
    `depth_model` (keras-act tasks: a view of the same layers returning
    `logits` and `updates`), the model's own outputs (a dict with
    `"updates"`), or the call of its `backbone` inside the model's graph (a
    Functional keras-hub-style task). In all three nothing is computed twice;
    a model whose backbone call cannot be found in its graph runs the
    backbone a second time for them.

    Returns:
        A dict of float32 `logits` `[batch, num_classes]`, `probabilities`
        (softmax; sigmoid when `num_classes` is 1), int32 `label` `[batch]`
        (argmax; `logit > 0` when `num_classes` is 1) and `updates`.

    Example:

    ```python
    head = ClassifierHead(classifier, tokenizer)
    head(preprocessor(["great movie"]))["label"]
    ```
    """

    def __init__(self, model, tokenizer, top_k=5):
        super().__init__(model, tokenizer, top_k=top_k)
        if not is_classifier(model):
            raise ValueError(
                "ClassifierHead serves models whose output is logits "
                f"[batch, num_classes]. Received {type(model).__name__} with outputs "
                f"{_output_spec(model)}."
            )
        self._run = _classifier_with_updates(model)

    def __call__(self, features):
        outputs = self._run(features)
        logits = tf.cast(outputs["logits"], "float32")
        if logits.shape[-1] == 1:
            probabilities = tf.sigmoid(logits)
            label = tf.cast(logits[:, 0] > 0, "int32")
        else:
            probabilities = tf.nn.softmax(logits, axis=-1)
            label = tf.argmax(logits, axis=-1, output_type=tf.int32)
        return {
            "logits": logits,
            "probabilities": probabilities,
            "label": label,
            "updates": outputs["updates"],
        }


def register_serving_head(model_cls, head_cls):
    """Registers the serving head of a model class (and its subclasses).

    Args:
        model_cls: a `keras.Model` subclass.
        head_cls: a `ServingHead` subclass (or any callable
            `(model, tokenizer, top_k=...) -> head`).

    Returns:
        `head_cls`.

    Example:

    ```python
    register_serving_head(AlbertActTextClassifier, ClassifierHead)
    ```
    """
    if not (isinstance(model_cls, type) and issubclass(model_cls, keras.Model)):
        raise ValueError(
            f"`model_cls` must be a `keras.Model` subclass. Received: model_cls={model_cls!r}"
        )
    if not callable(head_cls):
        raise ValueError(f"`head_cls` must be callable. Received: head_cls={head_cls!r}")
    _SERVING_HEADS[model_cls] = head_cls
    return head_cls


def serving_head_for(model, tokenizer, top_k=5):
    """Returns the serving head of `model`.

    The registered head of the nearest class in the model's MRO is used;
    an unregistered model that takes the token-id dict (`[batch, seq]`
    inputs) and returns logits `[batch, num_classes]` with at least two
    classes gets a `ClassifierHead` (one output column is ambiguous, a score
    or a binary logit: register such models explicitly).

    Args:
        model: the Keras model to serve.
        tokenizer: its `AlbertActTokenizer`.
        top_k: int, fills per `[MASK]` of a masked-LM head.

    Returns:
        A `ServingHead`.

    Raises:
        ValueError: no head fits the model; the message names its class.
    """
    head_cls = registered_head_class(model)
    if head_cls is not None:
        return head_cls(model, tokenizer, top_k=top_k)
    if is_classifier(model, min_classes=2) and _takes_token_ids(model):
        return ClassifierHead(model, tokenizer, top_k=top_k)
    registered = ", ".join(sorted(cls.__name__ for cls in _SERVING_HEADS))
    raise ValueError(
        f"No serving head for {type(model).__name__} (outputs {_output_spec(model)}). "
        f"Registered: {registered}, and any model of the token-id inputs whose "
        "output is logits [batch, num_classes >= 2]. Register one with "
        "`keras_act.export.register_serving_head(ModelClass, HeadClass)`."
    )


def registered_head_class(model):
    """The head class registered for the nearest class in the model's MRO,
    or `None`."""
    for cls in type(model).__mro__:
        if cls in _SERVING_HEADS:
            return _SERVING_HEADS[cls]
    return None


def vocabulary_table(tokenizer, size):
    """A string constant of the tokenizer's pieces, padded with `""` to `size`."""
    pieces = list(tokenizer.get_vocabulary())
    return tf.constant(pieces + [""] * max(0, size - len(pieces)))


def is_classifier(model, min_classes=1):
    """Whether the model's output is logits `[batch, num_classes]`."""
    spec = _output_spec(model)
    if isinstance(spec, dict):
        spec = spec.get("logits")
    return (
        spec is not None
        and not isinstance(spec, (dict, list, tuple))
        and len(spec.shape) == 2
        and spec.shape[-1] is not None
        and spec.shape[-1] >= min_classes
    )


def _takes_token_ids(model):
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


def _output_spec(model):
    """The symbolic output structure of a Functional model, else `None`."""
    try:
        return model.output
    except (AttributeError, ValueError):
        return None


def _classifier_with_updates(model):
    """A callable `features -> {"logits", "updates"}` for a classifier."""
    depth_model = getattr(model, "depth_model", None)
    if isinstance(depth_model, keras.Model) and {"logits", "updates"} <= set(
        _output_spec(depth_model) or ()
    ):
        return lambda features: depth_model(features, training=False)
    output = _output_spec(model)
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
    logits = output["logits"] if isinstance(output, dict) else output
    # The symbolic outputs of the backbone's call inside the model's graph.
    for node in getattr(backbone, "_inbound_nodes", []):
        try:
            called = keras.tree.pack_sequence_as(backbone.output, node.outputs)
            depth_model = keras.Model(model.input, {"logits": logits, "updates": called["updates"]})
        except (ValueError, TypeError, KeyError, AttributeError):
            continue
        return lambda features: depth_model(features, training=False)

    def run_twice(features):
        outputs = model(features, training=False)
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs
        return {"logits": logits, "updates": backbone(features, training=False)["updates"]}

    return run_twice


register_serving_head(AlbertActBackbone, BackboneHead)
register_serving_head(AlbertActPretrainer, MaskedLMHead)
