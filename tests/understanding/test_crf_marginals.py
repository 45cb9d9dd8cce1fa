"""The numpy marginals of a CRF agree with CRFsuite's own, on any feature sequence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pycrfsuite
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intentbridge.understanding.tagger import CrfTagger

WORDS = ["send", "50", "euros", "to", "anna", "from", "checking", "on", "friday", "paris"]
LABELS = {
    "50": "B-amount",
    "euros": "I-amount",
    "anna": "B-person",
    "checking": "B-account",
    "friday": "B-date",
    "paris": "B-city",
}


def _features(words: list[str]) -> list[list[str]]:
    out = []
    for i, w in enumerate(words):
        feats = ["bias", f"w={w}", f"suffix={w[-2:]}"]
        feats.append(f"prev={words[i - 1]}" if i else "BOS")
        feats.append(f"next={words[i + 1]}" if i + 1 < len(words) else "EOS")
        out.append(feats)
    return out


def by_crfsuite(tagger: CrfTagger, features: list[list[str]]) -> np.ndarray:
    """The reference: CRFsuite's own marginals, asked one label and token at a time."""
    reference = pycrfsuite.Tagger()
    assert tagger.model_bytes is not None
    reference.open_inmemory(tagger.model_bytes)
    reference.set(features)
    return np.array(
        [[reference.marginal(y, i) for y in tagger.labels] for i in range(len(features))],
        dtype=np.float64,
    ).reshape(len(features), len(tagger.labels))


@pytest.fixture(scope="module")
def tagger() -> CrfTagger:
    rng = np.random.default_rng(0)
    sequences, labels = [], []
    for _ in range(120):
        words = [str(w) for w in rng.choice(WORDS, size=int(rng.integers(2, 9)))]
        sequences.append(_features(words))
        tags = []
        for i, w in enumerate(words):
            tag = LABELS.get(w, "O")
            if tag.startswith("I-") and (i == 0 or words[i - 1] != "50"):
                tag = "O"
            tags.append(tag)
        labels.append(tags)
    return CrfTagger(max_iterations=50).fit(sequences, labels)


def test_marginals_match_crfsuite_on_training_like_messages(tagger: CrfTagger) -> None:
    feats = _features(["send", "50", "euros", "to", "anna", "on", "friday"])
    ours = tagger.marginals(feats)
    assert ours.shape == (7, len(tagger.labels))
    np.testing.assert_allclose(ours.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_allclose(ours, by_crfsuite(tagger, feats), atol=1e-5)
    # and they say what the tagger says
    best = [tagger.labels[j] for j in ours.argmax(axis=1)]
    assert best[1:3] == ["B-amount", "I-amount"]
    assert best[4] == "B-person"


def test_a_message_of_one_token_and_of_none(tagger: CrfTagger) -> None:
    one = _features(["paris"])
    np.testing.assert_allclose(tagger.marginals(one), by_crfsuite(tagger, one), atol=1e-5)
    assert tagger.marginals([]).shape == (0, len(tagger.labels))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(
            st.sampled_from(
                # known attributes, unknown ones, duplicates (CRFsuite counts each)
                ["bias", "w=anna", "w=50", "w=euros", "prev=50", "suffix=is", "w=zzz", "?"]
            ),
            max_size=6,
        ),
        min_size=1,
        max_size=12,
    )
)
def test_marginals_match_crfsuite_on_any_attributes(
    tagger: CrfTagger, features: list[list[str]]
) -> None:
    np.testing.assert_allclose(tagger.marginals(features), by_crfsuite(tagger, features), atol=1e-5)


def test_a_reloaded_tagger_reads_its_own_weights(tagger: CrfTagger, tmp_path: Path) -> None:
    path = tmp_path / "t.crfsuite"
    feats = _features(["send", "anna", "50", "euros"])
    before = tagger.marginals(feats)
    tagger.save(path)
    again = CrfTagger.load(path)
    np.testing.assert_allclose(again.marginals(feats), before, atol=1e-12)
