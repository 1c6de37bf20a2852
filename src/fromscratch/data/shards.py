"""Scale-out over a cluster scheduler: N array jobs each clean, filter and fingerprint 1/N of the documents
(`--num_shards N --shard_index $SLURM_ARRAY_TASK_ID --output_dir <dir>/shard-$i`), then one job merges them
(`--from_shards <dir>`): global dedup from the stored fingerprints, decontamination, hold-out and mixing.

The per-document work (almost all of it) spreads over machines; only the clustering, which needs every
signature at once, runs in one place, and it is a few sorts of the band keys. A shard is a finished stage
output of its own (atomic, with run_info.json), so a failed array task is simply rerun.
"""

from __future__ import annotations

import json
from pathlib import Path

import datasets

from ..config import UserError
from .stats import StepStats

SHARD_FILE = "shard.json"


def select(n_rows: int, num_shards: int, shard_index: int) -> list[int]:
    """Rows of this shard: every num_shards-th, so each shard sees every source in proportion."""
    if not 0 <= shard_index < num_shards:
        raise UserError(f"shard_index must be in [0, {num_shards}), got {shard_index}")
    return list(range(shard_index, n_rows, num_shards))


def save(tmp: Path, ds: datasets.Dataset, stats: StepStats, num_shards: int, shard_index: int) -> None:
    ds.save_to_disk(str(tmp))
    (tmp / SHARD_FILE).write_text(json.dumps({"num_shards": num_shards, "shard_index": shard_index,
                                              "steps": stats.to_dict()}, indent=2))


def load(folder: str) -> tuple[datasets.Dataset, list[dict], StepStats]:
    """All finished shards under `folder`, in shard order, with their summed step counts. A missing or
    unfinished shard is an error naming it (rerun that array task)."""
    root = Path(folder)
    found = {}
    for meta in sorted(root.glob(f"*/{SHARD_FILE}")):
        if (meta.parent / "run_info.json").is_file():
            info = json.loads(meta.read_text())
            found[info["shard_index"]] = (meta.parent, info)
    if not found:
        raise UserError(f"from_shards: no finished shard outputs (with {SHARD_FILE}) under {folder}")
    total = next(iter(found.values()))[1]["num_shards"]
    missing = sorted(set(range(total)) - set(found))
    if missing:
        raise UserError(f"from_shards: shards {missing} of {total} are missing or unfinished under {folder}")
    parts = [found[i][0] for i in range(total)]
    ds = datasets.concatenate_datasets([datasets.load_from_disk(str(p)) for p in parts])
    lineage = json.loads((parts[0] / "run_info.json").read_text())["lineage"]
    return ds, lineage, StepStats.merge([found[i][1]["steps"] for i in range(total)])
