"""Model cards and curve plots, through huggingface_hub's ModelCard with our Jinja templates in model_cards/.

Every stage's output gets a README.md with valid Hub metadata (license, datasets, tags, library_name,
pipeline_tag, base_model, model-index results), its resolved config, stack versions, data lineage and a PNG of
its curves. Each metric gets its own `dataset_type`: huggingface_hub merges EvalResults that share task and
dataset type and then loses a dataset name (STACK_NOTES).
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from huggingface_hub import DatasetCard, DatasetCardData, EvalResult, ModelCard, ModelCardData

TEMPLATES = Path(os.environ.get("FROMSCRATCH_TEMPLATES", Path(__file__).resolve().parents[2] / "model_cards"))


def eval_results(metrics: dict[str, float], *, task_type: str, dataset_name: str, split: str = "validation"
                 ) -> list[EvalResult]:
    """One EvalResult per metric, each with its own dataset_type so none is merged away."""
    slug = dataset_name.lower().replace(" ", "-").replace("/", "-")
    return [
        EvalResult(
            task_type=task_type,
            dataset_type=f"{slug}-{name}",
            dataset_name=dataset_name,
            dataset_split=split,
            metric_type=name,
            metric_name=name,
            metric_value=round(float(value), 6),
        )
        for name, value in metrics.items()
    ]


def render(folder: str | Path, template: str, *, model_name: str, results: list[EvalResult] | None = None,
           base_model: str | None = None, datasets: list[str] | None = None, tags: list[str] | None = None,
           pipeline_tag: str | None = "text-generation", license: str = "apache-2.0", **context) -> ModelCard:
    """Render model_cards/<template> into <folder>/README.md and return the card."""
    data = ModelCardData(
        model_name=model_name,
        license=license,
        library_name="transformers",
        pipeline_tag=pipeline_tag,
        tags=["fromscratch", *(tags or [])],
        datasets=datasets or None,
        base_model=base_model,
        eval_results=results or None,
    )
    context.setdefault("config_yaml", yaml.safe_dump(context.get("config", {}), sort_keys=False))
    card = ModelCard.from_template(data, template_path=str(TEMPLATES / template), model_name=model_name, **context)
    card.save(Path(folder) / "README.md")
    return card


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
    all_ids = bool(ids) and len(ids) == len(set(licenses))
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
