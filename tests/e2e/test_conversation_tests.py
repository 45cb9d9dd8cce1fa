"""`intentbridge test` runs a project's YAML conversation tests, faults included."""

from __future__ import annotations

import shutil
from pathlib import Path

from bankclient import Bank
from typer.testing import CliRunner

from intentbridge.cli.main import app

EXAMPLE_TESTS = Path(__file__).resolve().parents[2] / "examples" / "banking" / "tests"


def test_the_banking_conversation_tests_pass(
    project_dir: Path, bank: Bank, monkeypatch: object
) -> None:
    import pytest

    mp = pytest.MonkeyPatch()
    mp.setenv("COREBANK_URL", bank.url)
    shutil.copytree(EXAMPLE_TESTS, project_dir / "tests", dirs_exist_ok=True)
    try:
        result = CliRunner().invoke(app, ["test", str(project_dir)])
    finally:
        mp.undo()
        shutil.rmtree(project_dir / "tests")
    assert result.exit_code == 0, result.output
    assert "5 passed, 0 failed" in result.output
    assert len(bank.transfers("alice")) == 2  # 10.00 and 5.00, each once


def test_a_failing_expectation_is_reported(project_dir: Path, bank: Bank) -> None:
    import pytest

    (project_dir / "tests").mkdir(exist_ok=True)
    (project_dir / "tests" / "t.yml").write_text(
        "tests:\n  - name: wrong balance\n    steps:\n      - user: what's my balance?\n"
        "        bot: '9,999.00 EUR'\n        calls:\n          - {method: POST}\n"
    )
    mp = pytest.MonkeyPatch()
    mp.setenv("COREBANK_URL", bank.url)
    try:
        result = CliRunner().invoke(app, ["test", str(project_dir)])
    finally:
        mp.undo()
        shutil.rmtree(project_dir / "tests")
    assert result.exit_code == 1
    assert "FAIL wrong balance" in result.output
    assert "does not contain '9,999.00 EUR'" in result.output
    assert "expected call" in result.output
