"""chat_data: the embedded conversions are in TRL's formats, and wrong-shaped rows fail with one line naming
the source, row and column."""

from __future__ import annotations

import json

import datasets
import pytest

from fromscratch.alignment.chat_data import (SOURCE, build_embedded, check_preferences, check_sft, hh_dialogue, hh_pair,
                                             load_sources, load_table, mix, to_prompts, trim_prompts)
from fromscratch.config import UserError

from conftest import SHARED_DATA


def test_hh_dialogue_splits_turns_and_pair_shares_the_prompt():
    row = {"chosen": "\n\nHuman: Hi there\n\nAssistant: Hello!\n\nHuman: Bye\n\nAssistant: Goodbye.",
           "rejected": "\n\nHuman: Hi there\n\nAssistant: Hello!\n\nHuman: Bye\n\nAssistant: Go away."}
    assert [m["role"] for m in hh_dialogue(row["chosen"])] == ["user", "assistant", "user", "assistant"]
    pair = hh_pair(row)
    assert pair["prompt"][-1] == {"role": "user", "content": "Bye"}
    assert pair["chosen"] == [{"role": "assistant", "content": "Goodbye."}]
    assert pair["rejected"] == [{"role": "assistant", "content": "Go away."}]
    with pytest.raises(ValueError):
        hh_pair({"chosen": row["chosen"], "rejected": "\n\nHuman: other\n\nAssistant: Go away."})


@pytest.mark.skipif(not ((SHARED_DATA / "hh-rlhf").exists() and (SHARED_DATA / "self-instruct").exists()),
                    reason="needs ../shared/data (hh-rlhf and self-instruct raw downloads)")
def test_embedded_copies_match_a_fresh_conversion(tmp_path):
    report = build_embedded(SHARED_DATA, tmp_path)
    assert report["hh_rlhf"]["kept"] + sum(report["hh_rlhf"]["skipped"].values()) == report["hh_rlhf"]["rows_in"]
    for spec, name in (("default:hh_rlhf", "hh_rlhf_harmless.jsonl.gz"), ("default:self_instruct", "self_instruct_seed.jsonl")):
        shipped, _ = load_table(spec)
        fresh = datasets.load_dataset("json", data_files=str(tmp_path / name), split="train")
        assert shipped.to_list() == fresh.to_list()


def test_defaults_load_in_trl_shapes():
    sft, lineage = load_sources(["default"], check_sft)
    assert sft.column_names == ["messages"] and len(lineage) == 2
    assert all(m[-1]["role"] == "assistant" for m in sft["messages"][:50])
    prefs, _ = load_sources(["default"], check_preferences)
    assert prefs.column_names == ["prompt", "chosen", "rejected"]
    prompts = to_prompts(sft.select(range(20)))
    assert all(p[-1]["role"] == "user" for p in prompts["prompt"])


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


GOOD_MSG = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]


@pytest.mark.parametrize("rows, check, expected", [
    ([{"text": "x"}], check_sft, "missing column 'messages'"),
    ([{"messages": GOOD_MSG}, {"messages": []}], check_sft, "row 2, column 'messages': empty"),
    ([{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": " "}]}], check_sft,
     "row 1, column 'messages': message 2 (assistant) has empty content"),
    ([{"messages": [{"role": "user", "content": "Hi"}]}], check_sft, "row 1, column 'messages': no assistant"),
    ([{"prompt": "Hi"}], check_sft, "missing column 'completion'"),
    ([{"chosen": "a", "rejected": "b"}, {"chosen": "", "rejected": "b"}], check_preferences,
     "row 2, column 'chosen': empty, but 'rejected' is set"),
    ([{"prompt": "p", "rejected": "b"}], check_preferences, "missing column 'chosen'"),
    ([{"chosen": "a", "rejected": ""}], check_preferences, "row 1, column 'rejected': empty"),
])
def test_wrong_shapes_fail_with_one_line(tmp_path, rows, check, expected):
    path = _jsonl(tmp_path / "data.jsonl", rows)
    with pytest.raises(UserError) as err:
        load_sources([path], check)
    message = str(err.value)
    assert expected in message and path in message and "\n" not in message


def test_a_few_malformed_rows_are_skipped_and_counted_many_stop_the_run(tmp_path, capsys):
    """One bad row in 200 (0.5%) is dropped, counted in the lineage the cards show, and printed; 3 in 200 (1.5%,
    over MAX_MALFORMED_SHARE) is a wrong format and stops the run on the first one's line."""
    rows = [{"messages": GOOD_MSG + [{"role": "user", "content": f"n{i}"}, {"role": "assistant", "content": "ok"}]}
            for i in range(200)]
    rows[57] = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": ""}]}
    path = _jsonl(tmp_path / "data.jsonl", rows)
    ds, (lineage,) = load_sources([path], check_sft)
    assert len(ds) == 199 and all(r["messages"][2]["content"] != "n57" for r in ds)
    assert lineage.skipped == {"malformed row": 1}
    assert "row 58, column 'messages': message 2 (assistant) has empty content" in lineage.skipped_examples[0]
    assert "1 malformed rows of 200 skipped" in capsys.readouterr().out
    for i in (10, 20):
        rows[i] = {"messages": []}
    path = _jsonl(tmp_path / "worse.jsonl", rows)
    with pytest.raises(UserError, match=r"row 11, column 'messages': empty \(3 of 200 rows malformed"):
        load_sources([path], check_sft)


def test_mixed_shapes_are_refused(tmp_path):
    a = _jsonl(tmp_path / "a.jsonl", [{"messages": GOOD_MSG}])
    b = _jsonl(tmp_path / "b.jsonl", [{"prompt": "Hi", "completion": "Hello"}])
    with pytest.raises(UserError, match="different shapes"):
        load_sources([a, b], check_sft)


def test_trim_prompts_drops_oldest_turns_until_the_pair_fits(tokenizer_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    turn = "the quick brown fox jumps over the lazy dog " * 3
    system = [{"role": "system", "content": "Be kind."}]
    prompt = system + [{"role": r, "content": f"{i} {turn}"} for i, r in enumerate(["user", "assistant"] * 3 + ["user"])]
    pair = {"prompt": prompt, "chosen": [{"role": "assistant", "content": "Sure, here."}],
            "rejected": [{"role": "assistant", "content": "No."}]}
    short = {"prompt": [{"role": "user", "content": "Hi"}], "chosen": pair["chosen"], "rejected": pair["rejected"]}

    def length(p):
        return len(tok.apply_chat_template(p + pair["chosen"], tokenize=True, return_dict=True)["input_ids"])

    limit = length(system + prompt[-3:]) + 1  # room for the last user-assistant-user turns, not for more
    assert length(prompt) > limit
    out, counts = trim_prompts(datasets.Dataset.from_list([pair, short]), tok, limit)
    kept = out[0]["prompt"]
    assert kept[0] == system[0]  # the system message stays
    assert kept[1:] == prompt[-3:] and kept[1]["role"] == "user"  # whole turns from the front, starts with the user
    assert out[1]["prompt"] == short["prompt"]  # a pair that fits is untouched
    assert counts == {"pairs_trimmed": 1, "turns_removed": 4}
    # The last user turn is never removed: a pair too long even then is left for TRL to drop (and count).
    out, counts = trim_prompts(datasets.Dataset.from_list([pair]), tok, 5)
    assert out[0]["prompt"] == system + prompt[-1:] and counts["turns_removed"] == 6

def _tagged(sizes):
    return datasets.Dataset.from_dict({"x": [f"{i}-{j}" for i, n in enumerate(sizes) for j in range(n)],
                                       SOURCE: [i for i, n in enumerate(sizes) for _ in range(n)]})


def test_mix_gives_each_source_its_exact_share_seeded():
    ds = _tagged([90, 10])  # a large source and a small one wanted at half
    out, counts = mix(ds, [1, 1], ["big", "small"], seed=3)
    assert len(out) == 100 and SOURCE not in out.column_names
    small = [x for x in out["x"] if x.startswith("1-")]
    assert len(small) == 50 == counts["small"]["mixed"] and counts["small"] == {"rows": 10, "mixed": 50, "share": 0.5}
    assert sorted(set(small)) == sorted(f"1-{j}" for j in range(10))  # repeated whole: every row 5 times
    big = [x for x in out["x"] if x.startswith("0-")]
    assert len(big) == len(set(big)) == 50  # subsampled without repeats
    assert out["x"] == mix(ds, [1, 1], ["big", "small"], seed=3)[0]["x"]
    assert out["x"] != mix(ds, [1, 1], ["big", "small"], seed=4)[0]["x"]
    odd, counts = mix(_tagged([7, 7, 7]), [0.5, 0.25, 0.25], ["a", "b", "c"])
    assert len(odd) == 21 and sum(c["mixed"] for c in counts.values()) == 21 and counts["a"]["mixed"] in (10, 11)
    dropped, counts = mix(ds, [1, 0], ["big", "small"])
    assert counts["small"]["mixed"] == 0 and not any(x.startswith("1-") for x in dropped["x"])


def test_mix_without_weights_keeps_rows_and_refuses_bad_weights():
    ds = _tagged([3, 2])
    out, counts = mix(ds, None, ["a", "b"])
    assert out["x"] == ds["x"] and counts["b"] == {"rows": 2, "mixed": 2, "share": 0.4}
    for bad, what in (([1.0], "one per source"), ([1, -1], ">= 0"), ([0, 0], "not all 0")):
        with pytest.raises(UserError, match=what):
            mix(ds, bad, ["a", "b"])


def test_load_sources_tags_each_user_source():
    data, lineage = load_sources(["default", "default:self_instruct"], check_sft, tag=True)
    assert len(lineage) == 3  # default expands to hh_rlhf + self_instruct, but is one source to weight
    tags = data[SOURCE]
    assert set(tags) == {0, 1} and tags.count(1) == lineage[2].documents
