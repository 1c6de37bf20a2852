"""What a transformers / lm-eval user gets from the saved stage outputs: the tokenizer adds BOS as pretraining
saw it (and nothing adds it twice), contexts agree, the cache is on, and chat models stop at the end of their
turn."""

from __future__ import annotations

import json

import datasets
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessor, LogitsProcessorList

from fromscratch.pretraining.packing import tokenize
from fromscratch.training import saved_model

CHAT = [{"role": "user", "content": "How do I make tea?"}]


class EndTurnAfter(LogitsProcessor):
    """The model "decides" to end its turn after `k` new tokens of a prompt of `n` tokens."""

    def __init__(self, n: int, turn_end: int, k: int = 3):
        self.n, self.turn_end, self.k = n, turn_end, k

    def __call__(self, input_ids, scores):
        if input_ids.shape[1] - self.n == self.k:
            scores[:] = -float("inf")
            scores[:, self.turn_end] = 0.0
        return scores


def test_tokenizer_adds_bos_once_everywhere(tokenizer_dir):
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    ids = tok("hi there")["input_ids"]
    assert ids[0] == tok.bos_token_id and ids[1:] == tok("hi there", add_special_tokens=False)["input_ids"]
    assert tok.bos_token_id not in ids[1:]
    # The chat template writes its own bos; apply_chat_template does not add a second one.
    chat = tok.apply_chat_template(CHAT, add_generation_prompt=True, tokenize=True)["input_ids"]
    assert chat[0] == tok.bos_token_id and chat.count(tok.bos_token_id) == 1
    # Pretraining packing: bos + document + eos, one bos per document even with a bos-adding tokenizer.
    docs = datasets.Dataset.from_dict({"text": ["one document", "and another"]})
    for row in tokenize(docs, tok)["input_ids"]:
        assert row[0] == tok.bos_token_id and row.count(tok.bos_token_id) == 1 and row[-1] == tok.eos_token_id


def test_lm_eval_sees_the_bos_of_training(pretrained_dir):
    from lm_eval.models.huggingface import HFLM

    tok = AutoTokenizer.from_pretrained(pretrained_dir)
    lm = HFLM(pretrained=AutoModelForCausalLM.from_pretrained(pretrained_dir), tokenizer=tok, batch_size=1)
    assert lm.tok_encode("ROMEO: what light")[0] == tok.bos_token_id
    assert lm.max_length == 128  # the model's context (block_size of the fixture), from the tokenizer and config


def test_saved_models_agree_with_their_config(pretrained_dir, sft_dir):
    for folder in (pretrained_dir, sft_dir):  # the reward model: tests/recipes/test_reward.py
        config = json.loads((folder / "config.json").read_text())
        tok_config = json.loads((folder / "tokenizer_config.json").read_text())
        assert config["use_cache"] is True, folder
        assert tok_config["model_max_length"] == config["max_position_embeddings"] == 128, folder
        assert not {"is_local", "local_files_only"} & set(tok_config), folder
    base = json.loads((pretrained_dir / "generation_config.json").read_text())
    assert base["eos_token_id"] == AutoTokenizer.from_pretrained(pretrained_dir).eos_token_id


def test_sft_model_stops_at_the_end_of_its_turn(sft_dir):
    tok = AutoTokenizer.from_pretrained(sft_dir)
    model = AutoModelForCausalLM.from_pretrained(sft_dir).eval()
    turn_end, document_end = tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids("<|eos|>")
    assert tok.eos_token == "<|im_end|>"
    assert model.generation_config.eos_token_id == [turn_end, document_end]
    prompt = tok.apply_chat_template(CHAT, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    n = prompt["input_ids"].shape[1]

    with torch.no_grad():
        out = model.generate(**prompt, max_new_tokens=40, do_sample=False,
                             logits_processor=LogitsProcessorList([EndTurnAfter(n, turn_end)]))[0, n:].tolist()
        natural = model.generate(**prompt, max_new_tokens=40, do_sample=False)[0, n:].tolist()
    assert len(out) == 4 and out[-1] == turn_end  # generate stopped there, on the saved config alone
    stops = [i for i, t in enumerate(natural) if t in (turn_end, document_end)]
    assert not stops or stops[0] == len(natural) - 1  # greedy: it ran on only while it had not ended its turn


def test_chat_stops_keep_the_document_end(tokenizer_dir):
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    stops = saved_model.chat_stops(tok, tok.eos_token_id)
    assert stops == [tok.convert_tokens_to_ids("<|im_end|>"), tok.eos_token_id]


def test_text_generation_pipeline_on_a_chat_message_stops_at_the_turn_end(sft_dir):
    """What a user types: pipeline("text-generation") with a chat message, nothing but the saved folder."""
    from transformers import pipeline

    tok = AutoTokenizer.from_pretrained(sft_dir)
    turn_end = tok.convert_tokens_to_ids("<|im_end|>")
    n = len(tok.apply_chat_template(CHAT, add_generation_prompt=True, tokenize=True)["input_ids"])

    chat = pipeline("text-generation", model=str(sft_dir))
    ids = [int(t) for t in chat(CHAT, max_new_tokens=40, do_sample=False, return_tensors=True,
                                logits_processor=LogitsProcessorList([EndTurnAfter(n, turn_end)]))[0]["generated_token_ids"]]
    assert ids[:n] == tok.apply_chat_template(CHAT, add_generation_prompt=True, tokenize=True)["input_ids"]
    assert len(ids) == n + 4 and ids[-1] == turn_end  # the pipeline stopped at the turn end, 36 tokens early
    reply = chat(CHAT, max_new_tokens=40, do_sample=False)[0]["generated_text"][-1]
    assert reply["role"] == "assistant" and "<|im_end|>" not in reply["content"]
