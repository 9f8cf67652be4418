"""The coupling protocol of the forest-beetle demonstration: yearly messages
through the coupling group's shared directory.

DEMONSTRATION MODEL - illustrative numbers, not for decisions.

forest.py and beetle.py are the two members of one twinflow coupling group
(``group:`` in forest-beetle.yaml). twinflow starts them together and gives
both the same directory in ``TWINFLOW_GROUP_DIR``, the member step names in
``TWINFLOW_GROUP_MEMBERS`` and the member's own step name in
``TWINFLOW_GROUP_MEMBER``. For every simulated year y:

    forest  writes  forest-<y>.json  (the stand state at the start of year y)
    beetle  waits for it, computes the year's attack, writes beetle-<y>.json
    forest  waits for beetle-<y>.json and applies the damage going into y+1

Every message is written to a temporary file in the directory and renamed
into place (``write_message``), so a reader sees a whole file or none.
``wait_message`` polls for the partner's file (1 ms, doubling to 50 ms) up to
a timeout, then fails with ``no <file> from the <partner> twin after <s> s``.
A twin that fails writes ``<role>-failed.json`` with its error
(``announce_failure``), so that its partner stops at once with
``the <partner> twin failed: <error>`` instead of waiting for the timeout.

Each message carries scenario, management and year, and the reader checks
them: a file of another instance (a wrong directory) is an error, not data.
The twins are deterministic, so a file left in the directory by an earlier
attempt of the same instance holds the values this attempt would write.

Not a program itself; owns the group directory, the message files and the
waiting, nothing about what the twins compute.
"""

import json
import math
import os
import re
import time

from twin_io import UserError, reason

POLL_FIRST_S, POLL_MAX_S = 0.001, 0.05


class Group:
    """This member's view of its coupling group: the shared directory, its
    own role (``forest`` or ``beetle``), its partner's role, and the key
    (scenario, management) that every message must carry."""

    def __init__(self, directory, role, partner, scenario, management, timeout_s):
        self.dir, self.role, self.partner = directory, role, partner
        self.key = {"scenario": scenario, "management": management}
        self.timeout_s = timeout_s


def group_members(environ=None):
    """(own member name or None, [member names]) from TWINFLOW_GROUP_MEMBER and
    TWINFLOW_GROUP_MEMBERS (names separated by commas or white space)."""
    env = os.environ if environ is None else environ
    members = [m for m in re.split(r"[,\s]+", env.get("TWINFLOW_GROUP_MEMBERS", "")) if m]
    return env.get("TWINFLOW_GROUP_MEMBER") or None, members


def open_group(group_dir, role, partner, scenario, management, timeout_s, environ=None):
    """Checks the group directory (``--group-dir``, else ``$TWINFLOW_GROUP_DIR``)
    and the members twinflow announced; returns a Group."""
    env = os.environ if environ is None else environ
    directory = group_dir or env.get("TWINFLOW_GROUP_DIR", "")
    if not directory:
        raise UserError(f"the {role} twin runs in a coupling group: set TWINFLOW_GROUP_DIR "
                        "(twinflow does, for a step with `group:`) or pass --group-dir")
    if not os.path.isdir(directory):
        raise UserError(f"group directory {directory} is not a directory")
    me, members = group_members(env)
    if members and len(members) < 2:
        raise UserError(f"the {role} twin needs a partner, but its group has only "
                        f"{', '.join(members)} (TWINFLOW_GROUP_MEMBERS)")
    if me and members and me not in members:
        raise UserError(f"TWINFLOW_GROUP_MEMBER {me} is not in TWINFLOW_GROUP_MEMBERS "
                        f"({', '.join(members)})")
    if not timeout_s > 0:
        raise UserError(f"--wait must be a positive number of seconds, not {timeout_s}")
    return Group(directory, role, partner, scenario, management, timeout_s)


def message_path(group, role, year):
    return os.path.join(group.dir, f"{role}-{year}.json")


def write_message(group, year, values):
    """Writes this member's message for the year atomically."""
    write_json(message_path(group, group.role, year), {**group.key, "year": year, **values})


def write_json(path, data):
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.tmp{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, sort_keys=True)
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise UserError(f"cannot write {path}: {reason(e)}")


def read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as e:
        raise UserError(f"cannot read {path}: {reason(e)}")
    except ValueError as e:
        raise UserError(f"{path} is not valid json ({str(e).lower()})")


def wait_message(group, year, fields, sleep=time.sleep, clock=time.monotonic):
    """Waits for the partner's message for the year and returns it; checks its
    key, year and that it has the numeric ``fields``."""
    path = message_path(group, group.partner, year)
    failed = os.path.join(group.dir, f"{group.partner}-failed.json")
    deadline = clock() + group.timeout_s
    pause = POLL_FIRST_S
    while not os.path.exists(path):
        if os.path.exists(failed):
            error = read_json(failed).get("error", "no reason given")
            raise UserError(f"the {group.partner} twin failed: {error}")
        if clock() >= deadline:
            raise UserError(f"no {os.path.basename(path)} from the {group.partner} twin after "
                            f"{group.timeout_s:g} s in {group.dir} (is the {group.partner} "
                            "twin running in the same coupling group?)")
        sleep(pause)
        pause = min(POLL_MAX_S, pause * 2)
    data = read_json(path)
    if not isinstance(data, dict):
        raise UserError(f"{path} is not a json object")
    for k, v in {**group.key, "year": year}.items():
        if data.get(k) != v:
            raise UserError(f"{path} is for {k} {data.get(k)!r}, this {group.role} twin "
                            f"runs {k} {v!r}")
    for f in fields:
        v = data.get(f)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise UserError(f"{path}: {f} must be a finite non-negative number, not {v!r}")
    return data


def announce_failure(group, error):
    """Tells the partner that this member failed (best effort)."""
    try:
        write_json(os.path.join(group.dir, f"{group.role}-failed.json"), {"error": str(error)})
    except UserError:
        pass
