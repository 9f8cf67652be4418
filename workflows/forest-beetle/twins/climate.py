"""Climate drivers of the forest-beetle demonstration: annual temperature,
thermal sum and drought for one scenario.

DEMONSTRATION MODEL - illustrative numbers, not for decisions.

For every year y = --first-year .. --last-year:

    dT(y)       annual mean temperature change (degC, relative to 1981-2010):
                linear interpolation in DECADAL (the forest-bird demo's
                south-Finland values, of the order of CMIP6 means), held
                constant outside it
    e_T, e_G, e_P  interannual weather: Gaussian noise (sd 0.8 degC,
                110 degree days, 10 %) from a generator with a fixed seed, so
                every scenario sees the same weather and scenario differences
                are the forced signal
    temp_mean_c = T0 + dT + e_T                        (T0 = 5.0 degC)
    gdd5        = G0 + s * (dT + e_T) + e_G            (G0 = 1300 degC d, s = 170)
    precip_mm   = P0 * (1 + dP/100) * (1 + e_P)        (P0 = 650 mm)
    drought     = max(0, 1 - precip_mm / (0.45 * gdd5))   (0 = no water deficit)

Output: scenario, year, temp_mean_c, gdd5, precip_mm, drought.
Exit status 2 with one line ``error: ...`` for an unknown scenario or a bad year range.

``read_drivers`` reads this file for the forest and beetle twins.
"""

import random

from twin_io import UserError, argument_parser, number, read_csv, run, write_atomically

# decade -> (dT degC, dP %), relative to 1981-2010, south Finland (see forest-bird's data file)
DECADAL = {
    "ssp126": {2020: (1.2, 2), 2050: (2.1, 5), 2100: (2.1, 6)},
    "ssp245": {2020: (1.2, 2), 2050: (2.4, 6), 2100: (3.8, 12)},
    "ssp585": {2020: (1.2, 2), 2050: (3.0, 8), 2100: (6.4, 20)},
}
T0, G0, GDD_PER_DEGC, P0 = 5.0, 1300.0, 170.0, 650.0
WATER_PER_GDD = 0.45
SEED = 20200101
COLUMNS = ["scenario", "year", "temp_mean_c", "gdd5", "precip_mm", "drought"]


def interpolate(decadal, year):
    years = sorted(decadal)
    if year <= years[0]:
        return decadal[years[0]]
    if year >= years[-1]:
        return decadal[years[-1]]
    for lo, hi in zip(years, years[1:]):
        if lo <= year <= hi:
            w = (year - lo) / (hi - lo)
            return tuple(a + w * (b - a) for a, b in zip(decadal[lo], decadal[hi]))
    raise AssertionError("unreachable")


def drivers(scenario, first, last):
    rng = random.Random(SEED)
    rows = []
    for year in range(first, last + 1):
        d_temp, d_precip = interpolate(DECADAL[scenario], year)
        e_temp = rng.gauss(0.0, 0.8)
        e_gdd = rng.gauss(0.0, 110.0)
        e_precip = max(-0.4, rng.gauss(0.0, 0.10))
        temp = T0 + d_temp + e_temp
        gdd = max(1.0, G0 + GDD_PER_DEGC * (d_temp + e_temp) + e_gdd)
        precip = P0 * (1 + d_precip / 100) * (1 + e_precip)
        drought = max(0.0, 1 - precip / (WATER_PER_GDD * gdd))
        rows.append([scenario, year, f"{temp:.2f}", f"{gdd:.0f}", f"{precip:.0f}",
                     f"{drought:.3f}"])
    return rows


def read_drivers(path):
    """(scenario, [(year, temp_mean_c, gdd5, drought)] for consecutive years) of a drivers file."""
    rows, _ = read_csv(path, "drivers", COLUMNS)
    scenarios = {r["scenario"] for r in rows}
    if len(scenarios) != 1:
        raise UserError(f"drivers file {path} mixes scenarios {', '.join(sorted(scenarios))}")
    years = []
    for n, row in enumerate(rows, start=1):
        years.append((number(row, "year", path, n, int), number(row, "temp_mean_c", path, n),
                      number(row, "gdd5", path, n), number(row, "drought", path, n)))
        if len(years) > 1 and years[-1][0] != years[-2][0] + 1:
            raise UserError(f"drivers file {path}: year {years[-1][0]} in data row {n} does "
                            f"not follow {years[-2][0]}")
    return scenarios.pop(), years


def main(argv=None):
    p = argument_parser(
        "climate.py",
        "Annual temperature, GDD5, precipitation and drought for one SSP scenario. "
        "Demonstration model.",
        {"--scenario": ", ".join(DECADAL), "--out": "output CSV (annual drivers)"},
    )
    p.add_argument("--first-year", type=int, default=2020)
    p.add_argument("--last-year", type=int, default=2100)
    a = p.parse_args(argv)
    if a.scenario not in DECADAL:
        raise UserError(f"unknown scenario '{a.scenario}' (valid: {', '.join(DECADAL)})")
    if not 1900 <= a.first_year <= a.last_year <= 2300:
        raise UserError(f"years {a.first_year}..{a.last_year} are not a range within 1900..2300")
    write_atomically(a.out, COLUMNS, drivers(a.scenario, a.first_year, a.last_year))
    return 0


if __name__ == "__main__":
    run(main)
