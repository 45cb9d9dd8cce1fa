"""`intentbridge nlu` commands through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from intentbridge.cli.nlu import app
from intentbridge.understanding.data import load_training_data

DATA = Path(__file__).parents[1] / "data" / "nlu"
runner = CliRunner()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "model"
    result = runner.invoke(app, ["train", str(DATA / "bank.yml"), "--out", str(out), "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert "Trained fast on" in result.stdout
    assert (out / "metadata.json").is_file()
    return out


def test_eval_json_prints_exactly_one_json_object(model_dir: Path) -> None:
    result = runner.invoke(
        app, ["eval", "--model", str(model_dir), str(DATA / "bank_test.jsonl"), "--json"]
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["n"] == len(load_training_data(DATA / "bank_test.jsonl").examples)
    assert metrics["intent_accuracy"] > 0.8
    assert {"entity_f1", "frame_accuracy", "latency_ms", "per_intent"} <= set(metrics)


def test_eval_human_summary_and_report(model_dir: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "eval",
            "--model",
            str(model_dir),
            str(DATA / "bank_test.jsonl"),
            "--report",
            str(tmp_path / "r"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "intent acc" in result.stdout
    assert {p.name for p in (tmp_path / "r").iterdir()} == {
        "summary.md",
        "confusions.md",
        "confusion.png",
    }


def test_parse_prints_the_interpretation(model_dir: Path) -> None:
    result = runner.invoke(app, ["parse", "--model", str(model_dir), "send 20 euros to savings"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["intent"] == "transfer_money"
    amount = next(e for e in doc["entities"] if e["entity"] == "amount")
    assert amount["value"] == {"amount": "20", "currency": "EUR"}


def test_convert_yaml_to_jsonl_and_back(tmp_path: Path) -> None:
    jsonl = tmp_path / "bank.jsonl"
    result = runner.invoke(app, ["convert", str(DATA / "bank.yml"), str(jsonl)])
    assert result.exit_code == 0, result.output
    # what JSONL cannot hold is said, not lost silently: rasa.jsonl_loss_note names it
    assert "1 lookup table: 'account' (5 values)" in result.stderr
    assert "4 synonyms" in result.stderr and "1 regex: 'iban'" in result.stderr
    yml = tmp_path / "again.yml"
    assert runner.invoke(app, ["convert", str(jsonl), str(yml)]).exit_code == 0
    assert load_training_data(yml).examples == load_training_data(DATA / "bank.yml").examples


def test_errors_are_one_clear_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "hi", "intent": "greet"}\n{"text": "oops"\n')
    result = runner.invoke(app, ["train", str(bad), "--out", str(tmp_path / "m")])
    assert result.exit_code == 1
    assert f"{bad}:2" in result.stderr
    result = runner.invoke(app, ["eval", "--model", str(tmp_path / "none"), str(bad)])
    assert result.exit_code == 1
    assert "not an NLU model" in result.stderr
