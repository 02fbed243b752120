"""Depth readers: the per-token depth of a Keras backbone or an exported SavedModel.

The analysis needs three things from a model: tokenize text, run packed
token ids, and read back how many layers each token used. A
`KerasDepthReader` wraps an `AlbertActBackbone` and its tokenizer (and also
reads the remainders and the cumulative halting probability of the ACT
layer); a `SavedModelDepthReader` wraps a version folder written by
`keras_act.export.export_saved_model` and reads its `updates` output (the
SavedModel exposes neither remainders nor halting probabilities).
"""

import json
import os

import keras
import numpy as np
import tensorflow as tf

TOKEN_INPUTS = ("token_ids", "segment_ids", "padding_mask")


def _decode(piece):
    return piece.decode("utf-8", errors="replace") if isinstance(piece, bytes) else str(piece)


class DepthReader:
    """Base class: the per-token depth of a model, as numpy arrays.

    Subclasses set the attributes below and implement `tokenize`, `run` and
    `run_texts`.

    Attributes:
        max_layers: int or `None` (unknown), the cap on the updates.
        vocabulary_size: int.
        max_sequence_length: int, the longest packed sequence `run` takes.
        cls_token_id, sep_token_id, pad_token_id, mask_token_id: ints.
        has_halting: bool, whether `remainders` and `halting_probability`
            are returned (else they are `None`).
    """

    max_layers = None
    has_halting = False

    def tokenize(self, sentences):
        """Token ids of each sentence, without `[CLS]`/`[SEP]`.

        Args:
            sentences: a list of str.

        Returns:
            A list of int32 numpy arrays.
        """
        raise NotImplementedError

    def run(self, token_ids, segment_ids, padding_mask):
        """Runs packed inputs (`[batch, seq]`) through the model.

        Returns:
            A dict of numpy arrays `[batch, seq]`: float32 `updates` (0 on
            padding), `remainders` and `halting_probability` (or `None`
            when `has_halting` is false) and str `token_pieces`.
        """
        raise NotImplementedError

    def run_texts(self, sentences):
        """Tokenizes, packs (`[CLS] text [SEP]`) and runs sentences.

        Returns:
            The dict of `run`, plus int32 `token_ids` and `padding_mask`
            `[batch, seq]`, and `step_halting_probabilities` (see
            `KerasDepthReader.step_halting_probabilities`; `None` when
            `has_halting` is false).
        """
        raise NotImplementedError

    def pack_texts(self, sentences):
        """`[CLS] pieces [SEP]` of each sentence, cut to `max_sequence_length`.

        Returns:
            int32 `(token_ids, padding_mask)` `[batch, seq]`, padded to the
            longest sentence.
        """
        return _pack(
            self.tokenize(sentences),
            self.max_sequence_length,
            self.cls_token_id,
            self.sep_token_id,
            self.pad_token_id,
        )


class KerasDepthReader(DepthReader):
    """The depth of an `AlbertActBackbone` with its `AlbertActTokenizer`.

    The backbone's own graph is run, with the ACT layer's cumulative halting
    probability added to its outputs, so `updates` are exactly the
    backbone's `updates` output.

    Args:
        backbone: a `keras_act.AlbertActBackbone`.
        tokenizer: a `keras_act.AlbertActTokenizer`.

    Example:

    ```python
    depth_reader = KerasDepthReader(backbone, tokenizer)
    depth_reader.run_texts(["The quick brown fox."])["updates"]
    ```
    """

    has_halting = True

    def __init__(self, backbone, tokenizer):
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.max_layers = int(backbone.max_layers)
        self.vocabulary_size = int(backbone.vocabulary_size)
        self.max_sequence_length = int(backbone.max_sequence_length)
        self.cls_token_id = int(tokenizer.cls_token_id)
        self.sep_token_id = int(tokenizer.sep_token_id)
        self.pad_token_id = int(tokenizer.pad_token_id)
        self.mask_token_id = int(tokenizer.mask_token_id)
        if tokenizer.vocabulary_size() > self.vocabulary_size:
            raise ValueError(
                f"The tokenizer has {tokenizer.vocabulary_size()} pieces but the "
                f"backbone's vocabulary_size is {self.vocabulary_size}: they do not "
                "belong together."
            )
        self._model = _depth_submodel(backbone)
        self._predict = tf.function(
            lambda inputs: self._model(inputs, training=False), reduce_retracing=True
        )
        self._predict_steps = tf.function(
            _step_halting_function(backbone), reduce_retracing=True
        )

    def tokenize(self, sentences):
        ids = self.tokenizer(tf.constant(list(sentences), tf.string))
        return [np.asarray(row, np.int32) for row in ids.to_list()]

    def run(self, token_ids, segment_ids, padding_mask):
        inputs = _token_inputs(token_ids, segment_ids, padding_mask)
        outputs = {key: np.asarray(value) for key, value in self._predict(inputs).items()}
        pieces = self.tokenizer.id_to_piece(inputs["token_ids"]).numpy()
        outputs["token_pieces"] = np.vectorize(_decode, otypes=[object])(pieces)
        return outputs

    def step_halting_probabilities(self, token_ids, segment_ids, padding_mask):
        """The halting unit's probability at each iteration of each token.

        Runs the ACT layer's dense path with `return_iterations=True` (its
        `updates` equal the backbone's).

        Returns:
            float32 `[batch, seq, num_iterations]`: the sigmoid of the
            halting unit after the block's `t`-th update of the token, `nan`
            from the token's last update on (and on padding).
        """
        inputs = _token_inputs(token_ids, segment_ids, padding_mask)
        probabilities, updates = (np.asarray(v) for v in self._predict_steps(inputs))
        steps = np.arange(probabilities.shape[-1])
        return np.where(steps < updates[..., None], probabilities, np.nan).astype(np.float32)

    def run_texts(self, sentences):
        token_ids, padding_mask = self.pack_texts(sentences)
        segment_ids = np.zeros_like(token_ids)
        outputs = self.run(token_ids, segment_ids, padding_mask)
        outputs.update(
            token_ids=token_ids,
            padding_mask=padding_mask,
            step_halting_probabilities=self.step_halting_probabilities(
                token_ids, segment_ids, padding_mask
            ),
        )
        return outputs


def _token_inputs(token_ids, segment_ids, padding_mask):
    values = (token_ids, segment_ids, padding_mask)
    return {k: tf.constant(np.asarray(v), tf.int32) for k, v in zip(TOKEN_INPUTS, values, strict=True)}


def _depth_submodel(backbone):
    """The backbone's graph with the ACT layer's halting probability as output."""
    encoder = backbone.get_layer("albert_act")
    outputs = backbone.output
    spec = encoder.compute_output_spec(
        keras.KerasTensor((None, None, backbone.hidden_dim)),
        keras.KerasTensor((None, None), dtype="int32"),
    )
    encoded = keras.tree.pack_sequence_as(spec, keras.tree.flatten(encoder.output))
    if encoded["updates"] is not outputs["updates"]:
        raise ValueError(
            f"{backbone.name}: the `updates` output is not the output of its "
            "`albert_act` layer; is it an AlbertActBackbone?"
        )
    return keras.Model(
        backbone.input,
        {
            "updates": outputs["updates"],
            "remainders": outputs["remainders"],
            "halting_probability": encoded["halting_probability"],
        },
    )


def _step_halting_function(backbone):
    """`inputs -> (p [batch, seq, iterations], updates)` on the ACT layer's dense path."""
    encoder = backbone.get_layer("albert_act")
    embeddings = keras.Model(backbone.input, backbone.get_layer("embedding_projection").output)

    def call(inputs):
        encoded = encoder(
            embeddings(inputs, training=False),
            padding_mask=inputs["padding_mask"],
            training=False,
            return_iterations=True,
        )
        steps = encoded["num_iterations"]
        logits = encoded["iteration_halting_logits"][:steps]
        return tf.transpose(tf.sigmoid(logits), [1, 2, 0]), encoded["updates"]

    return call


class SavedModelDepthReader(DepthReader):
    """The depth of a SavedModel written by `keras_act.export`.

    Text is tokenized by the `serving_default` signature (raw strings
    `text`, tokenized in the graph). That signature truncates to the
    export's sequence length, so a sentence that fills it is split at
    whitespace and its halves tokenized again, until every part fits: the
    pieces are those of the whole sentence (SentencePiece never joins
    pieces across whitespace), and sentences are never cut short. The only
    exception is a single word of as many pieces as the export's length
    holds, or more, which may be cut there: such sentences are counted in
    `truncated_sentences`. Packed token ids run through `serve_token_ids`,
    which takes any length up to the model's `max_sequence_length`, so the
    SavedModel gives the same updates as the `.keras` model it came from.
    The special token ids are read from the exported tokenizer (by sending
    it `"[MASK]"`), the vocabulary size from the token embedding, and the
    cap (`max_layers`) from the export's `keras_act_model.json` (`None` for
    exports written before it).

    Args:
        path: a SavedModel version folder (`saved_models/NAME/3`).

    Example:

    ```python
    depth_reader = SavedModelDepthReader("saved_models/albert_act_demo/1")
    depth_reader.run_texts(["The quick brown fox."])["updates"]
    ```
    """

    def __init__(self, path):
        import tensorflow_text  # noqa: F401  (registers the tokenizer ops)

        self.path = os.fspath(path)
        self._loaded = tf.saved_model.load(self.path)
        signatures = self._loaded.signatures
        if "serving_default" not in signatures:
            raise ValueError(f"{self.path}: the SavedModel has no `serving_default` signature.")
        self._text = signatures["serving_default"]
        self._token_ids_signature = signatures.get("serve_token_ids")
        outputs = self._text.structured_outputs
        missing = [k for k in ("updates", "token_ids", "padding_mask") if k not in outputs]
        if missing:
            raise ValueError(
                f"{self.path}: `serving_default` must return `updates`, `token_ids` and "
                f"`padding_mask` (as keras_act.export writes it); missing {missing}."
            )
        if "text" not in self._text.structured_input_signature[1]:
            raise ValueError(
                f"{self.path}: `serving_default` takes no `text` input (it serves "
                f"{sorted(self._text.structured_input_signature[1])}): export the "
                "backbone or a single-text model for depth analysis."
            )
        facts = read_model_facts(self.path)
        from keras_act.export.archive import budget_inputs_for

        self._budget = budget_inputs_for(self.path, self._text)  # no depth budget
        self.sequence_length = outputs["token_ids"].shape[-1]
        probe = self._call_text(["[MASK]"])
        length = int(probe["padding_mask"][0].sum())
        ids = probe["token_ids"][0]
        self.cls_token_id, self.sep_token_id = int(ids[0]), int(ids[length - 1])
        self.mask_token_id = int(ids[1]) if length == 3 else 4
        self.pad_token_id = 0
        self.vocabulary_size = _embedding_rows(self._loaded)
        self.max_sequence_length = (
            facts.get("max_sequence_length")
            or _position_rows(self._loaded)
            or self.sequence_length
            or 512
        )
        self.max_layers = facts.get("max_layers")
        self.truncated_sentences = 0

    @property
    def can_run_token_ids(self):
        """Whether the SavedModel has the `serve_token_ids` signature."""
        return self._token_ids_signature is not None

    def _call_text(self, sentences):
        outputs = self._text(text=tf.constant(list(sentences), tf.string), **self._budget)
        return {key: value.numpy() for key, value in outputs.items()}

    def _tokenize_once(self, sentences):
        """`(ids, may_be_truncated)` of each sentence through `serving_default`."""
        result = []
        for start in range(0, len(sentences), 256):
            outputs = self._call_text(sentences[start : start + 256])
            width = outputs["token_ids"].shape[-1]
            for ids, mask in zip(outputs["token_ids"], outputs["padding_mask"], strict=True):
                length = int(mask.sum())
                result.append((np.asarray(ids[1 : length - 1], np.int32), length >= width))
        return result

    def tokenize(self, sentences):
        sentences = list(sentences)
        results = [None] * len(sentences)
        for index, (ids, full) in enumerate(self._tokenize_once(sentences)):
            results[index] = self._split_and_tokenize(sentences[index]) if full else ids
        return results

    def _split_and_tokenize(self, sentence):
        """The ids of a sentence that filled the export's length, in parts."""
        words = _decode(sentence).split()
        if len(words) <= 1:
            self.truncated_sentences += 1
            return self._tokenize_once([sentence])[0][0]
        middle = len(words) // 2
        halves = [" ".join(words[:middle]), " ".join(words[middle:])]
        parts = self._tokenize_once(halves)
        return np.concatenate(
            [
                self._split_and_tokenize(half) if full else ids
                for half, (ids, full) in zip(halves, parts, strict=True)
            ]
        ).astype(np.int32)

    def run(self, token_ids, segment_ids, padding_mask):
        if self._token_ids_signature is None:
            raise ValueError(
                f"{self.path}: the SavedModel has no `serve_token_ids` signature, so "
                "masked token ids cannot be sent to it."
            )
        outputs = self._token_ids_signature(
            **_token_inputs(token_ids, segment_ids, padding_mask), **self._budget
        )
        return self._depth_outputs({key: value.numpy() for key, value in outputs.items()})

    def run_texts(self, sentences):
        if self.can_run_token_ids:
            # Packed as `KerasDepthReader.run_texts`: up to the model's length.
            token_ids, padding_mask = self.pack_texts(sentences)
            result = self.run(token_ids, np.zeros_like(token_ids), padding_mask)
        else:
            outputs = self._call_text(sentences)
            result = self._depth_outputs(outputs)
            token_ids = outputs["token_ids"].astype(np.int32)
            padding_mask = outputs["padding_mask"].astype(np.int32)
        result.update(
            token_ids=token_ids, padding_mask=padding_mask, step_halting_probabilities=None
        )
        return result

    def _depth_outputs(self, outputs):
        updates = outputs["updates"].astype(np.float32)
        pieces = outputs.get("token_pieces")
        if pieces is None:
            pieces = outputs["token_ids"].astype(str)
        return {
            "updates": updates,
            "remainders": None,
            "halting_probability": None,
            "token_pieces": np.vectorize(_decode, otypes=[object])(pieces),
        }


def read_model_facts(version_dir):
    """The export's `keras_act_model.json` (`max_layers`, ...), or `{}` when absent."""
    from keras_act.export.archive import MODEL_FACTS_FILE

    path = os.path.join(version_dir, MODEL_FACTS_FILE)
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as file:
        try:
            facts = json.load(file)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(facts, dict):
        raise ValueError(f"{path} must hold a JSON object. Received: {facts!r}")
    return facts


def _pack(rows, max_sequence_length, cls_token_id, sep_token_id, pad_token_id):
    """`[CLS] ids [SEP]` of each row (ids cut to fit), padded: `(token_ids, padding_mask)`."""
    rows = [[cls_token_id] + list(ids[: max_sequence_length - 2]) + [sep_token_id] for ids in rows]
    length = max(len(row) for row in rows)
    token_ids = np.full((len(rows), length), pad_token_id, np.int32)
    padding_mask = np.zeros((len(rows), length), np.int32)
    for i, row in enumerate(rows):
        token_ids[i, : len(row)] = row
        padding_mask[i, : len(row)] = 1
    return token_ids, padding_mask


def _variable_rows(loaded, name):
    for variable in loaded.variables:
        if variable.name.split(":")[0].endswith(name) and variable.shape.rank == 2:
            return int(variable.shape[0])
    return None


def _embedding_rows(loaded):
    rows = _variable_rows(loaded, "token_embedding/embeddings")
    if rows is None:
        raise ValueError(
            "The SavedModel has no `token_embedding/embeddings` variable: it was "
            "not exported from an AlbertActBackbone by keras_act.export."
        )
    return rows


def _position_rows(loaded):
    return _variable_rows(loaded, "position_embedding/embeddings")
