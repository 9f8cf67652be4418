"""Summary of the forest-beetle demonstration: a table, a chart and a text table.

DEMONSTRATION MODEL - illustrative numbers, not for decisions.

Reads the yearly series of both members of every group instance, in any
order: ``--forest`` files of forest.py and ``--beetle`` files of beetle.py
(one per scenario x management). It checks that the two members of each
instance agree: the same years, and the damage the forest applied each year
equal to the damage the beetle reported. It writes

* ``--out``: one CSV row per (scenario, management, year), sorted, with the
  spruce volume, stand age, stress, beetle population, generations and damage;
* ``--chart``: an SVG chart, one column of panels per scenario: spruce volume
  (top) and beetle damage (bottom) over time, one line per management regime;
* on stdout: per instance, the spruce volume in the last year and the
  damage summed over the run.

Exit status 2 with one line ``error: ...`` on stderr for a missing or malformed
file, two files of the same instance, or members that disagree.
"""

import math
import os

from twin_io import UserError, argument_parser, number, read_csv, run, write_text_atomically

KEY = ("scenario", "management")
FOREST = ("spruce_volume_m3ha", "stand_age_y", "stress", "beetle_damage_m3ha")
BEETLE = ("population", "generations", "damage_m3ha")
COLOURS = {"business-as-usual": "#d95f02", "set-aside": "#1b9e77"}
PALETTE = ["#7570b3", "#e7298a", "#66a61e", "#e6ab02"]


def read_series(paths, what, columns):
    """{(scenario, management): {year: {column: value}}} of the files."""
    out, seen = {}, {}
    for path in paths:
        rows, _ = read_csv(path, what, KEY + ("year",) + columns)
        keys = {tuple(r[k] for k in KEY) for r in rows}
        if len(keys) != 1:
            raise UserError(f"{what} file {path} mixes several scenarios or managements")
        key = keys.pop()
        if key in seen:
            raise UserError(f"{path} and {seen[key]} both hold the {what} series of {key[0]}, "
                            f"{key[1]}")
        seen[key] = path
        out[key] = {number(r, "year", path, n, int): {c: number(r, c, path, n) for c in columns}
                    for n, r in enumerate(rows, start=1)}
    return out


def join(forest, beetle):
    """Sorted rows of both members; checks that every instance's members agree."""
    if set(forest) != set(beetle):
        lonely = sorted(set(forest) ^ set(beetle))
        raise UserError(f"instance {lonely[0][0]}, {lonely[0][1]} has only one member's series")
    rows = []
    for key in sorted(forest):
        f, b = forest[key], beetle[key]
        if sorted(f) != sorted(b):
            raise UserError(f"{key[0]}, {key[1]}: the forest series has years "
                            f"{min(f)}..{max(f)}, the beetle series {min(b)}..{max(b)}")
        for year in sorted(f):
            if not math.isclose(f[year]["beetle_damage_m3ha"], b[year]["damage_m3ha"],
                                rel_tol=1e-6, abs_tol=1e-6):
                raise UserError(f"{key[0]}, {key[1]}, {year}: the forest applied "
                                f"{f[year]['beetle_damage_m3ha']} m3/ha of beetle damage, "
                                f"the beetle reported {b[year]['damage_m3ha']}")
            rows.append({"scenario": key[0], "management": key[1], "year": year,
                         **f[year], **b[year]})
    return rows


def table_csv(rows):
    cols = ["spruce_volume_m3ha", "stand_age_y", "stress", "population", "generations",
            "damage_m3ha"]
    lines = [",".join(["scenario", "management", "year"] + cols)]
    for r in rows:
        lines.append(",".join([r["scenario"], r["management"], str(r["year"])]
                              + [f"{r[c]:.4f}" for c in cols]))
    return "\n".join(lines) + "\n"


def esc(text):
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def nice_top(v):
    if v <= 0:
        return 1.0
    mag = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * mag:
            return m * mag
    return 10 * mag


def chart_svg(rows):
    scenarios = sorted({r["scenario"] for r in rows})
    managements = sorted({r["management"] for r in rows})
    colour = {m: COLOURS.get(m, PALETTE[i % len(PALETTE)]) for i, m in enumerate(managements)}
    years = sorted({r["year"] for r in rows})
    x0, x1 = years[0], max(years[-1], years[0] + 1)
    panels = [("spruce_volume_m3ha", "spruce volume (m³/ha)"),
              ("damage_m3ha", "beetle damage (m³/ha per year)")]
    tops = {c: nice_top(max(r[c] for r in rows) * 1.05) for c, _ in panels}
    pw, ph, gap, vgap, left, top_m = 300, 170, 50, 60, 80, 100
    width = left + len(scenarios) * (pw + gap)
    height = top_m + len(panels) * (ph + vgap) + 20
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2:.0f}" y="28" text-anchor="middle" font-size="18" '
        'font-weight="bold">Forest-beetle demonstration: spruce volume and bark-beetle damage</text>',
        f'<text x="{width / 2:.0f}" y="48" text-anchor="middle" fill="#555">coupled every '
        'simulated year; DEMONSTRATION MODEL, illustrative numbers, not for decisions</text>',
    ]
    lx = left
    for m in managements:
        out.append(f'<line x1="{lx}" y1="70" x2="{lx + 28}" y2="70" stroke="{colour[m]}" '
                   'stroke-width="3"/>')
        out.append(f'<text x="{lx + 36}" y="74">{esc(m)}</text>')
        lx += 36 + 8 * len(m) + 30
    for i, sc in enumerate(scenarios):
        px = left + i * (pw + gap)
        for j, (col, label) in enumerate(panels):
            py = top_m + j * (ph + vgap)
            top = tops[col]

            def sx(year, px=px):
                return px + (year - x0) / (x1 - x0) * pw

            def sy(v, py=py, top=top):
                return py + ph - v / top * ph

            out.append(f'<g id="panel-{esc(sc)}-{col}">')
            if j == 0:
                out.append(f'<text x="{px + pw / 2:.0f}" y="{py - 8}" text-anchor="middle" '
                           f'font-size="14" font-weight="bold">{esc(sc)}</text>')
            out.append(f'<rect x="{px}" y="{py}" width="{pw}" height="{ph}" fill="#fafafa" '
                       'stroke="#999"/>')
            for k in range(6):
                v = top * k / 5
                out.append(f'<line x1="{px}" y1="{sy(v):.1f}" x2="{px + pw}" y2="{sy(v):.1f}" '
                           'stroke="#e4e4e4"/>')
                out.append(f'<text x="{px - 6}" y="{sy(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
            for year in range(x0 - x0 % 20 + (20 if x0 % 20 else 0), x1 + 1, 20):
                out.append(f'<text x="{sx(year):.1f}" y="{py + ph + 16}" '
                           f'text-anchor="middle">{year}</text>')
            if i == 0:
                cy = py + ph / 2
                out.append(f'<text x="{px - 50}" y="{cy:.0f}" text-anchor="middle" '
                           f'transform="rotate(-90 {px - 50} {cy:.0f})">{esc(label)}</text>')
            for m in managements:
                pts = [(r["year"], r[col]) for r in rows
                       if r["scenario"] == sc and r["management"] == m]
                if pts:
                    path = " ".join(f"{sx(y):.1f},{sy(v):.1f}" for y, v in pts)
                    out.append(f'<polyline points="{path}" fill="none" stroke="{colour[m]}" '
                               'stroke-width="2"><title>'
                               f'{esc(sc)}, {esc(m)}: {esc(label)}</title></polyline>')
            out.append('</g>')
    out.append('</svg>')
    return "\n".join(out) + "\n"


def text_table(rows):
    last = max(r["year"] for r in rows)
    lines = [f"{'scenario':<9} {'management':<18} {'volume ' + str(last):>12} "
             f"{'damage total':>13} {'worst year':>11}"]
    for key in sorted({(r["scenario"], r["management"]) for r in rows}):
        mine = [r for r in rows if (r["scenario"], r["management"]) == key]
        end = [r for r in mine if r["year"] == last]
        worst = max(mine, key=lambda r: r["damage_m3ha"])
        volume = f"{end[0]['spruce_volume_m3ha']:.0f}" if end else "-"
        lines.append(f"{key[0]:<9} {key[1]:<18} {volume:>12} "
                     f"{sum(r['damage_m3ha'] for r in mine):>13.1f} {worst['year']:>11}")
    return "\n".join(lines)


def main(argv=None):
    p = argument_parser(
        "summary.py",
        "Joins the forest and beetle series of every group instance, checks that the members "
        "agree, and writes a table (CSV), an SVG chart and a text table. Demonstration model.",
        {"--out": "output table (CSV)"},
    )
    p.add_argument("--chart", help="output chart (SVG); default: --out with the suffix .svg")
    p.add_argument("--forest", nargs="+", required=True, help="forest.py series, any order")
    p.add_argument("--beetle", nargs="+", required=True, help="beetle.py series, any order")
    a = p.parse_args(argv)
    chart = a.chart or os.path.splitext(a.out)[0] + ".svg"
    if os.path.abspath(chart) == os.path.abspath(a.out):
        raise UserError(f"--chart and --out are the same file {a.out}")
    rows = join(read_series(a.forest, "forest", FOREST), read_series(a.beetle, "beetle", BEETLE))
    write_text_atomically(a.out, table_csv(rows))
    write_text_atomically(chart, chart_svg(rows))
    print(text_table(rows))
    print(f"table: {a.out} ({len(rows)} rows)  chart: {chart}")
    return 0


if __name__ == "__main__":
    run(main)
