"""The evaluation cap: each evaluation scores one fixed subset whose size is set by the keys, not the split."""

import datasets
import torch
from hypothesis import given, settings, strategies as st

from fromscratch.training import eval_subset


class Numbers(torch.utils.data.Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return i


def items(ds):
    return [ds[i] for i in range(len(ds))]


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 5000), periodic=st.integers(0, 6000), final=st.integers(0, 6000))
def test_subsets_are_fixed_sized_by_the_keys_and_nested(n, periodic, final):
    during, last = eval_subset.bound(Numbers(n), periodic, final)
    again, last_again = eval_subset.bound(Numbers(n), periodic, final)
    assert items(during) == items(again) and items(last) == items(last_again)  # the same examples every call
    assert len(last) == (min(final, n) if final else n)
    expected = min(periodic, len(last)) if periodic else len(last)
    assert len(during) == expected
    assert set(items(during)) <= set(items(last))  # the periodic set is inside the final one
    assert items(last) == sorted(set(items(last)))  # no repeats, in the split's own order


@settings(max_examples=50, deadline=None)
@given(small=st.integers(200, 2000), grow=st.integers(2, 50), count=st.integers(1, 199))
def test_the_cost_does_not_grow_with_the_split(small, grow, count):
    # the number of scored examples is the same whether the split holds `small` or `small * grow`
    a, _ = eval_subset.bound(Numbers(small), count, 0)
    b, _ = eval_subset.bound(Numbers(small * grow), count, 0)
    assert len(a) == len(b) == count


def test_a_datasets_split_is_selected_without_copying_and_in_the_same_rows():
    ds = datasets.Dataset.from_dict({"x": list(range(1000))})
    during, last = eval_subset.bound(ds, 10, 100)
    assert isinstance(during, datasets.Dataset) and len(during) == 10 and len(last) == 100
    torch_during, _ = eval_subset.bound(Numbers(1000), 10, 100)
    assert during["x"] == items(torch_during)  # one rule for both kinds of dataset


def test_windows_hold_the_tokens_asked():
    assert eval_subset.windows_for(0, 256) == 0  # the whole split
    assert eval_subset.windows_for(1, 256) == 1
    assert eval_subset.windows_for(256, 256) == 1
    assert eval_subset.windows_for(257, 256) == 2
