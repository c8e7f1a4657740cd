#!/usr/bin/env python3
"""Generates vireo.1 from the --help text of `vireo` and of each of its commands, so the man page
says exactly what --help says (both come from the OptionParser declarations, base/options.hpp).

    gen_man.py VIREO OUTPUT VERSION
"""
import re
import subprocess
import sys

COMMAND = re.compile(r"^  (\S+(?: \S+)*?)\s{2,}(.*)$")
OPTION = re.compile(r"^  (--\S+)(?: (VALUE))?\s*(.*)$")


def run_help(vireo, words):
    r = subprocess.run([vireo, *words, "--help"], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"gen_man: '{' '.join(['vireo', *words, '--help'])}' exited {r.returncode}: {r.stderr}")
    return r.stdout


def roff(text):
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return ("\\&" + text) if text.startswith((".", "'")) else text


def commands(top_help):
    out, in_list = [], False
    for line in top_help.splitlines():
        if line.startswith("commands:"):
            in_list = True
            continue
        if in_list:
            m = COMMAND.match(line)
            if not m:
                break
            out.append((m.group(1), m.group(2)))
    return out


def command_section(words, summary, text):
    lines = text.splitlines()
    usage = lines[0].removeprefix("usage: ")
    body = []
    i = 1
    while i < len(lines) and not lines[i].startswith("options:"):
        if lines[i].strip():
            body.append(roff(lines[i].strip()))
        i += 1
    out = [f'.SS "{roff(words)}"', f".B {roff(usage)}", ".br", roff(summary) + ".", ".PP", *body]
    pending = None
    for line in lines[i + 1:]:
        m = OPTION.match(line)
        if m:
            pending = [m.group(1), m.group(2), m.group(3).strip()]
            out += [".TP", f".B {roff(pending[0])}" + (" \\fIVALUE\\fR" if pending[1] else "")]
            if pending[2]:
                out.append(roff(pending[2]))
        elif line.startswith(" " * 28) and pending is not None:
            out.append(roff(line.strip()))
    return out


def main():
    vireo, output, version = sys.argv[1:4]
    top = run_help(vireo, [])
    page = [
        f'.TH VIREO 1 "" "vireo {version}" "User Commands"',
        ".SH NAME",
        "vireo \\- virtio devices and drivers over vhost\\-user",
        ".SH SYNOPSIS",
        ".B vireo",
        "\\fICOMMAND\\fR [\\fIoptions\\fR]",
        ".SH DESCRIPTION",
        "Vireo serves virtio devices (net, blk, rng) to QEMU guests and other vhost\\-user front\\-ends,",
        "drives vhost\\-user back\\-ends from user space, and benchmarks both. The device commands follow",
        "QEMU's vhost\\-user back\\-end program conventions: \\fB\\-\\-socket\\-path\\fR or \\fB\\-\\-fd\\fR,",
        "\\fB\\-\\-print\\-capabilities\\fR, exit status 0 on SIGTERM, and no daemonizing. SIGUSR1 prints the",
        "per\\-queue counters once.",
        ".SH COMMANDS",
    ]
    for words, summary in commands(top):
        page += command_section(words, summary, run_help(vireo, words.split()))
    page += [
        ".SH SIGNALS",
        ".TP", ".B SIGTERM, SIGINT", "device commands close the connection, remove their socket and exit 0.",
        ".TP", ".B SIGUSR1", "device commands print one line per queue (packets or requests, bytes, kicks, calls).",
        ".SH FILES",
        ".TP", ".I share/qemu/vhost\\-user/50\\-vireo\\-{blk,net,rng}.json",
        "vhost\\-user.json descriptors for libvirt, naming \\fIlibexec/vireo/vhost\\-user\\-{blk,net,rng}\\fR.",
        ".SH SEE ALSO",
        "\\fBqemu\\-system\\-x86_64\\fR(1), QEMU docs/interop/vhost\\-user.rst, the Vireo README.",
    ]
    with open(output, "w") as fh:
        fh.write("\n".join(page) + "\n")


if __name__ == "__main__":
    main()
