"""Datasets for the YAML tasks beside this file, through lm-eval's `custom_dataset: !function` hook.

lm-eval calls `custom_dataset(**metadata, **dataset_kwargs)`. The run passes `suite` and `data_dir` as
TaskManager metadata: the "tiny" suite reads the subsets shipped in data/ next to this file; the "full" suite
reads each set from its Hub id (the task's `hub:`, lm-eval's own dataset id), or from data_dir when that holds a
local copy: the set's file in the llm-foundry layout (the task's `full:` path), or a mirror of the Hub repo
(data_dir/<org>/<name>/). Resolving sources here, at run time, is why the YAMLs need no absolute path.
"""

from __future__ import annotations

from pathlib import Path

import datasets

from fromscratch.evaluation import hub_sets, readers

HERE = Path(__file__).resolve().parent
READERS = {"jsonl": readers.read_jsonl, "hellaswag": readers.read_hellaswag, "crows_pairs": readers.read_crows_pairs,
           "wikitext": readers.read_wikitext, "text": readers.read_text, "gsm8k": readers.read_gsm8k}


def local_file(tiny: str | None = None, full: str | None = None, suite: str = "tiny", data_dir: str | None = None,
               file: str | None = None) -> Path | None:
    """The local file a task reads, or None when the full suite has no copy under data_dir (then: its Hub id)."""
    if file:  # a file the run wrote itself (the model's own held-out text)
        return Path(file)
    if suite == "tiny":
        return HERE / "data" / tiny
    path = Path(data_dir) / full if data_dir and full else None
    return path if path and path.exists() else None


def load(reader: str = "jsonl", tiny: str | None = None, full: str | None = None, suite: str = "tiny",
         data_dir: str | None = None, file: str | None = None, heldout_file: str | None = None,
         crows_pairs_file: str | None = None, hub: str | None = None, hub_rows: str | None = None,
         **_metadata) -> datasets.DatasetDict:
    """heldout_file / crows_pairs_file (run metadata) point the held-out and CrowS-Pairs tasks at other files:
    the model's own validation text, or constructed pairs (tests, a mitigation's probe set). hub (a task's
    `org/name[:config]@split`) and hub_rows (the fromscratch.evaluation.hub_sets mapping of its rows): the
    full suite's source when data_dir holds no file of the set."""
    own = {"text": heldout_file, "crows_pairs": crows_pairs_file}.get(reader)
    path = local_file(tiny, full, suite, data_dir, own or file)
    if path is not None:
        rows, skipped = READERS[reader](path)
        where = str(path)
    elif hub:
        rows, skipped = hub_sets.load(hub, hub_rows or reader, data_dir)
        where = hub
    else:
        raise ValueError(f"the full suite found no {full} under data_dir {data_dir} and the task names no Hub id")
    readers.SKIPPED[where] = skipped  # counted, reported by the recipe
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})


# lm-eval's own document functions, reused so our local tasks score exactly as its built-in ones do.
from lm_eval.tasks.crows_pairs.utils import doc_to_choice as crows_pairs_choices  # noqa: E402,F401
from lm_eval.tasks.crows_pairs.utils import process_results as crows_pairs_results  # noqa: E402,F401
from lm_eval.tasks.wikitext.preprocess_wikitext import process_results as wikitext_results  # noqa: E402,F401
from lm_eval.tasks.wikitext.preprocess_wikitext import wikitext_detokenizer  # noqa: E402,F401
