#!/usr/bin/python3
"""Sanity checks of what `lab.py capture` wrote, independent of vmi.h:
the images agree with each other and with the guest's own truth.

  check.py [--out build/guests] [ARCH...]     (default: every ARCH folder in OUT)

Prints one line per check and a closing "N passed, N failed" line; exits 1 on
any failure.  Python 3 standard library only.
"""

import argparse
import json
import lzma
import os
import struct
import sys

passed = failed = 0


def check(arch, what, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
    print("%-4s %-13s %s%s" % ("ok" if ok else "FAIL", arch, what,
                               "" if ok or not detail else "  (%s)" % detail))


def elf_segments(path):
    """(class, machine, [(p_type, p_offset, p_paddr, p_filesz)], notes bytes)."""
    with open(path, "rb") as f:
        ident = f.read(64)
        if ident[:4] != b"\x7fELF":
            raise ValueError("not ELF")
        is64 = ident[4] == 2
        if is64:
            machine, = struct.unpack_from("<H", ident, 18)
            phoff, = struct.unpack_from("<Q", ident, 32)
            phentsize, phnum = struct.unpack_from("<HH", ident, 54)
        else:
            machine, = struct.unpack_from("<H", ident, 18)
            phoff, = struct.unpack_from("<I", ident, 28)
            phentsize, phnum = struct.unpack_from("<HH", ident, 42)
        segs, notes = [], b""
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            ph = f.read(phentsize)
            if is64:
                p_type, _, off, _, paddr, filesz = struct.unpack_from("<IIQQQQ", ph)
            else:
                p_type, off, _, paddr, filesz = struct.unpack_from("<IIIII", ph)
            segs.append((p_type, off, paddr, filesz))
        for p_type, off, paddr, filesz in segs:
            if p_type == 4:                            # PT_NOTE
                f.seek(off)
                notes += f.read(filesz)
        return (64 if is64 else 32), machine, segs, notes


def same_bytes(fa, offa, fb, offb, n):
    fa.seek(offa)
    fb.seek(offb)
    while n:
        k = min(n, 1 << 22)
        if fa.read(k) != fb.read(k):
            return False
        n -= k
    return True


def check_arch(out, arch):
    d = os.path.join(out, arch)
    with open(os.path.join(d, "truth.json")) as f:
        t = json.load(f)
    base, size = int(t["ram_base"], 16), int(t["ram_size"], 16)
    raw_path = os.path.join(d, "mem.raw")
    check(arch, "mem.raw size == ram_size", os.path.getsize(raw_path) == size,
          os.path.getsize(raw_path))
    with open(raw_path, "rb") as f:
        raw = f.read()
    banner = t["banner"].encode()
    check(arch, "banner starts 'Linux version' and ends in newline",
          banner.startswith(b"Linux version ") and banner.endswith(b"\n"))
    check(arch, "/proc/version bytes found in mem.raw", raw.find(banner) >= 0)
    check(arch, "uname -r in banner", (" %s " % t["kernel_version"]) in t["banner"])
    want_base = 0x40000000 if arch.startswith("arm") else 0
    check(arch, "ram_base is %#x" % want_base, base == want_base, t["ram_base"])

    # ELF from dump-guest-memory: PT_LOADs inside RAM, same bytes as mem.raw.
    cls, machine, segs, notes = elf_segments(os.path.join(d, "mem.elf"))
    loads = [s for s in segs if s[0] == 1]
    check(arch, "ELF has PT_LOAD segments (%d)" % len(loads), bool(loads))
    # QEMU also dumps non-RAM "ram" regions: on x86 the 256 KiB BIOS ROM at
    # 0xfffc0000. Those are not in mem.raw; everything else must be RAM.
    in_ram = [s for s in loads if base <= s[2] and s[2] + s[3] <= base + size]
    other = [s for s in loads if s not in in_ram]
    check(arch, "ELF PT_LOADs in RAM, apart from x86 BIOS ROM at 0xfffc0000",
          in_ram and all(arch[:1] in "xi" and p == 0xfffc0000 and n == 0x40000
                         for _, _, p, n in other), [(hex(p), hex(n)) for _, _, p, n in loads])
    check(arch, "ELF lowest RAM p_paddr == ram_base", min(p for _, _, p, _ in in_ram) == base)
    with open(os.path.join(d, "mem.elf"), "rb") as fe, open(raw_path, "rb") as fr:
        check(arch, "ELF RAM segment bytes == mem.raw bytes",
              all(same_bytes(fe, off, fr, p - base, n) for _, off, p, n in in_ram))
    if t.get("fw_cfg_modules"):
        check(arch, "ELF notes carry VMCOREINFO (fw_cfg + -device vmcoreinfo)",
              b"VMCOREINFO" in notes and b"OSRELEASE=" + t["kernel_version"].encode() in notes)

    # LiME: headers well formed, ranges as in truth, bytes == mem.raw.
    ranges, ok = [], True
    with open(os.path.join(d, "mem.lime"), "rb") as fl, open(raw_path, "rb") as fr:
        while True:
            hdr = fl.read(32)
            if not hdr:
                break
            magic, ver, s, e, res = struct.unpack("<IIQQ8s", hdr)
            if magic != 0x4C694D45 or ver != 1 or e < s or res != b"\0" * 8:
                ok = False
                break
            ranges.append((s, e))
            pos = fl.tell()
            ok = ok and same_bytes(fl, pos, fr, s - base, e - s + 1)
            fl.seek(pos + e - s + 1)
    want = [(int(r["start"], 16), int(r["end"], 16)) for r in t["lime_ranges"]]
    check(arch, "LiME headers valid, bytes == mem.raw", ok and bool(ranges))
    check(arch, "LiME ranges == guest System RAM", ranges == want, ranges)

    # Truth content.
    procs = {p["pid"]: p for p in t["processes"]}
    comms = {p["comm"] for p in t["processes"]}
    check(arch, "pid 1 is init", procs.get(1, {}).get("comm") == "init")
    check(arch, "kthreadd (pid 2) and kernel threads listed",
          procs.get(2, {}).get("comm") == "kthreadd" and
          sum(p["ppid"] == 2 for p in t["processes"]) >= 5)
    check(arch, "sleepers a/b/c present",
          {"vmi_sleeper_a", "vmi_sleeper_b", "vmi_sleeper_c"} <= comms)
    leaf = [p for p in t["processes"] if p["comm"] == "vmi_tree_leaf"]
    chain = []
    p = leaf[0] if leaf else None
    while p:
        chain.append(p["comm"])
        p = procs.get(p["ppid"])
    check(arch, "tree leaf->l3->l2->l1->init",
          chain == ["vmi_tree_leaf", "vmi_tree_l3", "vmi_tree_l2", "vmi_tree_l1", "init"], chain)
    lc = t["long_cmdline"]
    check(arch, "long cmdline > 300 bytes, pid is vmi_longcmd",
          len("\0".join(lc["args"])) > 300 and procs.get(lc["pid"], {}).get("comm") == "vmi_longcmd")
    check(arch, "module crc_itu_t listed with base",
          any(m["name"] == "crc_itu_t" and int(m["base"], 16) for m in t["modules"]))
    ks = t["kallsyms"]
    check(arch, "kallsyms has _stext (non-zero)", int(ks.get("_stext", "0"), 16) != 0)
    vci = t.get("vmcoreinfo") or {}
    check(arch, "VMCOREINFO OSRELEASE == uname -r", vci.get("OSRELEASE") == t["kernel_version"])
    check(arch, "VMCOREINFO SYMBOL(_stext) == kallsyms _stext",
          int(vci.get("SYMBOL(_stext)", "0"), 16) == int(ks.get("_stext", "0"), 16))
    if "init_uts_ns" in ks:
        check(arch, "VMCOREINFO SYMBOL(init_uts_ns) == kallsyms",
              int(vci.get("SYMBOL(init_uts_ns)", "0"), 16) == int(ks["init_uts_ns"], 16))
    # Committed profile (profiles.py) must be the running kernel's: same build-id,
    # and one KASLR slide must map System.map onto the live addresses.
    prof = os.path.join(os.path.dirname(os.path.abspath(__file__)), "profiles", arch)
    if os.path.exists(os.path.join(prof, "profile.json")):
        with open(os.path.join(prof, "profile.json")) as f:
            pj = json.load(f)
        check(arch, "profile build-id == VMCOREINFO BUILD-ID", pj["build_id"] == vci.get("BUILD-ID"),
              (pj["build_id"], vci.get("BUILD-ID")))
        with open(os.path.join(prof, "System.map.xz"), "rb") as f:
            smap = {}
            for line in lzma.decompress(f.read()).decode().splitlines():
                fields = line.split()          # "addr type name"; undefined ones have 2
                if len(fields) >= 3:
                    smap.setdefault(fields[2], int(fields[0], 16))
        slide = int(ks["_stext"], 16) - smap["_stext"]
        pairs = [(n, int(vci["SYMBOL(%s)" % n], 16)) for n in ("init_uts_ns", "swapper_pg_dir")
                 if "SYMBOL(%s)" % n in vci]
        check(arch, "System.map + KASLR slide %#x matches VMCOREINFO symbols" % slide,
              pairs and all(smap.get(n, -1) + slide == v for n, v in pairs),
              [(n, hex(v), hex(smap.get(n, 0) + slide)) for n, v in pairs])
    check_processes(arch, t)
    check_files(arch, d, t)
    regs = t.get("regs", {})
    need = {"x86": ["cr3"], "arm64": ["TTBR1_EL1", "TCR_EL1"],
            "arm": ["TTBR0", "TTBR1", "TTBCR"]}
    fam = "x86" if arch.startswith(("x86", "i386")) else ("arm64" if arch == "arm64" else "arm")
    check(arch, "regs has %s" % need[fam], all(k in regs for k in need[fam]), regs)
    if arch == "x86_64-la57":
        check(arch, "CR4.LA57 set", int(regs.get("cr4", "0"), 16) & (1 << 12) != 0)
    elif arch.startswith("x86_64"):
        check(arch, "CR4.LA57 clear", int(regs.get("cr4", "0"), 16) & (1 << 12) == 0)
    if arch == "i386-pae":
        check(arch, "CR4.PAE set", int(regs.get("cr4", "0"), 16) & (1 << 5) != 0)
    if arch == "i386":
        check(arch, "CR4.PAE clear", int(regs.get("cr4", "0"), 16) & (1 << 5) == 0)
    if arch == "armhf":
        check(arch, "TTBCR.EAE clear (short descriptors)", int(regs.get("TTBCR", "0"), 16) >> 31 == 0)
    if arch == "armhf-lpae":
        check(arch, "TTBCR.EAE set (long descriptors)", int(regs.get("TTBCR", "0"), 16) >> 31 == 1)


def check_processes(arch, t):
    """Per-process fields from /proc/PID/stat, status and cmdline."""
    procs = t["processes"]
    keys = {"pid", "ppid", "comm", "state", "tgid", "uid", "euid", "threads",
            "starttime", "vsize", "cmdline"}
    check(arch, "processes have %d keys each" % len(keys),
          all(keys <= set(p) for p in procs), [sorted(keys - set(p)) for p in procs][:1])
    check(arch, "tgid == pid, threads >= 1 (top-level /proc entries are leaders)",
          all(p["tgid"] == p["pid"] and p["threads"] >= 1 for p in procs))
    check(arch, "uid == euid == 0 everywhere (all root)",
          all(p["uid"] == 0 and p["euid"] == 0 for p in procs))
    kthreads = [p for p in procs if p["pid"] == 2 or p["ppid"] == 2]
    user = [p for p in procs if p not in kthreads]
    check(arch, "kernel threads: empty cmdline, vsize 0",
          all(p["cmdline"] == [] and p["vsize"] == 0 for p in kthreads))
    check(arch, "user processes: cmdline and vsize > 0",
          all(p["cmdline"] and p["vsize"] > 0 for p in user),
          [p["comm"] for p in user if not (p["cmdline"] and p["vsize"])])
    # starttime is in USER_HZ (100) ticks since boot. fork() takes the pid
    # before it stamps the start time, so a task preempted in between can
    # start a tick or two after a higher pid: ordered within 10 ticks.
    check(arch, "starttime ordered by pid (within 10 ticks) and <= guest uptime",
          all(a["starttime"] <= b["starttime"] + 10 for a, b in zip(procs, procs[1:]) if a["ppid"] != 2 and b["ppid"] != 2)
          and max(p["starttime"] for p in procs) <= t["guest_uptime"] * 100 + 1)
    by = {p["comm"]: p for p in procs}
    check(arch, "sleeper/leaf cmdline == ['sleep', '100000']",
          all(by.get(c, {}).get("cmdline") == ["sleep", "100000"]
              for c in ("vmi_sleeper_a", "vmi_sleeper_b", "vmi_sleeper_c", "vmi_tree_leaf")))
    lc = t["long_cmdline"]
    check(arch, "vmi_longcmd cmdline == long_cmdline args",
          by.get("vmi_longcmd", {}).get("cmdline") == lc["args"])
    check(arch, "init cmdline is /init", by.get("init", {}).get("cmdline", [""])[-1] == "/init",
          by.get("init", {}).get("cmdline"))
    tp = t.get("threads_process") or {}
    tproc = next((p for p in procs if p["pid"] == tp.get("pid")), {})
    check(arch, "vmi_threads: one process, 3 threads (tids incl. pid)",
          tproc.get("comm") == "vmi_threads" and tproc.get("threads") == 3 and
          len(tp.get("tids", [])) == 3 and tp["pid"] in tp["tids"] and
          not set(tp["tids"]) - {tp["pid"]} & set(p["pid"] for p in procs), tp)
    mods = t["modules"]
    check(arch, "modules have refcount/deps/state, all Live",
          mods and all({"refcount", "deps", "state"} <= set(m) and m["state"] == "Live" for m in mods))


def check_files(arch, d, t):
    """kallsyms.txt, dmesg.txt, vmlinux.btf beside truth.json."""
    path = os.path.join(d, "kallsyms.txt")
    with open(path, "rb") as f:
        ks_text = f.read().decode()
    lines = ks_text.split("\n")
    check(arch, "kallsyms.txt ends in newline", lines[-1] == "")
    lines = lines[:-1]
    # text-only kallsyms (i386/arm) has ~40-60k lines, KALLSYMS_ALL ~95k
    check(arch, "kallsyms.txt has a plausible line count (%d)" % len(lines),
          20000 <= len(lines) <= 1000000)
    first, bad = {}, []
    for line in lines:
        p = line.split()
        if len(p) < 3 or len(p) > 4 or len(p[1]) != 1 or (len(p) == 4 and not p[3].startswith("[")):
            bad.append(line)
            continue
        first.setdefault(p[2], (int(p[0], 16), p[1]))
    check(arch, "kallsyms.txt lines are 'addr type name [module]'", not bad, bad[:3])
    ks, types = t["kallsyms"], t.get("kallsyms_types", {})
    diff = [n for n, v in ks.items()
            if first.get(n, (None,))[0] != int(v, 16) or first[n][1] != types.get(n, first[n][1])]
    check(arch, "kallsyms.txt has truth's %d selected symbols, same address/type" % len(ks),
          ks and not diff, diff[:5])
    nonzero = sum(1 for a, _ in first.values() if a)
    check(arch, "kallsyms.txt addresses are real (kptr_restrict=0)", nonzero > len(first) * 0.9)
    f_info = t.get("files", {})
    check(arch, "kallsyms.txt size == truth files", f_info.get("kallsyms.txt", {}).get("bytes")
          == len(ks_text.encode()))
    tm = t.get("test_module", "crc-itu-t").replace("-", "_")
    mod = next((m for m in t["modules"] if m["name"] == tm), None)
    msyms = [int(l.split()[0], 16) for l in lines if l.endswith("\t[%s]" % tm) or l.endswith(" [%s]" % tm)]
    check(arch, "kallsyms.txt has [%s] symbols inside its module range" % tm,
          mod and msyms and any(int(mod["base"], 16) <= a < int(mod["base"], 16) + mod["size"]
                                for a in msyms), (mod and mod["base"], [hex(a) for a in msyms[:3]]))

    with open(os.path.join(d, "dmesg.txt"), "rb") as f:
        dm = f.read().decode("utf-8", "replace")
    check(arch, "dmesg.txt contains 'Linux version'", "Linux version" in dm)
    dsum = t.get("dmesg") or {}
    check(arch, "dmesg first/last 3 (truth) are in dmesg.txt",
          len(dsum.get("first", [])) == 3 and len(dsum.get("last", [])) == 3 and
          all(l in dm for l in dsum["first"] + dsum["last"]))
    check(arch, "printk console level 1", (t.get("printk") or [None])[0] == 1, t.get("printk"))

    btf_path = os.path.join(d, "vmlinux.btf")
    want_btf = arch.startswith("x86_64") or arch == "arm64"
    check(arch, "btf_size %s" % ("set" if want_btf else "null"),
          (t.get("btf_size") is not None) == want_btf, t.get("btf_size"))
    check(arch, "vmlinux.btf %s" % ("present" if want_btf else "absent"),
          os.path.exists(btf_path) == want_btf)
    if os.path.exists(btf_path):
        with open(btf_path, "rb") as f:
            btf = f.read()
        magic, ver, flags, hlen, toff, tlen, soff, slen = struct.unpack_from("<HBBIIIII", btf)
        check(arch, "vmlinux.btf magic 0xEB9F, version 1", magic == 0xEB9F and ver == 1, hex(magic))
        check(arch, "vmlinux.btf has btf_size bytes (%d)" % len(btf), len(btf) == t["btf_size"])
        check(arch, "vmlinux.btf header lengths add up",
              hlen + max(toff + tlen, soff + slen) == len(btf))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="build/guests")
    ap.add_argument("arch", nargs="*")
    a = ap.parse_args()
    arches = a.arch or sorted(x for x in os.listdir(a.out)
                              if os.path.exists(os.path.join(a.out, x, "truth.json")))
    for arch in arches:
        try:
            check_arch(a.out, arch)
        except Exception as e:                 # a broken capture is a failure, not a crash
            check(arch, "checks ran", False, repr(e))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed or not arches else 0


if __name__ == "__main__":
    sys.exit(main())
