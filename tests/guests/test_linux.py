#!/usr/bin/python3
"""Real-guest tests of the Linux views of vmi.h, through the vmi tool: what
`vmi ps/modules/sym/syms/info/dmesg/isf/read --pid` find in the lab's captures
must equal what each guest reported about itself (truth.json, kallsyms.txt,
dmesg.txt). Images are opened zero-config (raw: only --base), with the lab's
profiles (tests/guests/profiles/ARCH, unpacked into OUT/profiles/ARCH) where
the kernel needs them: i386, i386-pae, armhf, armhf-lpae always (no BTF,
text-only kallsyms); arm64 for modules (its kallsyms lacks the `modules` data
symbol: System.map), and without it too.

For every arch and format (mem.raw, mem.lime, mem.elf):
  - info: os linux, release, banner;
  - ps: every pid with its ppid, name, tgid, uid, threads; none missing, none
    extra but kworker/* kernel threads that came or went between the guest's
    snapshot of /proc and the pause (counted and named in the check), and the
    idle task, pid 0, which /proc does not list; state letters of the lab's own
    processes; start times in USER_HZ (100) ticks; every user process's
    cmdline, the 501-byte one included;
  - ps --threads: the threads of the multi-threaded process;
  - modules: name, base and size of every module, none extra;
  - syms: every vmlinux line of the guest's /proc/kallsyms (address, type,
    name), none extra;
  - dmesg: the first and last 3 lines of the guest's dmesg;
  - read --pid: the long-cmdline process's argument area, found the way a
    user would (`vmi offset` for task_struct.mm and mm_struct.arg_start, the
    task address from `vmi ps`, kernel reads), read through its page tables
    equals its argv.
Per arch, on one format (each run costs a process start):
  - sym: 50 names and 50 addresses (+ an offset into the symbol) sampled
    from kallsyms.txt (raw image, the hardest case: nothing but memory);
  - isf: `vmi isf -o F` then `vmi ps --profile F` gives the same processes,
    and `vmi info --profile F` says the types came from the ISF (ELF core).
On x86_64 (its raw image, copied to OUT/hostile-PID.raw and removed after):
hostile images - a cycle in the task list, a zeroed BTF header, a zeroed
kallsyms token table - must each end `vmi ps` with one error line and exit
code 1 within 60 s.
Prints one line per check and a final `N passed, M failed`; exits 1 on failure.
"""

import argparse
import json
import lzma
import os
import random
import re
import shutil
import subprocess
import sys
from testlib import check, h, short, summary

HERE = os.path.dirname(os.path.abspath(__file__))
ARCHES = ["x86_64", "x86_64-la57", "x86_64-cloud", "i386-pae", "i386", "arm64", "armhf", "armhf-lpae"]
FORMATS = ["raw", "lime", "elf"]
PROFILE_ARCHES = {"i386-pae", "i386", "armhf", "armhf-lpae"}  # BTF + System.map for everything
MODULES_PROFILE_ARCHES = {"arm64"}                            # System.map for `modules`
NAMED = re.compile(r"^(vmi_sleeper_|vmi_tree_|vmi_longcmd$)")
SAMPLE = 50


def unpack_profiles(arch, out):
    """OUT/profiles/ARCH/{vmlinux.btf,System.map} from the committed .xz."""
    src = os.path.join(HERE, "profiles", arch)
    dst = os.path.join(out, "profiles", arch)
    os.makedirs(dst, exist_ok=True)
    paths = {}
    for name in ("vmlinux.btf", "System.map"):
        path = os.path.join(dst, name)
        if not os.path.exists(path):
            with lzma.open(os.path.join(src, name + ".xz")) as f, open(path + ".tmp", "wb") as o:
                shutil.copyfileobj(f, o)
            os.rename(path + ".tmp", path)
        paths[name] = path
    return paths


class Target:
    """One image of one guest, and how to run vmi on it."""

    def __init__(self, vmi, truth, path, fmt, profiles):
        self.vmi, self.truth, self.path, self.fmt = vmi, truth, path, fmt
        self.base = ["--base", hex(h(truth["ram_base"]))] if fmt == "raw" else []
        self.profiles = profiles
        self.profile = []
        if truth["arch"] in PROFILE_ARCHES:
            self.profile = ["--profile", profiles["vmlinux.btf"], "--profile", profiles["System.map"]]
        self.mod_profile = self.profile
        if truth["arch"] in MODULES_PROFILE_ARCHES:
            self.mod_profile = ["--profile", profiles["System.map"]]

    def run(self, *argv, profile=None, path=None):
        cmd = [self.vmi, argv[0], path or self.path] + list(argv[1:]) + self.base + \
            (self.profile if profile is None else profile)
        try:
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        except subprocess.TimeoutExpired:
            return -1, b"", "timeout after 60 s: " + " ".join(cmd)
        return p.returncode, p.stdout, p.stderr.decode(errors="replace").strip()

    def json(self, *argv, **kw):
        rc, out, err = self.run(*argv, "--json", **kw)
        try:
            return rc, (json.loads(out) if out else None), err
        except ValueError as e:
            return rc, None, "bad JSON (%s): %s" % (e, short(out))


def read_kallsyms(path):
    """vmlinux lines of /proc/kallsyms as (address, type, name); module ones skipped."""
    syms = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3:
                syms.append((int(parts[0], 16), parts[1], parts[2]))
    return syms


# ---- info ---------------------------------------------------------------------

def test_info(t, name):
    rc, info, err = t.json("info")
    os_ = (info or {}).get("os") or {}
    want = (t.truth["kernel_version"], t.truth["banner"].rstrip("\n"))
    check(name + ": info: os linux", rc == 0 and os_.get("name") == "linux", "linux", os_ or err)
    check(name + ": info: release", os_.get("release") == want[0], want[0], os_.get("release"))
    check(name + ": info: banner", os_.get("banner") == want[1], want[1], os_.get("banner"))


# ---- ps -------------------------------------------------------------------------

def task_comm(proc_name):
    """/proc shows a kernel thread's full name (kthread.full_name) and a
    kworker's workqueue ("kworker/0:0-events"); task_struct.comm, which vmi ps
    gives, holds the first 15 bytes of the name alone."""
    return re.sub(r"^(kworker/[^-]+)-.*$", r"\1", proc_name).encode()[:15].decode(errors="ignore")


def compare_processes(name, truth, got, label="ps"):
    """The processes in `got` (vmi ps --json) against truth["processes"]."""
    want = {p["pid"]: p for p in truth["processes"]}
    have = {p["pid"]: p for p in got}
    idle = have.pop(0, None)
    missing = sorted(set(want) - set(have))
    extra = sorted(set(have) - set(want))
    came = [p for p in extra if have[p]["kernel_thread"] and have[p]["name"].startswith("kworker/")]
    went = [p for p in missing if want[p]["comm"].startswith("kworker/")]
    bad_extra = [(p, have[p]["name"]) for p in extra if p not in came]
    bad_missing = [(p, want[p]["comm"]) for p in missing if p not in went]
    allowed = ", ".join("%d %s" % (p, have[p]["name"]) for p in came) + \
        (" came; " if came else "") + ", ".join("%d %s" % (p, want[p]["comm"]) for p in went) + \
        (" went" if went else "")
    check("%s: %s: %d processes, none missing, none extra (pid 0 %s; kworkers allowed: %s)" % (
        name, label, len(want), "listed" if idle else "not listed", allowed or "none"),
        not bad_extra and not bad_missing and idle is not None,
        "the same pids, and the idle task as pid 0", "missing %s, extra %s, idle %s" % (
            bad_missing, bad_extra, idle and idle["name"]))
    both = sorted(set(want) & set(have))
    fields = [("ppid", "ppid"), ("tgid", "tgid"), ("uid", "uid"), ("threads", "threads")]
    diffs = ["pid %d %s: %r != %r" % (p, g, have[p][g], want[p][w])
             for p in both for g, w in fields if have[p][g] != want[p][w]]
    longer = [p for p in both if task_comm(want[p]["comm"]) != want[p]["comm"]]
    diffs += ["pid %d name: %r != %r" % (p, have[p]["name"], task_comm(want[p]["comm"]))
              for p in both if have[p]["name"] != task_comm(want[p]["comm"])]
    check("%s: %s: ppid, name, tgid, uid, threads of %d processes (%d /proc names cut to the "
          "task's comm)" % (name, label, len(both), len(longer)), not diffs, "equal to /proc", short(diffs))
    named = [p for p in both if NAMED.match(want[p]["comm"])]
    diffs = ["pid %d %s: %r != %r" % (p, want[p]["comm"], have[p]["state"], want[p]["state"])
             for p in named if have[p]["state"] != want[p]["state"]]
    check("%s: %s: state of the %d lab processes" % (name, label, len(named)),
          len(named) >= 8 and not diffs, "equal to /proc, 8 or more processes", short(diffs) or len(named))
    diffs = ["pid %d %s: %d ticks != %d" % (p, want[p]["comm"], have[p]["start_time_ns"] // 10000000,
                                             want[p]["starttime"])
             for p in both if have[p]["start_time_ns"] // 10000000 != want[p]["starttime"]]
    check("%s: %s: start_time_ns // 10 ms == /proc starttime, %d processes" % (name, label, len(both)),
          not diffs, "equal", short(diffs))
    return have, want, both


def test_ps(t, name):
    rc, got, err = t.json("ps")
    check(name + ": ps --json", rc == 0 and isinstance(got, list), "exit 0 and a list", err)
    if rc != 0 or not isinstance(got, list):
        return None
    have, want, both = compare_processes(name, t.truth, got)
    users = [p for p in both if not have[p]["kernel_thread"]]
    diffs = ["pid %d %s: %s != %s" % (p, want[p]["comm"], have[p]["cmdline"], want[p]["cmdline"])
             for p in users if have[p]["cmdline"] != want[p]["cmdline"]]
    long_pid = t.truth["long_cmdline"]["pid"]
    check("%s: ps: cmdline of %d user processes (the %d-byte one of pid %d included)" % (
        name, len(users), len("\0".join(t.truth["long_cmdline"]["args"])) + 1, long_pid),
        long_pid in users and not diffs, "equal to /proc/PID/cmdline", short(diffs))
    kdiffs = [p for p in both if have[p]["kernel_thread"] and have[p]["cmdline"] != []]
    check("%s: ps: kernel threads have an empty cmdline" % name, not kdiffs, "[]", kdiffs)
    return have


def test_threads(t, name):
    tp = t.truth["threads_process"]
    rc, got, err = t.json("ps", "--threads")
    got = got if rc == 0 and isinstance(got, list) else []
    tids = sorted(p["pid"] for p in got if p["tgid"] == tp["pid"])
    names = {p["name"] for p in got if p["tgid"] == tp["pid"]}
    leaders = {p["pid"] for p in got if p["pid"] == p["tgid"]}
    check("%s: ps --threads: threads of %s (pid %d)" % (name, tp["comm"], tp["pid"]),
          rc == 0 and tids == sorted(tp["tids"]) and names == {tp["comm"]},
          sorted(tp["tids"]), (tids, names) if rc == 0 else err)
    comm = {p["pid"]: p["comm"] for p in t.truth["processes"]}
    missing = [(p, comm[p]) for p in sorted(set(comm) - leaders) if not comm[p].startswith("kworker/")]
    check(name + ": ps --threads: the thread-group leaders too", rc == 0 and not missing,
          "every pid of /proc (kworkers aside)", "missing %s" % missing)


# ---- modules, symbols ---------------------------------------------------------------

def test_modules(t, name):
    want = sorted((m["name"], h(m["base"]), m["size"]) for m in t.truth["modules"])
    runs = [("", t.mod_profile)]
    if t.mod_profile != t.profile:
        runs.append((" (zero-config)", t.profile))
    for how, profile in runs:
        rc, got, err = t.json("modules", profile=profile)
        have = sorted((m["name"], h(m["base"]), m["size"]) for m in got or []) if rc == 0 else err
        check("%s: modules%s: %d modules, name base size" % (name, how, len(want)), have == want,
              short([(n, hex(b), s) for n, b, s in want]),
              short([(n, hex(b), s) for n, b, s in have]) if rc == 0 else err)


def test_syms(t, name, kallsyms):
    rc, got, err = t.json("syms")
    if rc != 0 or not isinstance(got, list):
        check(name + ": syms --json", False, "exit 0 and a list", err)
        return
    have = sorted((h(s["address"]), s["type"], s["name"]) for s in got)
    want = sorted(kallsyms)
    hs, ws = set(have), set(want)
    missing = sorted(ws - hs)
    extra = sorted(hs - ws)
    fmt = lambda l: short(["%x %s %s" % s for s in l[:10]] + (["... %d in all" % len(l)] if len(l) > 10 else []))
    check("%s: syms: all %d vmlinux symbols of /proc/kallsyms (address, type, name)" % (name, len(want)),
          have == want, "none missing, none extra", "%d missing %s; %d extra %s; %d listed" % (
              len(missing), fmt(missing), len(extra), fmt(extra), len(have)))


def test_sym_sample(t, name, kallsyms):
    rng = random.Random(t.truth["arch"])
    by_name, by_addr = {}, {}
    for a, ty, n in kallsyms:
        by_name.setdefault(n, set()).add(a)
        by_addr.setdefault(a, set()).add(n)
    text = sorted({a for a, ty, n in kallsyms if ty in "tT"})
    names = rng.sample(sorted(n for n, a in by_name.items() if len(a) == 1), SAMPLE)
    bad = []
    for n in names:
        rc, out, err = t.run("sym", n)
        got = out.decode().strip()
        if rc != 0 or not got.startswith("0x") or int(got, 16) not in by_name[n]:
            bad.append((n, [hex(a) for a in by_name[n]], got or err))
    check("%s: sym NAME: %d sampled names give their kallsyms address" % (name, SAMPLE), not bad,
          "the address", short(bad))
    bad = []
    for i in rng.sample(range(len(text) - 1), SAMPLE):
        a = text[i]
        off = rng.randrange(0, text[i + 1] - a)
        rc, out, err = t.run("sym", hex(a + off))
        got = out.decode().strip()
        sym, _, o = got.rpartition("+")
        if rc != 0 or sym not in by_addr[a] or o != hex(off):
            bad.append((hex(a + off), "%s+%s" % ("|".join(sorted(by_addr[a])), hex(off)), got or err))
    check("%s: sym ADDR: %d sampled text addresses give symbol+offset" % (name, SAMPLE), not bad,
          "name+offset", short(bad))


# ---- dmesg, isf, read --pid -----------------------------------------------------------

def test_dmesg(t, name, lines):
    rc, out, err = t.run("dmesg")
    if rc != 0:
        check(name + ": dmesg", False, "the kernel log", err)
        return
    have = out.decode(errors="replace").splitlines()
    want = lines[:3] + lines[-3:]
    missing = [l for l in want if l not in have]
    check("%s: dmesg: first and last 3 lines of the guest's dmesg (%d lines listed)" % (name, len(have)),
          not missing, short(want), "missing " + short(missing))


def test_isf(t, name, out, procs):
    isf = os.path.join(out, "isf-%s-%d.json" % (t.truth["arch"], os.getpid()))
    rc, _, err = t.run("isf", "-o", isf)
    check(name + ": isf -o FILE", rc == 0 and os.path.exists(isf), "exit 0 and the file", err)
    if rc != 0:
        return
    rc, info, err = t.json("info", profile=["--profile", isf])
    src = ((info or {}).get("os") or {}).get("types_source")
    check(name + ": info --profile ISF: types from the ISF", rc == 0 and src == "ISF profile",
          "ISF profile", src or err)
    rc, got, err = t.json("ps", profile=["--profile", isf])
    key = lambda p: (p["pid"], p["ppid"], p["tgid"], p["name"], p["state"], p["uid"], p["threads"],
                     p["start_time_ns"], p["task"], p["cmdline"])
    have = sorted(map(key, got)) if rc == 0 and got else err
    want = sorted(map(key, procs.values()))
    check(name + ": ps --profile ISF: the same processes as with the kernel's BTF", rc == 0 and
          [k for k in have if k[0] != 0] == want, short(want), short(have))
    os.remove(isf)


def test_read_pid(t, name, procs):
    lc = t.truth["long_cmdline"]
    want = "\0".join(lc["args"]).encode() + b"\0"
    width = 4 if t.truth["arch"] in ("i386", "i386-pae", "armhf", "armhf-lpae") else 8
    p = procs.get(lc["pid"])
    step = "ps"
    got = None
    if p:
        step = "offset"
        offs = [t.json("offset", m)[1] for m in ("task_struct.mm", "mm_struct.arg_start")]
        if all(offs):
            step = "read task->mm"
            rc, mm, err = t.run("read", hex(h(p["task"]) + offs[0]["offset"]), str(width), "--raw")
            if rc == 0:
                step = "read mm->arg_start"
                mm = int.from_bytes(mm, "little")
                rc, start, err = t.run("read", hex(mm + offs[1]["offset"]), str(width), "--raw")
            if rc == 0:
                step = "read --pid"
                start = int.from_bytes(start, "little")
                rc, got, err = t.run("read", hex(start), str(len(want)), "--raw", "--pid", str(lc["pid"]))
            if rc != 0:
                got = err
    check("%s: read --pid %d at its arg_start: its argv (%d bytes)" % (name, lc["pid"], len(want)),
          got == want, short(want), "%s: %s" % (step, short(got)))


# ---- hostile images ----------------------------------------------------------------------

def one_error(rc, out, err):
    return rc == 1 and err.count("\n") == 0 and err.startswith("vmi: ")


def patch(path, pa, data):
    with open(path, "r+b") as f:
        f.seek(pa)
        f.write(data)


def check_hostile(t, what, pids):
    """vmi ps on a broken image: one error line and exit 1 (or, should the
    library work around the damage, exactly the processes of the intact
    image); vmi info still works (its OS part may say "not found")."""
    rc, out, err = t.run("ps", "--json")
    try:
        got = sorted(p["pid"] for p in json.loads(out)) if rc == 0 else None
    except ValueError:
        got = "bad JSON"
    check("hostile: %s: ps fails with one error line" % what, one_error(rc, out, err) or got == pids,
          "exit 1, one line (or the intact image's %d processes)" % len(pids),
          "exit %d: %s %s" % (rc, err, short(got)))
    rc, out, err = t.run("info")
    check("hostile: %s: info exits 0" % what, rc == 0, 0, "exit %d: %s" % (rc, err))


def test_hostile(vmi, out, truth, path, profiles):
    """x86_64 raw image copies, each broken one way: vmi ps must fail cleanly."""
    base = h(truth["ram_base"])
    copy = os.path.join(out, "hostile-%d.raw" % os.getpid())
    t = Target(vmi, truth, copy, "raw", profiles)

    def fresh():
        shutil.copyfile(path, copy)

    def pa_of(va):
        rc, w, err = t.json("translate", hex(va))
        return h(w["pa"]) - base if rc == 0 else None

    try:
        # a cycle: a late task's tasks.next points back at an earlier task's node
        fresh()
        rc, procs, err = t.json("ps")
        pids = sorted(p["pid"] for p in procs or [])
        rc2, off, err2 = t.json("offset", "task_struct.tasks")
        late = [p for p in procs or [] if p["pid"] > 100]
        if rc == 0 and rc2 == 0 and late:
            node = h(late[-1]["task"]) + off["offset"]
            target = h([p for p in procs if p["pid"] == 2][0]["task"]) + off["offset"]
            pa = pa_of(node)
            patch(copy, pa, target.to_bytes(8, "little"))
            check_hostile(t, "task list cycle (pid %d -> pid 2)" % late[-1]["pid"], pids)
        else:
            check("hostile: task list cycle: setup", False, "ps and offset work", err or err2)
        # the BTF header zeroed
        fresh()
        rc, info, err = t.json("info")
        m = re.search(r"at pa (0x[0-9a-f]+)", ((info or {}).get("os") or {}).get("types_source") or "")
        if m:
            patch(copy, h(m.group(1)) - base, b"\0" * 24)
            check_hostile(t, "BTF header at %s zeroed" % m.group(1), pids)
        else:
            check("hostile: BTF header: setup", False, "info's types_source with 'at pa'", info and info["os"])
        # the kallsyms token table zeroed
        fresh()
        rc, sym, err = t.json("sym", "kallsyms_token_table")
        pa = pa_of(h(sym["address"])) if rc == 0 else None
        if pa is not None:
            patch(copy, pa, b"\0" * 4096)
            check_hostile(t, "kallsyms_token_table zeroed", pids)
        else:
            check("hostile: kallsyms token table: setup", False, "its address", err)
    finally:
        if os.path.exists(copy):
            os.remove(copy)


# ---- main --------------------------------------------------------------------------------

def test_arch(vmi, arch, out):
    d = os.path.join(out, arch)
    truth = json.load(open(os.path.join(d, "truth.json")))
    profiles = unpack_profiles(arch, out) if arch in PROFILE_ARCHES | MODULES_PROFILE_ARCHES else {}
    kallsyms = read_kallsyms(os.path.join(d, "kallsyms.txt"))
    dmesg = open(os.path.join(d, "dmesg.txt"), errors="replace").read().splitlines()
    for fmt in FORMATS:
        t = Target(vmi, truth, os.path.join(d, "mem." + fmt), fmt, profiles)
        name = "%s/%s" % (arch, fmt)
        test_info(t, name)
        procs = test_ps(t, name)
        test_threads(t, name)
        test_modules(t, name)
        test_syms(t, name, kallsyms)
        test_dmesg(t, name, dmesg)
        if procs:
            test_read_pid(t, name, procs)
        if fmt == "raw":
            test_sym_sample(t, name, kallsyms)
        if fmt == "elf" and procs:
            test_isf(t, name, out, procs)
    if arch == "x86_64":
        test_hostile(vmi, out, truth, os.path.join(d, "mem.raw"), profiles)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vmi", default="build/vmi")
    ap.add_argument("--out", default="build/guests")
    ap.add_argument("arches", nargs="*", default=ARCHES)
    a = ap.parse_args()
    for arch in a.arches:
        if not os.path.exists(os.path.join(a.out, arch, "truth.json")):
            check(arch + ": capture", False, "a capture in %s/%s (lab.py capture)" % (a.out, arch), "none")
            continue
        test_arch(a.vmi, arch, a.out)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
