#!/usr/bin/python3
"""Profile formats other than BTF-in-memory, on real guests:
  - LibVMI-style offsets (linux_tasks, linux_mm, linux_pid, linux_name,
    linux_pgd, linux_init_task), made here from pahole's reading of the
    guest's BTF profile and its System.map: `vmi ps` with only those offsets
    (no type information at all) lists every pid with its comm;
  - BTF inside a vmlinux ELF (.BTF section, added with objcopy to an object
    file) gives the same offsets as the raw BTF;
  - a System.map alone gives the same symbols as kallsyms once slid.
Prints one line per check and `N passed, M failed`.
"""

import argparse
import json
import lzma
import os
import re
import subprocess
import sys
from testlib import check, run, summary

HERE = os.path.dirname(os.path.abspath(__file__))
PROFILES = os.path.join(HERE, "profiles")


def unpack(arch, name, out):
    path = os.path.join(out, "profiles", arch, name)
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with lzma.open(os.path.join(PROFILES, arch, name + ".xz")) as f, open(path, "wb") as o:
            o.write(f.read())
    return path


def pahole_offset(btf, struct, member):
    """Byte offset of a top-level member as pahole prints it (the oracle)."""
    out = subprocess.run(["pahole", "-C", struct, btf], capture_output=True, text=True).stdout
    for line in out.splitlines():
        m = re.match(r"\s+[^;]*?\**\b%s(\[\d+\])?;\s*/\*\s*(\d+)" % re.escape(member), line)
        if m:
            return int(m.group(2))
    raise SystemExit("pahole: no %s.%s in %s" % (struct, member, btf))


def libvmi_conf(btf, sysmap, path):
    syms = {}
    with open(sysmap) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3:
                syms[parts[2]] = int(parts[0], 16)
    keys = {"linux_tasks": ("task_struct", "tasks"), "linux_mm": ("task_struct", "mm"),
            "linux_pid": ("task_struct", "pid"), "linux_name": ("task_struct", "comm"),
            "linux_pgd": ("mm_struct", "pgd")}
    with open(path, "w") as f:
        f.write('lab-guest {\n    ostype = "Linux";\n    sysmap = "%s";\n' % sysmap)
        for k, (s, m) in keys.items():
            f.write("    %s = 0x%x;\n" % (k, pahole_offset(btf, s, m)))
        f.write("    linux_init_task = 0x%x;\n}\n" % syms["init_task"])


def test_libvmi(vmi, out, arch):
    d = os.path.join(out, arch)
    truth = json.load(open(os.path.join(d, "truth.json")))
    btf, sysmap = unpack(arch, "vmlinux.btf", out), unpack(arch, "System.map", out)
    conf = os.path.join(out, "profiles", arch, "libvmi.conf")
    libvmi_conf(btf, sysmap, conf)
    rc, so, err = run(vmi, "ps", os.path.join(d, "mem.elf"), "--json", "--profile", conf, "--profile", sysmap)
    got = {p["pid"]: p["name"] for p in json.loads(so)} if rc == 0 else {}
    want = {p["pid"]: p["comm"][:15] for p in truth["processes"]}
    missing = sorted(set(want) - set(got))
    # /proc shows a kworker's workqueue after its comm ("kworker/0:0-events")
    wrong = sorted(p for p in want if p in got and got[p] != want[p] and not want[p].startswith(got[p] + "-"))
    check("%s: ps with LibVMI offsets only (no types) finds every pid" % arch, rc == 0 and not missing,
          "all %d pids" % len(want), missing or err)
    check("%s: ps with LibVMI offsets only gives every comm" % arch, rc == 0 and not wrong, "no difference",
          [(p, want[p], got.get(p)) for p in wrong][:5])
    rc, so, err = run(vmi, "info", os.path.join(d, "mem.elf"), "--json", "--profile", conf)
    check("%s: a LibVMI config alone is accepted" % arch, rc == 0, "exit 0", err)


def test_elf_btf(vmi, out, arch):
    d = os.path.join(out, arch)
    btf = os.path.join(d, "vmlinux.btf")
    obj = os.path.join(out, "profiles", arch, "empty.o")
    elf = os.path.join(out, "profiles", arch, "vmlinux-btf.elf")
    os.makedirs(os.path.dirname(obj), exist_ok=True)
    src = obj[:-2] + ".c"
    with open(src, "w") as f:
        f.write("int vmi_profile_test;\n")
    subprocess.run(["cc", "-c", src, "-o", obj], check=True)
    subprocess.run(["objcopy", "--add-section", ".BTF=" + btf, obj, elf], check=True)
    for member in ("task_struct.tasks", "task_struct.comm", "mm_struct.pgd", "module.list", "signal_struct.nr_threads"):
        a = run(vmi, "offset", os.path.join(d, "mem.elf"), member, "--profile", btf)
        b = run(vmi, "offset", os.path.join(d, "mem.elf"), member, "--profile", elf)
        s, m = member.split(".")
        want = pahole_offset(btf, s, m)
        check("%s: %s from a vmlinux ELF's .BTF equals pahole (%d)" % (arch, member, want),
              b[0] == 0 and b[1] == a[1] and ("offset 0x%x " % want) in b[1], a[1].strip(), b[1].strip() or b[2])


def test_sysmap(vmi, out, arch):
    d = os.path.join(out, arch)
    sysmap = unpack(arch, "System.map", out)
    for name in ("init_task", "linux_banner", "swapper_pg_dir", "_stext"):
        a = run(vmi, "sym", os.path.join(d, "mem.elf"), name)
        b = run(vmi, "sym", os.path.join(d, "mem.elf"), name, "--profile", sysmap)
        check("%s: %s through a System.map (slid) is found" % (arch, name), b[0] == 0, "exit 0", b[2])
        if a[0] == 0:
            check("%s: %s: System.map and memory agree" % (arch, name), a[1] == b[1], a[1].strip(), b[1].strip())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vmi", default="build/vmi")
    ap.add_argument("--out", default="build/guests")
    a = ap.parse_args()
    vmi = os.path.abspath(a.vmi)
    for arch in ("i386", "armhf-lpae"):
        test_libvmi(vmi, a.out, arch)
    for arch in ("x86_64", "arm64"):
        test_elf_btf(vmi, a.out, arch)
    for arch in ("arm64", "i386-pae", "armhf"):
        test_sysmap(vmi, a.out, arch)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
