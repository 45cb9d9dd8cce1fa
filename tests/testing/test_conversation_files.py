"""Conversation test files written wrong: errors name the file, line and field."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from intentbridge.errors import ConfigError
from intentbridge.project import load_project
from intentbridge.project.loader import MAX_VALUES, BotProject
from intentbridge.testing.conversations import load_tests


@pytest.fixture
def project(project_dir: Path, tmp_path: Path) -> BotProject:
    loaded = load_project(project_dir, env={"COREBANK_URL": "http://127.0.0.1:1"})
    (tmp_path / "tests").mkdir()
    return dataclasses.replace(loaded, root=tmp_path)


def write(project: BotProject, content: str | bytes) -> Path:
    path = project.root / "tests" / "t.yml"
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


GOOD = "tests:\n  - name: balance\n    steps:\n      - user: what's my balance?\n"


def test_a_good_file_loads(project: BotProject) -> None:
    write(project, GOOD + "        bot: {regex: '\\d+[.,]\\d\\d EUR'}\n")
    [(_, test)] = load_tests(project)
    assert test.name == "balance"


def test_a_regex_that_does_not_compile_is_refused_at_load(project: BotProject) -> None:
    """Not a traceback in the middle of the run, when the reply comes to be checked."""
    path = write(project, GOOD + "        bot: {regex: '(unclosed'}\n")
    with pytest.raises(ConfigError) as caught:
        load_tests(project)
    err = caught.value
    assert err.path == str(path) and err.line == 5
    assert "not a regular expression" in err.message
    assert err.field is not None and err.field.startswith("tests.0.steps.0.bot")


def test_an_unknown_field_names_its_line(project: BotProject) -> None:
    path = write(project, GOOD + "        replies: hello\n")
    with pytest.raises(ConfigError) as caught:
        load_tests(project)
    assert (caught.value.path, caught.value.line) == (str(path), 5)
    assert caught.value.field == "tests.0.steps.0.replies"
    assert caught.value.hint is not None


def test_a_file_that_is_not_utf8_names_the_line(project: BotProject) -> None:
    path = write(project, GOOD.encode() + b"        bot: 'caf\xe9'\n")
    with pytest.raises(ConfigError) as caught:
        load_tests(project)
    assert (caught.value.path, caught.value.line) == (str(path), 5)
    assert "UTF-8" in caught.value.message


def test_an_alias_bomb_is_refused(project: BotProject) -> None:
    """Nine levels of ten aliases would build a billion values."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    write(project, "\n".join(lines) + "\ntests: *a9\n")
    with pytest.raises(ConfigError) as caught:
        load_tests(project)
    assert f"more than {MAX_VALUES} values" in caught.value.message


def test_not_yaml_names_the_line(project: BotProject) -> None:
    path = write(project, GOOD + "      - user: [unclosed\n")
    with pytest.raises(ConfigError) as caught:
        load_tests(project)
    assert caught.value.path == str(path) and caught.value.line is not None
    assert "not valid YAML" in caught.value.message
