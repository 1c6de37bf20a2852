"""Stage 03 (recipes/03_pretrain): from a corpus to training windows, and long runs. packing (tokenize and
pack blocks in memory), token_writer and token_shards (tokenize once into memory-mapped shards, read them back as
fixed windows), streaming (train from a streamed dataset), data_order (the fingerprint that keeps a resume exact),
batch_ramp (grow the batch over the first tokens), torch_compile (`torch_compile: auto`). Imports the core and
training.
"""
