"""Stand-in: synthetic cleaned occurrence records (lon, lat) for one species."""
import argparse, random, zlib

p = argparse.ArgumentParser()
p.add_argument("--species", required=True)
p.add_argument("--min-records", type=int, default=30)
p.add_argument("--out", required=True)
a = p.parse_args()
rng = random.Random(zlib.crc32(a.species.encode()))
centre_lon, centre_lat = rng.uniform(-10, 80), rng.uniform(10, 45)
n = max(a.min_records, rng.randint(40, 120))
with open(a.out, "w") as f:
    f.write("species,lon,lat\n")
    for _ in range(n):
        f.write(f"{a.species},{centre_lon + rng.gauss(0, 4):.3f},{centre_lat + rng.gauss(0, 3):.3f}\n")
