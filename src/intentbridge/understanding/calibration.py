"""Turning intent scores into honest confidences and a fallback decision.

Everything here is fitted on held-out predictions (out-of-fold on small data, one
held-out split on large data), never on the examples a model was trained on:

- ``weights``: how much each intent model counts when several are combined (the
  ``accurate`` pipeline averages the sparse and the dense model);
- ``temperature``: one number that sharpens or flattens the combined
  probabilities so that a confidence of 0.8 is right about 80% of the time;
- ``threshold``: below it the interpretation is ``nlu_fallback``;
- ``first_sure``: with several intent models, where the first (cheap) one is at least
  this sure, the others are not asked and its own probabilities, at
  ``first_temperature``, are the answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_EPS = 1e-12


@dataclass(frozen=True, slots=True)
class Calibration:
    """Fitted combination weights, temperature and fallback threshold."""

    weights: tuple[float, ...] = (1.0,)
    temperature: float = 1.0
    threshold: float = 0.0
    first_sure: float | None = None
    first_temperature: float = 1.0

    def apply(self, probs: Sequence[FloatArray]) -> FloatArray:
        """Combine per-model probabilities and apply the temperature."""
        return apply_temperature(combine(probs, self.weights), self.temperature)

    def sure_of_first(self, first: FloatArray) -> npt.NDArray[np.bool_]:
        """Rows of the first model's probabilities that need no other model."""
        if self.first_sure is None or len(self.weights) < 2:
            return np.zeros(len(first), dtype=bool)
        return np.asarray(first.max(axis=1) >= self.first_sure)

    def apply_first(self, first: FloatArray) -> FloatArray:
        """The first model's probabilities as the answer, at its own temperature."""
        return apply_temperature(first, self.first_temperature)


def combine(probs: Sequence[FloatArray], weights: Sequence[float]) -> FloatArray:
    """Weighted average of probability matrices with the same columns."""
    if len(probs) == 1:
        return probs[0]
    total = np.zeros_like(probs[0])
    for p, w in zip(probs, weights, strict=True):
        total += w * p
    return total / max(sum(weights), _EPS)


def apply_temperature(probs: FloatArray, temperature: float) -> FloatArray:
    """Rescale probabilities as ``p ** (1 / T)`` renormalised (softmax of log p / T)."""
    if temperature == 1.0:
        return probs
    logits = np.log(np.clip(probs, _EPS, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    out = np.exp(logits)
    out /= out.sum(axis=1, keepdims=True)
    return out


def fit_temperature(probs: FloatArray, gold: IntArray) -> float:
    """The temperature minimising negative log-likelihood of ``gold`` (class indices).

    Rows whose gold class is -1 (unknown to the models) are ignored.
    """
    mask = gold >= 0
    if not mask.any():
        return 1.0
    logp = np.log(np.clip(probs[mask], _EPS, 1.0))
    idx = gold[mask]

    def nll(log_t: float) -> float:
        z = logp / np.exp(log_t)
        z -= z.max(axis=1, keepdims=True)
        lse = np.log(np.exp(z).sum(axis=1))
        return float(np.mean(lse - z[np.arange(len(idx)), idx]))

    from scipy.optimize import minimize_scalar  # training only; keeps inference scipy-free

    res = minimize_scalar(nll, bounds=(-4.0, 4.0), method="bounded")
    return float(np.exp(res.x))


MAX_RIGHT_REJECTED = 0.02
"""Without out-of-scope examples: the most held-out right answers a threshold may reject."""
MAX_RIGHT_REJECTED_WITH_OOS = 0.005
"""With out-of-scope examples: the same, for the in-scope right answers."""


def choose_threshold(
    probs: FloatArray,
    gold: IntArray,
    *,
    oos_index: int | None = None,
    reject_weight: float = 0.5,
    oos_weight: float = 0.3,
    smoothing: float | None = None,
    max_right_rejected: float | None = None,
    unseen_weight: float = 0.0,
) -> float:
    """The fallback threshold that maximises a utility on held-out predictions.

    An in-scope message scores 1 when accepted and right, ``reject_weight`` when a
    wrong answer is rejected (a fallback beats a wrong action, but an answer beats a
    fallback), 0 otherwise. When the data has out-of-scope examples (``oos_index``),
    the utility is in-scope accuracy plus ``oos_weight`` times out-of-scope recall.

    Acceptance is a sigmoid of ``(confidence - t) / smoothing`` rather than a step:
    held-out sets hold few out-of-scope examples (15 in CLINC150's), and a step
    utility over so few points jumps between far-apart thresholds. The weights were
    chosen on the validation splits (docs/nlu.md); ``smoothing`` defaults to 0.1 with
    out-of-scope examples and 0.05 without.

    Without out-of-scope examples, ``unseen_weight`` > 0 lets the bot's own intents
    stand in for out-of-scope messages: a fifth of the intents at a time is taken as
    unknown (their columns dropped, the rest renormalised, five draws), and the
    utility adds ``unseen_weight`` times the share of those intents' messages that
    the threshold rejects. A model sure of its intents otherwise gets a threshold near
    0: CLINC150's 150 intents without their ``oos`` examples rejected none of the
    validation split's out-of-scope messages; at 0.03, 59 % of them, for 0.8 points of
    in-scope accuracy. Off by default: on data sets without out-of-scope messages it
    only costs accuracy (BANKING77 -1.1, SNIPS -0.4 points; docs/nlu.md, round 5).

    The threshold is capped so that it rejects at most ``max_right_rejected`` of the
    held-out in-scope predictions that were right: by default 2 % without out-of-scope
    examples and 0.5 % with them. Without them, data where many messages cannot be told
    apart without the conversation (SGD: "Yes, that is correct." under 20 intents)
    otherwise gets a threshold that sends a quarter of all messages to the fallback:
    right by the utility, but a bot then answers "sorry?" to every confirmation, and
    intent accuracy drops 4.7 points (docs/nlu.md). With them, the utility's choice
    rests on a handful of held-out out-of-scope messages (15 in CLINC150's), and a
    model that separates them poorly pays for recall in right answers: the `fast`
    pipeline's CLINC150 threshold cost 2.3 points of in-scope accuracy for 77 %
    recall; capped, 0.5 points for 59 % (docs/nlu.md, round 8). The threshold is 0
    when no held-out prediction was right (one example per intent: every held-out
    message's intent was missing from its fold's training part), since there is then
    no evidence that any confidence is too low.
    """
    conf = probs.max(axis=1)
    pred = probs.argmax(axis=1)
    correct = pred == gold
    is_oos = gold == oos_index if oos_index is not None else np.zeros(len(gold), dtype=bool)
    inscope = ~is_oos
    n_in = max(int(inscope.sum()), 1)
    n_oos = int(is_oos.sum())
    predicted_oos = pred == oos_index if oos_index is not None else np.zeros(len(gold), bool)
    width = smoothing if smoothing is not None else (0.1 if n_oos else 0.05)
    unseen = [] if n_oos or not unseen_weight else _unseen_intent_confidences(probs, gold)
    best_t, best_u = 0.0, -np.inf
    for t in np.linspace(0.0, 1.0, 201):
        accept = 1.0 / (1.0 + np.exp(-(conf - t) / width))
        if n_oos:
            u = (
                float((correct * accept)[inscope].sum()) / n_in
                + oos_weight * float(np.maximum(predicted_oos, 1.0 - accept)[is_oos].sum()) / n_oos
            )
        else:
            u = (
                float((correct * accept).sum())
                + reject_weight * float(((~correct) * (1.0 - accept)).sum())
            ) / len(gold)
            for c in unseen:
                rejected = 1.0 - 1.0 / (1.0 + np.exp(-(c - t) / width))
                u += unseen_weight * float(rejected.mean()) / len(unseen)
        if u > best_u + 1e-12:
            best_t, best_u = float(t), u
    if not n_oos and not correct.any():
        return 0.0
    right_conf = np.sort(conf[correct & inscope])
    if len(right_conf):
        share = max_right_rejected
        if share is None:
            share = MAX_RIGHT_REJECTED_WITH_OOS if n_oos else MAX_RIGHT_REJECTED
        cap = float(right_conf[min(int(share * len(right_conf)), len(right_conf) - 1)])
        best_t = min(best_t, cap)
    return best_t


FIRST_SURE_CANDIDATES = (0.9, 0.95, 0.98, 0.99, 0.995, 0.999)
MAX_DECISIONS_SPOILED = 0.001
"""The most held-out decisions (intent, or fallback) that answering from the first model
alone may turn from right to wrong, as a share."""


def choose_first_sure(
    probs: Sequence[FloatArray],
    gold: IntArray,
    calibration: Calibration,
    *,
    oos_index: int | None = None,
) -> tuple[float | None, float]:
    """When the first intent model may answer alone, and at which temperature.

    A cut of :data:`FIRST_SURE_CANDIDATES` passes when answering from the first model
    alone (where its top probability reaches the cut) turns at most
    :data:`MAX_DECISIONS_SPOILED` of the held-out decisions the combination makes —
    the intent, or the fallback under ``calibration.threshold`` — from right to wrong,
    and leaves at least as many right. The answer is the second-lowest cut that
    passes (the only one, if one does; ``None`` if none does): a held-out split of a
    few hundred messages can miss a change, and on ATIS the lowest passing cut (0.98,
    672 held-out messages, none changed) changed one of 500 validation intents, the
    next one (0.99) none. The temperature is fitted to the first model alone. On
    BANKING77, SNIPS and ATIS the TF-IDF model is that sure of 55–95 % of messages,
    which then skip the dense model (docs/nlu-accurate.md).
    """
    if len(probs) < 2:
        return None, 1.0  # one model: it always answers alone
    first = probs[0]
    first_t = fit_temperature(first, gold)
    decided = _decisions(calibration.apply(probs), calibration.threshold)
    was_right = _right_mask(decided, gold, oos_index)
    alone = _decisions(apply_temperature(first, first_t), calibration.threshold)
    top = first.max(axis=1)
    passing = []
    for sure in FIRST_SURE_CANDIDATES:
        now_right = _right_mask(np.where(top >= sure, alone, decided), gold, oos_index)
        spoiled = float((was_right & ~now_right).mean())
        if spoiled <= MAX_DECISIONS_SPOILED and now_right.sum() >= was_right.sum():
            passing.append(sure)
    if not passing:
        return None, first_t
    return passing[min(1, len(passing) - 1)], first_t


def _decisions(probs: FloatArray, threshold: float) -> IntArray:
    """The top class per row, or -1 where it is below the fallback threshold."""
    top = probs.argmax(axis=1)
    return np.where(probs.max(axis=1) >= threshold, top, -1).astype(np.int64)


def _right_mask(decided: IntArray, gold: IntArray, oos_index: int | None) -> npt.NDArray[np.bool_]:
    """Which decisions are right; an out-of-scope message is right when rejected too."""
    ok = np.asarray(decided == gold)
    if oos_index is not None:
        ok |= (gold == oos_index) & (decided == -1)
    return ok


_UNSEEN_SHARE = 0.2  # of the intents, taken as unknown in each draw
_UNSEEN_DRAWS = 5


def _unseen_intent_confidences(probs: FloatArray, gold: IntArray) -> list[FloatArray]:
    """Per draw, the top confidence of messages whose intent the model is made not to know.

    A draw drops a random fifth of the intents present in ``gold`` (at least one, and
    at least two are kept) from the probabilities and renormalises the rest; the
    messages of the dropped intents are then what out-of-scope messages look like to
    the model: close to what it knows, which makes the estimate a cautious one.
    """
    present = np.unique(gold)
    k = max(1, round(_UNSEEN_SHARE * len(present)))
    if len(present) - k < 2:
        return []
    rng = np.random.default_rng(0)
    out: list[FloatArray] = []
    for _ in range(_UNSEEN_DRAWS):
        dropped = rng.choice(present, k, replace=False)
        rows = np.isin(gold, dropped)
        kept = probs[rows].copy()
        kept[:, dropped] = 0.0
        total = kept.sum(axis=1)
        out.append(np.divide(kept.max(axis=1), total, out=np.zeros_like(total), where=total > 0))
    return out


def choose_weights(
    probs: Sequence[FloatArray],
    gold: IntArray,
    grid: Sequence[float] = tuple(np.linspace(0, 1, 11)),
) -> tuple[float, ...]:
    """Weights for two models chosen by held-out log-likelihood (one model: ``(1.0,)``)."""
    if len(probs) == 1:
        return (1.0,)
    if len(probs) != 2:
        return tuple(1.0 for _ in probs)
    mask = gold >= 0
    best: tuple[float, ...] = (0.5, 0.5)
    best_score = -np.inf
    for w in grid:
        mixed = combine(probs, (1.0 - w, w))[mask]
        t = fit_temperature(mixed, gold[mask])
        cal = apply_temperature(mixed, t)
        acc = float((cal.argmax(axis=1) == gold[mask]).mean())
        ll = float(np.mean(np.log(np.clip(cal[np.arange(mask.sum()), gold[mask]], _EPS, 1))))
        score = acc + 0.01 * ll  # accuracy first; likelihood breaks ties
        if score > best_score:
            best, best_score = (1.0 - float(w), float(w)), score
    return best


def expected_calibration_error(
    confidence: FloatArray, correct: npt.NDArray[np.bool_], bins: int = 10
) -> float:
    """ECE: the mean gap between confidence and accuracy over equal-width bins,
    weighted by how many predictions fall into each bin.
    """
    if len(confidence) == 0:
        return 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    # bin i holds (edges[i], edges[i+1]]; a confidence of exactly 0 goes to bin 0
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            ece += sel.mean() * abs(float(confidence[sel].mean()) - float(correct[sel].mean()))
    return float(ece)
