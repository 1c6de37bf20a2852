"""Output steering at generation time: keep a word list out of sampled text, or rerank k samples by toxicity.

transformers' own `bad_words_ids` (NoBadWordsLogitsProcessor) blocks the token sequences a word encodes to, but a
byte-level BPE model can spell the same word with other splits (" f"+"uck", "fu"+"ck", "F"+"UCK"), so it never
promises that the word stays out of the text. `BlockWordsLogitsProcessor` works on words instead: every vocab
token is decoded once and split into its leading letter-run, the complete words inside it and its trailing run;
at each step the trailing partial word of each row decides which tokens would complete a listed word.

The guarantee (penalty=inf): no word-character run (`\\w+`, as the regex `\\b` sees words) that ends in the
continuation equals a listed word, case-insensitively, in prompt + continuation and in the continuation alone.
A word is blocked the moment it is spelled out ("the" cannot be written as "the"+"re" either, but "there" and
"th"+"ere" stay open), which is what makes the final text safe even when generation stops mid-word. Multi-word
entries ("blow job", "g-spot") are blocked on their last word when the words before it end the text, whatever
separates them. Not covered: entries with no letter or digit (the LDNOOBW emoji), and listed words containing
non-ASCII letters that a byte-level model splits inside a character (those tokens decode to U+FFFD alone).
A finite penalty subtracts that much from the blocked tokens' logits instead: a nudge, with no guarantee.
"""

from __future__ import annotations

import bisect
import copy
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
from transformers import LogitsProcessor, LogitsProcessorList

from ..config import UserError

_RUN = re.compile(r"\w+")


def load_words(spec: str | None = "default") -> list[str]:
    """`default` = the shipped LDNOOBW English list, `none` = nothing, else a file with one entry per line."""
    if spec in (None, "", "none"):
        return []
    from fromscratch.data.filters import load_bad_words

    words, phrases = load_bad_words(None if spec == "default" else spec)
    return sorted(words) + list(phrases)


def _split(s: str) -> tuple[str, tuple[str, ...], str, bool]:
    """A token's text -> (leading run, complete inner runs, trailing run, contains a non-word character)."""
    runs = list(_RUN.finditer(s))
    if not s:
        return "", (), "", False
    if len(runs) == 1 and runs[0].span() == (0, len(s)):
        return s.lower(), (), "", False
    if not runs:
        return "", (), "", True
    lead = runs[0].group().lower() if runs[0].start() == 0 else ""
    trail = runs[-1].group().lower() if runs[-1].end() == len(s) else ""
    inner = runs[1 if lead else 0: len(runs) - (1 if trail else 0)]
    return lead, tuple(r.group().lower() for r in inner), trail, True


def token_strings(tokenizer, size: int | None = None) -> list[str]:
    """What each token id adds to decoded text. Decoded after an anchor token, because a tokenizer may drop a
    token's leading space when it starts the text (sentencepiece's Metaspace); special tokens add nothing, as
    with skip_special_tokens=True."""
    size = max(size or 0, len(tokenizer))
    anchor = tokenizer.encode("a", add_special_tokens=False)[-1]
    head = tokenizer.decode([anchor], skip_special_tokens=True, clean_up_tokenization_spaces=False)
    ids = list(range(len(tokenizer)))
    pairs = tokenizer.batch_decode([[anchor, i] for i in ids], skip_special_tokens=True,
                                   clean_up_tokenization_spaces=False)
    out = []
    for i, text in zip(ids, pairs):
        out.append(text[len(head):] if text.startswith(head) else
                   tokenizer.decode([i], skip_special_tokens=True, clean_up_tokenization_spaces=False))
    return out + [""] * (size - len(out))  # embedding rows beyond the tokenizer never decode to text


class BlockWordsLogitsProcessor(LogitsProcessor):
    """Block (penalty=inf) or down-weight (finite penalty) every token that would spell a listed word.

    One instance serves one `generate` call at a time: it records the prompt on the first step (a new prompt
    starts a new record), so it works with batches, num_return_sequences and left padding.
    """

    def __init__(self, tokenizer, words: Iterable[str], penalty: float = math.inf, vocab_size: int | None = None):
        if not penalty > 0:
            raise ValueError(f"penalty must be > 0 (inf blocks), got {penalty}")
        self.penalty = float(penalty)
        singles, phrases, self.unsupported = set(), set(), []
        for entry in words:
            runs = tuple(r.lower() for r in _RUN.findall(entry))
            if not runs:
                self.unsupported.append(entry)  # no word characters: nothing this processor can see
            elif len(runs) == 1:
                singles.add(runs[0])
            else:
                phrases.add(runs)
        self.words = sorted(singles)
        self._single = set(singles)
        self.phrases = sorted(phrases)
        self._context = max((len(p) for p in self.phrases), default=1) - 1  # complete words a phrase looks back on
        self.strings = token_strings(tokenizer, vocab_size)
        n = len(self.strings)
        self._pieces = [_split(s) for s in self.strings]
        self._lead_ids: dict[str, list[int]] = {}
        self._trail_ids: dict[str, list[int]] = {}  # tokens that start a word after a separator: " on"
        self._multi: list[int] = []  # tokens holding more than one word (none with GPT-2's pre-tokenizer)
        static, lead_blocked = np.zeros(n, bool), np.zeros(n, bool)
        for i, (lead, inner, trail, boundary) in enumerate(self._pieces):
            if lead:
                self._lead_ids.setdefault(lead, []).append(i)
                lead_blocked[i] = lead in singles
            if boundary and trail and not lead and not inner:
                self._trail_ids.setdefault(trail, []).append(i)
            if boundary and (inner or (lead and trail)):
                self._multi.append(i)
            # a complete word inside the token, or a trailing word that the token spells out whole
            static[i] = boundary and (trail in singles or any(w in singles for w in inner))
        self._static = torch.from_numpy(static)
        self._lead_blocked = torch.from_numpy(lead_blocked)
        self._prompt: torch.Tensor | None = None

    # --- per step ---------------------------------------------------------------------------------------------

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if not self.words and not self.phrases:
            return scores
        batch, length = input_ids.shape
        if (self._prompt is None or self._prompt.shape[0] != batch or length <= self._prompt.shape[1]
                or not torch.equal(input_ids[:, :self._prompt.shape[1]], self._prompt.to(input_ids.device))):
            self._prompt = input_ids.detach().clone()  # a new generation: what it starts from is the prompt
        prompt_len = self._prompt.shape[1]
        vocab = scores.shape[-1]
        mask = torch.zeros(batch, vocab, dtype=torch.bool)
        static = self._static[:vocab]
        mask[:, :static.shape[0]] |= static
        rows, cols = [], []
        for b, ids in enumerate(input_ids.tolist()):
            partial, words, cont_partial = self._state(ids, prompt_len)
            blocked = set()
            for p in {partial, cont_partial}:
                if p == "":
                    mask[b, :static.shape[0]] |= self._lead_blocked[:vocab]
                else:
                    blocked |= self._completing(p)
            blocked |= self._phrase_tokens(partial, words)
            rows += [b] * len(blocked)
            cols += blocked
        if rows:
            keep = [i for i, c in enumerate(cols) if c < vocab]
            mask[[rows[i] for i in keep], [cols[i] for i in keep]] = True
        mask = mask.to(scores.device)
        if math.isinf(self.penalty):
            return scores.masked_fill(mask, -math.inf)
        return scores - self.penalty * mask.to(scores.dtype)

    def fresh(self) -> "BlockWordsLogitsProcessor":
        """A copy sharing the vocabulary analysis, with no generation recorded (one per concurrent generate)."""
        out = copy.copy(self)
        out._prompt = None
        return out

    def blocked_ids(self, ids: list[int], prompt_len: int | None = None) -> set[int]:
        """The token ids blocked (or down-weighted) after the sequence `ids`, whose first prompt_len tokens are
        the prompt (default: all of them). For inspection and tests."""
        prompt_len = len(ids) if prompt_len is None else prompt_len
        self._prompt = torch.tensor([ids[:prompt_len]], dtype=torch.long) if prompt_len < len(ids) else None
        out = self(torch.tensor([ids], dtype=torch.long), torch.zeros(1, len(self.strings)))
        self._prompt = None
        return set(torch.nonzero(out[0] != 0).flatten().tolist())

    def _state(self, ids: list[int], prompt_len: int) -> tuple[str, list[str], str]:
        """(trailing partial word, the complete words before it, the partial word of the continuation alone)."""
        need, n, text = self._context + 2, 16, ""
        while True:
            start = max(0, len(ids) - n)
            text = "".join(self.strings[i] for i in ids[start:])
            runs = _RUN.findall(text)
            if len(runs) >= need or start == 0:
                break
            n *= 2
        runs = [r.lower() for r in runs]
        ends_in_word = bool(text) and bool(_RUN.fullmatch(text[-1]))
        partial = runs[-1] if ends_in_word else ""
        words = (runs[:-1] if ends_in_word else runs)[-self._context:] if self._context else []
        cont_partial = partial
        if start <= prompt_len and partial:  # the partial word may have begun in the prompt
            cont = "".join(self.strings[i] for i in ids[prompt_len:])
            cont_partial = _RUN.findall(cont)[-1].lower() if cont and _RUN.fullmatch(cont[-1]) else ""
        return partial, words, cont_partial

    def _completing(self, p: str) -> set[int]:
        """Tokens whose leading run turns the partial word p into a listed word."""
        out: set[int] = set()
        i = bisect.bisect_left(self.words, p)
        while i < len(self.words) and self.words[i].startswith(p):
            if len(self.words[i]) > len(p):
                out.update(self._lead_ids.get(self.words[i][len(p):], ()))
            i += 1
        return out

    def _phrase_tokens(self, partial: str, words: list[str]) -> set[int]:
        out: set[int] = set()
        if not self.phrases:
            return out
        closed = words + [partial] if partial else words  # the words before a token that starts after a separator
        for phrase in self.phrases:
            head, last = list(phrase[:-1]), phrase[-1]
            k = len(head)
            if len(words) >= k and words[-k:] == head:  # the token continues (or starts) the current run
                if not partial:
                    out.update(self._lead_ids.get(last, ()))
                elif last.startswith(partial) and last != partial:
                    out.update(self._lead_ids.get(last[len(partial):], ()))
            if len(closed) >= k and closed[-k:] == head:
                out.update(self._trail_ids.get(last, ()))
        for t in self._multi:  # exact check for tokens that carry whole words (absent from byte-level BPE vocabs)
            lead, inner, trail, _ = self._pieces[t]
            after = words + [partial + lead] if (partial + lead) else list(words)
            after += list(inner) + ([trail] if trail else [])
            if any(len(after) >= len(p) and tuple(after[-len(p):]) == p for p in self.phrases):
                out.add(t)
        return out


def whole_words(text: str, words: Iterable[str]) -> list[str]:
    """The listed single words found in text as whole words (case-insensitive): how the tests and reports check."""
    wanted = {w.lower() for w in words}
    return [r for r in (m.lower() for m in _RUN.findall(text)) if r in wanted]


# --- sampling with steering ----------------------------------------------------------------------------------

@torch.no_grad()
def sample(model, tokenizer, prompts: list[str], *, k: int = 1, max_new_tokens: int = 20, temperature: float = 1.0,
           top_p: float = 0.9, batch_size: int = 8, seed: int = 0,
           processors: Callable[[], list[LogitsProcessor]] | None = None) -> list[list[str]]:
    """k sampled continuations per prompt (the new text only). `processors` makes fresh logits processors for
    each batch (a stateful processor must not carry one batch's prompt into the next)."""
    torch.manual_seed(seed)
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # decoder-only generation continues from the right end
    out: list[list[str]] = []
    try:
        for start in range(0, len(prompts), batch_size):
            batch = prompts[start:start + batch_size]
            enc = tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
            gen = model.generate(**enc, do_sample=True, temperature=temperature, top_p=top_p,
                                 max_new_tokens=max_new_tokens, num_return_sequences=k,
                                 pad_token_id=tokenizer.pad_token_id,
                                 logits_processor=LogitsProcessorList(processors() if processors else []))
            texts = tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
            out += [texts[i * k:(i + 1) * k] for i in range(len(batch))]
    finally:
        tokenizer.padding_side = side
    return out


def rerank(model, tokenizer, prompts: list[str], k: int, *, scorer: Callable[[list[str]], Iterable[float]],
           samples: int = 1, **sampling) -> list[list[dict]]:
    """Best-of-k: sample k candidates for each of `samples` outputs per prompt, keep the lowest-scored one.
    Returns per prompt, per output, {text, score, candidates, scores}: the choice and all it was chosen from.
    scorer: texts -> toxicity (`fromscratch.evaluation.toxicity.score`, or any classifier's)."""
    if k < 1 or samples < 1:
        raise ValueError(f"rerank needs k >= 1 and samples >= 1, got k={k}, samples={samples}")
    candidates = sample(model, tokenizer, prompts, k=k * samples, **sampling)
    flat = [float(s) for s in scorer([c for cs in candidates for c in cs])]
    if len(flat) != len(prompts) * k * samples:
        raise ValueError(f"scorer returned {len(flat)} scores for {len(prompts) * k * samples} texts")
    out = []
    for i, cs in enumerate(candidates):
        picks = []
        for j in range(samples):
            group, scores = cs[j * k:(j + 1) * k], flat[(i * samples + j) * k:(i * samples + j + 1) * k]
            best = min(range(k), key=scores.__getitem__)  # the first of equal scores
            picks.append({"text": group[best], "score": scores[best], "candidates": group, "scores": scores})
        out.append(picks)
    return out


MODES = ("none", "block", "rerank", "block+rerank")


@dataclass
class Steering:
    """How generation is steered, as the eval recipe, the generate command and a report name it.
    mode: none | block (word list) | rerank (best of rerank_k by the scorer) | block+rerank.
    words: `default` (LDNOOBW), a file, or `none`. penalty: None blocks outright; a number down-weights."""

    mode: str = "none"
    words: str = "default"
    penalty: float | None = None
    rerank_k: int = 4

    def __post_init__(self):
        if self.mode not in MODES:
            raise UserError(f"steering must be one of {', '.join(MODES)}, got {self.mode!r}")
        if "block" in self.mode and self.words not in ("default", "none") and not Path(self.words).is_file():
            raise UserError(f"block words: no such file {self.words} (or use default / none)")
        if self.penalty is not None and not self.penalty > 0:
            raise UserError(f"block penalty must be > 0 (or null / inf to block), got {self.penalty}")
        if "rerank" in self.mode and self.rerank_k < 1:
            raise UserError(f"rerank k must be >= 1, got {self.rerank_k}")

    def describe(self) -> dict:
        """What went into the results (JSON-safe: a hard block is written as penalty null)."""
        out: dict = {"mode": self.mode}
        if "block" in self.mode:
            hard = self.penalty is None or math.isinf(self.penalty)
            out |= {"words": self.words, "penalty": None if hard else self.penalty}
        if "rerank" in self.mode:
            out["rerank_k"] = self.rerank_k
        return out

    def processors(self, tokenizer, vocab_size: int | None = None) -> Callable[[], list[LogitsProcessor]] | None:
        """A factory of fresh processors per generate call (the vocabulary is analysed once, here)."""
        if "block" not in self.mode:
            return None
        proto = BlockWordsLogitsProcessor(tokenizer, load_words(self.words),
                                          penalty=math.inf if self.penalty is None else self.penalty,
                                          vocab_size=vocab_size)
        return lambda: [proto.fresh()]

    def sample(self, model, tokenizer, prompts: list[str], *, k: int, scorer=None, **sampling
               ) -> tuple[list[list[str]], list[list[dict]] | None]:
        """k steered continuations per prompt, and for rerank the candidates and scores behind each."""
        vocab = model.get_output_embeddings().weight.shape[0] if model.get_output_embeddings() is not None else None
        processors = self.processors(tokenizer, vocab)
        if "rerank" not in self.mode:
            return sample(model, tokenizer, prompts, k=k, processors=processors, **sampling), None
        if scorer is None:
            raise ValueError("rerank needs a scorer (fromscratch.evaluation.toxicity.score)")
        picks = rerank(model, tokenizer, prompts, self.rerank_k, scorer=scorer, samples=k, processors=processors,
                       **sampling)
        return [[p["text"] for p in row] for row in picks], picks
