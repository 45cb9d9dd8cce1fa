"""NLU benchmark: train on each data set's train split, evaluate on validation.

    python bench/nlu.py                                   # everything
    python bench/nlu.py --datasets snips,atis --pipelines fast,baseline --json out.json

Data sets come from ``$INTENTBRIDGE_DATA`` (default ``../shared/data`` next to the
repository). Each (data set, pipeline) runs in its own subprocess so that peak RSS
is that run's alone. Pipelines: ``fast``, ``accurate`` (skipped with a note when the
``embeddings`` extra is missing) and ``baseline`` (plain TF-IDF word n-grams + LinearSVC,
intents only). The table is printed and written to ``bench/results/nlu.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: A folder to keep each trained model in (``<data set>-<pipeline>``), when set.
KEEP_ENV = "INTENTBRIDGE_BENCH_KEEP"
DATASETS = ["banking77", "clinc150", "snips", "atis", "sgd"]
PIPELINES = ["fast", "accurate", "baseline"]
RESULTS = ROOT / "bench" / "results" / "nlu.md"


def data_root() -> Path:
    return Path(os.environ.get("INTENTBRIDGE_DATA", ROOT.parent / "shared" / "data"))


# --- the worker: one data set, one pipeline, in this process -----------------------


class Baseline:
    """Plain TF-IDF (word 1-2 grams) + LinearSVC: the number to beat."""

    def __init__(self) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.pipeline import make_pipeline
        from sklearn.svm import LinearSVC

        self.clf = make_pipeline(
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), LinearSVC()
        )
        self.info: dict[str, Any] = {"entity_labels": []}

    def fit(self, texts: list[str], labels: list[str]) -> Baseline:
        self.clf.fit(texts, labels)
        return self

    def parse(self, text: str) -> Any:
        return self.parse_batch([text])[0]

    def parse_batch(self, texts: Sequence[str]) -> list[Any]:
        from intentbridge.types import IntentScore, Interpretation

        labels = self.clf.predict(list(texts))
        return [
            Interpretation(
                text=t, intent=str(y), confidence=1.0, ranking=(IntentScore(str(y), 1.0),)
            )
            for t, y in zip(texts, labels, strict=True)
        ]

    def save(self, directory: Path) -> None:
        import joblib

        directory.mkdir(parents=True, exist_ok=True)
        joblib.dump(self.clf, directory / "baseline.joblib")


def run_worker(dataset: str, pipeline: str) -> dict[str, Any]:
    from intentbridge.errors import MissingExtraError
    from intentbridge.understanding.data import load_training_data
    from intentbridge.understanding.evaluation import evaluate, measure_latency
    from intentbridge.understanding.model import NluModel

    base = data_root() / dataset
    train = load_training_data(base / "train.jsonl")
    valid = load_training_data(base / "validation.jsonl")
    start = time.perf_counter()
    cpu_start = _cpu_seconds()
    model: Any
    try:
        if pipeline == "baseline":
            model = Baseline().fit(
                [e.text for e in train.examples], [e.intent for e in train.examples]
            )
        else:
            model = NluModel.train(train, pipeline=pipeline)
    except MissingExtraError as exc:
        return {"dataset": dataset, "pipeline": pipeline, "skipped": str(exc)}
    train_seconds = time.perf_counter() - start
    train_cpu_seconds = _cpu_seconds() - cpu_start
    keep = os.environ.get(KEEP_ENV)
    if keep and pipeline != "baseline":  # for evaluating the same models again later
        model.save(Path(keep) / f"{dataset}-{pipeline}")
    with tempfile.TemporaryDirectory() as tmp:
        model.save(Path(tmp) / "model")
        size = sum(f.stat().st_size for f in (Path(tmp) / "model").rglob("*") if f.is_file())
        ready_seconds = _ready_seconds(Path(tmp) / "model") if pipeline != "baseline" else 0.0
        if pipeline != "baseline":
            load_start = time.perf_counter()
            model = NluModel.load(Path(tmp) / "model")
            load_seconds = time.perf_counter() - load_start
        else:
            load_seconds = 0.0
    metrics = evaluate(model, valid.examples)
    # other jobs share the 2 cores: keep the quietest of three latency passes
    texts = [ex.text for ex in valid.examples]
    metrics["latency_ms"] = min(
        [metrics["latency_ms"], *(measure_latency(model, texts) for _ in range(2))],
        key=lambda lat: lat["p50"],
    )
    metrics.pop("per_intent", None)
    metrics.pop("confusions", None)
    return {
        "dataset": dataset,
        "pipeline": pipeline,
        "train_seconds": train_seconds,
        "train_cpu_seconds": train_cpu_seconds,
        "load_seconds": load_seconds,
        "ready_seconds": ready_seconds,
        "load_average": os.getloadavg()[0],
        "model_bytes": size,
        # ru_maxrss is KiB on Linux
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        **metrics,
    }


_READY = """
import sys, time
t = time.perf_counter()
from intentbridge.understanding.model import NluModel
NluModel.load(sys.argv[1]).parse("hello there")
print(time.perf_counter() - t)
"""


def _ready_seconds(model_dir: Path) -> float:
    """A fresh process: import, load the model, parse one message (the bot's start-up)."""
    proc = subprocess.run(
        [sys.executable, "-c", _READY, str(model_dir)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    return float(proc.stdout.strip().splitlines()[-1])


def _cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (the CRF's process).

    On a machine shared with other jobs, wall time measures the neighbours as much as
    the code; CPU time is close to what an idle machine's wall time would be (for the
    parallel part, the longer of the two processes bounds the wall time).
    """
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


# --- the driver --------------------------------------------------------------------


def run_isolated(dataset: str, pipeline: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", dataset, pipeline],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    if proc.returncode != 0:
        return {
            "dataset": dataset,
            "pipeline": pipeline,
            "error": proc.stderr.strip().splitlines()[-1:],
        }
    return json.loads(proc.stdout.strip().splitlines()[-1])


def fmt_pct(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    return "–" if value is None else f"{100 * value:.1f}"


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| data set | pipeline | intent acc | macro F1 | entity F1 | frame acc | in-scope acc "
        "| OOS recall | train s | train CPU s | load s | ready s | parse p50 ms | parse p95 ms "
        "| model MB | peak RSS MB | load avg |"
    )
    lines = [head, "|" + " --- |" * 17]
    for r in rows:
        if "skipped" in r or "error" in r:
            note = r.get("skipped") or f"error: {r.get('error')}"
            lines.append(f"| {r['dataset']} | {r['pipeline']} | {note} |" + " |" * 14)
            continue
        has_entities = r.get("entity_recall", 0) > 0 or r["pipeline"] != "baseline"
        lines.append(
            f"| {r['dataset']} | {r['pipeline']} | {fmt_pct(r, 'intent_accuracy')} "
            f"| {fmt_pct(r, 'intent_macro_f1')} "
            f"| {fmt_pct(r, 'entity_f1') if has_entities and r['entity_f1'] else '–'} "
            f"| {fmt_pct(r, 'frame_accuracy')} | {fmt_pct(r, 'in_scope_accuracy')} "
            f"| {fmt_pct(r, 'oos_recall')} | {r['train_seconds']:.1f} "
            f"| {r.get('train_cpu_seconds', 0):.1f} | {r.get('load_seconds', 0):.2f} "
            f"| {r.get('ready_seconds', 0):.2f} "
            f"| {r['latency_ms']['p50']:.2f} | {r['latency_ms']['p95']:.2f} "
            f"| {r['model_bytes'] / 1e6:.1f} | {r['peak_rss_mb']:.0f} "
            f"| {r.get('load_average', 0):.1f} |"
        )
    return "\n".join(lines)


#: issue #4's limits per pipeline: parse p50 ms, training s, load s (None: no limit)
LIMITS: dict[str, tuple[float, float, float | None]] = {
    "fast": (1.0, 60.0, 1.0),
    "accurate": (10.0, 600.0, None),
}


def limit_breaches(rows: list[dict[str, Any]]) -> list[str]:
    """One line per run that broke a limit of issue #4 (parse, training, load time)."""
    out = []
    for r in rows:
        limits = LIMITS.get(r["pipeline"])
        if limits is None or "latency_ms" not in r:
            continue
        parse, train, load = limits
        name = f"{r['dataset']} / {r['pipeline']}"
        if r["latency_ms"]["p50"] > parse:
            out.append(f"{name}: parse p50 {r['latency_ms']['p50']:.2f} ms > {parse:g} ms")
        if r["train_seconds"] > train:
            out.append(f"{name}: training {r['train_seconds']:.0f} s > {train:g} s")
        if load is not None and r.get("load_seconds", 0) > load:
            out.append(f"{name}: load {r['load_seconds']:.2f} s > {load:g} s")
    return out


#: issue #4's accuracy targets (test splits; here read against validation), in %:
#: metric -> floor, per data set, for ``accurate``; ``fast`` must be within 2.5 points
#: of the intent metric (in-scope accuracy where the data has ``oos``)
TARGETS: dict[str, dict[str, float]] = {
    "banking77": {"intent_accuracy": 94.0},
    "clinc150": {"in_scope_accuracy": 96.0, "oos_recall": 75.0},
    "snips": {"intent_accuracy": 98.5, "entity_f1": 96.0, "frame_accuracy": 93.0},
    "atis": {"intent_accuracy": 97.5, "entity_f1": 96.0, "frame_accuracy": 89.0},
}
FAST_MARGIN = 2.5


def target_misses(rows: list[dict[str, Any]]) -> tuple[int, list[str]]:
    """How many of issue #4's targets the rows were checked against, and the missed ones."""
    checked, missed = 0, []
    for r in rows:
        targets = TARGETS.get(r["dataset"])
        if targets is None or r["pipeline"] not in LIMITS:
            continue
        if r["pipeline"] == "fast":
            intent = next(iter(targets))
            targets = {intent: targets[intent] - FAST_MARGIN}
        for metric, floor in targets.items():
            value = r.get(metric)
            checked += 1
            if value is None or 100 * value < floor:
                got = "none" if value is None else f"{100 * value:.1f}"
                missed.append(f"{r['dataset']} / {r['pipeline']}: {metric} {got} < {floor:g}")
    return checked, missed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--pipelines", default=",".join(PIPELINES))
    parser.add_argument("--json", type=Path, help="also write all results as JSON here")
    parser.add_argument(
        "--worker", nargs=2, metavar=("DATASET", "PIPELINE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(run_worker(*args.worker)))
        return 0
    rows = []
    for dataset in args.datasets.split(","):
        if not (data_root() / dataset / "train.jsonl").is_file():
            print(
                f"skipping {dataset}: no {data_root() / dataset / 'train.jsonl'}", file=sys.stderr
            )
            continue
        for pipeline in args.pipelines.split(","):
            print(f"running {dataset} / {pipeline} …", file=sys.stderr, flush=True)
            rows.append(run_isolated(dataset, pipeline))
            print(table(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    text = table(rows)
    breaches = limit_breaches(rows)
    limits = "\n\nLimits of issue #4 (parse p50, training and load time): " + (
        "all met." if not breaches else "**not met**:\n\n" + "\n".join(f"- {b}" for b in breaches)
    )
    text += limits
    checked, missed = target_misses(rows)
    if checked:
        text += (
            "\n\nAccuracy targets of issue #4 (on validation here): "
            f"{checked - len(missed)} of {checked} met"
            + ("." if not missed else "; **not met**:\n\n" + "\n".join(f"- {m}" for m in missed))
        )
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        "# NLU benchmark (train → validation)\n\n"
        f"`python bench/nlu.py --datasets {args.datasets} --pipelines {args.pipelines}`, "
        f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs. Accuracy and F1 in %; "
        "in-scope accuracy and OOS recall only for data with `oos`. Entity F1 is exact "
        "span + label, micro. `train CPU s`: CPU seconds of the training process and the "
        "CRF's process together. `load s`: `NluModel.load` in the benchmark process; "
        "`ready s`: a fresh process importing intentbridge, loading the model and parsing "
        "one message (the bot's start-up). Parse latency: the quietest (lowest p50) of "
        "three passes over up to 500 validation messages. `load avg`: the 1-minute load "
        "average when the run ended (2 cores: above 2, other jobs were competing and "
        "times are pessimistic).\n\n" + text + "\n",
        encoding="utf-8",
    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
