"""Tokenizer training speed and compression: the recipe's byte-level BPE trainers vs sentencepiece BPE.

Same text (the embedded corpora minus 5% held-out documents), same vocabulary size (4,096), all using every
core. MB/s of training text; bytes per token on the held-out documents. Median of REPEATS runs, alternating.
The first row is the recipe's default (`bpe_trainer` in recipes/02_tokenizer/config_tiny.yaml) against
sentencepiece; the other byte-level trainer (`rustbpe` via fromscratch.tokenization.fast_bpe, or HF `tokenizers`) follows.

    python benchmarks/bench_tokenizer.py --scale [--sizes 50,200,800] [--vocab_size 8192]

Scale mode (not part of `make bench`): generates corpora of the given sizes in MB (real text from the embedded
corpora and ../shared/data, repeated with perturbations so that new words keep appearing, as in a real crawl)
as the data stage's parquet shards in a temporary folder, runs the recipe on each, and prints its training
time and the peak RSS of its process: memory should stay flat and time grow linearly. At the largest size it
also trains on a sample (`train_sample_rate`) and prints the held-out bytes/token against training on all.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))

import yaml  # noqa: E402
from common import emit, median  # noqa: E402

from fromscratch.sources import load_corpus  # noqa: E402

VOCAB = 4096
RECIPE_CONFIG = os.path.join(os.path.dirname(__file__), "..", "recipes", "02_tokenizer", "config_tiny.yaml")
REPEATS = int(os.environ.get("BENCH_REPEATS", 3))


def train_hf(texts):
    os.environ["TOKENIZERS_PARALLELISM"] = "true"  # the recipe trains with all cores too
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    t = time.perf_counter()
    batches = (texts[i:i + 100] for i in range(0, len(texts), 100))  # as the recipe feeds it
    tok.train_from_iterator(batches, trainers.BpeTrainer(vocab_size=VOCAB, min_frequency=2, show_progress=False,
                                                        special_tokens=["<|bos|>", "<|eos|>", "<|pad|>"],
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return time.perf_counter() - t, lambda s: len(tok.encode(s).ids)


def train_spm(texts, workdir):
    import sentencepiece as spm

    prefix = os.path.join(workdir, "spm")
    t = time.perf_counter()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(texts), model_prefix=prefix, vocab_size=VOCAB,
                                   model_type="bpe", byte_fallback=True, num_threads=os.cpu_count(),
                                   max_sentence_length=1 << 20, minloglevel=2)
    elapsed = time.perf_counter() - t
    sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
    return elapsed, lambda s: len(sp.encode(s))


def train_rustbpe(texts):
    from fromscratch.tokenization import fast_bpe

    t = time.perf_counter()
    tok = fast_bpe.train(iter(texts), VOCAB, ["<|bos|>", "<|eos|>", "<|pad|>"])  # as bpe_trainer: rustbpe does
    return time.perf_counter() - t, lambda s: len(tok.encode(s).ids)


def main():
    if "--scale" in sys.argv:
        from tokenizer_scale import main as scale

        return scale(sys.argv[1:])
    corpus, _ = load_corpus(["default"])
    texts = list(corpus["text"])
    random.Random(0).shuffle(texts)
    cut = len(texts) // 20
    heldout, train = texts[:cut], texts[cut:]
    mb = sum(len(t.encode()) for t in train) / 1e6
    held_bytes = sum(len(t.encode()) for t in heldout)
    hf_s, spm_s, rb_s, hf_bpt, spm_bpt, rb_bpt = [], [], [], None, None, None
    try:
        import rustbpe  # noqa: F401
        have_rustbpe = True
    except ImportError:
        have_rustbpe = False
    with tempfile.TemporaryDirectory() as d:
        for _ in range(REPEATS):
            if have_rustbpe:
                s, count = train_rustbpe(train)
                rb_s.append(s)
                rb_bpt = held_bytes / sum(count(t) for t in heldout)
            s, count = train_hf(train)
            hf_s.append(s)
            hf_bpt = held_bytes / sum(count(t) for t in heldout)
            s, count = train_spm(train, d)
            spm_s.append(s)
            spm_bpt = held_bytes / sum(count(t) for t in heldout)
    default = yaml.safe_load(open(RECIPE_CONFIG))["bpe_trainer"]
    spm_mbs = mb / median(spm_s)
    speed = {"tokenizers": mb / median(hf_s), "rustbpe": mb / median(rb_s) if rb_s else None}
    label = {"tokenizers": "HF tokenizers", "rustbpe": "rustbpe"}
    if speed[default] is None:
        sys.exit("bench_tokenizer: the recipe default rustbpe is not installed (pip install rustbpe==0.1.0)")
    rows = [{"name": f"tokenizer MB/s (recipe default: {default})", "value": speed[default], "unit": "MB/s",
             "baseline": "sentencepiece BPE", "baseline_value": spm_mbs}]
    other = "tokenizers" if default == "rustbpe" else "rustbpe"
    if speed[other] is not None:
        rows.append({"name": f"tokenizer MB/s ({label[other]})", "value": speed[other], "unit": "MB/s",
                     "baseline": "sentencepiece BPE", "baseline_value": spm_mbs})
    rows.append({"name": "tokenizer held-out bytes/token (HF)", "value": hf_bpt, "unit": "bytes/token",
                 "baseline": "sentencepiece BPE", "baseline_value": spm_bpt})
    if rb_s:
        rows.append({"name": "tokenizer held-out bytes/token (rustbpe)", "value": rb_bpt, "unit": "bytes/token",
                     "baseline": "HF byte-level BPE", "baseline_value": hf_bpt})
    emit(rows)


if __name__ == "__main__":
    main()
