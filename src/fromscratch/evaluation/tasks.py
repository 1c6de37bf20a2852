"""Benchmarks, perplexity and CrowS-Pairs through lm-evaluation-harness, over the YAML tasks shipped in
fromscratch/eval_tasks/ (local files only: the run never reaches the Hub).

`load_model` checks that a path or cached Hub id is a causal LM (one-line UserError otherwise) and wraps it
in lm-eval's HFLM; `evaluate` runs tasks with the suite's files; `scores` flattens lm-eval's results.
"""

from __future__ import annotations

import contextlib
import functools
import json
from pathlib import Path

import fromscratch
from fromscratch.config import UserError

TASK_DIR = Path(fromscratch.__file__).resolve().parent / "eval_tasks"
# Benchmarks with a subset shipped in eval_tasks/data (the tiny suite); the full suite adds the rest.
TINY_BENCHMARKS = ["fs_arc_easy", "fs_arc_challenge", "fs_piqa", "fs_hellaswag", "fs_winogrande",
                   "fs_lambada_openai", "fs_boolq", "fs_copa", "fs_openbook_qa"]
FULL_BENCHMARKS = TINY_BENCHMARKS + ["fs_commonsense_qa", "fs_siqa", "fs_winograd_wsc",
                                     "fs_winogender_mc_female", "fs_winogender_mc_male"]
# Headline metric per task for tables, plots and the model-index (lower is better for perplexities).
HEADLINE = {"fs_lambada_openai": "acc", "fs_wikitext": "bits_per_byte", "fs_heldout": "bits_per_byte",
            "fs_crows_pairs": "pct_stereotype"}
PRETTY = {"fs_arc_easy": "ARC-Easy", "fs_arc_challenge": "ARC-Challenge", "fs_piqa": "PIQA",
          "fs_hellaswag": "HellaSwag", "fs_winogrande": "WinoGrande", "fs_lambada_openai": "LAMBADA (OpenAI)",
          "fs_boolq": "BoolQ", "fs_copa": "COPA", "fs_openbook_qa": "OpenBookQA", "fs_commonsense_qa": "CommonsenseQA",
          "fs_siqa": "SIQA", "fs_winograd_wsc": "WSC-273", "fs_winogender_mc_female": "Winogender (female)",
          "fs_winogender_mc_male": "Winogender (male)", "fs_wikitext": "WikiText-2 validation",
          "fs_heldout": "held-out pretraining text", "fs_crows_pairs": "CrowS-Pairs",
          "fs_gsm8k_cot_zeroshot": "GSM8K CoT", "fs_gsm8k_cot": "GSM8K CoT"}
# Generative reasoning (chain of thought, exact match on the final number); each task holds its own shots.
REASONING = ["fs_gsm8k_cot_zeroshot", "fs_gsm8k_cot"]


def available_tasks() -> list[str]:
    return sorted(p.stem for p in TASK_DIR.glob("fs_*.yaml"))


def check_tasks(names: list[str]) -> None:
    unknown = sorted(set(names) - set(available_tasks()))
    if unknown:
        raise UserError(f"tasks: unknown {', '.join(unknown)} (known: {', '.join(available_tasks())})")


def check_model(spec: str) -> None:
    """Fail with one line unless spec is a folder or cached Hub id whose config is a causal LM (a tokenizer
    folder or a reward model is not). Reads config.json only: fast enough to check every model up front."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(spec)
    except (OSError, ValueError) as e:
        if Path(spec).exists():
            where = "no model config.json in it"
        elif "/" in spec and not spec.startswith((".", "/", "~")):
            where = "no such folder, and no such model in the Hub cache"
        else:
            where = "no such folder"
        raise UserError(f"model {spec}: {where} ({type(e).__name__})") from None
    archs = config.architectures or []
    if archs and not any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs):
        raise UserError(f"model {spec}: not a causal LM (architectures {', '.join(archs)})")


def load_model(spec: str, *, dtype: str = "float32", device: str = "cpu"):
    """(model, tokenizer) in eval mode on device, after check_model."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    check_model(spec)
    try:
        model = AutoModelForCausalLM.from_pretrained(spec, dtype=getattr(torch, dtype))
        tokenizer = AutoTokenizer.from_pretrained(spec)
    except (OSError, ValueError) as e:
        raise UserError(f"model {spec}: cannot load it as a causal LM ({str(e).splitlines()[0][:200]})") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.to(device).eval(), tokenizer


def harness(model, tokenizer, batch_size: int = 16):
    """lm-eval's HF model wrapper around an already loaded model (loaded once for every part of the eval)."""
    from lm_eval.models.huggingface import HFLM

    max_length = getattr(model.config, "max_position_embeddings", None) or 2048
    return HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, max_length=max_length)


def evaluate(lm, tasks: list[str], *, suite: str = "tiny", data_dir: str | None = None, num_fewshot: int = 0,
             heldout_file: str | None = None, crows_pairs_file: str | None = None, limit: int | None = None,
             bootstrap_iters: int = 0, seed: int = 1234, gen_kwargs: dict | None = None,
             apply_chat_template: bool = False) -> dict:
    """Run lm-eval on our tasks; returns lm-eval's results dict (samples kept: bias types need them).
    num_fewshot None: each task's own (the reasoning tasks); apply_chat_template: prompts (shots in the same
    user turn, as recipes/04_sft renders them) through the tokenizer's chat template."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    if not tasks:
        return {"results": {}, "samples": {}, "n-samples": {}}
    manager = TaskManager(include_path=str(TASK_DIR), include_defaults=False,
                          metadata={"suite": suite, "data_dir": data_dir, "heldout_file": heldout_file,
                                    "crows_pairs_file": crows_pairs_file})
    with quiet_setup_bars():
        return simple_evaluate(model=lm, tasks=tasks, num_fewshot=num_fewshot, task_manager=manager, limit=limit,
                               log_samples=True, bootstrap_iters=bootstrap_iters, random_seed=seed,
                               numpy_random_seed=seed, torch_random_seed=seed, fewshot_random_seed=seed,
                               gen_kwargs=gen_kwargs, apply_chat_template=apply_chat_template,
                               fewshot_as_multiturn=False)


def _silenced(bar, *args, **kwargs):
    return bar(*args, **{**kwargs, "disable": True})  # over any disable= the caller passes


@contextlib.contextmanager
def quiet_setup_bars():
    """Silence the bars of the fast setup steps (lm-eval building contexts and tokenizing inputs per task,
    datasets' map/load) for the duration of one evaluation, and only those: the bar of the long part,
    lm-eval's "Running loglikelihood requests", still shows how far a full evaluation is. A process-wide
    TQDM_DISABLE=1 would hide it too, and leave a long run silent."""
    import datasets
    import lm_eval.api.model
    import lm_eval.api.task

    modules = (lm_eval.api.task, lm_eval.api.model)  # they call `tqdm(...)` from their own namespace
    saved = [m.tqdm for m in modules]
    was_disabled = datasets.are_progress_bars_disabled()
    for m, bar in zip(modules, saved):
        m.tqdm = functools.partial(_silenced, bar)
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        for m, bar in zip(modules, saved):
            m.tqdm = bar
        if not was_disabled:
            datasets.enable_progress_bars()


def scores(results: dict) -> dict[str, dict[str, float]]:
    """{task: {metric: value}} from lm-eval's {"acc,none": ..., "acc_stderr,none": ...} (stderrs kept when
    bootstrapped; "N/A" ones dropped)."""
    out: dict[str, dict[str, float]] = {}
    for task, values in results.get("results", {}).items():
        row = {}
        for key, value in values.items():
            name, _, filt = key.partition(",")
            if filt and isinstance(value, (int, float)):
                row[name] = float(value)
        row["items"] = int(results.get("n-samples", {}).get(task, {}).get("effective", 0))
        out[task] = row
    return out


def reasoning_scores(results: dict) -> dict[str, dict]:
    """{task: {shots, items, exact_match (strict: "The answer is N."), exact_match_flexible (the last number)}}:
    scores() would fold the two filters of one metric into one key."""
    out = {}
    for task, values in results.get("results", {}).items():
        out[task] = {"shots": int(results.get("n-shot", {}).get(task, 0)),
                     "items": int(results.get("n-samples", {}).get(task, {}).get("effective", 0)),
                     "exact_match": float(values["exact_match,strict-match"]),
                     "exact_match_flexible": float(values["exact_match,flexible-extract"])}
    return out


def jsonable(obj):
    """lm-eval's samples hold numpy scalars and tuples; round-trip through json with a fallback."""
    return json.loads(json.dumps(obj, default=lambda o: o.item() if hasattr(o, "item") else str(o)))
