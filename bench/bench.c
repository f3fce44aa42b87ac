/* make bench: vmi.h timings beside memcpy measured in the same run.
   Guest memory is a host buffer behind the buffer backend, which is what an
   mmap'd backend (files, QEMU's shared RAM) costs: memcpy is the limit.
   Page tables are built here, per mode, mapping 1 MiB of kernel VA with
   4 KiB pages (the worst case for translation). Best of 5 runs each. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#define VMI_IMPLEMENTATION
#include "vmi.h"
#include "vmi_file.h"
#include "vmi_kvm.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define MEM_SIZE (64u << 20)
#define MAP_PA 0x1000000u /* where the mapped 1 MiB lives */
#define MAP_LEN (1u << 20)

typedef struct mode_geom {
    vmi_paging_mode mode;
    const char *name;
    unsigned nlevels, esize;
    unsigned shift[5], bits[5];
    uint64_t kva, tcr;
} mode_geom;

static const mode_geom geoms[] = {
    {VMI_PAGING_LEGACY, "legacy", 2, 4, {22, 12}, {10, 10}, 0xc1000000u, 0},
    {VMI_PAGING_PAE, "pae", 3, 8, {30, 21, 12}, {2, 9, 9}, 0xc1000000u, 0},
    {VMI_PAGING_IA32E, "ia32e", 4, 8, {39, 30, 21, 12}, {9, 9, 9, 9}, 0xffffffff81000000ull, 0},
    {VMI_PAGING_LA57, "la57", 5, 8, {48, 39, 30, 21, 12}, {9, 9, 9, 9, 9}, 0xffffffff81000000ull, 0},
    {VMI_PAGING_AARCH64, "aarch64-4k", 4, 8, {39, 30, 21, 12}, {9, 9, 9, 9}, 0xffff800008000000ull, 0},
    {VMI_PAGING_AARCH32, "aarch32", 2, 4, {20, 12}, {12, 8}, 0xc1000000u, 0},
    {VMI_PAGING_LPAE, "lpae", 3, 8, {30, 21, 12}, {2, 9, 9}, 0xc1000000u, 0},
};

static uint8_t *mem;
static uint64_t bump;

static uint64_t table_alloc(void) {
    uint64_t pa = bump;
    bump += 0x4000; /* 16 KiB: big enough and aligned for every mode's table */
    memset(mem + pa, 0, 0x4000);
    return pa;
}

static uint64_t get_entry(const mode_geom *g, uint64_t pa) {
    uint64_t v = 0;
    memcpy(&v, mem + pa, g->esize);
    return v;
}

static void set_entry(const mode_geom *g, uint64_t pa, uint64_t v) { memcpy(mem + pa, &v, g->esize); }

static uint64_t table_entry(const mode_geom *g, unsigned level, uint64_t pa) {
    switch (g->mode) {
    case VMI_PAGING_PAE: return level == 0 ? pa | 1 : pa | 3;
    case VMI_PAGING_AARCH64: case VMI_PAGING_LPAE: return pa | 3;
    case VMI_PAGING_AARCH32: return pa | 1;
    default: return pa | 3;
    }
}

static uint64_t leaf_entry(const mode_geom *g, uint64_t pa) {
    switch (g->mode) {
    case VMI_PAGING_AARCH64: case VMI_PAGING_LPAE: return pa | 3 | (1u << 10);
    case VMI_PAGING_AARCH32: return pa | 2 | (1u << 4);
    default: return pa | 3;
    }
}

static void map_page(const mode_geom *g, uint64_t root, uint64_t va, uint64_t pa) {
    uint64_t table = root;
    unsigned l;
    for (l = 0; l + 1 < g->nlevels; l++) {
        uint64_t at = table + ((va >> g->shift[l]) & ((1ull << g->bits[l]) - 1)) * g->esize;
        uint64_t e = get_entry(g, at);
        if (!e) set_entry(g, at, e = table_entry(g, l, table_alloc()));
        table = g->mode == VMI_PAGING_AARCH32 ? (e & 0xfffffc00u) : (e & 0xfffffffff000ull);
    }
    set_entry(g, table + ((va >> 12) & ((1ull << g->bits[l]) - 1)) * g->esize, leaf_entry(g, pa));
}

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static volatile uint64_t sink;

/* Best of 5 runs of `iters` calls of fn, in ns per call. */
#define TIME_BEST(result, iters, body)                                      \
    do {                                                                    \
        int run_;                                                           \
        (result) = 1e30;                                                    \
        for (run_ = 0; run_ < 5; run_++) {                                  \
            double t0_ = now_ns(), t_;                                      \
            uint64_t it_;                                                   \
            for (it_ = 0; it_ < (iters); it_++) { body; }                   \
            t_ = (now_ns() - t0_) / (double)(iters);                        \
            if (t_ < (result)) (result) = t_;                               \
        }                                                                   \
    } while (0)

static void row(const char *what, double ns, double memcpy_ns, size_t bytes) {
    if (bytes >= 4096)
        printf("  %-34s %9.1f ns  %6.2f GB/s   memcpy %6.2f GB/s  (%3.0f%%)\n", what, ns, bytes / ns,
               bytes / memcpy_ns, 100.0 * memcpy_ns / ns);
    else if (memcpy_ns > 0)
        printf("  %-34s %9.1f ns                memcpy %6.1f ns\n", what, ns, memcpy_ns);
    else
        printf("  %-34s %9.1f ns\n", what, ns);
}

static vmi_instance *open_mode(const mode_geom *g, uint64_t *root) {
    static vmi_mem_range r;
    vmi_desc desc;
    vmi_instance *vmi;
    uint64_t off;
    bump = 0x100000;
    *root = table_alloc();
    for (off = 0; off < MAP_LEN; off += 4096) map_page(g, *root, g->kva + off, MAP_PA + off);
    r.pa = 0, r.size = MEM_SIZE, r.host = mem, r.flags = VMI_RANGE_WRITABLE;
    memset(&desc, 0, sizeof desc);
    vmi_backend_buffer(&desc.backend, &r, 1);
    desc.paging.mode = g->mode;
    desc.paging.dtb = *root;
    desc.paging.tcr = g->tcr;
    if (vmi_open(&desc, &vmi) != VMI_OK) { fprintf(stderr, "bench: vmi_open failed\n"); exit(1); }
    return vmi;
}

static void bench_mode(const mode_geom *g) {
    uint64_t root, pa = 0, i = 0;
    vmi_instance *vmi = open_mode(g, &root);
    vmi_walk w;
    double warm, warm256, walk;
    if (vmi_translate(vmi, root, g->kva + 0x1234, &pa) != VMI_OK || pa != MAP_PA + 0x1234) {
        fprintf(stderr, "bench: %s translation is wrong: %s\n", g->name, vmi_last_error(vmi));
        exit(1);
    }
    TIME_BEST(warm, 2000000, { vmi_translate(vmi, root, g->kva + 0x1234, &pa); sink += pa; });
    TIME_BEST(warm256, 2000000, { vmi_translate(vmi, root, g->kva + ((i++ & 255) << 12), &pa); sink += pa; });
    TIME_BEST(walk, 1000000, { vmi_translate_walk(vmi, root, g->kva + ((i++ & 255) << 12), &w); sink += w.pa; });
    printf("  %-10s translate warm %5.1f ns, warm over 256 pages %5.1f ns, flushed (full %u-level walk) %5.1f ns\n",
           g->name, warm, warm256, g->nlevels, walk);
    vmi_close(vmi);
}

typedef struct walk_tally {
    uint64_t pages, bytes;
} walk_tally;

static int tally(void *user, const vmi_page *page) {
    walk_tally *w = (walk_tally *)user;
    w->pages++;
    w->bytes += page->size;
    return 0;
}

static int count_process(void *user, const vmi_process *p) {
    (void)p;
    ++*(unsigned *)user;
    return 0;
}

/* Zero-config Linux: open to first process list, cold (a fresh instance
   each run), then the list alone, warm; beside memcpy of the guest's RAM. */
static void bench_os(const char *path) {
    double cold = 1e30, warm = 1e30, t0, t, m = 1e30;
    unsigned n = 0;
    int run;
    size_t size = 0;
    uint8_t *a, *b;
    for (run = 0; run < 5; run++) {
        vmi_file_desc fd;
        vmi_desc desc;
        vmi_instance *vmi;
        char err[256];
        memset(&fd, 0, sizeof fd);
        memset(&desc, 0, sizeof desc);
        fd.path = path;
        t0 = now_ns();
        if (vmi_file_open(&fd, &desc.backend, err, sizeof err) != VMI_OK || vmi_open(&desc, &vmi) != VMI_OK) return;
        if (vmi_os_init(vmi) != VMI_OK || vmi_foreach_process(vmi, 0, count_process, &n) != VMI_OK) {
            printf("  zero-config process list: %s\n", vmi_last_error(vmi));
            vmi_close(vmi);
            return;
        }
        t = now_ns() - t0;
        if (t < cold) cold = t;
        t0 = now_ns();
        n = 0;
        vmi_foreach_process(vmi, 0, count_process, &n);
        t = now_ns() - t0;
        if (t < warm) warm = t;
        size = (size_t)vmi_memory_size(vmi);
        vmi_close(vmi);
    }
    a = (uint8_t *)malloc(size);
    b = (uint8_t *)malloc(size);
    if (a && b) {
        memset(a, 1, size);
        memset(b, 2, size);
        for (run = 0; run < 3; run++) {
            t0 = now_ns();
            memcpy(b, a, size);
            t = now_ns() - t0;
            sink += b[size / 2];
            if (t < m) m = t;
        }
        printf("  open to first process list       %9.1f us  (zero-config: kallsyms, BTF, paging found; %u processes)\n",
               cold / 1e3, n);
        printf("  process list alone (warm)         %9.1f us\n", warm / 1e3);
        printf("  memcpy of the guest's RAM         %9.1f us  (%zu MiB)\n", m / 1e3, size >> 20);
    }
    free(a);
    free(b);
}

/* A real guest: open a lab ELF core, translate, enumerate its kernel half. */
static void bench_guest(const char *path) {
    vmi_file_desc fd;
    vmi_desc desc;
    vmi_instance *vmi;
    walk_tally w;
    char err[256];
    double t_open, t_enum, t0;
    int run;
    memset(&fd, 0, sizeof fd);
    memset(&desc, 0, sizeof desc);
    fd.path = path;
    t0 = now_ns();
    if (vmi_file_open(&fd, &desc.backend, err, sizeof err) != VMI_OK || vmi_open(&desc, &vmi) != VMI_OK) {
        printf("real guest: cannot open %s (%s)\n", path, err);
        return;
    }
    t_open = now_ns() - t0;
    t_enum = 1e30;
    for (run = 0; run < 5; run++) {
        double t;
        memset(&w, 0, sizeof w);
        t0 = now_ns();
        vmi_foreach_page(vmi, vmi_kernel_dtb(vmi), 0xffff800000000000ull, ~0ull, 0, tally, &w);
        t = now_ns() - t0;
        if (t < t_enum) t_enum = t;
    }
    printf("real guest %s (%s, %s):\n", path, vmi_get_backend(vmi)->format, vmi_paging_mode_name(vmi_get_paging(vmi)->mode));
    printf("  open (mmap, parse notes)          %9.1f us\n", t_open / 1e3);
    printf("  enumerate the kernel half         %9.1f us  (%llu mappings, %llu MiB mapped)\n", t_enum / 1e3,
           (unsigned long long)w.pages, (unsigned long long)(w.bytes >> 20));
    vmi_close(vmi);
    bench_os(path);
}

/* ---- a running guest (make bench boots one: bench/live.py) ---------------- */
typedef struct step_count {
    unsigned n, want;
} step_count;

static int count_step(vmi_instance *vmi, vmi_event *ev, const vmi_event_hit *hit, void *user) {
    step_count *s = (step_count *)user;
    (void)vmi, (void)ev, (void)hit;
    return ++s->n >= s->want ? VMI_EVENT_REMOVE : VMI_EVENT_KEEP;
}

/* Single-steps keep an event always pending, so their rate is the cost of
   handling one: stop reply, registers, callback, continue. */
static void bench_events(vmi_instance *vmi) {
    vmi_event ev;
    step_count s;
    double t0, t;
    memset(&ev, 0, sizeof ev);
    s.n = 0, s.want = 200;
    ev.type = VMI_EVENT_SINGLESTEP;
    ev.fn = count_step;
    ev.user = &s;
    if (vmi_event_register(vmi, &ev) != VMI_OK) {
        printf("  events: %s\n", vmi_last_error(vmi));
        return;
    }
    t0 = now_ns();
    while (s.n < s.want && vmi_events_listen(vmi, 2000) == VMI_OK) {}
    t = now_ns() - t0;
    if (ev.armed__) vmi_event_clear(vmi, &ev);
    printf("  single-step events handled        %9.0f /s  (%u in %.0f ms, TCG)\n", s.n / (t / 1e9), s.n, t / 1e6);
}

static void bench_live(const char *qmp) {
    vmi_kvm_desc kd;
    vmi_desc desc;
    vmi_instance *vmi;
    char err[256];
    double t0, t, m = 1e30, best = 1e30;
    size_t size, off;
    uint8_t *buf, *a;
    int i;
    memset(&kd, 0, sizeof kd);
    memset(&desc, 0, sizeof desc);
    kd.qmp = qmp;
    t0 = now_ns();
    if (vmi_kvm_open(&kd, &desc.backend, err, sizeof err) != VMI_OK || vmi_open(&desc, &vmi) != VMI_OK) {
        printf("live guest: %s\n", err);
        return;
    }
    t = now_ns() - t0;
    printf("live guest (qemu:%s, %s):\n  attach                            %9.1f ms\n", qmp,
           vmi_get_backend(vmi)->format, t / 1e6);
    size = (size_t)vmi_memory_size(vmi);
    buf = (uint8_t *)malloc(size);
    a = (uint8_t *)malloc(size);
    if (buf && a) {
        memset(a, 3, size);
        for (i = 0; i < 3; i++) {
            t0 = now_ns();
            for (off = 0; off < vmi_memory_map(vmi, NULL)[0].size && off < size; off += 1u << 20)
                vmi_read_pa(vmi, vmi_memory_map(vmi, NULL)[0].pa + off, buf + off, 1u << 20, NULL);
            t = now_ns() - t0;
            if (t < best) best = t;
            t0 = now_ns();
            memcpy(buf, a, size);
            t = now_ns() - t0;
            if (t < m) m = t;
        }
        printf("  read all RAM (vmi_read_pa, 1 MiB) %9.2f GB/s  memcpy %6.2f GB/s  (%zu MiB)\n", size / best, size / m,
               size >> 20);
    }
    free(buf);
    free(a);
    best = 1e30;
    for (i = 0; i < 10; i++) {
        t0 = now_ns();
        vmi_pause(vmi);
        vmi_resume(vmi);
        t = now_ns() - t0;
        if (t < best) best = t;
    }
    printf("  pause + resume                    %9.2f ms\n", best / 1e6);
    bench_events(vmi);
    vmi_close(vmi);
}

int main(int argc, char **argv) {
    static uint8_t dst[MAP_LEN];
    const mode_geom *g = &geoms[2];
    uint64_t root, v;
    vmi_instance *vmi;
    double t, m;
    char str[256];
    size_t sizes[3] = {8, 4096, MAP_LEN}, s;
    mem = (uint8_t *)calloc(1, MEM_SIZE);
    if (!mem) return 1;
    memset(mem + MAP_PA, 'A', MAP_LEN);
    mem[MAP_PA + 0x2000 + 63] = 0; /* a 63-character string */
    printf("vmi.h %s bench (buffer backend = zero-copy mmap path; peer: none installed)\n", VMI_VERSION_STRING);
    printf("translation, kernel address, per paging mode:\n");
    for (s = 0; s < sizeof geoms / sizeof geoms[0]; s++) bench_mode(&geoms[s]);

    printf("reads (ia32e, 4 KiB pages, warm V2P cache), beside memcpy of the same size:\n");
    vmi = open_mode(g, &root);
    for (s = 0; s < 3; s++) {
        size_t n = sizes[s];
        uint64_t iters = n >= MAP_LEN ? 2000 : n >= 4096 ? 200000 : 5000000;
        char what[64];
        TIME_BEST(t, iters, { vmi_read_va(vmi, root, g->kva, dst, n, NULL); sink += dst[n - 1]; });
        TIME_BEST(m, iters, { memcpy(dst, mem + MAP_PA + (sink & 1), n); sink += dst[n - 1]; });
        snprintf(what, sizeof what, "vmi_read_va %zu B", n);
        row(what, t, m, n);
    }
    TIME_BEST(t, 5000000, { vmi_read_u64(vmi, root, g->kva + 64, &v); sink += v; });
    row("vmi_read_u64", t, 0, 8);
    TIME_BEST(t, 200000, { vmi_read_pa(vmi, MAP_PA, dst, 4096, NULL); sink += dst[7]; });
    TIME_BEST(m, 200000, { memcpy(dst, mem + MAP_PA + (sink & 1), 4096); sink += dst[7]; });
    row("vmi_read_pa 4096 B", t, m, 4096);
    TIME_BEST(t, 2000000, { vmi_read_str(vmi, root, g->kva + 0x2000, str, sizeof str, NULL); sink += (uint8_t)str[5]; });
    TIME_BEST(m, 2000000, { memcpy(str, mem + MAP_PA + 0x2000 + (sink & 1), 64); sink += (uint8_t)str[5]; });
    row("vmi_read_str 64 B", t, m, 64);
    vmi_close(vmi);
    free(mem);
    if (argc > 2 && !strcmp(argv[1], "--qmp")) bench_live(argv[2]);
    else if (argc > 1) bench_guest(argv[1]);
    return sink == 42 ? 1 : 0;
}
