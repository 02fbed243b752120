"""Hugging Face's PyTorch `AlbertModel` at a fixed depth: the reference speed of issue 12.

    python benchmarks/pytorch_reference.py --layers 24 [--batch 8 --length 128 --rounds 7]

Builds `transformers.AlbertModel` with random weights in the ALBERT-base
geometry (or the one given), `num_hidden_layers=--layers` applications of one
shared layer, and times `--rounds` forward passes of a random batch of
`--batch` x `--length` real tokens under `torch.inference_mode()` (after one
untimed call). Prints one JSON line: `{"layers", "batch", "sequence_length",
"seconds": {"best", "median", "samples"}, "tokens_per_second",
"tokens_per_second_median", "torch", "transformers", "threads"}`.

`benchmarks/run.py` runs it in a fresh process per depth, so that PyTorch and
TensorFlow never share a process (or their thread pools). The authors'
PyTorch ALBERT-ACT runs every token at every iteration until the deepest
token halts, so with a token at the cap of 24 it costs about what 24 layers
cost here.
"""

import argparse
import json
import os
import statistics
import sys
import time

# transformers would import TensorFlow too (and its thread pools): PyTorch only.
os.environ.setdefault("USE_TF", "0")
os.environ.setdefault("USE_FLAX", "0")

# ALBERT-base geometry, as benchmarks/models.py's BASE_GEOMETRY.
DEFAULTS = dict(
    vocabulary_size=30000,
    embedding_dim=128,
    hidden_dim=768,
    num_heads=12,
    intermediate_dim=3072,
    max_sequence_length=512,
)


def reference_figures(layers, batch, length, rounds, geometry):
    """Times Hugging Face's `AlbertModel` with `layers` layers; returns the figures."""
    import numpy as np
    import torch
    import transformers

    torch.manual_seed(0)
    config = transformers.AlbertConfig(
        vocab_size=geometry["vocabulary_size"],
        embedding_size=geometry["embedding_dim"],
        hidden_size=geometry["hidden_dim"],
        num_attention_heads=geometry["num_heads"],
        intermediate_size=geometry["intermediate_dim"],
        max_position_embeddings=geometry["max_sequence_length"],
        num_hidden_layers=layers,
        num_hidden_groups=1,
        inner_group_num=1,
        hidden_act="gelu_new",
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    model = transformers.AlbertModel(config).eval()
    rng = np.random.default_rng(0)
    token_ids = torch.tensor(rng.integers(5, geometry["vocabulary_size"], (batch, length)))
    inputs = dict(
        input_ids=token_ids,
        token_type_ids=torch.zeros_like(token_ids),
        attention_mask=torch.ones_like(token_ids),
    )
    samples = []
    with torch.inference_mode():
        model(**inputs)  # untimed first call
        for _ in range(rounds):
            start = time.perf_counter()
            model(**inputs).last_hidden_state.numpy()
            samples.append(time.perf_counter() - start)
    best, median = min(samples), statistics.median(samples)
    return {
        "layers": layers,
        "batch": batch,
        "sequence_length": length,
        "seconds": {"best": best, "median": median, "samples": samples},
        "tokens_per_second": batch * length / best,
        "tokens_per_second_median": batch * length / median,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "threads": torch.get_num_threads(),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, required=True, help="shared-layer applications")
    parser.add_argument("--batch", type=int, default=8, help="sequences (default: %(default)s)")
    parser.add_argument("--length", type=int, default=128, help="tokens each (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=7, help="timed calls (default: %(default)s)")
    parser.add_argument(
        "--geometry",
        type=json.loads,
        default=DEFAULTS,
        help="JSON of the geometry fields (default: ALBERT-base)",
    )
    args = parser.parse_args(argv)
    for name in ("layers", "batch", "length", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be a positive integer, got {getattr(args, name)}")
    missing = sorted(set(DEFAULTS) - set(args.geometry))
    if missing:
        parser.error(f"--geometry lacks {', '.join(missing)}")
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as error:
        raise SystemExit(f"pytorch_reference.py: error: {error} (torch and transformers are in the dev extra)") from None
    figures = reference_figures(args.layers, args.batch, args.length, args.rounds, args.geometry)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
