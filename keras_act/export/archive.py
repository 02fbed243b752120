"""`export_saved_model`: a Keras model and its preprocessor as a TF Serving version."""

import contextlib
import json
import os

import keras
import numpy as np
import tensorflow as tf

from keras_act.checks import check_int_in_range
from keras_act.export import atomic, batching, warmup
from keras_act.export.heads import serving_head_for
from keras_act.export.signature_defaults import add_signature_defaults
from keras_act.export.signatures import (
    TEXT_SIGNATURE,
    TOKEN_IDS_SIGNATURE,
    ServingFunctions,
    budget_defaults,
    serving_input_names,
)
from keras_act.tokenizers.albert_act_preprocessor import AlbertActPreprocessor
from keras_act.tokenizers.albert_act_tokenizer import AlbertActTokenizer

# The model's facts that the signatures do not show (its ACT cap), beside
# saved_model.pb, for tools that read an export (keras_act.analysis).
MODEL_FACTS_FILE = "keras_act_model.json"


def export_saved_model(
    model,
    preprocessor_or_tokenizer,
    base_dir,
    version=None,
    sequence_length=None,
    warmup_texts=None,
    *,
    pair=None,
    top_k=5,
    verify=True,
    depth_budget_inputs=True,
    measure_batching=True,
):
    """Exports a model with its in-graph preprocessing for TensorFlow Serving.

    Writes `base_dir/<version>/`, a SavedModel built with
    `keras.export.ExportArchive` that tracks the model and the
    preprocessor (with its tokenizer), with two signatures:

    - `serving_default`: raw strings `text` `[batch]` (and `text_pair` for
      an `AlbertActPairPreprocessor`). Texts are tokenized in the graph,
      truncated to `sequence_length` tokens (with `[CLS]`/`[SEP]`; longer
      texts lose their end) and padded to it.
    - `serve_token_ids`: int32 `token_ids`, `segment_ids`, `padding_mask`
      `[batch, seq]`, any `seq` up to the model's `max_sequence_length`.

    Both return the outputs of the model's serving head (see
    `serving_head_for`: `sequence_output`/`pooled_output` for a backbone,
    top-k fills for `AlbertActPretrainer`, `logits`/`probabilities`/`label`
    for a classifier, `score` for `AlbertActTextRegressor`, word labels for
    `AlbertActTokenClassifier`, the answer span and text for
    `AlbertActQuestionAnswerer`, whose `serving_default` takes `question`
    and `context`, the chosen index for `AlbertActMultipleChoice`, which
    takes `prompt` and `choices`; see `keras_act/export/heads/multiple_choice.py`),
    float32 `updates` (the number of layers each token
    used, 0 on padding), int32 `token_ids` and `padding_mask` and string
    `token_pieces`.

    With `depth_budget_inputs` (and a model with an `AlbertActBackbone`),
    both signatures also take the optional inputs int32 `max_layers` (1 to
    the trained cap) and float32 `halting_threshold` (in (0, 1]), the
    request's depth budget (`keras_act.layers.depth_budget`): a scalar or
    `[1]` for every text, or `[batch]`, one value per text (what the model
    server's batcher (`--enable_batching`) makes of the requests it merges;
    see `per_example_budget`). A request without them gets the trained cap
    (the backbone's loop length) and `1 - act_epsilon` (`[1]` defaults):
    exactly the outputs of an export without them. The model server may
    omit them (`PlaceholderWithDefault` and `SignatureDef.defaults`, see
    `signature_defaults`); a `tf.saved_model.load` user passes them (the
    defaults are in `keras_act_model.json`).

    `batching_parameters.txt` (the model server's `--batching_parameters_file`)
    is written beside `models.config`, with settings chosen from timings of
    the raw-text signature at growing batch sizes on this machine
    (`batching.choose_batching_parameters`; a few seconds at most); without
    `measure_batching` nothing is timed and no file is written.

    Warm-up requests (a batch of one, all `warmup_texts`, and their token
    ids) are written to `assets.extra/tf_serving_warmup_requests`, and a
    `models.config` example to `base_dir` (unless one exists). The version
    is written into a temporary folder beside the versions, loaded back
    with the TF1 session loader and run on its warm-up requests (with
    `verify`), then published by one `os.rename`. Temporary folders of
    killed exports are removed first (see `atomic.remove_stale_staging`).

    Args:
        model: an `AlbertActBackbone`, `AlbertActPretrainer`, a model whose
            output is logits `[batch, num_classes]`, or a model class given
            a head with `register_serving_head`.
        preprocessor_or_tokenizer: an `AlbertActPreprocessor` /
            `AlbertActPairPreprocessor`, or an `AlbertActTokenizer` (an
            `AlbertActPreprocessor` is built around it). `None` takes the
            model's own `preprocessor` (keras-hub tasks carry one).
        base_dir: str, the model's folder (`saved_models/NAME`); its name is
            the model's name in the warm-up requests and `models.config`.
        version: int, the version to write; `None` writes the next free one
            (1 in a new folder). An existing version raises
            `FileExistsError`.
        sequence_length: int, the length texts are truncated and padded to;
            defaults to the preprocessor's, or (given a tokenizer) to the
            model's `max_sequence_length`.
        warmup_texts: a list of strings (of `(text, text_pair)` pairs for a
            pair preprocessor) for the warm-up requests; defaults to the
            head's examples.
        pair: bool, whether `serving_default` takes `text_pair`. Defaults
            to `None`: pairs for a preprocessor of two segments
            (`AlbertActPairPreprocessor`), single texts otherwise; `True`
            serves pairs through a preprocessor of one or more texts (the
            text classifier's).
        top_k: int, fills returned per `[MASK]` by a masked-LM model.
            Defaults to 5.
        verify: bool, whether to load the version with the TF1 session
            loader and run its warm-up requests before publishing it.
            Defaults to `True`.
        depth_budget_inputs: bool, whether the signatures take the optional
            `max_layers` / `halting_threshold` inputs (models with an
            `AlbertActBackbone`). Defaults to `True`.
        measure_batching: bool, whether to time the raw-text signature and
            write `batching_parameters.txt`. Defaults to `True`.

    Returns:
        str, the path of the version folder written.

    Example:

    ```python
    tokenizer = keras_act.tokenizers.AlbertActTokenizer(proto="spiece.model")
    backbone = keras_act.AlbertActBackbone.from_preset("preset_dir")
    path = keras_act.export.export_saved_model(
        backbone, tokenizer, "saved_models/albert_act", sequence_length=64
    )
    # 'saved_models/albert_act/1'
    ```
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"`model` must be a Keras model. Received: model={model!r}")
    base_dir = os.fspath(base_dir)
    atomic.check_base_dir(base_dir)
    if version is not None:
        atomic.check_version(version)
        atomic.check_free(base_dir, version)
    preprocessor = resolve_preprocessor(model, preprocessor_or_tokenizer, sequence_length)
    head = serving_head_for(model, preprocessor.tokenizer, top_k=top_k)
    input_names = serving_input_names(preprocessor, head, pair)
    texts = _warmup_texts(warmup_texts, head, input_names)
    # Builds the preprocessor (a tracked layer must be built) and gives the
    # token-id warm-up request.
    requests = warmup.warmup_requests(preprocessor, texts, input_names, head)

    budget = model_budget_defaults(model) if depth_budget_inputs else None
    archive = build_export_archive(
        model,
        preprocessor,
        head,
        pair=None if head.text_input_names else len(input_names) == 2,
        budget=budget,
    )
    model_name = os.path.basename(os.path.normpath(os.path.abspath(base_dir)))
    latencies = {}

    def time_batches(session, meta_graph):
        latencies.update(time_text_signature(session, meta_graph, requests[1][1]))

    def write(staging_dir):
        archive.write_out(staging_dir, verbose=False)
        if budget is not None:
            add_signature_defaults(staging_dir, budget)
        warmup.write_warmup_file(staging_dir, model_name, requests)
        write_model_facts(staging_dir, model, preprocessor)
        if verify and measure_batching:
            run_warmup_requests(staging_dir, on_loaded=time_batches)
        elif verify:
            run_warmup_requests(staging_dir)
        elif measure_batching:
            with _loaded_session(staging_dir) as (session, meta_graph):
                time_batches(session, meta_graph)

    path = atomic.write_version(base_dir, write, version=version)
    warmup.write_models_config(base_dir, model_name)
    if measure_batching:
        parameters = batching.choose_batching_parameters(latencies)
        note = (
            f"TensorFlow Serving batching parameters for \"{model_name}\" (written by "
            "keras_act.export),\nchosen from these timings on the exporting machine "
            f"({os.cpu_count()} CPUs); see docs/serving.md. Use with:\n"
            "  tensorflow_model_server --enable_batching "
            f"--batching_parameters_file=/models/{model_name}/{batching.BATCHING_PARAMETERS_FILE} ..."
        )
        if budget is not None:
            note += (
                "\nThe depth-budget inputs max_layers / halting_threshold batch too: a request "
                "of one text\nmay leave them out; a request of several texts sends both with "
                "one value per text."
            )
        batching.write_batching_parameters(
            base_dir, batching.batching_parameters_text(parameters, latencies, note)
        )
    return path


def model_budget_defaults(model):
    """The depth-budget defaults (`signatures.budget_defaults`) of a model
    with an `AlbertActBackbone`, else `None`: `1 - act_epsilon` and the most
    layers a token can get, the loop length of its encoder (its
    `max_layers`, or a larger `fixed_depth`: a fixed-depth backbone of 12
    layers and a cap of 6 runs 12 without a budget, and accepts
    `max_layers` up to 12)."""
    backbone = model if hasattr(model, "act_epsilon") else getattr(model, "backbone", None)
    cap = getattr(getattr(backbone, "encoder", None), "loop_length", None)
    if cap is None:
        cap = getattr(backbone, "max_layers", None)
    epsilon = getattr(backbone, "act_epsilon", None)
    if not isinstance(cap, int) or not isinstance(epsilon, float):
        return None
    return budget_defaults(cap, epsilon)


def time_text_signature(session, meta_graph, text_inputs, **options):
    """Times the raw-text signature of a loaded session at growing batch sizes.

    Args:
        session: a TF1 session with the SavedModel loaded.
        meta_graph: its MetaGraphDef.
        text_inputs: dict of input name to an array of texts (rows are
            repeated to each batch size).
        **options: passed to `batching.measure_batch_latencies`.

    Returns:
        A dict of batch size to seconds per run.
    """
    signature = meta_graph.signature_def[TEXT_SIGNATURE]
    fetches = [info.name for info in signature.outputs.values()]

    def run(size):
        feeds = {
            signature.inputs[name].name: np.resize(np.asarray(value), (size,) + np.shape(value)[1:])
            for name, value in text_inputs.items()
        }
        session.run(fetches, feeds)

    return batching.measure_batch_latencies(run, **options)


def build_export_archive(model, preprocessor, head, pair=None, budget=None):
    """The `keras.export.ExportArchive` of a model, preprocessor and head.

    Args:
        model: the Keras model.
        preprocessor: its built preprocessor.
        head: its `ServingHead`.
        pair: bool or `None`, whether `serving_default` takes `text_pair`.
        budget: `None`, or the depth-budget defaults (`budget_defaults`):
            the endpoints then take `max_layers` and `halting_threshold`.

    Returns:
        An `ExportArchive` tracking the model, preprocessor and tokenizer,
        with the `serving_default` (raw text) and `serve_token_ids`
        endpoints.
    """
    functions = ServingFunctions(
        preprocessor, head, _vocabulary_size(model, preprocessor), pair=pair, budget=budget
    )
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(preprocessor)
    archive.track(preprocessor.tokenizer)
    archive.add_endpoint(TEXT_SIGNATURE, functions.text_endpoint)
    archive.add_endpoint(TOKEN_IDS_SIGNATURE, functions.token_ids_endpoint)
    return archive


def resolve_preprocessor(model, preprocessor_or_tokenizer, sequence_length=None):
    """The preprocessor an export runs in its graph.

    Args:
        model: the Keras model (its `preprocessor` is used when
            `preprocessor_or_tokenizer` is `None`).
        preprocessor_or_tokenizer: a preprocessor, an `AlbertActTokenizer`
            or `None`.
        sequence_length: int or `None`, see `export_saved_model`.

    Returns:
        An `AlbertActPreprocessor` (or pair preprocessor) whose
        `sequence_length` fits the model.
    """
    value = preprocessor_or_tokenizer
    if value is None:
        value = getattr(model, "preprocessor", None)
        if value is None:
            raise ValueError(
                f"{type(model).__name__} has no `preprocessor`: pass an "
                "AlbertActTokenizer or AlbertActPreprocessor as `preprocessor_or_tokenizer`."
            )
    max_length = _max_sequence_length(model)
    if sequence_length is not None:
        check_int_in_range(
            "sequence_length", sequence_length, 3, max_length,
            high_is="the model's max_sequence_length",
        )
    if isinstance(value, AlbertActTokenizer):
        preprocessor = AlbertActPreprocessor(value, sequence_length=sequence_length or max_length)
    elif isinstance(getattr(value, "tokenizer", None), AlbertActTokenizer) and hasattr(
        value, "sequence_length"
    ):
        preprocessor = value
        if sequence_length is not None and sequence_length != value.sequence_length:
            config = value.get_config()
            config.pop("tokenizer", None)
            config["sequence_length"] = sequence_length
            preprocessor = type(value)(tokenizer=value.tokenizer, **config)
    else:
        raise ValueError(
            "`preprocessor_or_tokenizer` must be an AlbertActTokenizer or a "
            "preprocessor with an AlbertActTokenizer (AlbertActPreprocessor, "
            f"AlbertActPairPreprocessor). Received: {value!r}"
        )
    if preprocessor.sequence_length > max_length:
        raise ValueError(
            f"The preprocessor's sequence_length={preprocessor.sequence_length} exceeds "
            f"the model's max_sequence_length={max_length}."
        )
    tokenizer_size = preprocessor.tokenizer.vocabulary_size()
    model_size = _vocabulary_size(model, preprocessor)
    if tokenizer_size > model_size:
        raise ValueError(
            f"The tokenizer has {tokenizer_size} pieces but the model's vocabulary_size "
            f"is {model_size}: they do not belong together."
        )
    return preprocessor


@contextlib.contextmanager
def _loaded_session(version_dir):
    graph = tf.Graph()
    with tf.compat.v1.Session(graph=graph) as session:
        yield session, tf.compat.v1.saved_model.loader.load(session, ["serve"], version_dir)


def run_warmup_requests(version_dir, on_loaded=None):
    """Loads a SavedModel like the model server and runs its warm-up requests.

    The TF1 session loader (`serve` tag) and the SignatureDefs' tensor
    names, in a fresh graph, as `tensorflow_model_server` and
    `saved_model_cli run` do.

    Args:
        version_dir: the SavedModel folder.
        on_loaded: `None`, or a callable run with `(session, meta_graph)`
            after the warm-up requests (the export times batches there).

    Returns:
        The number of requests run.

    Raises:
        RuntimeError: a request failed; the message names it.
    """
    path = os.path.join(version_dir, warmup.WARMUP_DIR, warmup.WARMUP_FILE)
    requests = warmup.read_warmup_file(path)
    with _loaded_session(version_dir) as (session, meta_graph):
        for index, request in enumerate(requests):
            name = request.model_spec.signature_name or TEXT_SIGNATURE
            try:
                signature = meta_graph.signature_def[name]
                feeds = {
                    signature.inputs[key].name: tf.make_ndarray(tensor)
                    for key, tensor in request.inputs.items()
                }
                fetches = {key: info.name for key, info in signature.outputs.items()}
                outputs = session.run(fetches, feeds)
            except (KeyError, tf.errors.OpError, ValueError) as error:
                raise RuntimeError(
                    f"Warm-up request {index} (signature {name!r}) fails on the "
                    f"exported SavedModel {version_dir}: {error}"
                ) from error
            for key, value in outputs.items():
                if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
                    raise RuntimeError(
                        f"Warm-up request {index} (signature {name!r}) gives non-finite "
                        f"{key!r} on the exported SavedModel {version_dir}."
                    )
        if on_loaded is not None:
            on_loaded(session, meta_graph)
    return len(requests)


def _warmup_texts(texts, head, input_names):
    if texts is None:
        texts = list(head.warmup_texts)
        if len(input_names) == 2 and all(isinstance(t, (str, bytes)) for t in texts):
            texts = list(zip(texts, reversed(texts), strict=True))
    if isinstance(texts, (str, bytes)) or not texts:
        raise ValueError(
            f"`warmup_texts` must be a non-empty list. Received: warmup_texts={texts!r}"
        )
    texts = list(texts)
    ranks = getattr(head, "text_input_ranks", None) or [1] * len(input_names)

    def fits(value, rank):  # a string, or (rank 2) a list of strings
        if rank == 2:
            return isinstance(value, (tuple, list)) and all(isinstance(v, (str, bytes)) for v in value)
        return isinstance(value, (str, bytes))

    for text in texts:
        is_text = isinstance(text, (str, bytes))
        is_pair = (
            isinstance(text, (tuple, list))
            and len(text) == 2
            and all(fits(t, rank) for t, rank in zip(text, ranks, strict=False))
        )
        if (len(input_names) == 2 and not is_pair) or (len(input_names) == 1 and not is_text):
            expected = f"({', '.join(input_names)}) pairs" if len(input_names) == 2 else "strings"
            raise ValueError(f"`warmup_texts` must hold {expected}. Received: {text!r}")
    return texts


def write_model_facts(version_dir, model, preprocessor):
    """Writes `MODEL_FACTS_FILE`: `max_layers` (the most layers a token can
    get, the default of the signatures' `max_layers` input: the backbone's
    cap, or its larger `fixed_depth`), the backbone's `max_sequence_length`
    and `vocabulary_size`, the export's `sequence_length`, and
    `halting_threshold` (the float32 default of the signatures'
    `halting_threshold` input, `1 - act_epsilon`; `None` without a
    backbone)."""
    backbone = model if hasattr(model, "max_layers") else getattr(model, "backbone", None)
    budget = model_budget_defaults(model)
    facts = {
        "max_layers": (
            getattr(backbone, "max_layers", None) if budget is None
            else int(budget["max_layers"][0])
        ),
        "max_sequence_length": _max_sequence_length(model),
        "vocabulary_size": _vocabulary_size(model, preprocessor),
        "sequence_length": preprocessor.sequence_length,
    }
    facts = {k: int(v) if v is not None else None for k, v in facts.items()}
    facts["halting_threshold"] = (
        None if budget is None else float(budget["halting_threshold"][0])
    )
    with open(os.path.join(version_dir, MODEL_FACTS_FILE), "w", encoding="utf-8") as file:
        json.dump(facts, file)


def budget_inputs_for(version_dir, signature_function):
    """The default depth-budget inputs a restored signature function needs.

    `tf.saved_model.load(path).signatures[NAME]` takes every input of the
    SignatureDef, `max_layers` and `halting_threshold` included (their
    defaults are for the model server; the restored `tf.function`s
    `loaded.serving_default` and `loaded.serve_token_ids` may omit them).
    Pass these to ask for no budget.

    Args:
        version_dir: the export's version folder (its `keras_act_model.json`).
        signature_function: the restored signature function.

    Returns:
        A dict of int32 `max_layers` and float32 `halting_threshold` scalar
        tensors, or `{}` when the signature does not take them.

    Example:

    ```python
    loaded = tf.saved_model.load(path)
    predict = loaded.signatures["serving_default"]
    predict(text=tf.constant(["a text"]), **budget_inputs_for(path, predict))
    ```
    """
    takes = set(signature_function.structured_input_signature[1])
    if not {"max_layers", "halting_threshold"} <= takes:
        return {}
    with open(os.path.join(version_dir, MODEL_FACTS_FILE), encoding="utf-8") as file:
        facts = json.load(file)
    return {
        "max_layers": tf.constant(facts["max_layers"], tf.int32),
        "halting_threshold": tf.constant(facts["halting_threshold"], tf.float32),
    }


def _max_sequence_length(model):
    backbone = model if hasattr(model, "max_sequence_length") else getattr(model, "backbone", None)
    return getattr(backbone, "max_sequence_length", 512)


def _vocabulary_size(model, preprocessor):
    backbone = model if hasattr(model, "vocabulary_size") else getattr(model, "backbone", None)
    size = getattr(backbone, "vocabulary_size", None)
    return size if isinstance(size, int) else preprocessor.tokenizer.vocabulary_size()


__all__ = [
    "budget_inputs_for",
    "build_export_archive",
    "export_saved_model",
    "model_budget_defaults",
    "resolve_preprocessor",
    "run_warmup_requests",
    "time_text_signature",
]
