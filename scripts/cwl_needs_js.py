#!/usr/bin/env python3
"""Which CWL conformance tests need JavaScript, decided statically.

Run with the python of the cwl-conformance venv: it needs cwltest (to load
conformance_tests.yaml exactly as cwltest does) and ruamel.yaml, which comes
with cwltest's dependencies (PyYAML does not). Called by
scripts/cwl-conformance; can be used on its own:

  cwl_needs_js.py [--suite DIR] --list [--tags t1,t2]
      one line per test: "<id> <needs-js yes|no> <tags> [<reason>]"
  cwl_needs_js.py [--suite DIR] --counts
      how many tests need no JavaScript (required; the ten tags; all)
  cwl_needs_js.py [--suite DIR] --report JUNIT.xml [--tags ...]
                  [--require-pass t1,t2]
      the per-tag table of a cwltest run (from its --junit-xml output);
      exit 3 when --require-pass names tags with a no-JavaScript test that
      did not pass (failed, unsupported, or not run)

A test needs JavaScript when the process document it runs, or any document
it reaches (`run:` of steps, inline or by path; `$graph` entries; `$import`
and `$include`), is an ExpressionTool or holds an expression that is not a
CWL parameter reference:
  * a `${...}` body anywhere in a document that declares (as requirement or
    hint, in list form `class: ...` or map form `InlineJavascriptRequirement:
    {}`) InlineJavascriptRequirement, or
  * a `$(...)` whose body is not `symbol(.symbol | ['..'] | [".."] |
    [digits])*` with symbol in {inputs, self, runtime}, or `null` (see
    PARAM_REF below).
Expressions are found with the reference implementation's scanner (nesting,
quotes, `\$(` escapes). The job file is not scanned, nor `doc`/`label`
strings. A document is a file together with what it `$import`s or
`$include`s; a `run:` by path starts another document.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urldefrag, urlparse

TEN_TAGS = [
    "required",
    "initial_work_dir",
    "shell_command",
    "env_var",
    "resource",
    "multiple_input",
    "step_input",
    "scatter",
    "conditional",
    "subworkflow",
]
REQUIRED_TARGET = 82
TEN_TAGS_TARGET = 187

IJR = "InlineJavascriptRequirement"

# Parameter reference grammar (CWL v1.2 "Parameter references").
_SEG = r"""(?:\.\w+|\['(?:[^'\\]|\\.)*'\]|\["(?:[^"\\]|\\.)*"\]|\[[0-9]+\])"""
# The leading symbol is one of the parameter context's roots; `null` too: the
# reference implementation evaluates `$(null)` without JavaScript, and the
# suite uses it (and the erroneous `$(null.something)`, a should_fail test)
# in tests meant for runners without JavaScript (param_evaluation_noexpr,
# params_broken_null).
PARAM_REF = re.compile(rf"(?:inputs|self|runtime|null){_SEG}*\Z")


# --------------------------------------------------------------------------
# expression scanning


class Unfinished(Exception):
    """A `$(` or `${` that never closes."""


def expressions(s: str):
    """Yield (kind, body) for each `$(...)` / `${...}` in s.

    The same scanner as the CWL reference implementation: nested
    parentheses/braces, quotes inside them, and backslash escapes (`\\$(` is
    a literal)."""
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c == "\\":
            i += 2
            continue
        if c == "$" and i + 1 < n and s[i + 1] in "({":
            opener = s[i + 1]
            closer = ")" if opener == "(" else "}"
            depth, j, quote = 1, i + 2, None
            while j < n:
                d = s[j]
                if quote:
                    if d == "\\":
                        j += 1
                    elif d == quote:
                        quote = None
                elif d in "'\"":
                    quote = d
                elif d == opener:
                    depth += 1
                elif d == closer:
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            if j >= n:
                raise Unfinished(s[i:])
            yield ("$(" if opener == "(" else "${"), s[i + 2 : j]
            i = j + 1
            continue
        i += 1


# --------------------------------------------------------------------------
# documents


def _yaml():
    from ruamel.yaml import YAML

    y = YAML(typ="safe", pure=True)
    y.allow_duplicate_keys = True
    return y


try:
    from ruamel.yaml.error import YAMLError
except ImportError:  # pragma: no cover - only without the venv
    YAMLError = ValueError  # type: ignore[misc,assignment]

_YAML = None
_CACHE: dict[str, Any] = {}


def load(path: str) -> Any:
    global _YAML
    if path not in _CACHE:
        if _YAML is None:
            _YAML = _yaml()
        with open(path, encoding="utf-8") as f:
            _CACHE[path] = _YAML.load(f)
    return _CACHE[path]


def uri_to_path(uri: str) -> tuple[str, str]:
    base, frag = urldefrag(uri)
    if base.startswith("file:"):
        base = unquote(urlparse(base).path)
    return base, frag


@dataclass
class DocScan:
    """What one document (a file plus its imports/includes) holds."""

    path: str
    declares_ijr: bool = False
    expression_tool: bool = False
    # (kind, body) of every expression found
    exprs: list[tuple[str, str]] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)  # paths of `run:` documents
    problems: list[str] = field(default_factory=list)


_SCANS: dict[str, DocScan] = {}


def scan_document(path: str) -> DocScan:
    if path in _SCANS:
        return _SCANS[path]
    ds = DocScan(path)
    _SCANS[path] = ds
    try:
        root = load(path)
    except (OSError, ValueError, YAMLError) as e:  # unreadable
        ds.problems.append(f"cannot load {os.path.relpath(path)}: {type(e).__name__}")
        return ds
    _walk(root, os.path.dirname(path), ds, {path}, key=None)
    return ds


def _string(s: str, ds: DocScan) -> None:
    if "$(" not in s and "${" not in s:
        return
    try:
        ds.exprs.extend(expressions(s))
    except Unfinished as e:
        ds.unfinished.append(str(e)[:60])


def _walk(node: Any, base: str, ds: DocScan, importing: set[str], key: str | None) -> None:
    if isinstance(node, dict):
        if "$import" in node and isinstance(node["$import"], str):
            p = os.path.normpath(os.path.join(base, uri_to_path(node["$import"])[0]))
            if p in importing:
                return
            try:
                sub = load(p)
            except (OSError, ValueError, YAMLError) as e:
                ds.problems.append(f"cannot $import {os.path.relpath(p)}: {type(e).__name__}")
                return
            _walk(sub, os.path.dirname(p), ds, importing | {p}, key)
            return
        if "$include" in node and isinstance(node["$include"], str):
            p = os.path.normpath(os.path.join(base, uri_to_path(node["$include"])[0]))
            try:
                with open(p, encoding="utf-8") as f:
                    _string(f.read(), ds)
            except (OSError, ValueError) as e:
                ds.problems.append(f"cannot $include {os.path.relpath(p)}: {type(e).__name__}")
            return
        cls = node.get("class")
        if cls == "ExpressionTool":
            ds.expression_tool = True
        if cls == IJR:
            ds.declares_ijr = True
        for k, v in node.items():
            k = str(k)
            if k == IJR:  # map form: requirements: {InlineJavascriptRequirement: {}}
                ds.declares_ijr = True
            if k in ("$namespaces", "$schemas"):
                continue
            if k in ("doc", "label") and (
                isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v))
            ):
                continue  # documentation, never evaluated
            if k == "run" and isinstance(v, str):
                target, _frag = uri_to_path(v)
                if target:
                    ds.runs.append(os.path.normpath(os.path.join(base, target)))
                continue  # `run: "#id"` is in this document ($graph)
            _walk(v, base, ds, importing, k)
    elif isinstance(node, list):
        for v in node:
            _walk(v, base, ds, importing, key)
    elif isinstance(node, str):
        _string(node, ds)


def js_reasons(tool_uri: str) -> list[str]:
    """Why the test running tool_uri needs JavaScript ([] when it does not)."""
    path, _frag = uri_to_path(tool_uri)
    reasons: list[str] = []
    seen: set[str] = set()
    todo = [path]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        ds = scan_document(p)
        rel = os.path.relpath(p)
        if ds.expression_tool:
            reasons.append(f"{rel}: ExpressionTool")
        for kind, body in ds.exprs:
            if kind == "${":
                if ds.declares_ijr:
                    reasons.append(f"{rel}: ${{{_short(body)}}}")
            elif not PARAM_REF.match(body):
                reasons.append(f"{rel}: $({_short(body)})")
        for u in ds.unfinished:
            reasons.append(f"{rel}: unfinished expression {u!r}")
        todo.extend(ds.runs)
    return reasons


def _short(s: str) -> str:
    s = " ".join(s.split())
    return s if len(s) <= 50 else s[:47] + "..."


# --------------------------------------------------------------------------
# tests


@dataclass
class Test:
    id: str
    tags: list[str]
    needs_js: bool
    reasons: list[str]


def load_tests(suite: str) -> list[Test]:
    from cwltest import utils  # type: ignore[import-untyped]

    here = os.getcwd()
    os.chdir(suite)
    try:
        raw, _meta = utils.load_and_validate_tests("conformance_tests.yaml")
        out = []
        for t in raw:
            # cwltest's own short name: `label`, else the fragment of `id`
            tid = t.get("label") or utils.shortname(str(t.get("id")))
            reasons = js_reasons(t["tool"])
            out.append(Test(tid, list(t.get("tags") or ["required"]), bool(reasons), reasons))
        return out
    finally:
        os.chdir(here)


def select(tests: list[Test], tags: list[str] | None) -> list[Test]:
    if not tags:
        return tests
    want = set(tags)
    return [t for t in tests if want.intersection(t.tags)]


def counts(tests: list[Test]) -> dict[str, tuple[int, int]]:
    def c(ts: list[Test]) -> tuple[int, int]:
        return sum(1 for t in ts if not t.needs_js), len(ts)

    return {
        "required": c(select(tests, ["required"])),
        "ten_tags": c(select(tests, TEN_TAGS)),
        "all": c(tests),
    }


# --------------------------------------------------------------------------
# report of a cwltest run


PASSED, FAILED, UNSUPPORTED, NOT_RUN = "passed", "failed", "unsupported", "not run"


def junit_results(path: str) -> dict[str, str]:
    """id -> outcome, from cwltest's --junit-xml file (the `file` attribute
    of a testcase is the test's short name)."""
    res: dict[str, str] = {}
    root = ET.parse(path).getroot()
    for case in root.iter("testcase"):
        tid = case.get("file") or ""
        failure = case.find("failure")
        error = case.find("error")
        skipped = case.find("skipped")
        if skipped is not None:
            # cwltest: exit 33 on a test not tagged `required`
            res[tid] = UNSUPPORTED
        elif failure is not None or error is not None:
            el = failure if failure is not None else error
            text = " ".join(filter(None, [el.get("message"), el.text]))
            # cwltest counts exit 33 on a `required` test as a failure; we
            # still show it as unsupported.
            if "non-zero exit status 33." in text:
                res[tid] = UNSUPPORTED
            else:
                res[tid] = FAILED
        else:
            res[tid] = PASSED
    return res


def report(
    tests: list[Test],
    results: dict[str, str],
    tags: list[str] | None,
    require_pass: list[str] | None,
    known: set[str] | None = None,
    out=sys.stdout,
) -> int:
    known = known or set()
    sel = select(tests, tags)
    by_tag: dict[str, list[Test]] = defaultdict(list)
    for t in sel:
        for tag in t.tags:
            if not tags or tag in tags:
                by_tag[tag].append(t)

    def row(ts: list[Test]) -> list[int]:
        out_ = [0, 0, 0, 0]
        for t in ts:
            r = results.get(t.id, NOT_RUN)
            out_[0] += 1
            if r == PASSED:
                out_[1] += 1
            elif r == UNSUPPORTED:
                out_[3] += 1
            else:
                out_[2] += 1  # failed, or missing from the report
        return out_

    missing = [t.id for t in sel if t.id not in results]
    head = ["tag", "tests", "passed", "failed", "unsup", "|", "noJS", "passed", "failed", "unsup"]
    lines = []
    order = sorted(by_tag, key=lambda k: (k != "required", k))
    for tag in order + ["TOTAL"]:
        ts = sel if tag == "TOTAL" else by_tag[tag]
        nojs = [t for t in ts if not t.needs_js]
        lines.append([tag, *row(ts), "|", *row(nojs)])
    w0 = max(len(head[0]), *(len(str(r[0])) for r in lines))

    def fmt(r: list) -> str:
        return f"{r[0]:<{w0}}  " + " ".join(f"{x:>6}" if x != "|" else "|" for x in r[1:])

    print(fmt(head), file=out)
    print("-" * len(fmt(head)), file=out)
    for r in lines[:-1]:
        print(fmt(r), file=out)
    print("-" * len(fmt(head)), file=out)
    print(fmt(lines[-1]), file=out)
    print(
        "(noJS: the tests that need no JavaScript; unsup: the runner exited 33;"
        " failed: includes timeouts and tests missing from the report;"
        " TOTAL counts each test once)",
        file=out,
    )
    if missing:
        print(
            f"not in the JUnit report (counted as failed): {len(missing)}: "
            + ", ".join(missing[:20])
            + (" ..." if len(missing) > 20 else ""),
            file=out,
        )

    def target(ts: list[Test]) -> tuple[int, int]:
        nojs = [t for t in ts if not t.needs_js]
        return sum(1 for t in nojs if results.get(t.id) == PASSED), len(nojs)

    all_tests = tests
    p, n = target(select(all_tests, ["required"]))
    ran = [t for t in select(all_tests, ["required"]) if t.id in results]
    note = "" if len(ran) == len(select(all_tests, ["required"])) else " [not all were run]"
    print(
        f"required without JavaScript: {p} of {n} (target: all {REQUIRED_TARGET}){note}", file=out
    )
    ten = select(all_tests, TEN_TAGS)
    p, n = target(ten)
    note = "" if all(t.id in results for t in ten) else " [not all were run]"
    if n < TEN_TAGS_TARGET:
        note += f" [only {n} tests of these tags need no JavaScript by scripts/cwl_needs_js.py]"
    print(
        f"ten tags ({', '.join(TEN_TAGS)}) without JavaScript: {p} of {n} "
        f"(target: >= {TEN_TAGS_TARGET}){note}",
        file=out,
    )
    passed_all = sum(1 for t in ten if results.get(t.id) == PASSED)
    print(
        f"ten tags, JavaScript included: {passed_all} of {len(ten)}; "
        f"required, JavaScript included: "
        f"{sum(1 for t in select(all_tests, ['required']) if results.get(t.id) == PASSED)} "
        f"of {len(select(all_tests, ['required']))}",
        file=out,
    )

    rc = 0
    if require_pass:
        gated = [t for t in select(all_tests, require_pass) if not t.needs_js]
        bad = [t for t in gated if results.get(t.id) != PASSED and t.id not in known]
        fixed = [t for t in gated if results.get(t.id) == PASSED and t.id in known]
        if known:
            print(
                f"--known-failures: {len(known)} listed, not gated: " + ", ".join(sorted(known)),
                file=out,
            )
        if fixed:
            print(
                f"--known-failures: {len(fixed)} listed test(s) now pass; remove them from the list: "
                + ", ".join(t.id for t in fixed),
                file=out,
            )
            rc = 3
        if bad:
            print(
                f"--require-pass {','.join(require_pass)}: {len(bad)} no-JavaScript "
                "test(s) did not pass: "
                + ", ".join(f"{t.id} ({results.get(t.id, NOT_RUN)})" for t in bad),
                file=out,
            )
            rc = 3
        elif not fixed:
            print(
                f"--require-pass {','.join(require_pass)}: every no-JavaScript test passed"
                + (" but the listed known failures" if known else ""),
                file=out,
            )
    return rc


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--suite",
        default=os.environ.get("TWINFLOW_CWL_SUITE")
        or os.path.join(
            os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "cwl-v1.2"
        ),
    )
    ap.add_argument("--tags", help="comma-separated tags (default: all tests)")
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--list", action="store_true", help="per test id: needs-js yes/no")
    g.add_argument("--counts", action="store_true", help="no-JavaScript counts")
    g.add_argument("--report", metavar="JUNIT", help="table of a cwltest --junit-xml file")
    ap.add_argument("--reasons", action="store_true", help="with --list: why JS is needed")
    ap.add_argument(
        "--require-pass", help="with --report: exit 3 unless every no-JS test of these tags passed"
    )
    ap.add_argument(
        "--known-failures",
        metavar="FILE",
        help="with --require-pass: test ids (one per line, '#' comments) not gated; "
        "one of them passing is an error too (the list must shrink)",
    )
    a = ap.parse_args(argv)
    suite = os.path.abspath(a.suite)
    tags = [t for t in (a.tags or "").split(",") if t] or None
    tests = load_tests(suite)
    if a.list:
        for t in select(tests, tags):
            line = f"{t.id}\t{'yes' if t.needs_js else 'no'}\t{','.join(t.tags)}"
            if a.reasons and t.reasons:
                line += "\t" + " | ".join(dict.fromkeys(t.reasons))
            print(line)
        return 0
    if a.counts:
        c = counts(tests)
        print(
            f"required: {c['required'][0]} of {c['required'][1]} tests need no JavaScript "
            f"(target line: all {REQUIRED_TARGET})"
        )
        print(
            f"ten tags ({', '.join(TEN_TAGS)}): {c['ten_tags'][0]} of {c['ten_tags'][1]} "
            f"tests need no JavaScript (target line: >= {TEN_TAGS_TARGET})"
        )
        print(f"all: {c['all'][0]} of {c['all'][1]} tests need no JavaScript")
        return 0
    results = junit_results(a.report)
    rp = [t for t in (a.require_pass or "").split(",") if t] or None
    known: set[str] = set()
    if a.known_failures:
        with open(a.known_failures, encoding="utf-8") as f:
            for line in f:
                test_id = line.split("#", 1)[0].strip()
                if test_id:
                    known.add(test_id)
    return report(tests, results, tags, rp, known)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except BrokenPipeError:  # e.g. `--list | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
