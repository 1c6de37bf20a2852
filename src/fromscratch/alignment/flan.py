"""A Flan-style instruction-tuning mixture: every example rendered with or without exemplars, with or without
chain-of-thought (Chung et al. 2022, "Scaling Instruction-Finetuned Language Models").

Reasoning rows come in any of three layouts, all normalised to {question, rationale, answer}:
- `{question, rationale, answer}`;
- `{context, chain_of_thought, answer}` (the llm-foundry copy of GSM8K);
- `{question, answer}` with the answer field "<rationale lines>\\n#### <number>" (`openai/gsm8k`, config `main`).
GSM8K's calculator annotations (`<<48/2=24>>`) are tool markup, not reasoning: they are removed.

Each reasoning row gets one of four formats by the configured shares (exact counts, seeded):
zero-shot direct, zero-shot CoT, few-shot direct, few-shot CoT. Plain instruction conversations have no
rationale: their single-turn rows get zero-shot or few-shot direct by the two direct shares, multi-turn
dialogues stay as they are (zero-shot direct). Exemplars go inside the one user turn, so with
assistant-only loss the model learns the final answer only, as Flan trains on the target only. They are drawn
from the rows passed in, which the recipe takes from its training split: never the held-out rows, never an
eval set (questions also in the shipped GSM8K eval subset are dropped first and counted).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import datasets
import numpy as np

from .. import heldout
from ..config import UserError
from ..sources import Lineage
from .chat_data import load_table

SHIPPED_GSM8K_EVAL = Path(__file__).resolve().parents[1] / "eval_tasks" / "data" / "gsm8k.jsonl"  # tiny eval subset

FORMATS = ("zero_shot_direct", "zero_shot_cot", "few_shot_direct", "few_shot_cot")
# (query, direct target, CoT target). The query of a few-shot row repeats per exemplar, each followed by its
# target, then the question. Every CoT target ends "The answer is N." (what the eval's strict regex reads).
COT_TEMPLATES = [
    ("Q: {question}\nA:", "The answer is {answer}.", "{rationale}\nThe answer is {answer}."),
    ("Question: {question}\nAnswer:", "{answer}", "{rationale}\nThe answer is {answer}."),
    ("Solve the problem.\n{question}", "The answer is {answer}.", "Step by step: {rationale}\nThe answer is {answer}."),
]
COT_CUES = ["Let's think step by step.", "Explain your reasoning, then give the answer.", "Show your work."]
DIRECT_CUES = ["Give only the final answer.", "", "Answer with a number."]
INSTRUCTION_FEWSHOT = ("Instruction: {user}\nResponse:", "{assistant}")
_CALC = re.compile(r"<<[^<>]*>>")


def normalize(row: dict) -> dict:
    """One reasoning row (any of the three layouts) -> {question, rationale, answer}. ValueError names the fault."""
    if "chain_of_thought" in row and "context" in row:
        question, rationale, answer = row["context"], row["chain_of_thought"], row.get("answer")
    elif "rationale" in row:
        question, rationale, answer = row.get("question"), row["rationale"], row.get("answer")
    elif "question" in row and isinstance(row.get("answer"), str) and "####" in row["answer"]:
        question = row["question"]
        rationale, _, answer = row["answer"].rpartition("####")
    else:
        raise ValueError("not {question, rationale, answer}, {context, chain_of_thought, answer} or a GSM8K "
                         "answer with '#### <number>'")
    fields = {"question": question, "rationale": rationale, "answer": answer}
    for name, value in fields.items():
        if not isinstance(value, (str, int, float)) or not str(value).strip():
            raise ValueError(f"empty {name}")
    rationale = _CALC.sub("", str(rationale)).strip()
    return {"question": str(question).strip(), "rationale": rationale, "answer": str(answer).strip()}


def answer_of(gsm8k_answer: str) -> str:
    """The final number of a GSM8K answer field ("... #### 72" -> "72"), as lm-eval's gsm8k tasks take it."""
    return gsm8k_answer.split("####")[-1].strip()


def load_reasoning(specs: list[str]) -> tuple[datasets.Dataset, list[Lineage]]:
    """Reasoning sources (paths or Hub ids, `org/name:config` for a subset) -> one {question, rationale, answer}
    Dataset. Malformed rows are counted in each source's Lineage; a source with none usable stops the run."""
    parts, lineage = [], []
    for spec in specs:
        ds, lin = load_table(spec)
        rows = []
        for i, row in enumerate(ds):
            try:
                rows.append(normalize(row))
            except ValueError as err:
                lin.skip(str(err), f"{spec}[{i}]")
        if not rows:
            raise UserError(f"cot_sources: {spec} has no usable reasoning rows ({lin.summary()})")
        lin.documents = len(rows)
        parts.append(datasets.Dataset.from_list(rows))
        lineage.append(lin)
    return datasets.concatenate_datasets(parts), lineage


def _key(question: str) -> str:
    return " ".join(question.lower().split())


def drop_eval_questions(ds: datasets.Dataset, eval_questions: set[str]) -> tuple[datasets.Dataset, int]:
    """Remove rows whose question (case and spacing ignored) is in an eval set; returns (rows kept, dropped)."""
    keys = {_key(q) for q in eval_questions}
    kept = ds.filter(lambda r: _key(r["question"]) not in keys)
    return kept, len(ds) - len(kept)


def eval_questions(path) -> set[str]:
    """The questions of a GSM8K-style eval file (any of the layouts), to keep them out of training."""
    out = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                out.add(row.get("question") or row.get("context") or "")
    return out - {""}


def refuse_eval_split(ds: datasets.Dataset, eval_files: list) -> None:
    """UserError when the reasoning rows hold most of an eval file's questions. The shipped GSM8K file is a
    uniform sample of the test split (40 of 1,319), so holding most of it means holding most of the test
    split, whose other problems the drop below cannot see: evaluation only, never training. A few hits (a
    contaminated corpus) are dropped and counted instead."""
    keys = {_key(q) for q in ds["question"]}
    for path in eval_files:
        questions = {_key(q) for q in eval_questions(path)}
        hits = len(questions & keys)
        if questions and 2 * hits > len(questions):
            raise UserError(f"cot_sources: hold {hits} of the {len(questions)} questions of {Path(path).name}, a "
                            "sample of GSM8K's test split, so they hold that split: it is for evaluation only (train "
                            "on the train split, e.g. openai/gsm8k:main)")


def _exact_counts(n: int, shares: list[float]) -> np.ndarray:
    """n split by shares with largest remainders: counts that sum to n (as chat_data.mix does)."""
    w = np.asarray(shares, dtype=float)
    exact = w / w.sum() * n if w.sum() > 0 else np.zeros(len(w))
    counts = np.floor(exact).astype(int)
    counts[np.argsort(counts - exact)[: n - counts.sum()]] += 1
    return counts


def check_shares(shares: list[float]) -> None:
    if len(shares) != len(FORMATS) or any(s < 0 for s in shares) or not sum(shares) > 0:
        raise UserError(f"flan_shares: {len(FORMATS)} non-negative numbers, one per format ({', '.join(FORMATS)}), "
                        f"not all 0; got {list(shares)}")


def _assign(n: int, shares: list[float], rng: np.random.Generator) -> np.ndarray:
    """A format index per row: exact counts by shares, shuffled."""
    counts = _exact_counts(n, shares)
    return rng.permutation(np.repeat(np.arange(len(shares)), counts))


def _exemplars(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """k distinct exemplar indices per row, never the row itself (n rows, n > k)."""
    picks = np.empty((n, k), dtype=np.int64)
    for i in range(n):
        choice = rng.choice(n - 1, size=k, replace=False)
        picks[i] = choice + (choice >= i)  # skip i
    return picks


def _fewest_that_fit(blocks: list[str], ask: str, answer: str, fits) -> tuple[list[dict], int]:
    """The row with as many of its exemplars as fit (fits(messages) -> bool, e.g. within max_length), down to
    none: TRL would drop a row whose answer lies past max_length, which silently thins the few-shot formats."""
    for n in range(len(blocks), -1, -1):
        messages = [{"role": "user", "content": "\n\n".join(blocks[:n] + [ask])},
                    {"role": "assistant", "content": answer}]
        if n == 0 or fits is None or fits(messages):
            return messages, n
    raise AssertionError("unreachable")


def _label(fmt: str, shots: int) -> str:
    return fmt if shots or fmt.startswith("zero_shot") else fmt.replace("few_shot", "zero_shot")


def render_reasoning(ds: datasets.Dataset, shares: list[float], k: int, seed: int = 0,
                     pool: datasets.Dataset | None = None, fits=None) -> tuple[datasets.Dataset, list[str]]:
    """{question, rationale, answer} rows -> `messages` rows, one format each. Exemplars come from `pool`, or
    from `ds` itself (never the row itself) when pool is None: pass training rows only. A few-shot row keeps
    the exemplars that `fits` allows (none: it is counted as zero-shot). Returns (dataset, format per row)."""
    check_shares(shares)
    size = len(pool) if pool is not None else len(ds) - 1
    if k < 1 or size < k:
        raise UserError(f"flan_exemplars: need 1 <= k <= the reasoning training rows ({size}), got {k}")
    rng = np.random.default_rng(seed)
    formats = _assign(len(ds), shares, rng)
    templates = rng.integers(len(COT_TEMPLATES), size=len(ds))
    cues = rng.integers(len(COT_CUES), size=len(ds))
    if pool is None:
        shots, rows = _exemplars(len(ds), k, rng), ds.to_list()
    else:
        shots = np.array([rng.choice(len(pool), size=k, replace=False) for _ in range(len(ds))], dtype=np.int64)
        rows = pool.to_list()
    out, labels = [], []
    for i, row in enumerate(ds):
        fmt = FORMATS[formats[i]]
        query, direct, cot = COT_TEMPLATES[templates[i]]
        target = cot if fmt.endswith("cot") else direct
        cue = (COT_CUES if fmt.endswith("cot") else DIRECT_CUES)[cues[i]]
        blocks = [query.format(**rows[j]) + " " + target.format(**rows[j]) for j in shots[i]] \
            if fmt.startswith("few_shot") else []
        messages, n = _fewest_that_fit(blocks, query.format(**row) + (" " + cue if cue else ""),
                                       target.format(**row), fits)
        out.append(messages)
        labels.append(_label(fmt, n))
    return datasets.Dataset.from_dict({"messages": out}), labels


def eval_prompt(row: dict) -> dict:
    """A reasoning row as fs_gsm8k_cot_zeroshot asks it (through the chat template), with its CoT target: the
    rows on which the loss on CoT tokens is measured."""
    query, _, cot = COT_TEMPLATES[0]
    return {"messages": [{"role": "user", "content": query.format(**row) + " " + COT_CUES[0]},
                         {"role": "assistant", "content": cot.format(**row)}]}


def render_instructions(ds: datasets.Dataset, shares: list[float], k: int, seed: int = 0, fits=None
                        ) -> tuple[datasets.Dataset, list[str]]:
    """SFT rows (`messages`, or prompt + completion) -> `messages` rows. Single-turn rows become zero-shot or
    few-shot direct by those two shares (no rationale: no CoT); longer dialogues stay as they are."""
    check_shares(shares)
    original = [_as_messages(r) for r in ds]
    rows = list(original)  # rendered rows replace these; exemplars always come from the originals
    single = [i for i, m in enumerate(rows) if [x["role"] for x in m] == ["user", "assistant"]]
    rng = np.random.default_rng(seed + 1)
    direct = [shares[FORMATS.index("zero_shot_direct")], shares[FORMATS.index("few_shot_direct")]]
    formats = ["zero_shot_direct"] * len(rows)
    if len(single) > k and sum(direct) > 0:
        few = _assign(len(single), direct, rng)
        shots = _exemplars(len(single), k, rng)
        query, target = INSTRUCTION_FEWSHOT
        for pos, i in enumerate(single):
            if few[pos]:
                blocks = [query.format(user=original[single[j]][0]["content"]) + " "
                          + target.format(assistant=original[single[j]][1]["content"]) for j in shots[pos]]
                messages, n = _fewest_that_fit(blocks, query.format(user=rows[i][0]["content"]),
                                               rows[i][1]["content"], fits)
                if n:  # none fit: the row stays as it was (zero-shot)
                    rows[i], formats[i] = messages, "few_shot_direct"
    return datasets.Dataset.from_dict({"messages": rows}), formats


def _as_messages(row: dict) -> list[dict]:
    if "messages" in row:
        return row["messages"]
    prompt, completion = row["prompt"], row["completion"]
    prompt = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
    completion = [{"role": "assistant", "content": completion}] if isinstance(completion, str) else completion
    return prompt + completion


def counts(formats: list[str]) -> dict[str, int]:
    return {f: formats.count(f) for f in FORMATS}


def build_mixture(train_set: datasets.Dataset, eval_set: datasets.Dataset, specs: list[str], shares: list[float],
                  k: int, validation_fraction: float, seed: int = 0, eval_files: list | None = None,
                  fits=None) -> dict:
    """The SFT stage's Flan mixture. The reasoning sources are split like the instructions (held-out share,
    seed) before anything is rendered, so exemplars and training rows come from the training side only; rows
    whose question is in an eval file are dropped first. Returns train/eval `messages` datasets, `cot_eval`
    (the held-out reasoning rows as zero-shot CoT: where the loss on CoT tokens is measured), the counts per
    format for the card, and the reasoning sources' lineage. fits(messages) -> bool: whether a rendered row
    fits the training length (few-shot rows keep as many exemplars as fit; the counts say what was trained)."""
    check_shares(shares)
    reasoning, lineage = load_reasoning(specs)
    banned = set().union(*(eval_questions(f) for f in eval_files or []))
    refuse_eval_split(reasoning, eval_files or [])
    reasoning, contaminated = drop_eval_questions(reasoning, banned)
    split = heldout.split(reasoning, validation_fraction, seed, what="reasoning rows")
    r_train, r_eval = split["train"], split["test"]
    cot_train, f_cot = render_reasoning(r_train, shares, k, seed, fits=fits)
    cot_held, _ = render_reasoning(r_eval, shares, k, seed + 2, pool=r_train, fits=fits)
    cot_eval = r_eval.map(eval_prompt, remove_columns=r_eval.column_names)
    inst_train, f_inst = render_instructions(train_set, shares, k, seed, fits=fits)
    inst_eval = datasets.Dataset.from_dict({"messages": [_as_messages(r) for r in eval_set]})
    train = datasets.concatenate_datasets([inst_train, cot_train.cast(inst_train.features)]).shuffle(seed=seed)
    held = datasets.concatenate_datasets([inst_eval, cot_held.cast(inst_eval.features)])
    card = {"reasoning": counts(f_cot), "instructions": counts(f_inst), "all": counts(f_cot + f_inst),
            "reasoning_by_shares": dict(zip(FORMATS, map(int, _exact_counts(len(r_train), shares)))),
            "shares": dict(zip(FORMATS, shares)), "exemplars": k, "reasoning_train": len(r_train),
            "reasoning_held_out": len(r_eval), "dropped_in_eval_sets": contaminated,
            "skipped_malformed": {l.spec: sum(l.skipped.values()) for l in lineage}}
    return {"train": train, "eval": held, "cot_eval": cot_eval.cast(inst_eval.features), "counts": card,
            "lineage": lineage}


def fits_in(tokenizer, max_length: int | None):
    """fits(messages): the conversation, through the chat template, is at most max_length tokens (None: any)."""
    if not max_length:
        return None
    return lambda messages: len(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)
                                ["input_ids"]) <= max_length
