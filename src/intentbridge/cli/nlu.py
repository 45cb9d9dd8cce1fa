"""``intentbridge nlu``: train, evaluate, convert and try NLU models.

>>> intentbridge nlu train data/ --out models/nlu
>>> intentbridge nlu eval --model models/nlu data/validation.jsonl --json
>>> intentbridge nlu parse --model models/nlu "move 50 euros to savings"
>>> intentbridge nlu convert data/nlu.yml data/nlu.jsonl
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import time
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from intentbridge.errors import IntentbridgeError, TrainingDataError
from intentbridge.types import Interpretation, Money

app = typer.Typer(
    name="nlu",
    help="Train, evaluate, convert and try NLU models.",
    no_args_is_help=True,
    add_completion=False,
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

DataArg = Annotated[
    list[Path], typer.Argument(help="training data files or folders (.jsonl, .yml)")
]
ModelOpt = Annotated[Path, typer.Option("--model", help="model folder written by `nlu train`")]


def _fail(problem: IntentbridgeError | str) -> typer.Exit:
    # the message quotes user data ("[text](entity)", file names): never Rich markup
    err.print(Text("error:", style="red"), Text(str(problem)), highlight=False)
    return typer.Exit(1)


def os_reason(exc: BaseException) -> str:
    """What went wrong with a file, without Python's "[Errno 2]" and repeated path."""
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def _cannot_write(path: Path, exc: OSError | UnicodeError) -> typer.Exit:
    return _fail(f"cannot write {path}: {os_reason(exc)}")


def _no_examples(data: Sequence[Path]) -> TrainingDataError:
    return TrainingDataError(
        "no training examples",
        path=", ".join(str(d) for d in data),
        hint="each non-blank line of a .jsonl file, and each item under `examples:` "
        "in Rasa YAML, is one example",
    )


@app.command()
def train(
    data: DataArg,
    out_dir: Annotated[Path, typer.Option("--out", help="folder to write the model to")],
    pipeline: Annotated[str, typer.Option(help="pipeline: fast or accurate")] = "fast",
    seed: Annotated[int, typer.Option(help="random seed for held-out splits", min=0)] = 0,
    unseen_weight: Annotated[
        float,
        typer.Option(
            help="for data without `oos` examples: how much rejecting messages of intents "
            "held out as unknown counts when the fallback threshold is chosen (0 = off; "
            "0.03 rejects more out-of-scope messages for a little accuracy, see docs/nlu.md)",
            min=0.0,
            max=1.0,
        ),
    ] = 0.0,
) -> None:
    """Train a model on DATA and save it to --out."""
    from intentbridge.understanding.data import load_training_data
    from intentbridge.understanding.model import NluModel
    from intentbridge.understanding.model_files import check_save_target

    started = time.perf_counter()
    try:
        check_save_target(out_dir)  # before training, not after it
        training = load_training_data(data)
        if not training.examples:
            raise _no_examples(data)
        with Progress(
            TextColumn("{task.description:<10}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as bar:
            tasks = {name: bar.add_task(name, total=1.0) for name in ("intent", "entities")}

            def progress(stage: str, fraction: float) -> None:
                if stage in tasks:
                    bar.update(tasks[stage], completed=fraction)

            model = NluModel.train(
                training,
                pipeline=pipeline,
                progress=progress,
                seed=seed,
                unseen_weight=unseen_weight,
            )
        model.save(out_dir)
    except IntentbridgeError as exc:
        raise _fail(exc) from exc
    except OSError as exc:
        raise _cannot_write(out_dir, exc) from exc
    took = time.perf_counter() - started
    n_entities = len({label.partition("#")[0] for label in model.info.get("entity_labels", [])})
    sure = model.calibration.first_sure
    alone = (
        f"; the {model.kinds[0]} model alone at {sure:g} and above"
        if sure is not None and len(model.kinds) > 1
        else ""
    )
    out.print(
        f"Trained [bold]{escape(pipeline)}[/bold] on {len(training.examples)} examples "
        f"({len(model.classes)} intents, {n_entities} entity types, fallback below "
        f"{model.calibration.threshold:.2f}{escape(alone)}) in {took:.1f}s → "
        f"{escape(str(out_dir))}",
        highlight=False,
    )
    for cut in model.info.get("shortened_by_time_budget", []):
        epochs = f" ({cut['epochs_done']:.1f} epochs)" if "epochs_done" in cut else ""
        err.print(
            f"[yellow]warning:[/yellow] the time budget ended the {escape(cut['part'])}'s "
            f"training after {cut['steps']} of {cut['planned_steps']} steps"
            f"{epochs}: the machine was slow or busy, and the "
            "model is less accurate than a full schedule makes it; train again on an "
            "idle machine",
            highlight=False,
        )


@app.command("eval")
def eval_(
    data: DataArg,
    model_dir: ModelOpt,
    as_json: Annotated[
        bool, typer.Option("--json", help="print one JSON object, nothing else")
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="folder for confusion.png, confusions.md, summary.md"),
    ] = None,
) -> None:
    """Evaluate a model on annotated DATA."""
    from intentbridge.understanding.data import load_training_data
    from intentbridge.understanding.evaluation import evaluate_detailed
    from intentbridge.understanding.model import NluModel

    if report is not None and report.exists() and not report.is_dir():
        raise _fail(f"{report} exists and is not a folder; --report needs a folder")
    try:
        model = NluModel.load(model_dir)
        examples = load_training_data(data).examples
        if not examples:
            raise _no_examples(data)
    except IntentbridgeError as exc:
        raise _fail(exc) from exc
    result = evaluate_detailed(model, examples)
    if report is not None:
        from intentbridge.understanding.report import write_report

        try:
            write_report(result, report, title=f"{model_dir} on {', '.join(str(d) for d in data)}")
        except IntentbridgeError as exc:  # matplotlib missing: the 'report' extra
            raise _fail(exc) from exc
        except OSError as exc:
            raise _cannot_write(report, exc) from exc
    metrics = result.metrics
    if as_json:
        # stdout carries exactly one JSON document, so scripts can pipe it
        typer.echo(json.dumps(metrics, sort_keys=True))
        return
    out.print(_summary_line(metrics), markup=False, highlight=False)
    if report is not None:
        out.print(f"Report written to {report}", markup=False, highlight=False)


def _summary_line(m: dict[str, Any]) -> str:
    parts = [
        f"n={m['n']}",
        f"intent acc {m['intent_accuracy']:.2%}",
        f"macro F1 {m['intent_macro_f1']:.2%}",
        f"entity F1 {m['entity_f1']:.2%}",
        f"frame acc {m['frame_accuracy']:.2%}",
    ]
    if "oos_recall" in m:
        in_scope = m["in_scope_accuracy"]  # None when every gold example is oos
        shown = "n/a" if in_scope is None else f"{in_scope:.2%}"
        parts.append(f"in-scope {shown}, OOS recall {m['oos_recall']:.2%}")
    parts.append(f"ECE {m['expected_calibration_error']:.3f}")
    parts.append(f"parse p50 {m['latency_ms']['p50']:.2f} ms")
    return " · ".join(parts)


@app.command()
def convert(
    source: Annotated[Path, typer.Argument(help="input file (.yml/.yaml or .jsonl)")],
    target: Annotated[Path, typer.Argument(help="output file; format from its extension")],
) -> None:
    """Convert training data between Rasa YAML and JSONL."""
    from intentbridge.understanding.data import load_training_data, save_training_data
    from intentbridge.understanding.rasa import jsonl_loss_note

    if target.is_dir():
        raise _fail(f"{target} is a folder; give the file to write, e.g. {target / 'nlu.yml'}")
    try:
        data = load_training_data([source])
        save_training_data(data, target)
    except IntentbridgeError as exc:
        raise _fail(exc) from exc
    except (OSError, UnicodeError) as exc:
        raise _cannot_write(target, exc) from exc
    out.print(f"Wrote {len(data.examples)} examples to {target}", markup=False, highlight=False)
    note = jsonl_loss_note(data) if target.suffix.lower() in (".jsonl", ".json") else None
    if note is not None:  # it quotes names from the data: never Rich markup
        err.print(Text("note:", style="yellow"), Text(note), highlight=False)


@app.command()
def parse(
    text: Annotated[str, typer.Argument(help="the message to interpret")],
    model_dir: ModelOpt,
) -> None:
    """Interpret TEXT and print the interpretation as JSON.

    Bytes of TEXT that are not UTF-8 are read as U+FFFD (see ``NluModel.parse``).
    """
    from intentbridge.understanding.model import NluModel

    try:
        model = NluModel.load(model_dir)
    except IntentbridgeError as exc:
        raise _fail(exc) from exc
    typer.echo(json.dumps(interpretation_to_json(model.parse(text)), ensure_ascii=False, indent=2))


def interpretation_to_json(interp: Interpretation) -> dict[str, Any]:
    """A JSON-ready dict of an interpretation (money, dates and decimals as strings)."""
    return {
        "text": interp.text,
        "intent": interp.intent,
        "confidence": round(interp.confidence, 4),
        "entities": [
            {
                **dataclasses.asdict(e),
                "value": _json_value(e.value),
                "confidence": round(e.confidence, 4),
            }
            for e in interp.entities
        ],
        "ranking": [{"name": r.name, "confidence": round(r.confidence, 4)} for r in interp.ranking],
    }


def _json_value(value: Any) -> Any:
    if isinstance(value, Money):
        return {"amount": str(value.amount), "currency": value.currency}
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        try:
            str(value)
        except ValueError:
            # past Python's int-to-text limit (4,300 digits); Decimal has none, and a
            # string keeps every digit where a JSON reader would round the number
            return str(Decimal(value))
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no inf or nan
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    return value
