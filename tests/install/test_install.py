#!/usr/bin/env python3
"""`meson install` into a temporary DESTDIR, then use it as a new user would.

Checks, in order (each failure names what is wrong):
  1. the vhost-user.json descriptors (share/qemu/vhost-user/*.json): valid JSON with the schema's
     required keys, a known type, an absolute "binary" that exists after install and whose
     --print-capabilities reports the same type;
  1b. the man page vireo.1 is installed;
  2. every installed header compiles on its own with -Wall -Wextra -Werror;
  3. examples/ builds with only `pkg-config --cflags --libs vireo` (its Makefile);
  4. the example device serves the Vireo driver (examples/pattern-check) on split and packed
     rings, and exits 0 on SIGTERM.
Exit 77 (meson: skipped) with the reason when make, pkg-config or g++ is missing.
"""
import concurrent.futures
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

# vhost-user.json VHostUserBackendType
TYPES = {"9p", "balloon", "block", "caif", "console", "crypto", "gpu", "input", "net", "rng",
         "rpmsg", "rproc-serial", "scsi", "vsock", "fs"}


def fail(msg):
    print("FAILED: " + msg)
    sys.exit(1)


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        fail(f"{' '.join(cmd)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
    return r


def check_descriptors(dest):
    files = sorted(glob.glob(os.path.join(dest, "**/share/qemu/vhost-user/*.json"), recursive=True))
    names = {os.path.basename(f) for f in files}
    for want in ("50-vireo-blk.json", "50-vireo-net.json", "50-vireo-rng.json"):
        if want not in names:
            fail(f"descriptor {want} not installed (found {sorted(names)})")
    for f in files:
        with open(f) as fh:
            try:
                d = json.load(fh)
            except json.JSONDecodeError as e:
                fail(f"{f}: not JSON: {e}")
        for key in ("description", "type", "binary"):  # @VhostUserBackend's required members
            if not isinstance(d.get(key), str) or not d[key]:
                fail(f"{f}: required key '{key}' missing or not a string")
        if d["type"] not in TYPES:
            fail(f"{f}: type '{d['type']}' is not a VHostUserBackendType")
        if not os.path.isabs(d["binary"]):
            fail(f"{f}: binary '{d['binary']}' is not an absolute path")
        binary = dest + d["binary"]
        if not os.access(binary, os.X_OK):
            fail(f"{f}: binary {d['binary']} does not exist (or is not executable) after install")
        caps = json.loads(run([binary, "--print-capabilities"]).stdout)
        if caps.get("type") != d["type"]:
            fail(f"{binary} --print-capabilities says type {caps.get('type')}, descriptor says {d['type']}")
        print(f"ok: {os.path.basename(f)}: {d['type']} -> {d['binary']} (capabilities {caps})")


def check_headers(incdir, tmp):
    headers = sorted(os.path.relpath(h, incdir) for h in glob.glob(os.path.join(incdir, "**/*.hpp"), recursive=True))
    if len(headers) < 20:
        fail(f"only {len(headers)} headers installed under {incdir}")
    def compile_alone(h):
        src = os.path.join(tmp, h.replace("/", "_") + ".cpp")
        with open(src, "w") as fh:
            fh.write(f'#include "{h}"\n')
        return h, subprocess.run(["g++", "-std=c++20", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-fsyntax-only",
                                  "-I" + incdir, src], capture_output=True, text=True)

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:  # the machine has 2 cores
        for h, r in pool.map(compile_alone, headers):
            if r.returncode != 0:
                fail(f"installed header {h} does not compile on its own:\n{r.stderr[-2000:]}")
    print(f"ok: {len(headers)} installed headers compile standalone with -Wall -Wextra -Werror")


def sanitizer_flags(build_root):
    """-fsanitize=... when the build is instrumented: the example must link the same runtime."""
    r = subprocess.run(["meson", "introspect", "--buildoptions", build_root], capture_output=True, text=True)
    try:
        opts = {o["name"]: o["value"] for o in json.loads(r.stdout)}
    except (json.JSONDecodeError, KeyError, TypeError):
        return ""
    san = opts.get("b_sanitize", "none")
    return "" if san in ("none", "", None) else f"-fsanitize={san}"


def main():
    build_root, source_root = sys.argv[1], sys.argv[2]
    for tool in ("make", "pkg-config", "g++"):
        if shutil.which(tool) is None:
            print(f"SKIPPED: {tool} not found (needed to build examples/ against the installed library)")
            sys.exit(77)
    with tempfile.TemporaryDirectory(prefix="vireo-install-") as tmp:
        dest = os.path.join(tmp, "dest")
        run(["meson", "install", "-C", build_root, "--destdir", dest, "--no-rebuild", "--quiet"])
        check_descriptors(dest)
        if not glob.glob(os.path.join(dest, "**/man1/vireo.1"), recursive=True):
            fail("the man page vireo.1 was not installed")
        pcs = glob.glob(os.path.join(dest, "**/pkgconfig/vireo.pc"), recursive=True)
        if len(pcs) != 1:
            fail(f"expected one vireo.pc, found {pcs}")
        libdir = os.path.dirname(os.path.dirname(pcs[0]))
        if not glob.glob(os.path.join(libdir, "libvireo.so.0*")):
            fail(f"no versioned libvireo.so.0* in {libdir}")
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.dirname(pcs[0]), PKG_CONFIG_SYSROOT_DIR=dest,
                   LD_LIBRARY_PATH=libdir)
        san = sanitizer_flags(build_root)
        if san:  # the Makefile appends its own flags to CXXFLAGS from the environment
            env["CXXFLAGS"] = f"-O1 -g {san}"
            print(f"note: sanitizer build: the example is built with {san}")
        cflags = run(["pkg-config", "--cflags", "vireo"], env=env).stdout.split()
        incdir = next(f[2:] for f in cflags if f.startswith("-I"))
        check_headers(incdir, tmp)

        ex = os.path.join(tmp, "examples")
        shutil.copytree(os.path.join(source_root, "examples"), ex)  # out of tree: a copy, no source tree
        run(["make", "-C", ex], env=env)
        print("ok: examples/ built with pkg-config --cflags --libs vireo")

        sock = os.path.join(tmp, "pattern.sock")
        dev = subprocess.Popen([os.path.join(ex, "pattern-rng"), "--socket-path", sock],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            for _ in range(200):
                if os.path.exists(sock):
                    break
                time.sleep(0.02)
            for layout in ("split", "packed"):
                r = run([os.path.join(ex, "pattern-check"), sock, layout, "2000"], env=env, timeout=60)
                print("ok: " + r.stdout.strip())
        finally:
            dev.send_signal(signal.SIGTERM)
            out, _ = dev.communicate(timeout=10)
        if dev.returncode != 0:
            fail(f"the example device exited {dev.returncode} on SIGTERM:\n{out}")
        print("ok: the example device exited 0 on SIGTERM")
    print("PASSED")


if __name__ == "__main__":
    main()
