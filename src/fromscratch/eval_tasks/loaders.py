"""Datasets for the YAML tasks beside this file, through lm-eval's `custom_dataset: !function` hook.

lm-eval calls `custom_dataset(**metadata, **dataset_kwargs)`. The run passes `suite` and `data_dir` as
TaskManager metadata: the "tiny" suite reads the subsets shipped in data/ next to this file; the "full" suite
reads the complete files under data_dir (the layout of the project's shared data folder). Resolving paths
here, at run time, is why the YAMLs need no absolute path (`dataset_path: json` would).
"""

from __future__ import annotations

from pathlib import Path

import datasets

from fromscratch.evaluation import readers

HERE = Path(__file__).resolve().parent
READERS = {"jsonl": readers.read_jsonl, "hellaswag": readers.read_hellaswag, "crows_pairs": readers.read_crows_pairs,
           "wikitext": readers.read_wikitext, "text": readers.read_text, "gsm8k": readers.read_gsm8k}


def resolve(tiny: str | None = None, full: str | None = None, suite: str = "tiny", data_dir: str | None = None,
            file: str | None = None) -> Path:
    if file:  # a file the run wrote itself (the model's own held-out text)
        return Path(file)
    if suite == "tiny":
        return HERE / "data" / tiny
    if not data_dir:
        raise ValueError("the full suite needs data_dir (the folder holding eval-tasks/, crows-pairs/, wikitext-2/)")
    return Path(data_dir) / full


def load(reader: str = "jsonl", tiny: str | None = None, full: str | None = None, suite: str = "tiny",
         data_dir: str | None = None, file: str | None = None, heldout_file: str | None = None,
         crows_pairs_file: str | None = None, hub: str | None = None, **_metadata) -> datasets.DatasetDict:
    """heldout_file / crows_pairs_file (run metadata) point the held-out and CrowS-Pairs tasks at other files:
    the model's own validation text, or constructed pairs (tests, a mitigation's probe set). hub (a task's
    `org/name:config`): the full suite's source when data_dir lacks the file, its test split."""
    own = {"text": heldout_file, "crows_pairs": crows_pairs_file}.get(reader)
    path = resolve(tiny, full, suite, data_dir, own or file)
    if hub and suite == "full" and not own and not file and not path.exists():
        return _from_hub(hub, reader)
    rows, skipped = READERS[reader](path)
    readers.SKIPPED[str(path)] = skipped  # counted, reported by the recipe
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})


def _from_hub(spec: str, reader: str) -> datasets.DatasetDict:
    repo, _, config = spec.partition(":")
    rows = datasets.load_dataset(repo, config or None, split="test")  # needs the network or the HF cache
    if reader == "gsm8k":
        from fromscratch.flan import normalize

        rows = datasets.Dataset.from_list([normalize(r) for r in rows])
    return datasets.DatasetDict({"test": rows})


# lm-eval's own document functions, reused so our local tasks score exactly as its built-in ones do.
from lm_eval.tasks.crows_pairs.utils import doc_to_choice as crows_pairs_choices  # noqa: E402,F401
from lm_eval.tasks.crows_pairs.utils import process_results as crows_pairs_results  # noqa: E402,F401
from lm_eval.tasks.wikitext.preprocess_wikitext import process_results as wikitext_results  # noqa: E402,F401
from lm_eval.tasks.wikitext.preprocess_wikitext import wikitext_detokenizer  # noqa: E402,F401
