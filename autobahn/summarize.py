#!/usr/bin/env python3
"""Normalise, summarise and check one Autobahn|Testsuite run.

Used by autobahn/run.sh; standard library only (Python 3.6+).

Reads the `index.json` that wstest wrote for one agent and

* writes a normalised results file: for each case id, only `behavior` and
  `behaviorClose` (durations, report file names, close codes and the agent
  name are dropped), cases in natural order (1.1.2 < 1.1.10), so that the
  files of two adapters with the same behaviour are byte-identical;
* prints a per-group summary table (and writes it to a file);
* compares the results with the committed expected file, or rewrites that
  file with --update.

An expected value may also be a list of accepted values, for a case whose
outcome legitimately varies between runs, e.g.
    "6.4.1": {"behavior": ["OK", "NON-STRICT"], "behaviorClose": "OK"}
--update keeps such a list as long as the new outcome is one of its values.

Exit status: 0 = results match (or expected file updated), 1 = differences
(or missing cases), 2 = bad input (no index, unknown agent, ...).
"""

import argparse
import json
import os
import re
import sys
from collections import OrderedDict

STATUSES = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"]
GOOD_CLOSE = {"OK", "INFORMATIONAL"}


def case_key(case_id):
    """Natural sort key: 1.1.2 < 1.1.10 < 1.2.1 < 10.1."""
    return [int(p) if p.isdigit() else p for p in case_id.split(".")]


def group_of(case_id):
    """The case's parent: 1.1.3 -> 1.1, 9.7.4 -> 9.7, 5.12 -> 5."""
    parts = case_id.split(".")
    return ".".join(parts[:-1]) if len(parts) > 1 else case_id


def compile_patterns(text):
    """Case patterns the way wstest resolves them (autobahntestsuite's
    CaseSet): a pattern with '*' is a regular expression anchored at the
    start only ('.' literal, '*' = '.*'); one without is an exact case id."""
    pats = []
    for p in (x.strip() for x in (text or "").split(",")):
        if not p:
            continue
        if "*" in p:
            rx = re.compile(re.escape(p).replace(r"\*", ".*"))
            pats.append(lambda c, rx=rx: rx.match(c) is not None)
        else:
            pats.append(lambda c, p=p: c == p)
    return pats


def selector(cases, exclude):
    inc, exc = compile_patterns(cases), compile_patterns(exclude)
    return lambda c: any(f(c) for f in inc) and not any(f(c) for f in exc)


def show(value):
    return "|".join(value) if isinstance(value, list) else str(value)


def accepts(expected, actual):
    if isinstance(expected, list):
        return actual in expected
    return expected == actual


class InputError(Exception):
    pass


def load_results(index_path, agent):
    try:
        with open(index_path) as f:
            index = json.load(f)
    except (OSError, ValueError) as e:
        raise InputError("summarize: cannot read %s: %s" % (index_path, e))
    if agent not in index:
        raise InputError(
            "summarize: agent %r not in %s (agents present: %s)"
            % (agent, index_path, ", ".join(sorted(index)) or "none")
        )
    results = OrderedDict()
    for case_id in sorted(index[agent], key=case_key):
        entry = index[agent][case_id]
        results[case_id] = OrderedDict(
            [
                ("behavior", entry.get("behavior")),
                ("behaviorClose", entry.get("behaviorClose")),
            ]
        )
    return results


def dump(path, data):
    """Write {case: {...}} as JSON with one case per line (diff-friendly)."""
    lines = [
        "  %s: %s" % (json.dumps(c), json.dumps(v, separators=(", ", ": ")))
        for c, v in data.items()
    ]
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("{\n" + ",\n".join(lines) + ("\n}\n" if lines else "}\n"))
    os.replace(tmp, path)


def summary_table(results, title):
    groups = OrderedDict()
    for case_id, r in results.items():
        groups.setdefault(group_of(case_id), []).append(r)
    cols = ["total"] + STATUSES + ["other", "BAD-CLOSE"]
    rows = []
    totals = [0] * len(cols)
    for group, rs in groups.items():
        counts = [len(rs)]
        counts += [sum(1 for r in rs if r["behavior"] == s) for s in STATUSES]
        counts.append(sum(1 for r in rs if r["behavior"] not in STATUSES))
        counts.append(sum(1 for r in rs if r["behaviorClose"] not in GOOD_CLOSE))
        totals = [a + b for a, b in zip(totals, counts)]
        rows.append([group] + counts)
    rows.append(["all"] + totals)
    widths = [max(6, max(len(str(r[0])) for r in rows))]
    widths += [max(len(c), 5) for c in cols]
    fmt = lambda r: "  ".join(
        str(v).ljust(w) if i == 0 else str(v).rjust(w)
        for i, (v, w) in enumerate(zip(r, widths))
    )
    lines = [title, fmt(["group"] + cols), fmt(["-" * w for w in widths])]
    lines += [fmt(r) for r in rows[:-1]]
    lines += [fmt(["-" * w for w in widths]), fmt(rows[-1])]
    lines.append(
        "BAD-CLOSE: cases whose behaviorClose is neither OK nor INFORMATIONAL."
    )
    not_ok = [
        (c, r)
        for c, r in results.items()
        if r["behavior"] != "OK" or r["behaviorClose"] != "OK"
    ]
    lines.append("")
    if not_ok:
        lines.append("Cases not OK (%d):" % len(not_ok))
        for c, r in not_ok:
            lines.append(
                "  %-10s behavior=%-14s behaviorClose=%s"
                % (c, r["behavior"], r["behaviorClose"])
            )
    else:
        lines.append("All cases OK.")
    return "\n".join(lines) + "\n"


def compare(expected, results, selected):
    """Return (matched, list of difference lines)."""
    diffs = []
    matched = 0
    scope = [c for c in expected if selected(c)]
    for c in sorted(set(scope) | set(results), key=case_key):
        exp, got = expected.get(c), results.get(c)
        if got is None:
            diffs.append(
                "  %-10s missing: expected behavior=%s behaviorClose=%s, case did not run"
                % (c, show(exp["behavior"]), show(exp["behaviorClose"]))
            )
        elif exp is None:
            diffs.append(
                "  %-10s new: behavior=%s behaviorClose=%s, not in the expected file"
                % (c, got["behavior"], got["behaviorClose"])
            )
        elif not (
            accepts(exp["behavior"], got["behavior"])
            and accepts(exp["behaviorClose"], got["behaviorClose"])
        ):
            diffs.append(
                "  %-10s expected behavior=%s behaviorClose=%s, got behavior=%s behaviorClose=%s"
                % (
                    c,
                    show(exp["behavior"]),
                    show(exp["behaviorClose"]),
                    got["behavior"],
                    got["behaviorClose"],
                )
            )
        else:
            matched += 1
    return matched, diffs


def updated(expected, results, selected):
    """The expected file after --update: entries outside this run's case
    selection are kept, the selection is replaced by this run's results
    (keeping an accepted-values list that still accepts the new outcome)."""
    new = {c: v for c, v in expected.items() if not selected(c)}
    for c, got in results.items():
        old = expected.get(c)
        entry = OrderedDict()
        for k in ("behavior", "behaviorClose"):
            if old is not None and isinstance(old.get(k), list) and got[k] in old[k]:
                entry[k] = old[k]
            else:
                entry[k] = got[k]
        new[c] = entry
    return OrderedDict((c, new[c]) for c in sorted(new, key=case_key))


def changes(old, new):
    """Lines describing how the expected file changes from old to new."""
    out = []
    fmt = lambda v: "behavior=%s behaviorClose=%s" % (
        show(v["behavior"]),
        show(v["behaviorClose"]),
    )
    for c in sorted(set(old) | set(new), key=case_key):
        if c not in new:
            out.append("  %-10s removed (was %s)" % (c, fmt(old[c])))
        elif c not in old:
            out.append("  %-10s added: %s" % (c, fmt(new[c])))
        elif old[c] != new[c]:
            out.append("  %-10s changed: %s -> %s" % (c, fmt(old[c]), fmt(new[c])))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--index", required=True, help="wstest's index.json")
    ap.add_argument("--agent", required=True, help="agent name in index.json")
    ap.add_argument("--title", default="Autobahn|Testsuite results")
    ap.add_argument("--results", required=True, help="normalised results to write")
    ap.add_argument("--summary", required=True, help="summary table to write")
    ap.add_argument("--expected", required=True, help="committed expected results")
    ap.add_argument("--cases", default="*", help="case patterns of this run")
    ap.add_argument("--exclude", default="", help="excluded case patterns")
    ap.add_argument(
        "--expect-count",
        type=int,
        help="number of cases wstest said it would run (missing cases fail)",
    )
    ap.add_argument("--counts", help="write 'MATCHED DIFFERING' to this file")
    ap.add_argument("--update", action="store_true", help="rewrite --expected")
    args = ap.parse_args()

    try:
        results = load_results(args.index, args.agent)
    except InputError as e:
        print(e, file=sys.stderr)
        return 2
    selected = selector(args.cases, args.exclude)

    dump(args.results, results)
    table = summary_table(results, "%s: %d cases" % (args.title, len(results)))
    with open(args.summary, "w") as f:
        f.write(table)
    sys.stdout.write(table)

    problems = []
    if args.expect_count is not None and len(results) != args.expect_count:
        problems.append(
            "  wstest announced %d cases but the report has %d"
            % (args.expect_count, len(results))
        )
    stray = [c for c in results if not selected(c)]
    if stray:
        problems.append("  cases outside the selection ran: %s" % ", ".join(stray))

    expected = OrderedDict()
    if os.path.exists(args.expected):
        with open(args.expected) as f:
            expected = json.load(f, object_pairs_hook=OrderedDict)

    if args.update:
        if problems:
            print("\nNot updating %s:" % args.expected, file=sys.stderr)
            print("\n".join(problems), file=sys.stderr)
            return 1
        new = updated(expected, results, selected)
        changed = changes(expected, new)
        os.makedirs(os.path.dirname(os.path.abspath(args.expected)), exist_ok=True)
        dump(args.expected, new)
        if not expected:
            print("\nCreated %s (%d cases)." % (args.expected, len(new)))
        else:
            print(
                "\nUpdated %s (%d cases, %d changed)."
                % (args.expected, len(new), len(changed))
            )
            for line in changed:
                print(line)
        if args.counts:
            with open(args.counts, "w") as f:
                f.write("%d 0\n" % len(results))
        return 0

    if not os.path.exists(args.expected):
        problems.append(
            "  no expected file %s (create it with run.sh --update)" % args.expected
        )
        matched, diffs = 0, []
    else:
        matched, diffs = compare(expected, results, selected)
    if args.counts:
        with open(args.counts, "w") as f:
            f.write("%d %d\n" % (matched, len(diffs) + len(problems)))
    if diffs or problems:
        print("\nResults differ from %s:" % args.expected)
        for line in problems + diffs:
            print(line)
        return 1
    print("\nResults match %s (%d cases)." % (args.expected, matched))
    return 0


if __name__ == "__main__":
    sys.exit(main())
