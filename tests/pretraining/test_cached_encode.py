"""The word-cache encoder of `make tokenize` gives exactly the ids of tokenizer(..., add_special_tokens=False):
on real text, special tokens inside it, every kind of whitespace and script, characters the two regex engines
class differently, a full cache, and a tokenizer it does not support."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from fromscratch.pretraining.cached_encode import CachedEncoder
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
    enc = CachedEncoder(tok)
    assert enc.fast
    got = [ids for a in range(0, len(texts), 300) for ids in enc(texts[a:a + 300])]
    assert got == reference(tok, texts)
    again = enc(texts[:300])  # from the filled cache
    assert again == got[:300]
    assert enc.by_tokenizer < enc.documents / 20  # the fast path did the work, not the fallback
    assert enc(["<|bos|>"]) == [[tok.bos_token_id]]


def test_characters_the_engines_class_differently_go_through_the_tokenizer():
    """regex knows a newer Unicode than tokenizers' oniguruma: letters new to Unicode 17 are 'other' there, so
    the split differs, and with a merge across it the ids too. Such a document must take the tokenizer's path."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {c: i for i, c in enumerate(alphabet)} | {"að": len(alphabet)}  # a + the first byte, 0xF0
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[("a", "ð")]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok = PreTrainedTokenizerFast(tokenizer_object=backend)
    enc = CachedEncoder(tok)
    differ = [chr(c) for c in range(0x10940, 0x1095A) if not enc._same_split(chr(c))]  # Unicode 17 letters
    assert differ, "the pinned regex and tokenizers agree on these: pick characters newer than oniguruma's tables"
    text = f"a{differ[0]} and a\U0001F600"  # the emoji is 'other' in both: its document could take the fast path
    assert enc._encode(text) != reference(tok, [text])[0]  # the naive fast path would be wrong here
    assert enc([text, "a\U0001F600"]) == reference(tok, [text, "a\U0001F600"])
    assert enc.by_tokenizer == 1


def test_a_full_cache_is_cleared_and_stays_exact(tok):
    texts = load_documents("default:us_speeches")[0][:8]
    enc = CachedEncoder(tok, max_words=50)
    assert enc(texts) == reference(tok, texts)
    assert 0 < len(enc.words) <= 50


def test_an_unsupported_tokenizer_is_encoded_by_itself(tokenizer_dir):
    texts = TRICKY + load_documents("default:tinyshakespeare")[0][:5]
    for change in (lambda b: setattr(b, "normalizer", normalizers.Lowercase()),
                   lambda b: setattr(b, "pre_tokenizer", pre_tokenizers.ByteLevel(add_prefix_space=True))):
        tok = AutoTokenizer.from_pretrained(tokenizer_dir)
        change(tok.backend_tokenizer)
        enc = CachedEncoder(tok)
        assert not enc.fast
        assert enc(texts) == reference(tok, texts)
