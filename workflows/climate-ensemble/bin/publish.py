"""Stand-in: records the publication of a chunk's statistics."""
import argparse, hashlib, json

p = argparse.ArgumentParser()
p.add_argument("--chunk", required=True)
p.add_argument("--stats", required=True)
p.add_argument("--out", required=True)
a = p.parse_args()
data = open(a.stats, "rb").read()
with open(a.out, "w") as f:
    json.dump({"chunk": a.chunk, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}, f)
