"""`imagenet-regt`: the project's command line (scoring, mapping, dataset building)."""

from __future__ import annotations

import argparse
import sys

from .errors import InputError
from .ground_truth import FORMATS, NAMED_GROUND_TRUTHS
from .scoring import CONVENTIONS
from .vocabulary import BUILTIN_NAME_SETS, DEFAULT_NAME_SET


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
    from .predictions import score_file
    from .report import to_json, to_markdown

    table, parsed = score_file(
        args.predictions, args.gt, convention=args.convention, equivalences=args.equivalences, names=args.names
    )
    if args.format == "json":
        print(to_json(table, unmatched_names=parsed.unmatched_names))
    else:
        print(to_markdown(table))
        print(f"- prediction names that matched no class: {parsed.unmatched_names}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imagenet-regt", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    score = commands.add_parser("score", help="score a predictions JSONL file against a ground truth")
    score.add_argument("predictions", help='JSONL: {"image_id": ..., "prediction": 65 | "prediction_name": ...}')
    _add_scoring_options(score)
    score.add_argument("--format", choices=("markdown", "json"), default="markdown")
    score.set_defaults(run=_score)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except (InputError, FileNotFoundError) as error:
        print(f"imagenet-regt: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
