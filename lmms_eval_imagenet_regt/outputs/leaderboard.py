"""The leaderboard: submissions beside the paper's published rows, as markdown, a sortable HTML page and
two figures (ImGT → labels change per model, accuracy per label category), like the paper's Table 3 and
Figure 3, with what a reader needs to compare rows honestly:

- every accuracy carries its 95% Wilson interval and the number of images behind it, recomputed here from
  the submission's counts (a submission's own intervals are checked, never shown as given);
- ranks are given only among rows measured alike: the same label set (by hash) and the same images (by
  hash), complete runs only; the paper's rows rank among themselves. A rank below 1 whose interval overlaps
  the leader's is marked ≈ (not separable from the leader);
- a category of fewer than MIN_IMAGES images is greyed (italic in markdown) and not ranked;
- the title and the column names follow the label sets actually shown.
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
from ..intervals import successes, wilson
from .submission import validate_file, warnings

#: Metric columns; `{set}` is the row's label set (regt, real).
COLUMNS = ("imgt_A", "{set}_A", "{set}_S", "{set}_S+", "{set}_S-", "{set}_M", "{set}_M+", "{set}_M-", "im_and_re_A")
#: The label category whose images each column counts.
COLUMN_CATEGORIES = ("A", "A", "S", "S+", "S-", "M", "M+", "M-", "A")
HEADERS = ("ImGT A", "{labels} A", "S", "S+", "S−", "M", "M+", "M−", "Im∩Re")
CATEGORY_COLUMNS = ("{set}_S+", "{set}_S-", "{set}_M+", "{set}_M-")
LABEL_SET_NAMES = {"regt": "ReGT", "real": "ReaL"}
#: Fewer images than this in a category: greyed, not ranked (its interval is too wide to read a rank in).
MIN_IMAGES = 30
#: The figures show the best rows only (by accuracy against the labels), so they stay readable.
PLOTTED_ROWS = 40
PAPER_GROUP = "paper"


@dataclass(frozen=True)
class Row:
    model: str
    task: str
    #: accuracies in percent, in COLUMNS order (None when the category is empty)
    values: tuple[float | None, ...]
    #: the number of images behind each value
    counts: tuple[int, ...]
    label_set: str
    images: int
    #: share of the label set's images the row scored
    coverage: float = 1.0
    reference: bool = False
    labels_hash: str = ""
    images_hash: str = ""
    #: why the row covers less than its label set (a --limit run, a subset of images), if it does
    partial: str = ""

    @property
    def change(self) -> float | None:
        imgt, labels = self.values[0], self.values[1]
        return None if imgt is None or labels is None else labels - imgt

    @property
    def ranked(self) -> bool:
        return not self.partial

    @property
    def group(self) -> str:
        """Rows rank only against rows of the same group: the same labels and the same images."""
        return PAPER_GROUP if self.reference else f"{self.label_set}:{self.labels_hash}:{self.images_hash}"

    def interval(self, column: int) -> tuple[float, float] | None:
        """The 95% Wilson interval of a column, in percent, from its value and count."""
        value, count = self.values[column], self.counts[column]
        if value is None or not count:
            return None
        low, high = wilson(successes(value / 100, count), count)
        return 100 * low, 100 * high

    def few(self, column: int) -> bool:
        return self.counts[column] < MIN_IMAGES


def reference_rows() -> list[Row]:
    """The paper's Table 3; intervals from its Table 2 counts and the published (rounded) accuracies."""
    data = json.loads(resources.files("lmms_eval_imagenet_regt").joinpath("data/paper_table3.json").read_text())
    counts = tuple(data["counts"][category] for category in COLUMN_CATEGORIES)
    return [
        Row(model, task, tuple(values), counts, "regt", data["counts"]["A"], reference=True)
        for model, task, values in data["rows"]
    ]


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
                tuple(metrics.get(f"count_{category}", 0) for category in COLUMN_CATEGORIES),
                label_set,
                submission["images"]["scored"],
                submission["coverage"],
                labels_hash=submission["labels"]["sha256"],
                images_hash=submission["images"]["sha256"],
                partial="; ".join(warnings(submission)),
            )
        )
    return rows


@dataclass(frozen=True)
class Rank:
    position: int
    #: False when the row's interval overlaps the group leader's: the data cannot tell them apart
    separable: bool


def ranks(rows: list[Row]) -> list[list[Rank | None]]:
    """Per row and column (the last: labels − ImGT), the 1-based rank among the complete rows of its group
    (higher first; ties share a rank), or None: partial rows, greyed cells and empty values get none."""
    table: list[list[Rank | None]] = [[None] * (len(COLUMNS) + 1) for _ in rows]
    for column in range(len(COLUMNS) + 1):
        count_column = 0 if column == len(COLUMNS) else column

        def value(row: Row, column: int = column) -> float | None:
            return row.change if column == len(COLUMNS) else row.values[column]

        peers: dict[str, list[Row]] = {}
        for row in rows:
            if value(row) is not None and row.ranked and not row.few(count_column):
                peers.setdefault(row.group, []).append(row)
        ordered = {group: sorted(-value(row) for row in members) for group, members in peers.items()}
        leaders = {group: max(members, key=value) for group, members in peers.items()}
        for index, row in enumerate(rows):
            if row.group not in peers or value(row) is None or not row.ranked or row.few(count_column):
                continue
            position = 1 + bisect.bisect_left(ordered[row.group], -value(row))
            separable = True
            if position > 1 and column < len(COLUMNS):
                mine, best = row.interval(column), leaders[row.group].interval(column)
                separable = mine is None or best is None or mine[1] < best[0]
            table[index][column] = Rank(position, separable)
    return table


def title(rows: list[Row]) -> str:
    sets = sorted({LABEL_SET_NAMES.get(row.label_set, row.label_set) for row in rows})
    if len(sets) == 1:
        return f"ImageNet-1k with {sets[0]} labels"
    return "ImageNet-1k: " + " and ".join(sets) + " labels"


def headers(rows: list[Row]) -> tuple[str, ...]:
    sets = {row.label_set for row in rows}
    labels = LABEL_SET_NAMES.get(next(iter(sets)), next(iter(sets))) if len(sets) == 1 else "Labels"
    return tuple(h.format(labels=labels) for h in HEADERS)


def group_names(rows: list[Row]) -> dict[str, str]:
    """Short names for the rank groups, in order of first appearance (G1, G2, ...; the paper's: paper)."""
    names: dict[str, str] = {}
    for row in rows:
        if row.group not in names:
            names[row.group] = PAPER_GROUP if row.reference else f"G{sum(g != PAPER_GROUP for g in names) + 1}"
    return names


def group_legend(rows: list[Row]) -> list[str]:
    """One line per rank group: what its rows were measured on."""
    lines, seen = [], set()
    names = group_names(rows)
    for row in rows:
        if row.group in seen:
            continue
        seen.add(row.group)
        if row.reference:
            lines.append(
                f"{PAPER_GROUP}: the paper's published rows (Kisel et al. 2026, Table 3): ReGT labels, "
                f"{row.images:,} images of 625 classes"
            )
        else:
            set_name = LABEL_SET_NAMES.get(row.label_set, row.label_set)
            lines.append(
                f"{names[row.group]}: {set_name} labels (sha256 {row.labels_hash[:12]}…), {row.images:,} images "
                f"(ids sha256 {row.images_hash[:12]}…)"
            )
    return lines


def plain_markdown(text: str) -> str:
    """Text shown as itself in a markdown table: no cell breaks, emphasis, links or HTML."""
    text = html.escape(text, quote=False)
    return re.sub(r"([\\`*_{}\[\]()#+!|~])", r"\\\1", text)


def _rank_text(rank: Rank | None) -> str:
    return "" if rank is None else f" #{rank.position}" + ("" if rank.separable else "≈")


def _md_cell(row: Row, column: int, rank: Rank | None) -> str:
    value, interval = row.values[column], row.interval(column)
    if value is None:
        return "–"
    text = f"{value:.2f} [{interval[0]:.1f}, {interval[1]:.1f}] n={row.counts[column]}{_rank_text(rank)}"
    return f"_{text}_" if row.few(column) else text


def to_markdown(rows: list[Row]) -> str:
    names = group_names(rows)
    header = ["model", "task", "labels", "images", "coverage", "ranked in", *headers(rows), "Labels − ImGT"]
    lines = [f"# {title(rows)}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row, rank in zip(rows, ranks(rows), strict=True):
        model = plain_markdown(row.model)
        name = f"{model} †" if row.reference else f"**{model}**" + (" ‡" if row.partial else "")
        cells = [_md_cell(row, column, rank[column]) for column in range(len(COLUMNS))]
        change = "–" if row.change is None else f"{row.change:+.2f}{_rank_text(rank[-1])}"
        group = names[row.group] if row.ranked else "– (partial)"
        coverage = f"{100 * row.coverage:.1f}%"
        lines.append(
            "| "
            + " | ".join([name, row.task, row.label_set, f"{row.images:,}", coverage, group, *cells, change])
            + " |"
        )
    lines += [
        "",
        f"Accuracy in %, [95% Wilson interval], n = images in the category, #rank within the row's group. Ranks "
        f"compare only rows of one group (the same labels and the same images); ≈: not separable from the "
        f"group's leader (the intervals overlap); italics: fewer than {MIN_IMAGES} images, not ranked. "
        "† the paper's rows (intervals from its published accuracies and Table 2 counts). "
        "‡ partial run, not ranked: "
        + (
            "; ".join(f"{plain_markdown(row.model)} ({row.task}): {row.partial}" for row in rows if row.partial)
            or "none"
        ),
        "",
        "Groups:",
        *(f"- {plain_markdown(line)}" for line in group_legend(rows)),
    ]
    return "\n".join(lines)


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}: leaderboard</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; font-size: 14px; }}
th, td {{ padding: 4px 8px; border-bottom: 1px solid #ddd; text-align: right; white-space: nowrap; }}
th {{ cursor: pointer; background: #f3f3f3; position: sticky; top: 0; user-select: none; }}
th.sorted-desc::after {{ content: " ▼"; }} th.sorted-asc::after {{ content: " ▲"; }}
td:nth-child(-n+3), th:nth-child(-n+3) {{ text-align: left; }}
tr.reference {{ color: #777; font-style: italic; }}
tr.submission td:first-child {{ font-weight: bold; }}
tr.partial {{ color: #a60; }}
td.few {{ color: #bbb; }}
.ci, .n {{ display: block; color: #999; font-size: 11px; }}
.rank {{ color: #999; font-size: 11px; }}
.rank.not-separable {{ color: #c60; }}
</style></head><body>
<h1>{title}: leaderboard</h1>
<p>Accuracy in %, with its 95% Wilson interval and the number of images (n) below it, rank (#) within the
row's group. Ranks compare only rows of one group: the same labels and the same images. ≈ marks a row that
is not separable from its group's leader (their intervals overlap); greyed: fewer than {min_images} images,
not ranked. Rows in grey italics (†) are the paper's published results (Kisel et al. 2026, Table 3),
ranked among themselves. Click a column to sort.</p>
<ul id="groups">{groups}</ul>
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


def _html_rank(rank: Rank | None) -> str:
    if rank is None:
        return ""
    if rank.separable:
        return f' <span class="rank">#{rank.position}</span>'
    return f' <span class="rank not-separable" title="not separable from the leader">#{rank.position}≈</span>'


def _html_cell(row: Row, column: int, rank: Rank | None) -> str:
    value, interval = row.values[column], row.interval(column)
    if value is None:
        return '<td data-value="">–</td>'
    few = f' class="few" title="fewer than {MIN_IMAGES} images: not ranked"' if row.few(column) else ""
    return (
        f'<td data-value="{value}"{few}>{value:.2f}{_html_rank(rank)}'
        f'<span class="ci">[{interval[0]:.1f}, {interval[1]:.1f}]</span>'
        f'<span class="n">n={row.counts[column]:,}</span></td>'
    )


def to_html(rows: list[Row]) -> str:
    names = group_names(rows)
    header_names = ("model", "task", "labels", "images", "coverage", "ranked in", *headers(rows), "Labels − ImGT")
    header_cells = "".join(f"<th>{html.escape(h)}</th>" for h in header_names)
    body = []
    for row, rank in zip(rows, ranks(rows), strict=True):
        mark = " †" if row.reference else " ‡" if row.partial else ""
        title_attr = f' title="{html.escape(row.partial)}"' if row.partial else ""
        group = names[row.group] if row.ranked else "– (partial)"
        cells = [
            f'<td data-value="{html.escape(row.model)}"{title_attr}>{html.escape(row.model)}{mark}</td>',
            f'<td data-value="{html.escape(row.task)}">{html.escape(row.task)}</td>',
            f'<td data-value="{html.escape(row.label_set)}">{html.escape(row.label_set)}</td>',
            f'<td data-value="{row.images}">{row.images:,}</td>',
            f'<td data-value="{row.coverage}">{100 * row.coverage:.1f}%</td>',
            f'<td data-value="{html.escape(group)}">{html.escape(group)}</td>',
        ]
        cells += [_html_cell(row, column, rank[column]) for column in range(len(COLUMNS))]
        change = "–" if row.change is None else f"{row.change:+.2f}{_html_rank(rank[-1])}"
        cells.append(f'<td data-value="{"" if row.change is None else row.change}">{change}</td>')
        kind = "reference" if row.reference else "partial" if row.partial else "submission"
        body.append(f'<tr class="{kind}" data-group="{html.escape(group)}">{"".join(cells)}</tr>')
    groups = "".join(f"<li>{html.escape(line)}</li>" for line in group_legend(rows))
    return _PAGE.format(
        title=html.escape(title(rows)),
        min_images=MIN_IMAGES,
        groups=groups,
        headers=header_cells,
        rows="\n".join(body),
    )


def _label(row: Row) -> str:
    if row.reference:
        return f"{row.model} ({row.task}) †"
    where = f"{LABEL_SET_NAMES.get(row.label_set, row.label_set)}, {row.images:,} images"
    return f"{row.model} ({row.task}; {where}){' ‡' if row.partial else ''}"


def _styles(rows: list[Row]) -> dict[int, tuple[tuple[float, ...], str]]:
    """A colour and marker per plotted row (keyed by id), all distinct and the same in both figures:
    20 colours (tab20's dark shades first, so that neighbours differ most), then other markers."""
    import matplotlib

    colours = matplotlib.colormaps["tab20"].colors[0::2] + matplotlib.colormaps["tab20"].colors[1::2]
    markers = ("o", "s", "^", "D")
    return {id(row): (colours[index % 20], markers[index // 20 % len(markers)]) for index, row in enumerate(rows)}


def _error(value: float | None, interval: tuple[float, float] | None) -> list[list[float]]:
    if value is None or interval is None:
        return [[0.0], [0.0]]
    return [[value - interval[0]], [interval[1] - value]]


def _pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path, title: str, shown: list[Row]) -> None:
    """Write the figure as PNG, its rows' labels in the metadata (what a reader or a test can check)."""
    figure.tight_layout()
    figure.savefig(
        path, format="png", dpi=120, metadata={"Title": title, "Description": json.dumps([_label(r) for r in shown])}
    )
    _pyplot().close(figure)


def plot_change(rows: list[Row], path) -> None:
    """ImGT → labels accuracy per model, one line each with both intervals, sorted by the labels' accuracy
    (the paper's Figure 3)."""
    plt = _pyplot()
    styles = _styles(rows)
    shown = sorted((r for r in rows if r.change is not None), key=lambda r: r.values[1])
    figure, axes = plt.subplots(figsize=(9, 1.5 + 0.4 * len(shown)))
    for y, row in enumerate(shown):
        colour, marker = styles[id(row)]
        line = "--" if row.reference else "-"
        axes.plot([row.values[0], row.values[1]], [y, y], color=colour, linewidth=2, linestyle=line)
        for column, face in ((0, "white"), (1, colour)):
            axes.errorbar(
                [row.values[column]],
                [y],
                xerr=_error(row.values[column], row.interval(column)),
                fmt=marker,
                color=colour,
                markerfacecolor=face,
                capsize=3,
                zorder=3,
            )
    axes.set_yticks(range(len(shown)), [_label(r) for r in shown], fontsize=8)
    axes.set_xlabel("accuracy (%)")
    axes.set_title("ImGT (open) → the row's labels (filled); 95% intervals; dashed: the paper's rows", fontsize=9)
    axes.grid(axis="x", alpha=0.3)
    _save(figure, path, "ImGT to labels", shown)


def plot_categories(rows: list[Row], path) -> None:
    """Accuracy against the row's labels per category (S+, S−, M+, M−) with 95% intervals, one colour per
    model; a category of fewer than MIN_IMAGES images is drawn hollow and faint."""
    plt = _pyplot()
    indices = [COLUMNS.index(c) for c in CATEGORY_COLUMNS]  # the same positions whatever the label set
    styles = _styles(rows)
    shown = [r for r in rows if any(r.values[i] is not None for i in indices)]
    figure, axes = plt.subplots(figsize=(10, 5))
    offsets = [0.6 * (k / max(1, len(shown) - 1) - 0.5) for k in range(len(shown))]  # side by side per category
    for row, offset in zip(shown, offsets, strict=True):
        colour, marker = styles[id(row)]
        xs = [position + offset for position in range(4)]
        values = [row.values[i] for i in indices]
        axes.plot(
            xs,
            [float("nan") if v is None else v for v in values],
            color=colour,
            linestyle="--" if row.reference else "-",
            alpha=0.5,
            label=_label(row),
        )
        for x, column in zip(xs, indices, strict=True):
            if row.values[column] is None:
                continue
            few = row.few(column)
            axes.errorbar(
                [x],
                [row.values[column]],
                yerr=_error(row.values[column], row.interval(column)),
                fmt=marker,
                color=colour,
                markerfacecolor="none" if few else colour,
                alpha=0.35 if few else 1.0,
                capsize=2,
            )
    axes.set_xticks(range(4), ["S+", "S−", "M+", "M−"])
    axes.set_ylabel("accuracy against the row's labels (%)")
    axes.set_title(
        f"95% intervals; hollow, faint: fewer than {MIN_IMAGES} images; dashed: the paper's rows", fontsize=9
    )
    axes.grid(alpha=0.3)
    axes.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.0, 0.5))
    _save(figure, path, "Accuracy by category", shown)


def order(rows: list[Row]) -> list[Row]:
    """Rows grouped as they rank: the submissions' groups first, by their best row, then partial rows, then
    the paper's rows; best first within each."""
    best: dict[str, float] = {}
    for row in rows:
        best[row.group] = max(best.get(row.group, -1.0), row.values[1] or 0.0)
    return sorted(
        rows,
        key=lambda r: (r.reference, not r.ranked, -best[r.group] if r.ranked else 0.0, r.group, -(r.values[1] or 0)),
    )


def write_leaderboard(submissions: list[str | Path], out: str | Path, with_reference: bool = True) -> dict[str, Path]:
    """Validate the submissions, then write leaderboard.md, leaderboard.html and the two figures.

    Everything is rendered before anything is written, and each file is written whole: a submission
    that cannot be shown leaves the folder as it was.
    """
    import io

    import matplotlib

    rows = order(submission_rows(submissions) + (reference_rows() if with_reference else []))
    plotted = sorted(rows, key=lambda r: -(r.values[1] or 0))[:PLOTTED_ROWS]
    out = Path(out)
    rendered: dict[str, bytes] = {
        "leaderboard.md": (to_markdown(rows) + "\n").encode(),
        "leaderboard.html": to_html(rows).encode(),
    }
    with matplotlib.rc_context({"text.parse_math": False}):  # names are text, never math
        for name, plot in (("imgt_to_labels.png", plot_change), ("accuracy_by_category.png", plot_categories)):
            buffer = io.BytesIO()
            plot(plotted, buffer)
            rendered[name] = buffer.getvalue()
    return {name: write_bytes(out / name, data) for name, data in rendered.items()}
