"""What users and damaged files throw at `intentbridge nlu` and NluModel: clear errors, no crashes.

Each test names the input; the answer is a one-line error (exit 1) or a sound result,
never a traceback or a crashed interpreter. Runs that might crash the interpreter
(CRFsuite on a damaged file) run in a subprocess.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from intentbridge.cli.nlu import app, interpretation_to_json
from intentbridge.errors import ModelError, TrainingDataError
from intentbridge.types import FALLBACK_INTENT, Entity, Interpretation
from intentbridge.understanding import NluModel, TrainingData, TrainingExample
from intentbridge.understanding.annotation import parse_annotated
from intentbridge.understanding.data import load_training_data
from intentbridge.understanding.jsonl import example_to_json

runner = CliRunner()
HOSTILE = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

BANK = [
    ("what is my [checking](account) balance", "check_balance"),
    ("how much is in [savings](account)", "check_balance"),
    ("show the balance of [checking](account)", "check_balance"),
    ("balance of my [savings](account) please", "check_balance"),
    ("move money to [savings](account)", "transfer_money"),
    ("transfer cash into [checking](account)", "transfer_money"),
    ("send money to [savings](account) now", "transfer_money"),
    ("put money in [checking](account)", "transfer_money"),
    ("hello there", "greet"),
    ("hi", "greet"),
    ("good morning", "greet"),
    ("hey bot", "greet"),
]
ONE_INTENT = [
    ("show my [savings](account) balance", "check_balance"),
    ("what is the balance of [checking](account)", "check_balance"),
    ("how much money is in [savings](account)", "check_balance"),
]


def write_jsonl(path: Path, rows: list[tuple[str, str]]) -> Path:
    lines = []
    for annotated, intent in rows:
        text, spans = parse_annotated(annotated)
        lines.append(json.dumps(example_to_json(TrainingExample(text, intent, spans))))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def cli(*args: str | bytes) -> subprocess.CompletedProcess[bytes]:
    """The real `intentbridge` command in a fresh interpreter (a crash is a return code)."""
    code = "from intentbridge.cli.main import main; main()"
    return subprocess.run(  # noqa: PLW1510 - the return code is what the tests check
        [sys.executable, "-c", code, *args], capture_output=True, timeout=120
    )


def fails_cleanly(result: Result, *needles: str) -> None:
    """Exit 1, the error on stderr naming ``needles``, and no traceback."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert result.stderr.startswith("error: "), result.stderr
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("data") / "bank.jsonl", BANK)


@pytest.fixture(scope="module")
def saved(data_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model with a CRF tagger, trained and saved by the CLI; copy it before changing it."""
    out = tmp_path_factory.mktemp("model") / "m"
    result = runner.invoke(app, ["train", str(data_file), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "tagger.crfsuite").is_file()
    return out


@pytest.fixture(scope="module")
def model(saved: Path) -> NluModel:
    return NluModel.load(saved)


@pytest.fixture
def copy(saved: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(saved, target)
    return target


def forget_checksum(model_dir: Path) -> None:
    """Make ``model_dir`` look saved before the CRF file's checksum was recorded."""
    meta_path = model_dir / "metadata.json"
    meta = json.loads(meta_path.read_text())
    del meta["tagger_file"]
    meta_path.write_text(json.dumps(meta))


# --- D1: a damaged CRF file is a ModelError, not a segfault ----------------------------


def test_truncated_crf_file_is_an_error_not_a_crash(copy: Path, data_file: Path) -> None:
    tagger = copy / "tagger.crfsuite"
    tagger.write_bytes(tagger.read_bytes()[:200])
    result = cli("nlu", "eval", "--model", str(copy), str(data_file), "--json")
    stderr = result.stderr.decode()
    assert result.returncode == 1, stderr
    assert str(tagger) in stderr and "retrain" in stderr
    assert "Traceback" not in stderr


def test_crf_file_cut_anywhere_is_refused_by_its_header(copy: Path) -> None:
    """Models saved before the checksum have only the CRFsuite header to go by."""
    forget_checksum(copy)
    script = f"""
import shutil
from pathlib import Path
from intentbridge.errors import ModelError
from intentbridge.understanding import NluModel
model = Path({str(copy)!r})
whole = (model / "tagger.crfsuite").read_bytes()
for size in [*range(0, 64), *range(64, len(whole), 97), len(whole) - 1]:
    (model / "tagger.crfsuite").write_bytes(whole[:size])
    try:
        NluModel.load(model).parse("move money to savings")
    except ModelError as exc:
        assert "tagger.crfsuite" in str(exc), exc
    else:
        raise SystemExit(f"a {{size}}-byte cut of {{len(whole)}} loaded")
print("all refused")
"""
    result = subprocess.run(  # noqa: PLW1510
        [sys.executable, "-c", script], capture_output=True, timeout=300
    )
    assert result.returncode == 0, (result.returncode, result.stderr.decode()[-2000:])
    assert b"all refused" in result.stdout


def test_crf_file_changed_inside_fails_its_checksum(copy: Path) -> None:
    tagger = copy / "tagger.crfsuite"
    data = bytearray(tagger.read_bytes())
    features = int.from_bytes(data[28:32], "little")  # the header's offset of the FEAT chunk
    data[features + 12 + 19] ^= 0x01  # a bit of the first feature's weight
    tagger.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"tagger\.crfsuite.*SHA-256"):
        NluModel.load(copy)


def test_model_saved_before_the_checksum_still_loads(copy: Path, model: NluModel) -> None:
    forget_checksum(copy)
    texts = ["move money to savings", "what is my checking balance"]
    assert NluModel.load(copy).parse_batch(texts) == model.parse_batch(texts)


# --- D3: lone surrogates ----------------------------------------------------------------

_WITH_SURROGATES = st.text(
    alphabet=st.characters(categories=["Cs", "Ll", "Zs", "Nd", "So"]), max_size=20
)


@HOSTILE
@given(text=_WITH_SURROGATES)
def test_lone_surrogates_are_replacement_characters(model: NluModel, text: str) -> None:
    """Parse cleans the text first: U+FFFD one for one, and the result holds the clean text."""
    cleaned = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)
    result = model.parse(text)
    assert result.text == cleaned
    assert all(cleaned[e.start : e.end] == e.text for e in result.entities)
    json.dumps(interpretation_to_json(result), ensure_ascii=False).encode("utf-8")
    assert model.parse_batch([text]) == [result]


def test_parse_argument_that_is_not_utf8(saved: Path) -> None:
    result = cli("nlu", "parse", "--model", str(saved), b"caf\xe9")
    assert result.returncode == 0, result.stderr.decode()
    assert json.loads(result.stdout)["text"] == "caf\ufffd"


@pytest.mark.parametrize(
    ("entity", "field"),
    [
        ('"entity": "account"', "text"),
        ('"entity": "acc\\udc80"', "entities[0].entity"),
    ],
)
def test_jsonl_refuses_lone_surrogates_naming_file_line_and_field(
    tmp_path: Path, entity: str, field: str
) -> None:
    text = "pay \\ud800 now" if field == "text" else "pay savings now"
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"text": "hi", "intent": "greet"}\n'
        f'{{"text": "{text}", "intent": "pay", "entities": '
        f'[{{"start": 0, "end": 3, {entity}}}]}}\n'
    )
    with pytest.raises(TrainingDataError, match="lone surrogate") as info:
        load_training_data(bad)
    assert (info.value.path, info.value.line, info.value.field) == (str(bad), 2, field)


# --- D4: messages and paths are printed as they are, not as Rich markup ------------------


@HOSTILE
@given(value=st.text(alphabet="[]/()abi =", min_size=1, max_size=12))
def test_error_messages_are_printed_verbatim(tmp_path: Path, value: str) -> None:
    bad = tmp_path / "bad.jsonl"
    line = {
        "text": "hello world",
        "intent": "greet",
        "entities": [{"start": 0, "end": 5, "entity": "x", "value": value}],
    }
    bad.write_text(json.dumps(line) + "\n")
    result = runner.invoke(app, ["convert", str(bad), str(tmp_path / "out.yml")])
    if value == "hello":
        return
    fails_cleanly(result, f"{bad}:1", repr(value))


def test_hints_keep_their_brackets(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("version: '3.1'\nnlu:\n- intent: greet\n  examples: |\n    - see [/b] here\n")
    result = runner.invoke(app, ["convert", str(bad), str(tmp_path / "out.jsonl")])
    fails_cleanly(result, "[/b]", "[text](entity)")


def test_success_lines_print_paths_verbatim(data_file: Path, tmp_path: Path) -> None:
    target = tmp_path / "out[v1].yml"
    result = runner.invoke(app, ["convert", str(data_file), str(target)])
    assert result.exit_code == 0, result.output
    assert f"to {target}" in result.stdout


# --- D5: what must be one-line errors ---------------------------------------------------


@pytest.mark.parametrize("where", ["a file", "under a file", "/proc"])
def test_unwritable_out_fails_before_training(data_file: Path, tmp_path: Path, where: str) -> None:
    a_file = tmp_path / "taken"
    a_file.write_text("keep me")
    out = {"a file": a_file, "under a file": a_file / "m", "/proc": Path("/proc/m")}[where]
    if where == "/proc" and not Path("/proc/self").exists():
        pytest.skip("no /proc here")
    result = runner.invoke(app, ["train", str(data_file), "--out", str(out)])
    fails_cleanly(result, str(out))
    assert "Trained" not in result.stdout
    assert a_file.read_text() == "keep me"


def test_convert_into_a_folder_is_an_error(data_file: Path, tmp_path: Path) -> None:
    folder = tmp_path / "out.yml"
    folder.mkdir()
    fails_cleanly(runner.invoke(app, ["convert", str(data_file), str(folder)]), str(folder))


def test_report_into_an_existing_file_is_an_error(
    saved: Path, data_file: Path, tmp_path: Path
) -> None:
    taken = tmp_path / "report"
    taken.write_text("")
    result = runner.invoke(
        app, ["eval", "--model", str(saved), str(data_file), "--report", str(taken)]
    )
    fails_cleanly(result, str(taken))


@pytest.mark.parametrize(
    ("content", "where", "says"),
    [
        (
            '{"text": "hi", "intent": "g"}\n{"text": "caf\xe9", "intent": "g"}\n'.encode("latin-1"),
            ":2",
            "not valid UTF-8",
        ),
        ('{"text": "hi", "intent": "g"}\n'.encode("utf-16"), ":1", "UTF-16"),
    ],
)
def test_jsonl_that_is_not_utf8_names_file_and_line(
    tmp_path: Path, content: bytes, where: str, says: str
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(content)
    with pytest.raises(TrainingDataError, match=says) as info:
        load_training_data(bad)
    assert str(info.value).startswith(f"{bad}{where}: ")


def test_jsonl_with_a_byte_order_mark_loads(tmp_path: Path) -> None:
    f = tmp_path / "bom.jsonl"
    f.write_bytes(b'\xef\xbb\xbf{"text": "hi", "intent": "greet"}\n')
    assert load_training_data(f).examples == [TrainingExample("hi", "greet")]


@pytest.mark.parametrize(
    ("name", "damage"),
    [
        ("intent/0-sparse/sparse_intent.npz", lambda b: b[:300]),
        ("intent/0-sparse/sparse_intent_static.npz", lambda b: b[:100]),
        ("intent/0-sparse/sparse_intent.npz", lambda b: b""),
        ("metadata.json", lambda b: b"[1, 2]"),
        ("metadata.json", lambda b: b"\xff\xfe\x00\x01"),
        ("rules.json", lambda b: b'"a string"'),
    ],
)
def test_damaged_model_file_is_an_error_naming_it(
    copy: Path, data_file: Path, name: str, damage: object
) -> None:
    path = copy / name
    path.write_bytes(damage(path.read_bytes()))  # type: ignore[operator]
    result = runner.invoke(app, ["eval", "--model", str(copy), str(data_file)])
    fails_cleanly(result, str(path), "retrain")


@HOSTILE
@given(data=st.data())
def test_a_model_file_cut_short_is_a_model_error(copy: Path, data: st.DataObject) -> None:
    files = sorted(
        p for p in copy.rglob("*") if p.is_file() and p.name != "tagger.crfsuite"
    )  # the CRF has its own test above: on failure it would crash this interpreter
    path = data.draw(st.sampled_from(files))
    whole = path.read_bytes()
    path.write_bytes(whole[: data.draw(st.integers(0, len(whole) - 1))])
    try:
        NluModel.load(copy)
    except ModelError:
        pass
    finally:
        path.write_bytes(whole)


def test_negative_seed_is_a_usage_error(data_file: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["train", str(data_file), "--out", str(tmp_path / "m"), "--seed", "-1"]
    )
    assert result.exit_code == 2  # click's code for an invalid option value
    assert isinstance(result.exception, SystemExit)
    assert "--seed" in result.output


def test_numbers_past_the_int_text_limit_are_json_strings() -> None:
    huge = 10**5000
    entities = (
        Entity("number", huge, 0, 5001, "1" + "0" * 5000),
        Entity("number", float("inf"), 0, 1, "x"),
        Entity("range", {"low": 7, "high": -huge}, 0, 1, "x"),
    )
    doc = json.loads(json.dumps(interpretation_to_json(Interpretation("x", "i", 1.0, entities))))
    assert doc["entities"][0]["value"] == "1" + "0" * 5000
    assert doc["entities"][1]["value"] == "inf"
    assert doc["entities"][2]["value"] == {"low": 7, "high": "-1" + "0" * 5000}


# --- D6: saving over an earlier model ---------------------------------------------------


def test_retraining_into_a_model_folder_replaces_it(data_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "m"
    one = write_jsonl(tmp_path / "one.jsonl", ONE_INTENT)
    assert runner.invoke(app, ["train", str(one), "--out", str(out)]).exit_code == 0
    result = runner.invoke(app, ["train", str(data_file), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert not list(out.rglob("constant_intent.json"))
    assert NluModel.load(out).parse("hello there").intent == "greet"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_saving_refuses_a_folder_that_is_not_a_model(model: NluModel, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ModelError, match="does not hold a model"):
        model.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_failed_save_keeps_the_earlier_model(model: NluModel, tmp_path: Path) -> None:
    model.save(tmp_path / "m")
    rows = [("hi \ud800", "greet"), ("hello", "greet"), ("bye", "bye"), ("see you", "bye")]
    unsavable = NluModel.train(TrainingData(examples=[TrainingExample(*r) for r in rows]))
    with pytest.raises(ModelError, match="cannot write"):
        unsavable.save(tmp_path / "m")
    assert NluModel.load(tmp_path / "m").parse("hello there") == model.parse("hello there")
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_load_takes_each_intent_models_format_from_metadata(copy: Path, model: NluModel) -> None:
    (copy / "intent" / "0-sparse" / "constant_intent.json").write_text('{"intent": "greet"}')
    assert NluModel.load(copy).parse("move money to savings") == model.parse(
        "move money to savings"
    )


# --- D14: single-intent data ------------------------------------------------------------


@pytest.fixture(scope="module")
def one_intent(tmp_path_factory: pytest.TempPathFactory) -> NluModel:
    folder = tmp_path_factory.mktemp("one")
    data = load_training_data(write_jsonl(folder / "one.jsonl", ONE_INTENT))
    return NluModel.train(data)


@pytest.mark.parametrize("text", ["", "🙂", "zxqv blorp", "   "])
def test_single_intent_model_falls_back_on_nothing_known(
    one_intent: NluModel, tmp_path: Path, text: str
) -> None:
    loaded = NluModel.load(one_intent.save(tmp_path / "m"))
    for model in (one_intent, loaded):
        assert model.parse(text).intent == FALLBACK_INTENT
        assert model.parse("what is my balance").intent == "check_balance"
        assert model.parse("savngs balanse").intent == "check_balance"  # typos share n-grams


@HOSTILE
@given(text=st.text(alphabet=st.characters(categories=["So", "Sm", "Nd", "Lo"]), max_size=15))
def test_single_intent_model_never_answers_unseen_symbols(one_intent: NluModel, text: str) -> None:
    assert one_intent.parse(text).intent == FALLBACK_INTENT


def test_single_intent_model_saved_without_words_abstains(
    one_intent: NluModel, tmp_path: Path
) -> None:
    """The words are saved; a constant model saved before them answers as it always did."""
    one_intent.save(tmp_path / "m")
    assert NluModel.load(tmp_path / "m").parse("zxqv blorp").intent == FALLBACK_INTENT
    (tmp_path / "m" / "intent" / "0-sparse" / "constant_intent.json").write_text(
        '{"intent": "check_balance"}'
    )
    assert NluModel.load(tmp_path / "m").parse("zxqv blorp").intent == "check_balance"


# --- D15: no examples; only oos examples ------------------------------------------------


@pytest.mark.parametrize("content", ["", "\n  \n\n"])
@pytest.mark.parametrize("command", ["train", "eval"])
def test_no_examples_is_an_error_naming_the_file(
    saved: Path, tmp_path: Path, content: str, command: str
) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text(content)
    args = (
        ["train", str(empty), "--out", str(tmp_path / "m")]
        if command == "train"
        else ["eval", "--model", str(saved), str(empty), "--report", str(tmp_path / "r")]
    )
    fails_cleanly(runner.invoke(app, args), str(empty), "no training examples")


def test_eval_on_only_oos_examples(saved: Path, tmp_path: Path) -> None:
    oos = write_jsonl(tmp_path / "oos.jsonl", [("what is the weather", "oos")])
    result = runner.invoke(app, ["eval", "--model", str(saved), str(oos)])
    assert result.exit_code == 0, result.output
    assert "in-scope n/a" in result.stdout
    as_json = runner.invoke(app, ["eval", "--model", str(saved), str(oos), "--json"])
    assert json.loads(as_json.stdout)["in_scope_accuracy"] is None
