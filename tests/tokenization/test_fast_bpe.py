import json

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from fromscratch.sources import load_documents
from fromscratch.tokenization import fast_bpe

pytest.importorskip("rustbpe", reason="rustbpe is pinned in pyproject.toml; install it to test fast_bpe")

SPECIALS = ["<|bos|>", "<|eos|>", "<|pad|>"]
HARD = ["  leading spaces, trailing tabs\t\t\nand\r\nwindows newlines  ", "naïve café, 日本語, emoji 🤖🚀 ∑∞",
        "\x00\x01 control bytes and \u200b zero width", "don't we'll 1234567 ...!!"]


def test_same_merges_as_tokenizers_up_to_ties_and_exact_round_trip():
    docs = load_documents("default:tinyshakespeare")[0]
    heldout, train = docs[:300], docs[300:]
    fast = fast_bpe.train(iter(train), 1024, SPECIALS)
    ref = Tokenizer(models.BPE())
    ref.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    ref.train_from_iterator(train, trainers.BpeTrainer(vocab_size=1024, min_frequency=2, special_tokens=SPECIALS,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                       show_progress=False))
    got, want = json.loads(fast.to_str())["model"], json.loads(ref.to_str())["model"]
    assert set(got["vocab"]) == set(want["vocab"]) and len(got["vocab"]) == 1024
    assert sorted(map(tuple, got["merges"])) == sorted(map(tuple, want["merges"]))
    assert [fast.token_to_id(t) for t in SPECIALS] == [0, 1, 2]
    n_fast = sum(len(fast.encode(t).ids) for t in heldout)
    n_ref = sum(len(ref.encode(t).ids) for t in heldout)
    assert abs(n_fast / n_ref - 1) < 0.002  # ties merged in another order change a token here and there at most
    for text in heldout[:50] + HARD:
        assert fast.decode(fast.encode(text).ids) == text
    assert fast.encode("<|eos|>").ids == [1]


def test_training_stops_before_the_32_bit_counts_could_overflow(monkeypatch):
    """rustbpe's word and pair counts are unchecked i32: no count can exceed the bytes of text, so the stream is
    refused past MAX_TRAIN_BYTES (a 2.1 GB corpus would otherwise risk silently wrapped counts)."""
    from fromscratch.config import UserError

    docs = load_documents("default:tinyshakespeare")[0][:200]
    total = sum(len(d.encode("utf-8")) for d in docs)
    monkeypatch.setattr(fast_bpe, "MAX_TRAIN_BYTES", total)
    assert len(fast_bpe.train(iter(docs), 300, SPECIALS).get_vocab()) == 300  # exactly at the bound: trains
    monkeypatch.setattr(fast_bpe, "MAX_TRAIN_BYTES", total - 1)
    with pytest.raises(UserError, match="counts in 32 bits.*train_sample_rate"):
        fast_bpe.train(iter(docs), 300, SPECIALS)
