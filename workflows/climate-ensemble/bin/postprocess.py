"""Stand-in: monthly indicators (selected variables) from model fields."""
import argparse, csv

p = argparse.ArgumentParser()
p.add_argument("--fields", required=True)
p.add_argument("--variables", nargs="+", required=True)
p.add_argument("--out", required=True)
a = p.parse_args()
row = next(csv.DictReader(open(a.fields)))
with open(a.out, "w") as f:
    f.write("chunk,member,variable,value\n")
    for v in a.variables:
        f.write(f"{row['chunk']},{row['member']},{v},{row[v]}\n")
