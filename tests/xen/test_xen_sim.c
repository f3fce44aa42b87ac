/* test_xen_sim.c - vmi_xen.h against a SIMULATED Xen (tests/xen/xensim.c):
   no hypervisor runs here. The simulated domain is a lab capture (mem.raw
   and the registers of a real Linux guest); the vm_event ring, the event
   channel and the responses are the simulator's, scripted per test.

   Checks: open by id and by name (xenstore), the HVM/PVH memory layout,
   PV and missing domains refused; reads equal mem.raw; the mapping cache's
   LRU eviction and TTL exact to the mapping, nothing left mapped after
   close by the kernel's own account (/proc/self/maps); registers equal
   the capture's; set_regs; processes equal the file backend's on the same
   image; every event type delivered and its response honoured (DENY,
   EMULATE, NOWRITE, single-step toggles, int3 re-injection, access
   rights restored); watchpoints on the lab kernel's variables reported
   after the access and only on their bytes, sharing a frame with each
   other and with MEM_ACCESS; Xen failures (domain gone, mapping refused, a busy
   monitor, a corrupt ring) give clean errors; close restores everything.
   Built in link mode (VMI_XEN_LINK, the simulator linked in) and in dlopen
   mode (the simulator as libxenctrl.so.4.17 & co. on LD_LIBRARY_PATH).
   Usage: test_xen_sim [CAPTURE_DIR]   (default build/guests/x86_64) */
#define _DEFAULT_SOURCE /* usleep */
#define VMI_IMPLEMENTATION
#include "vmi.h"
#include "vmi_file.h"
#include "vmi_xen.h"
#include "../unit/test.h"
#include "xensim.h"

#include <unistd.h>

#define DOMID 7
/* vm_event response flags (Xen's ABI; this file does not include Xen's headers) */
#define FLAG_VCPU_PAUSED 0x1u
#define FLAG_DENY 0x40u

static const char *dir = "build/guests/x86_64";
static uint8_t *image; /* mem.raw as the file says */
static size_t image_len;

static xensim_stats stats(void) {
    xensim_stats s;
    xensim_stats_get(&s);
    return s;
}

static vmi_status be_open(const char *domain, int writable, uint32_t chunks, uint32_t ttl, vmi_backend *be, char *err) {
    vmi_xen_desc d;
    memset(&d, 0, sizeof d);
    d.domain = domain;
    d.writable = writable;
    d.map_cache_chunks = chunks;
    d.map_ttl_ms = ttl;
    return vmi_xen_open(&d, be, err, 512);
}

static vmi_instance *vmi_xen(int writable) {
    vmi_desc desc;
    vmi_instance *vmi = NULL;
    char err[512];
    memset(&desc, 0, sizeof desc);
    if (!CHECK(be_open("7", writable, 0, 0, &desc.backend, err) == VMI_OK, "vmi_xen_open: %s", err)) return NULL;
    if (!CHECK(vmi_open(&desc, &vmi) == VMI_OK, "vmi_open")) return NULL;
    return vmi;
}

/* Nothing of ours left in the simulated Xen or in this process's mappings. */
static void check_released(const char *what) {
    xensim_stats s = stats();
    test_context("released after %s", what);
    CHECK_EQ(s.live_maps, 0);
    CHECK_EQ(s.proc_guest_pages, 0);
    CHECK_EQ(s.bad_unmaps, 0);
    CHECK_EQ(s.ring_page_mapped, 0);
    CHECK_EQ(s.monitor_on, 0);
    CHECK_EQ(s.pause_count, 0);
    CHECK_EQ(s.handles_xc + s.handles_fmem + s.handles_evtchn + s.handles_xs, 0);
    CHECK_EQ(s.vcpus_paused_by_events, 0);
}

static int reload(void) {
    xensim_unload();
    return xensim_load(dir, DOMID, "lab");
}

/* ---- open ------------------------------------------------------------------ */

static void test_open(void) {
    vmi_backend be;
    char err[512];
    test_context("open by id");
    CHECK_ST(be_open("7", 0, 0, 0, &be, err), VMI_OK);
    CHECK_STR(be.name, "xen");
    CHECK_STR(be.format, "xen-hvm");
    CHECK_EQ(be.arch, VMI_ARCH_X86_64);
    CHECK_EQ(be.flags, VMI_BACKEND_LIVE);
    /* libxl's layout of 256 MiB (static-max - videoram) with the VGA hole */
    if (CHECK_EQ(be.nranges, 2)) {
        CHECK_EQ(be.ranges[0].pa, 0);
        CHECK_EQ(be.ranges[0].size, 0xA0000);
        CHECK_EQ(be.ranges[1].pa, 0xC0000);
        CHECK_EQ(be.ranges[1].pa + be.ranges[1].size, image_len);
        CHECK(be.ranges[0].host == NULL && be.ranges[1].host == NULL, "ranges without host pointers");
    }
    be.close(be.ctx);
    check_released("open by id");

    test_context("open by name");
    if (CHECK_ST(be_open("lab", 0, 0, 0, &be, err), VMI_OK)) be.close(be.ctx);
    CHECK_ST(be_open("nosuch", 0, 0, 0, &be, err), VMI_ERR_NOT_FOUND);
    CHECK(strstr(err, "nosuch") != NULL, "error names the domain: %s", err);
    CHECK_ST(be_open("99", 0, 0, 0, &be, err), VMI_ERR_NOT_FOUND);
    CHECK(strstr(err, "no Xen domain 99") != NULL, "error: %s", err);
    CHECK_ST(be_open("", 0, 0, 0, &be, err), VMI_ERR_ARG);
    check_released("failed opens");

    test_context("PVH: no VGA hole");
    xensim_set_pvh(1);
    CHECK_ST(be_open("7", 0, 0, 0, &be, err), VMI_OK);
    CHECK_STR(be.format, "xen-pvh");
    if (CHECK_EQ(be.nranges, 1)) CHECK_EQ(be.ranges[0].size, image_len);
    be.close(be.ctx);
    xensim_set_pvh(0);

    test_context("PV refused");
    xensim_set_pv(1);
    CHECK_ST(be_open("7", 0, 0, 0, &be, err), VMI_ERR_UNSUPPORTED);
    CHECK(strstr(err, "PV guest") != NULL, "error: %s", err);
    xensim_set_pv(0);

    test_context("no xenstore: ids only, memory from max_pages");
    xensim_fail(XENSIM_NO_XENSTORE, 0);
    CHECK_ST(be_open("lab", 0, 0, 0, &be, err), VMI_ERR_NOT_FOUND);
    CHECK(strstr(err, "xenstore") != NULL, "error: %s", err);
    CHECK_ST(be_open("7", 0, 0, 0, &be, err), VMI_OK);
    if (CHECK_EQ(be.nranges, 2)) CHECK(be.ranges[1].pa + be.ranges[1].size > image_len, "max_pages counts video RAM");
    be.close(be.ctx);

    test_context("no Xen: the library's own message");
    xensim_fail(XENSIM_NO_XEN, 0);
    CHECK_ST(be_open("7", 0, 0, 0, &be, err), VMI_ERR_BACKEND);
    CHECK(strstr(err, "xc_interface_open") && strstr(err, "Could not obtain handle"), "error: %s", err);
    xensim_fail(XENSIM_OK, 0);
    check_released("opens without Xen");
}

/* ---- memory ---------------------------------------------------------------- */

static void test_reads(void) {
    vmi_instance *vmi = vmi_xen(0);
    static uint8_t buf[3 * 4096];
    uint64_t pa;
    size_t done = 0;
    int i, same = 1;
    test_context("reads equal mem.raw");
    if (!vmi) return;
    for (i = 0; i < 200; i++) {
        /* spread over memory, some across 64-frame mapping boundaries */
        pa = (uint64_t)i * 1299709u * 4096u % (image_len - sizeof buf);
        if (i % 3 == 0) pa = (pa | 0x3ffff) - 200;
        if (pa >= 0x9e000 && pa < 0xC0000) continue;
        if (vmi_read_pa(vmi, pa, buf, sizeof buf, NULL) != VMI_OK || memcmp(buf, image + pa, sizeof buf) != 0) {
            same = CHECK(0, "read at 0x%llx: %s", (unsigned long long)pa, vmi_last_error(vmi));
            break;
        }
    }
    CHECK(same, "200 reads");
    CHECK_ST(vmi_read_pa(vmi, 0x9f000, buf, 0x2000, &done), VMI_ERR_UNMAPPED);
    CHECK_EQ(done, 0x1000); /* up to the VGA hole */
    CHECK_ST(vmi_write_pa(vmi, 0x100000, buf, 4, NULL), VMI_ERR_READ_ONLY);
    vmi_close(vmi);
    check_released("reads");
}

static void read_chunk(vmi_backend *be, uint64_t chunk) {
    uint8_t b[16];
    uint64_t pa = 0x100000 + chunk * 64 * 4096 + 123;
    CHECK(be->read_pa(be->ctx, pa, b, sizeof b) == VMI_OK && !memcmp(b, image + pa, sizeof b), "chunk %llu",
          (unsigned long long)chunk);
}

/* The backend alone (no core page cache in front): exact LRU. */
static void test_map_cache(void) {
    vmi_backend be;
    char err[512];
    xensim_stats s0, s;
    uint64_t c;
    test_context("mapping cache: LRU of 4 chunks");
    if (!CHECK(be_open("7", 0, 4, 60000, &be, err) == VMI_OK, "%s", err)) return;
    xensim_reset_peak();
    s0 = stats();
    for (c = 0; c < 10; c++) read_chunk(&be, c);
    s = stats();
    CHECK_EQ(s.maps - s0.maps, 10);
    CHECK_EQ(s.live_maps, 4); /* 6 7 8 9 */
    CHECK_EQ(s.max_live_maps, 4);
    CHECK_EQ(s.proc_guest_pages, 4 * 64);
    read_chunk(&be, 9);
    read_chunk(&be, 6); /* hits: oldest now 7 */
    CHECK_EQ(stats().maps - s0.maps, 10);
    read_chunk(&be, 0); /* evicts 7 */
    read_chunk(&be, 8); /* still there */
    CHECK_EQ(stats().maps - s0.maps, 11);
    read_chunk(&be, 7); /* gone: mapped again */
    s = stats();
    CHECK_EQ(s.maps - s0.maps, 12);
    CHECK_EQ(s.unmaps, s.maps - 4);
    CHECK_EQ(s.live_pages, 4 * 64);
    be.close(be.ctx);
    check_released("the LRU test");

    test_context("mapping cache: TTL");
    if (!CHECK(be_open("7", 0, 4, 30, &be, err) == VMI_OK, "%s", err)) return;
    s0 = stats();
    read_chunk(&be, 1);
    read_chunk(&be, 1);
    CHECK_EQ(stats().maps - s0.maps, 1);
    usleep(50 * 1000);
    read_chunk(&be, 1);
    s = stats();
    CHECK_EQ(s.maps - s0.maps, 2);
    CHECK_EQ(s.live_maps, 1);
    be.close(be.ctx);
    check_released("the TTL test");
}

static void test_writes_and_failures(void) {
    vmi_backend be;
    char err[512];
    uint8_t b[4] = {0xde, 0xad, 0xbe, 0xef}, r[4];
    test_context("writes");
    if (!CHECK(be_open("7", 1, 0, 0, &be, err) == VMI_OK, "%s", err)) return;
    CHECK_EQ(be.flags, VMI_BACKEND_LIVE | VMI_BACKEND_WRITABLE);
    CHECK_ST(be.write_pa(be.ctx, 0x200ffe, b, 4), VMI_OK); /* across two frames */
    CHECK_EQ(xensim_byte(0x200ffe), 0xde);
    CHECK_EQ(xensim_byte(0x201001), 0xef);
    CHECK_ST(be.read_pa(be.ctx, 0x200ffe, r, 4), VMI_OK);
    CHECK_MEM(r, b, 4);

    test_context("a frame Xen refuses");
    xensim_fail(XENSIM_FRAME_REFUSED, 0x5123);
    CHECK_ST(be.read_pa(be.ctx, 0x5123000, r, 4), VMI_ERR_UNMAPPED);
    CHECK(strstr(be.last_error(be.ctx), "0x5123") != NULL, "names the frame: %s", be.last_error(be.ctx));
    CHECK_ST(be.read_pa(be.ctx, 0x5122ffc, r, 4), VMI_OK); /* its neighbour, same mapping */

    test_context("mapping refused");
    xensim_fail(XENSIM_MAP_REFUSED, 0);
    CHECK_ST(be.read_pa(be.ctx, 0x8000000, r, 4), VMI_ERR_BACKEND);
    CHECK(strstr(be.last_error(be.ctx), "xenforeignmemory_map") && strstr(be.last_error(be.ctx), "not permitted"),
          "error: %s", be.last_error(be.ctx));

    test_context("domain gone");
    xensim_fail(XENSIM_DOMAIN_GONE, 0);
    CHECK_ST(be.read_pa(be.ctx, 0x9000000, r, 4), VMI_ERR_BACKEND);
    CHECK(strstr(be.last_error(be.ctx), "domain 7 is gone") != NULL, "error: %s", be.last_error(be.ctx));
    {
        vmi_regs regs;
        CHECK_ST(be.get_regs(be.ctx, 0, &regs), VMI_ERR_BACKEND);
        CHECK_ST(be.read_pa(be.ctx, 0x200ffe, r, 4), VMI_ERR_BACKEND); /* even a cached frame */
    }
    be.close(be.ctx);
    xensim_fail(XENSIM_OK, 0);
    check_released("failures");
    reload();
}

/* ---- registers --------------------------------------------------------------- */

/* "name": "0x..." from truth.json, the guest's own report. */
static uint64_t truth_reg(const char *truth, const char *name) {
    char key[32];
    const char *p;
    snprintf(key, sizeof key, "\"%s\": \"", name);
    p = truth ? strstr(truth, "\"regs\"") : NULL;
    p = p ? strstr(p, key) : NULL;
    return p ? strtoull(p + strlen(key), NULL, 16) : 0xbad;
}

static void test_regs(void) {
    char path[512], *truth;
    vmi_instance *vmi;
    vmi_regs regs, r1;
    vmi_paging pg;
    uint32_t n = 0;
    xensim_stats s;
    snprintf(path, sizeof path, "%s/truth.json", dir);
    truth = test_slurp(path, NULL);
    test_context("registers equal the capture's");
    xensim_set_vcpus(2);
    if (!(vmi = vmi_xen(0))) return;
    CHECK_ST(vmi_vcpu_count(vmi, &n), VMI_OK);
    CHECK_EQ(n, 2);
    CHECK_ST(vmi_get_regs(vmi, 0, &regs), VMI_OK);
    CHECK_EQ(regs.valid, VMI_REGS_GPR | VMI_REGS_SEGMENT | VMI_REGS_CONTROL);
    CHECK_EQ(regs.x86.rip, truth_reg(truth, "rip"));
    CHECK_EQ(regs.x86.cr0, truth_reg(truth, "cr0"));
    CHECK_EQ(regs.x86.cr3, truth_reg(truth, "cr3"));
    CHECK_EQ(regs.x86.cr4, truth_reg(truth, "cr4"));
    CHECK_EQ(regs.x86.efer, truth_reg(truth, "efer"));
    CHECK_EQ(regs.x86.gdtr_base, truth_reg(truth, "gdt"));
    CHECK_EQ(regs.x86.idtr_base, truth_reg(truth, "idt"));
    CHECK_ST(vmi_paging_from_regs(&regs, &pg), VMI_OK);
    CHECK_EQ(pg.mode, VMI_PAGING_IA32E);
    CHECK_EQ(vmi_get_paging(vmi)->mode, VMI_PAGING_IA32E);
    CHECK_ST(vmi_get_regs(vmi, 2, &r1), VMI_ERR_ARG);

    test_context("set_regs");
    r1 = regs;
    r1.x86.rax = 0x1122334455667788ull;
    r1.x86.cr2 = 0xabc000;
    CHECK_ST(vmi_set_regs(vmi, 1, &r1), VMI_OK);
    CHECK_ST(vmi_get_regs(vmi, 1, &r1), VMI_OK);
    CHECK_EQ(r1.x86.rax, 0x1122334455667788ull);
    CHECK_EQ(r1.x86.cr2, 0xabc000);
    CHECK_EQ(r1.x86.rip, regs.x86.rip);
    CHECK_ST(vmi_get_regs(vmi, 0, &r1), VMI_OK);
    CHECK_EQ(r1.x86.rax, regs.x86.rax); /* the other vCPU untouched */
    s = stats();
    CHECK_EQ(s.setcontexts, 1);
    CHECK_EQ(s.pause_count, 0);

    test_context("pause and resume");
    CHECK_ST(vmi_pause(vmi), VMI_OK);
    CHECK_EQ(stats().pause_count, 1);
    CHECK_ST(vmi_resume(vmi), VMI_OK);
    CHECK_EQ(stats().pause_count, 0);
    vmi_close(vmi);
    free(truth);
    xensim_set_vcpus(1);
}

/* ---- the guest's processes, against the file backend on the same capture ------- */

typedef struct plist {
    char lines[512][160];
    int n;
} plist;

static int add_proc(void *user, const vmi_process *p) {
    plist *l = (plist *)user;
    if (l->n < 512)
        snprintf(l->lines[l->n++], 160, "%lld %lld %s %c %llx %llx", (long long)p->pid, (long long)p->ppid, p->name,
                 p->state, (unsigned long long)p->dtb, (unsigned long long)p->task);
    return 0;
}

static void test_processes(void) {
    static plist a, b;
    vmi_file_desc fd;
    vmi_desc desc;
    vmi_instance *vx = vmi_xen(0), *vf = NULL;
    char err[512], path[512];
    int i, same;
    test_context("processes: xen backend vs file backend");
    if (!vx) return;
    memset(&fd, 0, sizeof fd);
    memset(&desc, 0, sizeof desc);
    snprintf(path, sizeof path, "%s/mem.elf", dir); /* with registers, as the xen backend has */
    fd.path = path;
    if (!CHECK(vmi_file_open(&fd, &desc.backend, err, sizeof err) == VMI_OK, "%s", err) ||
        !CHECK(vmi_open(&desc, &vf) == VMI_OK, "vmi_open (file)")) {
        vmi_close(vx);
        return;
    }
    CHECK(vmi_os_init(vx) == VMI_OK, "vmi_os_init on xen: %s", vmi_last_error(vx));
    CHECK(vmi_os_init(vf) == VMI_OK, "vmi_os_init on the file: %s", vmi_last_error(vf));
    a.n = b.n = 0;
    CHECK_ST(vmi_foreach_process(vx, 0, add_proc, &a), VMI_OK);
    CHECK_ST(vmi_foreach_process(vf, 0, add_proc, &b), VMI_OK);
    CHECK(a.n > 10, "%d processes", a.n);
    CHECK_EQ(a.n, b.n);
    for (i = 0, same = 1; i < a.n && i < b.n; i++)
        if (strcmp(a.lines[i], b.lines[i])) same = CHECK(0, "process %d: xen \"%s\", file \"%s\"", i, a.lines[i], b.lines[i]);
    CHECK(same, "the same processes");
    vmi_close(vf);
    vmi_close(vx);
}

/* ---- events ------------------------------------------------------------------------ */

typedef struct seen {
    int n, ret;
    vmi_event_hit hit;
    int paused_in_cb, waiting_in_cb, do_pause;
    uint64_t peek_va; /* read in the callback, into peeked, when not 0 */
    uint8_t peeked;
} seen;

static int on_event(vmi_instance *vmi, vmi_event *ev, const vmi_event_hit *hit, void *user) {
    seen *s = (seen *)user;
    xensim_stats st = stats();
    (void)ev;
    s->n++;
    s->hit = *hit;
    s->paused_in_cb = st.pause_count;
    s->waiting_in_cb = xensim_vcpu_waiting(hit->vcpu);
    if (s->peek_va && vmi_read_kva(vmi, s->peek_va, &s->peeked, 1, NULL) != VMI_OK) s->peeked = 0xEE;
    if (s->do_pause) vmi_pause(vmi);
    return s->ret;
}

static void ev_init(vmi_event *ev, vmi_event_type type, seen *s) {
    memset(ev, 0, sizeof *ev);
    memset(s, 0, sizeof *s);
    ev->type = type;
    ev->fn = on_event;
    ev->user = s;
}

static void test_reg_events(vmi_instance *vmi) {
    vmi_event cr3, msr;
    seen s, m;
    uint64_t old = xensim_cr(0, 3), kva = 0;
    vmi_cache_stats c0, c1;
    uint8_t b;
    test_context("CR3 write");
    ev_init(&cr3, VMI_EVENT_REG_WRITE, &s);
    cr3.reg = VMI_REG_CR3;
    CHECK_ST(vmi_event_register(vmi, &cr3), VMI_OK);
    CHECK_EQ(xensim_cr_write(0, 3, old), 0); /* on change only */
    CHECK(vmi_ksym(vmi, "linux_banner", &kva) == VMI_OK, "linux_banner");
    vmi_read_kva(vmi, kva, &b, 1, NULL);
    vmi_read_kva(vmi, kva, &b, 1, NULL);
    c0 = vmi_get_cache_stats(vmi);
    vmi_read_kva(vmi, kva, &b, 1, NULL);
    CHECK_EQ(vmi_get_cache_stats(vmi).page_misses, c0.page_misses); /* cached */
    CHECK_EQ(xensim_cr_write(0, 3, 0x2000), 1);
    CHECK_ST(vmi_events_listen(vmi, 1000), VMI_OK);
    CHECK_EQ(s.n, 1);
    CHECK_EQ(s.hit.reg, VMI_REG_CR3);
    CHECK_EQ(s.hit.old_value, old);
    CHECK_EQ(s.hit.new_value, 0x2000);
    CHECK_EQ(s.hit.regs.x86.cr3, old); /* the write has not landed yet */
    CHECK(s.paused_in_cb >= 1 && s.waiting_in_cb, "domain paused (%d) and vCPU held (%d) in the callback",
          s.paused_in_cb, s.waiting_in_cb);
    CHECK_EQ(xensim_cr(0, 3), 0x2000);
    CHECK_EQ(stats().last_rsp_flags, FLAG_VCPU_PAUSED);
    CHECK_EQ(stats().pause_count, 0);
    vmi_read_kva(vmi, kva, &b, 1, NULL);
    c1 = vmi_get_cache_stats(vmi);
    CHECK(c1.page_misses > c0.page_misses, "the event flushed the page cache (misses %llu then %llu)",
          (unsigned long long)c0.page_misses, (unsigned long long)c1.page_misses);

    test_context("CR3 write denied");
    s.ret = VMI_EVENT_KEEP | VMI_EVENT_DENY;
    CHECK_EQ(xensim_cr_write(0, 3, 0x3000), 1);
    CHECK_ST(vmi_events_listen(vmi, 1000), VMI_OK);
    CHECK_EQ(xensim_cr(0, 3), 0x2000);
    CHECK(stats().last_rsp_flags & FLAG_DENY, "DENY in 0x%x", (unsigned)stats().last_rsp_flags);
    CHECK_ST(vmi_events_listen(vmi, 10), VMI_ERR_TIMEOUT);
    CHECK_ST(vmi_event_register(vmi, &cr3), VMI_ERR_ARG);

    test_context("CR0/CR4 unwatched pass, CR4 watched on vCPU 1");
    CHECK_EQ(xensim_cr_write(0, 0, xensim_cr(0, 0) ^ 0x10000), 0);
    {
        vmi_event cr4;
        seen s4;
        ev_init(&cr4, VMI_EVENT_REG_WRITE, &s4);
        cr4.reg = VMI_REG_CR4;
        s4.ret = VMI_EVENT_REMOVE;
        CHECK_ST(vmi_event_register(vmi, &cr4), VMI_OK);
        CHECK_EQ(xensim_cr_write(1, 4, 0x6f0), 1);
        CHECK_ST(vmi_events_listen(vmi, 1000), VMI_OK);
        CHECK_EQ(s4.hit.vcpu, 1);
        CHECK_EQ(s4.hit.reg, VMI_REG_CR4);
        CHECK_EQ(xensim_cr(1, 4), 0x6f0);
        CHECK_EQ(xensim_cr_write(1, 4, 0x6f1), 0); /* removed: monitor off */
    }

    test_context("MSR write");
    ev_init(&msr, VMI_EVENT_REG_WRITE, &m);
    msr.reg = VMI_REG_MSR;
    msr.msr = 0xc0000082;
    m.ret = VMI_EVENT_DENY;
    CHECK_ST(vmi_event_register(vmi, &msr), VMI_OK);
    CHECK_EQ(xensim_msr_write(0, 0xc0000081, 5), 0);
    CHECK_EQ(xensim_msr_write(0, 0xc0000082, 0xffffffff81000000ull), 1);
    CHECK_ST(vmi_events_listen(vmi, 1000), VMI_OK);
    CHECK_EQ(m.hit.msr, 0xc0000082);
    CHECK_EQ(m.hit.new_value, 0xffffffff81000000ull);
    CHECK_EQ(xensim_msr(0xc0000082), 0); /* denied */
    m.ret = VMI_EVENT_KEEP;
    CHECK_EQ(xensim_msr_write(0, 0xc0000082, 0x1234), 1);
    CHECK_ST(vmi_events_listen(vmi, 1000), VMI_OK);
    CHECK_EQ(xensim_msr(0xc0000082), 0x1234);
    CHECK_ST(vmi_event_clear(vmi, &msr), VMI_OK);
    CHECK_ST(vmi_event_clear(vmi, &cr3), VMI_OK);
    CHECK_EQ(xensim_cr_write(0, 3, old), 0);
}

static void test_breakpoints(vmi_instance *vmi) {
    vmi_event bp, step;
    seen s, t;
    uint64_t va = 0, pa = 0, va2 = 0, pa2 = 0;
    uint8_t orig, orig_bp, cc = 0xCC;
    xensim_stats s0;
    test_context("breakpoint");
    if (!CHECK(vmi_ksym(vmi, "schedule", &va) == VMI_OK && vmi_translate_kva(vmi, va, &pa) == VMI_OK, "schedule"))
        return;
    orig = orig_bp = xensim_byte(pa);
    CHECK(orig != 0xCC, "schedule starts with 0x%x", orig);
    ev_init(&bp, VMI_EVENT_BREAKPOINT, &s);
    bp.addr = va;
    CHECK_ST(vmi_event_register(vmi, &bp), VMI_OK);
    CHECK_EQ(bp.pa__, pa);
    CHECK_EQ(xensim_byte(pa), 0xCC);
    CHECK_ST(vmi_event_register(vmi, &bp), VMI_ERR_ARG);
    s0 = stats();
    CHECK_EQ(xensim_exec(0, va, pa, 4), 1);
    CHECK_ST(vmi_events_listen(vmi, 1000), VMI_OK);
    CHECK_EQ(s.n, 1);
    CHECK_EQ(s.hit.addr, va);
    CHECK_EQ(s.hit.regs.x86.rip, va);
    /* answered: the original byte back, the vCPU stepping over it */
    CHECK_EQ(xensim_byte(pa), orig);
    CHECK_EQ(stats().executed - s0.executed, 1);
    CHECK_ST(vmi_events_listen(vmi, 50), VMI_ERR_TIMEOUT); /* the step's event: no callback */
    CHECK_EQ(s.n, 1);
    CHECK_EQ(xensim_byte(pa), 0xCC);
    CHECK_EQ(xensim_vcpu_stepping(0), 0);
    CHECK_EQ(xensim_rip(0), va + 4);
    s.ret = VMI_EVENT_REMOVE;
    CHECK_EQ(xensim_exec(0, va, pa, 4), 1);
    CHECK_ST(vmi_events_listen(vmi, 1000), VMI_OK);
    CHECK_EQ(s.n, 2);
    CHECK_EQ(xensim_byte(pa), orig);
    CHECK_EQ(xensim_vcpu_stepping(0), 0);
    CHECK_EQ(stats().executed - s0.executed, 2);
    CHECK_EQ(bp.armed__, 0);

    test_context("an int3 of the guest's own goes back to it");
    CHECK(vmi_ksym(vmi, "do_idle", &va2) == VMI_OK && vmi_translate_kva(vmi, va2, &pa2) == VMI_OK, "do_idle");
    orig = xensim_byte(pa2);
    ev_init(&bp, VMI_EVENT_BREAKPOINT, &s);
    bp.addr = va;
    CHECK_ST(vmi_event_register(vmi, &bp), VMI_OK); /* the monitor catches every int3 */
    CHECK_ST(vmi_write_pa(vmi, pa2, &cc, 1, NULL), VMI_OK);
    s0 = stats();
    CHECK_EQ(xensim_exec(0, va2, pa2, 1), 1);
    CHECK_ST(vmi_events_listen(vmi, 50), VMI_ERR_TIMEOUT);
    CHECK_EQ(s.n, 0);
    CHECK_EQ(stats().traps_injected - s0.traps_injected, 1);
    CHECK_EQ(stats().guest_int3 - s0.guest_int3, 1);
    CHECK_ST(vmi_write_pa(vmi, pa2, &orig, 1, NULL), VMI_OK);

    test_context("single-step, and a breakpoint hit while stepping");
    ev_init(&step, VMI_EVENT_SINGLESTEP, &t);
    step.vcpu = 0;
    CHECK_ST(vmi_event_register(vmi, &step), VMI_OK);
    CHECK_EQ(xensim_vcpu_stepping(0), 1);
    CHECK_EQ(xensim_exec(0, va2, pa2, 3), 1);
    CHECK_ST(vmi_events_listen(vmi, 1000), VMI_OK);
    CHECK_EQ(t.n, 1);
    CHECK_EQ(t.hit.addr, va2 + 3);
    CHECK_EQ(xensim_vcpu_stepping(0), 1);
    CHECK_EQ(xensim_exec(0, va, pa, 4), 1); /* the breakpoint */
    CHECK_ST(vmi_events_listen(vmi, 1000), VMI_OK);
    CHECK_EQ(s.n, 1);
    CHECK_EQ(xensim_byte(pa), orig_bp); /* put back for the step */
    CHECK_ST(vmi_events_listen(vmi, 1000), VMI_OK);  /* that step is the single-step event's */
    CHECK_EQ(t.n, 2);
    CHECK_EQ(t.hit.addr, va + 4);
    CHECK_EQ(xensim_byte(pa), 0xCC);
    CHECK_EQ(xensim_vcpu_stepping(0), 1);
    t.ret = VMI_EVENT_REMOVE;
    CHECK_EQ(xensim_exec(0, va2, pa2, 2), 1);
    CHECK_ST(vmi_events_listen(vmi, 1000), VMI_OK);
    CHECK_EQ(xensim_vcpu_stepping(0), 0);
    CHECK_EQ(xensim_exec(0, va2, pa2, 2), 0);
    step.vcpu = 9;
    CHECK_ST(vmi_event_register(vmi, &step), VMI_ERR_ARG); /* no such vCPU */
    CHECK_ST(vmi_event_clear(vmi, &bp), VMI_OK);
    CHECK_EQ(xensim_byte(pa), orig_bp);
}

static void test_mem_events(vmi_instance *vmi) {
    vmi_event w, r;
    seen s, q;
    const uint64_t f = 0x3000000, gf = f >> 12;
    test_context("memory access: write watch");
    ev_init(&w, VMI_EVENT_MEM_ACCESS, &s);
    w.addr = f;
    w.len = 2 * 4096;
    w.access = VMI_WATCH_WRITE;
    CHECK_ST(vmi_event_register(vmi, &w), VMI_OK);
    CHECK_EQ(xensim_frame_access(gf), 5); /* r-x */
    CHECK_EQ(xensim_frame_access(gf + 1), 5);
    CHECK_EQ(xensim_frame_access(gf + 2), 7);
    CHECK_EQ(xensim_access(0, f + 0x10, 1, 0xffff888003000010ull, 0), 0); /* reads pass */
    CHECK_EQ(xensim_access(0, f + 0x10, 2, 0xffff888003000010ull, 0x5a), 1);
    CHECK_ST(vmi_events_listen(vmi, 1000), VMI_OK);
    CHECK_EQ(s.hit.addr, f + 0x10);
    CHECK_EQ(s.hit.access, VMI_WATCH_WRITE);
    CHECK_EQ(s.hit.va, 0xffff888003000010ull);
    CHECK_EQ(xensim_byte(f + 0x10), 0x5a); /* emulated */
    CHECK_EQ(xensim_frame_access(gf), 5);  /* still watched */
    s.ret = VMI_EVENT_DENY;
    CHECK_EQ(xensim_access(0, f + 0x1010, 2, 0, 0x77), 1);
    CHECK_ST(vmi_events_listen(vmi, 1000), VMI_OK);
    CHECK(xensim_byte(f + 0x1010) != 0x77, "the denied write did not land");
    CHECK_EQ(stats().writes_suppressed, 1);

    test_context("memory access: read watch overlapping, original rights kept");
    xensim_set_frame_access(gf + 2, 3); /* rw- before us */
    ev_init(&r, VMI_EVENT_MEM_ACCESS, &q);
    r.addr = f + 4096;
    r.len = 2 * 4096;
    r.access = VMI_WATCH_READ;
    CHECK_ST(vmi_event_register(vmi, &r), VMI_OK);
    CHECK_EQ(xensim_frame_access(gf), 5);
    CHECK_EQ(xensim_frame_access(gf + 1), 4); /* --x: no write without read */
    CHECK_EQ(xensim_frame_access(gf + 2), 0);
    CHECK_EQ(xensim_access(0, f + 0x2008, 2, 0, 0x42), 1); /* caught for EPT's sake: no callback */
    CHECK_ST(vmi_events_listen(vmi, 50), VMI_ERR_TIMEOUT);
    CHECK_EQ(q.n, 0);
    CHECK_EQ(xensim_byte(f + 0x2008), 0x42);
    CHECK_EQ(xensim_access(0, f + 0x2008, 1, 0, 0), 1);
    CHECK_ST(vmi_events_listen(vmi, 1000), VMI_OK);
    CHECK_EQ(q.n, 1);
    CHECK_EQ(q.hit.access, VMI_WATCH_READ);
    CHECK_ST(vmi_event_clear(vmi, &w), VMI_OK);
    CHECK_EQ(xensim_frame_access(gf), 7);
    CHECK_EQ(xensim_frame_access(gf + 1), 4);
    CHECK_ST(vmi_event_clear(vmi, &r), VMI_OK);
    CHECK_EQ(xensim_frame_access(gf + 1), 7);
    CHECK_EQ(xensim_frame_access(gf + 2), 3);
}

/* Watchpoints on the lab kernel's total_forks (8 bytes), with its
   neighbours nr_threads (8 bytes below) and panic_on_oops on its frame. */
static void test_watchpoints(vmi_instance *vmi) {
    vmi_event w, r, m, step;
    seen s, q, n, t;
    uint64_t va = 0, pa = 0, poo = 0, poo_pa = 0, gf, bad = 0xffff800000000000ull, junk;
    xensim_stats s0;
    test_context("watchpoint: write");
    if (!CHECK(vmi_ksym(vmi, "total_forks", &va) == VMI_OK && vmi_translate_kva(vmi, va, &pa) == VMI_OK &&
                   vmi_ksym(vmi, "panic_on_oops", &poo) == VMI_OK && vmi_translate_kva(vmi, poo, &poo_pa) == VMI_OK,
               "total_forks and panic_on_oops in the lab image"))
        return;
    gf = pa >> 12;
    CHECK_EQ(poo_pa >> 12, gf); /* the test's premise: one frame */
    CHECK_EQ(xensim_frame_access(gf), 7);
    ev_init(&w, VMI_EVENT_WATCH, &s);
    w.addr = va;
    w.len = 8;
    w.access = VMI_WATCH_WRITE;
    s.peek_va = va + 1;
    CHECK_ST(vmi_event_register(vmi, &w), VMI_OK);
    CHECK_EQ(w.pa__, pa);
    CHECK_EQ(xensim_frame_access(gf), 5); /* r-x */
    CHECK_EQ(xensim_access(0, pa, 1, va, 0), 0); /* reads pass */
    CHECK_EQ(xensim_access(0, pa + 1, 2, va + 1, 0x5a), 1);
    CHECK_ST(vmi_events_listen(vmi, 1000), VMI_OK);
    CHECK_EQ(s.n, 1);
    CHECK_EQ(w.hits, 1);
    CHECK_EQ(s.hit.addr, va);
    CHECK_EQ(s.hit.access, VMI_WATCH_WRITE);
    CHECK_EQ(s.hit.va, va + 1);
    CHECK_EQ(s.hit.vcpu, 0);
    CHECK_EQ(s.hit.regs.x86.rip, xensim_rip(0));
    CHECK_EQ(s.peeked, 0x5a); /* reported after the write */
    CHECK(s.paused_in_cb >= 1 && s.waiting_in_cb, "domain paused (%d) and vCPU held (%d) in the callback",
          s.paused_in_cb, s.waiting_in_cb);
    CHECK_EQ(xensim_frame_access(gf), 5); /* watched again */
    CHECK_EQ(xensim_vcpu_stepping(0), 0);
    CHECK_EQ(xensim_vcpu_waiting(0), 0);
    CHECK_EQ(stats().pause_count, 0);

    test_context("watchpoint: accesses beside it complete unseen");
    s0 = stats();
    CHECK_EQ(xensim_access(0, pa - 8, 2, va - 8, 0x11), 1);     /* nr_threads */
    CHECK_ST(vmi_events_listen(vmi, 50), VMI_ERR_TIMEOUT);
    CHECK_EQ(xensim_access(0, pa + 8, 2, va + 8, 0x12), 1);     /* the next variable */
    CHECK_ST(vmi_events_listen(vmi, 50), VMI_ERR_TIMEOUT);
    CHECK_EQ(xensim_access(1, pa - 1, 2, va - 1, 0x13), 1);     /* vCPU 1, the byte before */
    CHECK_ST(vmi_events_listen(vmi, 50), VMI_ERR_TIMEOUT);
    CHECK_EQ(s.n, 1);
    CHECK_EQ(w.hits, 1);
    CHECK(xensim_byte(pa - 8) == 0x11 && xensim_byte(pa + 8) == 0x12 && xensim_byte(pa - 1) == 0x13, "emulated");
    CHECK_EQ(stats().accesses - s0.accesses, 3);
    CHECK_EQ(xensim_vcpu_stepping(0) + xensim_vcpu_stepping(1), 0);

    test_context("watchpoint: no linear address, the guest-physical one decides");
    CHECK_EQ(xensim_access(1, pa + 7, 2, 0, 0x21), 1);
    CHECK_ST(vmi_events_listen(vmi, 1000), VMI_OK);
    CHECK_EQ(s.n, 2);
    CHECK_EQ(s.hit.vcpu, 1);
    CHECK_EQ(s.hit.va, 0);
    CHECK_EQ(xensim_byte(pa + 7), 0x21);
    CHECK_EQ(xensim_access(1, pa + 8, 2, 0, 0x22), 1);
    CHECK_ST(vmi_events_listen(vmi, 50), VMI_ERR_TIMEOUT);
    CHECK_EQ(s.n, 2);

    test_context("watchpoint: read, sharing the frame");
    ev_init(&r, VMI_EVENT_WATCH, &q);
    r.addr = poo;
    r.len = 4;
    r.access = VMI_WATCH_READ;
    CHECK_ST(vmi_event_register(vmi, &r), VMI_OK);
    CHECK_EQ(xensim_frame_access(gf), 4); /* --x: no write without read */
    CHECK_EQ(xensim_access(0, poo_pa + 2, 1, poo + 2, 0), 1);
    CHECK_ST(vmi_events_listen(vmi, 1000), VMI_OK);
    CHECK_EQ(q.n, 1);
    CHECK_EQ(q.hit.addr, poo);
    CHECK_EQ(q.hit.access, VMI_WATCH_READ);
    CHECK_EQ(xensim_access(0, pa, 1, va, 0), 1); /* total_forks read: its watch is for writes */
    CHECK_ST(vmi_events_listen(vmi, 50), VMI_ERR_TIMEOUT);
    CHECK_EQ(xensim_access(0, poo_pa, 2, poo, 1), 1); /* panic_on_oops written: its watch is for reads */
    CHECK_ST(vmi_events_listen(vmi, 50), VMI_ERR_TIMEOUT);
    CHECK_EQ(xensim_access(0, pa, 2, va, 0x31), 1);
    CHECK_ST(vmi_events_listen(vmi, 1000), VMI_OK);
    CHECK_EQ(q.n, 1);
    CHECK_EQ(s.n, 3);
    CHECK_EQ(xensim_frame_access(gf), 4);
    CHECK_ST(vmi_event_clear(vmi, &r), VMI_OK);
    CHECK_EQ(xensim_frame_access(gf), 5); /* the write watch's restriction stays */

    test_context("watchpoint and MEM_ACCESS on one frame");
    ev_init(&m, VMI_EVENT_MEM_ACCESS, &n);
    m.addr = gf << 12;
    m.len = 4096;
    m.access = VMI_WATCH_WRITE;
    n.peek_va = va;
    s.peek_va = va;
    CHECK_ST(vmi_event_register(vmi, &m), VMI_OK);
    CHECK_EQ(xensim_frame_access(gf), 5);
    CHECK_EQ(xensim_access(0, pa, 2, va, 0x41), 1);
    CHECK_ST(vmi_events_listen(vmi, 1000), VMI_OK);
    CHECK_EQ(n.n, 1);
    CHECK_EQ(n.hit.addr, pa);
    CHECK_EQ(n.peeked, 0x31); /* MEM_ACCESS: before the write */
    CHECK_EQ(s.n, 3);
    CHECK_ST(vmi_events_listen(vmi, 1000), VMI_OK);
    CHECK_EQ(s.n, 4);
    CHECK_EQ(s.peeked, 0x41); /* the watchpoint: after it */
    CHECK_EQ(xensim_access(0, pa - 8, 2, va - 8, 0x42), 1); /* the frame, not the variable */
    CHECK_ST(vmi_events_listen(vmi, 1000), VMI_OK);
    CHECK_EQ(n.n, 2);
    CHECK_ST(vmi_events_listen(vmi, 50), VMI_ERR_TIMEOUT);
    CHECK_EQ(s.n, 4);
    n.ret = VMI_EVENT_DENY; /* the write suppressed: nothing for the watchpoint */
    CHECK_EQ(xensim_access(0, pa, 2, va, 0x43), 1);
    CHECK_ST(vmi_events_listen(vmi, 1000), VMI_OK);
    CHECK_ST(vmi_events_listen(vmi, 50), VMI_ERR_TIMEOUT);
    CHECK_EQ(n.n, 3);
    CHECK_EQ(s.n, 4);
    CHECK_EQ(xensim_byte(pa), 0x41);
    n.ret = VMI_EVENT_KEEP;
    CHECK_ST(vmi_event_clear(vmi, &m), VMI_OK);
    CHECK_EQ(xensim_frame_access(gf), 5); /* the watchpoint's restriction stays */
    CHECK_EQ(xensim_access(0, pa, 2, va, 0x44), 1);
    CHECK_ST(vmi_events_listen(vmi, 1000), VMI_OK);
    CHECK_EQ(s.n, 5);
    CHECK_ST(vmi_event_register(vmi, &m), VMI_OK);
    CHECK_ST(vmi_event_clear(vmi, &w), VMI_OK);
    CHECK_EQ(xensim_frame_access(gf), 5); /* MEM_ACCESS's stays */
    CHECK_EQ(xensim_access(0, pa, 2, va, 0x45), 1);
    CHECK_ST(vmi_events_listen(vmi, 1000), VMI_OK);
    CHECK_ST(vmi_events_listen(vmi, 50), VMI_ERR_TIMEOUT);
    CHECK_EQ(n.n, 4);
    CHECK_EQ(s.n, 5);
    CHECK_ST(vmi_event_clear(vmi, &m), VMI_OK);
    CHECK_EQ(xensim_frame_access(gf), 7);

    test_context("watchpoint on a single-stepped vCPU: both reported");
    ev_init(&w, VMI_EVENT_WATCH, &s);
    w.addr = va;
    w.len = 8;
    w.access = VMI_WATCH_READ | VMI_WATCH_WRITE;
    ev_init(&step, VMI_EVENT_SINGLESTEP, &t);
    step.vcpu = 0;
    CHECK_ST(vmi_event_register(vmi, &w), VMI_OK);
    CHECK_ST(vmi_event_register(vmi, &step), VMI_OK);
    CHECK_EQ(xensim_access(0, pa + 4, 1, va + 4, 0), 1);
    CHECK_ST(vmi_events_listen(vmi, 1000), VMI_OK);
    CHECK_EQ(s.n, 1);
    CHECK_EQ(s.hit.access, VMI_WATCH_READ);
    CHECK_EQ(t.n, 0);
    CHECK_EQ(xensim_vcpu_waiting(0), 1); /* held for the single-step's delivery */
    CHECK_ST(vmi_events_listen(vmi, 1000), VMI_OK);
    CHECK_EQ(t.n, 1);
    CHECK_EQ(xensim_vcpu_stepping(0), 1);
    CHECK_EQ(xensim_vcpu_waiting(0), 0);
    CHECK_ST(vmi_event_clear(vmi, &step), VMI_OK);
    CHECK_EQ(xensim_vcpu_stepping(0), 0);

    test_context("watchpoint removed by its callback, original rights back");
    s.ret = VMI_EVENT_REMOVE;
    CHECK_EQ(xensim_access(1, pa, 2, va, 0x51), 1);
    CHECK_ST(vmi_events_listen(vmi, 1000), VMI_OK);
    CHECK_EQ(s.n, 2);
    CHECK_EQ(w.armed__, 0);
    CHECK_EQ(xensim_frame_access(gf), 7);
    CHECK_EQ(xensim_vcpu_stepping(1), 0);
    xensim_set_frame_access(gf, 3); /* rw- before us */
    CHECK_ST(vmi_event_register(vmi, &w), VMI_OK);
    CHECK_EQ(xensim_frame_access(gf), 0);
    CHECK_ST(vmi_event_clear(vmi, &w), VMI_OK);
    CHECK_EQ(xensim_frame_access(gf), 3);
    xensim_set_frame_access(gf, 7);

    test_context("watchpoint errors");
    if (CHECK(vmi_translate_kva(vmi, bad, &junk) != VMI_OK, "0x%llx unmapped", (unsigned long long)bad)) {
        ev_init(&w, VMI_EVENT_WATCH, &s);
        w.addr = bad;
        w.len = 4;
        w.access = VMI_WATCH_WRITE;
        s0 = stats();
        CHECK_ST(vmi_event_register(vmi, &w), VMI_ERR_NOT_PRESENT);
        CHECK(strstr(vmi_last_error(vmi), "watchpoint at 0xffff800000000000") &&
                  strstr(vmi_last_error(vmi), "not mapped"), "error: %s", vmi_last_error(vmi));
        CHECK_EQ(w.armed__, 0);
        CHECK_EQ(stats().pause_count, s0.pause_count);
        CHECK_ST(vmi_event_clear(vmi, &w), VMI_ERR_ARG);
    }
    w.addr = va + 2;
    CHECK_ST(vmi_event_register(vmi, &w), VMI_ERR_ARG); /* misaligned: the core's check */
    w.addr = va;
    w.len = 3;
    CHECK_ST(vmi_event_register(vmi, &w), VMI_ERR_ARG);
    CHECK_EQ(xensim_frame_access(gf), 7);
}

/* With events armed and requests waiting, close puts everything back. */
static void test_close_restores(void) {
    vmi_instance *vmi = vmi_xen(0), *other;
    vmi_event bp, w, cr, st;
    seen s1, s2, s3, s4;
    uint64_t va = 0, pa = 0;
    uint8_t orig;
    test_context("close restores");
    if (!vmi || vmi_os_init(vmi) != VMI_OK) return;
    xensim_set_frame_access(0x4000, 7);
    CHECK(vmi_ksym(vmi, "schedule", &va) == VMI_OK && vmi_translate_kva(vmi, va, &pa) == VMI_OK, "schedule");
    orig = xensim_byte(pa);
    ev_init(&bp, VMI_EVENT_BREAKPOINT, &s1);
    bp.addr = va;
    ev_init(&w, VMI_EVENT_MEM_ACCESS, &s2);
    w.addr = 0x4000000;
    w.len = 4096;
    w.access = VMI_WATCH_READ | VMI_WATCH_WRITE | VMI_WATCH_EXEC;
    ev_init(&cr, VMI_EVENT_REG_WRITE, &s3);
    cr.reg = VMI_REG_CR3;
    ev_init(&st, VMI_EVENT_SINGLESTEP, &s4);
    CHECK_ST(vmi_event_register(vmi, &bp), VMI_OK);
    CHECK_ST(vmi_event_register(vmi, &w), VMI_OK);
    CHECK_ST(vmi_event_register(vmi, &cr), VMI_OK);
    CHECK_ST(vmi_event_register(vmi, &st), VMI_OK);
    CHECK_EQ(xensim_frame_access(0x4000), 0);

    test_context("one monitor per domain");
    other = vmi_xen(0);
    if (other) {
        vmi_event c2;
        seen s5;
        ev_init(&c2, VMI_EVENT_REG_WRITE, &s5);
        c2.reg = VMI_REG_CR0;
        CHECK_ST(vmi_event_register(other, &c2), VMI_ERR_BACKEND);
        CHECK(strstr(vmi_last_error(other), "already has a vm_event monitor") != NULL, "%s", vmi_last_error(other));
        vmi_close(other);
    }

    test_context("close restores");
    CHECK_EQ(xensim_cr_write(0, 3, 0x7000), 1); /* left on the ring */
    vmi_close(vmi);
    CHECK_EQ(xensim_byte(pa), orig);
    CHECK_EQ(xensim_frame_access(0x4000), 7);
    CHECK_EQ(xensim_vcpu_stepping(0), 0);
    CHECK_EQ(xensim_vcpu_waiting(0), 0);
    CHECK_EQ(stats().paused_at_disable, 0); /* answered by us, not freed by Xen */
    CHECK_EQ(xensim_cr(0, 3), 0x7000);
    check_released("close with events");

    test_context("close while a callback holds the guest");
    if (!(vmi = vmi_xen(0))) return;
    ev_init(&cr, VMI_EVENT_REG_WRITE, &s3);
    cr.reg = VMI_REG_CR0;
    s3.do_pause = 1;
    CHECK_ST(vmi_event_register(vmi, &cr), VMI_OK);
    CHECK_EQ(xensim_cr_write(0, 0, 0x80000011), 1);
    CHECK_ST(vmi_events_listen(vmi, 1000), VMI_OK);
    CHECK_EQ(xensim_vcpu_waiting(0), 1);
    CHECK(stats().pause_count > 0, "held");
    vmi_close(vmi);
    CHECK_EQ(xensim_cr(0, 0), 0x80000011);
    check_released("close in a callback's pause");
}

static void test_event_failures(void) {
    vmi_instance *vmi;
    vmi_event cr;
    seen s;
    test_context("ring: unknown vm_event version");
    if (!(vmi = vmi_xen(0))) return;
    ev_init(&cr, VMI_EVENT_REG_WRITE, &s);
    cr.reg = VMI_REG_CR3;
    CHECK_ST(vmi_event_register(vmi, &cr), VMI_OK);
    xensim_fail(XENSIM_RING_VERSION, 0);
    CHECK_EQ(xensim_cr_write(0, 3, 0x9000), 1);
    CHECK_ST(vmi_events_listen(vmi, 1000), VMI_ERR_BACKEND);
    CHECK(strstr(vmi_last_error(vmi), "version 99") != NULL, "%s", vmi_last_error(vmi));
    CHECK_ST(vmi_events_listen(vmi, 10), VMI_ERR_BACKEND);
    xensim_fail(XENSIM_OK, 0);
    vmi_close(vmi);
    CHECK_EQ(stats().paused_at_disable, 1); /* left to Xen's disable */
    check_released("a bad version");
    reload();

    test_context("ring: garbage indexes");
    if (!(vmi = vmi_xen(0))) return;
    ev_init(&cr, VMI_EVENT_REG_WRITE, &s);
    cr.reg = VMI_REG_CR3;
    CHECK_ST(vmi_event_register(vmi, &cr), VMI_OK);
    xensim_fail(XENSIM_RING_GARBAGE, 0);
    CHECK_ST(vmi_events_listen(vmi, 100), VMI_ERR_BACKEND);
    CHECK(strstr(vmi_last_error(vmi), "indexes") != NULL, "%s", vmi_last_error(vmi));
    xensim_fail(XENSIM_OK, 0);
    vmi_close(vmi);
    check_released("a corrupt ring");
    reload();

    test_context("monitor busy");
    if (!(vmi = vmi_xen(0))) return;
    ev_init(&cr, VMI_EVENT_REG_WRITE, &s);
    cr.reg = VMI_REG_CR3;
    xensim_fail(XENSIM_MONITOR_BUSY, 0);
    CHECK_ST(vmi_event_register(vmi, &cr), VMI_ERR_BACKEND);
    xensim_fail(XENSIM_OK, 0);
    CHECK_ST(vmi_event_register(vmi, &cr), VMI_OK);

    test_context("domain gone during a listen");
    xensim_fail(XENSIM_DOMAIN_GONE, 0);
    CHECK_ST(vmi_events_listen(vmi, 100), VMI_ERR_BACKEND);
    CHECK(strstr(vmi_last_error(vmi), "gone") != NULL, "%s", vmi_last_error(vmi));
    vmi_close(vmi);
    xensim_fail(XENSIM_OK, 0);
    check_released("a domain gone");
    reload();
}

static void test_events(void) {
    vmi_instance *vmi;
    xensim_set_vcpus(2);
    if (!(vmi = vmi_xen(1))) return;
    if (!CHECK(vmi_os_init(vmi) == VMI_OK, "vmi_os_init: %s", vmi_last_error(vmi))) {
        vmi_close(vmi);
        return;
    }
    test_reg_events(vmi);
    test_breakpoints(vmi);
    test_mem_events(vmi);
    test_watchpoints(vmi);
    vmi_close(vmi);
    check_released("events");
    reload();
    test_close_restores();
    reload();
    test_event_failures();
}

int main(int argc, char **argv) {
    char path[512];
    if (argc > 1) dir = argv[1];
    snprintf(path, sizeof path, "%s/mem.raw", dir);
    image = (uint8_t *)test_slurp(path, &image_len);
    if (!CHECK(image && image_len >= (16u << 20), "%s: the lab capture (python3 tests/guests/lab.py capture x86_64)", path) ||
        !CHECK(reload() == 0, "xensim_load %s", dir))
        return test_summary();
    test_open();
    test_reads();
    test_map_cache();
    test_writes_and_failures();
    test_regs();
    test_processes();
    test_events();
    xensim_unload();
    free(image);
    return test_summary();
}
