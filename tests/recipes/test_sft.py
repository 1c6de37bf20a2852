"""recipes/04_sft: loss on assistant tokens only (checked on TRL's real dataset + collator), held-out loss below
the pretrained model's, card pointing at its parent, malformed data refused before training."""

from __future__ import annotations

import json

import pytest
import yaml
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer

from conftest import ROOT, error_line, run_recipe
from fromscratch.alignment.chat_data import SOURCE, check_sft, load_sources, mix


def expected_mask(ids: list[int], tok) -> list[bool]:
    """True on the tokens of assistant turns after their header, through <|im_end|> (what the model must learn
    to produce), found from the tokens themselves rather than from TRL's own mask."""
    start, end = tok.convert_tokens_to_ids("<|im_start|>"), tok.convert_tokens_to_ids("<|im_end|>")
    mask, i = [False] * len(ids), 0
    while i < len(ids):
        if ids[i] == start:
            j = i + 1
            while j < len(ids) and tok.decode(ids[i + 1:j + 1]).count("\n") == 0:
                j += 1  # the header is "<role>\n"
            role = tok.decode(ids[i + 1:j]).strip()
            k = j + 1
            while k < len(ids) and ids[k] != end:
                k += 1
            if role == "assistant":
                for p in range(j + 1, min(k + 1, len(ids))):
                    mask[p] = True
            i = k
        i += 1
    return mask


def test_labels_cover_assistant_tokens_only(pretrained_dir, tmp_path):
    cfg = yaml.safe_load((ROOT / "recipes/04_sft/config_tiny.yaml").read_text())
    assert cfg["assistant_only_loss"] is True  # the shipped default
    tok = AutoTokenizer.from_pretrained(pretrained_dir)
    data, _ = load_sources(["default"], check_sft)
    data = data.shuffle(seed=0).select(range(16))
    args = SFTConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to="none",
                     assistant_only_loss=cfg["assistant_only_loss"], max_length=128, per_device_train_batch_size=8)
    trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(pretrained_dir), args=args, train_dataset=data,
                         processing_class=tok)
    batch = next(iter(trainer.get_train_dataloader()))
    n_user_turns = 0
    for ids, labels, attn in zip(batch["input_ids"].tolist(), batch["labels"].tolist(), batch["attention_mask"].tolist()):
        ids = [t for t, a in zip(ids, attn) if a]
        trained = [l != -100 for l, a in zip(labels, attn) if a]
        assert trained == expected_mask(ids, tok)
        assert any(trained) and not all(trained)
        n_user_turns += tok.decode(ids).count("<|im_start|>user")
    assert n_user_turns >= 8  # the user turns really were there, and untrained


def test_sft_beats_the_pretrained_model_on_held_out_conversations(sft_dir, pretrained_dir):
    info = json.loads((sft_dir / "run_info.json").read_text())
    m = info["metrics"]
    # initial_eval_loss is the pretrained model on the same held-out conversations with the same mask
    assert m["eval_loss"] < m["initial_eval_loss"], m
    from huggingface_hub import ModelCard

    from card_rules import problems

    card = ModelCard.load(sft_dir / "README.md")
    # The parent is a local folder that was never pushed: no base_model in the metadata, named in the text.
    assert card.data.base_model is None and f"local folder `{pretrained_dir}`" in card.text
    assert card.data.datasets == ["Anthropic/hh-rlhf"]  # the embedded hh-rlhf; self-instruct seeds are not on the Hub
    assert "## Uses" in card.text and "## Limitations" in card.text and "## Bias, risks" in card.text
    assert problems(sft_dir) == []
    assert (sft_dir / "trainer_state.json").is_file() and (sft_dir / "loss.png").is_file()
    tok = AutoTokenizer.from_pretrained(sft_dir)
    assert "generation" in tok.chat_template  # the template travels with the model to stage 05/06
    AutoModelForCausalLM.from_pretrained(sft_dir)


def test_malformed_conversations_fail_before_training(pretrained_dir, tmp_path):
    bad = tmp_path / "chats.jsonl"
    good = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    bad.write_text(json.dumps({"messages": good}) + "\n" + json.dumps({"messages": []}) + "\n")
    out = tmp_path / "sft"
    proc = run_recipe("04_sft", "--config", "recipes/04_sft/config_tiny.yaml", "--model_dir", str(pretrained_dir),
                      "--sources", str(bad), "--output_dir", str(out), ok=False)
    line = error_line(proc)
    assert "row 2" in line and "'messages'" in line
    assert not out.exists() and not (tmp_path / "sft.tmp").exists()  # nothing started


def test_conversations_that_all_fall_beyond_max_length_are_one_line(pretrained_dir, tmp_path):
    # TRL drops them while tokenizing; with none left the sampler raised "num_samples=0" (a traceback)
    long = [{"role": "user", "content": "x " * 400}, {"role": "assistant", "content": "y " * 400}]
    src = tmp_path / "long.jsonl"
    src.write_text((json.dumps({"messages": long}) + "\n") * 10)
    out = tmp_path / "sft"
    proc = run_recipe("04_sft", "--config", "recipes/04_sft/config_tiny.yaml", "--model_dir", str(pretrained_dir),
                      "--sources", str(src), "--max_length", "64", "--output_dir", str(out), ok=False)
    assert error_line(proc) == ("error: max_length 64: none of the 9 train conversations fits (TRL drops the ones "
                                "with nothing to learn within it): raise max_length or give shorter ones")
    assert not out.exists() and not (tmp_path / "sft.tmp").exists()


def test_missing_parent_is_one_line(tmp_path):
    proc = run_recipe("04_sft", "--config", "recipes/04_sft/config_tiny.yaml", "--model_dir", str(tmp_path / "nope"),
                      ok=False)
    assert "make pretrain" in error_line(proc)


def test_safety_config_mixes_harmless_dialogues_at_its_share(pretrained_dir, tmp_path):
    config = ROOT / "recipes/04_sft/config_safety_tiny.yaml"
    cfg = yaml.safe_load(config.read_text())
    assert cfg["sources"][1] == "default:hh_rlhf" and cfg["weights"][1] > 0
    share = cfg["weights"][1] / sum(cfg["weights"])
    # the training split as the recipe builds it, checked row by row: which rows are hh-rlhf dialogues?
    data, _ = load_sources(cfg["sources"], check_sft, tag=True)
    train = data.train_test_split(test_size=cfg["validation_fraction"], seed=cfg["seed"])["train"]
    instructions = {json.dumps(m) for m in load_sources(["default:self_instruct"], check_sft)[0]["messages"]}
    mixed, counts = mix(train, cfg["weights"], cfg["sources"], seed=cfg["seed"])
    harmless = sum(json.dumps(m) not in instructions for m in mixed["messages"])
    assert len(mixed) == len(train) and abs(harmless / len(mixed) - share) < 1e-3, (harmless, len(mixed))
    assert counts["default:hh_rlhf"]["mixed"] == harmless
    # and the recipe runs with it, reporting the same mix
    out = tmp_path / "sft_safety"
    proc = run_recipe("04_sft", "--config", str(config), "--model_dir", str(pretrained_dir), "--output_dir", str(out),
                      "--max_length", "128", "--max_steps", "4", "--eval_steps", "4", "--save_steps", "4",
                      "--per_device_eval_batch_size", "64", "--validation_fraction", "0.02", "--report_to", "none",
                      "--disable_tqdm", "true")
    assert "[data] training mix: default:self_instruct" in proc.stdout
    info = json.loads((out / "run_info.json").read_text())
    run_mix = info["metrics"]["data_mix"]
    assert run_mix["default:hh_rlhf"]["share"] == pytest.approx(share, abs=1e-3)
    assert yaml.safe_load((out / "config.yaml").read_text())["weights"] == cfg["weights"]
    assert "training mix (weights" in (out / "README.md").read_text()


@pytest.mark.parametrize("merge", [True, False])
def test_lora_trains_adapters_and_merges_into_a_standalone_model(merge, pretrained_dir, tmp_path):
    import torch
    from peft import PeftModel

    out = tmp_path / "lora"
    run_recipe("04_sft", "--config", "recipes/04_sft/config_tiny.yaml", "--model_dir", str(pretrained_dir),
               "--output_dir", str(out), "--use_lora", "true", "--merge_lora", str(merge).lower(), "--lora_r", "4",
               "--max_length", "128", "--max_steps", "4", "--eval_steps", "2", "--save_steps", "2",
               "--learning_rate", "0.01", "--report_to", "none", "--disable_tqdm", "true")
    base = AutoModelForCausalLM.from_pretrained(pretrained_dir)
    if merge:  # a plain model: no adapter files, loads without peft, and the adapters' update is in its weights
        assert not (out / "adapter_config.json").exists()
        model, info = AutoModelForCausalLM.from_pretrained(out, output_loading_info=True)
        assert not info["missing_keys"] and not info["unexpected_keys"]
    else:  # an adapter folder on top of its base
        assert json.loads((out / "adapter_config.json").read_text())["r"] == 4
        model = PeftModel.from_pretrained(base, out).merge_and_unload()
        base = AutoModelForCausalLM.from_pretrained(pretrained_dir)
    changed = [n for n, p in model.named_parameters()
               if not torch.equal(p, base.get_parameter(n))]
    assert changed and all("proj" in n for n in changed), changed  # only adapted linear layers moved
    assert "lora" in (out / "README.md").read_text().lower()


@pytest.mark.slow
def test_flan_mixture_counts_formats_and_learns_the_cot_tokens(pretrained_dir, tmp_path):
    out = tmp_path / "sft_flan"
    proc = run_recipe("04_sft", "--config", "recipes/04_sft/config_tiny.yaml", "--model_dir", str(pretrained_dir),
                      "--sources", "default:self_instruct", "--cot_sources", "tests/data/gsm8k_format_fixture.jsonl",
                      "--validation_fraction", "0.1", "--flan_exemplars", "1", "--max_length", "128",
                      "--max_steps", "40", "--eval_steps", "20", "--save_steps", "20", "--learning_rate", "0.003",
                      "--output_dir", str(out), "--report_to", "none", "--disable_tqdm", "true")
    m = json.loads((out / "run_info.json").read_text())["metrics"]
    mix = m["flan_mixture"]
    assert mix["reasoning_train"] + mix["reasoning_held_out"] == 48 and mix["dropped_in_eval_sets"] == 0
    assert mix["reasoning_by_shares"] == {"zero_shot_direct": 11, "zero_shot_cot": 11, "few_shot_direct": 11,
                                          "few_shot_cot": 10}  # 43 training problems by equal shares
    # At 128 tokens (this model's context) most exemplars do not fit: those rows are trained, and counted, as
    # zero-shot of the same kind, never dropped by TRL for an answer past max_length.
    got = mix["reasoning"]
    assert sum(got.values()) == 43 and got["few_shot_cot"] < 10 and got["zero_shot_cot"] > 11
    assert got["zero_shot_cot"] + got["few_shot_cot"] == 21 and got["zero_shot_direct"] + got["few_shot_direct"] == 22
    assert mix["instructions"]["zero_shot_cot"] == mix["instructions"]["few_shot_cot"] == 0
    # The loss on the rationale + answer tokens of held-out problems, asked as the zero-shot CoT eval asks them.
    cot = m["cot_loss"]
    assert cot["rows"] == mix["reasoning_held_out"] and cot["final"] < cot["initial"], cot
    card = (out / "README.md").read_text()
    assert "## Flan mixture" in card and f"| reasoning | {got['zero_shot_direct']} | {got['zero_shot_cot']} |" in card
    assert (f"Loss on the CoT tokens (rationale and answer) of {cot['rows']} held-out reasoning rows, zero-shot CoT:\n"
            f"{cot['initial']:.4f} before SFT,\n{cot['final']:.4f} after.") in card
    assert "[data] flan mixture:" in proc.stdout
