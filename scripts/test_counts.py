#!/usr/bin/env python3
"""Counts meson test results (one JSON object per line in testlog.json): prints 'passed failed skipped'.
GoogleTest executables count as one meson test each; their own case counts are in the log."""
import json
import sys

passed = failed = skipped = 0
try:
    with open(sys.argv[1]) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            result = json.loads(line).get("result", "")
            if result in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif result == "SKIP":
                skipped += 1
            else:
                failed += 1
except FileNotFoundError:
    failed = 1
print(passed, failed, skipped)
