"""Step counts reconcile: in = kept + dropped per source, and each step starts from the previous one's kept."""

import pytest

from fromscratch.data.stats import StepStats


def test_counts_reconcile_and_mismatches_are_caught():
    s = StepStats()
    s.record("load", ["a", "a", "b"], ["", "", ""])
    s.record("filter", ["a", "a", "b"], ["", "too few words", ""], extra={"note": 1})
    s.record("dedup", ["a", "b"], ["", "exact duplicate"])
    s.check()
    steps = s.to_dict()
    assert steps[1]["by_source"]["a"] == {"in": 2, "kept": 1, "dropped": {"too few words": 1}}
    assert steps[2]["dropped"] == {"exact duplicate": 1} and steps[1]["note"] == 1
    s.record("decontaminate", ["a", "a"], ["", ""])  # one document too many
    with pytest.raises(AssertionError, match="decontaminate"):
        s.check()


def test_shard_counts_merge():
    a, b = StepStats(), StepStats()
    a.record("filter", ["x", "y"], ["", "too few words"], changes={"markup stripped": 1}, extra={"pairs": 2})
    b.record("filter", ["x", "x"], ["bad words", ""], extra={"pairs": 3})
    m = StepStats.merge([a.to_dict(), b.to_dict()])
    m.check()
    (step,) = m.to_dict()
    assert step["in"] == 4 and step["kept"] == 2 and step["pairs"] == 5
    assert step["by_source"]["x"] == {"in": 3, "kept": 2, "dropped": {"bad words": 1}}
    assert step["changed"] == {"markup stripped": 1}
