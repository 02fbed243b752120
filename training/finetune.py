"""Fine-tune ALBERT-ACT on a GLUE task: `python -m training.finetune`.

Fine-tunes an `AlbertActTextClassifier` (an `AlbertActTextRegressor` for
STS-B) with the ponder cost on, as the paper does, and reports the task's
GLUE metric on the dev set (accuracy; Matthews correlation for CoLA; F1 and
accuracy for MRPC and QQP; Pearson and Spearman for STS-B) and the mean
number of updates (layers) per token. The training loop is the one of
pre-training (`training.training_loop.TrainingLoop`), so `--strategy`
works the same: one device, mirrored GPUs or logical CPUs, several
workers, TPUs. Checkpoints let a killed run resume where it stopped.

`--model` (or the older `--init`) is where the backbone comes from:

- a preset folder written by `save_to_preset` (`runs/pretrain/preset`, or
  the pre-training `--out` itself, which holds one);
- a `.keras` file of an `AlbertActBackbone`, an `AlbertActPretrainer` or an
  ALBERT-ACT task;
- an authors' checkpoint folder in the Hugging Face layout, or
  `hf://asi/albert-act-base` (`keras_act.convert.load_hf_checkpoint`);
- a plain ALBERT checkpoint in the Hugging Face layout (`hf://albert-base-v2`,
  or a folder): its shared layer becomes the ACT block and a new halting
  unit starts every token at `--initial-depth`, learned during fine-tuning;
- a built-in architecture (`demo`, `albert_act_tiny`, `albert_act_small`,
  `albert_act_base`) with random weights, for experiments.

The tokenizer comes with a preset or a task; otherwise (checkpoints,
random weights) pass the SentencePiece model with `--vocab` (ALBERT's
`spiece.model` for the authors' checkpoints).

Example:

    python -m training.finetune --task sst2 --model runs/pretrain \\
        --train glue/SST-2/train.tsv --dev glue/SST-2/dev.tsv
    python -m training.finetune --task cola --tfds glue/cola \\
        --model hf://asi/albert-act-base --vocab spiece.model \\
        --epochs 3 --batch-size 32 --learning-rate 2e-5 --strategy mirrored
    python -m training.finetune --task sst2 --tfds glue/sst2 \\
        --model hf://albert-base-v2 --vocab spiece.model --initial-depth 6
"""

import hashlib
import json
import math
import os
import sys

from training import cli
from training.cli import SetupError, run_command
from training.glue import GLUE_TASKS

DEFAULT_MODEL_DIR = "runs/finetune"
RANDOM_INITS = ("demo", "albert_act_tiny", "albert_act_small", "albert_act_base")


DEFAULT_SEQUENCE_LENGTH = 128


def build_parser():
    parser = cli.command_parser(
        "python -m training.finetune",
        "Fine-tune ALBERT-ACT on a GLUE task (with the ponder cost) and report "
        "the task's dev metric and the mean updates per token.",
    )
    parser.add_argument("--task", required=True, help=f"one of {', '.join(GLUE_TASKS)}")
    data = parser.add_argument_group("data (--train and --dev, or --tfds)")
    data.add_argument("--train", help="GLUE TSV training file")
    data.add_argument("--dev", help="GLUE TSV dev file")
    data.add_argument("--tfds", help="a TFDS GLUE dataset, e.g. glue/sst2")
    data.add_argument("--tfds-data-dir", help="TFDS data directory (default: TFDS's own)")
    data.add_argument("--tfds-train-split", default="train", help="the TFDS training split")
    data.add_argument("--tfds-dev-split", help="the TFDS dev split (default: the task's validation split)")
    data.add_argument("--max-train-examples", type=int, help="use the first N training examples (default: all)")
    data.add_argument("--max-dev-examples", type=int, help="evaluate on the first N dev examples (default: all)")
    data.add_argument(
        "--sequence-length",
        type=int,
        help=f"tokens per example (default: {DEFAULT_SEQUENCE_LENGTH}, or the backbone's "
        "max_sequence_length when shorter)",
    )
    model = parser.add_argument_group("model")
    model.add_argument(
        "--model",
        "--init",
        dest="init",
        required=True,
        metavar="MODEL",
        help="the backbone to fine-tune: a preset folder, pre-training run folder, .keras file, "
        f"checkpoint folder, hf://owner/name, or a random architecture ({', '.join(RANDOM_INITS)})",
    )
    model.add_argument(
        "--vocab",
        help="SentencePiece model (default: the tokenizer that comes with --model)",
    )
    model.add_argument("--ponder-weight", type=float, help="tau (default: the backbone's)")
    model.add_argument("--max-layers", type=int, help="cap on the layers per token (default: the backbone's)")
    model.add_argument(
        "--initial-depth",
        type=int,
        help="with a plain ALBERT --model: the depth every token starts at under the new halting "
        "unit (default: half of the cap, rounded up)",
    )
    model.add_argument("--dropout", type=float, default=0.1, help="classifier dropout")
    run = parser.add_argument_group("training")
    run.add_argument("--epochs", type=float, default=3.0, help="passes over the training set")
    run.add_argument("--steps", type=int, help="optimizer steps (overrides --epochs)")
    cli.add_batch_arguments(run)
    run.add_argument("--optimizer", default="adamw", choices=("adamw", "lamb"), help="the optimizer")
    run.add_argument("--learning-rate", type=float, default=2e-5, help="peak learning rate")
    run.add_argument("--warmup-ratio", type=float, default=0.1, help="share of the steps warming up")
    cli.add_update_arguments(run)
    cli.add_device_arguments(run, seed_help="seed of the new weights and the data order")
    output = parser.add_argument_group("output")
    cli.add_out_argument(
        output,
        DEFAULT_MODEL_DIR,
        help="the run's folder: checkpoints, logs, results, model.keras",
        metavar="DIR",
    )
    output.add_argument("--log-every", type=int, default=10, help="steps between log lines")
    output.add_argument("--eval-every", type=int, default=0, help="also evaluate every N steps (0: at the end only)")
    output.add_argument("--checkpoint-every", type=int, default=500, help="steps between checkpoints")
    output.add_argument("--keep-checkpoints", type=int, default=2, help="checkpoints kept")
    output.add_argument("--eval-batch-size", type=int, default=64, help="batch of the evaluation")
    output.add_argument("--no-save", action="store_true", help="do not save the fine-tuned model")
    return parser


def validate_args(args, parser):
    """Checks the arguments alone (no file is read): argparse errors."""
    from keras_act.checks import check_positive_flags
    from training.cli import check_output_folders
    from training.glue import get_task

    try:
        args.glue_task = get_task(args.task)
    except ValueError as error:
        parser.error(str(error))
    if args.tfds and (args.train or args.dev):
        parser.error("give either --tfds or --train and --dev, not both")
    if args.tfds and args.tfds.startswith("glue/"):
        config = args.tfds.split(":")[0][len("glue/") :]
        if config.split("_")[0] != args.glue_task.name:
            parser.error(f"--tfds {args.tfds} is not the GLUE task {args.glue_task.name}")
    if not args.tfds and not (args.train and args.dev):
        parser.error("give --train FILE and --dev FILE (GLUE TSV files), or --tfds NAME")
    check_positive_flags(
        parser,
        args,
        (
            "batch_size",
            "accumulation_steps",
            "log_every",
            "eval_batch_size",
            "checkpoint_every",
            "keep_checkpoints",
            "steps",
            "max_train_examples",
            "max_dev_examples",
            "max_layers",
            "sequence_length",
            "initial_depth",
        ),
    )
    if args.steps is None and args.epochs <= 0:
        parser.error("--epochs must be positive")
    if args.batch_size % args.accumulation_steps:
        parser.error("--batch-size must be divisible by --accumulation-steps")
    if args.sequence_length is not None and args.sequence_length < 8:
        parser.error("--sequence-length must be at least 8")
    if not 0 <= args.warmup_ratio < 1:
        parser.error("--warmup-ratio must be in [0, 1)")
    if args.ponder_weight is not None and args.ponder_weight < 0:
        parser.error("--ponder-weight must be >= 0")
    if args.initial_depth is not None and args.init in RANDOM_INITS:
        parser.error(f"--initial-depth applies to a plain ALBERT --model, not to {args.init}")
    for name in ("train", "dev", "vocab"):
        path = getattr(args, name)
        if path and not os.path.isfile(path):
            parser.error(f"--{name} file not found: {path}")
    check_output_folders(parser, [("--out", args.model_dir)])


# === Data ===


def load_examples(args):
    """`(train_texts, train_labels, dev_texts, dev_labels)`, all checked."""
    from training.glue import glue_examples_from_tfds, read_glue_tsv

    task = args.glue_task
    if args.tfds:
        train = glue_examples_from_tfds(
            task,
            args.tfds_train_split,
            data_dir=args.tfds_data_dir,
            max_examples=args.max_train_examples,
            name=args.tfds,
        )
        dev = glue_examples_from_tfds(
            task,
            args.tfds_dev_split or task.dev_split,
            data_dir=args.tfds_data_dir,
            max_examples=args.max_dev_examples,
            name=args.tfds,
        )
    else:
        train = read_glue_tsv(task, args.train, max_examples=args.max_train_examples)
        dev = read_glue_tsv(task, args.dev, max_examples=args.max_dev_examples)
    return (*train, *dev)


def text_columns(texts):
    """A list of tuples of texts to a tuple of string columns (numpy)."""
    import numpy as np

    width = len(texts[0])
    return tuple(np.asarray([t[i] for t in texts], dtype=object) for i in range(width))


# === Model ===


def load_backbone(args):
    """The backbone and tokenizer (or None) that `--model` names.

    Raises:
        SetupError: for a source of another architecture, or without the
            tokenizer it needs.
    """
    import keras_act
    from keras_act.model_loading import albert_act_backbone_of, load_model, preset_dir

    source = args.init
    dtype = f"mixed_{args.mixed_precision}" if args.mixed_precision else None
    if source in RANDOM_INITS:
        if not args.vocab:
            raise SetupError(f"--model {source} (random weights) needs --vocab SPIECE_MODEL.")
        tokenizer = keras_act.AlbertActTokenizer(proto=args.vocab)
        if source == "demo":
            from training.pretrain import DEMO_CONFIG

            config = dict(DEMO_CONFIG)
        else:
            config = keras_act.AlbertActBackbone.architecture_presets()[source]
        config["vocabulary_size"] = tokenizer.vocabulary_size()
        config["max_sequence_length"] = max(
            config.get("max_sequence_length", 512), args.sequence_length or DEFAULT_SEQUENCE_LENGTH
        )
        if args.max_layers:
            config["max_layers"] = args.max_layers
        return keras_act.AlbertActBackbone(dtype=dtype, **config), tokenizer, source

    if args.initial_depth is not None:
        return load_plain_albert(args, dtype)
    try:
        model, preprocessing = load_model(source, dtype=dtype)
        backbone = albert_act_backbone_of(model, source)
        source = preset_dir(source) or source  # a run folder's preset/
    except (ValueError, OSError) as error:  # bad --model: one line, named
        raise SetupError(str(error)) from None
    return backbone, getattr(preprocessing, "tokenizer", preprocessing), source


def load_plain_albert(args, dtype):
    """`--model` a plain ALBERT checkpoint with `--initial-depth` (and `--max-layers`)."""
    from keras_act.convert import load_hf_checkpoint
    from keras_act.model_loading import SPIECE_FILES, load_tokenizer

    source = args.init
    try:
        backbone = load_hf_checkpoint(
            source, dtype=dtype, initial_depth=args.initial_depth, max_layers=args.max_layers
        )
    except (ValueError, OSError) as error:
        raise SetupError(
            f"--model {source} with --initial-depth (a plain ALBERT checkpoint): {error}"
        ) from None
    tokenizer = None
    folder = source if os.path.isdir(source) else os.path.dirname(source)
    for name in SPIECE_FILES if "://" not in source else ():
        if os.path.isfile(os.path.join(folder, name)):
            tokenizer = load_tokenizer(os.path.join(folder, name))
            break
    return backbone, tokenizer, source


def prepare_backbone(args, backbone, tokenizer):
    """Applies --vocab and --max-layers, and checks backbone and tokenizer agree."""
    import keras_act

    if args.vocab:
        tokenizer = keras_act.AlbertActTokenizer(proto=args.vocab)
    if tokenizer is None:
        raise SetupError(
            f"--model {args.init} carries no tokenizer: pass its SentencePiece model with "
            "--vocab (ALBERT's spiece.model for the authors' checkpoints)."
        )
    if tokenizer.vocabulary_size() != backbone.vocabulary_size:
        raise SetupError(
            f"The vocabulary ({tokenizer.vocabulary_size()} pieces) does not match the "
            f"backbone's embeddings ({backbone.vocabulary_size} tokens): wrong --vocab?"
        )
    if args.sequence_length is None:
        # The model's own limit when it is shorter than the usual 128.
        args.sequence_length = min(DEFAULT_SEQUENCE_LENGTH, backbone.max_sequence_length)
    if args.sequence_length > backbone.max_sequence_length:
        raise SetupError(
            f"--sequence-length {args.sequence_length} exceeds the backbone's "
            f"max_sequence_length {backbone.max_sequence_length}."
        )
    if args.max_layers and args.max_layers != backbone.max_layers:
        # The ACT loop's cap is not a weight: same weights, another cap.
        config = dict(backbone.get_config(), max_layers=args.max_layers)
        resized = keras_act.AlbertActBackbone.from_config(config)
        resized.set_weights(backbone.get_weights())
        backbone = resized
    return backbone, tokenizer


def build_task(args, backbone, tokenizer):
    from keras_act.models.albert_act_text_classifier import AlbertActTextClassifier
    from keras_act.models.albert_act_text_classifier_preprocessor import (
        AlbertActTextClassifierPreprocessor,
    )
    from keras_act.models.albert_act_text_regressor import AlbertActTextRegressor

    preprocessor = AlbertActTextClassifierPreprocessor(
        tokenizer, sequence_length=args.sequence_length
    )
    common = dict(
        preprocessor=preprocessor,
        dropout=args.dropout,
        ponder_weight=args.ponder_weight,
        compile=False,
    )
    if args.glue_task.is_regression:
        return AlbertActTextRegressor(backbone, **common)
    return AlbertActTextClassifier(backbone, args.glue_task.num_classes, **common)


def check_run_config(model_dir, run_config):
    """Refuses to resume a model dir that holds another run's checkpoints,
    or one trained with another vocabulary (compared by content)."""
    from training.run_files import differing_keys, record_run_config, vocabulary_mismatch

    try:
        previous = record_run_config(model_dir, run_config)
    except ValueError as error:
        raise SetupError(str(error)) from None
    mismatch = vocabulary_mismatch(model_dir, previous, run_config)
    if mismatch:
        raise SetupError(mismatch)
    vocabulary = ("vocab", "vocab_sha256")
    differing = differing_keys(
        {k: v for k, v in previous.items() if k not in vocabulary},
        {k: v for k, v in run_config.items() if k not in vocabulary},
    )
    if differing:
        raise SetupError(
            f"{model_dir} holds checkpoints of another fine-tuning run (it differs in "
            f"{differing}); use another --out or the same settings."
        )


# === Evaluation ===


def evaluate(task_model, features, labels, glue_task, batch_size):
    """The GLUE metrics and mean updates per token on preprocessed features."""
    import numpy as np
    import tensorflow as tf

    from training.glue import predictions_from_outputs, task_metrics

    depth_model = task_model.depth_model

    @tf.function
    def run(batch):
        outputs = depth_model(batch, training=False)
        real = tf.cast(batch["padding_mask"], tf.float32)
        return (
            tf.cast(outputs["logits"], tf.float32),
            tf.reduce_sum(outputs["updates"] * real),
            tf.reduce_sum(real),
        )

    outputs, updates, tokens = [], 0.0, 0.0
    count = len(labels)
    for start in range(0, count, batch_size):
        batch = {k: v[start : start + batch_size] for k, v in features.items()}
        logits, batch_updates, batch_tokens = run(batch)
        outputs.append(logits.numpy())
        updates += float(batch_updates)
        tokens += float(batch_tokens)
    predictions = predictions_from_outputs(glue_task, np.concatenate(outputs))
    results = task_metrics(glue_task, labels, predictions)
    results["mean_updates"] = updates / max(tokens, 1.0)
    return results


def format_metrics(results):
    return "  ".join(f"{name} {value:.4f}" for name, value in results.items())


# === Training ===


def summarize(sums):
    examples = max(sums.get("examples", 0.0), 1.0)
    means = {name: sums[name] / examples for name in ("loss", "task_loss", "ponder_cost")}
    if "correct" in sums:
        means["accuracy"] = sums["correct"] / examples
    means["updates"] = sums["updates_sum"] / max(sums["tokens"], 1.0)
    means["gradient_norm"] = sums["gradient_norm"] / max(sums.get("steps", 1.0), 1.0)
    return means


def preprocess(preprocessor, texts, labels, batch_size=256):
    """Tokenizes and packs all examples once: numpy features and labels."""
    import numpy as np
    import tensorflow as tf

    columns = text_columns(texts)
    dataset = tf.data.Dataset.from_tensor_slices((columns, labels)).batch(batch_size)
    dataset = dataset.map(lambda x, y: preprocessor(x=x, y=y), num_parallel_calls=tf.data.AUTOTUNE)
    parts = list(dataset.as_numpy_iterator())
    features = {key: np.concatenate([p[0][key] for p in parts]) for key in parts[0][0]}
    return features, np.concatenate([p[1] for p in parts])


def setup(args):
    """Everything that can fail on bad input, before any training step."""
    from training.run_files import remove_stale_leftovers
    from training.strategies import create_strategy

    train_texts, train_labels, dev_texts, dev_labels = load_examples(args)
    strategy = create_strategy(args.strategy, tpu=args.tpu)
    with strategy.scope():
        backbone, tokenizer, source = load_backbone(args)
        backbone, tokenizer = prepare_backbone(args, backbone, tokenizer)
        task_model = build_task(args, backbone, tokenizer)
    os.makedirs(args.model_dir, exist_ok=True)
    for path in remove_stale_leftovers(args.model_dir, os.path.join(args.model_dir, "checkpoints")):
        print(f"Removed {path}, left by a killed run", flush=True)
    check_run_config(
        args.model_dir,
        {
            "task": args.glue_task.name,
            "init": args.init,
            "backbone": backbone.get_config(),
            "sequence_length": args.sequence_length,
            "ponder_weight": task_model.ponder_weight,
            "vocab": os.path.abspath(args.vocab) if args.vocab else f"the tokenizer of {source}",
            "vocab_sha256": hashlib.sha256(tokenizer.proto).hexdigest(),
        },
    )
    train = preprocess(task_model.preprocessor, train_texts, train_labels)
    dev = preprocess(task_model.preprocessor, dev_texts, dev_labels)
    return strategy, task_model, source, train, dev


def run(args):
    import tensorflow as tf

    from training.training_loop import configure_process

    configure_process(args)
    from training.cli import as_setup_errors
    from training.training_loop import training_loop_from_flags

    # Unreadable data, unknown TFDS names, bad checkpoints: the message says it all.
    with as_setup_errors():
        strategy, task_model, source, (train_x, train_y), (dev_x, dev_y) = setup(args)
    task = args.glue_task
    num_train = len(train_y)
    steps = args.steps or max(1, math.ceil(args.epochs * num_train / args.batch_size))
    loop = training_loop_from_flags(
        strategy,
        args,
        task_model.depth_model,
        task_model.finetuning_losses,
        learning_rate=args.learning_rate,
        total_steps=steps,
        warmup_steps=int(args.warmup_ratio * steps),
        checkpointed_model=task_model,
    )
    restored = loop.restore()
    chief = loop.chief
    if chief:
        print(
            f"GLUE {task.name}: {num_train} training and {len(dev_y)} dev examples; "
            f"backbone from {source} ({task_model.backbone.count_params():,} parameters, "
            f"max_layers {task_model.backbone.max_layers}, ponder weight "
            f"{task_model.ponder_weight:g}); sequence length {args.sequence_length}; "
            f"{steps} steps of {args.batch_size}; "
            f"{strategy.num_replicas_in_sync} replica(s) ({type(strategy).__name__})",
            flush=True,
        )
        if restored:
            print(f"Resumed from {restored} at step {loop.step}", flush=True)

    def examples():
        dataset = tf.data.Dataset.from_tensor_slices((train_x, train_y))
        dataset = dataset.shuffle(num_train, seed=args.seed, reshuffle_each_iteration=True)
        return dataset.repeat()

    def log_line(step, means):
        accuracy = f"  accuracy {means['accuracy']:.3f}" if "accuracy" in means else ""
        return (
            f"step {step}/{steps}  epoch {step * args.batch_size / num_train:.2f}  "
            f"loss {means['loss']:.4f}{accuracy}  updates {means['updates']:.2f}  "
            f"gradient_norm {means['gradient_norm']:.6g}"
        )

    def evaluate_on_the_way(step):
        if args.eval_every and step % args.eval_every == 0 and step < steps:
            results = evaluate(task_model, dev_x, dev_y, task, args.eval_batch_size)
            if chief:
                print(f"dev at step {step}: {format_metrics(results)}", flush=True)
                loop.write_scalars(step, results, "dev/")

    step = loop.run(
        examples,
        steps,
        log_every=args.log_every,
        checkpoint_every=args.checkpoint_every,
        summarize_fn=summarize,
        log_line=log_line,
        scalar_prefix="train/",
        after_step=evaluate_on_the_way,
    )
    results = evaluate(task_model, dev_x, dev_y, task, args.eval_batch_size)
    if chief:
        main_metric = task.metrics[0]
        print(
            f"dev {task.name}: {format_metrics(results)}\n"
            f"dev {main_metric} {results[main_metric]:.4f}, mean updates per token "
            f"{results['mean_updates']:.3f} (of at most {task_model.backbone.max_layers})",
            flush=True,
        )
        loop.write_scalars(step, results, "dev/")
        report = {
            "task": task.name,
            "metrics": {k: v for k, v in results.items() if k != "mean_updates"},
            "main_metric": main_metric,
            "mean_updates": results["mean_updates"],
            "max_layers": task_model.backbone.max_layers,
            "ponder_weight": task_model.ponder_weight,
            "steps": step,
            "train_examples": num_train,
            "dev_examples": len(dev_y),
            "init": source,
        }
        from training.run_files import save_model_atomically, write_text_atomically

        write_text_atomically(
            os.path.join(args.model_dir, "eval_results.json"), json.dumps(report, indent=2)
        )
        if not args.no_save:
            path = save_model_atomically(task_model, os.path.join(args.model_dir, "model.keras"))
            print(f"Saved the fine-tuned {type(task_model).__name__} to {path}")
    return task_model, results


def main(argv=None):
    return run_command(build_parser, validate_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
