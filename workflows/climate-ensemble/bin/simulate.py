"""Stand-in: advances one member by one month from its restart (or initial state)."""
import argparse, json, math

p = argparse.ArgumentParser()
p.add_argument("--config", required=True)
p.add_argument("--member", required=True)
p.add_argument("--chunk", required=True)
p.add_argument("--initial", required=True)
p.add_argument("--restart", default="")  # empty at the first chunk
p.add_argument("--out-restart", required=True)
p.add_argument("--out-fields", required=True)
a = p.parse_args()
state = json.load(open(a.restart or a.initial))
month = state["month"] + 1
anomaly = 0.9 * state["t_anomaly"] + 0.02 * month / 12
seasonal = 10 * math.sin(2 * math.pi * (int(a.chunk[5:7]) - 4) / 12)
with open(a.out_restart, "w") as f:
    json.dump({**state, "t_anomaly": anomaly, "month": month}, f)
with open(a.out_fields, "w") as f:
    f.write("chunk,member,tas,pr,sfcWind\n")
    f.write(f"{a.chunk},{a.member},{14 + seasonal + anomaly:.3f},{2.5 - 0.05 * seasonal:.3f},{5 + 0.1 * anomaly:.3f}\n")
