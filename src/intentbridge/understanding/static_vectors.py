"""Static word-piece vectors: a little of a transformer's semantics, at n-gram speed.

The ``fast`` pipeline's TF-IDF n-grams know only the words of the training data: a
message that says "purchase" where the examples say "buy" shares no feature with them.
This module gives every message a 128-dimensional vector, the mean of one vector per
word piece, from a table that ships with the package (``resources/minilm_static.npz``,
4.3 MB). The table was distilled once from all-MiniLM-L6-v2 (Apache-2.0; see
``resources/NOTICE.md``) by ``scripts/build_static_vectors.py``: each word piece of its
vocabulary was run through the model alone (``[CLS] piece [SEP]``), its output kept,
centred, reduced to 128 dimensions by PCA and stored as int8 with one scale per row.

Using it needs neither PyTorch nor the model: the tokenizer below is a plain-Python
copy of the uncased BERT word-piece rules (pinned against the ``tokenizers`` library by
a test when that is installed), and a message's vector is a table lookup and a mean.

>>> vectors = static_vectors()
>>> vectors.encode(["transfer money to savings"]).shape
(1, 128)
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
import unicodedata
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt

from intentbridge.errors import ModelError

TABLE_FILE = "minilm_static.npz"
_MAX_WORD_CHARS = 100  # longer words are one unknown piece, as in BERT
_CACHE_WORDS = 200_000  # word -> piece ids remembered; cleared when full


def _is_punctuation(ch: str) -> bool:
    code = ord(ch)
    # BERT counts every non-alphanumeric ASCII character as punctuation ("$", "^", "`")
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(code: int) -> bool:
    return (
        0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0x20000 <= code <= 0x2A6DF
        or 0x2A700 <= code <= 0x2B73F
        or 0x2B740 <= code <= 0x2B81F
        or 0x2B920 <= code <= 0x2CEAF  # as the tokenizers library (BERT had 0x2B820)
        or 0xF900 <= code <= 0xFAFF
        or 0x2F800 <= code <= 0x2FA1F
    )


# ASCII text needs no Unicode tables: control characters other than \t \n \r are
# dropped, every non-alphanumeric printable character is punctuation, and what is
# left is letters and digits between white space.
_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ASCII_WORDS = re.compile(r"[a-z0-9]+|[!-/:-@\[-`{-~]")


def basic_words(text: str) -> list[str]:
    """Uncased BERT pre-tokenisation: clean, lower-case, strip accents, split.

    Control characters are dropped, CJK ideographs and punctuation become words of
    their own, everything else splits on white space.

    >>> basic_words("Héllo, World!")
    ['hello', ',', 'world', '!']
    """
    if text.isascii():  # most messages: two regexes instead of a loop over characters
        return _ASCII_WORDS.findall(_ASCII_CONTROL.sub("", text.lower()))
    return unicode_basic_words(text)


def unicode_basic_words(text: str) -> list[str]:
    """:func:`basic_words` for any text, character by character with Unicode tables."""
    out: list[str] = []
    word: list[str] = []
    for ch in unicodedata.normalize("NFD", text.lower()):
        code = ord(ch)
        if code in {0, 0xFFFD}:
            continue
        cat = unicodedata.category(ch)
        if ch in " \t\n\r" or cat == "Zs":
            if word:
                out.append("".join(word))
                word = []
            continue
        if cat == "Mn" or cat[0] == "C":
            # accents are stripped; control, format, private and unassigned dropped
            continue
        if _is_punctuation(ch) or _is_cjk(code):
            if word:
                out.append("".join(word))
                word = []
            out.append(ch)
            continue
        word.append(ch)
    if word:
        out.append("".join(word))
    return out


class StaticVectors:
    """A word-piece vocabulary and its vectors; :meth:`encode` maps texts to vectors.

    Args:
        vocab: word pieces, in id order (``##`` marks a piece inside a word).
        vectors: ``(len(vocab), dim)`` int8 rows.
        scales: one float per row: a row's vector is ``vectors[i] * scales[i]``.
        sha256: the table file's digest, recorded by models trained with it.
    """

    def __init__(
        self,
        vocab: list[str],
        vectors: npt.NDArray[np.int8],
        scales: npt.NDArray[np.float32],
        sha256: str = "",
    ) -> None:
        if vectors.shape[0] != len(vocab) or scales.shape[0] != len(vocab):
            raise ModelError("static vector table and vocabulary disagree in length")
        self.ids = {piece: i for i, piece in enumerate(vocab)}
        self.unknown = self.ids.get("[UNK]", -1)
        # kept as int8 (4 MB, not 16 MB as float32); rows are scaled when read
        self.vectors = np.ascontiguousarray(vectors, dtype=np.int8)
        self.scales = np.asarray(scales, dtype=np.float32)
        self.sha256 = sha256
        self._pieces: dict[str, tuple[int, ...]] = {}
        self._lock = threading.Lock()

    @property
    def dimension(self) -> int:
        """Length of one vector."""
        return int(self.vectors.shape[1])

    def word_pieces(self, word: str) -> tuple[int, ...]:
        """Greedy longest-match word pieces of one pre-tokenised word (ids)."""
        cached = self._pieces.get(word)
        if cached is not None:
            return cached
        ids = self.ids
        found: list[int] = []
        if len(word) > _MAX_WORD_CHARS:
            found = [self.unknown]
        else:
            start = 0
            while start < len(word):
                end = len(word)
                piece_id = -1
                while end > start:
                    piece = word[start:end] if start == 0 else "##" + word[start:end]
                    piece_id = ids.get(piece, -1)
                    if piece_id >= 0:
                        break
                    end -= 1
                if piece_id < 0:  # one unmatched part makes the whole word unknown
                    found = [self.unknown]
                    break
                found.append(piece_id)
                start = end
        result = tuple(found)
        with self._lock:
            if len(self._pieces) >= _CACHE_WORDS:
                self._pieces.clear()
            self._pieces[word] = result
        return result

    def piece_ids(self, text: str) -> list[int]:
        """Word-piece ids of ``text`` (as the uncased BERT tokenizer, no special tokens)."""
        out: list[int] = []
        for word in basic_words(text):
            out.extend(self.word_pieces(word))
        return out

    def encode_one(self, text: str) -> npt.NDArray[np.float32]:
        """The mean of the known pieces' vectors, scaled to a length equal to the share
        of the message's words that are one whole piece; zeros when none is.

        Words that split into several pieces ("zxqv" is z ##x ##q ##v) still add their
        pieces to the mean but not to the share: out of context such pieces say little,
        and a message of made-up words must not look like anything. What the share
        leaves of the unit length is for the caller to fill (the intent model fills it
        with its mean training vector).
        """
        ids: list[int] = []
        words = whole = 0
        for word in basic_words(text):
            words += 1
            pieces = self.word_pieces(word)
            if pieces[0] != self.unknown:
                ids.extend(pieces)
                whole += len(pieces) == 1
        if not whole:
            return np.zeros(self.dimension, dtype=np.float32)
        rows = self.vectors[ids].astype(np.float32)
        mean: npt.NDArray[np.float32] = self.scales[ids] @ rows
        norm = float(np.sqrt(mean @ mean))
        if norm > 0.0:
            mean *= whole / (words * norm)
        return mean

    def encode(self, texts: list[str]) -> npt.NDArray[np.float32]:
        """``(len(texts), dimension)``: :meth:`encode_one` of each text."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            out[row] = self.encode_one(text)
        return out

    @classmethod
    def load(cls, path: Path) -> StaticVectors:
        """Read a table written by ``scripts/build_static_vectors.py`` (no pickles)."""
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ModelError(
                f"cannot read the static vector table {path}: {exc}; reinstall intentbridge"
            ) from exc
        with np.load(io.BytesIO(raw), allow_pickle=False) as arrays:
            vocab = bytes(arrays["vocab"]).decode("utf-8").split("\n")
            return cls(
                vocab,
                arrays["vectors"],
                arrays["scales"],
                sha256=hashlib.sha256(raw).hexdigest(),
            )


def table_path() -> Path:
    """Where the packaged table lies."""
    return Path(str(resources.files("intentbridge.understanding") / "resources" / TABLE_FILE))


@lru_cache(maxsize=1)
def static_vectors() -> StaticVectors:
    """The packaged table, read once per process."""
    return StaticVectors.load(table_path())
