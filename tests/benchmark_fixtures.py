"""A local mirror of the full suite's Hub sets, in their Hub formats, written by us (a few made-up rows each, no
text of the real sets): data_dir/<org>/<name>/ with README.md `configs:` and parquet files named as on the Hub,
so `datasets.load_dataset(folder, config, split=...)` takes the same path as the Hub id (HF_DATASETS_OFFLINE=1).

EXPECTED holds, per task, the rows our readers' format gives for them, written out by hand."""

from __future__ import annotations

from pathlib import Path

ARC = [{"id": "a1", "question": "Which gas do plants take in?", "choices": {"text": ["oxygen", "carbon dioxide",
        "helium"], "label": ["A", "B", "C"]}, "answerKey": "B"},
       {"id": "a2", "question": "What melts ice?", "choices": {"text": ["heat", "cold", "dark", "sound"],
        "label": ["1", "2", "3", "4"]}, "answerKey": "1"}]
# (repo, config, split) -> rows; config None: the repo's only (default) config
SETS = {
    ("allenai/ai2_arc", "ARC-Easy", "test"): ARC,
    ("allenai/ai2_arc", "ARC-Challenge", "test"): ARC[:1],
    ("aps/super_glue", "boolq", "validation"): [
        {"question": "is the sky blue", "passage": "The sky is blue on clear days.", "idx": 0, "label": 1}],
    ("aps/super_glue", "copa", "validation"): [
        {"premise": "The glass fell off the table.", "choice1": "It shattered.", "choice2": "It sang.",
         "question": "effect", "idx": 0, "label": 0},
        {"premise": "The road was wet.", "choice1": "The sun shone.", "choice2": "It had rained.",
         "question": "cause", "idx": 1, "label": 1}],
    ("tau/commonsense_qa", None, "validation"): [
        {"id": "c1", "question": "Where do you keep milk cold? ", "question_concept": "milk",
         "choices": {"label": ["A", "B", "C", "D", "E"], "text": ["fridge", "oven", "roof", "car", "shoe"]},
         "answerKey": "A"}],
    ("jannalu/crows_pairs_multilingual", "english", "test"): [
        {"sent_more": "Old people are slow.", "sent_less": "Young people are slow.", "stereo_antistereo": "stereo",
         "bias_type": "age"},
        {"sent_more": "", "sent_less": "A sentence alone.", "stereo_antistereo": "stereo", "bias_type": "age"}],
    ("Rowan/hellaswag", None, "validation"): [
        {"ind": 1, "activity_label": "Cooking", "ctx_a": "A man cracks an egg.", "ctx_b": "he",
         "ctx": "A man cracks an egg. he", "endings": ["whisks it [title] well.", "eats the shell.",
         "paints it.", "sings."], "source_id": "x", "split": "val", "split_type": "indomain", "label": "0"}],
    ("EleutherAI/lambada_openai", "default", "test"): [
        {"text": "She opened the door and greeted her friend Anna"}],
    ("allenai/openbookqa", "main", "test"): [
        {"id": "o1", "question_stem": "The sun is a", "choices": {"text": ["star", "planet", "moon", "comet"],
         "label": ["A", "B", "C", "D"]}, "answerKey": "A"}],
    ("baber/piqa", None, "validation"): [
        {"goal": "Open a jar", "sol1": "Twist the lid.", "sol2": "Freeze the lid.", "label": 0}],
    ("lighteval/siqa", None, "validation"): [
        {"context": "Sam lent Kim a pen.", "question": "How would Kim feel?", "answerA": "grateful",
         "answerB": "angry", "answerC": "sleepy", "label": "1"}],
    ("EleutherAI/wikitext_document_level", "wikitext-2-raw-v1", "validation"): [
        {"page": " = Rivers = \n\n Rivers flow to the sea . They carry water @-@ borne silt .\n"},
        {"page": " = Hills = \n\n Hills are lower than mountains .\n"}],
    ("oskarvanderwal/winogender", "all", "test"): [
        {"sentid": "s1", "sentence": "The nurse helped the patient because she was kind.", "pronoun": "she",
         "occupation": "nurse", "participant": "patient", "gender": "female", "target": "nurse", "label": 0},
        {"sentid": "s2", "sentence": "The nurse helped the patient because he was kind.", "pronoun": "he",
         "occupation": "nurse", "participant": "patient", "gender": "male", "target": "nurse", "label": 0},
        {"sentid": "s3", "sentence": "The nurse helped the patient because they were hurt.", "pronoun": "they",
         "occupation": "nurse", "participant": "patient", "gender": "neutral", "target": "patient", "label": 1}],
    ("lighteval/winograd_wsc", "wsc273", "test"): [
        {"text": "The trophy did not fit in the case because it was too big.", "pronoun": "it", "pronoun_loc": 43,
         "quote": "it was too big", "quote_loc": 43, "options": ["The trophy", "the case"], "label": 0,
         "source": "fixture"}],
    ("allenai/winogrande", "winogrande_xl", "validation"): [
        {"sentence": "Tom gave Ben the book because _ had finished it.", "option1": "Tom", "option2": "Ben",
         "answer": "1"}],
    ("openai/gsm8k", "main", "test"): [
        {"question": "Ann has 2 apples and buys 3 more. How many apples does she have?",
         "answer": "Ann has 2 + 3 = <<2+3=5>>5 apples.\n#### 5"},
        {"question": "Bo has 10 sweets and eats 4. How many are left?",
         "answer": "Bo has 10 - 4 = <<10-4=6>>6 sweets left.\n#### 6"}],
    ("AlexaAI/bold", None, "train"): [
        {"domain": "profession", "name": "Ada_Smith", "category": "scientists",
         "prompts": ["Ada Smith is a chemist who ", "Ada Smith studied"], "wikipedia": ["x", "y"]},
        {"domain": "gender", "name": "Bob_Jones", "category": "American_actors",
         "prompts": ["Bob Jones is an actor and "], "wikipedia": ["z"]}],
}

EXPECTED = {
    "fs_arc_easy": [{"query": "Question: Which gas do plants take in?", "choices": ["oxygen", "carbon dioxide",
                     "helium"], "gold": 1},
                    {"query": "Question: What melts ice?", "choices": ["heat", "cold", "dark", "sound"], "gold": 0}],
    "fs_arc_challenge": [{"query": "Question: Which gas do plants take in?", "choices": ["oxygen", "carbon dioxide",
                          "helium"], "gold": 1}],
    "fs_boolq": [{"query": "Passage: The sky is blue on clear days.\nQuestion: is the sky blue?",
                  "choices": ["no", "yes"], "gold": 1}],
    "fs_copa": [{"query": "The glass fell off the table, therefore", "choices": ["it shattered.", "it sang."],
                 "gold": 0},
                {"query": "The road was wet, because", "choices": ["the sun shone.", "it had rained."], "gold": 1}],
    "fs_commonsense_qa": [{"query": "Question: Where do you keep milk cold?\nChoices:\nA. fridge\nB. oven\nC. roof\n"
                           "D. car\nE. shoe\nAnswer:", "choices": ["A", "B", "C", "D", "E"], "gold": 0}],
    "fs_crows_pairs": [{"sent_more": "Old people are slow.", "sent_less": "Young people are slow.",
                        "stereo_antistereo": "stereo", "bias_type": "age"}],
    "fs_hellaswag": [{"query": "Cooking: A man cracks an egg. He", "choices": ["whisks it. well.", "eats the shell.",
                      "paints it.", "sings."], "gold": 0}],
    "fs_lambada_openai": [{"context": "She opened the door and greeted her friend", "continuation": "Anna"}],
    "fs_openbook_qa": [{"query": "The sun is a", "choices": ["star", "planet", "moon", "comet"], "gold": 0}],
    "fs_piqa": [{"query": "Question: Open a jar\n", "choices": ["Twist the lid.", "Freeze the lid."], "gold": 0}],
    "fs_siqa": [{"query": "Context: Sam lent Kim a pen.\nQuestion: How would Kim feel?\nChoices:\nA. grateful\n"
                 "B. angry\nC. sleepy\nAnswer:", "choices": ["A", "B", "C"], "gold": 0}],
    "fs_wikitext": [{"page": p["page"]} for p in SETS[("EleutherAI/wikitext_document_level", "wikitext-2-raw-v1",
                                                       "validation")]],
    "fs_winogender_mc_female": [{"query": "Sentence: \"The nurse helped the patient because she was kind.\"\nQ: Who "
                                 "does the pronoun \"she\" refer to in the previous sentence? A:",
                                 "choices": ["the nurse", "the patient"], "gold": 0}],
    "fs_winogender_mc_male": [{"query": "Sentence: \"The nurse helped the patient because he was kind.\"\nQ: Who "
                               "does the pronoun \"he\" refer to in the previous sentence? A:",
                               "choices": ["the nurse", "the patient"], "gold": 0}],
    "fs_winograd_wsc": [{"context_options": ["The trophy did not fit in the case because the trophy",
                                             "The trophy did not fit in the case because the case"],
                         "continuation": "was too big.", "gold": 0}],
    "fs_winogrande": [{"context_options": ["Tom gave Ben the book because Tom", "Tom gave Ben the book because Ben"],
                       "continuation": "had finished it.", "gold": 0}],
    "fs_gsm8k_cot": [{"question": "Ann has 2 apples and buys 3 more. How many apples does she have?",
                      "rationale": "Ann has 2 + 3 = 5 apples.", "answer": "5"},
                     {"question": "Bo has 10 sweets and eats 4. How many are left?",
                      "rationale": "Bo has 10 - 4 = 6 sweets left.", "answer": "6"}],
}
EXPECTED["fs_gsm8k_cot_zeroshot"] = EXPECTED["fs_gsm8k_cot"]
BOLD_EXPECTED = [
    {"domain": "profession", "group": "scientists", "name": "Ada_Smith", "prompt": "Ada Smith is a chemist who"},
    {"domain": "profession", "group": "scientists", "name": "Ada_Smith", "prompt": "Ada Smith studied"},
    {"domain": "gender", "group": "American_actors", "name": "Bob_Jones", "prompt": "Bob Jones is an actor and"}]


def write_mirror(root: Path) -> Path:
    """Every set above under root/<org>/<name>/, laid out as its Hub repo; returns root (the run's data_dir)."""
    import datasets

    repos: dict[str, dict] = {}
    for (repo, config, split), rows in SETS.items():
        repos.setdefault(repo, {}).setdefault(config or "default", []).append((split, rows))
    for repo, configs in repos.items():
        folder = root / repo
        lines = ["---", "configs:"]
        for config, splits in configs.items():
            lines += [f"- config_name: {config}", "  data_files:"]
            for split, rows in splits:
                sub = f"{config}/" if config != "default" else "data/"
                (folder / sub).mkdir(parents=True, exist_ok=True)
                datasets.Dataset.from_list(rows).to_parquet(str(folder / sub / f"{split}-00000-of-00001.parquet"))
                lines += [f"  - split: {split}", f"    path: {sub}{split}-*"]
        (folder / "README.md").write_text("\n".join(lines + ["---", f"# {repo} format fixture (fromscratch tests)\n"]))
    return root
