"""Runs `training.pretrain` and saves the final weights: a test helper.

Usage: python tests/pretrain_driver.py WEIGHTS.npz [pretrain flags...]

Used by the distribution tests, where each worker process must report its
own weights (only the chief writes checkpoints).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    out, argv = sys.argv[1], sys.argv[2:]
    import numpy as np

    from training import pretrain
    from training.cli import SetupError, one_line_errors

    parser = pretrain.build_parser()
    args = parser.parse_args(argv)
    pretrain.validate_args(args, parser)
    with one_line_errors(parser, (SetupError,)):  # as pretrain.main
        model = pretrain.run(args)
    np.savez(out, **{w.path: np.asarray(w.numpy()) for w in model.weights})


if __name__ == "__main__":
    main()
