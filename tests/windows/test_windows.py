#!/usr/bin/python3
"""CLI test of vmi.h's Windows support on SYNTHETIC Windows images.

No Windows guest runs here: tests/windows/synth.py builds the images (x64
4-level, PAE and legacy paging; plain and encoded KDBG; a build only its
profile describes) with a truth.json each. This runs build/vmi on every
variant in every format (mem.raw, mem.elf, mem.dmp, mem-bitmap.dmp), with
no profile, with profile.json (Volatility3 ISF) and with libvmi.conf, and
compares `info`, `ps`, `modules`, `sym` and `dlls` with the truth; then the
hostile images (cyclic lists, lying UNICODE_STRINGs, broken PE headers,
self-referencing page tables, cut files) with build/vmi and an ASan+UBSan
build: a clean error (one stderr line) or the entries before the bad one,
never a crash or a hang.

    test_windows.py [--vmi build/vmi] [--images build/windows] [--generate]
                    [--only VARIANT] [--quick] [--no-san]

One line per check (`ok` / `FAIL` with expected and got), then
`N passed, M failed`; exit 1 on failures.
"""

import argparse
import datetime
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "guests"))
import testlib  # noqa: E402
from testlib import check, h, short  # noqa: E402

FORMATS = (("raw", "mem.raw"), ("elf", "mem.elf"), ("dmp", "mem.dmp"), ("bitmap", "mem-bitmap.dmp"))
TIMEOUT = 60
SAN_MARKERS = ("AddressSanitizer", "UndefinedBehaviorSanitizer", "runtime error:", "LeakSanitizer")


def vmi(tool, *args, timeout=TIMEOUT):
    """(exit code, stdout, stderr); a timeout comes back as code -999."""
    try:
        return testlib.run(tool, *args, timeout=timeout)
    except subprocess.TimeoutExpired:
        return -999, "", "timed out after %ds" % timeout
    except OSError as e:
        return -998, "", "cannot run %s: %s" % (tool, e)


def parse_json(out):
    try:
        return json.loads(out)
    except ValueError:
        return None


def hexeq(got, want):
    try:
        return got is not None and h(got) == want
    except (TypeError, ValueError):
        return False


def one_line(err):
    return err.count("\n") == 0 and err.startswith("vmi: ")


def cmdline_ok(got, want):
    """The tool prints a command line as an array (NUL-separated pieces);
    a Windows command line is one string, or split on blanks."""
    if want is None:
        return got in (None, [], [""])
    if not isinstance(got, list):
        return False
    return got == [want] or " ".join(got) == want or " ".join(got) == want.rstrip()


def path_ok(got, want):
    return (got or "") == want


# --------------------------------------------------------------------------
# one variant, one file, one profile

class Case:
    def __init__(self, a, truth, vdir, fmt, fname, profile):
        self.a, self.t, self.vdir = a, truth, vdir
        self.target = os.path.join(vdir, fname)
        self.fmt = fmt
        self.profile = profile
        self.label = "%s %s %s" % (truth["variant"], fmt, "no-profile" if not profile else profile)
        self.opts = ["--profile", os.path.join(vdir, profile)] if profile else []

    def run(self, *args):
        return vmi(self.a.vmi, args[0], self.target, *args[1:], *self.opts, "--json")

    def name(self, what):
        return "%s: %s" % (self.label, what)

    def checks(self):
        t = self.t
        if t["needs_profile"] and not self.profile and not self.needs_profile():
            return
        self.info()
        limited = self.profile == "libvmi.conf"
        self.ps(limited)
        if not limited:
            self.ps_text()
        if limited:
            return  # LibVMI's keys are EPROCESS offsets: ps is what they feed
        self.modules()
        self.syms()
        self.dlls()
        if self.fmt == "raw" or self.a.quick is False:
            self.threads()
        if self.fmt == "elf":
            self.current()

    def threads(self):
        """ps --threads: each process, then its ETHREADs (pid = tid, tgid =
        the process id, task = the ETHREAD) in list order."""
        rc, out, err = self.run("ps", "--threads")
        j = parse_json(out)
        ok = rc == 0 and isinstance(j, list)
        check(self.name("ps --threads runs"), ok, "exit 0 and a JSON list", "exit %d, stderr %r" % (rc, err))
        if not ok:
            return
        want, got = [], []
        for p in self.t["processes"]:
            want.append((p["pid"], p["pid"], p["eprocess"]))
            want += [(tid, p["pid"], et) for tid, et in zip(p["tids"], p["ethreads"])]
        for e in j:
            try:
                got.append((e.get("pid"), e.get("tgid"), h(e.get("task"))))
            except (TypeError, ValueError):
                got.append((e.get("pid"), e.get("tgid"), e.get("task")))
        bad = [(w, g) for w, g in zip(want, got) if w != g]
        check(self.name("ps --threads: processes and threads"), len(want) == len(got) and not bad,
              "%d entries as in truth.json" % len(want),
              "%d entries, mismatches (want, got): %s" % (len(got), short(bad[:4], 300)))

    def current(self):
        """ps --current: the process each vCPU runs, through its KPCR."""
        rc, out, err = self.run("ps", "--current")
        j = parse_json(out)
        got = [(e.get("vcpu"), e.get("pid")) for e in j] if rc == 0 and isinstance(j, list) else \
            "exit %d: %s" % (rc, err)
        want = [(i, c["current_pid"]) for i, c in enumerate(self.t["vcpus"])]
        check(self.name("ps --current"), got == want, want, got)

    def needs_profile(self):
        """Encoded KDBG / unknown build without a profile: a clear failure
        naming the PDB the profile must be made from. A build with published
        offsets may still be read through the PE exports (PsInitialSystemProcess)
        and a built-in table: then everything must be right (returns True:
        run the full checks)."""
        rc, _, err = self.run("ps")
        pdb = self.t["pdb"]
        if rc == 0 and self.t["build"] in (7601, 19041):
            print("# %s: read without a profile (exports + built-in offsets): full checks" % self.label)
            return True
        check(self.name("ps fails without a profile"), rc == 1 and one_line(err),
              "exit 1 and one stderr line", "exit %d, stderr %r" % (rc, err))
        check(self.name("the error names the PDB"), pdb["name"] in err and pdb["id"] in err,
              "%s and %s in the message" % (pdb["name"], pdb["id"]), err)
        return False

    def info(self):
        rc, out, err = self.run("info")
        j = parse_json(out)
        ok = rc == 0 and isinstance(j, dict)
        check(self.name("info runs"), ok, "exit 0 and JSON", "exit %d, stderr %r" % (rc, err))
        if not ok:
            return
        os_ = j.get("os") or {}
        t = self.t
        kdbg_want = (0, t["kdbg_va"]) if t["kdbg_encoded"] else (t["kdbg"],)
        kdbg_got = os_.get("kdbg")
        kdbg_got = 0 if kdbg_got is None else (h(kdbg_got) if isinstance(kdbg_got, (str, int)) else kdbg_got)
        fields = [("name", os_.get("name") == "windows", "windows", os_.get("name")),
                  ("build", os_.get("build") == t["build"], t["build"], os_.get("build")),
                  ("kernel_base", hexeq(os_.get("kernel_base"), t["kernel_base"]), hex(t["kernel_base"]),
                   os_.get("kernel_base")),
                  ("kdbg", kdbg_got in kdbg_want, " or ".join(hex(k) for k in kdbg_want), os_.get("kdbg")),
                  ("pdb_name", os_.get("pdb_name") == t["pdb"]["name"], t["pdb"]["name"], os_.get("pdb_name")),
                  ("pdb_id", os_.get("pdb_id") == t["pdb"]["id"], t["pdb"]["id"], os_.get("pdb_id")),
                  ("paging", (j.get("paging") or {}).get("mode", "").lower() == t["paging"], t["paging"],
                   (j.get("paging") or {}).get("mode"))]
        for f, good, want, got in fields:
            check(self.name("info os.%s" % f), good, want, got if f != "name" or good else
                  "%s (error: %s)" % (got, os_.get("error")))

    def ps(self, limited):
        rc, out, err = self.run("ps")
        j = parse_json(out)
        ok = rc == 0 and isinstance(j, list)
        check(self.name("ps runs"), ok, "exit 0 and a JSON list", "exit %d, stderr %r" % (rc, err))
        if not ok:
            return
        want = self.t["processes"]
        got_pids = [p.get("pid") for p in j]
        check(self.name("ps: every process, in list order"), got_pids == [p["pid"] for p in want],
              [p["pid"] for p in want], got_pids)
        by = {p.get("pid"): p for p in j}
        bad = []
        for w in want:
            g = by.get(w["pid"])
            if g is None:
                continue
            cmp = [("name", g.get("name") == w["name"], w["name"], g.get("name")),
                   ("dtb", hexeq(g.get("dtb"), w["dtb"]), hex(w["dtb"]), g.get("dtb")),
                   ("task", hexeq(g.get("task"), w["eprocess"]), hex(w["eprocess"]), g.get("task"))]
            if not limited or self.t["build"] in (7601, 19041):
                cmp += [("ppid", g.get("ppid") == w["ppid"], w["ppid"], g.get("ppid")),
                        ("peb", hexeq(g.get("peb", 0) or 0, w["peb"]), hex(w["peb"]), g.get("peb")),
                        ("create_time", hexeq(g.get("create_time"), w["create_time"]), w["create_time"],
                         g.get("create_time")),
                        ("path", path_ok(g.get("path"), w["path"]), w["path"], g.get("path")),
                        ("cmdline", cmdline_ok(g.get("cmdline"), w["cmdline"]), w["cmdline"], g.get("cmdline"))]
            for f, good, ew, eg in cmp:
                if not good:
                    bad.append("pid %d %s: expected %s, got %s" % (w["pid"], f, short(ew, 80), short(eg, 80)))
        check(self.name("ps: process fields"), not bad, "all fields as in truth.json",
              "%d mismatches: %s" % (len(bad), "; ".join(bad[:6])))

    def ps_text(self):
        """The text listing: each process's CREATED column is its CreateTime
        (a FILETIME) as a UTC date."""
        os.environ["COLUMNS"] = "400"  # not cut at 80 columns
        rc, out, err = vmi(self.a.vmi, "ps", self.target, *self.opts)
        del os.environ["COLUMNS"]
        rows = {}
        for line in out.splitlines()[1:]:
            f = line.split()
            if len(f) >= 7 and f[0].isdigit():
                rows[int(f[0])] = f[5] + " " + f[6]
        bad = []
        for w in self.t["processes"]:
            want = (datetime.datetime(1601, 1, 1) +
                    datetime.timedelta(microseconds=w["create_time"] // 10)).strftime("%Y-%m-%d %H:%M:%S")
            if rows.get(w["pid"]) != want:
                bad.append("pid %d: expected %s, got %s" % (w["pid"], want, rows.get(w["pid"])))
        check(self.name("ps text: creation dates"), rc == 0 and not bad, "exit 0, every date as in truth.json",
              "exit %d, %d mismatches: %s" % (rc, len(bad), "; ".join(bad[:4])))

    def modules(self):
        rc, out, err = self.run("modules")
        j = parse_json(out)
        ok = rc == 0 and isinstance(j, list)
        check(self.name("modules runs"), ok, "exit 0 and a JSON list", "exit %d, stderr %r" % (rc, err))
        if ok:
            self.compare_images("modules", j, self.t["modules"])

    def compare_images(self, what, got, want):
        names = [m.get("name") for m in got]
        check(self.name("%s: names in order" % what), names == [m["name"] for m in want],
              [m["name"] for m in want], names)
        bad = []
        for g, w in zip(got, want):
            for f in ("base", "addr"):
                if not hexeq(g.get(f), w[f]):
                    bad.append("%s %s: expected %s, got %s" % (w["name"], f, hex(w[f]), g.get(f)))
            if g.get("size") != w["size"]:
                bad.append("%s size: expected %d, got %s" % (w["name"], w["size"], g.get("size")))
            if g.get("path") != w["path"]:
                bad.append("%s path: expected %r, got %r" % (w["name"], w["path"], g.get("path")))
        check(self.name("%s: base, size, addr, path" % what), not bad, "as in truth.json",
              "%d mismatches: %s" % (len(bad), "; ".join(bad[:6])))

    def sym_sample(self):
        exps = self.t["exports"]
        names = sorted(exps)
        rng = random.Random(self.t["variant"])
        pick = ["PsInitialSystemProcess", "NtBuildNumber", names[0], names[-1]]
        pick += rng.sample(names, 2 if self.a.quick or self.fmt != "raw" else 8)
        if self.profile == "profile.json":
            pick += ["PsActiveProcessHead", "PsLoadedModuleList", "KdDebuggerDataBlock", "KiWaitNever"]
        return list(dict.fromkeys(pick))

    def syms(self):
        t = self.t
        known = dict(t["exports"])
        if self.profile == "profile.json":
            known.update(t["symbols"])
        for n in self.sym_sample():
            rc, out, err = self.run("sym", n)
            j = parse_json(out) if rc == 0 else None
            want = known[n]
            got = j.get("address") if isinstance(j, dict) else "exit %d: %s" % (rc, err)
            check(self.name("sym %s" % n), isinstance(j, dict) and hexeq(got, want), hex(want), got)
        # address -> name: an export alone at its address, 2 bytes in
        addrs = sorted(set(known.values()) | set(t["symbols"].values()))
        counts = {}
        for v in known.values():
            counts[v] = counts.get(v, 0) + 1
        rng = random.Random(t["variant"] + "rev")
        cands = [n for n, v in sorted(t["exports"].items()) if counts[v] == 1 and
                 addrs.index(v) + 1 < len(addrs) and addrs[addrs.index(v) + 1] > v + 2]
        n = rng.choice(cands)
        rc, out, err = self.run("sym", hex(t["exports"][n] + 2))
        j = parse_json(out) if rc == 0 else None
        got = (j.get("name"), j.get("offset")) if isinstance(j, dict) else "exit %d: %s" % (rc, err)
        check(self.name("sym 0x%x (reverse)" % (t["exports"][n] + 2)), got == (n, 2), (n, 2), got)
        # a forwarder has no address in ntoskrnl
        for n, fwd in sorted(t["forwarded"].items())[:1]:
            rc, out, err = self.run("sym", n)
            j = parse_json(out) if rc == 0 else None
            if rc == 0:
                a = h(j.get("address")) if isinstance(j, dict) else None
                good = a is not None and not (t["kernel_base"] <= a < t["kernel_base"] + t["kernel_size"])
            else:
                good = rc == 1 and one_line(err)
            check(self.name("sym %s (forwarded to %s)" % (n, fwd)), good,
                  "an error, or an address outside ntoskrnl's image", "exit %d %s %s" % (rc, out.strip(), err))

    def dlls(self):
        t = self.t
        pids = [tr["pid"] for tr in t["transition"]]
        pids += [p["pid"] for p in t["processes"] if p["name"] in ("tool.exe", "explorer.exe")]
        if self.fmt != "raw" or self.a.quick:
            pids = pids[:2]
        for pid in dict.fromkeys(pids):
            rc, out, err = self.run("dlls", "--pid", str(pid))
            j = parse_json(out)
            ok = rc == 0 and isinstance(j, list)
            check(self.name("dlls --pid %d runs" % pid), ok, "exit 0 and a JSON list",
                  "exit %d, stderr %r" % (rc, err))
            if ok:
                self.compare_images("dlls --pid %d" % pid, j, t["dlls"][str(pid)])


# --------------------------------------------------------------------------
# hostile images

def crashed(rc, err):
    return rc < 0 or rc >= 128 or any(m in err for m in SAN_MARKERS)


def hostile_case(a, tool, tag, d, truth):
    exp = truth["expect"]
    target = os.path.join(d, truth.get("file", "mem.raw"))
    label = "hostile %s%s" % (truth["variant"], " (%s)" % tag if tag else "")
    for cmd, e in exp.items():
        args = [cmd, target]
        if cmd == "ps-threads":
            args = ["ps", target, "--threads"]
        if cmd == "dlls":
            args += ["--pid", str(e["pid"])]
        if cmd == "sym":
            args += [e["name"]]
        rc, out, err = vmi(tool, *args, "--json", timeout=30)
        name = "%s: %s" % (label, cmd)
        if rc == -999 or crashed(rc, err):
            check(name + " ends cleanly", False, "no crash, no hang", "exit %d: %s" % (rc, short(err, 300)))
            continue
        want = {"ok": (0,), "fail": (1,), "any": (0, 1)}[e["status"]]
        check(name + " exit status", rc in want, "exit in %s" % (want,), "exit %d: %s" % (rc, short(err, 200)))
        if rc != 0:
            check(name + " one stderr line", one_line(err), "one line 'vmi: ...'", err)
            if "stderr" in e:
                check(name + " error names the cause", e["stderr"] in err, e["stderr"], err)
            if "max_count" in e and "stopped after" in err:
                n = int(err.split("stopped after ")[1].split(")")[0])
                check(name + " stops where the list breaks", n <= e["max_count"], "<= %d" % e["max_count"], n)
            continue
        j = parse_json(out)
        if cmd == "ps" and isinstance(j, list):
            pids = [p.get("pid") for p in j]
            if "pids_prefix" in e:
                pre = e["pids_prefix"]
                check(name + " lists the processes before the bad entry",
                      pids[:len(pre)] == pre and len(pids) <= e["max_count"], pre, pids)
            if e.get("pids_all"):
                allp = [p["pid"] for p in truth["processes"]]
                check(name + " lists every process", sorted(pids) == sorted(allp), allp, pids)
        if cmd == "ps-threads" and "entries" in e:
            got = [[x.get("pid"), x.get("tgid")] for x in j] if isinstance(j, list) else j
            bad = [(w, g) for w, g in zip(e["entries"], got or []) if w != g]
            check(name + " lists every process and the threads before each break",
                  isinstance(got, list) and len(got) == len(e["entries"]) and not bad,
                  "%d [pid, tgid] entries as in truth.json" % len(e["entries"]),
                  "%s entries, mismatches (want, got): %s" % (len(got) if isinstance(got, list) else got,
                                                               short(bad[:4], 300)))
        if cmd == "dlls" and isinstance(j, list) and "names_prefix" in e:
            names = [m.get("name") for m in j]
            pre = e["names_prefix"]
            check(name + " lists the DLLs before the cycle", names[:len(pre)] == pre and len(names) <= e["max_count"],
                  pre, names)


def sanitizer_build(a, scratch):
    """An ASan+UBSan build of the tool: build/vmi-san when it is up to date;
    built there when missing; when stale, built in the scratch directory
    (build/vmi-san belongs to whoever made it)."""
    san = a.san
    srcs = [os.path.join(ROOT, f) for f in ("vmi.h", "vmi_file.h", "vmi_kvm.h", "examples/vmi.c")]
    if os.path.exists(san):
        if all(os.path.getmtime(san) >= os.path.getmtime(s) for s in srcs if os.path.exists(s)):
            return san
        san = os.path.join(scratch, "vmi-san")
    cmd = ["cc", "-std=c99", "-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
           "-fno-omit-frame-pointer", "-I" + ROOT, os.path.join(ROOT, "examples", "vmi.c"), "-o", san]
    print("# building %s" % san, flush=True)
    p = subprocess.run(cmd, capture_output=True, text=True)
    check("ASan+UBSan build of the tool", p.returncode == 0, "cc exit 0", short(p.stderr, 600))
    return san if p.returncode == 0 else None


# --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vmi", default=os.path.join(ROOT, "build", "vmi"))
    ap.add_argument("--san", default=os.path.join(ROOT, "build", "vmi-san"),
                    help="ASan+UBSan build for the hostile images (built when missing or stale)")
    ap.add_argument("--no-san", action="store_true")
    ap.add_argument("--images", default=os.path.join(ROOT, "build", "windows"))
    ap.add_argument("--generate", action="store_true", help="run synth.py first")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", action="append", help="variant (repeatable) or 'hostile'")
    ap.add_argument("--quick", action="store_true", help="fewer symbols and DLL lists")
    a = ap.parse_args()
    a.hostile = os.path.join(a.images, "hostile")
    if a.generate or not os.path.exists(os.path.join(a.images, "READY")):
        subprocess.run([sys.executable, os.path.join(HERE, "synth.py"), "--out", a.images, "--seed", str(a.seed)],
                       check=True)
    if not os.path.exists(a.vmi):
        check("the tool exists", False, a.vmi, "missing (make build/vmi)")
        return testlib.summary()
    # A snapshot: build/vmi may be rebuilt while the test runs.
    snap = tempfile.mkdtemp(prefix="vmi-wintest-")
    try:
        shutil.copy2(a.vmi, os.path.join(snap, "vmi"))
        a.vmi = os.path.join(snap, "vmi")
        return run_all(a, snap)
    finally:
        shutil.rmtree(snap, ignore_errors=True)


def run_all(a, scratch):
    variants = sorted(d for d in os.listdir(a.images)
                      if os.path.exists(os.path.join(a.images, d, "truth.json")))
    for v in variants:
        if a.only and v not in a.only:
            continue
        vdir = os.path.join(a.images, v)
        with open(os.path.join(vdir, "truth.json")) as f:
            truth = json.load(f)
        for fmt, fname in FORMATS:
            if not os.path.exists(os.path.join(vdir, fname)):
                continue
            for profile in (None, "profile.json", "libvmi.conf"):
                Case(a, truth, vdir, fmt, fname, profile).checks()
    if not a.only or "hostile" in a.only:
        tools = [("", a.vmi)]
        if not a.no_san:
            san = sanitizer_build(a, scratch)
            if san:
                tools.append(("asan", san))
        for root, _, files in sorted(os.walk(a.hostile)):
            if "truth.json" not in files:
                continue
            with open(os.path.join(root, "truth.json")) as f:
                truth = json.load(f)
            truth["variant"] = os.path.relpath(root, a.hostile)
            for tag, tool in tools:
                hostile_case(a, tool, tag, root, truth)
    return testlib.summary()


if __name__ == "__main__":
    sys.exit(main())
