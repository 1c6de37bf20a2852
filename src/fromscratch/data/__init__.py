"""The data stage's steps, each a small module of plain functions over lists of strings (so any engine can
call them: `datasets.map` with `num_proc` here, scheduler array jobs via `shards`, a datatrove step elsewhere).

clean (markup, encoding, unicode, emoji, whitespace, boilerplate, PII) -> filters (Gopher/C4 heuristics,
bad words) -> dedup (exact hash, MinHash LSH) -> decontaminate (n-gram overlap with eval sets) -> mix
(weights as sampling proportions). `stats` keeps the per-source, per-step counts that must reconcile.
"""
