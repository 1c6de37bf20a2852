"""The whole run on one page: `make report` writes outputs/report.md and outputs/report.html from what each
stage recorded (run_info.json metrics, stats.json, results.json, table.md and the plots beside them), linking
each stage's card. A stage that did not run is named with the command that runs it, not left out silently.

Only finished outputs are read (artifacts.is_finished); nothing here trains or scores a model, so the page costs
the same whatever the corpus size.

    python -m fromscratch.run_report [--outputs outputs]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from fromscratch.artifacts import FINISHED_MARKER, is_finished
from fromscratch.config import UserError

# (folder under outputs/, title, make target, [(metric key in run_info, label)]): the stage's key figures
STAGES = [
    ("01_data", "Data", "data", [("train_documents", "train documents"),
                                 ("validation_documents", "validation documents"),
                                 ("train_characters", "train characters")]),
    ("02_tokenizer", "Tokenizer", "tokenizer", [("vocab_size", "vocabulary"),
                                                ("bytes_per_token", "bytes per token (held-out)"),
                                                ("train_seconds", "training seconds")]),
    ("03_tokens", "Token shards", "tokenize", [("train_tokens", "train tokens"),
                                              ("validation_tokens", "validation tokens"),
                                              ("bytes_per_token", "bytes per token")]),
    ("03_pretrain", "Pretraining", "pretrain", [("parameters", "parameters"),
                                                ("initial_eval_loss", "eval loss at step 0"),
                                                ("eval_loss", "eval loss"), ("bits_per_byte", "bits per byte"),
                                                ("train_tokens", "train tokens"), ("steps", "steps"),
                                                ("tokens_per_second", "tokens per second"),
                                                ("train_seconds", "training seconds")]),
    ("04_sft", "SFT", "sft", [("initial_eval_loss", "held-out loss before"), ("eval_loss", "held-out loss after"),
                              ("eval_mean_token_accuracy", "token accuracy"),
                              ("train_conversations", "train conversations"), ("steps", "steps")]),
    ("05_reward", "Reward model", "reward", [("initial_eval_accuracy", "pair accuracy before"),
                                             ("eval_accuracy", "pair accuracy after"),
                                             ("eval_margin", "mean margin"), ("train_pairs", "train pairs")]),
    ("06_rlhf", "RLHF", "rlhf", [("algorithm", "algorithm"), ("reward_first", "reward, first step"),
                                 ("reward_last", "reward, last step"), ("kl_last", "KL, last step"),
                                 ("kl_max", "KL, max"), ("steps", "steps")]),
    ("07_eval", "Evaluation", "eval", []),
    ("10_mitigate", "Bias and toxicity mitigation", "mitigation-report", []),
]


def _fmt(v) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:,.4f}" if abs(v) < 100 else f"{v:,.1f}"
    return str(v)


def _read(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def stderr(p: float, n: int) -> float | None:
    """lm-eval's standard error of a mean accuracy over n items (sample stdev / sqrt n)."""
    return math.sqrt(p * (1 - p) / (n - 1)) if n > 1 else None


def data_rows(folder: Path) -> list[str]:
    """Documents in, kept and dropped (with reasons) per step of the data stage."""
    stats = _read(folder / "stats.json") or {}
    lines = []
    for step in stats.get("steps", []):
        dropped = step.get("dropped") or {}
        reasons = "; ".join(f"{k} {v:,}" for k, v in sorted(dropped.items(), key=lambda kv: -kv[1]))
        lines.append(f"| {step.get('step')} | {step.get('in', 0):,} | {step.get('kept', 0):,} | "
                     f"{step.get('in', 0) - step.get('kept', 0):,} | {reasons} |")
    return (["| step | in | kept | dropped | why |", "|---|---|---|---|---|"] + lines) if lines else []


def eval_rows(folder: Path) -> list[str]:
    """One row per benchmark and model: accuracy ± stderr (from its item count), perplexity as bits per byte."""
    results = (_read(folder / "results.json") or {}).get("models", {})
    if not results:
        return []
    names = list(results)
    table: dict[str, dict[str, str]] = {}
    for name, summary in results.items():
        for shots, tasks in (summary.get("benchmarks") or {}).items():
            for task, row in tasks.items():
                if "acc" in row:
                    err = stderr(row["acc"], row.get("items", 0))
                    cell = f"{row['acc']:.3f}" + (f" ± {err:.3f}" if err is not None else "")
                    table.setdefault(f"{task.removeprefix('fs_')} ({shots}) acc", {})[name] = cell
        for task, row in (summary.get("perplexity") or {}).items():
            if "bits_per_byte" in row:
                table.setdefault(f"{task.removeprefix('fs_')} bits per byte", {})[name] = f"{row['bits_per_byte']:.4f}"
        tox = (summary.get("toxicity") or {}).get("overall")
        if tox:
            table.setdefault("BOLD expected max toxicity", {})[name] = f"{tox['expected_max_toxicity']:.3f}"
        crows = (summary.get("crows_pairs") or {}).get("overall")
        if crows:
            err = stderr(crows["pct_stereotype"], crows.get("pairs", 0))
            table.setdefault("CrowS-Pairs % stereotyped", {})[name] = \
                f"{100 * crows['pct_stereotype']:.1f}" + (f" ± {100 * err:.1f}" if err is not None else "")
    head = ["| benchmark | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    return head + [f"| {k} | " + " | ".join(v.get(n, "") for n in names) + " |" for k, v in table.items()]


def stage_section(outputs: Path, folder_name: str, title: str, target: str,
                  keys: list[tuple[str, str]]) -> tuple[list[str], bool]:
    folder = outputs / folder_name
    lines = [f"## {title}", ""]
    if not is_finished(folder):
        why = "not finished (a .tmp run is in progress or was cut)" if folder.with_name(folder.name + ".tmp").exists() \
            else "did not run"
        return lines + [f"Missing: `{folder_name}` {why}. Run `make {target}`.", ""], False
    info = _read(folder / FINISHED_MARKER) or {}
    metrics = info.get("metrics") or {}
    rel = os.path.relpath(folder, outputs)  # the page sits in outputs/: links work wherever it is copied with it
    card = f"[card]({rel}/README.md)" if (folder / "README.md").is_file() else "no card"
    lines += [f"{card} · finished {info.get('finished_at', '?')} · {info.get('wall_seconds', '?')} s wall", ""]
    rows = [(label, metrics[k]) for k, label in keys if k in metrics]
    if rows:
        lines += ["| figure | value |", "|---|---|"] + [f"| {label} | {_fmt(v)} |" for label, v in rows] + [""]
    if folder_name == "01_data":
        lines += data_rows(folder) + [""]
    if folder_name == "07_eval":
        lines += eval_rows(folder) + [""]
    if folder_name == "10_mitigate" and (folder / "table.md").is_file():
        lines += [(folder / "table.md").read_text().strip(), ""]
    for plot in sorted(folder.glob("*.png")):
        lines += [f"![{title}: {plot.stem}]({rel}/{plot.name})", ""]
    return lines, True


def build(outputs: Path) -> tuple[str, list[str]]:
    """The report's Markdown, and the stages it found missing."""
    lines, missing = ["# The run on one page", "",
                      f"Every stage's key figures from `{outputs}`; each section links the stage's card.", ""], []
    for folder_name, title, target, keys in STAGES:
        section, present = stage_section(outputs, folder_name, title, target, keys)
        lines += section
        if not present:
            missing.append(folder_name)
    return "\n".join(lines).rstrip() + "\n", missing


def to_html(markdown_text: str) -> str:
    import markdown

    body = markdown.markdown(markdown_text, extensions=["tables"])
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>fromscratch run report</title>"
            "<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:left}"
            "img{max-width:100%}</style></head><body>\n" + body + "\n</body></html>\n")


def write(outputs: Path) -> list[str]:
    """Write report.md and report.html into `outputs` (each replaced whole, never half-written)."""
    if not outputs.is_dir():
        raise UserError(f"--outputs: no such folder {outputs} (run `make demo` first)")
    text, missing = build(outputs)
    for name, content in (("report.md", text), ("report.html", to_html(text))):
        tmp = outputs / f".{name}.tmp"
        tmp.write_text(content)
        os.replace(tmp, outputs / name)
    return missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fromscratch.run_report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--outputs", default="outputs", help="the folder that holds the stages' outputs")
    args = parser.parse_args(argv)
    try:
        missing = write(Path(args.outputs))
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"[report] {args.outputs}/report.md and report.html"
          + (f"; missing: {', '.join(missing)}" if missing else "; every stage present"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
