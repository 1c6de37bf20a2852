"""Hyperparameter sweeps: a search space declared in YAML, optuna trials through Trainer.hyperparameter_search,
their table and plot, the best point written back as a stage 03 YAML, and learning-rate transfer across scale.

A space is a mapping `name: spec`, where name is a pretraining key (a TrainingArguments field such as
learning_rate, or the model's dropout) and spec is one of:
    {low: 1.0e-4, high: 3.0e-2, log: true}      a float range (log: sample the exponent uniformly)
    {low: 0, high: 100, type: int, step: 10}    an integer range
    {choices: [8, 16, 32]}                      a categorical choice
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

from ..config import UserError
from .experiment import MODEL_KEYS, TRAIN_KEYS

SPEC_KEYS = {"low", "high", "log", "step", "type", "choices"}
MODEL_SPACE_KEYS = {"dropout"}  # model keys a trial may change (shape changes belong to `scales`)


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # float | int | categorical
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple = ()

    def suggest(self, trial):
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    @property
    def numeric(self) -> bool:
        return self.kind != "categorical" or all(isinstance(c, (int, float)) for c in self.choices)


def parse_space(space: dict, where: str = "space") -> list[Param]:
    """Check a declared search space; any mistake is one UserError line naming the key."""
    if not isinstance(space, dict) or not space:
        raise UserError(f"{where}: needs at least one hyperparameter (name: {{low, high}} or {{choices: [...]}})")
    params = []
    for name, spec in space.items():
        key = f"{where}.{name}"
        if name not in TRAIN_KEYS and name not in MODEL_SPACE_KEYS:
            hint = " (model shape: use scales)" if name in MODEL_KEYS else ""
            raise UserError(f"{key}: not a training argument or model dropout{hint}")
        if not isinstance(spec, dict):
            raise UserError(f"{key}: expects a mapping like {{low: 0.0001, high: 0.01, log: true}}, got {spec!r}")
        unknown = set(spec) - SPEC_KEYS
        if unknown:
            raise UserError(f"{key}: unknown field '{sorted(unknown)[0]}' (have: {', '.join(sorted(SPEC_KEYS))})")
        if "choices" in spec:
            if set(spec) - {"choices"}:
                raise UserError(f"{key}: choices cannot be combined with {sorted(set(spec) - {'choices'})[0]}")
            if not isinstance(spec["choices"], list) or not spec["choices"]:
                raise UserError(f"{key}.choices: expects a non-empty list, got {spec['choices']!r}")
            params.append(Param(name, "categorical", choices=tuple(spec["choices"])))
            continue
        if "low" not in spec or "high" not in spec:
            raise UserError(f"{key}: a range needs both low and high (or give choices)")
        kind = spec.get("type", "float")
        if kind not in ("float", "int"):
            raise UserError(f"{key}.type: expects float or int, got {kind!r}")
        try:
            low, high = float(spec["low"]), float(spec["high"])
            step = None if spec.get("step") is None else float(spec["step"])
        except (TypeError, ValueError):
            raise UserError(f"{key}: low, high and step must be numbers, got {spec!r}") from None
        if not low < high:
            raise UserError(f"{key}: low must be below high, got low {low} and high {high}")
        log = spec.get("log", False)
        if not isinstance(log, bool):
            raise UserError(f"{key}.log: expects true or false, got {log!r}")
        if log and low <= 0:
            raise UserError(f"{key}: a log range needs low > 0, got {low}")
        if log and step is not None:
            raise UserError(f"{key}: step and log cannot be combined (optuna samples one or the other)")
        params.append(Param(name, kind, low, high, log, step))
    return params


def finished(study) -> list:
    """Trials that count: completed or pruned (a trial cut by a kill is neither, and is run again)."""
    from optuna.trial import TrialState

    return [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]


def requeue_interrupted(study) -> int:
    """Trials left RUNNING by a killed sweep: mark them failed and queue their parameters again."""
    from optuna.trial import TrialState

    n = 0
    for t in study.trials:
        if t.state == TrialState.RUNNING:
            study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
            study.enqueue_trial(t.params, skip_if_exists=False)
            n += 1
    return n


def trial_rows(study, scale: str, params: list[Param]) -> list[dict]:
    rows = []
    for t in study.trials:
        steps = sorted(t.intermediate_values)
        seconds = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete and t.datetime_start else None
        rows.append({
            "scale": scale, "trial": t.number, "state": t.state.name.lower(),
            "bits_per_byte": t.value if t.value is not None else (t.intermediate_values[steps[-1]] if steps else None),
            "last_step": steps[-1] if steps else None, "seconds": round(seconds, 1) if seconds else None,
            "parameters": t.user_attrs.get("parameters"),
            **{p.name: t.params.get(p.name) for p in params},
        })
    return rows


def write_table(rows: list[dict], csv_path: Path, json_path: Path) -> None:
    json_path.write_text(json.dumps(rows, indent=1))
    if not rows:
        return
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def plot_trials(rows: list[dict], params: list[Param], path: Path) -> Path | None:
    """Objective against each numeric hyperparameter; pruned trials at the value they were stopped at."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [p for p in params if p.numeric][:4]
    rows = [r for r in rows if r["bits_per_byte"] is not None]
    if not shown or not rows:
        return None
    fig, axes = plt.subplots(1, len(shown), figsize=(3.6 * len(shown), 3.2), dpi=100, squeeze=False)
    scales = sorted({r["scale"] for r in rows}, key=lambda s: [r["scale"] for r in rows].index(s))
    for ax, p in zip(axes[0], shown):
        for i, scale in enumerate(scales):
            for state, marker in (("complete", "o"), ("pruned", "x")):
                pts = [(r[p.name], r["bits_per_byte"]) for r in rows
                       if r["scale"] == scale and r["state"] == state and r[p.name] is not None]
                if pts:
                    xs, ys = zip(*pts)
                    label = f"{scale} {state}" if len(scales) > 1 else state
                    ax.scatter(xs, ys, marker=marker, color=f"C{i}", label=label, s=28)
        if p.log:
            ax.set_xscale("log")
        ax.set_xlabel(p.name)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("validation bits per byte")
    axes[0][0].legend(fontsize=7)
    fig.suptitle("sweep: lower is better (x: pruned, at its last report)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def fit_power_law(sizes: list[float], values: list[float]) -> tuple[float, float]:
    """Least squares of log(value) = log(a) + b log(size): value = a * size**b."""
    if len(sizes) < 2 or len(set(sizes)) < 2:
        raise ValueError("a power law needs at least two different sizes")
    xs, ys = [math.log(s) for s in sizes], [math.log(v) for v in values]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return math.exp(my - b * mx), b


def read_target_params(target_params: float | None, plan_json: str | None) -> float | None:
    """The model size to propose a learning rate for: given directly, or a planner JSON's `params`."""
    if plan_json:
        path = Path(plan_json)
        try:
            plan = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise UserError(f"plan_json: cannot read {path} ({err.__class__.__name__})") from None
        value = plan.get("params") if isinstance(plan, dict) else None
        if not isinstance(value, (int, float)) or value <= 0:
            raise UserError(f"plan_json: {path} has no positive number under 'params'")
        return float(value)
    if target_params is not None and target_params <= 0:
        raise UserError(f"target_params must be positive, got {target_params}")
    return target_params


def lr_optimum(lrs: list[float], objectives: list[float]) -> tuple[float, str]:
    """The learning rate at the bottom of a parabola through objective vs log(LR), where it is one.

    A sweep's best trial is only the best of a few points; the vertex of a quadratic through the completed
    trials is a steadier estimate for the transfer fit. Falls back to the best trial when there are fewer than
    3 points or the parabola opens downwards or bottoms outside the sampled range.
    """
    import numpy as np

    best = lrs[int(np.argmin(objectives))]
    if len(set(lrs)) < 3:
        return best, "best trial"
    x = np.log(np.asarray(lrs, dtype=float))
    c2, c1, _ = np.polyfit(x, np.asarray(objectives, dtype=float), 2)
    if c2 <= 0 or not x.min() <= -c1 / (2 * c2) <= x.max():
        return best, "best trial"
    return float(np.exp(-c1 / (2 * c2))), "parabola vertex"
