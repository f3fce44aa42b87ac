/* test_cache.c - the page cache (backends without host mappings), cache
   expiry on live backends, pause/resume nesting, backend failures.
   A counting backend over a host buffer stands in for a live one. */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#define VMI_IMPLEMENTATION
#include "vmi.h"
#include "test.h"
#include <time.h>

#define NPAGES 64
static uint8_t guest[NPAGES * 4096];

typedef struct counting {
    unsigned reads, writes, pauses, resumes;
    uint64_t fail_pa; /* read_pa of this page fails (0: never) */
    char err[64];
} counting;

static counting cnt;

static vmi_status c_read(void *ctx, uint64_t pa, void *buf, size_t len) {
    counting *c = (counting *)ctx;
    c->reads++;
    if (c->fail_pa && pa >> 12 == c->fail_pa >> 12) {
        snprintf(c->err, sizeof c->err, "device error at 0x%llx", (unsigned long long)pa);
        return VMI_ERR_IO;
    }
    memcpy(buf, guest + pa, len);
    return VMI_OK;
}

static vmi_status c_write(void *ctx, uint64_t pa, const void *buf, size_t len) {
    ((counting *)ctx)->writes++;
    memcpy(guest + pa, buf, len);
    return VMI_OK;
}

static vmi_status c_pause(void *ctx) { ((counting *)ctx)->pauses++; return VMI_OK; }
static vmi_status c_resume(void *ctx) { ((counting *)ctx)->resumes++; return VMI_OK; }
static const char *c_error(void *ctx) { return ((counting *)ctx)->err; }

/* Pages 0-31 through read_pa (cached); pages 32-63 mapped (host). The
   first range ends mid-page to exercise partial pages. */
static vmi_mem_range ranges[2];

static vmi_instance *open_counting(uint32_t flags, uint32_t cache_pages, uint32_t ttl_ms) {
    vmi_desc d;
    vmi_instance *vmi = NULL;
    memset(&cnt, 0, sizeof cnt);
    memset(&d, 0, sizeof d);
    ranges[0].pa = 0, ranges[0].size = 31 * 4096 + 2048, ranges[0].host = NULL, ranges[0].flags = 0;
    ranges[1].pa = 32 * 4096, ranges[1].size = 32 * 4096, ranges[1].host = guest + 32 * 4096;
    ranges[1].flags = VMI_RANGE_WRITABLE;
    d.backend.name = "counting";
    d.backend.ctx = &cnt;
    d.backend.flags = flags;
    d.backend.ranges = ranges;
    d.backend.nranges = 2;
    d.backend.read_pa = c_read;
    d.backend.write_pa = c_write;
    d.backend.pause = c_pause;
    d.backend.resume = c_resume;
    d.backend.last_error = c_error;
    d.page_cache_pages = cache_pages;
    d.cache_ttl_ms = ttl_ms;
    CHECK_ST(vmi_open(&d, &vmi), VMI_OK);
    return vmi;
}

static void sleep_ms(unsigned ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

static uint8_t read_byte(vmi_instance *vmi, uint64_t pa) {
    uint8_t b = 0xee;
    CHECK_ST(vmi_read_pa(vmi, pa, &b, 1, NULL), VMI_OK);
    return b;
}

static void test_lru(void) {
    vmi_instance *vmi;
    unsigned p;
    test_context("page cache LRU, 4 pages");
    for (p = 0; p < NPAGES; p++) memset(guest + p * 4096, (int)p, 4096);
    vmi = open_counting(0, 4, 0);
    for (p = 0; p < 4; p++) CHECK_EQ(read_byte(vmi, p * 4096 + 7), p);
    CHECK_EQ(cnt.reads, 4);
    CHECK_EQ(read_byte(vmi, 0), 0); /* hit: page 0 becomes most recent */
    CHECK_EQ(cnt.reads, 4);
    CHECK_EQ(read_byte(vmi, 4 * 4096), 4); /* evicts the least recent: page 1 */
    CHECK_EQ(cnt.reads, 5);
    CHECK_EQ(read_byte(vmi, 0), 0);
    CHECK_EQ(cnt.reads, 5);
    CHECK_EQ(read_byte(vmi, 2 * 4096), 2);
    CHECK_EQ(cnt.reads, 5);
    CHECK_EQ(read_byte(vmi, 1 * 4096), 1); /* was evicted */
    CHECK_EQ(cnt.reads, 6);
    CHECK_EQ(read_byte(vmi, 3 * 4096), 3); /* evicted by page 1 (least recent then) */
    CHECK_EQ(cnt.reads, 7);
    CHECK_EQ(vmi_get_cache_stats(vmi).page_misses, 7);
    CHECK_EQ(vmi_get_cache_stats(vmi).page_hits, 3);
    vmi_flush_caches(vmi);
    CHECK_EQ(read_byte(vmi, 0), 0);
    CHECK_EQ(cnt.reads, 8);
    vmi_close(vmi);
}

static void test_spans(void) {
    static uint8_t want[40 * 4096], got[40 * 4096];
    vmi_instance *vmi;
    size_t done = 0, i;
    test_context("reads across cached pages, a partial page and mapped memory");
    for (i = 0; i < sizeof guest; i++) guest[i] = (uint8_t)(i * 7 + (i >> 12));
    vmi = open_counting(0, 8, 0);
    /* from page 29 through the partial page 31 into the hole: stops there */
    CHECK_ST(vmi_read_pa(vmi, 29 * 4096 + 5, got, 3 * 4096, &done), VMI_ERR_UNMAPPED);
    CHECK_EQ(done, 2 * 4096 + 2048 - 5);
    CHECK_MEM(got, guest + 29 * 4096 + 5, done);
    /* the mapped range after the hole reads with no backend call */
    cnt.reads = 0;
    CHECK_ST(vmi_read_pa(vmi, 32 * 4096 + 100, got, 5 * 4096, &done), VMI_OK);
    CHECK_EQ(cnt.reads, 0);
    CHECK_MEM(got, guest + 32 * 4096 + 100, 5 * 4096);
    /* a read larger than the cache still reads right */
    memcpy(want, guest, 20 * 4096);
    CHECK_ST(vmi_read_pa(vmi, 0, got, 20 * 4096, &done), VMI_OK);
    CHECK_MEM(got, want, 20 * 4096);
    vmi_close(vmi);
}

static void test_write_through(void) {
    vmi_instance *vmi;
    uint8_t v = 0x5a;
    test_context("writes through read_pa backends invalidate the cached page");
    memset(guest, 0x11, 4096);
    vmi = open_counting(0, 4, 0);
    CHECK_EQ(read_byte(vmi, 10), 0x11);
    CHECK_ST(vmi_write_pa(vmi, 10, &v, 1, NULL), VMI_OK);
    CHECK_EQ(cnt.writes, 1);
    CHECK_EQ(guest[10], 0x5a);
    CHECK_EQ(read_byte(vmi, 10), 0x5a);
    vmi_close(vmi);
}

static void test_backend_failure(void) {
    vmi_instance *vmi;
    uint8_t buf[16];
    size_t done = 99;
    test_context("a failing read_pa is reported and leaves the cache usable");
    vmi = open_counting(0, 2, 0);
    cnt.fail_pa = 5 * 4096;
    CHECK_ST(vmi_read_pa(vmi, 5 * 4096 - 8, buf, 16, &done), VMI_ERR_IO);
    CHECK_EQ(done, 8);
    CHECK(strstr(vmi_last_error(vmi), "device error at 0x5000") != NULL, "last error: %s", vmi_last_error(vmi));
    cnt.fail_pa = 0;
    CHECK_ST(vmi_read_pa(vmi, 5 * 4096, buf, 16, &done), VMI_OK);
    CHECK_ST(vmi_read_pa(vmi, 6 * 4096, buf, 16, &done), VMI_OK);
    CHECK_ST(vmi_read_pa(vmi, 7 * 4096, buf, 16, &done), VMI_OK);
    vmi_close(vmi);
}

static void test_live_expiry(void) {
    vmi_instance *vmi;
    test_context("live backend: cached pages expire after the TTL, not while paused");
    memset(guest, 0x21, 4096);
    vmi = open_counting(VMI_BACKEND_LIVE, 4, 40);
    CHECK_EQ(read_byte(vmi, 0), 0x21);
    guest[0] = 0x22; /* the guest changes its memory */
    CHECK_EQ(read_byte(vmi, 0), 0x21); /* within the TTL: the cached copy */
    sleep_ms(60);
    CHECK_EQ(read_byte(vmi, 0), 0x22);

    CHECK_ST(vmi_pause(vmi), VMI_OK);
    CHECK_ST(vmi_pause(vmi), VMI_OK); /* nests */
    CHECK_EQ(cnt.pauses, 1);
    guest[0] = 0x23;
    CHECK_EQ(read_byte(vmi, 0), 0x23); /* pausing flushed what was read while running */
    guest[0] = 0x24;                   /* (a test poking a "paused" guest) */
    sleep_ms(60);
    CHECK_EQ(read_byte(vmi, 0), 0x23); /* paused: no expiry */
    CHECK_ST(vmi_resume(vmi), VMI_OK);
    CHECK_EQ(cnt.resumes, 0);
    CHECK_ST(vmi_resume(vmi), VMI_OK);
    CHECK_EQ(cnt.resumes, 1);
    CHECK_EQ(read_byte(vmi, 0), 0x24); /* resume flushed */
    CHECK_ST(vmi_resume(vmi), VMI_ERR_ARG);
    vmi_close(vmi);
}

static void test_live_v2p_expiry(void) {
    vmi_instance *vmi;
    vmi_paging p;
    uint64_t pa = 0;
    /* legacy 32-bit tables in the mapped range: PD at page 40, PT at 41 */
    uint32_t *pd = (uint32_t *)(guest + 40 * 4096), *pt = (uint32_t *)(guest + 41 * 4096);
    test_context("live backend: cached translations expire after the TTL");
    memset(pd, 0, 8192);
    pd[0x300] = 41 * 4096 | 3;
    pt[0] = 42 * 4096 | 3;
    vmi = open_counting(VMI_BACKEND_LIVE, 4, 40);
    memset(&p, 0, sizeof p);
    p.mode = VMI_PAGING_LEGACY;
    p.dtb = 40 * 4096;
    CHECK_ST(vmi_set_paging(vmi, &p), VMI_OK);
    CHECK_ST(vmi_translate_kva(vmi, 0xc0000010, &pa), VMI_OK);
    CHECK_EQ(pa, 42 * 4096 + 0x10);
    pt[0] = 43 * 4096 | 3; /* the guest remaps the page */
    CHECK_ST(vmi_translate_kva(vmi, 0xc0000010, &pa), VMI_OK);
    CHECK_EQ(pa, 42 * 4096 + 0x10);
    sleep_ms(60);
    CHECK_ST(vmi_translate_kva(vmi, 0xc0000010, &pa), VMI_OK);
    CHECK_EQ(pa, 43 * 4096 + 0x10);
    vmi_close(vmi);
}

/* vmi_read_va caches a run of pages as one entry: it obeys the same rules
   as a page's (kept within the TTL, dropped after it or on a flush). */
static void test_live_run_expiry(void) {
    vmi_instance *vmi;
    vmi_paging p;
    uint8_t buf[4 * 4096];
    unsigned pg;
    uint32_t *pd = (uint32_t *)(guest + 40 * 4096), *pt = (uint32_t *)(guest + 41 * 4096);
    test_context("live backend: a cached run of pages expires after the TTL");
    memset(pd, 0, 8192);
    pd[0x300] = 41 * 4096 | 3;
    for (pg = 0; pg < 4; pg++) pt[pg] = (42 + pg) * 4096 | 3; /* 0xc0000000: pages 42-45 */
    for (pg = 42; pg < 52; pg++) memset(guest + pg * 4096, (int)pg, 4096);
    vmi = open_counting(VMI_BACKEND_LIVE, 4, 40);
    memset(&p, 0, sizeof p);
    p.mode = VMI_PAGING_LEGACY;
    p.dtb = 40 * 4096;
    CHECK_ST(vmi_set_paging(vmi, &p), VMI_OK);
    CHECK_ST(vmi_read_kva(vmi, 0xc0000010, buf, sizeof buf - 16, NULL), VMI_OK);
    CHECK_EQ(buf[2 * 4096], 44);
    pt[2] = 50 * 4096 | 3; /* the guest remaps the middle of the run */
    CHECK_ST(vmi_read_kva(vmi, 0xc0000010, buf, sizeof buf - 16, NULL), VMI_OK);
    CHECK_EQ(buf[2 * 4096], 44); /* within the TTL: the cached run */
    sleep_ms(60);
    CHECK_ST(vmi_read_kva(vmi, 0xc0000010, buf, sizeof buf - 16, NULL), VMI_OK);
    CHECK_EQ(buf[2 * 4096 - 17], 43);
    CHECK_EQ(buf[2 * 4096 - 16], 50);
    CHECK_EQ(buf[3 * 4096], 45);
    pt[1] = 0; /* now a page in the middle is not present */
    CHECK_ST(vmi_pause(vmi), VMI_OK); /* (pausing flushes) */
    {
        size_t done = 0;
        CHECK_ST(vmi_read_kva(vmi, 0xc0000010, buf, sizeof buf - 16, &done), VMI_ERR_NOT_PRESENT);
        CHECK_EQ(done, 4096 - 16);
    }
    pt[1] = 51 * 4096 | 3;
    vmi_flush_v2p(vmi, 40 * 4096);
    CHECK_ST(vmi_read_kva(vmi, 0xc0000010, buf, sizeof buf - 16, NULL), VMI_OK);
    CHECK_EQ(buf[4096], 51);
    CHECK_ST(vmi_resume(vmi), VMI_OK);
    vmi_close(vmi);
}

static void test_not_live(void) {
    vmi_instance *vmi;
    test_context("an image is always paused: pause/resume never reach the backend");
    vmi = open_counting(0, 4, 0);
    CHECK_ST(vmi_pause(vmi), VMI_OK);
    CHECK_ST(vmi_resume(vmi), VMI_OK);
    CHECK_EQ(cnt.pauses + cnt.resumes, 0);
    vmi_close(vmi);
}

int main(void) {
    test_lru();
    test_spans();
    test_write_through();
    test_backend_failure();
    test_live_expiry();
    test_live_v2p_expiry();
    test_live_run_expiry();
    test_not_live();
    return test_summary();
}
