/* make bench-xen: reads through vmi_xen.h's mapping cache beside memcpy,
   on the SIMULATED Xen (tests/xen/xensim.c; needs the x86_64 lab capture).
   warm: the chunk is mapped, a read is the cache lookup and a memcpy out of
   the mapping, as on Xen. cold: every read maps a 64-frame chunk first (the
   cache holds one chunk, reads hop chunks); here that is the simulator's
   mmap of a memfd, on Xen a privcmd hypercall batch, so the cold figure
   says nothing of Xen's own cost. Best of 5 runs each.
   Usage: bench-xensim [CAPTURE_DIR] */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#define VMI_IMPLEMENTATION
#include "vmi.h"
#include "vmi_xen.h"
#include "../tests/xen/xensim.h"
#include <stdio.h>
#include <time.h>

#define READS 4096u
#define CHUNK_BYTES (64u * 4096u)

static volatile uint64_t sink;

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* ns per read of len bytes, every stride bytes within span, best of 5 */
static double time_reads(vmi_backend *be, size_t len, uint64_t stride, uint64_t span, uint8_t *buf) {
    double best = 1e30;
    int run;
    unsigned i;
    for (run = 0; run < 5; run++) {
        double t = now_ns();
        for (i = 0; i < READS; i++)
            if (be->read_pa(be->ctx, 0x1000000 + (i * stride) % span, buf, len) != VMI_OK) return -1;
        t = (now_ns() - t) / READS;
        sink += buf[0];
        if (t < best) best = t;
    }
    return best;
}

static double time_memcpy(const uint8_t *src, size_t len, uint8_t *buf) {
    double best = 1e30;
    int run;
    unsigned i;
    for (run = 0; run < 5; run++) {
        double t = now_ns();
        for (i = 0; i < READS; i++) {
            memcpy(buf, src + (i * 64u) % (CHUNK_BYTES - len), len);
            sink += buf[0];
        }
        t = (now_ns() - t) / READS;
        if (t < best) best = t;
    }
    return best;
}

static int bench(uint32_t chunks, const char *what, uint64_t stride, uint64_t span, size_t len, const uint8_t *src) {
    static uint8_t buf[4096];
    vmi_xen_desc d;
    vmi_backend be;
    char err[512];
    double ns, mc;
    memset(&d, 0, sizeof d);
    d.domain = "7";
    d.map_cache_chunks = chunks;
    d.map_ttl_ms = 600000;
    if (vmi_xen_open(&d, &be, err, sizeof err) != VMI_OK) {
        fprintf(stderr, "vmi_xen_open: %s\n", err);
        return 1;
    }
    (void)time_reads(&be, len, stride, span, buf); /* warm up */
    ns = time_reads(&be, len, stride, span, buf);
    mc = time_memcpy(src, len, buf);
    printf("%-34s %5zu B  %9.1f ns  (memcpy %6.1f ns, x%.1f)\n", what, len, ns, mc, ns / mc);
    be.close(be.ctx);
    return ns < 0;
}

int main(int argc, char **argv) {
    static uint8_t src[CHUNK_BYTES];
    const char *dir = argc > 1 ? argv[1] : "build/guests/x86_64";
    int bad = 0;
    if (xensim_load(dir, 7, "lab") != 0) return 1;
    memset(src, 1, sizeof src);
    printf("simulated Xen: reads through the backend's mapping cache\n");
    bad |= bench(64, "warm, in one chunk", 64, CHUNK_BYTES - 4096, 8, src);
    bad |= bench(64, "warm, in one chunk", 64, CHUNK_BYTES - 4096, 4096 - 64, src);
    bad |= bench(64, "warm, 64 chunks (16 MiB) in turn", CHUNK_BYTES, 64u * CHUNK_BYTES, 8, src);
    bad |= bench(1, "cold: a new chunk every read", CHUNK_BYTES, 48u << 20, 8, src);
    xensim_unload();
    return bad;
}
