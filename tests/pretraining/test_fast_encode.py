"""The tiktoken encoder of `make tokenize` gives exactly the ids of tokenizer(..., add_special_tokens=False):
on real text, special tokens inside it, every kind of whitespace and script, characters the two regex engines
class differently, a vocabulary whose ids are not the merge order, a difference its guard catches, and a
tokenizer it does not support."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from fromscratch.pretraining.fast_encode import FastEncoder, ranks
from fromscratch.sources import load_documents

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"

TRICKY = [
    "Hello <|bos|> world<|eos|><|im_start|>user\nhi<|im_end|> and <|pad|>x",  # special tokens inside text
    "It's 'twas they're I'VE we'll you'd o'clock ''s 's",  # contractions, upper case and stray quotes
    "  leading spaces\t\ttabs\r\ncrlf\n\n\nblank lines   \n  trailing   ",
    "nbsp\u00a0here, ideographic\u3000space, line\u2028sep, para\u2029sep, nel\u0085, zwsp\u200bjoin\u200d",
    "ctrl \x00\x01\x1c\x1d\x1e\x1f\x7f bell\x07 form\x0cfeed vt\x0b",
    "Émile Zoë naïve façade Ångström straße İstanbul ΑΒΓ δέκα Привет мир",
    "中文字符和日本語のテキスト、한국어 텍스트。 ١٢٣ arabic العربية hebrew עברית हिन्दी ४२ ไทย",
    "emoji 👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️ math 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛 combining e\u0301 a\u0308 private \ue000 \U000f0000",
    "numbers 3.14159 1,000,000 ½ ² ⅷ Ⅻ 1e-9 0x1F #42 $5 100% — – … «quotes» “curly” ‘single’",
    "",
    " ",
    "a",
]


@pytest.fixture(scope="module")
def tok(tokenizer_dir):
    return AutoTokenizer.from_pretrained(tokenizer_dir)


def real_texts() -> list[str]:
    """~1 MB: every 4th paragraph of the embedded corpora, and WikiText-2 and hh-rlhf where ../shared is."""
    docs = [p for d in load_documents("default")[0] for p in d.split("\n\n")][::4]
    if (SHARED / "wikitext-2" / "valid.txt").is_file():
        docs += (SHARED / "wikitext-2" / "valid.txt").read_text(encoding="utf-8").split("\n \n")[:300]
    if (SHARED / "hh-rlhf" / "harmless-base-test.jsonl.gz").is_file():
        with gzip.open(SHARED / "hh-rlhf" / "harmless-base-test.jsonl.gz", "rt") as fh:
            docs += [json.loads(line)["chosen"] for line in fh][:500]
    return docs


def reference(tok, texts):
    return tok(texts, add_special_tokens=False)["input_ids"]


def test_identical_ids_on_real_and_tricky_text(tok):
    texts = real_texts() + TRICKY
    enc = FastEncoder(tok)
    assert enc.fast
    got = [ids for a in range(0, len(texts), 300) for ids in enc(texts[a:a + 300])]
    assert got == reference(tok, texts)
    assert enc.mismatches == 0 and enc.fast  # the guard compared the first 200 and found none
    assert enc.by_tokenizer < enc.documents / 20  # the fast path did the work, not the fallback
    assert enc(["<|bos|>"]) == [[tok.bos_token_id]]


def test_every_character_is_classed_alike_by_both_regex_engines(tok):
    """tiktoken (fancy-regex) and tokenizers (oniguruma) carry their own Unicode tables. Today they agree on every
    code point (the `regex` module, used before, differed on 17,480): checked here, so a pin bump that makes them
    differ is seen."""
    enc = FastEncoder(tok)
    sample = [chr(c) for c in range(0x80, 0x32400, 7) if not 0xD800 <= c < 0xE000]
    assert [c for c in sample if not enc._same_split(c)] == []
    assert enc._same_split("\u3000") and enc._same_split("\U00010940")  # a space; a letter new in Unicode 17


def test_a_character_the_engines_class_differently_goes_through_the_tokenizer(tok, monkeypatch):
    from fromscratch.pretraining import fast_encode

    real = fast_encode._piece_classes
    monkeypatch.setattr(fast_encode, "_piece_classes", lambda c: (False,) * 4 if c == "\u00e9" else real(c))
    enc = FastEncoder(tok)
    texts = ["caf\u00e9 au lait", "plain ascii", "na\u00efve"]
    assert enc(texts) == reference(tok, texts)
    assert enc.differ == {"\u00e9"} and enc.by_tokenizer == 1  # only the document holding it


def test_ids_that_are_not_the_merge_order_go_through_the_tokenizer():
    """tiktoken ranks pairs by the merged token's id; a vocabulary numbered otherwise would merge differently."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {c: i + 2 for i, c in enumerate(alphabet)} | {"ab": 0, "abc": 1}  # merged tokens numbered first
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[("a", "b"), ("ab", "c")]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok = PreTrainedTokenizerFast(tokenizer_object=backend)
    assert ranks(backend) is None
    enc = FastEncoder(tok)
    assert not enc.fast and enc(["abc abd"]) == reference(tok, ["abc abd"])


def test_the_guard_sends_everything_to_the_tokenizer_after_a_difference(tok):
    texts = load_documents("default:us_speeches")[0][:6]
    enc = FastEncoder(tok)
    real = enc.bpe.encode_ordinary
    enc.bpe = type("Off", (), {"encode_ordinary": staticmethod(lambda t: real(t)[:-1])})()  # disagrees
    assert enc(texts) == reference(tok, texts)
    assert enc.mismatches == 6 and not enc.fast and enc.by_tokenizer == 6
    assert enc(texts[:2]) == reference(tok, texts[:2])  # and later batches too


def test_an_unsupported_tokenizer_is_encoded_by_itself(tokenizer_dir):
    texts = TRICKY + load_documents("default:tinyshakespeare")[0][:5]
    for change in (lambda b: setattr(b, "normalizer", normalizers.Lowercase()),
                   lambda b: setattr(b, "pre_tokenizer", pre_tokenizers.ByteLevel(add_prefix_space=True))):
        tok = AutoTokenizer.from_pretrained(tokenizer_dir)
        change(tok.backend_tokenizer)
        enc = FastEncoder(tok)
        assert not enc.fast
        assert enc(texts) == reference(tok, texts)
