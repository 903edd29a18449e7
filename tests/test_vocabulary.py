import json

import pytest

from lmms_eval_imagenet_regt import ClassVocabulary, InputError
from lmms_eval_imagenet_regt.labels.vocabulary import normalize_lenient


@pytest.mark.parametrize("name_set", ["clean", "openai", "wordnet"])
def test_builtin_name_sets_have_1000_names_and_wordnet_ids(name_set):
    vocabulary = ClassVocabulary.load(name_set)
    assert len(vocabulary.names) == 1000
    assert vocabulary.names[0] == "tench"
    assert vocabulary.wnids[0] == "n01440764" and vocabulary.wnids[999] == "n15075141"


@pytest.mark.parametrize("name_set", ["clean", "openai"])
def test_duplicate_names_map_to_both_classes(name_set):
    vocabulary = ClassVocabulary.load(name_set)
    assert vocabulary.indices_for("missile") == {657, 744}
    assert vocabulary.indices_for("sunglasses") == {836, 837}


def test_paper_names_differ_from_openai_names():
    clean, openai = ClassVocabulary.load("clean"), ClassVocabulary.load("openai")
    assert clean.names[620] == "laptop computer" and openai.names[620] == "laptop computer"
    assert clean.names != openai.names


def test_strict_rule_only_lowercases_and_trims():
    vocabulary = ClassVocabulary.load("clean")
    assert vocabulary.indices_for("  Great White SHARK \n") == {2}
    assert vocabulary.indices_for("great white shark.") == frozenset()
    assert vocabulary.indices_for("a great white shark") == frozenset()
    assert vocabulary.indices_for("great  white shark") == frozenset()


def test_lenient_rule_drops_quotes_punctuation_articles_and_extra_spaces():
    vocabulary = ClassVocabulary.load("clean")
    for answer in ['"great white shark"', "A great white shark.", "The  great white   shark!", "`goldfish`"]:
        assert vocabulary.indices_for(answer, lenient=True), answer
    assert vocabulary.indices_for("The goldfish.", lenient=True) == {1}
    assert normalize_lenient("an Apple?") == "apple"
    assert vocabulary.indices_for("a fish", lenient=True) == frozenset()


def test_user_name_file_text_and_json(tmp_path):
    names = [f"class number {i}" for i in range(1000)]
    text_file = tmp_path / "names.txt"
    text_file.write_text("\n".join(names))
    json_file = tmp_path / "names.json"
    json_file.write_text(json.dumps(names))
    for path in (text_file, json_file):
        vocabulary = ClassVocabulary.load(str(path))
        assert vocabulary.name_set == str(path)
        assert vocabulary.indices_for("Class Number 7") == {7}


def test_bad_name_files_name_the_file(tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("a\nb\n")
    with pytest.raises(InputError, match=r"short\.txt.*1000 names.*got 2"):
        ClassVocabulary.load(str(short))
    blank = tmp_path / "blank.txt"
    blank.write_text("\n".join(["x"] * 4 + [""] + ["y"] * 995))
    with pytest.raises(InputError, match=r"blank\.txt:5: empty class name"):
        ClassVocabulary.load(str(blank))
    with pytest.raises(InputError, match="unknown name set"):
        ClassVocabulary.load("no-such-names")
