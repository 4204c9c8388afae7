#!/usr/bin/env python3
"""Strict pass/fail check of Autobahn|Testsuite reports for Sockeye.

usage: autobahn_check.py [--require-compression] [--expect N]
                         [--label NAME] REPORT [[--label NAME] REPORT ...]

REPORT is an OUTDIR of run-client.sh / run-server.sh (or of scripts/autobahn.sh's
merged shards) or its index.json. A case passes when its `behavior` is OK or
INFORMATIONAL and its `behaviorClose` is OK or INFORMATIONAL. Without
--require-compression, cases 12.* and 13.* (permessage-deflate) may also be
UNIMPLEMENTED (the peer did not negotiate compression); with it, that fails them
too. Anything else fails: NON-STRICT, FAILED, UNIMPLEMENTED, WRONG CODE, UNCLEAN,
FAILED BY CLIENT. A report with no case fails; with --expect N, one with other
than N cases fails; and when several reports are given they must cover the same
case ids (a client that stopped half-way leaves cases out of its report).

Prints one line per report:
  NAME: N cases | behavior OK=.. | behaviorClose OK=.. => ok|FAILED
then every offending case. Exit: 0 all pass, 1 some case fails, 2 bad input.
"""
import collections
import json
import os
import sys

BEHAVIOR_OK = {"OK", "INFORMATIONAL"}
CLOSE_OK = {"OK", "INFORMATIONAL"}
COMPRESSION_GROUPS = {"12", "13"}
BEHAVIOR_ORDER = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"]
CLOSE_ORDER = ["OK", "INFORMATIONAL", "FAILED", "WRONG CODE", "UNCLEAN"]


def case_key(cid):
    return tuple(int(p) if p.isdigit() else 0 for p in cid.split("."))


def counts(values, order):
    c = collections.Counter(values)
    out = ["%s=%d" % (k, c.pop(k, 0)) for k in order]
    out += ["%s=%d" % (k, v) for k, v in sorted(c.items())]
    return " ".join(out)


def verdict(cid, case, require_compression=False):
    """Why this case fails, or None if it passes."""
    b, bc = case.get("behavior"), case.get("behaviorClose")
    group = cid.split(".")[0]
    b_ok = b in BEHAVIOR_OK or (b == "UNIMPLEMENTED" and group in COMPRESSION_GROUPS
                                and not require_compression)
    if b_ok and bc in CLOSE_OK:
        return None
    return "behavior=%s behaviorClose=%s close=%s" % (b, bc, case.get("remoteCloseCode"))


def load(path):
    if os.path.isdir(path):
        path = os.path.join(path, "index.json")
    with open(path) as f:
        report = json.load(f)
    if not isinstance(report, dict):
        raise ValueError("not an Autobahn index.json")
    return report


def main(argv):
    reports = []  # (label, path)
    label = None
    require_compression = False
    expect = None
    args = list(argv)
    while args:
        a = args.pop(0)
        if a == "--label" and args:
            label = args.pop(0)
        elif a == "--require-compression":
            require_compression = True
        elif a == "--expect" and args and args[0].isdigit():
            expect = int(args.pop(0))
        elif a in ("-h", "--help") or a.startswith("--"):
            sys.stderr.write(__doc__)
            return 2
        else:
            reports.append((label or a, a))
            label = None
    if not reports:
        sys.stderr.write(__doc__)
        return 2

    failed = False
    case_sets = []
    for label, path in reports:
        try:
            report = load(path)
        except (OSError, ValueError) as e:
            print("%s: no report (%s) => FAILED" % (label, e))
            failed = True
            continue
        cases = {}
        for agent in sorted(report):  # normally one agent per report
            for cid, case in report[agent].items():
                cases[cid if len(report) == 1 else "%s %s" % (agent, cid)] = case
        ids = sorted(cases, key=case_key)
        bad = [(cid, verdict(cid, cases[cid], require_compression)) for cid in ids]
        bad = [(cid, why) for cid, why in bad if why]
        ok = bool(ids) and not bad and (expect is None or len(ids) == expect)
        print("%s: %d cases | behavior %s | behaviorClose %s => %s" % (
            label, len(ids),
            counts([cases[i].get("behavior") for i in ids], BEHAVIOR_ORDER),
            counts([cases[i].get("behaviorClose") for i in ids], CLOSE_ORDER),
            "ok" if ok else "FAILED"))
        if not ids:
            print("  no case ran")
        elif expect is not None and len(ids) != expect:
            print("  %d cases expected, %d in the report (a shard or the client stopped early?)"
                  % (expect, len(ids)))
        for cid, why in bad:
            print("  %-10s %s" % (cid, why))
        failed |= not ok
        case_sets.append((label, set(ids)))

    if len(case_sets) > 1:
        first_label, first = case_sets[0]
        for label, ids in case_sets[1:]:
            if ids != first:
                missing = sorted(first - ids, key=case_key)
                extra = sorted(ids - first, key=case_key)
                print("%s: covers different cases than %s: missing %d %s, extra %d %s => FAILED" % (
                    label, first_label, len(missing), " ".join(missing[:10]),
                    len(extra), " ".join(extra[:10])))
                failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
