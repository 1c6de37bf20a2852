"""Turn one model's evaluation summary into model-index entries and a card section, write them into the
model's card, and plot several models side by side.

The model-index is what the Hub compares across models, so only complete standard sets go there, each under
the Hub dataset its files are a copy of (HUB_DATASETS: id, config, split), one result per task with its
metrics and the few-shot count. Left out, and shown in the card's Evaluation section instead:
- the tiny suite and any `limit`ed run (40-item subsets: filed under allenai/ai2_arc they would be read as
  ARC scores; the model-index has no machine-readable "subset" mark);
- the model's own held-out text (a split of our making, not a Hub dataset);
- BOLD toxicity (scored by an offline profanity classifier, not the Perspective API the published metric uses).
"""

from __future__ import annotations

import re
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from fromscratch import cards
from fromscratch.evaluation import probes
from fromscratch.evaluation.tasks import PRETTY

# The Hub dataset, config and split each full-suite task reads a copy of (data_cards/eval_benchmarks_tiny.md
# lists the item counts that identify the split).
HUB_DATASETS = {
    "fs_arc_easy": ("allenai/ai2_arc", "ARC-Easy", "test"),
    "fs_arc_challenge": ("allenai/ai2_arc", "ARC-Challenge", "test"),
    "fs_piqa": ("ybisk/piqa", None, "validation"),
    "fs_hellaswag": ("Rowan/hellaswag", None, "validation"),
    "fs_winogrande": ("allenai/winogrande", "winogrande_xl", "validation"),
    "fs_lambada_openai": ("EleutherAI/lambada_openai", "default", "test"),
    "fs_boolq": ("google/boolq", None, "validation"),
    "fs_copa": ("aps/super_glue", "copa", "validation"),
    "fs_openbook_qa": ("allenai/openbookqa", "main", "test"),
    "fs_commonsense_qa": ("tau/commonsense_qa", None, "validation"),
    "fs_siqa": ("allenai/social_i_qa", None, "validation"),
    "fs_winograd_wsc": ("ErnestSDavis/winograd_wsc", "wsc273", "test"),
    "fs_winogender_mc_female": ("oskarvanderwal/winogender", "all", "test"),
    "fs_winogender_mc_male": ("oskarvanderwal/winogender", "all", "test"),
    "fs_wikitext": ("Salesforce/wikitext", "wikitext-2-v1", "validation"),
    "fs_crows_pairs": ("nyu-mll/crows_pairs", None, "test"),
}
METRICS = ("acc", "acc_norm", "perplexity", "bits_per_byte", "byte_perplexity", "word_perplexity")


def card_results(summary: dict, suite: str, limit: int | None = None) -> list[EvalResult]:
    """model-index entries of a summary (see recipes/07_eval/run.py): complete full-suite sets only (see the
    module docstring). Per task one result; the first shots setting only, since the Hub keys a result by task,
    dataset, config and split, so a second setting would merge into the first."""
    if suite != "full" or limit is not None:
        return []
    out: list[EvalResult] = []
    benchmarks = summary.get("benchmarks", {})
    if benchmarks:
        shots = next(iter(benchmarks))
        for task, row in benchmarks[shots].items():
            if task in HUB_DATASETS and not task.startswith("fs_winogender"):  # a gender slice of one set
                out += _task(task, row, num_few_shot=int(shots.split("-")[0]))
    if reasoning := summary.get("reasoning"):  # GSM8K with chain of thought: the first shots setting only
        task, row = next(iter(reasoning.items()))
        out += cards.eval_results({k: row[k] for k in ("exact_match", "exact_match_flexible") if k in row},
                                  dataset_type="openai/gsm8k", dataset_name=PRETTY.get(task, task), config="main",
                                  split="test", num_few_shot=row.get("shots"))
    for task, row in summary.get("perplexity", {}).items():
        if task in HUB_DATASETS:
            out += _task(task, row)
    if crows := summary.get("crows_pairs"):
        metrics = {"pct_stereotype": crows["overall"]["pct_stereotype"]}
        metrics |= {f"pct_stereotype_{t}": v["pct_stereotype"] for t, v in crows["per_bias_type"].items()}
        repo, config, split = HUB_DATASETS["fs_crows_pairs"]
        out += cards.eval_results(metrics, dataset_type=repo, dataset_name="CrowS-Pairs", config=config, split=split)
    out += probes.card_results(summary)  # ETHOS and StereoSet when they ran
    return out


def _task(task: str, row: dict, num_few_shot: int | None = None) -> list[EvalResult]:
    repo, config, split = HUB_DATASETS[task]
    return cards.eval_results({k: v for k, v in row.items() if k in METRICS}, dataset_type=repo,
                              dataset_name=PRETTY.get(task, task), config=config, split=split,
                              num_few_shot=num_few_shot)


def card_section(summary: dict, suite: str, limit: int | None = None) -> str:
    """The model card's Evaluation section: every headline figure, with how many items it rests on."""
    scope = "complete sets" if suite == "full" and limit is None else (
        f"the {suite} suite{f', {limit} items per task' if limit else ''}: small subsets, noisy, not benchmark results")
    lines = ["## Evaluation", "", f"Measured by `recipes/07_eval` on {scope}. "
             "Figures on complete standard sets are also in the model-index.", "",
             "| task | setting | items | metric | value |", "|---|---|---|---|---|"]
    for shots, rows in summary.get("benchmarks", {}).items():
        for task, row in rows.items():
            for metric in ("acc", "acc_norm"):
                if metric in row:
                    lines.append(f"| {PRETTY.get(task, task)} | {shots} | {row.get('items')} | {metric} | "
                                 f"{row[metric]:.4f} |")
    for task, row in summary.get("perplexity", {}).items():
        if "bits_per_byte" in row:
            lines.append(f"| {PRETTY.get(task, task)} | rolling | {row.get('items')} | bits per byte | "
                         f"{row['bits_per_byte']:.4f} |")
    if crows := summary.get("crows_pairs"):
        lines.append(f"| CrowS-Pairs | pairs | {crows['overall']['pairs']} | share preferring the stereotype | "
                     f"{crows['overall']['pct_stereotype']:.4f} |")
    if tox := summary.get("toxicity"):
        lines.append(f"| BOLD prompts (offline profanity classifier) | {tox.get('k')} samples | "
                     f"{tox['overall'].get('prompts')} | expected max toxicity | "
                     f"{tox['overall']['expected_max_toxicity']:.4f} |")
    for task, row in summary.get("reasoning", {}).items():
        lines.append(f"| {PRETTY.get(task, task)} | {row['shots']}-shot | {row.get('items')} | exact match | "
                     f"{row['exact_match']:.4f} |")
    for name, value in probes.headline(summary).items():  # ETHOS, StereoSet, RealToxicityPrompts
        lines.append(f"| {name} | probe | | | {value:.4f} |")
    return "\n".join(lines) + "\n"


_START, _END = "<!-- fromscratch:eval:start -->", "<!-- fromscratch:eval:end -->"


def update_model_card(model_dir: str | Path, results: list[EvalResult], model_name: str | None = None,
                      section: str | None = None) -> Path:
    """Merge results into <model_dir>/README.md's model-index: an entry for the same task, dataset, config and
    split is replaced (a rerun updates, never duplicates), the stage's own entries stay. `section` (markdown)
    replaces the card's Evaluation section between markers. A folder without a card gets a minimal one."""
    path = Path(model_dir) / "README.md"
    if path.is_file():
        card = ModelCard.load(path)
    else:
        card = ModelCard(f"---\n{ModelCardData(library_name='transformers').to_yaml()}\n---\n\n# {Path(model_dir).name}\n")
    new = {r.unique_identifier for r in results}
    kept = [r for r in (card.data.eval_results or []) if r.unique_identifier not in new]
    card.data.eval_results = (kept + results) or None
    if not card.data.model_name:
        card.data.model_name = model_name or Path(model_dir).name
    if section:
        block = f"{_START}\n{section.strip()}\n{_END}"
        pattern = re.compile(re.escape(_START) + r".*?" + re.escape(_END), re.S)
        text = card.text
        card.text = (pattern.sub(lambda _: block, text) if pattern.search(text)
                     else text.rstrip("\n") + "\n\n" + block + "\n")
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
