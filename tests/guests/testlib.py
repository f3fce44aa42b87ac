"""Shared by the real-guest test scripts (test_guests, test_linux,
test_profiles, test_live_cli): one line per check, with what was expected
and what came on a failure, and a closing `N passed, M failed`."""

import subprocess

passed = 0
failed = 0


def short(v, n=400):
    s = str(v)
    return s if len(s) <= n else s[:n] + "... (%d chars)" % len(s)


def check(name, ok, expected="", got=""):
    global passed, failed
    if ok:
        passed += 1
        print("ok    " + name)
    else:
        failed += 1
        print("FAIL  %s\n      expected: %s\n      got:      %s" % (name, short(expected), short(got)))


def summary():
    """Prints the closing line; the exit code: 1 when anything failed."""
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


def h(v):
    """A hex string from truth.json or the tool's JSON (or a number) as an int."""
    return int(v, 16) if isinstance(v, str) else int(v)


def run(*argv, timeout=120):
    p = subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace").strip()
