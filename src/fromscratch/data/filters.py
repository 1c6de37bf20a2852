"""Quality filters: Gopher (Rae et al. 2021) and C4 (Raffel et al. 2020) heuristics plus the LDNOOBW list.

Each filter looks at one document and returns the reason it fails ('' if it passes); the first failing
reason is the one counted. Thresholds are the papers' defaults unless a YAML says otherwise (the tiny config
relaxes length, since a Shakespeare speech is often one line).

Hand-written rather than datatrove's filters: the same rules, but without spaCy word tokenization, which
STACK_NOTES measured as the bottleneck (~450 vs ~1,700 documents/s); here words are whitespace-split.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from importlib import resources

STOP_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})  # Gopher's list
_BULLETS = ("•", "●", "○", "▪", "◦", "*", "-", "–", "·")
_TERMINAL = (".", "!", "?", '"', "'", "”", "’", ":", ";")
_PUNCT_STRIP = "\"'“”‘’.,;:!?()[]{}<>*_`"
_WORD = re.compile(r"[a-z0-9']+")
_NO_LETTER_TOKEN = re.compile(r"(?<!\S)(?:(?![^\W\d_])\S)+(?!\S)")  # a whitespace token without any letter


@dataclass
class FilterArguments:
    min_words: int = 50
    max_words: int = 100_000
    min_mean_word_length: float = 3.0
    max_mean_word_length: float = 10.0
    max_symbol_word_ratio: float = 0.1
    max_bullet_lines: float = 0.9
    max_ellipsis_lines: float = 0.3
    min_alpha_words: float = 0.8
    min_stop_words: int = 2
    max_duplicate_lines: float = 0.3
    max_duplicate_line_chars: float = 0.2
    max_top_2gram_chars: float = 0.2
    max_top_3gram_chars: float = 0.18
    max_top_4gram_chars: float = 0.16
    min_terminal_punct_lines: float = 0.12
    drop_lorem_ipsum: bool = True
    drop_curly_braces: bool = True
    max_bad_words: int = 0
    bad_words_file: str | None = None


def load_bad_words(path: str | None = None) -> tuple[frozenset, re.Pattern | None]:
    """LDNOOBW English list (shipped in the package, CC BY 4.0): single words as a set, phrases as a regex."""
    if path:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    else:
        text = (resources.files("fromscratch") / "resources" / "ldnoobw" / "en").read_text(encoding="utf-8")
    entries = [w.strip().lower() for w in text.splitlines() if w.strip()]
    words = frozenset(w for w in entries if re.fullmatch(r"[a-z0-9']+", w))
    phrases = [w for w in entries if w not in words]
    pattern = re.compile(r"\b(?:" + "|".join(map(re.escape, phrases)) + r")\b") if phrases else None
    return words, pattern


def _top_ngram_chars(words: list[str], n: int, total_chars: int) -> float:
    """Fraction of characters covered by the most frequent word n-gram (Gopher repetition)."""
    if len(words) < n + 1:
        return 0.0
    gram, count = Counter(zip(*(words[i:] for i in range(n)))).most_common(1)[0]
    return count * sum(map(len, gram)) / max(total_chars, 1) if count > 1 else 0.0


class QualityFilter:
    """All enabled filters over one document; `reason(text)` is '' for a keeper."""

    def __init__(self, args: FilterArguments):
        self.a = args
        self.bad_words, self.bad_phrases = (
            load_bad_words(args.bad_words_file) if args.max_bad_words >= 0 else (frozenset(), None))

    def reason(self, text: str) -> str:
        a = self.a
        words = text.split()
        n = len(words)
        if n < a.min_words:
            return "too few words"
        if n > a.max_words:
            return "too many words"
        word_chars = sum(map(len, words))
        mean_len = word_chars / n
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
        low = text.lower()
        if 1 - len(_NO_LETTER_TOKEN.findall(text)) / n < a.min_alpha_words:
            return "non-alphabetic words"
        lw = low.split()
        if a.min_stop_words and len(STOP_WORDS.intersection(w.strip(_PUNCT_STRIP) for w in lw)) < a.min_stop_words:
            return "too few stop words"
        if n_lines > 1:
            counts = Counter(lines)
            dup = {line for line, c in counts.items() if c > 1}
            if dup:
                if sum(counts[line] - 1 for line in dup) / n_lines > a.max_duplicate_lines:
                    return "duplicate lines"
                if sum((counts[line] - 1) * len(line) for line in dup) / len(text) > a.max_duplicate_line_chars:
                    return "duplicate line characters"
        for k, limit in ((2, a.max_top_2gram_chars), (3, a.max_top_3gram_chars), (4, a.max_top_4gram_chars)):
            if _top_ngram_chars(lw, k, word_chars) > limit:
                return f"repeated {k}-grams"
        if sum(line.rstrip().endswith(_TERMINAL) for line in lines) / n_lines < a.min_terminal_punct_lines:
            return "no terminal punctuation"
        if a.drop_lorem_ipsum and "lorem ipsum" in low:
            return "lorem ipsum"
        if a.drop_curly_braces and ("{" in text or "}" in text):
            return "curly braces"
        if a.max_bad_words >= 0 and (self.bad_words or self.bad_phrases):
            counts = Counter(_WORD.findall(low))
            hits = sum(counts[w] for w in self.bad_words.intersection(counts))
            if self.bad_phrases is not None and hits <= a.max_bad_words:
                hits += len(self.bad_phrases.findall(low))
            if hits > a.max_bad_words:
                return "bad words"
        return ""

    def batch(self, texts: list[str]) -> list[str]:
        return [self.reason(t) for t in texts]
