"""bot.yaml errors name the file, the line and the field, and say how to fix it."""

from __future__ import annotations

from pathlib import Path

import pytest

from intentbridge.errors import ConfigError
from intentbridge.project import load_project, parse_config

GOOD = """\
backends:
  bank:
    base_url: ${BANK_URL:-http://127.0.0.1:8001}
    auth:
      type: oauth2_client_credentials
      token_url: /oauth/token
      client_id: bot
      client_secret: ${BANK_SECRET}
operations:
  balance:
    intent: check_balance
    backend: bank
    path: /customers/{customer}/accounts
    parameters:
      customer: {source: user, field: user_id}
"""
ENV = {"BANK_SECRET": "s3cr3t-value"}


def error_for(text: str, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "bot.yaml", ENV if env is None else env)
    return info.value


def test_valid_project_substitutes_environment_and_defaults() -> None:
    config = parse_config(GOOD, "bot.yaml", ENV)
    bank = config.backends["bank"]
    assert bank.base_url == "http://127.0.0.1:8001"
    assert bank.auth.type == "oauth2_client_credentials"
    assert bank.auth.client_secret == "s3cr3t-value"


def test_unknown_field_names_line_and_field() -> None:
    err = error_for(GOOD.replace("    intent: check_balance", "    intnet: check_balance"))
    assert (err.path, err.line, err.field) == ("bot.yaml", 11, "operations.balance.intnet")
    assert "unknown field" in str(err)
    assert "bot.yaml:11" in str(err)


def test_missing_required_field_points_at_its_parent() -> None:
    err = error_for(GOOD.replace("      client_id: bot\n", ""))
    assert err.field == "backends.bank.auth.client_id"
    assert err.line == 5
    assert "required" in str(err)


def test_unknown_backend_reference() -> None:
    err = error_for(GOOD.replace("    backend: bank", "    backend: bnak"))
    assert err.field == "operations.balance.backend"
    assert err.line == 12
    assert "bnak" in str(err) and "bank" in str(err)


def test_unset_environment_variable_is_named_with_a_fix() -> None:
    err = error_for(GOOD, env={})
    assert err.field == "backends.bank.auth.client_secret"
    assert err.line == 8
    assert "BANK_SECRET" in str(err) and "export" in str(err)


def test_invalid_yaml_gives_the_line() -> None:
    err = error_for("operations:\n  x: [1, 2\n")
    assert err.line is not None and err.line >= 2
    assert "YAML" in str(err)


def test_undeclared_placeholder_in_path() -> None:
    err = error_for(GOOD.replace("{customer}/accounts", "{cust}/accounts"))
    assert "cust" in str(err)
    assert err.field == "operations.balance"


def test_absolute_url_as_operation_path_is_refused() -> None:
    err = error_for(GOOD.replace("path: /customers", "path: https://evil.example/customers"))
    assert err.field == "operations.balance.path"


def test_unknown_auth_type_does_not_echo_secrets() -> None:
    err = error_for(GOOD.replace("oauth2_client_credentials", "oauth3"))
    assert "oauth3" in str(err)
    assert "s3cr3t-value" not in str(err)


def test_wrong_type_names_the_field() -> None:
    err = error_for(
        GOOD.replace(
            "    base_url: ${BANK_URL:-http://127.0.0.1:8001}",
            "    base_url: http://127.0.0.1:8001\n    timeout: soon",
        )
    )
    assert err.field == "backends.bank.timeout"
    assert err.line == 4


def test_duplicate_key_is_an_error() -> None:
    err = error_for(GOOD + "backends: {}\n")
    assert "duplicate" in str(err)


def test_missing_project_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="intentbridge init"):
        load_project(tmp_path)


def test_the_banking_example_loads() -> None:
    project = load_project(Path(__file__).parents[2] / "examples" / "banking")
    assert {"check_balance", "transfer_money", "pay_payee"} <= set(project.config.operations)


def test_non_utf8_file_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "bot.yaml").write_bytes(GOOD.replace("bot\n", "caf\xe9\n").encode("latin-1"))
    with pytest.raises(ConfigError, match="UTF-8") as info:
        load_project(tmp_path, env=ENV)
    assert info.value.line == 7


def test_a_directory_named_bot_yaml_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "bot.yaml").mkdir()
    with pytest.raises(ConfigError, match="cannot read"):
        load_project(tmp_path)


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "bot.yaml").write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    assert "balance" in load_project(tmp_path, env=ENV).config.operations


def test_alias_bomb_is_refused_quickly() -> None:
    """Billion laughs: nine aliases nine deep would expand to 387 million values."""
    rows = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        rows.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]")
    err = error_for("\n".join(rows) + "\n")
    assert "aliases" in str(err)


def test_self_referencing_alias_is_an_error() -> None:
    err = error_for("a: &a\n  b: *a\n")
    assert (err.line, err.field) == (1, "a.b")
    assert "alias" in str(err)


def test_plain_aliases_still_work() -> None:
    config = parse_config(
        GOOD.replace("client_id: bot", "client_id: &c bot") + "name: *c\n", "b", ENV
    )
    assert config.name == "bot"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("d: &d {timeout: 5}\nbackends:\n  b:\n    <<: *d\n", "merge keys"),
        ("name: !env NAME\n", "unsupported YAML tag '!env'"),
        ("operations:\n  ? [a, b]\n  : {}\n", "a key must be plain text"),
        ("x: " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
    ],
)
def test_unusual_yaml_is_a_config_error(text: str, expected: str) -> None:
    assert expected in str(error_for(text))


@pytest.mark.parametrize(
    ("line", "value"),
    [
        ("    base_url: ${BANK_URL:-http://127.0.0.1:8001}", "    base_url: ${BANK_SECRET}"),
        ("    backend: bank", "    backend: ${BANK_SECRET}"),
        ("    path: /customers/{customer}/accounts", "    path: x${BANK_SECRET}"),
        ("      type: oauth2_client_credentials", "      type: ${BANK_SECRET}"),
    ],
)
def test_errors_never_echo_environment_values(line: str, value: str) -> None:
    err = error_for(GOOD.replace(line, value))
    assert "s3cr3t-value" not in str(err)
    assert "***" in str(err)
