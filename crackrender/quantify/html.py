"""Self-contained HTML reports: inline CSS, the overlay as a base64 PNG, the histogram as SVG.

Nothing is fetched when a report is opened (no scripts, fonts or stylesheets from elsewhere),
so a report can be mailed or archived as one file.
"""

from __future__ import annotations

import base64
import html
import math

import numpy as np

from crackrender.quantify.report import NO_CLASS_COLOUR, UNRESOLVED_COLOUR, class_colours, crack_colour
from crackrender.quantify.result import CrackResult, QuantResult
from crackrender.quantify.units import MIN_RESOLVABLE_PX, class_labels

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1d2327;background:#f6f7f9}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:26px 0 8px}
.meta{color:#5b6770;margin-bottom:14px}.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{background:#fff;border:1px solid #dde2e6;border-radius:8px;padding:10px 16px;min-width:150px}
.card b{display:block;font-size:22px}.card span{color:#5b6770;font-size:12px;text-transform:uppercase}
img.ov{max-width:100%;height:auto;border:1px solid #dde2e6;border-radius:6px;background:#000}
table{border-collapse:collapse;background:#fff;font-variant-numeric:tabular-nums}
th,td{border:1px solid #dde2e6;padding:4px 9px;text-align:right}th{background:#eef1f4}
td.l,th.l{text-align:left}.sw{display:inline-block;width:12px;height:12px;border-radius:3px;
vertical-align:-1px;margin-right:5px;border:1px solid #0003}.legend span{margin-right:14px}
details{margin-top:10px}summary{cursor:pointer;margin-bottom:6px}
.note{color:#5b6770;font-size:12.5px;max-width:900px}svg{background:#fff;border:1px solid #dde2e6;border-radius:6px}
"""


def _rgb(c) -> str:
    return f"rgb({c[0]},{c[1]},{c[2]})"


def _sw(c) -> str:
    return f'<i class="sw" style="background:{_rgb(c)}"></i>'


def fmt_len(px: float, scale: float, unit: str) -> str:
    return f"{px * scale:.1f} {unit}" if unit == "px" or px * scale >= 100 else f"{px * scale:.2f} {unit}"


def fmt_width(px: float, scale: float, unit: str, below: bool = False) -> str:
    """A width with no more digits than the pixel size supports; an upper bound when unresolved.

    Examples:
        >>> fmt_width(6.04, 0.05, "mm"), fmt_width(1.4, 0.05, "mm", below=True), fmt_width(3.26, 1, "px")
        ('0.30 mm', '&lt; 0.10 mm', '3.3 px')
    """
    if below:
        return f"&lt; {MIN_RESOLVABLE_PX * scale:.{_digits(scale, unit)}f} {unit}"
    return f"{px * scale:.{_digits(scale, unit)}f} {unit}"


def _digits(scale: float, unit: str) -> int:
    # down to the pixel size and no further: 0.05 mm/px -> 2 decimals, 0.004 mm/px -> 3
    return 1 if unit == "px" else max(1, min(4, -math.floor(math.log10(scale))))


def _nice_step(span: float, minimum: float) -> float:
    raw = max(span / 20, minimum)
    p = 10 ** math.floor(math.log10(raw))
    return next(m * p for m in (1, 2, 2.5, 5, 10) if m * p >= raw - 1e-12)


def _ticks(top: float, n: int = 5) -> list[float]:
    """Round tick values from 0 to ``top``."""
    step = _nice_step(top, 0.0) * 20 / n
    p = 10 ** math.floor(math.log10(step))
    step = next(m * p for m in (1, 2, 2.5, 5, 10) if m * p >= step - 1e-12)
    return [round(k * step, 10) for k in range(int(top / step + 1e-9) + 1)]


def width_histogram_svg(results: list[QuantResult]) -> str:
    """Inline SVG: crack length per width bin (the bins no finer than one pixel), with the class
    thresholds drawn as dashed lines."""
    r0 = results[0]
    scale, unit = r0.scale, r0.units
    widths, weights = [], []
    for r in results:
        for c in r.cracks:
            for b in c.branches:
                if b.width_profile:
                    w = np.array([p[1] for p in b.width_profile]) * r.scale  # each image its own GSD
                    widths.append(w)
                    weights.append(np.full(len(w), b.length_px * r.scale / len(w)))
    W, H, ml, mb, mt, mr = 680, 260, 62, 42, 14, 16
    if not widths:
        return (f'<svg width="{W}" height="80" role="img" aria-label="no cracks"><text x="20" y="45" '
                f'fill="#5b6770">No cracks, no widths to show.</text></svg>')
    w, wt = np.concatenate(widths), np.concatenate(weights)
    step = _nice_step(float(w.max()), scale)
    edges = np.arange(0, w.max() + step, step)
    if len(edges) < 2:
        edges = np.array([0, step])
    hist, _ = np.histogram(w, bins=edges, weights=wt)
    top = float(hist.max()) or 1.0
    pw, ph = W - ml - mr, H - mb - mt
    xs = lambda v: ml + pw * (v - edges[0]) / (edges[-1] - edges[0])  # noqa: E731
    ys = lambda v: mt + ph * (1 - v / top)  # noqa: E731
    colours = class_colours(r0.width_bins_mm) if r0.gsd_mm else None
    parts = [f'<svg width="{W}" height="{H}" viewBox="0 0 {W} {H}" xmlns="http://www.w3.org/2000/svg" '
             f'font-size="11" font-family="system-ui,sans-serif" role="img" aria-label="width histogram">']
    for i, v in enumerate(hist):
        centre = (edges[i] + edges[i + 1]) / 2
        colour = NO_CLASS_COLOUR
        if colours:
            colour = colours[class_labels(r0.width_bins_mm)[sum(centre >= t for t in r0.width_bins_mm)]]
        x0, x1 = xs(edges[i]), xs(edges[i + 1])
        parts.append(f'<rect x="{x0 + 0.5:.1f}" y="{ys(v):.1f}" width="{max(x1 - x0 - 1, 0.5):.1f}" '
                     f'height="{mt + ph - ys(v):.1f}" fill="{_rgb(colour)}"><title>{edges[i]:g}-{edges[i + 1]:g} '
                     f'{unit}: {v:.2f} {unit}</title></rect>')
    if colours:
        for t in r0.width_bins_mm:
            if edges[0] < t < edges[-1]:
                parts.append(f'<line x1="{xs(t):.1f}" x2="{xs(t):.1f}" y1="{mt}" y2="{mt + ph}" stroke="#333" '
                             f'stroke-dasharray="4 3"/><text x="{xs(t) + 3:.1f}" y="{mt + 10}">{t:g}</text>')
    parts.append(f'<line x1="{ml}" x2="{ml + pw}" y1="{mt + ph}" y2="{mt + ph}" stroke="#333"/>'
                 f'<line x1="{ml}" x2="{ml}" y1="{mt}" y2="{mt + ph}" stroke="#333"/>')
    for v in _ticks(edges[-1]):
        parts.append(f'<text x="{xs(v):.1f}" y="{mt + ph + 15}" text-anchor="middle">{v:g}</text>')
    for v in _ticks(top):
        parts.append(f'<text x="{ml - 5}" y="{ys(v) + 4:.1f}" text-anchor="end">{v:g}</text>'
                     f'<line x1="{ml}" x2="{ml + pw}" y1="{ys(v):.1f}" y2="{ys(v):.1f}" stroke="#0001"/>')
    parts.append(f'<text x="{ml + pw / 2}" y="{H - 6}" text-anchor="middle">local crack width ({unit})</text>'
                 f'<text transform="translate(14 {mt + ph / 2}) rotate(-90)" text-anchor="middle">'
                 f'crack length ({unit})</text></svg>')
    return "".join(parts)


def _cards(items: list[tuple[str, str]]) -> str:
    cards = "".join(f'<div class="card"><span>{k}</span><b>{v}</b></div>' for k, v in items)
    return f'<div class="cards">{cards}</div>'


def _legend(r: QuantResult) -> str:
    if r.gsd_mm is None:
        return (f'<p class="legend">{_sw(NO_CLASS_COLOUR)}crack (no GSD: widths in pixels, width classes n/a) '
                f'{_sw(UNRESOLVED_COLOUR)}narrower than {MIN_RESOLVABLE_PX:g} px (unresolved)</p>')
    cols = class_colours(r.width_bins_mm)
    return '<p class="legend">' + "".join(f'<span>{_sw(c)}{html.escape(k)}{" mm" if k != "unresolved" else ""}</span>'
                                          for k, c in cols.items()) + "</p>"


def _class_counts(r: QuantResult) -> str:
    counts = r.summary()["width_classes"]
    if counts is None:
        return "n/a"
    cols = class_colours(r.width_bins_mm)
    return " ".join(f"{_sw(cols[k])}{v}" for k, v in counts.items() if v or k != "unresolved")


def _crack_row(c: CrackResult, r: QuantResult) -> str:
    s, u = r.scale, r.units
    wc = c.width_class or "n/a"
    cells = [str(c.id), fmt_len(c.length_px, s, u), fmt_width(c.max_width_px, s, u, c.below_resolution),
             fmt_width(c.mean_width_px, s, u, c.below_resolution), fmt_width(c.p90_width_px, s, u, c.below_resolution),
             f'<td class="l">{_sw(crack_colour(c, r.width_bins_mm))}{html.escape(wc)}',
             f"{c.orientation_deg:.0f}&deg; {c.orientation_class}", str(len(c.branches)),
             f"{c.area_px * s * s:.{0 if u == 'px' else 3}f}", "below resolution" if c.below_resolution else ""]
    return "<tr>" + "".join(x if x.startswith("<td") else f"<td>{x}</td>" for x in cells) + "</tr>"


def _crack_table(r: QuantResult) -> str:
    if not r.cracks:
        return "<p>No cracks found.</p>"
    u = r.units
    head = ["id", "length", "max width", "mean width", "p90 width", "width class", "orientation", "branches",
            f"area ({u}&sup2;)", "flags"]
    return ("<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"
            + "".join(_crack_row(c, r) for c in r.cracks) + "</table>")


def _branch_table(r: QuantResult) -> str:
    s, u = r.scale, r.units
    rows = "".join(
        f"<tr><td>{b.id}</td><td>{c.id}</td><td>{fmt_len(b.length_px, s, u)}</td>"
        f"<td>{fmt_width(b.max_width_px, s, u)}</td><td>{fmt_width(b.mean_width_px, s, u)}</td>"
        f"<td>{b.orientation_deg:.0f}&deg; {b.orientation_class}</td><td>{b.free_ends}</td></tr>"
        for c in r.cracks for b in c.branches)
    head = "".join(f"<th>{h}</th>" for h in ("branch", "crack", "length", "max width", "mean width", "orientation",
                                              "free ends"))
    n = sum(len(c.branches) for c in r.cracks)
    return f"<details><summary>Branches ({n})</summary><table><tr>{head}</tr>{rows}</table></details>"


def _resolution_note(r: QuantResult) -> str:
    if r.gsd_mm is None:
        return (f"Units: pixels (no ground sampling distance given), so width classes are not applicable. "
                f"Widths are known to about 1 px; cracks narrower than {MIN_RESOLVABLE_PX:g} px are flagged.")
    g = r.gsd_mm
    return (f"Units: millimetres; ground sampling distance {g:g} mm/px. Every width is known to about one pixel "
            f"(&plusmn;{g:g} mm); cracks narrower than {MIN_RESOLVABLE_PX:g} px ({MIN_RESOLVABLE_PX * g:g} mm) are "
            f"flagged and reported as an upper bound. Width classes by maximum width, thresholds "
            f"{', '.join(f'{t:g}' for t in r.width_bins_mm)} mm.")


def _page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{_CSS}</style></head>'
            f"<body>{body}</body></html>\n")


def _display_width(r: QuantResult) -> int:
    """Show the overlay at most 1100 x 900 px, small images enlarged up to 3 times."""
    return int(r.width * min(3.0, 1100 / r.width, 900 / r.height))


def report_html(r: QuantResult, overlay_png: bytes, title: str) -> str:
    """The per-image report page."""
    s, u, summ = r.scale, r.units, r.summary()
    all_below = bool(r.cracks) and all(c.below_resolution for c in r.cracks)
    cards = _cards([("cracks", str(summ["count"])), ("branches", str(summ["branches"])),
                    ("total length", fmt_len(sum(c.length_px for c in r.cracks), s, u)),
                    ("max width", fmt_width(max((c.max_width_px for c in r.cracks), default=0), s, u, all_below)),
                    ("width classes", _class_counts(r))])
    ov = base64.b64encode(overlay_png).decode("ascii")
    dropped = f" ({summ['dropped_short']} shorter specks left out)" if summ["dropped_short"] else ""
    body = (f"<h1>Crack report: {html.escape(title)}</h1><div class='meta'>{r.width}&times;{r.height} px &middot; "
            f"member axis {r.member_axis_deg:g}&deg; &middot; shortest crack kept {r.min_length_px:g} px{dropped}</div>"
            f"{cards}"
            f"<p class='note'>{_resolution_note(r)}</p><h2>Overlay</h2>{_legend(r)}"
            f"<img class='ov' alt='crack overlay' width='{_display_width(r)}' src='data:image/png;base64,{ov}'>"
            f"<h2>Width distribution</h2>{width_histogram_svg([r])}<h2>Cracks</h2>{_crack_table(r)}"
            f"{_branch_table(r) if r.cracks else ''}"
            f"<p class='note'>Orientation: degrees counter-clockwise from the image x axis; longitudinal within "
            f"30&deg; "
            f"of the member axis, transverse within 30&deg; of its perpendicular, else diagonal. Lengths follow the "
            f"crack's centre line; widths are measured across it. p90: 90th percentile of the width along the "
            f"crack.</p>")
    return _page(f"Crack report: {title}", body)


def summary_html(entries: list[tuple[str, QuantResult]]) -> str:
    """One page over several images: totals, a combined histogram, and a row (with a link) per image.

    Each row is in its own image's units and scale (georeferenced rasters each bring their own GSD);
    totals over images in different units are left out."""
    from crackrender.quantify.report import REPORT_PICTURE_MAX_PIXELS

    r0 = entries[0][1]
    u = r0.units
    same_units = all(r.units == u for _, r in entries)
    cracks = [(c, r.scale) for _, r in entries for c in r.cracks]
    cards = [("images", str(len(entries))), ("cracks", str(len(cracks)))]
    if same_units:
        widest = max(cracks, key=lambda ck: ck[0].max_width_px * ck[1], default=None)
        cards += [("total length", fmt_len(sum(c.length_px * k for c, k in cracks), 1.0, u)),
                  ("max width", fmt_width(widest[0].max_width_px if widest else 0, widest[1] if widest else r0.scale, u))]
    cards = _cards(cards)
    head = ["image", "cracks", "total length", "max width", "width classes", "below resolution"]

    def name(stem: str, r: QuantResult) -> str:
        if r.height * r.width > REPORT_PICTURE_MAX_PIXELS:
            return html.escape(stem)  # no page of its own (see write_report)
        return f"<a href='{html.escape(stem)}_report.html'>{html.escape(stem)}</a>"

    rows = "".join(
        f"<tr><td class='l'>{name(stem, r)}</td>"
        f"<td>{len(r.cracks)}</td><td>{fmt_len(sum(c.length_px for c in r.cracks), r.scale, r.units)}</td>"
        f"<td>{fmt_width(max((c.max_width_px for c in r.cracks), default=0), r.scale, r.units)}</td>"
        f"<td class='l'>{_class_counts(r)}</td><td>{r.summary()['below_resolution']}</td></tr>" for stem, r in entries)
    body = (f"<h1>Crack summary</h1><div class='meta'>{len(entries)} images</div>{cards}"
            f"<p class='note'>{_resolution_note(r0)}</p>{_legend(r0)}<h2>Width distribution, all images</h2>"
            f"{width_histogram_svg([r for _, r in entries if r.units == u])}<h2>Images</h2><table><tr>"
            + "".join(f"<th class='l'>{h}</th>" if h == "image" else f"<th>{h}</th>" for h in head)
            + f"</tr>{rows}</table>")
    return _page("Crack summary", body)
