"""Prompts, answer parsing and multiple-choice option sets."""

import pytest
from PIL import Image

from lmms_eval_imagenet_regt import EquivalenceSet, load_ground_truth
from lmms_eval_imagenet_regt.lmms.hooks import doc_to_messages, doc_to_text
from lmms_eval_imagenet_regt.protocol.options import OPTION_SETS, sample_options
from lmms_eval_imagenet_regt.protocol.settings import ProtocolConfig, parse_answer, prompt_hash, strip_answer

CW = ProtocolConfig(protocol="cw")


def _doc(image_id, imgt, labels):
    return {"image_id": image_id, "imgt": imgt, "labels": labels, "not_sure": False, "image": Image.new("RGB", (8, 8))}


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("<think>long\nreasoning</think>\n tench ", "tench"),
        ("reasoning without an opening tag</think>tench", "tench"),
        ("<|im_start|>assistant\ntench<|im_end|>", "tench"),
        ("Answer: tench", "tench"),
        ("Final answer: tench", "tench"),
        ("tench", "tench"),
    ],
)
def test_strip_answer(raw, clean):
    assert strip_answer(raw) == clean


def test_closed_world_parse_and_out_of_prompt():
    assert parse_answer("Tench", CW).classes == (0,)
    assert parse_answer("missile", CW).classes == (657, 744)
    out = parse_answer("a tench", CW)
    assert out.classes == () and out.out_of_prompt and not out.needs_mapping
    plus = parse_answer("a tench", ProtocolConfig(protocol="cwplus"))
    assert plus.out_of_prompt and plus.needs_mapping
    empty = parse_answer("", ProtocolConfig(protocol="cwplus"))
    assert empty.out_of_prompt and not empty.needs_mapping
    assert parse_answer("a tench", ProtocolConfig(protocol="cw", lenient=True)).classes == (0,)


def test_class_ids_instead_of_names():
    config = ProtocolConfig(protocol="cw", label_format="ids")
    assert parse_answer("472", config).classes == (472,)
    assert parse_answer("472.", config).classes == (472,)
    assert parse_answer("1000", config).out_of_prompt
    assert "472: kayak" in doc_to_text(
        _doc("ILSVRC2012_val_00000001", 65, [65]), {"protocol": "cw", "label_format": "ids"}
    )


def test_open_world_always_maps_and_is_never_out_of_prompt():
    parsed = parse_answer("a golden retriever", ProtocolConfig(protocol="ow"))
    assert parsed.needs_mapping and not parsed.out_of_prompt and parsed.classes == ()


def test_multiple_choice_letters_and_names():
    config = ProtocolConfig(protocol="mc")
    options = [10, 0, 20, 30]  # B is tench
    for answer in ("B", "(b)", "B)", "B. tench", "Answer: B", "tench", "The tench."):
        assert parse_answer(answer, config, options).classes == (0,), answer
    for answer in ("E", "A dog", "", "goldfish"):
        parsed = parse_answer(answer, config, options)
        assert parsed.classes == () and parsed.out_of_prompt, answer


def test_class_list_is_a_byte_identical_prefix_before_the_image():
    kwargs = {"protocol": "cwplus"}
    first = doc_to_messages(_doc("ILSVRC2012_val_00000001", 65, [65]), kwargs)[0]["content"]
    second = doc_to_messages(_doc("ILSVRC2012_val_00000002", 970, [970]), kwargs)[0]["content"]
    assert [part["type"] for part in first] == ["text", "image", "text"]
    assert first[0]["text"] == second[0]["text"]
    assert first[0]["text"].count("\n") == 1001 and "\nkayak\n" in first[0]["text"]
    assert prompt_hash(ProtocolConfig(protocol="cw")) == prompt_hash(ProtocolConfig(protocol="cwplus"))
    assert prompt_hash(ProtocolConfig(protocol="cw")) != prompt_hash(ProtocolConfig(protocol="cw", names="openai"))


def test_mc_prompt_lists_the_sampled_options():
    text = doc_to_text(_doc("ILSVRC2012_val_00000347", 472, [472]), {"protocol": "mc", "num_options": 6})
    assert [line[:2] for line in text.splitlines()[1:7]] == [f"{c}." for c in "ABCDEF"]
    assert "kayak" in text


@pytest.fixture(scope="module")
def real_sample():
    truth = load_ground_truth("real")
    return [truth[f"ILSVRC2012_val_{i:08d}"] for i in range(1, 50_001, 25)]


@pytest.mark.parametrize("option_set", [s for s in OPTION_SETS if not s.endswith("conf")])
def test_random_option_sets_are_reproducible_and_never_offer_a_label_as_distractor(real_sample, option_set):
    equivalences = EquivalenceSet.load()
    for record in real_sample:
        options = sample_options(record, option_set, 5, 3, equivalences)
        assert options == sample_options(record, option_set, 5, 3, equivalences)
        assert len(set(options)) == 5
        admissible = equivalences.expand({record.imgt} | set(record.labels))
        correct = [o for o in options if o in admissible]
        assert record.imgt in correct
        assert len(correct) == (
            2
            if option_set.startswith("imgt_regt")
            and equivalences.collapse(record.labels) - equivalences.collapse({record.imgt})
            else 1
        )
    assert any(
        sample_options(r, option_set, 5, 3, equivalences) != sample_options(r, option_set, 5, 4, equivalences)
        for r in real_sample[:5]
    )


def test_confusion_option_sets_use_the_confusion_file(real_sample, shared_data, monkeypatch):
    import json

    from lmms_eval_imagenet_regt import InputError
    from lmms_eval_imagenet_regt.labels.vocabulary import wordnet_ids

    monkeypatch.delenv("IMAGENET_REGT_CONFUSIONS", raising=False)
    with pytest.raises(InputError, match="IMAGENET_REGT_CONFUSIONS"):
        sample_options(real_sample[0], "imgt_conf", 4, 0, EquivalenceSet.load())
    path = shared_data / "imagenet_mistakes" / "class_confusion_wnids.json"
    monkeypatch.setenv("IMAGENET_REGT_CONFUSIONS", str(path))
    index = {w: i for i, w in enumerate(wordnet_ids())}
    partners = {}
    for a, b, _count in json.loads(path.read_text()):
        partners.setdefault(index[a], set()).add(index[b])
        partners.setdefault(index[b], set()).add(index[a])
    equivalences = EquivalenceSet.load()
    used = 0
    for record in real_sample:
        options = sample_options(record, "imgt_conf", 4, 0, equivalences)
        admissible = equivalences.expand({record.imgt} | set(record.labels))
        distractors = [o for o in options if o not in admissible]
        assert len(distractors) == 3
        confusable = partners.get(record.imgt, set()) - admissible
        # as many distractors come from the confusion partners as there are partners to take
        assert len(set(distractors) & confusable) == min(3, len(confusable))
        used += bool(confusable)
    assert used > 100
