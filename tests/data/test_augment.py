"""Counterfactual augmentation: terms swap both ways with their case, whole words only, occupations neutralised,
and the dataset step adds (or replaces) only train-pool documents."""

import datasets
import pytest

from fromscratch.config import UserError
from fromscratch.data.augment import AugmentArguments, Swapper, augment_pool, check, load_pairs, swap


@pytest.fixture(scope="module")
def swapper():
    return Swapper(load_pairs())


def test_swaps_both_ways_and_keeps_case(swapper):
    text, terms = swapper.swap("He said she was late. SHE said HE was. The King met the queen.")
    assert text == "She said he was late. HE said SHE was. The Queen met the king."
    assert terms == {"he": 2, "she": 2, "king": 1, "queen": 1}
    twice, _ = swapper.swap(text)
    assert twice == "He said she was late. SHE said HE was. The King met the queen."  # an involution here


def test_whole_words_only():
    text = "The theme: other men, then hence. Shell, heal, ahem, he-goat."
    out, n = swap(text)
    assert out == "The theme: other women, then hence. Shell, heal, ahem, he-goat." and n == 1


def test_her_his_him_by_context():
    assert swap("I saw her. Her mother gave her the book, his is here.")[0] == \
        "I saw him. His father gave him the book, hers is here."
    assert swap("He gave his word to her own son.")[0] == "She gave her word to his own daughter."


def test_occupations_neutralised_one_way():
    out, n = swap("The Policemen and the chairman called the fireman; POLICEMAN Smith, the cleaning  lady.")
    assert out == "The Police officers and the chairperson called the firefighter; POLICE OFFICER Smith, the cleaner."
    assert n == 5
    assert swap("the police officer and the chairperson")[1] == 0  # neutral terms are not swapped back


def test_own_pairs_file_and_bad_rows(tmp_path):
    f = tmp_path / "pairs.tsv"
    f.write_text("cat\tdog\tswap\nkitten\tpuppy\tneutral\n")
    assert swap("Cat, dog and kitten; puppy.", load_pairs(str(f)))[0] == "Dog, cat and puppy; puppy."
    f.write_text("cat dog swap\n")
    with pytest.raises(UserError, match="pairs.tsv:1"):
        load_pairs(str(f))
    with pytest.raises(UserError, match="counterfactual_augmentation"):
        check(AugmentArguments(counterfactual_augmentation="double"))


@pytest.mark.parametrize("mode", ["add", "replace"])
def test_step_touches_only_the_train_pool(mode):
    texts = ["He is a king.", "She is here.", "No gendered word.", "His brother left."]
    ds = datasets.Dataset.from_dict({"text": texts, "source": ["a", "a", "a", "b"]})
    pool = {"a": [0, 2], "b": [3]}  # row 1 is validation
    out, new_pool, added, info = augment_pool(ds, pool, AugmentArguments(mode), dict(batched=True, batch_size=2))
    assert info["documents_changed"] == 2 and info["swaps"] == 4
    assert info["swaps_per_term"] == {"he": 1, "king": 1, "his": 1, "brother": 1}
    assert out["text"][1] == "She is here."  # validation untouched
    if mode == "add":
        assert len(out) == 6 and added == ["a", "b"]
        assert out["text"][4:] == ["She is a queen.", "Her sister left."] and new_pool == {"a": [0, 2, 4], "b": [3, 5]}
        assert out["text"][0] == "He is a king."
    else:
        assert len(out) == 4 and added == [] and new_pool == pool
        assert out["text"][0] == "She is a queen." and out["text"][3] == "Her sister left."
