"""Recipes that compare runs, each measuring what one change does: experiment (stage 03's run, built many
times from one pretraining YAML), sweep (08_sweep: optuna trials, learning-rate transfer), ablation (09_ablate:
architecture switches), mitigation (10_mitigate: steering and counterfactual augmentation, before and after). The
top layer: it may import every other.
"""
