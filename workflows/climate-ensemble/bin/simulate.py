"""Stand-in: advances one member by one month from its restart (or initial state),
driven by the month's boundary forcing (sea-surface temperature anomaly, CO2)
read from the fetched STAC catalog: <forcing>/<YYYY-MM>/forcing.csv."""
import argparse, csv, json, math, os

p = argparse.ArgumentParser()
p.add_argument("--config", required=True)
p.add_argument("--member", required=True)
p.add_argument("--chunk", required=True)
p.add_argument("--initial", required=True)
p.add_argument("--restart", default="")  # empty at the first chunk
p.add_argument("--forcing", required=True)  # the STAC source: one directory per item
p.add_argument("--out-restart", required=True)
p.add_argument("--out-fields", required=True)
a = p.parse_args()
state = json.load(open(a.restart or a.initial))
month = state["month"] + 1
item = a.chunk[:7]  # the chunk 2030-03-01 is forced by item 2030-03
path = os.path.join(a.forcing, item, "forcing.csv")
rows = list(csv.DictReader(open(path)))
if not rows:
    raise SystemExit(f"{path}: no forcing rows")
sst = sum(float(r["sst"]) for r in rows) / len(rows)
co2 = sum(float(r["co2"]) for r in rows) / len(rows)
print(f"chunk {a.chunk} member {a.member}: forcing {item} from {path}: sst {sst:+.3f} K, co2 {co2:.2f} ppm")
anomaly = 0.9 * state["t_anomaly"] + 0.02 * month / 12 + 0.5 * sst + 0.01 * (co2 - 428.0)
seasonal = 10 * math.sin(2 * math.pi * (int(a.chunk[5:7]) - 4) / 12)
with open(a.out_restart, "w") as f:
    json.dump({**state, "t_anomaly": anomaly, "month": month, "forcing": item}, f)
with open(a.out_fields, "w") as f:
    f.write("chunk,member,tas,pr,sfcWind\n")
    f.write(f"{a.chunk},{a.member},{14 + seasonal + anomaly:.3f},{2.5 - 0.05 * seasonal:.3f},{5 + 0.1 * anomaly:.3f}\n")
