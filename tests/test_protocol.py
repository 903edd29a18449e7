"""Prompts, answer reading (outcomes), protocol settings and multiple-choice option sets."""

import pytest
from PIL import Image

from lmms_eval_imagenet_regt import ClassVocabulary, EquivalenceSet, InputError, load_ground_truth
from lmms_eval_imagenet_regt.lmms.hooks import doc_to_messages, doc_to_text
from lmms_eval_imagenet_regt.lmms.tasks import TASKS, TaskSpec
from lmms_eval_imagenet_regt.protocol.answers import read_answer, valid_text
from lmms_eval_imagenet_regt.protocol.options import OPTION_SETS, sample_options
from lmms_eval_imagenet_regt.protocol.prompts import prompt_hash
from lmms_eval_imagenet_regt.protocol.settings import ProtocolConfig
from tests.conftest import equivalent_classes

CW, CWPLUS, OW, MC = (ProtocolConfig(protocol=p) for p in ("cw", "cwplus", "ow", "mc"))


def _doc(image_id):
    return {"image_id": image_id, "image": Image.new("RGB", (8, 8))}


@pytest.fixture
def task():
    """Register task specs over the original labels, as the plugin does when lmms-eval loads a task."""

    def register(name, **settings):
        TASKS[name] = TaskSpec(name, ProtocolConfig(**settings), load_ground_truth("imgt"), "imgt")
        return name

    yield register
    TASKS.clear()


@pytest.mark.parametrize(
    ("raw", "outcome", "cleaned"),
    [
        ("<think>long\nreasoning</think>\n tench ", "parsed", "tench"),
        ("<analysis>the fins</analysis>tench", "parsed", "tench"),  # lmms-eval's other default tag
        ("<THINKING>x</THINKING>tench", "parsed", "tench"),
        ("reasoning whose opening tag the template wrote</think>tench", "parsed", "tench"),
        ("<|im_start|>assistant\ntench<|im_end|>", "parsed", "tench"),
        ("<think>Let me think. It could be a damselfly", "truncated", ""),  # cut off by max_new_tokens
        ("<think>a</think>tench<think>and then", "truncated", ""),
        ("kayak</think>", "unanswered", ""),  # reasoning (template-opened), no answer after it
        ("   ", "unanswered", ""),
        ("[LMMS_EVAL_REQUEST_FAILED after 5 retries] Error code: 500", "failed", ""),
        ("Answer: tench", "parsed", "Answer: tench"),  # the paper's rule: not stripped, so out of prompt
    ],
)
def test_outcomes_of_closed_world_answers(raw, outcome, cleaned):
    reading = read_answer(raw, CW)
    assert (reading.outcome, reading.cleaned) == (outcome, cleaned)
    assert reading.classes == ((0,) if cleaned == "tench" else ())
    assert reading.out_of_prompt == (outcome == "parsed" and cleaned != "tench")


def test_truncated_failed_and_empty_answers_are_never_mapped():
    for raw in ("<think>It could be a damselfly", "[LMMS_EVAL_REQUEST_FAILED after 5 retries] x", "", "a</think>"):
        for config in (OW, CWPLUS):
            reading = read_answer(raw, config)
            assert not reading.needs_mapping and reading.classes == () and not reading.out_of_prompt, (raw, config)
    assert read_answer("a golden retriever", OW).needs_mapping
    assert read_answer("a tench", CWPLUS).needs_mapping and read_answer("a tench", CWPLUS).out_of_prompt


def test_an_empty_response_of_an_api_backend_is_a_failed_request():
    assert read_answer("", CW, empty_is_failure=True).outcome == "failed"
    assert read_answer(None, OW, empty_is_failure=True).outcome == "failed"
    assert read_answer("", CW).outcome == "unanswered"
    assert read_answer("kayak</think>", CW, empty_is_failure=True).outcome == "unanswered"  # the model answered


def test_closed_world_is_the_papers_rule_unless_lenient():
    assert read_answer("Tench", CW).classes == (0,) and read_answer(" tench\n", CW).classes == (0,)
    assert read_answer("missile", CW).classes == (657, 744)
    for raw in ("Answer: tench", "a tench", "tench.", '"tench"'):
        assert read_answer(raw, CW).out_of_prompt, raw
        assert read_answer(raw, ProtocolConfig(protocol="cw", lenient=True)).classes == (0,), raw


def test_any_string_is_read_without_an_exception():
    """Lone surrogates, control characters, a megabyte, digits that are not ASCII: never an exception."""
    ids = ProtocolConfig(protocol="cw", label_format="ids")
    assert read_answer("472", ids).classes == (472,) and read_answer("472.", ids).classes == (472,)
    for raw in ("²", "٤٧٢", "1000", "-1", "4 72"):
        assert read_answer(raw, ids).out_of_prompt, raw
    surrogate = "kayak\ud800"
    assert valid_text(surrogate) == "kayak\ufffd" and valid_text("kayak") == "kayak"
    assert valid_text("\ud83d\ude00") == "\U0001f600"  # a valid pair is one character again
    assert read_answer(surrogate, CW).cleaned == "kayak\ufffd"
    assert read_answer("tench\x00\x07", CW).outcome == "parsed"
    huge = read_answer("x" * 1_000_000, CWPLUS)
    assert huge.needs_mapping and len(huge.cleaned) == 2000


def test_multiple_choice_letters_and_names():
    options = [10, 0, 20, 30]  # B is tench
    for answer in ("B", "(b)", "B)", "B. tench", "Answer: B", "tench", "The tench."):
        assert read_answer(answer, MC, options).classes == (0,), answer
    for answer in ("E", "A dog", "goldfish"):
        reading = read_answer(answer, MC, options)
        assert reading.classes == () and reading.out_of_prompt and reading.outcome == "parsed", answer
    assert read_answer("", MC, options).outcome == "unanswered"


def test_settings_come_from_the_task_metadata_and_unknown_keys_are_refused():
    config = ProtocolConfig.from_metadata({"version": 0.2, "protocol": "mc", "option_set": "imgt_conf"}, "task x")
    assert (config.protocol, config.option_set, config.names) == ("mc", "imgt_conf", "clean")
    with pytest.raises(InputError, match="task x: unknown protocol setting 'encodr'"):
        ProtocolConfig.from_metadata({"protocol": "ow", "encodr": "x"}, "task x")
    with pytest.raises(InputError, match="task x: the task states no 'protocol'"):
        ProtocolConfig.from_metadata({"version": 0.2}, "task x")
    with pytest.raises(InputError, match="task x: protocol setting num_options: must be an integer"):
        ProtocolConfig.from_metadata({"protocol": "mc", "num_options": "4"}, "task x")


def test_class_list_is_a_byte_identical_prefix_before_the_image(task):
    name = task("t_cwplus", protocol="cwplus")
    first = doc_to_messages(_doc("ILSVRC2012_val_00000001"), {}, task=name)[0]["content"]
    second = doc_to_messages(_doc("ILSVRC2012_val_00000002"), {}, task=name)[0]["content"]
    assert [part["type"] for part in first] == ["text", "image", "text"]
    assert first[0]["text"] == second[0]["text"]
    assert first[0]["text"].count("\n") == 1001 and "\nkayak\n" in first[0]["text"]
    assert prompt_hash(CW) == prompt_hash(CWPLUS)
    assert prompt_hash(CW) != prompt_hash(ProtocolConfig(protocol="cw", names="openai"))
    assert prompt_hash(CW) != prompt_hash(CW, post_prompt=" Be brief.")


def test_prompts_use_the_models_pre_and_post_prompt(task):
    name = task("t_ow", protocol="ow")
    text = doc_to_text(_doc("ILSVRC2012_val_00000001"), {"pre_prompt": "PRE ", "post_prompt": " POST"}, task=name)
    assert text.startswith("PRE What is the main object") and text.endswith(" POST")


def test_mc_prompt_lists_the_options_sampled_once(task):
    name = task("t_mc", protocol="mc", num_options=6)
    text = doc_to_text(_doc("ILSVRC2012_val_00000347"), {}, task=name)
    assert [line[:2] for line in text.splitlines()[1:7]] == [f"{c}." for c in "ABCDEF"]
    assert "kayak" in text
    assert TASKS[name].options("ILSVRC2012_val_00000347") is TASKS[name].options("ILSVRC2012_val_00000347")
    names = [line[3:] for line in text.splitlines()[1:7]]
    vocabulary = TASKS[name].config.vocabulary.names
    assert names == [vocabulary[c] for c in TASKS[name].options("ILSVRC2012_val_00000347")]


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


@pytest.mark.parametrize("option_set", ["imgt_regt_random", "imgt_regt_conf"])
def test_the_regt_option_is_the_images_own_label_not_its_groups_first_member(option_set, shared_data, monkeypatch):
    """Image 132 is labelled ImGT 553 (filing cabinet), ReaL {742} (printer); the shipped equivalence set joins
    742 with 713 (photocopier), the smaller index. The second correct option must read "printer"."""
    confusions = shared_data / "imagenet_mistakes" / "class_confusion_wnids.json"
    monkeypatch.setenv("IMAGENET_REGT_CONFUSIONS", str(confusions))
    truth, equivalences, same = load_ground_truth("real"), EquivalenceSet.load(), equivalent_classes()
    record = truth["ILSVRC2012_val_00000132"]
    assert (record.imgt, set(record.labels), same[742]) == (553, {742}, {713, 742})
    names = [ClassVocabulary.load().names[o] for o in sample_options(record, option_set, 4, 0, equivalences)]
    assert "filing cabinet" in names and "printer" in names and "photocopier" not in names
    # every ReaL image whose other label is not the smallest of its group: that label itself is the option
    shown = 0
    for number in range(1, 50_001):
        record = truth[f"ILSVRC2012_val_{number:08d}"]
        others = {label for label in record.labels if label not in same[record.imgt]}
        if all(label == min(same[label]) for label in others):
            continue  # the smallest member is the image's own label: no difference to see
        offered = sample_options(record, option_set, 4, 0, equivalences)
        correct = [o for o in offered if any(o in same[label] for label in others)]
        assert len(correct) == 1 and correct[0] in record.labels, record.image_id
        shown += 1
    assert shown == 160


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
