"""An experiment (sweep trial, ablation variant) loads its data the way stage 03 does: packing.load_and_pack."""

import datasets

from fromscratch.experiments import experiment


def test_experiment_data_holds_out_the_data_stages_validation_split(tmp_path, tokenizer_dir):
    """The data stage's mix repeats documents, so a re-split would score copies of training text: use its split."""
    train = datasets.Dataset.from_dict({"text": ["To be, or not to be, that is the question."] * 40})
    held = ["Now is the winter of our discontent", "Friends, Romans, countrymen, lend me your ears"]
    datasets.DatasetDict({"train": train, "validation": datasets.Dataset.from_dict({"text": held})}).save_to_disk(
        str(tmp_path / "data"))
    data = experiment.load_data({"sources": [str(tmp_path / "data")], "tokenizer_dir": str(tokenizer_dir),
                                 "block_size": 8, "validation_fraction": 0.5}, seed=0)
    assert data.val_bytes == sum(len(t.encode()) for t in held)  # exactly the held-out split, no train copy
    assert any(str(x.spec).endswith("[validation]") for x in data.lineage[:-1])
    assert data.lineage[-1]["role"] == "tokenizer" and len(data.train) > 0
