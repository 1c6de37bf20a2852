"""Cut the small evaluation subsets the project ships (src/fromscratch/eval_tasks/data/) from the full sets.

    python recipes/07_eval/make_tiny_suite.py --data_dir DIR

DIR holds the source files in the layout data_cards/eval_benchmarks_tiny.md names (eval-tasks/*.jsonl from
llm-foundry, crows-pairs/, wikitext-2/, bold/, mt-bench/, self-instruct/); the project ships none of them.
Random samples with a fixed seed (the first rows of a file are often one topic), so a rerun writes the same
files. Only sets whose licence allows redistribution are cut; data_cards/eval_benchmarks_tiny.md names each
source, licence and size. The "full" suite reads the complete sets at run time instead (their Hub ids).
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from fromscratch.evaluation import readers

OUT = Path(__file__).resolve().parents[2] / "src" / "fromscratch" / "eval_tasks" / "data"
MC_SETS = ["arc_easy", "arc_challenge", "piqa", "winogrande", "boolq", "copa", "openbook_qa", "lambada_openai"]


def sample(rows: list, n: int, seed: int = 0) -> list:
    rng = random.Random(seed)
    return rng.sample(rows, min(n, len(rows)))


def write_jsonl(name: str, rows: list[dict]) -> None:
    with open(OUT / name, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{name}: {len(rows)} rows, {(OUT / name).stat().st_size / 1e3:.1f} kB")


def main() -> None:
    parser = argparse.ArgumentParser(formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data_dir", required=True, help="the folder holding the full sets' files (see above)")
    parser.add_argument("--per_task", type=int, default=40, help="items sampled from each benchmark")
    args = parser.parse_args()
    data = Path(args.data_dir)
    OUT.mkdir(parents=True, exist_ok=True)

    # Benchmarks: the same {query, choices, gold} / {context_options, continuation, gold} / {context,
    # continuation} rows as the source; HellaSwag converted from its 6-line text format to {query, choices, gold}.
    for name in MC_SETS:
        write_jsonl(f"{name}.jsonl", sample(readers.read_jsonl(data / "eval-tasks" / f"{name}.jsonl")[0], args.per_task))
    # GSM8K (MIT): its test split, rows unchanged ({context, chain_of_thought, answer}); evaluation only.
    write_jsonl("gsm8k.jsonl", sample(readers.read_jsonl(data / "eval-tasks" / "gsm8k.jsonl")[0], args.per_task))
    hellaswag = readers.read_hellaswag(data / "eval-tasks" / "hellaswag" / "hellaswag_val_full.txt.bz2")[0]
    write_jsonl("hellaswag.jsonl", sample(hellaswag, args.per_task))

    # CrowS-Pairs: the same number of pairs from each bias type, so every type gets a (noisy) figure.
    pairs = readers.read_crows_pairs(data / "crows-pairs" / "data_crows_pairs_anonymized.csv")[0]
    by_type: dict[str, list] = {}
    for row in pairs:
        by_type.setdefault(row["bias_type"], []).append(row)
    write_jsonl("crows_pairs.jsonl", [r for t in sorted(by_type) for r in sample(by_type[t], 12)])

    # Held-out text: the first articles of WikiText-2 validation, kept in its own raw format.
    articles = readers.read_wikitext(data / "wikitext-2" / "valid.txt")[0]
    (OUT / "wikitext2_valid_head.txt").write_text("".join(a["page"] for a in articles[:3]), encoding="utf-8")
    print(f"wikitext2_valid_head.txt: 3 articles, {(OUT / 'wikitext2_valid_head.txt').stat().st_size / 1e3:.1f} kB")

    # BOLD prompts (the RealToxicityPrompts stand-in): the same number from each domain.
    bold = readers.read_bold(data / "bold")[0]
    by_domain: dict[str, list] = {}
    for row in bold:
        by_domain.setdefault(row["domain"], []).append(row)
    write_jsonl("bold.jsonl", [r for d in sorted(by_domain) for r in sample(by_domain[d], 10)])

    # Prompts for completions people read: MT-Bench first turns (one per category) and self-instruct's
    # user-oriented evaluation instructions (which its authors ask not to train on: evaluation only).
    mt = readers.read_jsonl(data / "mt-bench" / "mt_bench_question.jsonl")[0]
    seen, prompts = set(), []
    for row in mt:
        if row["category"] not in seen and row["category"] not in ("math", "coding"):
            seen.add(row["category"])
            prompts.append({"source": "mt-bench", "id": f"mt-bench-{row['question_id']}", "prompt": row["turns"][0]})
    user = readers.read_jsonl(data / "self-instruct" / "user_oriented_instructions.jsonl")[0]
    for row in sample(user, 6):
        instance = (row.get("instances") or [{}])[0].get("input", "").strip()
        prompts.append({"source": "self-instruct", "id": row["id"],
                        "prompt": row["instruction"] + (f"\n\n{instance}" if instance else "")})
    write_jsonl("prompts.jsonl", prompts)


if __name__ == "__main__":
    main()
