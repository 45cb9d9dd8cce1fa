"""Human-readable evaluation reports: ``summary.md``, ``confusions.md``, ``confusion.png``.

matplotlib comes with the ``report`` extra; it is imported only here, with the Agg
backend so no display is needed.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from intentbridge.errors import MissingExtraError
from intentbridge.understanding.evaluation import EvaluationResult

_TOP_N = 25  # intents shown in the confusion matrix when there are more
_EXAMPLES_PER_PAIR = 3


def write_report(
    result: EvaluationResult, directory: Path | str, *, title: str = "NLU evaluation"
) -> Path:
    """Write the three report files into ``directory`` (created if missing)."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    (root / "summary.md").write_text(summary_markdown(result.metrics, title), encoding="utf-8")
    (root / "confusions.md").write_text(confusions_markdown(result), encoding="utf-8")
    plot_confusion(result, root / "confusion.png")
    return root


def summary_markdown(m: dict[str, Any], title: str) -> str:
    """A short summary a person reads first: headline numbers, then weakest intents."""
    rows = [
        ("Examples", f"{m['n']}"),
        ("Intent accuracy", _pct(m["intent_accuracy"])),
        ("Intent macro F1", _pct(m["intent_macro_f1"])),
        (
            "Entity precision / recall / F1",
            " / ".join(_pct(m[k]) for k in ("entity_precision", "entity_recall", "entity_f1")),
        ),
        ("Frame accuracy (intent and all entities right)", _pct(m["frame_accuracy"])),
    ]
    if "oos_recall" in m:
        rows += [
            ("In-scope accuracy", _pct(m["in_scope_accuracy"])),
            (
                "Out-of-scope recall / precision",
                f"{_pct(m['oos_recall'])} / {_pct(m['oos_precision'])}",
            ),
        ]
    rows += [
        ("Expected calibration error", f"{m['expected_calibration_error']:.3f}"),
        (
            "Parse latency p50 / p95",
            f"{m['latency_ms']['p50']:.2f} / {m['latency_ms']['p95']:.2f} ms",
        ),
    ]
    lines = [f"# {title}", "", "| metric | value |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    weakest = sorted(m["per_intent"].items(), key=lambda kv: (kv[1]["f1"], kv[0]))[:10]
    lines += [
        "",
        "## Weakest intents",
        "",
        "| intent | precision | recall | F1 | support |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {name} | {_pct(v['precision'])} | {_pct(v['recall'])} | {_pct(v['f1'])} "
        f"| {v['support']} |"
        for name, v in weakest
    ]
    lines += [
        "",
        "See `confusions.md` for the most frequent mix-ups and `confusion.png` for the matrix.",
        "",
    ]
    return "\n".join(lines)


def confusions_markdown(result: EvaluationResult, limit: int = 30) -> str:
    """The most frequent (gold → predicted) mistakes with example messages."""
    pairs = Counter((g, p) for g, p in zip(result.gold, result.predicted, strict=True) if g != p)
    samples: dict[tuple[str, str], list[str]] = defaultdict(list)
    for ex, pred in zip(result.examples, result.predicted, strict=True):
        key = (ex.intent, pred)
        if ex.intent != pred and len(samples[key]) < _EXAMPLES_PER_PAIR:
            samples[key].append(ex.text)
    lines = [
        "# Most frequent intent confusions",
        "",
        "| gold | predicted | count | examples |",
        "| --- | --- | --- | --- |",
    ]
    for (gold, pred), count in pairs.most_common(limit):
        shown = "; ".join(_cell(t) for t in samples[(gold, pred)])
        lines.append(f"| {gold} | {pred} | {count} | {shown} |")
    if not pairs:
        lines.append("| – | – | 0 | no confusions |")
    return "\n".join(lines) + "\n"


def plot_confusion(result: EvaluationResult, path: Path) -> None:
    """A confusion matrix image of the intents involved in the most mistakes."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise MissingExtraError("evaluation reports", "report") from exc
    errors: Counter[str] = Counter()
    for g, p in zip(result.gold, result.predicted, strict=True):
        if g != p:
            errors[g] += 1
            errors[p] += 1
    labels = sorted(set(result.gold) | set(result.predicted))
    if len(labels) > _TOP_N:
        keep = {name for name, _ in errors.most_common(_TOP_N)}
        labels = sorted(keep) if keep else labels[:_TOP_N]
    index = {name: i for i, name in enumerate(labels)}
    n = len(labels)
    matrix = [[0] * n for _ in range(n)]
    for g, p in zip(result.gold, result.predicted, strict=True):
        if g in index and p in index:
            matrix[index[g]][index[p]] += 1
    size = max(4.0, 0.35 * n + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    try:
        if not labels:  # no examples: an empty matrix has no shape to draw
            ax.set_axis_off()
            ax.text(0.5, 0.5, "no examples", ha="center", va="center")
            fig.savefig(path, dpi=120)
            return
        ax.imshow(matrix, cmap="Blues")
        ax.set_xticks(range(n), labels, rotation=90, fontsize=7)
        ax.set_yticks(range(n), labels, fontsize=7)
        ax.set_xlabel("predicted")
        ax.set_ylabel("gold")
        subset = (
            " (intents with most errors)"
            if len(labels) < len(set(result.gold) | set(result.predicted))
            else ""
        )
        ax.set_title("Intent confusion" + subset)
        for i in range(n):
            for j in range(n):
                if matrix[i][j] and i != j:
                    ax.text(
                        j, i, str(matrix[i][j]), ha="center", va="center", fontsize=6, color="red"
                    )
        fig.tight_layout()
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:80]
