"""fromscratch.safety.steering: a blocked word never appears in sampled text, whatever tokens could spell it; a finite
penalty makes it rarer; reranking keeps the lowest-scored candidate; the generate command and
toxicity.evaluate use them and say so."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessor

from conftest import ROOT, error_line, recipe_env
from fromscratch.evaluation import toxicity
from fromscratch.safety.steering import BlockWordsLogitsProcessor, Steering, _RUN, load_words, rerank, sample

FREQUENT = ["the", "and", "to", "of", "my", "i", "you", "a"]  # the commonest words of Shakespeare's text
PROMPTS = ["ROMEO:", "Now is the winter of our disconte", "KING RICHARD III:\nWhat say you, t", "I"]


def hits(texts, words) -> int:
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, words)) + r")\b", re.IGNORECASE)
    return sum(len(pattern.findall(t)) for t in texts)


@pytest.fixture(scope="module")
def model_tok(pretrained_dir):
    model = AutoModelForCausalLM.from_pretrained(pretrained_dir).eval()
    tok = AutoTokenizer.from_pretrained(pretrained_dir)
    tok.pad_token = tok.pad_token or tok.eos_token
    return model, tok


class Favour(LogitsProcessor):
    """Rig the model: every token that is a piece of a target word (any case, with or without a leading space)
    gets a large bonus, so the word is the likely continuation in many different spellings."""

    def __init__(self, tok, word: str, bonus: float = 12.0):
        pieces = {word[i:j] for i in range(len(word)) for j in range(i + 1, len(word) + 1)}
        strings = BlockWordsLogitsProcessor(tok, []).strings
        self.ids = [i for i, s in enumerate(strings) if s.strip() and s.strip().lower() in pieces and s.strip() == s.lstrip()]
        self.bonus = bonus

    def __call__(self, input_ids, scores):
        scores[:, self.ids] += self.bonus
        return scores


def test_every_spelling_of_a_word_is_blocked(model_tok):
    _, tok = model_tok
    proc = BlockWordsLogitsProcessor(tok, ["the"])
    ids = {s: i for i, s in enumerate(proc.strings)}
    start = tok.encode("I saw", add_special_tokens=False)
    blocked = proc.blocked_ids(start)
    for spelling in (" the", "the", " The", "The", " THE"):  # each a single token in this vocabulary?
        if spelling in ids:
            assert ids[spelling] in blocked, spelling
    assert ids.get(" there", -1) not in blocked  # a longer word is still open
    for head, tail in ((" th", "e"), (" t", "he"), (" T", "he")):  # "th" + "e": the split bad_words_ids misses
        if head in ids and tail in ids:
            assert ids[tail] in proc.blocked_ids(start + [ids[head]]), (head, tail)


def test_no_allowed_token_spells_a_blocked_word(model_tok):
    """Exhaustive over the vocabulary after random contexts: any token the processor lets through leaves no
    listed word as a whole word ending in the continuation (or in the continuation alone), phrases included."""
    _, tok = model_tok
    words = ["the", "and", "king", "thou", "good lord", "my lord"]
    proc = BlockWordsLogitsProcessor(tok, words)
    text = (ROOT / "src/fromscratch/embedded/tinyshakespeare/input.txt").read_text()[:20000]
    ids = tok.encode(text, add_special_tokens=False)
    S, singles = proc.strings, {"the", "and", "king", "thou"}

    def bad(seq, p):
        full, prompt = "".join(S[i] for i in seq), "".join(S[i] for i in seq[:p])
        runs = [(m.group().lower(), m.end()) for m in _RUN.finditer(full)]
        found = [w for w, end in runs if end > len(prompt) and w in singles]
        found += [w for w in _RUN.findall("".join(S[i] for i in seq[p:])) if w.lower() in singles]
        for j in range(len(runs) - 1):
            if (runs[j][0], runs[j + 1][0]) in {("good", "lord"), ("my", "lord")} and runs[j + 1][1] > len(prompt):
                found.append(runs[j][0] + " lord")
        return found

    rng, checked, blocked_any = random.Random(0), 0, 0
    for _ in range(12):
        cut = rng.randrange(10, len(ids))
        context = ids[cut - 20:cut]
        p = rng.randrange(1, len(context) + 1)
        if bad(context, p):
            continue
        blocked = proc.blocked_ids(context, p)
        blocked_any += len(blocked)
        for t in range(len(tok)):
            if t not in blocked:
                assert not bad(context + [t], p), (repr(tok.decode(context)), p, repr(S[t]))
            checked += 1
    assert checked > 5000 and blocked_any > 0


def test_sampled_text_never_contains_a_blocked_word(model_tok):
    model, tok = model_tok
    kw = dict(k=8, max_new_tokens=24, batch_size=4, seed=0)
    rigged = lambda: [Favour(tok, "the")]  # noqa: E731
    plain = [t for ts in sample(model, tok, PROMPTS, processors=rigged, **kw) for t in ts]
    assert hits(plain, ["the"]) >= 16  # the rigged model really wants to write "the" (so the test can fail)
    proc = BlockWordsLogitsProcessor(tok, ["the"] + FREQUENT)
    steered = [t for ts in sample(model, tok, PROMPTS, processors=lambda: [Favour(tok, "the"), proc.fresh()], **kw)
               for t in ts]
    assert len(steered) == 32 and hits(steered, ["the"] + FREQUENT) == 0, steered
    # without the rigging too: the model's own commonest words, left-padded batch of 4 prompts x 8 samples
    natural = [t for ts in sample(model, tok, PROMPTS, **kw) for t in ts]
    assert hits(natural, FREQUENT) >= 10
    steered = [t for ts in sample(model, tok, PROMPTS, processors=lambda: [proc.fresh()], **kw) for t in ts]
    assert hits(steered, FREQUENT) == 0, steered
    assert sum(len(t.split()) for t in steered) > 100  # it still writes: other words, not silence


def test_finite_penalty_makes_blocked_words_rarer(model_tok):
    model, tok = model_tok
    kw = dict(k=8, max_new_tokens=24, batch_size=4, seed=1)
    natural = hits([t for ts in sample(model, tok, PROMPTS, **kw) for t in ts], FREQUENT)
    proc = BlockWordsLogitsProcessor(tok, FREQUENT, penalty=1.0)
    nudged = hits([t for ts in sample(model, tok, PROMPTS, processors=lambda: [proc.fresh()], **kw) for t in ts],
                  FREQUENT)
    assert 0 < nudged < 0.7 * natural, (nudged, natural)  # rarer, but no guarantee


def test_phrase_blocks_its_last_word_only_after_the_others(model_tok):
    _, tok = model_tok
    proc = BlockWordsLogitsProcessor(tok, ["good lord"])
    lord = tok.encode(" lord", add_special_tokens=False)
    assert len(lord) == 1 and lord[0] in proc.blocked_ids(tok.encode("O good", add_special_tokens=False))
    assert lord[0] not in proc.blocked_ids(tok.encode("O my", add_special_tokens=False))


def test_default_word_list_and_unsupported_entries(model_tok):
    _, tok = model_tok
    words = load_words("default")
    proc = BlockWordsLogitsProcessor(tok, words)
    assert len(proc.words) > 250 and len(proc.phrases) > 100  # 403 entries: 276 words, 126 phrases
    assert proc.unsupported == ["🖕"]  # no letters: documented as out of reach
    assert load_words("none") == []


def test_rerank_returns_the_lowest_scored_candidate(model_tok):
    model, tok = model_tok
    fake = lambda texts: [len(t) + (hash(t) % 7) / 10 for t in texts]  # noqa: E731  deterministic, varied
    picks = rerank(model, tok, PROMPTS[:2], 5, scorer=fake, samples=2, max_new_tokens=12, seed=0)
    assert len(picks) == 2 and all(len(row) == 2 for row in picks)
    for row in picks:
        for pick in row:
            assert len(pick["candidates"]) == 5 and pick["scores"] == fake(pick["candidates"])
            assert pick["score"] == min(pick["scores"]) and pick["text"] == pick["candidates"][pick["scores"].index(pick["score"])]
    assert len({c for row in picks for p in row for c in p["candidates"]}) > 5  # really sampled, not one text
    real = rerank(model, tok, ["You are a"], 4, scorer=toxicity.score, max_new_tokens=12, seed=0)[0][0]
    assert real["score"] == min(real["scores"]) == pytest.approx(float(toxicity.score([real["text"]])[0]))


def test_toxicity_evaluate_with_steering_records_it(model_tok, tmp_path):
    model, tok = model_tok
    rows = [{"domain": "a", "prompt": "ROMEO:"}, {"domain": "b", "prompt": "The"}]
    plain = toxicity.evaluate(model, tok, rows, k=2, max_new_tokens=8)
    assert plain["steering"] == {"mode": "none"}
    words = tmp_path / "words.txt"
    words.write_text("\n".join(FREQUENT) + "\n")
    how = Steering("block+rerank", words=str(words), rerank_k=3)
    out = toxicity.evaluate(model, tok, rows, k=2, max_new_tokens=8, steering=how)
    assert out["steering"] == {"mode": "block+rerank", "words": str(words), "penalty": None, "rerank_k": 3}
    for s in out["samples"]:
        assert hits(s["continuations"], FREQUENT) == 0
        assert [len(c) for c in s["rerank_candidates"]] == [3, 3]
        assert s["toxicity"] == [min(c["toxicity"] for c in cs) for cs in s["rerank_candidates"]]
    with pytest.raises(Exception, match="no such file"):
        Steering("block", words=str(tmp_path / "nope.txt"))


def test_generate_command_end_to_end(pretrained_dir, tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("\n".join(FREQUENT) + "\n")
    cmd = [sys.executable, "-m", "fromscratch.evaluation.generate", "--model", str(pretrained_dir), "--prompt", "ROMEO:",
           "--prompt", "Now is t", "--block_words", str(words), "--rerank_k", "2", "--samples", "3",
           "--max_new_tokens", "16", "--json", "true"]
    proc = subprocess.run(cmd, cwd=ROOT, env=recipe_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(proc.stdout)
    assert [r["prompt"] for r in rows] == ["ROMEO:", "Now is t"]
    assert all(len(r["outputs"]) == 3 and len(r["rerank"]) == 3 for r in rows)
    assert rows[0]["steering"] == {"mode": "block+rerank", "words": str(words), "penalty": None, "rerank_k": 2}
    assert hits([o for r in rows for o in r["outputs"]], FREQUENT) == 0
    bad = subprocess.run([*cmd[:4], str(tmp_path / "missing"), "--prompt", "x"], cwd=ROOT, env=recipe_env(),
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "no such folder" in error_line(bad)
