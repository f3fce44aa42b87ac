#!/usr/bin/python3
"""Guest lab for vmi.h: boot real Debian 12 kernels under QEMU TCG and capture
memory images together with ground truth reported by the guest itself.

Subcommands (see README.md in this folder):
  lab.py fetch ARCH...|all          download + unpack kernel/modules/busybox (cached)
  lab.py capture ARCH...|all [--out DIR] [--jobs N]
        [--channel virtio|serial]   boot, wait for truth, pause, write mem.raw,
                                    mem.elf, mem.lime, truth.json, kallsyms.txt,
                                    dmesg.txt, vmlinux.btf under DIR/ARCH/
  lab.py boot ARCH --live           boot and keep running; prints one JSON line
  lab.py stop                       kill lab QEMUs left over (by pid files)
  lab.py profiles ARCH...           BTF + System.map from Debian -dbg packages

Python 3 standard library only.
"""

import argparse
import atexit
import base64
import glob
import json
import lzma
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True   # `profiles` imports us: leave no __pycache__ in the tree
if __name__ == "__main__":
    # so that `import lab` (profiles.py) gets this module, not a second copy
    sys.modules.setdefault("lab", sys.modules[__name__])

HERE = os.path.dirname(os.path.abspath(__file__))
# Downloads and unpacked packages (~2 GB, ~5 GB with the -dbg packages).
# VMI_LAB_CACHE can point it somewhere that outlives the work tree.
CACHE = os.environ.get("VMI_LAB_CACHE") or os.path.join(HERE, ".cache")
DEBS = os.path.join(CACHE, "debs")
PROFILES = os.path.join(HERE, "profiles")
RUN_DIR = "/tmp/vmi-lab"          # pid files of running lab QEMUs (for `stop`)
RAM_MB = 256
BOOT_TIMEOUT = 180                # seconds; TCG boots take 2-15 s, generous for loaded CI

# name -> how to get and boot it.  All guests get 1 vCPU and 256 MiB.
ARCHES = {
    "x86_64": dict(deb_arch="amd64", flavour="amd64", qemu="qemu-system-x86_64",
                   machine="q35", cpu="max,la57=off", console="ttyS0"),
    # Same kernel; -cpu max advertises LA57 so the kernel picks 5-level paging.
    "x86_64-la57": dict(deb_arch="amd64", flavour="amd64", qemu="qemu-system-x86_64",
                        machine="q35", cpu="max", console="ttyS0"),
    "x86_64-cloud": dict(deb_arch="amd64", flavour="cloud-amd64", qemu="qemu-system-x86_64",
                         machine="q35", cpu="max,la57=off", console="ttyS0"),
    "i386-pae": dict(deb_arch="i386", flavour="686-pae", qemu="qemu-system-i386",
                     machine="q35", cpu="max", console="ttyS0"),
    # The non-PAE kernel uses 2-level paging whatever the CPU offers; pentium3
    # (no PAE, no NX) makes sure nothing in the guest depends on PAE anyway.
    "i386": dict(deb_arch="i386", flavour="686", qemu="qemu-system-i386",
                 machine="pc", cpu="pentium3", console="ttyS0"),
    "arm64": dict(deb_arch="arm64", flavour="arm64", qemu="qemu-system-aarch64",
                  machine="virt", cpu="cortex-a57", console="ttyAMA0"),
    # armmp (non-LPAE) cannot address >4 GiB physical: keep virt's devices low.
    "armhf": dict(deb_arch="armhf", flavour="armmp", qemu="qemu-system-arm",
                  machine="virt,highmem=off", cpu="cortex-a15", console="ttyAMA0"),
    "armhf-lpae": dict(deb_arch="armhf", flavour="armmp-lpae", qemu="qemu-system-arm",
                       machine="virt", cpu="cortex-a15", console="ttyAMA0"),
}

# Small dependency-free modules, in order of preference; the first one present
# with no dependencies in modules.dep is loaded so /proc/modules has a known entry.
TEST_MODULES = ["lib/crc-itu-t.ko", "lib/crc7.ko", "fs/nls/nls_cp437.ko",
                "lib/crc8.ko", "fs/nls/nls_ascii.ko"]

# Symbols looked up in /proc/kallsyms (whichever exist on a given kernel).
KALLSYMS = [
    "init_task", "linux_banner", "swapper_pg_dir", "init_top_pgt", "init_level4_pgt",
    "_stext", "_text", "_etext", "_sdata", "_edata", "_end", "__start_BTF", "__stop_BTF",
    "init_uts_ns", "init_mm", "init_pid_ns", "modules", "page_offset_base",
    "vmalloc_base", "vmemmap_base", "phys_base", "__per_cpu_offset", "mem_section",
    "vmcoreinfo_data", "vmcoreinfo_note", "kimage_voffset", "memstart_addr",
    "init_pg_dir", "idmap_pg_dir", "tramp_pg_dir", "reserved_pg_dir", "kallsyms_names",
    "kallsyms_token_table", "kallsyms_num_syms", "init_cred", "pcpu_base_addr",
    "runqueues", "current_task", "pcpu_hot", "__per_cpu_start", "high_memory",
    "max_pfn", "init_thread_union", "sys_call_table", "idt_table",
]

# vmi_threads: busybox cannot make a multi-threaded process, so the guest gets
# a tiny static ELF of our own: clone(CLONE_VM|CLONE_FS|CLONE_FILES|
# CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM) twice (child stacks at 0x408000 and
# 0x40c000 in its bss), then every thread blocks in ppoll(NULL, 0, NULL, NULL, 8)
# forever: 1 process, 3 threads, no libc.  Machine code assembled once with GNU
# as (x86_64/i386: as --64/--32; arm: arm-linux-gnueabihf-as, ARM mode;
# arm64: aarch64-linux-gnu-as) from the source in README.md, objcopy -O binary.
# cpu -> (ELF class, e_machine, e_flags, code)
THREADS_BASE = 0x400000
THREADS_CODE = {
    "x86_64": (64, 62, 0, "bf000f0500be00804000e80c000000be00c04000e802000000eb1431d24531d2"
                          "4531c0b8380000000f0585c07401c331ff31f631d24531d241b808000000b80f01"
                          "00000f05ebe8"),
    "i386": (32, 3, 0, "b900804000e80c000000b900c04000e802000000eb17bb000f050031d231f631ff"
                       "b878000000cd8085c07401c331db31c931d231f6bf08000000b835010000cd80ebea"),
    "arm": (32, 40, 0x05000400,
            "50109fe5020000eb4c109fe5000000eb080000ea44009fe50020a0e30030a0e30040a0e3"
            "7870a0e3000000ef000050e30000000a1eff2fe10000a0e30010a0e30020a0e30030a0e3"
            "0840a0e3157ea0e3000000eff7ffffea0080400000c04000000f0500"),
    "arm64": (64, 183, 0,
              "c102005804000094c10200580200009409000014a0020058020080d2030080d2040080d2"
              "881b80d2010000d4400000b4c0035fd6000080d2010080d2020080d2030080d2040180d2"
              "280980d2010000d4f9ffff1700000000008040000000000000c0400000000000000f0500"
              "00000000"),
}


def threads_elf(arch):
    """The vmi_threads executable for ARCH: ET_EXEC, one RWX PT_LOAD at
    THREADS_BASE (64 KiB: code at 0x100, the rest bss for the thread stacks)."""
    cpu = {"x86": "x86_64" if arch.startswith("x86_64") else "i386",
           "arm64": "arm64", "arm": "arm"}[family(arch)]
    cls, mach, flags, code = THREADS_CODE[cpu]
    code, off = bytes.fromhex(code), 0x100
    ident = b"\x7fELF" + bytes([2 if cls == 64 else 1, 1, 1]) + b"\0" * 9
    if cls == 64:
        eh = ident + struct.pack("<HHIQQQIHHHHHH", 2, mach, 1, THREADS_BASE + off, 64, 0,
                                 flags, 64, 56, 1, 0, 0, 0)
        ph = struct.pack("<IIQQQQQQ", 1, 7, 0, THREADS_BASE, THREADS_BASE, off + len(code),
                         0x10000, 0x1000)
    else:
        eh = ident + struct.pack("<HHIIIIIHHHHHH", 2, mach, 1, THREADS_BASE + off, 52, 0,
                                 flags, 52, 32, 1, 0, 0, 0)
        ph = struct.pack("<IIIIIIII", 1, 0, THREADS_BASE, THREADS_BASE, off + len(code),
                         0x10000, 7, 0x1000)
    return (eh + ph).ljust(off, b"\0") + code


BEGIN = "===VMI-TRUTH-BEGIN==="
END = "===VMI-TRUTH-END==="
READY = "===VMI-READY==="

LONG_ARGS = ["vmi_long_arg_%02d_%s" % (i, "abcdefghijklmnopqrstuvwxyz"[i % 26] * 12)
             for i in range(16)]          # 16 * 29 bytes = 464 bytes of arguments

_children = []          # Popen objects of QEMUs we started; killed at exit
_cleanup_paths = []     # shm files, sockets, tmp dirs removed at exit
_lock = threading.RLock()   # capture workers and the main thread both clean up
_interrupted = threading.Event()


def _forget(lst, item):
    with _lock:
        if item in lst:
            lst.remove(item)


def log(msg):
    print("[lab] " + msg, file=sys.stderr, flush=True)


class LabError(Exception):
    pass


# --------------------------------------------------------------------------
# cleanup: every QEMU we start is killed by pid, also on errors and signals

def _remove_path(path):
    if path and os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif path and os.path.lexists(path):
        try:
            os.unlink(path)
        except OSError:
            pass


def _cleanup():
    with _lock:
        procs, paths = list(_children), list(_cleanup_paths)
    for p in procs:
        if p.poll() is None:
            try:
                p.kill()
            except OSError:
                pass
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        _forget(_children, p)
    for path in paths:
        _remove_path(path)
        _forget(_cleanup_paths, path)


def _on_signal(signum, frame):
    # Raise so that finally: blocks run; atexit then catches anything left.
    raise KeyboardInterrupt("signal %d" % signum)


atexit.register(_cleanup)


# --------------------------------------------------------------------------
# fetch

def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def apt_candidate(pkg):
    out = subprocess.run(["apt-cache", "policy", pkg], capture_output=True, text=True).stdout
    m = re.search(r"Candidate:\s*(\S+)", out)
    return m.group(1) if m and m.group(1) != "(none)" else None


def ensure_dpkg_arch(deb_arch):
    native = subprocess.run(["dpkg", "--print-architecture"], capture_output=True,
                            text=True).stdout.strip()
    if deb_arch == native:
        return
    foreign = subprocess.run(["dpkg", "--print-foreign-architectures"], capture_output=True,
                             text=True).stdout.split()
    if deb_arch not in foreign:
        log("dpkg --add-architecture %s; apt-get update" % deb_arch)
        run(["dpkg", "--add-architecture", deb_arch])
        subprocess.run(["apt-get", "update"], stdout=subprocess.DEVNULL)


def newest_kernel_pkg(flavour, deb_arch, abi=None):
    """Newest linux-image-6.1.0-N-FLAVOUR that apt can download for deb_arch
    (or exactly ABI N when abi is given)."""
    names = subprocess.run(["apt-cache", "pkgnames", "linux-image-6.1.0-"],
                           capture_output=True, text=True).stdout.split()
    pat = re.compile(r"^linux-image-6\.1\.0-(\d+)-%s$" % re.escape(flavour))
    abis = sorted({int(m.group(1)) for m in map(pat.match, names) if m}, reverse=True)
    if abi is not None:
        abis = [a for a in abis if a == abi]
    for abi in abis:
        pkg = "linux-image-6.1.0-%d-%s" % (abi, flavour)
        if apt_candidate("%s:%s" % (pkg, deb_arch)):
            return pkg
    raise LabError("no linux-image-6.1.0-*-%s for %s in the apt lists "
                   "(run apt-get update?)" % (flavour, deb_arch))


def apt_download(pkg_arch):
    """apt-get download into DEBS unless a matching .deb is already there."""
    os.makedirs(DEBS, exist_ok=True)
    name, arch = pkg_arch.split(":")
    have = glob.glob(os.path.join(DEBS, "%s_*_%s.deb" % (name, arch)))
    if have:
        return have[0]
    log("apt-get download " + pkg_arch)
    r = subprocess.run(["apt-get", "download", "-q", pkg_arch], cwd=DEBS,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode:
        raise LabError("apt-get download %s failed: %s" % (pkg_arch, r.stderr.strip()[-500:]))
    have = glob.glob(os.path.join(DEBS, "%s_*_%s.deb" % (name, arch)))
    if not have:
        raise LabError("apt-get download %s produced no .deb" % pkg_arch)
    return have[0]


def unpack(deb, dest):
    if os.path.isdir(dest):
        return
    tmp = dest + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    run(["dpkg-deb", "-x", deb, tmp])
    os.rename(tmp, dest)


def profile_abi(arch):
    """The kernel ABI the committed profile of ARCH was made from, or None:
    tests compare against that profile, so the lab boots that kernel while
    the archive still has it."""
    path = os.path.join(PROFILES, arch, "profile.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        m = re.match(r"linux-image-6\.1\.0-(\d+)-", json.load(f).get("kernel_package", ""))
    return int(m.group(1)) if m else None


def resolve_kernel(arch, a, abi):
    want = abi if abi is not None else profile_abi(arch)
    for attempt in range(2):
        try:
            return newest_kernel_pkg(a["flavour"], a["deb_arch"], want)
        except LabError:
            if attempt == 0:
                # Fresh machine: the apt lists may be missing or old.  A partial
                # failure of apt-get update (one index) still leaves the others usable.
                log("apt-get update")
                subprocess.run(["apt-get", "update"], stdout=subprocess.DEVNULL)
    if abi is None and want is not None:
        log("%s: the profile's kernel (ABI %d) is no longer in the archive: taking the newest; "
            "regenerate the profile with `lab.py profiles %s`" % (arch, want, arch))
        return newest_kernel_pkg(a["flavour"], a["deb_arch"], None)
    raise LabError("%s: no linux-image-6.1.0-%s-%s in the archive" % (arch, abi, a["flavour"]))


def fetch(arch, refresh=False, abi=None):
    """Returns the fetched description (also stored as .cache/ARCH.json).  Once
    that file exists the arch is pinned to that kernel and nothing touches the
    network; refresh=True (or abi=N) resolves the package again."""
    a = ARCHES[arch]
    meta_path = os.path.join(CACHE, arch + ".json")
    if os.path.exists(meta_path) and not refresh and abi is None:
        with open(meta_path) as f:
            meta = json.load(f)
        if os.path.exists(meta["vmlinuz"]) and os.path.exists(meta["busybox"]):
            return meta
    ensure_dpkg_arch(a["deb_arch"])
    pkg = resolve_kernel(arch, a, abi)
    kdeb = apt_download("%s:%s" % (pkg, a["deb_arch"]))
    kdir = os.path.join(CACHE, "pkg", os.path.basename(kdeb)[:-4])
    unpack(kdeb, kdir)
    bdeb = apt_download("busybox-static:" + a["deb_arch"])
    bdir = os.path.join(CACHE, "pkg", os.path.basename(bdeb)[:-4])
    unpack(bdeb, bdir)
    vmlinuz = sorted(glob.glob(os.path.join(kdir, "boot", "vmlinuz-*")))
    mods = sorted(glob.glob(os.path.join(kdir, "lib", "modules", "*")))
    if not vmlinuz or not mods:
        raise LabError("%s: no vmlinuz/modules in %s" % (arch, kdeb))
    meta = dict(arch=arch, kernel_package=pkg,
                kernel_deb=os.path.basename(kdeb), busybox_deb=os.path.basename(bdeb),
                kernel_version=os.path.basename(mods[0]),
                vmlinuz=vmlinuz[0], moddir=mods[0],
                busybox=os.path.join(bdir, "bin", "busybox"))
    with open(meta_path + ".tmp", "w") as f:
        json.dump(meta, f, indent=1)
    os.rename(meta_path + ".tmp", meta_path)
    log("%s: %s (%s)" % (arch, pkg, meta["kernel_version"]))
    return meta


# --------------------------------------------------------------------------
# initramfs (cpio "newc" written here, so device nodes need no root)

class Cpio:
    def __init__(self):
        self.buf = bytearray()
        self.ino = 1

    def _add(self, name, mode, data=b"", rdev=(0, 0)):
        name_b = name.encode() + b"\0"
        hdr = "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X" % (
            self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1],
            len(name_b), 0)
        self.ino += 1
        self.buf += hdr.encode() + name_b
        self.buf += b"\0" * (-len(self.buf) % 4)
        self.buf += data
        self.buf += b"\0" * (-len(self.buf) % 4)

    def dir(self, name):
        self._add(name, 0o040755)

    def file(self, name, data, mode=0o644):
        self._add(name, 0o100000 | mode, data)

    def symlink(self, name, target):
        self._add(name, 0o120777, target.encode())

    def chardev(self, name, major, minor):
        self._add(name, 0o020600, rdev=(major, minor))

    def finish(self):
        self._add("TRAILER!!!", 0)
        self.buf += b"\0" * (-len(self.buf) % 512)
        return bytes(self.buf)


def read_module(path):
    """Module bytes; Debian 12 ships .ko.xz, busybox insmod wants plain ELF."""
    for ext in ("", ".xz"):
        p = path + ext
        if os.path.exists(p):
            with open(p, "rb") as f:
                data = f.read()
            return lzma.decompress(data) if ext == ".xz" else data
    return None


def modinfo_depends(data):
    """The depends= field of a module's .modinfo section (ELF32/64, little-endian)."""
    is64 = data[4] == 2
    if is64:
        shoff, = struct.unpack_from("<Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    else:
        shoff, = struct.unpack_from("<I", data, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x2E)

    def sh(i):
        o = shoff + i * shentsize
        if is64:
            name, _, _, _, off, size = struct.unpack_from("<IIQQQQ", data, o)
        else:
            name, _, _, _, off, size = struct.unpack_from("<IIIIII", data, o)
        return name, off, size

    _, stroff, _ = sh(shstrndx)
    for i in range(shnum):
        name, off, size = sh(i)
        if data[stroff + name:data.index(b"\0", stroff + name)] == b".modinfo":
            for kv in data[off:off + size].split(b"\0"):
                if kv.startswith(b"depends="):
                    return [d for d in kv[8:].decode().split(",") if d]
    return []


def pick_modules(moddir, extra=()):
    """(test module, [fw_cfg dependencies..., fw_cfg module] in load order,
    [dependencies..., each name in extra] in load order), as paths relative to
    MODDIR/kernel; names that are built in (not in modules.order) are skipped.  Debian's package has no modules.dep (depmod
    runs at install time), so dependencies come from each module's .modinfo."""
    order = {}
    with open(os.path.join(moddir, "modules.order")) as f:
        for line in f:
            rel = line.strip()
            if rel.startswith("kernel/"):
                rel = rel[7:]
            order[os.path.basename(rel)[:-3].replace("-", "_")] = rel

    def deps(rel):
        return modinfo_depends(read_module(os.path.join(moddir, "kernel", rel)))

    test = next((m for m in TEST_MODULES if read_module(os.path.join(moddir, "kernel", m))
                 is not None and not deps(m)), None)
    if test is None:
        raise LabError("none of %s present without dependencies in %s" % (TEST_MODULES, moddir))
    chain = []

    def add(name):                 # depth-first: dependencies load before users
        rel = order.get(name.replace("-", "_"))
        if rel is None or rel in chain:
            return
        for d in deps(rel):
            add(d)
        chain.append(rel)

    add("qemu_fw_cfg")             # absent on armmp/armmp-lpae: chain stays empty
    fw_chain, chain = chain, []
    for name in extra:
        if name.replace("-", "_") not in order:
            raise LabError("module %s not in %s/modules.order" % (name, moddir))
        add(name)
    return test, fw_chain, chain


INIT_TEMPLATE = r"""#!/bin/sh
# /init of the vmi.h guest lab (busybox sh).  Generated by tests/guests/lab.py.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /run /tmp
# Keep kernel messages off the console so they cannot interleave with the truth.
echo 1 > /proc/sys/kernel/printk
sysctl -w kernel.kptr_restrict=0 >/dev/null
for m in @FWCFG@; do insmod /lib/modules/$m 2>/dev/null; done
insmod /lib/modules/@TESTMOD@ || echo "insmod @TESTMOD@ failed"
# virtio-serial (channel "virtio"): virtio_pci + virtio_console and their deps.
for m in @CHANMODS@; do insmod /lib/modules/$m || echo "insmod $m failed"; done
# Opening a FIFO with no writer blocks forever without a child process, so the
# processes below stay put and pid 1 keeps its comm ("init").
mkfifo /run/block

# Sleepers: the kernel takes comm from the exec'd file name (the symlink),
# busybox picks the applet from argv[0] ("sleep").
for n in a b c; do
    ln -s busybox /bin/vmi_sleeper_$n
    (exec -a sleep /bin/vmi_sleeper_$n 100000) &
done
# Process tree 4+ levels deep: vmi_tree_l1 -> vmi_tree_l2 -> vmi_tree_l3 -> vmi_tree_leaf.
# The trailing "; :" stops ash from exec'ing the last command in place.
for n in vmi_tree_l1 vmi_tree_l2 vmi_tree_l3 vmi_tree_leaf; do ln -s busybox /bin/$n; done
(exec -a sh /bin/vmi_tree_l1 -c '(exec -a sh /bin/vmi_tree_l2 -c "(exec -a sh /bin/vmi_tree_l3 -c \"(exec -a sleep /bin/vmi_tree_leaf 100000); :\"); :"); :') &
# A process whose command line is > 300 bytes.
ln -s busybox /bin/vmi_longcmd
(exec -a sh /bin/vmi_longcmd -c 'read x < /run/block' vmi_longcmd @LONGARGS@) &
LONGPID=$!
# One process with three threads (see THREADS_CODE in lab.py).
/bin/vmi_threads vmi_threads_arg &
THRPID=$!
@LIVECMD@

# Guest uptime at each stage (builtins only), printed in @@timings.
T=""
stamp() { read -r u _ < /proc/uptime; T="$T$1 $u
"; }
stamp export_start
echo "@BEGIN@"
echo "@@channel"
echo @CHANNEL@
if [ @CHANNEL@ = virtio ]; then
    # /dev/vportNpM of the virtio-serial port QEMU named $1 (names arrive
    # asynchronously from the host after the driver binds: wait up to 10 s).
    port() {
        i=0
        while [ $i -lt 100 ]; do
            for p in /sys/class/virtio-ports/*; do
                n=""; read -r n 2>/dev/null < $p/name
                if [ "$n" = "$1" ] && [ -c /dev/${p##*/} ]; then echo /dev/${p##*/}; return; fi
            done
            i=$((i+1)); usleep 100000
        done
        echo /dev/null
    }
    # wc -c counts what tee sent: lab.py checks the host file against it.
    echo "@@kallsyms_bytes"
    cat /proc/kallsyms | tee $(port vmi.kallsyms) | wc -c
    stamp kallsyms
    # BTF's size is known (@@btf_size): no counting pipe needed.
    if [ -e /sys/kernel/btf/vmlinux ]; then cat /sys/kernel/btf/vmlinux > $(port vmi.btf); fi
    stamp btf
else
    echo "@@kallsyms_gz_b64"
    gzip -c /proc/kallsyms | base64
    stamp kallsyms
    echo "@@btf_gz_b64"
    if [ -e /sys/kernel/btf/vmlinux ]; then gzip -c /sys/kernel/btf/vmlinux | base64; fi
    stamp btf
fi
echo "@@uname"
uname -a
echo "@@release"
uname -r
echo "@@version_b64"
base64 < /proc/version
echo "@@cmdline_b64"
base64 < /proc/cmdline
echo "@@kallsyms"
# Fixed whole-word strings: half the TCG time of an -E alternation; lab.py keeps
# only "addr type name" lines whose name is one of them.
printf '%s\n' @SYMS@ > /run/syms
grep -wF -f /run/syms /proc/kallsyms
echo "@@modules"
cat /proc/modules
echo "@@btf_size"
if [ -e /sys/kernel/btf/vmlinux ]; then wc -c < /sys/kernel/btf/vmlinux; else echo none; fi
echo "@@iomem"
cat /proc/iomem
echo "@@vmcoreinfo"
cat /sys/kernel/vmcoreinfo 2>/dev/null
echo "@@fw_cfg"
ls /sys/firmware/qemu_fw_cfg/by_name/etc 2>/dev/null | tr '\n' ' '; echo
echo "@@long_pid"
echo $LONGPID
echo "@@long_cmdline_b64"
base64 < /proc/$LONGPID/cmdline
stamp misc
# The named processes must all have exec'd (comm set) before the snapshot.
i=0
while [ $i -lt 50 ]; do
    seen=""
    for f in /proc/[0-9]*/comm; do
        c=""; read -r c 2>/dev/null < $f
        case $c in vmi_tree_leaf|vmi_longcmd) seen="$seen$c ";; esac
    done
    nt=0
    for f in /proc/$THRPID/task/*; do nt=$((nt+1)); done
    case "$seen" in *vmi_tree_leaf*vmi_longcmd*|*vmi_longcmd*vmi_tree_leaf*) [ $nt = 3 ] && break;; esac
    i=$((i+1)); usleep 100000
done
# Every command line in one go: busybox head puts "==> FILE <==" before each.
echo "@@cmdlines_b64"
head -c 1000000 /proc/[0-9]*/cmdline | base64
# The kernel log last of the forking steps: nothing of ours logs after it.
echo "@@dmesg_b64"
dmesg | base64
stamp dmesg
echo "@@printk"
read -r pk < /proc/sys/kernel/printk; echo "$pk"
# The process snapshot comes last, with shell builtins only (no fork): nothing
# of ours starts or ends between it and the pause.
PS=""; ST=""
for d in /proc/[0-9]*; do
    line=""; read -r line 2>/dev/null < $d/stat || continue
    PS="$PS$line
"
    # Tgid and Uid are lines 4 and 9 of status; stop there (ash's read takes a
    # syscall per byte).  Threads comes from stat's num_threads (same counter).
    while read -r k v; do
        case $k in Tgid:|Uid:) ST="$ST${d#/proc/} $k $v
";; esac
        [ "$k" = Uid: ] && break
    done 2>/dev/null < $d/status
done
set -- /proc/$THRPID/task/*
TT="$THRPID $*"
stamp snapshot
echo "@@ps"
printf '%s' "$PS"
echo "@@status"
printf '%s' "$ST"
echo "@@threads"
echo "$TT"
echo "@@timings"
printf '%s' "$T"
echo "@@uptime"
read -r up < /proc/uptime; echo "$up"
echo "@END@"
echo "@READY@"
read x < /run/block
"""

# `boot --live` only (with channel virtio): the command loop, started before the
# truth so it is in the process list (comm vmi_cmd_loop).  Capture runs get
# none of it: their /init is the same text as before, byte for byte.
LIVE_CMD_INIT = r"""# Live mode: the command loop on virtio-serial port vmi.cmd (lab.py send_command).
mkfifo /run/vmi_cmd_tick
ln -s busybox /bin/vmi_cmd_loop
(exec -a sh /bin/vmi_cmd_loop /bin/vmi_cmd.sh) &
CMDPID=$!
i=0
while [ $i -lt 50 ]; do
    c=""; read -r c 2>/dev/null < /proc/$CMDPID/comm
    [ "$c" = vmi_cmd_loop ] && break
    i=$((i+1)); usleep 100000
done
"""

# /bin/vmi_cmd.sh, run by the loop (comm vmi_cmd_loop, argv "sh /bin/vmi_cmd.sh").
# Shell builtins only: it never forks or execs except to run a command line, so
# it cannot disturb the truth snapshot nor a trace of exec/fork.  Each line read
# from the port runs as `(eval "$line") </dev/null &`: one fork (a subshell of
# the loop, comm vmi_cmd_loop until something execs), no exec, not waited for;
# output goes to the console (serial.log).  fd 3 stays open in the commands: a
# FIFO nobody writes, so `read -t SECONDS x <&3` is a sleep without exec.
VMI_CMD_SH = r"""# vmi.cmd command loop of the vmi.h guest lab (generated by tests/guests/lab.py).
exec 3<> /run/vmi_cmd_tick
p=""
while [ -z "$p" ]; do
    for d in /sys/class/virtio-ports/*; do
        n=""; read -r n 2>/dev/null < $d/name
        if [ "$n" = vmi.cmd ] && [ -c /dev/${d##*/} ]; then p=/dev/${d##*/}; fi
    done
    [ -n "$p" ] || read -t 0.2 x <&3
done
exec 4< $p
while :; do
    line=""
    if IFS= read -r line <&4 || [ -n "$line" ]; then
        if [ -n "$line" ]; then (exec 4<&-; eval "$line") </dev/null & fi
    else
        # No host connection: a virtio port then reads EOF at once.
        read -t 0.2 x <&3
    fi
done
"""
CMD_PORT = "vmi.cmd"

# Host side of channel "virtio": one virtio-serial port per blob, each into a
# chardev file in the guest's temp dir.  name -> file
VIRTIO_PORTS = {"vmi.kallsyms": "kallsyms.bin", "vmi.btf": "btf.bin"}
VIRTIO_MODULES = ["virtio_pci", "virtio_console"]
CHANNELS = ("virtio", "serial")
DEFAULT_CHANNEL = "virtio"


def build_initramfs(meta, path, channel=DEFAULT_CHANNEL, live_cmd=False):
    moddir = meta["moddir"]
    test, fw_chain, chan_chain = pick_modules(
        moddir, VIRTIO_MODULES if channel == "virtio" else ())
    cp = Cpio()
    for d in ("bin", "dev", "proc", "sys", "run", "tmp", "lib", "lib/modules"):
        cp.dir(d)
    # The kernel opens /dev/console for init before anything is mounted.
    cp.chardev("dev/console", 5, 1)
    with open(meta["busybox"], "rb") as f:
        cp.file("bin/busybox", f.read(), 0o755)
    cp.symlink("bin/sh", "busybox")
    cp.file("bin/vmi_threads", threads_elf(meta["arch"]), 0o755)
    if live_cmd:
        cp.file("bin/vmi_cmd.sh", VMI_CMD_SH.encode(), 0o755)
    made = set()
    for m in fw_chain + [test] + chan_chain:
        parts = m.split("/")
        for i in range(1, len(parts)):
            d = "lib/modules/" + "/".join(parts[:i])
            if d not in made:
                cp.dir(d)
                made.add(d)
        data = read_module(os.path.join(moddir, "kernel", m))
        if data is None:
            raise LabError("module %s missing" % m)
        cp.file("lib/modules/" + m, data)
    init = (INIT_TEMPLATE.replace("@FWCFG@", " ".join(fw_chain))
            .replace("@TESTMOD@", test)
            .replace("@CHANMODS@", " ".join(chan_chain))
            .replace("@CHANNEL@", channel)
            .replace("@LONGARGS@", " ".join(LONG_ARGS))
            .replace("@SYMS@", " ".join(KALLSYMS))
            .replace("@LIVECMD@\n", LIVE_CMD_INIT if live_cmd else "")
            .replace("@BEGIN@", BEGIN).replace("@END@", END).replace("@READY@", READY))
    cp.file("init", init.encode(), 0o755)
    with open(path, "wb") as f:
        f.write(cp.finish())
    return test, fw_chain, chan_chain


# --------------------------------------------------------------------------
# QMP and gdbstub clients

class QMP:
    def __init__(self, path, timeout=60):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.f = self.sock.makefile("rwb")
        self._read()                               # greeting
        self.cmd("qmp_capabilities")

    def _read(self):
        while True:
            line = self.f.readline()
            if not line:
                raise LabError("QMP connection closed")
            msg = json.loads(line)
            if "event" not in msg:                 # events are not replies
                return msg

    def cmd(self, name, **args):
        req = {"execute": name}
        if args:
            req["arguments"] = args
        self.f.write(json.dumps(req).encode() + b"\n")
        self.f.flush()
        r = self._read()
        if "error" in r:
            raise LabError("QMP %s: %s" % (name, r["error"]))
        return r.get("return")

    def hmp(self, line):
        return self.cmd("human-monitor-command", **{"command-line": line})

    def close(self):
        # The makefile() object holds the fd open too: close both, or QEMU's
        # single QMP slot stays taken and the next client waits for a greeting.
        for obj in (self.f, self.sock):
            try:
                obj.close()
            except OSError:
                pass


class GDB:
    """Minimal gdb remote-protocol client: enough to read named registers
    (QEMU exposes ARM system registers such as TTBR1_EL1 as gdb registers)."""

    def __init__(self, path, timeout=30):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.sock.sendall(b"+")
        # Connecting stops a running guest and QEMU may send a stop reply of its
        # own; ask "?" and drain every reply so later requests stay in step.
        self.req("?")
        self.sock.settimeout(0.3)
        try:
            while True:
                self._recv_packet()
        except (socket.timeout, LabError):
            pass
        self.sock.settimeout(timeout)

    def _recv_packet(self):
        while True:
            i = self.buf.find(b"$")
            j = self.buf.find(b"#", i + 1) if i >= 0 else -1
            if i >= 0 and j >= 0 and len(self.buf) >= j + 3:
                body = self.buf[i + 1:j]
                self.buf = self.buf[j + 3:]
                self.sock.sendall(b"+")
                return body.decode("latin-1")
            data = self.sock.recv(65536)
            if not data:
                raise LabError("gdbstub closed")
            self.buf += data

    def req(self, body):
        pkt = body.encode("latin-1")
        self.sock.sendall(b"$%s#%02x" % (pkt, sum(pkt) & 0xFF))
        return self._recv_packet()

    def xfer(self, annex):
        out, off = "", 0
        while True:
            r = self.req("qXfer:features:read:%s:%x,%x" % (annex, off, 0x3000))
            if not r or r[0] not in "lm":
                raise LabError("qXfer %s: %r" % (annex, r[:40]))
            out += r[1:]
            off += len(r) - 1
            if r[0] == "l":
                return out

    def registers(self):
        """{name: (regnum, bitsize)} from the target description XML."""
        self.req("qSupported:xmlRegisters=i386,arm")
        regs, num = {}, 0
        todo, seen = ["target.xml"], set()
        while todo:
            annex = todo.pop(0)
            if annex in seen:
                continue
            seen.add(annex)
            xml = self.xfer(annex)
            for m in re.finditer(r"<(xi:include|reg)\b([^>]*)>", xml):
                attrs = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
                if m.group(1) == "xi:include":
                    todo.append(attrs["href"])
                    continue
                if "regnum" in attrs:
                    num = int(attrs["regnum"])
                regs[attrs["name"]] = (num, int(attrs.get("bitsize", "32")))
                num += 1
        return regs

    def read_reg(self, regnum):
        r = self.req("p%x" % regnum)
        if not r or r.startswith("E"):
            return None
        return int.from_bytes(bytes.fromhex(r), "little")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# Registers read over the gdbstub, by arch family (names as QEMU's XML spells them).
GDB_REGS = {
    "x86": ["cr0", "cr3", "cr4", "efer"],
    "arm64": ["TTBR0_EL1", "TTBR1_EL1", "TCR_EL1", "SCTLR_EL1", "MAIR_EL1",
              "VBAR_EL1", "TPIDR_EL1", "SP_EL0", "ID_AA64MMFR0_EL1"],
    "arm": ["TTBR0", "TTBR1", "TTBCR", "SCTLR", "DACR", "TPIDRPRW", "TPIDRURO",
            "CONTEXTIDR", "VBAR", "PRRR", "NMRR", "MAIR0", "MAIR1"],
}


# --------------------------------------------------------------------------
# booting

def family(arch):
    return "x86" if arch.startswith(("x86", "i386")) else arch.split("-")[0].replace("armhf", "arm")


class Guest:
    """One QEMU process with RAM in /dev/shm, QMP + gdbstub on unix sockets,
    serial console in a file."""

    def __init__(self, arch, meta, channel=DEFAULT_CHANNEL, live=False, reboot=False):
        self.arch, self.meta, self.a = arch, meta, ARCHES[arch]
        self.reboot = reboot  # let a guest reboot instead of QEMU exiting (tests of resets)
        self.channel = channel
        # The command channel (port vmi.cmd) needs virtio-serial: live + virtio only.
        self.live_cmd = live and channel == "virtio"
        self.tmp = tempfile.mkdtemp(prefix="vmi-lab-%s-" % arch)
        _cleanup_paths.append(self.tmp)
        self.shm = "/dev/shm/vmi-lab-%s-%d" % (arch, os.getpid())
        _cleanup_paths.append(self.shm)
        self.qmp_path = os.path.join(self.tmp, "qmp.sock")
        self.gdb_path = os.path.join(self.tmp, "gdb.sock")
        self.serial = os.path.join(self.tmp, "serial.log")
        self.qemu_log = os.path.join(self.tmp, "qemu.log")
        self.initrd = os.path.join(self.tmp, "initrd.cpio")
        self.cmd_path = os.path.join(self.tmp, "cmd.sock") if self.live_cmd else None
        self.proc = None
        self.pidfile = None

    def start(self):
        a = self.a
        self.test_module, self.fw_chain, self.chan_chain = build_initramfs(
            self.meta, self.initrd, self.channel, self.live_cmd)
        # No "quiet": the boot log is what tells why a guest did not come up;
        # /init lowers the console loglevel before it prints the truth.
        append = "console=%s panic=-1" % a["console"]
        cmd = [a["qemu"], "-accel", "tcg", "-smp", "1", "-m", "%dM" % RAM_MB,
               "-object", "memory-backend-file,id=ram0,size=%dM,mem-path=%s,share=on"
               % (RAM_MB, self.shm),
               "-machine", "%s,memory-backend=ram0" % a["machine"],
               "-cpu", a["cpu"], "-kernel", self.meta["vmlinuz"], "-initrd", self.initrd,
               "-append", append, "-device", "vmcoreinfo",
               "-display", "none", "-monitor", "none", "-nodefaults",
               "-serial", "file:" + self.serial,
               "-qmp", "unix:%s,server=on,wait=off" % self.qmp_path,
               "-gdb", "unix:%s,server=on,wait=off" % self.gdb_path]
        if not self.reboot:
            cmd.append("-no-reboot")
        if self.channel == "virtio":
            # Bulk data (full kallsyms, BTF) leaves on virtio-serial ports, far
            # faster than the emulated UART; PCI on every machine (q35, pc, virt).
            cmd += ["-device", "virtio-serial-pci,id=vmivs"]
            for i, (name, fname) in enumerate(sorted(VIRTIO_PORTS.items())):
                cmd += ["-chardev", "file,id=vmiport%d,path=%s" % (i, self.port_file(name)),
                        "-device", "virtserialport,bus=vmivs.0,chardev=vmiport%d,name=%s"
                        % (i, name)]
            if self.live_cmd:
                # Last, so the blob ports keep their numbers; send_command() writes here.
                cmd += ["-chardev", "socket,id=vmicmd,path=%s,server=on,wait=off" % self.cmd_path,
                        "-device", "virtserialport,bus=vmivs.0,chardev=vmicmd,name=%s" % CMD_PORT]
        self.cmdline = cmd
        with open(self.qemu_log, "wb") as lf:
            self.t0 = time.time()
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=lf, stderr=lf,
                                         start_new_session=True)   # no Ctrl-C to QEMU directly
        with _lock:
            _children.append(self.proc)
        os.makedirs(RUN_DIR, exist_ok=True)
        self.pidfile = os.path.join(RUN_DIR, "%s-%d.pid" % (self.arch, self.proc.pid))
        with open(self.pidfile, "w") as f:
            json.dump({"pid": self.proc.pid, "qemu": a["qemu"], "shm": self.shm,
                       "tmp": self.tmp}, f)
        with _lock:
            _cleanup_paths.append(self.pidfile)

    def port_file(self, name):
        return os.path.join(self.tmp, VIRTIO_PORTS[name])

    def serial_text(self):
        try:
            with open(self.serial, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _fail(self, why):
        tail = "\n".join(self.serial_text().replace("\r", "").splitlines()[-25:])
        try:
            with open(self.qemu_log, "rb") as f:
                qlog = f.read().decode("utf-8", "replace")[-2000:]
        except OSError:
            qlog = ""
        raise LabError("%s: %s\n--- last serial lines ---\n%s\n--- qemu output ---\n%s"
                       % (self.arch, why, tail, qlog))

    def wait_ready(self, timeout=BOOT_TIMEOUT):
        while True:
            text = self.serial_text()
            if READY in text:
                self.boot_seconds = round(time.time() - self.t0, 2)
                return text
            if self.proc.poll() is not None:
                self._fail("QEMU exited with status %d before READY" % self.proc.returncode)
            if time.time() - self.t0 > timeout:
                self._fail("no %s within %d s" % (READY, timeout))
            time.sleep(0.2)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            try:
                q = QMP(self.qmp_path, timeout=5)
                q.cmd("quit")
                q.close()
                self.proc.wait(timeout=10)
            except Exception:
                pass
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        _forget(_children, self.proc)
        for p in (self.shm, self.tmp, self.pidfile):
            _remove_path(p)
            _forget(_cleanup_paths, p)


# --------------------------------------------------------------------------
# parsing what the guest said

def parse_truth(text):
    text = text.replace("\r", "")
    if BEGIN not in text or END not in text:
        raise LabError("truth markers missing")
    body = text.split(BEGIN, 1)[1].split(END, 1)[0]
    sections, cur = {}, None
    for line in body.split("\n"):
        if line.startswith("@@"):
            cur = line[2:].strip()
            sections[cur] = []
        elif cur is not None:
            sections[cur].append(line)
    return sections


def parse_stat(line):
    # "pid (comm) state ppid ..."; comm may hold spaces and ')' so split at the last ')'.
    # rest[i] is field i+3 of proc(5)'s /proc/PID/stat.
    lp, rp = line.index("("), line.rindex(")")
    rest = line[rp + 2:].split()
    return {"pid": int(line[:lp]), "ppid": int(rest[1]), "comm": line[lp + 1:rp],
            "state": rest[0], "num_threads_stat": int(rest[17]),
            "starttime": int(rest[19]), "vsize": int(rest[20])}


def parse_status(lines):
    """"PID Key: values" lines (Tgid, Uid, Threads of /proc/PID/status) -> {pid: {...}}."""
    out = {}
    for line in lines:
        p = line.split()
        if len(p) < 3:
            continue
        d = out.setdefault(int(p[0]), {})
        if p[1] == "Tgid:":
            d["tgid"] = int(p[2])
        elif p[1] == "Uid:" and len(p) >= 4:
            d["uid"], d["euid"] = int(p[2]), int(p[3])
        elif p[1] == "Threads:":
            d["threads"] = int(p[2])
    return out


def parse_cmdlines(data):
    """`head -c N /proc/[0-9]*/cmdline` output -> {pid: [args]}.  busybox head
    writes "==> FILE <==\n" before the first file and "\n==> FILE <==\n"
    before every other one."""
    parts = re.split(rb"(?:^|\n)==> /proc/(\d+)/cmdline <==\n", data)
    out = {}
    for pid, body in zip(parts[1::2], parts[2::2]):
        args = body.split(b"\0")
        if args and args[-1] == b"":
            args.pop()
        out[int(pid)] = [a.decode("utf-8", "replace") for a in args]
    return out


def parse_module_line(line):
    """/proc/modules: name size refcount deps state base [taints]."""
    p = line.split()
    if len(p) < 6:
        return None
    deps = [] if p[3] == "-" else [d for d in p[3].split(",") if d]
    return {"name": p[0], "size": int(p[1]), "base": hex(int(p[5], 16)),
            "refcount": int(p[2]) if p[2].lstrip("-").isdigit() else p[2],
            "deps": deps, "state": p[4], "taints": " ".join(p[6:]).strip("()"),
            "line": line.strip()}


def b64(lines):
    return base64.b64decode("".join(l.strip() for l in lines))


def build_truth(arch, meta, sec):
    t = {"arch": arch, "kernel_package": meta["kernel_package"],
         "kernel_deb": meta["kernel_deb"]}
    t["kernel_version"] = sec["release"][0].strip()
    t["uname"] = sec["uname"][0].strip()
    t["banner"] = b64(sec["version_b64"]).decode()
    t["cmdline"] = b64(sec["cmdline_b64"]).decode().rstrip("\n")
    ks = {}
    for line in sec["kallsyms"]:
        p = line.split()
        # vmlinux lines only ("addr type name", no [module]); first hit wins
        if len(p) == 3 and p[2] in KALLSYMS and p[2] not in ks:
            ks[p[2]] = hex(int(p[0], 16))
            ks.setdefault("_types", {})[p[2]] = p[1]
    t["kallsyms_types"] = ks.pop("_types", {})
    t["kallsyms"] = ks
    procs = sorted((parse_stat(l) for l in sec["ps"] if l.strip()), key=lambda p: p["pid"])
    status = parse_status(sec.get("status", []))
    cmdlines = parse_cmdlines(b64(sec.get("cmdlines_b64", [])))
    for p in procs:
        st = status.get(p["pid"], {})
        # tgid, uid, euid from /proc/PID/status; threads = stat's num_threads
        # (field 20, the same signal->nr_threads as status's Threads: line)
        p["tgid"] = st.get("tgid", p["pid"])
        p["uid"], p["euid"] = st.get("uid"), st.get("euid")
        p["threads"] = st.get("threads", p.pop("num_threads_stat"))
        p.pop("num_threads_stat", None)
        # kernel threads have an empty cmdline; a pid the cmdline pass did not
        # see (a kworker born between it and the snapshot) is a kernel thread too
        p["cmdline"] = cmdlines.get(p["pid"], [])
    t["processes"] = procs
    t["modules"] = [m for m in map(parse_module_line, sec["modules"]) if m]
    th = sec.get("threads", [""])[0].split()
    t["threads_process"] = {
        "pid": int(th[0]), "comm": "vmi_threads",
        "tids": sorted(int(x.rsplit("/", 1)[1]) for x in th[1:] if x.rsplit("/", 1)[1].isdigit())
    } if th else None
    t["channel"] = sec.get("channel", ["serial"])[0].strip()
    t["guest_timings"] = {l.split()[0]: float(l.split()[1])
                          for l in sec.get("timings", []) if len(l.split()) == 2}
    pk = sec.get("printk", [""])[0].split()
    t["printk"] = [int(x) for x in pk] if pk else None
    bs = sec["btf_size"][0].strip()
    t["btf_size"] = int(bs) if bs.isdigit() else None
    ram = []
    for line in sec["iomem"]:
        # top-level (unindented) System RAM lines only
        m = re.match(r"^([0-9a-fA-F]+)-([0-9a-fA-F]+) : System RAM$", line)
        if m:
            ram.append({"start": hex(int(m.group(1), 16)), "end": hex(int(m.group(2), 16))})
    t["iomem_system_ram"] = ram
    # Where the kernel image sits physically ("Kernel code/rodata/data/bss").
    t["iomem_kernel"] = [
        {"name": m.group(3), "start": hex(int(m.group(1), 16)), "end": hex(int(m.group(2), 16))}
        for m in (re.match(r"^\s+([0-9a-f]+)-([0-9a-f]+) : (Kernel \w+)$", l) for l in sec["iomem"])
        if m]
    t["iomem"] = "\n".join(l for l in sec["iomem"] if l)
    vci = [l for l in sec.get("vmcoreinfo", []) if l.strip()]
    if vci:                        # "<paddr hex> <size hex>" of the kernel's own note
        pa, size = vci[0].split()
        t["sys_kernel_vmcoreinfo"] = {"paddr": hex(int(pa, 16)),
                                      "size": int(size, 16)}
    else:
        t["sys_kernel_vmcoreinfo"] = None
    t["fw_cfg_files"] = sec.get("fw_cfg", [""])[0].split()
    args = b64(sec["long_cmdline_b64"]).split(b"\0")
    if args and args[-1] == b"":
        args.pop()
    t["long_cmdline"] = {"pid": int(sec["long_pid"][0]), "args": [x.decode() for x in args]}
    t["guest_uptime"] = float(sec["uptime"][0].split()[0])
    return t


def count_bytes(lines):
    """The guest's `wc -c` of what it sent (None when the section is empty)."""
    for line in lines:
        if line.strip().isdigit():
            return int(line)
    return None


def blobs(g, sec):
    """{"kallsyms.txt": bytes, "vmlinux.btf": bytes or None, "dmesg.txt": bytes}:
    the full /proc/kallsyms and /sys/kernel/btf/vmlinux from the virtio-serial
    port files (checked against the guest's byte counts) or from gzip+base64 on the
    console, and `dmesg` (base64 on the console in both channels)."""
    out = {"dmesg.txt": b64(sec.get("dmesg_b64", []))}
    if g.channel == "virtio":
        for key, port, sname in (("kallsyms.txt", "vmi.kallsyms", "kallsyms_bytes"),
                                 ("vmlinux.btf", "vmi.btf", "btf_size")):
            want = count_bytes(sec.get(sname, []))
            if want is None:
                if key == "vmlinux.btf":         # btf_size "none": the kernel has no BTF
                    out[key] = None
                    continue
                raise LabError("%s: no byte count for %s: %r" % (g.arch, port, sec.get(sname)))
            data = b""
            for _ in range(50):                  # QEMU writes the chardev file synchronously
                with open(g.port_file(port), "rb") as f:
                    data = f.read()
                if len(data) >= want:
                    break
                time.sleep(0.1)
            if len(data) != want:
                raise LabError("%s: %s: got %d bytes, the guest sent %d"
                               % (g.arch, port, len(data), want))
            out[key] = data
    else:
        import gzip
        out["kallsyms.txt"] = gzip.decompress(b64(sec["kallsyms_gz_b64"]))
        bt = sec.get("btf_gz_b64", [])
        out["vmlinux.btf"] = gzip.decompress(b64(bt)) if "".join(bt).strip() else None
    return out


def dmesg_summary(text):
    lines = [l for l in text.decode("utf-8", "replace").split("\n") if l.strip()]
    return {"lines": len(lines), "bytes": len(text), "first": lines[:3], "last": lines[-3:]}


def parse_mtree_ram(text):
    """RAM ranges backed by our memory backend ("ram0") from `info mtree -f`:
    [(gpa_start, gpa_end_inclusive, offset_in_ram0)], for address-space 'memory'."""
    out, in_mem = [], False
    for line in text.splitlines():
        # A FlatView header lists every address space sharing it ("AS ...").
        if line.startswith("FlatView"):
            in_mem = False
            continue
        if line.lstrip().startswith("AS "):
            in_mem = in_mem or line.lstrip().startswith('AS "memory"')
            continue
        if not in_mem:
            continue
        m = re.match(r"\s*([0-9a-f]+)-([0-9a-f]+) \(prio [-\d]+, (ram|rom|ramd|romd)\): (\S+)(?: @([0-9a-f]+))?", line)
        if m and m.group(4) == "ram0":
            s, e = int(m.group(1), 16), int(m.group(2), 16)
            off = int(m.group(5), 16) if m.group(5) else 0
            out.append((s, e, off))
    return out


def parse_info_registers(text, fam):
    """x86: control registers from HMP `info registers` (the authoritative
    source there).  ARM: HMP shows no system registers, only the PC; TTBRs etc.
    come from the gdbstub (gdb_regs)."""
    regs = {}
    if fam == "x86":
        for name in ("CR0", "CR2", "CR3", "CR4", "EFER", "EIP", "RIP", "GDT", "IDT"):
            m = re.search(r"\b%s=\s*([0-9a-f]+)" % name, text)
            if m:
                regs[name.lower()] = hex(int(m.group(1), 16))
    else:
        m = re.search(r"\bPC=([0-9a-f]+)", text) or re.search(r"\bR15=([0-9a-f]+)", text)
        if m:
            regs["pc"] = "0x" + m.group(1)
    return regs


def gdb_regs(path, fam):
    out = {}
    g = GDB(path)
    try:
        table = g.registers()
        for name in GDB_REGS[fam]:
            if name in table:
                v = g.read_reg(table[name][0])
                if v is not None:
                    out[name] = hex(v)
    finally:
        g.close()
    return out


# --------------------------------------------------------------------------
# images

def read_vmcoreinfo(raw_path, ram_base, info):
    """The kernel's VMCOREINFO note (an ELF note at the physical address that
    /sys/kernel/vmcoreinfo reports), read from mem.raw and split into a dict.
    Every kernel here has it, with or without fw_cfg, and it names data symbols
    (swapper_pg_dir, init_uts_ns, KERNELOFFSET...) that text-only kallsyms lacks."""
    if not info:
        return None
    with open(raw_path, "rb") as f:
        f.seek(int(info["paddr"], 16) - ram_base)
        note = f.read(info["size"])
    namesz, descsz, _ = struct.unpack_from("<III", note)
    if note[12:12 + namesz].rstrip(b"\0") != b"VMCOREINFO":
        return None
    off = 12 + ((namesz + 3) & ~3)
    out = {}
    for line in note[off:off + descsz].decode("ascii", "replace").split("\n"):
        k, eq, v = line.partition("=")
        if eq:
            out[k] = v
    return out


def write_lime(raw_path, lime_path, ranges, ram_base):
    """LiME: per range a 32-byte header {magic, version 1, s_addr, e_addr
    (inclusive), 8 reserved} then the range's bytes (taken from mem.raw)."""
    with open(raw_path, "rb") as src, open(lime_path, "wb") as dst:
        for s, e in ranges:
            dst.write(struct.pack("<IIQQ8s", 0x4C694D45, 1, s, e, b"\0" * 8))
            src.seek(s - ram_base)
            left = e - s + 1
            while left:
                chunk = src.read(min(left, 1 << 22))
                if not chunk:
                    raise LabError("mem.raw too short for LiME range %x-%x" % (s, e))
                dst.write(chunk)
                left -= len(chunk)


def capture_one(arch, out_root, channel=DEFAULT_CHANNEL):
    meta = fetch(arch)
    out = os.path.join(out_root, arch)
    os.makedirs(out, exist_ok=True)
    # truth.json is written last and marks a complete capture: drop the old one
    # first so a failed run never leaves it beside new images.
    if os.path.exists(os.path.join(out, "truth.json")):
        os.unlink(os.path.join(out, "truth.json"))
    g = Guest(arch, meta, channel)
    try:
        g.start()
        text = g.wait_ready()
        q = QMP(g.qmp_path)
        q.cmd("stop")
        sec = parse_truth(text)
        truth = build_truth(arch, meta, sec)
        truth["boot_seconds"] = g.boot_seconds
        files = blobs(g, sec)
        if files["vmlinux.btf"] is not None and len(files["vmlinux.btf"]) != truth["btf_size"]:
            raise LabError("%s: vmlinux.btf has %d bytes, btf_size %s"
                           % (arch, len(files["vmlinux.btf"]), truth["btf_size"]))
        truth["dmesg"] = dmesg_summary(files["dmesg.txt"])
        truth["files"] = {}
        for name, data in files.items():
            path = os.path.join(out, name)
            if data is None:
                if os.path.exists(path):
                    os.unlink(path)              # stale file of an older capture
                continue
            with open(path, "wb") as f:
                f.write(data)
            truth["files"][name] = {"bytes": len(data)}
            if name.endswith(".txt"):
                truth["files"][name]["lines"] = data.count(b"\n")
        mtree = q.hmp("info mtree -f")
        ram = parse_mtree_ram(mtree)
        if not ram:
            raise LabError("%s: no ram0 ranges in info mtree -f" % arch)
        # RAM base = guest-physical address of offset 0 of the backend.
        base = min(s - off for s, e, off in ram)
        truth["ram_base"] = hex(base)
        truth["ram_size"] = hex(RAM_MB << 20)
        truth["qemu_ram_map"] = [{"start": hex(s), "end": hex(e), "ram_offset": hex(o)}
                                 for s, e, o in ram]
        fam = family(arch)
        info_regs = q.hmp("info registers")
        regs = parse_info_registers(info_regs, fam)
        try:
            # x86: HMP already shows CR0-4/EFER; QEMU's gdb register numbering for
            # x86 control registers is not worth trusting over it.
            if fam != "x86":
                regs.update(gdb_regs(g.gdb_path, fam))
        except Exception as e:                     # registers are a bonus, not fatal
            log("%s: gdbstub registers unavailable: %s" % (arch, e))
        truth["regs"] = regs
        # The images must show the paused state the registers were read in.
        if q.cmd("query-status")["status"] != "paused":
            raise LabError("%s: guest resumed during the capture" % arch)
        with open(os.path.join(out, "info_registers.txt"), "w") as f:
            f.write(info_regs)
        with open(os.path.join(out, "serial.log"), "w") as f:
            f.write(text)
        # mem.raw: the backend file itself is the guest RAM, offset 0 = ram_base.
        raw = os.path.join(out, "mem.raw")
        shutil.copyfile(g.shm, raw)
        truth["vmcoreinfo"] = read_vmcoreinfo(raw, base, truth["sys_kernel_vmcoreinfo"])
        elf = os.path.join(out, "mem.elf")
        if os.path.exists(elf):
            os.unlink(elf)
        q.cmd("dump-guest-memory", paging=False, protocol="file:" + os.path.abspath(elf))
        os.chmod(elf, 0o644)                       # QEMU creates it 0600
        # LiME ranges = the guest's own System RAM ranges (what LiME itself walks).
        ranges = [(int(r["start"], 16), int(r["end"], 16)) for r in truth["iomem_system_ram"]]
        if not ranges:
            ranges = [(base, base + (RAM_MB << 20) - 1)]
        write_lime(raw, os.path.join(out, "mem.lime"), ranges, base)
        truth["lime_ranges"] = [{"start": hex(s), "end": hex(e)} for s, e in ranges]
        truth["qemu_cmdline"] = g.cmdline
        truth["test_module"] = os.path.basename(g.test_module)[:-3]
        truth["fw_cfg_modules"] = [os.path.basename(m)[:-3] for m in g.fw_chain]
        truth["channel_modules"] = [os.path.basename(m)[:-3] for m in g.chan_chain]
        with open(os.path.join(out, "truth.json"), "w") as f:
            json.dump(truth, f, indent=1)
            f.write("\n")
        q.close()
        log("%s: ok, boot %.1f s, %d processes, %s" % (arch, g.boot_seconds,
                                                         len(truth["processes"]), out))
        return truth
    finally:
        g.stop()


def expand(arches):
    if arches == ["all"]:
        return list(ARCHES)
    bad = [a for a in arches if a not in ARCHES]
    if bad:
        raise LabError("unknown arch %s (known: %s)" % (bad, " ".join(ARCHES)))
    return arches


def cmd_fetch(args):
    for a in expand(args.arch):
        m = fetch(a, refresh=args.refresh, abi=args.abi)
        print("%-13s %s  %s" % (a, m["kernel_deb"], m["busybox_deb"]))


def cmd_capture(args):
    arches = expand(args.arch)
    for a in arches:                  # fetch serially: apt/dpkg do not like parallel runs
        fetch(a)
    errors, results = {}, {}
    lock = threading.Lock()
    pending = list(arches)

    def worker():
        while True:
            with lock:
                if not pending:
                    return
                a = pending.pop(0)
            try:
                results[a] = capture_one(a, args.out, args.channel)
            except Exception as e:
                errors[a] = e
                if not _interrupted.is_set():      # after Ctrl-C failures are expected
                    log("%s: FAILED: %s" % (a, e))

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(max(1, args.jobs))]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(0.5)               # short joins keep Ctrl-C responsive
    for a in arches:
        if a in results:
            print("%-13s ok    boot %5.2f s  %s" % (a, results[a]["boot_seconds"],
                                                   results[a]["kernel_version"]))
        else:
            print("%-13s FAIL  %s" % (a, str(errors[a]).splitlines()[0]))
    return 1 if errors else 0


def cmd_boot(args):
    if not args.live:
        raise LabError("boot needs --live")
    arch = expand([args.arch])[0]
    meta = fetch(arch)
    g = Guest(arch, meta, args.channel, live=True, reboot=args.allow_reboot)
    try:
        g.start()
        text = g.wait_ready()
        sec = parse_truth(text)
        truth = build_truth(arch, meta, sec)
        for name, data in blobs(g, sec).items():    # beside truth.json in the temp dir
            if data is not None:
                with open(os.path.join(g.tmp, name), "wb") as f:
                    f.write(data)
        q = QMP(g.qmp_path)
        ram = parse_mtree_ram(q.hmp("info mtree -f"))
        q.close()
        tpath = os.path.join(g.tmp, "truth.json")
        with open(tpath, "w") as f:
            json.dump(truth, f, indent=1)
        print(json.dumps({"arch": arch, "pid": g.proc.pid, "qmp": g.qmp_path,
                          "gdb": g.gdb_path, "cmd": g.cmd_path, "shm": g.shm, "serial": g.serial,
                          "truth": tpath, "ram_base": hex(min(s - o for s, _, o in ram)),
                          "ram_size": hex(RAM_MB << 20),
                          "boot_seconds": g.boot_seconds}), flush=True)
        while g.proc.poll() is None:
            time.sleep(0.5)            # SIGTERM/SIGINT raise KeyboardInterrupt here
        log("%s: QEMU exited by itself (status %d)" % (arch, g.proc.returncode))
        return 1
    except KeyboardInterrupt:
        return 0                       # the normal way to end a live boot
    finally:
        g.stop()


def send_command(path, line, timeout=10):
    """Runs LINE (one line of busybox sh) in a live guest through its command
    channel: PATH is the "cmd" socket of `boot --live`.  The guest runs it in
    the background and does not report back (output goes to its console).
    Returns once QEMU has taken all bytes (it closes the connection after
    reading our EOF); LabError if it does not within TIMEOUT seconds."""
    if "\n" in line:
        raise LabError("send_command: one line only")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall(line.encode() + b"\n")
        # Closing at once could race QEMU's hang-up handling against its read of
        # the data: half-close and wait until QEMU has read up to our EOF.
        s.shutdown(socket.SHUT_WR)
        while s.recv(4096):
            pass
    except socket.timeout:
        raise LabError("send_command: QEMU did not take the command within %d s" % timeout)
    finally:
        s.close()


def cmd_stop(args):
    n = 0
    for pf in glob.glob(os.path.join(RUN_DIR, "*.pid")):
        try:
            with open(pf) as f:
                info = json.load(f)
            pid = info["pid"]
            # Only kill it if that pid still is a QEMU (pid files can go stale).
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                argv0 = f.read().split(b"\0")[0].decode()
            if os.path.basename(argv0).startswith("qemu-system"):
                os.kill(pid, signal.SIGKILL)
                n += 1
                for _ in range(50):            # until it is really gone (max 5 s)
                    if not os.path.exists("/proc/%d" % pid):
                        break
                    time.sleep(0.1)
        except (OSError, ValueError, KeyError):
            info = {}
        for p in (info.get("shm"), info.get("tmp"), pf):
            if p and os.path.isdir(p):
                shutil.rmtree(p, ignore_errors=True)
            elif p and os.path.lexists(p):
                os.unlink(p)
    print("stopped %d QEMU process(es)" % n)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("fetch")
    p.add_argument("arch", nargs="+")
    p.add_argument("--refresh", action="store_true",
                   help="ask apt again for the newest kernel (default: keep the cached one)")
    p.add_argument("--abi", type=int, help="use linux-image-6.1.0-ABI-* instead of the newest")
    p.set_defaults(fn=cmd_fetch)
    p = sub.add_parser("capture")
    p.add_argument("arch", nargs="+")
    p.add_argument("--out", default="build/guests")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--channel", choices=CHANNELS, default=DEFAULT_CHANNEL,
                   help="how full kallsyms and BTF leave the guest (default %(default)s)")
    p.set_defaults(fn=cmd_capture)
    p = sub.add_parser("boot")
    p.add_argument("arch")
    p.add_argument("--live", action="store_true")
    p.add_argument("--channel", choices=CHANNELS, default=DEFAULT_CHANNEL)
    p.add_argument("--allow-reboot", action="store_true", help="a guest reboot resets it (default: QEMU exits)")
    p.set_defaults(fn=cmd_boot)
    p = sub.add_parser("stop")
    p.set_defaults(fn=cmd_stop)
    p = sub.add_parser("profiles")
    p.add_argument("arch", nargs="+")
    p.set_defaults(fn=lambda a: __import__("profiles").main(a.arch))
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        return args.fn(args) or 0
    except (LabError, subprocess.CalledProcessError) as e:
        log("error: %s" % e)
        return 1
    except KeyboardInterrupt:
        _interrupted.set()
        log("interrupted")
        return 130
    finally:
        _cleanup()


if __name__ == "__main__":
    sys.exit(main())
