"""Summary of the forest-bird demonstration: a table, a chart and a text table.

DEMONSTRATION MODEL - illustrative numbers, not for decisions.

Reads any number of ``richness.csv`` files of the bird twin (one row each:
scenario, management, year, occupancy probabilities ``p_<species>``,
expected_richness and landscape covariates), in any order, and writes

* ``--out``: one CSV row per (scenario, management, year), sorted by
  scenario, management and year, with expected_richness, the per-species
  occupancy probabilities and the landscape volume, mean age and deadwood;
* ``--chart`` (default: ``--out`` with the suffix ``.svg``): a hand-written
  SVG line chart of expected richness over time, one panel per scenario and
  one coloured line per management regime, with a legend;
* on stdout: a compact table of expected richness in the last year (2100)
  by scenario x management.

Exit status 2 with a one-line ``error: ...`` on stderr for a missing or
malformed input file, or two files with the same scenario, management and year.
"""

import math
import os
import re

from twin_io import UserError, argument_parser, read_csv, run, write_text_atomically

KEY = ("scenario", "management", "year")
EXTRA = ("volume_m3ha", "mean_age_y", "deadwood_m3ha")
COLOURS = {"business-as-usual": "#d95f02", "extended-rotation": "#7570b3", "set-aside": "#1b9e77"}
PALETTE = ["#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666", "#1f78b4"]


def read_richness(paths):
    """Returns (rows, species columns); rows are dicts keyed by column name."""
    seen, rows, species = {}, [], []
    for path in paths:
        data, fields = read_csv(path, "richness", KEY + ("expected_richness",))
        species += [c for c in fields if c.startswith("p_") and c not in species]
        for row in data:
            try:
                row["year"] = int(row["year"])
                row["expected_richness"] = float(row["expected_richness"])
            except (TypeError, ValueError):
                row["expected_richness"] = math.nan
            if not math.isfinite(row["expected_richness"]):
                raise UserError(f"richness file {path}: bad year or expected_richness")
            key = tuple(row[k] for k in KEY)
            if key in seen:
                raise UserError(f"{path} and {seen[key]} both hold scenario {key[0]}, "
                                f"management {key[1]}, year {key[2]}")
            seen[key] = path
            rows.append(row)
    rows.sort(key=lambda r: (r["scenario"], r["management"], r["year"]))
    return rows, species


def table_csv(rows, species):
    extra = [c for c in EXTRA if any(c in r for r in rows)]
    header = list(KEY) + ["expected_richness"] + species + extra
    lines = [",".join(header)]
    for r in rows:
        values = [r["scenario"], r["management"], str(r["year"]), f"{r['expected_richness']:.4f}"]
        values += [r.get(c) or "" for c in species + extra]
        lines.append(",".join(csv_field(v) for v in values))
    return "\n".join(lines) + "\n"


def csv_field(v):
    return '"' + v.replace('"', '""') + '"' if any(ch in v for ch in ',"\n') else v


def esc(text):
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def pretty_scenario(s):
    m = re.fullmatch(r"ssp(\d)(\d)(\d)", s, re.IGNORECASE)
    return f"SSP{m[1]}-{m[2]}.{m[3]}" if m else s


def nice_step(span, target_ticks=6):
    raw = span / max(1, target_ticks)
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def fmt_tick(v):
    return f"{v:g}"


def chart_svg(rows, n_species):
    regions = {r.get("region") or "" for r in rows}
    where = f", {esc(regions.pop())}" if len(regions) == 1 and "" not in regions else ""
    scenarios = sorted({r["scenario"] for r in rows})
    managements = sorted({r["management"] for r in rows})
    colour = {}
    for i, m in enumerate(managements):
        colour[m] = COLOURS.get(m, PALETTE[i % len(PALETTE)])
    years = sorted({r["year"] for r in rows})
    x0, x1 = years[0], years[-1] if years[-1] > years[0] else years[0] + 1
    top = max(r["expected_richness"] for r in rows)
    ystep = nice_step(top)
    ymax = ystep * math.ceil(top * 1.05 / ystep)
    xstep = 20 if x1 - x0 > 40 else (10 if x1 - x0 > 5 else 1)

    pw, ph, gap, left, top_m, right = 330, 300, 55, 70, 110, 20
    width = left + len(scenarios) * pw + (len(scenarios) - 1) * gap + right
    height = top_m + ph + 70
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2:.0f}" y="28" text-anchor="middle" font-size="18" font-weight="bold">'
        'Forest-bird demonstration: expected forest-bird species richness</text>',
        f'<text x="{width / 2:.0f}" y="48" text-anchor="middle" fill="#555">'
        f'sum of occupancy probabilities of {n_species} modelled species{where}; '
        'DEMONSTRATION MODEL, illustrative numbers, not for decisions</text>',
    ]
    # legend
    lx = left
    for m in managements:
        out.append(f'<line x1="{lx}" y1="74" x2="{lx + 28}" y2="74" stroke="{colour[m]}" '
                   'stroke-width="3"/>')
        out.append(f'<circle cx="{lx + 14}" cy="74" r="3.5" fill="{colour[m]}"/>')
        out.append(f'<text x="{lx + 36}" y="78">{esc(m)}</text>')
        lx += 36 + 8 * len(m) + 30
    for i, sc in enumerate(scenarios):
        px = left + i * (pw + gap)

        def sx(year, px=px):
            return px + (year - x0) / (x1 - x0) * pw

        def sy(v):
            return top_m + ph - v / ymax * ph

        out.append(f'<g id="panel-{esc(sc)}">')
        out.append(f'<text x="{px + pw / 2:.1f}" y="{top_m - 10}" text-anchor="middle" '
                   f'font-size="14" font-weight="bold">{esc(pretty_scenario(sc))}</text>')
        out.append(f'<rect x="{px}" y="{top_m}" width="{pw}" height="{ph}" fill="#fafafa" '
                   'stroke="#999"/>')
        # y grid and ticks
        k = 0
        while k * ystep <= ymax + 1e-9:
            v = k * ystep
            y = sy(v)
            out.append(f'<line x1="{px}" y1="{y:.1f}" x2="{px + pw}" y2="{y:.1f}" '
                       'stroke="#e4e4e4"/>')
            out.append(f'<line x1="{px - 5}" y1="{y:.1f}" x2="{px}" y2="{y:.1f}" stroke="#333"/>')
            out.append(f'<text x="{px - 8}" y="{y + 4:.1f}" text-anchor="end">{fmt_tick(v)}</text>')
            k += 1
        # x ticks
        year = x0 - x0 % xstep if x0 % xstep else x0
        while year <= x1:
            if year >= x0:
                x = sx(year)
                out.append(f'<line x1="{x:.1f}" y1="{top_m + ph}" x2="{x:.1f}" '
                           f'y2="{top_m + ph + 5}" stroke="#333"/>')
                out.append(f'<text x="{x:.1f}" y="{top_m + ph + 19}" text-anchor="middle">'
                           f'{year}</text>')
            year += xstep
        out.append(f'<text x="{px + pw / 2:.1f}" y="{top_m + ph + 40}" text-anchor="middle">'
                   'decade starting in year (state at its end)</text>')
        if i == 0:
            cy = top_m + ph / 2
            out.append(f'<text x="{px - 45}" y="{cy:.1f}" text-anchor="middle" '
                       f'transform="rotate(-90 {px - 45} {cy:.1f})">'
                       'expected richness (species)</text>')
        for m in managements:
            pts = [(r["year"], r["expected_richness"]) for r in rows
                   if r["scenario"] == sc and r["management"] == m]
            if not pts:
                continue
            path = " ".join(f"{sx(y):.1f},{sy(v):.1f}" for y, v in pts)
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour[m]}" '
                       'stroke-width="2.5" stroke-linejoin="round"/>')
            for y, v in pts:
                out.append(f'<circle cx="{sx(y):.1f}" cy="{sy(v):.1f}" r="3" fill="{colour[m]}">'
                           f'<title>{esc(sc)}, {esc(m)}, {y}: {v:.2f}</title></circle>')
        out.append('</g>')
    out.append('</svg>')
    return "\n".join(out) + "\n"


def text_table(rows):
    last = max(r["year"] for r in rows)
    scenarios = sorted({r["scenario"] for r in rows})
    managements = sorted({r["management"] for r in rows})
    value = {(r["scenario"], r["management"]): r["expected_richness"]
             for r in rows if r["year"] == last}
    w = max(len("scenario"), *(len(s) for s in scenarios))
    cols = [max(len(m), 6) for m in managements]
    lines = [f"expected richness in {last}",
             "  ".join([f"{'scenario':<{w}}"] + [f"{m:>{c}}" for m, c in zip(managements, cols)])]
    for s in scenarios:
        cells = [f"{value[(s, m)]:>{c}.2f}" if (s, m) in value else f"{'-':>{c}}"
                 for m, c in zip(managements, cols)]
        lines.append("  ".join([f"{s:<{w}}"] + cells))
    return "\n".join(lines)


def main(argv=None):
    p = argument_parser(
        "summary.py",
        "Gathers richness.csv files into a sorted table (CSV), an SVG chart of "
        "expected richness over time (one panel per scenario, one line per management) and a "
        "text table. Demonstration model.",
        {"--out": "output table (CSV)"},
    )
    p.add_argument("--chart", help="output chart (SVG); default: --out with the suffix .svg")
    p.add_argument("richness", nargs="+", help="richness.csv files, in any order")
    a = p.parse_args(argv)
    chart = a.chart or os.path.splitext(a.out)[0] + ".svg"
    if os.path.abspath(chart) == os.path.abspath(a.out):
        raise UserError(f"--chart and --out are the same file {a.out}")
    rows, species = read_richness(a.richness)
    write_text_atomically(a.out, table_csv(rows, species))
    write_text_atomically(chart, chart_svg(rows, len(species)))
    print(text_table(rows))
    print(f"table: {a.out} ({len(rows)} row{'' if len(rows) == 1 else 's'})  chart: {chart}")
    return 0


if __name__ == "__main__":
    run(main)
