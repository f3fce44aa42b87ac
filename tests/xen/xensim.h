/* xensim.h - a simulated Xen hypervisor for vmi_xen.h's tests.

   xensim.c implements, under their real names and prototypes (it includes
   Xen 4.17's headers), the Xen library calls vmi_xen.h makes: libxenctrl,
   libxenforeignmemory, libxenevtchn and libxenstore. One HVM domain (id and
   name chosen at load) runs "on" it: its memory is a lab capture's mem.raw
   (copied into a memfd, so that every foreign mapping of a frame shares the
   frame as Xen's do), its vCPU 0 the capture's registers
   (info_registers.txt). Nothing executes: the test scripts what the guest
   does (xensim_cr_write, xensim_exec, ...), the simulator raises vm_event
   requests on a real shared ring (io/ring.h's front end) and signals the
   event channel (a pipe), and applies the backend's responses as Xen does:
   DENY keeps the old value, EMULATE completes the access (NOWRITE without
   its write), TOGGLE_SINGLESTEP flips the vCPU's monitor trap, a vCPU that
   is answered runs on once the domain is unpaused (an int3 still there
   traps again; a stepping vCPU raises a single-step request).

   Mappings are counted (live, total, bad unmaps), and failures can be
   injected. xc_interface_open loads the domain from the environment when
   the test did not: VMI_XENSIM_GUEST (a capture directory, default
   build/guests/x86_64), VMI_XENSIM_DOMID (default 7), VMI_XENSIM_NAME
   (default "lab"). */
#ifndef XENSIM_H_INCLUDED
#define XENSIM_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum xensim_fail {
    XENSIM_OK = 0,
    XENSIM_DOMAIN_GONE,   /* the domain disappears: ESRCH from every call */
    XENSIM_MAP_REFUSED,   /* xenforeignmemory_map fails (EPERM) */
    XENSIM_FRAME_REFUSED, /* arg: this frame is refused in err[] */
    XENSIM_MONITOR_BUSY,  /* xc_monitor_enable: EBUSY */
    XENSIM_RING_GARBAGE,  /* the ring's req_prod jumps far ahead */
    XENSIM_RING_VERSION,  /* requests claim vm_event version 99 */
    XENSIM_NO_XENSTORE,   /* xs_open fails */
    XENSIM_NO_XEN         /* xc_interface_open fails as on a host without Xen */
};

typedef struct xensim_stats {
    long live_maps, live_pages, maps, unmaps, bad_unmaps, max_live_maps;
    long handles_xc, handles_fmem, handles_evtchn, handles_xs;
    long proc_guest_pages; /* guest frames mapped here, as /proc/self/maps says */
    int pause_count, monitor_on, ring_page_mapped;
    long requests, responses, bad_responses;
    uint32_t last_rsp_flags;
    long traps_injected, guest_int3, executed, accesses, writes_suppressed, setcontexts;
    int vcpus_paused_by_events, paused_at_disable;
} xensim_stats;

/* Loads a capture directory (mem.raw, info_registers.txt) as domain
   domid named name. 0 on success, else -1 with a message on stderr. */
int xensim_load(const char *dir, uint32_t domid, const char *name);
void xensim_unload(void);
int xensim_loaded(void);
void xensim_set_vcpus(uint32_t n); /* vCPU 0 cloned */
void xensim_set_pvh(int pvh);      /* no emulated VGA: no hole at 0xA0000 */
void xensim_set_pv(int pv);        /* a PV domain (the backend refuses it) */
void xensim_fail(enum xensim_fail what, uint64_t arg);
void xensim_stats_get(xensim_stats *out);
void xensim_reset_peak(void); /* max_live_maps from now on */

/* The guest, scripted. Each returns 1 when it raised a vm_event request,
   0 when it completed at once, -1 on misuse. */
int xensim_cr_write(uint32_t vcpu, int cr, uint64_t value); /* cr: 0, 3 or 4 */
int xensim_msr_write(uint32_t vcpu, uint32_t msr, uint64_t value);
/* The instruction of len bytes at va (guest-physical pa) executes. */
int xensim_exec(uint32_t vcpu, uint64_t va, uint64_t pa, uint32_t len);
/* An access (1 read, 2 write, 4 execute) to pa at linear address gla (0:
   the request has no linear address); a write stores `value`. Completed
   on a single-stepped vCPU, it raises the step's request. */
int xensim_access(uint32_t vcpu, uint64_t pa, uint32_t access, uint64_t gla, uint8_t value);

uint64_t xensim_cr(uint32_t vcpu, int cr);
uint64_t xensim_rip(uint32_t vcpu);
uint64_t xensim_msr(uint32_t msr);
uint8_t xensim_byte(uint64_t pa);
int xensim_vcpu_stepping(uint32_t vcpu);
int xensim_vcpu_waiting(uint32_t vcpu); /* paused by a request not yet answered */
int xensim_frame_access(uint64_t gfn);  /* xenmem_access_t */
void xensim_set_frame_access(uint64_t gfn, int access);

#ifdef __cplusplus
}
#endif
#endif
