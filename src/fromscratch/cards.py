"""Model cards and curve plots, through huggingface_hub's ModelCard with our Jinja templates in model_cards/.

Every stage's output gets a README.md with Hub metadata (license, language, datasets, tags, library_name,
pipeline_tag, base_model, model-index results), its resolved config, stack versions, data lineage and a PNG of
its curves. The metadata follows the Hub's rules (tests/card_rules.py checks every card the tests write):
- `base_model` is a Hub repo id or absent: a parent that is a local folder is named by the Hub id recorded in
  its run_info.json when it was pushed (hub.push_folder records it), else left out and named in the card text.
- `datasets` lists Hub dataset ids only: a Hub source, an embedded default that is a copy of a Hub dataset
  (EMBEDDED_ON_HUB), or a local folder that was pushed.
- model-index results are filed under the Hub id, config and split of the evaluated dataset, one result per
  dataset with all its metrics. Figures on a split of our own making (a stage's held-out share, a 40-item
  subset) stay in the card text: filed under the benchmark's id they would be compared with full-set scores.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import yaml
from huggingface_hub import DatasetCard, DatasetCardData, EvalResult, ModelCard, ModelCardData

TEMPLATES = Path(os.environ.get("FROMSCRATCH_TEMPLATES", Path(__file__).resolve().parents[2] / "model_cards"))
# Embedded defaults that are copies of a Hub dataset's files (data_cards/ names the file and commit).
EMBEDDED_ON_HUB = {"tinyshakespeare": "karpathy/tiny_shakespeare", "hh_rlhf": "Anthropic/hh-rlhf"}
PARENT_ROLES = ("base_model", "policy and reference")  # run_info lineage roles of the model a stage tuned
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def pushed_id(folder: str | Path) -> str | None:
    """The Hub repo a finished local output was pushed to (recorded in its run_info.json), if any."""
    path = Path(folder).expanduser() / "run_info.json"
    try:
        return (json.loads(path.read_text()).get("hub") or {}).get("repo_id")
    except (OSError, ValueError):
        return None


def hub_id_of(spec: str | None) -> str | None:
    """A model or dataset named by a local folder or a Hub id, as a Hub id: a folder by the repo it was pushed
    to, a Hub id as itself (without `hub:` and `:config`); None when it is not on the Hub."""
    if not spec:
        return None
    if Path(spec).expanduser().exists() or spec.startswith((".", "/", "~")) or Path(spec.split("/")[0]).is_dir():
        return pushed_id(spec)  # a local folder (`outputs/03_pretrain` is one, not the Hub repo of user `outputs`)
    repo = spec.removeprefix("hub:").split(":")[0]
    return repo if _REPO_ID.match(repo) else None


def hub_datasets(lineage: list, depth: int = 2) -> list[str]:
    """The Hub datasets a stage's sources are (embedded copies included), in order, without duplicates. A local
    stage output that was not pushed (stage 01's folder) counts by the sources it was built from."""
    out: list[str] = []
    for item in lineage:
        spec = item["spec"] if isinstance(item, dict) else item.spec
        resolved = (item.get("resolved") if isinstance(item, dict) else item.resolved) or ""
        if isinstance(item, dict) and item.get("role"):
            continue  # a tokenizer or parent model, not data
        spec = spec.split("[")[0]  # "path[validation]": the validation split of a source
        if spec.startswith("default"):
            found = [hub for name, hub in EMBEDDED_ON_HUB.items() if name in spec or name in resolved]
        else:
            found = [x for x in [hub_id_of(spec)] if x]
            info = Path(spec).expanduser() / "run_info.json"
            if not found and depth and info.is_file():
                found = hub_datasets(json.loads(info.read_text()).get("lineage", []), depth - 1)
        out += [x for x in found if x not in out]
    return out


def eval_results(metrics: dict[str, float], *, dataset_type: str, dataset_name: str, config: str | None = None,
                 split: str = "validation", num_few_shot: int | None = None, task_type: str = "text-generation"
                 ) -> list[EvalResult]:
    """One EvalResult per metric, all on one dataset (Hub id, config, split): the model-index shows them as
    one result with its metrics. NaN (an empty part) is left out."""
    return [
        EvalResult(
            task_type=task_type,
            dataset_type=dataset_type,
            dataset_name=dataset_name,
            dataset_config=config,
            dataset_split=split,
            dataset_args={"num_few_shot": num_few_shot} if num_few_shot is not None else None,
            metric_type=name,
            metric_name=name,
            metric_value=round(float(value), 6),
        )
        for name, value in metrics.items() if value is not None and value == value
    ]


def heldout_results(metrics: dict[str, float], sources: list[str], *, from_validation_split: bool
                    ) -> list[EvalResult] | None:
    """Held-out figures in the model-index only when they were measured on a Hub dataset's own validation
    split (one source, pushed or named by id); a held-out share we cut ourselves stays in the card text."""
    hub = hub_id_of(sources[0]) if len(sources) == 1 and from_validation_split else None
    if not hub:
        return None
    return eval_results(metrics, dataset_type=hub, dataset_name=hub, split="validation")


def render(folder: str | Path, template: str, *, model_name: str, results: list[EvalResult] | None = None,
           base_model: str | None = None, datasets: list[str] | None = None, tags: list[str] | None = None,
           pipeline_tag: str | None = "text-generation", library_name: str | None = "transformers",
           license: str = "apache-2.0", **context) -> ModelCard:
    """Render model_cards/<template> into <folder>/README.md and return the card. `base_model` may be a local
    folder: the metadata then names its Hub id when it has one, else none, and the card text says why
    (context `parent_hub_id`, `parent_local`). Reports without weights pass library_name=pipeline_tag=None."""
    parent_hub = hub_id_of(base_model)
    data = ModelCardData(
        model_name=model_name,
        license=license,
        language=["en"],  # the embedded corpora, chat data and eval suites are English
        library_name=library_name,
        pipeline_tag=pipeline_tag,
        tags=["fromscratch", *(tags or [])],
        datasets=datasets or None,
        base_model=parent_hub,
        eval_results=results or None,
    )
    context.setdefault("config_yaml", yaml.safe_dump(context.get("config", {}), sort_keys=False))
    context.update(parent_hub_id=parent_hub, parent_local=base_model if base_model and not parent_hub else None)
    card = ModelCard.from_template(data, template_path=str(TEMPLATES / template), model_name=model_name, **context)
    card.save(Path(folder) / "README.md")
    return card


def link_parent(folder: str | Path) -> str | None:
    """Before a push: point the card's base_model at the parent's Hub id if the parent has been pushed since
    the card was written (or drop a local path an older card carried). Returns the base_model written."""
    folder = Path(folder)
    card_path, info_path = folder / "README.md", folder / "run_info.json"
    if not card_path.is_file() or not info_path.is_file():
        return None
    parents = [x.get("resolved") or x["spec"] for x in json.loads(info_path.read_text()).get("lineage", [])
               if isinstance(x, dict) and x.get("role") in PARENT_ROLES]  # resolved: the folder wherever we push from
    card = ModelCard.load(card_path)
    current = card.data.base_model
    linked = hub_id_of(parents[0]) if parents else (current if hub_id_of(current) == current else None)
    if linked != current:
        card.data.base_model = linked
        card.save(card_path)
    return linked


def with_metadata(markdown: str, *, tags: list[str], license: str = "apache-2.0") -> str:
    """A report card written as markdown (sweep, ablation) with Hub metadata in front: no weights, so no
    library_name or pipeline_tag."""
    data = ModelCardData(license=license, language=["en"], tags=["fromscratch", *tags])
    return f"---\n{data.to_yaml()}\n---\n\n{markdown}"


def plot_curves(log_history: list[dict], path: str | Path, keys: tuple[str, ...] = ("loss", "eval_loss"),
                title: str = "training curves") -> Path | None:
    """A PNG of the logged curves against the step (Agg backend: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = {k: [(r["step"], r[k]) for r in log_history if k in r and "step" in r] for k in keys}
    series = {k: v for k, v in series.items() if v}
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    for k, pts in series.items():
        xs, ys = zip(*pts)
        ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3, label=k)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("value")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def size_category(n: int) -> str:
    """The Hub's size_categories bucket for n rows."""
    if n < 1000:
        return "n<1K"
    bounds = ["1K", "10K", "100K", "1M", "10M", "100M", "1B", "10B", "100B", "1T"]
    k = min(len(str(n)) - 4, len(bounds) - 2)
    return f"{bounds[k]}<n<{bounds[k + 1]}"


def render_dataset(folder: str | Path, template: str, *, pretty_name: str, licenses: list[str],
                   n_documents: int, source_datasets: list[str] | None = None, tags: list[str] | None = None,
                   **context) -> DatasetCard:
    """Render model_cards/<template> as a dataset card (DatasetCard) into <folder>/README.md. `licenses` are
    the sources' licences in words; the metadata holds Hub licence ids where all are ones, else 'other' with
    the per-source licences in the card's table."""
    ids = sorted({x for x in licenses if x.replace("-", "").replace(".", "").isalnum() and x == x.lower()})
    all_ids = bool(ids) and len(ids) == len(set(licenses)) and "other" not in ids  # the Hub wants other's name
    data = DatasetCardData(
        pretty_name=pretty_name,
        license=ids if all_ids else "other",
        language=["en"],
        task_categories=["text-generation"],
        size_categories=[size_category(n_documents)],
        source_datasets=source_datasets or None,
        tags=["fromscratch", *(tags or [])],
        **({} if all_ids else {"license_name": "mixed", "license_details": "one licence per source: see the card"}),
    )
    context.setdefault("config_yaml", yaml.safe_dump(context.get("config", {}), sort_keys=False))
    card = DatasetCard.from_template(data, template_path=str(TEMPLATES / template), pretty_name=pretty_name,
                                     licenses=licenses, **context)
    card.save(Path(folder) / "README.md")
    return card
