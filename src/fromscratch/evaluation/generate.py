"""Sample from a model, optionally steered: a listed word never appears, or the least toxic of k candidates wins.

    python -m fromscratch.evaluation.generate --model outputs/04_sft --prompt "Tell me about" ["another prompt" ...]
        [--block_words default|FILE|none] [--block_penalty inf|N] [--rerank_k 0|K] [--max_new_tokens 40]
    make generate MODEL=outputs/04_sft PROMPT="Tell me about"

Prints each prompt with its continuation(s); with reranking also every candidate and its toxicity score.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field

from fromscratch.config import UserError, cli, parse


@dataclass
class GenerateArguments:
    model: str | None = None
    prompt: list[str] = field(default_factory=list)
    block_words: str = "none"
    block_penalty: float = math.inf
    rerank_k: int = 0
    samples: int = 1
    max_new_tokens: int = 40
    temperature: float = 1.0
    top_p: float = 0.9
    chat: str = "auto"
    seed: int = 0
    device: str = "cpu"
    json: bool = False


def steering_of(args: GenerateArguments):
    from fromscratch.safety.steering import Steering

    block = args.block_words != "none"
    rerank = args.rerank_k > 0
    mode = "+".join(m for m, on in (("block", block), ("rerank", rerank)) if on) or "none"
    return Steering(mode, words=args.block_words, penalty=None if math.isinf(args.block_penalty) else args.block_penalty,
                    rerank_k=max(args.rerank_k, 1))


@cli
def main():
    (args,) = parse((GenerateArguments,), _merge_prompts(sys.argv[1:]))
    if not args.model:
        raise UserError("--model: give a model folder (e.g. outputs/04_sft) or a cached Hub id")
    if not args.prompt:
        raise UserError("--prompt: give at least one prompt")
    if args.rerank_k < 0 or args.samples < 1 or args.max_new_tokens < 1:
        raise UserError("rerank_k must be >= 0, samples and max_new_tokens >= 1")
    steering = steering_of(args)  # a bad word-list path fails here, before the model loads

    from fromscratch.evaluation import completions, tasks, toxicity

    model, tokenizer = tasks.load_model(args.model, device=args.device)
    chat = completions.is_chat_model(tokenizer, completions.stage_of(args.model), args.chat)
    # Chat models answer a user turn: the prompt goes through their template, generation opens the reply.
    texts = [tokenizer.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True, tokenize=False)
             if chat else p for p in args.prompt]
    outputs, picks = steering.sample(model, tokenizer, texts, k=args.samples, scorer=toxicity.score,
                                     max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                                     top_p=args.top_p, seed=args.seed)
    rows = []
    for i, prompt in enumerate(args.prompt):
        row = {"prompt": prompt, "chat": chat, "steering": steering.describe(), "outputs": outputs[i]}
        if picks:
            row["rerank"] = [{"candidates": p["candidates"], "toxicity": [round(s, 4) for s in p["scores"]]}
                             for p in picks[i]]
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print(f"[generate] {args.model}, steering {json.dumps(steering.describe())}, chat template: {chat}")
    for row in rows:
        for j, text in enumerate(row["outputs"]):
            print(f"\n>>> {row['prompt']}\n{text}")
            for cand, s in (zip(row["rerank"][j]["candidates"], row["rerank"][j]["toxicity"]) if picks else ()):
                print(f"    [toxicity {s:.3f}] {cand!r}")


def _merge_prompts(argv: list[str]) -> list[str]:
    """`--prompt a --prompt b` means both prompts (argparse alone would keep only the last)."""
    prompts, rest, i = [], [], 0
    while i < len(argv):
        if argv[i] == "--prompt":
            i += 1
            while i < len(argv) and not argv[i].startswith("--"):
                prompts.append(argv[i])
                i += 1
        else:
            rest.append(argv[i])
            i += 1
    return rest + (["--prompt", *prompts] if prompts else [])


if __name__ == "__main__":
    main()
