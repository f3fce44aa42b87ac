#!/usr/bin/python3
"""make demo: boot the x86_64 lab guest (a real Debian kernel under QEMU TCG,
RAM in a shared file under /dev/shm) and read it from outside with the vmi
tool while it runs: the RAM file is a raw image of the live guest, the paging
root comes from QEMU's own view of CR3. Then shut it down.

Usage: demo.py PATH/TO/vmi
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import lab  # noqa: E402  (the lab's QMP client)

BOOT_TIMEOUT = 300


def run(argv):
    print("$ " + " ".join(argv), flush=True)
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    sys.stdout.write(p.stdout.decode(errors="replace"))
    return p


def main():
    vmi = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/vmi")
    t0 = time.time()
    boot = subprocess.Popen([sys.executable, os.path.join(HERE, "lab.py"), "boot", "x86_64", "--live"],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = boot.stdout.readline()  # the lab prints one JSON line once the guest is up
        if not line:
            print("demo: the guest did not boot (see the lab's messages above)", file=sys.stderr)
            return 1
        g = json.loads(line)
        truth = json.load(open(g["truth"]))
        q = lab.QMP(g["qmp"])
        cr3 = int(re.search(r"\bCR3=([0-9a-f]+)", q.hmp("info registers")).group(1), 16)
        q.close()
        print("guest up in %.1f s: %s, RAM shared at %s, CR3 %#x\n" %
              (g["boot_seconds"], truth["uname"].strip(), g["shm"], cr3), flush=True)
        paging = ["--mode", "ia32e", "--dtb", hex(cr3)]
        ok = run([vmi, "info", g["shm"]] + paging).returncode == 0
        banner = truth["kallsyms"]["linux_banner"]
        ok &= run([vmi, "read", g["shm"], banner, "96"] + paging).returncode == 0
        p = run([vmi, "read", g["shm"], banner, str(len(truth["banner"])), "--raw"] + paging)
        same = p.returncode == 0 and p.stdout.decode(errors="replace") == truth["banner"]
        print("\nlinux_banner read from outside %s the guest's /proc/version" %
              ("equals" if same else "DIFFERS FROM"))
        ok &= same
        ok &= run([vmi, "translate", g["shm"], banner] + paging).returncode == 0
        print("\ndemo %s in %.1f s" % ("done" if ok else "FAILED", time.time() - t0))
        return 0 if ok else 1
    finally:
        boot.send_signal(signal.SIGTERM)  # the lab stops its QEMU and cleans up
        try:
            boot.wait(timeout=30)
        except subprocess.TimeoutExpired:
            boot.kill()


if __name__ == "__main__":
    sys.exit(main())
