"""CRF training: progress reports and the time budget (CrfTagger.fit)."""

from __future__ import annotations

import random

from intentbridge.understanding.tagger import MIN_ITERATIONS, CrfTagger


def _data(n: int = 400, seed: int = 3) -> tuple[list[list[list[str]]], list[list[str]]]:
    """Sequences whose label follows the word, with some noise to learn around."""
    rng = random.Random(seed)
    features, labels = [], []
    for _ in range(n):
        words = [rng.choice(["play", "some", "jazz", "rock", "in", "paris", "rome", "now"])]
        words += [rng.choice(["jazz", "rock", "paris", "rome", "the", "a"]) for _ in range(5)]
        features.append([[f"w={w}", f"p={w[:2]}"] for w in words])
        labels.append(
            [
                "B-genre" if w in ("jazz", "rock") else "B-city" if w in ("paris", "rome") else "O"
                for w in words
            ]
        )
    return features, labels


def test_progress_reports_every_iteration() -> None:
    seen: list[tuple[int, int]] = []
    features, labels = _data()
    CrfTagger(max_iterations=12).fit(
        features, labels, progress=lambda done, total: seen.append((done, total))
    )
    assert seen, "the progress callback was never called"
    assert all(total == 12 for _, total in seen)
    assert [done for done, _ in seen] == list(range(1, len(seen) + 1))


def test_without_a_budget_every_planned_iteration_may_run() -> None:
    features, labels = _data()
    tagger = CrfTagger(max_iterations=15).fit(features, labels)
    assert tagger.fit_info["shortened_by_time_budget"] is False
    assert tagger.fit_info["steps"] == tagger.fit_info["planned_steps"] == 15


def test_a_budget_too_short_for_the_plan_cuts_the_iterations() -> None:
    features, labels = _data(1500)
    tagger = CrfTagger(max_iterations=100_000).fit(features, labels, time_budget_s=0.2)
    info = tagger.fit_info
    assert info["shortened_by_time_budget"] is True
    assert MIN_ITERATIONS <= info["steps"] < 100_000
    assert info["planned_steps"] == 100_000
    # the model trained by the second, shorter run is whole and tags
    words = ["play", "jazz", "in", "rome"]
    tags, _ = tagger.tag([[f"w={w}", f"p={w[:2]}"] for w in words])
    assert tags == ["O", "B-genre", "O", "B-city"]


def test_a_budget_that_fits_changes_nothing() -> None:
    features, labels = _data()
    tagger = CrfTagger(max_iterations=10).fit(features, labels, time_budget_s=600)
    assert tagger.fit_info["shortened_by_time_budget"] is False
    assert tagger.fit_info["steps"] == 10
