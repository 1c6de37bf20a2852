"""What every Trainer-based stage shares (03 pretrain, 04 SFT, 05 reward, 06 RLHF, and the experiments):
stage_args (the keys each stage adds to its library's config class), precision (`precision: auto`), callbacks
(throughput, spike guard), metrics (bits per byte, and train() that measures the untrained model), preemption (every
rank checkpoints on SIGTERM/SIGUSR1), saved_model (what a saved folder must say so plain transformers uses it as
trained). Imports the core only.
"""
