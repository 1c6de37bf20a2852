"""Stage 02 (recipes/02_tokenizer): training the byte-level BPE tokenizer. fast_bpe learns the merges
with rustbpe and saves them as a `tokenizers` BPE; text_stream hands out a source's documents in batches, never the
whole corpus in memory. Imports the core only.
"""
