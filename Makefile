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

.PHONY: setup test demo tokenizer pretrain clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
	  $(PY) -m pip install "torch==$(TORCH_VERSION)"; \
	else \
	  $(PY) -m pip install "torch==$(TORCH_VERSION)" --extra-index-url $(TORCH_CPU_INDEX) --retries 1 --timeout 15; \
	fi
	$(PY) -m pip install -e ".[test]"
	touch $@

setup: $(VENV)/.installed

test: setup
	$(PY) -m pytest -q $(ARGS)

# The whole path on the embedded default data, on CPU. Reruns replace the previous demo outputs.
demo: setup
	$(MAKE) tokenizer ARGS="--overwrite true $(ARGS)"
	$(MAKE) pretrain ARGS="--overwrite true $(ARGS)"

tokenizer: setup
	$(LAUNCH) recipes/02_tokenizer/run.py --config $(call config,recipes/02_tokenizer/config_tiny.yaml) $(ARGS)

pretrain: setup
	$(LAUNCH) recipes/03_pretrain/run.py --config $(call config,recipes/03_pretrain/config_tiny.yaml) $(ARGS)

clean:
	rm -rf outputs

# --- issue 5: post-training (sft, reward, rlhf) ---
.PHONY: sft reward rlhf
# RLHF_CONFIG picks the algorithm's YAML: recipes/06_rlhf/config_{tiny,grpo_tiny,rloo_tiny,dpo_tiny,1b}.yaml
RLHF_CONFIG ?= recipes/06_rlhf/config_tiny.yaml

sft: setup
	$(LAUNCH) recipes/04_sft/run.py --config $(call config,recipes/04_sft/config_tiny.yaml) $(ARGS)

reward: setup
	$(LAUNCH) recipes/05_reward/run.py --config $(call config,recipes/05_reward/config_tiny.yaml) $(ARGS)

# reward -> PPO, as the issue asks: the reward model is (re)made first unless it is already finished.
rlhf: setup
	@test -f outputs/05_reward/run_info.json || $(MAKE) reward ARGS="$(REWARD_ARGS)"
	$(LAUNCH) recipes/06_rlhf/run.py --config $(call config,$(RLHF_CONFIG)) $(ARGS)
