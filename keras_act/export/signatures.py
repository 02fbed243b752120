"""The exported signature functions: raw text in, and token ids in."""

import numpy as np
import tensorflow as tf

from keras_act.export.heads.base import vocabulary_table
from keras_act.export.per_example_budget import PerExampleBudget
from keras_act.export.request_checks import checked_input, checked_inputs, text_axes, token_ids_axes

TEXT_SIGNATURE = "serving_default"
TOKEN_IDS_SIGNATURE = "serve_token_ids"
TOKEN_INPUTS = ("token_ids", "segment_ids", "padding_mask")
#: The optional depth-budget inputs of every signature (a scalar, `[1]` or
#: one value per example `[batch]`).
BUDGET_INPUTS = ("max_layers", "halting_threshold")


def budget_defaults(max_layers, act_epsilon):
    """The default values of the depth-budget inputs of a model's signatures.

    A request without `max_layers` / `halting_threshold` gets these: the
    trained cap and halting threshold, so its outputs are those of the model
    without a budget. They have the shape `[1]` (one value, for every
    text): the model server's batcher concatenates the defaults of the
    requests it merges as it does their texts, so a request of one text may
    leave them out on a batching server too.

    Args:
        max_layers: int, the most layers a token can get (the backbone's
            loop length: its cap, or a larger `fixed_depth`).
        act_epsilon: float, the model's `act_epsilon`.

    Returns:
        A dict of an int32 `max_layers` and a float32 `halting_threshold`
        (NumPy arrays of shape `[1]`).

    Example:

    >>> defaults = budget_defaults(6, 0.01)
    >>> defaults["max_layers"].tolist(), [round(float(defaults["halting_threshold"][0]), 6)]
    ([6], [0.99])
    """
    return {
        "max_layers": np.array([max_layers], np.int32),
        "halting_threshold": np.array([1.0 - act_epsilon], np.float32),
    }


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


def serving_input_names(preprocessor, head, pair=None):
    """The raw-text signature's input names: the head's own
    (`head.text_input_names`, e.g. `question` and `context`) or
    `text_input_names(preprocessor, pair)`."""
    names = getattr(head, "text_input_names", None)
    if names is None:
        return text_input_names(preprocessor, pair)
    if pair is not None and pair != (len(names) == 2):
        raise ValueError(
            f"{type(head).__name__} serves the inputs {tuple(names)}; `pair` does not "
            f"apply. Received: pair={pair!r}"
        )
    return tuple(names)


class ServingFunctions:
    """Builds the `tf.function` endpoints of an export.

    `text_endpoint` (`serving_default`) takes a batch of raw strings `text`
    `[batch]` (and `text_pair` for a pair preprocessor; or the head's own
    `text_input_names`, e.g. `question` and `context`), runs the in-graph
    tokenizer and preprocessor (truncation and padding to
    `preprocessor.sequence_length`) and then the head (`head.serve_texts`).
    `token_ids_endpoint` (`serve_token_ids`) takes int32 `token_ids`,
    `segment_ids` and `padding_mask` `[batch, seq]` (`[batch, choices,
    seq]` for multiple choice; any `seq` up to the model's
    `max_sequence_length`) and runs the head. The model server does not
    compare a request's shapes with the signature's, so every input is
    checked in the graph before anything else sees it
    (`request_checks.checked_input`): another rank, or no choices, is
    `INVALID_ARGUMENT` naming the input. Both return the
    head's outputs (floating outputs as float32) plus int32 `token_ids` and
    `padding_mask` and the string `token_pieces` of the model's input.

    Args:
        preprocessor: the `AlbertActPreprocessor` (or pair preprocessor).
        head: the model's `ServingHead`.
        vocabulary_size: int, the model's vocabulary size (the piece table
            is padded to it).
        pair: bool or `None`, whether `serving_default` takes `text_pair`
            (see `text_input_names`).
        budget: `None`, or the default values of the depth-budget inputs
            (`budget_defaults`): both endpoints then also take an int32
            `max_layers` and a float32 `halting_threshold`, each a scalar or
            `[1]` (for every example) or `[batch]` (one per example, as the
            model server's batcher concatenates them), which default to
            these values (Python default arguments of the `tf.function`s;
            `signature_defaults.add_signature_defaults` writes them into the
            SavedModel so the model server may omit them), checked
            (`max_layers` in `[1, cap]`, `halting_threshold` in `(0, 1]`)
            and passed to the model through `keras_act.layers.depth_budget`,
            once per distinct pair of the batch (`PerExampleBudget`).

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

    def __init__(self, preprocessor, head, vocabulary_size, pair=None, budget=None):
        self.preprocessor = preprocessor
        self.input_names = serving_input_names(preprocessor, head, pair)
        self.head = head
        self.pieces = vocabulary_table(preprocessor.tokenizer, vocabulary_size)
        self.budget = None if budget is None else dict(budget)
        if self.budget is not None and set(self.budget) != set(BUDGET_INPUTS):
            raise ValueError(
                f"`budget` must give {BUDGET_INPUTS} (see budget_defaults). Received: {budget!r}"
            )
        self.text_endpoint = self._make_text_endpoint()
        self.token_ids_endpoint = self._make_token_ids_endpoint()

    def outputs(self, features, outputs=None):
        """Runs the head on a features dict (unless `outputs` are given) and
        adds the token outputs."""
        outputs = dict(self.head(features) if outputs is None else outputs)
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

    def budgeted_head(self, max_layers, halting_threshold, batch_size):
        """The head that runs one call of an endpoint: the head itself
        without budget inputs, else its `PerExampleBudget` copy (each
        example with its own budget; values checked when the graph runs)."""
        if self.budget is None:
            return self.head
        budget = PerExampleBudget(
            max_layers,
            halting_threshold,
            batch_size,
            int(np.ravel(self.budget["max_layers"])[0]),
            float(np.ravel(self.budget["halting_threshold"])[0]),
        )
        return budget.head(self.head)

    def _budget_specs(self):
        # Unknown rank: a scalar, [1] or [batch] (see `per_example_values`).
        if self.budget is None:
            return []
        return [
            tf.TensorSpec(None, tf.int32, name="max_layers"),
            tf.TensorSpec(None, tf.float32, name="halting_threshold"),
        ]

    def _make_text_endpoint(self):
        preprocessor, head, names = self.preprocessor, self.head, self.input_names
        ranks = getattr(head, "text_input_ranks", None) or [1] * len(names)

        def serve(*texts, max_layers=None, halting_threshold=None):
            texts = [
                checked_input(text, name, text_axes(rank))
                for text, name, rank in zip(texts, names, ranks, strict=True)
            ]
            if len(texts) > 1:
                checks = [
                    tf.debugging.assert_equal(
                        tf.shape(texts[0])[:1],
                        tf.shape(text)[:1],
                        message=f"`{names[0]}` and `{name}` must have the same batch size",
                    )
                    for name, text in zip(names[1:], texts[1:], strict=True)
                ]
                with tf.control_dependencies(checks):
                    texts = [tf.identity(text) for text in texts]
            budgeted = self.budgeted_head(max_layers, halting_threshold, tf.shape(texts[0])[0])
            outputs, features = budgeted.serve_texts(
                preprocessor, dict(zip(names, texts, strict=True))
            )
            return self.outputs(features, outputs)

        # A `tf.function` with one named argument per input (the SignatureDef
        # takes its input names from the arguments').
        specs = [
            tf.TensorSpec([None] * rank, tf.string, name=name)
            for name, rank in zip(names, ranks, strict=True)
        ]
        # The budget inputs' defaults are Python default arguments: a
        # restored `tf.function` attribute may omit them, and
        # `tf.saved_model.save` given the function would write them as
        # SignatureDef defaults (keras' ExportArchive passes concrete
        # functions, so `add_signature_defaults` writes them afterwards).
        budget = self._budget_defaults()
        if len(names) == 1 and budget:

            @tf.function(input_signature=specs + self._budget_specs())
            def serve_text_budget(
                text, max_layers=budget["max_layers"], halting_threshold=budget["halting_threshold"]
            ):
                return serve(text, max_layers=max_layers, halting_threshold=halting_threshold)

            return serve_text_budget
        if len(names) == 2 and budget:

            @tf.function(input_signature=specs + self._budget_specs())
            def serve_text_pair_budget(
                text,
                text_pair,
                max_layers=budget["max_layers"],
                halting_threshold=budget["halting_threshold"],
            ):
                return serve(
                    text, text_pair, max_layers=max_layers, halting_threshold=halting_threshold
                )

            return serve_text_pair_budget
        if len(names) == 1:

            @tf.function(input_signature=specs)
            def serve_text(text):
                return serve(text)

            return serve_text
        if len(names) == 2:

            @tf.function(input_signature=specs)
            def serve_text_pair(text, text_pair):
                return serve(text, text_pair)

            return serve_text_pair
        raise ValueError(f"A raw-text signature takes one or two inputs. Received: {names}")

    def _budget_defaults(self):
        """The defaults as eager constants (`None` without budget inputs)."""
        if self.budget is None:
            return None
        return {name: tf.constant(value) for name, value in self.budget.items()}

    def _make_token_ids_endpoint(self):
        rank = getattr(self.head, "token_ids_rank", 2)
        specs = [tf.TensorSpec([None] * rank, tf.int32, name=n) for n in TOKEN_INPUTS]

        def serve(token_ids, segment_ids, padding_mask, max_layers=None, halting_threshold=None):
            features = checked_inputs(
                {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask},
                dict.fromkeys(TOKEN_INPUTS, token_ids_axes(rank)),
            )
            batch_size = tf.shape(features["token_ids"])[0]
            budgeted = self.budgeted_head(max_layers, halting_threshold, batch_size)
            return self.outputs(features, budgeted(features))

        budget = self._budget_defaults()
        if budget:

            @tf.function(input_signature=specs + self._budget_specs())
            def serve_token_ids_budget(
                token_ids,
                segment_ids,
                padding_mask,
                max_layers=budget["max_layers"],
                halting_threshold=budget["halting_threshold"],
            ):
                return serve(token_ids, segment_ids, padding_mask, max_layers, halting_threshold)

            return serve_token_ids_budget

        @tf.function(input_signature=specs)
        def serve_token_ids(token_ids, segment_ids, padding_mask):
            return serve(token_ids, segment_ids, padding_mask)

        return serve_token_ids


