"""Training an :class:`~intentbridge.understanding.model.NluModel` (scikit-learn, scipy).

Kept apart from :mod:`.model` so that loading a model and parsing messages import
neither: the bot reaches "ready" in well under a second.

- Intent models are fitted on all data; weights, temperature and the fallback
  threshold on out-of-fold predictions (k folds on small data, one held-out split on
  large data), never on examples a model was trained on.
- On data with ≥ 2,000 examples the CRF trains in a second process while this one fits
  the intent models (CRFsuite holds the GIL; two cores make it ~2x faster).
- The ``accurate`` pipeline also fine-tunes a transformer token tagger
  (:mod:`.dense_tagger`) inside what is left of a 10-minute budget — on such data in a
  third process from the start — and mixes its probabilities with the CRF's marginals.
"""

from __future__ import annotations

import concurrent.futures
import concurrent.futures.process
import datetime as dt
import multiprocessing
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from intentbridge.errors import ModelError
from intentbridge.types import OUT_OF_SCOPE_INTENT
from intentbridge.understanding.calibration import (
    Calibration,
    FloatArray,
    IntArray,
    choose_first_sure,
    choose_threshold,
    choose_weights,
    fit_temperature,
)
from intentbridge.understanding.data import TrainingData
from intentbridge.understanding.entities import EntityRecognizer
from intentbridge.understanding.extractors.base import RuleExtractors
from intentbridge.understanding.model import ConstantIntent, Progress, column_map
from intentbridge.understanding.pipeline import (
    dense_tagger_class,
    get_pipeline,
    intent_model_class,
    make_intent_model,
)
from intentbridge.understanding.tagger import CrfTagger, bio_labels
from intentbridge.understanding.tokenizer import tokenize

if TYPE_CHECKING:
    from intentbridge.understanding.model import NluModel

_SMALL_DATA = 3000  # below this, out-of-fold predictions from k folds; above, one split
_HOLDOUT_FRACTION = 0.15
_PARALLEL_MIN_EXAMPLES = 2000  # below this, a second process costs more than it saves
# The accurate pipeline's whole training (intent + entities) should end within this;
# the transformer tagger gets what the intent models left, but at least the minimum.
_TOTAL_BUDGET_S = 570.0
_MIN_TAGGER_BUDGET_S = 60.0
# The CRF (L-BFGS) may take this share of the time left: half when the tagger trains
# after it in the same process, nearly all when the tagger trains beside it in another.
# SGD's 34k examples took 323 s for 100 iterations on a normal day and ~700 s on a
# machine 2.2x slower, leaving the tagger its minimum and the training at 722 s when
# the two ran in turn.
_CRF_SHARE = 0.5
_CRF_SHARE_BESIDE_TAGGER = 0.9
# Up to this size the tagger trains in a process of its own from the start (SNIPS:
# 13k examples, 553 -> 519 s and all 8 epochs instead of 6.9). Above it, every part
# is bound by the budget and three processes only split two cores three ways: SGD's
# 34k examples left the dense intent model 50 s of training after 178 s caching its
# lower layers' states (0.3 epochs; intent accuracy 65.7 instead of 66.3).
_TAGGER_BESIDE_MAX_EXAMPLES = 20_000


def train_model(
    model_cls: type[NluModel],
    data: TrainingData,
    pipeline: str = "fast",
    progress: Progress | None = None,
    *,
    seed: int = 0,
    today: Callable[[], dt.date] | None = None,
    fuzzy_threshold: float = 85.0,
    intent_params: dict[str, dict[str, Any]] | None = None,
    crf_params: dict[str, Any] | None = None,
    tagger_params: dict[str, Any] | None = None,
    unseen_weight: float = 0.0,
) -> NluModel:
    """What :meth:`NluModel.train <intentbridge.understanding.model.NluModel.train>` does."""
    _refuse_in_a_child_importing_main()
    started = time.perf_counter()
    spec = get_pipeline(pipeline)
    report = progress or (lambda stage, frac: None)
    if not data.examples:
        raise ModelError("no training examples")
    texts = [ex.text for ex in data.examples]
    labels = [ex.intent for ex in data.examples]
    classes = sorted(set(labels))
    params = {
        k: {**spec.params.get(k, {}), **(intent_params or {}).get(k, {})}
        for k in spec.intent_models
    }

    known_words = {t.text.lower() for text in texts for t in tokenize(text)}
    rules_config: dict[str, Any] = {
        "lookup_tables": data.lookup_tables,
        "synonyms": data.all_synonyms(),
        "regexes": data.regexes,
        "fuzzy_threshold": fuzzy_threshold,
        "known_words": known_words,
    }
    rules = RuleExtractors(today=today, **rules_config)
    # Small bot data: L-BFGS, 100 iterations (converges in a second or two). Large data:
    # passive-aggressive epochs reach L-BFGS's entity F1 (SNIPS 94.6 vs 94.3, ATIS 94.9
    # vs 95.0 on validation, 20 epochs) in a third of its time (docs/nlu.md).
    defaults: dict[str, Any] = (
        {"algorithm": "lbfgs", "max_iterations": 100}
        if len(data.examples) < _PARALLEL_MIN_EXAMPLES
        else {"algorithm": "pa", "max_iterations": pa_epochs(len(data.examples))}
    )
    job = (
        _TaggerJob.plan(spec.params.get("dense_tagger", {}), tagger_params, started, seed)
        if spec.entity_tagger == "crf+dense" and data.has_entities
        else None
    )
    if job is not None:
        # L-BFGS: its marginals are probabilities; passive-aggressive weights give
        # nearly flat ones, useless for mixing with the transformer tagger's
        defaults = {"algorithm": "lbfgs", "max_iterations": 100}
    crf_params = {**defaults, **(crf_params or {})}
    # The CRF holds the GIL for its whole training run; on large data it trains in
    # a second process while this one fits the intent models (2 cores, ~2x faster).
    # The transformer tagger, when the pipeline has one, trains in a third from the
    # start (none of the three needs another's result), or on the largest data after
    # the CRF in the second.
    parallel = data.has_entities and len(data.examples) >= _PARALLEL_MIN_EXAMPLES
    beside = parallel and job is not None and len(data.examples) <= _TAGGER_BESIDE_MAX_EXAMPLES
    if beside and job is not None:
        # three processes on two cores: one torch thread each, or a parallel region
        # waits for a thread the other processes keep off the CPU
        job = replace(job, params={**job.params, "num_threads": 1})
        params = _one_thread(params, _heavy(spec.intent_models))
    remote = (
        _start_entity_training(data, rules_config, crf_params, job, beside=beside)
        if parallel
        else None
    )

    report("intent", 0.0)
    try:
        calibration, models = _fit_intents(
            spec.intent_models,
            params,
            texts,
            labels,
            classes,
            seed=seed,
            report=report,
            unseen_weight=unseen_weight,
            second_core_free=remote is None,
        )
    except BaseException:
        # a failed or interrupted intent fit: the entity children would otherwise
        # train on for minutes, and the interpreter waits for them at exit
        if remote is not None:
            remote.stop()
        raise
    report("intent", 1.0)

    report("entities", 0.0)
    entities, neural = _finish_entity_training(remote, rules) if remote else (None, None)
    if entities is None:
        entities = EntityRecognizer.train(
            data,
            rules=rules,
            crf_params=crf_params,
            progress=lambda done, total: report("entities", done / max(total, 1)),
            crf_time_budget_s=job.crf_budget() if job is not None else None,
        )
    if job is not None and entities.tagger is not None:
        entities.set_neural(neural if neural is not None else job.train(data), job.crf_weight)
    report("entities", 1.0)
    parts = [(f"intent model '{k}'", m) for k, m in zip(spec.intent_models, models, strict=True)]
    parts.append(("CRF entity tagger", entities.tagger))
    parts.append(("entity tagger", entities.neural))
    info = {
        "shortened_by_time_budget": _shortened(parts),
        "training_seconds": round(time.perf_counter() - started, 3),
        "n_examples": len(data.examples),
        "entity_labels": sorted({sp.label for ex in data.examples for sp in ex.entities}),
        "fuzzy_threshold": fuzzy_threshold,
        "unseen_weight": unseen_weight,
        "seed": seed,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    model = model_cls(
        pipeline=pipeline,
        kinds=spec.intent_models,
        intent_models=models,
        classes=classes,
        calibration=calibration,
        entities=entities,
        info=info,
    )
    report("done", 1.0)
    return model


def _heavy(kinds: Sequence[str]) -> list[str]:
    """The intent model kinds whose fits are worth a process of their own (torch)."""
    return [k for k in kinds if getattr(intent_model_class(k), "fits_in_a_process", False)]


def _one_thread(
    params: Mapping[str, dict[str, Any]], kinds: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """``params`` with one torch thread for ``kinds``: for fits sharing two cores."""
    return {k: {**v, "num_threads": 1} if k in kinds else v for k, v in params.items()}


def _fit_intents(
    kinds: Sequence[str],
    params: dict[str, dict[str, Any]],
    texts: list[str],
    labels: list[str],
    classes: list[str],
    *,
    seed: int,
    report: Progress,
    unseen_weight: float,
    second_core_free: bool,
) -> tuple[Calibration, list[Any]]:
    """The intent models fitted on all data, and their calibration from held-out fits.

    ``second_core_free``: no entity training holds the other core, so heavy models'
    held-out fits may take it.
    """
    if len(classes) < 2:
        # one intent: nothing to classify; every message it knows a word of gets it
        calibration = Calibration(weights=tuple(1.0 for _ in kinds))
        return calibration, [ConstantIntent(classes[0]).fit(texts, labels) for _ in kinds]

    def fit_final() -> list[Any]:
        return [make_intent_model(k, params[k]).fit(texts, labels) for k in kinds]

    # The final fit does not depend on the held-out one. Where every model's fit runs
    # outside the GIL (liblinear does), both run at once: on two cores the fast
    # pipeline trained CLINC150 in 17 s instead of 30 s. Below _SMALL_DATA the fits
    # take under a second each; no thread is worth it.
    large = len(texts) >= _SMALL_DATA
    threaded = large and all(
        getattr(intent_model_class(k), "fits_in_threads", False) for k in kinds
    )
    # Heavy models' held-out fits go to a second process when no entity training holds
    # the other core: BANKING77's accurate training took 320 s on one core.
    heavy = _heavy(kinds)
    held_out = None
    if heavy and second_core_free and large:
        one_thread = _one_thread(params, heavy)  # two fits at once on two cores
        [split] = _folds(labels, seed)  # one held-out split on data this large
        held_out = _HeldOut.start(_HeldOutJob(heavy, one_thread, texts, labels, classes, split))
        if held_out is not None:
            params = one_thread
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        final = pool.submit(fit_final) if threaded else None
        # with a child at work, the final fits come first (held-out ones are in it)
        early = fit_final() if held_out is not None else None
        calibration = _fit_calibration(
            kinds,
            params,
            texts,
            labels,
            classes=classes,
            seed=seed,
            report=report,
            unseen_weight=unseen_weight,
            held_out=held_out,
        )
        models = final.result() if final is not None else early or fit_final()
    return calibration, models


def _refuse_in_a_child_importing_main() -> None:
    """Refuse to train inside one of training's own child processes that is importing
    the caller's script.

    The children are spawned: each imports the script that started training again. A
    script that trains at its top level, not under ``if __name__ == "__main__":``,
    would train once more in every child (where a child of its own cannot start, all
    in turn), doubling the work and its output. Raised there, the error ends the
    child; the parent then does that child's part itself, and the message says what
    to change.
    """
    # multiprocessing's own flag for "this process is still importing the main module"
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise ModelError(
            "NluModel.train() was called while a training child process imported your "
            "script again (child processes are spawned, and they import the main "
            'script): put the training under `if __name__ == "__main__":`'
        )


def _shortened(parts: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    """The parts whose training a time budget ended early, with how far they got.

    Their schedules were cut to fit the training time (a slow or busy machine): the
    model works, but is less accurate than a full schedule would make it.
    """
    cut = []
    for name, part in parts:
        fit = getattr(part, "fit_info", None) or {}
        if fit.get("shortened_by_time_budget"):
            planned = fit.get("planned_steps") or 0
            record = {
                "part": name,
                "steps": int(fit.get("steps", 0)),
                "planned_steps": int(planned),
            }
            if "epochs_done" in fit:  # a CRF's L-BFGS iterations are no epochs
                record["epochs_done"] = float(fit["epochs_done"])
            cut.append(record)
    return cut


DEFAULT_CRF_WEIGHT = 0.5
"""The CRF's share when its marginals are mixed with the transformer tagger's."""


#: Passive-aggressive CRF training visits at most this many sequences (epochs × data)
PA_SEQUENCE_VISITS = 300_000


def pa_epochs(n_examples: int) -> int:
    """Passive-aggressive epochs for ``n_examples``: 20, fewer on large data (at least 5).

    An epoch costs tokens × labels² (Viterbi per sequence); SGD's 34k examples and
    ~200 labels made 20 epochs take 47–80 s, the longest part of ``fast`` training. On
    SGD validation 8 epochs scored entity F1 62.8 / frame 52.9 against 20 epochs'
    62.5 / 52.8, in 40 % of the time (docs/nlu.md, round 4).
    """
    return max(5, min(20, PA_SEQUENCE_VISITS // max(n_examples, 1)))


def train_dense_tagger(data: TrainingData, params: dict[str, Any], *, seed: int = 0) -> Any:
    """Fine-tune a :class:`~.dense_tagger.DenseTokenTagger` on ``data``'s BIO labels."""
    tagger_cls = dense_tagger_class()
    texts = [ex.text for ex in data.examples]
    tokens = [tokenize(t) for t in texts]
    labels = [
        bio_labels(toks, [(sp.start, sp.end, sp.label) for sp in ex.entities])
        for toks, ex in zip(tokens, data.examples, strict=True)
    ]
    intents = [ex.intent for ex in data.examples]
    return tagger_cls(**{"seed": seed, **params}).fit(texts, tokens, labels, intents)


def _fit_calibration(
    kinds: Sequence[str],
    params: dict[str, dict[str, Any]],
    texts: list[str],
    labels: list[str],
    *,
    classes: list[str],
    seed: int,
    report: Progress,
    unseen_weight: float = 0.0,
    held_out: _HeldOut | None = None,
) -> Calibration:
    """Weights, temperature and threshold from out-of-fold predictions.

    ``held_out``: fits running in a second process (one held-out split); their kinds
    are not fitted here, and their predictions are waited for at the end.
    """
    folds = _folds(labels, seed)
    index = {c: i for i, c in enumerate(classes)}
    gold_all = np.array([index[y] for y in labels], dtype=np.int64)
    probs_per_kind: list[FloatArray] = [np.zeros((len(texts), len(classes))) for _ in kinds]
    covered = np.zeros(len(texts), dtype=bool)
    elsewhere = set(held_out.kinds) if held_out is not None else set()
    steps = len(folds) * (len(kinds) - len(elsewhere))
    done = 0
    for held in folds:
        train_mask = np.ones(len(texts), dtype=bool)
        train_mask[held] = False
        tr_labels = [labels[i] for i in np.flatnonzero(train_mask)]
        if len(set(tr_labels)) < 2:
            continue
        tr_texts = [texts[i] for i in np.flatnonzero(train_mask)]
        held_texts = [texts[i] for i in held]
        for k, kind in enumerate(kinds):
            if kind in elsewhere:
                continue
            probs_per_kind[k][held] = _held_out_probabilities(
                kind, params[kind], (tr_texts, tr_labels), held_texts, classes
            )
            done += 1
            report("intent", 0.5 * done / steps)
        # a held-out message whose intent had no example left in this fold's training
        # part cannot be right; counted, it would read as a wrong answer and pull the
        # threshold up (one example per intent: every message, threshold 1.0)
        known = set(tr_labels)
        covered[[i for i in held if labels[i] in known]] = True
    if held_out is not None:
        for kind, kind_probs in held_out.result().items():
            probs_per_kind[kinds.index(kind)][held_out.job.held] = kind_probs
    if not covered.any():
        return Calibration(weights=tuple(1.0 for _ in kinds))
    sel = np.flatnonzero(covered)
    probs = [p[sel] for p in probs_per_kind]
    gold: IntArray = gold_all[sel]
    weights = choose_weights(probs, gold)
    mixed = Calibration(weights=weights).apply(probs)
    temperature = fit_temperature(mixed, gold)
    calibrated = Calibration(weights=weights, temperature=temperature).apply(probs)
    oos = index.get(OUT_OF_SCOPE_INTENT)
    threshold = choose_threshold(calibrated, gold, oos_index=oos, unseen_weight=unseen_weight)
    calibration = Calibration(weights=weights, temperature=temperature, threshold=threshold)
    sure, first_t = choose_first_sure(probs, gold, calibration, oos_index=oos)
    return replace(calibration, first_sure=sure, first_temperature=first_t)


@dataclass(frozen=True)
class _HeldOutJob:
    """Heavy intent models fitted on the training part of the one held-out split."""

    kinds: list[str]
    params: dict[str, dict[str, Any]]
    texts: list[str]
    labels: list[str]
    classes: list[str]
    held: list[int]  # the held-out split's indices

    def run(self) -> dict[str, FloatArray]:
        """Per kind, its probabilities for the held-out part, in ``classes`` order."""
        train_idx = sorted(set(range(len(self.texts))) - set(self.held))
        train = ([self.texts[i] for i in train_idx], [self.labels[i] for i in train_idx])
        held_texts = [self.texts[i] for i in self.held]
        return {
            kind: _held_out_probabilities(kind, self.params[kind], train, held_texts, self.classes)
            for kind in self.kinds
        }


def _held_out_probabilities(
    kind: str,
    params: dict[str, Any],
    train: tuple[list[str], list[str]],
    held_texts: list[str],
    classes: list[str],
) -> FloatArray:
    """A ``kind`` model fitted on ``train``: its probabilities for ``held_texts``, in
    ``classes`` order (0 for a class the training part lacked)."""
    model = make_intent_model(kind, params).fit(*train)
    probs = np.zeros((len(held_texts), len(classes)))
    probs[:, column_map(model.classes_, classes)] = model.predict_proba(held_texts)
    return probs


def _run_held_out(job: _HeldOutJob) -> dict[str, FloatArray]:
    return job.run()  # the child process's entry point (a function pickles by name)


@dataclass
class _HeldOut:
    """A :class:`_HeldOutJob` running in a second process."""

    job: _HeldOutJob
    pool: concurrent.futures.ProcessPoolExecutor
    future: concurrent.futures.Future[dict[str, FloatArray]]

    @property
    def kinds(self) -> list[str]:
        return self.job.kinds

    @classmethod
    def start(cls, job: _HeldOutJob) -> _HeldOut | None:
        """The job running in a second process; ``None`` when it must be fitted in turn."""
        child = _in_second_process(_run_held_out, job)
        return None if child is None else cls(job, *child)

    def result(self) -> dict[str, FloatArray]:
        """The child's predictions; computed here if the child could not run."""
        try:
            return self.future.result()
        except Exception:
            # the child died, or lacks a plug-in's kind: here it either works, or
            # raises the error that training should
            return self.job.run()
        finally:
            self.pool.shutdown()


def _folds(labels: list[str], seed: int) -> list[list[int]]:
    """Stratified held-out index sets: k folds on small data, one split on large."""
    rng = np.random.default_rng(seed)
    by_class: dict[str, list[int]] = {}
    for i, y in enumerate(labels):
        by_class.setdefault(y, []).append(i)
    if len(labels) >= _SMALL_DATA:
        held: list[int] = []
        for idx in by_class.values():
            perm = rng.permutation(idx)
            held.extend(int(i) for i in perm[: round(len(idx) * _HOLDOUT_FRACTION)])
        return [sorted(held)]
    k = 5
    folds: list[list[int]] = [[] for _ in range(k)]
    offset = 0
    for idx in by_class.values():
        perm = rng.permutation(idx)
        for j, i in enumerate(perm):
            folds[(offset + j) % k].append(int(i))
        offset += len(idx)  # rotate so small classes do not all land in fold 0
    return [sorted(f) for f in folds if f]


@dataclass(frozen=True, slots=True)
class _TaggerJob:
    """Training the accurate pipeline's transformer tagger: parameters and deadline."""

    params: dict[str, Any]  # DenseTokenTagger parameters
    crf_weight: float
    deadline: float  # time.time() by which the whole training should be done
    seed: int

    @classmethod
    def plan(
        cls,
        spec_params: Mapping[str, Any],
        overrides: Mapping[str, Any] | None,
        started: float,
        seed: int,
    ) -> _TaggerJob:
        params = {**spec_params, **(overrides or {})}
        crf_weight = float(params.pop("crf_weight", DEFAULT_CRF_WEIGHT))
        deadline = time.time() + _TOTAL_BUDGET_S - (time.perf_counter() - started)
        return cls(params, crf_weight, deadline, seed)

    def crf_budget(self, *, beside_tagger: bool = False) -> float:
        """Seconds the CRF may train: a share of the time left (see :data:`_CRF_SHARE`)."""
        share = _CRF_SHARE_BESIDE_TAGGER if beside_tagger else _CRF_SHARE
        return max(0.0, self.deadline - time.time()) * share

    def train(self, data: TrainingData) -> Any:
        """The tagger, trained in what is left of the budget (at least the minimum)."""
        left = self.deadline - time.time()
        cap = float(self.params.get("time_budget_s", left))
        budget = max(_MIN_TAGGER_BUDGET_S, min(cap, left))
        return train_dense_tagger(data, {**self.params, "time_budget_s": budget}, seed=self.seed)


def _train_entities_in_child(
    data: TrainingData,
    rules_config: dict[str, Any],
    crf_params: dict[str, Any] | None,
    job: _TaggerJob | None = None,
    tagger_dir: str | None = None,
) -> tuple[bytes | None, dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Child-process entry point: returns what the parent needs to rebuild the result
    (the CRF's model bytes, parameters and how its training went; the merge policy).

    With a tagger job and ``tagger_dir``, the transformer tagger is trained after the
    CRF and saved there (safetensors + JSON); with a job and no ``tagger_dir``, another
    child trains it meanwhile.
    """
    rules = RuleExtractors(**rules_config)
    budget = job.crf_budget(beside_tagger=tagger_dir is None) if job is not None else None
    recognizer = EntityRecognizer.train(
        data, rules=rules, crf_params=crf_params, crf_time_budget_s=budget
    )
    tagger = recognizer.tagger
    if tagger is None:
        return None, {}, recognizer.config(), {}
    if job is not None and tagger_dir is not None:
        job.train(data).save(Path(tagger_dir))
    return tagger.model_bytes, tagger.params(), recognizer.config(), tagger.fit_info


def _train_tagger_in_child(data: TrainingData, job: _TaggerJob, tagger_dir: str) -> None:
    """Child-process entry point: the transformer tagger, saved to ``tagger_dir``
    (safetensors + JSON) for the parent to load."""
    job.train(data).save(Path(tagger_dir))


_Child = tuple[concurrent.futures.ProcessPoolExecutor, "concurrent.futures.Future[Any]"]


def _in_second_process(fn: Callable[..., Any], *args: Any) -> _Child | None:
    """``fn(*args)`` started in a spawned process (``fn`` and ``args`` must pickle);
    ``None`` where no subprocess can be made (a sandbox, a frozen app)."""
    try:
        pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn")
        )
        return pool, pool.submit(fn, *args)
    except (OSError, RuntimeError):
        return None


def _stop(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    """Terminate ``pool``'s worker processes and let it go without waiting."""
    # no public way to end a running task before Python 3.14's terminate_workers()
    processes = getattr(pool, "_processes", None) or {}
    for process in list(processes.values()):
        process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)


@dataclass
class _EntityChildren:
    """The CRF training in one child process and, in the accurate pipeline, the
    transformer tagger in another: neither needs the other, nor the intent models."""

    crf: _Child
    tagger: _Child | None  # None: no tagger, or the CRF's child trains it after the CRF
    tagger_dir: str

    def crf_recognizer(self, rules: RuleExtractors) -> EntityRecognizer | None:
        """The CRF's recognizer; None when its child failed (train it here then)."""
        pool, future = self.crf
        try:
            model_bytes, tagger_params, config, fit_info = future.result()
            tagger = CrfTagger.from_bytes(model_bytes, **tagger_params) if model_bytes else None
            if tagger is not None:
                tagger.fit_info = fit_info
            return EntityRecognizer.from_config(rules, tagger, config)
        except (OSError, RuntimeError, concurrent.futures.process.BrokenProcessPool):
            return None
        finally:
            pool.shutdown()

    def neural_tagger(self) -> Any:
        """The transformer tagger (after :meth:`crf_recognizer`); None when there was
        none to train or its child failed (the caller trains it here then)."""
        if self.tagger is not None:
            pool, future = self.tagger
            try:
                future.result()
            except Exception:
                # the child died, or failed: trained here, the tagger either works
                # or raises the error that training should
                return None
            finally:
                pool.shutdown()
        if not (Path(self.tagger_dir) / "dense_tagger.json").is_file():
            return None
        try:
            return dense_tagger_class().load(Path(self.tagger_dir))
        except (OSError, ModelError):
            return None

    def close(self) -> None:
        """Wait for the children to end (they have, once their results are read)."""
        for child in (self.crf, self.tagger):
            if child is not None:
                child[0].shutdown(cancel_futures=True)
        shutil.rmtree(self.tagger_dir, ignore_errors=True)

    def stop(self) -> None:
        """End the children now, whatever they are doing."""
        for child in (self.crf, self.tagger):
            if child is not None:
                _stop(child[0])
        shutil.rmtree(self.tagger_dir, ignore_errors=True)


def _start_entity_training(
    data: TrainingData,
    rules_config: dict[str, Any],
    crf_params: dict[str, Any] | None,
    job: _TaggerJob | None,
    *,
    beside: bool,
) -> _EntityChildren | None:
    """The CRF training in a child; the tagger in another (``beside``) or after it."""
    tagger_dir = tempfile.mkdtemp(prefix="intentbridge-tagger-")
    crf = _in_second_process(
        _train_entities_in_child,
        data,
        rules_config,
        crf_params,
        job,
        None if beside else tagger_dir,
    )
    if crf is None:
        shutil.rmtree(tagger_dir, ignore_errors=True)
        return None  # train in-process
    tagger = (
        _in_second_process(_train_tagger_in_child, data, job, tagger_dir)
        if beside and job is not None
        else None
    )
    return _EntityChildren(crf, tagger, tagger_dir)


def _finish_entity_training(
    children: _EntityChildren, rules: RuleExtractors
) -> tuple[EntityRecognizer | None, Any]:
    """The children's CRF recognizer and transformer tagger (None for what failed)."""
    try:
        return children.crf_recognizer(rules), children.neural_tagger()
    finally:
        children.close()
