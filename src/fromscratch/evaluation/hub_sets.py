"""The full suite's benchmark sets read from the Hub (or a local mirror of the Hub repos), as our readers' rows.

Each YAML task under eval_tasks/ names its set as `hub: org/name[:config]@split` (lm-eval's own dataset id,
config and split for that benchmark) and `hub_rows: NAME`, the function below that turns one Hub row into the
row format of the local files ({query, choices, gold}; {context_options, continuation, gold}; {context,
continuation}; {page}; ...), so one task YAML scores a set the same way whichever source it came from.

The mapping follows the llm-foundry files the tiny subsets were cut from (prompt wording, "Question: " prefixes)
and lm-eval's own preprocessing where those files took it (HellaSwag's cleanup, COPA's connectives, WinoGrande's
and WSC's partial scoring). Two sets differ by source: llm-foundry's CommonsenseQA keeps 4 of the 5 options and
its SIQA 2 of the 3; from the Hub every option is scored, as lm-eval's tasks score them.

`data_dir/<org>/<name>/` (what `hf download <id> --repo-type dataset --local-dir data_dir/<id>` writes) is read
instead of the Hub when it exists: the same `datasets.load_dataset` call, on a folder laid out like the repo.
"""

from __future__ import annotations

from pathlib import Path

# A BOLD row holds every prompt of one person; the Hub's only split is train (BOLD has no other).
BOLD_HUB = "AlexaAI/bold@train"


def parse(spec: str) -> tuple[str, str | None, str]:
    """`org/name[:config]@split` -> (repo, config, split); the split defaults to test."""
    spec, _, split = spec.partition("@")
    repo, _, config = spec.partition(":")
    return repo, config or None, split or "test"


def source_of(repo: str, data_dir: str | None) -> str:
    """data_dir/<repo> when that local mirror exists, else the Hub id itself."""
    if data_dir and (Path(data_dir) / repo).is_dir():
        return str(Path(data_dir) / repo)
    return repo


def load(spec: str, rows: str, data_dir: str | None = None) -> tuple[list[dict], list[str]]:
    """(rows in our format, skipped): a row the mapping cannot read is counted with its index, never dropped
    silently. Offline without a mirror or the datasets cache: one UserError line naming the id."""
    from fromscratch.evaluation.scoring import load_split

    repo, config, split = parse(spec)
    source = source_of(repo, data_dir)
    dataset = load_split(source, config=config, split=split, key=f"benchmark set {repo}")
    mapper = MAPPERS[rows]
    out, skipped = [], []
    for i, row in enumerate(dataset):
        try:
            got = mapper(row)
        except (KeyError, ValueError, IndexError, TypeError, AttributeError) as err:
            skipped.append(f"{repo}:{split}:{i} ({type(err).__name__}: {err})")
            continue
        out += got if isinstance(got, list) else [got]
    return out, skipped


def _gold(labels: list, key) -> int:
    return list(labels).index(str(key).strip())


def arc(row: dict) -> dict:  # allenai/ai2_arc
    return {"query": f"Question: {row['question']}", "choices": list(row["choices"]["text"]),
            "gold": _gold(row["choices"]["label"], row["answerKey"])}


def openbookqa(row: dict) -> dict:  # allenai/openbookqa (main)
    return {"query": row["question_stem"], "choices": list(row["choices"]["text"]),
            "gold": _gold(row["choices"]["label"], row["answerKey"])}


def piqa(row: dict) -> dict:  # baber/piqa
    return {"query": f"Question: {row['goal']}\n", "choices": [row["sol1"], row["sol2"]], "gold": int(row["label"])}


def boolq(row: dict) -> dict:  # aps/super_glue (boolq): questions come without their question mark
    return {"query": f"Passage: {row['passage']}\nQuestion: {row['question']}?", "choices": ["no", "yes"],
            "gold": int(row["label"])}


def copa(row: dict) -> dict:  # aps/super_glue (copa): premise and choice joined into one sentence, as llm-foundry
    connector = {"cause": "because", "effect": "therefore"}[row["question"]]
    lower = [c[0].lower() + c[1:] for c in (row["choice1"], row["choice2"])]
    return {"query": f"{row['premise'].strip()[:-1]}, {connector}", "choices": lower, "gold": int(row["label"])}


def hellaswag(row: dict) -> dict:  # Rowan/hellaswag: lm-eval's cleanup of the WikiHow brackets
    from lm_eval.tasks.hellaswag.utils import preprocess

    context = row["ctx_a"] + " " + row["ctx_b"].capitalize()
    gold = int(row["label"])
    if not 0 <= gold < len(row["endings"]):
        raise ValueError(f"label {gold} outside the endings")
    return {"query": preprocess(row["activity_label"] + ": " + context),
            "choices": [preprocess(e) for e in row["endings"]], "gold": gold}


def winogrande(row: dict) -> dict:  # allenai/winogrande: each option fills the blank, the rest is scored
    cut = row["sentence"].index("_")
    return {"context_options": [row["sentence"][:cut] + o for o in (row["option1"], row["option2"])],
            "continuation": row["sentence"][cut + 1:].strip(), "gold": {"1": 0, "2": 1}[str(row["answer"])]}


def wsc273(row: dict) -> dict:  # lighteval/winograd_wsc (wsc273): lm-eval's option normalization, then as WinoGrande
    from lm_eval.tasks.wsc273 import utils

    normalize = getattr(utils, "__normalize_option")  # what its process_doc applies to each option, per row
    doc = {**row, "text": row["text"].replace("  ", " ")}
    start = doc["text"][: doc["pronoun_loc"]]
    return {"context_options": [start + normalize(doc, o) for o in doc["options"]],
            "continuation": doc["text"][doc["pronoun_loc"] + len(doc["pronoun"]):].strip(), "gold": int(doc["label"])}


def commonsense_qa(row: dict) -> dict:  # tau/commonsense_qa: lettered options, the letter scored
    labels, texts = row["choices"]["label"], row["choices"]["text"]
    options = "".join(f"{letter}. {text}\n" for letter, text in zip(labels, texts))
    return {"query": f"Question: {row['question'].strip()}\nChoices:\n{options}Answer:", "choices": list(labels),
            "gold": _gold(labels, row["answerKey"])}


def siqa(row: dict) -> dict:  # lighteval/siqa: lettered options as CommonsenseQA, label 1-3
    answers = [row["answerA"], row["answerB"], row["answerC"]]
    options = "".join(f"{letter}. {text}\n" for letter, text in zip("ABC", answers))
    gold = int(row["label"]) - 1
    if not 0 <= gold < 3:
        raise ValueError(f"label {row['label']} is not 1-3")
    return {"query": f"Context: {row['context']}\nQuestion: {row['question']}\nChoices:\n{options}Answer:",
            "choices": ["A", "B", "C"], "gold": gold}


def _winogender(row: dict, gender: str) -> list[dict]:  # oskarvanderwal/winogender (all): one gender's sentences
    if row["gender"] != gender:
        return []
    query = (f"Sentence: \"{row['sentence']}\"\nQ: Who does the pronoun \"{row['pronoun']}\" refer to in the "
             "previous sentence? A:")
    return [{"query": query, "choices": [f"the {row['occupation']}", f"the {row['participant']}"],
             "gold": int(row["label"])}]


def lambada(row: dict) -> dict:  # EleutherAI/lambada_openai: the last word is the target
    context, _, word = row["text"].rpartition(" ")
    if not context or not word:
        raise ValueError("no last word")
    return {"context": context, "continuation": word}


def wikitext(row: dict) -> dict:  # EleutherAI/wikitext_document_level: one article per row already
    if not isinstance(row["page"], str):
        raise TypeError("page is not text")
    return {"page": row["page"]}


def crows_pairs(row: dict) -> dict:  # jannalu/crows_pairs_multilingual (english)
    out = {k: row.get(k) or "" for k in ("sent_more", "sent_less", "stereo_antistereo", "bias_type")}
    if not all(out[k] for k in ("sent_more", "sent_less", "bias_type")):
        raise ValueError("a sentence or the bias type is empty")
    return out


def gsm8k(row: dict) -> dict:  # openai/gsm8k (main): {question, answer "... #### n"}
    from fromscratch.alignment.flan import normalize

    return normalize(row)


def bold(row: dict) -> list[dict]:  # AlexaAI/bold: {domain, name, category, prompts: [...]} -> a row per prompt
    return [{"domain": row["domain"], "group": row["category"], "name": row["name"], "prompt": p.strip()}
            for p in row["prompts"] if isinstance(p, str) and p.strip()]


MAPPERS = {"arc": arc, "openbookqa": openbookqa, "piqa": piqa, "boolq": boolq, "copa": copa, "hellaswag": hellaswag,
           "winogrande": winogrande, "wsc273": wsc273, "commonsense_qa": commonsense_qa, "siqa": siqa,
           "winogender_female": lambda r: _winogender(r, "female"), "winogender_male": lambda r: _winogender(r, "male"),
           "lambada": lambada, "wikitext": wikitext, "crows_pairs": crows_pairs, "gsm8k": gsm8k, "bold": bold}
