#!/usr/bin/python3
"""The vmi tool on a running lab guest (qemu:QMP_SOCKET): ps equals the
guest's list, trace (breakpoint) and watch (watchpoint) hit where they must
with the process on the vCPU named, processes the guest starts after attach
(through lab.py's command channel) show up in ps and in an exec trace, and
the guest runs on unharmed.
Prints one line per check and `N passed, M failed`."""

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from testlib import check, run, summary

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
import lab  # noqa: E402  (send_command)

# Breakpoint for "a program was exec'd": setup_new_exec (fs/exec.c, 6.1), called
# once per successful execve by the binary loader (load_elf_binary) right after
# begin_new_exec(), which has already set current->comm to the new file's name:
# the hit names the new program, not the shell that exec'd it.
EXEC_HOOK = "setup_new_exec"


@contextlib.contextmanager
def live_guest(arch, *extra):
    """A lab guest booted live for the block; stopped (by the lab) after it."""
    boot = subprocess.Popen([sys.executable, os.path.join(HERE, "lab.py"), "boot", arch, "--live"] + list(extra),
                            stdout=subprocess.PIPE, text=True)
    try:
        yield json.loads(boot.stdout.readline())
    finally:
        boot.send_signal(signal.SIGTERM)
        try:
            boot.wait(timeout=30)
        except subprocess.TimeoutExpired:
            boot.kill()


def test(vmi, arch):
    with live_guest(arch) as g:
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
        jiffies_ok = None
        if rc == 0:  # amd64 lists data symbols
            jiffies = jiffies_ok = int(out, 16)
            rc, out, err = run(vmi, "watch", t, hex(jiffies), "8", "--count", "2", "--json")
            hits = json.loads(out) if rc == 0 else []
            check(arch + ": watch jiffies: 2 write hits on it", len(hits) == 2 and
                  all(int(h["addr"], 16) == jiffies for h in hits), hex(jiffies), [h.get("addr") for h in hits] or err)
            a = run(vmi, "read", t, hex(jiffies), "8", "--raw")[1]
            time.sleep(0.5)
            b = run(vmi, "read", t, hex(jiffies), "8", "--raw")[1]
            check(arch + ": the guest runs on after the events (jiffies advance)", a != b, "different values", (a, b))
        late_and_exec(vmi, arch, t, g)
        # Every arch: the timer tick still runs (arm64 has no data symbols for jiffies).
        rc, out, err = run(vmi, "trace", t, "--break", "update_process_times", "--count", "2", "--json")
        check(arch + ": the guest ticks on after the exec trace (2 update_process_times hits)",
              rc == 0 and len(json.loads(out)) == 2, 2, out.strip()[:200] or err)
        if jiffies_ok is not None:
            a = run(vmi, "read", t, hex(jiffies_ok), "8", "--raw")[1]
            time.sleep(0.5)
            b = run(vmi, "read", t, hex(jiffies_ok), "8", "--raw")[1]
            check(arch + ": the guest runs on after the exec trace (jiffies advance)", a != b, "different values", (a, b))


def ps_names(vmi, t):
    rc, out, err = run(vmi, "ps", t, "--json")
    return [p["name"] for p in json.loads(out)] if rc == 0 else []


def late_and_exec(vmi, arch, t, g):
    """Processes started after attach, through the guest's command channel.
    comm is the name of the file exec'd, so each program gets a symlink to
    busybox (exec -a sets argv[0] for busybox's applet choice only)."""
    if not g.get("cmd"):
        check(arch + ": boot --live offers a command channel", False, "cmd socket", g.get("cmd"))
        return
    # Symlinks first, in the same line as vmi_late: once vmi_late is listed they exist.
    lab.send_command(g["cmd"], "for i in 1 2 3; do ln -s busybox /bin/vmi_new_$i; done; "
                               "ln -s busybox /bin/vmi_late; exec -a sleep /bin/vmi_late 100")
    names, end = [], time.time() + 30
    while "vmi_late" not in names and time.time() < end:
        time.sleep(0.5)
        names = ps_names(vmi, t)
    check(arch + ": a process started after attach is on the next ps (vmi_late)", "vmi_late" in names,
          "vmi_late", sorted(n for n in names if n.startswith("vmi")))
    tr = subprocess.Popen([vmi, "trace", t, "--break", EXEC_HOOK, "--count", "3", "--seconds", "60", "--json"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(2)  # attach + arm; no output before the first hit to poll for
        # One fork (the loop's subshell) + one fork and one exec per program, nothing else.
        lab.send_command(g["cmd"], "for i in 1 2 3; do (exec -a sleep /bin/vmi_new_$i 0.2); done")
        out, err = tr.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        tr.kill()
        out, err = tr.communicate()
    hits = json.loads(out) if tr.returncode == 0 and out.strip() else []
    got = [(h["pid"], h["name"]) for h in hits]
    check(arch + ": trace %s: 3 hits for 3 programs started after attach" % EXEC_HOOK, len(hits) == 3,
          3, got or err.decode(errors="replace").strip())
    check(arch + ": each exec hit names the new program, in order (vmi_new_1..3)",
          [h["name"] for h in hits] == ["vmi_new_1", "vmi_new_2", "vmi_new_3"] and
          len({h["pid"] for h in hits}) == 3, "vmi_new_1..3, 3 pids", got)
    # Exactly 3: nothing else execs afterwards (the programs are gone by now).
    rc, out, err = run(vmi, "trace", t, "--break", EXEC_HOOK, "--count", "1", "--seconds", "3", "--json")
    extra = json.loads(out) if out.strip() else None
    check(arch + ": no further exec hits after the 3 programs", rc != 0 and extra == [], "[] (timeout)",
          extra if extra is not None else err)


def test_reboot(vmi, arch):
    """A guest that reboots under a running session: the session ends with a
    clear error within seconds (its symbols, roots and breakpoints belong to
    the old kernel), and a new session works on the rebooted guest."""
    with live_guest(arch, "--allow-reboot") as g:
        t = "qemu:" + g["qmp"]
        trace = subprocess.Popen([vmi, "trace", t, "--break", "update_process_times", "--count", "100000",
                                  "--seconds", "120"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(2)
        t0 = time.time()
        lab.send_command(g["cmd"], "echo b > /proc/sysrq-trigger")
        try:
            err = trace.communicate(timeout=30)[1].strip()
        except subprocess.TimeoutExpired:
            trace.kill()
            err = "still running after 30 s"
        took = time.time() - t0
        check(arch + ": reboot under a trace ends it with a clear error within 10 s",
              trace.returncode == 1 and "reset (rebooted)" in err and took < 10, "exit 1, 'reset (rebooted)', < 10 s",
              (trace.returncode, err, "%.1f s" % took))
        ok = False
        for _ in range(60):  # the guest boots again
            rc, out, _ = run(vmi, "ps", t, "--json")
            if rc == 0 and any(p["name"] == "vmi_tree_leaf" for p in json.loads(out)):
                ok = True
                break
            time.sleep(1)
        check(arch + ": a new session lists the rebooted guest's processes", ok, "vmi_tree_leaf listed", out[:200])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vmi", default="build/vmi")
    ap.add_argument("arches", nargs="*", default=["x86_64", "arm64"])
    a = ap.parse_args()
    for arch in a.arches:
        test(os.path.abspath(a.vmi), arch)
    test_reboot(os.path.abspath(a.vmi), "x86_64")
    return summary()


if __name__ == "__main__":
    sys.exit(main())
