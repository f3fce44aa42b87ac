#!/usr/bin/python3
"""Real-guest integration tests: what vmi.h reads from the lab's captures must
equal what each guest itself reported (truth.json).

For every captured architecture and every image format (raw, LiME, ELF core):
  - `vmi info` sees the guest's RAM where QEMU put it, and on x86 ELF cores the
    paging mode and root from the vCPU registers;
  - linux_banner read by virtual address equals the guest's /proc/version,
    byte for byte: at its kallsyms address where the kernel lists data
    symbols (amd64), else at its address in the kernel's linear map (found from
    where the banner lies in physical memory: VA = PA - RAM base + PAGE_OFFSET);
  - that VA translates to the PA where the banner really is;
  - the first bytes of _stext (a text symbol every kernel lists) read the same
    through every format.
Captures are made with lab.py when missing (cached under build/guests).
Prints one line per check and a final `N passed, M failed`.
"""

import argparse
import json
import lzma
import os
import subprocess
import sys
from testlib import check, h, summary

HERE = os.path.dirname(os.path.abspath(__file__))
LAB = os.path.join(HERE, "lab.py")
ARCHES = ["x86_64", "x86_64-la57", "x86_64-cloud", "i386-pae", "i386", "arm64", "armhf", "armhf-lpae"]
FORMATS = ["raw", "lime", "elf"]

# Start of the kernel's linear map of RAM (PAGE_OFFSET) on the 32-bit and
# arm64 kernels; Debian's configs: 3G/1G split, 48-bit arm64 VAs.
PAGE_OFFSET = {"i386-pae": 0xC0000000, "i386": 0xC0000000, "armhf": 0xC0000000,
               "armhf-lpae": 0xC0000000, "arm64": 0xFFFF000000000000}


def paging_args(truth):
    """The --mode/--dtb/--tcr a raw image needs, from the guest's registers."""
    r = {k.lower(): h(v) for k, v in truth["regs"].items()}
    arch = truth["arch"]
    if arch.startswith("x86_64"):
        return ["--mode", "la57" if r["cr4"] >> 12 & 1 else "ia32e", "--dtb", hex(r["cr3"])]
    if arch.startswith("i386"):
        return ["--mode", "pae" if r["cr4"] >> 5 & 1 else "legacy", "--dtb", hex(r["cr3"])]
    if arch == "arm64":
        return ["--mode", "aarch64", "--dtb", hex(r["ttbr1_el1"]), "--tcr", hex(r["tcr_el1"])]
    ttbcr = r["ttbcr"]
    if ttbcr >> 31 & 1:
        split = ttbcr & 0x70007
        return ["--mode", "lpae", "--dtb", hex(r["ttbr1"] if split else r["ttbr0"]), "--tcr", hex(ttbcr)]
    return ["--mode", "aarch32", "--dtb", hex(r["ttbr1"] if ttbcr & 7 else r["ttbr0"]), "--tcr", hex(ttbcr)]


class Target:
    def __init__(self, vmi, truth, path, fmt):
        self.vmi, self.truth, self.path, self.fmt = vmi, truth, path, fmt
        self.args = []
        if fmt == "raw":
            self.args += ["--base", hex(h(truth["ram_base"]))]
        # x86 ELF cores carry CR0/CR3/CR4: the tool takes paging from them.
        if not (fmt == "elf" and truth["arch"].startswith(("x86", "i386"))):
            self.args += paging_args(truth)

    def run(self, *argv):
        p = subprocess.run([self.vmi, argv[0], self.path] + list(argv[1:]) + self.args,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        return p.returncode, p.stdout, p.stderr.decode(errors="replace").strip()

    def read_va(self, va, n):
        return self.run("read", hex(va), str(n), "--raw")

    def json(self, *argv):
        rc, out, err = self.run(*argv, "--json")
        return rc, (json.loads(out) if out else None), err


def banner_vas(truth, raw_path):
    """(how, VA) pairs where linux_banner must read, and its PA in the image.
    The guest's own words fix each VA: kallsyms where it lists data (amd64),
    arm64's System.map (from its -dbg package) slid by VMCOREINFO's
    KERNELOFFSET, and its linear map from PHYS_OFFSET (arm64's KASLR also
    moves it), the fixed linear map of the 32-bit kernels."""
    with open(raw_path, "rb") as f:
        data = f.read()
    banner = truth["banner"].encode()
    off = data.find(banner)
    if off < 0:
        return [], None
    pa = h(truth["ram_base"]) + off
    # copies of the banner may lie elsewhere too (the kernel log, page cache)
    pas = set()
    while off >= 0:
        pas.add(h(truth["ram_base"]) + off)
        off = data.find(banner, off + 1)
    vas = []
    if "linux_banner" in truth["kallsyms"]:
        vas.append(("kallsyms", h(truth["kallsyms"]["linux_banner"])))
    vmcoreinfo = truth.get("vmcoreinfo") or {}
    if truth["arch"] == "arm64":
        # the image's own banner: the -dbg package's System.map, slid by KERNELOFFSET
        with lzma.open(os.path.join(HERE, "profiles", "arm64", "System.map.xz"), "rt") as f:
            link = next(int(l.split()[0], 16) for l in f if l.rstrip().endswith(" linux_banner"))
        vas.append(("System.map + KERNELOFFSET", (link + h(vmcoreinfo["KERNELOFFSET"])) % 2**64))
        vas.append(("linear map", (pa - h(vmcoreinfo["NUMBER(PHYS_OFFSET)"]) + PAGE_OFFSET["arm64"]) % 2**64))
    elif truth["arch"] in PAGE_OFFSET:
        vas.append(("linear map", pa - h(truth["ram_base"]) + PAGE_OFFSET[truth["arch"]]))
    return vas, pas


def expected_ranges(truth, fmt):
    """LiME holds the guest's System RAM ranges; raw and ELF all of its RAM."""
    if fmt == "lime":
        return [(h(r["start"]), h(r["end"])) for r in truth["lime_ranges"]]
    base = h(truth["ram_base"])
    return [(base, base + h(truth["ram_size"]) - 1)]


def ensure_capture(arch, out):
    if os.path.exists(os.path.join(out, arch, "truth.json")):
        return True
    p = subprocess.run([sys.executable, LAB, "capture", arch, "--out", out])
    return p.returncode == 0


def test_arch(vmi, arch, out):
    d = os.path.join(out, arch)
    truth = json.load(open(os.path.join(d, "truth.json")))
    banner = truth["banner"].encode()
    vas, banner_pa = banner_vas(truth, os.path.join(d, "mem.raw"))
    check("%s: banner found" % arch, bool(vas), "the guest's /proc/version in its RAM and a VA for it", vas)
    stext = h(truth["kallsyms"]["_stext"])
    stext_bytes = {}
    for fmt in FORMATS:
        t = Target(vmi, truth, os.path.join(d, "mem." + fmt), fmt)
        name = "%s/%s" % (arch, fmt)
        rc, info, err = t.json("info")
        got = info and [(h(r["start"]), h(r["end"])) for r in info["ranges"]]
        want = expected_ranges(truth, fmt)
        check(name + ": info shows the guest's RAM", rc == 0 and got and all(
            any(s0 <= w0 and e0 >= w1 for s0, e0 in got) for w0, w1 in want), want, got or err)
        if arch.startswith("x86_64"):
            # the guest's /proc/iomem "Kernel code" starts at _text's PA, linked at 16 MiB
            code = next(r for r in truth["iomem_kernel"] if r["name"] == "Kernel code")
            rc, full, err = t.json("info")
            os_ = (full or {}).get("os") or {}
            kallsyms = truth["kallsyms"]
            check(name + ": KASLR offsets (virtual, physical) equal the guest's",
                  os_.get("kaslr_phys_offset") and h(os_["kaslr_phys_offset"]) == h(code["start"]) - 0x1000000 and
                  h(os_["kaslr_offset"]) == h(kallsyms["_text"]) - 0xffffffff81000000,
                  (hex(h(kallsyms["_text"]) - 0xffffffff81000000), hex(h(code["start"]) - 0x1000000)),
                  (os_.get("kaslr_offset"), os_.get("kaslr_phys_offset")) if os_ else err)
        if fmt == "elf" and arch.startswith(("x86", "i386")):
            want = paging_args(truth)
            ok = info and info.get("paging", {}).get("mode") == want[1] and \
                h(info["paging"]["dtb"]) == h(want[3])
            check(name + ": paging from the ELF core's vCPU registers", ok, want, info and info.get("paging"))
        for how, va in vas:
            rc, got, err = t.read_va(va, len(banner))
            check("%s: linux_banner at %#x (%s) equals /proc/version" % (name, va, how),
                  rc == 0 and got == banner, banner[:60], got[:60] if rc == 0 else err)
            rc, walk, err = t.json("translate", hex(va))
            got_pa = walk and walk.get("pa")
            check("%s: %#x translates to where the banner is" % (name, va),
                  rc == 0 and got_pa and h(got_pa) in banner_pa, sorted(hex(p) for p in banner_pa), got_pa or err)
        rc, got, err = t.read_va(stext, 64)
        check(name + ": _stext at %#x reads" % stext, rc == 0 and len(got) == 64, "64 bytes", err)
        stext_bytes[fmt] = got
    if len(stext_bytes) == len(FORMATS):
        check(arch + ": _stext bytes agree across raw, LiME and ELF",
              len(set(stext_bytes.values())) == 1, "one value", [b[:8].hex() for b in stext_bytes.values()])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vmi", default="build/vmi")
    ap.add_argument("--out", default="build/guests")
    ap.add_argument("arches", nargs="*", default=ARCHES)
    a = ap.parse_args()
    for arch in a.arches:
        if not ensure_capture(arch, a.out):
            check(arch + ": capture", False, "a booted guest and its images", "lab.py capture failed")
            continue
        test_arch(a.vmi, arch, a.out)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
