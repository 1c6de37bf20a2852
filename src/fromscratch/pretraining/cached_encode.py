"""Documents to token ids, ~2x less CPU than the Rust tokenizer's batch encode, ids identical to
`tokenizer(texts, add_special_tokens=False)["input_ids"]` (used by `make tokenize`, token_writer.py).

Why: `make tokenize` spent ~90% of its time in `encode_batch_fast`, and most of that is not BPE (the model hits
its own word cache) but oniguruma running GPT-2's split regex and an Encoding built per document. Here the same
regex runs in the `regex` module and each word's ids come from a dict, filled on a miss by the tokenizer's own
BPE model on the word's byte-level form: what `encode` does, word by word. Exact by construction where it
applies; everything else goes through the tokenizer itself:
- a tokenizer shaped like stage 02's (no normalizer, ByteLevel pre-tokenizer with its regex and no prefix
  space, BPE without dropout, no truncation or padding); any other is encoded by the tokenizer;
- a document holding an added token's text (`<|bos|>`, ...): the tokenizer splits those out first;
- a document holding a character the two regex engines class differently (letter / number / space / other is
  all the split looks at; the engines know different Unicode versions: 17,480 code points differ between regex
  2026.11 and tokenizers 0.23). Each distinct character is checked once per process, by splitting a probe
  around it with the tokenizer's own pre-tokenizer.
The dict is cleared when it holds `max_words` words, so memory is bounded on any corpus.
"""

from __future__ import annotations

import regex
from tokenizers import models, pre_tokenizers, processors

# GPT-2's split, the regex of tokenizers' ByteLevel(use_regex=True) pre-tokenizer (as in fast_bpe.py).
GPT2_SPLIT = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
MAX_WORDS = 1 << 17  # ~30 MB of words and ids; a corpus's common words fit many times over


def supported(backend) -> bool:
    """Whether `backend` (a tokenizers.Tokenizer) encodes as the word cache assumes."""
    pre, post = backend.pre_tokenizer, backend.post_processor
    return (backend.normalizer is None and isinstance(pre, pre_tokenizers.ByteLevel) and pre.use_regex
            and not pre.add_prefix_space and isinstance(backend.model, models.BPE) and backend.model.dropout is None
            and backend.truncation is None and backend.padding is None
            and (post is None or isinstance(post, (processors.TemplateProcessing, processors.ByteLevel))))


class CachedEncoder:
    """`encoder(texts) -> list[list[int]]`, the ids of `tokenizer(texts, add_special_tokens=False)`."""

    def __init__(self, tokenizer, max_words: int = MAX_WORDS):
        self.backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
        self.fast = supported(self.backend)
        self.added = [t.content for t in self.backend.get_added_tokens_decoder().values()]
        self.to_bytes = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)  # the mapping, no split
        self.words: dict[str, list[int]] = {}
        self.max_words = max_words
        self.seen: set[str] = set()  # characters checked against the tokenizer's pre-tokenizer
        self.differ: set[str] = set()  # those it splits differently: their documents go through the tokenizer
        self.documents = self.by_tokenizer = 0
        if self.fast:
            self._check(set(map(chr, range(128))))
        self.ascii_same = self.fast and not self.differ  # then an ASCII text needs no check

    def __call__(self, texts: list[str]) -> list[list[int]]:
        out: list[list[int] | None] = []
        slow = []
        for i, text in enumerate(texts):
            if self.fast and self._exact(text):
                out.append(self._encode(text))
            else:
                out.append(None)
                slow.append(i)
        if slow:
            encoded = self.backend.encode_batch_fast([texts[i] for i in slow], add_special_tokens=False)
            for i, e in zip(slow, encoded):
                out[i] = e.ids
        self.documents += len(texts)
        self.by_tokenizer += len(slow)
        return out

    def _exact(self, text: str) -> bool:
        if any(a in text for a in self.added):
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
        """The probe splits differently when c is a letter, a number, a space or none of these: both engines
        must agree on which."""
        probe = f"x{c}1!x{c}!1"
        ours = [m.span() for m in GPT2_SPLIT.finditer(probe)]
        return ours == [span for _, span in self.backend.pre_tokenizer.pre_tokenize_str(probe)]

    def _encode(self, text: str) -> list[int]:
        ids: list[int] = []
        get = self.words.get
        for word in GPT2_SPLIT.findall(text):
            x = get(word)
            ids += x if x is not None else self._miss(word)
        return ids

    def _miss(self, word: str) -> list[int]:
        ((mapped, _),) = self.to_bytes.pre_tokenize_str(word)
        ids = [t.id for t in self.backend.model.tokenize(mapped)]
        if len(self.words) >= self.max_words:
            self.words.clear()
        self.words[word] = ids
        return ids
