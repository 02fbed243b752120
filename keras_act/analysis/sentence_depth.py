"""Per-token depth of sentences: pieces, ids, updates, remainders, halting."""

import dataclasses

import numpy as np

from keras_act.analysis.depth_readers import DepthReader, KerasDepthReader


@dataclasses.dataclass
class SentenceDepth:
    """How many layers each token of one sentence received.

    All arrays are over the packed tokens `[CLS] ... [SEP]` (no padding).

    Attributes:
        text: str, the sentence.
        pieces: list of str, the vocabulary piece of each token.
        token_ids: int32 array.
        updates: float32 array, the number of times the shared block
            updated each token.
        remainders: float32 array, the ACT remainder of each token, or
            `None` (a SavedModel does not return it).
        halting_probability: float32 array, the cumulative halting
            probability when the token stopped (1 for a token that halted;
            below `1 - act_epsilon` for one stopped by the cap), or `None`.
        step_halting_probabilities: float32 array `[tokens, iterations]`,
            the halting unit's output after each update of each token
            (`nan` after its last update), or `None`. A token halts at the
            first update where the running sum would exceed
            `1 - act_epsilon`; its last weight is then the remainder.
    """

    text: str
    pieces: list
    token_ids: np.ndarray
    updates: np.ndarray
    remainders: np.ndarray = None
    halting_probability: np.ndarray = None
    step_halting_probabilities: np.ndarray = None

    def __len__(self):
        return len(self.pieces)

    def to_dict(self):
        """A JSON-serialisable dict of the fields."""
        return {
            "text": self.text,
            "pieces": list(self.pieces),
            "token_ids": [int(i) for i in self.token_ids],
            "updates": [float(u) for u in self.updates],
            "remainders": None if self.remainders is None else [float(r) for r in self.remainders],
            "halting_probability": None
            if self.halting_probability is None
            else [float(p) for p in self.halting_probability],
            "step_halting_probabilities": None
            if self.step_halting_probabilities is None
            else [
                [float(p) for p in row if not np.isnan(p)]
                for row in self.step_halting_probabilities
            ],
        }


def as_depth_reader(model, tokenizer=None):
    """A `DepthReader` from a depth reader, or a backbone and its tokenizer."""
    if isinstance(model, DepthReader):
        return model
    if tokenizer is None:
        raise ValueError(
            f"A {type(model).__name__} needs its `tokenizer` (an AlbertActTokenizer) "
            "for depth analysis."
        )
    return KerasDepthReader(model, tokenizer)


def sentence_depths(model, sentences, tokenizer=None):
    """Per-token depth of each sentence, packed as `[CLS] sentence [SEP]`.

    Args:
        model: a `DepthReader` (`load_depth_reader`), or an
            `AlbertActBackbone` given with its `tokenizer`.
        sentences: a str or a list of str.
        tokenizer: the `AlbertActTokenizer` of a backbone `model`.

    Returns:
        A list of `SentenceDepth`, one per sentence.

    Example:

    ```python
    depths = keras_act.analysis.sentence_depths(backbone, ["The cat sat."], tokenizer=tokenizer)
    depths[0].pieces   # ['[CLS]', '▁the', '▁cat', '▁sat', '.', '[SEP]']
    depths[0].updates  # float32 array of 6 layer counts
    print(keras_act.analysis.format_depth_table(depths[0]))
    ```
    """
    depth_reader = as_depth_reader(model, tokenizer)
    if isinstance(sentences, (str, bytes)):
        sentences = [sentences]
    sentences = [s.decode("utf-8") if isinstance(s, bytes) else str(s) for s in sentences]
    if not sentences:
        return []
    outputs = depth_reader.run_texts(sentences)
    result = []
    for row, text in enumerate(sentences):
        real = outputs["padding_mask"][row].astype(bool)

        def pick(key, row=row, real=real):
            value = outputs.get(key)
            return None if value is None else np.asarray(value[row][real], np.float32)

        result.append(
            SentenceDepth(
                text=text,
                pieces=[str(p) for p in outputs["token_pieces"][row][real]],
                token_ids=np.asarray(outputs["token_ids"][row][real], np.int32),
                updates=pick("updates"),
                remainders=pick("remainders"),
                halting_probability=pick("halting_probability"),
                step_halting_probabilities=pick("step_halting_probabilities"),
            )
        )
    return result


def format_depth_table(depth, max_layers=None):
    """A plain-text table of one sentence's per-token depth.

    Args:
        depth: a `SentenceDepth`.
        max_layers: optional int, shown in the header.

    Returns:
        str: one line per token with its position, piece, id, updates (and
        a bar of `#`, one per update), remainder, cumulative halting
        probability (`-` when unknown) and the halting unit's output after
        each update.
    """
    header = f"Layers per token for: {depth.text!r}"
    if max_layers:
        header += f"  (cap {max_layers})"
    width = max([len("piece")] + [len(p) for p in depth.pieces])
    bar = int(max([1.0] + [float(u) for u in depth.updates]))
    lines = [
        header,
        f"{'#':>4}  {'piece':<{width}}  {'id':>6}  {'updates':>7}  {'':<{bar}}  "
        f"{'remainder':>9}  {'halting p':>9}  halting unit per update",
    ]
    for i, piece in enumerate(depth.pieces):
        updates = float(depth.updates[i])
        line = (
            f"{i:>4}  {piece:<{width}}  {int(depth.token_ids[i]):>6}  {updates:>7g}  "
            f"{'#' * int(round(updates)):<{bar}}  {_number(depth.remainders, i):>9}  "
            f"{_number(depth.halting_probability, i):>9}  {_steps(depth, i)}"
        )
        lines.append(line.rstrip())
    lines.append(f"mean updates {float(np.mean(depth.updates)):.2f} over {len(depth)} tokens")
    return "\n".join(lines)


def depth_table_markdown(depth):
    """A Markdown table of one sentence's per-token depth (for TensorBoard)."""
    lines = [
        f"**{_escape(depth.text)}** (mean updates {float(np.mean(depth.updates)):.2f})",
        "",
        "| # | piece | id | updates | remainder | halting p | halting unit per update |",
        "| ---: | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for i, piece in enumerate(depth.pieces):
        lines.append(
            f"| {i} | `{_escape(piece)}` | {int(depth.token_ids[i])} | "
            f"{float(depth.updates[i]):g} | {_number(depth.remainders, i)} | "
            f"{_number(depth.halting_probability, i)} | {_steps(depth, i)} |"
        )
    return "\n".join(lines)


def _steps(depth, index):
    if depth.step_halting_probabilities is None:
        return ""
    row = depth.step_halting_probabilities[index]
    return " ".join(f"{p:.2f}" for p in row if not np.isnan(p))


def _number(values, index):
    return "-" if values is None else f"{float(values[index]):.4f}"


def _escape(text):
    return text.replace("|", "\\|").replace("`", "'")
