#!/usr/bin/env python3
"""Split an Autobahn|Testsuite run into shards, and merge the shards' reports.

usage:
  autobahn_shard.py split SHARDS CASES [EXCLUDE]
      Prints SHARDS lines, each a comma-separated list of case ids (1.1.1,...) for one
      wstest process, balanced by an estimate of each case's cost. CASES and EXCLUDE
      are comma-separated patterns: an exact id ('1.1.1'), or with '*' matching any
      characters over the whole id ('9.*', '12.*.1' = 12.1.1, 12.2.1, ...; unlike
      wstest, which matches a prefix, so there '12.*.1' also takes 12.1.10). The special pattern
      'default' stands for the default subset (DEFAULT below). Empty lines are left
      out, so fewer lines than SHARDS come back when there are few cases.
  autobahn_shard.py ids CASES [EXCLUDE]
      Prints the selected case ids, one per line.
  autobahn_shard.py merge OUTDIR SHARD_DIR...
      Writes OUTDIR/index.json from the shards' index.json files (one agent each, as
      run-client.sh / run-server.sh write them), with each case's `reportfile`
      pointing into its shard directory. A shard without a report is left out (its
      cases are then missing, which autobahn_check.py flags); exit 1 if any was.

The case list comes from the installed suite ($AB_PREFIX/venv, default /opt/autobahn),
so it is always the one wstest runs.
"""
import json
import os
import re
import subprocess
import sys

# The default subset of the permessage-deflate cases (12.* and 13.*), with every case
# of the other groups. 12.X.Y / 13.X.Y send 1000 echoed messages of a size set by Y
# (Y=1..4: 16 B..1 KiB; 5..10: 4..128 KiB; 11..18: 8..128 KiB, auto-fragmented), so a
# full run pushes ~11 GB through Autobahn's Python. The subset keeps every parameter
# set (12.1-12.5 are the payload kinds with default parameters, 13.1-13.7 the window
# and context-takeover offers) with the small sizes and one fragmented large one.
DEFAULT = ("1.*,2.*,3.*,4.*,5.*,6.*,7.*,9.*,10.*,"
           "12.*.1,12.*.2,12.*.4,12.*.11,13.*.1,13.*.3,13.*.4,13.*.12")

# 12.X.Y/13.X.Y message size by Y (autobahntestsuite/case/case12_x_x.py MSG_SIZES).
DEFLATE_SIZES = [16, 64, 256, 1024, 4096, 8192, 16384, 32768, 65536, 131072,
                 8192, 16384, 32768, 65536, 131072, 131072, 131072, 131072]


def all_ids():
    py = os.path.join(os.environ.get("AB_PREFIX", "/opt/autobahn"), "venv", "bin", "python")
    out = subprocess.check_output([py, "-c", (
        "import warnings; warnings.simplefilter('ignore')\n"
        "from autobahntestsuite.case import Cases\n"
        "for c in Cases: print('.'.join(c.__name__[len('Case'):].split('_')))\n")],
        stderr=subprocess.DEVNULL)
    return out.decode().split()


def key(cid):
    return tuple(int(p) for p in cid.split("."))


def resolve(patterns, ids):
    """Like wstest's resolveCasePatternList, but a '*' pattern matches whole ids."""
    out = set()
    for p in patterns:
        if p == "default":
            out |= resolve(DEFAULT.split(","), ids)
        elif "*" in p:
            rx = re.compile(p.replace(".", r"\.").replace("*", ".*") + "$")
            out |= {i for i in ids if rx.match(i)}
        else:
            out.add(p)
    return out


def select(cases, exclude):
    split = lambda s: [x.strip() for x in s.split(",") if x.strip()]
    ids = all_ids()
    return sorted(resolve(split(cases), ids) - resolve(split(exclude), ids), key=key)


def cost(cid):
    """Rough seconds of wstest time (measured against fast peers on 2 cores)."""
    k = key(cid)
    if k[0] in (12, 13) and len(k) == 3:
        return 0.3 + DEFLATE_SIZES[k[2] - 1] / 16384.0
    if k[0] == 9:
        return 0.5
    return 0.03


def split_cases(shards, cases, exclude):
    bins = [[0.0, []] for _ in range(max(1, shards))]
    for cid in sorted(select(cases, exclude), key=cost, reverse=True):
        b = min(bins, key=lambda b: b[0])  # longest first, onto the lightest shard
        b[0] += cost(cid)
        b[1].append(cid)
    return [sorted(b[1], key=key) for b in bins if b[1]]


def merge(outdir, shard_dirs):
    merged, agent_name, missing = {}, None, 0
    for d in shard_dirs:
        try:
            with open(os.path.join(d, "index.json")) as f:
                report = json.load(f)
        except (OSError, ValueError) as e:
            sys.stderr.write("autobahn_shard.py: no report in %s (%s)\n" % (d, e))
            missing += 1
            continue
        rel = os.path.relpath(d, outdir)
        for agent, cases in report.items():
            agent_name = agent_name or agent
            for cid, case in cases.items():
                if case.get("reportfile"):
                    case["reportfile"] = os.path.join(rel, case["reportfile"])
                merged.setdefault(agent, {})[cid] = case
    with open(os.path.join(outdir, "index.json"), "w") as f:
        json.dump(merged, f, indent=1, sort_keys=True)
    return 1 if missing else 0


def main(argv):
    if len(argv) in (3, 4) and argv[0] == "split":
        for line in split_cases(int(argv[1]), argv[2], argv[3] if len(argv) > 3 else ""):
            print(",".join(line))
        return 0
    if len(argv) in (2, 3) and argv[0] == "ids":
        print("\n".join(select(argv[1], argv[2] if len(argv) > 2 else "")))
        return 0
    if len(argv) >= 3 and argv[0] == "merge":
        return merge(argv[1], argv[2:])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
