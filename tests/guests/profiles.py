#!/usr/bin/python3
"""`lab.py profiles ARCH...`: symbol profiles for the lab kernels that lack BTF
or whose /proc/kallsyms lists text symbols only (Debian's 686, 686-pae, armmp,
armmp-lpae are built without CONFIG_DEBUG_INFO_BTF and CONFIG_KALLSYMS_ALL;
arm64 has BTF but no CONFIG_KALLSYMS_ALL, so its System.map is the only source
of data-symbol addresses).

From Debian's linux-image-VERSION-FLAVOUR-dbg package (hundreds of MiB, cached
in .cache/debs) it takes the unstripped vmlinux and writes, under
tests/guests/profiles/ARCH/ (small enough to commit):
  vmlinux.btf.xz   detached BTF: pahole --btf_encode_detached (Debian: dwarves)
  System.map.xz    nm -n vmlinux (full symbol table, data symbols included)
  profile.json     package, version, GNU build-id (matches VMCOREINFO BUILD-ID)
Needs: dwarves (pahole), binutils-multiarch (nm for i386/arm ELF on amd64), xz-utils.
"""

import json
import lzma
import os
import re
import shutil
import subprocess
import sys
import tempfile

import lab

DEFAULT = ["i386", "i386-pae", "armhf", "armhf-lpae", "arm64"]


def nm_tool():
    # Plain nm on amd64 only knows a few targets; the multiarch one knows all.
    for n in ("nm-multiarch", "x86_64-linux-gnu-nm-multiarch", "nm"):
        if shutil.which(n):
            return n
    raise lab.LabError("no nm: apt-get install binutils-multiarch")


def build_id(vmlinux):
    out = subprocess.run(["readelf", "-n", vmlinux], capture_output=True, text=True).stdout
    m = re.search(r"Build ID:\s*([0-9a-f]+)", out)
    return m.group(1) if m else None


def profile(arch):
    meta = lab.fetch(arch)
    a = lab.ARCHES[arch]
    deb = lab.apt_download("%s-dbg:%s" % (meta["kernel_package"], a["deb_arch"]))
    outdir = os.path.join(lab.PROFILES, arch)
    os.makedirs(outdir, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vmi-prof-") as tmp:
        # Only the vmlinux is needed; the module debug files are most of the deb.
        member = "./usr/lib/debug/boot/vmlinux-%s" % meta["kernel_version"]
        tar = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", deb], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", tmp, member], stdin=tar.stdout, check=True)
        tar.wait()
        vmlinux = os.path.join(tmp, member)
        btf = os.path.join(tmp, "vmlinux.btf")
        subprocess.run(["pahole", "--btf_encode_detached=" + btf, vmlinux], check=True,
                       stdout=subprocess.DEVNULL)
        smap = subprocess.run([nm_tool(), "-n", vmlinux], capture_output=True,
                              check=True).stdout
        # Drop ARM mapping symbols ($a, $d, $t, $x...) as the kernel's own
        # System.map does (scripts/mksysmap).
        smap = b"".join(l for l in smap.splitlines(True) if b" $" not in l)
        for name, data in (("vmlinux.btf.xz", open(btf, "rb").read()),
                           ("System.map.xz", smap)):
            with open(os.path.join(outdir, name), "wb") as f:
                f.write(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME))
        info = {"arch": arch, "kernel_package": meta["kernel_package"],
                "dbg_deb": os.path.basename(deb), "kernel_version": meta["kernel_version"],
                "build_id": build_id(vmlinux), "btf_size": os.path.getsize(btf),
                "symbols": smap.count(b"\n")}
        with open(os.path.join(outdir, "profile.json"), "w") as f:
            json.dump(info, f, indent=1)
            f.write("\n")
    lab.log("%s: profile in %s (build-id %s)" % (arch, outdir, info["build_id"]))


def main(arches):
    arches = DEFAULT if arches == ["all"] else lab.expand(arches)
    bad = []
    for a in arches:
        try:
            profile(a)
        except (lab.LabError, subprocess.CalledProcessError, OSError) as e:
            # One missing/slow -dbg package should not cost the others.
            lab.log("%s: no profile: %s" % (a, e))
            bad.append(a)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or DEFAULT))
