/* vmi_xen.h - the Xen backend of vmi.h: HVM and PVH domains.        v0.1.0
   MIT licensed (see the end of vmi.h).

   Opens a running Xen domain from dom0 (as root) through Xen's tool
   libraries and fills a vmi_backend for vmi_open. Nothing runs inside the
   guest.

   Libraries: libxenctrl (domain info, pause, vCPU context, monitor,
   mem_access), libxenforeignmemory (guest frames), libxenevtchn (the
   vm_event channel), libxenstore (domain names, the memory layout; optional).
       default        loaded at vmi_xen_open with dlopen, by the sonames of
                      Debian 12's Xen 4.17: libxenctrl.so.4.17,
                      libxenforeignmemory.so.1, libxenevtchn.so.1,
                      libxenstore.so.4 (VMI_XEN_LIBXENCTRL, ..._FOREIGNMEMORY,
                      ..._EVTCHN, ..._STORE override them). Builds anywhere
                      with no Xen installed (link with -ldl before glibc
                      2.34); where Xen is missing the open fails with
                      dlopen's message.
       VMI_XEN_LINK   linked instead: -lxenctrl -lxenforeignmemory
                      -lxenevtchn -lxenstore (statically, also -lxencall
                      -lxengnttab -lxendevicemodel -lxentoollog -lxentoolcore
                      -lpthread, in a --start-group). A static executable
                      needs this: a library it dlopens brings a second C
                      library, whose malloc and errno are not its own.
       VMI_XEN_NO_DLOPEN  neither: vmi_xen_open says so (a static build
                      made where Xen's libraries are not installed).
   No Xen header is included either way: Xen 4.17's refuse strict ISO C
   (hvm/save.h: #error "Anonymous structs/unions are a GNU extension") and
   would clash with an embedder's own. The few ABI pieces used (domctl
   getdomaininfo v0x15, the HVM save descriptor and CPU record, vm_event v7
   and its ring) are declared here, and tests/xen/abi_check.c asserts their
   sizes and every field's offset against the real headers. Linked functions
   are declared under vmi__ names bound to Xen's symbols (asm labels), so an
   embedder may include xenctrl.h as well. The ABI is Xen 4.17's: another
   Xen needs its sonames and a passing abi_check against its headers.
   x86-64 hosts (dom0) only; GCC or Clang.

   Domains: desc.domain is a domain id ("7") or a name, looked up in
   xenstore (/local/domain/ID/name). HVM and PVH guests; PV guests are
   refused (their page tables hold machine frames: reading them needs the
   guest's p2m, which this backend does not walk), as is a dying domain.

   Memory. Xen keeps no guest-physical map of an HVM guest (hvmloader makes
   its E820), so the ranges are libxl's layout of the RAM size: RAM =
   xenstore memory/static-max - memory/videoram (without xenstore: the
   domain's max_pages), below 4 GiB up to 4 GiB - platform/mmio_hole_size
   (libxl's default: 0xF0000000), the rest from 4 GiB:
       [0, 0xA0000) [0xC0000, low_end) [4 GiB, 4 GiB + RAM - low_end)
   HVM guests with emulated VGA lack 0xA0000-0xBFFFF (Xen's domain builder
   leaves it unpopulated); PVH guests (no emulated VGA) are given it, and
   should Xen not populate it, its frames read as VMI_ERR_UNMAPPED. The map is clipped to the
   highest frame Xen reports (xc_domain_maximum_gpfn). Ranges carry no host
   pointer: read_pa and write_pa go through a cache of foreign mappings,
   chunks of 64 frames each mapped by one xenforeignmemory_map call, at most
   desc.map_cache_chunks of them (default 64: 16 MiB), the least recently
   used unmapped (xenforeignmemory_unmap) to make room. A chunk older than
   desc.map_ttl_ms (default 1000) is mapped again: a frame the guest gave
   back (ballooning) would leave the old mapping on the old page. Frames Xen
   refuses within a chunk (its err[]) fail with VMI_ERR_UNMAPPED, naming
   the frame. Writes need desc.writable (mappings are then read-write).

   Registers: the HVM save record CPU (hvm_hw_cpu) of each vCPU, through
   xc_domain_hvm_getcontext_partial (HVM and PVH alike):
       VMI_REGS_GPR      rax..r15, rip, rflags
       VMI_REGS_SEGMENT  cs ds es fs gs ss selectors, fs_base, gs_base,
                         kernel_gs_base (shadow_gs), gdtr and idtr
       VMI_REGS_CONTROL  cr0 cr2 cr3 cr4 efer (cr8 lives in the local
                         APIC's TPR, not in the record: left 0)
   set_regs pauses the domain, reads its whole HVM context, changes that
   vCPU's record for the groups in regs->valid and writes the context back
   (xc_domain_hvm_setcontext). vCPUs: max_vcpu_id + 1. backend.arch: x86_64
   when vCPU 0 has EFER.LMA at open, else x86. pause/resume:
   xc_domain_pause/xc_domain_unpause.

   Events, through vm_event (xc_monitor_enable at the first registration:
   Xen allows one monitor per domain, so it fails while LibVMI, xen-access
   or another instance monitors the domain):
       REG_WRITE CR0/3/4  xc_monitor_write_ctrlreg (synchronous, on change)
       REG_WRITE MSR      xc_monitor_mov_to_msr (on change)
       BREAKPOINT         an int3 byte written at the guest-physical address
                          the core translated addr to (the original byte
                          kept); xc_monitor_software_breakpoint
       SINGLESTEP         xc_domain_debug_control: the vCPU's monitor trap
       MEM_ACCESS         xc_set_mem_access on the frames: the watched access
                          taken away (a watched read takes write away too:
                          EPT has no write-only pages); each frame's former
                          access (xc_get_mem_access) restored on clear
       WATCH              xc_set_mem_access on the frame the core translated
                          addr to at registration (VMI_ERR_NOT_PRESENT when
                          it has none; its read or write taken away as for
                          MEM_ACCESS), single-steps (below)
   Frames are shared: a frame's rights are its former access less what
   every MEM_ACCESS and WATCH event covering it watches, recomputed when one
   is set or cleared, the former access restored when the last goes.
   A request on the ring shared with Xen (signalled on the event channel
   bound with libxenevtchn) stops its vCPU; delivering it also pauses the
   domain, so that every vCPU stands still during the callback as with the
   QEMU backend. resume() writes the response (VM_EVENT_FLAG_VCPU_PAUSED),
   signals Xen and unpauses:
       REG_WRITE    with VMI_EVENT_DENY, VM_EVENT_FLAG_DENY: the register
                    keeps its value
       MEM_ACCESS   VM_EVENT_FLAG_EMULATE: Xen emulates the instruction, so
                    it completes and the frame stays watched; with DENY also
                    EMULATE_NOWRITE (completes without its write)
       BREAKPOINT   still armed: the original byte is put back and the vCPU
                    single-stepped (TOGGLE_SINGLESTEP); at that step's event
                    the int3 is written again and the step ends, unseen
                    unless the vCPU is being single-stepped
   Watchpoints are reported after the access, as the API (and the QEMU
   backend) has them. Xen reports the access on the frame before it
   happens, with the access's first byte (gla, or gfn and offset) but not
   its width. When that byte lies in [addr, addr+len) (compared by linear
   address when Xen gives one - GLA_VALID - else by guest-physical
   address, so that without one an access through another mapping of the
   frame counts too; a fault in the CPU's own page walk never does) and
   the kind is watched, the vCPU runs the instruction again natively with
   the frame's restriction lifted, single-stepped (not EMULATE: Xen
   emulates at the vCPU's next entry, after any callback, and says nothing
   when done); at that step's event the frame is restricted again and the
   callback runs: hit->addr is the
   watchpoint's addr (as the QEMU backend's), hit->regs the vCPU's after
   the instruction (rip at the next one), hit->access the access made and
   hit->va its linear address (0 without one). Any other access to the
   frame completes unseen (EMULATE: no callback, not counted). Limits:
   an access that starts before addr and reaches into it (a wider or
   unaligned store, memset or a struct copy over the variable) is not
   reported, Xen giving no width; while the frame is lifted other vCPUs'
   accesses to it go unseen; one watched access per step (an instruction
   touching a second watched frame has that one emulated, unreported); the
   frame is the one addr mapped to at registration: should the kernel
   remap addr, the watchpoint watches the old frame (clear and register it
   again). An access a MEM_ACCESS event and a watchpoint both claim is
   delivered to the MEM_ACCESS callback first (before it happens), then,
   unless DENY suppressed it, stepped through for the watchpoint's. On a
   vCPU being single-stepped for a SINGLESTEP event, the step a
   watchpoint is reported at is then delivered as that event's too.
   Without a callback: an int3 that is not ours goes back to the guest
   (xc_hvm_inject_trap, #BP); an access the trap caught but no event
   watches is emulated. Other vCPUs run during the step over a breakpoint:
   one passing that address then is not reported. The core drops its
   caches at every event, a CR3 write included (vmi.h >>events).

   close(), with the domain paused, clears every event (int3 bytes, access
   rights, single-steps, monitors), answers the request it holds and those
   left on the ring, disables the monitor, unbinds the channel, unmaps the
   ring page and every mapping, unpauses what it paused and closes the
   libraries.

   Failure: messages carry what the library logged (its logger is ours)
   and errno. ESRCH from Xen means the domain is gone: that call and every
   later one fail with VMI_ERR_BACKEND, "domain N is gone"; a listen finds
   out at its timeout. Hypervisor data is untrusted: ring indexes, vCPU ids,
   frame numbers, save-record lengths and context sizes are checked.

   Do this:
       #define VMI_IMPLEMENTATION
       #include "vmi.h"
       #include "vmi_xen.h"
   The implementation uses vmi.h's, so it comes with VMI_IMPLEMENTATION,
   in that file, after vmi.h. Linux only.

   Use:
       vmi_xen_desc xdesc;
       vmi_desc desc;
       memset(&xdesc, 0, sizeof xdesc);
       memset(&desc, 0, sizeof desc);
       xdesc.domain = "debian12";
       if (vmi_xen_open(&xdesc, &desc.backend, err, sizeof err) != VMI_OK) ...
       if (vmi_open(&desc, &vmi) != VMI_OK) ...   paging from vCPU 0

   Thread safety: as for vmi.h, one instance (and so its backend) per thread
   at a time; distinct backends share nothing.
*/

#ifndef VMI_XEN_H_INCLUDED
#define VMI_XEN_H_INCLUDED

#ifndef VMI_H_INCLUDED
#error "include vmi.h before vmi_xen.h"
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Options for vmi_xen_open. Zero-initialize; zero means the default. */
typedef struct vmi_xen_desc {
    const char *domain;        /* domain id or name (required) */
    int writable;              /* map guest frames read-write */
    uint32_t map_cache_chunks; /* mappings of 64 frames kept; default 64 */
    uint32_t map_ttl_ms;       /* a mapping is remade after this; default 1000 */
    vmi_allocator allocator;   /* zero: malloc/free */
} vmi_xen_desc;

/* Opens the domain and fills *out for vmi_open (which then owns it: its
   close() releases everything). On failure *out is untouched, nothing is
   leaked, and err (may be NULL) gets one line. */
VMI_API vmi_status vmi_xen_open(const vmi_xen_desc *desc, vmi_backend *out, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* VMI_XEN_H_INCLUDED */

/* ======================================================================== */
#if defined(VMI_XEN_IMPLEMENTATION) || defined(VMI_IMPLEMENTATION)
#ifndef VMI_XEN_IMPL_INCLUDED
#define VMI_XEN_IMPL_INCLUDED

#ifndef VMI_IMPL_INCLUDED
#error "vmi_xen.h's implementation needs vmi.h's: define VMI_IMPLEMENTATION and include vmi.h first"
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && defined(__linux__)
#define VMI__XEN_HOST 1
#endif

#ifdef VMI__XEN_HOST
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#if !defined(VMI_XEN_LINK) && !defined(VMI_XEN_NO_DLOPEN)
#include <dlfcn.h>
#endif

#ifndef VMI_XEN_LIBXENCTRL
#define VMI_XEN_LIBXENCTRL "libxenctrl.so.4.17"
#endif
#ifndef VMI_XEN_LIBXENFOREIGNMEMORY
#define VMI_XEN_LIBXENFOREIGNMEMORY "libxenforeignmemory.so.1"
#endif
#ifndef VMI_XEN_LIBXENEVTCHN
#define VMI_XEN_LIBXENEVTCHN "libxenevtchn.so.1"
#endif
#ifndef VMI_XEN_LIBXENSTORE
#define VMI_XEN_LIBXENSTORE "libxenstore.so.4"
#endif

#define VMI__XEN_ERR 512
#define VMI__XEN_CHUNK 64u              /* frames per mapping */
#define VMI__XEN_MAX_CHUNKS 4096u       /* cap on desc.map_cache_chunks */
#define VMI__XEN_MAX_VCPUS 4096u
#define VMI__XEN_MAX_WATCH (1u << 20)   /* frames one MEM_ACCESS event may cover */
#define VMI__XEN_MAX_CONTEXT (16u << 20) /* a whole HVM context */
#define VMI__XEN_NONE (~(uint64_t)0)
#define VMI__XEN_4G 0x100000000ull

/* ---- Xen 4.17's ABI (checked by tests/xen/abi_check.c) --------------------- */

/* xen_domctl_getdomaininfo (domctl interface 0x15), as xc_domaininfo_t. */
typedef struct vmi__xen_dominfo {
    uint16_t domain, pad1;
    uint32_t flags;
    uint64_t tot_pages, max_pages, outstanding_pages, shr_pages, paged_pages;
    uint64_t shared_info_frame, cpu_time;
    uint32_t nr_online_vcpus, max_vcpu_id, ssidref;
    uint8_t handle[16];
    uint32_t cpupool;
    uint8_t gpaddr_bits, pad2[7];
    uint32_t emulation_flags, misc_flags; /* struct xen_arch_domainconfig */
} vmi__xen_dominfo;
#define VMI__XEN_DOMINF_DYING 0x1u
#define VMI__XEN_DOMINF_HVM 0x2u
#define VMI__XEN_EMU_VGA 0x40u

/* struct hvm_save_descriptor, and struct hvm_hw_cpu (HVM_SAVE_CODE(CPU)). */
typedef struct vmi__xen_save_desc {
    uint16_t typecode, instance;
    uint32_t length;
} vmi__xen_save_desc;
#define VMI__XEN_SAVE_END 0
#define VMI__XEN_SAVE_CPU 2

typedef struct vmi__xen_cpu {
    uint8_t fpu_regs[512];
    uint64_t rax, rbx, rcx, rdx, rbp, rsi, rdi, rsp, r8, r9, r10, r11, r12, r13, r14, r15;
    uint64_t rip, rflags, cr0, cr2, cr3, cr4, dr0, dr1, dr2, dr3, dr6, dr7;
    uint32_t cs_sel, ds_sel, es_sel, fs_sel, gs_sel, ss_sel, tr_sel, ldtr_sel;
    uint32_t cs_limit, ds_limit, es_limit, fs_limit, gs_limit, ss_limit, tr_limit, ldtr_limit;
    uint32_t idtr_limit, gdtr_limit;
    uint64_t cs_base, ds_base, es_base, fs_base, gs_base, ss_base, tr_base, ldtr_base;
    uint64_t idtr_base, gdtr_base;
    uint32_t cs_arbytes, ds_arbytes, es_arbytes, fs_arbytes, gs_arbytes, ss_arbytes, tr_arbytes, ldtr_arbytes;
    uint64_t sysenter_cs, sysenter_esp, sysenter_eip, shadow_gs;
    uint64_t msr_flags, msr_lstar, msr_star, msr_cstar, msr_syscall_mask, msr_efer, msr_tsc_aux, tsc;
    uint32_t pending_event, error_code, flags, pad0;
} vmi__xen_cpu;

/* struct vm_event_regs_x86 */
typedef struct vmi__xen_ev_regs {
    uint64_t rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8, r9, r10, r11, r12, r13, r14, r15;
    uint64_t rflags, dr6, dr7, rip, cr0, cr2, cr3, cr4, sysenter_cs, sysenter_esp, sysenter_eip;
    uint64_t msr_efer, msr_star, msr_lstar, gdtr_base, npt_base, vmtrace_pos;
    uint32_t cs_base, ss_base, ds_base, es_base;
    uint64_t fs_base, gs_base;
    uint32_t cs, ss, ds, es, fs, gs; /* struct vm_event_x86_selector_reg: limit:20, ar:12 */
    uint64_t shadow_gs;
    uint16_t gdtr_limit, cs_sel, ss_sel, ds_sel, es_sel, fs_sel, gs_sel, pad;
} vmi__xen_ev_regs;

/* vm_event_request_t and vm_event_response_t (VM_EVENT_INTERFACE_VERSION 7). */
typedef struct vmi__xen_vm_event {
    uint32_t version, flags, reason, vcpu_id;
    uint16_t altp2m_idx, pad[3];
    union {
        struct { uint64_t gfn, offset, gla; uint32_t flags, pad; } mem_access;
        struct { uint32_t index, pad; uint64_t new_value, old_value; } write_ctrlreg;
        struct { uint64_t msr, new_value, old_value; } mov_to_msr;
        struct { uint64_t gfn; } singlestep;
        struct { uint64_t gfn, pending_dbg; uint32_t insn_length; uint8_t type, pad[3]; } software_breakpoint;
        uint64_t raw[4];
    } u;
    union {
        vmi__xen_ev_regs x86;
        uint8_t raw[sizeof(vmi__xen_ev_regs)];
    } data;
} vmi__xen_vm_event;

#define VMI__XEN_VM_EVENT_VERSION 7u
#define VMI__XEN_FLAG_VCPU_PAUSED 0x1u
#define VMI__XEN_FLAG_EMULATE 0x4u
#define VMI__XEN_FLAG_EMULATE_NOWRITE 0x8u
#define VMI__XEN_FLAG_TOGGLE_SINGLESTEP 0x10u
#define VMI__XEN_FLAG_DENY 0x40u
#define VMI__XEN_REASON_MEM_ACCESS 1u
#define VMI__XEN_REASON_WRITE_CTRLREG 4u
#define VMI__XEN_REASON_MOV_TO_MSR 5u
#define VMI__XEN_REASON_SOFTWARE_BREAKPOINT 6u
#define VMI__XEN_REASON_SINGLESTEP 7u
#define VMI__XEN_MEM_ACCESS_RWX 0x7u     /* MEM_ACCESS_R|W|X: VMI_WATCH_* bit for bit */
#define VMI__XEN_MEM_ACCESS_GLA_VALID 0x8u
#define VMI__XEN_MEM_ACCESS_FAULT_IN_GPT 0x20u /* the CPU's page walk, not the instruction, touched the frame */
#define VMI__XEN_DEBUG_STEP_OFF 0u       /* XEN_DOMCTL_DEBUG_OP_SINGLE_STEP_* */
#define VMI__XEN_DEBUG_STEP_ON 1u
#define VMI__XEN_TRAP_SW_EXCEPTION 6u    /* X86_EVENTTYPE_SW_EXCEPTION */

/* The shared ring's header (io/ring.h's DEFINE_RING_TYPES); entries follow. */
typedef struct vmi__xen_sring {
    uint32_t req_prod, req_event, rsp_prod, rsp_event;
    uint8_t pvt[4], pad[44];
} vmi__xen_sring;
#define VMI__XEN_RING_PAGE 4096u

/* xenmem_access_t: n, r, w, rw, x, rx, wx, rwx are 0..7, VMI_WATCH_* bit
   for bit. Passed as an int (an enum's ABI on x86-64). */

/* struct xentoollog_logger: ours, so the libraries' messages end in our errors. */
struct xentoollog_logger;
typedef struct vmi__xen_logger {
    void (*vmessage)(struct vmi__xen_logger *lg, int level, int errnoval, const char *context,
                     const char *format, va_list al);
    void (*progress)(struct vmi__xen_logger *lg, const char *context, const char *doing_what, int percent,
                     unsigned long done, unsigned long total);
    void (*destroy)(struct vmi__xen_logger *lg);
    char *buf; /* the owner's, VMI__XEN_ERR bytes */
} vmi__xen_logger;

/* ---- the functions used: library, return type, name, parameters ----------- */
struct xc_interface_core;
struct xenforeignmemory_handle;
struct xenevtchn_handle;
struct xs_handle;
typedef struct xc_interface_core vmi__xen_xc;
typedef struct xenforeignmemory_handle vmi__xen_fmem;
typedef struct xenevtchn_handle vmi__xen_evtchn;
typedef struct xentoollog_logger vmi__xen_xtl;

#define VMI__XEN_FUNCS(X)                                                                              \
    X(0, vmi__xen_xc *, xc_interface_open, (vmi__xen_xtl *, vmi__xen_xtl *, unsigned))                  \
    X(0, int, xc_interface_close, (vmi__xen_xc *))                                                     \
    X(0, int, xc_domain_getinfolist, (vmi__xen_xc *, uint32_t, unsigned, vmi__xen_dominfo *))          \
    X(0, int, xc_domain_maximum_gpfn, (vmi__xen_xc *, uint32_t, unsigned long *))                      \
    X(0, int, xc_domain_pause, (vmi__xen_xc *, uint32_t))                                              \
    X(0, int, xc_domain_unpause, (vmi__xen_xc *, uint32_t))                                            \
    X(0, int, xc_domain_hvm_getcontext, (vmi__xen_xc *, uint32_t, uint8_t *, uint32_t))                 \
    X(0, int, xc_domain_hvm_getcontext_partial, (vmi__xen_xc *, uint32_t, uint16_t, uint16_t, void *, uint32_t)) \
    X(0, int, xc_domain_hvm_setcontext, (vmi__xen_xc *, uint32_t, uint8_t *, uint32_t))                 \
    X(0, int, xc_domain_debug_control, (vmi__xen_xc *, uint32_t, uint32_t, uint32_t))                  \
    X(0, void *, xc_monitor_enable, (vmi__xen_xc *, uint32_t, uint32_t *))                             \
    X(0, int, xc_monitor_disable, (vmi__xen_xc *, uint32_t))                                           \
    X(0, int, xc_monitor_write_ctrlreg, (vmi__xen_xc *, uint32_t, uint16_t, bool, bool, uint64_t, bool)) \
    X(0, int, xc_monitor_mov_to_msr, (vmi__xen_xc *, uint32_t, uint32_t, bool, bool))                  \
    X(0, int, xc_monitor_singlestep, (vmi__xen_xc *, uint32_t, bool))                                  \
    X(0, int, xc_monitor_software_breakpoint, (vmi__xen_xc *, uint32_t, bool))                         \
    X(0, int, xc_set_mem_access, (vmi__xen_xc *, uint32_t, int, uint64_t, uint32_t))                   \
    X(0, int, xc_get_mem_access, (vmi__xen_xc *, uint32_t, uint64_t, int *))                           \
    X(0, int, xc_hvm_inject_trap, (vmi__xen_xc *, uint32_t, int, uint8_t, uint8_t, uint32_t, uint8_t, uint64_t)) \
    X(1, vmi__xen_fmem *, xenforeignmemory_open, (vmi__xen_xtl *, unsigned))                            \
    X(1, int, xenforeignmemory_close, (vmi__xen_fmem *))                                               \
    X(1, void *, xenforeignmemory_map, (vmi__xen_fmem *, uint32_t, int, size_t, const unsigned long *, int *)) \
    X(1, int, xenforeignmemory_unmap, (vmi__xen_fmem *, void *, size_t))                               \
    X(2, vmi__xen_evtchn *, xenevtchn_open, (vmi__xen_xtl *, unsigned))                                 \
    X(2, int, xenevtchn_close, (vmi__xen_evtchn *))                                                    \
    X(2, int, xenevtchn_fd, (vmi__xen_evtchn *))                                                       \
    X(2, int, xenevtchn_bind_interdomain, (vmi__xen_evtchn *, uint32_t, uint32_t))                     \
    X(2, int, xenevtchn_unbind, (vmi__xen_evtchn *, uint32_t))                                         \
    X(2, int, xenevtchn_pending, (vmi__xen_evtchn *))                                                  \
    X(2, int, xenevtchn_unmask, (vmi__xen_evtchn *, uint32_t))                                         \
    X(2, int, xenevtchn_notify, (vmi__xen_evtchn *, uint32_t))                                         \
    X(3, struct xs_handle *, xs_open, (unsigned long))                                                 \
    X(3, void, xs_close, (struct xs_handle *))                                                         \
    X(3, char **, xs_directory, (struct xs_handle *, uint32_t, const char *, unsigned *))              \
    X(3, void *, xs_read, (struct xs_handle *, uint32_t, const char *, unsigned *))

#define VMI__XEN_NLIBS 4

typedef struct vmi__xen_api {
#define VMI__XEN_FIELD(lib, ret, name, params) ret(*name) params;
    VMI__XEN_FUNCS(VMI__XEN_FIELD)
#undef VMI__XEN_FIELD
} vmi__xen_api;

#ifdef VMI_XEN_LINK
#ifdef __cplusplus
extern "C" {
#endif
#define VMI__XEN_DECL(lib, ret, name, params) extern ret vmi__xen_sym_##name params __asm__(#name);
VMI__XEN_FUNCS(VMI__XEN_DECL)
#undef VMI__XEN_DECL
#ifdef __cplusplus
}
#endif
#endif

/* ---- state ------------------------------------------------------------------ */

/* One mapping of VMI__XEN_CHUNK frames from `first`. */
typedef struct vmi__xen_chunk {
    uint64_t first;     /* first frame, or VMI__XEN_NONE when the slot is free */
    uint8_t *map;
    uint64_t refused;   /* frames Xen would not map, one bit each */
    uint64_t used;      /* LRU clock at the last use */
    uint64_t mapped_ms;
} vmi__xen_chunk;

/* What an armed event needs kept: a breakpoint's byte, a watch's rights. */
typedef struct vmi__xen_arm {
    vmi_event *ev;
    uint64_t pa;            /* breakpoints, watchpoints */
    uint8_t orig;           /* breakpoints: the byte under the int3 */
    uint64_t gfn, nframes;  /* MEM_ACCESS; WATCH: pa's frame, 1 */
    uint8_t *orig_access;   /* MEM_ACCESS, WATCH: per frame, the access before any event */
    struct vmi__xen_arm *next;
} vmi__xen_arm;

/* A vCPU running the instruction a watchpoint caught, its frame's
   restriction lifted, single-stepped: the watchpoint is reported at the
   step's end, after the access. */
typedef struct vmi__xen_wstep {
    uint64_t gfn;    /* the frame lifted; VMI__XEN_NONE when none */
    vmi_event *ev;
    uint64_t va;     /* the access's linear address, 0 when Xen gave none */
    uint32_t access; /* VMI_WATCH_* made */
} vmi__xen_wstep;

typedef struct vmi__xen {
    vmi_allocator alloc;
    vmi__xen_api api;
    void *lib[VMI__XEN_NLIBS];
    vmi__xen_logger logger;
    char err[VMI__XEN_ERR], liberr[VMI__XEN_ERR];
    vmi__xen_xc *xch;
    vmi__xen_fmem *fmem;
    uint32_t domid, nvcpus;
    int writable, dead, hvm_vga;
    vmi_arch arch;
    uint32_t pauses;          /* xc_domain_pause calls not yet undone */
    /* memory */
    vmi_mem_range ranges[3];
    size_t nranges;
    vmi__xen_chunk *chunks;
    uint32_t nchunks, last;
    uint64_t clock, ttl_ms;
    /* events */
    vmi__xen_arm *arms;
    vmi__xen_sring *ring;
    vmi__xen_evtchn *xce;
    int evfd;
    uint32_t remote_port, local_port, req_cons, rsp_prod_pvt, ring_size;
    int port_bound, mon_step, mon_bps;
    int ring_broken;          /* the ring made no sense: no more requests taken or answered */
    uint8_t *step_user;       /* per vCPU: single-stepped for a SINGLESTEP event */
    uint64_t *step_over;      /* per vCPU: stepping over the int3 at this pa */
    vmi__xen_wstep *wstep;    /* per vCPU: stepping through an access a watchpoint caught */
    uint32_t lifted;          /* how many wstep are under way */
    vmi_event *then_watch;    /* a watchpoint the MEM_ACCESS access being delivered also hit */
    int hit_watch;            /* the delivered hit ends a wstep */
    int again;                /* x->req (a step) is a SINGLESTEP event's too: delivered next */
    vmi__xen_vm_event req;    /* the request delivered, answered by resume() */
    int delivered;
    uint32_t rsp_flags;
    vmi_event *hit_ev;
} vmi__xen;

/* ---- errors, allocation, libraries ------------------------------------------ */

static vmi_status vmi__xen_fail(vmi__xen *x, vmi_status st, const char *fmt, ...) VMI__PRINTF(3, 4);
static vmi_status vmi__xen_fail(vmi__xen *x, vmi_status st, const char *fmt, ...) {
    char msg[VMI__XEN_ERR]; /* the arguments may quote x->err */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    memcpy(x->err, msg, sizeof msg);
    return st;
}

/* A Xen call failed with errno e: ESRCH means the domain is gone for good. */
static vmi_status vmi__xen_oserr(vmi__xen *x, int e, const char *what) {
    if (e == ESRCH) x->dead = 1;
    if (x->dead) return vmi__xen_fail(x, VMI_ERR_BACKEND, "%s: domain %u is gone", what, (unsigned)x->domid);
    if (x->liberr[0]) {
        vmi_status st = vmi__xen_fail(x, VMI_ERR_BACKEND, "%s: %s (%s)", what, strerror(e), x->liberr);
        x->liberr[0] = '\0';
        return st;
    }
    return vmi__xen_fail(x, VMI_ERR_BACKEND, "%s: %s", what, strerror(e));
}

static vmi_status vmi__xen_usable(vmi__xen *x) {
    return x->dead ? vmi__xen_fail(x, VMI_ERR_BACKEND, "domain %u is gone", (unsigned)x->domid) : VMI_OK;
}

static void *vmi__xen_calloc(vmi__xen *x, size_t count, size_t size) {
    void *p;
    if (size && count > ((size_t)-1) / size) return NULL;
    p = x->alloc.alloc(count && size ? count * size : 1, x->alloc.user);
    if (p) memset(p, 0, count * size);
    return p;
}

static void vmi__xen_free(vmi__xen *x, void *p) {
    if (p) x->alloc.free(p, x->alloc.user);
}

static void vmi__xen_vmessage(vmi__xen_logger *lg, int level, int errnoval, const char *context, const char *format,
                              va_list al) {
    size_t n;
    (void)errnoval;
    if (level < 8) return; /* below XTL_ERROR */
    n = (size_t)snprintf(lg->buf, VMI__XEN_ERR, "%s: ", context ? context : "xen");
    if (n < VMI__XEN_ERR) vsnprintf(lg->buf + n, VMI__XEN_ERR - n, format, al);
}

static void vmi__xen_destroy_logger(vmi__xen_logger *lg) { (void)lg; }

#if defined(VMI_XEN_LINK)
static vmi_status vmi__xen_load(vmi__xen *x) {
#define VMI__XEN_LINKED(lib, ret, name, params) x->api.name = vmi__xen_sym_##name;
    VMI__XEN_FUNCS(VMI__XEN_LINKED)
#undef VMI__XEN_LINKED
    return VMI_OK;
}
#elif defined(VMI_XEN_NO_DLOPEN)
static vmi_status vmi__xen_load(vmi__xen *x) {
    return vmi__xen_fail(x, VMI_ERR_UNSUPPORTED,
                         "built without Xen (VMI_XEN_NO_DLOPEN): rebuild with Xen's libraries (VMI_XEN_LINK)");
}
#else
static const char *const vmi__xen_sonames[VMI__XEN_NLIBS] = {VMI_XEN_LIBXENCTRL, VMI_XEN_LIBXENFOREIGNMEMORY,
                                                           VMI_XEN_LIBXENEVTCHN, VMI_XEN_LIBXENSTORE};

/* dlsym into a function pointer: POSIX makes them the same size. */
static int vmi__xen_sym(vmi__xen *x, int lib, const char *name, void *fn, size_t size) {
    void *p = x->lib[lib] ? dlsym(x->lib[lib], name) : NULL;
    if (p) memcpy(fn, &p, size);
    return p != NULL || lib == 3; /* xenstore is optional */
}

static vmi_status vmi__xen_load(vmi__xen *x) {
    int i;
    for (i = 0; i < VMI__XEN_NLIBS; i++) {
        x->lib[i] = dlopen(vmi__xen_sonames[i], RTLD_NOW | RTLD_LOCAL);
        if (!x->lib[i] && i != 3) {
            const char *e = dlerror();
            return vmi__xen_fail(x, VMI_ERR_UNSUPPORTED, "cannot load Xen's %s: %s (is this a Xen dom0?)",
                                 vmi__xen_sonames[i], e ? e : "dlopen failed");
        }
    }
#define VMI__XEN_DLSYM(lib, ret, name, params)                                                            \
    if (!vmi__xen_sym(x, lib, #name, (void *)&x->api.name, sizeof x->api.name))                              \
        return vmi__xen_fail(x, VMI_ERR_UNSUPPORTED, "%s has no %s", vmi__xen_sonames[lib], #name);
    VMI__XEN_FUNCS(VMI__XEN_DLSYM)
#undef VMI__XEN_DLSYM
    if (!x->api.xs_open || !x->api.xs_close || !x->api.xs_directory || !x->api.xs_read) x->api.xs_open = NULL;
    return VMI_OK;
}
#endif

static void vmi__xen_unload(vmi__xen *x) {
#if !defined(VMI_XEN_LINK) && !defined(VMI_XEN_NO_DLOPEN)
    int i;
    for (i = VMI__XEN_NLIBS - 1; i >= 0; i--)
        if (x->lib[i]) dlclose(x->lib[i]);
#else
    (void)x;
#endif
}

/* ---- domain, xenstore, memory layout ---------------------------------------- */

static vmi_status vmi__xen_dominfo_get(vmi__xen *x, vmi__xen_dominfo *info) {
    int n;
    memset(info, 0, sizeof *info);
    errno = 0;
    n = x->api.xc_domain_getinfolist(x->xch, x->domid, 1, info);
    if (n < 0) return vmi__xen_oserr(x, errno, "xc_domain_getinfolist");
    if (n != 1 || info->domain != x->domid) return vmi__xen_oserr(x, ESRCH, "xc_domain_getinfolist");
    return VMI_OK;
}

/* A xenstore value as a number (0 when missing or not a number). */
static uint64_t vmi__xen_xs_num(vmi__xen *x, struct xs_handle *xs, const char *path) {
    unsigned len = 0;
    char *v = (char *)x->api.xs_read(xs, 0, path, &len), *end = NULL;
    uint64_t n = 0;
    if (v && len > 0 && len < 32 && v[len] == '\0') {
        n = strtoull(v, &end, 10);
        if (end == v || *end) n = 0;
    }
    free(v); /* xenstore's malloc: the same C library (see VMI_XEN_LINK) */
    return n;
}

/* The domain whose /local/domain/ID/name is `name`. */
static vmi_status vmi__xen_by_name(vmi__xen *x, struct xs_handle *xs, const char *name) {
    unsigned n = 0, i, len;
    char **ids = x->api.xs_directory(xs, 0, "/local/domain", &n);
    char path[64], *end;
    int found = 0;
    for (i = 0; ids && i < n && i < 65536 && !found; i++) {
        unsigned long id = strtoul(ids[i], &end, 10);
        char *v;
        if (end == ids[i] || *end || id > 0x7fef) continue;
        snprintf(path, sizeof path, "/local/domain/%lu/name", id);
        v = (char *)x->api.xs_read(xs, 0, path, &len);
        if (v && strlen(v) == len && strcmp(v, name) == 0) {
            x->domid = (uint32_t)id;
            found = 1;
        }
        free(v);
    }
    free(ids);
    if (!ids) return vmi__xen_fail(x, VMI_ERR_BACKEND, "xenstore: cannot list /local/domain: %s", strerror(errno));
    return found ? VMI_OK : vmi__xen_fail(x, VMI_ERR_NOT_FOUND, "no Xen domain is named \"%s\"", name);
}

/* RAM size and the end of RAM below 4 GiB, as libxl lays an HVM guest out. */
static void vmi__xen_ram(vmi__xen *x, struct xs_handle *xs, const vmi__xen_dominfo *info, uint64_t *ram, uint64_t *low) {
    char path[96];
    uint64_t smax = 0, vram = 0, hole = 0;
    if (xs) {
        snprintf(path, sizeof path, "/local/domain/%u/memory/static-max", (unsigned)x->domid);
        smax = vmi__xen_xs_num(x, xs, path);
        snprintf(path, sizeof path, "/local/domain/%u/memory/videoram", (unsigned)x->domid);
        vram = vmi__xen_xs_num(x, xs, path);
        snprintf(path, sizeof path, "/local/domain/%u/platform/mmio_hole_size", (unsigned)x->domid);
        hole = vmi__xen_xs_num(x, xs, path);
    }
    *ram = smax > vram && smax < (1ull << 40) ? (smax - vram) << 10 : info->max_pages << VMI__PAGE_SHIFT;
    *low = hole && hole < VMI__XEN_4G ? VMI__XEN_4G - (hole & ~0xfffull) : 0xF0000000ull;
    if (*ram < *low) *low = *ram;
}

static void vmi__xen_add_range(vmi__xen *x, uint64_t start, uint64_t end, uint64_t limit) {
    if (end > limit) end = limit;
    if (start >= end) return;
    x->ranges[x->nranges].pa = start;
    x->ranges[x->nranges].size = end - start;
    x->ranges[x->nranges].flags = x->writable ? VMI_RANGE_WRITABLE : 0u;
    x->nranges++;
}

static vmi_status vmi__xen_layout(vmi__xen *x, struct xs_handle *xs, const vmi__xen_dominfo *info) {
    unsigned long max_gpfn = 0;
    uint64_t ram, low, limit;
    if (x->api.xc_domain_maximum_gpfn(x->xch, x->domid, &max_gpfn) < 0)
        return vmi__xen_oserr(x, errno, "xc_domain_maximum_gpfn");
    limit = ((uint64_t)max_gpfn + 1) << VMI__PAGE_SHIFT;
    vmi__xen_ram(x, xs, info, &ram, &low);
    x->hvm_vga = (info->emulation_flags & VMI__XEN_EMU_VGA) != 0;
    if (x->hvm_vga) {
        vmi__xen_add_range(x, 0, vmi__min64(low, 0xA0000), limit);
        vmi__xen_add_range(x, 0xC0000, low, limit);
    } else {
        vmi__xen_add_range(x, 0, low, limit);
    }
    vmi__xen_add_range(x, VMI__XEN_4G, VMI__XEN_4G + (ram - low), limit);
    if (!x->nranges) return vmi__xen_fail(x, VMI_ERR_FORMAT, "domain %u reports no memory", (unsigned)x->domid);
    return VMI_OK;
}

/* ---- mapping cache ----------------------------------------------------------- */

static void vmi__xen_unmap(vmi__xen *x, vmi__xen_chunk *c) {
    if (c->map) (void)x->api.xenforeignmemory_unmap(x->fmem, c->map, VMI__XEN_CHUNK);
    c->map = NULL;
    c->first = VMI__XEN_NONE;
}

/* Maps the chunk from `first` into slot c: one batch, per-frame refusals kept. */
static vmi_status vmi__xen_map(vmi__xen *x, vmi__xen_chunk *c, uint64_t first) {
    unsigned long gfns[VMI__XEN_CHUNK];
    int errs[VMI__XEN_CHUNK];
    uint32_t i;
    int prot = PROT_READ | (x->writable ? PROT_WRITE : 0);
    for (i = 0; i < VMI__XEN_CHUNK; i++) {
        gfns[i] = (unsigned long)(first + i);
        errs[i] = 0;
    }
    errno = 0;
    c->map = (uint8_t *)x->api.xenforeignmemory_map(x->fmem, x->domid, prot, VMI__XEN_CHUNK, gfns, errs);
    if (!c->map) {
        char what[80];
        snprintf(what, sizeof what, "xenforeignmemory_map of frames 0x%llx-0x%llx", (unsigned long long)first,
                 (unsigned long long)(first + VMI__XEN_CHUNK - 1));
        return vmi__xen_oserr(x, errno, what);
    }
    c->first = first;
    c->refused = 0;
    for (i = 0; i < VMI__XEN_CHUNK; i++)
        if (errs[i]) c->refused |= 1ull << i;
    c->mapped_ms = vmi__now_ms();
    return VMI_OK;
}

/* The slot mapping frame gfn: a fresh hit, else the least recently used
   slot (unmapped) mapped anew. */
static vmi_status vmi__xen_chunk_get(vmi__xen *x, uint64_t gfn, vmi__xen_chunk **out) {
    uint64_t first = gfn - gfn % VMI__XEN_CHUNK, now = vmi__now_ms();
    vmi__xen_chunk *c = &x->chunks[x->last], *lru = NULL;
    uint32_t i;
    vmi_status st;
    if (c->first != first)
        for (c = NULL, i = 0; i < x->nchunks; i++) {
            vmi__xen_chunk *s = &x->chunks[i];
            if (s->first == first) c = s;
            if (!lru || s->used < lru->used) lru = s;
            if (c) break;
        }
    if (c && (now < c->mapped_ms || now - c->mapped_ms >= x->ttl_ms)) { /* too old: map again */
        lru = c;
        c = NULL;
    }
    if (!c) { /* lru: the stale slot, or the least recently used (free slots first: used 0) */
        vmi__xen_unmap(x, lru);
        if ((st = vmi__xen_map(x, lru, first)) != VMI_OK) return st;
        c = lru;
    }
    c->used = ++x->clock;
    x->last = (uint32_t)(c - x->chunks);
    *out = c;
    return VMI_OK;
}

static vmi_status vmi__xen_rw(vmi__xen *x, uint64_t pa, uint8_t *buf, size_t len, int write) {
    vmi_status st;
    if ((st = vmi__xen_usable(x)) != VMI_OK) return st;
    if (write && !x->writable) return vmi__xen_fail(x, VMI_ERR_READ_ONLY, "opened read-only (desc.writable)");
    while (len) {
        uint64_t gfn = pa >> VMI__PAGE_SHIFT, off = pa & (VMI__PAGE_SIZE - 1);
        size_t n = (size_t)vmi__min64(len, VMI__PAGE_SIZE - off);
        vmi__xen_chunk *c;
        uint8_t *p;
        if ((st = vmi__xen_chunk_get(x, gfn, &c)) != VMI_OK) return st;
        if ((c->refused >> (gfn - c->first)) & 1)
            return vmi__xen_fail(x, VMI_ERR_UNMAPPED, "Xen refused to map frame 0x%llx of domain %u",
                                 (unsigned long long)gfn, (unsigned)x->domid);
        p = c->map + ((gfn - c->first) << VMI__PAGE_SHIFT) + off;
        if (write) memcpy(p, buf, n);
        else memcpy(buf, p, n);
        pa += n;
        buf += n;
        len -= n;
    }
    return VMI_OK;
}

static vmi_status vmi__xen_read_pa(void *ctx, uint64_t pa, void *buf, size_t len) {
    return vmi__xen_rw((vmi__xen *)ctx, pa, (uint8_t *)buf, len, 0);
}

static vmi_status vmi__xen_write_pa(void *ctx, uint64_t pa, const void *buf, size_t len) {
    return vmi__xen_rw((vmi__xen *)ctx, pa, (uint8_t *)(uintptr_t)buf, len, 1);
}

/* One byte of guest code, read or written through a mapping of its own
   (read-write whatever desc.writable says: breakpoints need it). */
static vmi_status vmi__xen_poke(vmi__xen *x, uint64_t pa, uint8_t *old, const uint8_t *val) {
    unsigned long gfn = (unsigned long)(pa >> VMI__PAGE_SHIFT);
    int err = 0;
    uint8_t *p;
    errno = 0;
    p = (uint8_t *)x->api.xenforeignmemory_map(x->fmem, x->domid, PROT_READ | PROT_WRITE, 1, &gfn, &err);
    if (!p) return vmi__xen_oserr(x, errno, "xenforeignmemory_map for a breakpoint");
    if (!err) {
        if (old) *old = p[pa & (VMI__PAGE_SIZE - 1)];
        if (val) p[pa & (VMI__PAGE_SIZE - 1)] = *val;
    }
    (void)x->api.xenforeignmemory_unmap(x->fmem, p, 1);
    if (err)
        return vmi__xen_fail(x, VMI_ERR_UNMAPPED, "Xen refused to map frame 0x%lx read-write (error %d)", gfn, err);
    return VMI_OK;
}

/* ---- registers, run state ------------------------------------------------------ */

static vmi_status vmi__xen_cpu_get(vmi__xen *x, uint32_t vcpu, vmi__xen_cpu *cpu) {
    vmi_status st;
    if ((st = vmi__xen_usable(x)) != VMI_OK) return st;
    if (vcpu >= x->nvcpus) return vmi__xen_fail(x, VMI_ERR_ARG, "vCPU %u of %u", (unsigned)vcpu, (unsigned)x->nvcpus);
    memset(cpu, 0, sizeof *cpu);
    errno = 0;
    if (x->api.xc_domain_hvm_getcontext_partial(x->xch, x->domid, VMI__XEN_SAVE_CPU, (uint16_t)vcpu, cpu,
                                                (uint32_t)sizeof *cpu) < 0)
        return vmi__xen_oserr(x, errno, "xc_domain_hvm_getcontext_partial");
    return VMI_OK;
}

static void vmi__xen_cpu_to_regs(const vmi__xen_cpu *c, vmi_arch arch, vmi_regs *regs) {
    vmi_regs_x86 *r = &regs->x86;
    memset(regs, 0, sizeof *regs);
    regs->arch = arch;
    regs->valid = VMI_REGS_GPR | VMI_REGS_SEGMENT | VMI_REGS_CONTROL;
    r->rax = c->rax, r->rbx = c->rbx, r->rcx = c->rcx, r->rdx = c->rdx;
    r->rsi = c->rsi, r->rdi = c->rdi, r->rsp = c->rsp, r->rbp = c->rbp;
    r->r8 = c->r8, r->r9 = c->r9, r->r10 = c->r10, r->r11 = c->r11;
    r->r12 = c->r12, r->r13 = c->r13, r->r14 = c->r14, r->r15 = c->r15;
    r->rip = c->rip, r->rflags = c->rflags;
    r->cs = c->cs_sel, r->ds = c->ds_sel, r->es = c->es_sel, r->fs = c->fs_sel, r->gs = c->gs_sel, r->ss = c->ss_sel;
    r->fs_base = c->fs_base, r->gs_base = c->gs_base, r->kernel_gs_base = c->shadow_gs;
    r->gdtr_base = c->gdtr_base, r->idtr_base = c->idtr_base;
    r->gdtr_limit = c->gdtr_limit, r->idtr_limit = c->idtr_limit;
    r->cr0 = c->cr0, r->cr2 = c->cr2, r->cr3 = c->cr3, r->cr4 = c->cr4, r->efer = c->msr_efer;
}

static void vmi__xen_regs_to_cpu(const vmi_regs *regs, vmi__xen_cpu *c) {
    const vmi_regs_x86 *r = &regs->x86;
    if (regs->valid & VMI_REGS_GPR) {
        c->rax = r->rax, c->rbx = r->rbx, c->rcx = r->rcx, c->rdx = r->rdx;
        c->rsi = r->rsi, c->rdi = r->rdi, c->rsp = r->rsp, c->rbp = r->rbp;
        c->r8 = r->r8, c->r9 = r->r9, c->r10 = r->r10, c->r11 = r->r11;
        c->r12 = r->r12, c->r13 = r->r13, c->r14 = r->r14, c->r15 = r->r15;
        c->rip = r->rip, c->rflags = r->rflags;
    }
    if (regs->valid & VMI_REGS_SEGMENT) {
        c->cs_sel = (uint32_t)r->cs, c->ds_sel = (uint32_t)r->ds, c->es_sel = (uint32_t)r->es;
        c->fs_sel = (uint32_t)r->fs, c->gs_sel = (uint32_t)r->gs, c->ss_sel = (uint32_t)r->ss;
        c->fs_base = r->fs_base, c->gs_base = r->gs_base, c->shadow_gs = r->kernel_gs_base;
        c->gdtr_base = r->gdtr_base, c->idtr_base = r->idtr_base;
        c->gdtr_limit = r->gdtr_limit, c->idtr_limit = r->idtr_limit;
    }
    if (regs->valid & VMI_REGS_CONTROL)
        c->cr0 = r->cr0, c->cr2 = r->cr2, c->cr3 = r->cr3, c->cr4 = r->cr4, c->msr_efer = r->efer;
}

static vmi_status vmi__xen_get_regs(void *ctx, uint32_t vcpu, vmi_regs *regs) {
    vmi__xen *x = (vmi__xen *)ctx;
    vmi__xen_cpu cpu;
    vmi_status st = vmi__xen_cpu_get(x, vcpu, &cpu);
    if (st == VMI_OK) vmi__xen_cpu_to_regs(&cpu, x->arch, regs);
    return st;
}

/* The CPU record of vcpu in a whole HVM context of len bytes (NULL when absent
   or malformed: records are walked with their lengths checked). */
static uint8_t *vmi__xen_find_cpu(uint8_t *buf, uint32_t len, uint32_t vcpu) {
    uint32_t off = 0;
    while (len - off >= sizeof(vmi__xen_save_desc)) {
        vmi__xen_save_desc d;
        memcpy(&d, buf + off, sizeof d);
        off += (uint32_t)sizeof d;
        if (d.typecode == VMI__XEN_SAVE_END || d.length > len - off) return NULL;
        if (d.typecode == VMI__XEN_SAVE_CPU && d.instance == vcpu && d.length >= sizeof(vmi__xen_cpu)) return buf + off;
        off += d.length;
    }
    return NULL;
}

static vmi_status vmi__xen_setcontext(vmi__xen *x, uint32_t vcpu, const vmi_regs *regs) {
    int size;
    uint8_t *buf, *rec;
    vmi__xen_cpu cpu;
    vmi_status st = VMI_OK;
    errno = 0;
    size = x->api.xc_domain_hvm_getcontext(x->xch, x->domid, NULL, 0);
    if (size <= 0) return vmi__xen_oserr(x, errno ? errno : EINVAL, "xc_domain_hvm_getcontext (size)");
    if ((uint32_t)size > VMI__XEN_MAX_CONTEXT) return vmi__xen_fail(x, VMI_ERR_LIMIT, "HVM context of %d bytes", size);
    if (!(buf = (uint8_t *)vmi__xen_calloc(x, (size_t)size, 1))) return vmi__xen_fail(x, VMI_ERR_NOMEM, "HVM context");
    errno = 0;
    size = x->api.xc_domain_hvm_getcontext(x->xch, x->domid, buf, (uint32_t)size);
    if (size <= 0) st = vmi__xen_oserr(x, errno ? errno : EINVAL, "xc_domain_hvm_getcontext");
    else if (!(rec = vmi__xen_find_cpu(buf, (uint32_t)size, vcpu)))
        st = vmi__xen_fail(x, VMI_ERR_FORMAT, "the HVM context has no CPU record for vCPU %u", (unsigned)vcpu);
    else {
        memcpy(&cpu, rec, sizeof cpu);
        vmi__xen_regs_to_cpu(regs, &cpu);
        memcpy(rec, &cpu, sizeof cpu);
        errno = 0;
        if (x->api.xc_domain_hvm_setcontext(x->xch, x->domid, buf, (uint32_t)size) < 0)
            st = vmi__xen_oserr(x, errno, "xc_domain_hvm_setcontext");
    }
    vmi__xen_free(x, buf);
    return st;
}

static vmi_status vmi__xen_pause(void *ctx);
static vmi_status vmi__xen_unpause(vmi__xen *x);

/* The whole context is written back: paused, so no other vCPU's state in
   it goes stale meanwhile. */
static vmi_status vmi__xen_set_regs(void *ctx, uint32_t vcpu, const vmi_regs *regs) {
    vmi__xen *x = (vmi__xen *)ctx;
    vmi_status st, st2;
    if ((st = vmi__xen_usable(x)) != VMI_OK) return st;
    if (vcpu >= x->nvcpus) return vmi__xen_fail(x, VMI_ERR_ARG, "vCPU %u of %u", (unsigned)vcpu, (unsigned)x->nvcpus);
    if (regs->arch != VMI_ARCH_X86 && regs->arch != VMI_ARCH_X86_64)
        return vmi__xen_fail(x, VMI_ERR_ARG, "x86 registers expected");
    if ((st = vmi__xen_pause(x)) != VMI_OK) return st;
    st = vmi__xen_setcontext(x, vcpu, regs);
    st2 = vmi__xen_unpause(x);
    return st != VMI_OK ? st : st2;
}

static vmi_status vmi__xen_vcpu_count(void *ctx, uint32_t *count) {
    vmi__xen *x = (vmi__xen *)ctx;
    *count = x->nvcpus;
    return vmi__xen_usable(x);
}

static vmi_status vmi__xen_pause(void *ctx) {
    vmi__xen *x = (vmi__xen *)ctx;
    vmi_status st;
    if ((st = vmi__xen_usable(x)) != VMI_OK) return st;
    errno = 0;
    if (x->api.xc_domain_pause(x->xch, x->domid) < 0) return vmi__xen_oserr(x, errno, "xc_domain_pause");
    x->pauses++;
    return VMI_OK;
}

static vmi_status vmi__xen_unpause(vmi__xen *x) {
    vmi_status st;
    if (!x->pauses) return VMI_OK;
    if ((st = vmi__xen_usable(x)) != VMI_OK) return st;
    errno = 0;
    if (x->api.xc_domain_unpause(x->xch, x->domid) < 0) return vmi__xen_oserr(x, errno, "xc_domain_unpause");
    x->pauses--;
    return VMI_OK;
}

/* >>xen-events ================================================================= */

static vmi_status vmi__xen_monitor_on(vmi__xen *x) {
    void *ring;
    int port;
    if (x->ring) return VMI_OK;
    errno = 0;
    ring = x->api.xc_monitor_enable(x->xch, x->domid, &x->remote_port);
    if (!ring) {
        int e = errno;
        if (e == EBUSY)
            return vmi__xen_fail(x, VMI_ERR_BACKEND, "xc_monitor_enable: domain %u already has a vm_event monitor "
                                 "(another introspection tool?)", (unsigned)x->domid);
        return vmi__xen_oserr(x, e, "xc_monitor_enable");
    }
    x->ring = (vmi__xen_sring *)ring;
    memset(ring, 0, sizeof(vmi__xen_sring)); /* SHARED_RING_INIT: the consumer's job */
    x->ring->req_event = x->ring->rsp_event = 1;
    x->req_cons = x->rsp_prod_pvt = 0;
    x->ring_size = 8; /* __RD32((4096 - 64) / 400) */
    if (!(x->xce = x->api.xenevtchn_open((vmi__xen_xtl *)(void *)&x->logger, 0)))
        return vmi__xen_oserr(x, errno, "xenevtchn_open");
    errno = 0;
    if ((port = x->api.xenevtchn_bind_interdomain(x->xce, x->domid, x->remote_port)) < 0)
        return vmi__xen_oserr(x, errno, "xenevtchn_bind_interdomain");
    x->local_port = (uint32_t)port;
    x->port_bound = 1;
    if ((x->evfd = x->api.xenevtchn_fd(x->xce)) < 0) return vmi__xen_oserr(x, errno, "xenevtchn_fd");
    return VMI_OK;
}

static vmi__xen_vm_event *vmi__xen_slot(vmi__xen *x, uint32_t idx) {
    return (vmi__xen_vm_event *)(void *)((uint8_t *)x->ring + sizeof(vmi__xen_sring)) + (idx & (x->ring_size - 1));
}

/* Takes the next request off the ring into x->req: 1 taken, 0 none, -1 the
   ring's indexes make no sense. */
static int vmi__xen_take(vmi__xen *x) {
    volatile vmi__xen_sring *s = x->ring;
    uint32_t prod = s->req_prod;
    __sync_synchronize(); /* the request's bytes after the index that covers them */
    if (prod - x->req_cons > x->ring_size || x->req_cons - x->rsp_prod_pvt > x->ring_size) return -1;
    if (prod == x->req_cons) return 0;
    memcpy(&x->req, vmi__xen_slot(x, x->req_cons), sizeof x->req);
    x->req_cons++;
    s->req_event = x->req_cons + 1;
    __sync_synchronize();
    return 1;
}

/* Answers x->req with `flags` (VCPU_PAUSED as the request had it) and
   tells Xen. */
static vmi_status vmi__xen_respond(vmi__xen *x, uint32_t flags) {
    vmi__xen_vm_event rsp = x->req;
    volatile vmi__xen_sring *s = x->ring;
    rsp.version = VMI__XEN_VM_EVENT_VERSION;
    rsp.flags = (x->req.flags & VMI__XEN_FLAG_VCPU_PAUSED) | flags;
    memcpy(vmi__xen_slot(x, x->rsp_prod_pvt), &rsp, sizeof rsp);
    x->rsp_prod_pvt++;
    __sync_synchronize(); /* the response before its index */
    s->rsp_prod = x->rsp_prod_pvt;
    errno = 0;
    if (x->api.xenevtchn_notify(x->xce, x->local_port) < 0) return vmi__xen_oserr(x, errno, "xenevtchn_notify");
    return VMI_OK;
}

static vmi__xen_arm *vmi__xen_find_arm(vmi__xen *x, const vmi_event *ev) {
    vmi__xen_arm *a;
    for (a = x->arms; a && a->ev != ev; a = a->next) {
    }
    return a;
}

static vmi__xen_arm *vmi__xen_bp_at(vmi__xen *x, uint64_t pa) {
    vmi__xen_arm *a;
    for (a = x->arms; a; a = a->next)
        if (a->ev->type == VMI_EVENT_BREAKPOINT && a->pa == pa) return a;
    return NULL;
}

static int vmi__xen_any_bp(const vmi__xen *x) {
    const vmi__xen_arm *a;
    for (a = x->arms; a; a = a->next)
        if (a->ev->type == VMI_EVENT_BREAKPOINT) return 1;
    return 0;
}

static vmi_status vmi__xen_step(vmi__xen *x, uint32_t vcpu, int on) {
    errno = 0;
    if (x->api.xc_domain_debug_control(x->xch, x->domid, on ? VMI__XEN_DEBUG_STEP_ON : VMI__XEN_DEBUG_STEP_OFF, vcpu) < 0)
        return vmi__xen_oserr(x, errno, "xc_domain_debug_control");
    return VMI_OK;
}

/* Whether vCPU v must go on single-stepping: for a SINGLESTEP event, over
   a breakpoint, or through an access a watchpoint caught. */
static int vmi__xen_stepping(const vmi__xen *x, uint32_t v) {
    return x->step_user[v] || x->step_over[v] != VMI__XEN_NONE || x->wstep[v].gfn != VMI__XEN_NONE;
}

/* Single-step events come for our steps over breakpoints and watched accesses
   too: on from the first breakpoint, watchpoint or step until close. */
static vmi_status vmi__xen_monitor_steps(vmi__xen *x) {
    if (x->mon_step) return VMI_OK;
    errno = 0;
    if (x->api.xc_monitor_singlestep(x->xch, x->domid, true) < 0) return vmi__xen_oserr(x, errno, "xc_monitor_singlestep");
    x->mon_step = 1;
    return VMI_OK;
}

/* ---- MEM_ACCESS, WATCH: each frame's rights are what no armed event watches ------ */

static int vmi__xen_covers(const vmi__xen_arm *a, uint64_t gfn) {
    return (a->ev->type == VMI_EVENT_MEM_ACCESS || a->ev->type == VMI_EVENT_WATCH) && gfn >= a->gfn &&
           gfn - a->gfn < a->nframes;
}

/* A frame a vCPU is stepping through a watched access on keeps its
   original rights until that step ends. */
static int vmi__xen_is_lifted(const vmi__xen *x, uint64_t gfn) {
    uint32_t v;
    for (v = 0; x->lifted && v < x->nvcpus; v++)
        if (x->wstep[v].gfn == gfn) return 1;
    return 0;
}

/* The xenmem_access_t for gfn with the events armed (but `skip`), and via
   *orig the frame's access before any of them (-1 when none covers it). */
static int vmi__xen_access_for(vmi__xen *x, uint64_t gfn, const vmi__xen_arm *skip, int *orig) {
    const vmi__xen_arm *a;
    uint32_t watched = 0;
    *orig = -1;
    for (a = x->arms; a; a = a->next)
        if (a != skip && vmi__xen_covers(a, gfn)) {
            watched |= a->ev->access;
            *orig = a->orig_access[gfn - a->gfn];
        }
    if (vmi__xen_is_lifted(x, gfn)) watched = 0;
    if (watched & VMI_WATCH_READ) watched |= VMI_WATCH_WRITE; /* EPT: no write without read */
    return *orig < 0 ? -1 : (int)((uint32_t)*orig & ~watched & VMI__XEN_MEM_ACCESS_RWX);
}

/* Sets the frames [gfn, gfn + n) to what the armed events (but `skip`)
   leave them, their original access where none is left, in runs of one
   xc_set_mem_access call. */
static vmi_status vmi__xen_apply_access(vmi__xen *x, const vmi__xen_arm *rec, uint64_t gfn, uint64_t n, const vmi__xen_arm *skip) {
    uint64_t i = 0;
    while (i < n) {
        int orig, want = vmi__xen_access_for(x, gfn + i, skip, &orig), next;
        uint64_t j = i + 1;
        if (want < 0) want = rec->orig_access[gfn + i - rec->gfn];
        while (j < n && j - i < 0xffffffffu) {
            next = vmi__xen_access_for(x, gfn + j, skip, &orig);
            if ((next < 0 ? rec->orig_access[gfn + j - rec->gfn] : next) != want) break;
            j++;
        }
        errno = 0;
        if (x->api.xc_set_mem_access(x->xch, x->domid, want, gfn + i, (uint32_t)(j - i)) < 0)
            return vmi__xen_oserr(x, errno, "xc_set_mem_access");
        i = j;
    }
    return VMI_OK;
}

/* Each frame's access before any event: from an event already covering it,
   else asked of Xen. */
static vmi_status vmi__xen_save_access(vmi__xen *x, vmi__xen_arm *rec) {
    uint64_t i;
    for (i = 0; i < rec->nframes; i++) {
        int orig = -1;
        (void)vmi__xen_access_for(x, rec->gfn + i, rec, &orig);
        if (orig < 0) {
            errno = 0;
            if (x->api.xc_get_mem_access(x->xch, x->domid, rec->gfn + i, &orig) < 0)
                return vmi__xen_oserr(x, errno, "xc_get_mem_access");
            if (orig < 0 || orig > (int)VMI__XEN_MEM_ACCESS_RWX) orig = (int)VMI__XEN_MEM_ACCESS_RWX; /* rx2rw, default... */
        }
        rec->orig_access[i] = (uint8_t)orig;
    }
    return VMI_OK;
}

/* MEM_ACCESS on its frames; WATCH on its variable's frame (addr is a
   multiple of len <= 8: one frame), stepped through at a hit. */
static vmi_status vmi__xen_watch_set(vmi__xen *x, vmi__xen_arm *rec) {
    vmi_status st;
    if (rec->ev->type == VMI_EVENT_WATCH) {
        if ((st = vmi__xen_monitor_steps(x)) != VMI_OK) return st;
        rec->pa = rec->ev->pa__;
        rec->gfn = rec->pa >> VMI__PAGE_SHIFT;
        rec->nframes = 1;
    } else {
        rec->gfn = rec->ev->addr >> VMI__PAGE_SHIFT;
        rec->nframes = rec->ev->len >> VMI__PAGE_SHIFT;
    }
    if (rec->nframes > VMI__XEN_MAX_WATCH)
        return vmi__xen_fail(x, VMI_ERR_LIMIT, "a memory access event over %llu frames (at most %u)",
                             (unsigned long long)rec->nframes, VMI__XEN_MAX_WATCH);
    if (!(rec->orig_access = (uint8_t *)vmi__xen_calloc(x, (size_t)rec->nframes, 1)))
        return vmi__xen_fail(x, VMI_ERR_NOMEM, "memory access event");
    if ((st = vmi__xen_save_access(x, rec)) != VMI_OK) return st;
    rec->next = x->arms; /* counted while the rights are computed */
    x->arms = rec;
    st = vmi__xen_apply_access(x, rec, rec->gfn, rec->nframes, NULL);
    x->arms = rec->next;
    return st;
}

/* ---- registering ---------------------------------------------------------------- */

static vmi_status vmi__xen_check_new(vmi__xen *x, const vmi_event *ev) {
    const vmi__xen_arm *a;
    for (a = x->arms; a; a = a->next) {
        const vmi_event *o = a->ev;
        if (o->type != ev->type) continue;
        if (ev->type == VMI_EVENT_SINGLESTEP) return vmi__xen_fail(x, VMI_ERR_ARG, "a single-step is already armed");
        if (ev->type == VMI_EVENT_REG_WRITE && o->reg == ev->reg && (ev->reg != VMI_REG_MSR || o->msr == ev->msr))
            return vmi__xen_fail(x, VMI_ERR_ARG, "an event on that register is already armed");
        if (ev->type == VMI_EVENT_BREAKPOINT && o->addr == ev->addr)
            return vmi__xen_fail(x, VMI_ERR_ARG, "a breakpoint at 0x%llx is already armed", (unsigned long long)ev->addr);
    }
    if (ev->type == VMI_EVENT_SINGLESTEP && (uint32_t)ev->vcpu >= x->nvcpus)
        return vmi__xen_fail(x, VMI_ERR_ARG, "single-step on vCPU %d of %u", (int)ev->vcpu, (unsigned)x->nvcpus);
    if ((ev->type == VMI_EVENT_BREAKPOINT || ev->type == VMI_EVENT_WATCH) && ev->pa__ == VMI__XEN_NONE)
        return vmi__xen_fail(x, VMI_ERR_NOT_PRESENT, "%s at 0x%llx: not mapped in the kernel's page tables",
                             ev->type == VMI_EVENT_WATCH ? "watchpoint" : "breakpoint", (unsigned long long)ev->addr);
    if (ev->type == VMI_EVENT_BREAKPOINT && vmi__xen_bp_at(x, ev->pa__))
        return vmi__xen_fail(x, VMI_ERR_ARG, "a breakpoint at pa 0x%llx is already armed", (unsigned long long)ev->pa__);
    return VMI_OK;
}

static vmi_status vmi__xen_monitor_cr(vmi__xen *x, const vmi_event *ev, int on) {
    uint16_t index = (uint16_t)(ev->reg == VMI_REG_CR0 ? 0 : ev->reg == VMI_REG_CR3 ? 1 : 2); /* VM_EVENT_X86_CR* */
    errno = 0;
    if (ev->reg == VMI_REG_MSR) {
        if (x->api.xc_monitor_mov_to_msr(x->xch, x->domid, ev->msr, on != 0, true) < 0)
            return vmi__xen_oserr(x, errno, "xc_monitor_mov_to_msr");
    } else if (x->api.xc_monitor_write_ctrlreg(x->xch, x->domid, index, on != 0, true, 0, true) < 0) {
        return vmi__xen_oserr(x, errno, "xc_monitor_write_ctrlreg");
    }
    return VMI_OK;
}

static vmi_status vmi__xen_monitor_bps(vmi__xen *x, int on) {
    errno = 0;
    if (x->api.xc_monitor_software_breakpoint(x->xch, x->domid, on != 0) < 0)
        return vmi__xen_oserr(x, errno, "xc_monitor_software_breakpoint");
    x->mon_bps = on;
    return VMI_OK;
}

static vmi_status vmi__xen_bp_set(vmi__xen *x, vmi__xen_arm *rec) {
    static const uint8_t int3 = 0xCC;
    vmi_status st;
    if ((st = vmi__xen_monitor_steps(x)) != VMI_OK) return st;
    if (!x->mon_bps && (st = vmi__xen_monitor_bps(x, 1)) != VMI_OK) return st;
    rec->pa = rec->ev->pa__;
    return vmi__xen_poke(x, rec->pa, &rec->orig, &int3);
}

/* The step is switched while the domain is paused: the vCPU is not in the
   middle of an instruction. */
static vmi_status vmi__xen_step_set(vmi__xen *x, uint32_t vcpu, int on) {
    vmi_status st, st2;
    if (on && (st = vmi__xen_monitor_steps(x)) != VMI_OK) return st;
    if (!on && (x->step_over[vcpu] != VMI__XEN_NONE || x->wstep[vcpu].gfn != VMI__XEN_NONE)) {
        x->step_user[vcpu] = 0; /* a step of ours is under way: it ends at its own event */
        return VMI_OK;
    }
    if ((st = vmi__xen_pause(x)) != VMI_OK) return st;
    st = vmi__xen_step(x, vcpu, on);
    st2 = vmi__xen_unpause(x);
    if (st == VMI_OK && st2 == VMI_OK) x->step_user[vcpu] = (uint8_t)on;
    return st != VMI_OK ? st : st2;
}

static vmi_status vmi__xen_arm_event(vmi__xen *x, vmi__xen_arm *rec) {
    vmi_event *ev = rec->ev;
    switch (ev->type) {
    case VMI_EVENT_REG_WRITE: return vmi__xen_monitor_cr(x, ev, 1);
    case VMI_EVENT_BREAKPOINT: return vmi__xen_bp_set(x, rec);
    case VMI_EVENT_SINGLESTEP: return vmi__xen_step_set(x, (uint32_t)ev->vcpu, 1);
    case VMI_EVENT_MEM_ACCESS:
    case VMI_EVENT_WATCH: return vmi__xen_watch_set(x, rec);
    default: return vmi__xen_fail(x, VMI_ERR_UNSUPPORTED, "event type %d", (int)ev->type);
    }
}

static vmi_status vmi__xen_event_set(void *ctx, vmi_event *ev) {
    vmi__xen *x = (vmi__xen *)ctx;
    vmi__xen_arm *rec;
    vmi_status st;
    if ((st = vmi__xen_usable(x)) != VMI_OK || (st = vmi__xen_check_new(x, ev)) != VMI_OK) return st;
    if ((st = vmi__xen_monitor_on(x)) != VMI_OK) return st;
    if (!(rec = (vmi__xen_arm *)vmi__xen_calloc(x, 1, sizeof *rec))) return vmi__xen_fail(x, VMI_ERR_NOMEM, "event");
    rec->ev = ev;
    if ((st = vmi__xen_arm_event(x, rec)) != VMI_OK) {
        vmi__xen_free(x, rec->orig_access);
        vmi__xen_free(x, rec);
        if (ev->type == VMI_EVENT_BREAKPOINT && !vmi__xen_any_bp(x) && x->mon_bps)
            (void)vmi__xen_monitor_bps(x, 0);
        return st;
    }
    rec->next = x->arms;
    x->arms = rec;
    return VMI_OK;
}

/* Undoes what arming did; rec is already off the list. */
static vmi_status vmi__xen_disarm(vmi__xen *x, vmi__xen_arm *rec) {
    vmi_event *ev = rec->ev;
    vmi_status st = VMI_OK;
    switch (ev->type) {
    case VMI_EVENT_REG_WRITE: return vmi__xen_monitor_cr(x, ev, 0);
    case VMI_EVENT_BREAKPOINT:
        st = vmi__xen_poke(x, rec->pa, NULL, &rec->orig);
        if (!vmi__xen_any_bp(x) && x->mon_bps) {
            vmi_status st2 = vmi__xen_monitor_bps(x, 0);
            if (st == VMI_OK) st = st2;
        }
        return st;
    case VMI_EVENT_SINGLESTEP: return vmi__xen_step_set(x, (uint32_t)ev->vcpu, 0);
    case VMI_EVENT_MEM_ACCESS:
    case VMI_EVENT_WATCH: return vmi__xen_apply_access(x, rec, rec->gfn, rec->nframes, NULL);
    default: return VMI_OK;
    }
}

static vmi_status vmi__xen_event_clear(void *ctx, vmi_event *ev) {
    vmi__xen *x = (vmi__xen *)ctx;
    vmi__xen_arm **pp, *rec;
    vmi_status st;
    for (pp = &x->arms; *pp && (*pp)->ev != ev; pp = &(*pp)->next) {
    }
    if (!(rec = *pp)) return vmi__xen_fail(x, VMI_ERR_ARG, "the event is not armed here");
    *pp = rec->next; /* forgotten whatever Xen says */
    st = x->dead ? VMI_OK : vmi__xen_disarm(x, rec);
    vmi__xen_free(x, rec->orig_access);
    vmi__xen_free(x, rec);
    return st;
}

/* ---- delivering ------------------------------------------------------------------ */

/* Answers the request without a callback: VMI_ERR_NOT_FOUND, the wait goes on. */
static vmi_status vmi__xen_quiet(vmi__xen *x, uint32_t flags) {
    vmi_status st = vmi__xen_respond(x, flags);
    return st == VMI_OK ? VMI_ERR_NOT_FOUND : st;
}

/* Fills the hit and holds the whole domain for the callback; resume() answers. */
static vmi_status vmi__xen_deliver(vmi__xen *x, vmi_event *ev, vmi_event_hit *hit, uint32_t flags) {
    vmi__xen_cpu cpu;
    vmi_status st = vmi__xen_pause(x);
    if (st == VMI_OK && (st = vmi__xen_cpu_get(x, x->req.vcpu_id, &cpu)) != VMI_OK) (void)vmi__xen_unpause(x);
    if (st != VMI_OK) {
        (void)vmi__xen_respond(x, flags); /* the vCPU must not wait for a callback that never comes */
        return st;
    }
    vmi__xen_cpu_to_regs(&cpu, x->arch, &hit->regs);
    hit->vcpu = x->req.vcpu_id;
    hit->event = ev;
    hit->addr = cpu.rip; /* MEM_ACCESS puts the frame's address instead */
    x->delivered = 1;
    x->rsp_flags = flags;
    x->hit_ev = ev;
    return VMI_OK;
}

/* Whether the access in x->req is watchpoint a's: its frame, its kind, and
   the byte Xen reports (the access's first) in [addr, addr+len), by linear
   address when Xen gives one, else by guest-physical address. The CPU's
   own page walk touching the frame is no access of the instruction's. */
static int vmi__xen_watch_hit(const vmi__xen *x, const vmi__xen_arm *a) {
    uint64_t gfn = x->req.u.mem_access.gfn, pa;
    uint32_t flags = x->req.u.mem_access.flags;
    if (a->ev->type != VMI_EVENT_WATCH || a->gfn != gfn || !(a->ev->access & flags) ||
        (flags & VMI__XEN_MEM_ACCESS_FAULT_IN_GPT))
        return 0;
    if (flags & VMI__XEN_MEM_ACCESS_GLA_VALID) return x->req.u.mem_access.gla - a->ev->addr < a->ev->len;
    pa = (gfn << VMI__PAGE_SHIFT) | (x->req.u.mem_access.offset & (VMI__PAGE_SIZE - 1));
    return pa - a->pa < a->ev->len;
}

/* The watched frame's rights back as the armed events want them (none
   covering it: the clear restored them already). */
static vmi_status vmi__xen_watch_end(vmi__xen *x, uint32_t v) {
    uint64_t gfn = x->wstep[v].gfn;
    const vmi__xen_arm *a;
    x->wstep[v].gfn = VMI__XEN_NONE;
    x->lifted--;
    for (a = x->arms; a && !vmi__xen_covers(a, gfn); a = a->next) {
    }
    return a ? vmi__xen_apply_access(x, a, gfn, 1, NULL) : VMI_OK;
}

/* The vCPU of x->req is to run its instruction again, natively, with the
   watched frame's rights lifted and single-stepped: the access completes
   and the watchpoint is reported at the step. */
static vmi_status vmi__xen_watch_begin(vmi__xen *x, const vmi__xen_arm *a) {
    uint32_t v = x->req.vcpu_id, flags = x->req.u.mem_access.flags;
    vmi__xen_wstep *w = &x->wstep[v];
    int stepping = vmi__xen_stepping(x, v);
    vmi_status st;
    w->gfn = a->gfn;
    w->ev = a->ev;
    w->access = flags & a->ev->access;
    w->va = (flags & VMI__XEN_MEM_ACCESS_GLA_VALID) ? x->req.u.mem_access.gla : 0;
    x->lifted++;
    if ((st = vmi__xen_apply_access(x, a, a->gfn, 1, NULL)) == VMI_OK && !stepping) st = vmi__xen_step(x, v, 1);
    if (st != VMI_OK) (void)vmi__xen_watch_end(x, v);
    return st;
}

/* A MEM_ACCESS event's access is delivered before it happens; a watchpoint's
   after (stepped through); an access neither claims completes unseen. One
   watched access per step: a vCPU stepping through one already has the
   next emulated. */
static vmi_status vmi__xen_on_mem(vmi__xen *x, vmi_event_hit *hit) {
    uint64_t gfn = x->req.u.mem_access.gfn;
    uint32_t made = x->req.u.mem_access.flags & VMI__XEN_MEM_ACCESS_RWX;
    vmi__xen_arm *a, *w = NULL;
    vmi_status st;
    for (a = x->arms; a && !w && x->wstep[x->req.vcpu_id].gfn == VMI__XEN_NONE; a = a->next)
        if (vmi__xen_watch_hit(x, a)) w = a;
    for (a = x->arms; a; a = a->next)
        if (a->ev->type == VMI_EVENT_MEM_ACCESS && vmi__xen_covers(a, gfn) && (a->ev->access & made)) break;
    if (!a && w) {
        if ((st = vmi__xen_watch_begin(x, w)) != VMI_OK) {
            (void)vmi__xen_respond(x, VMI__XEN_FLAG_EMULATE);
            return st;
        }
        return vmi__xen_quiet(x, 0);
    }
    if (!a) return vmi__xen_quiet(x, VMI__XEN_FLAG_EMULATE); /* caught for EPT's sake, off the watch, or cleared since */
    if ((st = vmi__xen_deliver(x, a->ev, hit, VMI__XEN_FLAG_EMULATE)) != VMI_OK) return st;
    x->then_watch = w ? w->ev : NULL;
    hit->addr = (gfn << VMI__PAGE_SHIFT) | (x->req.u.mem_access.offset & (VMI__PAGE_SIZE - 1));
    hit->access = made;
    if (x->req.u.mem_access.flags & VMI__XEN_MEM_ACCESS_GLA_VALID) hit->va = x->req.u.mem_access.gla;
    return VMI_OK;
}

static vmi_status vmi__xen_on_reg(vmi__xen *x, vmi_event_hit *hit) {
    int is_msr = x->req.reason == VMI__XEN_REASON_MOV_TO_MSR;
    uint32_t index = x->req.u.write_ctrlreg.index, msr = (uint32_t)x->req.u.mov_to_msr.msr;
    uint32_t reg = is_msr ? VMI_REG_MSR : index == 0 ? VMI_REG_CR0 : index == 1 ? VMI_REG_CR3 : index == 2 ? VMI_REG_CR4 : 0;
    vmi__xen_arm *a;
    for (a = x->arms; a; a = a->next)
        if (a->ev->type == VMI_EVENT_REG_WRITE && a->ev->reg == reg && (!is_msr || a->ev->msr == msr)) break;
    if (!a) return vmi__xen_quiet(x, 0);
    hit->reg = reg;
    hit->msr = is_msr ? msr : 0;
    hit->old_value = is_msr ? x->req.u.mov_to_msr.old_value : x->req.u.write_ctrlreg.old_value;
    hit->new_value = is_msr ? x->req.u.mov_to_msr.new_value : x->req.u.write_ctrlreg.new_value;
    return vmi__xen_deliver(x, a->ev, hit, 0);
}

/* An int3: ours by its guest-physical address, else the guest's own (#BP
   goes back to it). */
static vmi_status vmi__xen_on_bp(vmi__xen *x, vmi_event_hit *hit) {
    uint64_t pa = (x->req.u.software_breakpoint.gfn << VMI__PAGE_SHIFT) | (x->req.data.x86.rip & (VMI__PAGE_SIZE - 1));
    uint32_t len = x->req.u.software_breakpoint.insn_length;
    vmi__xen_arm *a = vmi__xen_bp_at(x, pa);
    if (a) return vmi__xen_deliver(x, a->ev, hit, 0);
    errno = 0;
    if (x->api.xc_hvm_inject_trap(x->xch, x->domid, (int)x->req.vcpu_id, 3, VMI__XEN_TRAP_SW_EXCEPTION, ~0u,
                                  (uint8_t)(len >= 1 && len <= 15 ? len : 1), 0) < 0) {
        vmi_status st = vmi__xen_oserr(x, errno, "xc_hvm_inject_trap (an int3 that is not ours)");
        (void)vmi__xen_respond(x, 0);
        return st;
    }
    return vmi__xen_quiet(x, 0);
}

static vmi_status vmi__xen_user_step(vmi__xen *x, vmi_event_hit *hit) {
    uint32_t v = x->req.vcpu_id;
    vmi__xen_arm *a;
    for (a = x->arms; a; a = a->next)
        if (a->ev->type == VMI_EVENT_SINGLESTEP && (uint32_t)a->ev->vcpu == v) break;
    if (!a) return vmi__xen_quiet(x, 0); /* cleared since (its step was switched off) */
    return vmi__xen_deliver(x, a->ev, hit, 0);
}

/* The access a watchpoint caught has happened: its frame is watched again
   and the watchpoint reported, at the instruction after it. */
static vmi_status vmi__xen_on_watch_step(vmi__xen *x, vmi_event_hit *hit) {
    uint32_t v = x->req.vcpu_id;
    vmi__xen_wstep w = x->wstep[v];
    vmi_status st = vmi__xen_watch_end(x, v), st2;
    if (st == VMI_OK && vmi__xen_find_arm(x, w.ev)) {
        if ((st = vmi__xen_deliver(x, w.ev, hit, 0)) != VMI_OK) return st;
        hit->addr = w.ev->addr;
        hit->access = w.access;
        hit->va = w.va;
        x->hit_watch = 1;
        return VMI_OK;
    }
    if (st == VMI_OK && x->step_user[v]) return vmi__xen_user_step(x, hit);
    if (!vmi__xen_stepping(x, v) && (st2 = vmi__xen_step(x, v, 0)) != VMI_OK && st == VMI_OK) st = st2;
    st2 = vmi__xen_respond(x, 0);
    return st != VMI_OK ? st : st2 != VMI_OK ? st2 : VMI_ERR_NOT_FOUND;
}

/* A step: the end of one over a breakpoint (its int3 goes back), of one
   through a watched access, a SINGLESTEP event's, or several. */
static vmi_status vmi__xen_on_step(vmi__xen *x, vmi_event_hit *hit) {
    static const uint8_t int3 = 0xCC;
    uint32_t v = x->req.vcpu_id;
    if (x->step_over[v] != VMI__XEN_NONE) {
        uint64_t pa = x->step_over[v];
        vmi_status st;
        x->step_over[v] = VMI__XEN_NONE;
        if (vmi__xen_bp_at(x, pa) && (st = vmi__xen_poke(x, pa, NULL, &int3)) != VMI_OK) {
            (void)vmi__xen_respond(x, vmi__xen_stepping(x, v) ? 0 : VMI__XEN_FLAG_TOGGLE_SINGLESTEP);
            return st;
        }
        if (!vmi__xen_stepping(x, v)) return vmi__xen_quiet(x, VMI__XEN_FLAG_TOGGLE_SINGLESTEP);
    }
    if (x->wstep[v].gfn != VMI__XEN_NONE) return vmi__xen_on_watch_step(x, hit);
    return vmi__xen_user_step(x, hit);
}

static vmi_status vmi__xen_handle(vmi__xen *x, vmi_event_hit *hit) {
    if (x->req.version != VMI__XEN_VM_EVENT_VERSION) {
        x->ring_broken = 1; /* no answer is possible in an ABI we do not know */
        return vmi__xen_fail(x, VMI_ERR_BACKEND, "vm_event interface version %u: this build speaks %u (Xen 4.17)",
                             (unsigned)x->req.version, VMI__XEN_VM_EVENT_VERSION);
    }
    memset(hit, 0, sizeof *hit);
    if (x->req.vcpu_id >= x->nvcpus) return vmi__xen_quiet(x, 0);
    switch (x->req.reason) {
    case VMI__XEN_REASON_MEM_ACCESS: return vmi__xen_on_mem(x, hit);
    case VMI__XEN_REASON_WRITE_CTRLREG:
    case VMI__XEN_REASON_MOV_TO_MSR: return vmi__xen_on_reg(x, hit);
    case VMI__XEN_REASON_SOFTWARE_BREAKPOINT: return vmi__xen_on_bp(x, hit);
    case VMI__XEN_REASON_SINGLESTEP: return vmi__xen_on_step(x, hit);
    default: return vmi__xen_quiet(x, 0);
    }
}

/* Waits on the event channel until it fires or the deadline passes (then
   checks that the domain still exists). */
static vmi_status vmi__xen_wait_fd(vmi__xen *x, uint64_t deadline) {
    struct pollfd p;
    uint64_t now = vmi__now_ms();
    int r, port;
    p.fd = x->evfd;
    p.events = POLLIN;
    p.revents = 0;
    r = poll(&p, 1, now >= deadline ? 0 : (int)vmi__min64(deadline - now, 60000));
    if (r < 0) return errno == EINTR ? VMI_OK : vmi__xen_oserr(x, errno, "poll on the event channel");
    if (r == 0) {
        vmi__xen_dominfo info;
        vmi_status st = vmi__xen_dominfo_get(x, &info);
        if (st != VMI_OK) return st;
        return vmi__now_ms() >= deadline ? VMI_ERR_TIMEOUT : VMI_OK;
    }
    if (p.revents & (POLLERR | POLLHUP | POLLNVAL))
        return vmi__xen_fail(x, VMI_ERR_BACKEND, "the event channel's descriptor failed");
    errno = 0;
    if ((port = x->api.xenevtchn_pending(x->xce)) < 0) return vmi__xen_oserr(x, errno, "xenevtchn_pending");
    if (x->api.xenevtchn_unmask(x->xce, (uint32_t)port) < 0) return vmi__xen_oserr(x, errno, "xenevtchn_unmask");
    return VMI_OK;
}

static vmi_status vmi__xen_event_wait(void *ctx, int timeout_ms, vmi_event_hit *hit) {
    vmi__xen *x = (vmi__xen *)ctx;
    uint64_t deadline = vmi__now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    vmi_status st;
    if ((st = vmi__xen_usable(x)) != VMI_OK) return st;
    if (x->delivered) return vmi__xen_fail(x, VMI_ERR_ARG, "an event waits for its resume()");
    if (!x->ring) { /* nothing armed: nothing can come, but the domain can go */
        vmi__xen_dominfo info;
        (void)poll(NULL, 0, timeout_ms > 0 ? timeout_ms : 0);
        return (st = vmi__xen_dominfo_get(x, &info)) != VMI_OK ? st : VMI_ERR_TIMEOUT;
    }
    if (x->ring_broken) return vmi__xen_fail(x, VMI_ERR_BACKEND, "the vm_event ring failed before: close and open again");
    if (x->again) { /* the step a watchpoint was reported at is a SINGLESTEP event's too */
        x->again = 0;
        memset(hit, 0, sizeof *hit);
        if ((st = vmi__xen_user_step(x, hit)) != VMI_ERR_NOT_FOUND) return st;
    }
    for (;;) {
        int r = vmi__xen_take(x);
        if (r < 0 && (x->ring_broken = 1) != 0)
            return vmi__xen_fail(x, VMI_ERR_BACKEND, "the vm_event ring's indexes make no sense (requests to %u, ours %u)",
                                 (unsigned)x->ring->req_prod, (unsigned)x->req_cons);
        if (r > 0) {
            if ((st = vmi__xen_handle(x, hit)) != VMI_ERR_NOT_FOUND) return st;
            continue;
        }
        if ((st = vmi__xen_wait_fd(x, deadline)) != VMI_OK) return st;
    }
}

static void vmi__xen_event_respond(void *ctx, const vmi_event_hit *hit, int response) {
    vmi__xen *x = (vmi__xen *)ctx;
    (void)hit;
    if (!x->delivered || !(response & VMI_EVENT_DENY)) return;
    if (x->req.reason == VMI__XEN_REASON_WRITE_CTRLREG || x->req.reason == VMI__XEN_REASON_MOV_TO_MSR)
        x->rsp_flags |= VMI__XEN_FLAG_DENY;
    else if (x->req.reason == VMI__XEN_REASON_MEM_ACCESS)
        x->rsp_flags |= VMI__XEN_FLAG_EMULATE_NOWRITE;
}

/* After a callback: a breakpoint still armed is stepped over with its
   original byte; an access a MEM_ACCESS callback let through that a
   watchpoint also caught is stepped through; a watchpoint's step ends
   (or stays held for the SINGLESTEP event's delivery); the answer goes to
   Xen and the domain runs on. */
static vmi_status vmi__xen_finish(vmi__xen *x) {
    uint32_t flags = x->rsp_flags, v = x->req.vcpu_id;
    vmi__xen_arm *a = vmi__xen_find_arm(x, x->hit_ev), *w = x->then_watch ? vmi__xen_find_arm(x, x->then_watch) : NULL;
    vmi_status st = VMI_OK, st2;
    x->delivered = 0;
    x->then_watch = NULL;
    if (x->req.reason == VMI__XEN_REASON_SOFTWARE_BREAKPOINT && a && a->ev->type == VMI_EVENT_BREAKPOINT &&
        (st = vmi__xen_poke(x, a->pa, NULL, &a->orig)) == VMI_OK) {
        if (!vmi__xen_stepping(x, v)) flags |= VMI__XEN_FLAG_TOGGLE_SINGLESTEP;
        x->step_over[v] = a->pa;
    }
    if (w && !(flags & VMI__XEN_FLAG_EMULATE_NOWRITE) && (st = vmi__xen_watch_begin(x, w)) == VMI_OK)
        flags &= ~VMI__XEN_FLAG_EMULATE;
    if (x->hit_watch) {
        x->hit_watch = 0;
        if (x->step_user[v]) {
            x->again = 1;
            return vmi__xen_unpause(x);
        }
        if (!vmi__xen_stepping(x, v)) st = vmi__xen_step(x, v, 0);
    }
    st2 = vmi__xen_respond(x, flags);
    if (st == VMI_OK) st = st2;
    st2 = vmi__xen_unpause(x);
    return st != VMI_OK ? st : st2;
}

static vmi_status vmi__xen_resume(void *ctx) {
    vmi__xen *x = (vmi__xen *)ctx;
    vmi_status st;
    if ((st = vmi__xen_usable(x)) != VMI_OK) return st;
    return x->delivered ? vmi__xen_finish(x) : vmi__xen_unpause(x);
}

/* ---- close ------------------------------------------------------------------------ */

/* Everything events changed goes back, with the domain held meanwhile:
   events, a request held or left on the ring, steps, the monitor. */
static void vmi__xen_drop_events(vmi__xen *x) {
    vmi__xen_arm *a;
    uint32_t v;
    int held = !x->dead && vmi__xen_pause(x) == VMI_OK;
    while ((a = x->arms) != NULL) {
        x->arms = a->next;
        if (!x->dead) (void)vmi__xen_disarm(x, a);
        vmi__xen_free(x, a->orig_access);
        vmi__xen_free(x, a);
    }
    if (!x->dead && x->ring) {
        if (x->delivered) {
            x->delivered = 0;
            (void)vmi__xen_respond(x, x->rsp_flags);
            (void)vmi__xen_unpause(x);
        }
        if (x->again) (void)vmi__xen_respond(x, 0);
        for (v = 0; v < x->nvcpus; v++)
            if (x->step_over[v] != VMI__XEN_NONE || x->wstep[v].gfn != VMI__XEN_NONE) (void)vmi__xen_step(x, v, 0);
        while (!x->ring_broken && vmi__xen_take(x) > 0) {
            if (x->req.version != VMI__XEN_VM_EVENT_VERSION) break;
            (void)vmi__xen_respond(x, 0);
        }
        (void)x->api.xc_monitor_disable(x->xch, x->domid); /* Xen lets vCPUs still held by it go */
    }
    if (x->port_bound) (void)x->api.xenevtchn_unbind(x->xce, x->local_port);
    if (x->xce) (void)x->api.xenevtchn_close(x->xce);
    if (x->ring) munmap((void *)x->ring, VMI__XEN_RING_PAGE);
    x->ring = NULL;
    if (held) (void)vmi__xen_unpause(x);
}

static const char *vmi__xen_last_error(void *ctx) { return ((vmi__xen *)ctx)->err; }

static void vmi__xen_destroy(vmi__xen *x) {
    uint32_t i;
    if (x->xch) vmi__xen_drop_events(x);
    while (x->pauses && !x->dead && vmi__xen_unpause(x) == VMI_OK) {
    }
    for (i = 0; x->chunks && i < x->nchunks; i++) vmi__xen_unmap(x, &x->chunks[i]);
    if (x->fmem) (void)x->api.xenforeignmemory_close(x->fmem);
    if (x->xch) (void)x->api.xc_interface_close(x->xch);
    vmi__xen_free(x, x->chunks);
    vmi__xen_free(x, x->step_user);
    vmi__xen_free(x, x->step_over);
    vmi__xen_free(x, x->wstep);
    vmi__xen_unload(x);
    x->alloc.free(x, x->alloc.user);
}

static void vmi__xen_close(void *ctx) { vmi__xen_destroy((vmi__xen *)ctx); }

/* ---- open --------------------------------------------------------------------------- */

static vmi_status vmi__xen_find_domain(vmi__xen *x, const char *target, struct xs_handle *xs) {
    char *end;
    unsigned long id = strtoul(target, &end, 10);
    if (*target >= '0' && *target <= '9' && !*end) {
        if (id >= 0x7ff0) return vmi__xen_fail(x, VMI_ERR_ARG, "domain id %lu is reserved", id); /* DOMID_FIRST_RESERVED */
        x->domid = (uint32_t)id;
        return VMI_OK;
    }
    if (!xs)
        return vmi__xen_fail(x, VMI_ERR_NOT_FOUND, "\"%s\" is not a domain id, and xenstore (for names) is not available",
                             target);
    return vmi__xen_by_name(x, xs, target);
}

static vmi_status vmi__xen_check_domain(vmi__xen *x, const vmi__xen_dominfo *info) {
    if (info->flags & VMI__XEN_DOMINF_DYING) return vmi__xen_fail(x, VMI_ERR_BACKEND, "domain %u is dying", (unsigned)x->domid);
    if (!(info->flags & VMI__XEN_DOMINF_HVM))
        return vmi__xen_fail(x, VMI_ERR_UNSUPPORTED, "domain %u is a PV guest: its page tables hold machine frames "
                             "and its memory needs the p2m, which this backend does not walk (HVM and PVH only)",
                             (unsigned)x->domid);
    if (info->max_vcpu_id >= VMI__XEN_MAX_VCPUS)
        return vmi__xen_fail(x, VMI_ERR_LIMIT, "domain %u: max_vcpu_id %u", (unsigned)x->domid, (unsigned)info->max_vcpu_id);
    x->nvcpus = info->max_vcpu_id + 1;
    return VMI_OK;
}

/* The domain, its memory map, its vCPUs; xenstore only meanwhile. */
static vmi_status vmi__xen_domain(vmi__xen *x, const char *target) {
    struct xs_handle *xs = x->api.xs_open ? x->api.xs_open(0) : NULL;
    vmi__xen_dominfo info;
    vmi_status st = vmi__xen_find_domain(x, target, xs);
    if (st == VMI_OK && (st = vmi__xen_dominfo_get(x, &info)) != VMI_OK && x->dead)
        st = vmi__xen_fail(x, VMI_ERR_NOT_FOUND, "there is no Xen domain %u", (unsigned)x->domid);
    if (st == VMI_OK) st = vmi__xen_check_domain(x, &info);
    if (st == VMI_OK) st = vmi__xen_layout(x, xs, &info);
    if (xs) x->api.xs_close(xs);
    return st;
}

static vmi_status vmi__xen_attach(vmi__xen *x, const vmi_xen_desc *desc) {
    vmi__xen_xtl *lg = (vmi__xen_xtl *)(void *)&x->logger;
    vmi__xen_cpu cpu;
    uint32_t i;
    vmi_status st;
    if ((st = vmi__xen_load(x)) != VMI_OK) return st;
    errno = 0;
    if (!(x->xch = x->api.xc_interface_open(lg, lg, 0)))
        return vmi__xen_oserr(x, errno, "xc_interface_open (is this a Xen dom0, and are we root?)");
    if (!(x->fmem = x->api.xenforeignmemory_open(lg, 0))) return vmi__xen_oserr(x, errno, "xenforeignmemory_open");
    if ((st = vmi__xen_domain(x, desc->domain)) != VMI_OK) return st;
    x->chunks = (vmi__xen_chunk *)vmi__xen_calloc(x, x->nchunks, sizeof *x->chunks);
    x->step_user = (uint8_t *)vmi__xen_calloc(x, x->nvcpus, 1);
    x->step_over = (uint64_t *)vmi__xen_calloc(x, x->nvcpus, sizeof *x->step_over);
    x->wstep = (vmi__xen_wstep *)vmi__xen_calloc(x, x->nvcpus, sizeof *x->wstep);
    if (!x->chunks || !x->step_user || !x->step_over || !x->wstep) return vmi__xen_fail(x, VMI_ERR_NOMEM, "domain state");
    for (i = 0; i < x->nchunks; i++) x->chunks[i].first = VMI__XEN_NONE;
    for (i = 0; i < x->nvcpus; i++) x->step_over[i] = x->wstep[i].gfn = VMI__XEN_NONE;
    if ((st = vmi__xen_cpu_get(x, 0, &cpu)) != VMI_OK) return st;
    x->arch = (cpu.msr_efer >> 10) & 1 ? VMI_ARCH_X86_64 : VMI_ARCH_X86; /* EFER.LMA */
    return VMI_OK;
}

static void vmi__xen_fill(vmi__xen *x, vmi_backend *out) {
    memset(out, 0, sizeof *out);
    out->name = "xen";
    out->format = x->hvm_vga ? "xen-hvm" : "xen-pvh";
    out->arch = x->arch;
    out->flags = VMI_BACKEND_LIVE | (x->writable ? VMI_BACKEND_WRITABLE : 0u);
    out->ctx = x;
    out->ranges = x->ranges;
    out->nranges = x->nranges;
    out->read_pa = vmi__xen_read_pa;
    out->write_pa = vmi__xen_write_pa;
    out->vcpu_count = vmi__xen_vcpu_count;
    out->get_regs = vmi__xen_get_regs;
    out->set_regs = vmi__xen_set_regs;
    out->pause = vmi__xen_pause;
    out->resume = vmi__xen_resume;
    out->event_set = vmi__xen_event_set;
    out->event_clear = vmi__xen_event_clear;
    out->event_wait = vmi__xen_event_wait;
    out->event_respond = vmi__xen_event_respond;
    out->last_error = vmi__xen_last_error;
    out->close = vmi__xen_close;
}

VMI_API vmi_status vmi_xen_open(const vmi_xen_desc *desc, vmi_backend *out, char *err, size_t errlen) {
    vmi_allocator a;
    vmi__xen *x;
    vmi_status st;
    if (err && errlen) err[0] = '\0';
    if (!desc || !out || !desc->domain || !desc->domain[0]) {
        if (err && errlen) snprintf(err, errlen, "vmi_xen_open: desc->domain is required");
        return VMI_ERR_ARG;
    }
    a = desc->allocator;
    if (!a.alloc && !a.free) {
        a.alloc = vmi__default_alloc;
        a.free = vmi__default_free;
        a.user = NULL;
    } else if (!a.alloc || !a.free) {
        if (err && errlen) snprintf(err, errlen, "vmi_xen_open: set both allocator.alloc and .free");
        return VMI_ERR_ARG;
    }
    if (!(x = (vmi__xen *)a.alloc(sizeof *x, a.user))) {
        if (err && errlen) snprintf(err, errlen, "vmi_xen_open: out of memory");
        return VMI_ERR_NOMEM;
    }
    memset(x, 0, sizeof *x);
    x->alloc = a;
    x->evfd = -1;
    x->writable = desc->writable != 0;
    x->nchunks = desc->map_cache_chunks ? (uint32_t)vmi__min64(desc->map_cache_chunks, VMI__XEN_MAX_CHUNKS) : 64;
    x->ttl_ms = desc->map_ttl_ms ? desc->map_ttl_ms : 1000;
    x->logger.vmessage = vmi__xen_vmessage;
    x->logger.progress = NULL; /* allowed: no progress reports */
    x->logger.destroy = vmi__xen_destroy_logger;
    x->logger.buf = x->liberr;
    if ((st = vmi__xen_attach(x, desc)) != VMI_OK) {
        if (err && errlen) snprintf(err, errlen, "%s", x->err);
        vmi__xen_destroy(x);
        return st;
    }
    vmi__xen_fill(x, out);
    x->err[0] = '\0';
    return VMI_OK;
}

#else /* !VMI__XEN_HOST */

VMI_API vmi_status vmi_xen_open(const vmi_xen_desc *desc, vmi_backend *out, char *err, size_t errlen) {
    (void)desc;
    (void)out;
    if (err && errlen) snprintf(err, errlen, "the Xen backend needs an x86-64 Linux host and GCC or Clang");
    return VMI_ERR_UNSUPPORTED;
}

#endif /* VMI__XEN_HOST */
#endif /* VMI_XEN_IMPL_INCLUDED */
#endif /* VMI_XEN_IMPLEMENTATION || VMI_IMPLEMENTATION */
