"""Quality filters: Gopher (Rae et al. 2021) and C4 (Raffel et al. 2020) heuristics plus the LDNOOBW list.

Each filter looks at one document and returns the reason it fails ('' if it passes); the first failing
reason is the one counted. Thresholds are the papers' defaults unless a YAML says otherwise (the tiny config
relaxes length, since a Shakespeare speech is often one line).

Hand-written rather than datatrove's filters: the same rules, but without spaCy word tokenization, which
STACK_NOTES measured as the bottleneck (~450 vs ~1,700 documents/s). The counting rules (repetition, letters,
stop words, bad words) run vectorised over a batch with numpy (`batch_features`) on the same word hashes as
dedup; per-document Python sets and regexes over every word were 80% of the filter time.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from importlib import resources

import numpy as np

from ..config import checked
from .dedup import U64, HashSet, text_bytes, word_spans, words

STOP_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})  # Gopher's list
_BULLETS = ("•", "●", "○", "▪", "◦", "*", "-", "–", "·")
_TERMINAL = (".", "!", "?", '"', "'", "”", "’", ":", ";")
_SPACE_BYTE = np.zeros(256, dtype=bool)
_SPACE_BYTE[[0, 9, 10, 11, 12, 13, 32]] = True
_LETTER_BYTE = np.zeros(256, dtype=bool)
_LETTER_BYTE[list(b"abcdefghijklmnopqrstuvwxyz")] = True
_LETTER_BYTE[128:] = True  # any non-ASCII character counts as a letter (scripts other than Latin)


@dataclass
class FilterArguments:
    min_words: int = checked(50, ge=0)
    max_words: int = checked(100_000, ge=1)
    min_mean_word_length: float = checked(3.0, ge=0)
    max_mean_word_length: float = checked(10.0, gt=0)
    max_symbol_word_ratio: float = checked(0.1, ge=0)
    max_bullet_lines: float = checked(0.9, ge=0, le=1)
    max_ellipsis_lines: float = checked(0.3, ge=0, le=1)
    min_alpha_words: float = checked(0.8, ge=0, le=1)
    min_stop_words: int = checked(2, ge=0)
    max_duplicate_lines: float = checked(0.3, ge=0, le=1)
    max_duplicate_line_chars: float = checked(0.2, ge=0, le=1)
    max_top_2gram_chars: float = checked(0.2, ge=0, le=1)
    max_top_3gram_chars: float = checked(0.18, ge=0, le=1)
    max_top_4gram_chars: float = checked(0.16, ge=0, le=1)
    min_terminal_punct_lines: float = checked(0.12, ge=0, le=1)
    drop_lorem_ipsum: bool = True
    drop_curly_braces: bool = True
    max_bad_words: int = checked(0, ge=0, also=(-1,), why="-1: off")
    bad_words_file: str | None = None


def load_bad_words(path: str | None = None) -> tuple[frozenset, list[str]]:
    """LDNOOBW English list (shipped in the package, CC BY 4.0): single words, and multi-word phrases."""
    if path:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    else:
        text = (resources.files("fromscratch") / "resources" / "ldnoobw" / "en").read_text(encoding="utf-8")
    entries = [w.strip().lower() for w in text.splitlines() if w.strip()]
    words = frozenset(w for w in entries if re.fullmatch(r"[a-z0-9']+", w))
    return words, [w for w in entries if w not in words]


_ROLL = U64(0x9E3779B97F4A7C15)


def _ngram_hashes(hashes: np.ndarray, offsets: np.ndarray, doc_of: np.ndarray, n: int,
                  shorter: np.ndarray | None = None):
    """Hashes of the word n-grams inside each document (rolling polynomial), the document of each and its first
    word's position; and the rolled hashes at every position (across documents), from which the (n+1)-grams
    are one multiply-add away (`shorter`: those of the (n-1)-grams)."""
    m = len(hashes) - n + 1
    if m <= 0:
        return np.zeros(0, U64), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, U64)
    if shorter is None:
        rolled = np.zeros(m, dtype=U64)
        for j in range(n):
            rolled = rolled * _ROLL + hashes[j:j + m]
    else:  # Horner's rule one word further: the same numbers
        rolled = shorter[:m] * _ROLL
        rolled += hashes[n - 1:]
    idx = np.flatnonzero(np.arange(m) + n <= offsets[1:][doc_of[:m]])
    return rolled[idx], doc_of[idx], idx, rolled


def _phrase_hashes(phrases: list[str]) -> dict[int, np.ndarray]:
    """n -> sorted hashes of the n-word phrases, comparable with `_ngram_hashes` of documents."""
    hashes, offsets = words(phrases)
    out: dict[int, list] = {}
    for i in range(len(phrases)):
        h = hashes[offsets[i]:offsets[i + 1]]
        if len(h) >= 1:
            rolled = 0
            for x in h.tolist():
                rolled = (rolled * int(_ROLL) + x) % 2**64  # the same wrap-around as the numpy version
            out.setdefault(len(h), []).append(rolled)
    return {n: np.unique(np.array(v, dtype=U64)) for n, v in out.items()}


def letter_token_share(texts: list[str], b: np.ndarray | None = None) -> np.ndarray:
    """Per document, the share of whitespace-separated tokens with at least one letter (Gopher's alpha rule).
    `b`: the batch's `text_bytes` if already made."""
    if not texts:
        return np.zeros(0)
    b = text_bytes(texts) if b is None else b
    space = np.concatenate(([True], _SPACE_BYTE[b], [True]))
    starts = np.flatnonzero(np.diff(space.view(np.int8)) == -1)
    # a token and the blanks after it hold a letter iff the token does (blanks and NUL are not letters)
    has_letter = np.logical_or.reduceat(_LETTER_BYTE[b], starts) if len(starts) else np.zeros(0, bool)
    # each document's first token: NUL separates documents (tokens per document by the NUL positions, not a
    # search per token)
    first = np.concatenate(([0], np.searchsorted(starts, np.flatnonzero(b == 0)), [len(starts)]))
    tokens = np.diff(first)
    letters = np.diff(np.concatenate(([0], np.cumsum(has_letter)))[first])
    return letters / np.maximum(tokens, 1)


class QualityFilter:
    """All enabled filters; `batch(texts)` gives one reason per document ('' for a keeper)."""

    def __init__(self, args: FilterArguments):
        self.a = args
        self.bad_words, phrases = load_bad_words(args.bad_words_file) if args.max_bad_words >= 0 else (
            frozenset(), [])
        self.bad_hashes = HashSet(_phrase_hashes(sorted(self.bad_words)).get(1, np.zeros(0, U64)))
        # Multi-word entries are matched as word n-grams; the few that are not 2-4 words long stay a regex.
        self.phrases = {n: HashSet(h) for n, h in _phrase_hashes(phrases).items()}
        rest = [p for p in phrases if len(words([p])[0]) not in (2, 3, 4)]
        self.rest = re.compile(r"(?:^|\W)(?:" + "|".join(map(re.escape, rest)) + r")(?:\W|$)") if rest else None
        self.rest_starts = tuple(p.split()[0] for p in rest)  # substring test before the regex
        self.stop_hashes = HashSet(_phrase_hashes(sorted(STOP_WORDS))[1])

    def features(self, texts: list[str], b: np.ndarray | None = None, spans: tuple | None = None) -> np.ndarray:
        """Per document: top 2/3/4-gram character shares (Gopher repetition), share of tokens with a letter,
        distinct stop words, bad-word and bad-phrase occurrences. `b` and `spans`: the batch's `text_bytes` and
        `word_spans` if the caller made them (to reuse them after the filter)."""
        n_docs = len(texts)
        b = text_bytes(texts) if b is None else b
        hashes, lengths, offsets = word_spans(texts, b) if spans is None else spans
        doc_of = np.repeat(np.arange(n_docs), np.diff(offsets))
        total = np.bincount(doc_of, weights=lengths, minlength=n_docs)
        cum = np.concatenate(([0], np.cumsum(lengths)))
        out = np.zeros((n_docs, 7))
        repeated, rolled = None, None  # word positions where the previous n's n-gram repeats in its document
        for col, n in enumerate((2, 3, 4)):
            grams, docs, idx, rolled = _ngram_hashes(hashes, offsets, doc_of, n, rolled)
            if not len(grams):
                continue
            if n in self.phrases:
                out[:, 6] += np.bincount(docs[self.phrases[n].find(grams)[0]], minlength=n_docs)
            # an n-gram repeats only where its first n-1 words do: sort only those (a few percent at n = 4)
            sel = np.flatnonzero(repeated[idx]) if repeated is not None else np.arange(len(grams))
            # keyed by document: one n-gram in two documents differs
            keyed = grams[sel] ^ (docs[sel].astype(U64) * U64(0xD1B54A32D192ED03))
            by_key = np.argsort(keyed)
            order, sk = sel[by_key], keyed[by_key]
            starts = np.flatnonzero(np.concatenate(([True], sk[1:] != sk[:-1])))
            counts = np.diff(np.append(starts, len(sk)))
            rep = counts > 1  # equal hashes are equal words, so the first of a run stands for all of it
            first = order[starts[rep]]
            cover = counts[rep] * (cum[idx[first] + n] - cum[idx[first]])
            np.maximum.at(out[:, col], docs[first], cover)
            out[:, col] /= np.maximum(total, 1)
            repeated = np.zeros(len(hashes), bool)
            repeated[idx[order[np.repeat(rep, counts)]]] = True
        out[:, 3] = letter_token_share(texts, b)
        at, which = self.stop_hashes.find(hashes)
        if len(at):
            pairs = np.unique(doc_of[at] * 16 + which)  # (doc, stop word)
            out[:, 4] = np.bincount(pairs // 16, minlength=n_docs)
        out[:, 5] = np.bincount(doc_of[self.bad_hashes.find(hashes)[0]], minlength=n_docs)
        return out

    def reason(self, text: str, f: np.ndarray | None = None) -> str:
        """Why `text` fails ('' if it passes); `f` is its row of `features` if already computed."""
        a = self.a
        f = self.features([text])[0] if f is None else f
        words = text.split()
        n = len(words)
        if n < a.min_words:
            return "too few words"
        if n > a.max_words:
            return "too many words"
        mean_len = sum(map(len, words)) / n
        if not a.min_mean_word_length <= mean_len <= a.max_mean_word_length:
            return "mean word length"
        if (text.count("#") + text.count("...") + text.count("…")) / n > a.max_symbol_word_ratio:
            return "symbol to word ratio"
        lines = [line for line in text.split("\n") if line.strip()]
        n_lines = len(lines)
        if sum(line.lstrip().startswith(_BULLETS) for line in lines) / n_lines > a.max_bullet_lines:
            return "bullet lines"
        if sum(line.rstrip().endswith(("...", "…")) for line in lines) / n_lines > a.max_ellipsis_lines:
            return "ellipsis lines"
        if f[3] < a.min_alpha_words:
            return "non-alphabetic words"
        if f[4] < a.min_stop_words:
            return "too few stop words"
        if n_lines > 1:
            counts = Counter(lines)
            if len(counts) < n_lines:
                dup = [line for line, c in counts.items() if c > 1]
                if sum(counts[line] - 1 for line in dup) / n_lines > a.max_duplicate_lines:
                    return "duplicate lines"
                if sum((counts[line] - 1) * len(line) for line in dup) / len(text) > a.max_duplicate_line_chars:
                    return "duplicate line characters"
        for k, share, limit in zip((2, 3, 4), f[:3], (a.max_top_2gram_chars, a.max_top_3gram_chars,
                                                       a.max_top_4gram_chars)):
            if share > limit:
                return f"repeated {k}-grams"
        if sum(line.rstrip().endswith(_TERMINAL) for line in lines) / n_lines < a.min_terminal_punct_lines:
            return "no terminal punctuation"
        low = text.lower()
        if a.drop_lorem_ipsum and "lorem ipsum" in low:
            return "lorem ipsum"
        if a.drop_curly_braces and ("{" in text or "}" in text):
            return "curly braces"
        if a.max_bad_words >= 0:
            hits = int(f[5] + f[6])
            if self.rest is not None and hits <= a.max_bad_words and any(w in low for w in self.rest_starts):
                hits += len(self.rest.findall(low))
            if hits > a.max_bad_words:
                return "bad words"
        return ""

    def batch(self, texts: list[str], chunk: int = 1000, b: np.ndarray | None = None, spans: tuple | None = None
              ) -> list[str]:
        """One reason per text; `b`/`spans` as in `features` (then `texts` is one chunk)."""
        if spans is not None:
            return [self.reason(t, f) for t, f in zip(texts, self.features(texts, b, spans))]
        out: list[str] = []
        for i in range(0, len(texts), chunk):
            part = texts[i:i + chunk]
            out += [self.reason(t, f) for t, f in zip(part, self.features(part))]
        return out
