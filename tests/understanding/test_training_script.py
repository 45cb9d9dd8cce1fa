"""A script that trains at its top level, without ``if __name__ == "__main__":``.

Training's child processes are spawned and import the main script again; such a
script would train once more inside every child. Training refuses there, with a
message that says what to change, and the parent does the child's part itself.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent(
    """
    from intentbridge.understanding import NluModel, TrainingData
    from intentbridge.understanding import training
    from intentbridge.understanding.annotation import parse_annotated
    from intentbridge.understanding.data import TrainingExample

    training._PARALLEL_MIN_EXAMPLES = 10  # the CRF in a child, as on large data
    examples = []
    for i in range(30):
        for intent, annotated in (
            ("transfer", f"send [{i + 1}](amount) euros to [bob](person)"),
            ("balance", "what is in my [savings](account) account"),
        ):
            text, spans = parse_annotated(annotated)
            examples.append(TrainingExample(text=text, intent=intent, entities=spans))
    model = NluModel.train(TrainingData(examples=examples), "fast")
    print("TRAINED", model.parse("send 3 euros to bob").intent, flush=True)
    """
)


@pytest.mark.slow
def test_a_script_without_a_main_guard_trains_once_and_is_told_why(tmp_path: Path) -> None:
    script = tmp_path / "train_at_top_level.py"
    script.write_text(SCRIPT, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["TRAINED transfer"]
    assert 'if __name__ == "__main__":' in done.stderr
