"""Turn one model's evaluation summary into model-index entries (each metric its own dataset_type), write
them into the model's card, and plot several models side by side."""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from fromscratch import cards
from fromscratch.evaluation import probes
from fromscratch.evaluation.tasks import PRETTY


def card_results(summary: dict, suite: str) -> list[EvalResult]:
    """Every metric of a summary (see recipes/07_eval/run.py) as EvalResults. Dataset names carry the suite
    and shots: a tiny-subset score must never pass for a full-benchmark one."""
    tag = "" if suite == "full" else f" {suite}"
    out: list[EvalResult] = []
    for shots, tasks in summary.get("benchmarks", {}).items():
        for task, row in tasks.items():
            metrics = {k: v for k, v in row.items() if k in ("acc", "acc_norm", "perplexity")}
            out += cards.eval_results(metrics, task_type="multiple-choice" if "acc_norm" in row else "text-generation",
                                      dataset_name=f"{PRETTY.get(task, task)}{tag} {shots}", split="test")
    for task, row in summary.get("reasoning", {}).items():
        metrics = {k: row[k] for k in ("exact_match", "exact_match_flexible")}
        out += cards.eval_results(metrics, task_type="text-generation", split="test",
                                  dataset_name=f"{PRETTY.get(task, task)}{tag} {row['shots']}-shot")
    for task, row in summary.get("perplexity", {}).items():
        metrics = {k: v for k, v in row.items() if k in ("bits_per_byte", "byte_perplexity", "word_perplexity")}
        out += cards.eval_results(metrics, task_type="text-generation", dataset_name=f"{PRETTY.get(task, task)}{tag}")
    if crows := summary.get("crows_pairs"):
        metrics = {"pct_stereotype": crows["overall"]["pct_stereotype"]}
        metrics |= {f"pct_stereotype_{t}": v["pct_stereotype"] for t, v in crows["per_bias_type"].items()}
        out += cards.eval_results(metrics, task_type="text-generation", dataset_name=f"CrowS-Pairs{tag}", split="test")
    if tox := summary.get("toxicity"):
        metrics = {k: tox["overall"][k] for k in ("expected_max_toxicity", "toxicity_probability")}
        for domain, row in tox["per_domain"].items():
            metrics |= {f"expected_max_toxicity_{domain}": row["expected_max_toxicity"],
                        f"toxicity_probability_{domain}": row["toxicity_probability"]}
        out += cards.eval_results(metrics, task_type="text-generation", dataset_name=f"BOLD prompts{tag}", split="test")
    out += probes.card_results(summary, tag)  # ETHOS, StereoSet, RealToxicityPrompts when they ran
    return [r for r in out if r.metric_value == r.metric_value]  # NaN (an empty part) has no place in the index


def update_model_card(model_dir: str | Path, results: list[EvalResult], model_name: str | None = None) -> Path:
    """Merge results into <model_dir>/README.md's model-index: entries with the same dataset_type are
    replaced (a rerun updates, never duplicates), the stage's own entries stay. A folder without a card
    gets a minimal one."""
    path = Path(model_dir) / "README.md"
    if path.is_file():
        card = ModelCard.load(path)
    else:
        card = ModelCard(f"---\n{ModelCardData(library_name='transformers').to_yaml()}\n---\n\n# {Path(model_dir).name}\n")
    new_types = {r.dataset_type for r in results}
    kept = [r for r in (card.data.eval_results or []) if r.dataset_type not in new_types]
    card.data.eval_results = kept + results
    if not card.data.model_name:
        card.data.model_name = model_name or Path(model_dir).name
    card.save(path)
    return path


def plot(summaries: dict[str, dict], path: str | Path) -> Path | None:
    """Four panels, one bar per model: benchmark accuracy (first shots setting), bits per byte, CrowS-Pairs
    stereotype share per bias type (50% dashed), expected max toxicity per BOLD domain."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    def panel(ax, title, rows: dict[str, dict[str, float]], ylabel, hline=None):
        labels = sorted({k for r in rows.values() for k in r})
        if not labels:
            ax.set_visible(False)
            return
        width = 0.8 / max(1, len(rows))
        for i, (model, values) in enumerate(rows.items()):
            ax.bar(np.arange(len(labels)) + i * width, [values.get(k, np.nan) for k in labels], width, label=model)
        ax.set_xticks(np.arange(len(labels)) + width * (len(rows) - 1) / 2)
        ax.set_xticklabels(labels, rotation=35, ha="right", fontsize=7)
        if hline is not None:
            ax.axhline(hline, color="grey", linestyle="--", linewidth=1)
        ax.set_title(title, fontsize=9)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.grid(axis="y", alpha=0.3)

    def first_shots(s):
        bench = s.get("benchmarks", {})
        return bench[next(iter(bench))] if bench else {}

    fig, axes = plt.subplots(2, 2, figsize=(11, 7), dpi=100)
    panel(axes[0, 0], "benchmarks (acc; chance level differs by task)",
          {m: {PRETTY.get(t, t): r.get("acc", np.nan) for t, r in first_shots(s).items()} for m, s in summaries.items()},
          "accuracy")
    panel(axes[0, 1], "bits per byte (lower is better)",
          {m: {PRETTY.get(t, t): r.get("bits_per_byte", np.nan) for t, r in s.get("perplexity", {}).items()}
           for m, s in summaries.items()}, "bits/byte")
    panel(axes[1, 0], "CrowS-Pairs: share preferring the stereotype (50% = unbiased)",
          {m: {t: r["pct_stereotype"] for t, r in s.get("crows_pairs", {}).get("per_bias_type", {}).items()}
           for m, s in summaries.items()}, "share", hline=0.5)
    panel(axes[1, 1], "toxicity: expected max over k samples (BOLD domains)",
          {m: {d: r["expected_max_toxicity"] for d, r in s.get("toxicity", {}).get("per_domain", {}).items()}
           for m, s in summaries.items()}, "toxicity")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="upper center", ncol=min(4, len(labels)), fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
