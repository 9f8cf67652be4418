"""Stand-in: ensemble suitability (mean of the models) on a scenario's climate grid."""
import argparse, csv, json, math

p = argparse.ArgumentParser()
p.add_argument("--species", required=True)
p.add_argument("--scenario", required=True)
p.add_argument("--climate", required=True)
p.add_argument("--out", required=True)
p.add_argument("models", nargs="+")
a = p.parse_args()
models = [json.load(open(m)) for m in a.models]

def suitability(model, row):
    zt = (float(row["tmean"]) - model["tmean"][0]) / model["tmean"][1]
    zp = (float(row["precip"]) - model["precip"][0]) / model["precip"][1]
    return math.exp(-0.5 * (zt * zt + zp * zp))

with open(a.out, "w") as f:
    f.write("species,scenario,lon,lat,suitability\n")
    for row in csv.DictReader(open(a.climate)):
        s = sum(suitability(m, row) for m in models) / len(models)
        f.write(f"{a.species},{a.scenario},{row['lon']},{row['lat']},{s:.4f}\n")
