"""The leaderboard: submissions beside the paper's published rows, as markdown, a sortable HTML page and
two figures (ImGT → ReGT change per model, accuracy per label category), like the paper's Table 3 and
Figure 3.
"""

from __future__ import annotations

import bisect
import html
import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..files import write_bytes
from .submission import validate_file, warnings

#: Metric columns; `{set}` is the row's label set (regt, real): rows only rank against rows of their set.
COLUMNS = ("imgt_A", "{set}_A", "{set}_S", "{set}_S+", "{set}_S-", "{set}_M", "{set}_M+", "{set}_M-", "im_and_re_A")
HEADERS = ("ImGT A", "Labels A", "S", "S+", "S−", "M", "M+", "M−", "Im∩Re")
CATEGORY_COLUMNS = ("{set}_S+", "{set}_S-", "{set}_M+", "{set}_M-")
#: The figures show the best rows only (by accuracy against the labels), so they stay readable.
PLOTTED_ROWS = 40


@dataclass(frozen=True)
class Row:
    model: str
    task: str
    #: accuracies in percent, in COLUMNS order (None when the category is empty)
    values: tuple[float | None, ...]
    label_set: str = "regt"
    images: int | None = None
    reference: bool = False
    labels_hash: str = ""
    #: why the row covers less than its label set (a --limit run, a subset of images), if it does
    partial: str = ""

    @property
    def change(self) -> float | None:
        imgt, labels = self.values[0], self.values[1]
        return None if imgt is None or labels is None else labels - imgt

    @property
    def ranked(self) -> bool:
        return not self.partial


def reference_rows() -> list[Row]:
    data = json.loads(resources.files("lmms_eval_imagenet_regt").joinpath("data/paper_table3.json").read_text())
    return [Row(model, task, tuple(values), "regt", 31_250, reference=True) for model, task, values in data["rows"]]


def submission_rows(paths: list[str | Path]) -> list[Row]:
    rows = []
    for path in paths:
        submission = validate_file(path)
        metrics, label_set = submission["metrics"], submission["labels"]["set"]
        values = tuple(
            None if metrics.get(c.format(set=label_set)) is None else round(100 * metrics[c.format(set=label_set)], 2)
            for c in COLUMNS
        )
        rows.append(
            Row(
                submission["model"]["id"],
                submission["task"],
                values,
                label_set,
                submission["images"]["scored"],
                labels_hash=submission["labels"]["sha256"],
                partial="; ".join(warnings(submission)),
            )
        )
    return rows


def ranks(rows: list[Row]) -> list[list[int | None]]:
    """Per row and column, the 1-based rank among complete rows of the same label set (higher accuracy
    first; ties share a rank); partial rows get none."""
    table: list[list[int | None]] = [[None] * (len(COLUMNS) + 1) for _ in rows]
    for column in range(len(COLUMNS) + 1):
        values = [row.change if column == len(COLUMNS) else row.values[column] for row in rows]
        peers: dict[str, list[float]] = {}
        for row, value in zip(rows, values, strict=True):
            if value is not None and row.ranked:
                peers.setdefault(row.label_set, []).append(-value)
        for group in peers.values():
            group.sort()
        for index, (row, value) in enumerate(zip(rows, values, strict=True)):
            if value is not None and row.ranked:  # 1 + how many peers are strictly better
                table[index][column] = 1 + bisect.bisect_left(peers[row.label_set], -value)
    return table


def plain_markdown(text: str) -> str:
    """Text shown as itself in a markdown table: no cell breaks, emphasis, links or HTML."""
    text = html.escape(text, quote=False)
    return re.sub(r"([\\`*_{}\[\]()#+!|~])", r"\\\1", text)


def _cell(value: float | None, rank: int | None) -> str:
    return "–" if value is None else f"{value:.2f}" + (f" ({rank})" if rank else "")


def to_markdown(rows: list[Row]) -> str:
    header = ["model", "task", "labels", "images", *HEADERS, "Labels − ImGT"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row, rank in zip(rows, ranks(rows), strict=True):
        model = plain_markdown(row.model)
        name = f"{model} †" if row.reference else f"**{model}**" + (" ‡" if row.partial else "")
        cells = [_cell(v, r) for v, r in zip(row.values, rank, strict=False)]
        change = "–" if row.change is None else f"{row.change:+.2f}" + (f" ({rank[-1]})" if rank[-1] else "")
        images = "–" if row.images is None else str(row.images)
        lines.append("| " + " | ".join([name, row.task, row.label_set, images, *cells, change]) + " |")
    lines += [
        "",
        "Accuracy in %, rank (among complete rows of the same label set) in parentheses. "
        "† the paper's published rows (Kisel et al. 2026, Table 3; 31,250 images of 625 classes), for "
        "comparison only: rows evaluated on other images or labels are not directly comparable. "
        "‡ partial run, not ranked: "
        + (
            "; ".join(f"{plain_markdown(row.model)} ({row.task}): {row.partial}" for row in rows if row.partial)
            or "none"
        ),
    ]
    return "\n".join(lines)


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ImageNet ReGT leaderboard</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; font-size: 14px; }}
th, td {{ padding: 4px 8px; border-bottom: 1px solid #ddd; text-align: right; }}
th {{ cursor: pointer; background: #f3f3f3; position: sticky; top: 0; user-select: none; }}
th.sorted-desc::after {{ content: " ▼"; }} th.sorted-asc::after {{ content: " ▲"; }}
td:first-child, td:nth-child(2), th:first-child, th:nth-child(2) {{ text-align: left; }}
tr.reference {{ color: #777; font-style: italic; }}
tr.submission td:first-child {{ font-weight: bold; }}
tr.partial {{ color: #a60; }}
.rank {{ color: #999; font-size: 11px; }}
</style></head><body>
<h1>ImageNet-1k with ReGT labels: leaderboard</h1>
<p>Accuracy in %, rank in small print. Click a column to sort. Rows in grey italics (†) are the paper's
published results (Kisel et al. 2026, Table 3; 31,250 images of 625 classes), shown for comparison.</p>
<table id="leaderboard"><thead><tr>{headers}</tr></thead><tbody>
{rows}
</tbody></table>
<script>
document.querySelectorAll("#leaderboard th").forEach(function (th, column) {{
  th.addEventListener("click", function () {{
    var body = document.querySelector("#leaderboard tbody");
    var descending = !th.classList.contains("sorted-desc");
    document.querySelectorAll("#leaderboard th").forEach(function (h) {{ h.className = ""; }});
    th.className = descending ? "sorted-desc" : "sorted-asc";
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {{
      var x = a.cells[column].dataset.value, y = b.cells[column].dataset.value;
      var nx = parseFloat(x), ny = parseFloat(y);
      if (isNaN(nx) || isNaN(ny)) {{ return descending ? y.localeCompare(x) : x.localeCompare(y); }}
      return descending ? ny - nx : nx - ny;
    }});
    rows.forEach(function (row) {{ body.appendChild(row); }});
  }});
}});
</script></body></html>
"""


def to_html(rows: list[Row]) -> str:
    header_names = ("model", "task", "labels", "images", *HEADERS, "Labels − ImGT")
    headers = "".join(f"<th>{html.escape(h)}</th>" for h in header_names)
    body = []
    for row, rank in zip(rows, ranks(rows), strict=True):
        mark = " †" if row.reference else " ‡" if row.partial else ""
        title = f' title="{html.escape(row.partial)}"' if row.partial else ""
        cells = [
            f'<td data-value="{html.escape(row.model)}"{title}>{html.escape(row.model)}{mark}</td>',
            f'<td data-value="{html.escape(row.task)}">{html.escape(row.task)}</td>',
            f'<td data-value="{html.escape(row.label_set)}">{html.escape(row.label_set)}</td>',
            f'<td data-value="{row.images or ""}">{row.images if row.images is not None else "–"}</td>',
        ]
        for value, position in zip((*row.values, row.change), rank, strict=True):
            rank_text = f' <span class="rank">{position}</span>' if position else ""
            text = "–" if value is None else f"{value:.2f}{rank_text}"
            cells.append(f'<td data-value="{"" if value is None else value}">{text}</td>')
        kind = "reference" if row.reference else "partial" if row.partial else "submission"
        body.append(f'<tr class="{kind}">{"".join(cells)}</tr>')
    return _PAGE.format(headers=headers, rows="\n".join(body))


def _label(row: Row) -> str:
    return f"{row.model} ({row.task}){' †' if row.reference else ''}"


def plot_change(rows: list[Row], path) -> None:
    """ImGT → ReGT accuracy per model, one line each, sorted by ReGT (the paper's Figure 3)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = sorted((r for r in rows if r.change is not None), key=lambda r: r.values[1])
    figure, axes = plt.subplots(figsize=(8, 1.2 + 0.4 * len(shown)))
    for y, row in enumerate(shown):
        color = "#999999" if row.reference else "#1f77b4"
        axes.plot([row.values[0], row.values[1]], [y, y], color=color, linewidth=2)
        axes.scatter([row.values[0]], [y], color="white", edgecolor=color, zorder=3, s=40)
        axes.scatter([row.values[1]], [y], color=color, zorder=3, s=40)
    axes.set_yticks(range(len(shown)), [_label(r) for r in shown], fontsize=8)
    axes.set_xlabel("accuracy (%): open circle ImGT → filled circle ReGT")
    axes.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    figure.savefig(
        path,
        format="png",
        dpi=120,
        metadata={"Title": "ImGT to ReGT", "Description": json.dumps([_label(r) for r in shown])},
    )
    plt.close(figure)


def plot_categories(rows: list[Row], path) -> None:
    """ReGT accuracy per label category (S+, S−, M+, M−), one line per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    indices = [COLUMNS.index(c) for c in CATEGORY_COLUMNS]  # the same positions whatever the label set
    shown = [r for r in rows if any(r.values[i] is not None for i in indices)]
    figure, axes = plt.subplots(figsize=(8, 5))
    for row in shown:
        values = [row.values[i] for i in indices]
        style = {"linestyle": "--", "alpha": 0.5} if row.reference else {"linewidth": 2.5}
        axes.plot(range(4), [float("nan") if v is None else v for v in values], marker="o", label=_label(row), **style)
    axes.set_xticks(range(4), ["S+", "S−", "M+", "M−"])
    axes.set_ylabel("accuracy against the row's labels (%)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.0, 0.5))
    figure.tight_layout()
    figure.savefig(
        path,
        format="png",
        dpi=120,
        metadata={"Title": "ReGT by category", "Description": json.dumps([_label(r) for r in shown])},
    )
    plt.close(figure)


def write_leaderboard(submissions: list[str | Path], out: str | Path, with_reference: bool = True) -> dict[str, Path]:
    """Validate the submissions, then write leaderboard.md, leaderboard.html and the two figures.

    Everything is rendered before anything is written, and each file is written whole: a submission
    that cannot be shown leaves the folder as it was.
    """
    import io

    import matplotlib

    rows = submission_rows(submissions) + (reference_rows() if with_reference else [])
    rows.sort(key=lambda r: -(r.values[1] or 0))
    out = Path(out)
    rendered: dict[str, bytes] = {
        "leaderboard.md": (to_markdown(rows) + "\n").encode(),
        "leaderboard.html": to_html(rows).encode(),
    }
    with matplotlib.rc_context({"text.parse_math": False}):  # names are text, never math
        for name, plot in (("imgt_to_regt.png", plot_change), ("accuracy_by_category.png", plot_categories)):
            buffer = io.BytesIO()
            plot(rows[:PLOTTED_ROWS], buffer)
            rendered[name] = buffer.getvalue()
    return {name: write_bytes(out / name, data) for name, data in rendered.items()}
