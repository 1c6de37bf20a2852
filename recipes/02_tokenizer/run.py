"""Stage 02: train a byte-level BPE tokenizer on the configured sources.

    python recipes/02_tokenizer/run.py --config recipes/02_tokenizer/config_tiny.yaml [--key value ...]

Reads: text sources (`default`, a local path, a Hub dataset id, or the data stage's output folder).
Writes: <output_dir>/ with tokenizer.json + tokenizer_config.json (AutoTokenizer loads it), README.md card,
config.yaml, run_info.json. Written in <output_dir>.tmp and renamed when complete.
"""

from __future__ import annotations

import importlib.util
import random
import time
from dataclasses import dataclass, field

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from fromscratch import artifacts, publish
from fromscratch.config import UserError, checked, cli, parse, to_dict
from fromscratch.sources import check_sources
from fromscratch.tokenization import fast_bpe
from fromscratch.tokenization.text_stream import iter_documents

# Held-out documents kept for measuring bytes/token: enough for a stable figure, bounded whatever the corpus.
HELDOUT_DOCS = 2000

# ChatML-style turns. The {% generation %} markers let TRL's SFTTrainer (assistant_only_loss=True) build the
# mask of assistant tokens from the template itself instead of from string matching.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{{ '\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass
class TokenizerArguments:
    sources: list[str] = field(default_factory=lambda: ["default"], metadata={
        "help": "text sources: default, a local path, a Hub dataset id, or stage 01's output"})
    text_column: str = field(default="text", metadata={"help": "column holding the text"})
    vocab_size: int = checked(4096, ge=1, help="vocabulary size, the 256 bytes and special tokens included")
    min_frequency: int = checked(2, ge=0, help="a pair must occur this often to be merged")
    bos_token: str = field(default="<|bos|>", metadata={
        "help": "starts every document and every chat; tok(text) adds it"})
    eos_token: str = field(default="<|eos|>", metadata={"help": "ends every document; generation stops on it"})
    pad_token: str = field(default="<|pad|>", metadata={"help": "padding for batched generation and SFT"})
    chat_tokens: list[str] = field(default_factory=lambda: ["<|im_start|>", "<|im_end|>"], metadata={
        "help": "special tokens of the chat template (turn start and end)"})
    chat_template: str = field(default=CHAT_TEMPLATE, metadata={
        "help": "Jinja chat template saved with the tokenizer (ChatML turns with {% generation %} markers)"})
    model_max_length: int = checked(2048, ge=1, help="longest sequence a model using this tokenizer is expected to see")
    heldout_fraction: float = checked(0.05, ge=0, lt=1, help="documents kept out to measure compression")
    train_sample_rate: float = checked(1.0, gt=0, le=1)
    bpe_trainer: str = checked("rustbpe", choices=("rustbpe", "tokenizers"))
    seed: int = field(default=0, metadata={"help": "which documents are held out"})
    output_dir: str = field(default="outputs/02_tokenizer", metadata={
        "help": "the pretraining stage reads the tokenizer from here by default"})
    overwrite: bool = field(default=False, metadata={"help": "replace a finished output in output_dir"})
    push_to_hub: bool = field(default=False, metadata={"help": "upload the folder with its card"})
    hub_model_id: str | None = field(default=None, metadata={"help": "namespace/name on the Hub when pushing"})
    hub_private_repo: bool = field(default=False, metadata={"help": "create the Hub repo as private"})


def for_transformers(tok: Tokenizer, args: TokenizerArguments) -> PreTrainedTokenizerFast:
    """The trained BPE as a transformers tokenizer: special tokens, chat template, no "clean up" that would alter
    spaces. add_bos_token writes a TemplateProcessing post-processor into tokenizer.json: `tok(text)` starts with
    bos as every pretraining document does, so pipeline and lm-eval prompts look like training text.
    (Packing and the chat template add their own bos and tokenize with add_special_tokens=False.)"""
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=args.bos_token,
        eos_token=args.eos_token,
        pad_token=args.pad_token,
        additional_special_tokens=list(args.chat_tokens),
        model_max_length=args.model_max_length,
        clean_up_tokenization_spaces=False,
        add_bos_token=True,
    )
    fast.chat_template = args.chat_template
    return fast


@cli
def main():
    started = time.time()
    (args,) = parse((TokenizerArguments,))

    # 1. Check everything that can be checked before any work.
    check_sources(args.sources)
    if args.bpe_trainer == "rustbpe" and importlib.util.find_spec("rustbpe") is None:
        raise UserError("bpe_trainer 'rustbpe' needs the rustbpe package: pip install rustbpe==0.1.0")
    specials = [args.bos_token, args.eos_token, args.pad_token, *args.chat_tokens]
    if args.vocab_size < 256 + len(specials):
        raise UserError(f"vocab_size {args.vocab_size} is below the 256 bytes + {len(specials)} special tokens")
    if args.push_to_hub and not args.hub_model_id:
        raise UserError("push_to_hub needs hub_model_id")
    tmp = artifacts.prepare(args.output_dir, overwrite=args.overwrite)

    # 2. Stream the documents: BPE needs only the word counts of the training text, so the corpus is read once,
    #    batch by batch, and never held in memory (text_stream). Held-out text, for measuring compression: the
    #    data stage's validation split (its mix repeats documents, so never re-split train), else each document
    #    whose draw from random.Random(seed) is below heldout_fraction. Then, if train_sample_rate < 1, each
    #    remaining document is trained on when its next draw is below the rate: a documented sample, not the head.
    rng = random.Random(args.seed)
    lineage, val_lineage, heldout, fallback = [], [], [], []
    for spec in args.sources:
        found = iter_documents(spec, args.text_column, split="validation")
        if found:
            batches, lin = found
            for batch in batches:
                heldout += batch[:max(0, HELDOUT_DOCS - len(heldout))]
            val_lineage.append(lin)
    resplit = not heldout
    seen = {"docs": 0, "bytes": 0}

    def training_batches():
        for spec in args.sources:
            batches, train_lineage = iter_documents(spec, args.text_column)
            lineage.append(train_lineage)
            for batch in batches:
                keep = []
                for text in batch:
                    if resplit and rng.random() < args.heldout_fraction:
                        if len(heldout) < HELDOUT_DOCS:
                            heldout.append(text)
                    elif args.train_sample_rate >= 1.0 or rng.random() < args.train_sample_rate:
                        keep.append(text)
                seen["docs"] += len(keep)
                seen["bytes"] += sum(len(t.encode("utf-8")) for t in keep)
                fallback.extend(keep[:max(0, 50 - len(fallback))])
                yield keep

    # 3. Train byte-level BPE: every byte is in the alphabet, so any UTF-8 text encodes with no unknown token,
    #    and no normalizer means decode(encode(x)) == x exactly. Both trainers pull the documents as they go,
    #    split them with the GPT-2 regex in parallel and keep only the counts of distinct words.
    t0 = time.perf_counter()
    if args.bpe_trainer == "rustbpe":  # the same merges up to the order of ties, faster (fast_bpe, benchmarks/)
        tok = fast_bpe.train((doc for batch in training_batches() for doc in batch), args.vocab_size, specials)
        distinct_words = None
    else:
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=args.vocab_size,
            min_frequency=args.min_frequency,
            special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        # Batches of documents, not one at a time: fewer Python-to-Rust crossings (benchmarks/).
        tok.train_from_iterator(training_batches(), trainer=trainer)
        distinct_words = trainer.get_word_count()  # what training holds in memory grows with this, not bytes
    train_seconds = time.perf_counter() - t0
    train_bytes, train_docs = seen["bytes"], seen["docs"]
    lineage += val_lineage
    for item in lineage:
        print(f"[data] {item.summary()}")
    if not train_docs:
        raise UserError("no document left for training (check heldout_fraction and train_sample_rate)")

    # 4. Wrap it for transformers (special tokens, chat template, bos at the start of `tok(text)`) and save it.
    for_transformers(tok, args).save_pretrained(tmp)

    # 5. Measure on held-out text, through the reloaded tokenizer (what every later stage sees).
    reloaded = AutoTokenizer.from_pretrained(tmp)
    sample = heldout or fallback
    heldout_bytes = sum(len(t.encode("utf-8")) for t in sample)
    heldout_tokens = sum(len(ids) for ids in reloaded(sample, add_special_tokens=False)["input_ids"])
    broken = [t for t in sample[:200] if reloaded.decode(reloaded(t, add_special_tokens=False)["input_ids"]) != t]
    if broken:
        raise RuntimeError(f"tokenizer does not round-trip {len(broken)} held-out documents")
    metrics = {
        "vocab_size": len(reloaded),
        "bytes_per_token": heldout_bytes / max(heldout_tokens, 1),
        "train_bytes": train_bytes,
        "train_seconds": round(train_seconds, 3),
        "mb_per_s": train_bytes / 1e6 / max(train_seconds, 1e-9),
        **({"distinct_words": distinct_words} if distinct_words is not None else {}),
    }
    print(f"[tokenizer] vocab {metrics['vocab_size']}, {metrics['bytes_per_token']:.3f} bytes/token held out, "
          f"{metrics['mb_per_s']:.2f} MB/s")

    # 6. Card, config and run record; then publish atomically (and push if asked).
    publish.publish(
        tmp, args.output_dir, stage="02_tokenizer", template="tokenizer.md.jinja", name="fromscratch-tokenizer",
        card=dict(tags=["tokenizer", "bpe"], pipeline_tag=None, vocab_size=metrics["vocab_size"],
                  train_bytes=train_bytes, train_docs=train_docs, mb_per_s=metrics["mb_per_s"],
                  heldout_bytes=heldout_bytes, heldout_docs=len(sample), bytes_per_token=metrics["bytes_per_token"],
                  special_tokens=specials),
        config=to_dict(args), lineage=lineage, metrics=metrics, started=started, what="tokenizer",
        push=args.push_to_hub, hub_model_id=args.hub_model_id, private=args.hub_private_repo,
    )


if __name__ == "__main__":
    main()
