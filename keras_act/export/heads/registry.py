"""The registry of serving heads: which head serves which model class."""

import keras

from keras_act.export.heads.base import is_classifier, output_spec, takes_token_ids
from keras_act.export.heads.classifier import ClassifierHead

_SERVING_HEADS = {}


def register_serving_head(model_cls, head_cls):
    """Registers the serving head of a model class (and its subclasses).

    Args:
        model_cls: a `keras.Model` subclass.
        head_cls: a `ServingHead` subclass (or any callable
            `(model, tokenizer, top_k=...) -> head`).

    Returns:
        `head_cls`.

    Example:

    >>> import keras
    >>> class MyModel(keras.Model):
    ...     pass
    >>> register_serving_head(MyModel, ClassifierHead).__name__
    'ClassifierHead'
    >>> registered_head_class(MyModel()).__name__
    'ClassifierHead'
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
    if is_classifier(model, min_classes=2) and takes_token_ids(model):
        return ClassifierHead(model, tokenizer, top_k=top_k)
    registered = ", ".join(sorted(cls.__name__ for cls in _SERVING_HEADS))
    raise ValueError(
        f"No serving head for {type(model).__name__} (outputs {output_spec(model)}). "
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
