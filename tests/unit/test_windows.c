/* Windows OS layer tests.

   usage: test_windows [WINE64_DIR WINE32_DIR [SYNTH_DIR]]

   1. The PE reader on real PE files (Debian's libwine: ntoskrnl.exe and
      hal.dll, x86_64 and i386), laid out as the loader maps them, against
      objdump's reading of the same files; then mutated (counts beyond the
      caps, tables outside the image, pages missing).
   2. A hand-built x64 Windows 7 SP1 guest around wine's ntoskrnl.exe: the
      low-memory start block, a KDBG block, EPROCESSes, the loaded-module
      list, a process's PEB with its loader list and parameters, one page
      behind a transition PTE; then the same guest with the KDBG tag wiped
      (found again through the PsInitialSystemProcess export).
   3. With SYNTH_DIR: the synthetic Windows images of tests/windows/synth.py
      (see test_synth below). */
#define _POSIX_C_SOURCE 200809L
#define VMI_IMPLEMENTATION
#include "vmi.h"
#include "vmi_file.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* ---- PE files, laid out as loaded ----------------------------------------- */

static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

/* The file's headers and sections at their RVAs in a zeroed image. */
static uint8_t *pe_layout(const uint8_t *f, size_t n, uint32_t *size)
{
    uint32_t nt = rd32(f + 0x3c), opt = nt + 24, nsec = rd16(f + nt + 6), optsize = rd16(f + nt + 20), i;
    uint32_t hdrs = rd32(f + opt + 60);
    uint8_t *img;
    *size = rd32(f + opt + 56);
    img = (uint8_t *)calloc(1, *size);
    if (!img || hdrs > n || hdrs > *size)
        abort();
    memcpy(img, f, hdrs);
    for (i = 0; i < nsec; i++) {
        const uint8_t *s = f + opt + optsize + 40 * i;
        uint32_t va = rd32(s + 12), raw = rd32(s + 16), off = rd32(s + 20);
        if (raw > *size - va)
            raw = *size - va;
        if (off <= n && raw <= n - off)
            memcpy(img + va, f + off, raw);
    }
    return img;
}

/* objdump's view: named exports and the number of forwarders. */
typedef struct names {
    char **v;
    size_t n, forwarders, slots;
} names;

static void names_add(names *s, const char *name)
{
    s->v = (char **)realloc(s->v, (s->n + 1) * sizeof *s->v);
    s->v[s->n++] = strdup(name);
}

static void names_free(names *s)
{
    size_t i;
    for (i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof *s);
}

static int names_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int objdump_exports(const char *path, names *out)
{
    char cmd[1200], line[1024];
    FILE *p;
    int in_names = 0;
    memset(out, 0, sizeof *out);
    snprintf(cmd, sizeof cmd, "objdump -p '%s' 2>/dev/null", path);
    if (!(p = popen(cmd, "r")))
        return 0;
    while (fgets(line, sizeof line, p)) {
        char name[512];
        unsigned idx;
        if (strstr(line, "[Ordinal/Name Pointer] Table")) {
            in_names = 1;
            continue;
        }
        if (strstr(line, "Forwarder RVA"))
            out->forwarders++;
        if (strstr(line, "Export RVA") || strstr(line, "Forwarder RVA"))
            out->slots++;
        if (in_names && sscanf(line, " [%u] %511s", &idx, name) == 2)
            names_add(out, name);
        else if (in_names && line[0] != '\t')
            in_names = 0;
    }
    pclose(p);
    if (out->n)
        qsort(out->v, out->n, sizeof *out->v, names_cmp);
    return out->n > 0;
}

typedef struct exp_seen {
    names named;
    size_t forwarders, by_ordinal, total;
    uint32_t min_rva, max_rva;
} exp_seen;

static int exp_collect(void *user, const vmi__pe_export *e)
{
    exp_seen *s = (exp_seen *)user;
    s->total++;
    if (e->forwarder)
        s->forwarders++;
    else if (!s->min_rva || e->rva < s->min_rva)
        s->min_rva = e->rva;
    if (e->rva > s->max_rva)
        s->max_rva = e->rva;
    if (e->name)
        names_add(&s->named, e->name);
    else
        s->by_ordinal++;
    return 0;
}

static vmi_instance *open_flat(vmi_mem_range *r, size_t n)
{
    vmi_desc desc;
    vmi_instance *vmi = NULL;
    memset(&desc, 0, sizeof desc);
    vmi_backend_buffer(&desc.backend, r, n);
    desc.paging.mode = VMI_PAGING_OFF;
    if (vmi_open(&desc, &vmi) != VMI_OK)
        abort();
    return vmi;
}

#define IMG_BASE 0x100000ull

static vmi_status pe_exports_of(uint8_t *img, uint32_t size, exp_seen *s, vmi__pe *pe, char *err, size_t errcap)
{
    vmi_mem_range r;
    vmi_instance *vmi;
    vmi_status st;
    memset(s, 0, sizeof *s);
    memset(&r, 0, sizeof r);
    r.pa = IMG_BASE;
    r.size = size;
    r.host = img;
    vmi = open_flat(&r, 1);
    st = vmi__pe_open(vmi, 0, IMG_BASE, pe);
    if (st == VMI_OK)
        st = vmi__pe_exports(vmi, pe, NULL, 0, exp_collect, s);
    snprintf(err, errcap, "%s", vmi_last_error(vmi));
    vmi_close(vmi);
    if (s->named.n)
        qsort(s->named.v, s->named.n, sizeof *s->named.v, names_cmp);
    return st;
}

static void pe_file_mutations(const char *label, const uint8_t *img0, uint32_t size, const vmi__pe *pe0)
{
    uint8_t *img = (uint8_t *)malloc(size);
    exp_seen s;
    vmi__pe pe;
    char err[256];
    uint32_t e = pe0->exp_rva, nt = rd32(img0 + 0x3c);
    vmi_status st;

    test_context("%s: NumberOfNames beyond the cap", label);
    memcpy(img, img0, size);
    img[e + 24] = img[e + 25] = img[e + 26] = img[e + 27] = 0xff;
    CHECK_ST(pe_exports_of(img, size, &s, &pe, err, sizeof err), VMI_ERR_LIMIT);
    CHECK(strstr(err, "cap") != NULL, "error names the cap: \"%s\"", err);
    names_free(&s.named);

    test_context("%s: name table outside the image", label);
    memcpy(img, img0, size);
    img[e + 32] = img[e + 33] = img[e + 34] = 0xf0;
    img[e + 35] = 0x7f;
    CHECK_ST(pe_exports_of(img, size, &s, &pe, err, sizeof err), VMI_ERR_FORMAT);
    names_free(&s.named);

    test_context("%s: name RVAs garbage", label);
    memcpy(img, img0, size);
    {
        uint32_t names_rva = rd32(img + e + 32), i, nn = rd32(img + e + 24);
        for (i = 0; i < nn; i += 2) /* every other name points outside */
            img[names_rva + 4 * i + 3] = 0x7f;
        st = pe_exports_of(img, size, &s, &pe, err, sizeof err);
        CHECK_ST(st, VMI_OK);
        CHECK_EQ(s.named.n, nn / 2);
    }
    names_free(&s.named);

    test_context("%s: e_lfanew past the header page", label);
    memcpy(img, img0, size);
    img[0x3c] = 0xf0, img[0x3d] = 0xff;
    CHECK_ST(pe_exports_of(img, size, &s, &pe, err, sizeof err), VMI_ERR_FORMAT);

    test_context("%s: SizeOfImage of zero", label);
    memcpy(img, img0, size);
    memset(img + nt + 24 + 56, 0, 4);
    CHECK_ST(pe_exports_of(img, size, &s, &pe, err, sizeof err), VMI_ERR_FORMAT);

    test_context("%s: 200 sections", label);
    memcpy(img, img0, size);
    img[nt + 6] = 200, img[nt + 7] = 0;
    CHECK_ST(pe_exports_of(img, size, &s, &pe, err, sizeof err), VMI_ERR_FORMAT);
    free(img);
}

/* The page holding the name-pointer table missing: the rest still reads. */
static void pe_file_hole(const char *label, uint8_t *img, uint32_t size, const vmi__pe *pe0, size_t want_named)
{
    uint32_t names_rva = rd32(img + pe0->exp_rva + 32), hole = (names_rva + 0xfff) & ~0xfffu;
    vmi_mem_range r[2];
    vmi_instance *vmi;
    vmi__pe pe;
    exp_seen s;
    test_context("%s: page 0x%x of the name table missing", label, hole);
    if (hole + 0x1000 >= size || rd32(img + pe0->exp_rva + 24) * 4 + names_rva <= hole) {
        CHECK(1, "%s", "name table within one page: nothing to cut");
        return;
    }
    memset(r, 0, sizeof r);
    memset(&s, 0, sizeof s);
    r[0].pa = IMG_BASE, r[0].size = hole, r[0].host = img;
    r[1].pa = IMG_BASE + hole + 0x1000, r[1].size = size - hole - 0x1000, r[1].host = img + hole + 0x1000;
    vmi = open_flat(r, 2);
    CHECK_ST(vmi__pe_open(vmi, 0, IMG_BASE, &pe), VMI_OK);
    CHECK_ST(vmi__pe_exports(vmi, &pe, NULL, 0, exp_collect, &s), VMI_OK);
    CHECK(s.named.n > 0 && s.named.n + 1024 / 4 <= want_named + 1,
          "expected fewer than %zu named exports (1024 names per page lost), got %zu", want_named, s.named.n);
    vmi_close(vmi);
    names_free(&s.named);
}

static void test_pe_file(const char *dir, const char *sub, const char *file)
{
    char path[1024], err[256], label[128];
    size_t n = 0, i;
    uint8_t *f, *img;
    uint32_t size;
    names want;
    exp_seen got;
    vmi__pe pe;
    snprintf(path, sizeof path, "%s/%s/%s", dir, sub, file);
    snprintf(label, sizeof label, "%s %s", sub, file);
    test_context("PE reader: %s", label);
    if (!(f = (uint8_t *)test_slurp(path, &n))) {
        CHECK(0, "cannot read %s", path);
        return;
    }
    if (!objdump_exports(path, &want)) {
        CHECK(0, "objdump -p %s listed no exports", path);
        free(f);
        return;
    }
    img = pe_layout((const uint8_t *)f, n, &size);
    CHECK_ST(pe_exports_of(img, size, &got, &pe, err, sizeof err), VMI_OK);
    CHECK_EQ(pe.is64, strstr(sub, "x86_64") != NULL);
    CHECK_EQ(got.named.n, want.n);
    CHECK_EQ(got.forwarders, want.forwarders);
    CHECK_EQ(got.total, want.slots);
    for (i = 0; i < got.named.n && i < want.n; i++)
        if (!CHECK_STR(got.named.v[i], want.v[i]))
            break;
    {
        char dll[64];
        vmi_mem_range r;
        vmi_instance *vmi;
        memset(&r, 0, sizeof r);
        r.pa = IMG_BASE, r.size = size, r.host = img;
        vmi = open_flat(&r, 1);
        CHECK_ST(vmi__pe_open(vmi, 0, IMG_BASE, &pe), VMI_OK);
        CHECK_ST(vmi__pe_dll_name(vmi, &pe, dll, sizeof dll), VMI_OK);
        CHECK_STR(dll, file);
        vmi_close(vmi);
    }
    pe_file_mutations(label, img, size, &pe);
    pe_file_hole(label, img, size, &pe, want.n);
    names_free(&got.named);
    names_free(&want);
    free(img);
    free(f);
}

/* ---- CodeView ---------------------------------------------------------------- */

static void test_codeview(void)
{
    uint8_t rec[64];
    vmi__pe_cv cv;
    static const uint8_t guid[16] = {0xb9, 0xdb, 0x44, 0x38, 0x17, 0x20, 0x67, 0x49,
                                     0xbe, 0x7a, 0xa4, 0xa2, 0xc2, 0x04, 0x30, 0xfa};
    test_context("CodeView RSDS record");
    memset(rec, 0, sizeof rec);
    memcpy(rec, "RSDS", 4);
    memcpy(rec + 4, guid, 16);
    rec[20] = 2;
    memcpy(rec + 24, "d:\\build\\ntkrnlmp.pdb", 22);
    memset(&cv, 0, sizeof cv);
    CHECK(vmi__pe_rsds(rec, 24 + 22, &cv), "%s", "RSDS record parses");
    CHECK_STR(cv.pdb, "ntkrnlmp.pdb");
    CHECK_STR(cv.id, "3844DBB920174967BE7AA4A2C20430FA2");
    CHECK(!vmi__pe_rsds(rec, 24 + 21, &cv), "%s", "a name without its NUL inside the record is refused");
    memcpy(rec, "NB10", 4);
    CHECK(!vmi__pe_rsds(rec, 24 + 22, &cv), "%s", "not RSDS: refused");
}

/* ---- hand-built Windows 7 SP1 guests: x64, x86 PAE, x86 -------------------- */

/* One guest layout per architecture. EPROCESS offsets: Windows 7 SP1 as the
   public PDB layouts give them (ntdiff/headers); LDR/PEB heads per word
   size. */
typedef struct warch {
    const char *name, *wine_sub;
    vmi_paging_mode mode;
    unsigned ptr;
    uint64_t kbase, pool, user, hal;
    uint16_t dtb, pid, links, ppid, iname, peb, create, threads;
    uint8_t ldr_base, ldr_size, ldr_full, ldr_name, peb_ldr, peb_params, ldr_list, p_image, p_cmd;
} warch;

static const warch warchs[] = {
    {"x64", "x86_64-windows", VMI_PAGING_IA32E, 8, 0xfffff80002600000ull, 0xfffffa8000100000ull, 0x7fffffd0000ull,
     0xfffff80002e00000ull, 0x28, 0x180, 0x188, 0x290, 0x2e0, 0x338, 0x168, 0x328,
     0x30, 0x40, 0x48, 0x58, 0x18, 0x20, 0x10, 0x60, 0x70},
    {"x86 PAE", "i386-windows", VMI_PAGING_PAE, 4, 0x82600000ull, 0x84100000ull, 0x7ffd0000ull, 0x82e00000ull,
     0x18, 0xb4, 0xb8, 0x140, 0x16c, 0x1a8, 0xa0, 0x198,
     0x18, 0x20, 0x24, 0x2c, 0x0c, 0x10, 0x0c, 0x38, 0x40},
    {"x86", "i386-windows", VMI_PAGING_LEGACY, 4, 0x82600000ull, 0x84100000ull, 0x7ffd0000ull, 0x82e00000ull,
     0x18, 0xb4, 0xb8, 0x140, 0x16c, 0x1a8, 0xa0, 0x198,
     0x18, 0x20, 0x24, 0x2c, 0x0c, 0x10, 0x0c, 0x38, 0x40},
};

#define RAM (16u << 20)
#define KPA 0x400000ull
#define POOL_PA 0xa00000ull
#define USER_PA 0xc00000ull
#define ROOT_PA 0x187000ull /* PML4, PDPT (PAE) or page directory */

typedef struct wguest {
    const warch *a;
    uint8_t *ram;
    uint64_t next_table, root;
    vmi_mem_range r;
    uint64_t ps_head, mod_head, kdbg_pa, build_pa;
} wguest;

static void wq(wguest *g, uint64_t pa, uint64_t v) { memcpy(g->ram + pa, &v, 8); }
static uint64_t rq(wguest *g, uint64_t pa) { uint64_t v; memcpy(&v, g->ram + pa, 8); return v; }
static void wd(wguest *g, uint64_t pa, uint32_t v) { memcpy(g->ram + pa, &v, 4); }
static uint32_t rd(wguest *g, uint64_t pa) { uint32_t v; memcpy(&v, g->ram + pa, 4); return v; }

static uint64_t new_table(wguest *g)
{
    uint64_t t = g->next_table;
    g->next_table += 0x1000;
    return t;
}

static uint64_t table_at(wguest *g, uint64_t table, unsigned index)
{
    uint64_t e = rq(g, table + 8 * index);
    if (!(e & 1))
        wq(g, table + 8 * index, e = new_table(g) | 0x63);
    return e & 0x000ffffffffff000ull;
}

/* The PTE's physical address for va, tables made as needed. */
static uint64_t pte_pa(wguest *g, uint64_t va)
{
    uint64_t t = g->root;
    if (g->a->mode == VMI_PAGING_LEGACY) {
        uint32_t e = rd(g, t + 4 * (va >> 22));
        if (!(e & 1))
            wd(g, t + 4 * (va >> 22), (uint32_t)(e = (uint32_t)new_table(g) | 0x63));
        return (e & 0xfffff000u) + 4 * ((va >> 12) & 0x3ff);
    }
    if (g->a->mode == VMI_PAGING_PAE)
        t = rq(g, t + 8 * (va >> 30)) & 0x000ffffffffff000ull; /* the four PDs exist */
    else {
        t = table_at(g, t, (unsigned)((va >> 39) & 511));
        t = table_at(g, t, (unsigned)((va >> 30) & 511));
    }
    t = table_at(g, t, (unsigned)((va >> 21) & 511));
    return t + 8 * ((va >> 12) & 511);
}

static void map(wguest *g, uint64_t va, uint64_t pa, uint64_t len, uint64_t flags)
{
    uint64_t off;
    for (off = 0; off < len; off += 0x1000) {
        uint64_t e = pte_pa(g, va + off);
        if (g->a->mode == VMI_PAGING_LEGACY)
            wd(g, e, (uint32_t)((pa + off) | (flags & 0xfff)));
        else
            wq(g, e, (pa + off) | flags);
    }
}

/* Windows's self-map: the directory (non-PAE), or the four directories
   (PAE, through the fourth), mapped at 0xC0000000. */
static void wg_roots(wguest *g)
{
    unsigned i;
    g->root = ROOT_PA;
    if (g->a->mode == VMI_PAGING_LEGACY) {
        wd(g, g->root + 4 * 0x300, (uint32_t)g->root | 0x63);
    } else if (g->a->mode == VMI_PAGING_PAE) {
        uint64_t pd[4];
        g->root = ROOT_PA + 0x20; /* a PDPT need only be 32-byte aligned */
        for (i = 0; i < 4; i++)
            wq(g, g->root + 8 * i, (pd[i] = new_table(g)) | 1);
        for (i = 0; i < 4; i++)
            wq(g, pd[3] + 8 * i, pd[i] | 0x63);
    }
}

/* va in one of the mapped regions -> its pa. */
static uint64_t vpa(wguest *g, uint64_t va)
{
    if (va >= g->a->kbase && va < g->a->kbase + 0x100000) return va - g->a->kbase + KPA;
    if (va >= g->a->pool && va < g->a->pool + 0x100000) return va - g->a->pool + POOL_PA;
    return va - g->a->user + USER_PA;
}

static void wptr(wguest *g, uint64_t va, uint64_t v)
{
    if (g->a->ptr == 8) wq(g, vpa(g, va), v);
    else wd(g, vpa(g, va), (uint32_t)v);
}

static uint64_t rptr(wguest *g, uint64_t va) { return g->a->ptr == 8 ? rq(g, vpa(g, va)) : rd(g, vpa(g, va)); }
static void wv32(wguest *g, uint64_t va, uint32_t v) { wd(g, vpa(g, va), v); }

/* Inserts node before `head` (at the tail). */
static void link_tail(wguest *g, uint64_t head, uint64_t node)
{
    uint64_t prev = rptr(g, head + g->a->ptr);
    wptr(g, node, head);
    wptr(g, node + g->a->ptr, prev);
    wptr(g, prev, node);
    wptr(g, head + g->a->ptr, node);
}

static void list_init(wguest *g, uint64_t head)
{
    wptr(g, head, head);
    wptr(g, head + g->a->ptr, head);
}

/* A UNICODE_STRING at va whose text lives at text_va. */
static void ustr(wguest *g, uint64_t va, uint64_t text_va, const char *s)
{
    size_t i, n = strlen(s);
    uint16_t len = (uint16_t)(2 * n), max = (uint16_t)(2 * n + 2);
    for (i = 0; i < n; i++) {
        g->ram[vpa(g, text_va) + 2 * i] = (uint8_t)s[i];
        g->ram[vpa(g, text_va) + 2 * i + 1] = 0;
    }
    memcpy(g->ram + vpa(g, va), &len, 2);
    memcpy(g->ram + vpa(g, va) + 2, &max, 2);
    wptr(g, va + g->a->ptr, text_va);
}

static const struct { int64_t pid, ppid; const char *name, *path, *cmd; } wprocs[] = {
    {4, 0, "System", NULL, NULL},
    {268, 4, "smss.exe", "\\SystemRoot\\System32\\smss.exe", "\\SystemRoot\\System32\\smss.exe"},
    {1812, 268, "explorer.exe", "C:\\Windows\\explorer.exe", "C:\\Windows\\Explorer.EXE /factory"},
};

/* Where wine's image keeps an export (through the reader tested above). */
static uint32_t export_rva(uint8_t *img, uint32_t size, unsigned ptr, const char *want)
{
    vmi__pe pe;
    vmi_mem_range r;
    vmi_instance *vmi;
    uint64_t va = 0;
    size_t n;
    char err[256];
    memset(&r, 0, sizeof r);
    r.pa = IMG_BASE, r.size = size, r.host = img;
    vmi = open_flat(&r, 1);
    if (vmi__pe_open(vmi, 0, IMG_BASE, &pe) == VMI_OK && vmi__win_get(vmi)) {
        vmi->win->ptr = ptr;
        if (vmi__win_symbols(vmi, &pe, &n, err, sizeof err) == VMI_OK && !err[0])
            vmi_ksym(vmi, want, &va);
    }
    vmi_close(vmi);
    return va ? (uint32_t)(va - IMG_BASE) : 0;
}

static uint64_t eproc(const wguest *g, size_t i) { return g->a->pool + 0x1000 * (i + 1); }
static uint64_t peb_va(const wguest *g, size_t i) { return g->a->user + 0x1000 * i; }

static void wg_dlls(wguest *g, uint64_t peb, uint64_t ldr)
{
    static const char *const dlls[] = {"ntdll.dll", "kernel32.dll"};
    const warch *a = g->a;
    unsigned d;
    for (d = 0; d < 2; d++) {
        uint64_t e = peb + 0x600 + 0x100 * d;
        char full[64];
        link_tail(g, ldr + a->ldr_list, e);
        wptr(g, e + a->ldr_base, 0x77000000ull + 0x200000ull * d);
        wv32(g, e + a->ldr_size, 0x1a0000u + d);
        snprintf(full, sizeof full, "C:\\Windows\\System32\\%s", dlls[d]);
        ustr(g, e + a->ldr_full, e + 0x70, full);
        ustr(g, e + a->ldr_name, e + 0xd0, dlls[d]);
    }
}

static void wg_processes(wguest *g)
{
    const warch *a = g->a;
    size_t i;
    for (i = 0; i < sizeof wprocs / sizeof wprocs[0]; i++) {
        uint64_t ep = eproc(g, i), peb = peb_va(g, i), ldr = peb + 0x100, params = peb + 0x200;
        link_tail(g, g->ps_head, ep + a->links);
        wptr(g, ep + a->dtb, g->root);
        wptr(g, ep + a->pid, (uint64_t)wprocs[i].pid);
        wptr(g, ep + a->ppid, (uint64_t)wprocs[i].ppid);
        memcpy(g->ram + vpa(g, ep + a->iname), wprocs[i].name, strlen(wprocs[i].name));
        wq(g, vpa(g, ep + a->create), 0x01d0000000000000ull + i);
        wv32(g, ep + a->threads, (uint32_t)(i + 1));
        if (!wprocs[i].path)
            continue;
        wptr(g, ep + a->peb, peb);
        wptr(g, peb + a->peb_ldr, ldr);
        list_init(g, ldr + a->ldr_list);
        wptr(g, peb + a->peb_params, params);
        ustr(g, params + a->p_image, params + 0x100, wprocs[i].path);
        ustr(g, params + a->p_cmd, params + 0x300, wprocs[i].cmd);
        wg_dlls(g, peb, ldr);
    }
}

static void wg_modules(wguest *g, uint32_t image_size)
{
    static const char *const mods[][2] = {{"ntoskrnl.exe", "\\SystemRoot\\system32\\ntoskrnl.exe"},
                                          {"hal.dll", "\\SystemRoot\\system32\\hal.dll"}};
    const warch *a = g->a;
    unsigned m;
    for (m = 0; m < 2; m++) {
        uint64_t e = a->pool + 0x10000 + 0x200 * m;
        link_tail(g, g->mod_head, e);
        wptr(g, e + a->ldr_base, m ? a->hal : a->kbase);
        wv32(g, e + a->ldr_size, m ? 0x49000u : image_size);
        ustr(g, e + a->ldr_full, e + 0x80, mods[m][1]);
        ustr(g, e + a->ldr_name, e + 0x140, mods[m][0]);
    }
}

/* KDBG: tag, size, KernBase, PsLoadedModuleList, PsActiveProcessHead;
   32-bit kernels sign-extend their pointers to 64 bits here. */
static void wg_kdbg(wguest *g)
{
    uint64_t k = g->kdbg_pa, ext = g->a->ptr == 4 ? 0xffffffff00000000ull : 0;
    memcpy(g->ram + k + 0x10, "KDBG", 4);
    wd(g, k + 0x14, 0x340);
    wq(g, k + 0x18, g->a->kbase | ext);
    g->ram[k + 0x36] = g->a->mode == VMI_PAGING_PAE;
    wq(g, k + 0x48, g->mod_head | ext);
    wq(g, k + 0x50, g->ps_head | ext);
}

static int wg_build(wguest *g, const warch *a, const char *wine_dir)
{
    char path[1024];
    size_t n = 0;
    uint8_t *f, *img;
    uint32_t size, rva_build, rva_sys;
    memset(g, 0, sizeof *g);
    g->a = a;
    snprintf(path, sizeof path, "%s/%s/ntoskrnl.exe", wine_dir, a->wine_sub);
    if (!(f = (uint8_t *)test_slurp(path, &n)))
        return 0;
    img = pe_layout(f, n, &size);
    rva_build = export_rva(img, size, a->ptr, "NtBuildNumber");
    rva_sys = export_rva(img, size, a->ptr, "PsInitialSystemProcess");
    g->ram = (uint8_t *)calloc(1, RAM);
    g->next_table = 0x188000;
    wg_roots(g);
    memcpy(g->ram + KPA, img, size);
    map(g, a->kbase, KPA, (size + 0xfff) & ~0xfffu, 0x63);
    map(g, a->pool, POOL_PA, 0x20000, a->mode == VMI_PAGING_LEGACY ? 0x63 : 0x8000000000000063ull);
    map(g, a->user, USER_PA, 0x4000, 0x67);
    if (a->mode == VMI_PAGING_IA32E) { /* the start block: jmp, 0x70 kernel entry, 0xa0 PML4 */
        wq(g, 0x1000, 0x00000001000600e9ull);
        wq(g, 0x1000 + 0x70, a->kbase + 0x2345);
        wq(g, 0x1000 + 0xa0, g->root);
    }
    g->build_pa = KPA + rva_build;
    wd(g, g->build_pa, 0xf0001db1u); /* NtBuildNumber: a free build of 7601 */
    g->kdbg_pa = KPA + 0x21000;          /* in .text: as good a place as any here */
    g->ps_head = a->kbase + 0x21400;
    g->mod_head = a->kbase + 0x21500;
    list_init(g, g->ps_head);
    list_init(g, g->mod_head);
    wg_processes(g);
    wg_modules(g, size);
    wptr(g, a->kbase + rva_sys, eproc(g, 0));
    wg_kdbg(g);
    /* explorer's PEB page is on the standby list: a transition PTE */
    if (a->mode == VMI_PAGING_LEGACY)
        wd(g, pte_pa(g, peb_va(g, 2)), (rd(g, pte_pa(g, peb_va(g, 2))) & ~0xfffu) | 0x880);
    else
        wq(g, pte_pa(g, peb_va(g, 2)), (rq(g, pte_pa(g, peb_va(g, 2))) & ~0xfffull) | 0x880);
    g->r.pa = 0, g->r.size = RAM, g->r.host = g->ram;
    free(img);
    free(f);
    return rva_build && rva_sys;
}

typedef struct pcoll {
    vmi_process p[16];
    size_t n;
} pcoll;

static int pcollect(void *user, const vmi_process *p)
{
    pcoll *c = (pcoll *)user;
    if (c->n < 16)
        c->p[c->n++] = *p;
    return 0;
}

typedef struct mcoll {
    vmi_module m[16];
    size_t n;
} mcoll;

static int mcollect(void *user, const vmi_module *m)
{
    mcoll *c = (mcoll *)user;
    if (c->n < 16)
        c->m[c->n++] = *m;
    return 0;
}

static void check_user(vmi_instance *vmi, const wguest *g, const vmi_process *p, size_t i)
{
    mcoll mc;
    char buf[512];
    if (!wprocs[i].path) {
        CHECK_ST(vmi_process_image_path(vmi, p, buf, sizeof buf, NULL), VMI_ERR_NOT_FOUND);
        CHECK_ST(vmi_foreach_dll(vmi, p, mcollect, &mc), VMI_ERR_NOT_FOUND);
        return;
    }
    CHECK_ST(vmi_process_image_path(vmi, p, buf, sizeof buf, NULL), VMI_OK);
    CHECK_STR(buf, wprocs[i].path);
    CHECK_ST(vmi_process_cmdline(vmi, p, buf, sizeof buf, NULL), VMI_OK);
    CHECK_STR(buf, wprocs[i].cmd); /* explorer's: through the transition PTE */
    memset(&mc, 0, sizeof mc);
    CHECK_ST(vmi_foreach_dll(vmi, p, mcollect, &mc), VMI_OK);
    CHECK_EQ(mc.n, 2);
    CHECK_STR(mc.m[0].name, "ntdll.dll");
    CHECK_STR(mc.m[1].path, "C:\\Windows\\System32\\kernel32.dll");
    CHECK_EQ(mc.m[1].base, 0x77200000ull);
    CHECK_EQ(mc.m[1].size, 0x1a0001u);
    CHECK_EQ(mc.m[1].addr, peb_va(g, i) + 0x700);
}

static void check_views(vmi_instance *vmi, const wguest *g, const char *how, int have_kdbg)
{
    pcoll pc;
    mcoll mc;
    size_t i;
    char buf[512];
    uint64_t va;
    const vmi_os_info *os = vmi_os_get_info(vmi);
    test_context("hand-built Windows 7 SP1 %s (%s): os", g->a->name, how);
    CHECK_EQ(os->os, VMI_OS_WINDOWS);
    CHECK_EQ(os->kernel_base, g->a->kbase);
    CHECK_EQ(os->kdbg, have_kdbg ? g->a->kbase + 0x21000 : 0);
    CHECK_EQ(os->build, 7601);
    CHECK_STR(os->release, "Windows build 7601");
    CHECK_EQ(vmi_get_paging(vmi)->mode, g->a->mode);
    CHECK_EQ(vmi_get_paging(vmi)->dtb, g->root);
    CHECK_ST(vmi_ksym(vmi, "PsInitialSystemProcess", &va), VMI_OK);
    CHECK(va >= g->a->kbase && va < g->a->kbase + 0x100000, "PsInitialSystemProcess at 0x%" PRIx64, va);
    CHECK_ST(vmi_ksym_lookup(vmi, va + 1, buf, sizeof buf, &va), VMI_OK);
    CHECK_STR(buf, "PsInitialSystemProcess");
    CHECK_EQ(va, 1);
    CHECK_ST(vmi_ksym(vmi, "PsActiveProcessHead", &va), VMI_OK);
    CHECK_EQ(va, g->ps_head);

    test_context("hand-built Windows 7 SP1 %s (%s): processes", g->a->name, how);
    memset(&pc, 0, sizeof pc);
    CHECK_ST(vmi_foreach_process(vmi, 0, pcollect, &pc), VMI_OK);
    CHECK_EQ(pc.n, 3);
    for (i = 0; i < pc.n && i < 3; i++) {
        CHECK_EQ(pc.p[i].pid, wprocs[i].pid);
        CHECK_EQ(pc.p[i].ppid, wprocs[i].ppid);
        CHECK_STR(pc.p[i].name, wprocs[i].name);
        CHECK_EQ(pc.p[i].dtb, g->root);
        CHECK_EQ(pc.p[i].task, eproc(g, i));
        CHECK_EQ(pc.p[i].create_time, 0x01d0000000000000ull + i);
        CHECK_EQ(pc.p[i].threads, i + 1);
        CHECK_EQ(pc.p[i].peb, wprocs[i].path ? peb_va(g, i) : 0);
        check_user(vmi, g, &pc.p[i], i);
    }
    CHECK_ST(vmi_pid_to_dtb(vmi, 1812, &va), VMI_OK);
    CHECK_EQ(va, g->root);
    CHECK_ST(vmi_read_pid(vmi, 1812, peb_va(g, 2) + 0x300, buf, 2, NULL), VMI_OK);
    CHECK_EQ(buf[0], 'C');

    test_context("hand-built Windows 7 SP1 %s (%s): modules", g->a->name, how);
    memset(&mc, 0, sizeof mc);
    /* without KDBG (wine's ntoskrnl does not export it): the list head in
       the image whose first entry is ntoskrnl's own */
    CHECK_ST(vmi_ksym(vmi, "PsLoadedModuleList", &va), VMI_OK);
    CHECK_EQ(va, g->mod_head);
    CHECK_ST(vmi_foreach_module(vmi, mcollect, &mc), VMI_OK);
    CHECK_EQ(mc.n, 2);
    CHECK_STR(mc.m[0].name, "ntoskrnl.exe");
    CHECK_EQ(mc.m[0].base, g->a->kbase);
    CHECK_STR(mc.m[1].path, "\\SystemRoot\\system32\\hal.dll");
    CHECK_EQ(mc.m[1].base, g->a->hal);
    CHECK_EQ(mc.m[1].size, 0x49000);
}

static vmi_instance *wg_open(wguest *g)
{
    vmi_desc desc;
    vmi_instance *vmi = NULL;
    memset(&desc, 0, sizeof desc);
    vmi_backend_buffer(&desc.backend, &g->r, 1);
    if (vmi_open(&desc, &vmi) != VMI_OK)
        abort();
    return vmi;
}

static void init_and_check(wguest *g, const char *how, int have_kdbg)
{
    vmi_instance *vmi = wg_open(g);
    vmi_status st = vmi_os_init(vmi);
    test_context("hand-built Windows 7 SP1 %s (%s): vmi_os_init", g->a->name, how);
    if (CHECK_ST(st, VMI_OK))
        check_views(vmi, g, how, have_kdbg);
    else
        fprintf(stderr, "  vmi_os_init: %s\n", vmi_last_error(vmi));
    vmi_close(vmi);
}

/* A LibVMI config gives the offsets when the build is not in the table. */
static void check_libvmi(wguest *g)
{
    char conf[256];
    vmi_instance *vmi;
    pcoll pc;
    snprintf(conf, sizeof conf, "win7 {\n ostype = \"Windows\";\n win_tasks = 0x%x;\n win_pdbase = 0x%x;\n"
             " win_pid = 0x%x;\n win_pname = 0x%x;\n}\n", g->a->links, g->a->dtb, g->a->pid, g->a->iname);
    vmi = wg_open(g);
    test_context("hand-built Windows %s, build unknown, LibVMI config", g->a->name);
    CHECK_ST(vmi_load_profile_mem(vmi, conf, strlen(conf)), VMI_OK);
    if (CHECK_ST(vmi_os_init(vmi), VMI_OK)) {
        memset(&pc, 0, sizeof pc);
        CHECK_ST(vmi_foreach_process(vmi, 0, pcollect, &pc), VMI_OK);
        CHECK_EQ(pc.n, 3);
        CHECK_STR(pc.p[2].name, "explorer.exe");
        CHECK_EQ(pc.p[2].peb, 0); /* the config has no Peb offset */
        CHECK(strstr(vmi_os_get_info(vmi)->types_source, "LibVMI") != NULL, "types source: %s",
              vmi_os_get_info(vmi)->types_source);
    }
    vmi_close(vmi);
    vmi = wg_open(g);
    test_context("hand-built Windows %s, build unknown, no offsets", g->a->name);
    CHECK_ST(vmi_os_init(vmi), VMI_OK); /* the kernel is found; its processes are not */
    CHECK_EQ(vmi_os_get_info(vmi)->build, 9000);
    CHECK_ST(vmi_foreach_process(vmi, 0, pcollect, &pc), VMI_ERR_NOT_FOUND);
    CHECK(strstr(vmi_last_error(vmi), "win_*") != NULL, "error says what to load: \"%s\"", vmi_last_error(vmi));
    vmi_close(vmi);
}

static void test_handmade(const warch *a, const char *wine_dir)
{
    wguest g;
    vmi_instance *vmi;
    pcoll pc;
    test_context("hand-built Windows 7 SP1 %s: build", a->name);
    if (!CHECK(wg_build(&g, a, wine_dir), "wine's ntoskrnl.exe under %s/%s exports NtBuildNumber and PsInitialSystemProcess",
               wine_dir, a->wine_sub)) {
        free(g.ram);
        return;
    }
    init_and_check(&g, "KDBG", 1);
    /* no KDBG: x64 finds ntoskrnl from the start block, x86 through the
       self-mapped page directory and a scan of the kernel half for its
       export directory; then the process list through PsInitialSystemProcess */
    memset(g.ram + g.kdbg_pa + 0x10, 0, 4);
    init_and_check(&g, "exports", 0);
    memcpy(g.ram + g.kdbg_pa + 0x10, "KDBG", 4);

    /* a process ring that loops back past its head fails cleanly */
    wptr(&g, eproc(&g, 2) + a->links, eproc(&g, 1) + a->links);
    vmi = wg_open(&g);
    test_context("hand-built Windows 7 SP1 %s: a cycle in the process list", a->name);
    if (CHECK_ST(vmi_os_init(vmi), VMI_OK)) {
        memset(&pc, 0, sizeof pc);
        CHECK_ST(vmi_foreach_process(vmi, 0, pcollect, &pc), VMI_ERR_LIMIT);
        CHECK_EQ(pc.n, 0);
        CHECK(strstr(vmi_last_error(vmi), "cycle") != NULL, "error says why: \"%s\"", vmi_last_error(vmi));
    }
    vmi_close(vmi);
    wptr(&g, eproc(&g, 2) + a->links, g.ps_head);

    /* a build outside the table: offsets from a LibVMI config only */
    wd(&g, g.build_pa, 0xf0002328u); /* 9000 */
    check_libvmi(&g);
    wd(&g, g.build_pa, 0xf0001db1u);

    /* no start block, no KDBG: nothing says Windows, Linux's search fails;
       x86's self-mapped directory still leads to ntoskrnl, these x64 tables
       have no self-map entry (the synthetic win10-x64-nostub has one) */
    memset(g.ram + 0x1000, 0, 8);
    memset(g.ram + g.kdbg_pa + 0x10, 0, 4);
    vmi = wg_open(&g);
    test_context("hand-built Windows 7 SP1 %s: every sign wiped", a->name);
    if (a->mode == VMI_PAGING_IA32E) {
        CHECK(vmi_os_init(vmi) != VMI_OK, "%s", "no OS found");
        CHECK(vmi_last_error(vmi)[0] != 0, "%s", "an error message");
    } else if (CHECK_ST(vmi_os_init(vmi), VMI_OK)) {
        CHECK_EQ(vmi_os_get_info(vmi)->os, VMI_OS_WINDOWS);
        CHECK_EQ(vmi_os_get_info(vmi)->kernel_base, a->kbase);
    }
    vmi_close(vmi);
    free(g.ram);
}

/* ---- the synthetic images of tests/windows/synth.py ------------------------

   truth.json per variant, read by a small JSON reader of the test's own
   (not the library's), then every format (raw, ELF, crash dump, bitmap
   dump) without a profile, with the ISF and with the LibVMI config. */

typedef struct jv {
    char type; /* o a s n t f z */
    char *str; /* s: value; o: member names joined by the kids */
    double num;
    uint64_t u;
    struct jv *kids; /* o, a */
    char **keys;     /* o */
    size_t n;
} jv;

static const char *j_ws(const char *p) { while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') p++; return p; }

static const char *j_parse(const char *p, jv *v);

static const char *j_str(const char *p, char **out)
{
    size_t cap = 16, n = 0;
    char *b = (char *)malloc(cap);
    for (p++; *p && *p != '"'; p++) {
        char c = *p;
        if (c == '\\') {
            c = *++p;
            if (c == 'n') c = '\n';
            else if (c == 't') c = '\t';
            else if (c == 'u') { /* truth.json is ASCII but for escapes of control bytes */
                unsigned u = 0;
                sscanf(p + 1, "%4x", &u);
                p += 4;
                c = (char)(u < 0x80 ? u : '?');
            }
        }
        if (n + 2 > cap) b = (char *)realloc(b, cap *= 2);
        b[n++] = c;
    }
    b[n] = 0;
    *out = b;
    return *p ? p + 1 : p;
}

static const char *j_list(const char *p, jv *v, char close)
{
    p = j_ws(p + 1);
    while (*p && *p != close) {
        v->kids = (jv *)realloc(v->kids, (v->n + 1) * sizeof *v->kids);
        if (close == '}') {
            v->keys = (char **)realloc(v->keys, (v->n + 1) * sizeof *v->keys);
            p = j_ws(j_str(p, &v->keys[v->n]));
            p = j_ws(p + 1); /* ':' */
        }
        p = j_ws(j_parse(p, &v->kids[v->n++]));
        if (*p == ',') p = j_ws(p + 1);
    }
    return *p ? p + 1 : p;
}

static const char *j_parse(const char *p, jv *v)
{
    memset(v, 0, sizeof *v);
    p = j_ws(p);
    if (*p == '{') return v->type = 'o', j_list(p, v, '}');
    if (*p == '[') return v->type = 'a', j_list(p, v, ']');
    if (*p == '"') return v->type = 's', j_str(p, &v->str);
    if (*p == 't') return v->type = 't', p + 4;
    if (*p == 'f') return v->type = 'f', p + 5;
    if (*p == 'n') return v->type = 'z', p + 4;
    {
        char *end;
        v->type = 'n';
        v->u = strtoull(p, &end, 10);
        v->num = (double)v->u;
        return end;
    }
}

static void j_free(jv *v)
{
    size_t i;
    for (i = 0; i < v->n; i++) {
        j_free(&v->kids[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->kids);
    free(v->keys);
    free(v->str);
}

static const jv *j_get(const jv *o, const char *key)
{
    size_t i;
    for (i = 0; o && o->type == 'o' && i < o->n; i++)
        if (!strcmp(o->keys[i], key)) return &o->kids[i];
    return NULL;
}

static uint64_t j_u(const jv *o, const char *key) { const jv *v = j_get(o, key); return v && v->type == 'n' ? v->u : 0; }
static const char *j_s(const jv *o, const char *key) { const jv *v = j_get(o, key); return v && v->type == 's' ? v->str : NULL; }

typedef struct pvec {
    vmi_process *p;
    size_t n;
} pvec;

static int pv_add(void *user, const vmi_process *p)
{
    pvec *v = (pvec *)user;
    v->p = (vmi_process *)realloc(v->p, (v->n + 1) * sizeof *v->p);
    v->p[v->n++] = *p;
    return 0;
}

typedef struct mvec {
    vmi_module *m;
    size_t n;
} mvec;

static int mv_add(void *user, const vmi_module *m)
{
    mvec *v = (mvec *)user;
    v->m = (vmi_module *)realloc(v->m, (v->n + 1) * sizeof *v->m);
    v->m[v->n++] = *m;
    return 0;
}

static vmi_instance *synth_open(const char *path, const char *profile, char *err, size_t cap)
{
    vmi_file_desc fd;
    vmi_desc desc;
    vmi_instance *vmi = NULL;
    memset(&fd, 0, sizeof fd);
    memset(&desc, 0, sizeof desc);
    fd.path = path;
    if (vmi_file_open(&fd, &desc.backend, err, cap) != VMI_OK) return NULL;
    if (vmi_open(&desc, &vmi) != VMI_OK) return NULL;
    if (profile && vmi_load_profile(vmi, profile) != VMI_OK) {
        snprintf(err, cap, "profile: %s", vmi_last_error(vmi));
        vmi_close(vmi);
        return NULL;
    }
    return vmi;
}

/* Modules and DLLs: the same images, in list order. */
static void synth_images(const char *what, const mvec *got, const jv *want)
{
    size_t i;
    if (!CHECK(want && got->n == want->n, "%s: expected %zu images, got %zu", what, want ? want->n : 0, got->n)) return;
    for (i = 0; i < got->n; i++) {
        const jv *w = &want->kids[i];
        CHECK_STR(got->m[i].name, j_s(w, "name"));
        CHECK_STR(got->m[i].path, j_s(w, "path"));
        CHECK_EQ(got->m[i].base, j_u(w, "base"));
        CHECK_EQ(got->m[i].size, j_u(w, "size"));
        CHECK_EQ(got->m[i].addr, j_u(w, "addr"));
    }
}

/* kind: 0 every member known, 1 LibVMI's four offsets alone. */
static void synth_process(vmi_instance *vmi, const vmi_process *p, const jv *w, const jv *dlls, int kind)
{
    char buf[1024], key[32];
    const char *path = j_s(w, "path"), *cmd = j_s(w, "cmdline");
    mvec mv;
    CHECK_STR(p->name, j_s(w, "name"));
    CHECK_EQ(p->dtb, j_u(w, "dtb"));
    CHECK_EQ(p->task, j_u(w, "eprocess"));
    if (kind == 1) return;
    CHECK_EQ(p->ppid, j_u(w, "ppid"));
    CHECK_EQ(p->peb, j_u(w, "peb"));
    CHECK_EQ(p->create_time, j_u(w, "create_time"));
    CHECK_EQ(p->threads, j_u(w, "threads"));
    if (path && *path) {
        CHECK_ST(vmi_process_image_path(vmi, p, buf, sizeof buf, NULL), VMI_OK);
        CHECK_STR(buf, path);
    }
    if (cmd) {
        CHECK_ST(vmi_process_cmdline(vmi, p, buf, sizeof buf, NULL), VMI_OK);
        CHECK_STR(buf, cmd);
    }
    snprintf(key, sizeof key, "%lld", (long long)p->pid);
    if (!j_get(dlls, key)) return;
    memset(&mv, 0, sizeof mv);
    CHECK_ST(vmi_foreach_dll(vmi, p, mv_add, &mv), VMI_OK);
    synth_images(key, &mv, j_get(dlls, key));
    free(mv.m);
}

static void synth_processes(vmi_instance *vmi, const jv *t, int kind)
{
    const jv *procs = j_get(t, "processes"), *dlls = j_get(t, "dlls");
    pvec pv;
    size_t i, k;
    memset(&pv, 0, sizeof pv);
    CHECK_ST(vmi_foreach_process(vmi, 0, pv_add, &pv), VMI_OK);
    if (CHECK(procs && pv.n == procs->n, "expected %zu processes, got %zu", procs ? procs->n : 0, pv.n))
        for (i = 0; i < pv.n; i++) {
            const jv *w = NULL;
            for (k = 0; k < procs->n && !w; k++)
                if (j_u(&procs->kids[k], "pid") == (uint64_t)pv.p[i].pid) w = &procs->kids[k];
            if (CHECK(w != NULL, "pid %lld is not in truth.json", (long long)pv.p[i].pid))
                synth_process(vmi, &pv.p[i], w, dlls, kind);
        }
    free(pv.p);
}

/* Every export and (with the ISF) every profile symbol by name, and a
   lookup by address of each. */
static void synth_symbols(vmi_instance *vmi, const jv *t, int isf)
{
    const jv *exps = j_get(t, "exports"), *syms = j_get(t, "symbols");
    size_t i, bad = 0, n = 0;
    uint64_t va, off;
    char name[256];
    for (i = 0; exps && i < exps->n; i++) {
        if (isf && j_get(syms, exps->keys[i])) continue; /* the PDB's address wins */
        n++;
        if (vmi_ksym(vmi, exps->keys[i], &va) != VMI_OK || va != exps->kids[i].u) bad++;
        else if (vmi_ksym_lookup(vmi, va, name, sizeof name, &off) != VMI_OK || off != 0) bad++;
    }
    for (i = 0; isf && syms && i < syms->n; i++, n++)
        if (vmi_ksym(vmi, syms->keys[i], &va) != VMI_OK || va != syms->kids[i].u) bad++;
    CHECK(n > 100 && bad == 0, "%zu of %zu symbols wrong or missing", bad, n);
}

/* vmi_current_process per vCPU (ELF cores: the QEMU notes carry GS/FS
   bases and KERNEL_GS_BASE); `known`: the thread offsets are known. */
static void synth_current(vmi_instance *vmi, const jv *t, int known)
{
    const jv *vc = j_get(t, "vcpus");
    size_t i;
    for (i = 0; vc && i < vc->n; i++) {
        vmi_process p;
        vmi_status st = vmi_current_process(vmi, (uint32_t)i, &p);
        if (!known) {
            CHECK(st == VMI_ERR_NOT_FOUND && strstr(vmi_last_error(vmi), "KPCR"), "vCPU %zu without offsets: %s, %s", i,
                  vmi_status_string(st), vmi_last_error(vmi));
            continue;
        }
        if (!CHECK(st == VMI_OK, "vCPU %zu: %s: %s", i, vmi_status_string(st), vmi_last_error(vmi))) continue;
        CHECK_EQ(p.pid, j_u(&vc->kids[i], "current_pid"));
        CHECK_EQ(p.task, j_u(&vc->kids[i], "current_eprocess"));
    }
}

/* vmi_foreach_process with threads: each process, then its threads in
   list order (pid = tid, tgid = the process, task = the ETHREAD); without
   thread offsets the processes alone. */
static void synth_threads(vmi_instance *vmi, const jv *t, int known)
{
    const jv *procs = j_get(t, "processes");
    pvec pv;
    size_t i, k, at = 0, bad = 0, want = 0;
    memset(&pv, 0, sizeof pv);
    CHECK_ST(vmi_foreach_process(vmi, 1, pv_add, &pv), VMI_OK);
    for (i = 0; procs && i < procs->n; i++) {
        const jv *w = &procs->kids[i], *tids = j_get(w, "tids"), *ets = j_get(w, "ethreads");
        uint64_t pid = j_u(w, "pid");
        want++;
        if (at >= pv.n || (uint64_t)pv.p[at].pid != pid || (uint64_t)pv.p[at].tgid != pid) bad++;
        at++;
        for (k = 0; known && tids && k < tids->n; k++, at++, want++)
            if (at >= pv.n || (uint64_t)pv.p[at].pid != tids->kids[k].u || (uint64_t)pv.p[at].tgid != pid ||
                pv.p[at].task != ets->kids[k].u)
                bad++;
    }
    CHECK(bad == 0 && pv.n == want, "threads: %zu entries (want %zu), %zu wrong", pv.n, want, bad);
    free(pv.p);
}

static void synth_one(const char *dir, const jv *t, const char *file, const char *prof)
{
    char path[1200], ppath[1200], err[512];
    const char *variant = j_s(t, "variant");
    int custom = strstr(variant, "custom") != NULL, isf = prof && strstr(prof, ".json");
    int libvmi = prof && !isf;
    vmi_instance *vmi;
    const vmi_os_info *os;
    const jv *pdb = j_get(t, "pdb");
    mvec mv;
    vmi_status st;
    snprintf(path, sizeof path, "%s/%s", dir, file);
    snprintf(ppath, sizeof ppath, "%s/%s", dir, prof ? prof : "");
    test_context("synthetic Windows images: %s %s, profile %s", variant, file, prof ? prof : "none");
    vmi = synth_open(path, prof ? ppath : NULL, err, sizeof err);
    if (!CHECK(vmi != NULL, "open: %s", err)) return;
    st = vmi_os_init(vmi);
    if (!CHECK_ST(st, VMI_OK)) {
        fprintf(stderr, "  %s\n", vmi_last_error(vmi));
        vmi_close(vmi);
        return;
    }
    os = vmi_os_get_info(vmi);
    CHECK_EQ(os->os, VMI_OS_WINDOWS);
    CHECK_EQ(os->kernel_base, j_u(t, "kernel_base"));
    CHECK_EQ(os->build, j_u(t, "build"));
    CHECK_STR(os->pdb_name, j_s(pdb, "name"));
    CHECK_STR(os->pdb_id, j_s(pdb, "id"));
    CHECK_EQ(os->kdbg, j_get(t, "kdbg_encoded")->type == 't' && !isf ? 0 : j_u(t, "kdbg_va")); /* encoded: decoded with the ISF's keys */
    synth_symbols(vmi, t, isf);
    memset(&mv, 0, sizeof mv);
    CHECK_ST(vmi_foreach_module(vmi, mv_add, &mv), VMI_OK);
    synth_images("modules", &mv, j_get(t, "modules"));
    free(mv.m);
    if (custom && !isf && !libvmi) { /* the offsets only its ISF knows */
        pvec pv;
        memset(&pv, 0, sizeof pv);
        CHECK_ST(vmi_foreach_process(vmi, 0, pv_add, &pv), VMI_ERR_NOT_FOUND);
        CHECK(strstr(vmi_last_error(vmi), "offsets") != NULL, "error: %s", vmi_last_error(vmi));
        free(pv.p);
    } else {
        synth_processes(vmi, t, custom && libvmi);
        if (!strcmp(file, "mem.raw") || !strcmp(file, "mem.elf")) synth_threads(vmi, t, !(custom && libvmi));
        if (!strcmp(file, "mem.elf")) synth_current(vmi, t, !(custom && libvmi));
    }
    vmi_close(vmi);
}

static void test_synth(const char *root)
{
    static const char *const variants[] = {"win7sp1-x64", "win10-x64", "win10-x64-encoded", "win10-x64-custom",
                                           "win10-x64-nostub", "win7sp1-x86-pae", "win7sp1-x86"};
    static const char *const files[] = {"mem.raw", "mem.elf", "mem.dmp", "mem-bitmap.dmp"};
    static const char *const profs[] = {NULL, "profile.json", "libvmi.conf"};
    size_t v, f, p;
    for (v = 0; v < sizeof variants / sizeof variants[0]; v++) {
        char dir[1024], tp[1100];
        char *text;
        jv t;
        snprintf(dir, sizeof dir, "%s/%s", root, variants[v]);
        snprintf(tp, sizeof tp, "%s/truth.json", dir);
        test_context("synthetic Windows images: %s", variants[v]);
        if (!CHECK((text = test_slurp(tp, NULL)) != NULL, "cannot read %s (run tests/windows/synth.py)", tp)) continue;
        j_parse(text, &t);
        for (f = 0; f < sizeof files / sizeof files[0]; f++) {
            char fp[1100];
            FILE *probe;
            snprintf(fp, sizeof fp, "%s/%s", dir, files[f]);
            if (!(probe = fopen(fp, "rb"))) continue; /* x86 has no bitmap dump */
            fclose(probe);
            for (p = 0; p < sizeof profs / sizeof profs[0]; p++) synth_one(dir, &t, files[f], profs[p]);
        }
        j_free(&t);
        free(text);
    }
}

/* An ISF is used only for the kernel whose PDB it describes: Windows 10's
   profile on the Windows 7 image is refused (and said so), the built-in
   layout reads the processes; vmi_offset still answers from the file. */
static void test_isf_match(const char *root)
{
    char img[1100], prof[1100], err[512];
    vmi_instance *vmi;
    pvec pv;
    uint64_t off = 0;
    snprintf(img, sizeof img, "%s/win7sp1-x64/mem.raw", root);
    snprintf(prof, sizeof prof, "%s/win10-x64/profile.json", root);
    test_context("synthetic Windows images: Windows 10's ISF on Windows 7");
    if (!CHECK((vmi = synth_open(img, prof, err, sizeof err)) != NULL, "open: %s", err)) return;
    CHECK_ST(vmi_offset(vmi, "_EPROCESS", "UniqueProcessId", &off), VMI_OK);
    CHECK_EQ(off, 0x440);
    if (CHECK_ST(vmi_os_init(vmi), VMI_OK)) {
        CHECK(strstr(vmi_os_get_info(vmi)->types_source, "ISF ignored") != NULL, "types source: %s",
              vmi_os_get_info(vmi)->types_source);
        memset(&pv, 0, sizeof pv);
        CHECK_ST(vmi_foreach_process(vmi, 0, pv_add, &pv), VMI_OK);
        CHECK(pv.n > 10 && pv.p[0].pid == 4, "%zu processes, the first pid %lld", pv.n, pv.n ? (long long)pv.p[0].pid : -1LL);
        free(pv.p);
    }
    vmi_close(vmi);
    snprintf(img, sizeof img, "%s/win10-x64/mem.raw", root);
    test_context("synthetic Windows images: Windows 10's own ISF");
    if (!CHECK((vmi = synth_open(img, prof, err, sizeof err)) != NULL, "open: %s", err)) return;
    if (CHECK_ST(vmi_os_init(vmi), VMI_OK))
        CHECK_STR(vmi_os_get_info(vmi)->types_source, "EPROCESS offsets: ISF profile");
    CHECK_ST(vmi_offset(vmi, "_EPROCESS", "UniqueProcessId", &off), VMI_OK);
    CHECK_EQ(off, 0x440);
    vmi_close(vmi);
}

typedef struct membuf {
    char *p;
    size_t n, cap;
} membuf;

static int membuf_write(void *user, const char *s, size_t n)
{
    membuf *b = (membuf *)user;
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = (char *)realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return 0;
}

/* vmi_write_isf on Windows, written and loaded back: symbols as RVAs, the
   PDB's GUID/age in metadata.windows.pdb; the file is taken for the same
   kernel (its symbols, with the types: its offsets) and refused for another. */
static void test_isf_roundtrip(const char *root)
{
    static const char *const profs[] = {NULL, "profile.json"};
    char img[1100], prof[1100], err[512], tmp[64];
    size_t p;
    snprintf(img, sizeof img, "%s/win10-x64/mem.raw", root);
    for (p = 0; p < 2; p++) {
        vmi_instance *vmi;
        membuf b;
        uint64_t head = 0, want = 0;
        FILE *f;
        memset(&b, 0, sizeof b);
        test_context("synthetic Windows images: ISF round trip, written %s", profs[p] ? "with the ISF" : "without a profile");
        snprintf(prof, sizeof prof, "%s/win10-x64/%s", root, profs[p] ? profs[p] : "");
        if (!CHECK((vmi = synth_open(img, profs[p] ? prof : NULL, err, sizeof err)) != NULL, "open: %s", err)) return;
        if (CHECK_ST(vmi_os_init(vmi), VMI_OK)) {
            CHECK_ST(vmi_ksym(vmi, "PsActiveProcessHead", &want), VMI_OK);
            CHECK_ST(vmi_write_isf(vmi, membuf_write, &b), VMI_OK);
        }
        vmi_close(vmi);
        if (!CHECK(b.p && strstr(b.p, "\"pdb\":{\"GUID\":") && strstr(b.p, "\"database\":\"ntkrnlmp.pdb\""),
                   "metadata.windows.pdb in the ISF")) {
            free(b.p);
            continue;
        }
        snprintf(tmp, sizeof tmp, "/tmp/vmi-test-isf-%ld.json", (long)getpid());
        f = fopen(tmp, "wb");
        CHECK(f && fwrite(b.p, 1, b.n, f) == b.n, "write %s", tmp);
        if (f) fclose(f);
        free(b.p);
        if ((vmi = synth_open(img, tmp, err, sizeof err)) != NULL && CHECK_ST(vmi_os_init(vmi), VMI_OK)) {
            const vmi_os_info *os = vmi_os_get_info(vmi);
            CHECK(strstr(os->types_source, "ignored") == NULL, "taken for its own kernel: %s", os->types_source);
            CHECK(strstr(os->symbols_source, "ISF symbols") != NULL, "symbols: %s", os->symbols_source);
            CHECK_ST(vmi_ksym(vmi, "PsActiveProcessHead", &head), VMI_OK);
            CHECK_EQ(head, want);
            if (profs[p]) CHECK_STR(os->types_source, "EPROCESS offsets: ISF profile");
        } else
            CHECK(0, "reload: %s", vmi ? vmi_last_error(vmi) : err);
        vmi_close(vmi);
        snprintf(img, sizeof img, "%s/win7sp1-x64/mem.raw", root);
        if ((vmi = synth_open(img, tmp, err, sizeof err)) != NULL && CHECK_ST(vmi_os_init(vmi), VMI_OK))
            CHECK(strstr(vmi_os_get_info(vmi)->types_source, "ISF ignored") != NULL, "another kernel: %s",
                  vmi_os_get_info(vmi)->types_source);
        vmi_close(vmi);
        snprintf(img, sizeof img, "%s/win10-x64/mem.raw", root);
        remove(tmp);
    }
}

/* 32-bit legacy paging with every KDBG tag wiped (the PAE case is the
   hostile kdbg-bad-size image): the self-mapped page directory gives the
   root, ntoskrnl is found by its export directory in the kernel half,
   the processes through PsInitialSystemProcess. */
static void test_x86_no_kdbg(const char *root)
{
    char path[1100], *img;
    size_t len = 0, i, wiped = 0;
    vmi_mem_range r;
    vmi_desc desc;
    vmi_instance *vmi = NULL;
    pvec pv;
    snprintf(path, sizeof path, "%s/win7sp1-x86/mem.raw", root);
    test_context("synthetic Windows images: win7sp1-x86 without KDBG, raw in memory");
    if (!CHECK((img = test_slurp(path, &len)) != NULL, "cannot read %s", path)) return;
    for (i = 0; i + 4 <= len; i += 4)
        if (!memcmp(img + i, "KDBG", 4)) memset(img + i, 0, 4), wiped++;
    CHECK(wiped > 0, "%s", "a KDBG tag to wipe");
    memset(&r, 0, sizeof r);
    r.size = len;
    r.host = img;
    memset(&desc, 0, sizeof desc);
    vmi_backend_buffer(&desc.backend, &r, 1);
    if (CHECK_ST(vmi_open(&desc, &vmi), VMI_OK) && CHECK_ST(vmi_os_init(vmi), VMI_OK)) {
        CHECK_EQ(vmi_get_paging(vmi)->mode, VMI_PAGING_LEGACY);
        CHECK_EQ(vmi_os_get_info(vmi)->kdbg, 0);
        memset(&pv, 0, sizeof pv);
        CHECK_ST(vmi_foreach_process(vmi, 0, pv_add, &pv), VMI_OK);
        CHECK(pv.n == 18 && pv.p[0].pid == 4, "%zu processes, the first pid %lld", pv.n, pv.n ? (long long)pv.p[0].pid : -1LL);
        free(pv.p);
    }
    vmi_close(vmi);
    free(img);
}

/* Hostile images: every view ends with a status and a message, or works;
   never a crash or a hang (the step's timeout and ASan see to those). */
static void test_hostile(const char *root)
{
    static const char *const arches[] = {"x64", "x86"};
    static const char *const files[] = {"mem.raw", "mem.elf", "mem.dmp"};
    size_t a, f;
    for (a = 0; a < 2; a++) {
        char dir[1024];
        FILE *ls;
        char cmd[1200], name[256];
        snprintf(dir, sizeof dir, "%s/hostile/%s", root, arches[a]);
        snprintf(cmd, sizeof cmd, "ls '%s' 2>/dev/null", dir);
        if (!(ls = popen(cmd, "r"))) continue;
        while (fscanf(ls, "%255s", name) == 1)
            for (f = 0; f < sizeof files / sizeof files[0]; f++) {
                char path[1600], err[512];
                vmi_instance *vmi;
                pvec pv;
                mvec mv;
                vmi_status st;
                FILE *probe;
                snprintf(path, sizeof path, "%s/%s/%s", dir, name, files[f]);
                if (!(probe = fopen(path, "rb"))) continue;
                fclose(probe);
                test_context("synthetic Windows images, hostile: %s/%s/%s", arches[a], name, files[f]);
                err[0] = 0;
                if (!(vmi = synth_open(path, NULL, err, sizeof err))) {
                    CHECK(err[0] != 0, "%s", "a failed open says why");
                    continue;
                }
                st = vmi_os_init(vmi);
                CHECK(st == VMI_OK || vmi_last_error(vmi)[0], "vmi_os_init: %s without a message", vmi_status_string(st));
                if (st == VMI_OK) {
                    memset(&pv, 0, sizeof pv);
                    memset(&mv, 0, sizeof mv);
                    st = vmi_foreach_process(vmi, 0, pv_add, &pv);
                    CHECK(st == VMI_OK || vmi_last_error(vmi)[0], "processes: %s without a message", vmi_status_string(st));
                    CHECK(pv.n < 4096, "%zu processes from a small image", pv.n);
                    st = vmi_foreach_module(vmi, mv_add, &mv);
                    CHECK(st == VMI_OK || vmi_last_error(vmi)[0], "modules: %s without a message", vmi_status_string(st));
                    free(mv.m);
                    while (pv.n--) {
                        char buf[256];
                        memset(&mv, 0, sizeof mv);
                        vmi_foreach_dll(vmi, &pv.p[pv.n], mv_add, &mv);
                        vmi_process_image_path(vmi, &pv.p[pv.n], buf, sizeof buf, NULL);
                        vmi_process_cmdline(vmi, &pv.p[pv.n], buf, sizeof buf, NULL);
                        CHECK(mv.n < 4096, "%zu DLLs", mv.n);
                        free(mv.m);
                    }
                    free(pv.p);
                }
                vmi_close(vmi);
            }
        pclose(ls);
    }
}

int main(int argc, char **argv)
{
    const char *wine = argc > 1 ? argv[1] : "tests/guests/.cache/debs/libwine_8.0~repack-4_amd64/usr/lib/x86_64-linux-gnu/wine";
    const char *wine32 = argc > 2 ? argv[2] : "tests/guests/.cache/debs/libwine_8.0~repack-4_i386/usr/lib/i386-linux-gnu/wine";
    size_t i;
    test_codeview();
    test_pe_file(wine, "x86_64-windows", "ntoskrnl.exe");
    test_pe_file(wine, "x86_64-windows", "hal.dll");
    test_pe_file(wine32, "i386-windows", "ntoskrnl.exe");
    test_pe_file(wine32, "i386-windows", "hal.dll");
    for (i = 0; i < sizeof warchs / sizeof warchs[0]; i++)
        test_handmade(&warchs[i], warchs[i].ptr == 8 ? wine : wine32);
    if (argc > 3) {
        test_synth(argv[3]);
        test_isf_match(argv[3]);
        test_isf_roundtrip(argv[3]);
        test_x86_no_kdbg(argv[3]);
        test_hostile(argv[3]);
    }
    return test_summary();
}
