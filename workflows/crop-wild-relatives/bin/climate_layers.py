"""Stand-in: a coarse grid of annual mean temperature and precipitation for a scenario."""
import argparse

WARMING = {"historical": 0.0, "ssp126": 1.4, "ssp370": 2.8, "ssp585": 4.0}
p = argparse.ArgumentParser()
p.add_argument("--scenario", required=True)
p.add_argument("--horizon", type=int, default=2000)
p.add_argument("--out", required=True)
a = p.parse_args()
dt = WARMING[a.scenario]
with open(a.out, "w") as f:
    f.write("lon,lat,tmean,precip\n")
    for lon in range(-20, 100, 5):
        for lat in range(0, 60, 5):
            tmean = 28 - 0.45 * lat + dt
            precip = 900 + 8 * ((lon * 7 + lat * 3) % 60) - 25 * dt
            f.write(f"{lon},{lat},{tmean:.2f},{precip:.1f}\n")
