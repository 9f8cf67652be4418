"""Bird-biodiversity twin of the forest-bird demonstration: habitat models.

DEMONSTRATION MODEL - illustrative coefficients, not for decisions.

Reads one ``stands.csv`` of the forest twin (stand classes with area shares)
and computes landscape covariates as area-weighted means over the classes
(the predictor names used in MODELS):

    V100   mean standing volume, per 100 m3/ha
    VS100  spruce standing volume per landscape hectare, per 100 m3/ha
    AGE10  mean stand age, per 10 years
    DW10   deadwood, per 10 m3/ha
    DWS10, DWB10   spruce / birch deadwood per landscape hectare, per 10 m3/ha
    SP, PI, BI     spruce, pine and birch shares of the standing volume (0..1)
    CON    conifer share of the standing volume, SP + PI
    MIX    tree-species mixture, 1 - (SP^2 + PI^2 + BI^2)  (0 = one species)
    OLDS, OLDP     landscape area share of spruce / pine classes aged >= 80 years
    OLD    landscape area share of classes aged >= 80 years
    YOUNG  landscape area share of classes aged < 20 years
    dG     (decade mean GDD5 - 1300) / 1000: warming above the 1981-2010 level

For each bird species a logistic regression gives the probability that the
species occupies a landscape unit of this structure:

    p = 1 / (1 + exp(-(b0 + sum_i b_i * x_i)))

with b0 and b_i in MODELS. Expected species richness is the sum of the
occupancy probabilities (the expected number of the modelled species present).
The shapes follow Finnish forest-bird habitat studies (old spruce for Siberian
jay, old pine for capercaillie, spruce deadwood for three-toed woodpecker,
spruce volume for goldcrest, deadwood and mixed old forest for willow tit, old
conifer forest for crested tit, large trees for treecreeper, birch deadwood for
lesser spotted woodpecker, young open forest for tree pipit); northern species
get a negative warming term. The numbers are illustrative, see the README.

Output ``richness.csv``: one row with scenario, management, year, p_<species>
for every species, expected_richness, n_species, the landscape covariates
(volume_m3ha, mean_age_y, deadwood_m3ha, spruce/pine/birch_share,
old_forest_share, young_forest_share, gdd5_mean) and region.

Exit status 2 with a one-line ``error: ...`` on stderr for a missing or
malformed stands file.
"""

import math

from twin_io import UserError, argument_parser, number, read_csv, run, write_atomically

# (name, intercept, {covariate: coefficient}); covariates as computed in covariates().
MODELS = [
    ("siberian_jay", -3.2, {"OLDS": 7.0, "V100": 0.4, "dG": -1.5}),
    ("capercaillie", -2.8, {"OLDP": 4.0, "PI": 1.5, "AGE10": 0.12, "dG": -0.8}),
    ("three_toed_woodpecker", -3.4, {"DWS10": 0.9, "SP": 2.0, "dG": -0.8}),
    ("goldcrest", -0.8, {"VS100": 2.2}),
    ("willow_tit", -2.6, {"DW10": 0.35, "MIX": 3.0, "AGE10": 0.10, "dG": -0.6}),
    ("crested_tit", -2.3, {"OLD": 2.0, "CON": 1.5, "AGE10": 0.08}),
    ("eurasian_treecreeper", -1.8, {"V100": 0.9, "OLD": 1.0}),
    ("lesser_spotted_woodpecker", -2.8, {"DWB10": 1.5, "BI": 3.0}),
    ("tree_pipit", -0.4, {"YOUNG": 5.0, "V100": -0.6}),
]

STAND_COLUMNS = ("scenario", "management", "year", "species", "area_share",
                 "volume_m3ha", "mean_age_y", "deadwood_m3ha", "gdd5_mean")
COVARIATE_COLUMNS = [
    ("volume_m3ha", "V"), ("mean_age_y", "AGE"), ("deadwood_m3ha", "DW"),
    ("spruce_share", "SP"), ("pine_share", "PI"), ("birch_share", "BI"),
    ("old_forest_share", "OLD"), ("young_forest_share", "YOUNG"), ("gdd5_mean", "GDD"),
]
OLD_AGE, YOUNG_AGE, GDD_REF = 80.0, 20.0, 1300.0


def read_stands(path):
    rows, _ = read_csv(path, "stands", STAND_COLUMNS)
    stands = []
    for n, row in enumerate(rows, start=1):
        rec = {"species": row["species"]}
        for col in ("area_share", "volume_m3ha", "mean_age_y", "deadwood_m3ha", "gdd5_mean"):
            rec[col] = number(row, col, path, n)
        stands.append(rec)
    for key in ("scenario", "management", "year"):
        if len({r[key] for r in rows}) != 1:
            raise UserError(f"stands file {path} mixes several values of {key}")
    area = sum(s["area_share"] for s in stands)
    if area <= 0:
        raise UserError(f"stands file {path}: area shares sum to zero")
    region = rows[0].get("region") or ""
    return rows[0]["scenario"], rows[0]["management"], rows[0]["year"], region, stands, area


def covariates(stands, area):
    def wsum(value, keep=lambda s: True):
        return sum(s["area_share"] * value(s) for s in stands if keep(s)) / area

    def is_(sp):
        return lambda s: s["species"] == sp

    v = wsum(lambda s: s["volume_m3ha"])
    vol = {sp: wsum(lambda s: s["volume_m3ha"], is_(sp)) for sp in ("spruce", "pine", "birch")}
    share = {sp: (vol[sp] / v if v > 0 else 0.0) for sp in vol}

    def one(s):
        return 1.0

    c = {
        "V": v,
        "AGE": wsum(lambda s: s["mean_age_y"]),
        "DW": wsum(lambda s: s["deadwood_m3ha"]),
        "SP": share["spruce"], "PI": share["pine"], "BI": share["birch"],
        "OLD": wsum(one, lambda s: s["mean_age_y"] >= OLD_AGE),
        "YOUNG": wsum(one, lambda s: s["mean_age_y"] < YOUNG_AGE),
        "GDD": wsum(lambda s: s["gdd5_mean"]),
    }
    c.update({
        "V100": v / 100, "VS100": vol["spruce"] / 100, "AGE10": c["AGE"] / 10, "DW10": c["DW"] / 10,
        "DWS10": wsum(lambda s: s["deadwood_m3ha"], is_("spruce")) / 10,
        "DWB10": wsum(lambda s: s["deadwood_m3ha"], is_("birch")) / 10,
        "CON": share["spruce"] + share["pine"],
        "MIX": 1 - sum(x * x for x in share.values()),
        "OLDS": wsum(one, lambda s: s["species"] == "spruce" and s["mean_age_y"] >= OLD_AGE),
        "OLDP": wsum(one, lambda s: s["species"] == "pine" and s["mean_age_y"] >= OLD_AGE),
        "dG": (c["GDD"] - GDD_REF) / 1000,
    })
    return c


def occupancy(c):
    out = []
    for name, b0, terms in MODELS:
        eta = b0 + sum(b * c[x] for x, b in terms.items())
        out.append((name, 1 / (1 + math.exp(-eta))))
    return out


def main(argv=None):
    p = argument_parser(
        "bird_biodiversity.py",
        "Occupancy probabilities of Finnish forest birds from landscape structure "
        "(logistic habitat models) and expected species richness. Demonstration model.",
        {"--stands": "stands.csv from forest_structure.py", "--out": "output CSV (one row)"},
    )
    a = p.parse_args(argv)
    scenario, management, year, region, stands, area = read_stands(a.stands)
    c = covariates(stands, area)
    occ = occupancy(c)
    header = ["scenario", "management", "year"] + [f"p_{n}" for n, _ in occ]
    header += ["expected_richness", "n_species"] + [col for col, _ in COVARIATE_COLUMNS]
    row = [scenario, management, year] + [f"{p:.4f}" for _, p in occ]
    row += [f"{sum(p for _, p in occ):.4f}", len(occ)]
    row += [f"{c[key]:.4f}" if key in ("SP", "PI", "BI", "OLD", "YOUNG") else f"{c[key]:.2f}"
            for _, key in COVARIATE_COLUMNS]
    header.append("region")
    row.append(region)
    write_atomically(a.out, header, [row])
    return 0


if __name__ == "__main__":
    run(main)
