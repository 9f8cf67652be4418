"""Stand-in: suitable area (cells above 0.5) per species and scenario."""
import argparse, csv
from collections import Counter

p = argparse.ArgumentParser()
p.add_argument("--horizon", required=True)
p.add_argument("--out", required=True)
p.add_argument("projections", nargs="+")
a = p.parse_args()
area = Counter()
for path in a.projections:
    for row in csv.DictReader(open(path)):
        area[(row["species"], row["scenario"])] += float(row["suitability"]) > 0.5
with open(a.out, "w") as f:
    f.write("species,scenario,horizon,suitable_cells\n")
    for (species, scenario), cells in sorted(area.items()):
        f.write(f"{species},{scenario},{a.horizon},{cells}\n")
