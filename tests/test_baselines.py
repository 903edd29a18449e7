"""Baseline classifiers as lmms-eval models, checked against a direct computation with open_clip / timm."""

import json

import numpy as np
import pytest
import torch

from lmms_eval_imagenet_regt.outputs.confusions import read_top5
from lmms_eval_imagenet_regt.outputs.dataset import read_labels
from tests.lmms_run import TWO_CPU_PROCESSES, headline, metric, run_lmms_eval

pytestmark = pytest.mark.slow
TINY_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def _images(eight_images):
    from PIL import Image

    return [Image.open(path).convert("RGB") for path in sorted(eight_images.iterdir())]


def test_openclip_zeroshot_equals_open_clips_own_zero_shot_classifier(real_dataset, eight_images, tmp_path):
    import open_clip

    config = tmp_path / "TinyZeroShot.json"
    config.write_text(json.dumps(TINY_CLIP))
    open_clip.add_model_config(config)
    torch.manual_seed(0)
    model, _, preprocess = open_clip.create_model_and_transforms("TinyZeroShot")
    checkpoint = tmp_path / "tiny.pt"
    torch.save(model.state_dict(), checkpoint)
    top5 = tmp_path / "top5.jsonl"
    runs = run_lmms_eval(
        [
            "--model",
            "openclip_zeroshot",
            "--tasks",
            "imagenet_real_cw",
            "--batch_size",
            "3",
            "--model_args",
            f"model={config},pretrained={checkpoint},names=openai,templates=simple,top5_path={top5}",
        ],
        tmp_path / "out",
        {"IMAGENET_REAL_DATA": str(real_dataset)},
    )
    # independent: open_clip's own zero-shot classifier on the same weights, names and templates
    model.load_state_dict(torch.load(checkpoint))
    model.eval()
    with torch.no_grad():
        classifier = open_clip.build_zero_shot_classifier(
            model,
            tokenizer=open_clip.get_tokenizer("TinyZeroShot"),
            classnames=open_clip.IMAGENET_CLASSNAMES,
            templates=open_clip.SIMPLE_IMAGENET_TEMPLATES,
            num_classes_per_batch=100,
            device="cpu",
            use_tqdm=False,
        )
        pixels = torch.stack([preprocess(image) for image in _images(eight_images)])
        logits = model.encode_image(pixels, normalize=True) @ classifier
    expected = logits.topk(5, dim=1).indices.tolist()
    ids = sorted(read_labels(real_dataset).images)
    ours = {json.loads(line)["image_id"]: json.loads(line)["top5"] for line in top5.read_text().splitlines()}
    assert [ours[i] for i in ids] == expected
    run = runs["imagenet_real_cw"]
    records = run["records"]
    # the answer is the top class's index, scored as exactly that class
    assert [records[i]["answer"] for i in ids] == [str(row[0]) for row in expected]
    assert [records[i]["classes"] for i in ids] == [[row[0]] for row in expected]
    assert metric(run, "oop_A") == 0.0  # the answer is always a class name of the prompt
    info = run["report"]["model_info"]
    assert "TinyZeroShot.json" in info["model"] and info["names"] == "openai" and info["templates"] == "7 (simple)"
    assert info["preprocessing"].startswith("Compose(") and "Normalize(" in info["preprocessing"]
    assert headline(run, "oop_A") == 0.0 and headline(run, "images") == 8


def test_timm_classifier_equals_timm_directly(real_dataset, eight_images, tmp_path):
    import timm
    from timm.data import create_transform, resolve_data_config

    torch.manual_seed(0)
    model = timm.create_model("test_vit", pretrained=False, num_classes=1000).eval()
    checkpoint = tmp_path / "test_vit.pth"
    torch.save(model.state_dict(), checkpoint)
    runs = run_lmms_eval(
        [
            "--model",
            "timm_classifier",
            "--tasks",
            "imagenet_real_cw,imagenet_real_cwplus",
            "--batch_size",
            "4",
            "--model_args",
            f"model=test_vit,pretrained=false,checkpoint={checkpoint}",
        ],
        tmp_path / "out",
        {"IMAGENET_REAL_DATA": str(real_dataset)},
    )
    transform = create_transform(**resolve_data_config({}, model=model))
    with torch.no_grad():
        expected = model(torch.stack([transform(image) for image in _images(eight_images)])).argmax(1).tolist()
    ids = sorted(read_labels(real_dataset).images)
    for task in ("imagenet_real_cw", "imagenet_real_cwplus"):
        records = runs[task]["records"]
        assert [records[i]["answer"] for i in ids] == [str(c) for c in expected]
        assert [records[i]["classes"] for i in ids] == [[c] for c in expected]
        truth = read_labels(real_dataset)
        right = np.mean([c == truth[i].imgt for i, c in zip(ids, expected, strict=True)])
        assert metric(runs[task], "imgt_A") == right
        assert runs[task]["report"]["model_info"]["weights"] == str(checkpoint)
    # the run gives valid leaderboard submissions that carry the model's weights and preprocessing
    from lmms_eval_imagenet_regt.outputs.submission import validate_file, write_submissions

    written, _ = write_submissions(runs["imagenet_real_cw"]["results_path"].parent, tmp_path / "subs")
    submission = validate_file(next(p for p in written if p.name.endswith("imagenet_real_cw.json")))
    info = submission["model"]["info"]
    assert submission["model"]["lmms_eval_model"] == "timm_classifier" and "Normalize(" in info["preprocessing"]
    assert info["weights"].startswith("test_vit.pth#sha256:")  # a file name and a content hash, no local path


def test_timm_classifier_on_two_processes_matches_one(real_dataset, tmp_path):
    import timm

    torch.manual_seed(0)
    checkpoint = tmp_path / "test_vit.pth"
    torch.save(timm.create_model("test_vit", pretrained=False, num_classes=1000).state_dict(), checkpoint)
    args = [
        "--model",
        "timm_classifier",
        "--tasks",
        "imagenet_real_cw",
        "--limit",
        "7",
        "--batch_size",
        "2",
        "--model_args",
        f"model=test_vit,pretrained=false,checkpoint={checkpoint},device=cpu",
    ]
    env = {"IMAGENET_REAL_DATA": str(real_dataset)}
    one_args, two_args = (args[:-1] + [f"{args[-1]},top5_path={tmp_path / name}"] for name in ("top5-one", "top5-two"))
    one = run_lmms_eval(one_args, tmp_path / "one", env)["imagenet_real_cw"]
    two = run_lmms_eval(two_args, tmp_path / "two", {**env, "CUDA_VISIBLE_DEVICES": ""}, launcher=TWO_CPU_PROCESSES)[
        "imagenet_real_cw"
    ]
    assert (one["report"]["world_size"], two["report"]["world_size"]) == (1, 2)
    answers = [{image_id: record["answer"] for image_id, record in run["records"].items()} for run in (one, two)]
    assert answers[0] == answers[1] and len(answers[0]) == 7
    # the top-5 side file: one per process, each with its own shard (lmms-eval deals the 7 images 4 + 3)
    top5 = [read_top5(tmp_path / f"top5-two.rank{rank}") for rank in (0, 1)]
    assert sorted(map(len, top5)) == [3, 4] and not set(top5[0]) & set(top5[1])
    assert top5[0] | top5[1] == read_top5(tmp_path / "top5-one") and not (tmp_path / "top5-two").exists()
    assert all(str(top5[0][i][0]) == answers[0][i] for i in top5[0])
    assert metric(one, "imgt_A") == metric(two, "imgt_A") and metric(one, "real_A") == metric(two, "real_A")


def test_tiny_paligemma2_runs_open_world(real_dataset, tmp_path):
    from tests.tiny_models import build_tiny_paligemma2

    checkpoint = build_tiny_paligemma2(tmp_path / "tiny-paligemma2")
    runs = run_lmms_eval(
        [
            "--model",
            "paligemma2",
            "--tasks",
            "imagenet_real_ow",
            "--batch_size",
            "4",
            "--model_args",
            f"pretrained={checkpoint},device=cpu",
        ],
        tmp_path / "out",
        {"IMAGENET_REAL_DATA": str(real_dataset)},
    )
    run = runs["imagenet_real_ow"]
    assert metric(run, "count_A") == 8 == headline(run, "images")
    records = run["records"].values()
    assert len(records) == 8 and all(isinstance(r["answer"], str) for r in records)
    info = run["report"]["model_info"]
    assert "paligemma2" in info["model"] and "answer en" in info["prompt"]
