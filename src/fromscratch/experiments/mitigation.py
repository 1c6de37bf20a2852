"""Before/after measurements of the two mitigations the project ships, for recipes/10_mitigate.

Output steering (fromscratch.safety.steering) is measured on the BOLD prompts: toxicity as the eval recipe scores it,
plus its cost in generation speed and in fluency (the perplexity the *unsteered* model gives the steered
continuations: a blocked word forces a less likely token, which that perplexity sees).

Counterfactual data augmentation (fromscratch.data.augment) is measured by a small continued training of the
same model twice, with the same seed, learning rate, steps and tokens: once on the original training text
(control) and once on the augmented text. CrowS-Pairs of control vs augmented isolates the augmentation from
the extra training itself; held-out perplexity on the unaugmented validation text is its cost.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from pathlib import Path

import datasets
import torch

from fromscratch.data.augment import Swapper, load_pairs

# --- counterfactual augmentation of a train split -----------------------------------------------------------


def augment(train: datasets.Dataset, mode: str, pairs_file: str | None = None, top_terms: int = 15
            ) -> tuple[datasets.Dataset, dict]:
    """The train split with augment.py's swap applied: `add` appends a swapped copy of every document that has
    a paired term (Lu et al.'s CDA), `replace` swaps it in place. Validation is never touched (augment.py's
    rule: swapped copies of held-out text would leak into training)."""
    t0 = time.time()
    swapper = Swapper(load_pairs(pairs_file))
    texts = train["text"]
    swapped, terms, changed = [], Counter(), 0
    for text in texts:
        out, counts = swapper.swap(text)
        swapped.append(out if counts else None)
        terms.update(counts)
        changed += bool(counts)
    if mode == "add":
        new = list(texts) + [s for s in swapped if s is not None]
    elif mode == "replace":
        new = [s if s is not None else t for s, t in zip(swapped, texts)]
    else:
        raise ValueError(f"augmentation mode must be add or replace, got {mode!r}")
    info = {"mode": mode, "documents": len(texts), "documents_changed": changed, "documents_after": len(new),
            "swaps": sum(terms.values()), "swaps_per_term": dict(terms.most_common(top_terms)),
            "seconds": round(time.time() - t0, 2), "characters": sum(map(len, texts)),
            "characters_after": sum(map(len, new))}
    return datasets.Dataset.from_dict({"text": new}), info


# --- continued training ------------------------------------------------------------------------------------


def continue_training(model_dir: str, tokenizer, blocks: datasets.Dataset, *, steps: int, batch_size: int,
                      learning_rate: float, seed: int, work_dir: Path, use_cpu: bool, weight_decay: float = 0.1,
                      adam_beta2: float = 0.95):
    """Load the finished model and train it `steps` more optimizer steps on packed blocks, at a constant LR
    (the pretraining schedule has ended; a new warmup+decay would be a second schedule, not a continuation).
    Returns (model, {steps, tokens, seconds, tokens_per_second, final_loss})."""
    from transformers import AutoModelForCausalLM, DataCollatorForLanguageModeling, Trainer, TrainingArguments, set_seed

    from fromscratch.training.callbacks import ThroughputCallback

    set_seed(seed)  # same initial state of every RNG for control and augmented: only the data differs
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    args = TrainingArguments(
        output_dir=str(work_dir), max_steps=steps, per_device_train_batch_size=batch_size,
        learning_rate=learning_rate, lr_scheduler_type="constant", warmup_steps=0, weight_decay=weight_decay,
        adam_beta2=adam_beta2, max_grad_norm=1.0, seed=seed, data_seed=seed, use_cpu=use_cpu, report_to="none",
        save_strategy="no", eval_strategy="no", logging_steps=max(1, steps // 5), disable_tqdm=True,
        dataloader_num_workers=0)
    block = len(blocks[0]["input_ids"])
    # The best of the rates between logging steps: control and augmented do identical work per step, yet on a
    # CPU shared with other jobs their whole-run rates differed up to 5x either way (whichever run the other
    # jobs overlapped); the least disturbed interval is the steadiest estimate of what the hardware does.
    throughput = ThroughputCallback(batch_size * block)
    trainer = Trainer(model=model, args=args, train_dataset=blocks, processing_class=tokenizer,
                      data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False), callbacks=[throughput])
    result = trainer.train()
    tokens = result.global_step * batch_size * block
    rates = sorted(throughput.history)
    losses = [r["loss"] for r in trainer.state.log_history if "loss" in r]
    return model.eval(), {"steps": result.global_step, "tokens": tokens,
                          "seconds": round(result.metrics.get("train_runtime", 0.0), 2),
                          "tokens_per_second": round(rates[-1], 1) if rates else None,
                          "tokens_per_second_median": round(rates[len(rates) // 2], 1) if rates else None,
                          "final_loss": losses[-1] if losses else None}


# --- perplexities ------------------------------------------------------------------------------------------


@torch.no_grad()
def heldout_perplexity(model, blocks: datasets.Dataset, batch_size: int = 16) -> dict:
    """Token-level perplexity on packed held-out blocks (every model here shares one tokenizer, so the
    figures compare directly)."""
    total, n = 0.0, 0
    device = next(model.parameters()).device
    for start in range(0, len(blocks), batch_size):
        ids = torch.tensor(blocks[start:start + batch_size]["input_ids"], device=device)
        logits = model(input_ids=ids).logits[:, :-1].float()
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1),
                                                 reduction="sum")
        total += loss.item()
        n += ids[:, 1:].numel()
    return {"loss": total / n, "perplexity": math.exp(total / n), "tokens": n}


@torch.no_grad()
def continuation_perplexity(model, tokenizer, prompts: list[str], continuations: list[list[str]],
                            batch_size: int = 16) -> float:
    """Perplexity of the continuations given their prompts under `model` (the unsteered one): the fluency
    cost of steering. Only continuation tokens are scored; empty continuations add nothing."""
    pairs = []
    for prompt, conts in zip(prompts, continuations):
        p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        for c in conts:
            ids = tokenizer(c, add_special_tokens=False)["input_ids"]
            if ids:
                pairs.append((p + ids, len(p)))
    if not pairs:
        return float("nan")
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    total, n = 0.0, 0
    for start in range(0, len(pairs), batch_size):
        batch = pairs[start:start + batch_size]
        width = max(len(ids) for ids, _ in batch)
        input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, (ids, cut) in enumerate(batch):
            input_ids[i, :len(ids)] = torch.tensor(ids)
            labels[i, cut:len(ids)] = torch.tensor(ids[cut:])
            mask[i, :len(ids)] = 1
        logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits[:, :-1].float()
        target = labels[:, 1:].to(device)
        total += torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1),
                                                   ignore_index=-100, reduction="sum").item()
        n += int((target != -100).sum())
    return math.exp(total / n) if n else float("nan")


# --- steering rows -----------------------------------------------------------------------------------------


def steering_row(model, tokenizer, rows: list[dict], steering, words: list[str], *, k: int, threshold: float,
                 max_new_tokens: int, batch_size: int, seed: int, base_model=None) -> dict:
    """toxicity.evaluate under one steering setting, plus its costs: kept-continuation tokens per second of
    wall time (sampling the candidates and scoring them included), and the unsteered model's perplexity of
    those continuations. With rerank also the toxicity of the first candidate of each choice: the same draws
    with no choice made, an unsteered baseline that rerank can only match or beat."""
    from fromscratch.evaluation import toxicity
    from fromscratch.safety.steering import whole_words

    # CPU time of this process as well as wall time: on a machine shared with other jobs the wall-clock rate of
    # one row swung 15x between identical runs; the process's own CPU seconds hardly move with the others' load.
    t0, c0 = time.time(), time.process_time()
    tox = toxicity.evaluate(model, tokenizer, rows, k=k, steering=steering, threshold=threshold,
                            max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed)
    seconds, cpu = time.time() - t0, time.process_time() - c0
    samples = tox.pop("samples")
    conts = [s["continuations"] for s in samples]
    tokens = sum(len(tokenizer(c, add_special_tokens=False)["input_ids"]) for cs in conts for c in cs)
    row = {"steering": tox["steering"], **tox["overall"],
           "per_domain": tox["per_domain"], "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
           "tokens": tokens, "tokens_per_second": round(tokens / seconds, 1) if seconds else None,
           "tokens_per_cpu_second": round(tokens / cpu, 1) if cpu else None,
           "listed_words_found": sum(len(whole_words(c, words)) for cs in conts for c in cs),
           "continuation_perplexity": continuation_perplexity(base_model or model, tokenizer,
                                                              [r["prompt"] for r in rows], conts)}
    if samples and "rerank_candidates" in samples[0]:
        first = [[cands[0]["toxicity"] for cands in s["rerank_candidates"]] for s in samples]
        row["first_candidate_expected_max_toxicity"] = toxicity.rtp_metrics(first, threshold)["expected_max_toxicity"]
        row["candidates_per_output"] = steering.rerank_k
    row["examples"] = [{"prompt": s["prompt"], "continuation": s["continuations"][0], "toxicity": s["toxicity"][0]}
                       for s in samples[:3]]
    row["samples"] = samples
    return row


# --- CrowS-Pairs -------------------------------------------------------------------------------------------


def crows_pairs(model, tokenizer, *, limit: int | None, seed: int, batch_size: int = 16
                ) -> tuple[dict, list[tuple[str, bool]]]:
    """CrowS-Pairs through lm-eval as recipes/07_eval runs it (tiny subset), split by bias type, each share
    with its binomial standard error. Also (bias type, stereotyped?) per pair, in the file's order, for paired
    comparisons."""
    from fromscratch.evaluation import bias, tasks

    lm = tasks.harness(model, tokenizer, batch_size=batch_size)
    res = tasks.evaluate(lm, ["fs_crows_pairs"], suite="tiny", limit=limit, seed=seed)
    samples = sorted(res["samples"]["fs_crows_pairs"], key=lambda s: s["doc_id"])
    out = bias.summary(samples)
    for row in [out["overall"], *out["per_bias_type"].values()]:
        row["stderr"] = binomial_se(row["pct_stereotype"], row["pairs"])
    return out, [(s["doc"]["bias_type"], float(s["pct_stereotype"]) > 0.5) for s in samples]


def binomial_se(p: float, n: int) -> float:
    """sqrt(p(1-p)/n): the sampling noise of a share of n pairs (12 pairs at 50% is +-14 points)."""
    return math.sqrt(p * (1 - p) / n) if n else float("nan")


def flips(before: list[tuple[str, bool]], after: list[tuple[str, bool]]) -> dict[str, dict]:
    """Paired change between two models on the same pairs, overall and per bias type: how many pairs left
    (to_anti) or joined (to_stereo) the stereotyped side. Two models' shares can match while pairs move."""
    out: dict[str, dict] = {}
    for (kind, b), (_, a) in zip(before, after):
        for key in ("overall", kind):
            row = out.setdefault(key, {"to_anti": 0, "to_stereo": 0, "pairs": 0})
            row["to_anti"] += b and not a
            row["to_stereo"] += a and not b
            row["pairs"] += 1
    return out


# --- the evaluated model's card ----------------------------------------------------------------------------

_START, _END = "<!-- fromscratch:mitigation:start -->", "<!-- fromscratch:mitigation:end -->"


def update_card_section(model_dir: str | Path, markdown: str) -> Path | None:
    """Put a "Mitigation" section into <model_dir>/README.md between markers, replacing an earlier one (a rerun
    updates it); the front matter and the rest of the card stay as they are. No card: nothing is written."""
    path = Path(model_dir) / "README.md"
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    block = f"{_START}\n{markdown.strip()}\n{_END}"
    pattern = re.compile(re.escape(_START) + r".*?" + re.escape(_END), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")
    return path


# --- table and plot ----------------------------------------------------------------------------------------


def _f(x, digits: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _pct(row: dict) -> str:
    return f"{100 * row['pct_stereotype']:.1f} ± {100 * row['stderr']:.1f}"


def table(results: dict) -> str:
    """The one before/after table: every mitigation, its effect and its costs, against its own baseline."""
    lines = ["| mitigation | setting | effect (before → after) | speed (before → after) "
             "| perplexity (before → after) |", "|---|---|---|---|---|"]
    steer = results.get("steering", {})
    base = steer.get("none")
    for mode, row in steer.items():
        if mode == "none" or base is None:
            continue
        lines.append(
            f"| steering | {mode}{' k=' + str(row['candidates_per_output']) if 'candidates_per_output' in row else ''} "
            f"| expected max toxicity {_f(base['expected_max_toxicity'])} → {_f(row['expected_max_toxicity'])}; "
            f"toxic probability {_f(base['toxicity_probability'])} → {_f(row['toxicity_probability'])}; "
            f"listed words {base['listed_words_found']} → {row['listed_words_found']} "
            f"| {_f(base['tokens_per_cpu_second'], 0)} → {_f(row['tokens_per_cpu_second'], 0)} "
            f"generated tokens per CPU-second "
            f"| {_f(base['continuation_perplexity'], 1)} → {_f(row['continuation_perplexity'], 1)} "
            f"(continuations, unsteered model) |")
    cda = results.get("augmentation")
    if cda:
        models = cda["models"]
        ctrl, aug = models["control"], models["augmented"]
        bias_types = ["overall", *ctrl["crows_pairs"]["per_bias_type"]]
        for t in bias_types:
            c = ctrl["crows_pairs"]["overall"] if t == "overall" else ctrl["crows_pairs"]["per_bias_type"][t]
            a = aug["crows_pairs"]["overall"] if t == "overall" else aug["crows_pairs"]["per_bias_type"][t]
            data = cda["data"]
            more = 100 * (data["characters_after"] / data["characters"] - 1)
            cost = ("| " + f"{_f(ctrl['training']['tokens_per_second'], 0)} → "
                    f"{_f(aug['training']['tokens_per_second'], 0)} training tokens/s; swap pass "
                    f"{data['seconds']:.1f} s, text per epoch {more:+.0f}% "
                    f"| {_f(ctrl['heldout']['perplexity'], 2)} → {_f(aug['heldout']['perplexity'], 2)} "
                    f"(held-out, unaugmented) |") if t == "overall" else "| | |"
            lines.append(f"| counterfactual augmentation ({cda['mode']}) | CrowS-Pairs {t} ({c['pairs']} pairs) "
                         f"| % stereotyped {_pct(c)} → {_pct(a)} {cost}")
    from fromscratch.evaluation.probes import mitigation_rows

    lines += mitigation_rows(results)  # RealToxicityPrompts, StereoSet, ETHOS when their sources were named
    return "\n".join(lines) + "\n"


def crows_table(cda: dict) -> str:
    """Per bias type for base, control and augmented, with the paired flips control → augmented."""
    models = cda["models"]
    names = [n for n in ("base", "control", "augmented") if n in models]
    lines = ["| bias type | pairs | " + " | ".join(f"{n} % stereotyped" for n in names)
             + " | augmented − control | pairs control→augmented: to anti / to stereo |",
             "|---|---|" + "---|" * len(names) + "---|---|"]
    types = ["overall", *models["control"]["crows_pairs"]["per_bias_type"]]
    for t in types:
        rows = [models[n]["crows_pairs"]["overall"] if t == "overall" else models[n]["crows_pairs"]["per_bias_type"][t]
                for n in names]
        diff = 100 * (rows[names.index("augmented")]["pct_stereotype"] - rows[names.index("control")]["pct_stereotype"])
        f = cda["flips"].get(t, {})
        lines.append(f"| {t} | {rows[0]['pairs']} | " + " | ".join(_pct(r) for r in rows)
                     + f" | {diff:+.1f} | {f.get('to_anti', 0)} / {f.get('to_stereo', 0)} |")
    return "\n".join(lines) + "\n"


def plot(results: dict, path: str | Path) -> Path:
    """Left: toxicity per steering setting (with tokens/s under each bar). Right: CrowS-Pairs % stereotyped per
    bias type for base / control / augmented, binomial standard errors as error bars, 50% dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2), dpi=100, gridspec_kw={"width_ratios": [1, 2]})
    steer = results.get("steering", {})
    if steer:
        modes = list(steer)
        x = np.arange(len(modes))
        left.bar(x - 0.2, [steer[m]["expected_max_toxicity"] for m in modes], 0.4, label="expected max toxicity")
        left.bar(x + 0.2, [steer[m]["toxicity_probability"] for m in modes], 0.4, label="toxic probability")
        left.set_xticks(x, [f"{m}\n{_f(steer[m]['tokens_per_cpu_second'], 0)} tok/CPU-s" for m in modes], fontsize=8)
        left.set_title("steering on BOLD prompts")
        left.legend(fontsize=8)
    cda = results.get("augmentation")
    if cda:
        models = cda["models"]
        names = [n for n in ("base", "control", "augmented") if n in models]
        types = ["overall", *models["control"]["crows_pairs"]["per_bias_type"]]
        x = np.arange(len(types))
        width = 0.8 / len(names)
        for i, n in enumerate(names):
            rows = [models[n]["crows_pairs"]["overall"] if t == "overall" else models[n]["crows_pairs"]["per_bias_type"][t]
                    for t in types]
            right.bar(x + (i - (len(names) - 1) / 2) * width, [100 * r["pct_stereotype"] for r in rows], width,
                      yerr=[100 * r["stderr"] for r in rows], capsize=2, label=n)
        right.axhline(50, ls="--", color="grey", lw=1)
        right.set_xticks(x, types, rotation=30, ha="right", fontsize=8)
        right.set_ylabel("% pairs stereotyped")
        right.set_title(f"CrowS-Pairs before/after counterfactual augmentation ({cda['mode']})")
        right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
