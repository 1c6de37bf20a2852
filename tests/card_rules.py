"""The Hub's rules for card metadata, as a checker the tests run on every card a stage writes.

What the Hub checks or relies on (hub-docs: model cards, datasets cards, model-index; the licence list of
"Licenses" in the Hub documentation): `license` one of its licence ids (or `other`); `base_model` a repo id of
an existing model (never a local path); `datasets` dataset repo ids; `language` ISO 639-1/3 codes; each
model-index result keyed by a task type and a dataset whose `type` is the dataset's Hub id, with its `split`
(and `config` where the dataset has several), few-shot count in `args.num_few_shot` for benchmark scores;
`library_name` / `pipeline_tag` only where there are weights to load; a card with weights has the Uses,
Limitations and Bias sections of the Hub's model card template.
"""

from __future__ import annotations

import re
from pathlib import Path

from huggingface_hub import DatasetCard, ModelCard

# The Hub's licence ids (hub-docs "Licenses"), the ones a project like this can meet.
LICENSES = {
    "apache-2.0", "mit", "openrail", "bigscience-openrail-m", "creativeml-openrail-m", "bigscience-bloom-rail-1.0",
    "bigcode-openrail-m", "afl-3.0", "artistic-2.0", "bsl-1.0", "bsd", "bsd-2-clause", "bsd-3-clause",
    "bsd-3-clause-clear", "c-uda", "cc", "cc0-1.0", "cc-by-2.0", "cc-by-2.5", "cc-by-3.0", "cc-by-4.0",
    "cc-by-sa-3.0", "cc-by-sa-4.0", "cc-by-nc-2.0", "cc-by-nc-3.0", "cc-by-nc-4.0", "cc-by-nd-4.0",
    "cc-by-nc-nd-3.0", "cc-by-nc-nd-4.0", "cc-by-nc-sa-2.0", "cc-by-nc-sa-3.0", "cc-by-nc-sa-4.0", "ecl-2.0",
    "epl-1.0", "epl-2.0", "eupl-1.1", "agpl-3.0", "gfdl", "gpl", "gpl-2.0", "gpl-3.0", "lgpl", "lgpl-2.1",
    "lgpl-3.0", "isc", "lppl-1.3c", "ms-pl", "mpl-2.0", "odc-by", "odbl", "openrail++", "osl-3.0", "postgresql",
    "ofl-1.1", "ncsa", "unlicense", "zlib", "pddl", "lgpl-lr", "deepfloyd-if-license", "llama2", "llama3",
    "llama3.1", "llama3.2", "gemma", "unknown", "other",
}
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}$")
LANGUAGE = re.compile(r"^[a-z]{2,3}$")


def _listed(value) -> list:
    return [] if value is None else (value if isinstance(value, list) else [value])


def problems(folder: str | Path) -> list[str]:
    """Every rule <folder>/README.md breaks (empty: the metadata is what the Hub accepts and shows right)."""
    folder = Path(folder)
    card = ModelCard.load(folder / "README.md")
    meta = card.data.to_dict()
    out = []
    if meta.get("license") not in LICENSES:
        out.append(f"license {meta.get('license')!r} is not a Hub licence id")
    for base in _listed(meta.get("base_model")):
        if not REPO_ID.match(str(base)) or Path(str(base)).exists() or str(base).startswith(("/", ".", "~")):
            out.append(f"base_model {base!r} is not a Hub repo id")
    for ds in _listed(meta.get("datasets")):
        if not REPO_ID.match(str(ds)):
            out.append(f"datasets entry {ds!r} is not a Hub dataset id")
    languages = _listed(meta.get("language"))
    if not languages or not all(LANGUAGE.match(str(x)) for x in languages):
        out.append(f"language {meta.get('language')!r}: want ISO codes such as [en]")
    weights = (folder / "config.json").is_file() or (folder / "adapter_config.json").is_file() or \
        (folder / "tokenizer.json").is_file()
    if not weights and (meta.get("library_name") or meta.get("pipeline_tag")):
        out.append("library_name/pipeline_tag on a folder without a model or tokenizer")
    if weights:  # the Hub's model card template: what it is for, what it cannot do, its risks
        out += [f"no '## {s}' section" for s in ("Uses", "Limitations", "Bias") if f"\n## {s}" not in card.text]
    seen = set()
    for entry in meta.get("model-index") or []:
        for result in entry.get("results", []):
            task, ds = result.get("task", {}), result.get("dataset", {})
            if not task.get("type"):
                out.append(f"model-index result without task type: {result}")
            if not REPO_ID.match(str(ds.get("type"))):
                out.append(f"model-index dataset type {ds.get('type')!r} is not a Hub dataset id")
            if not ds.get("split"):
                out.append(f"model-index dataset {ds.get('type')!r} has no split")
            key = (task.get("type"), ds.get("type"), ds.get("config"), ds.get("split"))
            if key in seen:
                out.append(f"model-index: two results for {key}: one result per dataset, all its metrics in it")
            seen.add(key)
            if not result.get("metrics"):
                out.append(f"model-index result {key} has no metrics")
            if {m.get("type") for m in result.get("metrics", [])} & {"acc", "acc_norm"} and \
                    "num_few_shot" not in (ds.get("args") or {}):
                out.append(f"model-index benchmark {key} does not say its few-shot count (args.num_few_shot)")
    return out


def dataset_problems(folder: str | Path) -> list[str]:
    """Every rule a dataset card (<folder>/README.md: stage 01's corpus, make tokenize's shards) breaks: licence ids
    (`other` with its `license_name`), ISO languages, a task category, source datasets as Hub ids."""
    meta = DatasetCard.load(Path(folder) / "README.md").data.to_dict()
    out = []
    licenses = _listed(meta.get("license"))
    if not licenses or not all(x in LICENSES for x in licenses):
        out.append(f"license {meta.get('license')!r} is not a list of Hub licence ids")
    if "other" in licenses and not meta.get("license_name"):
        out.append("license other without license_name")
    languages = _listed(meta.get("language"))
    if not languages or not all(LANGUAGE.match(str(x)) for x in languages):
        out.append(f"language {meta.get('language')!r}: want ISO codes such as [en]")
    if not meta.get("task_categories"):
        out.append("no task_categories")
    for ds in _listed(meta.get("source_datasets")):
        if ds != "original" and not REPO_ID.match(str(ds).split("|")[-1]):
            out.append(f"source_datasets entry {ds!r} is not a Hub dataset id")
    return out
