"""Conversational data for post-training (SFT, reward, RLHF, DPO): load, check the shape, split into prompts.

Sources are named as everywhere else: `default` (the embedded hh-rlhf and self-instruct conversions),
`default:hh_rlhf` or `default:self_instruct`, a local path (jsonl/json/parquet/csv or a `save_to_disk` folder),
or a Hub dataset id. Rows are in TRL's own formats, so the trainers read them as they are:

- SFT: `messages` (a list of {role, content}), or `prompt` + `completion` (strings or message lists);
- preferences (reward, DPO): `chosen` + `rejected`, with an optional `prompt` (strings or message lists);
- prompts (PPO, GRPO, RLOO): a `prompt` column, or `messages` whose final assistant turn is cut off.

A row in the wrong shape stops the run before training with one line naming the source, row and column:
training on it would either crash an hour in or, worse, silently learn from nothing.

`python -m fromscratch.alignment.chat_data <folder of the raw downloads>` rebuilds the embedded copies from the raw downloads.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import sys
from pathlib import Path

import datasets
import numpy as np

from .. import json_lines
from ..config import UserError
from ..sources import Lineage, _hash_files, _hidden, embedded_path, is_local, load_saved

EMBEDDED = {  # name -> file under src/fromscratch/embedded/chat/
    "hh_rlhf": "hh_rlhf_harmless.jsonl.gz",  # {prompt, chosen, rejected} as messages
    "self_instruct": "self_instruct_seed.jsonl",  # {messages}
}
ROLES = ("system", "user", "assistant")


# --- conversion of the raw public files (run once, results shipped in the package) -------------------------

_TURN = re.compile(r"\n\n(Human|Assistant):")


def hh_dialogue(text: str) -> list[dict]:
    """'\\n\\nHuman: ...\\n\\nAssistant: ...' -> messages. Raises ValueError when the text is not a dialogue."""
    parts = _TURN.split(text)
    if parts[0].strip():
        raise ValueError("text before the first turn")
    messages = []
    for speaker, content in zip(parts[1::2], parts[2::2]):
        messages.append({"role": "user" if speaker == "Human" else "assistant", "content": content.strip()})
    if not messages:
        raise ValueError("no Human/Assistant turns")
    return messages


def hh_pair(row: dict) -> dict:
    """One hh-rlhf {chosen, rejected} pair -> {prompt, chosen, rejected} messages (the shared turns are the prompt)."""
    chosen, rejected = hh_dialogue(row["chosen"]), hh_dialogue(row["rejected"])
    if chosen[:-1] != rejected[:-1]:
        raise ValueError("chosen and rejected differ before the final turn")
    if chosen[-1]["role"] != "assistant" or rejected[-1]["role"] != "assistant":
        raise ValueError("the final turn is not the assistant's")
    if not chosen[-1]["content"] or not rejected[-1]["content"]:
        raise ValueError("empty final answer")
    if chosen[-1]["content"] == rejected[-1]["content"]:
        raise ValueError("chosen equals rejected")
    if [m["role"] for m in chosen[:-1]] != ["user", "assistant"] * (len(chosen) // 2 - 1) + ["user"]:
        raise ValueError("turns do not alternate user/assistant")
    return {"prompt": chosen[:-1], "chosen": chosen[-1:], "rejected": rejected[-1:]}


def self_instruct_rows(row: dict) -> list[dict]:
    """One self-instruct seed task -> one conversation per instance (instruction + input as the user turn)."""
    out = []
    for inst in row["instances"]:
        user = row["instruction"].strip() + (("\n\n" + inst["input"].strip()) if inst["input"].strip() else "")
        if inst["output"].strip():
            out.append({"messages": [{"role": "user", "content": user},
                                     {"role": "assistant", "content": inst["output"].strip()}]})
    return out


def build_embedded(shared_data: str | Path, dest: str | Path | None = None) -> dict:
    """Convert the raw hh-rlhf and self-instruct files into the shipped copies; return what was kept/skipped."""
    shared_data, dest = Path(shared_data), Path(dest or embedded_path("chat"))
    dest.mkdir(parents=True, exist_ok=True)
    report = {}
    kept, skipped = [], {}
    with gzip.open(shared_data / "hh-rlhf" / "harmless-base-test.jsonl.gz", "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh, 1):
            try:
                kept.append(hh_pair(json.loads(line)))
            except ValueError as err:
                skipped[str(err)] = skipped.get(str(err), 0) + 1
    # mtime=0: the same input gives byte-identical output (a stable hash in every lineage).
    with open(dest / EMBEDDED["hh_rlhf"], "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as fh:
        for row in kept:
            fh.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
    report["hh_rlhf"] = {"rows_in": i, "kept": len(kept), "skipped": skipped}
    rows = []
    with open(shared_data / "self-instruct" / "seed_tasks.jsonl", encoding="utf-8") as fh:
        tasks = [json.loads(line) for line in fh if line.strip()]
    for task in tasks:
        rows += self_instruct_rows(task)
    with open(dest / EMBEDDED["self_instruct"], "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    report["self_instruct"] = {"tasks": len(tasks), "conversations": len(rows)}
    return report


# --- loading ----------------------------------------------------------------------------------------------

def _read(path: Path) -> datasets.Dataset:
    name = path.name.lower()
    kind = next((k for k, exts in {"json": (".jsonl", ".json", ".jsonl.gz", ".json.gz"), "parquet": (".parquet",),
                                   "csv": (".csv",)}.items() if name.endswith(exts)), None)
    if kind is None:
        raise UserError(f"{path}: unsupported file type (use .jsonl, .json, .parquet, .csv or a save_to_disk folder)")
    if kind == "json" and (line := json_lines.not_utf8_line(path)):  # pyarrow keeps them: a later read raises
        raise UserError(f"{path}:{line}: not UTF-8 (fix or remove this line)")
    try:
        return datasets.load_dataset(kind, data_files=str(path), split="train")
    except Exception as err:  # the datasets loaders raise many types for one cause: a file not in that format
        where = json_lines.first_bad_line(path) if kind == "json" and ".jsonl" in name else None
        raise UserError(f"{path}" + (f":{where}" if where else f": cannot read as {kind} "
                                     f"({str(err).splitlines()[0][:160]})")) from None


def load_table(spec: str) -> tuple[datasets.Dataset, Lineage]:
    """One source -> (Dataset, Lineage). The rows are not checked here: see check_sft / check_preferences."""
    if spec == "default" or spec.startswith("default:"):
        name = spec.split(":", 1)[1] if ":" in spec else None
        if name not in EMBEDDED:
            raise UserError(f"unknown embedded chat data '{spec}' (have: {', '.join('default:' + n for n in EMBEDDED)})")
        path = embedded_path("chat") / EMBEDDED[name]
        ds = _read(path)
        return ds, Lineage(spec=spec, resolved=f"package:fromscratch/embedded/chat/{path.name}",
                           sha256=_hash_files([path]), documents=len(ds), bytes=path.stat().st_size)
    if is_local(spec):
        path = Path(os.path.expanduser(spec))
        if not path.exists():
            raise UserError(f"data path not found: {spec}")
        files = sorted(f for f in path.rglob("*") if f.is_file() and not _hidden(f, path)) if path.is_dir() \
            else [path]
        if path.is_dir() and any((path / m).exists() for m in ("dataset_info.json", "dataset_dict.json", "state.json")):
            ds = load_saved(path)
            if isinstance(ds, datasets.DatasetDict):
                ds = ds["train"] if "train" in ds else ds[next(iter(ds))]
        elif path.is_dir():
            if not files:
                raise UserError(f"data path is empty: {spec}")
            ds = datasets.concatenate_datasets([_read(f) for f in files])
        else:
            ds = _read(path)
        return ds, Lineage(spec=spec, resolved=str(path.resolve()), sha256=_hash_files(files), documents=len(ds),
                           bytes=sum(f.stat().st_size for f in files))
    repo, _, subset = spec.removeprefix("hub:").partition(":")  # org/name:config, e.g. openai/gsm8k:main
    try:
        ds = datasets.load_dataset(repo, subset or None, split="train")
    except Exception as err:  # offline, unknown id, gated: one line, not the loader's traceback
        raise UserError(f"cannot load Hub dataset '{spec}' ({str(err).splitlines()[0][:160]})") from None
    return ds, Lineage(spec=spec, resolved=f"hub:{spec.removeprefix('hub:')}", sha256=ds._fingerprint,
                       documents=len(ds))


SOURCE = "_source"  # index into the user's `sources` list, on rows loaded with tag=True (see mix)


def load_sources(specs: list[str], check, *, tag: bool = False) -> tuple[datasets.Dataset, list[Lineage]]:
    """Load and check every source (check: check_sft or check_preferences, called as check(ds, spec, lineage)),
    then concatenate them. tag: add a SOURCE column (the position in `specs`; `default` counts as one source)."""
    if not specs:
        raise UserError("sources: give at least one data source")
    parts, lineage = [], []
    for index, spec in enumerate(specs):
        for sub in (["default:" + n for n in _default_for(check)] if spec == "default" else [spec]):
            ds, lin = load_table(sub)
            ds = check(ds, sub, lin)
            lin.documents = len(ds)
            parts.append(ds.add_column(SOURCE, [index] * len(ds)) if tag else ds)
            lineage.append(lin)
    shapes = {tuple(sorted(set(p.column_names) - {SOURCE})) for p in parts}
    if len(shapes) > 1:
        raise UserError("sources have different shapes (" + "; ".join(f"{l.spec}: {', '.join(sorted(p.column_names))}"
                                                                    for p, l in zip(parts, lineage)) + ")")
    return datasets.concatenate_datasets(parts) if len(parts) > 1 else parts[0], lineage


def mix(ds: datasets.Dataset, weights: list[float] | None, names: list[str], seed: int = 0
        ) -> tuple[datasets.Dataset, dict]:
    """Resample the rows of a tagged dataset so source i makes weights[i] / sum(weights) of it, keeping its size.

    A source short of its share is repeated whole (then topped up by a seeded sample without replacement), a
    larger one is subsampled: exact counts, unlike datasets.interleave_datasets, whose sampled probabilities give
    an epoch of unknown length and shares only in expectation. Apply it to the training split only, after the
    held-out split, so a repeated row never sits on both sides. weights None: rows as they are.
    Returns (dataset without the SOURCE column, {source name: {rows, mixed, share}})."""
    source = np.asarray(ds[SOURCE], dtype=np.int64)
    have = np.bincount(source, minlength=len(names))
    if weights is None:
        counts = {n: {"rows": int(h), "mixed": int(h), "share": round(float(h) / max(len(ds), 1), 4)}
                  for n, h in zip(names, have)}
        return ds.remove_columns(SOURCE), counts
    if len(weights) != len(names):
        raise UserError(f"weights: one per source, got {len(weights)} for {len(names)} sources ({', '.join(names)})")
    w = np.asarray(weights, dtype=float)
    if (w < 0).any() or not w.sum() > 0:
        raise UserError(f"weights must be >= 0 and not all 0, got {list(weights)}")
    if (empty := [n for n, h, x in zip(names, have, w) if h == 0 and x > 0]):
        raise UserError(f"weights: source {empty[0]} has no training rows to weight")
    total = len(ds)
    exact = w / w.sum() * total
    target = np.floor(exact).astype(int)
    target[np.argsort(target - exact)[: total - target.sum()]] += 1  # largest remainders: the counts sum to total
    rng = np.random.default_rng(seed)
    chosen = []
    for i, n in enumerate(target):
        rows = np.flatnonzero(source == i)
        if n == 0:
            continue
        copies, rest = divmod(int(n), len(rows))
        chosen += [np.tile(rows, copies), rng.choice(rows, rest, replace=False)]
    order = rng.permutation(np.concatenate(chosen))
    counts = {n: {"rows": int(h), "mixed": int(t), "share": round(float(t) / total, 4)}
              for n, h, t in zip(names, have, target)}
    return ds.select(order).remove_columns(SOURCE), counts


def _default_for(check) -> list[str]:
    # SFT learns from both; preference pairs exist only in hh-rlhf.
    return ["hh_rlhf", "self_instruct"] if check is check_sft else ["hh_rlhf"]


# --- shape checks (one line naming source, row and column) ----------------------------------------------

def _bad(spec: str, row: int, column: str, what: str) -> UserError:
    return UserError(f"{spec}: row {row + 1}, column '{column}': {what}")


def _check_messages(value, spec: str, row: int, column: str, need_assistant: bool = False) -> None:
    if not isinstance(value, list) or not value:
        raise _bad(spec, row, column, "empty" if value in (None, [], "") else f"expected a list of messages, got "
                   f"{type(value).__name__}")
    for j, m in enumerate(value):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise _bad(spec, row, column, f"message {j + 1} needs a role in {'/'.join(ROLES)}")
        if not isinstance(m.get("content"), str) or not m["content"].strip():
            raise _bad(spec, row, column, f"message {j + 1} ({m['role']}) has empty content")
    if need_assistant and not any(m["role"] == "assistant" for m in value):
        raise _bad(spec, row, column, "no assistant message to learn from")


def _check_text_or_messages(value, spec: str, row: int, column: str) -> None:
    if isinstance(value, str):
        if not value.strip():
            raise _bad(spec, row, column, "empty")
    else:
        _check_messages(value, spec, row, column)


MAX_MALFORMED_SHARE = 0.01  # above this share of a source's rows, the format is wrong, not a few rows


def _drop_malformed(ds: datasets.Dataset, spec: str, lineage: Lineage | None, check_row) -> datasets.Dataset:
    """Rows that fail `check_row(index, row)` (a UserError naming row and column) are dropped and counted in the
    lineage (the cards show it) with one printed line. A source where more than MAX_MALFORMED_SHARE of the rows
    fail stops the run with the first failure's line: that is a wrong column or format, not a stray row."""
    bad: list[tuple[int, str]] = []
    i = 0
    for batch in ds.iter(batch_size=1024):  # arrow batches: the rows are never all Python objects at once
        for values in zip(*batch.values()):
            try:
                check_row(i, dict(zip(batch, values)))
            except UserError as err:
                bad.append((i, str(err)))
            i += 1
    if not bad:
        return ds
    if len(bad) > MAX_MALFORMED_SHARE * len(ds):
        raise UserError(f"{bad[0][1]} ({len(bad)} of {len(ds)} rows malformed, over the "
                        f"{MAX_MALFORMED_SHARE:.0%} a run skips)")
    if lineage is not None:
        for _, message in bad:
            lineage.skip("malformed row", message)
    print(f"[data] {spec}: {len(bad)} malformed rows of {len(ds)} skipped (first: {bad[0][1]})")
    drop = {i for i, _ in bad}
    return ds.select([i for i in range(len(ds)) if i not in drop])


def _keep(ds: datasets.Dataset, columns: list[str]) -> datasets.Dataset:
    return ds.select_columns(columns)


def check_sft(ds: datasets.Dataset, spec: str, lineage: Lineage | None = None) -> datasets.Dataset:
    """SFT rows: `messages`, or `prompt` + `completion`. Returns the dataset with only those columns.
    Preference pairs (chosen/rejected) are accepted too: SFT learns from their chosen conversations."""
    cols = set(ds.column_names)
    if "chosen" in cols and "messages" not in cols:
        ds = check_preferences(ds, spec, lineage, drop_identical=False)  # the chosen answer is still a lesson
        if isinstance(ds[0]["chosen"], str):
            raise UserError(f"{spec}: SFT from preference pairs needs them as message lists, not strings")
        has_prompt = "prompt" in ds.column_names
        return ds.map(lambda r: {"messages": (r["prompt"] if has_prompt else []) + r["chosen"]},
                      remove_columns=ds.column_names)
    if "messages" in cols:
        ds = _drop_malformed(ds, spec, lineage, lambda i, r: _check_messages(r["messages"], spec, i, "messages",
                                                                                  need_assistant=True))
        return _keep(ds, ["messages"])
    if "completion" in cols or "prompt" in cols:
        for col in ("prompt", "completion"):
            if col not in cols:
                raise UserError(f"{spec}: missing column '{col}' (prompt/completion data needs both)")
        def row_ok(i, r):
            _check_text_or_messages(r["prompt"], spec, i, "prompt")
            _check_text_or_messages(r["completion"], spec, i, "completion")

        return _keep(_drop_malformed(ds, spec, lineage, row_ok), ["prompt", "completion"])
    raise UserError(f"{spec}: missing column 'messages' (or 'prompt' + 'completion'); columns: "
                    f"{', '.join(sorted(cols)) or 'none'}")


def check_preferences(ds: datasets.Dataset, spec: str, lineage: Lineage | None = None,
                      drop_identical: bool = True) -> datasets.Dataset:
    """Preference rows: `chosen` + `rejected` (+ optional `prompt`), all strings or all message lists.

    A pair whose chosen equals its rejected teaches nothing (its reward margin is 0 by construction, and a set of
    them trains to accuracy 0.0 without a word): dropped and counted in the lineage (the cards show it); a source
    made only of such pairs fails."""
    cols = set(ds.column_names)
    for col in ("chosen", "rejected"):
        if col not in cols:
            raise UserError(f"{spec}: missing column '{col}' (preference data needs 'chosen' and 'rejected'"
                            f"{', optionally prompt' }); columns: {', '.join(sorted(cols)) or 'none'}")
    def row_ok(i, row):
        p, c, r = row.get("prompt"), row["chosen"], row["rejected"]
        if c in (None, "", []) and r not in (None, "", []):
            raise _bad(spec, i, "chosen", "empty, but 'rejected' is set (a rejected answer needs a chosen one)")
        _check_text_or_messages(c, spec, i, "chosen")
        _check_text_or_messages(r, spec, i, "rejected")
        if p is not None:
            _check_text_or_messages(p, spec, i, "prompt")
        if isinstance(c, str) != isinstance(r, str):
            raise _bad(spec, i, "rejected", "chosen and rejected must both be strings or both message lists")

    ds = _drop_malformed(ds, spec, lineage, row_ok)
    same = [i for i, (c, r) in enumerate(zip(ds["chosen"], ds["rejected"])) if c == r] if drop_identical else []
    if same and len(same) == len(ds):
        raise UserError(f"{spec}: every pair ({len(ds)}) has chosen equal to rejected: nothing to learn a "
                        "preference from (check the columns)")
    if same:
        for i in same:
            if lineage is not None:
                lineage.skip("chosen equals rejected", f"{spec}: row {i + 1}")
        print(f"[data] {spec}: {len(same)} pairs with chosen equal to rejected dropped (first: row {same[0] + 1})")
        drop = set(same)
        ds = ds.select([i for i in range(len(ds)) if i not in drop])
    return _keep(ds, [c for c in ("prompt", "chosen", "rejected") if c in cols])


def trim_prompts(ds: datasets.Dataset, tokenizer, max_length: int) -> tuple[datasets.Dataset, dict]:
    """Drop the oldest prompt turns of a preference pair until chosen and rejected both fit max_length.

    TRL drops a pair that is too long. In multi-turn data (hh-rlhf: most dialogues run past 128 tokens) that
    throws away most pairs, although the final answers, the only part that differs, are short: the reward
    model learns from the end of the dialogue, so the start is what to lose. Turns go from the front while
    the prompt still starts with a user turn; a pair whose last user turn plus answer is too long is left as
    it is, and TRL drops it (counted by the recipe). Returns the dataset and {pairs_trimmed, turns_removed}.
    """
    if "prompt" not in ds.column_names or not len(ds) or isinstance(ds[0]["prompt"], str):
        return ds, {"pairs_trimmed": 0, "turns_removed": 0}

    def n_tokens(messages):
        return len(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])

    def trim(row):
        system = row["prompt"][:1] if row["prompt"][0]["role"] == "system" else []  # instructions stay
        turns = row["prompt"][len(system):]
        cut = 0
        while cut < len(turns) - 1 and max(n_tokens(system + turns[cut:] + row["chosen"]),
                                            n_tokens(system + turns[cut:] + row["rejected"])) > max_length:
            cut += 1
            while cut < len(turns) - 1 and turns[cut]["role"] != "user":
                cut += 1
        return {"prompt": system + turns[cut:], "removed": cut}

    out = ds.map(trim, desc="trim prompt turns")
    removed = out["removed"]
    return out.remove_columns("removed"), {"pairs_trimmed": sum(1 for r in removed if r),
                                           "turns_removed": int(sum(removed))}


# --- prompts for online RL ------------------------------------------------------------------------------

def to_prompts(ds: datasets.Dataset) -> datasets.Dataset:
    """A `prompt` column of message lists: SFT conversations lose their final assistant turn; preference
    pairs keep their prompt. What the policy answers during PPO/GRPO/RLOO."""
    cols = ds.column_names
    if "prompt" in cols:
        fix = (lambda r: {"prompt": [{"role": "user", "content": r["prompt"]}]}) if isinstance(ds[0]["prompt"], str) \
            else (lambda r: {"prompt": r["prompt"]})
        return ds.map(fix, remove_columns=cols)
    if "messages" in cols:
        def cut(r):
            msgs = r["messages"]
            last = max(i for i, m in enumerate(msgs) if m["role"] == "assistant")
            return {"prompt": msgs[:last]}  # empty when the assistant speaks first: the template still opens a turn
        return ds.map(cut, remove_columns=cols)  # check_sft made sure there is an assistant turn
    raise UserError(f"prompts need a 'prompt' or 'messages' column; columns: {', '.join(cols)}")


if __name__ == "__main__":
    if len(sys.argv) != 2:  # no default folder: the raw downloads live wherever the maintainer put them
        sys.exit("usage: python -m fromscratch.alignment.chat_data <folder holding the raw downloads>")
    print(json.dumps(build_embedded(sys.argv[1]), indent=2))


def fitted(trainer, train_set, eval_set, what: str, max_length: int | None) -> dict:
    """The rows a TRL trainer dropped while tokenizing (too long for max_length, or, for SFT, no assistant token
    within it), counted per split for the card; none left on a side is one line, not a sampler's ValueError."""
    dropped = {"train": len(train_set) - len(trainer.train_dataset),
               "eval": len(eval_set) - len(trainer.eval_dataset) if trainer.eval_dataset is not None else 0}
    for side, data in (("train", trainer.train_dataset), ("held-out", trainer.eval_dataset)):
        if data is not None and len(data) == 0:
            raise UserError(f"max_length {max_length}: none of the {len(train_set if side == 'train' else eval_set)} "
                            f"{side} {what} fits (TRL drops the ones with nothing to learn within it): raise max_length "
                            "or give shorter ones")
    return dropped
