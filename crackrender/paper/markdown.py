"""A table's result as markdown in the paper's layout: its descriptive columns, then for every
metric our number beside the paper's, then our training time."""

from __future__ import annotations

from crackrender.paper.tables import Column, Table


def fmt_ours(value, kind: str = "percent") -> str:
    """Our number as the paper prints it: a fraction as a percentage with 2 decimals; FPS with
    3 significant digits below 10 (CPU runs are slow), else 2 decimals.

    Examples:
        >>> fmt_ours(0.87234), fmt_ours(None), fmt_ours(13.449, "fps"), fmt_ours(0.04567, "fps")
        ('87.23', '–', '13.45', '0.0457')
    """
    if value is None:
        return "–"
    if kind == "fps":
        return f"{value:.3g}" if value < 10 else f"{value:.2f}"
    return f"{100 * value:.2f}"


def fmt_paper(value) -> str:
    return "/" if value is None else f"{value:.2f}"


def fmt_seconds(seconds: float) -> str:
    """Examples:
        >>> fmt_seconds(42.4), fmt_seconds(3725)
        ('42 s', '1 h 02 min')
    """
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def _header(columns: tuple[Column, ...]) -> list[str]:
    cells = []
    for c in columns:
        cells.append(f"{c.label} ours" if c.paper else f"{c.label} (ours)")
        if c.paper:
            cells.append(f"{c.label} paper")
    return cells


def _row(columns: tuple[Column, ...], ours: dict, paper: dict) -> list[str]:
    cells = []
    for c in columns:
        cells.append(fmt_ours(ours.get(c.key), c.kind))
        if c.paper:
            cells.append(fmt_paper(paper.get(c.key)))
    return cells


def _line(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _training_cell(train: dict) -> str:
    text = fmt_seconds(train["seconds"])
    if train.get("reused"):
        text += " (reused)"
    elif train.get("resumed"):
        text += " (resumed)"
    return text


def render_table(table: Table, result: dict) -> str:
    """The markdown page for one table run (``result`` as :func:`crackrender.paper.runner.run_table`
    returns it)."""
    quick = result["mode"] == "quick"
    lines = [f"# Table {table.number}: ours beside the paper's", "", f"*{table.caption}.*", ""]
    lines += [f"- command: `{result['command']}`",
              f"- date: {result['date']}; wall time {fmt_seconds(result['wall_s'])} (training, evaluation and timing)",
              f"- mode: **{result['mode']}**" + (" (tiny models trained for seconds: these numbers show the machinery "
                                                  "works end to end and say nothing about the paper's)" if quick else ""),
              f"- device: {result['device']}; torch {result['torch']}, {result['dtype']}"]
    data = result["data"]
    tests = ", ".join(f"{t['name']} {t['split']} ({t['images']} of {t['of']} images)" for t in data["test"])
    train = ", ".join(f"{e['root']} {e['split']}" for e in data["train"])
    lines += [f"- data: {data['kind']}; trained on {train}; scored on {tests}"]
    fps = result["fps_image"]
    lines += [f"- FPS: `model.predict` on one synthetic {fps['width']}x{fps['height']} image ({fps['source']}), "
              f"mask back on the host, median of {fps['repeats']} runs after {fps['warmup']} warm-up, same run for every row"]
    if result.get("long_edge"):
        edge = result["long_edge"]
        scaled = "scaled" if max(fps["width"], fps["height"]) > edge else "not scaled"
        lines += [f"- PointRend's coarse networks see images scaled down to a long edge of {edge} px; images "
                  f"within it as they are (the FPS image is {scaled})"]
    lines += ["- metrics (%): mIoU, crack IoU and Dice from TP/FP/FN/TN summed over all scored test images "
              "(`crackrender evaluate`'s aggregate); mBA the mean over images of CascadePSP's boundary accuracy", ""]

    columns = table.columns
    head = [*table.desc_columns, *_header(columns), "training"]
    lines += [_line(head), _line(["---"] * len(head))]
    for res in result["rows"]:
        lines.append(_line([*res["cells"], *_row(columns, res["ours"], res["paper"]), _training_cell(res["train"])]))

    per = [name for name in (result["rows"][0]["per_dataset"] if result["rows"] else {})]
    if len(per) > 1:
        lines += ["", "Ours per test set, mIoU / mBA / Dice (%):", ""]
        head = [table.desc_columns[0] if table.number != 3 else "Coarse network", *per]
        lines += [_line(head), _line(["---"] * len(head))]
        for res in result["rows"]:
            label = res["cells"][0] if table.number != 3 else res["cells"][2]
            cells = [" / ".join(fmt_ours(res["per_dataset"][n].get(k)) for k in ("miou", "mba", "dice")) for n in per]
            lines.append(_line([label, *cells]))
    lines += ["", "Notes:", ""] + [f"- {n}" for n in table.notes]
    lines.append(f"- Paper numbers are copied as printed (cbprn-paper.md, Table {table.number}); ours are from this run.")
    return "\n".join(lines) + "\n"
