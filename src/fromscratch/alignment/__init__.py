"""Post-training data for stages 04 (SFT), 05 (reward) and 06 (RLHF, DPO): chat_data (conversations,
preferences and prompts in TRL's formats, and the embedded defaults), flan (the Flan-style instruction mixture, with
or without exemplars and chain-of-thought). Imports the core only.
"""
