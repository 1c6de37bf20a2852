"""How the probes read their sets and score text: a Hub id or a local path through `datasets.load_dataset`,
and (context, continuation) log-likelihoods through lm-eval's model wrapper.

The layer below the probe modules (ethos, stereoset, rtp) and the Hub benchmark sets; `probes.py`, the registry
above them, imports those modules, so nothing here imports a probe.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from fromscratch.config import UserError
from fromscratch.sources import is_local


def load_split(spec: str, *, config: str | None, split: str, key: str, local_files: list[str] | None = None):
    """One split of a dataset named by a Hub id or a local path, as a datasets.Dataset.

    A local folder laid out like the Hub repo (README.md with `configs:`, parquet/jsonl files) loads through
    the same `datasets.load_dataset` call as the Hub id, so a fixture in the Hub's format tests the real path.
    `local_files`: file names to try inside a plain local folder (e.g. prompts.jsonl)."""
    import datasets

    try:
        if is_local(spec):
            path = Path(os.path.expanduser(spec))
            if not path.exists():
                raise UserError(f"{key}: no such path {spec}")
            if path.is_file() or (local_files and any((path / f).is_file() for f in local_files)):
                file = path if path.is_file() else next(path / f for f in local_files if (path / f).is_file())
                kind = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}.get(file.suffix)
                if kind is None:
                    raise UserError(f"{key}: cannot read {file.name} (use .jsonl, .json, .parquet or .csv)")
                return datasets.load_dataset(kind, data_files=str(file), split="train")
            return datasets.load_dataset(str(path), config, split=split)
        return datasets.load_dataset(spec, config, split=split)
    except UserError:
        raise
    except Exception as err:  # offline, not found, wrong config: one line with the library's own reason
        reason = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
        raise UserError(f"{key}: cannot load {spec}{f' ({config})' if config else ''}: {reason}") from None


def loglikelihoods(lm, pairs: list[tuple[str, str]]) -> list[float]:
    """Summed log-probability of each continuation after its context, by lm-eval's HFLM (its batching,
    truncation from the left and empty-context handling). Word-boundary spaces belong to the continuation."""
    from lm_eval.api.instance import Instance

    if not pairs:
        return []
    requests = [Instance("loglikelihood", {}, (c, x), i) for i, (c, x) in enumerate(pairs)]
    # lm-eval warns once per request that is longer than the model's window (few-shot ETHOS on a small model:
    # hundreds of lines); count them instead and say it once.
    truncated = _CountTruncations()
    logger = logging.getLogger("lm_eval.models.huggingface")
    logger.addFilter(truncated)
    try:
        out = [float(ll) for ll, _ in lm.loglikelihood(requests, disable_tqdm=True)]
    finally:
        logger.removeFilter(truncated)
    if truncated.count:
        print(f"[probes] {truncated.count} of {len(pairs)} requests longer than the model's window "
              f"({getattr(lm, 'max_length', '?')} tokens): their start was cut (lm-eval truncates from the left)")
    return out


class _CountTruncations(logging.Filter):
    def __init__(self):
        super().__init__()
        self.count = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if "exceeds model's maximum length" in record.getMessage():
            self.count += 1
            return False
        return True


def continuation_tokens(lm, context: str, continuation: str) -> int:
    """How many tokens lm-eval scores for this continuation (the denominator of a per-token average)."""
    if not context:
        ids = lm.tok_encode(continuation, add_special_tokens=False)
        return max(1, len(ids) - (1 if ids and ids[0] == lm.prefix_token_id else 0))
    return max(1, len(lm._encode_pair(context, continuation)[1]))


def on(source: str | None) -> bool:
    """A probe runs when its key names a source; None, "" and "none" leave it off."""
    return bool(source) and str(source).lower() not in ("none", "null", "off")
