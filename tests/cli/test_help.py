#!/usr/bin/env python3
"""`vireo --help` and every command's --help: exit 0, every option listed with its default, every
listed option accepted by the command's parser, and the man page (vireo.1) listing the same options.

    test_help.py VIREO VIREO_1
"""
import re
import subprocess
import sys

COMMAND = re.compile(r"^  (\S+(?: \S+)*?)\s{2,}(.*)$")
OPTION = re.compile(r"^  (--[a-z0-9-]+)( VALUE)?")
failures = []


def check(ok, msg):
    if not ok:
        failures.append(msg)
        print("FAIL: " + msg)


def run(args):
    return subprocess.run(args, capture_output=True, text=True, timeout=30)


def main():
    vireo, man_path = sys.argv[1], sys.argv[2]
    top = run([vireo, "--help"])
    check(top.returncode == 0, f"vireo --help exited {top.returncode}")
    cmds = []
    listing = False
    for line in top.stdout.splitlines():
        if line.startswith("commands:"):
            listing = True
        elif listing and (m := COMMAND.match(line)):
            cmds.append(m.group(1))
        elif listing:
            break
    check(len(cmds) >= 10, f"vireo --help lists {len(cmds)} commands: {cmds}")
    man = open(man_path).read().replace("\\-", "-")
    for words in cmds:
        argv = [vireo, *words.split()]
        h = run([*argv, "--help"])
        check(h.returncode == 0, f"'{words} --help' exited {h.returncode}: {h.stderr}")
        check(f'.SS "{words}"' in man, f"the man page has no section for '{words}'")
        section = man.split(f'.SS "{words}"', 1)[-1].split(".SS ", 1)[0]
        options = []
        choices = []
        for line in h.stdout.splitlines():
            m = OPTION.match(line)
            if not m or m.group(1) == "--help":
                continue
            name, takes_value = m.group(1), bool(m.group(2))
            options.append(name)
            # The option's help text (possibly wrapped) must name its default.
            block = h.stdout.split(line, 1)[1].split("\n  --", 1)[0]
            check("(default: " in line + block, f"'{words} {name}' has no (default: ...) in --help")
            check(f".B {name}" in section, f"the man page section '{words}' lacks {name}")
            # The parser accepts it: it reaches the bogus option after it (or exits 0 first).
            arg = name + "=1" if takes_value else name
            r = run([*argv, arg, "--zz-not-an-option"])
            # A choice option (OptionParser::add_choice) refuses "1" and lists what it takes: it
            # must exit 2 naming them, and take the first of them.
            if (c := re.search(rf"{name} wants (\S+), got '1'", r.stderr)):
                check(r.returncode == 2, f"'{words} {name}=1' was refused but exited {r.returncode}")
                choices.append(name)
                r = run([*argv, f"{name}={c.group(1).split('|')[0]}", "--zz-not-an-option"])
            accepted = r.returncode == 0 or "unknown option --zz-not-an-option" in r.stderr
            check(accepted, f"'{words}' lists {name} but its parser refuses it: {r.stderr.strip()}")
        check(len(options) > 0 or words == "version", f"'{words} --help' lists no options")
        print(f"ok: {words}: {len(options)} options ({len(choices)} with fixed choices)" if not failures
              else f"checked {words}")
    if failures:
        print(f"{len(failures)} failures")
        sys.exit(1)
    print("PASSED")


if __name__ == "__main__":
    main()
