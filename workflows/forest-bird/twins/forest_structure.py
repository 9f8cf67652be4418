"""Forest-structure twin of the forest-bird demonstration: one decade of stand dynamics.

DEMONSTRATION MODEL - illustrative numbers, not for decisions.

The landscape is a set of even-aged STAND CLASSES of Scots pine, Norway spruce
and silver/downy birch. Each class has a fixed share of the landscape area
(``area_share``, summing to 1) and a state: age A (years), basal area
B (m2/ha) and deadwood D (m3/ha). One run simulates the ten years
``--year`` .. ``--year``+9 with annual steps, reading the climate drivers of
those years (GDD5 = growing degree days above 5 degC, precipitation,
annual mean temperature), and writes the state at the END of year
``--year``+9, labelled ``year = --year`` (the row labelled 2100 is the
landscape on 31 December 2109).

Annual step of one stand class of species s (parameters in SPECIES), in this
order:

    climate    fT = max(0.2, 1 + gamma_s * (GDD5 - 1300) / 1000)
               W  = P / (0.45 * GDD5)               (crude water-balance ratio)
               fW = min(1, W) ** delta_s            (drought; spruce most sensitive)
    growth     B += r_s * fT * fW * exp(-A / tau_s) * B * (1 - B / Bmax_s)
    height     H  = Hmax_s * (1 - exp(-k_s * A)) ** 1.3         (Chapman-Richards)
    volume     V  = F_s * B * H
    mortality  crowding c = max(0, (B / Bmax_s - 0.7) / 0.3)
               m_crowd  = 0.03 * c**2                   (self-thinning of small trees)
               m_other  = m0_s + 0.01 * max(0, A - Asen_s) / 50   (background, senescence)
                          + spruce aged >= 40: 0.004 * max(0, GDD5 - 1600) / 400
                                                        (bark beetle in warm years)
               B -= min(0.3, m_crowd + m_other) * B
               dead volume V * (0.5 * m_crowd + m_other) enters the deadwood pool
               (crowding kills small trees: half their basal-area share in volume);
               in managed regimes half the beetle-killed volume is salvage-logged
    deadwood   D <- D * (1 - kd_s * 2 ** ((T - 5) / 10)) + dead - salvaged
                                                        (decay, Q10 = 2, T annual mean)
    management business-as-usual and extended-rotation:
               clear-cut when A >= rotation: 97 % of the volume is removed,
                   3 % (stumps, retention trees) becomes deadwood, 25 % of the
                   existing deadwood is destroyed, the class regenerates with
                   A = 0, B = 0.5
               otherwise thinning when 15 <= A < rotation - 10 and B > trigger_s:
                   B <- target_s, 2 % of the removed volume becomes deadwood
               rotation: business-as-usual pine 80, spruce 70, birch 60 years;
                   extended-rotation 30 years longer (110, 100, 90)
               set-aside: no thinning, no felling, no salvage
    age        A <- A + 1

Initial landscape (``--state ''``): a typical managed southern-Finland
landscape: area shares pine 0.48, spruce 0.36, birch 0.16; for each species
13 classes with mid-ages 5, 15, ..., 125 years whose relative areas
(11, 11, 10, 10, 10, 10, 9, 9, 6, 5, 4, 3, 2) are skewed to young ages,
roughly the shape of the national forest inventory's age-class distribution,
with classes at or past the business-as-usual rotation reduced to 35 %. Each
class is spun up with this same model from A = 0, B = 0.5 and 3 m3/ha of
legacy deadwood under the baseline climate of the drivers file and
business-as-usual thinnings (no felling). This gives about 150 m3/ha, mean
age about 42 years and about 7 m3/ha of deadwood, close to southern-Finland
inventory averages.

Output: one row per stand class with scenario, management, year, region,
species, stand, area_share, basal_area_m2ha, volume_m3ha, mean_age_y (the
class's age), deadwood_m3ha, height_m, harvest_m3ha (felled + thinned +
salvaged volume in the decade), mortality_m3ha (in the decade) and the
decade's mean climate (gdd5_mean, precip_mm_mean, temp_mean_c), which the
bird twin uses. Landscape values per species are area-weighted means over the
classes of that species.

Exit status 2 with a one-line ``error: ...`` on stderr for a missing or
malformed input file, an unknown management regime, or a state file that
does not belong to this run (other scenario, regime or decade).
"""

import math

from twin_io import UserError, argument_parser, number, read_csv, run, write_atomically

MANAGEMENTS = ("business-as-usual", "extended-rotation", "set-aside")
EXTENSION_Y = 30          # extended-rotation: rotation + 30 years
GDD_REF = 1300.0          # south-Finland 1981-2010 GDD5, the growth reference
WATER_PER_GDD = 0.45      # mm of precipitation per degree day for W = 1
REGEN_B = 0.5             # basal area of a regenerated class (m2/ha)
LEGACY_DEADWOOD = 3.0     # deadwood of a young class at spin-up (m3/ha)
OVERDUE = 0.35            # initial area weight of age classes past the business-as-usual rotation

SPECIES = {
    #            r: growth rate, Bmax: max basal area, tau: age decline, Hmax/k: height curve,
    #            F: form factor, gamma: GDD response, delta: drought exponent,
    #            m0: background mortality, Asen: senescence onset, kd: deadwood decay,
    #            trigger/target: thinning basal areas, rotation: business-as-usual
    "pine": dict(r=0.15, Bmax=32.0, tau=180.0, Hmax=26.0, k=0.030, F=0.50, gamma=0.45,
                 delta=0.5, m0=0.001, Asen=150.0, kd=0.030, trigger=24.0, target=17.0,
                 rotation=80),
    "spruce": dict(r=0.14, Bmax=38.0, tau=160.0, Hmax=30.0, k=0.025, F=0.50, gamma=0.30,
                   delta=1.5, m0=0.001, Asen=110.0, kd=0.034, trigger=28.0, target=20.0,
                   rotation=70),
    "birch": dict(r=0.17, Bmax=28.0, tau=100.0, Hmax=25.0, k=0.040, F=0.45, gamma=0.50,
                  delta=1.0, m0=0.0015, Asen=80.0, kd=0.045, trigger=20.0, target=14.0,
                  rotation=60),
}

# Initial landscapes: species area shares and the relative area of 10-year age
# classes with mid-ages 5, 15, ..., 125.
LANDSCAPES = {
    "south-finland": {
        "species": {"pine": 0.48, "spruce": 0.36, "birch": 0.16},
        "ages": [11, 11, 10, 10, 10, 10, 9, 9, 6, 5, 4, 3, 2],
    },
}

DRIVER_COLUMNS = ("scenario", "region", "year", "temp_mean_c", "gdd5", "precip_mm",
                  "temp_baseline_c", "gdd5_baseline", "precip_baseline_mm")
STATE_COLUMNS = ("scenario", "management", "year", "species", "stand", "area_share",
                 "basal_area_m2ha", "mean_age_y", "deadwood_m3ha")
OUT_COLUMNS = ["scenario", "management", "year", "region", "species", "stand", "area_share",
               "basal_area_m2ha", "volume_m3ha", "mean_age_y", "deadwood_m3ha", "height_m",
               "harvest_m3ha", "mortality_m3ha", "gdd5_mean", "precip_mm_mean", "temp_mean_c"]


def height(sp, age):
    p = SPECIES[sp]
    return p["Hmax"] * (1 - math.exp(-p["k"] * max(age, 0.0))) ** 1.3


def volume(sp, age, ba):
    return SPECIES[sp]["F"] * ba * height(sp, age)


def step(stand, climate, rotation, managed, fell=True):
    """Advances one stand class by one year; returns (harvested, dead) m3/ha."""
    sp, p = stand["species"], SPECIES[stand["species"]]
    age, ba, dw = stand["age"], stand["ba"], stand["dw"]
    gdd, precip, temp = climate
    # growth
    f_t = max(0.2, 1 + p["gamma"] * (gdd - GDD_REF) / 1000)
    f_w = min(1.0, precip / (WATER_PER_GDD * max(gdd, 1.0))) ** p["delta"]
    ba += p["r"] * f_t * f_w * math.exp(-age / p["tau"]) * ba * (1 - ba / p["Bmax"])
    # mortality
    crowding = max(0.0, (ba / p["Bmax"] - 0.7) / 0.3)
    m_crowd = 0.03 * crowding**2
    m_beetle = 0.0
    if sp == "spruce" and age >= 40:
        m_beetle = 0.004 * max(0.0, gdd - 1600) / 400
    m_other = p["m0"] + 0.01 * max(0.0, age - p["Asen"]) / 50 + m_beetle
    h = height(sp, age)
    stem = p["F"] * ba * h  # standing volume before mortality
    # crowding kills small suppressed trees: half their basal-area share in volume
    dead = stem * (0.5 * m_crowd + m_other)
    salvaged = stem * m_beetle * 0.5 if managed else 0.0
    ba -= min(0.3, m_crowd + m_other) * ba
    # deadwood decay, then new inputs
    dw = dw * max(0.0, 1 - p["kd"] * 2 ** ((temp - 5.0) / 10)) + dead - salvaged
    harvested = salvaged
    # management
    if managed and fell and age >= rotation:
        felled = p["F"] * ba * h
        harvested += felled * 0.97
        dw = 0.75 * dw + 0.03 * felled
        age, ba = 0.0, REGEN_B
    elif managed and 15 <= age < rotation - 10 and ba > p["trigger"]:
        removed = p["F"] * (ba - p["target"]) * h
        harvested += removed * 0.98
        dw += 0.02 * removed
        ba = p["target"]
    stand["age"], stand["ba"], stand["dw"] = age + 1, ba, dw
    return harvested, dead


def rotation_of(sp, management):
    base = SPECIES[sp]["rotation"]
    return base + EXTENSION_Y if management == "extended-rotation" else base


def initial_landscape(region, baseline):
    """Spins up the initial stand classes under the baseline climate."""
    if region not in LANDSCAPES:
        raise UserError(f"no initial landscape for region '{region}' "
                        f"(valid: {', '.join(LANDSCAPES)})")
    land = LANDSCAPES[region]
    stands = []
    for sp, share in land["species"].items():
        rotation = rotation_of(sp, "business-as-usual")
        weights = [w * (OVERDUE if 5 + 10 * i >= rotation else 1.0)
                   for i, w in enumerate(land["ages"])]
        for i, weight in enumerate(weights):
            mid_age = 5 + 10 * i
            st = {"species": sp, "stand": f"{sp}-{mid_age:03d}", "age": 0.0, "ba": REGEN_B,
                  "dw": LEGACY_DEADWOOD, "area": share * weight / sum(weights)}
            # spin-up: business-as-usual thinnings, no clear-cut (these classes exist today)
            for _ in range(mid_age):
                step(st, baseline, rotation, managed=True, fell=False)
            stands.append(st)
    return stands


def read_drivers(path, year):
    rows, _ = read_csv(path, "drivers", DRIVER_COLUMNS)
    by_year = {}
    for n, row in enumerate(rows, start=1):
        y = number(row, "year", path, n, int)
        by_year[y] = (number(row, "gdd5", path, n), number(row, "precip_mm", path, n),
                      number(row, "temp_mean_c", path, n))
    scenarios = {r["scenario"] for r in rows}
    regions = {r["region"] for r in rows}
    if len(scenarios) != 1 or len(regions) != 1:
        raise UserError(f"drivers file {path} mixes scenarios or regions")
    missing = [y for y in range(year, year + 10) if y not in by_year]
    if missing:
        raise UserError(f"drivers file {path} has no year {missing[0]} "
                        f"(a decade from {year} needs {year}..{year + 9})")
    first = rows[0]
    baseline = tuple(number(first, col, path, 1)
                     for col in ("gdd5_baseline", "precip_baseline_mm", "temp_baseline_c"))
    return scenarios.pop(), regions.pop(), by_year, baseline


def read_state(path, scenario, management, year):
    rows, _ = read_csv(path, "state", STATE_COLUMNS)
    stands = []
    for n, row in enumerate(rows, start=1):
        if row["scenario"] != scenario:
            raise UserError(f"state file {path} is for scenario {row['scenario']}, "
                            f"the drivers for {scenario}")
        if row["management"] != management:
            raise UserError(f"state file {path} is for management {row['management']}, "
                            f"not {management}")
        y = number(row, "year", path, n, int)
        if y != year - 10:
            raise UserError(f"state file {path} is for decade {y}; "
                            f"decade {year} needs the state of {year - 10}")
        if row["species"] not in SPECIES:
            raise UserError(f"state file {path}: unknown species {row['species']!r} "
                            f"(valid: {', '.join(SPECIES)})")
        stands.append({"species": row["species"], "stand": row["stand"],
                       "area": number(row, "area_share", path, n),
                       "ba": number(row, "basal_area_m2ha", path, n),
                       "age": number(row, "mean_age_y", path, n),
                       "dw": number(row, "deadwood_m3ha", path, n)})
    return stands


def simulate(stands, management, climate_years):
    managed = management != "set-aside"
    for st in stands:
        st["harvest"] = st["mortality"] = 0.0
    for climate in climate_years:
        for st in stands:
            h, d = step(st, climate, rotation_of(st["species"], management), managed)
            st["harvest"] += h
            st["mortality"] += d


def main(argv=None):
    p = argument_parser(
        "forest_structure.py",
        "One decade of pine/spruce/birch stand-class dynamics under climate drivers "
        "and a management regime; writes the state at the end of the decade. Demonstration model.",
        {"--drivers": "annual drivers CSV from climate_ingest.py",
         "--management": ", ".join(MANAGEMENTS),
         "--year": "first year of the decade, e.g. 2030",
         "--state": "previous decade's stands.csv, or '' to initialise the landscape",
         "--out": "output CSV (stand classes)"},
    )
    a = p.parse_args(argv)
    if a.management not in MANAGEMENTS:
        raise UserError(f"unknown management '{a.management}' (valid: {', '.join(MANAGEMENTS)})")
    try:
        year = int(a.year)
    except ValueError:
        raise UserError(f"--year must be a whole year like 2030, not '{a.year}'")
    scenario, region, by_year, baseline = read_drivers(a.drivers, year)
    if a.state == "":
        stands = initial_landscape(region, baseline)
    else:
        stands = read_state(a.state, scenario, a.management, year)
    climate = [by_year[y] for y in range(year, year + 10)]
    simulate(stands, a.management, climate)
    mean = [sum(c[i] for c in climate) / len(climate) for i in range(3)]
    rows = []
    for st in stands:
        sp, age, ba = st["species"], st["age"], st["ba"]
        rows.append([
            scenario, a.management, year, region, sp, st["stand"], f"{st['area']:.6f}",
            f"{ba:.4f}", f"{volume(sp, age, ba):.2f}", f"{age:.0f}", f"{st['dw']:.4f}",
            f"{height(sp, age):.2f}", f"{st['harvest']:.2f}", f"{st['mortality']:.2f}",
            f"{mean[0]:.0f}", f"{mean[1]:.0f}", f"{mean[2]:.2f}",
        ])
    write_atomically(a.out, OUT_COLUMNS, rows)
    return 0


if __name__ == "__main__":
    run(main)
