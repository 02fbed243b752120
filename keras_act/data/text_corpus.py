"""Plain-text corpora: files to documents, documents to sentences.

A corpus file is read either as blank-line separated blocks (one document per
block: Wikipedia dumps, BookCorpus-style files, the demo corpus) or, when it
has no blank line, as one long document with one sentence per line. Lines are
split into sentences with a rule-based segmenter. WikiText's markup (`= Title
=` headings, ` @-@ ` joins, `<unk>`) is recognised and cleaned: headings start
new documents.
"""

import os
import re

# A sentence ends with . ! or ? (possibly followed by closing quotes or
# brackets), then whitespace.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+")
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof st jr sr vs etc e.g i.e u.s u.k no fig al approx inc ltd co".split()
)
_WIKITEXT_HEADING = re.compile(r"^\s*(=+)\s.*\s\1\s*$")
_WIKITEXT_TITLE = re.compile(r"^\s*=\s[^=].*\s=\s*$")
_WIKITEXT_JOINS = ((" @-@ ", "-"), (" @,@ ", ","), (" @.@ ", "."))


def split_sentences(text):
    """Splits a line of text into sentences.

    Args:
        text: str, one line or paragraph.

    Returns:
        A list of non-empty sentence strings.

    Example:

    >>> split_sentences("It rained. Dr. Smith stayed home! Did he? Yes.")
    ['It rained.', 'Dr. Smith stayed home!', 'Did he?', 'Yes.']
    """
    text = " ".join(text.split())
    if not text:
        return []
    sentences, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        candidate = text[start : match.start()].strip()
        last_word = candidate.rsplit(" ", 1)[-1].lower().rstrip(".!?\"')]")
        if last_word in _ABBREVIATIONS or re.fullmatch(r"[a-z]", last_word):
            continue  # "Dr. Smith", "J. Smith": not a sentence end.
        if candidate:
            sentences.append(text[start : match.end()].strip())
        start = match.end()
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def _clean_wikitext(line):
    for old, new in _WIKITEXT_JOINS:
        line = line.replace(old, new)
    return " ".join(line.replace("<unk>", " ").split())


def read_documents(paths, min_sentences=1):
    """Reads plain-text files into documents (lists of sentences).

    Args:
        paths: list of str, the corpus files.
        min_sentences: int, documents with fewer sentences are dropped.

    Returns:
        A list of documents, each a list of sentence strings.

    Raises:
        FileNotFoundError: when a file does not exist.
        ValueError: when no file has a usable sentence (empty corpus).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not paths:
        raise ValueError("The corpus is empty: no file was given.")
    documents = []
    for path in paths:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Corpus file not found: {path}")
        with open(path, encoding="utf8", errors="replace") as file:
            text = file.read()
        wikitext = "<unk>" in text or " @-@ " in text or _has_wikitext_heading(text)
        lines = text.splitlines()
        blocks = any(not line.strip() for line in lines) and any(line.strip() for line in lines)
        current = []
        for line in lines:
            if wikitext and _WIKITEXT_HEADING.match(line):
                # An article title starts a new document; section titles are
                # dropped.
                if _WIKITEXT_TITLE.match(line) and current:
                    documents.append(current)
                    current = []
                continue
            if not line.strip():
                if blocks and current and not wikitext:
                    documents.append(current)
                    current = []
                continue
            if wikitext:
                line = _clean_wikitext(line)
            current.extend(split_sentences(line))
        if current:
            documents.append(current)
    documents = [d for d in documents if len(d) >= min_sentences]
    if not documents:
        raise ValueError(
            f"The corpus {list(map(str, paths))} has no usable document "
            f"(none with at least {min_sentences} sentence(s))."
        )
    return documents


def _has_wikitext_heading(text):
    return any(_WIKITEXT_HEADING.match(line) for line in text.splitlines()[:50])
