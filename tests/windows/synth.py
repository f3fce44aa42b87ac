#!/usr/bin/python3
"""Synthetic Windows memory images for the vmi.h tests (issue #6).

No Windows guest runs on the test machines, so this builds the memory of one
from public layouts: real PE files (Debian's wine build of ntoskrnl.exe,
hal.dll, drivers and DLLs, used as data) mapped as the Windows loader maps
them, x86 page tables (4-level, PAE, legacy) with the Windows self-map, the
x64 low start block, a KDDEBUGGER_DATA64 block (plain or encoded as Windows
8+ does), EPROCESS / PEB / LDR_DATA_TABLE_ENTRY lists at the published
offsets of Windows 7 SP1 and Windows 10 2004, transition PTEs, large pages.
Every image is written as raw memory, a QEMU-style ELF core and a Windows
crash dump (full; plus a bitmap dump for x64), with truth.json, a Volatility3
ISF (profile.json) and a LibVMI config.

    synth.py --out build/windows [--seed N] [--only VARIANT] [--no-check]

Everything is derived from the seed: the same seed gives the same bytes.
Each image is checked after it is built by a small reader written here
(page walks through the right DTB, lists, strings, exports, and the files
read back), so a generator bug cannot pass for a library bug.
Python 3 standard library only; the wine packages are fetched once with
apt-get download (tests/guests/lab.py) and cached in tests/guests/.cache.
"""

import argparse
import json
import os
import random
import struct
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PAGE = 0x1000
MiB = 1 << 20
GiB = 1 << 30


class SynthError(Exception):
    pass


def check(cond, what):
    """A generator invariant; failing it is a bug here, not in vmi.h."""
    if not cond:
        raise SynthError("self-check failed: " + what)


# --------------------------------------------------------------------------
# Windows versions: the published layouts (ntdiff / Vergilius headers of
# Windows 7 SP1 and Windows 10 2004 (19041), wdbgexts.h's KDDEBUGGER_DATA64).

# Members this generator writes; the ISF describes them with these types.
# name -> (offset, type) per layout; types: "u8".."u64", "ptr", "list",
# "ustr", "large", ("arr", n, type), ("struct", name).
def _w7x64():
    return {
        "_KPROCESS": (0x160, {"Header": (0x0, ("struct", "_DISPATCHER_HEADER")),
                              "DirectoryTableBase": (0x28, "u64"),
                              "ThreadListHead": (0x30, "list")}),
        "_EPROCESS": (0x4d0, {"Pcb": (0x0, ("struct", "_KPROCESS")), "ProcessLock": (0x160, "u64"),
                              "CreateTime": (0x168, "large"), "ExitTime": (0x170, "large"),
                              "UniqueProcessId": (0x180, "ptr"), "ActiveProcessLinks": (0x188, "list"),
                              "ObjectTable": (0x200, "ptr"), "Token": (0x208, "u64"),
                              "InheritedFromUniqueProcessId": (0x290, "ptr"), "Session": (0x2d8, "ptr"),
                              "ImageFileName": (0x2e0, ("arr", 15, "u8")), "PriorityClass": (0x2ef, "u8"),
                              "ThreadListHead": (0x308, "list"), "ActiveThreads": (0x328, "u32"),
                              "Peb": (0x338, ("ptrto", "_PEB")),
                              "SeAuditProcessCreationInfo": (0x390, ("struct", "_SE_AUDIT_PROCESS_CREATION_INFO")),
                              "Flags": (0x440, "u32"), "ExitStatus": (0x444, "u32")}),
        "_PEB": (0x380, {"BeingDebugged": (0x2, "u8"), "ImageBaseAddress": (0x10, "ptr"),
                         "Ldr": (0x18, ("ptrto", "_PEB_LDR_DATA")),
                         "ProcessParameters": (0x20, ("ptrto", "_RTL_USER_PROCESS_PARAMETERS")),
                         "ProcessHeap": (0x30, "ptr"), "NumberOfProcessors": (0xb8, "u32"),
                         "OSMajorVersion": (0x118, "u32"), "OSMinorVersion": (0x11c, "u32"),
                         "OSBuildNumber": (0x120, "u16"), "OSCSDVersion": (0x122, "u16"),
                         "SessionId": (0x2c0, "u32")}),
        "_RTL_USER_PROCESS_PARAMETERS": (0x400, {
            "MaximumLength": (0x0, "u32"), "Length": (0x4, "u32"), "Flags": (0x8, "u32"),
            "ConsoleHandle": (0x10, "ptr"), "CurrentDirectory": (0x38, ("struct", "_CURDIR")),
            "DllPath": (0x50, "ustr"), "ImagePathName": (0x60, "ustr"), "CommandLine": (0x70, "ustr"),
            "Environment": (0x80, "ptr"), "WindowTitle": (0xb0, "ustr"), "DesktopInfo": (0xc0, "ustr")}),
        "_LDR_DATA_TABLE_ENTRY": (0xe0, {}),
        **thread_types("w7x64", 8),
    }


def _w10x64():
    t = _w7x64()
    t["_KPROCESS"] = (0x438, {"Header": (0x0, ("struct", "_DISPATCHER_HEADER")),
                              "DirectoryTableBase": (0x28, "u64"), "ThreadListHead": (0x30, "list"),
                              "UserDirectoryTableBase": (0x388, "u64")})
    t["_EPROCESS"] = (0xa40, {"Pcb": (0x0, ("struct", "_KPROCESS")), "ProcessLock": (0x438, "u64"),
                              "UniqueProcessId": (0x440, "ptr"), "ActiveProcessLinks": (0x448, "list"),
                              "Flags2": (0x460, "u32"), "Flags": (0x464, "u32"),
                              "CreateTime": (0x468, "large"), "Token": (0x4b8, "u64"),
                              "InheritedFromUniqueProcessId": (0x540, "ptr"), "OwnerProcessId": (0x548, "u64"),
                              "Peb": (0x550, ("ptrto", "_PEB")), "Session": (0x558, "ptr"),
                              "ObjectTable": (0x570, "ptr"), "ImageFilePointer": (0x5a0, "ptr"),
                              "ImageFileName": (0x5a8, ("arr", 15, "u8")), "PriorityClass": (0x5b7, "u8"),
                              "SeAuditProcessCreationInfo": (0x5c0, ("struct", "_SE_AUDIT_PROCESS_CREATION_INFO")),
                              "ThreadListHead": (0x5e0, "list"), "ActiveThreads": (0x5f0, "u32"),
                              "ExitStatus": (0x7d4, "u32"), "ExitTime": (0x840, "large")})
    t["_PEB"] = (0x7c8, t["_PEB"][1])
    t["_RTL_USER_PROCESS_PARAMETERS"] = (0x440, t["_RTL_USER_PROCESS_PARAMETERS"][1])
    t["_LDR_DATA_TABLE_ENTRY"] = (0x120, {})
    t.update(thread_types("w10x64", 8))
    return t


def _custom():
    """A fictitious build: KPROCESS grew by 0x40, so every EPROCESS member
    after Pcb moved; only this image's ISF / LibVMI config can say where."""
    t = _w10x64()
    size, f = t["_KPROCESS"]
    t["_KPROCESS"] = (size + 0x40, f)
    size, f = t["_EPROCESS"]
    t["_EPROCESS"] = (size + 0x40, {k: (o + 0x40 if o >= 0x438 else o, ty) for k, (o, ty) in f.items()})
    return t


def _w7x86():
    return {
        "_KPROCESS": (0x98, {"Header": (0x0, ("struct", "_DISPATCHER_HEADER")),
                             "DirectoryTableBase": (0x18, "u32"), "ThreadListHead": (0x2c, "list")}),
        "_EPROCESS": (0x2c0, {"Pcb": (0x0, ("struct", "_KPROCESS")), "ProcessLock": (0x98, "u32"),
                              "CreateTime": (0xa0, "large"), "ExitTime": (0xa8, "large"),
                              "UniqueProcessId": (0xb4, "ptr"), "ActiveProcessLinks": (0xb8, "list"),
                              "ObjectTable": (0xf4, "ptr"), "Token": (0xf8, "u32"),
                              "InheritedFromUniqueProcessId": (0x140, "ptr"), "Session": (0x168, "ptr"),
                              "ImageFileName": (0x16c, ("arr", 15, "u8")), "PriorityClass": (0x17b, "u8"),
                              "ThreadListHead": (0x188, "list"), "ActiveThreads": (0x198, "u32"),
                              "Peb": (0x1a8, ("ptrto", "_PEB")),
                              "SeAuditProcessCreationInfo": (0x1ec, ("struct", "_SE_AUDIT_PROCESS_CREATION_INFO")),
                              "Flags": (0x270, "u32"), "ExitStatus": (0x274, "u32")}),
        "_PEB": (0x248, {"BeingDebugged": (0x2, "u8"), "ImageBaseAddress": (0x8, "ptr"),
                         "Ldr": (0xc, ("ptrto", "_PEB_LDR_DATA")),
                         "ProcessParameters": (0x10, ("ptrto", "_RTL_USER_PROCESS_PARAMETERS")),
                         "ProcessHeap": (0x18, "ptr"), "NumberOfProcessors": (0x64, "u32"),
                         "OSMajorVersion": (0xa4, "u32"), "OSMinorVersion": (0xa8, "u32"),
                         "OSBuildNumber": (0xac, "u16"), "OSCSDVersion": (0xae, "u16"),
                         "SessionId": (0x1d4, "u32")}),
        "_RTL_USER_PROCESS_PARAMETERS": (0x298, {
            "MaximumLength": (0x0, "u32"), "Length": (0x4, "u32"), "Flags": (0x8, "u32"),
            "ConsoleHandle": (0x10, "ptr"), "CurrentDirectory": (0x24, ("struct", "_CURDIR")),
            "DllPath": (0x30, "ustr"), "ImagePathName": (0x38, "ustr"), "CommandLine": (0x40, "ustr"),
            "Environment": (0x48, "ptr"), "WindowTitle": (0x70, "ustr"), "DesktopInfo": (0x78, "ustr")}),
        "_LDR_DATA_TABLE_ENTRY": (0x78, {}),
        **thread_types("w7x86", 4),
    }


# Threads and processors (Vergilius Project's _KPCR, _KPRCB, _KTHREAD,
# _KAPC_STATE and _ETHREAD of each build): only the members written here.
# (KTHREAD size, ApcState, Process; ETHREAD size, Cid, ThreadListEntry;
#  KPCR Self, CurrentPrcb, Prcb; KPRCB CurrentThread)
THREADS = {"w7x64": (0x360, 0x50, 0x210, 0x498, 0x3b0, 0x420, 0x18, 0x20, 0x180, 0x8),
           "w10x64": (0x5f0, 0x98, 0x220, 0x898, 0x478, 0x4e8, 0x18, 0x20, 0x180, 0x8),
           "w7x86": (0x200, 0x40, 0x150, 0x2b8, 0x22c, 0x268, 0x1c, 0x20, 0x120, 0x4)}


def thread_types(key, ps):
    kt, apc, proc, et, cid, tle, self_, cur, prcb, cth = THREADS[key]
    selfname = "Self" if ps == 8 else "SelfPcr"
    prcbname = "Prcb" if ps == 8 else "PrcbData"
    return {"_KTHREAD": (kt, {"Header": (0, ("struct", "_DISPATCHER_HEADER")),
                              "ApcState": (apc, ("struct", "_KAPC_STATE")),
                              "Process": (proc, ("ptrto", "_KPROCESS"))}),
            "_KAPC_STATE": (0x30 if ps == 8 else 0x18, {"ApcListHead": (0, ("arr", 2, "list")),
                                                      "Process": (4 * ps, ("ptrto", "_KPROCESS"))}),
            "_ETHREAD": (et, {"Tcb": (0, ("struct", "_KTHREAD")), "Cid": (cid, ("struct", "_CLIENT_ID")),
                              "ThreadListEntry": (tle, "list")}),
            "_CLIENT_ID": (2 * ps, {"UniqueProcess": (0, "ptr"), "UniqueThread": (ps, "ptr")}),
            "_KPCR": (prcb + 0x100, {selfname: (self_, ("ptrto", "_KPCR")), "CurrentPrcb" if ps == 8 else "Prcb":
                                     (cur, ("ptrto", "_KPRCB")), prcbname: (prcb, ("struct", "_KPRCB"))}),
            "_KPRCB": (0x100, {"CurrentThread": (cth, ("ptrto", "_KTHREAD"))})}


def common_types(ps):
    """Layouts that only depend on the pointer size (ps = 4 or 8)."""
    p = ps
    ldr = {"InLoadOrderLinks": (0, "list"), "InMemoryOrderLinks": (2 * p, "list"),
           "InInitializationOrderLinks": (4 * p, "list"), "DllBase": (6 * p, "ptr"),
           "EntryPoint": (7 * p, "ptr"), "SizeOfImage": (8 * p, "u32"),
           "FullDllName": (0x48 if p == 8 else 0x24, "ustr"),
           "BaseDllName": (0x58 if p == 8 else 0x2c, "ustr"),
           "Flags": (0x68 if p == 8 else 0x34, "u32"), "LoadCount": (0x6c if p == 8 else 0x38, "u16"),
           "TlsIndex": (0x6e if p == 8 else 0x3a, "u16"), "HashLinks": (0x70 if p == 8 else 0x3c, "list"),
           "TimeDateStamp": (0x80 if p == 8 else 0x44, "u32")}
    kldr = {"InLoadOrderLinks": (0, "list"), "ExceptionTable": (2 * p, "ptr"),
            "ExceptionTableSize": (3 * p, "u32"), "GpValue": (4 * p, "ptr"),
            "NonPagedDebugInfo": (5 * p, "ptr"), "DllBase": (6 * p, "ptr"), "EntryPoint": (7 * p, "ptr"),
            "SizeOfImage": (8 * p, "u32"), "FullDllName": (0x48 if p == 8 else 0x24, "ustr"),
            "BaseDllName": (0x58 if p == 8 else 0x2c, "ustr"), "Flags": (0x68 if p == 8 else 0x34, "u32"),
            "LoadCount": (0x6c if p == 8 else 0x38, "u16")}
    return {
        "_LIST_ENTRY": (2 * p, {"Flink": (0, ("ptrto", "_LIST_ENTRY")), "Blink": (p, ("ptrto", "_LIST_ENTRY"))}),
        "_UNICODE_STRING": (2 * p, {"Length": (0, "u16"), "MaximumLength": (2, "u16"),
                                    "Buffer": (p, ("ptrto", "wchar"))}),
        "_DISPATCHER_HEADER": (8 + 2 * p, {"Type": (0, "u8"), "Signalling": (1, "u8"), "Size": (2, "u8"),
                                           "SignalState": (4, "u32"), "WaitListHead": (8, "list")}),
        "_CURDIR": (3 * p, {"DosPath": (0, "ustr"), "Handle": (2 * p, "ptr")}),
        "_PEB_LDR_DATA": (0x58 if p == 8 else 0x30, {
            "Length": (0, "u32"), "Initialized": (4, "u8"), "SsHandle": (8 if p == 8 else 8, "ptr"),
            "InLoadOrderModuleList": (0x10 if p == 8 else 0xc, "list"),
            "InMemoryOrderModuleList": (0x20 if p == 8 else 0x14, "list"),
            "InInitializationOrderModuleList": (0x30 if p == 8 else 0x1c, "list"),
            "EntryInProgress": (0x40 if p == 8 else 0x24, "ptr")}),
        "_LDR_DATA_TABLE_ENTRY_FIELDS": (0, ldr),
        "_KLDR_DATA_TABLE_ENTRY": (0xa0 if p == 8 else 0x58, kldr),
        "_SE_AUDIT_PROCESS_CREATION_INFO": (p, {"ImageFileName": (0, ("ptrto", "_OBJECT_NAME_INFORMATION"))}),
        "_OBJECT_NAME_INFORMATION": (2 * p, {"Name": (0, "ustr")}),
        "_DBGKD_DEBUG_DATA_HEADER64": (0x18, {"List": (0, ("struct", "LIST_ENTRY64")),
                                              "OwnerTag": (0x10, "u32"), "Size": (0x14, "u32")}),
        "LIST_ENTRY64": (0x10, {"Flink": (0, "u64"), "Blink": (8, "u64")}),
        "_DBGKD_GET_VERSION64": (0x28, {
            "MajorVersion": (0, "u16"), "MinorVersion": (2, "u16"), "ProtocolVersion": (4, "u8"),
            "KdSecondaryVersion": (5, "u8"), "Flags": (6, "u16"), "MachineType": (8, "u16"),
            "MaxPacketType": (0xa, "u8"), "MaxStateChange": (0xb, "u8"), "MaxManipulate": (0xc, "u8"),
            "Simulation": (0xd, "u8"), "KernBase": (0x10, "u64"), "PsLoadedModuleList": (0x18, "u64"),
            "DebuggerDataList": (0x20, "u64")}),
        "_POOL_HEADER": (0x10 if p == 8 else 8, {"Ulong1": (0, "u32"), "PoolTag": (4, "u32")}),
        "_OBJECT_HEADER": (0x38 if p == 8 else 0x20, {
            "PointerCount": (0, "ptr"), "HandleCount": (p, "ptr"), "TypeIndex": (0x18 if p == 8 else 0xc, "u8"),
            "InfoMask": (0x1a if p == 8 else 0xe, "u8"), "Body": (0x30 if p == 8 else 0x18, "u64")}),
        "_KSYSTEM_TIME": (0xc, {"LowPart": (0, "u32"), "High1Time": (4, "u32"), "High2Time": (8, "u32")}),
    }


# KDDEBUGGER_DATA64 (wdbgexts.h): every member in order; "H"/"I" are USHORT /
# ULONG offset fields, the rest ULONG64. Windows 7 fills it to 0x340 bytes,
# Windows 10 1607+ to 0x368 (Volatility's KDBG size table).
KDBG_FIELDS = (
    "KernBase BreakpointWithStatus SavedContext ThCallbackStack:H NextCallback:H FramePointer:H "
    "PaeEnabled:H KiCallUserMode KeUserCallbackDispatcher PsLoadedModuleList PsActiveProcessHead "
    "PspCidTable ExpSystemResourcesList ExpPagedPoolDescriptor ExpNumberOfPagedPools KeTimeIncrement "
    "KeBugCheckCallbackListHead KiBugcheckData IopErrorLogListHead ObpRootDirectoryObject "
    "ObpTypeObjectType MmSystemCacheStart MmSystemCacheEnd MmSystemCacheWs MmPfnDatabase "
    "MmSystemPtesStart MmSystemPtesEnd MmSubsectionBase MmNumberOfPagingFiles MmLowestPhysicalPage "
    "MmHighestPhysicalPage MmNumberOfPhysicalPages MmMaximumNonPagedPoolInBytes MmNonPagedSystemStart "
    "MmNonPagedPoolStart MmNonPagedPoolEnd MmPagedPoolStart MmPagedPoolEnd MmPagedPoolInformation "
    "MmPageSize MmSizeOfPagedPoolInBytes MmTotalCommitLimit MmTotalCommittedPages MmSharedCommit "
    "MmDriverCommit MmProcessCommit MmPagedPoolCommit MmExtendedCommit MmZeroedPageListHead "
    "MmFreePageListHead MmStandbyPageListHead MmModifiedPageListHead MmModifiedNoWritePageListHead "
    "MmAvailablePages MmResidentAvailablePages PoolTrackTable NonPagedPoolDescriptor "
    "MmHighestUserAddress MmSystemRangeStart MmUserProbeAddress KdPrintCircularBuffer "
    "KdPrintCircularBufferEnd KdPrintWritePointer KdPrintRolloverCount MmLoadedUserImageList "
    "NtBuildLab KiNormalSystemCall KiProcessorBlock MmUnloadedDrivers MmLastUnloadedDriver "
    "MmTriageActionTaken MmSpecialPoolTag KernelVerifier MmVerifierData MmAllocatedNonPagedPool "
    "MmPeakCommitment MmTotalCommitLimitMaximum CmNtCSDVersion MmPhysicalMemoryBlock MmSessionBase "
    "MmSessionSize MmSystemParentTablePage MmVirtualTranslationBase OffsetKThreadNextProcessor:H "
    "OffsetKThreadTeb:H OffsetKThreadKernelStack:H OffsetKThreadInitialStack:H OffsetKThreadApcProcess:H "
    "OffsetKThreadState:H OffsetKThreadBStore:H OffsetKThreadBStoreLimit:H SizeEProcess:H "
    "OffsetEprocessPeb:H OffsetEprocessParentCID:H OffsetEprocessDirectoryTableBase:H SizePrcb:H "
    "OffsetPrcbDpcRoutine:H OffsetPrcbCurrentThread:H OffsetPrcbMhz:H OffsetPrcbCpuType:H "
    "OffsetPrcbVendorString:H OffsetPrcbProcStateContext:H OffsetPrcbNumber:H SizeEThread:H "
    "KdPrintCircularBufferPtr KdPrintBufferSize KeLoaderBlock SizePcr:H OffsetPcrSelfPcr:H "
    "OffsetPcrCurrentPrcb:H OffsetPcrContainedPrcb:H OffsetPcrInitialBStore:H OffsetPcrBStoreLimit:H "
    "OffsetPcrInitialStack:H OffsetPcrStackLimit:H OffsetPrcbPcrPage:H OffsetPrcbProcStateSpecialReg:H "
    "GdtR0Code:H GdtR0Data:H GdtR0Pcr:H GdtR3Code:H GdtR3Data:H GdtR3Teb:H GdtLdt:H GdtTss:H "
    "Gdt64R3CmCode:H Gdt64R3CmTeb:H IopNumTriageDumpDataBlocks IopTriageDumpDataBlocks "
    "VfCrashDataBlock MmBadPagesDetected MmZeroedPageSingleBitErrorsDetected EtwpDebuggerData "
    "OffsetPrcbContext:H OffsetPrcbMaxBreakpoints:H OffsetPrcbMaxWatchpoints:H "
    "OffsetKThreadStackLimit:I OffsetKThreadStackBase:I OffsetKThreadQueueListEntry:I "
    "OffsetEThreadIrpList:I OffsetPrcbIdleThread:H OffsetPrcbNormalDpcState:H OffsetPrcbDpcStack:H "
    "OffsetPrcbIsrStack:H SizeKDPC_STACK_FRAME:H OffsetKPriQueueThreadListHead:H "
    "OffsetKThreadWaitReason:H Padding:H PteBase").split()


def kdbg_layout():
    """name -> (offset, size), members after the 0x18-byte header, naturally aligned."""
    off, out = 0x18, {}
    for f in KDBG_FIELDS:
        name, _, k = f.partition(":")
        size = {"H": 2, "I": 4}.get(k, 8)
        off = (off + size - 1) & ~(size - 1)
        out[name] = (off, size)
        off += size
    return out


KDBG = kdbg_layout()
assert KDBG["MmPfnDatabase"][0] == 0xc0 and KDBG["KiProcessorBlock"][0] == 0x218  # QEMU's win_dump_defs.h
assert KDBG["OffsetPrcbContext"][0] == 0x338 and KDBG["PteBase"][0] == 0x360


# Variants: the layout, the KDBG, the PDB name, guest RAM as (start, size)
# ranges, the Windows 7 x64 fixed self-map index, the bitmap dump signature.
VARIANTS = {
    "win7sp1-x64": dict(arch="x86_64", paging="ia32e", build=7601, major=6, minor=1, csd=0x100,
                        layout=_w7x64, kdbg_size=0x340, encoded=False, pdb="ntkrnlmp.pdb",
                        lab="7601.24545.amd64fre.win7sp1_ldr_escrow.200102-1707",
                        ram=[(0, 128 * MiB)], selfmap=0x1ed, dump_sig=b"SDMP"),
    "win10-x64": dict(arch="x86_64", paging="ia32e", build=19041, major=10, minor=0, csd=0,
                      layout=_w10x64, kdbg_size=0x368, encoded=False, pdb="ntkrnlmp.pdb",
                      lab="19041.1.amd64fre.vb_release.191206-1406",
                      ram=[(0, 128 * MiB)], selfmap=None, dump_sig=b"FDMP"),
    "win10-x64-encoded": dict(arch="x86_64", paging="ia32e", build=19041, major=10, minor=0, csd=0,
                              layout=_w10x64, kdbg_size=0x368, encoded=True, pdb="ntkrnlmp.pdb",
                              lab="19041.1.amd64fre.vb_release.191206-1406",
                              ram=[(0, 128 * MiB)], selfmap=None, dump_sig=b"FDMP"),
    "win10-x64-custom": dict(arch="x86_64", paging="ia32e", build=29999, major=10, minor=0, csd=0,
                             layout=_custom, kdbg_size=0x368, encoded=False, pdb="ntkrnlmp.pdb",
                             lab="29999.1.amd64fre.synthetic_custom.240101-0000",
                             ram=[(0, 128 * MiB)], selfmap=None, dump_sig=b"FDMP"),
    # Nothing given: no low start block, no dump header, KDBG encoded (no tag),
    # so only the self-map finds the root; vCPU 0 in user mode on explorer's
    # KVA-shadow root. Raw and ELF only (a dump header names the root).
    "win10-x64-nostub": dict(arch="x86_64", paging="ia32e", build=19041, major=10, minor=0, csd=0,
                             layout=_w10x64, kdbg_size=0x368, encoded=True, pdb="ntkrnlmp.pdb",
                             lab="19041.1.amd64fre.vb_release.191206-1406",
                             ram=[(0, 128 * MiB)], selfmap=None, dump_sig=None, nostub=True),
    # PAE with RAM above 4 GiB (QEMU's ram-above-4g): 36-bit frame numbers.
    "win7sp1-x86-pae": dict(arch="x86", paging="pae", build=7601, major=6, minor=1, csd=0x100,
                            layout=_w7x86, kdbg_size=0x340, encoded=False, pdb="ntkrpamp.pdb",
                            lab="7601.24545.x86fre.win7sp1_ldr_escrow.200102-1707",
                            ram=[(0, 64 * MiB), (4 * GiB, 16 * MiB)], selfmap=None, dump_sig=None),
    "win7sp1-x86": dict(arch="x86", paging="legacy", build=7601, major=6, minor=1, csd=0x100,
                        layout=_w7x86, kdbg_size=0x340, encoded=False, pdb="ntkrnlmp.pdb",
                        lab="7601.24545.x86fre.win7sp1_ldr_escrow.200102-1707",
                        ram=[(0, 64 * MiB)], selfmap=None, dump_sig=None),
}


# --------------------------------------------------------------------------
# wine's PE files

WINE = {"x86_64": ("libwine:amd64", "usr/lib/x86_64-linux-gnu/wine/x86_64-windows"),
        "x86": ("libwine:i386", "usr/lib/i386-linux-gnu/wine/i386-windows")}


def wine_dir(arch):
    """The unpacked wine PE directory for arch, downloaded once (lab.py)."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "guests"))
    import lab  # noqa: E402  (the lab's cached apt-get download + dpkg-deb -x)
    pkg, sub = WINE[arch]
    if ":" in pkg and pkg.split(":")[1] != "amd64":
        lab.ensure_dpkg_arch(pkg.split(":")[1])
    deb = lab.apt_download(pkg)
    dest = deb[:-4]
    lab.unpack(deb, dest)
    path = os.path.join(dest, sub)
    if not os.path.isdir(path):
        raise SynthError("%s has no %s" % (deb, sub))
    return path


class PE:
    """Just enough of a PE reader: headers, sections, exports."""

    def __init__(self, data, name):
        self.data, self.name = data, name
        if data[:2] != b"MZ":
            raise SynthError("%s: no MZ" % name)
        self.lfanew = struct.unpack_from("<I", data, 0x3c)[0]
        if data[self.lfanew:self.lfanew + 4] != b"PE\0\0":
            raise SynthError("%s: no PE signature" % name)
        fh = self.lfanew + 4
        self.machine, nsec, self.timestamp = struct.unpack_from("<HHI", data, fh)
        optsz = struct.unpack_from("<H", data, fh + 16)[0]
        self.opt = fh + 20
        magic = struct.unpack_from("<H", data, self.opt)[0]
        self.is64 = magic == 0x20b
        self.entry = struct.unpack_from("<I", data, self.opt + 16)[0]
        if self.is64:
            self.image_base = struct.unpack_from("<Q", data, self.opt + 24)[0]
            self.dd_off = self.opt + 112
        else:
            self.image_base = struct.unpack_from("<I", data, self.opt + 28)[0]
            self.dd_off = self.opt + 96
        self.size_of_image, self.size_of_headers = struct.unpack_from("<II", data, self.opt + 56)
        self.checksum = struct.unpack_from("<I", data, self.opt + 64)[0]
        self.sec_off = self.opt + optsz
        self.sections = []
        for i in range(nsec):
            n, vs, va, rs, ra = struct.unpack_from("<8sIIII", data, self.sec_off + 40 * i)
            ch = struct.unpack_from("<I", data, self.sec_off + 40 * i + 36)[0]
            self.sections.append(dict(name=n.rstrip(b"\0").decode("latin-1"), va=va, vsize=vs,
                                      raw=ra, rsize=rs, chars=ch, hdr=self.sec_off + 40 * i))

    def ddir(self, i):
        return struct.unpack_from("<II", self.data, self.dd_off + 8 * i)

    def section(self, name):
        return next(s for s in self.sections if s["name"] == name)

    def resident(self, s):
        """Sections the loader keeps in memory: all but the DWARF ones
        ("/4", "/29", ...) that MinGW builds append; their pages stay
        non-resident here (prototype PTEs) to keep images small."""
        return not s["name"].startswith("/")

    def mapped(self):
        """The image as the loader lays it out: headers, then each section
        at its RVA, zero-filled to SizeOfImage."""
        img = bytearray(self.size_of_image)
        img[:self.size_of_headers] = self.data[:self.size_of_headers]
        for s in self.sections:
            n = min(s["rsize"], len(self.data) - s["raw"])
            if s["vsize"]:
                n = min(n, (s["vsize"] + PAGE - 1) & ~(PAGE - 1))
            img[s["va"]:s["va"] + n] = self.data[s["raw"]:s["raw"] + n]
        return img

    def nonresident_pages(self):
        out = set()
        for s in self.sections:
            if not self.resident(s):
                for off in range(s["va"], s["va"] + max(s["vsize"], 1), PAGE):
                    out.add(off // PAGE)
        return out

    def exports(self, img=None):
        """[(name, rva, forwarder-or-None)] of named exports, and the DLL name,
        read from the mapped image."""
        img = img if img is not None else self.mapped()
        erva, esize = self.ddir(0)
        if not erva:
            return [], None
        dllname, _, _, nnames, afunc, anames, aords = struct.unpack_from("<7I", img, erva + 12)
        out = []
        for i in range(nnames):
            nrva = struct.unpack_from("<I", img, anames + 4 * i)[0]
            ordi = struct.unpack_from("<H", img, aords + 2 * i)[0]
            frva = struct.unpack_from("<I", img, afunc + 4 * ordi)[0]
            name = cstr(img, nrva)
            fwd = cstr(img, frva) if erva <= frva < erva + esize else None
            out.append((name, frva, fwd))
        return out, cstr(img, dllname)


def cstr(buf, off):
    end = bytes(buf[off:off + 512]).index(b"\0")
    return bytes(buf[off:off + end]).decode("latin-1")


# --------------------------------------------------------------------------
# physical memory

class Phys:
    """Sparse guest-physical memory: 4 KiB pages, zero unless written."""

    def __init__(self, ram):
        self.ram = ram
        self.pages = {}

    def in_ram(self, pa, n=1):
        return any(s <= pa and pa + n <= s + z for s, z in self.ram)

    def page(self, pfn):
        p = self.pages.get(pfn)
        if p is None:
            if not self.in_ram(pfn * PAGE, PAGE):
                raise SynthError("write outside RAM at 0x%x" % (pfn * PAGE))
            p = self.pages[pfn] = bytearray(PAGE)
        return p

    def write(self, pa, data):
        data = bytes(data)
        while data:
            off = pa & (PAGE - 1)
            n = min(len(data), PAGE - off)
            self.page(pa >> 12)[off:off + n] = data[:n]
            pa, data = pa + n, data[n:]

    def read(self, pa, n):
        out = bytearray()
        while n:
            off = pa & (PAGE - 1)
            k = min(n, PAGE - off)
            if not self.in_ram(pa, k):
                raise SynthError("read outside RAM at 0x%x" % pa)
            p = self.pages.get(pa >> 12)
            out += p[off:off + k] if p is not None else bytes(k)
            pa, n = pa + k, n - k
        return bytes(out)

    def clone(self):
        c = Phys(self.ram)
        c.pages = dict(self.pages)  # pages are copied when patched (cow())
        return c

    def cow(self, pfn):
        self.pages[pfn] = bytearray(self.pages.get(pfn, bytes(PAGE)))


class Frames:
    """Free frames in a seeded random order, so that structures land
    scattered as on a long-running machine."""

    def __init__(self, rng, usable, reserved):
        free = [pfn for s, z in usable for pfn in range(s >> 12, (s + z) >> 12) if pfn not in reserved]
        rng.shuffle(free)
        self.rng = rng
        self.low = [p for p in free if p < 0x100000]
        self.high = [p for p in free if p >= 0x100000]
        self.used = set()

    def take(self, low=False):
        # Some data lands above 4 GiB when there is RAM there (PAE).
        pool = self.high if (self.high and not low and self.rng.random() < 0.35) else self.low
        if not pool:
            raise SynthError("out of guest RAM")
        pfn = pool.pop()
        self.used.add(pfn)
        return pfn


# --------------------------------------------------------------------------
# x86 paging: one walker for the three modes, Windows flags

P, RW, US, A, D, PS, G = 0x1, 0x2, 0x4, 0x20, 0x40, 0x80, 0x100
PROTO, TRANS = 1 << 10, 1 << 11
NX = 1 << 63
MODES = {"ia32e": ((39, 9), (30, 9), (21, 9), (12, 9)),
         "pae": ((30, 2), (21, 9), (12, 9)),
         "legacy": ((22, 10), (12, 10))}


class Paging:
    def __init__(self, mode, phys, frames):
        self.mode, self.phys, self.frames = mode, phys, frames
        self.levels = MODES[mode]
        self.esz = 4 if mode == "legacy" else 8
        self.addr_mask = 0xfffff000 if mode == "legacy" else 0x000ffffffffff000
        self.nx = NX if mode != "legacy" else 0

    def rd(self, pa):
        return int.from_bytes(self.phys.read(pa, self.esz), "little")

    def wr(self, pa, v):
        self.phys.write(pa, v.to_bytes(self.esz, "little"))

    def new_table(self, low=False):
        pfn = self.frames.take(low=low)
        self.phys.write(pfn * PAGE, bytes(PAGE))
        return pfn * PAGE

    def index(self, va, level):
        shift, bits = self.levels[level]
        return (va >> shift) & ((1 << bits) - 1)

    def leaf_level(self, size):
        return {PAGE: len(self.levels) - 1, 2 * MiB: len(self.levels) - 2,
                4 * MiB: 0, GiB: 1}[size]

    def entry_pa(self, root, va, want_level, create, user):
        """PA of the entry for va at want_level, creating tables on the way."""
        table = root
        for lvl in range(want_level):
            epa = table + self.index(va, lvl) * self.esz
            e = self.rd(epa)
            if not e & P:
                if not create:
                    return None
                t = self.new_table()
                if self.mode == "pae" and lvl == 0:
                    e = t | P  # PDPTEs: P only, RW/US are reserved
                else:
                    e = t | P | RW | A | (US if user else 0)
                self.wr(epa, e)
            elif e & PS:
                raise SynthError("0x%x is inside a large page" % va)
            table = e & self.addr_mask
        return table + self.index(va, want_level) * self.esz

    def map(self, root, va, pa, size=PAGE, user=False, nx=True, glob=False):
        lvl = self.leaf_level(size)
        check(va % size == 0 and pa % size == 0, "aligned mapping")
        e = pa | P | RW | A | D | (US if user else 0) | (PS if size != PAGE else 0)
        e |= (G if glob else 0) | (self.nx if nx else 0)
        self.wr(self.entry_pa(root, va, lvl, True, user), e)

    def set_pte(self, root, va, value):
        self.wr(self.entry_pa(root, va, len(self.levels) - 1, True, va < self.user_limit()), value)

    def pte(self, root, va):
        epa = self.entry_pa(root, va, len(self.levels) - 1, False, False)
        return None if epa is None else self.rd(epa)

    def user_limit(self):
        return 1 << 47 if self.mode == "ia32e" else 0x80000000

    def translate(self, root, va):
        """(pa, page size, "valid"|"transition") or None; transition PTEs
        (P=0, Transition=1, Prototype=0) still name their frame."""
        table = root
        for lvl, (shift, _) in enumerate(self.levels):
            e = self.rd(table + self.index(va, lvl) * self.esz)
            last = lvl == len(self.levels) - 1
            if not e & P:
                if last and e & TRANS and not e & PROTO:
                    return (e & self.addr_mask) | (va & (PAGE - 1)), PAGE, "transition"
                return None
            if self.mode == "pae" and lvl == 0:
                table = e & self.addr_mask
                continue
            if e & PS and not last:
                size = 1 << shift
                return (e & self.addr_mask & ~(size - 1)) | (va & (size - 1)), size, "valid"
            table = e & self.addr_mask
        return table | (va & (PAGE - 1)), PAGE, "valid"


# --------------------------------------------------------------------------
# helpers

def u16(v):
    return struct.pack("<H", v & 0xffff)


def u32(v):
    return struct.pack("<I", v & 0xffffffff)


def u64(v):
    return struct.pack("<Q", v & 0xffffffffffffffff)


def sext32(v):
    """32-bit Windows stores pointers in KDDEBUGGER_DATA64 sign-extended."""
    v &= 0xffffffff
    return v | 0xffffffff00000000 if v & 0x80000000 else v


def filetime(unix):
    return int((unix + 11644473600) * 10_000_000)


def rol64(v, n):
    n &= 63
    return ((v << n) | (v >> (64 - n))) & 0xffffffffffffffff if n else v


def ror64(v, n):
    return rol64(v, 64 - (n & 63))


def bswap64(v):
    return int.from_bytes(v.to_bytes(8, "little"), "big")


def kdbg_encode(plain, kwn, kwa, kdpe_va):
    """The inverse of Windows 8+'s KdCopyDataBlock decoding, qword by qword:
    plain = bswap(rol(enc ^ KiWaitNever, KiWaitNever) ^ &KdpDataBlockEncoded) ^ KiWaitAlways
    (QEMU contrib/elf2dmp, Volatility)."""
    out = bytearray()
    for i in range(0, len(plain), 8):
        p = int.from_bytes(plain[i:i + 8], "little")
        x = bswap64(p ^ kwa) ^ kdpe_va
        out += (ror64(x, kwn & 0xff) ^ kwn).to_bytes(8, "little")
    return bytes(out)


def kdbg_decode(enc, kwn, kwa, kdpe_va):
    out = bytearray()
    for i in range(0, len(enc), 8):
        e = int.from_bytes(enc[i:i + 8], "little")
        out += (bswap64(rol64(e ^ kwn, kwn & 0xff) ^ kdpe_va) ^ kwa).to_bytes(8, "little")
    return bytes(out)


def guid_string(raw):
    """A GUID (16 bytes as stored in an RSDS record) in the symbol-server
    form: Data1-3 as numbers, Data4 as bytes, uppercase, no dashes."""
    d1, d2, d3 = struct.unpack_from("<IHH", raw)
    return "%08X%04X%04X%s" % (d1, d2, d3, raw[8:].hex().upper())


# --------------------------------------------------------------------------
# the machine

class Machine:
    """One synthetic Windows guest, built in memory."""

    def __init__(self, name, seed, wine):
        self.name = name
        self.seed = seed
        self.v = VARIANTS[name]
        self.rng = random.Random("%s:%s" % (seed, name))
        self.arch = self.v["arch"]
        self.ps = 8 if self.arch == "x86_64" else 4
        self.mode = self.v["paging"]
        self.wine = wine
        self.types = self.v["layout"]()
        self.types.update(common_types(self.ps))
        ldr = self.types.pop("_LDR_DATA_TABLE_ENTRY_FIELDS")[1]
        self.types["_LDR_DATA_TABLE_ENTRY"] = (self.types["_LDR_DATA_TABLE_ENTRY"][0], ldr)
        self.truth = {}
        self.images = {}     # file name -> (PE, mapped bytes)

    # ---- layout helpers
    def off(self, t, m):
        return self.types[t][1][m][0]

    def size(self, t):
        return self.types[t][0]

    def ptr(self, v):
        return u64(v) if self.ps == 8 else u32(v)

    def kptr(self, v):
        """A kernel pointer as KDDEBUGGER_DATA64 holds it."""
        return v if self.ps == 8 else sext32(v)

    def image(self, fname):
        if fname not in self.images:
            with open(os.path.join(self.wine, fname), "rb") as f:
                pe = PE(f.read(), fname)
            self.images[fname] = (pe, pe.mapped())
        return self.images[fname]

    # ---- virtual memory
    def vwrite(self, root, va, data):
        data = bytes(data)
        while data:
            t = self.pg.translate(root, va)
            check(t is not None, "write to unmapped VA 0x%x" % va)
            n = min(len(data), PAGE - (va & (PAGE - 1)))
            self.phys.write(t[0], data[:n])
            va, data = va + n, data[n:]

    def vread(self, root, va, n):
        out = bytearray()
        while n:
            t = self.pg.translate(root, va)
            check(t is not None, "read of unmapped VA 0x%x" % va)
            k = min(n, PAGE - (va & (PAGE - 1)))
            out += self.phys.read(t[0], k)
            va, n = va + k, n - k
        return bytes(out)

    def kw(self, va, data):
        self.vwrite(self.kdtb, va, data)

    def w_field(self, root, base, t, m, data):
        self.vwrite(root, base + self.off(t, m), data)

    def w_list(self, root, va, flink, blink):
        self.vwrite(root, va, self.ptr(flink) + self.ptr(blink))

    def w_ustr(self, root, va, length, maxlen, buf):
        self.vwrite(root, va, u16(length) + u16(maxlen) + (b"\0" * 4 if self.ps == 8 else b"") + self.ptr(buf))

    # ---- build
    def build(self):
        rng, v = self.rng, self.v
        self.phys = Phys(v["ram"])
        low_end = v["ram"][0][1]
        # Windows' own view of RAM (MmPhysicalMemoryBlock): page 0, the
        # legacy hole and the firmware's last 128 KiB below 4G left out.
        self.runs = [(1, 0x9e), (0x100, (low_end >> 12) - 0x20 - 0x100)]
        for s, z in v["ram"][1:]:
            self.runs.append((s >> 12, z >> 12))
        reserved = set()
        # The kernel's large pages: physically contiguous, aligned.
        self.plan_kernel()
        for pfn in range(self.kregion_pa >> 12, (self.kregion_pa + self.kregion_size) >> 12):
            reserved.add(pfn)
        self.stub_pfn = rng.randrange(2, 0x9e) if self.arch == "x86_64" and not v.get("nostub") else None
        self.decoy_pfn = 1 if self.arch == "x86_64" else None
        reserved.update(p for p in (self.stub_pfn, self.decoy_pfn) if p is not None)
        usable = [(b << 12, c << 12) for b, c in self.runs[1:]]  # allocations stay above 1 MiB
        self.frames = Frames(rng, usable, reserved)
        self.frames.used.update(reserved)
        self.pg = Paging(self.mode, self.phys, self.frames)
        self.user_procs_roots = []
        self.make_system_root()
        self.map_kernel()
        self.load_kernel_data()
        self.load_modules()
        self.make_processes()
        self.write_kdbg()
        if self.stub_pfn is not None:
            self.write_low_stub()
        self.make_threads()
        self.make_truth()

    def plan_kernel(self):
        rng, v = self.rng, self.v
        pe, img = self.image("ntoskrnl.exe")
        self.nt_pe, self.nt_img = pe, bytearray(img)
        if self.mode == "ia32e":
            if v["build"] == 7601:
                kb = 0xfffff80002000000 + rng.randrange(8, 64) * 2 * MiB
            else:  # KASLR'd within fffff800`00000000 - fffff807`ffffffff
                kb = 0xfffff80000000000 + rng.randrange(0x20, 0x4000) * 2 * MiB
            lp = 2 * MiB
            region = kb
            size = (pe.size_of_image + lp - 1) & ~(lp - 1)
        else:
            kb = 0x82400000 + rng.randrange(0, 8) * 2 * MiB
            lp = 4 * MiB if self.mode == "legacy" else 2 * MiB
            region = kb & ~(lp - 1)
            size = 4 * MiB  # ntoskrnl and hal share the large pages, as on 32-bit Windows
        low_end = v["ram"][0][1]
        align = max(lp, 2 * MiB)
        pa = rng.randrange(align, low_end - size - 4 * MiB, align)
        self.kernel_base = kb
        self.kregion_va, self.kregion_pa, self.kregion_size, self.lpage = region, pa, size, lp
        self.kernel_pa = pa + (kb - region)

    def make_system_root(self):
        pg = self.pg
        if self.mode == "pae":
            # PDPTs are 32-byte blocks packed in pages below 4 GiB; CR3 need not be page aligned.
            self.pdpt_page = pg.new_table(low=True)
            self.pdpt_slots = list(range(0, PAGE, 32))
            self.rng.shuffle(self.pdpt_slots)
            self.kdtb = self.new_pae_root()
        else:
            self.kdtb = pg.new_table(low=True)
        if self.mode == "ia32e":
            idx = self.v["selfmap"] or self.rng.randrange(0x100, 0x1ff)
            if idx == 0x1ed and self.v["selfmap"] is None:
                idx = 0x1ec
            self.selfmap_idx = idx
            self.pte_base = 0xffff000000000000 | (idx << 39)
        else:
            self.selfmap_idx = None
            self.pte_base = 0xc0000000
        self.set_selfmap(self.kdtb)

    def new_pae_root(self):
        root = self.pdpt_page + self.pdpt_slots.pop()
        for i in range(4):
            pd = self.pg.new_table()
            self.pg.wr(root + 8 * i, pd | P)
        return root

    def set_selfmap(self, root):
        pg = self.pg
        if self.mode == "ia32e":
            pg.wr(root + self.selfmap_idx * 8, root | P | RW | A | D | NX)
        elif self.mode == "legacy":
            pg.wr(root + 0x300 * 4, root | P | RW | A | D)
        else:
            pd3 = pg.rd(root + 24) & pg.addr_mask
            for i in range(4):
                pg.wr(pd3 + 8 * i, (pg.rd(root + 8 * i) & pg.addr_mask) | P | RW | A | D | NX)

    def clone_root(self):
        """A process's page-table root: its own user half, the kernel half
        shared with System (the kernel's tables are built before any process)."""
        pg = self.pg
        if self.mode == "ia32e":
            root = pg.new_table(low=True)
            for i in range(256, 512):
                pg.wr(root + 8 * i, pg.rd(self.kdtb + 8 * i))
        elif self.mode == "legacy":
            root = pg.new_table(low=True)
            for i in range(512, 1024):
                pg.wr(root + 4 * i, pg.rd(self.kdtb + 4 * i))
        else:
            root = self.new_pae_root()
            for i in (2, 3):
                src = pg.rd(self.kdtb + 8 * i) & pg.addr_mask
                dst = pg.rd(root + 8 * i) & pg.addr_mask
                self.phys.write(dst, self.phys.read(src, PAGE))
        self.set_selfmap(root)
        return root

    # ---- kernel address space
    def kernel_regions(self):
        rng, v = self.rng, self.v
        if self.mode == "ia32e":
            if v["build"] == 7601:
                pool = 0xfffffa8000000000 + rng.randrange(0x10, 0x80) * 2 * MiB
                drv = 0xfffff88000000000 + rng.randrange(0x6, 0x20) * 2 * MiB
            else:
                pool = 0xffff800000000000 + rng.randrange(0x1000, 0x7000) * GiB + rng.randrange(0, 512) * 2 * MiB
                drv = self.kernel_base + rng.randrange(0x100, 0x400) * 2 * MiB
            kuser = 0xfffff78000000000
        else:
            pool = 0x84000000 + rng.randrange(0, 0x20) * 0x100000
            drv = 0x8b000000 + rng.randrange(0, 0x20) * 0x100000
            kuser = 0xffdf0000
        return pool, drv, kuser

    def map_kernel(self):
        pg, rng = self.pg, self.rng
        for off in range(0, self.kregion_size, self.lpage):
            pg.map(self.kdtb, self.kregion_va + off, self.kregion_pa + off, self.lpage, nx=False, glob=True)
        for pfn in range(self.kregion_pa >> 12, (self.kregion_pa + self.kregion_size) >> 12):
            self.phys.page(pfn)  # the whole large-page region is RAM the kernel owns
        self.pool_va, self.drv_va, self.kuser_va = self.kernel_regions()
        self.pool_pages = 256
        for i in range(self.pool_pages):
            pg.map(self.kdtb, self.pool_va + i * PAGE, self.frames.take() * PAGE, glob=True)
        self.pool_next = self.pool_va + rng.randrange(0, 64) * 16
        self.kuser_pa = self.frames.take() * PAGE
        pg.map(self.kdtb, self.kuser_va, self.kuser_pa, glob=True)

    def palloc(self, size, tag=b"Pool", align=16):
        """Non-paged pool: a POOL_HEADER with the tag, then the block."""
        hdr = self.size("_POOL_HEADER")
        start = (self.pool_next + self.rng.randrange(0, 8) * 16 + align - 1) & ~(align - 1)
        body = (start + hdr + align - 1) & ~(align - 1)
        end = body + size
        check(end <= self.pool_va + self.pool_pages * PAGE, "pool exhausted")
        blocks = (end - start + 15) // 16
        self.kw(start, u32((blocks & 0xff) << 16 | 0x02000000) + tag)
        self.pool_next = end
        return body

    def kstring(self, s, extra=0):
        """A UTF-16 string in pool: (va, Length, MaximumLength)."""
        b = s.encode("utf-16-le")
        va = self.palloc(len(b) + 2 + extra, b"Strg")
        self.kw(va, b + b"\0\0")
        return va, len(b), len(b) + 2 + extra

    def place_image(self, root, base, pe, img, user, shared_frames=None):
        """Maps an image at base; returns its frames so that later processes
        can share them (DLLs are mapped once in physical memory)."""
        pg = self.pg
        npages = (pe.size_of_image + PAGE - 1) // PAGE
        nonres = pe.nonresident_pages()
        execp = {o // PAGE for s in pe.sections if s["chars"] & 0x20000000
                 for o in range(s["va"], s["va"] + max(s["vsize"], 1), PAGE)}
        frames = shared_frames
        if frames is None:
            frames = []
            for i in range(npages):
                if i in nonres:
                    frames.append(None)
                    continue
                pfn = self.frames.take()
                self.phys.write(pfn * PAGE, bytes(img[i * PAGE:(i + 1) * PAGE]).ljust(PAGE, b"\0"))
                frames.append(pfn)
        for i, pfn in enumerate(frames):
            va = base + i * PAGE
            if pfn is None:
                # Not resident: a prototype PTE (P=0, Prototype=1, and bit 11,
                # "Combined", set too: it is not a transition PTE).
                proto = (self.pool_va + 0x100000 + i * 8) & 0xffffffffffff
                shift = {"ia32e": 16, "pae": 32, "legacy": 0}[self.mode]
                value = (proto << shift if shift else proto & 0xfffff000) | PROTO | TRANS | (1 << 5)
                pg.set_pte(root, va, value & ((1 << (8 * pg.esz)) - 1))
            else:
                pg.map(root, va, pfn * PAGE, user=user, nx=i not in execp)
        return frames

    def load_kernel_data(self):
        """ntoskrnl: its image in the large pages, a debug directory added,
        and the kernel's globals in its .data section."""
        rng, pe, img = self.rng, self.nt_pe, self.nt_img
        # wine's ntoskrnl has no debug directory; Windows' has a CodeView
        # record naming the PDB. Add one in .rdata's slack (memory only).
        rdata = pe.section(".rdata")
        dbg_rva = (rdata["va"] + rdata["vsize"] + 0x3f) & ~0xf
        guid = bytes(rng.randrange(256) for _ in range(16))
        age = rng.randrange(1, 4)
        rsds = b"RSDS" + guid + u32(age) + self.v["pdb"].encode() + b"\0"
        rsds_rva = dbg_rva + 28
        debugdir = (u32(0) + u32(pe.timestamp) + u16(0) + u16(0) + u32(2) + u32(len(rsds)) +
                    u32(rsds_rva) + u32(0))
        img[dbg_rva:dbg_rva + 28] = debugdir
        img[rsds_rva:rsds_rva + len(rsds)] = rsds
        check(rsds_rva + len(rsds) <= (rdata["va"] + rdata["vsize"] + PAGE - 1) & ~(PAGE - 1),
              ".rdata slack holds the debug directory")
        img[pe.dd_off + 6 * 8:pe.dd_off + 6 * 8 + 8] = u32(dbg_rva) + u32(28)
        # The loader writes the actual base into the mapped header.
        if self.ps == 8:
            img[pe.opt + 24:pe.opt + 32] = u64(self.kernel_base)
        else:
            img[pe.opt + 28:pe.opt + 32] = u32(self.kernel_base)
        # .data grows to its page so the globals below are inside it.
        data = pe.section(".data")
        img[data["hdr"] + 8:data["hdr"] + 12] = u32(PAGE)
        self.pdb = dict(name=self.v["pdb"], guid=guid_string(guid), age=age,
                        id=guid_string(guid) + "%X" % age)
        self.debug_rva = dbg_rva
        # Globals: PsActiveProcessHead and the rest live in .data's slack,
        # after wine's own data.
        cur = [data["va"] + ((data["vsize"] + 0xff) & ~0xff) + rng.randrange(0, 8) * 16]

        def var(name, size, align=16):
            cur[0] = (cur[0] + align - 1) & ~(align - 1)
            rva = cur[0]
            cur[0] += size
            check(cur[0] <= data["va"] + PAGE, ".data slack holds the kernel globals")
            self.sym[name] = rva
            return rva

        self.sym = {}
        order = ["PsActiveProcessHead", "PsLoadedModuleList", "KdpDebuggerDataListHead",
                 "KdVersionBlock", "KiWaitNever", "KiWaitAlways", "KdpDataBlockEncoded",
                 "MmPfnDatabase", "MmHighestUserAddress", "MmSystemRangeStart", "MmUserProbeAddress",
                 "MmPhysicalMemoryBlock", "KiProcessorBlock", "CmNtCSDVersion", "NtBuildLab",
                 "PspCidTable", "ObpRootDirectoryObject", "KeTimeIncrement", "KdDebuggerDataBlock"]
        sizes = {"PsActiveProcessHead": 2 * self.ps, "PsLoadedModuleList": 2 * self.ps,
                 "KdpDebuggerDataListHead": 2 * self.ps, "KdVersionBlock": 0x28,
                 "KiProcessorBlock": 8 * self.ps, "NtBuildLab": 80,
                 "KdDebuggerDataBlock": self.v["kdbg_size"]}
        for n in order:
            var(n, sizes.get(n, 8))
        # Exports whose data Windows keeps in .data/.bss: use wine's RVAs.
        self.exports, self.export_dll = pe.exports(img)
        for name, rva, fwd in self.exports:
            if name in ("PsInitialSystemProcess", "NtBuildNumber", "KeServiceDescriptorTable",
                        "KdDebuggerEnabled", "InitSafeBootMode"):
                self.sym[name] = rva
        check("PsInitialSystemProcess" in self.sym and "NtBuildNumber" in self.sym,
              "wine's ntoskrnl exports PsInitialSystemProcess and NtBuildNumber")
        # wine exports MmHighestUserAddress, MmSystemRangeStart and
        # MmUserProbeAddress from .text (code). Their code stays; the values
        # KDBG points at live in the slots above, which then carry no name:
        # symbols (ISF, truth) keep the export table's meaning for a name.
        exported = {n: rva for n, rva, fwd in self.exports if not fwd}
        self.public_sym = {n: rva for n, rva in self.sym.items() if exported.get(n, rva) == rva}
        self.phys.write(self.kernel_pa, img)
        self.kw(self.kernel_base + self.sym["NtBuildNumber"], u32(0xf0000000 | self.v["build"]))
        self.kw(self.kernel_base + self.sym["NtBuildLab"], self.v["lab"].encode() + b"\0")
        self.kw(self.kernel_base + self.sym["CmNtCSDVersion"], u32(self.v["csd"]))
        self.kw(self.kernel_base + self.sym["KeTimeIncrement"], u32(156250))
        hi_user = (1 << 43) - 0x10001 if self.ps == 8 else 0x7ffeffff
        if self.v["build"] > 9600 and self.ps == 8:
            hi_user = (1 << 47) - 0x10001
        self.hi_user = hi_user
        srs = 0xffff080000000000 if self.ps == 8 else 0x80000000
        if self.ps == 8 and self.v["build"] > 9600:
            srs = 0xffff800000000000
        self.kw(self.kernel_base + self.sym["MmHighestUserAddress"], self.ptr(hi_user))
        self.kw(self.kernel_base + self.sym["MmSystemRangeStart"], self.ptr(srs))
        self.kw(self.kernel_base + self.sym["MmUserProbeAddress"], self.ptr(hi_user + 1))
        # KUSER_SHARED_DATA (user view at 0x7ffe0000 added per process)
        k = self.kuser_va
        boot = 1577836800 + rng.randrange(0, 3 * 365 * 86400)
        self.boot_unix = boot
        self.capture_unix = boot + rng.randrange(600, 86400)
        st = filetime(self.capture_unix)
        self.kw(k + 0x14, u32(st) + u32(st >> 32) + u32(st >> 32))
        self.kw(k + 0x30, "C:\\Windows".encode("utf-16-le") + b"\0\0")
        if self.v["build"] >= 10240:
            self.kw(k + 0x260, u32(self.v["build"]))
        self.kw(k + 0x264, u32(1))  # NtProductWinNt
        self.kw(k + 0x26c, u32(self.v["major"]) + u32(self.v["minor"]))
        self.kw(k + 0x2d0, u32(0x110))
        # KdVersionBlock (DBGKD_GET_VERSION64)
        kvb = self.kernel_base + self.sym["KdVersionBlock"]
        mt = 0x8664 if self.ps == 8 else 0x14c
        self.kw(kvb, u16(0xf) + u16(self.v["build"]) + bytes([6, 2]) + u16(0x47) + u16(mt) +
                bytes([0x0c, 0x34, 0x31, 0]) + u16(0) +
                u64(self.kptr(self.kernel_base)) +
                u64(self.kptr(self.kernel_base + self.sym["PsLoadedModuleList"])) +
                u64(self.kptr(self.kernel_base + self.sym["KdpDebuggerDataListHead"])))
        self.regs_rip = self.kernel_base + pe.section(".text")["va"] + rng.randrange(0, 0x20000) * 4

    def load_modules(self):
        """PsLoadedModuleList: ntoskrnl first, hal, then drivers."""
        rng = self.rng
        drivers = ["cng.sys", "ksecdd.sys", "fltmgr.sys", "ndis.sys", "netio.sys", "tdi.sys",
                   "mountmgr.sys", "scsiport.sys", "http.sys", "hidclass.sys"]
        rng.shuffle(drivers)
        mods = [("ntoskrnl.exe", "ntkrnlpa.exe" if self.mode == "pae" else "ntoskrnl.exe", self.kernel_base)]
        if self.ps == 4 or self.v["build"] == 7601:
            hal_base = (self.kernel_base + self.nt_pe.size_of_image + 0xffff) & ~0xffff
            if self.ps == 8:  # Windows 7 x64: right after the kernel's large pages
                hal_base = self.kregion_va + self.kregion_size + rng.randrange(0, 32) * PAGE
        else:
            hal_base = self.drv_va
        mods.append(("hal.dll", "hal.dll", hal_base))
        nxt = (self.drv_va + 0x100000) if hal_base == self.drv_va else self.drv_va
        for d in drivers[:8]:
            pe, _ = self.image(d)
            nxt = (nxt + rng.randrange(1, 8) * PAGE + 0xfff) & ~0xfff
            mods.append((d, d, nxt))
            nxt += pe.size_of_image
        self.modules = []
        entries = []
        for name, fname, base in mods:
            pe, img = (self.nt_pe, self.nt_img) if name == "ntoskrnl.exe" else self.image(name)
            inside = self.kregion_va <= base < self.kregion_va + self.kregion_size
            if name != "ntoskrnl.exe":
                if inside:  # 32-bit: hal shares the kernel's large pages
                    self.phys.write(self.kregion_pa + (base - self.kregion_va), img)
                else:
                    self.place_image(self.kdtb, base, pe, img, user=False)
            if name == "ntoskrnl.exe":
                path = "\\SystemRoot\\system32\\" + fname
            elif name == "hal.dll":
                path = "\\SystemRoot\\system32\\hal.dll"
            else:
                path = "\\SystemRoot\\System32\\drivers\\" + name
            e = self.palloc(self.size("_KLDR_DATA_TABLE_ENTRY"), b"MmLd")
            entries.append(e)
            t = "_KLDR_DATA_TABLE_ENTRY"
            self.kw(e + self.off(t, "DllBase"), self.ptr(base))
            self.kw(e + self.off(t, "EntryPoint"), self.ptr(base + pe.entry))
            self.kw(e + self.off(t, "SizeOfImage"), u32(pe.size_of_image))
            for fld, s in (("FullDllName", path), ("BaseDllName", name)):
                sva, ln, mx = self.kstring(s, extra=rng.choice([0, 0, 2, 8]))
                self.w_ustr(self.kdtb, e + self.off(t, fld), ln, mx, sva)
            self.kw(e + self.off(t, "Flags"), u32(0x49104000))
            self.kw(e + self.off(t, "LoadCount"), u16(1))
            self.modules.append(dict(name=name, base=base, size=pe.size_of_image, path=path, addr=e))
        head = self.kernel_base + self.sym["PsLoadedModuleList"]
        self.link(self.kdtb, head, entries, 0)

    def link(self, root, head, items, off):
        """A circular LIST_ENTRY through head and items (+off each)."""
        nodes = [head] + [i + off for i in items]
        for i, n in enumerate(nodes):
            self.w_list(root, n, nodes[(i + 1) % len(nodes)], nodes[i - 1])

    # ---- processes
    def process_table(self):
        """(name, image file to map, DOS path, command line, parent key,
        DLLs) per process, in creation order."""
        w7 = self.v["build"] == 7601
        sysdir = "C:\\Windows\\system32\\"
        svc_k = (["DcomLaunch", "RPCSS", "netsvcs", "LocalServiceNetworkRestricted"] if w7 else
                 ["DcomLaunch -p", "RPCSS -p", "netsvcs -p", "LocalServiceNetworkRestricted -p -s lmhosts"])
        base = ["ntdll.dll", "kernel32.dll", "kernelbase.dll"]
        gui = base + ["user32.dll", "advapi32.dll", "msvcrt.dll"]
        svc = base + ["sechost.dll", "rpcrt4.dll"]
        t = [("smss.exe", "plugplay.exe", sysdir + "smss.exe", "\\SystemRoot\\System32\\smss.exe", "System",
              ["ntdll.dll"]),
             ("csrss.exe", "conhost.exe", sysdir + "csrss.exe",
              "%SystemRoot%\\system32\\csrss.exe ObjectDirectory=\\Windows SharedSection=1024,20480,768 "
              "Windows=On SubSystemType=Windows ServerDll=basesrv,1 ServerDll=winsrv:UserServerDllInitialization,3 "
              "ServerDll=sxssrv,4 ProfileControl=Off MaxRequestThreads=16", "smss-gone-1",
              ["ntdll.dll", "kernelbase.dll"]),
             ("wininit.exe", "wineboot.exe", sysdir + "wininit.exe", "wininit.exe", "smss-gone-1", base),
             ("csrss.exe", "conhost.exe", sysdir + "csrss.exe",
              "%SystemRoot%\\system32\\csrss.exe ObjectDirectory=\\Windows SharedSection=1024,20480,768 "
              "Windows=On SubSystemType=Windows", "smss-gone-2", ["ntdll.dll", "kernelbase.dll"]),
             ("winlogon.exe", "winedevice.exe", sysdir + "winlogon.exe", "winlogon.exe", "smss-gone-2", gui),
             ("services.exe", "services.exe", sysdir + "services.exe", sysdir + "services.exe", "wininit.exe", svc),
             ("lsass.exe", "rpcss.exe", sysdir + "lsass.exe", sysdir + "lsass.exe", "wininit.exe", svc)]
        for k in svc_k:
            t.append(("svchost.exe", "svchost.exe", sysdir + "svchost.exe", sysdir + "svchost.exe -k " + k,
                      "services.exe", svc))
        t += [("spoolsv.exe", "spoolsv.exe", sysdir + "spoolsv.exe", sysdir + "spoolsv.exe", "services.exe", svc),
              ("explorer.exe", "explorer.exe", "C:\\Windows\\Explorer.EXE", "C:\\Windows\\Explorer.EXE",
               "userinit-gone", gui),
              # ImageFileName holds 15 bytes: "SearchProtocolH"
              ("SearchProtocolHost.exe", "dllhost.exe", sysdir + "SearchProtocolHost.exe",
               "\"" + sysdir + "SearchProtocolHost.exe\" Global\\UsGthrFltPipeMssGthrPipe1_ "
               "Global\\UsGthrCtrlFltPipeMssGthrPipe1 1 -2147483646 \"Software\\Microsoft\\Windows Search\" "
               "\"Mozilla/4.0 (compatible; MSIE 6.0; Windows NT; MS Search 4.0 Robot)\" "
               "\"C:\\ProgramData\\Microsoft\\Search\\Data\\Temp\\usgthrsvc\" \"DownLevelDaemon\"",
               "svchost.exe", base + ["msvcrt.dll"]),
              # A path and command line beyond Latin-1, a surrogate pair included.
              ("tool.exe", "notepad.exe", "C:\\Users\\J\u00fcrgen\\AppData\\Local\\\u65e5\u672c\u8a9e\\tool.exe",
               "\"C:\\Users\\J\u00fcrgen\\AppData\\Local\\\u65e5\u672c\u8a9e\\tool.exe\" "
               "--label=Gr\u00fc\u00dfe\U0001F600 "
               "--title=\u041f\u0440\u0438\u0432\u0435\u0442", "explorer.exe", gui),
              ("cmd.exe", "cmd.exe", sysdir + "cmd.exe", "\"C:\\Windows\\system32\\cmd.exe\" ", "explorer.exe",
               base + ["msvcrt.dll"]),
              ("conhost.exe", "conhost.exe", sysdir + "conhost.exe", "\\??\\C:\\Windows\\system32\\conhost.exe 0x4",
               "csrss.exe", base)]
        return t

    def make_processes(self):
        rng, v = self.rng, self.v
        table = self.process_table()
        w10 = v["build"] >= 10240
        # pids: System 4, Registry (Windows 10) low, the rest increasing with gaps
        pids, pid = [], 0x100 + rng.randrange(0, 0x40) * 4
        for _ in table:
            pids.append(pid)
            pid += rng.randrange(1, 0x60) * 4
        gone = {k: 0x100 + rng.randrange(0x400, 0x800) * 4 for k in ("smss-gone-1", "smss-gone-2", "userinit-gone")}
        t0 = filetime(self.boot_unix)
        procs = [dict(name="System", pid=4, ppid=0, kernel=True, path="", nt_path="", cmdline=None,
                      create_time=t0, threads=rng.randrange(80, 160))]
        if w10:
            procs.append(dict(name="Registry", pid=0x58 + rng.randrange(0, 16) * 4, ppid=4, kernel=True,
                              path="Registry", nt_path="Registry", cmdline=None,
                              create_time=t0 - rng.randrange(1, 50) * 10_000, threads=4))
        tt = t0 + rng.randrange(5, 30) * 1_000_000
        bykey = {"System": 4}
        for (name, exe, path, cmd, parent, dlls), pid in zip(table, pids):
            tt += rng.randrange(1, 400) * 100_000
            ppid = bykey.get(parent) or gone[parent]
            nt = "\\Device\\HarddiskVolume2" + path[2:] if path[1] == ":" else path
            procs.append(dict(name=name[:15], pid=pid, ppid=ppid, kernel=False, exe=exe, path=path, nt_path=nt,
                              cmdline=cmd, dlls=dlls, full=name, create_time=tt, threads=rng.randrange(1, 60)))
            bykey.setdefault(name, pid)
        self.procs = procs
        # EPROCESS objects scattered in pool, in random order
        order = list(range(len(procs)))
        rng.shuffle(order)
        objhdr = self.size("_OBJECT_HEADER") - 8
        for i in order:
            p = procs[i]
            block = self.palloc(objhdr + self.size("_EPROCESS") + 0x40, b"Pro\xe3", align=64)
            p["eprocess"] = (block + objhdr + 0x3f) & ~0x3f
            hdr = p["eprocess"] - objhdr
            self.kw(hdr + self.off("_OBJECT_HEADER", "PointerCount"), self.ptr(rng.randrange(2, 300)))
            self.kw(hdr + self.off("_OBJECT_HEADER", "TypeIndex"), bytes([7]))
        # DLL images: shared frames per file, bases fixed for the boot
        self.dll_bases, self.dll_frames = {}, {}
        self.plan_dll_bases()
        self.transition = []
        trans_pids = set(p["pid"] for p in rng.sample([p for p in procs if not p["kernel"]], 3))
        self.trans_kind = {}
        for k, pid in enumerate(sorted(trans_pids)):
            self.trans_kind[pid] = ("params", "ldr", "peb")[k % 3]
        for p in procs:
            if p["kernel"]:  # System runs on the kernel's tables; Registry has its own, no PEB
                p["root"] = self.kdtb if p["name"] == "System" else self.clone_root()
                p["dtb"], p["peb"] = p["root"], 0
            else:
                p["root"] = self.clone_root()
                p["dtb"] = p["root"]
                self.build_user(p)
            self.write_eprocess(p)
        # ActiveProcessLinks in creation order
        head = self.kernel_base + self.sym["PsActiveProcessHead"]
        seq = sorted(procs, key=lambda p: (p["create_time"] if p["name"] != "Registry" else t0 + 1))
        seq = [procs[0]] + [p for p in seq if p is not procs[0]]
        self.procs = seq
        self.link(self.kdtb, head, [p["eprocess"] for p in seq], self.off("_EPROCESS", "ActiveProcessLinks"))
        self.kw(self.kernel_base + self.sym["PsInitialSystemProcess"], self.ptr(procs[0]["eprocess"]))

    def plan_dll_bases(self):
        """System DLLs sit at the same base in every process for a boot.
        Windows 7 x64 keeps ntdll, kernel32 and user32 below 2 GiB and the
        rest near 0x7fe`f0000000; Windows 10 puts them all near 0x7ffX`."""
        rng = self.rng
        names = ["ntdll.dll", "kernel32.dll", "kernelbase.dll", "user32.dll", "advapi32.dll",
                 "msvcrt.dll", "sechost.dll", "rpcrt4.dll"]
        low_set = ("ntdll.dll", "kernel32.dll", "user32.dll")
        if self.ps == 8 and self.v["build"] >= 10240:
            top = hi = 0x7ff800000000 + rng.randrange(0, 0x7000) * 0x100000
        elif self.ps == 8:
            top = 0x77c00000 - rng.randrange(0, 0x30) * 0x10000
            hi = 0x7fefe000000 - rng.randrange(0, 0x100) * 0x10000
        else:
            top = hi = 0x77d00000 - rng.randrange(0, 0x30) * 0x10000
        for n in names:
            pe, _ = self.image(n)
            size = (pe.size_of_image + 0xffff) & ~0xffff
            gap = size + rng.randrange(1, 16) * 0x10000
            if self.ps == 8 and self.v["build"] == 7601 and n not in low_set:
                hi -= gap
                self.dll_bases[n] = hi
            else:
                top -= gap
                self.dll_bases[n] = top
            if self.ps == 4 or self.v["build"] >= 10240:
                hi = top

    def user_layout(self):
        rng = self.rng
        if self.ps == 8 and self.v["build"] >= 10240:
            peb = (rng.randrange(0x10, 0xff) << 32) | (rng.randrange(0, 0x100000) << 12)
            heap = (rng.randrange(0x100, 0x2ff) << 32) | (rng.randrange(0, 0x10000) << 16)
            exe = 0x7ff600000000 + rng.randrange(0, 0x10000) * 0x10000
        elif self.ps == 8:
            peb = 0x7fffffd3000 + rng.randrange(0, 12) * PAGE
            heap = rng.randrange(0x10, 0x100) * 0x10000
            exe = rng.choice([0xff000000, 0x13f000000]) + rng.randrange(0, 0x80) * 0x10000
        else:
            peb = 0x7ffd3000 + rng.randrange(0, 12) * PAGE
            heap = rng.randrange(0x10, 0x30) * 0x10000
            exe = rng.choice([0x400000, 0x1000000]) + rng.randrange(0, 0x80) * 0x10000
        return peb, heap, exe

    def build_user(self, p):
        rng, pg = self.rng, self.pg
        root = p["root"]
        peb, heap, exe = self.user_layout()
        p["peb"] = peb
        # images
        pe, img = self.image(p["exe"])
        fr = self.dll_frames.get(p["exe"])
        self.dll_frames[p["exe"]] = self.place_image(root, exe, pe, img, user=True, shared_frames=fr)
        images = [(p["full"], p["path"], exe, pe)]
        for n in p["dlls"]:
            dpe, dimg = self.image(n)
            fr = self.dll_frames.get(n)
            self.dll_frames[n] = self.place_image(root, self.dll_bases[n], dpe, dimg, user=True, shared_frames=fr)
            shown = {"kernelbase.dll": "KERNELBASE.dll"}.get(n, n)
            images.append((shown, "C:\\Windows\\" + ("SYSTEM32\\" if n == "ntdll.dll" else "system32\\") + shown,
                           self.dll_bases[n], dpe))
        # KUSER_SHARED_DATA, read-only in user mode
        pg.map(root, 0x7ffe0000, self.kuser_pa, user=True)
        # PEB
        pg.map(root, peb, self.frames.take() * PAGE, user=True)
        # heap: parameters page, loader page(s)
        heap_pages = []

        def hpage():
            va = heap + len(heap_pages) * PAGE
            pg.map(root, va, self.frames.take() * PAGE, user=True)
            heap_pages.append(va)
            return va

        params_page = hpage()
        ldr_page = hpage()
        hpage()  # the heap goes on past what is used
        # ntdll's .bss page holding PebLdr is the process's own copy
        ntpe, ntimg = self.image("ntdll.dll")
        bss = ntpe.section(".bss")
        ldr_data = self.dll_bases["ntdll.dll"] + bss["va"] + 0x100
        priv = self.frames.take() * PAGE
        page_rva = (bss["va"] + 0x100) & ~(PAGE - 1)
        self.phys.write(priv, bytes(ntimg[page_rva:page_rva + PAGE]).ljust(PAGE, b"\0"))
        pg.map(root, self.dll_bases["ntdll.dll"] + page_rva, priv, user=True)
        # RTL_USER_PROCESS_PARAMETERS with its strings inside the block
        T = "_RTL_USER_PROCESS_PARAMETERS"
        pp = params_page + rng.randrange(0, 4) * 16
        cur = pp + self.size(T)
        strings = {}
        for fld, s in (("CurrentDirectory", "C:\\Windows\\system32\\"), ("DllPath", ""),
                       ("ImagePathName", p["path"]), ("CommandLine", p["cmdline"]),
                       ("WindowTitle", p["path"]), ("DesktopInfo", "Winsta0\\Default")):
            b = s.encode("utf-16-le")
            mx = len(b) + 2
            if fld == "CurrentDirectory":
                mx = 0x208
            self.vwrite(root, cur, b + b"\0\0")
            strings[fld] = (cur, len(b), mx)
            cur = (cur + mx + 7) & ~7
        check(cur - params_page <= PAGE, "process parameters fit their page")
        self.vwrite(root, pp, u32(cur - pp) + u32(cur - pp) + u32(0x6001) + u32(0))  # NORMALIZED
        for fld, (va, ln, mx) in strings.items():
            o = self.off(T, fld)
            self.w_ustr(root, pp + o, ln, mx, va)
        self.vwrite(root, pp + self.off(T, "Environment"), self.ptr(cur))
        self.vwrite(root, cur, "PATH=C:\\Windows\\system32\0\0".encode("utf-16-le"))
        # LDR_DATA_TABLE_ENTRY per image, strings after each
        L = "_LDR_DATA_TABLE_ENTRY"
        cur = ldr_page + rng.randrange(0, 8) * 16
        entries, dlls = [], []
        for i, (name, path, base, ipe) in enumerate(images):
            e = (cur + 15) & ~15
            cur = e + self.size(L)
            self.vwrite(root, e + self.off(L, "DllBase"), self.ptr(base))
            self.vwrite(root, e + self.off(L, "EntryPoint"), self.ptr(base + ipe.entry))
            self.vwrite(root, e + self.off(L, "SizeOfImage"), u32(ipe.size_of_image))
            self.vwrite(root, e + self.off(L, "Flags"), u32(0x4000 if i == 0 else 0x8a2cc))
            self.vwrite(root, e + self.off(L, "LoadCount"), u16(0xffff))
            for fld, s in (("FullDllName", path), ("BaseDllName", name)):
                b = s.encode("utf-16-le")
                self.vwrite(root, cur, b + b"\0\0")
                self.w_ustr(root, e + self.off(L, fld), len(b), len(b) + 2, cur)
                cur = (cur + len(b) + 2 + 7) & ~7
            check(cur < heap + len(heap_pages) * PAGE, "loader entries fit the heap")
            entries.append(e)
            dlls.append(dict(name=name, base=base, size=ipe.size_of_image, path=path, addr=e))
        p["dll_list"] = dlls
        D = "_PEB_LDR_DATA"
        self.vwrite(root, ldr_data, u32(self.size(D)) + bytes([1]))
        self.link(root, ldr_data + self.off(D, "InLoadOrderModuleList"), entries, self.off(L, "InLoadOrderLinks"))
        self.link(root, ldr_data + self.off(D, "InMemoryOrderModuleList"), entries, self.off(L, "InMemoryOrderLinks"))
        # Initialization order: ntdll first, KERNELBASE before kernel32, no EXE.
        init = entries[1:]
        names = [d["name"] for d in dlls[1:]]
        if "KERNELBASE.dll" in names and "kernel32.dll" in names:
            kb, k32 = names.index("KERNELBASE.dll"), names.index("kernel32.dll")
            init[kb], init[k32] = init[k32], init[kb]
        self.link(root, ldr_data + self.off(D, "InInitializationOrderModuleList"), init,
                  self.off(L, "InInitializationOrderLinks"))
        for e in entries:  # HashLinks: an empty list each
            self.w_list(root, e + self.off(L, "HashLinks"), e + self.off(L, "HashLinks"), e + self.off(L, "HashLinks"))
        # PEB
        E = "_PEB"
        self.vwrite(root, peb + self.off(E, "ImageBaseAddress"), self.ptr(exe))
        self.vwrite(root, peb + self.off(E, "Ldr"), self.ptr(ldr_data))
        self.vwrite(root, peb + self.off(E, "ProcessParameters"), self.ptr(pp))
        self.vwrite(root, peb + self.off(E, "ProcessHeap"), self.ptr(heap))
        self.vwrite(root, peb + self.off(E, "NumberOfProcessors"), u32(2))
        self.vwrite(root, peb + self.off(E, "OSMajorVersion"), u32(self.v["major"]) + u32(self.v["minor"]) +
                    u16(self.v["build"]) + u16(self.v["csd"]))
        self.vwrite(root, peb + self.off(E, "SessionId"), u32(0 if p["name"] in ("smss.exe",) else 1))
        # Some pages only through transition PTEs: the frame keeps the data.
        kind = self.trans_kind.get(p["pid"])
        if kind:
            va = {"params": params_page, "ldr": ldr_page, "peb": peb}[kind]
            pa = pg.translate(root, va)[0]
            pg.set_pte(root, va, pa | TRANS | (4 << 5))  # MM_READWRITE, P=0
            self.transition.append(dict(pid=p["pid"], va=va, pa=pa, what=kind))
        # Windows 10 x64: KVA shadow, a user-mode root with the user half only
        if self.ps == 8 and self.v["build"] >= 10240:
            shadow = pg.new_table(low=True)
            for i in range(256):
                pg.wr(shadow + 8 * i, pg.rd(root + 8 * i))
            p["shadow"] = shadow

    def write_eprocess(self, p):
        rng, E = self.rng, "_EPROCESS"
        ep, K = p["eprocess"], "_KPROCESS"
        kw = self.kw
        kw(ep + self.off(K, "Header"), bytes([3, 0, (self.size(K) // 4) & 0xff, 0]))
        self.w_list(self.kdtb, ep + self.off(K, "Header") + 8, ep + 8, ep + 8)
        kw(ep + self.off(K, "DirectoryTableBase"), self.ptr(p["dtb"]))
        if "shadow" in p:
            kw(ep + self.off(K, "UserDirectoryTableBase"), u64(p["shadow"]))
        for t, m in ((K, "ThreadListHead"), (E, "ThreadListHead")):
            a = ep + self.off(t, m)
            self.w_list(self.kdtb, a, a, a)
        kw(ep + self.off(E, "CreateTime"), u64(p["create_time"]))
        kw(ep + self.off(E, "UniqueProcessId"), self.ptr(p["pid"]))
        kw(ep + self.off(E, "InheritedFromUniqueProcessId"), self.ptr(p["ppid"]))
        name = p.get("full", p["name"]).encode("latin-1")
        kw(ep + self.off(E, "ImageFileName"), name[:15].ljust(15, b"\0"))
        kw(ep + self.off(E, "PriorityClass"), bytes([2]))  # right after the name: no NUL at 15
        kw(ep + self.off(E, "ActiveThreads"), u32(p["threads"]))
        kw(ep + self.off(E, "Peb"), self.ptr(p["peb"]))
        kw(ep + self.off(E, "Flags"), u32(0x144d0c01))
        token = self.palloc(0x80, b"Toke")
        kw(ep + self.off(E, "Token"), self.ptr(token | rng.randrange(0, 16)))
        oni = self.palloc(self.size("_OBJECT_NAME_INFORMATION") + 2 * len(p["nt_path"]) + 2, b"SeOn")
        b = p["nt_path"].encode("utf-16-le")
        buf = oni + self.size("_OBJECT_NAME_INFORMATION")
        kw(buf, b + b"\0\0")
        self.w_ustr(self.kdtb, oni, len(b), len(b) + 2 if b else 0, buf if b else 0)
        kw(ep + self.off(E, "SeAuditProcessCreationInfo"), self.ptr(oni))

    def write_kdbg(self):
        rng, v = self.rng, self.v
        kb = self.kernel_base
        size = v["kdbg_size"]
        va = kb + self.sym["KdDebuggerDataBlock"]
        buf = bytearray(size)
        listhead = kb + self.sym["KdpDebuggerDataListHead"]
        if self.ps == 8:
            buf[0:16] = u64(listhead) + u64(listhead)
            self.kw(listhead, u64(va) + u64(va))
        buf[0x10:0x18] = b"KDBG" + u32(size)
        text = self.nt_pe.section(".text")["va"]

        def put(name, value):
            off, n = KDBG[name]
            if off + n <= size:
                buf[off:off + n] = value.to_bytes(8, "little")[:n] if n == 8 else value.to_bytes(n, "little")

        E, K = "_EPROCESS", "_KPROCESS"
        ptrs = {"KernBase": kb, "BreakpointWithStatus": kb + text + 0x40, "KiCallUserMode": kb + text + 0x1200,
                "KeUserCallbackDispatcher": kb + text + 0x1300,
                "PsLoadedModuleList": kb + self.sym["PsLoadedModuleList"],
                "PsActiveProcessHead": kb + self.sym["PsActiveProcessHead"],
                "PspCidTable": kb + self.sym["PspCidTable"],
                "ObpRootDirectoryObject": kb + self.sym["ObpRootDirectoryObject"],
                "KeTimeIncrement": kb + self.sym["KeTimeIncrement"],
                "MmPfnDatabase": kb + self.sym["MmPfnDatabase"],
                "MmHighestUserAddress": kb + self.sym["MmHighestUserAddress"],
                "MmSystemRangeStart": kb + self.sym["MmSystemRangeStart"],
                "MmUserProbeAddress": kb + self.sym["MmUserProbeAddress"],
                "NtBuildLab": kb + self.sym["NtBuildLab"], "KiProcessorBlock": kb + self.sym["KiProcessorBlock"],
                "CmNtCSDVersion": kb + self.sym["CmNtCSDVersion"],
                "MmPhysicalMemoryBlock": kb + self.sym["MmPhysicalMemoryBlock"]}
        for n, val in ptrs.items():
            put(n, self.kptr(val))
        put("PaeEnabled", 1 if self.mode == "pae" else 0)
        put("MmPageSize", PAGE)
        put("MmHighestPhysicalPage", max(b + c for b, c in self.runs) - 1)
        put("MmLowestPhysicalPage", 1)
        put("MmNumberOfPhysicalPages", sum(c for b, c in self.runs))
        put("SizeEProcess", self.size(E))
        put("OffsetEprocessPeb", self.off(E, "Peb"))
        put("OffsetEprocessParentCID", self.off(E, "InheritedFromUniqueProcessId"))
        put("OffsetEprocessDirectoryTableBase", self.off(K, "DirectoryTableBase"))
        put("SizeEThread", 0x4c0 if self.ps == 8 else 0x2b8)
        put("OffsetPrcbContext", 0x3658 if self.ps == 8 else 0x3cc)
        if size >= 0x368:
            put("PteBase", self.pte_base)
        # MmPfnDatabase / MmPhysicalMemoryBlock point at real-looking values
        pfndb = (0xfffffa8000000000 if v["build"] == 7601 else 0xffff900000000000 + rng.randrange(0, 0x1000) * GiB) \
            if self.ps == 8 else 0x84000000 - 0x1000000
        self.kw(kb + self.sym["MmPfnDatabase"], self.ptr(pfndb))
        self.pfndb = pfndb
        desc = self.palloc(8 + 16 * len(self.runs) if self.ps == 8 else 8 + 8 * len(self.runs), b"MmPb")
        if self.ps == 8:
            d = u32(len(self.runs)) + u32(0) + u64(sum(c for b, c in self.runs))
            d += b"".join(u64(b) + u64(c) for b, c in self.runs)
        else:
            d = u32(len(self.runs)) + u32(sum(c for b, c in self.runs))
            d += b"".join(u32(b) + u32(c) for b, c in self.runs)
        self.kw(desc, d)
        self.kw(kb + self.sym["MmPhysicalMemoryBlock"], self.ptr(desc))
        self.kdbg_plain = bytes(buf)
        self.kdbg_va = va
        if v["encoded"]:
            kwn = rng.getrandbits(64)
            kwa = rng.getrandbits(64)
            self.kw(kb + self.sym["KiWaitNever"], u64(kwn))
            self.kw(kb + self.sym["KiWaitAlways"], u64(kwa))
            self.kw(kb + self.sym["KdpDataBlockEncoded"], bytes([1]))
            enc = kdbg_encode(buf, kwn, kwa, kb + self.sym["KdpDataBlockEncoded"])
            check(b"KDBG" not in enc, "encoded KDBG shows no tag")
            check(kdbg_decode(enc, kwn, kwa, kb + self.sym["KdpDataBlockEncoded"]) == bytes(buf), "KDBG round trip")
            self.kw(va, enc)
            self.kwn, self.kwa = kwn, kwa
        else:
            self.kw(kb + self.sym["KiWaitNever"], u64(rng.getrandbits(64) if self.ps == 8 else 0))
            self.kw(kb + self.sym["KiWaitAlways"], u64(rng.getrandbits(64) if self.ps == 8 else 0))
            self.kw(va, buf)

    def make_threads(self):
        """ETHREADs on each EPROCESS.ThreadListHead (ActiveThreads of them,
        tids from the pids' CID space), and per vCPU a KPCR whose KPRCB's
        CurrentThread is a thread of the process that vCPU runs. Built last,
        with an rng of its own, so that everything before stays in place."""
        rng = random.Random("%s:%s:threads" % (self.seed, self.name))
        E, T, K = "_EPROCESS", "_ETHREAD", "_KTHREAD"
        region = self.pool_va + 0x400000
        need = sum(p["threads"] for p in self.procs) * (self.size(T) + 0x80) + (4 if self.ps == 8 else 10) * PAGE
        npages = (need + PAGE - 1) // PAGE
        for i in range(npages):
            self.pg.map(self.kdtb, region + i * PAGE, self.frames.take() * PAGE, glob=True)
        cur = [region + rng.randrange(0, 16) * 16]

        def alloc(size, align):
            va = (cur[0] + rng.randrange(0, 4) * 16 + align - 1) & ~(align - 1)
            cur[0] = va + size
            check(cur[0] <= region + npages * PAGE, "thread pool holds the threads")
            return va

        used = {p["pid"] for p in self.procs} | {p["ppid"] for p in self.procs}
        tle = self.off(T, "ThreadListEntry")
        for p in self.procs:
            tid, threads = p["pid"], []
            for _ in range(p["threads"]):
                tid += 4 * rng.randrange(1, 6)
                while tid in used:
                    tid += 4
                used.add(tid)
                et = alloc(self.size(T), 0x40)
                self.kw(et + self.off(K, "Header"), bytes([6, 0, (self.size(K) // 4) & 0xff, 0]))
                self.kw(et + self.off(K, "ApcState") + self.off("_KAPC_STATE", "Process"), self.ptr(p["eprocess"]))
                self.kw(et + self.off(K, "Process"), self.ptr(p["eprocess"]))
                self.kw(et + self.off(T, "Cid"), self.ptr(p["pid"]) + self.ptr(tid))
                threads.append(dict(tid=tid, ethread=et))
            p["thread_list"] = threads
            self.link(self.kdtb, p["eprocess"] + self.off(E, "ThreadListHead"), [t["ethread"] for t in threads], tle)
        # KPCR per vCPU: vCPU 0 runs explorer, vCPU 1 System, x86's vCPU 2
        # cmd in user mode (see vcpus())
        self.kpcr = []
        P, R = "_KPCR", "_KPRCB"
        selfname, curname, prcbname = ("Self", "CurrentPrcb", "Prcb") if self.ps == 8 else \
            ("SelfPcr", "Prcb", "PrcbData")
        for name in ("explorer.exe", "System") + (("cmd.exe",) if self.ps == 4 else ()):
            proc = next(p for p in self.procs if p["name"] == name)
            th = proc["thread_list"][rng.randrange(0, len(proc["thread_list"]))]
            pcr = alloc(PAGE, PAGE)
            self.kw(pcr + self.off(P, selfname), self.ptr(pcr))
            self.kw(pcr + self.off(P, curname), self.ptr(pcr + self.off(P, prcbname)))
            self.kw(pcr + self.off(P, prcbname) + self.off(R, "CurrentThread"), self.ptr(th["ethread"]))
            self.kpcr.append(dict(kpcr=pcr, pid=proc["pid"], tid=th["tid"], ethread=th["ethread"],
                                  eprocess=proc["eprocess"]))
        # x86: a GDT per vCPU (after the KPCRs, which stay where they were),
        # KPCR.GDT (+0x3c) pointing at it: in user mode FS (0x3b) is the
        # TEB, and only GDT entry 0x30 (KGDT_R0_PCR) leads to the KPCR.
        for i, k in enumerate(self.kpcr if self.ps == 4 else ()):
            k["teb"] = X86_TEB - PAGE * i
            k["gdt"] = alloc(X86_GDT_LIMIT + 1, 8)
            self.kw(k["gdt"], x86_gdt(k["kpcr"], k["teb"]))
            self.kw(k["kpcr"] + 0x3c, self.ptr(k["gdt"]))

    def write_low_stub(self):
        """x64 PROCESSOR_START_BLOCK below 1 MiB (MemProcFS's test): first
        qword & 0xffffffffffff00ff == 0x00000001000600E9, kernel entry VA at
        +0x70, PML4 at +0xA0. A decoy page matches the first test only."""
        rng = self.rng
        stub = self.stub_pfn * PAGE
        blk = bytearray(PAGE)
        blk[0:8] = u64(0x00000001000600E9 | (rng.randrange(0x10, 0xff) << 8))
        blk[0x70:0x78] = u64((self.regs_rip & ~3))
        blk[0xa0:0xa8] = u64(self.kdtb)
        blk[0x18:0x20] = u64(self.kernel_base + 0x6000)  # odd fields as a real block has
        self.phys.write(stub, blk)
        decoy = bytearray(PAGE)
        decoy[0:8] = u64(0x00000001000600E9 | 0x3300)
        decoy[0x70:0x78] = u64(self.regs_rip & ~3)
        decoy[0xa0:0xa8] = u64(0xffff800000001234)  # fails the PML4 test
        self.phys.write(self.decoy_pfn * PAGE, decoy)

    # ---- outputs
    def make_truth(self):
        v = self.v
        kb = self.kernel_base
        exports, forwarded = {}, {}
        for name, rva, fwd in self.exports:
            if fwd:
                forwarded[name] = fwd
            else:
                exports[name] = kb + rva
        procs = []
        for p in self.procs:
            procs.append(dict(pid=p["pid"], ppid=p["ppid"], name=p["name"], dtb=p["dtb"], eprocess=p["eprocess"],
                              peb=p["peb"], create_time=p["create_time"], path=p["path"], cmdline=p["cmdline"],
                              threads=p["threads"], nt_path=p["nt_path"],
                              tids=[t["tid"] for t in p["thread_list"]],
                              ethreads=[t["ethread"] for t in p["thread_list"]]))
        self.truth = {
            "variant": self.name, "synthetic": True,
            "arch": self.arch, "paging": self.mode, "dtb": self.kdtb, "build": v["build"],
            "kernel_base": kb, "kernel_pa": self.kernel_pa, "kernel_size": self.nt_pe.size_of_image,
            "kdbg": 0 if v["encoded"] else self.kdbg_va, "kdbg_va": self.kdbg_va, "kdbg_encoded": v["encoded"],
            "kdbg_size": v["kdbg_size"],
            # No built-in table can serve it: an encoded KDBG (Windows 8+)
            # or a build nobody published offsets for.
            "needs_profile": v["encoded"] or v["build"] not in (7601, 19041),
            "pdb": self.pdb, "ps_active_process_head": kb + self.sym["PsActiveProcessHead"],
            "ps_loaded_module_list": kb + self.sym["PsLoadedModuleList"],
            "ps_initial_system_process": kb + self.sym["PsInitialSystemProcess"],
            "low_stub_pa": self.stub_pfn * PAGE if self.stub_pfn else 0,
            "pte_base": self.pte_base, "selfmap_index": self.selfmap_idx, "ram": [list(r) for r in v["ram"]], "runs": [list(r) for r in self.runs],
            "processes": procs, "modules": self.modules,
            "dlls": {str(p["pid"]): p["dll_list"] for p in self.procs if not p.get("kernel")},
            "exports": exports, "forwarded": forwarded,
            "symbols": {n: kb + r for n, r in sorted(self.public_sym.items())},
            "transition": self.transition,
            "vcpus": self.vcpus(),
        }

    def vcpus(self):
        """vCPU 0 runs explorer in kernel mode (its CR3, PCID bits on
        Windows 10), vCPU 1 the System process. Each vCPU's KPCR is its
        GS base (x64; KERNEL_GS_BASE while in user mode) or FS base (x86).
        nostub: vCPU 0 is in user mode on explorer's KVA-shadow root."""
        explorer = next(p for p in self.procs if p["name"] == "explorer.exe")
        w10 = self.v["build"] >= 10240
        teb = 0x7ff5f0000000 + 0x1000
        if self.mode == "ia32e":
            cr0, cr4 = 0x80050033, 0x000406f8 | (0x170000 if w10 else 0)
        elif self.mode == "pae":
            cr0, cr4 = 0x80010031, 0x000006f9
        else:
            cr0, cr4 = 0x80010031, 0x000006d9  # PSE on, PAE off
        cr3_0 = explorer["dtb"] | (2 if w10 else 0)
        out = [dict(cr0=cr0, cr3=cr3_0, cr4=cr4, rip=self.regs_rip, rsp=self.pool_va + 0x8000 - 0x48, user=False),
               dict(cr0=cr0, cr3=self.kdtb, cr4=cr4, rip=self.regs_rip + 0x40, rsp=self.pool_va + 0x10000 - 0x48,
                    user=False)]
        if self.v.get("nostub"):
            out[0].update(cr3=explorer["shadow"] | 1, rip=0x7ff600001000 + 0x1234, rsp=0x5f000 - 0x28, user=True)
        if self.ps == 4:  # vCPU 2 in user mode: FS is cmd's TEB
            cmd = next(p for p in self.procs if p["name"] == "cmd.exe")
            out.append(dict(cr0=cr0, cr3=cmd["dtb"], cr4=cr4, rip=0x4a5a1234, rsp=0x1cfe6c, user=True))
        for c, k in zip(out, self.kpcr):
            c.update(current_pid=k["pid"], current_tid=k["tid"], current_ethread=k["ethread"],
                     current_eprocess=k["eprocess"], kpcr=k["kpcr"], gdtr_base=k.get("gdt", 0))
            if self.ps == 4:
                c.update(fs_base=k["teb"] if c["user"] else k["kpcr"], gs_base=0, kernel_gs_base=0, teb=k["teb"])
            elif c["user"]:
                c.update(fs_base=0, gs_base=teb, kernel_gs_base=k["kpcr"])
            else:
                c.update(fs_base=0, gs_base=k["kpcr"], kernel_gs_base=teb)
        return out


# --------------------------------------------------------------------------
# output files

def present_pages(m):
    """Pages worth storing: every frame written or handed out."""
    return sorted(set(m.phys.pages) | m.frames.used)


def write_sparse(path, size, chunks):
    """chunks: (file offset, bytes); unwritten ranges stay holes."""
    with open(path, "wb") as f:
        f.truncate(size)
        for off, data in chunks:
            if any(data):
                f.seek(off)
                f.write(data)


def raw_extent(m):
    """pmemsave from PA 0: the low RAM, or up to the end of high RAM."""
    ram = m.v["ram"]
    if len(ram) == 1:
        return ram[0][1]
    return max(s + z for s, z in ram)


BIOS_BASE, BIOS_SIZE = 0xfffc0000, 0x40000


def bios_image():
    b = bytearray(BIOS_SIZE)
    b[0x100:0x118] = b"SeaBIOS (synthetic)\0\0\0\0\0"
    b[BIOS_SIZE - 16:BIOS_SIZE - 11] = b"\xea\x5b\xe0\x00\xf0"
    return bytes(b)


def write_raw(m, path, phys=None):
    phys = phys or m.phys
    size = raw_extent(m)
    chunks = [(pfn * PAGE, bytes(phys.pages[pfn])) for pfn in sorted(phys.pages) if pfn * PAGE < size]
    if BIOS_BASE < size:
        chunks.append((BIOS_BASE, bios_image()))
    write_sparse(path, size, chunks)


def elf_blocks(m):
    """QEMU's guest_phys_blocks for a pc machine: RAM below 4G, the BIOS
    ROM at 0xfffc0000, RAM above 4G."""
    ram = m.v["ram"]
    blocks = [(ram[0][0], ram[0][1], None), (BIOS_BASE, BIOS_SIZE, bios_image())]
    blocks += [(s, z, None) for s, z in ram[1:]]
    return blocks


def note(name, ntype, desc):
    n = name.encode() + b"\0"
    pad = lambda b: b + b"\0" * (-len(b) % 4)
    return struct.pack("<III", len(n), len(desc), ntype) + pad(n) + pad(desc)


X86_TEB = 0x7ffdf000
X86_GDT_LIMIT = 0x3ff  # Windows x86: 128 descriptors


def gdt_entry(base, limit, access, flags):
    """A segment descriptor (Intel SDM vol. 3, 3.4.5): flags G (8), D/B (4)."""
    return u64((limit & 0xffff) | (base & 0xffffff) << 16 | access << 40 | (limit >> 16 & 0xf) << 48 |
               flags << 52 | (base >> 24 & 0xff) << 56)


def x86_gdt(kpcr, teb):
    """Windows x86's GDT (ReactOS ketypes.h KGDT_*): flat ring 0 code/data at
    0x08/0x10, ring 3 at 0x18/0x20, the KPCR at 0x30 (the kernel's FS), the
    current thread's TEB at 0x38 (user FS 0x3b)."""
    g = bytearray(X86_GDT_LIMIT + 1)
    for sel, base, limit, access, flags in ((0x08, 0, 0xfffff, 0x9b, 0xc), (0x10, 0, 0xfffff, 0x93, 0xc),
                                            (0x18, 0, 0xfffff, 0xfb, 0xc), (0x20, 0, 0xfffff, 0xf3, 0xc),
                                            (0x30, kpcr, 0x3fff, 0x93, 0x4), (0x38, teb, 0xfff, 0xf3, 0x4)):
        g[sel:sel + 8] = gdt_entry(base, limit, access, flags)
    return bytes(g)


def cpu_selectors(c, ps):
    """(cs, ds, fs, gs): Windows' kernel or user selectors."""
    if ps == 8:
        return (0x33, 0x2b, 0x53, 0x2b) if c["user"] else (0x10, 0x2b, 0x53, 0x2b)
    return (0x1b, 0x23, 0x3b, 0x23) if c["user"] else (0x8, 0x23, 0x30, 0x23)


def qemu_cpu_state(c, ps):
    """QEMUCPUState (QEMU target/i386/arch_dump.c): version 1, size 0x1B8,
    kernel_gs_base last."""
    cs, ds, fs, gs = cpu_selectors(c, ps)
    d = u32(1) + u32(0x1b8)
    gpr = [0] * 16
    gpr[6] = c["rsp"]
    d += b"".join(u64(x) for x in gpr) + u64(c["rip"]) + u64(0x246)
    csfl = (0xa0fb00 if c["user"] else 0xa09b00) if ps == 8 else (0xcffb00 if c["user"] else 0xcf9b00)
    segs = [(cs, 0xffffffff, csfl, 0)] + [(ds, 0xffffffff, 0xcf9300, 0)] * 2
    segs += [(fs, 0xfff if ps == 4 else 0xffffffff, 0xcf9300, c["fs_base"]),
             (gs, 0xffffffff, 0xcf9300, c["gs_base"]), (ds, 0xffffffff, 0xcf9300, 0)]
    segs += [(0, 0, 0, 0), (0x40, 0x67, 0x8b00, 0), (0, 0x7f if ps == 8 else X86_GDT_LIMIT, 0, c["gdtr_base"]),
             (0, 0xfff if ps == 8 else 0x7ff, 0, 0)]
    for sel, lim, fl, base in segs:
        d += u32(sel) + u32(lim) + u32(fl) + u32(0) + u64(base)
    d += u64(c["cr0"]) + u64(0) + u64(0) + u64(c["cr3"]) + u64(c["cr4"])
    d += u64(c["kernel_gs_base"])
    assert len(d) == 0x1b8
    return d


def prstatus(m, c):
    cs, ds, fs, gs = cpu_selectors(c, m.ps)
    if m.ps == 8:
        regs = [0] * 27
        regs[16], regs[17], regs[18], regs[19], regs[20] = c["rip"], cs, 0x246, c["rsp"], ds
        regs[21], regs[22] = c["fs_base"], c["gs_base"]
        regs[23] = regs[24] = ds
        regs[25], regs[26] = fs, gs
        return bytes(32) + u32(1) + bytes(76) + b"".join(u64(r) for r in regs) + bytes(8)
    regs = [0] * 17
    regs[7] = regs[8] = ds
    regs[9], regs[10] = fs, gs
    regs[12], regs[13], regs[14], regs[15], regs[16] = c["rip"], cs, 0x246, c["rsp"], ds
    return bytes(24) + u32(1) + bytes(44) + b"".join(u32(r) for r in regs) + bytes(4)


def write_elf(m, path):
    """An ELF core as QEMU's dump-guest-memory writes it (QEMU 8): ELF64
    (also for i386 guests: the BIOS block ends at 4 GiB), section headers
    right after the ELF header, then the program headers (one PT_NOTE, one
    PT_LOAD per block), the notes (all NT_PRSTATUS, then all QEMU notes),
    the memory, and .shstrtab at the end."""
    blocks = elf_blocks(m)
    vc = m.truth["vcpus"]
    notes = b"".join(note("CORE", 1, prstatus(m, c)) for c in vc)
    notes += b"".join(note("QEMU", 0, qemu_cpu_state(c, m.ps)) for c in vc)
    nph = 1 + len(blocks)
    shoff, phoff = 64, 64 + 2 * 64
    note_off = phoff + nph * 56
    mem_off = note_off + len(notes)
    offs, o = [], mem_off
    for s, z, _ in blocks:
        offs.append(o)
        o += z
    strtab_off = o
    machine = 62 if m.ps == 8 else 3
    eh = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    # e_ehsize: QEMU writes 8 here (the size of a pointer); readers ignore it.
    eh += struct.pack("<HHIQQQIHHHHHH", 4, machine, 1, 0, phoff, shoff, 0, 8, 56, nph, 64, 2, 1)
    sh = bytes(64) + struct.pack("<IIQQQQIIQQ", 1, 3, 0, 0, strtab_off, 11, 0, 0, 0, 0)
    ph = struct.pack("<IIQQQQQQ", 4, 0, note_off, 0, 0, len(notes), len(notes), 0)
    for (s, z, _), off in zip(blocks, offs):
        ph += struct.pack("<IIQQQQQQ", 1, 0, off, s, s, z, z, 0)
    head = eh + sh + ph + notes
    chunks = [(0, head), (strtab_off, b"\0.shstrtab\0")]
    for (s, z, content), off in zip(blocks, offs):
        if content is not None:
            chunks.append((off, content))
            continue
        for pfn in sorted(m.phys.pages):
            pa = pfn * PAGE
            if s <= pa < s + z:
                chunks.append((off + pa - s, bytes(m.phys.pages[pfn])))
    write_sparse(path, strtab_off + 11, chunks)


PAGE_FILL = b"PAGE" * (0x2000 // 4)


def dump_header(m, bitmap):
    """DUMP_HEADER64 ("PAGEDU64", 0x2000 bytes) or DUMP_HEADER32
    ("PAGEDUMP", 0x1000), laid out as QEMU's win_dump_defs.h and
    Volatility's crash layer; fields Windows leaves unset read "PAGE"."""
    t = m.truth
    runs = m.runs
    npages = sum(c for b, c in runs)
    c0 = t["vcpus"][0]
    if m.ps == 8:
        h = bytearray(PAGE_FILL)
        struct.pack_into("<4s4sIIQQQQII", h, 0, b"PAGE", b"DU64", 0xf, t["build"], m.kdtb, m.pfndb,
                         t["ps_loaded_module_list"], t["ps_active_process_head"], 0x8664, 2)
        struct.pack_into("<II4Q", h, 0x38, 0xe2, 0, 0, 0, 0, 0)  # MANUALLY_INITIATED_CRASH
        struct.pack_into("<Q", h, 0x80, m.kdbg_va)
        struct.pack_into("<IIQ", h, 0x88, len(runs), struct.unpack_from("<I", h, 0x8c)[0], npages)
        for i, (b, c) in enumerate(runs):
            struct.pack_into("<QQ", h, 0x98 + 16 * i, b, c)
        ctx = bytearray(3000)
        struct.pack_into("<I", ctx, 0x30, 0x10001f)  # CONTEXT_FULL | CONTEXT_SEGMENTS (AMD64)
        struct.pack_into("<Q", ctx, 0x98, c0["rsp"])
        struct.pack_into("<Q", ctx, 0xf8, c0["rip"])
        h[0x348:0x348 + 3000] = ctx
        h[0xf00:0xf98] = bytes(0x98)
        struct.pack_into("<I", h, 0xf98, 5 if bitmap else 1)
        struct.pack_into("<Q", h, 0xfa8, filetime(m.capture_unix))
        struct.pack_into("<Q", h, 0x1030, (m.capture_unix - m.boot_unix) * 10_000_000)
        struct.pack_into("<IIIII", h, 0x1038, 0, 0, 1, 0x110, 0)
        h[0x104d] = 0x41
        return h
    h = bytearray(PAGE_FILL[:0x1000])
    struct.pack_into("<4s4sIIIIIIII", h, 0, b"PAGE", b"DUMP", 0xf, t["build"], m.kdtb, m.pfndb,
                     t["ps_loaded_module_list"], t["ps_active_process_head"], 0x14c, len(t["vcpus"]))
    struct.pack_into("<5I", h, 0x28, 0xe2, 0, 0, 0, 0)
    h[0x5c] = 1 if m.mode == "pae" else 0
    h[0x5d] = 0x41
    struct.pack_into("<I", h, 0x60, m.kdbg_va)
    struct.pack_into("<II", h, 0x64, len(runs), npages)
    for i, (b, c) in enumerate(runs):
        struct.pack_into("<II", h, 0x6c + 8 * i, b, c)
    ctx = bytearray(1200)
    struct.pack_into("<I", ctx, 0, 0x1003f)
    struct.pack_into("<I", ctx, 0xb8, c0["rip"])
    struct.pack_into("<I", ctx, 0xc4, c0["rsp"])
    h[0x320:0x320 + 1200] = ctx
    h[0x7d0:0x820] = bytes(0x50)
    struct.pack_into("<I", h, 0xf88, 1)
    struct.pack_into("<IIIII", h, 0xf8c, 0, 0, 1, 0x110, 0)
    struct.pack_into("<Q", h, 0xfb8, (m.capture_unix - m.boot_unix) * 10_000_000)  # SystemUpTime
    struct.pack_into("<Q", h, 0xfc0, filetime(m.capture_unix))  # SystemTime
    return h


def write_dmp(m, path):
    """Full crash dump: the header, then each run's pages in order."""
    h = dump_header(m, False)
    off = len(h)
    chunks, places = [(0, bytes(h))], []
    for b, c in m.runs:
        places.append((b, c, off))
        off += c * PAGE
    struct.pack_into("<Q", h, 0xfa0, off)  # RequiredDumpSpace
    chunks[0] = (0, bytes(h))
    for b, c, foff in places:
        for pfn in sorted(m.phys.pages):
            if b <= pfn < b + c:
                chunks.append((foff + (pfn - b) * PAGE, bytes(m.phys.pages[pfn])))
    write_sparse(path, off, chunks)
    return places


def bitmap_pages(m):
    """The pages a bitmap dump keeps: those in Windows' runs that hold
    anything or were handed out (free zero pages are left out)."""
    inrun = lambda pfn: any(b <= pfn < b + c for b, c in m.runs)
    return [pfn for pfn in present_pages(m) if inrun(pfn)]


def write_bitmap_dmp(m, path):
    """Bitmap dump: DUMP_HEADER64 with DumpType 5, then at 0x2000 the
    summary header ('SDMP'/'FDMP', 'DUMP', HeaderSize at 0x20 = file offset
    of the first page, 0x28 pages present, 0x30 bits in the bitmap, the
    bitmap at 0x38), then the present pages in order."""
    h = dump_header(m, True)
    pages = bitmap_pages(m)
    nbits = max(b + c for b, c in m.runs)
    bm = bytearray((nbits + 31) // 32 * 4)
    for pfn in pages:
        bm[pfn >> 3] |= 1 << (pfn & 7)
    first = (0x2000 + 0x38 + len(bm) + PAGE - 1) & ~(PAGE - 1)
    sh = bytearray(0x38)
    sh[0:8] = m.v["dump_sig"] + b"DUMP"
    sh[8:0x20] = PAGE_FILL[:0x18]
    struct.pack_into("<QQQ", sh, 0x20, first, len(pages), nbits)
    total = first + len(pages) * PAGE
    struct.pack_into("<Q", h, 0xfa0, total)
    chunks = [(0, bytes(h)), (0x2000, bytes(sh) + bytes(bm))]
    for i, pfn in enumerate(pages):
        p = m.phys.pages.get(pfn)
        if p is not None:
            chunks.append((first + i * PAGE, bytes(p)))
    write_sparse(path, total, chunks)
    return pages, first


# ---- profile.json (Volatility3 ISF) and libvmi.conf

BASE = {"u8": "unsigned char", "u16": "unsigned short", "u32": "unsigned long", "u64": "unsigned long long"}


def isf_type(t):
    if isinstance(t, tuple):
        if t[0] == "arr":
            return {"kind": "array", "count": t[1], "subtype": isf_type(t[2])}
        if t[0] == "struct":
            return {"kind": "struct", "name": t[1]}
        if t[0] == "ptrto":
            sub = {"kind": "base", "name": "wchar"} if t[1] == "wchar" else {"kind": "struct", "name": t[1]}
            return {"kind": "pointer", "subtype": sub}
    if t in BASE:
        return {"kind": "base", "name": BASE[t]}
    if t == "ptr":
        return {"kind": "pointer", "subtype": {"kind": "base", "name": "void"}}
    if t == "list":
        return {"kind": "struct", "name": "_LIST_ENTRY"}
    if t == "ustr":
        return {"kind": "struct", "name": "_UNICODE_STRING"}
    if t == "large":
        return {"kind": "union", "name": "_LARGE_INTEGER"}
    raise SynthError("no ISF type for %r" % (t,))


def write_isf(m, path):
    ps = m.ps
    bt = {n: {"kind": "int", "size": s, "signed": False, "endian": "little"}
          for n, s in (("unsigned char", 1), ("unsigned short", 2), ("unsigned long", 4), ("unsigned long long", 8))}
    bt.update({"char": {"kind": "char", "size": 1, "signed": True, "endian": "little"},
               "wchar": {"kind": "int", "size": 2, "signed": True, "endian": "little"},
               "long": {"kind": "int", "size": 4, "signed": True, "endian": "little"},
               "long long": {"kind": "int", "size": 8, "signed": True, "endian": "little"},
               "void": {"kind": "void", "size": 0, "signed": True, "endian": "little"},
               "pointer": {"kind": "int", "size": ps, "signed": False, "endian": "little"}})
    ut = {}
    for name, (size, fields) in m.types.items():
        ut[name] = {"kind": "struct", "size": size,
                    "fields": {f: {"offset": o, "type": isf_type(t)} for f, (o, t) in fields.items()}}
    ut["_LARGE_INTEGER"] = {"kind": "union", "size": 8, "fields": {
        "LowPart": {"offset": 0, "type": {"kind": "base", "name": "unsigned long"}},
        "HighPart": {"offset": 4, "type": {"kind": "base", "name": "long"}},
        "QuadPart": {"offset": 0, "type": {"kind": "base", "name": "long long"}}}}
    kd = {"Header": {"offset": 0, "type": {"kind": "struct", "name": "_DBGKD_DEBUG_DATA_HEADER64"}}}
    for n, (o, s) in KDBG.items():
        if o + s <= m.v["kdbg_size"]:
            kd[n] = {"offset": o, "type": {"kind": "base", "name": {2: "unsigned short", 4: "unsigned long",
                                                                   8: "unsigned long long"}[s]}}
    ut["_KDDEBUGGER_DATA64"] = {"kind": "struct", "size": m.v["kdbg_size"], "fields": kd}
    ut["_KUSER_SHARED_DATA"] = {"kind": "struct", "size": 0x720 if m.v["build"] >= 10240 else 0x5f0, "fields": {
        "SystemTime": {"offset": 0x14, "type": {"kind": "struct", "name": "_KSYSTEM_TIME"}},
        "NtSystemRoot": {"offset": 0x30, "type": {"kind": "array", "count": 260,
                                                  "subtype": {"kind": "base", "name": "wchar"}}},
        "NtProductType": {"offset": 0x264, "type": {"kind": "base", "name": "unsigned long"}},
        "NtMajorVersion": {"offset": 0x26c, "type": {"kind": "base", "name": "unsigned long"}},
        "NtMinorVersion": {"offset": 0x270, "type": {"kind": "base", "name": "unsigned long"}},
        "SuiteMask": {"offset": 0x2d0, "type": {"kind": "base", "name": "unsigned long"}}}}
    typed = {"PsActiveProcessHead": {"kind": "struct", "name": "_LIST_ENTRY"},
             "PsLoadedModuleList": {"kind": "struct", "name": "_LIST_ENTRY"},
             "KdDebuggerDataBlock": {"kind": "struct", "name": "_KDDEBUGGER_DATA64"},
             "KdVersionBlock": {"kind": "struct", "name": "_DBGKD_GET_VERSION64"},
             "PsInitialSystemProcess": {"kind": "pointer", "subtype": {"kind": "struct", "name": "_EPROCESS"}},
             "NtBuildNumber": {"kind": "base", "name": "unsigned long"},
             "KiWaitNever": {"kind": "base", "name": "unsigned long long"},
             "KiWaitAlways": {"kind": "base", "name": "unsigned long long"},
             "KdpDataBlockEncoded": {"kind": "base", "name": "unsigned char"}}
    syms = {}
    for name, rva, fwd in m.exports:
        if not fwd:
            syms[name] = {"address": rva}
    for name, rva in m.public_sym.items():
        syms[name] = {"address": rva}
        if name in typed:
            syms[name]["type"] = typed[name]
    isf = {"metadata": {"format": "6.2.0",
                        "producer": {"name": "vmi.h-synth", "version": "1", "datetime": "2024-01-01T00:00:00"},
                        "windows": {"pdb": {"GUID": m.pdb["guid"], "age": m.pdb["age"],
                                            "database": m.pdb["name"],
                                            "machine_type": 0x8664 if ps == 8 else 0x14c}}},
           "base_types": bt, "user_types": ut, "enums": {}, "symbols": syms}
    with open(path, "w") as f:
        json.dump(isf, f, indent=1, sort_keys=True)


def write_libvmi_conf(m, path):
    """LibVMI's Windows keys (libvmi/os/windows/core.c): offsets of
    EPROCESS members, KDBG's VA (win_kdvb) and RVA (win_kdbg), System's
    EPROCESS VA (win_sysproc), ntoskrnl's PA and VA."""
    E, K = "_EPROCESS", "_KPROCESS"
    sysproc = next(p for p in m.procs if p["name"] == "System")["eprocess"]
    keys = [("ostype", '"Windows"'),
            ("win_tasks", m.off(E, "ActiveProcessLinks")), ("win_pdbase", m.off(K, "DirectoryTableBase")),
            ("win_pid", m.off(E, "UniqueProcessId")), ("win_pname", m.off(E, "ImageFileName")),
            ("win_kdvb", m.kdbg_va), ("win_sysproc", sysproc), ("win_kdbg", m.sym["KdDebuggerDataBlock"]),
            ("win_ntoskrnl", m.kernel_pa), ("win_ntoskrnl_va", m.kernel_base)]
    lines = ["# %s (synthetic image; generated by tests/windows/synth.py)" % m.name, "%s {" % m.name]
    for k, val in keys:
        lines.append("    %-16s= %s;" % (k, val if isinstance(val, str) else "0x%x" % val))
    lines.append("}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


# --------------------------------------------------------------------------
# self-check: read the image back as a reader would

class Reader:
    """A minimal Windows reader over a Phys, by the truth's offsets only."""

    def __init__(self, m, phys=None):
        self.m = m
        self.phys = phys or m.phys
        self.pg = Paging(m.mode, self.phys, None)

    def rd(self, root, va, n):
        out = bytearray()
        while n:
            t = self.pg.translate(root, va)
            check(t is not None, "VA 0x%x unmapped in root 0x%x" % (va, root))
            k = min(n, PAGE - (va & (PAGE - 1)))
            out += self.phys.read(t[0], k)
            va, n = va + k, n - k
        return bytes(out)

    def ptr(self, root, va):
        return int.from_bytes(self.rd(root, va, self.m.ps), "little")

    def ustr(self, root, va):
        b = self.rd(root, va, 2 * self.m.ps)
        ln, mx = struct.unpack_from("<HH", b)
        buf = int.from_bytes(b[self.m.ps:], "little")
        check(ln <= mx and ln % 2 == 0, "UNICODE_STRING at 0x%x is sane" % va)
        return self.rd(root, buf, ln).decode("utf-16-le") if ln else ""

    def walk(self, root, head, cap=4096):
        out, cur, seen = [], self.ptr(root, head), {head}
        while cur != head:
            check(cur not in seen and len(out) < cap, "list at 0x%x is acyclic" % head)
            seen.add(cur)
            out.append(cur)
            cur = self.ptr(root, cur)
        # Blinks mirror the Flinks
        nodes = [head] + out
        for i, n in enumerate(nodes):
            check(self.ptr(root, n + self.m.ps) == nodes[i - 1], "Blink of 0x%x" % n)
        return out


def self_check(m):
    """Re-derives processes, modules, DLLs, exports, KDBG and the PDB id
    from memory and compares them to truth."""
    t, r, ps = m.truth, Reader(m), m.ps
    kd = t["dtb"]
    off = m.off
    E, K = "_EPROCESS", "_KPROCESS"
    eps = r.walk(kd, t["ps_active_process_head"])
    check([e - off(E, "ActiveProcessLinks") for e in eps] == [p["eprocess"] for p in t["processes"]],
          "PsActiveProcessHead order")
    check(r.ptr(kd, t["ps_initial_system_process"]) == t["processes"][0]["eprocess"], "PsInitialSystemProcess")
    for p in t["processes"]:
        ep = p["eprocess"]
        check(r.ptr(kd, ep + off(E, "UniqueProcessId")) == p["pid"], "pid of %s" % p["name"])
        check(r.ptr(kd, ep + off(E, "InheritedFromUniqueProcessId")) == p["ppid"], "ppid")
        name = r.rd(kd, ep + off(E, "ImageFileName"), 15).split(b"\0")[0].decode("latin-1")
        check(name == p["name"], "name %r == %r" % (name, p["name"]))
        dtb = int.from_bytes(r.rd(kd, ep + off(K, "DirectoryTableBase"), 8 if ps == 8 else 4), "little")
        check(dtb == p["dtb"], "dtb of %s" % p["name"])
        check(int.from_bytes(r.rd(kd, ep + off(E, "CreateTime"), 8), "little") == p["create_time"], "create time")
        peb = r.ptr(kd, ep + off(E, "Peb"))
        check(peb == p["peb"], "peb of %s" % p["name"])
        oni = r.ptr(kd, ep + off(E, "SeAuditProcessCreationInfo"))
        check(r.ustr(kd, oni) == p["nt_path"], "SeAudit name of %s" % p["name"])
        if not peb:
            check(p["path"] in ("", p["nt_path"]), "kernel process path")
            continue
        # the process's own tables map its PEB; the kernel's do not
        check(r.pg.translate(kd, peb) is None, "PEB of %s not in the kernel DTB" % p["name"])
        root = p["dtb"]
        # and its EPROCESS is visible through its own DTB too (shared kernel half)
        check(r.rd(root, ep, 16) == r.rd(kd, ep, 16), "kernel half shared")
        pp = r.ptr(root, peb + off("_PEB", "ProcessParameters"))
        T = "_RTL_USER_PROCESS_PARAMETERS"
        check(r.ustr(root, pp + off(T, "ImagePathName")) == p["path"], "ImagePathName of %s" % p["name"])
        check(r.ustr(root, pp + off(T, "CommandLine")) == p["cmdline"], "CommandLine of %s" % p["name"])
        ldr = r.ptr(root, peb + off("_PEB", "Ldr"))
        D, L = "_PEB_LDR_DATA", "_LDR_DATA_TABLE_ENTRY"
        got = []
        for e in r.walk(root, ldr + off(D, "InLoadOrderModuleList")):
            e -= off(L, "InLoadOrderLinks")
            got.append(dict(name=r.ustr(root, e + off(L, "BaseDllName")), base=r.ptr(root, e + off(L, "DllBase")),
                            size=int.from_bytes(r.rd(root, e + off(L, "SizeOfImage"), 4), "little"),
                            path=r.ustr(root, e + off(L, "FullDllName")), addr=e))
        check(got == t["dlls"][str(p["pid"])], "DLL list of %s" % p["name"])
        mem = [e - off(L, "InMemoryOrderLinks") for e in r.walk(root, ldr + off(D, "InMemoryOrderModuleList"))]
        check(mem == [d["addr"] for d in got], "InMemoryOrder of %s" % p["name"])
        ini = [e - off(L, "InInitializationOrderLinks")
               for e in r.walk(root, ldr + off(D, "InInitializationOrderModuleList"))]
        check(sorted(ini) == sorted(d["addr"] for d in got[1:]), "InInitializationOrder of %s" % p["name"])
        for d in got:  # every image's header is mapped (MZ) in the process
            check(r.rd(root, d["base"], 2) == b"MZ", "MZ of %s in %s" % (d["name"], p["name"]))
    for tr in t["transition"]:
        root = next(p["dtb"] for p in t["processes"] if p["pid"] == tr["pid"])
        x = r.pg.translate(root, tr["va"])
        check(x is not None and x[2] == "transition" and x[0] == tr["pa"], "transition PTE of pid %d" % tr["pid"])
    # kernel modules
    got = []
    KL = "_KLDR_DATA_TABLE_ENTRY"
    for e in r.walk(kd, t["ps_loaded_module_list"]):
        got.append(dict(name=r.ustr(kd, e + off(KL, "BaseDllName")), base=r.ptr(kd, e + off(KL, "DllBase")),
                        size=int.from_bytes(r.rd(kd, e + off(KL, "SizeOfImage"), 4), "little"),
                        path=r.ustr(kd, e + off(KL, "FullDllName")), addr=e))
    check(got == t["modules"], "PsLoadedModuleList")
    for mod in t["modules"]:
        check(r.rd(kd, mod["base"], 2) == b"MZ", "MZ of %s" % mod["name"])
    # exports, from the mapped image through the kernel DTB
    kb = t["kernel_base"]
    size = PE(r.rd(kd, kb, PAGE), "headers").size_of_image
    img = bytearray()
    for o in range(0, size, PAGE):
        x = r.pg.translate(kd, kb + o)
        check(x is not None, "ntoskrnl page +0x%x mapped" % o)
        img += r.phys.read(x[0], PAGE)
    pe = PE(bytes(img), "ntoskrnl in memory")
    exps, _ = pe.exports(img)
    check({n: kb + rva for n, rva, f in exps if not f} == t["exports"], "export table in memory")
    check({n: f for n, rva, f in exps if f} == t["forwarded"], "forwarders in memory")
    drva = pe.ddir(6)[0]
    dd = img[drva:drva + 28]
    rsds_rva = struct.unpack_from("<I", dd, 20)[0]
    check(img[rsds_rva:rsds_rva + 4] == b"RSDS", "CodeView record")
    guid = guid_string(bytes(img[rsds_rva + 4:rsds_rva + 20]))
    age = struct.unpack_from("<I", img, rsds_rva + 20)[0]
    check(guid + "%X" % age == t["pdb"]["id"] and cstr(img, rsds_rva + 24) == t["pdb"]["name"], "PDB id")
    # build number where the export points
    nb = int.from_bytes(r.rd(kd, t["symbols"]["NtBuildNumber"], 4), "little")
    check(nb & 0xffff == t["build"] and nb >> 28 == 0xf, "NtBuildNumber")
    # KDBG
    raw = r.rd(kd, t["kdbg_va"], t["kdbg_size"])
    if t["kdbg_encoded"]:
        kwn = r.ptr(kd, t["symbols"]["KiWaitNever"])
        kwa = r.ptr(kd, t["symbols"]["KiWaitAlways"])
        check(r.rd(kd, t["symbols"]["KdpDataBlockEncoded"], 1) == b"\x01", "KdpDataBlockEncoded set")
        raw = kdbg_decode(raw, kwn, kwa, t["symbols"]["KdpDataBlockEncoded"])
    check(raw[0x10:0x14] == b"KDBG" and struct.unpack_from("<I", raw, 0x14)[0] == t["kdbg_size"], "KDBG header")
    q = lambda name: struct.unpack_from("<Q", raw, KDBG[name][0])[0] & (0xffffffffffffffff if ps == 8 else 0xffffffff)
    check(q("KernBase") == kb and q("PsActiveProcessHead") == t["ps_active_process_head"] and
          q("PsLoadedModuleList") == t["ps_loaded_module_list"], "KDBG pointers")
    # threads: EPROCESS.ThreadListHead through ETHREAD.ThreadListEntry, Cid
    T = "_ETHREAD"
    for p in t["processes"]:
        ets = [e - off(T, "ThreadListEntry") for e in r.walk(kd, p["eprocess"] + off(E, "ThreadListHead"))]
        check(ets == p["ethreads"] and len(ets) == p["threads"], "threads of %s" % p["name"])
        for e, tid in zip(ets, p["tids"]):
            check(r.ptr(kd, e + off(T, "Cid")) == p["pid"] and r.ptr(kd, e + off(T, "Cid") + ps) == tid, "Cid")
    alltids = [x for p in t["processes"] for x in p["tids"]]
    check(len(set(alltids)) == len(alltids) and not set(alltids) & {p["pid"] for p in t["processes"]},
          "tids unique, apart from pids")
    # each vCPU's KPCR leads to its current thread and process
    P, R, KT = "_KPCR", "_KPRCB", "_KTHREAD"
    prcb = "Prcb" if ps == 8 else "PrcbData"
    for c in t["vcpus"]:
        base = c["kernel_gs_base"] if c["user"] else c["gs_base"]
        if ps == 4:  # the GDT's entry 0x30 is the KPCR; FS's base too in kernel mode
            d = int.from_bytes(r.rd(kd, c["gdtr_base"] + 0x30, 8), "little")
            base = (d >> 16) & 0xffffff | (d >> 56) << 24
            check(d >> 40 & 0x90 == 0x90 and c["fs_base"] == (c["teb"] if c["user"] else base), "x86 FS and GDT")
        check(base == c["kpcr"] and r.ptr(kd, base + off(P, "Self" if ps == 8 else "SelfPcr")) == base, "KPCR.Self")
        th = r.ptr(kd, base + off(P, prcb) + off(R, "CurrentThread"))
        ep = r.ptr(kd, th + off(KT, "ApcState") + off("_KAPC_STATE", "Process"))
        check(th == c["current_ethread"] and ep == c["current_eprocess"], "current thread of a vCPU")
    # the x64 low stub leads to the kernel DTB
    if t["low_stub_pa"]:
        stub = m.phys.read(t["low_stub_pa"], PAGE)
        check(struct.unpack_from("<Q", stub)[0] & 0xffffffffffff00ff == 0x00000001000600E9, "low stub magic")
        check(struct.unpack_from("<Q", stub, 0xa0)[0] == kd, "low stub PML4")
    # the self-map shows the root where Windows expects it
    if m.mode == "ia32e":
        check(m.pg.rd(kd + 8 * t["selfmap_index"]) & r.pg.addr_mask == kd, "x64 self-map")
    if m.mode == "legacy":
        check(r.ptr(kd, 0xc0300000 + 0x300 * 4) & ~0xfff == kd, "legacy self-map")
    elif m.mode == "pae":
        check(int.from_bytes(r.rd(kd, 0xc0600000 + 3 * 0x1000 + 0x18, 8), "little") & r.pg.addr_mask ==
              m.pg.rd(kd + 24) & r.pg.addr_mask, "PAE self-map")


def read_back(m, out, places, bitmap):
    """The written files give the same pages as memory."""
    rng = random.Random(m.name)  # sampling leaves the build's rng alone
    pages = present_pages(m)
    sample = set(rng.sample(pages, min(400, len(pages)))) | {m.kdtb >> 12, m.kernel_pa >> 12}
    sample = sorted(p for p in sample if any(b <= p < b + c for b, c in m.runs))

    def want(pfn):
        p = m.phys.pages.get(pfn)
        return bytes(p) if p is not None else bytes(PAGE)

    with open(os.path.join(out, "mem.raw"), "rb") as f:
        for pfn in sample:
            f.seek(pfn * PAGE)
            check(f.read(PAGE) == want(pfn), "mem.raw page 0x%x" % pfn)
    with open(os.path.join(out, "mem.elf"), "rb") as f:
        head = f.read(0x10000)
        phoff, = struct.unpack_from("<Q", head, 32)
        nph, = struct.unpack_from("<H", head, 56)
        loads = [struct.unpack_from("<IIQQQQQQ", head, phoff + 56 * i) for i in range(nph)]
        for pfn in sample:
            ph = next(l for l in loads if l[0] == 1 and l[4] <= pfn * PAGE < l[4] + l[6])
            f.seek(ph[2] + pfn * PAGE - ph[4])
            check(f.read(PAGE) == want(pfn), "mem.elf page 0x%x" % pfn)
        check(b"QEMU\0" in head and b"CORE\0" in head, "mem.elf notes")
    with open(os.path.join(out, "mem.dmp") if places else os.devnull, "rb") as f:
        hdr = f.read(0x2000) if places else b"PAGEDU64"
        check(hdr[:8] in (b"PAGEDU64", b"PAGEDUMP"), "mem.dmp signature")
        for pfn in sample if places else ():
            b, c, foff = next(x for x in places if x[0] <= pfn < x[0] + x[1])
            f.seek(foff + (pfn - b) * PAGE)
            check(f.read(PAGE) == want(pfn), "mem.dmp page 0x%x" % pfn)
    if bitmap:
        bpages, first = bitmap
        idx = {pfn: i for i, pfn in enumerate(bpages)}
        with open(os.path.join(out, "mem-bitmap.dmp"), "rb") as f:
            h = f.read(0x2000 + 0x38)
            fp, npres, nbits = struct.unpack_from("<QQQ", h, 0x2020)
            bm = f.read((nbits + 31) // 32 * 4)
            check(fp == first and npres == len(bpages), "bitmap header")
            check(sum(bin(x).count("1") for x in bm) == npres, "bitmap population")
            for pfn in sample:
                check(bm[pfn >> 3] >> (pfn & 7) & 1, "bitmap bit of 0x%x" % pfn)
                f.seek(first + idx[pfn] * PAGE)
                check(f.read(PAGE) == want(pfn), "mem-bitmap.dmp page 0x%x" % pfn)


# --------------------------------------------------------------------------
# hostile variants: one defect each, in a copy of a good image

def hostile(m, out_root, log):
    """Raw images with one corruption each; truth.json says what a correct
    library does ("expect": per command, "ok" / "fail" / "any", and what
    stderr or stdout must hold)."""
    t = m.truth
    made = []
    E = "_EPROCESS"
    links = m.off(E, "ActiveProcessLinks")
    procs = t["processes"]

    def patch(ph, root, va, data):
        rdr = Paging(m.mode, ph, None)
        data = bytes(data)
        while data:
            x = rdr.translate(root, va)
            check(x is not None, "hostile patch at mapped VA 0x%x" % va)
            k = min(len(data), PAGE - (va & (PAGE - 1)))
            ph.cow(x[0] >> 12)
            ph.write(x[0], data[:k])
            va, data = va + k, data[k:]

    def emit(name, ph, expect, note, extra=None):
        d = os.path.join(out_root, name)
        os.makedirs(d, exist_ok=True)
        write_raw(m, os.path.join(d, "mem.raw"), ph)
        tr = {"variant": name, "synthetic": True, "base": m.name, "note": note, "expect": expect,
              "arch": t["arch"], "paging": t["paging"], "dtb": t["dtb"], "kernel_base": t["kernel_base"],
              "processes": [dict(pid=p["pid"], name=p["name"]) for p in procs]}
        tr.update(extra or {})
        with open(os.path.join(d, "truth.json"), "w") as f:
            json.dump(tr, f, indent=1)
        made.append(name)

    ptr = m.ptr
    kd = t["dtb"]
    # 1. ActiveProcessLinks loops back to a middle entry
    ph = m.phys.clone()
    k = 6
    patch(ph, kd, procs[k]["eprocess"] + links, ptr(procs[3]["eprocess"] + links))
    before = [p["pid"] for p in procs[:k + 1]]
    emit("cyclic-process-list", ph,
         {"ps": {"status": "any", "pids_prefix": before, "max_count": len(before)}},
         "EPROCESS #%d's Flink points back to #3" % k)
    # 2. a Flink into unmapped kernel memory
    ph = m.phys.clone()
    k = 4
    bad = (m.pool_va + m.pool_pages * PAGE + 0x123000) if m.ps == 8 else 0xbf123000
    patch(ph, kd, procs[k]["eprocess"] + links, ptr(bad))
    emit("flink-unmapped", ph,
         {"ps": {"status": "any", "pids_prefix": [p["pid"] for p in procs[:k + 1]],
                 "max_count": k + 1, "stderr": "0x%x" % bad}},
         "EPROCESS #%d's Flink is 0x%x, not mapped" % (k, bad))
    # 3. UNICODE_STRINGs that lie: Length > MaximumLength, odd, 0xffff, Buffer unmapped
    ph = m.phys.clone()
    T = "_RTL_USER_PROCESS_PARAMETERS"
    users = [p for p in procs if p["peb"]]
    cases = [("len>max", lambda ln, mx, b: (mx + 2, mx, b)),
             ("odd", lambda ln, mx, b: (ln - 1 if ln > 1 else 3, mx, b)),
             ("0xffff", lambda ln, mx, b: (0xffff, 0xffff, b)),
             ("unmapped", lambda ln, mx, b: (ln, mx, 0x3210000 if m.ps == 4 else 0x7ff0_1234_0000))]
    victims = []
    rdr = Reader(m, ph)
    for (what, f), p in zip(cases, users[2:]):
        pp = rdr.ptr(p["dtb"], p["peb"] + m.off("_PEB", "ProcessParameters"))
        for fld in ("ImagePathName", "CommandLine"):
            va = pp + m.off(T, fld)
            b = rdr.rd(p["dtb"], va, 2 * m.ps)
            ln, mx = struct.unpack_from("<HH", b)
            buf = int.from_bytes(b[m.ps:], "little")
            ln, mx, buf = f(ln, mx, buf)
            patch(ph, p["dtb"], va, u16(ln) + u16(mx) + (bytes(4) if m.ps == 8 else b"") + ptr(buf))
        victims.append(dict(pid=p["pid"], case=what))
    # and one DLL's BaseDllName with Length 0xffff
    dp = users[1]
    dl = t["dlls"][str(dp["pid"])][1]
    patch(ph, dp["dtb"], dl["addr"] + m.off("_LDR_DATA_TABLE_ENTRY", "BaseDllName"), u16(0xffff) + u16(0x20))
    emit("bad-unicode-strings", ph,
         {"ps": {"status": "ok", "pids_all": True},
          "dlls": {"pid": dp["pid"], "status": "any"}},
         "ImagePathName/CommandLine of %s lie about their lengths or buffers" % victims,
         {"victims": victims})
    # 4. an LDR list cycle
    ph = m.phys.clone()
    vp = users[-1]
    dl = t["dlls"][str(vp["pid"])]
    patch(ph, vp["dtb"], dl[2]["addr"] + m.off("_LDR_DATA_TABLE_ENTRY", "InLoadOrderLinks"), ptr(dl[1]["addr"]))
    emit("ldr-cycle", ph,
         {"ps": {"status": "ok", "pids_all": True},
          "dlls": {"pid": vp["pid"], "status": "any", "names_prefix": [d["name"] for d in dl[:3]],
                   "max_count": 3}},
         "the third DLL of pid %d links back to the second" % vp["pid"])
    # 5. PE e_lfanew far out of range
    ph = m.phys.clone()
    patch(ph, kd, t["kernel_base"] + 0x3c, u32(0x7ffffff0))
    some = sorted(t["exports"])[len(t["exports"]) // 2]
    emit("pe-lfanew", ph,
         {"sym": {"name": some, "status": "fail"}, "info": {"status": "any"}, "ps": {"status": "any"}},
         "ntoskrnl's e_lfanew is 0x7ffffff0", {"sym_name": some})
    # 6. export directory: NumberOfNames 0x7fffffff, RVAs beyond SizeOfImage
    ph = m.phys.clone()
    erva = m.nt_pe.ddir(0)[0]
    patch(ph, kd, t["kernel_base"] + erva + 0x14,
          u32(0x7fffffff) + u32(0x7fffffff) + u32(0x7ffff000) + u32(0x7fffe000) + u32(0x7fffd000))
    emit("export-dir-hostile", ph,
         {"sym": {"name": some, "status": "fail"}, "info": {"status": "any"}, "ps": {"status": "any"}},
         "NumberOfFunctions/NumberOfNames 0x7fffffff, tables past SizeOfImage", {"sym_name": some})
    # 7. KDBG with a bad Size
    ph = m.phys.clone()
    patch(ph, kd, t["kdbg_va"] + 0x14, u32(0xfffffff0))
    # Rejected; the root comes from the start block (x64) or the self-map
    # (x86), ntoskrnl from its exports, the processes from PsInitialSystemProcess.
    emit("kdbg-bad-size", ph, {"info": {"status": "ok"}, "ps": {"status": "ok", "pids_all": True}},
         "KDBG Size is 0xfffffff0")
    # 8. self-referencing page tables: the pool's top-level entry points at
    # the root itself, so EPROCESS reads land in page tables
    ph = m.phys.clone()
    pg = Paging(m.mode, ph, None)
    va = procs[1]["eprocess"]
    if m.mode == "ia32e":
        epa = kd + ((va >> 39) & 0x1ff) * 8
        ph.cow(epa >> 12)
        pg.wr(epa, kd | P | RW)
    elif m.mode == "legacy":
        epa = kd + (va >> 22) * 4
        ph.cow(epa >> 12)
        pg.wr(epa, kd | P | RW)
    else:
        pd = pg.rd(kd + 8 * (va >> 30)) & pg.addr_mask
        epa = pd + ((va >> 21) & 0x1ff) * 8
        ph.cow(epa >> 12)
        pg.wr(epa, pd | P | RW)
    emit("pt-self-reference", ph, {"info": {"status": "any"}, "ps": {"status": "any"}},
         "the table entry over the pool points back at its own table")
    # 9. broken thread lists: in one process an ETHREAD's Flink into unmapped
    # memory, in another the sixth thread links back to the third. Every
    # process is listed, and the threads before each break, each once.
    ph = m.phys.clone()
    tle = m.off("_ETHREAD", "ThreadListEntry")
    cut, loop = [p for p in procs if p["threads"] >= 8][2:4]
    patch(ph, kd, cut["ethreads"][3] + tle, ptr(bad))
    patch(ph, kd, loop["ethreads"][5] + tle, ptr(loop["ethreads"][2] + tle))
    keep = {cut["pid"]: 4, loop["pid"]: 6}
    entries = []
    for p in procs:
        entries.append([p["pid"], p["pid"]])
        entries += [[tid, p["pid"]] for tid in p["tids"][:keep.get(p["pid"], len(p["tids"]))]]
    emit("broken-thread-list", ph,
         {"ps": {"status": "ok", "pids_all": True},
          "ps-threads": {"status": "ok", "entries": entries}},
         "pid %d: the 4th thread's Flink is 0x%x, not mapped; pid %d: the 6th thread links back to the 3rd" %
         (cut["pid"], bad, loop["pid"]), {"thread_victims": {str(k): v for k, v in keep.items()}})
    return made


def truncated_copies(m, out, out_root):
    """Cut copies of mem.dmp and mem.elf: inside the header, inside the data."""
    made = []
    for src, cuts in (("mem.dmp", (("header", 0x800), ("data", None))),
                      ("mem.elf", (("notes", 0x200), ("data", None)))):
        path = os.path.join(out, src)
        size = os.path.getsize(path)
        for what, cut in cuts:
            cut = cut if cut is not None else size // 2 + 0x1234
            name = "truncated-%s-%s" % (src.split(".")[1], what)
            d = os.path.join(out_root, name)
            os.makedirs(d, exist_ok=True)
            dst = os.path.join(d, src)
            with open(path, "rb") as fi, open(dst, "wb") as fo:
                left = cut
                while left:
                    b = fi.read(min(left, 1 << 20))
                    if not b:
                        break
                    if any(b):
                        fo.write(b)
                    else:
                        fo.seek(len(b), 1)
                    left -= len(b)
                fo.truncate(cut)
            exp = {"info": {"status": "fail" if what in ("header", "notes") else "any"},
                   "ps": {"status": "fail" if what in ("header", "notes") else "any"}}
            tr = {"variant": name, "synthetic": True, "base": m.name, "file": src, "cut_at": cut,
                  "original_size": size, "expect": exp, "note": "%s cut at 0x%x of 0x%x" % (src, cut, size)}
            with open(os.path.join(d, "truth.json"), "w") as f:
                json.dump(tr, f, indent=1)
            made.append(name)
    return made


# --------------------------------------------------------------------------

def build_variant(name, seed, out_root, do_check, log):
    t0 = time.time()
    arch = VARIANTS[name]["arch"]
    m = Machine(name, seed, wine_dir(arch))
    m.build()
    if do_check:
        self_check(m)
    out = os.path.join(out_root, name)
    os.makedirs(out, exist_ok=True)
    write_raw(m, os.path.join(out, "mem.raw"))
    write_elf(m, os.path.join(out, "mem.elf"))
    files = {"raw": "mem.raw", "elf": "mem.elf"}
    places = None
    if not m.v.get("nostub"):  # a dump header would name the root
        places = write_dmp(m, os.path.join(out, "mem.dmp"))
        files["dmp"] = "mem.dmp"
    bitmap = None
    if m.v["dump_sig"]:
        bitmap = write_bitmap_dmp(m, os.path.join(out, "mem-bitmap.dmp"))
        files["bitmap"] = "mem-bitmap.dmp"
    write_isf(m, os.path.join(out, "profile.json"))
    write_libvmi_conf(m, os.path.join(out, "libvmi.conf"))
    files.update(profile="profile.json", libvmi="libvmi.conf")
    m.truth["files"] = files
    with open(os.path.join(out, "truth.json"), "w") as f:
        json.dump(m.truth, f, indent=1, ensure_ascii=False)
    if do_check:
        read_back(m, out, places, bitmap)
    log("%-18s %4d pages used, %2d processes, %2d modules, %4d exports, %.1fs" %
        (name, len(present_pages(m)), len(m.procs), len(m.modules), len(m.truth["exports"]), time.time() - t0))
    return m, out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "windows"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", action="append", choices=sorted(VARIANTS) + ["hostile"],
                    help="build only this variant (repeatable); 'hostile' for the hostile set")
    ap.add_argument("--no-check", action="store_true", help="skip the self-check (faster)")
    a = ap.parse_args(argv)
    log = lambda s: print("[synth] " + s, flush=True)
    t0 = time.time()
    os.makedirs(a.out, exist_ok=True)
    only = a.only or list(VARIANTS) + ["hostile"]
    order = ["win10-x64"] + [v for v in VARIANTS if v != "win10-x64"]
    built = {}
    for name in order:
        if name in only or ("hostile" in only and name in ("win10-x64", "win7sp1-x86-pae") and name not in built):
            built[name] = build_variant(name, a.seed, a.out, not a.no_check, log)
            if name == "win10-x64":
                with open(os.path.join(a.out, "READY"), "w") as f:
                    f.write("%s seed %d: %s\n" % (time.strftime("%Y-%m-%d %H:%M:%S"), a.seed,
                                                  ", ".join(sorted(VARIANTS))))
    if "hostile" in only:
        hroot = os.path.join(a.out, "hostile")
        made = []
        for name in ("win10-x64", "win7sp1-x86-pae"):
            m, out = built[name]
            sub = hostile(m, os.path.join(hroot, "x86" if m.ps == 4 else "x64"), log)
            made += [("x86/" if m.ps == 4 else "x64/") + s for s in sub]
        m, out = built["win10-x64"]
        made += ["x64/" + s for s in truncated_copies(m, out, os.path.join(hroot, "x64"))]
        log("hostile: %s" % ", ".join(made))
    log("done in %.1fs -> %s" % (time.time() - t0, a.out))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SynthError as e:
        print("synth: " + str(e), file=sys.stderr)
        sys.exit(1)
