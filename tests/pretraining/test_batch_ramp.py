"""The batch-size ramp sampler: growing global batches, no sample twice in an epoch, ranks split each batch."""

from types import SimpleNamespace

import pytest

from fromscratch.config import UserError
from fromscratch.pretraining.batch_ramp import BatchRamp, BatchRampArguments, RampBatchSampler


def test_global_batch_grows_to_the_target_and_stays():
    s = RampBatchSampler(n_samples=400, block_size=10, start=4, target=16, ramp_tokens=1000)
    sizes = s.epoch_sizes(0)
    assert sizes[0] == 4 and sizes[-1] == 16
    assert all(a <= b for a, b in zip(sizes, sizes[1:]))  # never shrinks
    assert s.tokens_through(len(sizes)) == sum(sizes) * 10
    assert len(s) == len(sizes)


def test_an_epoch_uses_each_sample_at_most_once():
    s = RampBatchSampler(n_samples=200, block_size=8, start=2, target=12, ramp_tokens=600, seed=3)
    seen = [i for batch in s for i in batch]
    assert len(seen) == len(set(seen)) and len(seen) > 150


def test_processes_and_micro_steps_split_the_same_global_batch():
    kw = dict(n_samples=300, block_size=8, start=4, target=16, ramp_tokens=800, dp_size=2, grad_accum=2, seed=1)
    ranks = [list(RampBatchSampler(rank=r, **kw)) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == len(RampBatchSampler(**kw))
    sizes = RampBatchSampler(**kw).epoch_sizes(0)
    for step, size in enumerate(sizes):  # 2 micro-batches per rank per step, equal sizes, disjoint
        parts = [b for r in ranks for b in r[2 * step: 2 * step + 2]]
        assert sum(len(p) for p in parts) == size and len({len(p) for p in parts}) == 1
        assert len({i for p in parts for i in p}) == size


def test_bad_start_fails_with_one_line():
    args = SimpleNamespace(per_device_train_batch_size=8, gradient_accumulation_steps=2, world_size=1, seed=0,
                           data_seed=None, process_index=0, include_num_input_tokens_seen="no")
    with pytest.raises(UserError, match="batch_ramp_start"):
        BatchRamp.from_args(BatchRampArguments(batch_ramp_tokens=100, batch_ramp_start=64), args, 32, 100)
    assert BatchRamp.from_args(BatchRampArguments(), args, 32, 100) is None  # off by default
