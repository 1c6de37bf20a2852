"""Documents to token ids with tiktoken's BPE, ids identical to `tokenizer(texts, add_special_tokens=False)`
(used by `make tokenize`, token_writer.py).

Why: `make tokenize` spent ~90% of its CPU in the Rust tokenizer's `encode_batch_fast` (~1 MB of text per
CPU-second), most of it not BPE but oniguruma running GPT-2's split regex and an Encoding built per document.
tiktoken runs the same split and byte-level BPE in Rust with no per-document objects: 0.249 CPU-s per MB of text
against 0.925 for the tokenizer's batch encode on one thread (3.7x, `make bench-scale`, 22 MB) and 1.48x less than
our former word cache (nanochat trains with rustbpe and encodes with tiktoken the same way).

tiktoken merges the adjacent pair whose concatenation has the lowest rank; the tokenizer merges the pair that
comes first in its merges list. Those agree when the ids are the merge order (every merge's result has a larger
id than the results of all earlier merges and than its parts), which both of stage 02's trainers produce; then
the ids are the ranks. Anything else goes through the tokenizer itself, so the output is exact:
- a tokenizer shaped otherwise (a normalizer, a pre-tokenizer other than ByteLevel with GPT-2's regex and no
  prefix space, BPE with dropout, truncation or padding, merges not in id order, a byte missing from the vocab);
- a document holding an added token's text (`<|bos|>`, ...): the tokenizer splits those out first;
- a document holding a character the two regex engines class differently (letter / number / space / other is
  all the split looks at; fancy-regex and oniguruma know different Unicode versions). Each distinct character is
  checked once per process: the classes each engine gives it must agree (_piece_classes).
And a guard for what the argument above does not prove: each encoder's first `check_docs` documents are also
encoded by the tokenizer; one difference sends every later document through the tokenizer (counted, reported).
tiktoken keeps no cache that grows with the corpus: memory is flat.
"""

from __future__ import annotations

import json
import re

import tiktoken
from tokenizers import models, pre_tokenizers, processors

from ..tokenization.fast_bpe import GPT2_SPLIT, byte_chars

CHECK_DOCS = 200  # documents per encoder also encoded by the tokenizer (~0.4 MB: ~0.4 CPU-s per task)


def supported(backend) -> bool:
    """Whether `backend` (a tokenizers.Tokenizer) splits and merges as tiktoken would."""
    pre, post = backend.pre_tokenizer, backend.post_processor
    return (backend.normalizer is None and isinstance(pre, pre_tokenizers.ByteLevel) and pre.use_regex
            and not pre.add_prefix_space and isinstance(backend.model, models.BPE) and backend.model.dropout is None
            and backend.truncation is None and backend.padding is None
            and (post is None or isinstance(post, (processors.TemplateProcessing, processors.ByteLevel))))


def ranks(backend) -> dict[bytes, int] | None:
    """The vocabulary as tiktoken's mergeable ranks (bytes -> id), or None when ids are not the merge order."""
    model = json.loads(backend.to_str())["model"]
    vocab, merges = model["vocab"], model["merges"]
    added = {t.content for t in backend.get_added_tokens_decoder().values()}
    decode = {c: b for b, c in enumerate(byte_chars())}  # ByteLevel's stand-in character -> its byte
    out = {bytes(decode[c] for c in token): i for token, i in vocab.items()
           if token not in added and all(c in decode for c in token)}
    if len(out) != len(vocab) - len(added & vocab.keys()) or not all(bytes([b]) in out for b in range(256)):
        return None
    last = -1
    for merge in merges:
        a, b = merge if isinstance(merge, list) else merge.split(" ")
        made = vocab.get(a + b)
        if made is None or made <= max(last, vocab[a], vocab[b]):
            return None
        last = made
    return out


class FastEncoder:
    """`encoder(texts) -> list[list[int]]`, the ids of `tokenizer(texts, add_special_tokens=False)`."""

    def __init__(self, tokenizer, check_docs: int = CHECK_DOCS):
        self.backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
        mergeable = ranks(self.backend) if supported(self.backend) else None
        self.bpe = tiktoken.Encoding("fromscratch", pat_str=GPT2_SPLIT, mergeable_ranks=mergeable,
                                     special_tokens={}) if mergeable else None
        self.fast = self.bpe is not None
        added = [t.content for t in self.backend.get_added_tokens_decoder().values()]
        self.added = re.compile("|".join(map(re.escape, added))) if added else None  # one pass over a text
        self.seen: set[str] = set()  # characters checked against the tokenizer's pre-tokenizer
        self.differ: set[str] = set()  # those split differently: their documents go through the tokenizer
        self.documents = self.by_tokenizer = self.mismatches = 0
        self.check_docs = check_docs
        if self.fast:
            self._check(set(map(chr, range(128))))
        self.ascii_same = self.fast and not self.differ  # then an ASCII text needs no check

    def __call__(self, texts: list[str]) -> list[list[int]]:
        out: list[list[int] | None] = []
        slow = []
        for i, text in enumerate(texts):
            if self.fast and self._exact(text):
                out.append(self.bpe.encode_ordinary(text))
            else:
                out.append(None)
                slow.append(i)
        if self.fast and self.documents < self.check_docs:
            self._guard(texts, out, slow)
        if slow:
            encoded = self.backend.encode_batch_fast([texts[i] for i in slow], add_special_tokens=False)
            for i, e in zip(slow, encoded):
                out[i] = e.ids
        self.documents += len(texts)
        self.by_tokenizer += len(slow)
        return out

    def _guard(self, texts, out, slow) -> None:
        """Compare the first documents with the tokenizer; on any difference, the tokenizer encodes from now on."""
        fast = [i for i in range(len(texts)) if out[i] is not None][:self.check_docs - self.documents]
        reference = self.backend.encode_batch_fast([texts[i] for i in fast], add_special_tokens=False)
        self.mismatches += sum(out[i] != e.ids for i, e in zip(fast, reference))
        if self.mismatches:
            self.fast = False
            slow[:] = range(len(texts))

    def _exact(self, text: str) -> bool:
        if self.added is not None and self.added.search(text):
            return False
        if self.ascii_same and text.isascii():
            return True
        chars = set(text)
        self._check(chars)
        return self.differ.isdisjoint(chars)

    def _check(self, chars: set[str]) -> None:
        new = chars - self.seen
        if new:
            self.differ.update(c for c in new if not self._same_split(c))
            self.seen |= new

    def _same_split(self, c: str) -> bool:
        """Whether both engines put c in the same classes of the split (letter, number, space, other): all that
        GPT-2's regex looks at outside ASCII contractions, so then they split every text alike."""
        return _piece_classes(c) == tuple(len(self.backend.pre_tokenizer.pre_tokenize_str(p + c)) == 1
                                          for p in PROBES)


# Which class tiktoken's regex gives a character: after a letter, a digit, a "!" or a tab, is it in the same piece?
# A tiny Encoding answers without exposing the split: its only merges are each probe character + any byte, so the
# first two bytes of "<probe><c>" merge exactly when the regex kept them in one piece.
PROBES = ("x", "1", "!", "\t")
_PROBE_BPE = tiktoken.Encoding(
    "fromscratch-split-probe", pat_str=GPT2_SPLIT, special_tokens={},
    mergeable_ranks={bytes([b]): b for b in range(256)} | {
        p.encode() + bytes([b]): 256 + 256 * k + b for k, p in enumerate(PROBES) for b in range(256)})


def _piece_classes(c: str) -> tuple[bool, ...]:
    first = c.encode("utf-8")[0]
    return tuple(_PROBE_BPE.encode_ordinary(p + c)[0] == 256 + 256 * k + first for k, p in enumerate(PROBES))
