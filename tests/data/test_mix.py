"""Mixing: weights are output shares of characters, met by up-sampling (repeats) and down-sampling."""

import pytest

from fromscratch.config import UserError
from fromscratch.data import mix


def test_plan_up_and_down_samples():
    plans = {p.source: p for p in mix.plan({"small": (10, 1_000), "large": (100, 9_000)},
                                           {"small": 1, "large": 1})}
    assert plans["small"].epochs == pytest.approx(5.0) and plans["large"].epochs == pytest.approx(5000 / 9000)
    fixed = {p.source: p for p in mix.plan({"a": (10, 1_000), "b": (10, 1_000)}, {"a": 3, "b": 1}, 8_000)}
    assert fixed["a"].epochs == pytest.approx(6.0) and fixed["b"].epochs == pytest.approx(2.0)


def test_sample_meets_the_target_in_characters():
    lengths = [50 + (i * 37) % 400 for i in range(500)]
    for epochs in (0.3, 1.0, 2.5):
        picked = mix.sample(lengths, epochs, seed=0)
        chars = sum(lengths[i] for i in picked)
        assert chars == pytest.approx(epochs * sum(lengths), rel=0.03)
        if epochs >= 1:
            assert min(picked.count(i) for i in range(500)) == int(epochs)  # every document repeated alike


def test_proportions_in_documents_characters_and_tokens():
    shares = mix.proportions({"a": (10, 3_000, 3_000), "b": (30, 1_000, 1_200)})
    assert shares["a"]["documents"] == pytest.approx(0.25) and shares["a"]["characters"] == pytest.approx(0.75)
    assert shares["b"]["tokens_estimate"] == pytest.approx(1200 / 4200)


def test_bad_weights_and_empty_sources():
    with pytest.raises(UserError):
        mix.plan({"a": (1, 10)}, {"a": 0})
    with pytest.raises(UserError, match="no documents survived"):
        mix.plan({"a": (1, 10), "b": (0, 0)}, {"a": 1, "b": 1})


def test_hold_out_keeps_every_source_in_training():
    sources = ["a"] * 100 + ["b"] * 3 + ["c"]
    val, pool = mix.hold_out(sources, ["a", "b", "c"], 0.05, seed=0)
    assert sorted(val + [i for idx in pool.values() for i in idx]) == list(range(len(sources)))
    assert [sources[i] for i in val].count("a") == 5 and [sources[i] for i in val].count("b") == 1
    assert pool["c"] == [103]  # a one-document source is never held out
