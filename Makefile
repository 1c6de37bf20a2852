# fromscratch: one target per stage, plus setup, test and demo.
#   make demo                      set up (first time) and run the whole path on the embedded data, on CPU
#   make test                      set up (first time) and run the test suite
#   make pretrain CONFIG=recipes/03_pretrain/config_125m.yaml ARGS="--max_steps 100"
#   make pretrain ACCELERATE_CONFIG=accelerate_configs/cpu_ddp.yaml
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
CONFIG ?=
ARGS ?=
ACCELERATE_CONFIG ?=
# Recipes import the package from this checkout (src/), whichever venv runs them.
export PYTHONPATH := $(CURDIR)/src$(if $(PYTHONPATH),:$(PYTHONPATH))
export TOKENIZERS_PARALLELISM ?= false
# Where DeepSpeed compiles its CPU ops once (kept out of the home directory).
export TORCH_EXTENSIONS_DIR ?= $(CURDIR)/.torch_extensions

TORCH_VERSION := 2.13.0
# The CPU build of torch where there is no GPU (a few hundred MB instead of several GB of CUDA libraries).
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
LAUNCH = $(if $(ACCELERATE_CONFIG),$(VENV)/bin/accelerate launch --config_file $(ACCELERATE_CONFIG),$(PY))
config = $(if $(CONFIG),$(CONFIG),$(1))
# A stage's output is ready when its finished marker is there (artifacts.FINISHED_MARKER, written last by every
# stage, whatever else the stage writes); otherwise make it first, with its own defaults (not the ARGS and
# CONFIG of the target that needs it): +$(call needs,outputs/01_data,data[,its ARGS]); the + runs it under make -n too
FINISHED := run_info.json
needs = test -f $(1)/$(FINISHED) || $(MAKE) $(2) ARGS="$(3)" CONFIG=

.PHONY: setup test demo tokenizer pretrain reproduce bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
	  $(PY) -m pip install "torch==$(TORCH_VERSION)"; \
	else \
	  $(PY) -m pip install "torch==$(TORCH_VERSION)" --extra-index-url $(TORCH_CPU_INDEX) --retries 1 --timeout 15; \
	fi
	$(PY) -m pip install -e ".[test,serve]"
	touch $@

setup: $(VENV)/.installed

# Two workers (pytest-xdist), one test file each at a time: module fixtures are built once, and the suite's
# recipe runs spend much of their time starting Python, so two share 2 cores well (26.5 -> 19.4 min here).
test: setup
	$(PY) -m pytest -q -n 2 --dist loadfile $(ARGS)

# The whole path on the embedded default data, on CPU. Reruns replace the previous demo outputs.
demo: setup
	$(MAKE) data ARGS="--overwrite true"
	$(MAKE) tokenizer ARGS="--overwrite true"
	$(MAKE) tokenize ARGS="--overwrite true"
	$(MAKE) pretrain ARGS="--overwrite true --sources outputs/03_tokens"
	$(MAKE) sft ARGS="--overwrite true"
	$(MAKE) reward ARGS="--overwrite true"
	$(MAKE) rlhf ARGS="--overwrite true"
	$(MAKE) eval MODEL="outputs/03_pretrain outputs/04_sft outputs/06_rlhf" ARGS="--overwrite true"

tokenizer: setup
	$(LAUNCH) recipes/02_tokenizer/run.py --config $(call config,recipes/02_tokenizer/config_tiny.yaml) $(ARGS)

pretrain: setup
	$(LAUNCH) recipes/03_pretrain/run.py --config $(call config,recipes/03_pretrain/config_tiny.yaml) $(ARGS)

# Rerun a finished output with its exact resolved config: make reproduce RUN=outputs/03_pretrain
reproduce: setup
	$(PY) -m fromscratch.reproduce $(RUN) $(ARGS)

# Throughput benchmarks, each figure beside a baseline measured in the same run (no timed asserts in tests).
bench: setup
	$(PY) benchmarks/run_all.py $(ARGS)

# The tokenizer recipe on generated 50/200/800 MB corpora: training time and peak RSS as the corpus grows (~30 min).
.PHONY: bench-tokenizer-scale
bench-tokenizer-scale: setup
	$(PY) benchmarks/bench_tokenizer.py --scale $(ARGS)

# On a GPU machine: the pretraining recipe for the 125M and 1B presets, tokens/s, MFU vs the bf16 peak, memory.
.PHONY: bench-gpu
bench-gpu: setup
	$(PY) benchmarks/gpu_pretrain.py $(ARGS)

clean:
	rm -rf outputs

# --- issue 4: data stage (recipes/01_data) and its benchmark ---
.PHONY: data bench-data
data: setup
	$(PY) recipes/01_data/run.py --config $(call config,recipes/01_data/config_tiny.yaml) $(ARGS)

bench-data: setup
	$(PY) benchmarks/bench_data.py $(ARGS)

# --- issue 10: quality classifier for the data stage (rebuilds the shipped default unless told otherwise) ---
#   make quality-classifier POSITIVE="my_good.jsonl" NEGATIVE="crawl.jsonl degraded" OUTPUT=outputs/quality_classifier
.PHONY: quality-classifier
POSITIVE ?= default:us_speeches default:tinyshakespeare
NEGATIVE ?= degraded
OUTPUT ?= src/fromscratch/resources/quality_classifier
quality-classifier: setup
	$(PY) -m fromscratch.data.quality train --positive $(POSITIVE) --negative $(NEGATIVE) --output $(OUTPUT) $(ARGS)

# --- issue 3: plan (Chinchilla size, memory per GPU, batch split, time; writes a pretraining YAML) ---
#   make plan ARGS="--compute_flops 1.21e20"    (or --params 1e9, --tokens 2e10, --gpus 8 --gpu_type h100 --days 7 --mfu 0.4)
.PHONY: plan
plan: setup
	$(PY) recipes/00_plan/run.py --config $(call config,recipes/00_plan/config.yaml) $(ARGS)

# --- issue 6: evaluation (recipes/07_eval) ---
#   make eval                                        the tiny suite on the newest finished model under outputs/
#   make eval MODEL="outputs/03_pretrain outputs/04_sft"   several models: one results.json and a comparison plot
#   make eval CONFIG=recipes/07_eval/config_full.yaml MODEL=outputs/03_pretrain
.PHONY: eval
MODEL ?=
eval: setup
	$(PY) recipes/07_eval/run.py --config $(call config,recipes/07_eval/config_tiny.yaml) $(if $(MODEL),--models $(MODEL)) $(ARGS)

# --- issue 9: sweeps, learning-rate transfer, ablations ---
.PHONY: sweep sweep-transfer ablate
# Hyperparameter search at small scale (optuna through Trainer.hyperparameter_search); ARGS="--resume true" continues.
sweep: setup
	+$(call needs,outputs/02_tokenizer,tokenizer)
	$(PY) recipes/08_sweep/run.py --config $(call config,recipes/08_sweep/config_tiny.yaml) $(ARGS)

# The same sweep at three tiny sizes, and the best LR extrapolated to TARGET_PARAMS (or PLAN=<planner JSON>).
TARGET_PARAMS ?= 1.0e9
sweep-transfer: setup
	+$(call needs,outputs/02_tokenizer,tokenizer)
	$(PY) recipes/08_sweep/run.py --config $(call config,recipes/08_sweep/config_transfer.yaml) \
	  $(if $(PLAN),--plan_json $(PLAN),--target_params $(TARGET_PARAMS)) $(ARGS)

# Architecture ablations against a base model: same seed, data and tokens per variant.
ablate: setup
	+$(call needs,outputs/02_tokenizer,tokenizer)
	$(PY) recipes/09_ablate/run.py --config $(call config,recipes/09_ablate/config_tiny.yaml) $(ARGS)


# --- issue 5: post-training (sft, reward, rlhf) ---
.PHONY: sft reward rlhf grpo rloo dpo
# RLHF_CONFIG: PPO's YAML (recipes/06_rlhf/config_{tiny,1b}.yaml); grpo, rloo, dpo take another with CONFIG=
RLHF_CONFIG ?= recipes/06_rlhf/config_tiny.yaml

sft: setup
	$(LAUNCH) recipes/04_sft/run.py --config $(call config,recipes/04_sft/config_tiny.yaml) $(ARGS)

reward: setup
	$(LAUNCH) recipes/05_reward/run.py --config $(call config,recipes/05_reward/config_tiny.yaml) $(ARGS)

# reward -> PPO, as the issue asks: the reward model is (re)made first unless it is already finished.
rlhf: setup
	@+$(call needs,outputs/05_reward,reward,$(REWARD_ARGS))
	$(LAUNCH) recipes/06_rlhf/run.py --config $(call config,$(RLHF_CONFIG)) $(ARGS)

# The same stage without a value model (GRPO, RLOO: online.py), against the same reward model.
grpo: setup
	@+$(call needs,outputs/05_reward,reward,$(REWARD_ARGS))
	$(LAUNCH) recipes/06_rlhf/online.py --config $(call config,recipes/06_rlhf/config_grpo_tiny.yaml) $(ARGS)

rloo: setup
	@+$(call needs,outputs/05_reward,reward,$(REWARD_ARGS))
	$(LAUNCH) recipes/06_rlhf/online.py --config $(call config,recipes/06_rlhf/config_rloo_tiny.yaml) $(ARGS)

# Offline on the preference pairs: no reward model, only the SFT model.
dpo: setup
	$(LAUNCH) recipes/06_rlhf/dpo.py --config $(call config,recipes/06_rlhf/config_dpo_tiny.yaml) $(ARGS)

# --- issue 10: steered generation (word blocking, least-toxic-of-k reranking) ---
#   make generate MODEL=outputs/04_sft PROMPT="Tell me about the king" ARGS="--block_words default --rerank_k 4"
.PHONY: generate
PROMPT ?= The
generate: setup
	$(PY) -m fromscratch.evaluation.generate --model $(if $(MODEL),$(MODEL),outputs/03_pretrain) --prompt "$(PROMPT)" $(ARGS)

# --- issue 10: before/after report of the mitigations (steering, counterfactual augmentation) ---
#   make mitigation-report                       on the demo model; ARGS="--overwrite true" to redo it
#   make mitigation-report ARGS="--model_dir outputs/04_sft --retrain_steps 100"
.PHONY: mitigation-report
mitigation-report: setup
	+$(call needs,outputs/01_data,data)
	+$(call needs,outputs/02_tokenizer,tokenizer)
	+$(call needs,outputs/03_pretrain,pretrain)
	$(PY) recipes/10_mitigate/run.py --config $(call config,recipes/10_mitigate/config_tiny.yaml) $(ARGS)

# --- issue 15: tokenize once into memory-mapped token shards; pretrain from them ---
#   make tokenize ARGS="--sources outputs/01_data --output_dir outputs/03_tokens"   (executor: local | slurm | ray)
#   make pretrain ARGS="--sources outputs/03_tokens"
#   make bench-scale ARGS="--sizes 50 200 800"
.PHONY: tokenize bench-scale
tokenize: setup
	$(PY) recipes/03_pretrain/tokenize_corpus.py --config $(call config,recipes/03_pretrain/config_tokenize_tiny.yaml) $(ARGS)

bench-scale: setup
	$(PY) benchmarks/scale_tokens.py $(ARGS)

# One evaluation's cost at 50/200/800 MB of tokens (validation growing with the corpus), whole split vs eval_tokens.
.PHONY: bench-eval-cost
bench-eval-cost: setup
	$(PY) benchmarks/bench_eval_cost.py $(ARGS)

# --- issue 32: talk to the trained model, and the whole run on one page ---
#   make serve MODEL=outputs/04_sft PORT=8000        OpenAI-compatible /v1/chat/completions, chat page on PORT+1
#   make serve MODEL="outputs/04_sft outputs/06_rlhf"  both models; the page compares them side by side
#   make chat MODEL=outputs/06_rlhf                  a terminal chat (starts a server on PORT if none answers)
.PHONY: serve chat report
PORT ?= 8000
CHAT_MODEL = $(if $(MODEL),$(MODEL),outputs/04_sft)
serve: setup
	$(if $(MODEL),,+$(call needs,outputs/04_sft,sft))
	$(PY) -m fromscratch.serving serve --models $(CHAT_MODEL) --port $(PORT) $(ARGS)

chat: setup
	$(if $(MODEL),,+$(call needs,outputs/04_sft,sft))
	$(PY) -m fromscratch.serving chat --model $(CHAT_MODEL) --port $(PORT) $(ARGS)

# outputs/report.md and report.html from every finished stage (what did not run is named, with its target).
report: setup
	$(PY) -m fromscratch.run_report --outputs outputs $(ARGS)
