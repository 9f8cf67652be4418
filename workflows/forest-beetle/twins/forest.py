"""Forest twin of the forest-beetle demonstration: a spruce landscape that
grows, is harvested and is killed by bark beetles, one year at a time, coupled
every year to the beetle twin (beetle.py) through the coupling group directory.

DEMONSTRATION MODEL - illustrative numbers, not for decisions.

State at the start of year y (per hectare of spruce-dominated forest):
V spruce volume (m3/ha), A mean stand age (years), B breeding material
(fresh dead spruce left in the forest, m3/ha). With the year's mean
temperature T and drought index d from the drivers file:

    stress   S = min(0.9, aT * max(0, T - Topt) + aD * d)
    hosts    Vh = V / (1 + exp(-(A - A50) / s50))      (old spruce is the host)
    -> forest-<y>.json: V, Vh, A, S, B
    <- beetle-<y>.json: damage D (m3/ha of spruce killed in year y)
    growth   G = r * (1 - S) * V * (1 - V / K)          (logistic, stress slows it)
    managed  (business-as-usual): clear-cut a share c = 1/rotation of the area a
             year, harvesting H = c * hc * V; salvage sigma of the killed volume
    set-aside: c = 0, no salvage
    V <- max(1, V + G - D - H)        (salvage takes dead wood, not living volume)
    A <- max(0, A + 1 - c * rotation - (D / V) * A)
             (felled and killed stands regrow from age 0)
    B <- w * V + (1 - sigma) * D     (windthrow, weakened trees, unsalvaged kills)

Output (--out): one row per year: scenario, management, year, and the state
at the start of the year and the year's fluxes (see COLUMNS).
Exit status 2 with one line ``error: ...`` on stderr for bad input, a beetle
message that does not come within --wait seconds, or a failed beetle twin.
"""

import math

from climate import read_drivers
from coupling import announce_failure, open_group, wait_message, write_message
from twin_io import UserError, argument_parser, run, write_atomically

MANAGEMENTS = ("business-as-usual", "set-aside")
V0, A0, B0 = 180.0, 50.0, 1.0          # initial volume, mean age, breeding material
R, K = 0.06, 450.0                     # logistic growth rate (1/y), carrying capacity (m3/ha)
TOPT, A_T, A_D, S_MAX = 6.0, 0.10, 1.2, 0.9   # stress: optimum temperature, sensitivities
A50, S50 = 60.0, 10.0                  # host share: half of the volume is host at age 60
ROTATION, HC = 70.0, 1.6               # business-as-usual rotation, felled/mean volume
SALVAGE = 0.8                          # business-as-usual: share of killed volume salvaged
WINDTHROW = 0.004                      # share of the volume that falls or weakens each year
COLUMNS = ["scenario", "management", "year", "spruce_volume_m3ha", "host_volume_m3ha",
           "stand_age_y", "stress", "breeding_material_m3ha", "growth_m3ha",
           "beetle_damage_m3ha", "harvest_m3ha", "salvage_m3ha"]


def stress(temp, drought):
    return min(S_MAX, A_T * max(0.0, temp - TOPT) + A_D * drought)


def host_volume(volume, age):
    return volume / (1 + math.exp(-(age - A50) / S50))


def advance(state, s, damage, managed):
    """Applies the year's growth, harvest and beetle damage; returns the fluxes."""
    v, a = state["V"], state["A"]
    growth = R * (1 - s) * v * (1 - v / K)
    cut = 1 / ROTATION if managed else 0.0
    harvest = cut * HC * v
    salvage = SALVAGE * damage if managed else 0.0
    killed = min(1.0, damage / v)
    state["V"] = max(1.0, v + growth - damage - harvest)
    state["A"] = max(0.0, a + 1 - cut * ROTATION - killed * a)
    state["B"] = WINDTHROW * state["V"] + damage - salvage
    return growth, harvest, salvage


def main(argv=None):
    p = argument_parser(
        "forest.py",
        "Yearly spruce growth, harvest and bark-beetle damage, coupled every year to "
        "beetle.py through the coupling group directory. Demonstration model.",
        {"--drivers": "annual drivers CSV from climate.py",
         "--management": ", ".join(MANAGEMENTS),
         "--out": "output CSV (one row per year)"},
    )
    p.add_argument("--group-dir", help="the group directory (default: $TWINFLOW_GROUP_DIR)")
    p.add_argument("--wait", type=float, default=120.0,
                   help="seconds to wait for each beetle message (default 120)")
    a = p.parse_args(argv)
    if a.management not in MANAGEMENTS:
        raise UserError(f"unknown management '{a.management}' (valid: {', '.join(MANAGEMENTS)})")
    scenario, years = read_drivers(a.drivers)
    group = open_group(a.group_dir, "forest", "beetle", scenario, a.management, a.wait)
    try:
        rows = simulate(group, scenario, a.management, years)
    except UserError as e:
        announce_failure(group, e)
        raise
    write_atomically(a.out, COLUMNS, rows)
    return 0


def simulate(group, scenario, management, years):
    state = {"V": V0, "A": A0, "B": B0}
    rows = []
    for year, temp, _gdd, drought in years:
        s = stress(temp, drought)
        hosts = host_volume(state["V"], state["A"])
        before = dict(state)
        write_message(group, year, {"spruce_volume_m3ha": state["V"], "host_volume_m3ha": hosts,
                                    "stand_age_y": state["A"], "stress": s,
                                    "breeding_material_m3ha": state["B"]})
        damage = wait_message(group, year, ["damage_m3ha"])["damage_m3ha"]
        if damage > hosts + 1e-9:
            raise UserError(f"beetle-{year}.json: damage {damage:.3f} m3/ha exceeds the "
                            f"{hosts:.3f} m3/ha of host spruce")
        growth, harvest, salvage = advance(state, s, damage, management != "set-aside")
        rows.append([scenario, management, year, f"{before['V']:.3f}", f"{hosts:.3f}",
                     f"{before['A']:.2f}", f"{s:.4f}", f"{before['B']:.4f}", f"{growth:.4f}",
                     f"{damage:.6f}", f"{harvest:.4f}", f"{salvage:.4f}"])
    return rows


if __name__ == "__main__":
    run(main)
