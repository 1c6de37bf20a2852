"""`python record_windows.py <recipe run.py> <args>`: runs the recipe unchanged, recording each training window
index its token_shards.Windows serves, to $RECORD_WINDOWS.<rank> (tests/recipes/test_shards_ddp.py): the real
dataset, sampler and dataloader of the Trainer, observed from outside."""

import os
import runpy
import sys

from fromscratch.pretraining import token_shards

served = token_shards.Windows.__getitem__


def recording(self, i):
    if any(os.sep + "train" + os.sep in path for path, _ in self.shards):  # not the validation windows
        with open(f"{os.environ['RECORD_WINDOWS']}.{os.environ.get('RANK', '0')}", "a") as fh:
            fh.write(f"{i}\n")
    return served(self, i)


token_shards.Windows.__getitem__ = recording
script = sys.argv[1]
sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
runpy.run_path(script, run_name="__main__")
