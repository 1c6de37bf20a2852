"""Evaluation building blocks shared by recipes/07_eval and any later stage that measures a model:
readers (the eval sets' file formats), tasks (lm-eval task manager over the shipped YAML tasks and result
extraction), toxicity (sampling + offline classifier + RealToxicityPrompts metrics), bias (CrowS-Pairs
summary), completions (fixed prompts answered for people to read), report (plot and model-index update);
the probes named by a Hub id or a local path: ethos (hate-speech detection), stereoset (SS, LMS, ICAT), rtp
(RealToxicityPrompts), and probes (what they share, ProbeArguments); hub_sets (the full suite's sets read
from their Hub ids, as the readers' rows).
generate (`python -m fromscratch.evaluation.generate`) samples from a model, optionally steered,
for a person to read."""
