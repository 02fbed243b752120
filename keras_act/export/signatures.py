"""The exported signature functions: raw text in, and token ids in."""

import tensorflow as tf

from keras_act.export.serving_heads import vocabulary_table

TEXT_SIGNATURE = "serving_default"
TOKEN_IDS_SIGNATURE = "serve_token_ids"
TOKEN_INPUTS = ("token_ids", "segment_ids", "padding_mask")


def text_input_names(preprocessor, pair=None):
    """The input names of the raw-text signature: `text` (and `text_pair`).

    Args:
        preprocessor: the export's preprocessor.
        pair: bool or `None`, whether the signature takes sentence pairs;
            `None` follows the preprocessor's `num_segments` (2: pairs).
            Preprocessors of one or more texts (`num_segments=None`, the
            text classifier's) serve single texts unless `pair=True`.

    Returns:
        `("text",)` or `("text", "text_pair")`.
    """
    segments = getattr(preprocessor, "num_segments", 1)
    if pair is None:
        pair = segments == 2
    elif not isinstance(pair, bool):
        raise ValueError(f"`pair` must be a bool or None. Received: pair={pair!r}")
    if pair and segments == 1:
        raise ValueError(
            f"{type(preprocessor).__name__} packs one text (num_segments=1): it cannot "
            "serve `text_pair`. Use an AlbertActPairPreprocessor. Received: pair=True"
        )
    if not pair and segments == 2:
        raise ValueError(
            f"{type(preprocessor).__name__} packs sentence pairs (num_segments=2): it "
            "needs `text_pair`. Received: pair=False"
        )
    return ("text", "text_pair") if pair else ("text",)


class ServingFunctions:
    """Builds the `tf.function` endpoints of an export.

    `text_endpoint` (`serving_default`) takes a batch of raw strings `text`
    `[batch]` (and `text_pair` for a pair preprocessor), runs the in-graph
    tokenizer and preprocessor (truncation and padding to
    `preprocessor.sequence_length`) and then the head. `token_ids_endpoint`
    (`serve_token_ids`) takes int32 `token_ids`, `segment_ids` and
    `padding_mask` `[batch, seq]` (any `seq` up to the model's
    `max_sequence_length`) and runs the head. (The model server trusts the
    signature's shapes: a string tensor of another rank is served as the
    flat batch of its elements, a scalar as a batch of one.) Both return the head's outputs
    (floating outputs as float32) plus int32 `token_ids` and `padding_mask`
    and the string `token_pieces` `[batch, seq]` of the model's input.

    Args:
        preprocessor: the `AlbertActPreprocessor` (or pair preprocessor).
        head: the model's `ServingHead`.
        vocabulary_size: int, the model's vocabulary size (the piece table
            is padded to it).
        pair: bool or `None`, whether `serving_default` takes `text_pair`
            (see `text_input_names`).

    Returns:
        An object with `text_endpoint` and `token_ids_endpoint`, two
        `tf.function`s with an input signature, ready for
        `ExportArchive.add_endpoint`.

    Example:

    ```python
    functions = ServingFunctions(preprocessor, BackboneHead(backbone, tokenizer), 30000)
    functions.text_endpoint(tf.constant(["some text"]))["updates"]
    ```
    """

    def __init__(self, preprocessor, head, vocabulary_size, pair=None):
        self.preprocessor = preprocessor
        self.input_names = text_input_names(preprocessor, pair)
        self.head = head
        self.pieces = vocabulary_table(preprocessor.tokenizer, vocabulary_size)
        self.text_endpoint = self._make_text_endpoint()
        self.token_ids_endpoint = self._make_token_ids_endpoint()

    def outputs(self, features):
        """Runs the head on a features dict and adds the token outputs."""
        outputs = dict(self.head(features))
        if "updates" not in outputs:
            raise ValueError(
                f"{type(self.head).__name__} must return per-token 'updates'. "
                f"Received outputs: {sorted(outputs)}"
            )
        for name, value in outputs.items():
            if value.dtype.is_floating and value.dtype != tf.float32:
                outputs[name] = tf.cast(value, tf.float32)
        token_ids = tf.cast(features["token_ids"], tf.int32)
        # After the model's own input checks (a clear error for ids out of
        # range), never before them.
        with tf.control_dependencies([outputs["updates"]]):
            token_pieces = tf.gather(self.pieces, token_ids)
        outputs.update(
            token_ids=token_ids,
            token_pieces=token_pieces,
            padding_mask=tf.cast(features["padding_mask"], tf.int32),
        )
        return outputs

    def _make_text_endpoint(self):
        preprocessor = self.preprocessor

        if len(self.input_names) == 2:

            @tf.function(
                input_signature=[
                    tf.TensorSpec([None], tf.string, name="text"),
                    tf.TensorSpec([None], tf.string, name="text_pair"),
                ]
            )
            def serve_text_pair(text, text_pair):
                check = tf.debugging.assert_equal(
                    tf.shape(text),
                    tf.shape(text_pair),
                    message="`text` and `text_pair` must have the same batch size",
                )
                with tf.control_dependencies([check]):
                    text, text_pair = tf.identity(text), tf.identity(text_pair)
                return self.outputs(_features(preprocessor(x=(text, text_pair))))

            return serve_text_pair

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve_text(text):
            return self.outputs(_features(preprocessor(x=text)))

        return serve_text

    def _make_token_ids_endpoint(self):
        @tf.function(
            input_signature=[tf.TensorSpec([None, None], tf.int32, name=n) for n in TOKEN_INPUTS]
        )
        def serve_token_ids(token_ids, segment_ids, padding_mask):
            features = {
                "token_ids": token_ids,
                "segment_ids": segment_ids,
                "padding_mask": padding_mask,
            }
            return self.outputs(features)

        return serve_token_ids


def _features(preprocessed):
    """The features dict of a preprocessor's output (`x`, or `(x, y, ...)`)."""
    if isinstance(preprocessed, tuple):
        preprocessed = preprocessed[0]
    return {name: preprocessed[name] for name in TOKEN_INPUTS}
