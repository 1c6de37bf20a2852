"""fromscratch: small shared utilities for the numbered recipes in recipes/.

Each module is about one thing; recipes import them, they never import recipes. The package is layered, and a module
imports only from its own layer and those below it (tests/test_layers.py checks), bottom to top:
- the core, the modules directly in this folder, which any stage may use:
  artifacts, cards, commented_yaml, config, executors, hub, memory, modeling, planning, publish, reproduce, runinfo,
  sources;
- data/ (01_data), tokenization/ (02_tokenizer), training/ (what every Trainer stage shares), pretraining/
  (03_pretrain), alignment/ (04_sft, 05_reward, 06_rlhf), safety/ (steering generation), evaluation/ (07_eval; its
  lm-eval YAML tasks in eval_tasks/), experiments/ (08_sweep, 09_ablate, 10_mitigate).
embedded/ and resources/ are package data: the default corpora, word lists, the shipped quality classifier.
"""

__version__ = "0.1.0"
