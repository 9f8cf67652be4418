"""Stand-in: a climatic envelope (mean and tolerance) fitted to the occurrences."""
import argparse, csv, json, statistics

def nearest(layers, lon, lat):
    return min(layers, key=lambda r: (float(r["lon"]) - lon) ** 2 + (float(r["lat"]) - lat) ** 2)

p = argparse.ArgumentParser()
p.add_argument("--species", required=True)
p.add_argument("--algorithm", required=True)
p.add_argument("--records", required=True)
p.add_argument("--climate", required=True)
p.add_argument("--out", required=True)
a = p.parse_args()
layers = list(csv.DictReader(open(a.climate)))
cells = [nearest(layers, float(r["lon"]), float(r["lat"])) for r in csv.DictReader(open(a.records))]
t = [float(c["tmean"]) for c in cells]
w = [float(c["precip"]) for c in cells]
widen = 1.0 if a.algorithm == "maxent" else 1.3
model = {"species": a.species, "algorithm": a.algorithm,
         "tmean": [statistics.fmean(t), widen * max(statistics.pstdev(t), 1.0)],
         "precip": [statistics.fmean(w), widen * max(statistics.pstdev(w), 50.0)]}
json.dump(model, open(a.out, "w"))
