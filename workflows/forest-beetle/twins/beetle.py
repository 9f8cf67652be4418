"""Bark-beetle twin of the forest-beetle demonstration: the European spruce
bark beetle (Ips typographus) population and the spruce it kills, one year at a
time, coupled every year to the forest twin (forest.py) through the coupling
group directory.

DEMONSTRATION MODEL - illustrative numbers, not for decisions.

State: N, the beetle population at the start of year y (an index: 1 is the
endemic level). With the year's thermal sum GDD5 from the drivers file and the
forest's message for the year (host spruce Vh, stress S, breeding material B):

    <- forest-<y>.json: Vh, S, B
    generations  g = min(3, max(0, (GDD5 - G_swarm) / G_gen))   (voltinism)
    defence      Nc = N_crit * (1 - c_S * S)       (stressed trees resist less)
    attack       p = N^2 / (N^2 + Nc^2)            (mass attack above the threshold)
    damage       D = m * p * Vh                    (m3/ha of spruce killed)
    -> beetle-<y>.json: N, g, p, D
    brood        Q = B + D + Q0                    (fresh dead spruce to breed in)
    population   N <- N_imm + N * lambda^g * exp(-N / (kappa * Q))   (Ricker)

Output (--out): one row per year: scenario, management, year, N, g, p, D and
the forest state the beetle saw (see COLUMNS).
Exit status 2 with one line ``error: ...`` on stderr for bad input, a forest
message that does not come within --wait seconds, or a failed forest twin.
"""

import math

from climate import read_drivers
from coupling import announce_failure, open_group, wait_message, write_message
from twin_io import UserError, argument_parser, run, write_atomically

MANAGEMENTS = ("business-as-usual", "set-aside")
N0 = 1.0                           # initial population (endemic)
G_SWARM, G_GEN = 610.0, 557.0      # GDD5 before swarming, per generation
N_CRIT, C_S = 80.0, 0.8            # mass-attack threshold, its reduction by stress
M = 0.2                            # most of the host volume killed in a year
Q0, KAPPA = 0.5, 4.0               # background breeding material, beetles per m3
LAMBDA, N_IMM = 2.0, 0.5           # increase per generation, immigration
COLUMNS = ["scenario", "management", "year", "population", "generations", "attack_success",
           "damage_m3ha", "host_volume_m3ha", "stress", "breeding_material_m3ha"]
FOREST_FIELDS = ["spruce_volume_m3ha", "host_volume_m3ha", "stand_age_y", "stress",
                 "breeding_material_m3ha"]


def generations(gdd5):
    return min(3.0, max(0.0, (gdd5 - G_SWARM) / G_GEN))


def attack(n, hosts, s):
    """(attack success, damage m3/ha) of population n on hosts under stress s."""
    threshold = N_CRIT * (1 - C_S * min(1.0, s))
    success = n * n / (n * n + threshold * threshold)
    return success, M * success * hosts


def reproduce(n, g, breeding, damage):
    q = breeding + damage + Q0
    return N_IMM + n * LAMBDA**g * math.exp(-n / (KAPPA * q))


def main(argv=None):
    p = argument_parser(
        "beetle.py",
        "Yearly spruce bark-beetle population and damage, coupled every year to forest.py "
        "through the coupling group directory. Demonstration model.",
        {"--drivers": "annual drivers CSV from climate.py",
         "--management": ", ".join(MANAGEMENTS),
         "--out": "output CSV (one row per year)"},
    )
    p.add_argument("--group-dir", help="the group directory (default: $TWINFLOW_GROUP_DIR)")
    p.add_argument("--wait", type=float, default=120.0,
                   help="seconds to wait for each forest message (default 120)")
    a = p.parse_args(argv)
    if a.management not in MANAGEMENTS:
        raise UserError(f"unknown management '{a.management}' (valid: {', '.join(MANAGEMENTS)})")
    scenario, years = read_drivers(a.drivers)
    group = open_group(a.group_dir, "beetle", "forest", scenario, a.management, a.wait)
    try:
        rows = simulate(group, scenario, a.management, years)
    except UserError as e:
        announce_failure(group, e)
        raise
    write_atomically(a.out, COLUMNS, rows)
    return 0


def simulate(group, scenario, management, years):
    n = N0
    rows = []
    for year, _temp, gdd5, _drought in years:
        forest = wait_message(group, year, FOREST_FIELDS)
        hosts, s = forest["host_volume_m3ha"], forest["stress"]
        breeding = forest["breeding_material_m3ha"]
        g = generations(gdd5)
        success, damage = attack(n, hosts, s)
        write_message(group, year, {"population": n, "generations": g,
                                    "attack_success": success, "damage_m3ha": damage})
        rows.append([scenario, management, year, f"{n:.4f}", f"{g:.3f}", f"{success:.4f}",
                     f"{damage:.6f}", f"{hosts:.3f}", f"{s:.4f}", f"{breeding:.4f}"])
        n = reproduce(n, g, breeding, damage)
    return rows


if __name__ == "__main__":
    run(main)
