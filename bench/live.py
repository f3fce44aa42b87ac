#!/usr/bin/python3
"""make bench, live part: boots the x86_64 lab guest, runs `bench --qmp` on
it, stops it. Skipped with a note when QEMU or the lab kernels are missing."""
import json, os, signal, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
LAB = os.path.join(HERE, "..", "tests", "guests", "lab.py")


def main():
    bench = sys.argv[1]
    boot = subprocess.Popen([sys.executable, LAB, "boot", "x86_64", "--live"], stdout=subprocess.PIPE, text=True)
    try:
        line = boot.stdout.readline()
        if not line:
            print("live guest: not booted (see above); skipped")
            return 0
        return subprocess.run([bench, "--qmp", json.loads(line)["qmp"]]).returncode
    finally:
        boot.send_signal(signal.SIGTERM)
        boot.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
