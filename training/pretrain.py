"""Pre-train ALBERT-ACT with MLM + SOP + ponder cost: `python -m training.pretrain`.

With no arguments it pre-trains the small demo configuration on the stories
of `training.demo_corpus` (generated, no download), trains their
SentencePiece vocabulary, writes checkpoints and TensorBoard logs under
`--out` (`runs/pretrain`), exports a SavedModel under `saved_models/`, and prints how many
layers each token of a sample sentence received. Killing it and running the
same command again resumes from the last checkpoint, with the same data order,
and reaches the same weights as an uninterrupted run.

Example:

    python -m training.pretrain
    python -m training.pretrain --preset albert_act_base --corpus wiki.txt \\
        --steps 125000 --batch-size 4096 --sequence-length 512 \\
        --strategy tpu --jit-compile --mixed-precision bfloat16
    python -m training.pretrain --init hf://albert-base-v2 --vocab spiece.model \\
        --max-layers 24 --initial-depth 12 --corpus wiki.txt

`--init` continues pre-training from a checkpoint instead of random weights:
a plain ALBERT (its shared layer becomes the ACT block; the halting unit is
new and starts every token at `--initial-depth`), an ALBERT-ACT checkpoint in
the authors' layout, or a pretrainer `.keras` file. The MLM and SOP heads
come with it (a SOP head it lacks, as in `AlbertForMaskedLM` checkpoints,
starts random), and so does the architecture.
"""

import os
import sys

from training import cli

DEMO_CONFIG = {
    "embedding_dim": 64,
    "hidden_dim": 128,
    "num_heads": 4,
    "intermediate_dim": 512,
    "max_layers": 6,
    "act_epsilon": 0.01,
    "activation": "gelu_new",
    "dropout": 0.0,
    "ponder_weight": 1e-3,
}
PRESETS = ("demo", "albert_act_tiny", "albert_act_small", "albert_act_base")
SAMPLE_SENTENCE = "once upon a time a grey fox lived near the [MASK] ."


DEFAULT_SEQUENCE_LENGTH = 64
DEFAULT_PRESET = "demo"


# --skip-halted: AlbertAct's skip_halted for the run (see AlbertAct's docstring).
SKIP_HALTED = {"auto": None, "dense": False, "skip": True, "static": "static", "dynamic": "dynamic"}


def build_parser():
    parser = cli.command_parser(
        "python -m training.pretrain",
        "Pre-train ALBERT-ACT (MLM + SOP + ponder cost). Run it again with the "
        "same --out to resume; settings not given again follow the recorded run.",
    )
    data = parser.add_argument_group("data")
    data.add_argument("--corpus", nargs="+", help="plain-text files (default: the demo corpus)")
    data.add_argument("--tfds", help="a TFDS text dataset, e.g. wikipedia/20230601.en")
    data.add_argument("--tfds-split", default="train", help="the TFDS split to read")
    data.add_argument("--tfds-data-dir", help="TFDS data directory (default: TFDS's own)")
    data.add_argument("--tfds-max-examples", type=int, help="read at most this many examples")
    data.add_argument(
        "--vocab",
        help="SentencePiece model (default: the resumed run's, else train one on the corpus)",
    )
    data.add_argument(
        "--vocab-size",
        type=int,
        help="size of a trained vocabulary (default: 100 for the demo corpus, else 30000)",
    )
    data.add_argument(
        "--sequence-length",
        type=int,
        help=f"tokens per sequence (default: the resumed run's, else {DEFAULT_SEQUENCE_LENGTH})",
    )
    data.add_argument(
        "--max-predictions", type=int, help="MLM targets per sequence (default: 15%% of the length)"
    )
    data.add_argument("--ngram-masking", type=int, default=1, help="longest masked n-gram (ALBERT: 3)")
    model = parser.add_argument_group("model")
    model.add_argument(
        "--preset",
        choices=PRESETS,
        help=f"the architecture (default: the resumed run's, else {DEFAULT_PRESET})",
    )
    model.add_argument("--ponder-weight", type=float, help="tau (default: the resumed run's, else the preset's)")
    model.add_argument(
        "--max-layers", type=int, help="iteration cap (default: the resumed run's, else the preset's)"
    )
    model.add_argument(
        "--init",
        metavar="PATH",
        help="start from this checkpoint instead of random weights: a plain ALBERT or an "
        "ALBERT-ACT checkpoint (Hugging Face folder, weight file or hf://owner/name, e.g. "
        "hf://albert-base-v2) or a pretrainer .keras file; its architecture and MLM/SOP "
        "heads are kept (not with --preset); its vocabulary: --vocab, or the spiece.model "
        "beside it (default: random weights of --preset)",
    )
    model.add_argument(
        "--initial-depth",
        type=int,
        help="with --init of a plain ALBERT: the depth every token starts at under the new "
        "halting unit (default: half of --max-layers, rounded up; --max-layers defaults to "
        "its num_hidden_layers)",
    )
    model.add_argument(
        "--skip-halted",
        choices=tuple(SKIP_HALTED),
        default="auto",
        help="the ACT loop's path (AlbertAct's skip_halted): auto (None), dense (False), skip "
        "(True), static, dynamic; a speed setting, not recorded in the model (default: %(default)s)",
    )
    run = parser.add_argument_group("training")
    run.add_argument("--steps", type=int, default=300, help="optimizer steps in all")
    cli.add_batch_arguments(run)
    run.add_argument("--optimizer", default="lamb", choices=("lamb", "adamw"), help="the optimizer")
    run.add_argument(
        "--learning-rate", type=float, help="peak rate (default: 1e-2 for demo, ALBERT's 1.76e-3 otherwise)"
    )
    run.add_argument("--warmup-steps", type=int, help="linear warm-up steps (default: 5%% of --steps)")
    run.add_argument("--decay-power", type=float, default=1.0, help="1: linear decay")
    cli.add_update_arguments(run)
    cli.add_device_arguments(run, seed_help="seed of the weights and the data order")
    output = parser.add_argument_group("output")
    cli.add_out_argument(
        output, "runs/pretrain", help="the run's folder: checkpoints, logs, vocabulary, preset"
    )
    output.add_argument("--export-dir", default="saved_models/albert_act_demo", help="SavedModel base folder ('' to skip)")
    output.add_argument("--checkpoint-every", type=int, default=100, help="steps between checkpoints")
    output.add_argument("--log-every", type=int, default=10, help="steps between log lines")
    output.add_argument("--keep-checkpoints", type=int, default=3, help="checkpoints kept")
    return parser


def validate_args(args, parser):
    from keras_act.checks import check_positive_flags
    from training.cli import check_output_folders

    if args.corpus and args.tfds:
        parser.error("give either --corpus or --tfds, not both")
    if args.init and args.preset:
        parser.error("--init takes the checkpoint's architecture: give either --init or --preset")
    if args.initial_depth is not None and not args.init:
        parser.error("--initial-depth applies to --init of a plain ALBERT checkpoint")
    if args.init and "://" not in args.init and not os.path.exists(args.init):
        parser.error(f"--init checkpoint not found: {args.init}")
    check_positive_flags(
        parser,
        args,
        (
            "steps", "batch_size", "sequence_length", "accumulation_steps", "checkpoint_every",
            "log_every", "keep_checkpoints", "initial_depth", "max_layers",
        ),
    )
    if args.batch_size % args.accumulation_steps:
        parser.error("--batch-size must be divisible by --accumulation-steps")
    if args.sequence_length is not None and args.sequence_length < 8:
        parser.error("--sequence-length must be at least 8")
    if args.corpus:
        for path in args.corpus:
            if not os.path.isfile(path):
                parser.error(f"corpus file not found: {path}")
    if args.vocab and not os.path.isfile(args.vocab):
        parser.error(f"vocabulary file not found: {args.vocab}")
    check_output_folders(parser, (("--out", args.model_dir), ("--export-dir", args.export_dir)))


def follow_recorded_run(args, recorded):
    """Fills the settings not given on the command line from the run config
    recorded in the model dir (a resumed run), else from the defaults."""
    recorded = recorded or {}
    if args.sequence_length is None:
        args.sequence_length = recorded.get("sequence_length", DEFAULT_SEQUENCE_LENGTH)
    init = recorded.get("init")
    if init and args.init is None and args.preset is None:
        args.init = init["path"]
    if args.init:
        # The checkpoint gives the architecture; the flags of its import
        # follow the recorded run (--max-layers is an import flag here).
        if init and init["path"] == args.init:
            for name in ("max_layers", "initial_depth"):
                if getattr(args, name) is None:
                    setattr(args, name, init[name])
    elif args.preset is None:
        args.preset = recorded.get("preset") or DEFAULT_PRESET
    backbone = recorded.get("backbone", {})
    if args.max_layers is None and recorded.get("preset") and "max_layers" in backbone:
        args.max_layers = backbone["max_layers"]
    if args.ponder_weight is None and "preset" in recorded and "ponder_weight" in backbone:
        args.ponder_weight = backbone["ponder_weight"]
    own = os.path.abspath(os.path.join(args.model_dir, "vocab", "spiece.model"))
    previous_vocab = recorded.get("vocab")
    if args.vocab is None and previous_vocab and previous_vocab != own and os.path.isfile(previous_vocab):
        args.vocab = previous_vocab
    return args


def load_documents(args):
    """The corpus as documents (lists of sentences)."""
    from keras_act.data.text_corpus import read_documents

    if args.tfds:
        from training.tfds_sources import documents_from_tfds

        return documents_from_tfds(
            args.tfds,
            split=args.tfds_split,
            data_dir=args.tfds_data_dir,
            max_examples=args.tfds_max_examples,
        )
    if args.corpus:
        return read_documents(args.corpus)
    from training.demo_corpus import write_demo_corpus

    path = os.path.join(args.model_dir, "demo_corpus.txt")
    if not os.path.isfile(path):
        write_demo_corpus(path, seed=args.seed)
    return read_documents([path])


def prepare_vocabulary(args, documents):
    """The SentencePiece model: `--vocab`, the run's own, or a new one."""
    if args.vocab:
        return args.vocab
    path = os.path.join(args.model_dir, "vocab", "spiece.model")
    if os.path.isfile(path):
        return path
    from training.run_files import write_text_atomically
    from training.vocab import train_vocabulary

    text_file = os.path.join(args.model_dir, "vocab", "corpus.txt")
    os.makedirs(os.path.dirname(text_file), exist_ok=True)
    write_text_atomically(text_file, "".join("\n".join(document) + "\n" for document in documents))
    size = args.vocab_size or (100 if not (args.corpus or args.tfds) else 30000)
    # Several workers may train it at once: all use the first one written.
    return str(
        train_vocabulary([text_file], size, os.path.dirname(path), seed=args.seed, keep_existing=True)
    )


def load_init_pretrainer(args):
    """The `AlbertActPretrainer` of `--init`, weights and heads from the checkpoint.

    Call it in the strategy's scope. A `.keras` file must hold an
    `AlbertActPretrainer`; any other path is read by
    `keras_act.convert.load_hf_checkpoint(pretraining_heads=True)` (plain
    ALBERT: `--max-layers`, `--initial-depth`). `--ponder-weight` replaces
    the checkpoint's.

    Raises:
        ValueError, OSError: for a checkpoint that cannot be used, naming it.
    """
    import keras_act

    if args.init.endswith(".keras"):
        import keras

        if args.initial_depth is not None or args.max_layers is not None:
            raise ValueError(
                f"--init {args.init} is a keras-act pretrainer: --max-layers and "
                "--initial-depth apply to plain ALBERT checkpoints"
            )
        pretrainer = keras.saving.load_model(args.init, compile=False)
        if not isinstance(pretrainer, keras_act.AlbertActPretrainer):
            raise ValueError(
                f"--init {args.init} holds a {type(pretrainer).__name__}, not an "
                "AlbertActPretrainer (MLM and SOP heads)"
            )
    else:
        from keras_act.convert import load_hf_checkpoint

        try:
            pretrainer = load_hf_checkpoint(
                args.init,
                pretraining_heads=True,
                initial_depth=args.initial_depth,
                max_layers=args.max_layers,
            )
        except ValueError as error:
            raise ValueError(f"--init {args.init}: {error}") from error
    if args.ponder_weight is not None:
        pretrainer.ponder_weight = pretrainer.backbone.ponder_weight = args.ponder_weight
    return pretrainer


def init_vocabulary(args):
    """The vocabulary of an `--init` run: `--vocab`, or the `spiece.model` beside the checkpoint."""
    if args.vocab:
        return args.vocab
    folder = args.init if os.path.isdir(args.init) else os.path.dirname(args.init)
    if "://" not in args.init:
        for name in ("spiece.model", "sentencepiece.model"):
            if os.path.isfile(os.path.join(folder, name)):
                return os.path.join(folder, name)
    raise ValueError(
        f"--init {args.init}: give the checkpoint's SentencePiece model with --vocab (a "
        "vocabulary trained on the corpus would not match its embeddings)"
    )


def constructor_config(backbone):
    """The constructor arguments of a backbone (its config without name and dtype)."""
    config = backbone.get_config()
    return {key: value for key, value in config.items() if key not in ("name", "trainable", "dtype")}


def backbone_config(args, vocabulary_size):
    import keras_act

    if args.preset == "demo":
        config = dict(DEMO_CONFIG)
    else:
        config = keras_act.AlbertActBackbone.architecture_presets()[args.preset]
    config["vocabulary_size"] = vocabulary_size
    config["max_sequence_length"] = max(config.get("max_sequence_length", 0), args.sequence_length)
    if args.ponder_weight is not None:
        config["ponder_weight"] = args.ponder_weight
    if args.max_layers is not None:
        config["max_layers"] = args.max_layers
    return config


def check_init_fits(args, config, vocabulary_size):
    """Refuses an `--init` checkpoint whose vocabulary or positions do not fit the run."""
    if config["vocabulary_size"] != vocabulary_size:
        raise ValueError(
            f"--init {args.init} has a vocabulary of {config['vocabulary_size']} pieces, but "
            f"the SentencePiece model has {vocabulary_size}: give the checkpoint's own with --vocab"
        )
    if args.sequence_length > config["max_sequence_length"]:
        raise ValueError(
            f"--sequence-length {args.sequence_length} exceeds the {config['max_sequence_length']} "
            f"positions of --init {args.init}"
        )


def check_run_config(model_dir, run_config):
    """Refuses to resume a model dir that holds another architecture, or was
    trained with another vocabulary (compared by content)."""
    from training.run_files import differing_keys, record_run_config, vocabulary_mismatch

    previous = record_run_config(model_dir, run_config)
    mismatch = vocabulary_mismatch(model_dir, previous, run_config)
    if mismatch:
        raise ValueError(mismatch)
    differing = differing_keys(previous["backbone"], run_config["backbone"])
    if differing:
        raise ValueError(
            f"{model_dir} holds a checkpoint of another architecture (differs in "
            f"{differing}); use another --out or the same configuration."
        )


def run(args):
    from training.training_loop import configure_process

    configure_process(args)
    import keras_act
    from keras_act.analysis import format_depth_table, sentence_depths
    from keras_act.analysis.tensorboard import write_depth_summaries
    from keras_act.data.pretraining_dataset import pretraining_dataset
    from keras_act.data.sentence_order import create_sop_instances, tokenize_documents
    from training.cli import as_setup_errors
    from training.run_files import file_sha256, read_run_config, remove_stale_leftovers
    from training.strategies import create_strategy, is_chief
    from training.trainer import summarize
    from training.training_loop import training_loop_from_flags

    # Everything that can be wrong with the input fails here, before training.
    with as_setup_errors():
        os.makedirs(args.model_dir, exist_ok=True)
        checkpoint_dir = os.path.join(args.model_dir, "checkpoints")
        for path in remove_stale_leftovers(
            args.model_dir, checkpoint_dir, os.path.join(args.model_dir, "vocab")
        ):
            print(f"Removed {path}, left by a killed run", flush=True)
        follow_recorded_run(args, read_run_config(args.model_dir))
        strategy = create_strategy(args.strategy, tpu=args.tpu)
        documents = load_documents(args)
        vocab = init_vocabulary(args) if args.init else prepare_vocabulary(args, documents)
        tokenizer = keras_act.AlbertActTokenizer(proto=vocab)
        pretrainer = None
        if args.init:
            with strategy.scope():
                pretrainer = load_init_pretrainer(args)
            config = constructor_config(pretrainer.backbone)
            check_init_fits(args, config, tokenizer.vocabulary_size())
        else:
            config = backbone_config(args, tokenizer.vocabulary_size())
        max_predictions = args.max_predictions or max(1, int(round(args.sequence_length * 0.15)))
        run_config = {
            "backbone": config,
            "vocab": os.path.abspath(vocab),
            "vocab_sha256": file_sha256(vocab),
            "preset": args.preset,
            "sequence_length": args.sequence_length,
        }
        if args.init:
            run_config["init"] = {
                "path": args.init,
                "max_layers": args.max_layers,
                "initial_depth": args.initial_depth,
            }
        check_run_config(args.model_dir, run_config)
        instances = create_sop_instances(
            tokenize_documents(documents, tokenizer), args.sequence_length, seed=args.seed
        )
    chief = is_chief(strategy)
    own_text = args.corpus or args.tfds
    sample_sentence = "the quick brown fox jumps over the lazy [MASK] ." if own_text else SAMPLE_SENTENCE
    if chief:
        print(
            f"{len(documents)} documents, {len(instances[2])} SOP pairs, vocabulary "
            f"{tokenizer.vocabulary_size()}, {strategy.num_replicas_in_sync} replica(s) "
            f"({type(strategy).__name__})"
        )

    if pretrainer is None:
        with strategy.scope():
            pretrainer = keras_act.AlbertActPretrainer(keras_act.AlbertActBackbone(**config))
    backbone = pretrainer.backbone
    backbone.get_layer("albert_act").skip_halted = SKIP_HALTED[args.skip_halted]
    loop = training_loop_from_flags(
        strategy,
        args,
        pretrainer,
        pretrainer.pretraining_losses,
        learning_rate=args.learning_rate or (1e-2 if args.preset == "demo" else 1.76e-3),
        total_steps=args.steps,
        warmup_steps=args.warmup_steps if args.warmup_steps is not None else args.steps // 20,
        power=args.decay_power,
        statistics_fn=pretrainer.depth_statistics,
    )
    restored = loop.restore()
    start_step = loop.step
    if chief and restored:
        print(f"Resumed from {restored} at step {start_step}")

    def examples():
        return pretraining_dataset(
            instances,
            args.sequence_length,
            max_predictions,
            tokenizer.vocabulary_size(),
            seed=args.seed,
            max_ngram=args.ngram_masking,
        )

    # A fixed batch for the depth pictures and text in TensorBoard.
    depth_batch = next(iter(examples().take(16).batch(16))) if chief else None

    def log_line(step, means):
        return (
            f"step {step}/{args.steps}  loss {means['loss']:.4f}  "
            f"mlm_loss {means['mlm_loss']:.4f}  mlm_acc {means['mlm_accuracy']:.3f}  "
            f"sop_acc {means['sop_accuracy']:.3f}  "
            f"updates {means.get('updates/all', 0):.2f}  "
            f"gradient_norm {means['gradient_norm']:.6g}"
        )

    def depth_pictures(step):
        if step % (args.log_every * 10) == 0 or step == args.steps:
            write_depth_summaries(
                loop.writer, backbone, tokenizer, [sample_sentence], step, examples=depth_batch
            )

    step = loop.run(
        examples,
        args.steps,
        log_every=args.log_every,
        checkpoint_every=args.checkpoint_every,
        summarize_fn=summarize,
        log_line=log_line,
        after_log=depth_pictures,
    )
    if chief:
        finish(args, backbone, tokenizer, pretrainer, step, trained=step > start_step)
        depth = sentence_depths(backbone, [sample_sentence], tokenizer=tokenizer)[0]
        print("\n" + format_depth_table(depth, max_layers=backbone.max_layers))
    return pretrainer


def finish(args, backbone, tokenizer, pretrainer, step, trained):
    """Writes the preset, the `.keras` pretrainer and the SavedModel of the
    final step; a re-run of a finished run (nothing trained) keeps what the
    run already wrote instead of another identical copy."""
    import json

    from training.run_files import (
        save_model_atomically,
        write_folder_atomically,
        write_text_atomically,
    )

    def write_preset(folder):
        backbone.save_to_preset(folder)
        tokenizer.save_to_preset(folder)

    preset_dir = os.path.join(args.model_dir, "preset")
    pretrainer_file = os.path.join(args.model_dir, "pretrainer.keras")
    if trained or not (os.path.isdir(preset_dir) and os.path.isfile(pretrainer_file)):
        write_folder_atomically(preset_dir, write_preset)
        save_model_atomically(pretrainer, pretrainer_file)
        print(f"Saved the backbone and tokenizer preset to {preset_dir}")
    else:
        print(f"The preset of step {step} is already in {preset_dir}")
    if not args.export_dir:
        return
    from keras_act.export import export_saved_model

    record_file = os.path.join(args.model_dir, "export.json")
    record = {}
    if os.path.isfile(record_file):
        with open(record_file, encoding="utf8") as file:
            try:
                record = json.load(file)
            except json.JSONDecodeError:
                record = {}
    base = os.path.abspath(args.export_dir)
    if (
        not trained
        and isinstance(record, dict)
        and record.get("step") == step
        and record.get("export_dir") == base
        and os.path.isdir(str(record.get("path")))
    ):
        print(f"The SavedModel of step {step} is already at {record['path']}: not exported again")
        return
    path = export_saved_model(backbone, tokenizer, args.export_dir, sequence_length=args.sequence_length)
    write_text_atomically(
        record_file,
        json.dumps({"step": step, "export_dir": base, "path": os.path.abspath(str(path))}, indent=2),
    )
    print(f"Exported the SavedModel to {path}")


def main(argv=None):
    from training.cli import run_command

    return run_command(build_parser, validate_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
