"""lmms-eval model classes of this plugin, registered through the `lmms_eval.models` entry point.

- `imagenet_regt_replay`: answers from a file of recorded answers;
- `openclip_zeroshot`: any open_clip model as a zero-shot classifier (SigLIP, SigLIP 2, CLIP, ...);
- `timm_classifier`: any timm ImageNet-1k classifier;
- `paligemma2`: PaliGemma 2 through transformers, with that family's prompt conventions.
"""
