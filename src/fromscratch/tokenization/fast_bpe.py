"""Byte-level BPE merges learned by `rustbpe` (nanochat's trainer), saved as a `tokenizers` BPE like any other.

Why a second trainer: tokenizers 0.23 cannot train from word counts (its BpeTrainer re-counts whatever it is fed)
and its merge loop alone took longer than sentencepiece's whole training on the bench file (benchmarks/).
rustbpe splits with the same GPT-2 regex as tokenizers' ByteLevel pre-tokenizer, counts words in parallel
with the GIL released, keeps only the counts, and merges with a lazily updated heap. Its merges are those of
tokenizers' BpeTrainer up to the order of ties (tests/tokenization/test_fast_bpe.py). Not applied: min_frequency (it
merges until the vocabulary is full). The result is an ordinary tokenizer.json: nothing later depends on it.
Its counts are 32-bit signed integers, unchecked: a pair seen more than 2**31 - 1 times would wrap around and
silently corrupt the merges. No pair can occur more often than the text has bytes, so training stops with a
UserError before MAX_TRAIN_BYTES (2.1 GB): sample a larger corpus (train_sample_rate) or use `tokenizers`.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers

from fromscratch.config import UserError

# The regex of tokenizers' ByteLevel(use_regex=True) pre-tokenizer (GPT-2's): the same words, the same merges.
GPT2_SPLIT = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
# rustbpe 0.1.0 counts words and pairs in i32: below this many bytes of text no count can overflow.
MAX_TRAIN_BYTES = 2**31 - 1


def byte_chars() -> list[str]:
    """GPT-2's printable stand-in for each byte, the alphabet of byte-level BPE vocabularies."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


def _pair(token: bytes, rank: int, ranks: dict[bytes, int]) -> tuple[bytes, bytes]:
    """The two tokens merged into `token`: what BPE with the merges ranked below it leaves of its bytes."""
    splits = [(token[:k], token[k:]) for k in range(1, len(token))]
    found = [(a, b) for a, b in splits if ranks.get(a, rank) < rank and ranks.get(b, rank) < rank]
    if len(found) == 1:
        return found[0]
    parts = [token[i:i + 1] for i in range(len(token))]
    while len(parts) > 2:
        best = min(range(len(parts) - 1), key=lambda i: ranks.get(parts[i] + parts[i + 1], rank))
        parts[best:best + 2] = [parts[best] + parts[best + 1]]
    return parts[0], parts[1]


def train(documents: Iterable[str], vocab_size: int, special_tokens: list[str]) -> Tokenizer:
    """A byte-level BPE `tokenizers.Tokenizer` of `vocab_size` ids (special tokens first, then the 256 bytes in
    tokenizers' order, then the merges) learned from the documents, read once as a stream."""
    import rustbpe

    def bounded():
        total = 0
        for doc in documents:
            total += len(doc.encode("utf-8"))
            if total > MAX_TRAIN_BYTES:
                raise UserError(f"bpe_trainer 'rustbpe' counts in 32 bits: at most {MAX_TRAIN_BYTES / 1e9:.1f} GB of "
                                "training text; lower train_sample_rate (a seeded sample) or use bpe_trainer: "
                                "tokenizers")
            yield doc

    learner = rustbpe.Tokenizer()
    learner.train_from_iterator(bounded(), vocab_size - len(special_tokens), pattern=GPT2_SPLIT)
    ranks = {bytes(token): rank for token, rank in learner.get_mergeable_ranks()}
    char = byte_chars()

    def text(token: bytes) -> str:
        return "".join(char[b] for b in token)

    vocab = {t: i for i, t in enumerate(special_tokens)}
    for c in sorted(char):  # tokenizers' BpeTrainer orders the alphabet by character
        vocab[c] = len(vocab)
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(token) > 1:
            a, b = _pair(token, rank, ranks)
            merges.append((text(a), text(b)))
            vocab[text(token)] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(special_tokens)
    return tok
