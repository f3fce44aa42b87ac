#!/usr/bin/python3
"""The vmi tool on a running lab guest (qemu:QMP_SOCKET): ps equals the
guest's list, trace (breakpoint) and watch (watchpoint) hit where they must
with the process on the vCPU named, and the guest runs on unharmed.
Prints one line per check and `N passed, M failed`."""

import argparse
import json
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
passed = failed = 0


def check(name, ok, expected="", got=""):
    global passed, failed
    if ok:
        passed += 1
        print("ok    " + name)
    else:
        failed += 1
        print("FAIL  %s\n      expected: %s\n      got:      %s" % (name, str(expected)[:300], str(got)[:300]))


def run(*argv):
    p = subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace").strip()


def test(vmi, arch):
    boot = subprocess.Popen([sys.executable, os.path.join(HERE, "lab.py"), "boot", arch, "--live"],
                            stdout=subprocess.PIPE, text=True)
    try:
        g = json.loads(boot.stdout.readline())
        truth = json.load(open(g["truth"]))
        t = "qemu:" + g["qmp"]
        pids = {p["pid"] for p in truth["processes"]} | {0}
        rc, out, err = run(vmi, "ps", t, "--json")
        got = {p["pid"] for p in json.loads(out)} if rc == 0 else set()
        check(arch + ": live ps lists the guest's processes", rc == 0 and pids <= got, sorted(pids), sorted(got) or err)
        rc, out, err = run(vmi, "sym", t, "update_process_times")
        addr = int(out, 16) if rc == 0 else None
        rc, out, err = run(vmi, "trace", t, "--break", "update_process_times", "--count", "3", "--json")
        hits = json.loads(out) if rc == 0 else []
        check(arch + ": trace: 3 hits, pc at the symbol", len(hits) == 3 and all(int(h["pc"], 16) == addr for h in hits),
              "3 x %s" % (hex(addr) if addr else None), [h["pc"] for h in hits] or err)
        check(arch + ": trace names the process on the vCPU", hits and all(h["pid"] in got for h in hits),
              "pids of running processes", [(h["pid"], h["name"]) for h in hits])
        rc, out, err = run(vmi, "sym", t, "jiffies")
        if rc == 0:  # amd64 lists data symbols
            jiffies = int(out, 16)
            rc, out, err = run(vmi, "watch", t, hex(jiffies), "8", "--count", "2", "--json")
            hits = json.loads(out) if rc == 0 else []
            check(arch + ": watch jiffies: 2 write hits on it", len(hits) == 2 and
                  all(int(h["addr"], 16) == jiffies for h in hits), hex(jiffies), [h.get("addr") for h in hits] or err)
            a = run(vmi, "read", t, hex(jiffies), "8", "--raw")[1]
            time.sleep(0.5)
            b = run(vmi, "read", t, hex(jiffies), "8", "--raw")[1]
            check(arch + ": the guest runs on after the events (jiffies advance)", a != b, "different values", (a, b))
    finally:
        boot.send_signal(signal.SIGTERM)
        try:
            boot.wait(timeout=30)
        except subprocess.TimeoutExpired:
            boot.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vmi", default="build/vmi")
    ap.add_argument("arches", nargs="*", default=["x86_64", "arm64"])
    a = ap.parse_args()
    for arch in a.arches:
        test(os.path.abspath(a.vmi), arch)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
