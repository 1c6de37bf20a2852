"""Ablations: named architecture switches on top of a base model, what each one changed, and the results table.

A variant is `name: {key: value, ...}` over the base config's model keys (stage 03's, plus the switches of
fromscratch.experiments.experiment: family gpt2, parallel_residual, rotary_pct, hidden_act). Training keys are not
allowed in a variant: every variant gets the base's seed, data and token budget, so only the model differs.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from ..config import UserError
from .experiment import MODEL_KEYS, SWITCH_KEYS


def check_variants(variants: dict) -> dict[str, dict]:
    if not isinstance(variants, dict) or not variants:
        raise UserError("variants: needs at least one `name: {key: value}` switch to compare with the base")
    for name, over in variants.items():
        if name == "base":
            raise UserError("variants.base: the name 'base' is the reference run; pick another name")
        if not isinstance(over, dict) or not over:
            raise UserError(f"variants.{name}: expects a mapping of model keys, e.g. {{tie_word_embeddings: false}}")
        for key in over:
            if key not in MODEL_KEYS | SWITCH_KEYS:
                why = " (variants change the model only: same seed, data and token budget)" if key not in MODEL_KEYS else ""
                raise UserError(f"variants.{name}.{key}: not a model key or switch{why}")
    return variants


def modules(model) -> dict[str, int]:
    """Module class name -> how many (the architecture a switch should change)."""
    out: dict[str, int] = {}
    for m in model.modules():
        out[type(m).__name__] = out.get(type(m).__name__, 0) + 1
    return out


def describe(base_model, model) -> dict:
    """What a variant changed against the base: parameters, module types, config values."""
    from ..modeling import count_parameters

    a, b = modules(base_model), modules(model)
    base_cfg, cfg = base_model.config.to_dict(), model.config.to_dict()
    skip = {"architectures", "transformers_version", "_name_or_path", "dtype"}
    changed = sorted(k for k in set(base_cfg) | set(cfg) if k not in skip and base_cfg.get(k) != cfg.get(k))
    return {"parameters": count_parameters(model), "parameter_delta": count_parameters(model) - count_parameters(base_model),
            "modules_added": sorted(set(b) - set(a)), "modules_removed": sorted(set(a) - set(b)),
            "config_changed": changed}


def write_table(rows: list[dict], folder: Path) -> str:
    """CSV + JSON of the results, and the markdown table for the card."""
    (folder / "ablation.json").write_text(json.dumps(rows, indent=1))
    cols = ["variant", "switch", "parameters", "bits_per_byte", "delta_bpb", "tokens_per_second", "speed_vs_base"]
    with open(folder / "ablation.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    fmt = {"bits_per_byte": "{:.4f}", "delta_bpb": "{:+.4f}", "tokens_per_second": "{:.0f}", "speed_vs_base": "{:.2f}x"}
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = [fmt[c].format(r[c]) if c in fmt and r.get(c) is not None else str(r.get(c, "")) for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> Path:
    """Validation bits per byte and tokens/s per variant, the base drawn as a reference line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["variant"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), dpi=100)
    for ax, key, label in ((axes[0], "bits_per_byte", "validation bits per byte (lower is better)"),
                           (axes[1], "tokens_per_second", "training tokens/s")):
        values = [r[key] or 0.0 for r in rows]
        ax.bar(names, values, color=["C7" if n == "base" else "C0" for n in names])
        ax.axhline(rows[0][key] or 0.0, color="C3", linestyle="--", linewidth=1, label="base")
        if key == "bits_per_byte":
            lo, hi = min(values), max(values)
            ax.set_ylim(lo - 0.5 * (hi - lo + 1e-3), hi + 0.2 * (hi - lo + 1e-3))
        ax.set_title(label, fontsize=9)
        ax.tick_params(axis="x", rotation=30, labelsize=8)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
