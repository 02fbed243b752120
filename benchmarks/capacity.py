"""Block rows computed per iteration by each path, against the tokens still running.

At iteration t (from 0) the tokens still running are those whose depth
(`updates`) exceeds t. The dense loop runs the block on every token at every
iteration, until the deepest token halts; the data-dependent skip path on the
running tokens exactly; the static skip path on a buffer whose size is the
smallest rung of its ladder (fractions of batch x seq) that holds them; a
fixed-depth model on every token at each of its layers. The "waste" of a path
is its computed rows over the running tokens' rows, minus one.
"""

import math


def running_tokens(depths):
    """Tokens running at each iteration, from the tokens' depths (0 on padding).

    >>> running_tokens([3, 1, 2, 0])
    [3, 2, 1]
    """
    depths = [int(d) for d in depths]
    return [sum(d > t for d in depths) for t in range(max(depths, default=0))]


def ladder_sizes(ladder, tokens):
    """The buffer sizes of a ladder of fractions of `tokens`, smallest first.

    >>> ladder_sizes([0.25, 0.5, 1.0], 10)
    [3, 5, 10]
    """
    return sorted({min(tokens, max(1, math.ceil(f * tokens))) for f in ladder})


def ladder_capacity(running, ladder, tokens):
    """The static path's buffer at each iteration: the smallest rung that holds the running tokens.

    >>> ladder_capacity([8, 5, 2, 1], [0.25, 0.5, 0.75, 1.0], 8)
    [8, 6, 2, 2]
    """
    sizes = ladder_sizes(ladder, tokens)
    return [next(s for s in sizes if s >= n) for n in running]


def capacity_figures(running, capacity):
    """Per-iteration rows computed vs running tokens, and the waste.

    >>> round(capacity_figures([4, 2], [4, 4])["waste"], 3)
    0.333
    """
    needed, computed = sum(running), sum(capacity)
    return {
        "running_tokens_per_iteration": list(running),
        "capacity_per_iteration": list(capacity),
        "rows_needed": needed,
        "rows_computed": computed,
        "waste": computed / needed - 1 if needed else 0.0,
    }


def path_capacity(kind, running, tokens, ladder=None, layers=None):
    """`capacity_figures` of one path.

    Args:
        kind: `"dense"` (every token until the deepest halts), `"dynamic"`
            (the running tokens), `"static"` (the ladder's rungs; needs
            `ladder`) or `"fixed"` (every token at each of `layers`).
        running: tokens running at each iteration (`running_tokens`).
        tokens: batch x seq.
        ladder: the static path's fractions of `tokens`.
        layers: the depth of a fixed-depth model.

    Returns:
        The figures, or `{"unavailable": reason}` for a static path without
        a known ladder.

    >>> path_capacity("dense", [4, 1], 4)["capacity_per_iteration"]
    [4, 4]
    >>> path_capacity("static", [4, 1], 4, ladder=[0.5, 1.0])["capacity_per_iteration"]
    [4, 2]
    """
    if kind == "dense":
        capacity = [tokens] * len(running)
    elif kind == "dynamic":
        capacity = list(running)
    elif kind == "static":
        if not ladder:
            return {"unavailable": "the layer has no `capacity_ladder`"}
        capacity = ladder_capacity(running, ladder, tokens)
    elif kind == "fixed":
        capacity = [tokens] * layers
    else:
        raise ValueError(f"unknown path kind {kind!r}")
    return capacity_figures(running, capacity)
