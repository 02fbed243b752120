"""`AlbertActTokenizer`: the ALBERT SentencePiece tokenizer, in the TensorFlow graph."""

import base64
import binascii
import functools
import os
import re
import unicodedata

import keras
import numpy as np
import sentencepiece as spm
import tensorflow as tf
import tensorflow_text as tf_text
from keras_hub.tokenizers import AlbertTokenizer
from sentencepiece import sentencepiece_model_pb2

from keras_act.models.albert_act_backbone import AlbertActBackbone
from keras_act.tokenizers.preprocessing_outputs import preprocessing_outputs
from keras_act.tokenizers.special_tokens import SPECIAL_TOKENS

SPIECE_UNDERLINE = "\u2581"
REPLACEMENT_CHARACTER = 0xFFFD


def _character_class(predicate, limit=0x110000):
    """An RE2 character class of the code points below `limit` where `predicate` holds."""
    ranges = []
    for code_point in range(limit):
        if 0xD800 <= code_point <= 0xDFFF or not predicate(chr(code_point)):
            continue
        if ranges and ranges[-1][1] == code_point - 1:
            ranges[-1][1] = code_point
        else:
            ranges.append([code_point, code_point])
    body = "".join(
        f"\\x{{{start:X}}}" if start == end else f"\\x{{{start:X}}}-\\x{{{end:X}}}"
        for start, end in ranges
    )
    return f"[{body}]"


@functools.cache
def whitespace_class():
    """RE2 class of the characters Python's `str.split()` / `str.strip()` remove."""
    return _character_class(str.isspace)


@functools.cache
def whitespace_pattern(ascii_only=False):
    """RE2 pattern of the whitespace that `" ".join(text.split())` changes.

    Runs of Python whitespace (`str.isspace`) of two or more characters, and
    single whitespace characters other than the space; a single space is left
    alone (matching every space would make the replacement slow).
    """
    limit = 0x80 if ascii_only else 0x110000
    space = _character_class(str.isspace, limit)
    other = _character_class(lambda c: c.isspace() and c != " ", limit)
    return f"{space}{space}+|{other}"


@functools.cache
def combining_class():
    """RE2 class of the characters with a non-zero Unicode combining class."""
    return _character_class(lambda c: unicodedata.combining(c) != 0)


def _read_proto(proto):
    """Returns `(bytes, name)` of a `proto` argument, or `(None, None)`."""
    if isinstance(proto, bytes):
        return proto, "the `proto` bytes"
    if not isinstance(proto, str):
        return None, None  # keras-hub raises its own error for the type.
    if len(proto) > 2048 and not os.path.exists(proto):
        try:  # keras-hub's serialized form: a base64 string.
            return base64.b64decode(proto, validate=True), "the base64 `proto` string"
        except binascii.Error:
            pass
    if not os.path.isfile(proto):
        raise FileNotFoundError(f"SentencePiece model file not found: '{proto}'.")
    with open(proto, "rb") as file:
        return file.read(), f"'{proto}'"


def check_sentencepiece_proto(proto):
    """Checks that `proto` is an ALBERT-compatible SentencePiece model.

    Args:
        proto: a path to a SentencePiece model file, or its serialized bytes.

    Returns:
        The `sentencepiece.SentencePieceProcessor` of the model, or `None`
        when `proto` is neither a string nor bytes.

    Raises:
        FileNotFoundError: `proto` is a path that does not exist.
        ValueError: the file is not a SentencePiece model, is not a unigram
            model (tensorflow-text encodes every model as a unigram one: a
            BPE, word or character model would get other ids), has byte
            pieces (`byte_fallback`: tensorflow-text gives `<unk>` instead),
            or lacks one of ALBERT's special tokens (`<pad>`, `<unk>`,
            `[CLS]`, `[SEP]`, `[MASK]`). The message names the file.
    """
    data, name = _read_proto(proto)
    if data is None:
        return None
    try:
        processor = spm.SentencePieceProcessor(model_proto=data)
        size = processor.get_piece_size()
    except (RuntimeError, TypeError, OSError) as error:
        raise ValueError(
            f"{name} is not a SentencePiece model (a serialized "
            f"`sentencepiece.ModelProto`, e.g. ALBERT's `spiece.model`): {error}"
        ) from None
    if size == 0:
        raise ValueError(f"{name} is a SentencePiece model without pieces.")
    model = sentencepiece_model_pb2.ModelProto()
    model.ParseFromString(data)
    model_type = model.trainer_spec.model_type
    if model_type != model.trainer_spec.UNIGRAM:
        raise ValueError(
            f"{name} is a SentencePiece "
            f"{model.trainer_spec.ModelType.Name(model_type)} model; ALBERT's, and "
            "the only kind the in-graph tokenizer encodes as `sentencepiece` does, "
            "is a UNIGRAM model. Train one with `python -m training.vocab`."
        )
    if any(piece.type == piece.BYTE for piece in model.pieces):
        raise ValueError(
            f"{name} is a SentencePiece model with byte pieces (`byte_fallback`): "
            "tensorflow-text's tokenizer gives `<unk>` where `sentencepiece` gives "
            "the bytes. Train one without (`python -m training.vocab`)."
        )
    pieces = {processor.id_to_piece(i) for i in range(size)}
    missing = [token for token in SPECIAL_TOKENS if token not in pieces]
    if missing:
        raise ValueError(
            f"{name} is a SentencePiece model without ALBERT's special tokens "
            f"{missing}; ALBERT needs {list(SPECIAL_TOKENS)}. Train a compatible "
            "one with `python -m training.vocab`."
        )
    return processor


@functools.lru_cache(maxsize=8)
def _unknown_character_class(proto):
    """RE2 class of the non-ASCII characters a SentencePiece model cannot encode.

    The characters that no normal piece contains and that the model's
    normaliser leaves as they are (`None` when there are none). The
    `sentencepiece` library scores such a character as one unknown piece;
    tensorflow-text's `FastSentencepieceTokenizer` scores one unknown piece
    per byte, so its total scores after a multi-byte unknown character
    differ and equal-score segmentations may be ordered the other way
    (`"中hhh"`). Replacing each of these characters by one byte that is no
    piece (and invalid UTF-8, so never text) gives the library's scores.
    """
    processor = spm.SentencePieceProcessor(model_proto=proto)
    known = set()
    for index in range(processor.get_piece_size()):
        if processor.is_control(index) or processor.is_unknown(index) or processor.is_unused(index):
            continue
        known.update(processor.id_to_piece(index))
    candidates = [
        chr(c) for c in range(0x80, 0x110000) if not 0xD800 <= c <= 0xDFFF and chr(c) not in known
    ]
    normalized = processor.normalize(candidates)
    unknown = {
        c
        for c, n in zip(candidates, normalized, strict=True)
        if n in (c, SPIECE_UNDERLINE + c)
        # Combining marks and conjoining jamo may compose with the
        # characters around them: they are left to the model's normaliser.
        and unicodedata.combining(c) == 0
        and not (
            "\u1100" <= c <= "\u11ff" or "\ua960" <= c <= "\ua97f" or "\ud7b0" <= c <= "\ud7ff"
        )
    }
    if not unknown:
        return None
    return _character_class(unknown.__contains__)


def user_defined_score(piece):
    """The score the `sentencepiece` library gives a user-defined piece.

    The library's unigram encoder (>= 0.2.2) ignores a `USER_DEFINED` piece's
    score in the model and scores it by its UTF-8 length in bytes:
    `0.1 * (length - 1)` in float32 (`"-"`: 0, `"£"`: 0.1, `"–"`: 0.2), so
    it is always taken whole. tensorflow-text's `FastSentencepieceTokenizer`
    uses the score written in the model (0 in ALBERT's): the path scores
    after a multi-byte user-defined piece are then rounded differently and
    equal-score segmentations may be ordered the other way (`"–hhhhh"`).
    `tests/test_albert_act_tokenizer.py` measures this rule on the library.

    Args:
        piece: the piece, a string.

    Returns:
        The score, a Python float of float32 value.

    Example:

    >>> [round(user_defined_score(piece), 6) for piece in ("-", "\u00a3", "\u2013")]
    [0.0, 0.1, 0.2]
    """
    return float(np.float32(0.1 * (len(piece.encode("utf-8")) - 1)))


_USER_DEFINED = sentencepiece_model_pb2.ModelProto.SentencePiece.USER_DEFINED
_NORMAL = sentencepiece_model_pb2.ModelProto.SentencePiece.NORMAL
_UNUSED = sentencepiece_model_pb2.ModelProto.SentencePiece.UNUSED
_CONTROL = sentencepiece_model_pb2.ModelProto.SentencePiece.CONTROL


@functools.lru_cache(maxsize=8)
def user_defined_stand_ins(proto):
    """The user-defined pieces that the model's normaliser would change.

    The `sentencepiece` library matches user-defined pieces in the text
    before it normalises the rest, so they stay whole (`"ﬁ"` stays `"ﬁ"`
    under `nmt_nfkc`); tensorflow-text's `FastSentencepieceTokenizer`
    normalises them with the rest (`"fi"`, other pieces). Each such piece
    is given a stand-in character, a private-use one that is no piece and
    that the normaliser keeps, to replace it in the text before
    tensorflow-text; the stand-in is a piece of the same score appended
    to the model (`library_scored_proto`) and its id is mapped back.
    ALBERT's model has none.

    Args:
        proto: a serialized SentencePiece model, `bytes`.

    Returns:
        A tuple of `(piece, piece_id, stand_in)`, longest piece first.
    """
    model = sentencepiece_model_pb2.ModelProto()
    model.ParseFromString(proto)
    user_defined = [(i, p.piece) for i, p in enumerate(model.pieces) if p.type == _USER_DEFINED]
    if not user_defined:
        return ()
    processor = spm.SentencePieceProcessor(model_proto=proto)
    for piece in model.pieces:
        if piece.type == _USER_DEFINED:
            piece.type = _NORMAL
    plain = spm.SentencePieceProcessor(model_proto=model.SerializeToString())
    texts = [piece for _, piece in user_defined]
    changed = [
        (piece, index)
        for (index, piece), kept, normalized in zip(
            user_defined, processor.normalize(texts), plain.normalize(texts), strict=True
        )
        if kept != normalized
    ]
    pieces = {p.piece for p in model.pieces}
    stand_ins = []
    code_point = 0x10FFFD  # downwards through plane 16's private use area
    for piece, index in sorted(changed, key=lambda item: -len(item[0])):
        while chr(code_point) in pieces or plain.normalize(chr(code_point)).lstrip(
            SPIECE_UNDERLINE
        ) != chr(code_point):
            code_point -= 1
        stand_ins.append((piece, index, chr(code_point)))
        code_point -= 1
    return tuple(stand_ins)


@functools.lru_cache(maxsize=8)
def library_scored_proto(proto):
    """`proto` with its user-defined pieces scored as the library scores them.

    The model that tensorflow-text's `FastSentencepieceTokenizer` is built
    from, so that its float32 path scores, and so its choice between
    segmentations of equal score, are the `sentencepiece` library's (see
    `user_defined_score`); the stand-ins of `user_defined_stand_ins` are
    appended as pieces. Unused pieces, which the library never gives and
    tensorflow-text rejects, become control pieces (never given either).
    Other pieces and the normaliser are untouched.

    Args:
        proto: a serialized SentencePiece model, `bytes`.

    Returns:
        The serialized model, `bytes` (`proto` itself when it has no
        user-defined or unused piece).
    """
    model = sentencepiece_model_pb2.ModelProto()
    model.ParseFromString(proto)
    changed = False
    for piece in model.pieces:
        if piece.type == _USER_DEFINED:
            piece.score = user_defined_score(piece.piece)
            changed = True
        elif piece.type == _UNUSED:
            piece.type = _CONTROL
            changed = True
    for piece, _, stand_in in user_defined_stand_ins(proto):
        model.pieces.add(piece=stand_in, score=user_defined_score(piece), type=_USER_DEFINED)
    return model.SerializeToString() if changed else proto


def _digit_comma_pieces(processor):
    """Hugging Face's re-split of pieces that end in a digit and a comma.

    `AlbertTokenizer._tokenize` re-encodes each piece such as `"▁1,"` or
    `"000,"` without its comma and then appends `","`. The result depends
    on the piece alone, so it is a table from piece id to replacement ids.

    Returns:
        `(values, row_splits)`, a ragged `[vocabulary_size, None]` table
        that maps every id to itself, except the re-split pieces, or `None`
        when no piece of the vocabulary is re-split.
    """
    rows = []
    found = False
    for index in range(processor.get_piece_size()):
        piece = processor.id_to_piece(index)
        if len(piece) > 1 and piece[-1] == "," and piece[-2].isdigit():
            found = True
            pieces = processor.encode(piece[:-1].replace(SPIECE_UNDERLINE, ""), out_type=str)
            if piece[0] != SPIECE_UNDERLINE and pieces[0][0] == SPIECE_UNDERLINE:
                if len(pieces[0]) == 1:
                    pieces = pieces[1:]
                else:
                    pieces[0] = pieces[0][1:]
            pieces.append(piece[-1])
            rows.append([processor.piece_to_id(p) for p in pieces])
        else:
            rows.append([index])
    if not found:
        return None
    values = np.array([i for row in rows for i in row], dtype="int32")
    row_splits = np.cumsum([0] + [len(row) for row in rows]).astype("int64")
    return values, row_splits


@keras.saving.register_keras_serializable(package="keras_act")
class AlbertActTokenizer(AlbertTokenizer):
    """ALBERT SentencePiece tokenizer, identical to Hugging Face's, in-graph.

    A `keras_hub.tokenizers.AlbertTokenizer` (on tensorflow-text's
    `FastSentencepieceTokenizer`) that reproduces the ids of the slow `transformers.AlbertTokenizer`
    (transformers 4.x, >= 4.40), the tokenizer of the `asi/albert-act-*`
    checkpoints, with TensorFlow ops only, so it runs in eager mode, in a
    `tf.function`, in `tf.data` and inside an exported SavedModel loaded
    with nothing but `tensorflow` and `tensorflow_text`. In order:

    1. Invalid UTF-8 is replaced, per maximal invalid subsequence, by
       U+FFFD, as Python's `bytes.decode("utf-8", errors="replace")` does
       (the ids are Hugging Face's for the text decoded that way).
    2. Special tokens typed in the text (`[CLS]`, `[SEP]`, `[MASK]`,
       `<pad>`, `<unk>`) are split out and mapped to their ids. As Hugging
       Face lower-cases the text around them first (`do_lower_case`),
       `"[mask]"` and `"[Mask]"` are plain text but `"<PAD>"` is `<pad>`.
    3. Each text span in between is cleaned like `preprocess_text`:
       whitespace runs become one space and the ends are stripped (Python's
       `str.split()` whitespace), ` `` ` and `''` become `"`, accents are
       stripped (NFKD without combining characters) and the text is
       lower-cased; then the SentencePiece model encodes it (with its own
       `nmt_nfkc` normaliser and a dummy `▁` prefix per span).
    4. Pieces that end in a digit and a comma (`"▁1,"`, `"000,"`) are
       re-split into the number and `","`, as `AlbertTokenizer._tokenize`.

    Empty and whitespace-only strings give no ids. Inputs of any length are
    tokenized whole (truncation is the preprocessors' job).

    Texts with a piece unknown to the vocabulary are tokenized a second
    time with each unknown character as one byte: tensorflow-text's
    SentencePiece scores an unknown character once per byte, the library
    once, and the float32 rounding of the totals decides between
    segmentations of equal score (`"中hhh"`: `"hh" "h"`). For the same
    reason the model's user-defined pieces (ALBERT's `( ) " - . – £ €`)
    are given the scores the library gives them (`user_defined_score`:
    `"–"` 0.2, not the model's 0; `"–hhhhh"`: `"hh" "hh" "h"`), and
    user-defined pieces that the model's normaliser would change stay whole
    as in the library (`user_defined_stand_ins`; ALBERT's has none).
    `benchmarks/tokenizer_fuzz.py --count 100000` finds no difference
    (seeds 0 and 1).

    Known difference, none in GLUE CoLA/SST-2 or WikiText-2: characters
    assigned after the Unicode version of Python's `unicodedata` may be
    normalised differently (TensorFlow's ICU is newer). The ids are those
    of `sentencepiece` >= 0.2.2 (float32 path scores); 0.2.0 and 0.2.1
    break ties otherwise (`"eee"`: `"ee" "e"`, not `"e" "ee"`).

    Calling the layer on a batch of strings returns a `tf.RaggedTensor` of
    ids without `[CLS]`/`[SEP]`; a scalar string gives a dense 1-D tensor.

    Args:
        proto: a path to a SentencePiece model file (ALBERT's
            `spiece.model`), or the serialized model as `bytes`. A file that
            is not an ALBERT-compatible SentencePiece model raises a
            `ValueError` naming it.
        do_lower_case: bool, lower-case the text. Defaults to `True`.
        remove_space: bool, collapse and strip whitespace. Defaults to
            `True`.
        keep_accents: bool, keep accents instead of stripping them.
            Defaults to `False`.
        **kwargs: arguments of `keras_hub.tokenizers.SentencePieceTokenizer`
            (`sequence_length`, `dtype`, `name`, ...).

    Returns:
        Token ids (`int32` by default; pieces when `dtype="string"`).

    Example:

    >>> import io, keras_act, sentencepiece as spm; proto = io.BytesIO()
    >>> spm.SentencePieceTrainer.train(  # a tiny model: use ALBERT's `spiece.model`
    ...     sentence_iterator=iter(["the fox ran far away.", "a cat sat on a mat."] * 20),
    ...     model_writer=proto, vocab_size=24, pad_id=0, unk_id=1, bos_id=-1, eos_id=-1,
    ...     control_symbols=["[CLS]", "[SEP]", "[MASK]"], minloglevel=2)
    >>> tokenizer = keras_act.AlbertActTokenizer(proto=proto.getvalue())
    >>> ids = tokenizer(["The fox ran far.", "A cat [MASK]"])
    >>> ids.to_list()
    [[5, 14, 20, 18, 13, 11, 22, 5, 12, 6, 10, 13, 6, 12, 9], [8, 5, 16, 7, 4]]
    >>> tokenizer.detokenize(ids).numpy().tolist()
    [b'the fox ran far.', b'a cat']
    >>> pieces, ids = tokenizer.tokenize_with_pieces("A cat")
    >>> [piece.decode() for piece in pieces.numpy()], ids.numpy().tolist()
    (['▁a', '▁', 'c', 'at'], [8, 5, 16, 7])
    >>> import tensorflow as tf
    >>> ds = tf.data.Dataset.from_tensor_slices(["a cat", "the fox"]).batch(2).map(tokenizer)
    >>> ds.get_single_element().to_list()
    [[8, 5, 16, 7], [5, 14, 20, 18, 13, 11, 22]]

    Reference: Lan et al. (2020), "ALBERT: A Lite BERT for Self-supervised
    Learning of Language Representations"; Kudo & Richardson (2018),
    "SentencePiece".
    """

    backbone_cls = AlbertActBackbone

    def __init__(
        self,
        proto=None,
        do_lower_case=True,
        remove_space=True,
        keep_accents=False,
        **kwargs,
    ):
        self.do_lower_case = bool(do_lower_case)
        self.remove_space = bool(remove_space)
        self.keep_accents = bool(keep_accents)
        self._traced_tokenize = _TracedTokenize()
        self._add_special_token("<unk>", "unk_token")
        super().__init__(proto=proto, **kwargs)

    # === Vocabulary ===

    def set_proto(self, proto):
        processor = check_sentencepiece_proto(proto) if proto is not None else None
        super().set_proto(proto)
        if proto is None:
            return
        if processor is None:
            processor = spm.SentencePieceProcessor(model_proto=self.proto)
        # With `do_lower_case`, Hugging Face lower-cases the text (but not the
        # special tokens in it) before it splits them out, so `<PAD>` is
        # `<pad>` while `[mask]` is text: lower-case tokens match any case.
        exact = [t for t in SPECIAL_TOKENS if not (self.do_lower_case and t == t.lower())]
        folded = [t for t in SPECIAL_TOKENS if t not in exact]
        self._special_pattern = "|".join(
            [re.escape(t) for t in exact]
            + ([f"(?i:{'|'.join(re.escape(t) for t in folded)})"] if folded else [])
        )
        self._folded_pattern = "|".join(re.escape(t) for t in folded) or None
        self._special_ids = np.array(
            [self.token_to_id(token) for token in SPECIAL_TOKENS], dtype="int32"
        )
        self._vocabulary_array = np.array(self.get_vocabulary(), dtype=object)
        self._piece_table = _digit_comma_pieces(processor)
        self._unknown_class = _unknown_character_class(bytes(self.proto))
        self._stand_ins = user_defined_stand_ins(bytes(self.proto))

    def _set_proto_tf(self, proto):
        # tensorflow-text's `FastSentencepieceTokenizer` (the model as a
        # constant, stateless ops) breaks ties between equal-score
        # segmentations ("eee": "e" + "ee") like the `sentencepiece` package
        # that Hugging Face calls; `SentencepieceTokenizer` (an older
        # `sentencepiece` inside TF Text) does not: "eee" gives "ee" + "e". Ids are
        # int32; `dtype="string"` is applied after the digit-comma re-split.
        # User-defined pieces are scored as the library scores them.
        with tf.device("cpu"):
            self._sentence_piece = tf_text.FastSentencepieceTokenizer(
                library_scored_proto(bytes(proto))
            )

    @preprocessing_outputs
    def id_to_piece(self, ids):
        """Maps token ids to their SentencePiece pieces, in-graph.

        Args:
            ids: an int, a (nested) list of ints, a dense or ragged tensor.

        Returns:
            A string tensor of the same shape (ragged if `ids` is): the
            vocabulary piece of each id (`"▁the"`, `"[CLS]"`, `"<unk>"`), as
            Hugging Face's `convert_ids_to_tokens`. Ids outside
            `[0, vocabulary_size)` raise `tf.errors.InvalidArgumentError`.
        """
        self._check_vocabulary()
        with tf.device("cpu"):
            ids = self._checked_ids(_to_id_tensor(ids))
            vocabulary = tf.constant(self._vocabulary_array)
            if isinstance(ids, tf.RaggedTensor):
                return ids.with_flat_values(tf.gather(vocabulary, ids.flat_values))
            return tf.gather(vocabulary, ids)

    # === Tokenization ===

    @preprocessing_outputs
    def tokenize(self, inputs):
        self._check_vocabulary()
        with tf.device("cpu"):
            inputs = _to_string_tensor(inputs)
            if tf.executing_eagerly():
                # One traced graph per input kind: eager calls (a Grain
                # pipeline calls once per element) skip re-building the ops.
                return self._traced_tokenize.get(self, inputs)(inputs)
            return self._tokenize_tensor(inputs)

    def _tokenize_tensor(self, inputs):
        with tf.device("cpu"):
            if isinstance(inputs, tf.RaggedTensor):
                tokens = inputs.with_flat_values(self._tokenize_flat(inputs.flat_values))
            else:
                rank = inputs.shape.rank
                if rank is None:
                    raise ValueError(
                        f"AlbertActTokenizer needs inputs of known rank. Received: inputs={inputs}"
                    )
                tokens = self._tokenize_flat(tf.reshape(inputs, [-1]))
                shape = tf.shape(inputs, out_type=tf.int64)
                for axis in reversed(range(1, rank)):
                    tokens = tf.RaggedTensor.from_uniform_row_length(tokens, shape[axis])
            if self.sequence_length:
                output_shape = tokens.shape.as_list()
                output_shape[-1] = self.sequence_length
                tokens = tokens.to_tensor(default_value=self.pad_token_id, shape=output_shape)
            if not isinstance(inputs, tf.RaggedTensor) and inputs.shape.rank == 0:
                tokens = tokens[0] if self.sequence_length else tokens.flat_values
            if self.compute_dtype == "string":
                return self.id_to_piece(tokens)
            return tf.cast(tokens, self.compute_dtype) if self.compute_dtype != "int32" else tokens

    def call(self, inputs, training=None):
        return self.tokenize(inputs)

    @preprocessing_outputs
    def tokenize_with_pieces(self, inputs):
        """Tokenizes text and returns each token's piece beside its id.

        The per-token view of the depth analysis: print how many layers each
        piece received.

        Args:
            inputs: a string, a list of strings or a string tensor.

        Returns:
            A tuple `(pieces, ids)` of tensors of the same (ragged) shape, as
            `tokenize` returns them; `pieces` are vocabulary pieces
            (`id_to_piece`), so unknown text shows as `"<unk>"`.
        """
        ids = self.tokenize(inputs)
        if ids.dtype == tf.string:
            raise ValueError("`tokenize_with_pieces` needs an integer `dtype`.")
        return self.id_to_piece(ids), ids

    def _tokenize_flat(self, text):
        """Tokenizes a 1-D string tensor into a `[batch, None]` ragged tensor."""
        text = _apply_where(tf.logical_not(_is_ascii(text)), _replace_invalid_utf8, text)
        # Hugging Face's added-token trie: special tokens typed in the text
        # are kept whole, between text spans (some empty: they give no ids).
        segments = _split_around(text, self._special_pattern)
        spans = segments.flat_values
        is_special = tf.strings.regex_full_match(spans, self._special_pattern)
        text = self._preprocess_text(tf.where(is_special, "", spans))
        text_ids = self._retokenize_after_unknown(text, self._encode(text))
        # A special span gives exactly its own id, a text span its pieces.
        specials = tf.boolean_mask(spans, is_special)
        if self._folded_pattern:
            folded = tf.strings.regex_full_match(specials, f"(?i:{self._folded_pattern})")
            specials = _apply_where(folded, _lower_utf8, specials)
        matches = tf.equal(specials[:, tf.newaxis], tf.constant(SPECIAL_TOKENS)[tf.newaxis, :])
        special_ids = tf.RaggedTensor.from_row_lengths(
            tf.gather(tf.constant(self._special_ids), tf.argmax(tf.cast(matches, tf.int32), 1)),
            tf.cast(is_special, text_ids.row_splits.dtype),
        )
        ids = tf.concat([text_ids, special_ids], axis=1)
        if self._piece_table is not None:
            values, row_splits = self._piece_table
            table = tf.RaggedTensor.from_row_splits(
                tf.constant(values), tf.constant(row_splits, dtype=ids.row_splits.dtype)
            )
            ids = tf.gather(table, ids).merge_dims(1, 2)
        ids = tf.RaggedTensor.from_row_splits(
            ids, tf.cast(segments.row_splits, ids.row_splits.dtype)
        ).merge_dims(1, 2)
        return ids.with_row_splits_dtype(tf.int64)

    def _encode(self, text):
        """The SentencePiece ids of normalised-by-us `text`, `[batch, None]`.

        User-defined pieces that the model's normaliser would change are
        replaced by their stand-ins first and the stand-ins' ids mapped
        back (`user_defined_stand_ins`); a stand-in character typed in the
        text becomes one byte `0xFF`, an unknown character as in the library.
        """
        if not self._stand_ins:
            return self._sentence_piece.tokenize(text)
        stand_ins = "".join(stand_in for _, _, stand_in in self._stand_ins)
        text = tf.strings.regex_replace(text, f"[{stand_ins}]", b"\xff")
        for piece, _, stand_in in self._stand_ins:
            text = tf.strings.regex_replace(text, re.escape(piece), stand_in)
        ids = self._sentence_piece.tokenize(text)
        size = self.vocabulary_size()
        table = np.concatenate(
            [np.arange(size), [index for _, index, _ in self._stand_ins]]
        ).astype("int32")
        return tf.ragged.map_flat_values(tf.gather, tf.constant(table), ids)

    def _retokenize_after_unknown(self, text, ids):
        """Tokenizes again, as the `sentencepiece` library, the texts with an
        unknown piece: NFKC-composed when accents were stripped (NFKD split
        Hangul syllables, which the model's normaliser composes again) and
        each unknown character replaced by one byte `0xFF` (see
        `_unknown_character_class`). `ids` are the first
        pass's ids of `text`, `[batch, None]`."""
        if self._unknown_class is None:
            return ids
        has_unknown = tf.reduce_any(tf.equal(ids, self.unk_token_id), axis=1)
        positions = tf.where(has_unknown)[:, 0]
        again = tf.gather(text, positions)
        if not self.keep_accents:  # NFKD split Hangul syllables into jamo.
            again = tf_text.normalize_utf8(again, "NFKC")
        marked = tf.strings.regex_replace(
            again,
            self._unknown_class,
            b"\xff",
        )
        again = self._encode(marked).with_row_splits_dtype(ids.row_splits.dtype)
        count = tf.size(has_unknown, out_type=tf.int64)
        order = tf.tensor_scatter_nd_update(
            tf.range(count),
            positions[:, tf.newaxis],
            count + tf.range(tf.size(positions, tf.int64)),
        )
        return tf.gather(tf.concat([ids, again], axis=0), order)

    def _preprocess_text(self, text):
        """`AlbertTokenizer.preprocess_text`, with TensorFlow ops.

        ASCII text, most of it, takes a shorter path with the same result.
        """
        is_ascii = _is_ascii(text)
        text = _apply_where(is_ascii, lambda t: self._clean_text(t, ascii_only=True), text)
        return _apply_where(tf.logical_not(is_ascii), self._clean_text, text)

    def _clean_text(self, text, ascii_only=False):
        if self.remove_space:
            text = tf.strings.regex_replace(text, whitespace_pattern(ascii_only), " ")
            text = tf.strings.strip(text)  # Only single spaces are left at the ends.
        text = tf.strings.regex_replace(text, "``", '"')
        text = tf.strings.regex_replace(text, "''", '"')
        if ascii_only:  # NFKD leaves ASCII as it is.
            return tf.strings.lower(text) if self.do_lower_case else text
        if self.do_lower_case:
            # `PreTrainedTokenizer.tokenize` first lower-cases one character
            # at a time: a typed capital sigma becomes "σ", never the final
            # "ς" that `str.lower()` (and ICU) give a word's last letter.
            text = tf.strings.regex_replace(text, "\u03a3", "\u03c3")
        if not self.keep_accents:
            text = tf_text.normalize_utf8(text, "NFKD")
            text = tf.strings.regex_replace(text, combining_class(), "")
        if self.do_lower_case:
            text = _lower_utf8(text)
        return text

    # === Detokenization ===

    @preprocessing_outputs
    def detokenize(self, inputs):
        """Turns token ids back into text, in-graph.

        Special tokens (`[CLS]`, `[SEP]`, `[MASK]`, `<pad>`, `<unk>`) are
        dropped and the pieces decoded, as Hugging Face's
        `decode(ids, skip_special_tokens=True)`. Text comes back normalised
        (lower-cased, accents stripped).

        Args:
            inputs: ids as an int, a (nested) list, a dense `[batch, seq]`
                tensor (padding is dropped) or a ragged tensor.

        Returns:
            A string tensor: a scalar for one sequence, `[batch]` for a
            batch. Ids outside `[0, vocabulary_size)` raise
            `tf.errors.InvalidArgumentError`.
        """
        self._check_vocabulary()
        with tf.device("cpu"):
            ids = self._checked_ids(_to_id_tensor(inputs))
            unbatched = ids.shape.rank in (0, 1)
            if ids.shape.rank == 0:
                ids = ids[tf.newaxis]
            if unbatched:
                ids = ids[tf.newaxis]
            if not isinstance(ids, tf.RaggedTensor):
                ids = tf.RaggedTensor.from_tensor(ids)
            if ids.shape.rank != 2:
                raise ValueError(
                    "`detokenize` takes one sequence or a batch of sequences of "
                    f"ids. Received ids of shape {ids.shape}."
                )
            is_special = tf.reduce_any(
                tf.equal(ids.flat_values[:, tf.newaxis], tf.constant(self._special_ids)), axis=1
            )
            ids = tf.ragged.boolean_mask(ids, ids.with_flat_values(tf.logical_not(is_special)))
            text = self._sentence_piece.detokenize(ids)
            text = tf.strings.regex_replace(
                text, f"^{whitespace_class()}+|{whitespace_class()}+$", ""
            )
            return text[0] if unbatched else text

    def _checked_ids(self, ids):
        flat = ids.flat_values if isinstance(ids, tf.RaggedTensor) else ids
        message = (
            "AlbertActTokenizer: token ids must lie in [0, "
            f"{self.vocabulary_size()}), the vocabulary."
        )
        checks = [
            tf.debugging.assert_greater_equal(flat, 0, message=message),
            tf.debugging.assert_less(flat, self.vocabulary_size(), message=message),
        ]
        with tf.control_dependencies(checks):
            if isinstance(ids, tf.RaggedTensor):
                return ids.with_flat_values(tf.identity(ids.flat_values))
            return tf.identity(ids)

    # === Config ===

    def get_config(self):
        options = ("do_lower_case", "remove_space", "keep_accents")
        return {**super().get_config(), **{name: getattr(self, name) for name in options}}


class _TracedTokenize:
    """`tf.function`s of a tokenizer's `_tokenize_tensor` for eager calls, one
    per input rank (dense or ragged), traced again when the vocabulary,
    `sequence_length` or dtype change."""

    def __init__(self):
        self.key = None
        self.functions = {}

    def get(self, tokenizer, inputs):
        key = (id(tokenizer._sentence_piece), tokenizer.sequence_length, tokenizer.compute_dtype)
        if key != self.key:
            self.key, self.functions = key, {}
        if isinstance(inputs, tf.RaggedTensor):
            spec = tf.RaggedTensorSpec(
                [None] * inputs.shape.rank, tf.string, inputs.ragged_rank, inputs.row_splits.dtype
            )
        elif inputs.shape.rank is None:
            return tokenizer._tokenize_tensor  # raises its error
        else:
            spec = tf.TensorSpec([None] * inputs.shape.rank, tf.string)
        if spec not in self.functions:
            self.functions[spec] = tf.function(
                tokenizer._tokenize_tensor, input_signature=[spec], autograph=False
            )
        return self.functions[spec]


def _is_ascii(text):
    return tf.strings.regex_full_match(text, "[\\x00-\\x7f]*")


def _apply_where(mask, fn, values):
    """`values` (1-D) with `fn` applied to the elements where `mask` holds only."""
    mask = tf.cast(mask, tf.int32)
    positions = tf.dynamic_partition(tf.range(tf.size(values)), mask, 2)
    parts = tf.dynamic_partition(values, mask, 2)
    return tf.dynamic_stitch(positions, [parts[0], fn(parts[1])])


def _replace_invalid_utf8(text):
    """Replaces invalid UTF-8 by U+FFFD, as `bytes.decode(errors="replace")`."""
    return tf.strings.unicode_transcode(
        text,
        input_encoding="UTF-8",
        output_encoding="UTF-8",
        errors="replace",
        replacement_char=REPLACEMENT_CHARACTER,
    )


def _split_around(text, pattern):
    """Splits strings around the matches of `pattern`, keeping the matches.

    Returns a `[batch, None]` ragged tensor of the text spans and matches
    in order (spans may be empty). `tf_text.regex_split` would stop at the
    first NUL byte, so NULs are escaped (`NUL E`) and the matches marked by
    `NUL S` before a plain `tf.strings.split`.
    """
    text = tf.strings.regex_replace(text, "\x00", "\x00E")
    text = tf.strings.regex_replace(text, pattern, "\x00S\\0\x00S")
    parts = tf.strings.split(text, sep="\x00S")
    return tf.ragged.map_flat_values(tf.strings.regex_replace, parts, "\x00E", "\x00")


def _lower_utf8(text):
    """Unicode lower-casing (ICU, as Python's `str.lower`) of a string tensor.

    `tf.strings.lower(..., encoding="utf-8")` stops at the first NUL byte (as
    does `reduce_join`'s separator), so the text is lower-cased between NULs
    and the NULs put back.
    """

    def lower_and_terminate(parts):
        return tf.strings.join([tf.strings.lower(parts, encoding="utf-8"), "\x00"])

    parts = tf.strings.split(text, sep="\x00")
    text = tf.strings.reduce_join(tf.ragged.map_flat_values(lower_and_terminate, parts), axis=-1)
    return tf.strings.regex_replace(text, "\x00$", "")


def _to_string_tensor(inputs):
    """Converts text inputs to a string `tf.Tensor` or `tf.RaggedTensor`."""
    if isinstance(inputs, (list, tuple)) and len(inputs) == 0:
        inputs = tf.constant([], dtype=tf.string)
    elif not isinstance(inputs, (tf.Tensor, tf.RaggedTensor)):
        try:
            inputs = tf.convert_to_tensor(inputs)
        except (ValueError, TypeError):
            try:  # Nested lists of different lengths.
                inputs = tf.ragged.constant(inputs)
            except (ValueError, TypeError):
                raise ValueError(
                    "AlbertActTokenizer tokenizes strings (a string, a list of "
                    f"strings or a string tensor). Received: {inputs!r}"
                ) from None
    if inputs.dtype != tf.string:
        raise ValueError(
            "AlbertActTokenizer tokenizes strings (a string, a list of strings or "
            f"a string tensor). Received dtype {inputs.dtype.name}: {inputs!r}"
        )
    return inputs


def _to_id_tensor(ids):
    """Converts token id inputs to an int32 `tf.Tensor` or `tf.RaggedTensor`."""
    if isinstance(ids, (list, tuple)) and len(ids) == 0:
        ids = tf.constant([], dtype=tf.int32)
    elif not isinstance(ids, (tf.Tensor, tf.RaggedTensor)):
        try:
            ids = tf.convert_to_tensor(keras.ops.convert_to_numpy(ids))
        except (ValueError, TypeError):
            try:  # Nested lists of different lengths.
                ids = tf.ragged.constant(ids)
            except (ValueError, TypeError):
                raise ValueError(f"Token ids must be integers. Received: {ids!r}") from None
    if not ids.dtype.is_integer:
        raise ValueError(f"Token ids must be integers. Received dtype {ids.dtype.name}.")
    return tf.cast(ids, tf.int32)
