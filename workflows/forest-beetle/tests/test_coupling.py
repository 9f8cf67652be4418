"""The forest-beetle twins couple correctly without twinflow.

DEMONSTRATION MODEL - illustrative numbers, not for decisions.

Starts forest.py and beetle.py concurrently on one temporary group directory,
as twinflow starts the members of a coupling group instance (with
TWINFLOW_GROUP_DIR, TWINFLOW_GROUP_MEMBERS and TWINFLOW_GROUP_MEMBER), and
checks that both finish, that their series agree year by year, that the
forest applied the beetle's damage going into the next year, and that a lone
member, a failed partner and a missing group directory fail with one clear
line. Run from anywhere:

    python3 -m unittest discover -s workflows/forest-beetle/tests -v

(tests/forest_beetle.rs runs it in the Rust test suite.)
"""

import csv
import os
import subprocess
import sys
import tempfile
import time
import unittest

TWINS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "twins")
FIRST, LAST = 2020, 2040


def twin(name, *args, env=None):
    return subprocess.Popen([sys.executable, os.path.join(TWINS, name), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)


def finish(proc, timeout=60):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def read(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


class Coupling(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.group = os.path.join(self.dir, "group")
        os.mkdir(self.group)
        self.drivers = os.path.join(self.dir, "drivers.csv")
        code, _, err = finish(twin("climate.py", "--scenario", "ssp585", "--first-year",
                                   str(FIRST), "--last-year", str(LAST), "--out", self.drivers))
        self.assertEqual(code, 0, err)

    def tearDown(self):
        self.tmp.cleanup()

    def env(self, member, members="forest,beetle", group_dir=True):
        env = dict(os.environ)
        for k in ("TWINFLOW_GROUP_DIR", "TWINFLOW_GROUP_MEMBERS", "TWINFLOW_GROUP_MEMBER"):
            env.pop(k, None)
        if group_dir:
            env["TWINFLOW_GROUP_DIR"] = self.group
        env["TWINFLOW_GROUP_MEMBERS"] = members
        env["TWINFLOW_GROUP_MEMBER"] = member
        return env

    def start(self, role, management="set-aside", wait="60", members="forest,beetle"):
        out = os.path.join(self.dir, f"{role}.csv")
        proc = twin(f"{role}.py", "--drivers", self.drivers, "--management", management,
                    "--wait", wait, "--out", out, env=self.env(role, members))
        return proc, out

    def test_members_run_concurrently_and_agree(self):
        forest, forest_out = self.start("forest")
        beetle, beetle_out = self.start("beetle")
        for proc in (forest, beetle):
            code, _, err = finish(proc)
            self.assertEqual((code, err), (0, ""))
        f, b = read(forest_out), read(beetle_out)
        years = list(range(FIRST, LAST + 1))
        self.assertEqual([int(r["year"]) for r in f], years)
        self.assertEqual([int(r["year"]) for r in b], years)
        damage = [float(r["beetle_damage_m3ha"]) for r in f]
        self.assertEqual(damage, [float(r["damage_m3ha"]) for r in b])
        self.assertGreater(max(damage), 0.1, "the beetle killed no spruce at all")
        # the forest applied year y's damage going into y + 1 (set-aside: no harvest)
        for now, nxt in zip(f, f[1:]):
            expected = (float(now["spruce_volume_m3ha"]) + float(now["growth_m3ha"])
                        - float(now["beetle_damage_m3ha"]) - float(now["harvest_m3ha"]))
            self.assertAlmostEqual(float(nxt["spruce_volume_m3ha"]), expected, delta=0.002)
        # the beetle saw the forest's state of the same year
        for fr, br in zip(f, b):
            self.assertEqual(fr["host_volume_m3ha"], br["host_volume_m3ha"])
            self.assertEqual(fr["breeding_material_m3ha"], br["breeding_material_m3ha"])
        # one message per member and year, nothing half-written left behind
        names = sorted(os.listdir(self.group))
        self.assertEqual(len(names), 2 * len(years))
        self.assertFalse([n for n in names if n.startswith(".")], names)
        # and the summary joins the two members' series
        table = os.path.join(self.dir, "summary.csv")
        code, out, err = finish(twin("summary.py", "--out", table, "--forest", forest_out,
                                     "--beetle", beetle_out))
        self.assertEqual(code, 0, err)
        self.assertIn("ssp585    set-aside", out)
        self.assertEqual(len(read(table)), len(years))

    def test_a_lone_member_times_out_with_a_clear_message(self):
        for role, partner in (("forest", "beetle"), ("beetle", "forest")):
            proc, out = self.start(role, wait="1")
            began = time.monotonic()
            code, _, err = finish(proc)
            self.assertLess(time.monotonic() - began, 30)
            self.assertEqual(code, 2)
            self.assertEqual(err, f"error: no {partner}-{FIRST}.json from the {partner} twin "
                                  f"after 1 s in {self.group} (is the {partner} twin running "
                                  "in the same coupling group?)\n")
            self.assertFalse(os.path.exists(out))
            for name in os.listdir(self.group):
                os.remove(os.path.join(self.group, name))

    def test_a_failed_partner_stops_the_other_member_at_once(self):
        # the beetle runs another management: it refuses the forest's first
        # message, and the forest stops long before its 60 s wait
        forest, _ = self.start("forest", management="set-aside")
        beetle, _ = self.start("beetle", management="business-as-usual")
        began = time.monotonic()
        code, _, err = finish(beetle)
        self.assertEqual(code, 2)
        self.assertIn(f"forest-{FIRST}.json is for management 'set-aside', this beetle twin "
                      "runs management 'business-as-usual'", err)
        code, _, err = finish(forest)
        self.assertEqual(code, 2)
        self.assertTrue(err.startswith("error: the beetle twin failed: "), err)
        self.assertLess(time.monotonic() - began, 30)

    def test_a_member_outside_a_group_is_refused(self):
        out = os.path.join(self.dir, "forest.csv")
        proc = twin("forest.py", "--drivers", self.drivers, "--management", "set-aside",
                    "--out", out, env=self.env("forest", group_dir=False))
        code, _, err = finish(proc)
        self.assertEqual(code, 2)
        self.assertIn("set TWINFLOW_GROUP_DIR", err)
        proc, _ = self.start("beetle", members="beetle")
        code, _, err = finish(proc)
        self.assertEqual((code, err), (2, "error: the beetle twin needs a partner, but its "
                                          "group has only beetle (TWINFLOW_GROUP_MEMBERS)\n"))


if __name__ == "__main__":
    unittest.main()
