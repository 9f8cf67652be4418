"""Stand-in: writes the experiment configuration."""
import argparse, json

p = argparse.ArgumentParser()
p.add_argument("--expid", required=True)
p.add_argument("--resolution", required=True)
p.add_argument("--out", required=True)
a = p.parse_args()
with open(a.out, "w") as f:
    json.dump({"expid": a.expid, "resolution": a.resolution, "timestep_s": 900}, f)
