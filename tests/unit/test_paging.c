/* Paging unit tests: hand-built page tables in host buffers, every mode.

   References for the expected values:
   x86: Intel SDM vol. 3A chapter 4 (4.3 32-bit paging, PSE-36 in table 4-4;
        4.4 PAE paging and its PDPTE registers, table 4-8; 4.5 4-level and
        5-level paging, tables 4-14..4-20; 4.6 access rights: R/W and U/S
        are ANDed over all levels, XD is ORed when IA32_EFER.NXE = 1).
   ARM: ARM ARM DDI 0487 D5.2/D5.3 (VMSAv8-64: granules, start level from
        TxSZ, table/block/page descriptors, blocks only at levels 1-2 for
        4K, level 2 for 16K and 64K; level-3 0b01 is "reserved invalid";
        hierarchical APTable/UXNTable/PXNTable), and DDI 0406C B3.5
        (short descriptors: TTBCR.N, sections, supersections with PA[39:32]
        in bits [8:5,23:20], coarse tables, 64 KiB large and 4 KiB small
        pages) and B3.6 (long descriptors: T0SZ/T1SZ, start at level 1 when
        TxSZ <= 1 and at level 2 otherwise, 40-bit output addresses). */
#define VMI_IMPLEMENTATION
#include "vmi.h"
#include "test.h"

#include <stdlib.h>
#include <time.h>

#define KIB 1024ULL
#define MIB (1024ULL * KIB)
#define GIB (1024ULL * MIB)

/* ---- a guest made of host buffers ------------------------------------- */

typedef struct guest {
    vmi_mem_range r[4];
    size_t n;
    uint64_t next, end; /* bump allocator inside r[0] */
} guest;

static void g_init(guest *g)
{
    memset(g, 0, sizeof *g);
}

static void g_add(guest *g, uint64_t pa, uint64_t size)
{
    void *p = calloc(1, (size_t)size);
    if (!p || g->n == 4)
        abort();
    g->r[g->n].pa = pa;
    g->r[g->n].size = size;
    g->r[g->n].host = p;
    g->r[g->n].flags = VMI_RANGE_WRITABLE;
    if (g->n == 0) {
        g->next = pa;
        g->end = pa + size;
    }
    g->n++;
}

static void g_free(guest *g)
{
    size_t i;
    for (i = 0; i < g->n; i++)
        free(g->r[i].host);
    g->n = 0;
}

static uint8_t *g_host(guest *g, uint64_t pa, uint64_t len)
{
    size_t i;
    for (i = 0; i < g->n; i++)
        if (pa >= g->r[i].pa && pa + len <= g->r[i].pa + g->r[i].size)
            return (uint8_t *)g->r[i].host + (pa - g->r[i].pa);
    fprintf(stderr, "test bug: pa 0x%" PRIx64 " is not in the test guest\n", pa);
    abort();
}

/* Zeroed, naturally aligned block of `size` bytes. */
static uint64_t g_alloc(guest *g, uint64_t size)
{
    uint64_t a = (g->next + size - 1) & ~(size - 1);
    if (a + size > g->end)
        abort();
    g->next = a + size;
    memset(g_host(g, a, size), 0, (size_t)size);
    return a;
}

static void w32(guest *g, uint64_t pa, uint32_t v)
{
    uint8_t *p = g_host(g, pa, 4);
    int i;
    for (i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void w64(guest *g, uint64_t pa, uint64_t v)
{
    uint8_t *p = g_host(g, pa, 8);
    int i;
    for (i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static vmi_instance *g_open(guest *g, vmi_paging_mode mode, uint64_t dtb, uint64_t tcr,
                            uint32_t flags)
{
    vmi_desc desc;
    vmi_instance *vmi = NULL;
    vmi_status st;
    memset(&desc, 0, sizeof desc);
    vmi_backend_buffer(&desc.backend, g->r, g->n);
    desc.paging.mode = mode;
    desc.paging.dtb = dtb;
    desc.paging.tcr = tcr;
    desc.paging.flags = flags;
    st = vmi_open(&desc, &vmi);
    CHECK_ST(st, VMI_OK);
    if (st != VMI_OK || !vmi) {
        fprintf(stderr, "cannot open the test guest: giving up\n");
        test_summary();
        exit(1);
    }
    return vmi;
}

static void set_paging(vmi_instance *vmi, vmi_paging_mode mode, uint64_t dtb, uint64_t tcr,
                       uint32_t flags)
{
    vmi_paging p;
    memset(&p, 0, sizeof p);
    p.mode = mode;
    p.dtb = dtb;
    p.tcr = tcr;
    p.flags = flags;
    CHECK_ST(vmi_set_paging(vmi, &p), VMI_OK);
    vmi_flush_caches(vmi);
}

/* ---- translation checks -------------------------------------------------- */

#define ST(s) (1u << (s))
#define ANY_ERR (~1u)

/* Uncached, then cached, then after vmi_flush_caches: the same answer. */
#define XL(vmi, dtb, va, pa) xl_(__FILE__, __LINE__, vmi, dtb, va, pa)
static void xl_(const char *f, int l, vmi_instance *vmi, uint64_t dtb, uint64_t va,
                uint64_t want)
{
    int pass;
    for (pass = 0; pass < 3; pass++) {
        uint64_t got = 0xbad0bad0bad0bad0ULL;
        vmi_status st;
        if (pass == 2)
            vmi_flush_caches(vmi);
        st = vmi_translate(vmi, dtb, va, &got);
        if (!CHECK_AT(f, l, st == VMI_OK,
                      "translate(dtb 0x%" PRIx64 ", va 0x%" PRIx64 ") pass %d: expected ok, got %s",
                      dtb, va, pass, vmi_status_string(st)))
            return;
        if (!CHECK_AT(f, l, got == want,
                      "translate(dtb 0x%" PRIx64 ", va 0x%" PRIx64 ") pass %d: expected pa 0x%" PRIx64
                      ", got 0x%" PRIx64,
                      dtb, va, pass, want, got))
            return;
    }
}

/* Fails with one of the statuses in `accept` (a mask of ST()), twice. */
#define XL_ERR(vmi, dtb, va, accept) xl_err_(__FILE__, __LINE__, vmi, dtb, va, accept)
static void xl_err_(const char *f, int l, vmi_instance *vmi, uint64_t dtb, uint64_t va,
                    uint32_t accept)
{
    int pass;
    for (pass = 0; pass < 2; pass++) {
        uint64_t got = 0;
        vmi_status st = vmi_translate(vmi, dtb, va, &got);
        if (!CHECK_AT(f, l, st != VMI_OK && st < 32 && (accept & ST(st)),
                      "translate(dtb 0x%" PRIx64 ", va 0x%" PRIx64
                      ") pass %d: expected failure (mask 0x%x), got %s (pa 0x%" PRIx64 ")",
                      dtb, va, pass, accept, vmi_status_string(st), got))
            return;
    }
}

#define FLAGS_ALL                                                                        \
    (VMI_PAGE_WRITE | VMI_PAGE_USER | VMI_PAGE_NX | VMI_PAGE_PXN | VMI_PAGE_GLOBAL |      \
     VMI_PAGE_CONTIG)

/* One walk: pa, page size and flags (compared under `mask`). */
#define WK(vmi, dtb, va, pa, size, flags)                                                \
    wk_(__FILE__, __LINE__, vmi, dtb, va, pa, size, flags, FLAGS_ALL, NULL)
#define WKM(vmi, dtb, va, pa, size, flags, mask)                                         \
    wk_(__FILE__, __LINE__, vmi, dtb, va, pa, size, flags, mask, NULL)
static int wk_(const char *f, int l, vmi_instance *vmi, uint64_t dtb, uint64_t va, uint64_t pa,
               uint64_t size, uint32_t flags, uint32_t mask, vmi_walk *out)
{
    vmi_walk w;
    vmi_status st;
    memset(&w, 0xa5, sizeof w);
    st = vmi_translate_walk(vmi, dtb, va, &w);
    if (out)
        *out = w;
    if (!CHECK_AT(f, l, st == VMI_OK, "walk(va 0x%" PRIx64 "): expected ok, got %s", va,
                  vmi_status_string(st)))
        return 0;
    CHECK_AT(f, l, w.va == va, "walk(va 0x%" PRIx64 "): walk.va 0x%" PRIx64, va, w.va);
    CHECK_AT(f, l, w.pa == pa, "walk(va 0x%" PRIx64 "): expected pa 0x%" PRIx64 ", got 0x%" PRIx64,
             va, pa, w.pa);
    CHECK_AT(f, l, w.page_size == size,
             "walk(va 0x%" PRIx64 "): expected page_size 0x%" PRIx64 ", got 0x%" PRIx64, va, size,
             w.page_size);
    CHECK_AT(f, l, (w.flags & mask) == (flags & mask),
             "walk(va 0x%" PRIx64 "): expected flags 0x%x, got 0x%x (compared under 0x%x)", va,
             flags & mask, w.flags & mask, mask);
    return 1;
}

/* Level i of a walk: table, index, entry address (entry size esz), value. */
#define LV(w, i, table, idx, esz, entry) lv_(__FILE__, __LINE__, w, i, table, idx, esz, entry)
static void lv_(const char *f, int l, const vmi_walk *w, unsigned i, uint64_t table,
                uint32_t idx, unsigned esz, uint64_t entry)
{
    const vmi_walk_level *lv;
    if (!CHECK_AT(f, l, i < VMI_WALK_MAX_LEVELS && i < w->nlevels,
                  "walk of va 0x%" PRIx64 " has %u levels, level %u asked", w->va, w->nlevels, i))
        return;
    lv = &w->levels[i];
    CHECK_AT(f, l, lv->table_pa == table,
             "va 0x%" PRIx64 " level %u: expected table_pa 0x%" PRIx64 ", got 0x%" PRIx64, w->va,
             i, table, lv->table_pa);
    CHECK_AT(f, l, lv->index == idx, "va 0x%" PRIx64 " level %u: expected index 0x%x, got 0x%x",
             w->va, i, idx, lv->index);
    CHECK_AT(f, l, lv->entry_pa == table + (uint64_t)idx * esz,
             "va 0x%" PRIx64 " level %u: expected entry_pa 0x%" PRIx64 ", got 0x%" PRIx64, w->va,
             i, table + (uint64_t)idx * esz, lv->entry_pa);
    CHECK_AT(f, l, lv->entry == entry,
             "va 0x%" PRIx64 " level %u: expected entry 0x%" PRIx64 ", got 0x%" PRIx64, w->va, i,
             entry, lv->entry);
}

/* ---- page enumeration checks -------------------------------------------- */

#define MAX_PAGES 1024
typedef struct pagelist {
    vmi_page p[MAX_PAGES];
    size_t n;
    unsigned long calls;
    unsigned long stop_after; /* 0: never stop */
} pagelist;

static int collect(void *user, const vmi_page *page)
{
    pagelist *pl = (pagelist *)user;
    pl->calls++;
    if (pl->n < MAX_PAGES)
        pl->p[pl->n++] = *page;
    return pl->stop_after && pl->calls >= pl->stop_after;
}

static pagelist g_pl; /* big: kept off the stack */

/* Pages reported with CONTIG and a size above `split` count as pages of
   `split` bytes (the contiguous bit is a TLB hint over granule pages). */
static void normalize(pagelist *pl, uint64_t split)
{
    static vmi_page tmp[MAX_PAGES];
    size_t i, n = 0;
    for (i = 0; i < pl->n; i++) {
        vmi_page p = pl->p[i];
        if (split && (p.flags & VMI_PAGE_CONTIG) && p.size > split) {
            uint64_t off;
            for (off = 0; off < p.size && n < MAX_PAGES; off += split) {
                tmp[n] = p;
                tmp[n].va = p.va + off;
                tmp[n].pa = p.pa + off;
                tmp[n].size = split;
                n++;
            }
        } else if (n < MAX_PAGES) {
            tmp[n++] = p;
        }
    }
    memcpy(pl->p, tmp, n * sizeof tmp[0]);
    pl->n = n;
}

#define PAGES(vmi, dtb, lo, hi, want, mask, split)                                       \
    pages_(__FILE__, __LINE__, vmi, dtb, lo, hi, want, sizeof(want) / sizeof((want)[0]), mask, split)
static void pages_(const char *f, int l, vmi_instance *vmi, uint64_t dtb, uint64_t lo,
                   uint64_t hi, const vmi_page *want, size_t nwant, uint32_t mask, uint64_t split)
{
    vmi_status st;
    size_t i;
    memset(&g_pl, 0, sizeof g_pl);
    st = vmi_foreach_page(vmi, dtb, lo, hi, 0, collect, &g_pl);
    CHECK_AT(f, l, st == VMI_OK,
             "foreach_page(0x%" PRIx64 "..0x%" PRIx64 "): expected ok, got %s", lo, hi,
             vmi_status_string(st));
    normalize(&g_pl, split);
    for (i = 1; i < g_pl.n; i++)
        CHECK_AT(f, l, g_pl.p[i].va > g_pl.p[i - 1].va,
                 "foreach_page: not in VA order: 0x%" PRIx64 " after 0x%" PRIx64, g_pl.p[i].va,
                 g_pl.p[i - 1].va);
    CHECK_AT(f, l, g_pl.n == nwant, "foreach_page(0x%" PRIx64 "..0x%" PRIx64
             "): expected %lu pages, got %lu", lo, hi, (unsigned long)nwant, (unsigned long)g_pl.n);
    for (i = 0; i < nwant || i < g_pl.n; i++) {
        const vmi_page *w = i < nwant ? &want[i] : NULL;
        const vmi_page *g = i < g_pl.n ? &g_pl.p[i] : NULL;
        int ok = w && g && w->va == g->va && w->pa == g->pa && w->size == g->size &&
                 (w->flags & mask) == (g->flags & mask);
        CHECK_AT(f, l, ok,
                 "page %lu: expected va 0x%" PRIx64 " pa 0x%" PRIx64 " size 0x%" PRIx64
                 " flags 0x%x, got va 0x%" PRIx64 " pa 0x%" PRIx64 " size 0x%" PRIx64 " flags 0x%x",
                 (unsigned long)i, w ? w->va : 0, w ? w->pa : 0, w ? w->size : 0,
                 w ? w->flags & mask : 0, g ? g->va : 0, g ? g->pa : 0, g ? g->size : 0,
                 g ? g->flags & mask : 0);
    }
}

/* ---- x86 ------------------------------------------------------------------ */

#define X_P 0x1ULL
#define X_RW 0x2ULL
#define X_US 0x4ULL
#define X_PS 0x80ULL
#define X_G 0x100ULL
#define X_PATL 0x1000ULL /* PAT bit of a large-page entry */
#define X_NX (1ULL << 63)

#define F_W VMI_PAGE_WRITE
#define F_U VMI_PAGE_USER
#define F_NX VMI_PAGE_NX
#define F_PXN VMI_PAGE_PXN
#define F_G VMI_PAGE_GLOBAL
#define F_C VMI_PAGE_CONTIG

static uint64_t va4(unsigned i4, unsigned i3, unsigned i2, unsigned i1, uint64_t off)
{
    uint64_t va = ((uint64_t)i4 << 39) | ((uint64_t)i3 << 30) | ((uint64_t)i2 << 21) |
                  ((uint64_t)i1 << 12) | off;
    return (va & (1ULL << 47)) ? va | 0xffff000000000000ULL : va;
}

static uint64_t va5(unsigned i5, unsigned i4, unsigned i3, unsigned i2, unsigned i1,
                    uint64_t off)
{
    uint64_t va = ((uint64_t)i5 << 48) | ((uint64_t)i4 << 39) | ((uint64_t)i3 << 30) |
                  ((uint64_t)i2 << 21) | ((uint64_t)i1 << 12) | off;
    return (va & (1ULL << 56)) ? va | 0xfe00000000000000ULL : va;
}

static void test_legacy(void)
{
    guest g;
    vmi_instance *vmi;
    vmi_walk w;
    const uint64_t PD = 0x1000, PT = 0x2000, PT2 = 0x3000;
    const uint64_t dtb = 0x1018; /* PWT and PCD set: ignored */
    const vmi_page want[] = {
        {0x00400000, 0x105000, 4 * KIB, F_W | F_U},
        {0x00405000, 0x106000, 4 * KIB, 0},
        {0x007ff000, 0x7ff000, 4 * KIB, F_W | F_G},
        {0x80000000, 0x400000, 4 * MIB, F_W},
        {0x80400000, 0x12c0000000ULL, 4 * MIB, F_W | F_U},
        {0x80c00000, 0x100000000ULL, 4 * MIB, F_W},
    };
    const vmi_page want_self[] = {
        {0xffc01000, 0x2000, 4 * KIB, F_W},
        {0xffe00000, 0x400000, 4 * KIB, F_W},
        {0xffe01000, 0xc0025000, 4 * KIB, F_W},
        {0xffe03000, 0x3000, 4 * KIB, F_W},
        {0xfff00000, 0x10000000, 4 * KIB, F_W},
        {0xfffff000, 0x1000, 4 * KIB, F_W},
    };
    vmi_status st;

    test_context("legacy");
    g_init(&g);
    g_add(&g, 0, 8 * MIB);
    w32(&g, PD + 1 * 4, 0x2007);
    w32(&g, PT + 0 * 4, 0x00105007);
    w32(&g, PT + 2 * 4, 0x00107006); /* not present, other bits set */
    w32(&g, PT + 5 * 4, 0x00106001); /* present, read-only, supervisor */
    w32(&g, PT + 1023 * 4, 0x007ff103);
    w32(&g, PD + 0x200 * 4, 0x00400083);                          /* 4 MiB page */
    w32(&g, PD + 0x201 * 4, 0xc0000000u | (0x12u << 13) | 0x1087); /* PSE-36, PA[39:32]=0x12, PAT */
    w32(&g, PD + 0x203 * 4, 0x00003083); /* PS: 4 MiB at PA 1_0000_0000; no PSE: table 0x3000 */
    w32(&g, PT2 + 0x10 * 4, 0x00200003);
    w32(&g, PD + 0x300 * 4, 0x10000007); /* page table at 256 MiB: outside the guest */
    w32(&g, PD + 0x3ff * 4, 0x00001003); /* self-map */
    vmi = g_open(&g, VMI_PAGING_LEGACY, dtb, 0, 0);

    CHECK_EQ(vmi_addr_width(vmi), 4);
    XL(vmi, dtb, 0x00400000, 0x105000);
    XL(vmi, dtb, 0x00400abc, 0x105abc);
    XL(vmi, dtb, 0x00405fff, 0x106fff);
    XL(vmi, dtb, 0x007ff123, 0x7ff123);
    XL(vmi, dtb, 0x80123456, 0x523456);
    XL(vmi, dtb, 0x803ffffc, 0x7ffffc);
    XL(vmi, dtb, 0x80400000 + 0x3ffffc, 0x12c03ffffcULL);
    XL(vmi, dtb, 0x80c10123, 0x100010123ULL);
    XL(vmi, 0x1000, 0x00400000, 0x105000);
    XL_ERR(vmi, dtb, 0x00402000, ST(VMI_ERR_NOT_PRESENT));
    XL_ERR(vmi, dtb, 0x00000000, ST(VMI_ERR_NOT_PRESENT));
    XL_ERR(vmi, dtb, 0x80800000, ST(VMI_ERR_NOT_PRESENT));
    XL_ERR(vmi, dtb, 0xc0000000, ST(VMI_ERR_UNMAPPED) | ST(VMI_ERR_PAGE_TABLE));
    /* self-map: PD[0x3ff] -> PD, so 0xffc00000 + i*4K maps what PD[i] points at */
    XL(vmi, dtb, 0xffc01010, 0x2010);
    XL(vmi, dtb, 0xfffffffc, 0x1ffc);
    XL(vmi, dtb, 0xffe00000, 0x400000); /* PD[0x200] read as a PTE: bit 7 is PAT there */

    WK(vmi, dtb, 0x00400000, 0x105000, 4 * KIB, F_W | F_U);
    WK(vmi, dtb, 0x00405000, 0x106000, 4 * KIB, 0);
    WK(vmi, dtb, 0x007ff000, 0x7ff000, 4 * KIB, F_W | F_G);
    WK(vmi, dtb, 0x80000000, 0x400000, 4 * MIB, F_W);
    WK(vmi, dtb, 0x80400000, 0x12c0000000ULL, 4 * MIB, F_W | F_U);
    if (wk_(__FILE__, __LINE__, vmi, dtb, 0x00405abc, 0x106abc, 4 * KIB, 0, FLAGS_ALL, &w)) {
        CHECK_EQ(w.nlevels, 2);
        LV(&w, 0, PD, 1, 4, 0x2007);
        LV(&w, 1, PT, 5, 4, 0x00106001);
    }

    PAGES(vmi, dtb, 0, 0xbfffffffULL, want, FLAGS_ALL, 0);
    PAGES(vmi, dtb, 0xffc00000ULL, 0xffffffffULL, want_self, FLAGS_ALL, 0);
    pages_(__FILE__, __LINE__, vmi, dtb, 0x80400000ULL, 0x807fffffULL, &want[4], 1, FLAGS_ALL, 0);
    memset(&g_pl, 0, sizeof g_pl);
    st = vmi_foreach_page(vmi, dtb, 0, 0xffffffffULL, 0, collect, &g_pl);
    CHECK(st == VMI_OK || st == VMI_ERR_UNMAPPED || st == VMI_ERR_PAGE_TABLE,
          "foreach over everything, with a table outside memory: got %s", vmi_status_string(st));
    memset(&g_pl, 0, sizeof g_pl);
    st = vmi_foreach_page(vmi, dtb, 0, 0xffffffffULL, 1, collect, &g_pl);
    CHECK_ST(st, VMI_ERR_LIMIT);
    memset(&g_pl, 0, sizeof g_pl);
    g_pl.stop_after = 2;
    vmi_foreach_page(vmi, dtb, 0, 0xbfffffffULL, 0, collect, &g_pl);
    CHECK_EQ(g_pl.calls, 2);

    test_context("legacy, VMI_PAGING_NO_PSE");
    set_paging(vmi, VMI_PAGING_LEGACY, dtb, 0, VMI_PAGING_NO_PSE);
    XL(vmi, dtb, 0x80c10123, 0x200123);                       /* PS ignored: table at 0x3000 */
    XL_ERR(vmi, dtb, 0x80123456, ST(VMI_ERR_NOT_PRESENT));    /* "table" at 4 MiB is zeros */
    XL_ERR(vmi, dtb, 0x80400000, ST(VMI_ERR_UNMAPPED) | ST(VMI_ERR_PAGE_TABLE));
    XL(vmi, dtb, 0x00400abc, 0x105abc);
    WK(vmi, dtb, 0x80c10000, 0x200000, 4 * KIB, F_W);
    vmi_close(vmi);
    g_free(&g);
}

static void test_pae(void)
{
    guest g;
    vmi_instance *vmi;
    vmi_walk w;
    const uint64_t PDPT = 0x1020, PD0 = 0x2000, PD2 = 0x3000, PD3 = 0x4000, PT = 0x5000;
    const vmi_page want[] = {
        {0x00200000, 0x105000, 4 * KIB, F_W | F_U},
        {0x00203000, 0x106000, 4 * KIB, F_W | F_NX},
        {0x00204000, 0xf00107000ULL, 4 * KIB, F_U},
        {0x00600000, 0x105000, 4 * KIB, F_W | F_U | F_NX},
        {0x00603000, 0x106000, 4 * KIB, F_W | F_NX},
        {0x00604000, 0xf00107000ULL, 4 * KIB, F_U | F_NX},
        {0x80000000, 0x100600000ULL, 2 * MIB, F_W},
        {0x80200000, 0x400000, 2 * MIB, F_W | F_NX},
        {0xc0000000, 0x800000, 2 * MIB, F_W | F_G},
    };
    int i;
    uint64_t pa;
    vmi_status st;

    test_context("pae");
    g_init(&g);
    g_add(&g, 0, 8 * MIB);
    for (i = 0; i < 4; i++)
        w64(&g, 0x1000 + 8 * (uint64_t)i, 0x9001); /* decoy PDPT at the page start */
    w64(&g, PDPT + 0, PD0 | X_P);               /* PDPTEs have no R/W, U/S */
    w64(&g, PDPT + 8, 0);
    w64(&g, PDPT + 16, PD2 | X_P);
    w64(&g, PDPT + 24, PD3 | X_P);
    w64(&g, PD0 + 1 * 8, PT | 7);
    w64(&g, PD0 + 3 * 8, X_NX | PT | 7);
    w64(&g, PT + 0 * 8, 0x105007);
    w64(&g, PT + 1 * 8, 0x105006);
    w64(&g, PT + 3 * 8, X_NX | 0x106003);
    w64(&g, PT + 4 * 8, 0xf00107005ULL);
    w64(&g, PD2 + 0 * 8, 0x100600000ULL | X_PATL | X_PS | X_RW | X_P);
    w64(&g, PD2 + 1 * 8, X_NX | 0x400000 | X_PS | X_RW | X_P);
    w64(&g, PD3 + 0 * 8, 0x800000 | X_G | X_PS | X_RW | X_P);
    w64(&g, PD3 + 5 * 8, 0xf000000000ULL | 7); /* table outside the guest */
    w64(&g, PD3 + 0x1fe * 8, PD3 | 3);         /* self-map */
    vmi = g_open(&g, VMI_PAGING_PAE, PDPT, 0, VMI_PAGING_NXE);

    CHECK_EQ(vmi_addr_width(vmi), 4);
    XL(vmi, PDPT, 0x00200000, 0x105000);
    XL(vmi, PDPT, 0x00203abc, 0x106abc);
    XL(vmi, PDPT, 0x00204010, 0xf00107010ULL);
    XL(vmi, PDPT, 0x00600000, 0x105000);
    XL(vmi, PDPT, 0x80000000, 0x100600000ULL);
    XL(vmi, PDPT, 0x801fffff, 0x1007fffffULL);
    XL(vmi, PDPT, 0x80200000, 0x400000);
    XL(vmi, PDPT, 0xc0000123, 0x800123);
    XL(vmi, PDPT, 0xffc00010, 0x800010);             /* self-map: PD3[0] as a PTE */
    XL(vmi, PDPT, 0xffc00000 + (0x1feu << 12) + 8, PD3 + 8); /* PD3 itself */
    XL_ERR(vmi, PDPT, 0x40000000, ST(VMI_ERR_NOT_PRESENT)); /* PDPTE 1 */
    XL_ERR(vmi, PDPT, 0x7fffffff, ST(VMI_ERR_NOT_PRESENT));
    XL_ERR(vmi, PDPT, 0x00400000, ST(VMI_ERR_NOT_PRESENT)); /* PDE */
    XL_ERR(vmi, PDPT, 0x00201000, ST(VMI_ERR_NOT_PRESENT)); /* PTE */
    XL_ERR(vmi, PDPT, 0xffe00000, ST(VMI_ERR_NOT_PRESENT));
    XL_ERR(vmi, PDPT, 0xc0a00000, ST(VMI_ERR_UNMAPPED) | ST(VMI_ERR_PAGE_TABLE));

    WK(vmi, PDPT, 0x00200000, 0x105000, 4 * KIB, F_W | F_U);
    WK(vmi, PDPT, 0x00203000, 0x106000, 4 * KIB, F_W | F_NX);
    WK(vmi, PDPT, 0x00204000, 0xf00107000ULL, 4 * KIB, F_U);
    WK(vmi, PDPT, 0x00600000, 0x105000, 4 * KIB, F_W | F_U | F_NX);
    WK(vmi, PDPT, 0x80000000, 0x100600000ULL, 2 * MIB, F_W);
    WK(vmi, PDPT, 0x80200000, 0x400000, 2 * MIB, F_W | F_NX);
    WK(vmi, PDPT, 0xc0000000, 0x800000, 2 * MIB, F_W | F_G);
    if (wk_(__FILE__, __LINE__, vmi, PDPT, 0x00204abc, 0xf00107abcULL, 4 * KIB, F_U, FLAGS_ALL,
            &w)) {
        CHECK_EQ(w.nlevels, 3);
        LV(&w, 0, PDPT, 0, 8, PD0 | X_P);
        LV(&w, 1, PD0, 1, 8, PT | 7);
        LV(&w, 2, PT, 4, 8, 0xf00107005ULL);
    }
    if (wk_(__FILE__, __LINE__, vmi, PDPT, 0xc0000000, 0x800000, 2 * MIB, F_W | F_G, FLAGS_ALL,
            &w)) {
        CHECK_EQ(w.nlevels, 2);
        LV(&w, 0, PDPT, 3, 8, PD3 | X_P);
        LV(&w, 1, PD3, 0, 8, 0x800000 | X_G | X_PS | X_RW | X_P);
    }
    PAGES(vmi, PDPT, 0, 0xc09fffffULL, want, FLAGS_ALL, 0);

    test_context("pae without NXE");
    set_paging(vmi, VMI_PAGING_PAE, PDPT, 0, 0);
    /* Bit 63 is reserved without NXE (SDM 4.4.2): a fault, or ignored. */
    pa = 0;
    st = vmi_translate(vmi, PDPT, 0x00203000, &pa);
    CHECK((st == VMI_OK && pa == 0x106000) || st == VMI_ERR_PAGE_TABLE,
          "XD set without NXE: got %s pa 0x%" PRIx64, vmi_status_string(st), pa);
    if (st == VMI_OK)
        WKM(vmi, PDPT, 0x00203000, 0x106000, 4 * KIB, F_W, F_W | F_NX);
    XL(vmi, PDPT, 0x00200000, 0x105000);
    vmi_close(vmi);
    g_free(&g);
}

static void test_ia32e(void)
{
    guest g;
    vmi_instance *vmi;
    vmi_walk w;
    vmi_regs regs;
    vmi_paging p;
    vmi_cache_stats cs0, cs1;
    uint64_t pa;
    vmi_status st;
    const uint64_t PML4 = 0x1000, PDPTU = 0x2000, PDU = 0x3000, PTU = 0x4000, PDPTK = 0x5000,
                   PDK = 0x6000, PTK = 0x7000, PDPTK2 = 0x8000, PDPTNX = 0x9000;
    const uint64_t dtb = PML4 | 0xabc; /* PCID 0xabc */
    vmi_page want[8];
    const vmi_page want_u[] = {
        {0, 0x345000, 4 * KIB, F_W | F_U | F_NX},
        {0, 0x346000, 4 * KIB, F_U},
        {0, 0x348000, 4 * KIB, F_W | F_U},
        {0, 0x600000, 2 * MIB, F_W | F_U},
        {0, 0x140000000ULL, 1 * GIB, F_W},
        {0xffff800000000000ULL, 0x100000, 4 * KIB, F_W | F_G},
        {0xffff808000000000ULL, 0x40000000, 1 * GIB, F_W | F_NX},
        {0xffffffff80000000ULL, 0, 1 * GIB, F_W | F_G},
    };

    test_context("ia32e");
    memcpy(want, want_u, sizeof want);
    want[0].va = va4(0xff, 1, 2, 3, 0);
    want[1].va = va4(0xff, 1, 2, 4, 0);
    want[2].va = va4(0xff, 1, 2, 6, 0);
    want[3].va = va4(0xff, 1, 3, 0, 0);
    want[4].va = va4(0xff, 2, 0, 0, 0);

    g_init(&g);
    g_add(&g, 0, 8 * MIB);
    w64(&g, PML4 + 0xff * 8, PDPTU | 7);
    w64(&g, PDPTU + 1 * 8, PDU | 7);
    w64(&g, PDU + 2 * 8, PTU | 7);
    w64(&g, PTU + 3 * 8, X_NX | 0x345007);
    w64(&g, PTU + 4 * 8, 0x346005);
    w64(&g, PTU + 5 * 8, 0x347006);                      /* not present */
    w64(&g, PTU + 6 * 8, 0x7ff0000000348007ULL);         /* bits 62:52 ignored / PKEY */
    w64(&g, PDU + 3 * 8, 0x600000 | X_PATL | X_PS | 7);  /* 2 MiB, PAT set */
    w64(&g, PDPTU + 2 * 8, 0x140000000ULL | X_PATL | X_PS | X_RW | X_P); /* 1 GiB, not user */
    w64(&g, PML4 + 0x100 * 8, PDPTK | 3);
    w64(&g, PDPTK + 0, PDK | 3);
    w64(&g, PDK + 0, PTK | 3);
    w64(&g, PTK + 0, 0x100000 | X_G | 3);
    w64(&g, PML4 + 0x1ff * 8, PDPTK2 | 3);
    w64(&g, PDPTK2 + 0x1fe * 8, 0 | X_G | X_PS | 3);
    w64(&g, PML4 + 0x101 * 8, X_NX | PDPTNX | 3); /* NX from the PML4E */
    w64(&g, PDPTNX + 0, 0x40000000 | X_PS | 3);
    w64(&g, PML4 + 0x102 * 8, 0xff00000000ULL | 3); /* PDPT outside the guest */
    w64(&g, PML4 + 0x1ed * 8, PML4 | 3);            /* self-map */
    w64(&g, PML4 + 0x103 * 8, 0 | X_PS | 3);        /* PS is reserved in a PML4E */
    vmi = g_open(&g, VMI_PAGING_IA32E, dtb, 0, VMI_PAGING_NXE);

    CHECK_EQ(vmi_addr_width(vmi), 8);
    XL(vmi, dtb, va4(0xff, 1, 2, 3, 0x123), 0x345123);
    XL(vmi, PML4, va4(0xff, 1, 2, 3, 0x123), 0x345123);
    XL(vmi, dtb, va4(0xff, 1, 2, 4, 0xfff), 0x346fff);
    XL(vmi, dtb, va4(0xff, 1, 2, 6, 0x8), 0x348008);
    XL(vmi, dtb, va4(0xff, 1, 3, 0, 0x1fffff), 0x7fffff);
    XL(vmi, dtb, va4(0xff, 2, 0, 0, 0x3fffffff), 0x17fffffffULL);
    XL(vmi, dtb, 0xffff800000000abcULL, 0x100abc);
    XL(vmi, dtb, 0xffffffff81234567ULL, 0x1234567);
    XL(vmi, dtb, 0xffff808000000010ULL, 0x40000010);
    XL_ERR(vmi, dtb, va4(0xff, 1, 2, 5, 0), ST(VMI_ERR_NOT_PRESENT));
    XL_ERR(vmi, dtb, 0x00007ffffffff000ULL, ST(VMI_ERR_NOT_PRESENT));
    XL_ERR(vmi, dtb, 0, ST(VMI_ERR_NOT_PRESENT));
    /* non-canonical: bits 63:47 differ */
    XL_ERR(vmi, dtb, 0x0000800000000000ULL, ANY_ERR);
    XL_ERR(vmi, dtb, 0xffff7fffffffffffULL, ANY_ERR);
    XL_ERR(vmi, dtb, 0x8000000000000000ULL, ANY_ERR);
    XL_ERR(vmi, dtb, 0x00017f8000000000ULL, ANY_ERR); /* would alias PML4[0xff] */
    XL_ERR(vmi, dtb, 0xffff810000000000ULL, ST(VMI_ERR_UNMAPPED) | ST(VMI_ERR_PAGE_TABLE));
    XL_ERR(vmi, dtb, 0xffff818000000000ULL, ANY_ERR); /* SDM 4.5.4: PML4E bit 7 reserved */
    /* self-map through PML4[0x1ed] */
    XL(vmi, dtb, va4(0x1ed, 0x1ed, 0x1ed, 0x1ed, 0x800), PML4 + 0x800);
    XL(vmi, dtb, va4(0x1ed, 0x1ed, 0x1ed, 0x100, 0x18), PDPTK + 0x18);
    XL(vmi, dtb, va4(0x1ed, 0x1ed, 0x100, 0, 0x10), PDK + 0x10);

    WK(vmi, dtb, va4(0xff, 1, 2, 3, 0), 0x345000, 4 * KIB, F_W | F_U | F_NX);
    WK(vmi, dtb, va4(0xff, 1, 2, 4, 0), 0x346000, 4 * KIB, F_U);
    WK(vmi, dtb, va4(0xff, 1, 3, 0, 0), 0x600000, 2 * MIB, F_W | F_U);
    WK(vmi, dtb, va4(0xff, 2, 0, 0, 0), 0x140000000ULL, 1 * GIB, F_W);
    WK(vmi, dtb, 0xffff800000000000ULL, 0x100000, 4 * KIB, F_W | F_G);
    WK(vmi, dtb, 0xffff808000000000ULL, 0x40000000, 1 * GIB, F_W | F_NX);
    WK(vmi, dtb, 0xffffffff80000000ULL, 0, 1 * GIB, F_W | F_G);
    if (wk_(__FILE__, __LINE__, vmi, dtb, va4(0xff, 1, 2, 3, 0x123), 0x345123, 4 * KIB,
            F_W | F_U | F_NX, FLAGS_ALL, &w)) {
        CHECK_EQ(w.nlevels, 4);
        LV(&w, 0, PML4, 0xff, 8, PDPTU | 7);
        LV(&w, 1, PDPTU, 1, 8, PDU | 7);
        LV(&w, 2, PDU, 2, 8, PTU | 7);
        LV(&w, 3, PTU, 3, 8, X_NX | 0x345007);
    }
    if (wk_(__FILE__, __LINE__, vmi, dtb, va4(0xff, 2, 0, 0, 0x10), 0x140000010ULL, 1 * GIB, F_W,
            FLAGS_ALL, &w)) {
        CHECK_EQ(w.nlevels, 2);
        LV(&w, 1, PDPTU, 2, 8, 0x140000000ULL | X_PATL | X_PS | X_RW | X_P);
    }
    memset(&w, 0, sizeof w);
    st = vmi_translate_walk(vmi, dtb, va4(0xff, 1, 2, 5, 0), &w);
    CHECK_ST(st, VMI_ERR_NOT_PRESENT);
    CHECK(w.nlevels == 3 || w.nlevels == 4, "failed walk: nlevels %u, expected 3 or 4", w.nlevels);
    if (w.nlevels == 4)
        LV(&w, 3, PTU, 5, 8, 0x347006);

    /* enumeration: without the bad entry and the self-map */
    w64(&g, PML4 + 0x102 * 8, 0);
    w64(&g, PML4 + 0x103 * 8, 0);
    w64(&g, PML4 + 0x1ed * 8, 0);
    vmi_flush_caches(vmi);
    PAGES(vmi, dtb, 0, ~0ULL, want, FLAGS_ALL, 0);
    pages_(__FILE__, __LINE__, vmi, dtb, want[3].va, want[3].va + 2 * MIB - 1, &want[3], 1, FLAGS_ALL, 0);
    pages_(__FILE__, __LINE__, vmi, dtb, 0xffff800000000000ULL, 0xffff800000000fffULL, &want[5], 1,
           FLAGS_ALL, 0);
    /* the self-map enumerates and terminates */
    w64(&g, PML4 + 0x1ed * 8, PML4 | 3);
    vmi_flush_caches(vmi);
    memset(&g_pl, 0, sizeof g_pl);
    st = vmi_foreach_page(vmi, dtb, va4(0x1ed, 0, 0, 0, 0), va4(0x1ee, 0, 0, 0, 0) - 1, 0,
                          collect, &g_pl);
    CHECK(st == VMI_OK || st == VMI_ERR_LIMIT, "self-map enumeration: got %s",
          vmi_status_string(st));
    CHECK(g_pl.calls > 0, "self-map enumeration found no page");

    /* caches: a changed PTE shows after vmi_flush_v2p */
    test_context("ia32e caches");
    XL(vmi, dtb, va4(0xff, 1, 2, 4, 0), 0x346000);
    cs0 = vmi_get_cache_stats(vmi);
    pa = 0;
    CHECK_ST(vmi_translate(vmi, dtb, va4(0xff, 1, 2, 4, 0), &pa), VMI_OK);
    cs1 = vmi_get_cache_stats(vmi);
    CHECK(cs1.v2p_hits > cs0.v2p_hits, "a repeated translation is not a v2p hit (%" PRIu64
          " -> %" PRIu64 ")", cs0.v2p_hits, cs1.v2p_hits);
    w64(&g, PTU + 4 * 8, 0x349005);
    vmi_flush_v2p(vmi, dtb);
    pa = 0;
    CHECK_ST(vmi_translate(vmi, dtb, va4(0xff, 1, 2, 4, 0x10), &pa), VMI_OK);
    CHECK_EQ(pa, 0x349010);
    w64(&g, PTU + 4 * 8, 0x34a005);
    vmi_flush_caches(vmi);
    pa = 0;
    CHECK_ST(vmi_translate(vmi, dtb, va4(0xff, 1, 2, 4, 0x10), &pa), VMI_OK);
    CHECK_EQ(pa, 0x34a010);
    w64(&g, PTU + 4 * 8, 0);
    vmi_flush_v2p(vmi, dtb);
    XL_ERR(vmi, dtb, va4(0xff, 1, 2, 4, 0), ST(VMI_ERR_NOT_PRESENT));

    /* vmi_set_paging to another root */
    test_context("ia32e set_paging");
    w64(&g, 0xa000 + 0x100 * 8, 0xb000 | 3);
    w64(&g, 0xb000, 0x80000000ULL | X_PS | 3);
    pa = 0;
    CHECK_ST(vmi_translate_kva(vmi, 0xffff800000000123ULL, &pa), VMI_OK);
    CHECK_EQ(pa, 0x100123);
    memset(&p, 0, sizeof p);
    p.mode = VMI_PAGING_IA32E;
    p.dtb = 0xa000;
    p.flags = VMI_PAGING_NXE;
    CHECK_ST(vmi_set_paging(vmi, &p), VMI_OK);
    CHECK_EQ(vmi_get_paging(vmi)->dtb, 0xa000);
    CHECK_EQ(vmi_get_paging(vmi)->mode, VMI_PAGING_IA32E);
    CHECK_EQ(vmi_kernel_dtb(vmi), 0xa000);
    pa = 0;
    CHECK_ST(vmi_translate_kva(vmi, 0xffff800000000123ULL, &pa), VMI_OK);
    CHECK_EQ(pa, 0x80000123);

    /* vmi_paging_from_regs, then use what it gives */
    test_context("ia32e from regs");
    memset(&regs, 0, sizeof regs);
    regs.arch = VMI_ARCH_X86_64;
    regs.valid = VMI_REGS_GPR | VMI_REGS_CONTROL;
    regs.x86.cr0 = 0x80050033;
    regs.x86.cr4 = 0x3606f0; /* PAE, PSE, PCIDE, not LA57 */
    regs.x86.efer = 0xd01;   /* SCE, LME, LMA, NXE */
    regs.x86.cr3 = dtb;
    memset(&p, 0, sizeof p);
    CHECK_ST(vmi_paging_from_regs(&regs, &p), VMI_OK);
    CHECK_EQ(p.mode, VMI_PAGING_IA32E);
    CHECK_EQ(p.flags & VMI_PAGING_NXE, VMI_PAGING_NXE);
    CHECK_EQ(p.dtb & ~0xfffULL, PML4);
    CHECK_ST(vmi_set_paging(vmi, &p), VMI_OK);
    pa = 0;
    CHECK_ST(vmi_translate_kva(vmi, 0xffff800000000123ULL, &pa), VMI_OK);
    CHECK_EQ(pa, 0x100123);
    if (wk_(__FILE__, __LINE__, vmi, p.dtb, 0xffff808000000000ULL, 0x40000000, 1 * GIB,
            F_W | F_NX, FLAGS_ALL, &w))
        LV(&w, 0, PML4, 0x101, 8, X_NX | PDPTNX | 3);
    vmi_close(vmi);
    g_free(&g);
}

static void test_la57(void)
{
    guest g;
    vmi_instance *vmi;
    vmi_walk w;
    const uint64_t PML5 = 0x1000, PML4A = 0x2000, PDPTA = 0x3000, PDA = 0x4000, PTA = 0x5000,
                   PML4K = 0x6000, PDPTK = 0x7000, PML4K2 = 0x8000, PDPTK2 = 0x9000,
                   PDK2 = 0xa000, PTK2 = 0xb000, PML4Z = 0xc000, PDPTZ = 0xd000;
    vmi_page want[6];
    const vmi_page want_u[] = {
        {0x0000800000000000ULL, 0xc0000000, 1 * GIB, F_W | F_U},
        {0, 0x200000, 4 * KIB, F_W | F_U},
        {0, 0x400000, 2 * MIB, F_W | F_U},
        {0, 0x80000000, 1 * GIB, F_W | F_U},
        {0xff00000000001000ULL, 0x300000, 4 * KIB, F_W | F_G},
        {0xffffffff80000000ULL, 0, 1 * GIB, F_W | F_G},
    };

    test_context("la57");
    memcpy(want, want_u, sizeof want);
    want[1].va = va5(1, 2, 3, 4, 5, 0);
    want[2].va = va5(1, 2, 3, 6, 0, 0);
    want[3].va = va5(1, 2, 7, 0, 0, 0);
    g_init(&g);
    g_add(&g, 0, 4 * MIB);
    w64(&g, PML5 + 1 * 8, PML4A | 7);
    w64(&g, PML4A + 2 * 8, PDPTA | 7);
    w64(&g, PDPTA + 3 * 8, PDA | 7);
    w64(&g, PDA + 4 * 8, PTA | 7);
    w64(&g, PTA + 5 * 8, 0x200007);
    w64(&g, PDA + 6 * 8, 0x400000 | X_PS | 7);
    w64(&g, PDPTA + 7 * 8, 0x80000000ULL | X_PS | 7);
    w64(&g, PML5 + 0x1ff * 8, PML4K | 3);
    w64(&g, PML4K + 0x1ff * 8, PDPTK | 3);
    w64(&g, PDPTK + 0x1fe * 8, 0 | X_G | X_PS | 3);
    w64(&g, PML5 + 0x100 * 8, PML4K2 | 3);
    w64(&g, PML4K2 + 0, PDPTK2 | 3);
    w64(&g, PDPTK2 + 0, PDK2 | 3);
    w64(&g, PDK2 + 0, PTK2 | 3);
    w64(&g, PTK2 + 1 * 8, 0x300000 | X_G | 3);
    w64(&g, PML5 + 0, PML4Z | 7);
    w64(&g, PML4Z + 0x100 * 8, PDPTZ | 7);
    w64(&g, PDPTZ + 0, 0xc0000000ULL | X_PS | 7);
    vmi = g_open(&g, VMI_PAGING_LA57, PML5, 0, VMI_PAGING_NXE);

    XL(vmi, PML5, va5(1, 2, 3, 4, 5, 0x123), 0x200123);
    XL(vmi, PML5, va5(1, 2, 3, 6, 0, 0x12345), 0x412345);
    XL(vmi, PML5, va5(1, 2, 7, 0, 0, 0x12345678), 0x92345678ULL);
    XL(vmi, PML5, 0xffffffff80001000ULL, 0x1000);
    XL(vmi, PML5, 0xff00000000001008ULL, 0x300008);
    XL(vmi, PML5, 0x0000800000000010ULL, 0xc0000010ULL); /* non-canonical with 4 levels only */
    XL_ERR(vmi, PML5, 0x0100000000000000ULL, ANY_ERR);   /* bit 56 set, 63:57 clear */
    XL_ERR(vmi, PML5, 0xfe00000000000000ULL, ANY_ERR);
    XL_ERR(vmi, PML5, 0x8000000000000000ULL, ANY_ERR);
    XL_ERR(vmi, PML5, va5(2, 0, 0, 0, 0, 0), ST(VMI_ERR_NOT_PRESENT));
    XL_ERR(vmi, PML5, va5(1, 2, 3, 4, 6, 0), ST(VMI_ERR_NOT_PRESENT));
    WK(vmi, PML5, va5(1, 2, 3, 6, 0, 0), 0x400000, 2 * MIB, F_W | F_U);
    WK(vmi, PML5, va5(1, 2, 7, 0, 0, 0), 0x80000000, 1 * GIB, F_W | F_U);
    WK(vmi, PML5, 0xffffffff80000000ULL, 0, 1 * GIB, F_W | F_G);
    if (wk_(__FILE__, __LINE__, vmi, PML5, va5(1, 2, 3, 4, 5, 0x10), 0x200010, 4 * KIB, F_W | F_U,
            FLAGS_ALL, &w)) {
        CHECK_EQ(w.nlevels, 5);
        LV(&w, 0, PML5, 1, 8, PML4A | 7);
        LV(&w, 1, PML4A, 2, 8, PDPTA | 7);
        LV(&w, 2, PDPTA, 3, 8, PDA | 7);
        LV(&w, 3, PDA, 4, 8, PTA | 7);
        LV(&w, 4, PTA, 5, 8, 0x200007);
    }
    PAGES(vmi, PML5, 0, ~0ULL, want, FLAGS_ALL, 0);
    vmi_close(vmi);
    g_free(&g);
}

/* ---- ARM ------------------------------------------------------------------ */

#define A_TABLE 0x3ULL
#define A_BLOCK 0x1ULL
#define A_PAGE 0x3ULL
#define A_AF 0x400ULL
#define A_RO 0x80ULL  /* AP[2] */
#define A_EL0 0x40ULL /* AP[1] */
#define A_NG 0x800ULL
#define A_CONT (1ULL << 52)
#define A_PXN (1ULL << 53)
#define A_UXN (1ULL << 54)
#define A_PXNT (1ULL << 59)
#define A_UXNT (1ULL << 60)
#define A_APT_NOEL0 (1ULL << 61)
#define A_APT_RO (1ULL << 62)

#define TCR(t0sz, tg0, t1sz, tg1)                                                        \
    ((uint64_t)(t0sz) | ((uint64_t)(tg0) << 14) | ((uint64_t)(t1sz) << 16) |             \
     ((uint64_t)(tg1) << 30))
/* TG0: 0 4K, 1 64K, 2 16K. TG1: 1 16K, 2 4K, 3 64K. */

static void test_aarch64_4k(void)
{
    guest g;
    vmi_instance *vmi;
    vmi_walk w;
    uint64_t L0U, L1U, L2U, L3U, L0K, L1K, L2K, L2H, L2H2, L1K2, L2K2, L3K, ttbr0, ttbr1, i;
    const uint64_t tcr48 = TCR(16, 0, 16, 2);
    vmi_page want[26];
    size_t n = 0;
    uint64_t pa;
    vmi_status st;
    int pass;

    test_context("aarch64 4K 48-bit");
    g_init(&g);
    g_add(&g, 0x40000000, 16 * MIB);
    L0U = g_alloc(&g, 4 * KIB);
    L1U = g_alloc(&g, 4 * KIB);
    L2U = g_alloc(&g, 4 * KIB);
    L3U = g_alloc(&g, 4 * KIB);
    L0K = g_alloc(&g, 4 * KIB);
    L1K = g_alloc(&g, 4 * KIB);
    L2K = g_alloc(&g, 4 * KIB);
    L2H = g_alloc(&g, 4 * KIB);
    L2H2 = g_alloc(&g, 4 * KIB);
    L1K2 = g_alloc(&g, 4 * KIB);
    L2K2 = g_alloc(&g, 4 * KIB);
    L3K = g_alloc(&g, 4 * KIB);
    ttbr0 = L0U | (5ULL << 48);
    ttbr1 = L0K | (0x42ULL << 48) | 1; /* ASID and CnP */

    w64(&g, L0U + 0, L1U | A_TABLE);
    w64(&g, L1U + 0, L2U | A_TABLE);
    w64(&g, L2U + 2 * 8, L3U | A_TABLE);
    w64(&g, L3U + 1 * 8, 0x40100000 | A_PAGE | A_AF | A_EL0 | A_NG | A_PXN);
    w64(&g, L3U + 2 * 8, 0x40101000 | A_PAGE | A_AF | A_EL0 | A_RO | A_NG | A_UXN | A_PXN);
    w64(&g, L3U + 3 * 8, 0x40102000 | 0x2);          /* invalid: bit 0 clear */
    w64(&g, L3U + 4 * 8, 0x40103000 | 0x1 | A_AF);   /* level 3 0b01: reserved, invalid */
    w64(&g, L3U + 5 * 8, 0x40104000 | A_PAGE | A_NG); /* AF clear: still a mapping */
    /* bits 50 (GP), 51 (DBM), 55-58 (software: Linux PTE_DIRTY, PTE_SPECIAL, ...) and
       63:59 are attributes, not output address */
    w64(&g, L3U + 6 * 8, 0x40105000 | A_PAGE | A_AF | (1ULL << 50) | (1ULL << 51) |
                             (0xfULL << 55) | (1ULL << 63));
    for (i = 16; i < 32; i++)
        w64(&g, L3U + i * 8, (0x40110000 + (i - 16) * 4 * KIB) | A_PAGE | A_AF | A_CONT);
    w64(&g, L2U + 3 * 8, 0x40200000 | A_BLOCK | A_AF | A_EL0 | A_NG | A_PXN);
    w64(&g, L1U + 1 * 8, 0x80000000ULL | A_BLOCK | A_AF | A_NG);
    w64(&g, L0U + 1 * 8, 0 | A_BLOCK | A_AF); /* no level-0 blocks with 4K */
    w64(&g, L0U + 0x1ff * 8, L0U | A_TABLE | A_AF); /* self-map */

    w64(&g, L0K + 0, L1K | A_TABLE);
    w64(&g, L1K + 0, L2K | A_TABLE);
    w64(&g, L2K + 0, 0x40000000 | A_BLOCK | A_AF | A_UXN);
    w64(&g, L1K + 1 * 8, 0x10000000 | A_TABLE); /* below the guest's memory */
    w64(&g, L1K + 2 * 8, L2H | A_TABLE | A_APT_RO | A_UXNT);
    w64(&g, L2H + 0, 0x40400000 | A_BLOCK | A_AF);
    w64(&g, L1K + 3 * 8, L2H2 | A_TABLE | A_APT_NOEL0 | A_PXNT);
    w64(&g, L2H2 + 0, 0x40600000 | A_BLOCK | A_AF | A_EL0);
    w64(&g, L0K + 0x100 * 8, L1K2 | A_TABLE);
    w64(&g, L1K2 + 0, L2K2 | A_TABLE);
    w64(&g, L2K2 + 0, L3K | A_TABLE);
    w64(&g, L3K + 3 * 8, 0x40300000 | A_PAGE | A_AF | A_RO | A_UXN);
    vmi = g_open(&g, VMI_PAGING_AARCH64, ttbr1, tcr48, 0);

    for (pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            test_context("aarch64 tcr 0 (4K, 48-bit halves)");
            set_paging(vmi, VMI_PAGING_AARCH64, ttbr1, 0, 0);
        }
        CHECK_EQ(vmi_addr_width(vmi), 8);
        XL(vmi, ttbr0, 0x401abc, 0x40100abc);
        XL(vmi, ttbr0, 0x402000, 0x40101000);
        XL(vmi, ttbr0, 0x405010, 0x40104010);
        XL(vmi, ttbr0, 0x406010, 0x40105010);
        XL(vmi, ttbr0, 0x415123, 0x40115123);
        XL(vmi, ttbr0, 0x7fffff, 0x403fffff);
        XL(vmi, ttbr0, 0x7fffffff, 0xbfffffffULL);
        XL(vmi, ttbr0, 0xffff000000000123ULL, 0x40000123);
        XL(vmi, 0, 0xffff000000000123ULL, 0x40000123); /* upper half: the kernel root */
        XL(vmi, ttbr0, 0xffff800000003abcULL, 0x40300abc);
        XL(vmi, ttbr0, 0xffff000080000010ULL, 0x40400010);
        XL(vmi, ttbr0, 0xffff0000c0000010ULL, 0x40600010);
        pa = 0;
        CHECK_ST(vmi_translate_kva(vmi, 0xffff800000003abcULL, &pa), VMI_OK);
        CHECK_EQ(pa, 0x40300abc);
        XL_ERR(vmi, ttbr0, 0x403000, ST(VMI_ERR_NOT_PRESENT));
        XL_ERR(vmi, ttbr0, 0x404000, ANY_ERR);
        XL_ERR(vmi, ttbr0, 0x407000, ST(VMI_ERR_NOT_PRESENT));
        XL_ERR(vmi, ttbr0, 0x8000000000ULL, ANY_ERR);          /* level-0 block */
        XL_ERR(vmi, ttbr0, 0x0001000000000000ULL, ANY_ERR);    /* neither half */
        XL_ERR(vmi, ttbr0, 0xfffeffffffff0000ULL, ANY_ERR);
        XL_ERR(vmi, ttbr0, 0x8000000000000000ULL, ANY_ERR);
        XL_ERR(vmi, ttbr0, 0xffff000040000000ULL, ST(VMI_ERR_UNMAPPED) | ST(VMI_ERR_PAGE_TABLE));
        XL_ERR(vmi, ttbr0, 0xffff7fffffe00000ULL, ST(VMI_ERR_NOT_PRESENT));
        /* self-map: L0[0x1ff] -> L0; at level 3 a table descriptor reads as a page */
        XL(vmi, ttbr0, 0x0000fffffffff018ULL, L0U + 0x18);
        XL(vmi, ttbr0, 0x0000ffffffe00000ULL + 0x20, L1U + 0x20);

        WK(vmi, ttbr0, 0x401000, 0x40100000, 4 * KIB, F_W | F_U | F_PXN);
        WK(vmi, ttbr0, 0x402000, 0x40101000, 4 * KIB, F_U | F_NX | F_PXN);
        WK(vmi, ttbr0, 0x600000, 0x40200000, 2 * MIB, F_W | F_U | F_PXN);
        WK(vmi, ttbr0, 0x40000000, 0x80000000ULL, 1 * GIB, F_W);
        WK(vmi, ttbr0, 0xffff000000000000ULL, 0x40000000, 2 * MIB, F_W | F_NX | F_G);
        WK(vmi, ttbr0, 0xffff800000003000ULL, 0x40300000, 4 * KIB, F_NX | F_G);
        /* hierarchical: APTable[1] removes write, UXNTable adds XN (D5.4.x) */
        WK(vmi, ttbr0, 0xffff000080000000ULL, 0x40400000, 2 * MIB, F_NX | F_G);
        /* APTable[0] removes EL0 access, PXNTable adds PXN */
        WK(vmi, ttbr0, 0xffff0000c0000000ULL, 0x40600000, 2 * MIB, F_W | F_PXN | F_G);
        memset(&w, 0, sizeof w);
        st = vmi_translate_walk(vmi, ttbr0, 0x413000, &w);
        CHECK_ST(st, VMI_OK);
        CHECK_EQ(w.pa, 0x40113000);
        CHECK_EQ(w.flags & FLAGS_ALL, F_W | F_G | F_C);
        CHECK(w.page_size == 4 * KIB || w.page_size == 64 * KIB,
              "contiguous page: page_size 0x%" PRIx64, w.page_size);
        if (wk_(__FILE__, __LINE__, vmi, ttbr0, 0x401abc, 0x40100abc, 4 * KIB,
                F_W | F_U | F_PXN, FLAGS_ALL, &w)) {
            CHECK_EQ(w.nlevels, 4);
            LV(&w, 0, L0U, 0, 8, L1U | A_TABLE);
            LV(&w, 1, L1U, 0, 8, L2U | A_TABLE);
            LV(&w, 2, L2U, 2, 8, L3U | A_TABLE);
            LV(&w, 3, L3U, 1, 8, 0x40100000 | A_PAGE | A_AF | A_EL0 | A_NG | A_PXN);
        }
        if (wk_(__FILE__, __LINE__, vmi, ttbr0, 0xffff800000003abcULL, 0x40300abc, 4 * KIB,
                F_NX | F_G, FLAGS_ALL, &w)) {
            CHECK_EQ(w.nlevels, 4);
            LV(&w, 0, L0K, 0x100, 8, L1K2 | A_TABLE);
            LV(&w, 3, L3K, 3, 8, 0x40300000 | A_PAGE | A_AF | A_RO | A_UXN);
        }
    }

    test_context("aarch64 4K foreach");
    set_paging(vmi, VMI_PAGING_AARCH64, ttbr1, tcr48, 0);
    w64(&g, L0U + 1 * 8, 0);
    w64(&g, L0U + 0x1ff * 8, 0);
    w64(&g, L1K + 1 * 8, 0);
    vmi_flush_caches(vmi);
#define PG(va_, pa_, size_, flags_)                                                       \
    do {                                                                                  \
        want[n].va = va_;                                                                 \
        want[n].pa = pa_;                                                                 \
        want[n].size = size_;                                                             \
        want[n].flags = flags_;                                                           \
        n++;                                                                              \
    } while (0)
    PG(0x401000, 0x40100000, 4 * KIB, F_W | F_U | F_PXN);
    PG(0x402000, 0x40101000, 4 * KIB, F_U | F_NX | F_PXN);
    PG(0x405000, 0x40104000, 4 * KIB, F_W);
    PG(0x406000, 0x40105000, 4 * KIB, F_W | F_G);
    for (i = 0; i < 16; i++)
        PG(0x410000 + i * 4 * KIB, 0x40110000 + i * 4 * KIB, 4 * KIB, F_W | F_G | F_C);
    PG(0x600000, 0x40200000, 2 * MIB, F_W | F_U | F_PXN);
    PG(0x40000000, 0x80000000ULL, 1 * GIB, F_W);
    PG(0xffff000000000000ULL, 0x40000000, 2 * MIB, F_W | F_NX | F_G);
    PG(0xffff000080000000ULL, 0x40400000, 2 * MIB, F_NX | F_G);
    PG(0xffff0000c0000000ULL, 0x40600000, 2 * MIB, F_W | F_PXN | F_G);
    PG(0xffff800000003000ULL, 0x40300000, 4 * KIB, F_NX | F_G);
    pages_(__FILE__, __LINE__, vmi, ttbr0, 0, ~0ULL, want, n, FLAGS_ALL, 4 * KIB);
    pages_(__FILE__, __LINE__, vmi, ttbr0, 0xffff000000000000ULL, ~0ULL, &want[n - 4], 4,
           FLAGS_ALL, 4 * KIB);
    pages_(__FILE__, __LINE__, vmi, ttbr0, 0, 0x0000ffffffffffffULL, want, n - 4, FLAGS_ALL,
           4 * KIB);
#undef PG

    /* A kernel (TTBR1) table changes: flushing the kernel root must be enough,
       whatever TTBR0 the cached translation was asked with. */
    test_context("aarch64 v2p flush of the kernel root");
    XL(vmi, ttbr1, 0xffff000000000123ULL, 0x40000123); /* (its last pass flushes all) */
    pa = 0;
    CHECK_ST(vmi_translate(vmi, ttbr0, 0xffff000000000123ULL, &pa), VMI_OK); /* cached */
    CHECK_EQ(pa, 0x40000123);
    w64(&g, L2K + 0, 0x40800000 | A_BLOCK | A_AF | A_UXN);
    vmi_flush_v2p(vmi, ttbr1);
    pa = 0;
    CHECK_ST(vmi_translate(vmi, ttbr1, 0xffff000000000123ULL, &pa), VMI_OK);
    CHECK_EQ(pa, 0x40800123);
    pa = 0;
    CHECK_ST(vmi_translate(vmi, ttbr0, 0xffff000000000123ULL, &pa), VMI_OK);
    CHECK(pa == 0x40800123, "translate(ttbr0 0x%" PRIx64 ", kernel va) after a TTBR1 table change "
          "and vmi_flush_v2p(kernel dtb): expected 0x40800123, got stale 0x%" PRIx64, ttbr0, pa);
    pa = 0;
    CHECK_ST(vmi_translate_kva(vmi, 0xffff000000000123ULL, &pa), VMI_OK);
    CHECK_EQ(pa, 0x40800123);
    /* and a TTBR0 table change with a flush of that TTBR0 */
    XL(vmi, ttbr0, 0x401abc, 0x40100abc);
    w64(&g, L3U + 1 * 8, 0x40109000 | A_PAGE | A_AF | A_EL0 | A_NG | A_PXN);
    vmi_flush_v2p(vmi, ttbr0);
    pa = 0;
    CHECK_ST(vmi_translate(vmi, ttbr0, 0x401abc, &pa), VMI_OK);
    CHECK_EQ(pa, 0x40109abc);
    vmi_close(vmi);
    g_free(&g);
}

static void test_aarch64_39(void)
{
    guest g;
    vmi_instance *vmi;
    vmi_walk w;
    uint64_t L1U, L2U, L3U, L1K, L2K, L2K2;
    const uint64_t tcr = TCR(25, 0, 25, 2);
    const vmi_page want[] = {
        {0x1000, 0x40100000, 4 * KIB, F_W | F_U},
        {0x7fc0000000ULL, 0x80000000ULL, 1 * GIB, F_W | F_G},
        {0xffffff8000000000ULL, 0x40200000, 2 * MIB, F_W | F_G},
        {0xffffffffffe00000ULL, 0x40400000, 2 * MIB, F_W | F_G},
    };

    test_context("aarch64 4K 39-bit");
    g_init(&g);
    g_add(&g, 0x40000000, 8 * MIB);
    L1U = g_alloc(&g, 4 * KIB);
    L2U = g_alloc(&g, 4 * KIB);
    L3U = g_alloc(&g, 4 * KIB);
    L1K = g_alloc(&g, 4 * KIB);
    L2K = g_alloc(&g, 4 * KIB);
    L2K2 = g_alloc(&g, 4 * KIB);
    w64(&g, L1U + 0, L2U | A_TABLE);
    w64(&g, L2U + 0, L3U | A_TABLE);
    w64(&g, L3U + 1 * 8, 0x40100000 | A_PAGE | A_AF | A_EL0 | A_NG);
    w64(&g, L1U + 0x1ff * 8, 0x80000000ULL | A_BLOCK | A_AF);
    w64(&g, L1K + 0, L2K | A_TABLE);
    w64(&g, L2K + 0, 0x40200000 | A_BLOCK | A_AF);
    w64(&g, L1K + 0x1ff * 8, L2K2 | A_TABLE);
    w64(&g, L2K2 + 0x1ff * 8, 0x40400000 | A_BLOCK | A_AF);
    vmi = g_open(&g, VMI_PAGING_AARCH64, L1K, tcr, 0);

    XL(vmi, L1U, 0x1abc, 0x40100abc);
    XL(vmi, L1U, 0x7fc0000000ULL + 0x123, 0x80000123ULL);
    XL(vmi, L1U, 0xffffff8000000000ULL + 0x1fffff, 0x403fffff);
    XL(vmi, L1U, 0xffffffffffe00123ULL, 0x40400123);
    XL_ERR(vmi, L1U, 0x2000, ST(VMI_ERR_NOT_PRESENT));
    XL_ERR(vmi, L1U, 0x8000000000ULL, ANY_ERR);         /* 2^39: outside TTBR0 */
    XL_ERR(vmi, L1U, 0xffffff7fffffffffULL, ANY_ERR);   /* below TTBR1 */
    XL_ERR(vmi, L1U, 0xffff800000000000ULL, ANY_ERR);
    if (wk_(__FILE__, __LINE__, vmi, L1U, 0x1abc, 0x40100abc, 4 * KIB, F_W | F_U, FLAGS_ALL,
            &w)) {
        CHECK_EQ(w.nlevels, 3);
        LV(&w, 0, L1U, 0, 8, L2U | A_TABLE);
        LV(&w, 1, L2U, 0, 8, L3U | A_TABLE);
        LV(&w, 2, L3U, 1, 8, 0x40100000 | A_PAGE | A_AF | A_EL0 | A_NG);
    }
    if (wk_(__FILE__, __LINE__, vmi, L1U, 0xffffffffffe00123ULL, 0x40400123, 2 * MIB, F_W | F_G,
            FLAGS_ALL, &w)) {
        CHECK_EQ(w.nlevels, 2);
        LV(&w, 0, L1K, 0x1ff, 8, L2K2 | A_TABLE);
        LV(&w, 1, L2K2, 0x1ff, 8, 0x40400000 | A_BLOCK | A_AF);
    }
    PAGES(vmi, L1U, 0, ~0ULL, want, FLAGS_ALL, 4 * KIB);
    vmi_close(vmi);
    g_free(&g);
}

static void test_aarch64_16k(void)
{
    guest g;
    vmi_instance *vmi;
    vmi_walk w;
    uint64_t L0U, L1U, L2U, L3U, L1K, L2K, L3K;
    const uint64_t tcr47 = TCR(17, 2, 17, 1), tcr48 = TCR(16, 2, 17, 1);
    const vmi_page want[] = {
        {0x4000, 0x40f04000, 16 * KIB, F_W | F_G},
        {0x2000000, 0x42000000, 32 * MIB, F_W | F_G},
        {0xffff800000000000ULL, 0x40f08000, 16 * KIB, F_W | F_NX | F_G},
    };

    test_context("aarch64 16K 47-bit");
    g_init(&g);
    g_add(&g, 0x40000000, 16 * MIB);
    L0U = g_alloc(&g, 16 * KIB);
    L1U = g_alloc(&g, 16 * KIB);
    L2U = g_alloc(&g, 16 * KIB);
    L3U = g_alloc(&g, 16 * KIB);
    L1K = g_alloc(&g, 16 * KIB);
    L2K = g_alloc(&g, 16 * KIB);
    L3K = g_alloc(&g, 16 * KIB);
    w64(&g, L1U + 0, L2U | A_TABLE);
    w64(&g, L2U + 0, L3U | A_TABLE);
    w64(&g, L3U + 1 * 8, 0x40f04000 | A_PAGE | A_AF);
    w64(&g, L2U + 1 * 8, 0x42000000 | A_BLOCK | A_AF); /* 32 MiB */
    w64(&g, L1U + 1 * 8, 0 | A_BLOCK | A_AF);          /* no level-1 blocks with 16K */
    w64(&g, L1K + 0, L2K | A_TABLE);
    w64(&g, L2K + 0, L3K | A_TABLE);
    w64(&g, L3K + 0, 0x40f08000 | A_PAGE | A_AF | A_UXN);
    /* 48-bit: a 2-entry level-0 table in front of the same level-1 table */
    w64(&g, L0U + 0, L1U | A_TABLE);
    w64(&g, L0U + 8, L1U | A_TABLE);
    vmi = g_open(&g, VMI_PAGING_AARCH64, L1K, tcr47, 0);

    XL(vmi, L1U, 0x4000, 0x40f04000);
    XL(vmi, L1U, 0x7fff, 0x40f07fff);
    XL(vmi, L1U, 0x2000000 + 0x1234567, 0x43234567);
    XL(vmi, L1U, 0x3ffffff, 0x43ffffff);
    XL(vmi, L1U, 0xffff800000003fffULL, 0x40f0bfff);
    XL_ERR(vmi, L1U, 0x8000, ST(VMI_ERR_NOT_PRESENT));
    XL_ERR(vmi, L1U, 0x1000000000ULL, ANY_ERR); /* level-1 block */
    XL_ERR(vmi, L1U, 0x0000800000000000ULL, ANY_ERR);
    XL_ERR(vmi, L1U, 0xffff7fffffffc000ULL, ANY_ERR);
    XL_ERR(vmi, L1U, 0xffff800000004000ULL, ST(VMI_ERR_NOT_PRESENT));
    if (wk_(__FILE__, __LINE__, vmi, L1U, 0x4abc, 0x40f04abc, 16 * KIB, F_W | F_G, FLAGS_ALL,
            &w)) {
        CHECK_EQ(w.nlevels, 3);
        LV(&w, 0, L1U, 0, 8, L2U | A_TABLE);
        LV(&w, 1, L2U, 0, 8, L3U | A_TABLE);
        LV(&w, 2, L3U, 1, 8, 0x40f04000 | A_PAGE | A_AF);
    }
    if (wk_(__FILE__, __LINE__, vmi, L1U, 0x2000000, 0x42000000, 32 * MIB, F_W | F_G, FLAGS_ALL,
            &w)) {
        CHECK_EQ(w.nlevels, 2);
        LV(&w, 1, L2U, 1, 8, 0x42000000 | A_BLOCK | A_AF);
    }
    PAGES(vmi, L1U, 0, ~0ULL, want, FLAGS_ALL, 16 * KIB);

    test_context("aarch64 16K 48-bit TTBR0");
    set_paging(vmi, VMI_PAGING_AARCH64, L1K, tcr48, 0);
    XL(vmi, L0U, 0x4010, 0x40f04010);
    XL(vmi, L0U, 0x800000004010ULL, 0x40f04010);
    XL(vmi, L0U, 0xffff800000000010ULL, 0x40f08010);
    if (wk_(__FILE__, __LINE__, vmi, L0U, 0x800000004abcULL, 0x40f04abc, 16 * KIB, F_W | F_G,
            FLAGS_ALL, &w)) {
        CHECK_EQ(w.nlevels, 4);
        LV(&w, 0, L0U, 1, 8, L1U | A_TABLE);
        LV(&w, 3, L3U, 1, 8, 0x40f04000 | A_PAGE | A_AF);
    }
    vmi_close(vmi);
    g_free(&g);
}

static void test_aarch64_64k(void)
{
    guest g;
    vmi_instance *vmi;
    vmi_walk w;
    uint64_t L1U, L2U, L3U, L1K, L2K, L3K, L2K2;
    const uint64_t tcr = TCR(16, 1, 16, 3);
    const vmi_page want[] = {
        {0x10000, 0x40f10000, 64 * KIB, F_W | F_U},
        {0x20000000, 0x60000000, 512 * MIB, F_W | F_G},
        {0xffff000000000000ULL, 0x40f20000, 64 * KIB, F_W | F_G},
        {0xffffffffe0000000ULL, 0x40000000, 512 * MIB, F_G},
    };

    test_context("aarch64 64K 48-bit");
    g_init(&g);
    g_add(&g, 0x40000000, 16 * MIB);
    L1U = g_alloc(&g, 64 * KIB);
    L2U = g_alloc(&g, 64 * KIB);
    L3U = g_alloc(&g, 64 * KIB);
    L1K = g_alloc(&g, 64 * KIB);
    L2K = g_alloc(&g, 64 * KIB);
    L3K = g_alloc(&g, 64 * KIB);
    L2K2 = g_alloc(&g, 64 * KIB);
    w64(&g, L1U + 0, L2U | A_TABLE);
    w64(&g, L2U + 0, L3U | A_TABLE);
    w64(&g, L3U + 1 * 8, 0x40f10000 | A_PAGE | A_AF | A_EL0 | A_NG);
    w64(&g, L2U + 1 * 8, 0x60000000 | A_BLOCK | A_AF); /* 512 MiB */
    w64(&g, L1U + 1 * 8, 0 | A_BLOCK | A_AF);          /* no level-1 blocks with 64K */
    w64(&g, L1K + 0, L2K | A_TABLE);
    w64(&g, L2K + 0, L3K | A_TABLE);
    w64(&g, L3K + 0, 0x40f20000 | A_PAGE | A_AF);
    w64(&g, L1K + 63 * 8, L2K2 | A_TABLE);
    w64(&g, L2K2 + 8191 * 8, 0x40000000 | A_BLOCK | A_AF | A_RO);
    vmi = g_open(&g, VMI_PAGING_AARCH64, L1K, tcr, 0);

    XL(vmi, L1U, 0x10000, 0x40f10000);
    XL(vmi, L1U, 0x1ffff, 0x40f1ffff);
    XL(vmi, L1U, 0x20000000 + 0x1234567, 0x61234567);
    XL(vmi, L1U, 0x3fffffff, 0x7fffffff);
    XL(vmi, L1U, 0xffff00000000abcdULL, 0x40f2abcd);
    XL(vmi, L1U, 0xffffffffe0000123ULL, 0x40000123);
    XL_ERR(vmi, L1U, 0x20000, ST(VMI_ERR_NOT_PRESENT));
    XL_ERR(vmi, L1U, 0x40000000000ULL, ANY_ERR); /* level-1 block */
    XL_ERR(vmi, L1U, 0x0001000000000000ULL, ANY_ERR);
    if (wk_(__FILE__, __LINE__, vmi, L1U, 0x10abc, 0x40f10abc, 64 * KIB, F_W | F_U, FLAGS_ALL,
            &w)) {
        CHECK_EQ(w.nlevels, 3);
        LV(&w, 0, L1U, 0, 8, L2U | A_TABLE);
        LV(&w, 1, L2U, 0, 8, L3U | A_TABLE);
        LV(&w, 2, L3U, 1, 8, 0x40f10000 | A_PAGE | A_AF | A_EL0 | A_NG);
    }
    if (wk_(__FILE__, __LINE__, vmi, L1U, 0xffffffffe0000123ULL, 0x40000123, 512 * MIB, F_G,
            FLAGS_ALL, &w)) {
        CHECK_EQ(w.nlevels, 2);
        LV(&w, 0, L1K, 63, 8, L2K2 | A_TABLE);
        LV(&w, 1, L2K2, 8191, 8, 0x40000000 | A_BLOCK | A_AF | A_RO);
    }
    PAGES(vmi, L1U, 0, ~0ULL, want, FLAGS_ALL, 64 * KIB);

    /* TTBR0 with 4K granules (TG0 0), TTBR1 with 64K (TG1 3) */
    test_context("aarch64 TG0 4K, TG1 64K");
    {
        uint64_t L0A = g_alloc(&g, 4 * KIB), L1A = g_alloc(&g, 4 * KIB),
                 L2A = g_alloc(&g, 4 * KIB);
        w64(&g, L0A, L1A | A_TABLE);
        w64(&g, L1A, L2A | A_TABLE);
        w64(&g, L2A + 8, 0x40800000 | A_BLOCK | A_AF);
        set_paging(vmi, VMI_PAGING_AARCH64, L1K, TCR(16, 0, 16, 3), 0);
        XL(vmi, L0A, 0x200010, 0x40800010);
        XL(vmi, L0A, 0xffffffffe0000123ULL, 0x40000123);
        XL(vmi, L0A, 0xffff00000000abcdULL, 0x40f2abcd);
        WK(vmi, L0A, 0x200000, 0x40800000, 2 * MIB, F_W | F_G);
    }
    vmi_close(vmi);
    g_free(&g);
}

/* Address tagging (ARM ARM D5.x "Address tagging"): with TCR_EL1.TBI0/TBI1
   (bits 37/38) the top byte is ignored and VA[55] selects the TTBR; Linux
   sets TBI0 always, and TBI1 with KASAN software or hardware tags. */
static void test_aarch64_tbi(void)
{
    guest g;
    vmi_instance *vmi;
    uint64_t L0U, L1U, L2U, L0K, L1K, L2K;
    const uint64_t tcr = TCR(16, 0, 16, 2) | (1ULL << 37) | (1ULL << 38);

    test_context("aarch64 TBI");
    g_init(&g);
    g_add(&g, 0x40000000, 1 * MIB);
    L0U = g_alloc(&g, 4 * KIB);
    L1U = g_alloc(&g, 4 * KIB);
    L2U = g_alloc(&g, 4 * KIB);
    L0K = g_alloc(&g, 4 * KIB);
    L1K = g_alloc(&g, 4 * KIB);
    L2K = g_alloc(&g, 4 * KIB);
    w64(&g, L0U, L1U | A_TABLE);
    w64(&g, L1U, L2U | A_TABLE);
    w64(&g, L2U + 8, 0x40200000 | A_BLOCK | A_AF);
    w64(&g, L0K + 0x100 * 8, L1K | A_TABLE);
    w64(&g, L1K, L2K | A_TABLE);
    w64(&g, L2K, 0x40400000 | A_BLOCK | A_AF);
    vmi = g_open(&g, VMI_PAGING_AARCH64, L0K, tcr, 0);
    XL(vmi, L0U, 0x0000000000200010ULL, 0x40200010);
    XL(vmi, L0U, 0x2a00000000200010ULL, 0x40200010); /* tagged user pointer */
    XL(vmi, L0U, 0xffff800000000010ULL, 0x40400010);
    XL(vmi, L0U, 0xf2ff800000000010ULL, 0x40400010); /* tagged kernel pointer */
    set_paging(vmi, VMI_PAGING_AARCH64, L0K, TCR(16, 0, 16, 2), 0);
    XL_ERR(vmi, L0U, 0x2a00000000200010ULL, ANY_ERR); /* without TBI0: a fault */
    XL_ERR(vmi, L0U, 0xf2ff800000000010ULL, ANY_ERR);
    vmi_close(vmi);
    g_free(&g);
}

/* AArch32 short descriptors (DDI 0406C B3.5). */
#define S_SECTION 0x2u
#define S_SUPER ((1u << 18) | 0x2u)
#define S_COARSE 0x1u
#define S_XN_SEC 0x10u
#define S_AP0_SEC 0x400u  /* AP[0]: bit 10 */
#define S_AP1_SEC 0x800u  /* AP[1]: bit 11 */
#define S_APX_SEC 0x8000u /* AP[2]: bit 15 */
#define S_NG_SEC 0x20000u
#define S_SMALL 0x2u
#define S_LARGE 0x1u
#define S_XN_SMALL 0x1u
#define S_XN_LARGE 0x8000u
#define S_AP0_PG 0x10u
#define S_AP1_PG 0x20u
#define S_APX_PG 0x200u
#define S_NG_PG 0x800u
/* CONTIG is left out: large pages and supersections may carry it */
#define SHORT_MASK (F_W | F_U | F_NX | F_G)

static void test_aarch32(void)
{
    guest g;
    vmi_instance *vmi;
    vmi_walk w;
    unsigned i;
    vmi_regs regs;
    vmi_paging p;
    const uint64_t L1 = 0x60004000, L2 = 0x60008400, L1K = 0x6000c000, L1U = 0x60011000;
    const uint64_t ttbr0 = L1 | 0x4a; /* IRGN/S/RGN bits: not part of the base */
    const uint32_t super = 0x5f000000u | (0xbu << 20) | (0xau << 5) | S_SUPER | S_AP0_SEC;
    const vmi_page want[] = {
        {0x00000000, 0x60000000, 1 * MIB, F_W | F_G},
        {0x00100000, 0x60100000, 1 * MIB, F_W | F_U | F_NX},
        {0x00200000, 0x60200000, 1 * MIB, F_G},
        {0x01000000, 0xab5f000000ULL, 16 * MIB, F_W | F_G},
        {0x02000000, 0x60300000, 4 * KIB, F_W | F_G},
        {0x02001000, 0x60301000, 4 * KIB, F_W | F_U | F_NX},
        {0x02010000, 0x60310000, 64 * KIB, F_W | F_NX | F_G},
        {0x02020000, 0x60320000, 4 * KIB, F_U | F_G},
    };
    const vmi_page want_split[] = {
        {0x00100000, 0x60400000, 1 * MIB, F_W | F_G},
        {0x3ff00000, 0x60500000, 1 * MIB, F_W | F_G},
        {0x40000000, 0x60800000, 1 * MIB, F_W | F_G},
        {0xc0000000, 0x60000000, 1 * MIB, F_W | F_G},
    };

    test_context("aarch32 short descriptors");
    g_init(&g);
    g_add(&g, 0x60000000, 4 * MIB);
    w32(&g, L1 + 0x000 * 4, 0x60000000u | S_SECTION | S_AP0_SEC);
    w32(&g, L1 + 0x001 * 4, 0x60100000u | S_SECTION | S_XN_SEC | S_AP0_SEC | S_AP1_SEC | S_NG_SEC);
    w32(&g, L1 + 0x002 * 4, 0x60200000u | S_SECTION | S_APX_SEC | S_AP0_SEC); /* kernel RO */
    for (i = 0x010; i < 0x020; i++)
        w32(&g, L1 + i * 4, super);
    w32(&g, L1 + 0x020 * 4, (uint32_t)L2 | S_COARSE | (3u << 5)); /* domain 3 */
    w32(&g, L2 + 0 * 4, 0x60300000u | S_SMALL | S_AP0_PG);
    w32(&g, L2 + 1 * 4, 0x60301000u | S_SMALL | S_XN_SMALL | S_AP0_PG | S_AP1_PG | S_NG_PG);
    for (i = 16; i < 32; i++)
        w32(&g, L2 + i * 4, 0x60310000u | S_LARGE | S_XN_LARGE | S_AP0_PG);
    w32(&g, L2 + 32 * 4, 0x60320000u | S_SMALL | S_APX_PG | S_AP0_PG | S_AP1_PG); /* RO both */
    w32(&g, L1 + 0x040 * 4, 0x10000000u | S_COARSE); /* coarse table outside the guest */
    w32(&g, L1 + 0x050 * 4, (uint32_t)L1 | S_COARSE); /* self: L1 read as a coarse table */
    vmi = g_open(&g, VMI_PAGING_AARCH32, ttbr0, 0, 0);

    CHECK_EQ(vmi_addr_width(vmi), 4);
    XL(vmi, ttbr0, 0x00012345, 0x60012345);
    XL(vmi, ttbr0, 0x001fffff, 0x601fffff);
    XL(vmi, ttbr0, 0x00200010, 0x60200010);
    XL(vmi, ttbr0, 0x01abcdef, 0xab5fabcdefULL);
    XL(vmi, ttbr0, 0x01000000, 0xab5f000000ULL);
    XL(vmi, ttbr0, 0x02000abc, 0x60300abc);
    XL(vmi, ttbr0, 0x02001abc, 0x60301abc);
    XL(vmi, ttbr0, 0x0201abcd, 0x6031abcd);
    XL(vmi, ttbr0, 0x02010000, 0x60310000);
    XL(vmi, ttbr0, 0x0201ffff, 0x6031ffff);
    XL(vmi, ttbr0, 0x02020004, 0x60320004);
    XL(vmi, ttbr0, 0x05000123, 0x60000123); /* self: L1[0] read as a small page */
    XL(vmi, L1, 0x00012345, 0x60012345);
    XL_ERR(vmi, ttbr0, 0x02002000, ST(VMI_ERR_NOT_PRESENT));
    XL_ERR(vmi, ttbr0, 0x03000000, ST(VMI_ERR_NOT_PRESENT));
    XL_ERR(vmi, ttbr0, 0xfff00000, ST(VMI_ERR_NOT_PRESENT));
    XL_ERR(vmi, ttbr0, 0x04000000, ST(VMI_ERR_UNMAPPED) | ST(VMI_ERR_PAGE_TABLE));
    XL_ERR(vmi, ttbr0, 0x100000000ULL, ANY_ERR); /* not a 32-bit address */

    WKM(vmi, ttbr0, 0x00000000, 0x60000000, 1 * MIB, F_W | F_G, SHORT_MASK);
    WKM(vmi, ttbr0, 0x00100000, 0x60100000, 1 * MIB, F_W | F_U | F_NX, SHORT_MASK);
    WKM(vmi, ttbr0, 0x00200000, 0x60200000, 1 * MIB, F_G, SHORT_MASK);
    WKM(vmi, ttbr0, 0x01000000, 0xab5f000000ULL, 16 * MIB, F_W | F_G, SHORT_MASK);
    WKM(vmi, ttbr0, 0x02000000, 0x60300000, 4 * KIB, F_W | F_G, SHORT_MASK);
    WKM(vmi, ttbr0, 0x02010000, 0x60310000, 64 * KIB, F_W | F_NX | F_G, SHORT_MASK);
    WKM(vmi, ttbr0, 0x02020000, 0x60320000, 4 * KIB, F_U | F_G, SHORT_MASK);
    if (wk_(__FILE__, __LINE__, vmi, ttbr0, 0x02001abc, 0x60301abc, 4 * KIB, F_W | F_U | F_NX,
            SHORT_MASK, &w)) {
        CHECK_EQ(w.nlevels, 2);
        LV(&w, 0, L1, 0x020, 4, L2 | S_COARSE | (3u << 5));
        LV(&w, 1, L2, 1, 4, 0x60301000u | S_SMALL | S_XN_SMALL | S_AP0_PG | S_AP1_PG | S_NG_PG);
    }
    if (wk_(__FILE__, __LINE__, vmi, ttbr0, 0x01abcdef, 0xab5fabcdefULL, 16 * MIB, F_W | F_G,
            SHORT_MASK, &w)) {
        CHECK_EQ(w.nlevels, 1);
        LV(&w, 0, L1, 0x01a, 4, super);
    }
    w32(&g, L1 + 0x040 * 4, 0);
    w32(&g, L1 + 0x050 * 4, 0);
    vmi_flush_caches(vmi);
    PAGES(vmi, ttbr0, 0, 0xffffffffULL, want, SHORT_MASK, 0);

    /* TTBCR.N = 2: TTBR0 covers VA < 1 GiB with a 4 KiB table; TTBR1 the rest */
    test_context("aarch32 TTBCR.N=2");
    w32(&g, L1U + 0x001 * 4, 0x60400000u | S_SECTION | S_AP0_SEC);
    w32(&g, L1U + 0x3ff * 4, 0x60500000u | S_SECTION | S_AP0_SEC);
    w32(&g, L1K + 0xc00 * 4, 0x60000000u | S_SECTION | S_AP0_SEC);
    w32(&g, L1K + 0x400 * 4, 0x60800000u | S_SECTION | S_AP0_SEC);
    w32(&g, L1K + 0x001 * 4, 0x60600000u | S_SECTION | S_AP0_SEC); /* shadowed by TTBR0 */
    w32(&g, L1K + 0x002 * 4, 0x60700000u | S_SECTION | S_AP0_SEC); /* shadowed by TTBR0 */
    set_paging(vmi, VMI_PAGING_AARCH32, L1K, 2, 0);
    XL(vmi, L1U, 0x00100010, 0x60400010);
    XL(vmi, L1U, 0x3ff00010, 0x60500010);
    XL(vmi, L1U, 0x40000010, 0x60800010);
    XL(vmi, L1U, 0xc0001234, 0x60001234);
    XL(vmi, 0, 0xc0001234, 0x60001234);
    XL(vmi, L1U | 0x4a, 0x3ff00010, 0x60500010);
    XL_ERR(vmi, L1U, 0x00200000, ST(VMI_ERR_NOT_PRESENT));
    XL_ERR(vmi, L1U, 0x80000000, ST(VMI_ERR_NOT_PRESENT));
    if (wk_(__FILE__, __LINE__, vmi, L1U, 0x3ff00010, 0x60500010, 1 * MIB, F_W | F_G, SHORT_MASK,
            &w))
        LV(&w, 0, L1U, 0x3ff, 4, 0x60500000u | S_SECTION | S_AP0_SEC);
    if (wk_(__FILE__, __LINE__, vmi, L1U, 0xc0001234, 0x60001234, 1 * MIB, F_W | F_G, SHORT_MASK,
            &w))
        LV(&w, 0, L1K, 0xc00, 4, 0x60000000u | S_SECTION | S_AP0_SEC);
    PAGES(vmi, L1U, 0, 0xffffffffULL, want_split, SHORT_MASK, 0);

    test_context("aarch32 from regs");
    memset(&regs, 0, sizeof regs);
    regs.arch = VMI_ARCH_ARM;
    regs.valid = VMI_REGS_CONTROL;
    regs.arm.sctlr = 0x10c5387d; /* M set */
    regs.arm.ttbr0 = L1U;
    regs.arm.ttbr1 = L1K;
    regs.arm.ttbcr = 2;
    memset(&p, 0, sizeof p);
    CHECK_ST(vmi_paging_from_regs(&regs, &p), VMI_OK);
    CHECK_EQ(p.mode, VMI_PAGING_AARCH32);
    CHECK_EQ(p.dtb, L1K);
    CHECK_EQ(p.tcr, 2);
    regs.arm.ttbcr = 0;
    regs.arm.ttbr0 = ttbr0;
    CHECK_ST(vmi_paging_from_regs(&regs, &p), VMI_OK);
    CHECK_EQ(p.mode, VMI_PAGING_AARCH32);
    CHECK_EQ(p.dtb & ~0x3fffULL, L1);
    CHECK_ST(vmi_set_paging(vmi, &p), VMI_OK);
    {
        uint64_t pa = 0;
        CHECK_ST(vmi_translate_kva(vmi, 0x02001abc, &pa), VMI_OK);
        CHECK_EQ(pa, 0x60301abc);
    }
    regs.arm.ttbcr = 0x80020000u; /* EAE, T1SZ = 2 */
    CHECK_ST(vmi_paging_from_regs(&regs, &p), VMI_OK);
    CHECK_EQ(p.mode, VMI_PAGING_LPAE);
    CHECK_EQ(p.dtb, L1K);
    regs.arm.ttbcr = 0x80000000u; /* EAE, no split */
    CHECK_ST(vmi_paging_from_regs(&regs, &p), VMI_OK);
    CHECK_EQ(p.mode, VMI_PAGING_LPAE);
    CHECK_EQ(p.dtb & 0xfffff000ULL, L1);
    regs.arm.sctlr = 0x10c53878; /* M clear */
    CHECK_ST(vmi_paging_from_regs(&regs, &p), VMI_OK);
    CHECK_EQ(p.mode, VMI_PAGING_OFF);
    regs.valid = VMI_REGS_GPR;
    CHECK_ST(vmi_paging_from_regs(&regs, &p), VMI_ERR_NO_PAGING);
    vmi_close(vmi);
    g_free(&g);
}

/* ARMv7 LPAE (DDI 0406C B3.6): Linux's 3G/1G split. */
static void test_lpae(void)
{
    guest g;
    vmi_instance *vmi;
    vmi_walk w;
    const uint64_t L1U = 0x80001000, L2K = 0x80002000, L2U = 0x80003000, L3U = 0x80004000,
                   L3K = 0x80005000;
    const uint64_t ttbr0 = L1U | (7ULL << 48); /* ASID 7 */
    const uint64_t ttbcr = 0x80000000ULL | (2ULL << 16); /* EAE, T0SZ 0, T1SZ 2 */
    const vmi_page want[] = {
        {0x1000, 0x80100000, 4 * KIB, F_W | F_U | F_NX | F_PXN},
        {0x200000, 0x80200000, 2 * MIB, F_U},
        {0x40000000, 0xffc0000000ULL, 1 * GIB, F_W | F_G},
        {0xc0000000, 0x80000000, 2 * MIB, F_W | F_G},
        {0xc0205000, 0x80305000, 4 * KIB, F_NX | F_PXN | F_G},
    };

    test_context("lpae T1SZ=2");
    g_init(&g);
    g_add(&g, 0x80000000, 4 * MIB);
    w64(&g, L1U + 0, L2U | A_TABLE);
    w64(&g, L2U + 0, L3U | A_TABLE);
    w64(&g, L3U + 1 * 8, 0x80100000 | A_PAGE | A_AF | A_EL0 | A_NG | A_UXN | A_PXN);
    w64(&g, L3U + 2 * 8, 0x80102000 | 0x1 | A_AF); /* level 3 0b01: reserved, invalid */
    w64(&g, L2U + 1 * 8, 0x80200000 | A_BLOCK | A_AF | A_EL0 | A_RO | A_NG | (0xfULL << 55));
    w64(&g, L1U + 1 * 8, 0xffc0000000ULL | A_BLOCK | A_AF); /* 1 GiB at PA 0xff_c000_0000 */
    w64(&g, L1U + 3 * 8, 0 | A_BLOCK | A_AF); /* VA >= 0xc0000000 is TTBR1's: shadowed */
    w64(&g, L2K + 0, 0x80000000 | A_BLOCK | A_AF);
    w64(&g, L2K + 1 * 8, L3K | A_TABLE);
    w64(&g, L3K + 5 * 8, 0x80305000 | A_PAGE | A_AF | A_RO | A_UXN | A_PXN);
    vmi = g_open(&g, VMI_PAGING_LPAE, L2K, ttbcr, 0);

    CHECK_EQ(vmi_addr_width(vmi), 4);
    XL(vmi, ttbr0, 0x1abc, 0x80100abc);
    XL(vmi, ttbr0, 0x3fffff, 0x803fffff);
    XL(vmi, ttbr0, 0x7fffffff, 0xffffffffffULL);
    XL(vmi, ttbr0, 0x40000000, 0xffc0000000ULL);
    XL(vmi, ttbr0, 0xc0000000, 0x80000000);
    XL(vmi, ttbr0, 0xc01fffff, 0x801fffff);
    XL(vmi, ttbr0, 0xc0205abc, 0x80305abc);
    XL(vmi, 0, 0xc0205abc, 0x80305abc);
    XL_ERR(vmi, ttbr0, 0x2000, ANY_ERR);
    XL_ERR(vmi, ttbr0, 0x3000, ST(VMI_ERR_NOT_PRESENT));
    XL_ERR(vmi, ttbr0, 0x80000000, ST(VMI_ERR_NOT_PRESENT));
    XL_ERR(vmi, ttbr0, 0xffe00000, ST(VMI_ERR_NOT_PRESENT));
    XL_ERR(vmi, ttbr0, 0xc0400000, ST(VMI_ERR_NOT_PRESENT));
    WK(vmi, ttbr0, 0x1000, 0x80100000, 4 * KIB, F_W | F_U | F_NX | F_PXN);
    WK(vmi, ttbr0, 0x200000, 0x80200000, 2 * MIB, F_U);
    WK(vmi, ttbr0, 0x40000000, 0xffc0000000ULL, 1 * GIB, F_W | F_G);
    WK(vmi, ttbr0, 0xc0000000, 0x80000000, 2 * MIB, F_W | F_G);
    if (wk_(__FILE__, __LINE__, vmi, ttbr0, 0x1abc, 0x80100abc, 4 * KIB,
            F_W | F_U | F_NX | F_PXN, FLAGS_ALL, &w)) {
        CHECK_EQ(w.nlevels, 3);
        LV(&w, 0, L1U, 0, 8, L2U | A_TABLE);
        LV(&w, 1, L2U, 0, 8, L3U | A_TABLE);
        LV(&w, 2, L3U, 1, 8, 0x80100000 | A_PAGE | A_AF | A_EL0 | A_NG | A_UXN | A_PXN);
    }
    if (wk_(__FILE__, __LINE__, vmi, ttbr0, 0xc0205abc, 0x80305abc, 4 * KIB,
            F_NX | F_PXN | F_G, FLAGS_ALL, &w)) {
        CHECK_EQ(w.nlevels, 2);
        LV(&w, 0, L2K, 1, 8, L3K | A_TABLE);
        LV(&w, 1, L3K, 5, 8, 0x80305000 | A_PAGE | A_AF | A_RO | A_UXN | A_PXN);
    }
    PAGES(vmi, ttbr0, 0, 0xffffffffULL, want, FLAGS_ALL, 4 * KIB);

    test_context("lpae no split");
    set_paging(vmi, VMI_PAGING_LPAE, ttbr0, 0x80000000ULL, 0);
    XL(vmi, ttbr0, 0xc0000010, 0x10);
    XL(vmi, ttbr0, 0x1abc, 0x80100abc);
    vmi_close(vmi);
    g_free(&g);
}

/* ---- several processes: one kernel root, other roots per process ---------- */

static void test_processes(void)
{
    guest g;
    vmi_instance *vmi;
    uint64_t pa;
    const uint64_t A = 0x1000, B = 0x2000, K = 0x3000, PDPT = 0x4000, PDPTA = 0x5000,
                   PDPTB = 0x6000, PDPTT = 0x7000, PDT = 0x8000, PTTA = 0x9000, PTTB = 0xa000;
    int round;

    test_context("ia32e processes");
    g_init(&g);
    g_add(&g, 0, 1 * MIB);
    /* kernel half shared: PML4[0x100] in all three roots */
    w64(&g, K + 0x100 * 8, PDPT | 3);
    w64(&g, A + 0x100 * 8, PDPT | 3);
    w64(&g, B + 0x100 * 8, PDPT | 3);
    w64(&g, PDPT, 0x40000000 | X_PS | 3);
    /* user half differs */
    w64(&g, A + 0, PDPTA | 7);
    w64(&g, PDPTA, 0x80000000ULL | X_PS | 7);
    w64(&g, B + 0, PDPTB | 7);
    w64(&g, PDPTB, 0xc0000000ULL | X_PS | 7);
    /* the very last page of the address space differs too */
    w64(&g, A + 0x1ff * 8, PDPTT | 3);
    w64(&g, PDPTT + 0x1ff * 8, PDT | 3);
    w64(&g, PDT + 0x1ff * 8, PTTA | 3);
    w64(&g, PTTA + 0x1ff * 8, 0x11000 | 3);
    w64(&g, B + 0x1ff * 8, 0x10000 | 3); /* B: its own PDPT at 0x10000 */
    w64(&g, 0x10000 + 0x1ff * 8, 0x20000 | 3);
    w64(&g, 0x20000 + 0x1ff * 8, PTTB | 3);
    w64(&g, PTTB + 0x1ff * 8, 0x22000 | 3);
    vmi = g_open(&g, VMI_PAGING_IA32E, K, 0, VMI_PAGING_NXE);
    for (round = 0; round < 2; round++) { /* the second round runs on cached entries */
        XL(vmi, A, 0x1234, 0x80001234);
        XL(vmi, B, 0x1234, 0xc0001234);
        XL_ERR(vmi, K, 0x1234, ST(VMI_ERR_NOT_PRESENT));
        XL(vmi, A, 0xffff800000000010ULL, 0x40000010);
        XL(vmi, B, 0xffff800000000010ULL, 0x40000010);
        XL(vmi, A, 0xfffffffffffff000ULL, 0x11000);
        XL(vmi, B, 0xfffffffffffff000ULL, 0x22000);
        XL(vmi, A, 0xfffffffffffffff0ULL, 0x11ff0);
        pa = 0;
        CHECK_ST(vmi_translate(vmi, A, 0x1234, &pa), VMI_OK);
        CHECK_ST(vmi_translate(vmi, B, 0x1234, &pa), VMI_OK);
        CHECK_EQ(pa, 0xc0001234);
    }
    /* the last byte of the address space walks from the root given too */
    XL(vmi, A, 0xffffffffffffffffULL, 0x11fff);
    XL(vmi, B, 0xffffffffffffffffULL, 0x22fff);
    XL_ERR(vmi, K, 0xffffffffffffffffULL, ST(VMI_ERR_NOT_PRESENT));
    /* flushing one process leaves the other's translations right */
    w64(&g, PDPTA, 0x100000000ULL | X_PS | 7);
    vmi_flush_v2p(vmi, A);
    pa = 0;
    CHECK_ST(vmi_translate(vmi, A, 0x1234, &pa), VMI_OK);
    CHECK_EQ(pa, 0x100001234ULL);
    CHECK_ST(vmi_translate(vmi, B, 0x1234, &pa), VMI_OK);
    CHECK_EQ(pa, 0xc0001234);
    vmi_close(vmi);
    g_free(&g);
}

/* ---- modes without tables, registers -------------------------------------- */

static void test_off_and_regs(void)
{
    guest g;
    vmi_instance *vmi;
    uint64_t pa = 0;
    vmi_regs regs;
    vmi_paging p;

    test_context("paging off / unknown");
    g_init(&g);
    g_add(&g, 0, 1 * MIB);
    vmi = g_open(&g, VMI_PAGING_OFF, 0, 0, 0);
    XL(vmi, 0, 0x12345, 0x12345);
    vmi_close(vmi);
    vmi = g_open(&g, VMI_PAGING_UNKNOWN, 0, 0, 0);
    CHECK_ST(vmi_translate(vmi, 0, 0x1000, &pa), VMI_ERR_NO_PAGING);
    CHECK(vmi_last_error(vmi) && vmi_last_error(vmi)[0], "vmi_last_error empty after a failure");
    vmi_close(vmi);
    g_free(&g);

    test_context("x86 from regs");
    memset(&regs, 0, sizeof regs);
    regs.arch = VMI_ARCH_X86;
    regs.valid = VMI_REGS_CONTROL;
    regs.x86.cr0 = 0x80000011;
    regs.x86.cr3 = 0x1000;
    regs.x86.cr4 = 0;
    memset(&p, 0, sizeof p);
    CHECK_ST(vmi_paging_from_regs(&regs, &p), VMI_OK);
    CHECK_EQ(p.mode, VMI_PAGING_LEGACY);
    CHECK_EQ(p.flags & VMI_PAGING_NO_PSE, VMI_PAGING_NO_PSE);
    CHECK_EQ(p.dtb, 0x1000);
    regs.x86.cr4 = 0x10; /* PSE */
    CHECK_ST(vmi_paging_from_regs(&regs, &p), VMI_OK);
    CHECK_EQ(p.mode, VMI_PAGING_LEGACY);
    CHECK_EQ(p.flags & VMI_PAGING_NO_PSE, 0);
    regs.x86.cr4 = 0x30; /* PAE | PSE */
    regs.x86.efer = 0x800; /* NXE */
    regs.x86.cr3 = 0x1020;
    CHECK_ST(vmi_paging_from_regs(&regs, &p), VMI_OK);
    CHECK_EQ(p.mode, VMI_PAGING_PAE);
    CHECK_EQ(p.flags & VMI_PAGING_NXE, VMI_PAGING_NXE);
    CHECK_EQ(p.dtb, 0x1020);
    regs.x86.efer = 0;
    CHECK_ST(vmi_paging_from_regs(&regs, &p), VMI_OK);
    CHECK_EQ(p.flags & VMI_PAGING_NXE, 0);
    regs.arch = VMI_ARCH_X86_64;
    regs.x86.cr4 = 0x20;
    regs.x86.efer = 0x500; /* LME | LMA */
    regs.x86.cr3 = 0x1000;
    CHECK_ST(vmi_paging_from_regs(&regs, &p), VMI_OK);
    CHECK_EQ(p.mode, VMI_PAGING_IA32E);
    CHECK_EQ(p.flags & VMI_PAGING_NXE, 0);
    regs.x86.cr4 = 0x1020; /* LA57 */
    regs.x86.efer = 0xd00;
    regs.x86.cr3 = 0x2000 | 0x123; /* PCID */
    CHECK_ST(vmi_paging_from_regs(&regs, &p), VMI_OK);
    CHECK_EQ(p.mode, VMI_PAGING_LA57);
    CHECK_EQ(p.flags & VMI_PAGING_NXE, VMI_PAGING_NXE);
    CHECK_EQ(p.dtb & ~0xfffULL, 0x2000);
    regs.x86.cr0 = 0x00000011; /* PG clear */
    CHECK_ST(vmi_paging_from_regs(&regs, &p), VMI_OK);
    CHECK_EQ(p.mode, VMI_PAGING_OFF);
    regs.valid = VMI_REGS_GPR;
    regs.x86.cr0 = 0x80000011;
    CHECK_ST(vmi_paging_from_regs(&regs, &p), VMI_ERR_NO_PAGING);

    test_context("arm64 from regs");
    memset(&regs, 0, sizeof regs);
    regs.arch = VMI_ARCH_AARCH64;
    regs.valid = VMI_REGS_CONTROL;
    regs.arm64.sctlr = 0x30d00801; /* M */
    regs.arm64.ttbr0 = 0x41234000ULL | (3ULL << 48);
    regs.arm64.ttbr1 = 0x41000000ULL | (3ULL << 48);
    regs.arm64.tcr = TCR(16, 0, 16, 2) | (1ULL << 37);
    memset(&p, 0, sizeof p);
    CHECK_ST(vmi_paging_from_regs(&regs, &p), VMI_OK);
    CHECK_EQ(p.mode, VMI_PAGING_AARCH64);
    CHECK_EQ(p.dtb & 0x0000fffffffffffeULL, 0x41000000ULL);
    CHECK_EQ(p.tcr & 0xc03fc03fULL, TCR(16, 0, 16, 2));
    regs.arm64.sctlr = 0x30d00800;
    CHECK_ST(vmi_paging_from_regs(&regs, &p), VMI_OK);
    CHECK_EQ(p.mode, VMI_PAGING_OFF);
    regs.valid = VMI_REGS_GPR;
    CHECK_ST(vmi_paging_from_regs(&regs, &p), VMI_ERR_NO_PAGING);
}

/* ---- garbage tables ------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void garbage(vmi_paging_mode mode, uint64_t base, uint64_t tcr, int plausible)
{
    guest g;
    vmi_instance *vmi;
    uint64_t i, size = 1 * MIB, pa;
    uint8_t *h;
    vmi_status st;
    vmi_walk w;
    clock_t t0 = clock();
    uint32_t budgets[3] = {1, 64, 512};
    int b;

    test_context("garbage %s%s", vmi_paging_mode_name(mode), plausible ? " (plausible)" : "");
    g_init(&g);
    g_add(&g, base, size);
    h = g_host(&g, base, size);
    for (i = 0; i < size; i += 8) {
        uint64_t v = rnd();
        if (plausible) /* entries that point back into the garbage */
            v = (v & 0xfff0000000000fffULL) | (base + ((v >> 12) % size & ~0xfffULL));
        memcpy(h + i, &v, 8);
    }
    vmi = g_open(&g, mode, base + 0x4000, tcr, VMI_PAGING_NXE);
    for (b = 0; b < 3; b++) {
        memset(&g_pl, 0, sizeof g_pl);
        st = vmi_foreach_page(vmi, base + 0x8000, 0, ~0ULL, budgets[b], collect, &g_pl);
        CHECK(st == VMI_OK || st == VMI_ERR_LIMIT,
              "foreach with max_tables %u: expected ok or limit, got %s", budgets[b],
              vmi_status_string(st));
        CHECK(g_pl.calls <= (unsigned long)budgets[b] * 8192,
              "max_tables %u but %lu pages reported", budgets[b], g_pl.calls);
    }
    for (i = 0; i < 2000; i++) {
        uint64_t va = rnd();
        if (i & 1)
            va = (i & 2) ? va | 0xffff000000000000ULL : va & 0x0000ffffffffffffULL;
        st = vmi_translate(vmi, base + 0x4000, va, &pa);
        CHECK(st < VMI_STATUS_COUNT, "translate of garbage: status %d", (int)st);
        memset(&w, 0, sizeof w);
        st = vmi_translate_walk(vmi, base + 0x4000, va, &w);
        CHECK(w.nlevels <= VMI_WALK_MAX_LEVELS, "walk of garbage: nlevels %u", w.nlevels);
    }
    CHECK((clock() - t0) / CLOCKS_PER_SEC < 20, "garbage took %ld s",
          (long)((clock() - t0) / CLOCKS_PER_SEC));
    vmi_close(vmi);
    g_free(&g);
}

static void test_garbage(void)
{
    int plausible;
    for (plausible = 0; plausible < 2; plausible++) {
        garbage(VMI_PAGING_LEGACY, 0, 0, plausible);
        garbage(VMI_PAGING_PAE, 0, 0, plausible);
        garbage(VMI_PAGING_IA32E, 0, 0, plausible);
        garbage(VMI_PAGING_LA57, 0, 0, plausible);
        garbage(VMI_PAGING_AARCH64, 0x40000000, TCR(16, 0, 16, 2), plausible);
        garbage(VMI_PAGING_AARCH64, 0x40000000, TCR(16, 1, 16, 3), plausible);
        garbage(VMI_PAGING_AARCH64, 0x40000000, TCR(17, 2, 17, 1), plausible);
        garbage(VMI_PAGING_AARCH32, 0x40000000, 0, plausible);
        garbage(VMI_PAGING_AARCH32, 0x40000000, 3, plausible);
        garbage(VMI_PAGING_LPAE, 0x40000000, 0x80020000ULL, plausible);
    }
}

/* ---- reads over runs of pages ---------------------------------------------
   vmi_read_va reads a run of last-level entries after one walk and caches
   the run; the bytes, the count done and the status must be those of a
   translation per page. 64 pages around a last-level table boundary T in
   every mode, page k at T + (k - 24) pages: k 5 not present, k 9
   read-only, k 13 elsewhere, k 16-18 into a hole of physical memory, k 30
   a transition PTE (x86), k 40-55 one 64 KiB page (aarch32); the others
   contiguous from RUN_DATA. A second pass moves the table after T out of
   guest memory. */
typedef struct run_mode {
    vmi_paging_mode mode;
    const char *name;
    unsigned nlevels, esize, shift[5], bits[5];
    uint32_t flags;
} run_mode;

#define RUN_T 0x800000ULL
#define RUN_DATA 0x108000ULL /* + 40 pages: 64 KiB aligned */
#define RUN_PAGES 64
enum { RUN_RW, RUN_RO, RUN_NONE, RUN_TRANS, RUN_LARGE };

static int run_short(const run_mode *m) { return m->mode == VMI_PAGING_AARCH32; }
static int run_long(const run_mode *m)
{
    return m->mode == VMI_PAGING_AARCH64 || m->mode == VMI_PAGING_LPAE;
}

static uint64_t run_table_entry(const run_mode *m, unsigned l, uint64_t pa)
{
    if (run_short(m))
        return pa | 1;
    if (run_long(m))
        return pa | A_TABLE;
    return m->mode == VMI_PAGING_PAE && l == 0 ? pa | X_P : pa | X_US | X_RW | X_P;
}

static uint64_t run_leaf(const run_mode *m, uint64_t pa, int kind)
{
    if (kind == RUN_NONE)
        return 0;
    if (run_short(m)) /* AP 0b011 full access, AP[2] (bit 9) read-only */
        return kind == RUN_LARGE ? (pa & ~0xffffULL) | 0x31
                                 : pa | 0x32 | (kind == RUN_RO ? 0x200 : 0);
    if (run_long(m))
        return pa | A_PAGE | A_AF | A_EL0 | (kind == RUN_RO ? A_RO : 0);
    if (kind == RUN_TRANS)
        return pa | 0x800;
    return pa | X_US | X_P | (kind == RUN_RO ? 0 : X_RW);
}

/* Address of the level `level` entry for va, making tables on the way. */
static uint64_t run_slot(guest *g, const run_mode *m, uint64_t root, uint64_t va, unsigned level)
{
    uint64_t table = root;
    unsigned l;
    for (l = 0;; l++) {
        uint64_t at = table + ((va >> m->shift[l]) & ((1ULL << m->bits[l]) - 1)) * m->esize, e;
        if (l == level)
            return at;
        e = m->esize == 4 ? *(uint32_t *)g_host(g, at, 4) : *(uint64_t *)g_host(g, at, 8);
        if (!e) {
            uint64_t size = (uint64_t)m->esize << m->bits[l + 1];
            e = run_table_entry(m, l, g_alloc(g, size < 4096 ? 4096 : size));
            if (m->esize == 4)
                w32(g, at, (uint32_t)e);
            else
                w64(g, at, e);
        }
        table = run_short(m) ? e & 0xfffffc00ULL : e & 0xffffffff000ULL;
    }
}

/* The last-level entry of va. */
static void run_put(guest *g, const run_mode *m, uint64_t root, uint64_t va, uint64_t e)
{
    uint64_t at = run_slot(g, m, root, va, m->nlevels - 1);
    if (m->esize == 4)
        w32(g, at, (uint32_t)e);
    else
        w64(g, at, e);
}

static void run_map(guest *g, const run_mode *m, uint64_t root)
{
    unsigned k;
    for (k = 0; k < RUN_PAGES; k++) {
        uint64_t va = RUN_T + ((uint64_t)k << 12) - (24 << 12), pa = RUN_DATA + ((uint64_t)k << 12);
        int kind = k == 5 ? RUN_NONE : k == 9 ? RUN_RO : RUN_RW;
        if (k == 13)
            pa += 0x80000;
        if (k >= 16 && k <= 18)
            pa = 0x3fe000 + ((uint64_t)(k - 16) << 12); /* memory ends at 4 MiB */
        if (k == 30 && !run_short(m) && !run_long(m))
            kind = RUN_TRANS;
        if (k >= 40 && k <= 55 && run_short(m))
            kind = RUN_LARGE;
        run_put(g, m, root, va, run_leaf(m, pa, kind));
    }
}

static uint8_t run_exp[RUN_PAGES * 4096 + 8192], run_buf[RUN_PAGES * 4096 + 8192];

/* What a translation per page gives: the walker, then physical reads. */
static vmi_status run_expect(vmi_instance *vmi, uint64_t dtb, uint64_t va, size_t len, size_t *done)
{
    *done = 0;
    while (*done < len) {
        uint64_t at = va + *done;
        size_t n = (size_t)(4096 - (at & 0xfff)), d = 0;
        vmi_walk w;
        vmi_status st = vmi_translate_walk(vmi, dtb, at, &w);
        if (st != VMI_OK)
            return st;
        if (n > len - *done)
            n = len - *done;
        st = vmi_read_pa(vmi, w.pa, run_exp + *done, n, &d);
        *done += d;
        if (st != VMI_OK)
            return st;
    }
    return VMI_OK;
}

static void run_case(vmi_instance *vmi, uint64_t dtb, uint64_t va, size_t len, const char *state)
{
    size_t want = 0, done = 12345;
    vmi_status est = run_expect(vmi, dtb, va, len, &want);
    vmi_status st = vmi_read_va(vmi, dtb, va, run_buf, len, &done);
    if (!CHECK(st == est && done == want,
               "read_va(0x%" PRIx64 ", 0x%lx) %s: expected %s done 0x%lx, got %s done 0x%lx", va,
               (unsigned long)len, state, vmi_status_string(est), (unsigned long)want,
               vmi_status_string(st), (unsigned long)done))
        return;
    CHECK(!memcmp(run_buf, run_exp, want), "read_va(0x%" PRIx64 ", 0x%lx) %s: bytes differ", va,
          (unsigned long)len, state);
}

static void run_reads(vmi_instance *vmi, uint64_t dtb)
{
    static const size_t lens[] = {1, 0xfff, 0x1000, 0x1001, 0x2345, 0x8000, 0x10000, 0x21000,
                                  RUN_PAGES * 4096 + 4096};
    uint64_t lo = RUN_T - (26 << 12), hi = RUN_T + ((RUN_PAGES - 22) << 12), va;
    size_t i;
    for (va = lo; va < hi; va += 0xfc1)
        for (i = 0; i < sizeof lens / sizeof lens[0]; i++) {
            vmi_flush_caches(vmi);
            run_case(vmi, dtb, va, lens[i], "cold");
            run_case(vmi, dtb, va, lens[i], "cached");
        }
    for (va = lo; va < hi; va += 0x1f3) /* whatever earlier reads left cached */
        run_case(vmi, dtb, va, 0x6000 + (size_t)(va & 0x3000), "mixed");
    vmi_flush_caches(vmi);
    for (va = lo; va < hi; va += 4096) { /* one-page entries first */
        uint64_t pa;
        vmi_translate(vmi, dtb, va, &pa);
    }
    for (va = lo; va < hi; va += 0x7c1)
        run_case(vmi, dtb, va, 0x9000, "after per-page translations");
}

static void test_runs(void)
{
    static const run_mode modes[] = {
        {VMI_PAGING_LEGACY, "legacy", 2, 4, {22, 12}, {10, 10}, 0},
        {VMI_PAGING_LEGACY, "legacy, transition PTEs", 2, 4, {22, 12}, {10, 10}, VMI_PAGING_WIN_TRANSITION},
        {VMI_PAGING_PAE, "pae", 3, 8, {30, 21, 12}, {2, 9, 9}, VMI_PAGING_NXE},
        {VMI_PAGING_IA32E, "ia32e", 4, 8, {39, 30, 21, 12}, {9, 9, 9, 9}, VMI_PAGING_NXE},
        {VMI_PAGING_IA32E, "ia32e, transition PTEs", 4, 8, {39, 30, 21, 12}, {9, 9, 9, 9},
         VMI_PAGING_NXE | VMI_PAGING_WIN_TRANSITION},
        {VMI_PAGING_LA57, "la57", 5, 8, {48, 39, 30, 21, 12}, {9, 9, 9, 9, 9}, VMI_PAGING_NXE},
        {VMI_PAGING_AARCH64, "aarch64", 4, 8, {39, 30, 21, 12}, {9, 9, 9, 9}, 0},
        {VMI_PAGING_AARCH32, "aarch32", 2, 4, {20, 12}, {12, 8}, 0},
        {VMI_PAGING_LPAE, "lpae", 3, 8, {30, 21, 12}, {2, 9, 9}, 0},
    };
    size_t m;
    for (m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        guest g;
        vmi_instance *vmi;
        vmi_cache_stats c0, c1;
        uint64_t root, slot, reach, i, *h;
        test_context("runs, %s", modes[m].name);
        g_init(&g);
        g_add(&g, 0, 4 * MIB);
        g_add(&g, 5 * MIB, 1 * MIB);
        h = (uint64_t *)g_host(&g, 0, 4 * MIB);
        for (i = 0; i < 4 * MIB / 8; i++)
            h[i] = i * 0x9e3779b97f4a7c15ULL;
        g.next = 0x10000;
        root = g_alloc(&g, 16 * KIB);
        run_map(&g, &modes[m], root);
        vmi = g_open(&g, modes[m].mode, root, 0, modes[m].flags);
        run_reads(vmi, root);

        /* pages 31-39: one walk, then one lookup */
        vmi_flush_caches(vmi);
        c0 = vmi_get_cache_stats(vmi);
        CHECK_ST(vmi_read_va(vmi, root, RUN_T + (7 << 12) + 5, run_buf, 9 * 4096 - 5, NULL), VMI_OK);
        c1 = vmi_get_cache_stats(vmi);
        CHECK(c1.walks - c0.walks == 1, "9 contiguous pages: expected 1 walk, got %" PRIu64,
              c1.walks - c0.walks);
        CHECK_ST(vmi_read_va(vmi, root, RUN_T + (7 << 12) + 5, run_buf, 9 * 4096 - 5, NULL), VMI_OK);
        c0 = vmi_get_cache_stats(vmi);
        CHECK(c0.walks == c1.walks && c0.v2p_hits - c1.v2p_hits == 1,
              "9 contiguous pages again: expected 0 walks and 1 hit, got %" PRIu64 " and %" PRIu64,
              c0.walks - c1.walks, c0.v2p_hits - c1.v2p_hits);

        /* a run that reads on past its table would wrap to entry 0: a decoy
           there continues page 23, while page 24 moves elsewhere */
        test_context("runs, %s, a decoy at entry 0 of the table before T", modes[m].name);
        reach = 1ULL << (modes[m].shift[modes[m].nlevels - 1] + modes[m].bits[modes[m].nlevels - 1]);
        run_put(&g, &modes[m], root, RUN_T - reach, run_leaf(&modes[m], RUN_DATA + (24 << 12), RUN_RW));
        run_put(&g, &modes[m], root, RUN_T, run_leaf(&modes[m], RUN_DATA + (24 << 12) + 0x80000, RUN_RW));
        run_reads(vmi, root);

        test_context("runs, %s, the table after T outside memory", modes[m].name);
        slot = run_slot(&g, &modes[m], root, RUN_T, modes[m].nlevels - 2u);
        if (modes[m].esize == 4)
            w32(&g, slot, (uint32_t)run_table_entry(&modes[m], modes[m].nlevels - 2u, 0x480000));
        else
            w64(&g, slot, run_table_entry(&modes[m], modes[m].nlevels - 2u, 0x480000));
        run_reads(vmi, root);
        vmi_close(vmi);
        g_free(&g);
    }
}

/* Windows transition PTEs (Windows Internals, 7th ed., ch. 5 "Page files"
   and MMPTE_TRANSITION in the public PDB layouts): P=0, Transition (bit 11)
   set, Prototype (bit 10) clear: the frame still holds the page. Resolved
   only under VMI_PAGING_WIN_TRANSITION; a prototype or a plain not-present
   entry stays unmapped. */
static void test_transition(void)
{
    static const struct { vmi_paging_mode mode; const char *name; } modes[] = {
        {VMI_PAGING_LEGACY, "legacy"}, {VMI_PAGING_PAE, "pae"}, {VMI_PAGING_IA32E, "ia32e"}};
    size_t m;
    for (m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        guest g;
        vmi_instance *vmi;
        uint64_t root, pt, va = 0x00401000, pa_t = 0x77000, pa_p = 0x78000, got = 0;
        int legacy = modes[m].mode == VMI_PAGING_LEGACY, pae = modes[m].mode == VMI_PAGING_PAE;
        test_context("transition PTEs, %s", modes[m].name);
        g_init(&g);
        g_add(&g, 0, 1 * MIB);
        g.next = 0x10000;
        pt = g_alloc(&g, 4096);
        if (legacy) {
            root = g_alloc(&g, 4096);
            w32(&g, root + 4 * (va >> 22), (uint32_t)pt | 0x7);
            w32(&g, pt + 4 * ((va >> 12) & 0x3ff), (uint32_t)pa_t | 0x800 | 0x60);        /* transition */
            w32(&g, pt + 4 * (((va >> 12) + 1) & 0x3ff), (uint32_t)pa_p | 0xc00);        /* prototype */
            w32(&g, pt + 4 * (((va >> 12) + 2) & 0x3ff), (uint32_t)pa_p);                /* demand zero-ish */
        } else {
            uint64_t pd = g_alloc(&g, 4096);
            if (pae) {
                root = g_alloc(&g, 4096);
                w64(&g, root, pd | 1);
            } else {
                uint64_t pdpt = g_alloc(&g, 4096);
                root = g_alloc(&g, 4096);
                w64(&g, root, pdpt | 7);
                w64(&g, pdpt, pd | 7);
            }
            w64(&g, pd + 8 * ((va >> 21) & 0x1ff), pt | 7);
            w64(&g, pt + 8 * ((va >> 12) & 0x1ff), pa_t | 0x800 | 0x60);
            w64(&g, pt + 8 * (((va >> 12) + 1) & 0x1ff), pa_p | 0xc00);
            w64(&g, pt + 8 * (((va >> 12) + 2) & 0x1ff), pa_p);
        }
        vmi = g_open(&g, modes[m].mode, root, 0, 0);
        XL_ERR(vmi, root, va, ST(VMI_ERR_NOT_PRESENT)); /* Linux: a swap entry, not a frame */
        set_paging(vmi, modes[m].mode, root, 0, VMI_PAGING_WIN_TRANSITION);
        XL(vmi, root, va + 0x123, pa_t + 0x123);
        XL_ERR(vmi, root, va + 0x1000, ST(VMI_ERR_NOT_PRESENT));
        XL_ERR(vmi, root, va + 0x2000, ST(VMI_ERR_NOT_PRESENT));
        CHECK_ST(vmi_translate(vmi, root, va, &got), VMI_OK);
        vmi_close(vmi);
        g_free(&g);
    }
}

int main(void)
{
    test_legacy();
    test_pae();
    test_ia32e();
    test_la57();
    test_aarch64_4k();
    test_aarch64_39();
    test_aarch64_16k();
    test_aarch64_64k();
    test_aarch64_tbi();
    test_aarch32();
    test_lpae();
    test_processes();
    test_off_and_regs();
    test_garbage();
    test_transition();
    test_runs();
    return test_summary();
}
