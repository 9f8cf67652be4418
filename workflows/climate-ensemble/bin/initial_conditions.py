"""Stand-in: perturbed initial state of one ensemble member."""
import argparse, json, zlib

p = argparse.ArgumentParser()
p.add_argument("--config", required=True)
p.add_argument("--member", required=True)
p.add_argument("--out", required=True)
a = p.parse_args()
config = json.load(open(a.config))
perturbation = (zlib.crc32(a.member.encode()) % 1000) / 1000.0 - 0.5
with open(a.out, "w") as f:
    json.dump({"member": a.member, "expid": config["expid"], "t_anomaly": 0.1 * perturbation, "month": 0}, f)
