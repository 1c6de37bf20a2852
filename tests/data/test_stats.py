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
