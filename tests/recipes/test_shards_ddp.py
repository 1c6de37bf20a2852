"""Pretraining from a token-shard folder on 2 CPU ranks (accelerate launch, cpu_ddp.yaml, gloo): over one epoch
the ranks are served disjoint windows that together are every window once. Observed in the recipe's own
dataloader by tests/recipes/record_windows.py (~1 minute on 2 cores)."""

import json
import re

import pytest

from conftest import ROOT, run_recipe, tokenize_here
from fromscratch.pretraining import token_shards
from test_distributed import ddp

pytestmark = pytest.mark.slow
BATCH = 4  # per rank


def test_two_ranks_get_disjoint_windows_covering_the_epoch(tokenizer_dir, tmp_path):
    text = (ROOT / "src/fromscratch/embedded/tinyshakespeare/input.txt").read_text()[:12000]
    corpus = tmp_path / "paragraphs.jsonl"
    corpus.write_text("".join(json.dumps({"text": p}) + "\n" for p in text.split("\n\n") if p.strip()))
    folder = tmp_path / "tokens"
    tokenize_here([str(corpus)], folder, tokenizer_dir, tasks=2)
    # a block size whose window count is a whole number of global batches: the epoch ends on a step
    block, n = next((b, len(token_shards.load([str(folder)], str(tokenizer_dir), b).train)) for b in range(32, 64)
                    if len(token_shards.load([str(folder)], str(tokenizer_dir), b).train) % (2 * BATCH) == 0)
    log = tmp_path / "served"
    proc = run_recipe(
        "03_pretrain", "--config", "recipes/03_pretrain/config_tiny.yaml", "--preset", "nano", "--sources",
        str(folder), "--tokenizer_dir", str(tokenizer_dir), "--block_size", str(block), "--max_steps",
        str(n // (2 * BATCH)), "--per_device_train_batch_size", str(BATCH), "--gradient_accumulation_steps", "1",
        "--logging_steps", "1", "--eval_strategy", "no", "--save_strategy", "no", "--report_to", "none",
        "--disable_tqdm", "true", "--log_level", "info", "--output_dir", str(tmp_path / "out"),
        launcher=[*ddp(), str(ROOT / "tests/recipes/record_windows.py")], env={"RECORD_WINDOWS": str(log)})
    total = re.search(r"Total train batch size \(w\. parallel, distributed & accumulation\) = (\d+)",
                      proc.stdout + proc.stderr)
    assert total and int(total[1]) == 2 * BATCH  # two ranks, not two independent runs
    served = [[int(x) for x in (tmp_path / f"served.{rank}").read_text().split()] for rank in (0, 1)]
    assert [len(s) for s in served] == [n // 2, n // 2]
    assert not set(served[0]) & set(served[1])
    assert sorted(served[0] + served[1]) == list(range(n))
    assert served[0] != sorted(served[0])  # the seeded sampler shuffled, it did not deal the windows in order
