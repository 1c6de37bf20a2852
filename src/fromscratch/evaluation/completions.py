"""Answers to a fixed set of prompts (MT-Bench first turns, self-instruct user-oriented instructions), for
people to read next to the numbers: a tiny model's scores say little, its text says a lot."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from fromscratch.artifacts import CHAT_STAGES
from fromscratch.evaluation import readers

PROMPTS = Path(__file__).resolve().parents[1] / "eval_tasks" / "data" / "prompts.jsonl"


def load_prompts(path: str | Path | None = None, limit: int | None = None) -> list[dict]:
    rows, _ = readers.read_jsonl(path or PROMPTS)
    rows = [r for r in rows if isinstance(r.get("prompt"), str)]
    return rows[:limit] if limit else rows


def stage_of(model: str) -> str | None:
    """The stage that wrote a local model folder (its run_info.json), None for a Hub id or a foreign folder."""
    path = Path(model) / "run_info.json"
    return json.loads(path.read_text()).get("stage") if path.is_file() else None


def is_chat_model(tokenizer, stage: str | None, mode: str = "auto") -> bool:
    """auto: a chat model is one with a chat template that was instruction-tuned (stage 04/06 by run_info),
    or any model with a chat template when the stage is unknown (a Hub model). Our pretrained base model has
    the template too (the tokenizer carries it), but has never seen it: prompt it with plain text."""
    if mode in ("true", "false"):
        return mode == "true" and bool(tokenizer.chat_template)
    if not tokenizer.chat_template:
        return False
    return stage in CHAT_STAGES if stage else True


@torch.no_grad()
def answer(model, tokenizer, prompts: list[dict], *, chat: bool, max_new_tokens: int = 64,
           repetition_penalty: float = 1.2) -> list[dict]:
    """Greedy answers (reproducible); the repetition penalty keeps tiny models from looping one word."""
    out = []
    for row in prompts:
        if chat:
            ids = tokenizer.apply_chat_template([{"role": "user", "content": row["prompt"]}],
                                                add_generation_prompt=True, tokenize=True, return_dict=True,
                                                return_tensors="pt")["input_ids"]
        else:
            ids = tokenizer(row["prompt"] + "\n", return_tensors="pt")["input_ids"]
        limit = getattr(model.config, "max_position_embeddings", None)
        new = min(max_new_tokens, limit // 2) if limit else max_new_tokens  # leave room for the prompt
        if limit and ids.shape[1] + new > limit:  # keep the end of a long prompt
            ids = ids[:, -(limit - new):]
        gen = model.generate(ids.to(model.device), attention_mask=torch.ones_like(ids).to(model.device),
                             do_sample=False, max_new_tokens=new, repetition_penalty=repetition_penalty,
                             pad_token_id=tokenizer.pad_token_id)
        text = tokenizer.decode(gen[0, ids.shape[1]:], skip_special_tokens=True).strip()
        out.append({**row, "chat_template": chat, "answer": text})
    return out
