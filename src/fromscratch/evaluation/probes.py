"""The registry of the bias and toxicity probes (ethos, stereoset, rtp): their keys, which of them a config
turns on, and their summaries as model-index entries, headline figures and before/after table rows.

It sits above the probe modules, which read and score through `scoring.py` and never import this one, so
recipes and the report import the probes from one place without a circle.
Each probe is off unless its key names a source (`ethos_source`, `stereoset_source`, `rtp_source`).
`ProbeArguments` holds their keys and the BOLD toxicity sampling's, for every recipe that runs them (07, 10).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fromscratch.config import checked
from fromscratch.evaluation import ethos, rtp, stereoset
from fromscratch.evaluation.scoring import on


@dataclass
class ProbeArguments:
    """The toxicity and bias probes' keys (recipes/07_eval and recipes/10_mitigate parse them beside their own)."""

    toxicity_prompts_per_domain: int | None = checked(None, ge=1,
                                                      help="a seeded sample of BOLD prompts per domain (null: all)")
    toxicity_samples: int = checked(5, ge=0, help="continuations per prompt (k; RealToxicityPrompts uses 25; 0: off)")
    toxicity_max_new_tokens: int = checked(20, ge=1, help="continuation length (RealToxicityPrompts: 20 tokens)")
    toxicity_threshold: float = checked(0.5, ge=0, le=1, help="classifier probability that counts as toxic")
    ethos_source: str | None = field(default=None, metadata={
        "help": "ETHOS hate-speech detection: a folder with its two CSVs, or the Hub id ethos (null: off)"})
    ethos_num_fewshot: list[int] = checked(default_factory=lambda: [0, 5], ge=0,
        help="shots settings, each one more pass per model")
    ethos_limit: int | None = field(default=None, metadata={
        "help": "seeded sample per set, binary and multi-label (null: all)"})
    stereoset_source: str | None = field(default=None, metadata={
        "help": "StereoSet: McGill-NLP/stereoset, a local copy in its layout, or its dev.json (null: off)"})
    stereoset_configs: list[str] = field(default_factory=lambda: ["intrasentence", "intersentence"], metadata={
        "help": "intrasentence, intersentence (scored given the context: no NSP head here)"})
    stereoset_limit: int | None = field(default=None, metadata={"help": "seeded sample per config (null: all)"})
    rtp_source: str | None = field(default=None, metadata={
        "help": "RealToxicityPrompts: allenai/real-toxicity-prompts or a local prompts.jsonl (null: off)"})
    rtp_challenging_prompts: int | None = field(default=None, metadata={
        "help": "seeded sample of the challenging subset (null: all of it)"})
    rtp_random_prompts: int | None = field(default=1000, metadata={
        "help": "seeded random sample of all prompts (null: all)"})
    rtp_samples: int | None = checked(None, ge=1, help="continuations per prompt (null: toxicity_samples)")
    rtp_max_new_tokens: int | None = field(default=None, metadata={
        "help": "continuation length (null: toxicity_max_new_tokens)"})

    def __post_init__(self):  # RealToxicityPrompts samples as the BOLD probe does unless told otherwise
        if self.rtp_samples is None:
            self.rtp_samples = self.toxicity_samples
        if self.rtp_max_new_tokens is None:
            self.rtp_max_new_tokens = self.toxicity_max_new_tokens


def load_sources(args: ProbeArguments, seed: int) -> tuple[dict, dict]:
    """({probe: its rows}, {probe: malformed rows}) for each probe whose key names a source. Read before any
    model work, so that a wrong path or Hub id fails first."""
    data, skipped = {}, {}
    if on(args.ethos_source):
        data["ethos"], skipped["ethos"] = ethos.load(args.ethos_source)
    if on(args.stereoset_source):
        data["stereoset"], skipped["stereoset"] = stereoset.load(args.stereoset_source, args.stereoset_configs)
    if on(args.rtp_source):
        data["rtp"], skipped["rtp"] = rtp.load(args.rtp_source, sample_size=args.rtp_random_prompts,
                                               challenging_size=args.rtp_challenging_prompts, seed=seed)
    return data, skipped


# --- results: model-index entries, headline figures ---------------------------------------------------------


def card_results(summary: dict) -> list:
    """The probes' figures as model-index entries, under the Hub datasets they read (call it for complete sets
    only: see evaluation/report.py). One shots setting per set (the Hub keys a result by dataset, config and
    split, so a second would merge into the first). RealToxicityPrompts is left out, as BOLD is: it is scored
    by an offline profanity classifier, not the Perspective API its published metric uses."""
    from fromscratch import cards

    out = []
    shots = [k for k in summary.get("ethos", {}) if k.endswith("-shot")]
    if shots:
        row, n = summary["ethos"][shots[0]], int(shots[0].split("-")[0])
        out += cards.eval_results({m: row["binary"][m] for m in ("accuracy", "f1")}, dataset_type="ethos",
                                  dataset_name="ETHOS binary", config="binary", split="train", num_few_shot=n,
                                  task_type="text-classification")
        if "multilabel" in row:
            metrics = {f"f1_{label}": v["f1"] for label, v in row["multilabel"].items() if label != "macro_f1"}
            out += cards.eval_results(metrics | {"macro_f1": row["multilabel"]["macro_f1"]}, dataset_type="ethos",
                                      dataset_name="ETHOS multilabel", config="multilabel", split="train",
                                      num_few_shot=n, task_type="text-classification")
    for config, row in summary.get("stereoset", {}).items():
        if config in ("intrasentence", "intersentence"):
            metrics = {m: row["overall"][m] for m in ("ss", "lms", "icat")}
            metrics |= {f"icat_{t}": v["icat"] for t, v in row["per_bias_type"].items()}
            out += cards.eval_results(metrics, dataset_type="McGill-NLP/stereoset", dataset_name=f"StereoSet {config}",
                                      config=config, split="validation")
    return out


def headline(summary: dict) -> dict[str, float]:
    """One figure or two per probe for logs, run_info and the card's headline table."""
    out = {}
    for shots, row in ((k, v) for k, v in summary.get("ethos", {}).items() if k.endswith("-shot")):
        out[f"ethos_{shots}_f1"] = round(row["binary"]["f1"], 4)
        out[f"ethos_{shots}_accuracy"] = round(row["binary"]["accuracy"], 4)
    for config, row in summary.get("stereoset", {}).items():
        if config in ("intrasentence", "intersentence"):
            out[f"stereoset_{config}_ss"] = round(row["overall"]["ss"], 2)
            out[f"stereoset_{config}_icat"] = round(row["overall"]["icat"], 2)
    for subset in ("challenging", "random"):
        if row := summary.get("rtp", {}).get(subset):
            out[f"rtp_{subset}_expected_max_toxicity"] = round(row["overall"]["expected_max_toxicity"], 4)
    return out


# --- recipes/10_mitigate: the probes before and after a mitigation ------------------------------------------


def measure_bias(model, tokenizer, data: dict, *, ethos_shots: list[int], ethos_limit: int | None,
                 stereoset_limit: int | None, seed: int, batch_size: int = 16) -> dict:
    """ETHOS and StereoSet (those present in `data`) on one model, for the base / control / augmented rows."""
    from fromscratch.evaluation import ethos, stereoset, tasks

    if not ({"ethos", "stereoset"} & set(data)):
        return {}
    lm = tasks.harness(model, tokenizer, batch_size=batch_size)
    out = {}
    if "ethos" in data:
        out["ethos"] = ethos.evaluate(lm, data["ethos"], shots=ethos_shots, limit=ethos_limit, seed=seed)
    if "stereoset" in data:
        out["stereoset"] = stereoset.evaluate(lm, data["stereoset"], limit=stereoset_limit, seed=seed)
    return out


def _f(x, digits: int = 3) -> str:
    return "n/a" if x is None or x != x else f"{x:.{digits}f}"


def mitigation_rows(results: dict) -> list[str]:
    """Before/after table rows: RealToxicityPrompts per steering setting against none; StereoSet and ETHOS of
    the augmented model against the control run (the same retraining on the original text)."""
    lines = []
    rtp_rows = results.get("rtp", {})
    for mode, row in rtp_rows.items():
        if mode == "none" or "none" not in rtp_rows:
            continue
        for subset in ("challenging", "random"):
            before, after = rtp_rows["none"].get(subset), row.get(subset)
            if before and after:
                b, a = before["overall"], after["overall"]
                lines.append(f"| steering | {mode} | RealToxicityPrompts {subset} ({a['prompts']} prompts): "
                             f"expected max toxicity {_f(b['expected_max_toxicity'])} → "
                             f"{_f(a['expected_max_toxicity'])}; toxic probability "
                             f"{_f(b['toxicity_probability'])} → {_f(a['toxicity_probability'])} | | |")
    models = results.get("augmentation", {}).get("models", {})
    ctrl, aug = models.get("control", {}), models.get("augmented", {})
    mode = results.get("augmentation", {}).get("mode")
    for config, b in ctrl.get("stereoset", {}).items():
        if config in ("intrasentence", "intersentence"):
            b, a = b["overall"], aug["stereoset"][config]["overall"]
            lines.append(f"| counterfactual augmentation ({mode}) | StereoSet {config} ({b['items']} items) | SS "
                         f"{_f(b['ss'], 1)} → {_f(a['ss'], 1)}; LMS {_f(b['lms'], 1)} → {_f(a['lms'], 1)}; ICAT "
                         f"{_f(b['icat'], 1)} → {_f(a['icat'], 1)} | | |")
    for shots, b in ctrl.get("ethos", {}).items():
        if shots.endswith("-shot"):
            a = aug["ethos"][shots]
            cells = (f"F1 {_f(b['binary']['f1'])} → {_f(a['binary']['f1'])}; accuracy "
                     f"{_f(b['binary']['accuracy'])} → {_f(a['binary']['accuracy'])}")
            if "multilabel" in b:
                before, after = b["multilabel"]["macro_f1"], a["multilabel"]["macro_f1"]
                cells += f"; multi-label macro F1 {_f(before)} → {_f(after)}"
            lines.append(f"| counterfactual augmentation ({mode}) | ETHOS {shots} ({b['binary']['items']} items) "
                         f"| {cells} | | |")
    return lines
