import json

import pytest

from lmms_eval_imagenet_regt import EquivalenceSet, InputError


def test_default_set_holds_the_known_pairs():
    equivalences = EquivalenceSet.load()
    assert sorted(equivalences.groups) == [(620, 681), (657, 744), (713, 742), (836, 837)]
    assert equivalences.expand([681]) == {620, 681}
    assert equivalences.expand([1]) == {1}
    assert equivalences.collapse([836, 837, 1]) == {836, 1}


def test_pairs_are_closed_transitively():
    equivalences = EquivalenceSet.from_pairs([[5, 9], [9, 3], [100, 200]])
    assert equivalences.expand([5]) == {3, 5, 9}
    assert equivalences.expand([3]) == {3, 5, 9}
    assert equivalences.collapse([3, 5, 9, 200]) == {3, 100}
    # the order the pairs come in does not matter
    assert EquivalenceSet.from_pairs([[9, 3], [100, 200], [5, 9]]).canonical == equivalences.canonical


def test_user_file_replaces_the_default_and_none_is_empty(tmp_path):
    path = tmp_path / "eq.json"
    path.write_text(json.dumps({"pairs": [{"classes": [1, 2], "source": "mine"}]}))
    equivalences = EquivalenceSet.load(str(path))
    assert equivalences.groups == [(1, 2)]
    assert equivalences.expand([620]) == {620}
    assert EquivalenceSet.load("none").groups == []
    assert equivalences.sha256 != EquivalenceSet.load().sha256


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"pairs": [{"classes": [1, 1000]}]}', r"pair 1 .*0\.\.999.*\[1, 1000\]"),
        ('{"pairs": [[3, 4], [7]]}', r"pair 2 must list two or more"),
        ('{"pairs": ', "not valid JSON"),
        ('{"groups": []}', "expected a list of pairs"),
    ],
)
def test_bad_equivalence_files(tmp_path, content, message):
    path = tmp_path / "eq.json"
    path.write_text(content)
    with pytest.raises(InputError, match=message) as error:
        EquivalenceSet.load(str(path))
    assert "eq.json" in str(error.value)
