"""The fine-tuning loop of the transformer token tagger (:mod:`.dense_tagger`).

The lower layers' states are cached per training text (:class:`EncodedText`); each
step runs the trained top layers over a padded batch of them, reads the states at
each token's first word piece and trains them with a :class:`TokenHead`. The
:class:`Schedule` re-plans the number of steps from the measured speed so that
training ends inside its time budget.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from intentbridge.understanding.encoders import SentenceEncoder, cap_threads

__all__ = ["EncodedText", "Schedule", "TokenHead", "TokenTrainer"]


@dataclass(frozen=True, slots=True)
class EncodedText:
    """One training text: cached lower states, token positions and label ids."""

    states: Any  # torch.Tensor (pieces, dim)
    positions: list[int]  # the first word piece of each (kept) token
    label_ids: list[int]
    intent_id: int  # -1: no intent vector
    seen: Any = None  # torch.Tensor (kept tokens, seen tags): the gazetteer's multi-hot


@dataclass(slots=True)
class TokenHead:
    """What sits above the encoder: a linear layer and, optionally, intent vectors.

    With intent vectors, the vector of a token's intent (gold when training,
    predicted when parsing) is added to its state before the linear layer; with seen
    vectors, one vector per gazetteer feature of the token (:mod:`.gazetteer`).
    """

    linear: Any  # torch.nn.Linear(dim, labels)
    intent_vectors: Any = None  # torch.Tensor (intents, dim) or None
    seen_vectors: Any = None  # torch.Tensor (seen tags, dim) or None

    def states(self, hidden: Any, intent_ids: Any, seen: Any = None) -> Any:
        """``hidden`` (tokens, dim) plus each token's intent vector (none for id -1)
        and the sum of its seen vectors (``seen``: multi-hot, tokens x seen tags)."""
        if self.intent_vectors is not None:
            vectors = self.intent_vectors[intent_ids.clamp(min=0)]
            hidden = hidden + vectors * (intent_ids >= 0).unsqueeze(-1).to(hidden.dtype)
        if self.seen_vectors is not None and seen is not None:
            hidden = hidden + seen.to(hidden.dtype) @ self.seen_vectors
        return hidden

    def logits(self, hidden: Any, intent_ids: Any, seen: Any = None) -> Any:
        """Label logits per token."""
        return self.linear(self.states(hidden, intent_ids, seen))

    def parameters(self) -> list[Any]:
        """The trainable tensors."""
        params = list(self.linear.parameters())
        if self.intent_vectors is not None:
            params.append(self.intent_vectors)
        if self.seen_vectors is not None:
            params.append(self.seen_vectors)
        return params


class TokenTrainer:
    """The training loop: AdamW, warm-up then linear decay, length-bucketed batches."""

    def __init__(
        self,
        encoder: SentenceEncoder,
        head: TokenHead,
        data: list[EncodedText],
        *,
        first: int,
        params: dict[str, Any],
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.encoder = encoder
        self.head = head
        self.data = data
        self.first = first
        self.log = log
        self.torch = encoder._torch
        self.p = params
        self.rng = random.Random(int(self.p["seed"]))  # noqa: S311 - shuffling only

    def _optimizer(self) -> tuple[Any, list[Any]]:
        torch, p = self.torch, self.p
        model = self.encoder.model
        for param in model.parameters():
            param.requires_grad_(False)
        top = model.encoder.layer[self.first :]
        decay: list[Any] = []
        no_decay: list[Any] = []
        for name, param in top.named_parameters():
            param.requires_grad_(True)
            (no_decay if "LayerNorm" in name or name.endswith("bias") else decay).append(param)
        head = self.head.parameters()
        lr, head_lr = float(p["learning_rate"]), float(p["head_learning_rate"])
        optimizer = torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": float(p["weight_decay"]), "lr": lr},
                {"params": no_decay, "weight_decay": 0.0, "lr": lr},
                {"params": head, "weight_decay": 0.0, "lr": head_lr},
            ]
        )
        return optimizer, decay + no_decay + head

    def _batches(self) -> list[list[int]]:
        # Shuffle, then sort within chunks of 50 batches by length: less padding,
        # still random across the epoch.
        size = int(self.p["batch_size"])
        idx = list(range(len(self.data)))
        self.rng.shuffle(idx)
        batches: list[list[int]] = []
        for s in range(0, len(idx), size * 50):
            part = sorted(idx[s : s + size * 50], key=lambda i: int(self.data[i].states.shape[0]))
            batches.extend(part[b : b + size] for b in range(0, len(part), size))
        self.rng.shuffle(batches)
        return batches

    def _loss(self, batch: list[int], dropout: Any, loss_fn: Any) -> Any:
        torch, enc = self.torch, self.encoder
        items = [self.data[i] for i in batch]
        hidden = torch.nn.utils.rnn.pad_sequence([it.states for it in items], batch_first=True)
        mask = torch.zeros(hidden.shape[:2], dtype=torch.long)
        for row, it in enumerate(items):
            mask[row, : it.states.shape[0]] = 1
        hidden = enc.run_layers(hidden, mask, self.first, enc.num_layers)
        rows = [row for row, it in enumerate(items) for _ in it.positions]
        cols = [pos for it in items for pos in it.positions]
        gold = torch.tensor([y for it in items for y in it.label_ids], dtype=torch.long)
        intents = torch.tensor([it.intent_id for it in items for _ in it.positions])
        seen = torch.cat([it.seen for it in items]) if self.head.seen_vectors is not None else None
        states = self.head.states(hidden[rows, cols], intents, seen)
        return loss_fn(self.head.linear(dropout(states)), gold)

    def run(self, budget_s: float | None) -> dict[str, Any]:
        """Train; returns a summary (steps, seconds, last loss, whether time cut it)."""
        torch, p = self.torch, self.p
        cap_threads(p["num_threads"])
        optimizer, trainable = self._optimizer()
        per_epoch = math.ceil(len(self.data) / int(p["batch_size"]))
        schedule = Schedule(max(1, round(per_epoch * float(p["epochs"]))), budget_s, p)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule.factor)
        dropout = torch.nn.Dropout(float(p["dropout"]))
        loss_fn = torch.nn.CrossEntropyLoss()
        self.encoder.model.encoder.layer[self.first :].train()
        self.head.linear.train()
        last = float("nan")
        while not schedule.done():
            for batch in self._batches():
                if schedule.done():
                    break
                if not any(self.data[i].positions for i in batch):
                    continue
                loss = self._loss(batch, dropout, loss_fn)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(trainable, 1.0)
                optimizer.step()
                scheduler.step()
                last = float(loss.detach())
                schedule.tick()
                if self.log is not None and schedule.step % 50 == 0:
                    self.log(f"step {schedule.step}/{schedule.total} loss {last:.4f}")
        self.encoder.model.eval()
        self.head.linear.eval()
        for param in self.encoder.model.parameters():
            param.requires_grad_(False)
        return {
            "train_layers": int(p["train_layers"]),
            "steps": schedule.step,
            "planned_steps": schedule.planned,
            "epochs_done": round(schedule.step / per_epoch, 3),
            "train_seconds": round(schedule.elapsed(), 2),
            "loss": last,
            "shortened_by_time_budget": schedule.cut,
        }


class Schedule:
    """Steps to take, warm-up/decay factor, and re-planning from the measured speed."""

    def __init__(self, total: int, budget_s: float | None, p: dict[str, Any]) -> None:
        self.total = self.planned = total
        self.budget_s = budget_s
        self.warmup = max(1, round(total * float(p["warmup_fraction"])))
        self.step = 0
        self.cut = False
        self.started = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def done(self) -> bool:
        return self.step >= self.total

    def factor(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        return max(0.0, (self.total - step) / max(1, self.total - self.warmup))

    def tick(self) -> None:
        self.step += 1
        if self.budget_s is None:
            return
        elapsed = self.elapsed()
        # Re-plan from the measured speed, with 5% slack; never past the epochs asked.
        # Up as well as down: on a shared machine the first steps may be the slow ones.
        if self.step in (20, 100) or self.step % 200 == 0:
            fits = int(self.step * 0.95 * max(self.budget_s, 0.0) / elapsed)
            self.total = max(self.step + 1, min(self.planned, fits))
            self.cut = self.total < self.planned
        if elapsed > self.budget_s:
            self.total, self.cut = self.step, True
