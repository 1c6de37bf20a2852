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


def test_added_documents_enter_the_next_step():
    s = StepStats()
    s.record("hold_out", ["a", "a", "b"], ["", "moved to validation", ""])
    s.record("augment", ["a", "b"], ["", ""], added=["a", "a"])  # two copies of source a's documents
    s.record("mix", ["a", "a", "a", "b"], ["", "", "", ""])
    s.check()
    aug = s.to_dict()[1]
    assert aug["added"] == 2 and aug["by_source"]["a"]["added"] == 2 and aug["by_source"]["b"]["added"] == 0
    s.record("late", ["a", "a", "a", "b"], ["", "", "", ""])  # fine: mix added nothing
    s.check()
    bad = StepStats()
    bad.record("augment", ["a"], [""], added=["a"])
    bad.record("next", ["a"], [""])  # the added copy went missing
    with pytest.raises(AssertionError, match="next"):
        bad.check()


def test_added_counts_and_nested_extras_merge_across_shards():
    a, b = StepStats(), StepStats()
    a.record("quality", ["x", "y"], ["", "low"], extra={"scores": {"kept": {"sum": 0.5, "n": 1}}}, added=["x"])
    b.record("quality", ["x"], [""], extra={"scores": {"kept": {"sum": 0.25, "n": 1}}}, added=["x", "x"])
    (step,) = StepStats.merge([a.to_dict(), b.to_dict()]).to_dict()
    assert step["added"] == 3 and step["by_source"]["x"]["added"] == 3
    assert step["scores"] == {"kept": {"sum": 0.75, "n": 2}}
