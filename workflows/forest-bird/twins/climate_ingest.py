"""Climate-ingest twin of the forest-bird demonstration: annual climate drivers.

DEMONSTRATION MODEL - illustrative numbers, not for decisions.

Reads the shipped scenario file ``data/ssp_scenarios.csv`` (found next to this
script, not in the working directory), which holds decadal signals for each
region and SSP scenario: the annual mean temperature anomaly ``dT`` (degC) and
the precipitation change ``dP`` (%), both relative to 1981-2010. It writes
ANNUAL drivers for every year 2020..2109 so that a forest decade starting in
any year 2020..2100 finds its ten years:

    dT(y), dP(y)   linear interpolation between the decadal values;
                   held at the 2100 value for 2101..2109
    e_T, e_G, e_P  interannual "weather": Gaussian noise from a generator
                   seeded with the region name only, so every scenario sees
                   the same weather sequence and scenario differences are
                   purely the forced signal (sd 0.8 degC, 110 degree days, 10 %)
    temp_mean_c  = T0 + dT + e_T
    gdd5         = G0 + s * (dT + e_T) + e_G      (growing degree days > 5 degC)
    precip_mm    = P0 * (1 + dP/100) * (1 + e_P)

Baseline climatology (1981-2010, rounded, of the order of FMI station normals):

    region          T0 (degC)  G0 (degC days)  s (degC days per degC)  P0 (mm)
    south-finland     5.0         1300               170                650

(south-finland is the only region: the forest and bird twins are parameterised
for southern boreal Finland.)

Output columns: scenario, region, year, temp_anomaly_c, precip_change_pct,
temp_mean_c, gdd5, precip_mm, temp_baseline_c, gdd5_baseline,
precip_baseline_mm (the baselines let the forest twin spin up its initial
landscape under the baseline climate).

Exit status 2 with a one-line ``error: ...`` on stderr for an unknown scenario
or region, or an unreadable or malformed scenario file.
"""

import argparse
import csv
import os
import random
import zlib

from twin_io import UserError, argument_parser, reason, run, write_atomically

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIO_FILE = os.path.join(HERE, "data", "ssp_scenarios.csv")
FIRST_YEAR, LAST_YEAR = 2020, 2109

# Baseline climatology 1981-2010 (see the module docstring).
BASELINE = {
    "south-finland": {"temp": 5.0, "gdd5": 1300.0, "gdd_per_degc": 170.0, "precip": 650.0},
}
WEATHER_SD = {"temp": 0.8, "gdd5": 110.0, "precip": 0.10}

COLUMNS = [
    "scenario", "region", "year", "temp_anomaly_c", "precip_change_pct",
    "temp_mean_c", "gdd5", "precip_mm",
    "temp_baseline_c", "gdd5_baseline", "precip_baseline_mm",
]


def read_scenarios(path):
    """Returns {(region, scenario): {year: (dT, dP)}} from the scenario file."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            lines = [line for line in f if line.strip() and not line.lstrip().startswith("#")]
    except OSError as e:
        raise UserError(f"cannot read scenario file {path}: {reason(e)}")
    table = {}
    need = {"region", "scenario", "year", "temp_anomaly_c", "precip_change_pct"}
    reader = csv.DictReader(lines)
    if not reader.fieldnames or not need.issubset(reader.fieldnames):
        raise UserError(f"scenario file {path} must have columns {', '.join(sorted(need))}")
    for n, row in enumerate(reader, start=2):
        try:
            year = int(row["year"])
            values = (float(row["temp_anomaly_c"]), float(row["precip_change_pct"]))
        except (TypeError, ValueError):
            raise UserError(f"scenario file {path}: bad number in data row {n - 1}")
        table.setdefault((row["region"], row["scenario"]), {})[year] = values
    if not table:
        raise UserError(f"scenario file {path} has no data rows")
    return table


def interpolate(decadal, year):
    """Linear interpolation in the decadal table, held constant outside it."""
    years = sorted(decadal)
    if year <= years[0]:
        return decadal[years[0]]
    if year >= years[-1]:
        return decadal[years[-1]]
    for lo, hi in zip(years, years[1:]):
        if lo <= year <= hi:
            w = (year - lo) / (hi - lo)
            a, b = decadal[lo], decadal[hi]
            return tuple(x + w * (y - x) for x, y in zip(a, b))
    raise AssertionError("unreachable")


def drivers(scenario, region, decadal):
    base = BASELINE[region]
    rng = random.Random(zlib.crc32(region.encode()))  # same weather for every scenario
    rows = []
    for year in range(FIRST_YEAR, LAST_YEAR + 1):
        d_temp, d_precip = interpolate(decadal, year)
        e_temp = rng.gauss(0.0, WEATHER_SD["temp"])
        e_gdd = rng.gauss(0.0, WEATHER_SD["gdd5"])
        e_precip = max(-0.4, rng.gauss(0.0, WEATHER_SD["precip"]))
        temp = base["temp"] + d_temp + e_temp
        gdd = max(0.0, base["gdd5"] + base["gdd_per_degc"] * (d_temp + e_temp) + e_gdd)
        precip = base["precip"] * (1 + d_precip / 100) * (1 + e_precip)
        rows.append([
            scenario, region, year, f"{d_temp:.3f}", f"{d_precip:.2f}",
            f"{temp:.2f}", f"{gdd:.0f}", f"{precip:.0f}",
            f"{base['temp']:.1f}", f"{base['gdd5']:.0f}", f"{base['precip']:.0f}",
        ])
    return rows


def main(argv=None):
    p = argument_parser(
        "climate_ingest.py",
        "Annual climate drivers (temperature, GDD5, precipitation) for 2020-2109 "
        "from the shipped decadal SSP scenario file. Demonstration model.",
        {"--scenario": "SSP scenario, e.g. ssp126, ssp245, ssp585",
         "--region": "region: south-finland",
         "--out": "output CSV (annual drivers)"},
    )
    p.add_argument("--scenario-file", default=SCENARIO_FILE, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    table = read_scenarios(a.scenario_file)
    regions = sorted({r for r, _ in table} & set(BASELINE))
    if a.region not in regions:
        raise UserError(f"unknown region '{a.region}' (valid: {', '.join(regions)})")
    scenarios = sorted({s for r, s in table if r == a.region})
    if a.scenario not in scenarios:
        raise UserError(f"unknown scenario '{a.scenario}' (valid: {', '.join(scenarios)})")
    write_atomically(a.out, COLUMNS, drivers(a.scenario, a.region, table[(a.region, a.scenario)]))
    return 0


if __name__ == "__main__":
    run(main)
