"""Keeping unwanted words out of what a model generates: steering blocks a word list at generation time,
whatever tokens spell it, or keeps the least toxic of k samples. evaluation scores steered generation with it
(07_eval), experiments.mitigation measures it (10_mitigate). Imports the core and data (its word list is the data
filter's).
"""
