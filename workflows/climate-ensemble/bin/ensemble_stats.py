"""Stand-in: mean and spread across members of each indicator."""
import argparse, csv, statistics
from collections import defaultdict

p = argparse.ArgumentParser()
p.add_argument("--chunk", required=True)
p.add_argument("--out", required=True)
p.add_argument("members", nargs="+")
a = p.parse_args()
values = defaultdict(list)
for path in a.members:
    for row in csv.DictReader(open(path)):
        values[row["variable"]].append(float(row["value"]))
with open(a.out, "w") as f:
    f.write("chunk,variable,members,mean,spread\n")
    for var, xs in sorted(values.items()):
        spread = statistics.pstdev(xs) if len(xs) > 1 else 0.0
        f.write(f"{a.chunk},{var},{len(xs)},{statistics.fmean(xs):.4f},{spread:.4f}\n")
