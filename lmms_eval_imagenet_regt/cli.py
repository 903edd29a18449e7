"""`imagenet-regt`: the project's command line (scoring, mapping, dataset building)."""

from __future__ import annotations

import argparse
import sys

from .errors import InputError
from .intervals import RESAMPLES, SEED
from .labels.ground_truth import FORMATS, NAMED_GROUND_TRUTHS
from .labels.vocabulary import BUILTIN_NAME_SETS, DEFAULT_NAME_SET
from .protocol.mapping import DEFAULT_ENCODER, DEFAULT_TEMPLATES, TEMPLATE_SETS
from .scoring import CONVENTIONS


def _tasks_dir() -> str:
    from .lmms.plugin import tasks_dir

    return str(tasks_dir())


def _add_scoring_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--gt",
        default="regt",
        help=f"ground truth: {', '.join(NAMED_GROUND_TRUTHS)}, FORMAT=PATH with FORMAT in "
        f"{', '.join(FORMATS)}, or a PATH (format recognised). `regt` reads $IMAGENET_REGT_LABELS.",
    )
    parser.add_argument(
        "--convention",
        choices=CONVENTIONS,
        default="regt",
        help="regt: images with no label count correct (the paper); real: they are left out",
    )
    parser.add_argument(
        "--equivalences", default="default", help="equivalence set: default (shipped file), none, or a JSON file"
    )
    parser.add_argument(
        "--names",
        default=DEFAULT_NAME_SET,
        help=f"class name set: {', '.join(BUILTIN_NAME_SETS)} or a file of 1000 names",
    )


def _score(args: argparse.Namespace) -> None:
    from .outputs.report import to_json, to_markdown
    from .predictions import score_file

    table, parsed = score_file(
        args.predictions, args.gt, convention=args.convention, equivalences=args.equivalences, names=args.names
    )
    if args.format == "json":
        print(to_json(table, unmatched_names=parsed.unmatched_names))
    else:
        print(to_markdown(table))
        print(f"- prediction names that matched no class: {parsed.unmatched_names}")


def _build_dataset(args: argparse.Namespace) -> None:
    from .outputs.dataset import build_dataset, push_to_hub

    if args.labels_only and args.images:
        raise InputError("--labels-only", "writes the labels alone: leave out --images")
    report = build_dataset(
        args.labels,
        args.out,
        images=args.images,
        equivalences=args.equivalences,
        subset=args.subset,
        skip_bad=args.skip_bad,
    )
    print(f"wrote {report.rows} rows to {report.out_dir} (labels sha256 {report.labels_sha256[:16]})")
    print(f"categories: {dict(sorted(report.categories.items()))}")
    if args.images is not None:
        print(
            f"labelled images without an image file: {report.labelled_without_image}; "
            f"image files without a label: {report.images_without_label}"
        )
    for problem in report.skipped:
        print(f"skipped: {problem}")
    if args.push_to_hub:
        files = push_to_hub(args.out, args.push_to_hub, private=not args.public, dry_run=args.dry_run)
        verb = "would upload" if args.dry_run else "uploaded"
        visibility = "public" if args.public else "private"
        print(f"{verb} to dataset repo {args.push_to_hub} ({visibility}):")
        for line in files:
            print(f"  {line}")


def _map(args: argparse.Namespace) -> None:
    import json

    from .files import decode_text, read_text
    from .labels.vocabulary import ClassVocabulary
    from .protocol.mapping import map_answers

    if args.answers == "-":
        answers = decode_text(sys.stdin.buffer.read(), "standard input").splitlines()
    else:
        answers = read_text(args.answers).splitlines()
    vocabulary = ClassVocabulary.load(args.names)
    mapped = map_answers(answers, args.encoder, vocabulary, _templates(args.templates))
    for answer in answers:
        hit = mapped.get(answer)
        print(
            json.dumps(
                {
                    "answer": answer,
                    "class_index": hit.class_index if hit else None,
                    "class_name": vocabulary.names[hit.class_index] if hit else None,
                    "similarity": round(hit.similarity, 6) if hit else None,
                }
            )
        )


def _templates(values: list[str]) -> str | tuple[str, ...]:
    """`--templates openai` names a set; anything else is the templates themselves."""
    return values[0] if len(values) == 1 and values[0] in TEMPLATE_SETS else tuple(values)


def _rescore(args: argparse.Namespace) -> None:
    import dataclasses
    import json

    from .labels.equivalences import EquivalenceSet
    from .labels.ground_truth import load_ground_truth
    from .outputs.runs import read_samples
    from .records import breakdown_table, records_ground_truth, remap, score_records

    truth = load_ground_truth(args.gt) if args.gt else None
    equivalences = EquivalenceSet.load(args.equivalences) if args.equivalences else None
    scores = {}
    for path in args.samples:
        run = read_samples(path)
        overrides = {"encoder": args.encoder, "templates": _templates(args.templates) if args.templates else None}
        config = dataclasses.replace(run.config, **{k: v for k, v in overrides.items() if v})
        records = remap(run.records, config) if config != run.config else run.records
        labels = truth or records_ground_truth(records, run.label_set, run.recorded["labels"]["source"])
        scored = score_records(
            records, config, ground_truth=labels, equivalences=equivalences, convention=args.convention
        )
        scores[f"{run.task} ({path})" if len(args.samples) > 1 else run.task] = {
            "label_set": labels.label_set,
            "protocol": config.protocol,
            **scored,
        }
    if args.format == "json":
        print(json.dumps(scores, indent=2))
        return
    for name, values in scores.items():
        table = breakdown_table(values["metrics"], values["label_set"], values["protocol"], values["intervals"])
        print(f"## {name}\n\n{table}\n")


def _repeats(args: argparse.Namespace) -> None:
    from pathlib import Path

    from .outputs.repeats import run_repeats, to_markdown

    summary = run_repeats(args.task, args.repeats, Path(args.out), args.lmms_eval_args, launcher=args.launcher)
    print(to_markdown(summary))


def _sensitivity(args: argparse.Namespace) -> None:
    from pathlib import Path

    from .outputs.repeats import run_sensitivity, sensitivity_markdown

    record = run_sensitivity(
        args.task,
        args.orders,
        args.batch_sizes,
        Path(args.out),
        args.lmms_eval_args,
        launcher=args.launcher,
        subset=args.subset,
    )
    print(sensitivity_markdown(record))


def _submit(args: argparse.Namespace) -> None:
    from .outputs.submission import write_submissions

    written, notes = write_submissions(
        args.results,
        args.out,
        model_id=args.model_id,
        revision=args.revision,
        allow_failed=args.allow_failed,
        benchmark=args.benchmark,
    )
    for path in written:
        print(f"wrote {path}")
    for note in notes:
        print(f"no .eval_results: {note}")


def _compare(args: argparse.Namespace) -> None:
    import json

    from .outputs.compare import compare_files, to_markdown

    comparison = compare_files(
        args.run_a,
        args.run_b,
        allow_different_labels=args.allow_different_labels,
        seed=args.seed,
        resamples=args.resamples,
    )
    print(json.dumps(comparison, indent=2) if args.format == "json" else to_markdown(comparison))


def _confusions(args: argparse.Namespace) -> None:
    from .outputs.confusions import confusions_from_runs

    summary = confusions_from_runs(args.samples, args.out, args.top5)
    print(
        f"wrote {summary['file']}: {summary['confusions']:,} confusions ({summary['source']}) in "
        f"{summary['pairs']:,} class pairs from {summary['images']:,} images; "
        f"{summary['classes_with_partners']} classes have partners, {summary['classes_with_3_partners']} three or more"
    )
    if summary["without_class"]:
        print(f"{summary['without_class']} images had no single predicted class (unanswered, failed, ambiguous)")


def _validate(args: argparse.Namespace) -> None:
    from .labels.ground_truth import load_ground_truth
    from .outputs.submission import validate_file, warnings

    expected = args.labels_hash or (load_ground_truth(args.labels).set_sha256 if args.labels else None)
    failed = 0
    for path in args.submissions:
        try:
            submission = validate_file(path, expected)
        except InputError as error:
            failed += 1
            print(f"imagenet-regt: {error}", file=sys.stderr, flush=True)
            continue
        notes = warnings(submission)
        print(f"{path}: valid" + "".join(f"\n  warning: {note}" for note in notes))
    if failed:
        raise SystemExit(1)


def _leaderboard(args: argparse.Namespace) -> None:
    from .outputs.leaderboard import write_leaderboard

    for kind, path in write_leaderboard(args.submissions, args.out, with_reference=not args.no_reference).items():
        print(f"{kind}: {path}")


def _review_export(args: argparse.Namespace) -> None:
    from .labels.equivalences import EquivalenceSet
    from .labels.ground_truth import load_ground_truth
    from .outputs.review import Run, export_review

    key = export_review(
        [Run.load(spec) for spec in args.runs],
        load_ground_truth(args.gt),
        args.images,
        args.out,
        equivalences=EquivalenceSet.load(args.equivalences),
        names=args.names,
        categories=tuple(args.categories.split(",")),
        models=tuple(args.models.split(",")) if args.models else None,
        min_disagree=args.min_disagree,
        max_images=args.max,
        seed=args.seed,
    )
    print(f"{len(key['images'])} images to review (export {key['export_id']})")
    print(f"send {args.out}/page/ to the reviewer (open index.html); keep {args.out}/key.json")


def _review_import(args: argparse.Namespace) -> None:
    from .labels.ground_truth import load_ground_truth
    from .outputs.review import import_review, summary_markdown

    provenance = import_review(
        args.review, args.decisions, load_ground_truth(args.gt), args.out, reviewer=args.reviewer, version=args.version
    )
    print(f"wrote {args.out}: {provenance['reviewed']} images reviewed, {provenance['changed']} changed")
    print(f"labels sha256 {provenance['labels_sha256']} (parent {provenance['parent']['sha256']})")
    print(summary_markdown(provenance["summary"]), end="")


def _add_review_commands(commands: argparse._SubParsersAction) -> None:
    review = commands.add_parser("review", help="second annotation pass: review model-label disagreements")
    steps = review.add_subparsers(dest="step", required=True)
    export = steps.add_parser("export", help="write a review folder for the images where models disagree")
    export.add_argument(
        "--run",
        dest="runs",
        action="extend",
        nargs="+",
        required=True,
        help="[NAME=]samples JSONL of one or more runs (a glob, or repeat --run)",
    )
    export.add_argument("--gt", required=True, help="the label set under review (as for `score --gt`)")
    export.add_argument("--images", required=True, help="the validation images: a folder, a dataset folder or a Hub id")
    export.add_argument("--out", required=True, help="review folder (page/ for the reviewer, key.json)")
    export.add_argument("--categories", default="S+,S-,M+,M-", help="label categories to review (default: all but N)")
    export.add_argument("--models", help="comma-separated run names to consider (default: all --run)")
    export.add_argument("--min-disagree", type=int, default=1, help="how many runs must disagree (default 1)")
    export.add_argument("--max", type=int, help="at most this many images (a seeded random sample)")
    export.add_argument("--seed", type=int, default=0, help="for the sample and the candidate order")
    export.add_argument("--names", default=DEFAULT_NAME_SET, help="class names shown to the reviewer")
    export.add_argument("--equivalences", default="default", help="default, none or a JSON file")
    export.set_defaults(run=_review_export)
    load = steps.add_parser("import", help="turn the decisions into a new label file with provenance")
    load.add_argument("review", help="the review folder (with key.json)")
    load.add_argument("decisions", help="the JSON the page exported")
    load.add_argument("--gt", required=True, help="the label set the export was made from")
    load.add_argument("--reviewer", required=True, help="who reviewed (recorded in the provenance)")
    load.add_argument("--out", required=True, help="new label file (.jsonl); provenance and summary beside it")
    load.add_argument("--version", help="name of the new label version (default: PARENT+review-DATE)")
    load.set_defaults(run=_review_import)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imagenet-regt", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    score = commands.add_parser("score", help="score a predictions JSONL file against a ground truth")
    score.add_argument("predictions", help='JSONL: {"image_id": ..., "prediction": 65 | "prediction_name": ...}')
    _add_scoring_options(score)
    score.add_argument("--format", choices=("markdown", "json"), default="markdown")
    score.set_defaults(run=_score)

    build = commands.add_parser("build-dataset", help="join labels to your images into the dataset the tasks read")
    build.add_argument("--labels", required=True, help="labels, as --gt of `score` takes them (e.g. real, regt=PATH)")
    build.add_argument(
        "--images",
        help="your validation images: a folder of ILSVRC2012_val_*.JPEG (class subfolders welcome), a dataset "
        "folder or a Hub dataset id (omit for the labels-only dataset)",
    )
    build.add_argument("--labels-only", action="store_true", help="write the labels alone (no pixels; the default)")
    build.add_argument("--out", required=True, help="output folder (parquet shards + README.md card)")
    build.add_argument("--equivalences", default="default", help="for the category column: default, none or a file")
    build.add_argument("--subset", action="store_true", help="build only the labelled images present in --images")
    build.add_argument("--skip-bad", action="store_true", help="skip missing or undecodable images and list them")
    build.add_argument("--push-to-hub", metavar="REPO", help="upload the folder to this Hub dataset repo (private)")
    build.add_argument("--public", action="store_true", help="with --push-to-hub: make the repo public")
    build.add_argument("--dry-run", action="store_true", help="with --push-to-hub: list what would be uploaded")
    build.set_defaults(run=_build_dataset)

    mapper = commands.add_parser("map", help="map free-text answers (one per line) to classes by text embedding")
    mapper.add_argument("answers", nargs="?", default="-", help="file of answers, one per line (default: stdin)")
    mapper.add_argument(
        "--encoder", default=DEFAULT_ENCODER, help="sentence-transformers model or open_clip:MODEL[:TAG]"
    )
    mapper.add_argument(
        "--templates", nargs="+", default=[DEFAULT_TEMPLATES], help=f"{', '.join(TEMPLATE_SETS)} or templates"
    )
    mapper.add_argument("--names", default=DEFAULT_NAME_SET, help="class name set")
    mapper.set_defaults(run=_map)

    rescore = commands.add_parser("rescore", help="recompute a run's metrics from its samples file, no model")
    rescore.add_argument("samples", nargs="+", help="lmms-eval <date>_samples_<task>.jsonl (results file beside it)")
    rescore.add_argument("--gt", help="another ground truth (as for `score`); default: the labels of the run")
    rescore.add_argument("--equivalences", help="default, none or a JSON file (default: the run's)")
    rescore.add_argument("--convention", choices=CONVENTIONS, default="regt")
    rescore.add_argument("--encoder", help="another text encoder for OW/CW+ mapping")
    rescore.add_argument("--templates", nargs="+", help=f"other templates ({', '.join(TEMPLATE_SETS)} or templates)")
    rescore.add_argument("--format", choices=("markdown", "json"), default="markdown")
    rescore.set_defaults(run=_rescore)

    compare = commands.add_parser(
        "compare", help="is run A really better than run B? paired differences on the images both scored"
    )
    compare.add_argument("run_a", help="samples file of run A (lmms-eval <date>_samples_<task>.jsonl)")
    compare.add_argument("run_b", help="samples file of run B")
    compare.add_argument(
        "--allow-different-labels", action="store_true", help="compare runs scored against other labels"
    )
    compare.add_argument("--seed", type=int, default=SEED, help="seed of the paired bootstrap (default %(default)s)")
    compare.add_argument("--resamples", type=int, default=RESAMPLES, help="bootstrap resamples (default %(default)s)")
    compare.add_argument("--format", choices=("markdown", "json"), default="markdown")
    compare.set_defaults(run=_compare)

    confusions = commands.add_parser(
        "confusions", help="a class-confusion file for the confusion-based MC tasks, from classifier runs"
    )
    confusions.add_argument("samples", nargs="+", help="samples files of CW/CW+/OW runs (e.g. timm_classifier)")
    confusions.add_argument("--out", required=True, help="the confusion file to write (JSON)")
    confusions.add_argument(
        "--top5", nargs="+", default=[], help="the runs' top-5 side files (top5_path=): count every wrong class of five"
    )
    confusions.set_defaults(run=_confusions)

    repeats = commands.add_parser(
        "repeats",
        aliases=["mc-repeats"],
        help="run a task R times (MC: option seeds; CW/CW+: class orders) and report mean ± 95%% t-interval",
    )
    repeats.add_argument("task", help="an MC, CW or CW+ task, e.g. imagenet_regt_mc_imgt_random")
    repeats.add_argument("--repeats", type=int, default=31, help="R (the paper: 31)")
    repeats.add_argument("--out", required=True, help="folder for the seeded tasks, results and repeats.json")
    repeats.add_argument("--launcher", help='e.g. "accelerate launch --num_processes 8 -m" (default: python -m)')
    repeats.epilog = "Arguments after a bare -- go to lmms-eval (model, model args, batch size, ...)."
    repeats.set_defaults(lmms_eval_args=[], run=_repeats)

    sensitivity = commands.add_parser(
        "sensitivity", help="a task over K image orders and several batch sizes: accuracies and their spread"
    )
    sensitivity.add_argument("task")
    sensitivity.add_argument("--orders", type=int, default=3, help="K: id order, then shuffled:1..K-1 (default 3)")
    sensitivity.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8], help="default: 1 8")
    sensitivity.add_argument(
        "--subset", default="all", help="the same images for every run: all (default) or one_per_class:SEED"
    )
    sensitivity.add_argument("--out", required=True, help="folder for the task copies, results and sensitivity.json")
    sensitivity.add_argument("--launcher", help='e.g. "accelerate launch --num_processes 8 -m" (default: python -m)')
    sensitivity.epilog = "Arguments after a bare -- go to lmms-eval (model, model args, ...; not --limit)."
    sensitivity.set_defaults(lmms_eval_args=[], run=_sensitivity)

    submit = commands.add_parser("submit", help="write leaderboard submissions from an lmms-eval results file")
    submit.add_argument("results", help="the run's *_results.json, or a folder holding exactly one")
    submit.add_argument("--out", default="submissions", help="output folder (default: submissions)")
    submit.add_argument("--model-id", help="Hub model id (default: pretrained= / model= of the model args)")
    submit.add_argument("--revision", help="model revision or commit (default: revision= of the model args)")
    submit.add_argument("--allow-failed", action="store_true", help="submit even if some requests failed")
    submit.add_argument(
        "--benchmark",
        metavar="REPO",
        help="the Hub benchmark dataset of the labels, for .eval_results (default: the labels' Hub id, if any)",
    )
    submit.set_defaults(run=_submit)

    check = commands.add_parser("validate", help="check submission files; exit 1 if any is invalid")
    check.add_argument("submissions", nargs="+")
    check.add_argument("--labels-hash", help="the sha256 the submissions' labels must have")
    check.add_argument("--labels", help="or: labels (as for `score --gt`) whose hash they must have")
    check.set_defaults(run=_validate)

    board = commands.add_parser("leaderboard", help="markdown, HTML and figures from submissions")
    board.add_argument("submissions", nargs="+")
    board.add_argument("--out", required=True)
    board.add_argument("--no-reference", action="store_true", help="leave out the paper's published rows")
    board.set_defaults(run=_leaderboard)

    _add_review_commands(commands)

    where = commands.add_parser("tasks-dir", help="print the task folder (for lmms-eval --include_path)")
    where.set_defaults(run=lambda args: print(_tasks_dir()))
    return parser


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    # everything after a bare `--` goes to lmms-eval untouched (repeats, sensitivity)
    passthrough = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = build_parser().parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    if passthrough:
        args.lmms_eval_args = passthrough
    try:
        args.run(args)
    except InputError as error:
        print(f"imagenet-regt: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
