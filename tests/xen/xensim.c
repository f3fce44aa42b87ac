/* xensim.c - a simulated Xen hypervisor (see xensim.h). Built with Xen
   4.17's own headers (they need GNU C: -std=gnu11), so every function here
   has the real prototype, and the requests it writes use the real
   vm_event layout and ring macros: the backend reads them with its own
   declarations. Test code: one simulated domain, globals, no threads. */
#define _GNU_SOURCE
#define XC_WANT_COMPAT_DEVICEMODEL_API
#include <xenctrl.h>
#include <xenevtchn.h>
#include <xenforeignmemory.h>
#include <xenstore.h>
#include <xentoollog.h>
#include <xen/hvm/save.h>
#include <xen/vm_event.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "xensim.h"

#define SIM_PAGE 4096u
#define SIM_MAX_VCPUS 8u
#define SIM_MAX_MAPS 65536u
#define SIM_PORT_REMOTE 42u
#define SIM_PORT_LOCAL 5u
#define SIM_MAX_GPFN 0xfefffu /* Xen's special pages sit just below 0xff000 */
#define SIM_MAX_MSRS 16u

enum { PEND_NONE, PEND_CR, PEND_MSR, PEND_EXEC, PEND_ACCESS, PEND_STEP };

typedef struct sim_vcpu {
    struct hvm_hw_cpu cpu;
    int waiting;  /* paused by a request */
    int runnable; /* answered: continues when the domain runs */
    int step;     /* monitor trap flag */
    int pend;     /* what it was doing when it raised the request */
    uint64_t a, b, c;
    uint32_t len, access;
    uint32_t rsp_flags;
    int trapped;  /* a #BP was injected since its request */
} sim_vcpu;

typedef struct sim_map {
    void *addr;
    size_t pages;
} sim_map;

static struct {
    int loaded;
    uint32_t domid;
    char name[64];
    int gone, pvh, pv;
    int memfd;
    uint8_t *mem;
    uint64_t frames;
    uint32_t nvcpus;
    sim_vcpu vcpu[SIM_MAX_VCPUS];
    enum xensim_fail fail;
    uint64_t fail_arg;
    sim_map *maps;
    size_t nmaps;
    xensim_stats st;
    /* monitor */
    void *ring;
    vm_event_front_ring_t front;
    int cr_on[4], cr_onchange[4], bp_on, step_on;
    uint32_t msr_on[SIM_MAX_MSRS], nmsr_on;
    uint32_t msr_idx[SIM_MAX_MSRS];
    uint64_t msr_val[SIM_MAX_MSRS];
    uint32_t nmsr;
    uint8_t *access; /* per frame, xenmem_access_t */
    int pipe[2];
    int bound;
    xentoollog_logger *logger;
    int kicking;
} S = {.memfd = -1, .pipe = {-1, -1}};

static char sim_xc, sim_fmem, sim_evt, sim_xs; /* what the handles point at */

static void sim_log(xentoollog_logger *lg, const char *ctx, const char *fmt, ...) {
    va_list ap;
    if (!lg || !lg->vmessage) return;
    va_start(ap, fmt);
    lg->vmessage(lg, XTL_ERROR, errno, ctx, fmt, ap);
    va_end(ap);
}

static int sim_err(int e) {
    errno = e;
    return -1;
}

/* Every call on the domain: ESRCH once it is gone or for another id. */
static int sim_dom(uint32_t domid) {
    if (!S.loaded || S.gone || S.fail == XENSIM_DOMAIN_GONE || domid != S.domid) return sim_err(ESRCH);
    return 0;
}

/* ---- loading ---------------------------------------------------------------- */

static uint64_t sim_hex(const char *s) { return strtoull(s, NULL, 16); }

static void sim_seg(struct hvm_hw_cpu *c, const char *name, const char *rest) {
    unsigned sel = 0;
    unsigned long long base = 0, limit = 0;
    int table = !strcmp(name, "gdt") || !strcmp(name, "idt"); /* "GDT=     base limit": no selector */
    if (table ? sscanf(rest, "%llx %llx", &base, &limit) < 2 : sscanf(rest, "%x %llx %llx", &sel, &base, &limit) < 3)
        return;
#define SEG(n)                                                                                     \
    if (!strcmp(name, #n)) {                                                                       \
        c->n##_sel = sel, c->n##_base = base, c->n##_limit = (uint32_t)limit;                      \
        return;                                                                                    \
    }
    SEG(cs) SEG(ds) SEG(es) SEG(fs) SEG(gs) SEG(ss) SEG(tr)
#undef SEG
    if (!strcmp(name, "gdt")) c->gdtr_base = base, c->gdtr_limit = (uint32_t)limit;
    if (!strcmp(name, "idt")) c->idtr_base = base, c->idtr_limit = (uint32_t)limit;
}

static void sim_reg(struct hvm_hw_cpu *c, const char *name, const char *val) {
    static const struct { const char *n; size_t off; } regs[] = {
#define R(n, f) {n, offsetof(struct hvm_hw_cpu, f)}
        R("RAX", rax), R("RBX", rbx), R("RCX", rcx), R("RDX", rdx), R("RSI", rsi), R("RDI", rdi), R("RBP", rbp),
        R("RSP", rsp), R("R8", r8), R("R9", r9), R("R10", r10), R("R11", r11), R("R12", r12), R("R13", r13),
        R("R14", r14), R("R15", r15), R("RIP", rip), R("RFL", rflags), R("CR0", cr0), R("CR2", cr2),
        R("CR3", cr3), R("CR4", cr4), R("EFER", msr_efer), R("DR6", dr6), R("DR7", dr7),
#undef R
    };
    size_t i;
    for (i = 0; i < sizeof regs / sizeof regs[0]; i++)
        if (!strcmp(name, regs[i].n)) {
            uint64_t v = sim_hex(val);
            memcpy((uint8_t *)c + regs[i].off, &v, 8);
        }
}

/* QEMU's `info registers`: "RAX=... RBX=..." and segment lines "CS =0010 base limit flags". */
static int sim_load_regs(const char *path, struct hvm_hw_cpu *c) {
    char line[512];
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    memset(c, 0, sizeof *c);
    while (fgets(line, sizeof line, f)) {
        char *eq = strchr(line, '='), *tok, *save = NULL;
        if (!eq) continue;
        if (eq - line <= 4 && (eq[-1] == ' ' || !strncmp(line, "GDT", 3) || !strncmp(line, "IDT", 3) ||
                               !strncmp(line, "LDT", 3) || !strncmp(line, "TR", 2))) {
            char name[8] = {0};
            size_t i;
            for (i = 0; i < 7 && line[i] != ' ' && line[i] != '='; i++) name[i] = (char)(line[i] | 0x20);
            sim_seg(c, name, eq + 1);
            continue;
        }
        for (tok = strtok_r(line, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save)) {
            char *e = strchr(tok, '=');
            if (e && e[1]) {
                *e = '\0';
                sim_reg(c, tok, e + 1);
            }
        }
    }
    fclose(f);
    return c->cr3 ? 0 : -1;
}

static int sim_load_mem(const char *path) {
    int fd = open(path, O_RDONLY);
    off_t size;
    uint64_t done = 0;
    if (fd < 0) return -1;
    size = lseek(fd, 0, SEEK_END);
    if (size <= 0 || size % SIM_PAGE || (S.memfd = memfd_create("xensim-guest", 0)) < 0 || ftruncate(S.memfd, size) < 0) {
        close(fd);
        return -1;
    }
    S.mem = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, S.memfd, 0);
    while (S.mem != MAP_FAILED && done < (uint64_t)size) {
        ssize_t n = pread(fd, S.mem + done, (size_t)((uint64_t)size - done), (off_t)done);
        if (n <= 0) break;
        done += (uint64_t)n;
    }
    close(fd);
    if (S.mem == MAP_FAILED || done != (uint64_t)size) return -1;
    S.frames = (uint64_t)size / SIM_PAGE;
    S.access = calloc(S.frames, 1);
    if (!S.access) return -1;
    memset(S.access, XENMEM_access_rwx, S.frames);
    return 0;
}

static int sim_load(const char *dir, uint32_t domid, const char *name, int quiet) {
    char path[1024];
    xensim_unload();
    snprintf(path, sizeof path, "%s/info_registers.txt", dir);
    if (sim_load_regs(path, &S.vcpu[0].cpu) < 0) {
        if (!quiet) fprintf(stderr, "xensim: no registers in %s\n", path);
        return -1;
    }
    snprintf(path, sizeof path, "%s/mem.raw", dir);
    if (sim_load_mem(path) < 0) {
        if (!quiet) fprintf(stderr, "xensim: cannot load %s: %s\n", path, strerror(errno));
        xensim_unload();
        return -1;
    }
    S.vcpu[0].cpu.cs_arbytes = 0xa09b; /* long-mode code */
    S.nvcpus = 1;
    S.domid = domid;
    snprintf(S.name, sizeof S.name, "%s", name);
    S.loaded = 1;
    return 0;
}

int xensim_load(const char *dir, uint32_t domid, const char *name) { return sim_load(dir, domid, name, 0); }

void xensim_unload(void) {
    if (S.mem && S.mem != MAP_FAILED) munmap(S.mem, S.frames * SIM_PAGE);
    if (S.memfd >= 0) close(S.memfd);
    free(S.access);
    free(S.maps);
    memset(&S, 0, sizeof S);
    S.memfd = -1;
    S.pipe[0] = S.pipe[1] = -1;
}

int xensim_loaded(void) { return S.loaded; }

void xensim_set_vcpus(uint32_t n) {
    uint32_t i;
    if (n < 1 || n > SIM_MAX_VCPUS) return;
    for (i = 1; i < n; i++) S.vcpu[i] = S.vcpu[0];
    S.nvcpus = n;
}

void xensim_set_pvh(int pvh) { S.pvh = pvh; }
void xensim_reset_peak(void) { S.st.max_live_maps = S.st.live_maps; }
void xensim_set_pv(int pv) { S.pv = pv; }

void xensim_fail(enum xensim_fail what, uint64_t arg) {
    S.fail = what;
    S.fail_arg = arg;
    if (what == XENSIM_RING_GARBAGE && S.ring) S.front.sring->req_prod += 1000;
    if (what == XENSIM_DOMAIN_GONE) { /* its vm_event goes with it */
        uint32_t i;
        S.ring = NULL;
        for (i = 0; i < S.nvcpus; i++) S.vcpu[i].waiting = 0;
    }
}

/* Pages of the guest's memfd and of the ring's mapped in this process, by
   the kernel's account (/proc/self/maps), not ours. */
static void sim_proc_maps(long *guest_pages, int *ring) {
    char line[512];
    FILE *f = fopen("/proc/self/maps", "r");
    *guest_pages = 0;
    *ring = 0;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx", &lo, &hi) != 2) continue;
        if (strstr(line, "/memfd:xensim-ring")) *ring = 1;
        else if (strstr(line, "/memfd:xensim-guest") && (void *)lo != S.mem) *guest_pages += (long)((hi - lo) / SIM_PAGE);
    }
    if (f) fclose(f);
}

void xensim_stats_get(xensim_stats *out) {
    uint32_t i;
    sim_proc_maps(&S.st.proc_guest_pages, &S.st.ring_page_mapped);
    S.st.monitor_on = S.ring != NULL;
    S.st.vcpus_paused_by_events = 0;
    for (i = 0; i < S.nvcpus; i++) S.st.vcpus_paused_by_events += S.vcpu[i].waiting;
    *out = S.st;
}

static void sim_autoload(void) {
    const char *dir = getenv("VMI_XENSIM_GUEST"), *id = getenv("VMI_XENSIM_DOMID"), *name = getenv("VMI_XENSIM_NAME");
    if (S.loaded) return;
    /* quiet: a missing capture is "no Xen here", which xc_interface_open says */
    (void)sim_load(dir ? dir : "build/guests/x86_64", id ? (uint32_t)strtoul(id, NULL, 10) : 7, name ? name : "lab", 1);
}

/* ---- frames -------------------------------------------------------------------- */

static int sim_frame_ok(uint64_t gfn) {
    if (gfn >= S.frames) return 0;
    if (!S.pvh && gfn >= 0xa0 && gfn < 0xc0) return 0; /* the VGA hole Xen's builder leaves */
    return !(S.fail == XENSIM_FRAME_REFUSED && gfn == S.fail_arg);
}

uint8_t xensim_byte(uint64_t pa) { return pa < S.frames * SIM_PAGE ? S.mem[pa] : 0; }

int xensim_frame_access(uint64_t gfn) { return gfn < S.frames ? S.access[gfn] : -1; }

void xensim_set_frame_access(uint64_t gfn, int access) {
    if (gfn < S.frames) S.access[gfn] = (uint8_t)access;
}

/* ---- libxenctrl ------------------------------------------------------------------- */

xc_interface *xc_interface_open(xentoollog_logger *logger, xentoollog_logger *dombuild_logger, unsigned open_flags) {
    (void)dombuild_logger;
    (void)open_flags;
    sim_autoload();
    S.logger = logger;
    if (!S.loaded || S.fail == XENSIM_NO_XEN) {
        errno = ENOENT;
        sim_log(logger, "xencall", "Could not obtain handle on privileged command interface: %s", strerror(ENOENT));
        return NULL;
    }
    S.st.handles_xc++;
    return (xc_interface *)&sim_xc;
}

int xc_interface_close(xc_interface *xch) {
    if (xch != (xc_interface *)&sim_xc) return sim_err(EINVAL);
    S.st.handles_xc--;
    return 0;
}

static void sim_dominfo(xc_domaininfo_t *info, uint32_t id) {
    memset(info, 0, sizeof *info);
    info->domain = (domid_t)id;
    info->flags = XEN_DOMINF_running;
    if (id == 0) return; /* dom0: PV */
    if (!S.pv) info->flags |= XEN_DOMINF_hvm_guest | XEN_DOMINF_hap;
    if (S.st.pause_count) info->flags |= XEN_DOMINF_paused;
    info->tot_pages = S.frames + 16;
    info->max_pages = S.frames + 2048 + 256; /* + videoram + slack, as libxl sets it */
    info->nr_online_vcpus = S.nvcpus;
    info->max_vcpu_id = S.nvcpus - 1;
    info->arch_config.emulation_flags = S.pvh ? XEN_X86_EMU_LAPIC : XEN_X86_EMU_ALL;
}

int xc_domain_getinfolist(xc_interface *xch, uint32_t first_domain, unsigned int max_domains, xc_domaininfo_t *info) {
    int n = 0;
    if (xch != (xc_interface *)&sim_xc) return sim_err(EINVAL);
    if (first_domain == 0 && max_domains > 0) sim_dominfo(&info[n++], 0);
    if (S.loaded && !S.gone && S.fail != XENSIM_DOMAIN_GONE && S.domid >= first_domain && (unsigned)n < max_domains)
        sim_dominfo(&info[n++], S.domid);
    return n;
}

int xc_domain_maximum_gpfn(xc_interface *xch, uint32_t domid, xen_pfn_t *gpfns) {
    (void)xch;
    if (sim_dom(domid)) return -1;
    *gpfns = SIM_MAX_GPFN;
    return 0;
}

static void sim_kick(void);

int xc_domain_pause(xc_interface *xch, uint32_t domid) {
    (void)xch;
    if (sim_dom(domid)) return -1;
    S.st.pause_count++;
    return 0;
}

int xc_domain_unpause(xc_interface *xch, uint32_t domid) {
    (void)xch;
    if (sim_dom(domid)) return -1;
    if (S.st.pause_count <= 0) return sim_err(EINVAL);
    if (--S.st.pause_count == 0) sim_kick();
    return 0;
}

/* Whole context: HEADER, one CPU record per vCPU, END. */
static uint32_t sim_context_size(void) {
    return (uint32_t)(3 * sizeof(struct hvm_save_descriptor) + sizeof(struct hvm_save_header) +
                      S.nvcpus * (sizeof(struct hvm_save_descriptor) + sizeof(struct hvm_hw_cpu)) -
                      sizeof(struct hvm_save_descriptor));
}

static uint8_t *sim_put(uint8_t *p, uint16_t code, uint16_t inst, const void *data, uint32_t len) {
    struct hvm_save_descriptor d = {code, inst, len};
    memcpy(p, &d, sizeof d);
    if (len) memcpy(p + sizeof d, data, len);
    return p + sizeof d + len;
}

int xc_domain_hvm_getcontext(xc_interface *xch, uint32_t domid, uint8_t *ctxt_buf, uint32_t size) {
    struct hvm_save_header h = {.magic = HVM_FILE_MAGIC, .version = HVM_FILE_VERSION};
    uint8_t *p = ctxt_buf;
    uint32_t i;
    (void)xch;
    if (sim_dom(domid)) return -1;
    if (!ctxt_buf) return (int)sim_context_size();
    if (size < sim_context_size()) return sim_err(ENOSPC);
    p = sim_put(p, HVM_SAVE_CODE(HEADER), 0, &h, sizeof h);
    for (i = 0; i < S.nvcpus; i++) p = sim_put(p, HVM_SAVE_CODE(CPU), (uint16_t)i, &S.vcpu[i].cpu, sizeof S.vcpu[i].cpu);
    p = sim_put(p, HVM_SAVE_CODE(END), 0, NULL, 0);
    return (int)(p - ctxt_buf);
}

int xc_domain_hvm_getcontext_partial(xc_interface *xch, uint32_t domid, uint16_t typecode, uint16_t instance,
                                     void *ctxt_buf, uint32_t size) {
    (void)xch;
    if (sim_dom(domid)) return -1;
    if (typecode != HVM_SAVE_CODE(CPU) || instance >= S.nvcpus || size < sizeof(struct hvm_hw_cpu)) return sim_err(EINVAL);
    memcpy(ctxt_buf, &S.vcpu[instance].cpu, sizeof(struct hvm_hw_cpu));
    return 0;
}

/* Applies the CPU records; the header must come first and END last. */
int xc_domain_hvm_setcontext(xc_interface *xch, uint32_t domid, uint8_t *buf, uint32_t size) {
    struct hvm_save_descriptor d;
    uint32_t off = 0, n = 0;
    (void)xch;
    if (sim_dom(domid)) return -1;
    if (S.st.pause_count <= 0) return sim_err(EBUSY); /* the backend promises a paused domain */
    for (;;) {
        if (size - off < sizeof d) return sim_err(EINVAL);
        memcpy(&d, buf + off, sizeof d);
        off += sizeof d;
        if (d.length > size - off || (n++ == 0) != (d.typecode == HVM_SAVE_CODE(HEADER))) return sim_err(EINVAL);
        if (d.typecode == HVM_SAVE_CODE(END)) break;
        if (d.typecode == HVM_SAVE_CODE(CPU)) {
            if (d.instance >= S.nvcpus || d.length != sizeof(struct hvm_hw_cpu)) return sim_err(EINVAL);
            memcpy(&S.vcpu[d.instance].cpu, buf + off, sizeof(struct hvm_hw_cpu));
        }
        off += d.length;
    }
    S.st.setcontexts++;
    return 0;
}

int xc_domain_debug_control(xc_interface *xch, uint32_t domid, uint32_t sop, uint32_t vcpu) {
    (void)xch;
    if (sim_dom(domid)) return -1;
    if (vcpu >= S.nvcpus || sop > XEN_DOMCTL_DEBUG_OP_SINGLE_STEP_ON) return sim_err(EINVAL);
    S.vcpu[vcpu].step = sop == XEN_DOMCTL_DEBUG_OP_SINGLE_STEP_ON;
    return 0;
}

/* ---- vm_event ---------------------------------------------------------------------- */

void *xc_monitor_enable(xc_interface *xch, uint32_t domid, uint32_t *port) {
    (void)xch;
    if (sim_dom(domid)) return NULL;
    if (S.fail == XENSIM_MONITOR_BUSY || S.ring) {
        errno = EBUSY;
        return NULL;
    }
    {   /* a memfd of its own, so that /proc/self/maps shows whether the backend unmapped it */
        int fd = memfd_create("xensim-ring", 0);
        S.ring = fd >= 0 && ftruncate(fd, SIM_PAGE) == 0
                     ? mmap(NULL, SIM_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
        if (fd >= 0) close(fd);
    }
    if (S.ring == MAP_FAILED) {
        S.ring = NULL;
        return NULL;
    }
    memset(S.ring, 0xa5, SIM_PAGE); /* the consumer initializes the shared ring */
    FRONT_RING_INIT(&S.front, (vm_event_sring_t *)S.ring, SIM_PAGE);
    *port = SIM_PORT_REMOTE;
    return S.ring;
}

int xc_monitor_disable(xc_interface *xch, uint32_t domid) {
    uint32_t i;
    (void)xch;
    if (sim_dom(domid)) return -1;
    if (!S.ring) return sim_err(ENODEV);
    S.ring = NULL; /* the backend unmaps its page */
    memset(S.cr_on, 0, sizeof S.cr_on);
    S.nmsr_on = 0;
    S.bp_on = S.step_on = 0;
    for (i = 0; i < S.nvcpus; i++)
        if (S.vcpu[i].waiting) { /* as Xen does: vCPUs paused for vm_event go on */
            S.st.paused_at_disable++;
            S.vcpu[i].waiting = 0;
        }
    return 0;
}

int xc_monitor_write_ctrlreg(xc_interface *xch, uint32_t domid, uint16_t index, bool enable, bool sync,
                             uint64_t bitmask, bool onchangeonly) {
    (void)xch;
    (void)bitmask;
    if (sim_dom(domid)) return -1;
    if (index > VM_EVENT_X86_XCR0 || (enable && !sync)) return sim_err(EINVAL);
    S.cr_on[index] = enable;
    S.cr_onchange[index] = onchangeonly;
    return 0;
}

int xc_monitor_mov_to_msr(xc_interface *xch, uint32_t domid, uint32_t msr, bool enable, bool onchangeonly) {
    uint32_t i;
    (void)xch;
    (void)onchangeonly;
    if (sim_dom(domid)) return -1;
    for (i = 0; i < S.nmsr_on && S.msr_on[i] != msr; i++) {
    }
    if (enable && i == S.nmsr_on && S.nmsr_on < SIM_MAX_MSRS) S.msr_on[S.nmsr_on++] = msr;
    if (!enable && i < S.nmsr_on) S.msr_on[i] = S.msr_on[--S.nmsr_on];
    return 0;
}

int xc_monitor_singlestep(xc_interface *xch, uint32_t domid, bool enable) {
    (void)xch;
    if (sim_dom(domid)) return -1;
    S.step_on = enable;
    return 0;
}

int xc_monitor_software_breakpoint(xc_interface *xch, uint32_t domid, bool enable) {
    (void)xch;
    if (sim_dom(domid)) return -1;
    S.bp_on = enable;
    return 0;
}

int xc_set_mem_access(xc_interface *xch, uint32_t domain_id, xenmem_access_t access, uint64_t first_pfn, uint32_t nr) {
    (void)xch;
    if (sim_dom(domain_id)) return -1;
    if ((unsigned)access > XENMEM_access_rwx || first_pfn >= S.frames || nr > S.frames - first_pfn) return sim_err(EINVAL);
    memset(S.access + first_pfn, (int)access, nr);
    return 0;
}

int xc_get_mem_access(xc_interface *xch, uint32_t domain_id, uint64_t pfn, xenmem_access_t *access) {
    (void)xch;
    if (sim_dom(domain_id)) return -1;
    if (pfn >= S.frames) return sim_err(EINVAL);
    *access = (xenmem_access_t)S.access[pfn];
    return 0;
}

int xc_hvm_inject_trap(xc_interface *xch, uint32_t domid, int vcpu, uint8_t vector, uint8_t type, uint32_t error_code,
                       uint8_t insn_len, uint64_t cr2) {
    (void)xch;
    (void)error_code;
    (void)cr2;
    if (sim_dom(domid)) return -1;
    if (vcpu < 0 || (uint32_t)vcpu >= S.nvcpus || vector != 3 || type != 6 || insn_len != 1) return sim_err(EINVAL);
    S.st.traps_injected++;
    S.vcpu[vcpu].trapped = 1;
    return 0;
}

/* Puts a request for vCPU v on the ring, stops the vCPU and signals. */
static int sim_request(uint32_t v, uint32_t reason, const vm_event_request_t *u) {
    vm_event_request_t req = *u;
    sim_vcpu *c = &S.vcpu[v];
    if (RING_FULL(&S.front)) return -1;
    req.version = S.fail == XENSIM_RING_VERSION ? 99 : VM_EVENT_INTERFACE_VERSION;
    req.flags = VM_EVENT_FLAG_VCPU_PAUSED;
    req.reason = reason;
    req.vcpu_id = v;
    req.data.regs.x86.rip = c->cpu.rip;
    req.data.regs.x86.cr0 = c->cpu.cr0;
    req.data.regs.x86.cr3 = c->cpu.cr3;
    req.data.regs.x86.cr4 = c->cpu.cr4;
    req.data.regs.x86.msr_efer = c->cpu.msr_efer;
    *RING_GET_REQUEST(&S.front, S.front.req_prod_pvt) = req;
    S.front.req_prod_pvt++;
    RING_PUSH_REQUESTS(&S.front);
    c->waiting = 1;
    c->trapped = 0;
    S.st.requests++;
    if (S.pipe[1] >= 0 && write(S.pipe[1], "!", 1) != 1) return -1;
    return 1;
}

static uint64_t *sim_cr_field(sim_vcpu *c, int cr) {
    return cr == 0 ? &c->cpu.cr0 : cr == 3 ? &c->cpu.cr3 : &c->cpu.cr4;
}

int xensim_cr_write(uint32_t vcpu, int cr, uint64_t value) {
    int idx = cr == 0 ? VM_EVENT_X86_CR0 : cr == 3 ? VM_EVENT_X86_CR3 : cr == 4 ? VM_EVENT_X86_CR4 : -1;
    sim_vcpu *c = &S.vcpu[vcpu];
    vm_event_request_t r;
    uint64_t old;
    if (idx < 0 || vcpu >= S.nvcpus || c->waiting) return -1;
    old = *sim_cr_field(c, cr);
    if (!S.ring || !S.cr_on[idx] || (S.cr_onchange[idx] && old == value)) {
        *sim_cr_field(c, cr) = value;
        return 0;
    }
    memset(&r, 0, sizeof r);
    r.u.write_ctrlreg.index = (uint32_t)idx;
    r.u.write_ctrlreg.new_value = value;
    r.u.write_ctrlreg.old_value = old;
    c->pend = PEND_CR, c->a = (uint64_t)cr, c->b = value;
    return sim_request(vcpu, VM_EVENT_REASON_WRITE_CTRLREG, &r);
}

static uint64_t *sim_msr_slot(uint32_t msr) {
    uint32_t i;
    for (i = 0; i < S.nmsr; i++)
        if (S.msr_idx[i] == msr) return &S.msr_val[i];
    if (S.nmsr == SIM_MAX_MSRS) return NULL;
    S.msr_idx[S.nmsr] = msr;
    S.msr_val[S.nmsr] = 0;
    return &S.msr_val[S.nmsr++];
}

uint64_t xensim_msr(uint32_t msr) {
    uint64_t *p = sim_msr_slot(msr);
    return p ? *p : 0;
}

int xensim_msr_write(uint32_t vcpu, uint32_t msr, uint64_t value) {
    uint64_t *slot = sim_msr_slot(msr);
    vm_event_request_t r;
    uint32_t i;
    if (!slot || vcpu >= S.nvcpus || S.vcpu[vcpu].waiting) return -1;
    for (i = 0; i < S.nmsr_on && S.msr_on[i] != msr; i++) {
    }
    if (!S.ring || i == S.nmsr_on || *slot == value) {
        *slot = value;
        return 0;
    }
    memset(&r, 0, sizeof r);
    r.u.mov_to_msr.msr = msr;
    r.u.mov_to_msr.new_value = value;
    r.u.mov_to_msr.old_value = *slot;
    S.vcpu[vcpu].pend = PEND_MSR, S.vcpu[vcpu].a = msr, S.vcpu[vcpu].b = value;
    return sim_request(vcpu, VM_EVENT_REASON_MOV_TO_MSR, &r);
}

int xensim_exec(uint32_t vcpu, uint64_t va, uint64_t pa, uint32_t len) {
    sim_vcpu *c = &S.vcpu[vcpu];
    vm_event_request_t r;
    if (vcpu >= S.nvcpus || c->waiting || pa >= S.frames * SIM_PAGE || !len) return -1;
    c->cpu.rip = va;
    memset(&r, 0, sizeof r);
    if (S.mem[pa] == 0xCC) {
        if (!S.ring || !S.bp_on) {
            S.st.guest_int3++;
            return 0;
        }
        r.u.software_breakpoint.gfn = pa / SIM_PAGE;
        r.u.software_breakpoint.insn_length = 1;
        c->pend = PEND_EXEC, c->a = va, c->b = pa, c->len = len;
        return sim_request(vcpu, VM_EVENT_REASON_SOFTWARE_BREAKPOINT, &r);
    }
    S.st.executed++;
    c->cpu.rip = va + len;
    if (!c->step || !S.ring || !S.step_on) return 0;
    r.u.singlestep.gfn = (pa + len) / SIM_PAGE;
    c->pend = PEND_STEP;
    return sim_request(vcpu, VM_EVENT_REASON_SINGLESTEP, &r);
}

int xensim_access(uint32_t vcpu, uint64_t pa, uint32_t access, uint64_t gla, uint8_t value) {
    sim_vcpu *c = &S.vcpu[vcpu];
    uint64_t gfn = pa / SIM_PAGE;
    vm_event_request_t r;
    if (vcpu >= S.nvcpus || c->waiting || gfn >= S.frames || !access || (access & ~7u)) return -1;
    memset(&r, 0, sizeof r);
    if (!(access & ~(uint32_t)S.access[gfn]) || !S.ring) {
        if (access & MEM_ACCESS_W) S.mem[pa] = value;
        S.st.accesses++;
        if (!c->step || !S.ring || !S.step_on) return 0;
        r.u.singlestep.gfn = gfn; /* the instruction retired: the monitor trap fires */
        c->pend = PEND_STEP;
        return sim_request(vcpu, VM_EVENT_REASON_SINGLESTEP, &r);
    }
    r.u.mem_access.gfn = gfn;
    r.u.mem_access.offset = pa % SIM_PAGE;
    r.u.mem_access.gla = gla;
    r.u.mem_access.flags = access | (gla ? MEM_ACCESS_GLA_VALID | MEM_ACCESS_FAULT_WITH_GLA : 0);
    c->pend = PEND_ACCESS, c->a = pa, c->access = access, c->b = value, c->c = gla;
    return sim_request(vcpu, VM_EVENT_REASON_MEM_ACCESS, &r);
}

/* A vCPU whose request was answered carries on, as the answer said. */
static void sim_continue(uint32_t v) {
    sim_vcpu *c = &S.vcpu[v];
    uint32_t f = c->rsp_flags;
    int pend = c->pend;
    c->runnable = 0;
    c->pend = PEND_NONE;
    switch (pend) {
    case PEND_CR:
        if (!(f & VM_EVENT_FLAG_DENY)) *sim_cr_field(c, (int)c->a) = c->b;
        break;
    case PEND_MSR:
        if (!(f & VM_EVENT_FLAG_DENY)) *sim_msr_slot((uint32_t)c->a) = c->b;
        break;
    case PEND_EXEC:
        if (c->trapped) S.st.guest_int3++; /* the guest's own handler takes it */
        else (void)xensim_exec(v, c->a, c->b, c->len); /* again: an int3 still there traps again */
        break;
    case PEND_ACCESS:
        if (f & VM_EVENT_FLAG_EMULATE) {
            if ((c->access & MEM_ACCESS_W) && !(f & VM_EVENT_FLAG_EMULATE_NOWRITE)) S.mem[c->a] = (uint8_t)c->b;
            if ((c->access & MEM_ACCESS_W) && (f & VM_EVENT_FLAG_EMULATE_NOWRITE)) S.st.writes_suppressed++;
            S.st.accesses++;
        } else {
            (void)xensim_access(v, c->a, c->access, c->c, (uint8_t)c->b); /* retried: traps again if still watched */
        }
        break;
    default: break;
    }
}

static void sim_kick(void) {
    uint32_t v;
    if (S.kicking) return;
    S.kicking = 1;
    for (v = 0; v < S.nvcpus && S.st.pause_count == 0; v++)
        if (S.vcpu[v].runnable) sim_continue(v);
    S.kicking = 0;
}

static void sim_apply(const vm_event_response_t *rsp) {
    sim_vcpu *c;
    S.st.responses++;
    S.st.last_rsp_flags = rsp->flags;
    if (rsp->version != VM_EVENT_INTERFACE_VERSION || rsp->vcpu_id >= S.nvcpus || !S.vcpu[rsp->vcpu_id].waiting ||
        !(rsp->flags & VM_EVENT_FLAG_VCPU_PAUSED)) {
        S.st.bad_responses++;
        return;
    }
    c = &S.vcpu[rsp->vcpu_id];
    if (rsp->flags & VM_EVENT_FLAG_TOGGLE_SINGLESTEP) c->step = !c->step;
    c->waiting = 0;
    c->runnable = 1;
    c->rsp_flags = rsp->flags;
}

int xensim_vcpu_stepping(uint32_t vcpu) { return vcpu < S.nvcpus && S.vcpu[vcpu].step; }
int xensim_vcpu_waiting(uint32_t vcpu) { return vcpu < S.nvcpus && S.vcpu[vcpu].waiting; }
uint64_t xensim_rip(uint32_t vcpu) { return vcpu < S.nvcpus ? S.vcpu[vcpu].cpu.rip : 0; }
uint64_t xensim_cr(uint32_t vcpu, int cr) { return vcpu < S.nvcpus ? *sim_cr_field(&S.vcpu[vcpu], cr) : 0; }

/* ---- libxenevtchn -------------------------------------------------------------------- */

xenevtchn_handle *xenevtchn_open(struct xentoollog_logger *logger, unsigned int open_flags) {
    (void)logger;
    (void)open_flags;
    if (S.pipe[0] >= 0 || pipe2(S.pipe, O_NONBLOCK | O_CLOEXEC) < 0) return NULL;
    S.st.handles_evtchn++;
    return (xenevtchn_handle *)&sim_evt;
}

int xenevtchn_close(xenevtchn_handle *xce) {
    if (xce != (xenevtchn_handle *)&sim_evt) return sim_err(EINVAL);
    close(S.pipe[0]);
    close(S.pipe[1]);
    S.pipe[0] = S.pipe[1] = -1;
    S.st.handles_evtchn--;
    return 0;
}

int xenevtchn_fd(xenevtchn_handle *xce) { return xce == (xenevtchn_handle *)&sim_evt ? S.pipe[0] : sim_err(EINVAL); }

xenevtchn_port_or_error_t xenevtchn_bind_interdomain(xenevtchn_handle *xce, uint32_t domid, evtchn_port_t remote_port) {
    if (xce != (xenevtchn_handle *)&sim_evt || sim_dom(domid)) return -1;
    if (!S.ring || remote_port != SIM_PORT_REMOTE || S.bound) return sim_err(EINVAL);
    S.bound = 1;
    return SIM_PORT_LOCAL;
}

int xenevtchn_unbind(xenevtchn_handle *xce, evtchn_port_t port) {
    if (xce != (xenevtchn_handle *)&sim_evt || port != SIM_PORT_LOCAL || !S.bound) return sim_err(EINVAL);
    S.bound = 0;
    return 0;
}

xenevtchn_port_or_error_t xenevtchn_pending(xenevtchn_handle *xce) {
    char b[64];
    if (xce != (xenevtchn_handle *)&sim_evt) return sim_err(EINVAL);
    if (read(S.pipe[0], b, sizeof b) <= 0) return -1;
    return SIM_PORT_LOCAL;
}

int xenevtchn_unmask(xenevtchn_handle *xce, evtchn_port_t port) {
    return xce == (xenevtchn_handle *)&sim_evt && port == SIM_PORT_LOCAL ? 0 : sim_err(EINVAL);
}

/* The backend answered: take every response, as Xen's vm_event_resume does. */
int xenevtchn_notify(xenevtchn_handle *xce, evtchn_port_t port) {
    if (xce != (xenevtchn_handle *)&sim_evt || port != SIM_PORT_LOCAL || !S.bound) return sim_err(EINVAL);
    if (!S.ring) return 0;
    while (RING_HAS_UNCONSUMED_RESPONSES(&S.front)) {
        vm_event_response_t rsp = *RING_GET_RESPONSE(&S.front, S.front.rsp_cons);
        S.front.rsp_cons++;
        sim_apply(&rsp);
    }
    sim_kick();
    return 0;
}

/* ---- libxenforeignmemory ---------------------------------------------------------------- */

xenforeignmemory_handle *xenforeignmemory_open(struct xentoollog_logger *logger, unsigned int open_flags) {
    (void)logger;
    (void)open_flags;
    S.st.handles_fmem++;
    return (xenforeignmemory_handle *)&sim_fmem;
}

int xenforeignmemory_close(xenforeignmemory_handle *fmem) {
    if (fmem != (xenforeignmemory_handle *)&sim_fmem) return sim_err(EINVAL);
    S.st.handles_fmem--;
    return 0;
}

/* Frames in place in one reserved region: runs of consecutive frames are
   mapped with one mmap of the memfd; refused ones stay inaccessible. */
static void sim_map_frames(uint8_t *base, int prot, size_t pages, const xen_pfn_t arr[], int err[]) {
    size_t i = 0;
    while (i < pages) {
        size_t j = i + 1;
        if (!sim_frame_ok(arr[i])) {
            err[i++] = -EINVAL;
            continue;
        }
        err[i] = 0;
        while (j < pages && arr[j] == arr[j - 1] + 1 && sim_frame_ok(arr[j])) err[j++] = 0;
        if (mmap(base + i * SIM_PAGE, (j - i) * SIM_PAGE, prot, MAP_SHARED | MAP_FIXED, S.memfd,
                 (off_t)(arr[i] * SIM_PAGE)) == MAP_FAILED)
            for (; i < j; i++) err[i] = -ENOMEM;
        i = j;
    }
}

void *xenforeignmemory_map(xenforeignmemory_handle *fmem, uint32_t dom, int prot, size_t pages,
                           const xen_pfn_t arr[], int err[]) {
    uint8_t *base;
    if (fmem != (xenforeignmemory_handle *)&sim_fmem || !pages || S.nmaps >= SIM_MAX_MAPS) {
        errno = EINVAL;
        return NULL;
    }
    if (sim_dom(dom)) return NULL;
    if (S.fail == XENSIM_MAP_REFUSED) {
        errno = EPERM;
        return NULL;
    }
    base = mmap(NULL, pages * SIM_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) return NULL;
    sim_map_frames(base, prot, pages, arr, err);
    if (!S.maps) S.maps = calloc(SIM_MAX_MAPS, sizeof *S.maps);
    S.maps[S.nmaps].addr = base;
    S.maps[S.nmaps++].pages = pages;
    S.st.maps++;
    S.st.live_maps++;
    S.st.live_pages += (long)pages;
    if (S.st.live_maps > S.st.max_live_maps) S.st.max_live_maps = S.st.live_maps;
    return base;
}

int xenforeignmemory_unmap(xenforeignmemory_handle *fmem, void *addr, size_t pages) {
    size_t i;
    if (fmem != (xenforeignmemory_handle *)&sim_fmem) return sim_err(EINVAL);
    for (i = 0; i < S.nmaps; i++)
        if (S.maps[i].addr == addr && S.maps[i].pages == pages) {
            munmap(addr, pages * SIM_PAGE);
            S.maps[i] = S.maps[--S.nmaps];
            S.st.unmaps++;
            S.st.live_maps--;
            S.st.live_pages -= (long)pages;
            return 0;
        }
    S.st.bad_unmaps++;
    return sim_err(EINVAL);
}

/* ---- libxenstore ------------------------------------------------------------------------ */

struct xs_handle *xs_open(unsigned long flags) {
    (void)flags;
    if (S.fail == XENSIM_NO_XENSTORE) {
        errno = ENOENT;
        return NULL;
    }
    S.st.handles_xs++;
    return (struct xs_handle *)&sim_xs;
}

void xs_close(struct xs_handle *xsh) {
    if (xsh == (struct xs_handle *)&sim_xs) S.st.handles_xs--;
}

/* One malloc'd block: the array, then the strings (free(list) frees all). */
char **xs_directory(struct xs_handle *h, xs_transaction_t t, const char *path, unsigned int *num) {
    char id[16], **list;
    (void)t;
    if (h != (struct xs_handle *)&sim_xs || strcmp(path, "/local/domain") != 0) {
        errno = ENOENT;
        return NULL;
    }
    snprintf(id, sizeof id, "%u", (unsigned)S.domid);
    list = malloc(2 * sizeof(char *) + 2 + strlen(id) + 1);
    if (!list) return NULL;
    list[0] = (char *)(list + 2);
    strcpy(list[0], "0");
    list[1] = list[0] + 2;
    strcpy(list[1], id);
    *num = S.loaded && !S.gone ? 2 : 1;
    return list;
}

void *xs_read(struct xs_handle *h, xs_transaction_t t, const char *path, unsigned int *len) {
    char key[128], val[64] = "";
    (void)t;
    if (h != (struct xs_handle *)&sim_xs) return NULL;
    if (!strcmp(path, "/local/domain/0/name")) snprintf(val, sizeof val, "Domain-0");
    snprintf(key, sizeof key, "/local/domain/%u/", (unsigned)S.domid);
    if (S.loaded && !strncmp(path, key, strlen(key))) {
        const char *k = path + strlen(key);
        if (!strcmp(k, "name")) snprintf(val, sizeof val, "%s", S.name);
        if (!strcmp(k, "memory/static-max")) snprintf(val, sizeof val, "%llu", (unsigned long long)(S.frames * 4 + 8192));
        if (!strcmp(k, "memory/videoram")) snprintf(val, sizeof val, "8192");
    }
    if (!val[0]) {
        errno = ENOENT;
        return NULL;
    }
    if (len) *len = (unsigned)strlen(val);
    return strdup(val);
}
