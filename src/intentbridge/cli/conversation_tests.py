"""``intentbridge test``: run a project's YAML conversation tests and report."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape

from intentbridge.project import load_project
from intentbridge.testing.conversations import load_tests, run_test


async def run_conversation_tests(
    project_dir: Path, *, name_filter: str | None = None, console: Console | None = None
) -> int:
    """Run the tests; print one line each and the failures; return how many failed."""
    console = console or Console()
    project = load_project(project_dir)
    tests = [(p, t) for p, t in load_tests(project) if not name_filter or name_filter in t.name]
    if not tests:
        console.print(f"no conversation tests in {project.root / 'tests'}")
        return 0
    failed = 0
    for path, test in tests:
        outcome = await run_test(project, path, test)
        mark = "[green]PASS[/green]" if outcome.passed else "[red]FAIL[/red]"
        console.print(f"{mark} {escape(test.name)}  ({outcome.seconds:.2f}s)")
        for f in outcome.failures:
            console.print(f"     step {f.step} ({escape(f.said)!r}): {escape(f.problem)}")
        failed += not outcome.passed
    passed = len(tests) - failed
    console.print(f"{passed} passed, {failed} failed")
    return failed
