"""Input, output and error reporting shared by the forest-beetle demonstration twins.

DEMONSTRATION MODEL - illustrative numbers, not for decisions.

(A copy of the forest-bird demo's twin_io.py, so that each demo directory
stands alone.) climate.py, forest.py, beetle.py, summary.py and coupling.py
import from this module (``from twin_io import ...``). It lives next to them,
and ``python3 /path/to/twins/x.py`` puts the script's own directory first on
``sys.path``, so the import does not depend on the working directory. It is
not a program itself. It owns what the programs have in common, and
nothing about what they compute (the coupling protocol is in coupling.py):

* ``UserError``: a problem with the user's input (a missing or malformed
  file, an unknown name, an unwritable output); ``run`` reports it as one
  line ``error: ...`` on stderr with exit status 2;
* ``reason``: the lowercase reason of an OSError for those messages;
* ``read_csv``: reads a CSV file with a header row and checks that it has the
  required columns and at least one data row, with the messages
  ``cannot read <what> file <path>: <reason>``,
  ``<what> file <path> is not a valid csv file (<reason>)``,
  ``<what> file <path> lacks column(s) ...`` and
  ``<what> file <path> has no data rows``;
* ``number``: one finite number from a CSV cell, or
  ``<path>: bad value ... in column <col>, data row <n>``;
* ``write_atomically`` (a header and CSV rows) and ``write_text_atomically``
  (a text): write a temporary file next to the target and rename it into
  place, so that no reader sees a half-written output; on failure the
  temporary file is removed and the error is ``cannot write <path>: <reason>``;
* ``argument_parser``: a program's command line, with its required options;
* ``run``: the ``if __name__ == "__main__"`` wrapper of every program.

Which columns a program needs, how it checks their content and what it
writes stay in the program.
"""

import argparse
import csv
import math
import os
import sys


class UserError(Exception):
    """A problem with the user's input: reported as one line, exit status 2."""


def reason(e):
    """The lowercase reason of an OSError, e.g. 'no such file or directory'."""
    return (e.strerror or str(e)).lower()


def read_csv(path, what, columns):
    """Returns (rows as dicts, the header's field names) of the CSV file at path.

    ``what`` names the file in messages ("state" gives "state file ...");
    every name in ``columns`` must be in the header, and there must be at
    least one data row.
    """
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            fields = reader.fieldnames or []
    except OSError as e:
        raise UserError(f"cannot read {what} file {path}: {reason(e)}")
    except (csv.Error, UnicodeDecodeError) as e:
        raise UserError(f"{what} file {path} is not a valid csv file ({str(e).lower()})")
    missing = [c for c in columns if c not in fields]
    if missing:
        raise UserError(f"{what} file {path} lacks column(s) {', '.join(missing)}")
    if not rows:
        raise UserError(f"{what} file {path} has no data rows")
    return rows, fields


def number(row, col, path, n, kind=float):
    """The finite number kind(row[col]) of data row n of the file at path."""
    try:
        value = kind(row[col])
    except (TypeError, ValueError):
        value = None
    if value is None or not math.isfinite(value):
        raise UserError(f"{path}: bad value {row[col]!r} in column {col}, data row {n}")
    return value


def _write_atomically(path, write):
    """Calls write(f) on a temporary file next to path, then renames it to path."""
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            write(f)
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise UserError(f"cannot write {path}: {reason(e)}")


def write_atomically(path, header, rows):
    """Writes a CSV file (lines end in \\n) of the header row and the rows."""
    def write(f):
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)

    _write_atomically(path, write)


def write_text_atomically(path, text):
    """Writes the text as it is (UTF-8, no newline translation)."""
    _write_atomically(path, lambda f: f.write(text))


def argument_parser(prog, description, required):
    """An argparse parser for prog; ``required`` maps each required option, in
    the order of --help, to its help text. The program adds any others."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    for option, text in required.items():
        p.add_argument(option, required=True, help=text)
    return p


def run(main):
    """Runs a program's main() and exits with its status; a UserError becomes
    one line ``error: ...`` on stderr and exit status 2."""
    try:
        sys.exit(main())
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
