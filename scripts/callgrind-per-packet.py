#!/usr/bin/env python3
"""Self cost per function of a callgrind dump, per packet.

callgrind_annotate attributes the partial dump that `vireo bench loopback` writes for its
measured interval (CALLGRIND_DUMP_STATS_AT) to "(below main)"; this sums each function's own
instructions instead. Record with --compress-strings=no --compress-pos=no.

  valgrind --tool=callgrind --compress-strings=no --compress-pos=no --callgrind-out-file=cg \\
      build/vireo bench loopback --layout split --len 64 --seconds 3 --json > loop.json
  scripts/callgrind-per-packet.py cg.1 loop.json [TOP]
"""
import collections
import json
import sys


def self_costs(path):
    cost = collections.Counter()
    fn, after_calls = None, False
    with open(path) as f:
        for line in f:
            if line.startswith("fn="):
                fn = line[3:].rstrip("\n")
            elif line.startswith("calls="):
                after_calls = True  # the next cost line is the call's inclusive cost
            elif line[:1].isdigit() or line[:1] in "+-*":
                if after_calls:
                    after_calls = False
                elif fn is not None:
                    parts = line.split()
                    if len(parts) >= 2:
                        cost[fn] += int(parts[1])
    return cost


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    cost = self_costs(sys.argv[1])
    with open(sys.argv[2]) as f:
        packets = json.loads(f.read().strip().splitlines()[-1])["packets"]
    total = sum(cost.values())
    print("%d instructions, %d packets: %.1f instructions per packet" % (total, packets, total / packets))
    for name, c in cost.most_common(int(sys.argv[3]) if len(sys.argv) > 3 else 20):
        print("%8.1f  %5.1f%%  %s" % (c / packets, 100.0 * c / total, name[:140]))


if __name__ == "__main__":
    main()
