"""Crawl-like degradations of real text: the negative class of the shipped quality classifier.

GPT-3 and FineWeb-Edu train their quality classifiers against raw Common Crawl; offline there is no crawl, so
the "noisy mix" is built from the same curated passages, corrupted the ways crawled pages are: word salad
(spam and scraped gibberish), keyword lists (SEO tag clouds), navigation and boilerplate lines around a
little real text, truncated fragments of several pages run together, a line repeated, and product/price
listings. Because negatives share the positives' vocabulary and topics, the classifier cannot separate them
by subject and has to learn the form (word order, sentence structure, punctuation) instead.

Each degradation is a function (passage, rng, donors) -> text; `degrade` picks one per passage, seeded.
"""

from __future__ import annotations

import random
import re

_NAV = ["Home", "About", "About us", "Contact", "Blog", "News", "Shop", "Cart", "Login", "Register", "FAQ",
        "Sitemap", "Search", "Menu", "Careers", "Help", "Archives", "Categories", "Gallery", "Events"]
_BOILER = ["Share on Facebook", "Tweet", "Pin it", "Read more »", "Continue reading →", "Posted by admin",
           "Leave a comment", "0 comments", "Previous post", "Next post", "Click to enlarge", "Related posts:",
           "Powered by WordPress", "Back to top", "Skip to content", "Print this page", "Add to wishlist",
           "Free shipping on orders over $50", "Subscribe to our newsletter", "Follow us on Twitter",
           "Loading...", "Advertisement", "Sponsored links", "Page 1 of 3", "« Older entries", "Reply",
           "Your email address will not be published.", "Required fields are marked *", "Filed under: Uncategorized"]
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]+")


def _words(text: str) -> list[str]:
    return text.split()


def word_salad(p: str, rng: random.Random, donors: list[str]) -> str:
    w = _words(p)
    rng.shuffle(w)
    return " ".join(w)


def keyword_list(p: str, rng: random.Random, donors: list[str]) -> str:
    vocab = sorted({m.group(0).lower() for m in _WORD.finditer(p) if len(m.group(0)) > 3})
    picked = rng.sample(vocab, min(len(vocab), rng.randint(12, 40))) if vocab else ["page"]
    sep = rng.choice([", ", " | ", " ", "\n", " - ", " / "])
    head = rng.choice(["Tags: ", "Keywords: ", "Related searches: ", "", "Popular: "])
    return head + sep.join(picked)


def boilerplate(p: str, rng: random.Random, donors: list[str]) -> str:
    lines = [rng.choice([" | ".join(rng.sample(_NAV, rng.randint(4, 9))), rng.choice(_BOILER)])
             for _ in range(rng.randint(4, 10))]
    sentences = re.split(r"(?<=[.!?])\s+", p.strip())
    keep = sentences[:rng.randint(1, 2)]
    lines.insert(rng.randint(0, len(lines)), " ".join(keep))
    lines.append(f"© {rng.randint(1998, 2024)} {rng.choice(['All rights reserved.', 'Site by WebCo', ''])}".strip())
    return "\n".join(lines)


def fragments(p: str, rng: random.Random, donors: list[str]) -> str:
    parts = []
    for src in [p] + rng.sample(donors, min(len(donors), rng.randint(3, 7))):
        w = _words(src)
        if len(w) > 3:
            start = rng.randrange(len(w))
            parts.append(" ".join(w[start:start + rng.randint(3, 12)]))
    return rng.choice([" ", " ... ", "\n", " | "]).join(parts)


def repeated(p: str, rng: random.Random, donors: list[str]) -> str:
    sentences = [s for s in re.split(r"(?<=[.!?])\s+|\n", p.strip()) if s]
    line = rng.choice(sentences) if sentences else p
    others = rng.sample(sentences, min(len(sentences), 2))
    return "\n".join([line] * rng.randint(3, 8) + others)


def listing(p: str, rng: random.Random, donors: list[str]) -> str:
    vocab = [m.group(0) for m in _WORD.finditer(p)] or ["item"]
    rows = []
    for _ in range(rng.randint(5, 15)):
        name = " ".join(rng.choice(vocab).capitalize() for _ in range(rng.randint(1, 3)))
        rows.append(rng.choice([f"{name} - ${rng.randint(1, 999)}.{rng.randint(0, 99):02d}",
                                f"{name} ({rng.randint(1, 500)}) In stock",
                                f"{rng.randint(1, 31)}/{rng.randint(1, 12)}/{rng.randint(2000, 2024)} {name}",
                                f"{name} SKU {rng.randint(10000, 99999)} Qty: {rng.randint(1, 9)}"]))
    return "\n".join(rows)


def run_on(p: str, rng: random.Random, donors: list[str]) -> str:
    """Punctuation and case stripped, as text scraped from a page's many small elements reads."""
    text = re.sub(r"[^\w\s']", " ", p).lower()
    return re.sub(r"\s+", " ", text).strip()


DEGRADATIONS = (word_salad, keyword_list, boilerplate, fragments, repeated, listing, run_on)


def degrade(passages: list[str], seed: int = 0) -> list[tuple[str, str]]:
    """One degraded copy per passage, as (text, degradation name); donors for fragments come from the same
    list, so a held-out split degrades only held-out text."""
    rng = random.Random(seed)
    out = []
    for i, p in enumerate(passages):
        fn = DEGRADATIONS[i % len(DEGRADATIONS)] if rng.random() < 0.5 else rng.choice(DEGRADATIONS)
        out.append((fn(p, rng, passages), fn.__name__))
    return out
