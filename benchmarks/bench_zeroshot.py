"""Images/s of `openclip_zeroshot` against open_clip's own zero-shot loop, same images and weights.

    python benchmarks/bench_zeroshot.py [--model ViT-B-32] [--images 64] [--batch-size 32] [--device cpu]

A real-size architecture with random weights (no download): both sides build the class matrix from the
same model (one template, to keep the text-tower work small on a CPU) and embed the same real images in
batches; the timed figure is images/s once the class matrix exists. Run it on a GPU with `--device cuda`.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

DEFAULT_IMAGES = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenet_val_1300" / "images"


def main() -> None:
    import os

    import open_clip

    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--folder", type=Path, default=DEFAULT_IMAGES)
    args = parser.parse_args()
    images = [Image.open(p).convert("RGB") for p in sorted(args.folder.iterdir())[: args.images]]
    os.environ["IMAGENET_REGT_CACHE"] = tempfile.mkdtemp()

    from lmms_eval_imagenet_regt.models.openclip_zeroshot import OpenClipZeroShot

    torch.manual_seed(0)
    template = "a photo of a {}."
    ours = OpenClipZeroShot(model=args.model, names="openai", templates=template, device=args.device)
    model, preprocess = ours.model, ours.preprocess
    classifier = open_clip.build_zero_shot_classifier(
        model,
        tokenizer=open_clip.get_tokenizer(args.model),
        classnames=open_clip.IMAGENET_CLASSNAMES,
        templates=open_clip.SIMPLE_IMAGENET_TEMPLATES,
        num_classes_per_batch=100,
        device=args.device,
        use_tqdm=False,
    )

    def theirs(batch):
        pixels = torch.stack([preprocess(image) for image in batch]).to(args.device)
        return model.encode_image(pixels, normalize=True) @ classifier

    logits = {}
    for label, classify in (("open_clip zero-shot loop", theirs), ("openclip_zeroshot plugin", ours.logits)):
        with torch.inference_mode():
            classify(images[: args.batch_size])  # warm-up
            start = time.perf_counter()
            logits[label] = torch.cat(
                [
                    classify(images[first : first + args.batch_size]).float()
                    for first in range(0, len(images), args.batch_size)
                ]
            )
            elapsed = time.perf_counter() - start
        print(f"{label}: {len(images) / elapsed:.1f} images/s ({args.model}, batch {args.batch_size}, {args.device})")
    first, second = logits.values()
    # random weights make all classes nearly tied, so compare scores, not only the arg-max
    print(
        f"max |score difference|: {(first - second).abs().max().item():.2e}; "
        f"same top class: {(first.argmax(1) == second.argmax(1)).float().mean().item():.0%} of images"
    )


if __name__ == "__main__":
    main()
