/* test_file.c - tests of vmi_file.h, the file backend.

   Writes its own images (raw, LiME, ELF cores for x86_64, i386, AArch64 and
   ARM, synthetic Windows crash dumps: 64- and 32-bit, full and bitmap) into
   a temporary directory, reads them back through the vmi.h API,
   then opens prefixes (every one near a structure, a fixed-seed sample of
   the rest) and thousands of corrupted copies of them: each
   must fail cleanly or work, never crash (run it under ASan and UBSan).

   Build:
       gcc -std=c99 -Wall -Wextra -Wpedantic -Werror -Wshadow -Wstrict-prototypes \
           -g -fsanitize=address,undefined -I. tests/unit/test_file.c -o /tmp/test_file
   Run:
       /tmp/test_file [SEED_DIR]
   With SEED_DIR, also writes every image there (a seed corpus for
   tests/fuzz/fuzz_file.c). Prints "N passed, M failed"; exits 1 on failure.
*/
#define _XOPEN_SOURCE 700 /* mkdtemp */

#define VMI_IMPLEMENTATION
#include "vmi.h"
#include "vmi_file.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- checks -------------------------------------------------------------- */

static int g_pass, g_fail;

static void check(int ok, const char *file, int line, const char *what, const char *detail)
{
    if (ok) {
        g_pass++;
        return;
    }
    g_fail++;
    printf("%s:%d: %s: %s\n", file, line, what, detail);
}

static void check_u64(const char *file, int line, const char *what, uint64_t got,
                      uint64_t want)
{
    char msg[128];
    snprintf(msg, sizeof msg, "expected 0x%llx, got 0x%llx", (unsigned long long)want,
             (unsigned long long)got);
    check(got == want, file, line, what, msg);
}

static void check_str(const char *file, int line, const char *what, const char *got,
                      const char *want)
{
    char msg[256];
    snprintf(msg, sizeof msg, "expected \"%s\", got \"%s\"", want, got ? got : "(null)");
    check(got && strcmp(got, want) == 0, file, line, what, msg);
}

static void check_status(const char *file, int line, const char *what, vmi_status got,
                         vmi_status want, const char *err)
{
    char msg[512];
    snprintf(msg, sizeof msg, "expected %s, got %s (%s)", vmi_status_string(want),
             vmi_status_string(got), err ? err : "");
    check(got == want, file, line, what, msg);
}

#define CHECK(cond, detail) check((cond) != 0, __FILE__, __LINE__, #cond, detail)
#define CHECK_U64(got, want) check_u64(__FILE__, __LINE__, #got, (uint64_t)(got), (uint64_t)(want))
#define CHECK_STR(got, want) check_str(__FILE__, __LINE__, #got, got, want)
#define CHECK_ST(got, want, err) check_status(__FILE__, __LINE__, #got, got, want, err)

/* ---- byte buffers ---------------------------------------------------------- */

typedef struct buf {
    uint8_t *p;
    size_t len, cap;
} buf;

static void b_reserve(buf *b, size_t n)
{
    if (b->len + n <= b->cap)
        return;
    while (b->len + n > b->cap)
        b->cap = b->cap ? b->cap * 2 : 256;
    b->p = (uint8_t *)realloc(b->p, b->cap);
    if (!b->p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
}

static void b_put(buf *b, const void *data, size_t n)
{
    if (n == 0)
        return;
    b_reserve(b, n);
    if (data)
        memcpy(b->p + b->len, data, n);
    else
        memset(b->p + b->len, 0, n);
    b->len += n;
}

static void set16(uint8_t *p, uint64_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void set32(uint8_t *p, uint64_t v)
{
    set16(p, v);
    set16(p + 2, v >> 16);
}

static void set64(uint8_t *p, uint64_t v)
{
    set32(p, v);
    set32(p + 4, v >> 32);
}

static void b_u32(buf *b, uint64_t v)
{
    b_reserve(b, 4);
    set32(b->p + b->len, v);
    b->len += 4;
}

static void b_u64(buf *b, uint64_t v)
{
    b_reserve(b, 8);
    set64(b->p + b->len, v);
    b->len += 8;
}

static void b_free(buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* The byte every image holds at guest-physical pa. */
static uint8_t pattern(uint64_t pa)
{
    return (uint8_t)(pa * 7 + (pa >> 8) * 13 + (pa >> 16) + 0x5a);
}

static void b_pattern(buf *b, uint64_t pa, size_t n)
{
    size_t i;
    b_reserve(b, n);
    for (i = 0; i < n; i++)
        b->p[b->len + i] = pattern(pa + i);
    b->len += n;
}

/* ---- files ------------------------------------------------------------------- */

static char g_dir[256];
static const char *g_seed_dir;

static const char *path_of(const char *name)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    return path;
}

static const char *write_file(const char *name, const void *data, size_t len)
{
    const char *path = path_of(name);
    FILE *fp = fopen(path, "wb");
    if (!fp || (len && fwrite(data, 1, len, fp) != len) || fclose(fp) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
    return path;
}

static void write_seed(const char *name, const buf *b)
{
    char path[512];
    FILE *fp;
    if (!g_seed_dir)
        return;
    snprintf(path, sizeof path, "%s/seed-%s", g_seed_dir, name);
    fp = fopen(path, "wb");
    if (!fp || fwrite(b->p, 1, b->len, fp) != b->len || fclose(fp) != 0)
        fprintf(stderr, "cannot write seed %s\n", path);
}

static int read_back(const char *path, uint8_t *out, size_t len, long offset)
{
    FILE *fp = fopen(path, "rb");
    int ok = fp && fseek(fp, offset, SEEK_SET) == 0 && fread(out, 1, len, fp) == len;
    if (fp)
        fclose(fp);
    return ok;
}

/* ---- a counting allocator: every open/close must balance ---------------- */

typedef struct counts {
    long allocs, frees;
} counts;

static void *count_alloc(size_t size, void *user)
{
    ((counts *)user)->allocs++;
    return malloc(size);
}

static void count_free(void *ptr, void *user)
{
    ((counts *)user)->frees++;
    free(ptr);
}

/* ---- opening ---------------------------------------------------------------- */

typedef struct opened {
    vmi_status st;
    vmi_instance *vmi;
    char err[256];
} opened;

static vmi_status file_open(const char *path, const char *format, uint64_t base, int writable,
                            vmi_backend *be, char *err, size_t errlen, counts *c)
{
    vmi_file_desc fd;
    memset(&fd, 0, sizeof fd);
    fd.path = path;
    fd.format = format;
    fd.base = base;
    fd.writable = writable;
    if (c) {
        fd.allocator.alloc = count_alloc;
        fd.allocator.free = count_free;
        fd.allocator.user = c;
    }
    return vmi_file_open(&fd, be, err, errlen);
}

/* vmi_file_open, then vmi_open with the default paging of vmi_desc. */
static opened open_vmi(const char *path, const char *format, uint64_t base, int writable)
{
    opened o;
    vmi_desc desc;
    memset(&o, 0, sizeof o);
    memset(&desc, 0, sizeof desc);
    o.st = file_open(path, format, base, writable, &desc.backend, o.err, sizeof o.err, NULL);
    if (o.st != VMI_OK)
        return o;
    o.st = vmi_open(&desc, &o.vmi);
    if (o.st != VMI_OK) {
        snprintf(o.err, sizeof o.err, "vmi_open failed");
        o.vmi = NULL;
    }
    return o;
}

/* Reads [pa, pa+len) and compares with the pattern (zeros where `zero_from`
   <= address < `zero_to`). */
static int read_matches(vmi_instance *vmi, uint64_t pa, size_t len, uint64_t zero_from,
                        uint64_t zero_to)
{
    uint8_t *tmp = (uint8_t *)malloc(len);
    size_t i, done = 0;
    int ok = tmp && vmi_read_pa(vmi, pa, tmp, len, &done) == VMI_OK && done == len;
    for (i = 0; ok && i < len; i++) {
        uint8_t want = (pa + i >= zero_from && pa + i < zero_to) ? 0 : pattern(pa + i);
        if (tmp[i] != want) {
            printf("  byte at 0x%llx: expected 0x%02x, got 0x%02x\n",
                   (unsigned long long)(pa + i), want, tmp[i]);
            ok = 0;
        }
    }
    free(tmp);
    return ok;
}

#define NO_ZEROS 0, 0

/* Whatever opened: read every range, every vCPU, a few notes. Never fails a
   check: used on damaged files, where anything but a crash goes. */
static void exercise(vmi_instance *vmi)
{
    size_t n = 0, i;
    const vmi_mem_range *map = vmi_memory_map(vmi, &n);
    uint8_t chunk[4096];
    uint32_t vcpus = 0, v;
    vmi_regs regs;
    const void *data;
    size_t len;
    /* Damaged headers can claim huge zero-filled ranges: read at most 64 KiB
       at each end of a range. */
    for (i = 0; i < n; i++) {
        uint64_t off = 0, size = map[i].size;
        while (off < size) {
            uint64_t step = size - off < sizeof chunk ? size - off : sizeof chunk;
            if (vmi_read_pa(vmi, map[i].pa + off, chunk, (size_t)step, NULL) != VMI_OK)
                break;
            off += step;
            if (off == 0x10000 && size - off > 0x10000)
                off = size - 0x10000;
        }
    }
    if (vmi_vcpu_count(vmi, &vcpus) == VMI_OK)
        for (v = 0; v < vcpus && v < 64; v++)
            vmi_get_regs(vmi, v, &regs);
    vmi_get_regs(vmi, vcpus, &regs);
    vmi_get_note(vmi, "VMCOREINFO", &data, &len);
    vmi_get_note(vmi, "CORE", &data, &len);
    vmi_get_note(vmi, "WINDUMP_HEADER", &data, &len);
}

/* Opens `b` written as `name` with every format, exercises what opens. */
static void open_any(const char *name, const buf *b)
{
    static const char *formats[] = {NULL, "raw", "lime", "elf", "windump"};
    size_t k;
    const char *path = write_file(name, b->p, b->len);
    for (k = 0; k < sizeof formats / sizeof formats[0]; k++) {
        opened o = open_vmi(path, formats[k], 0, 0);
        if (o.st == VMI_OK) {
            exercise(o.vmi);
            vmi_close(o.vmi);
        }
    }
}

/* ---- image builders ------------------------------------------------------ */

#define EM_386 3
#define EM_ARM 40
#define EM_X86_64 62
#define EM_AARCH64 183

typedef struct load {
    uint64_t pa, filesz, memsz;
    uint64_t offset; /* 0: fresh pattern bytes appended; else this file offset */
} load;

static void note_add(buf *n, const char *name, uint32_t type, const void *desc, size_t descsz)
{
    size_t namesz = strlen(name) + 1;
    b_u32(n, namesz);
    b_u32(n, descsz);
    b_u32(n, type);
    b_put(n, name, namesz);
    b_put(n, NULL, (4 - namesz % 4) % 4);
    b_put(n, desc, descsz);
    b_put(n, NULL, (4 - descsz % 4) % 4);
}

/* ELF core: header, PT_NOTE (if any notes), PT_LOADs, notes, data. With
   xnum, e_phnum is PN_XNUM and section header 0 holds the count. */
static void build_elf(buf *out, int is64, unsigned machine, const buf *notes, const load *loads,
                      size_t nloads, int xnum)
{
    size_t ehsize = is64 ? 64 : 52, phent = is64 ? 56 : 32, shent = is64 ? 64 : 40;
    size_t nph = nloads + (notes && notes->len ? 1 : 0);
    size_t phoff = ehsize, shoff = phoff + nph * phent;
    size_t notes_off = shoff + (xnum ? shent : 0);
    size_t data_off = notes_off + (notes ? notes->len : 0);
    size_t i, ph = 0;
    uint8_t *h;
    out->len = 0;
    b_put(out, NULL, data_off);
    h = out->p;
    memcpy(h, "\177ELF", 4);
    h[4] = is64 ? 2 : 1;
    h[5] = 1; /* little-endian */
    h[6] = 1;
    set16(h + 16, 4); /* ET_CORE */
    set16(h + 18, machine);
    set32(h + 20, 1);
    if (is64) {
        set64(h + 32, phoff);
        set64(h + 40, xnum ? shoff : 0);
        set16(h + 52, ehsize);
        set16(h + 54, phent);
        set16(h + 56, xnum ? 0xffff : nph);
        set16(h + 58, shent);
        set16(h + 60, xnum ? 1 : 0);
    } else {
        set32(h + 28, phoff);
        set32(h + 32, xnum ? shoff : 0);
        set16(h + 40, ehsize);
        set16(h + 42, phent);
        set16(h + 44, xnum ? 0xffff : nph);
        set16(h + 46, shent);
        set16(h + 48, xnum ? 1 : 0);
    }
    if (xnum)
        set32(h + shoff + (is64 ? 44 : 28), nph);
    if (notes && notes->len) {
        uint8_t *p = h + phoff;
        set32(p, 4); /* PT_NOTE */
        if (is64) {
            set64(p + 8, notes_off);
            set64(p + 32, notes->len);
            set64(p + 40, notes->len);
        } else {
            set32(p + 4, notes_off);
            set32(p + 16, notes->len);
            set32(p + 20, notes->len);
        }
        memcpy(h + notes_off, notes->p, notes->len);
        ph++;
    }
    for (i = 0; i < nloads; i++, ph++) {
        uint64_t off = loads[i].offset ? loads[i].offset : out->len;
        uint8_t *p;
        if (!loads[i].offset)
            b_pattern(out, loads[i].pa, (size_t)loads[i].filesz);
        p = out->p + phoff + ph * phent;
        set32(p, 1); /* PT_LOAD */
        if (is64) {
            set32(p + 4, 7);
            set64(p + 8, off);
            set64(p + 16, 0xffff880000000000ull + loads[i].pa);
            set64(p + 24, loads[i].pa);
            set64(p + 32, loads[i].filesz);
            set64(p + 40, loads[i].memsz);
        } else {
            set32(p + 4, off);
            set32(p + 8, 0xc0000000u + loads[i].pa);
            set32(p + 12, loads[i].pa);
            set32(p + 16, loads[i].filesz);
            set32(p + 20, loads[i].memsz);
            set32(p + 24, 7);
        }
    }
}

/* NT_PRSTATUS descriptors with registers base+0, base+1, ... in pr_reg order. */
static void prstatus64(buf *n, uint64_t base, unsigned nreg, size_t descsz)
{
    uint8_t d[400];
    unsigned i;
    memset(d, 0, sizeof d);
    set32(d + 32, 1); /* pr_pid */
    for (i = 0; i < nreg; i++)
        set64(d + 112 + i * 8, base + i);
    note_add(n, "CORE", 1, d, descsz);
}

static void prstatus32(buf *n, uint32_t base, unsigned nreg, size_t descsz, int x86)
{
    uint8_t d[160];
    unsigned i;
    memset(d, 0, sizeof d);
    set32(d + 24, 1);
    for (i = 0; i < nreg; i++)
        set32(d + 72 + i * 4, base + i);
    if (x86) { /* 16-bit selectors with junk in the padding half */
        static const unsigned sel[] = {7, 8, 9, 10, 13, 16};
        for (i = 0; i < sizeof sel / sizeof sel[0]; i++)
            set32(d + 72 + sel[i] * 4, 0xdead0000u | (0x10 + sel[i]));
    }
    note_add(n, "CORE", 1, d, descsz);
}

/* QEMUCPUState v1: GPRs base+0x100+i, segment k {0x10+8k, 0xffff+k, k, 0,
   base+0x200+k}, cr[] as given. */
static void qemu_note(buf *n, uint64_t base, uint64_t cr0, uint64_t cr3, uint64_t cr4)
{
    uint8_t d[0x1b0];
    unsigned i;
    memset(d, 0, sizeof d);
    set32(d, 1);
    set32(d + 4, sizeof d);
    for (i = 0; i < 18; i++)
        set64(d + 8 + i * 8, base + 0x100 + i);
    for (i = 0; i < 10; i++) {
        uint8_t *s = d + 0x98 + i * 24;
        set32(s, 0x10 + 8 * i);
        set32(s + 4, 0xffff + i);
        set32(s + 8, i);
        set64(s + 16, base + 0x200 + i);
    }
    set64(d + 0x188, cr0);
    set64(d + 0x190, 0x1111);
    set64(d + 0x198, base + 0x300); /* cr2 */
    set64(d + 0x1a0, cr3);
    set64(d + 0x1a8, cr4);
    note_add(n, "QEMU", 0, d, sizeof d);
}

static const char g_vmcoreinfo[] = "OSRELEASE=6.1.0-test\nPAGESIZE=4096\nSYMBOL(swapper_pg_dir)=ffffffff82a0a000\n";

#define X64_CR0 0x80050033ull
#define X64_CR4 0x003506f0ull /* PAE set */
#define X64_CR3 0x1000ull

/* The x86_64 QEMU core: 2 vCPUs, VMCOREINFO, loads [0,0x300) [0x300,0x500)
   (adjacent: merged), [0x1000, 0x1080 data, 0x1100 zero). */
static void build_x86_64(buf *out, int with_qemu, int with_kdump_dup)
{
    buf n;
    load loads[4];
    size_t nl = 3;
    memset(&n, 0, sizeof n);
    prstatus64(&n, 0x1000, 27, 336);
    prstatus64(&n, 0x2000, 27, 336);
    if (with_qemu) {
        qemu_note(&n, 0x10000, X64_CR0, X64_CR3, X64_CR4);
        qemu_note(&n, 0x20000, 0x10, 0, 0); /* an AP still in real mode */
    }
    note_add(&n, "VMCOREINFO", 0, g_vmcoreinfo, sizeof g_vmcoreinfo - 1);
    memset(loads, 0, sizeof loads);
    loads[0].pa = 0;
    loads[0].filesz = loads[0].memsz = 0x300;
    loads[1].pa = 0x300;
    loads[1].filesz = loads[1].memsz = 0x200;
    loads[2].pa = 0x1000;
    loads[2].filesz = 0x80;
    loads[2].memsz = 0x100;
    if (with_kdump_dup) { /* kdump's kernel-text PT_LOAD: inside load 0 */
        loads[3].pa = 0x100;
        loads[3].filesz = loads[3].memsz = 0x80;
        nl = 4;
    }
    build_elf(out, 1, EM_X86_64, &n, loads, nl, 0);
    b_free(&n);
}

static void build_i386(buf *out, int xnum)
{
    buf n;
    load loads[2];
    memset(&n, 0, sizeof n);
    prstatus32(&n, 0x3000, 17, 144, 1);
    qemu_note(&n, 0x30000, 0x80000011ull, 0x2000, 0x20); /* PAE paging */
    memset(loads, 0, sizeof loads);
    loads[0].pa = 0;
    loads[0].filesz = loads[0].memsz = 0x200;
    loads[1].pa = 0x400;
    loads[1].filesz = loads[1].memsz = 0x100;
    build_elf(out, 0, EM_386, &n, loads, 2, xnum);
    b_free(&n);
}

static void build_aarch64(buf *out)
{
    buf n;
    load loads[2];
    uint8_t fp[528];
    memset(&n, 0, sizeof n);
    memset(fp, 0, sizeof fp);
    prstatus64(&n, 0x4000, 34, 392);
    note_add(&n, "CORE", 2, fp, sizeof fp); /* NT_PRFPREG: not a vCPU */
    prstatus64(&n, 0x5000, 34, 392);
    memset(loads, 0, sizeof loads);
    loads[0].pa = 0x40000000;
    loads[0].filesz = loads[0].memsz = 0x200;
    loads[1].pa = 0x40001000;
    loads[1].filesz = loads[1].memsz = 0x100;
    build_elf(out, 1, EM_AARCH64, &n, loads, 2, 0);
    b_free(&n);
}

static void build_arm(buf *out)
{
    buf n;
    load l;
    memset(&n, 0, sizeof n);
    prstatus32(&n, 0x6000, 18, 148, 0);
    memset(&l, 0, sizeof l);
    l.pa = 0x40000000;
    l.filesz = l.memsz = 0x180;
    build_elf(out, 0, EM_ARM, &n, &l, 1, 0);
    b_free(&n);
}

static void lime_range(buf *b, uint64_t start, uint64_t end_inclusive, int data)
{
    b_u32(b, 0x4C694D45u);
    b_u32(b, 1);
    b_u64(b, start);
    b_u64(b, end_inclusive);
    b_put(b, NULL, 8);
    if (data)
        b_pattern(b, start, (size_t)(end_inclusive - start + 1));
}

/* Out of order on purpose; a hole at [0x200, 0x300); 0x500 touches 0x300's
   end in memory but not in the file. */
static void build_lime(buf *out)
{
    out->len = 0;
    lime_range(out, 0x300, 0x4ff, 1);
    lime_range(out, 0x000, 0x1ff, 1);
    lime_range(out, 0x500, 0x5ff, 1);
}


/* Synthetic Windows crash dumps: a header padded with "PAGE" as Windows
   pads it, then pages holding pattern(pa). */
#define WIN_DTB64 0x1aa000ull
#define WIN_DTB32 0x39000ull
#define WIN_KDBG64 0xfffff80002c4a0f0ull
#define WIN_MXCSR 0x1f80u

typedef struct wrun {
    uint64_t base, count; /* pages */
} wrun;

/* 64-bit: 2 processors, CONTEXT rax=0x1000+i order, rip 0xfffff80001234567.
   32-bit: 1 processor, PaeEnabled = pae, CONTEXT eax 0x3005. */
static void win_header(buf *out, int is64, unsigned type, int pae)
{
    size_t i, hsize = is64 ? 0x2000 : 0x1000;
    uint8_t *h, *c;
    out->len = 0;
    b_put(out, NULL, hsize);
    h = out->p;
    for (i = 0; i < hsize; i += 4)
        memcpy(h + i, "PAGE", 4);
    memcpy(h + 4, is64 ? "DU64" : "DUMP", 4);
    set32(h + 8, 15);
    set32(h + 0xc, is64 ? 19041 : 7601);
    if (is64) {
        set64(h + 0x10, WIN_DTB64);
        set64(h + 0x18, 0xfffffa8000000000ull);
        set64(h + 0x20, 0xfffff80002e9ae90ull); /* PsLoadedModuleList */
        set64(h + 0x28, 0xfffff80002e7bb30ull); /* PsActiveProcessHead */
        set32(h + 0x30, 0x8664);
        set32(h + 0x34, 2);
        set64(h + 0x80, WIN_KDBG64);
        set32(h + 0xf98, type);
        c = h + 0x348;
        memset(c, 0, 0x4d0);
        set32(c + 0x30, 0x10001f); /* CONTEXT_AMD64 | CONTROL | INTEGER | ... */
        set32(c + 0x34, WIN_MXCSR);
        set32(c + 0x118, WIN_MXCSR);
        set16(c + 0x38, 0x10); /* cs */
        set16(c + 0x42, 0x18); /* ss */
        set32(c + 0x44, 0x246);
        for (i = 0; i < 16; i++) /* rax rcx rdx rbx rsp rbp rsi rdi r8-r15 */
            set64(c + 0x78 + 8 * i, 0x1000 + i);
        set64(c + 0xf8, 0xfffff80001234567ull);
    } else {
        set32(h + 0x10, WIN_DTB32);
        set32(h + 0x14, 0x80000000u);
        set32(h + 0x18, 0x8055a420u);
        set32(h + 0x1c, 0x8055b158u);
        set32(h + 0x20, 0x14c);
        set32(h + 0x24, 1);
        h[0x5c] = (uint8_t)pae;
        set32(h + 0x60, 0x80545ce0u);
        set32(h + 0xf88, type);
        c = h + 0x320;
        memset(c, 0, 0x2cc);
        set32(c, 0x1003f); /* CONTEXT_i386 | all */
        for (i = 0; i < 6; i++) /* edi esi ebx edx ecx eax */
            set32(c + 0x9c + 4 * i, 0x3000 + i);
        set32(c + 0xb4, 0x3006); /* ebp */
        set32(c + 0xb8, 0x80501234u); /* eip */
        set32(c + 0xbc, 8);
        set32(c + 0xc0, 0x202);
        set32(c + 0xc4, 0x3007); /* esp */
        set32(c + 0xc8, 0x10);
    }
}

static void build_win_full(buf *out, int is64, int pae, const wrun *runs, size_t n)
{
    size_t i, desc = is64 ? 0x88 : 0x64, w = is64 ? 8 : 4;
    uint64_t total = 0;
    win_header(out, is64, 1, pae);
    set32(out->p + desc, n);
    for (i = 0; i < n; i++) {
        uint8_t *r = out->p + desc + 2 * w * (i + 1);
        if (is64) {
            set64(r, runs[i].base);
            set64(r + 8, runs[i].count);
        } else {
            set32(r, runs[i].base);
            set32(r + 4, runs[i].count);
        }
        total += runs[i].count;
    }
    if (is64)
        set64(out->p + desc + 8, total);
    else
        set32(out->p + desc + 4, total);
    for (i = 0; i < n; i++)
        b_pattern(out, runs[i].base * 4096, (size_t)runs[i].count * 4096);
}

/* Full, 64-bit: runs [0,2) [3,4) [4,5) (adjacent in memory and file: one
   range) and [4 GiB, +2 pages); a hole at page 2 and above page 5. */
static const wrun g_win_runs[] = {{0, 2}, {3, 1}, {4, 1}, {0x100000, 2}};

/* Bitmap: pages 0-1, 3-4, 9-17 (across a byte), 0x47; 72 bits, 14 pages,
   the first page at HeaderSize 0x1000 past the summary header. */
static const wrun g_win_bits[] = {{0, 2}, {3, 2}, {9, 9}, {0x47, 1}};
#define WIN_BITMAP_BITS 0x48u
#define WIN_BITMAP_PAGES 14u

static void build_win_bitmap(buf *out, int is64, const char *sig)
{
    size_t i, hdr = is64 ? 0x2000 : 0x1000;
    uint64_t p, first = hdr + 0x1000;
    uint8_t *s;
    win_header(out, is64, 5, 1);
    b_put(out, NULL, 0x1000);
    s = out->p + hdr;
    memcpy(s, sig, 4);
    memcpy(s + 4, "DUMP", 4);
    set64(s + 0x20, first);
    set64(s + 0x28, WIN_BITMAP_PAGES);
    set64(s + 0x30, WIN_BITMAP_BITS);
    for (i = 0; i < sizeof g_win_bits / sizeof g_win_bits[0]; i++)
        for (p = g_win_bits[i].base; p < g_win_bits[i].base + g_win_bits[i].count; p++)
            s[0x38 + p / 8] |= (uint8_t)(1u << (p % 8));
    for (i = 0; i < sizeof g_win_bits / sizeof g_win_bits[0]; i++)
        b_pattern(out, g_win_bits[i].base * 4096, (size_t)g_win_bits[i].count * 4096);
}

/* ---- tests: formats --------------------------------------------------------- */

static void test_raw(void)
{
    buf b;
    uint8_t tmp[16], back[16];
    opened o;
    size_t done = 0, n = 0;
    uint32_t vcpus = 99;
    vmi_regs regs;
    const void *data;
    size_t len;
    const char *path;
    memset(&b, 0, sizeof b);
    b_pattern(&b, 0, 0x3000);
    path = write_file("mem.raw", b.p, b.len);
    write_seed("raw", &b);

    o = open_vmi(path, NULL, 0, 0);
    CHECK_ST(o.st, VMI_OK, o.err);
    if (o.st == VMI_OK) {
        const vmi_mem_range *map = vmi_memory_map(o.vmi, &n);
        CHECK_STR(vmi_get_backend(o.vmi)->name, "file");
        CHECK_STR(vmi_get_backend(o.vmi)->format, "raw");
        CHECK_U64(vmi_get_backend(o.vmi)->arch, VMI_ARCH_UNKNOWN);
        CHECK_U64(vmi_get_backend(o.vmi)->flags & VMI_BACKEND_WRITABLE, 0);
        CHECK_U64(n, 1);
        CHECK_U64(map[0].pa, 0);
        CHECK_U64(map[0].size, 0x3000);
        CHECK_U64(map[0].flags, 0);
        CHECK(map[0].host != NULL, "a raw range points into the mapping");
        CHECK(read_matches(o.vmi, 0xff0, 0x1020, NO_ZEROS), "read across pages");
        CHECK_ST(vmi_read_pa(o.vmi, 0x2ff8, tmp, 16, &done), VMI_ERR_UNMAPPED, "");
        CHECK_U64(done, 8);
        CHECK_ST(vmi_write_pa(o.vmi, 0x10, tmp, 4, NULL), VMI_ERR_READ_ONLY, "");
        CHECK_ST(vmi_vcpu_count(o.vmi, &vcpus), VMI_OK, "");
        CHECK_U64(vcpus, 0);
        CHECK(vmi_get_regs(o.vmi, 0, &regs) != VMI_OK, "a raw image has no registers");
        CHECK_ST(vmi_get_note(o.vmi, "VMCOREINFO", &data, &len), VMI_ERR_NOT_FOUND, "");
        vmi_close(o.vmi);
    }
    CHECK(read_back(path, back, 4, 0x10) && back[0] == pattern(0x10),
          "a refused write leaves the file alone");

    o = open_vmi(path, NULL, 0x40000000, 0);
    CHECK_ST(o.st, VMI_OK, o.err);
    if (o.st == VMI_OK) {
        const vmi_mem_range *map = vmi_memory_map(o.vmi, &n);
        CHECK_U64(map[0].pa, 0x40000000);
        CHECK_ST(vmi_read_pa(o.vmi, 0x40000000, tmp, 16, NULL), VMI_OK, "");
        CHECK_U64(tmp[0], pattern(0)); /* file offset 0 */
        CHECK_U64(tmp[15], pattern(15));
        CHECK_ST(vmi_read_pa(o.vmi, 0, tmp, 1, NULL), VMI_ERR_UNMAPPED, "");
        vmi_close(o.vmi);
    }

    o = open_vmi(path, "raw", 0x1000, 1);
    CHECK_ST(o.st, VMI_OK, o.err);
    if (o.st == VMI_OK) {
        const vmi_mem_range *map = vmi_memory_map(o.vmi, &n);
        CHECK_U64(vmi_get_backend(o.vmi)->flags & VMI_BACKEND_WRITABLE, VMI_BACKEND_WRITABLE);
        CHECK_U64(map[0].flags, VMI_RANGE_WRITABLE);
        memcpy(tmp, "written-by-test!", 16);
        CHECK_ST(vmi_write_pa(o.vmi, 0x1000 + 0x1ff8, tmp, 16, &done), VMI_OK, "");
        CHECK_U64(done, 16);
        vmi_close(o.vmi);
    }
    CHECK(read_back(path, back, 16, 0x1ff8) && memcmp(back, "written-by-test!", 16) == 0,
          "the write reached the file at offset 0x1ff8");
    b_free(&b);
}

static void test_lime(void)
{
    buf b;
    opened o;
    size_t n = 0, done = 0;
    uint8_t tmp[0x200], back[8];
    const char *path;
    memset(&b, 0, sizeof b);
    build_lime(&b);
    path = write_file("mem.lime", b.p, b.len);
    write_seed("lime", &b);

    o = open_vmi(path, NULL, 0x40000000 /* ignored */, 0);
    CHECK_ST(o.st, VMI_OK, o.err);
    if (o.st == VMI_OK) {
        const vmi_mem_range *map = vmi_memory_map(o.vmi, &n);
        CHECK_STR(vmi_get_backend(o.vmi)->format, "lime");
        CHECK_U64(n, 3);
        if (n == 3) {
            CHECK_U64(map[0].pa, 0);
            CHECK_U64(map[0].size, 0x200);
            CHECK_U64(map[1].pa, 0x300);
            CHECK_U64(map[1].size, 0x200);
            CHECK_U64(map[2].pa, 0x500);
            CHECK_U64(map[2].size, 0x100);
            CHECK(map[0].host && map[1].host && map[2].host, "host pointers set");
        }
        CHECK(read_matches(o.vmi, 0x380, 0x200, NO_ZEROS), "read across adjacent ranges");
        CHECK(read_matches(o.vmi, 0, 0x200, NO_ZEROS), "first range");
        CHECK_ST(vmi_read_pa(o.vmi, 0x180, tmp, 0x100, &done), VMI_ERR_UNMAPPED, "");
        CHECK_U64(done, 0x80);
        CHECK_ST(vmi_read_pa(o.vmi, 0x250, tmp, 1, &done), VMI_ERR_UNMAPPED, "");
        CHECK_ST(vmi_read_pa(o.vmi, 0x5f0, tmp, 0x20, &done), VMI_ERR_UNMAPPED, "");
        CHECK_U64(done, 0x10);
        vmi_close(o.vmi);
    }

    o = open_vmi(path, "lime", 0, 1);
    CHECK_ST(o.st, VMI_OK, o.err);
    if (o.st == VMI_OK) {
        CHECK_ST(vmi_write_pa(o.vmi, 0x4fc, "ABCDEFGH", 8, &done), VMI_OK, "");
        vmi_close(o.vmi);
    }
    /* 0x4fc..0x4ff end the first stored range (data at 0x20..0x220), 0x500
       starts the third (header at 0x440, data at 0x460). */
    CHECK(read_back(path, back, 4, 32 + 0x1fc) && memcmp(back, "ABCD", 4) == 0,
          "first half of a write across LiME ranges");
    CHECK(read_back(path, back, 4, 3 * 32 + 0x200 + 0x200) && memcmp(back, "EFGH", 4) == 0,
          "second half of a write across LiME ranges");
    b_free(&b);
}

static void test_x86_64(void)
{
    buf b;
    opened o;
    size_t n = 0, len = 0, done = 0;
    uint32_t vcpus = 0;
    vmi_regs r;
    const void *data = NULL;
    uint8_t tmp[0x40], back[4];
    const char *path;
    memset(&b, 0, sizeof b);
    build_x86_64(&b, 1, 0);
    path = write_file("qemu-x86_64.elf", b.p, b.len);
    write_seed("qemu-x86_64.elf", &b);

    o = open_vmi(path, NULL, 0, 0);
    CHECK_ST(o.st, VMI_OK, o.err);
    if (o.st != VMI_OK) {
        b_free(&b);
        return;
    }
    {
        const vmi_mem_range *map = vmi_memory_map(o.vmi, &n);
        CHECK_STR(vmi_get_backend(o.vmi)->format, "elf-qemu");
        CHECK_U64(vmi_get_backend(o.vmi)->arch, VMI_ARCH_X86_64);
        CHECK_U64(n, 3);
        if (n == 3) {
            CHECK_U64(map[0].pa, 0);
            CHECK_U64(map[0].size, 0x500); /* two PT_LOADs merged */
            CHECK_U64(map[1].pa, 0x1000);
            CHECK_U64(map[1].size, 0x80);
            CHECK(map[1].host != NULL, "data part of PT_LOAD 2");
            CHECK_U64(map[2].pa, 0x1080);
            CHECK_U64(map[2].size, 0x80);
            CHECK(map[2].host == NULL, "zero tail has no host pointer");
        }
    }
    CHECK(read_matches(o.vmi, 0x2f0, 0x20, NO_ZEROS), "across merged PT_LOADs");
    CHECK(read_matches(o.vmi, 0x1070, 0x40, 0x1080, 0x1100), "data then zero tail");
    CHECK_ST(vmi_read_pa(o.vmi, 0x10f0, tmp, 0x20, &done), VMI_ERR_UNMAPPED, "");
    CHECK_U64(done, 0x10);
    CHECK_ST(vmi_write_pa(o.vmi, 0x10, tmp, 4, NULL), VMI_ERR_READ_ONLY, "");

    CHECK_ST(vmi_vcpu_count(o.vmi, &vcpus), VMI_OK, "");
    CHECK_U64(vcpus, 2);
    memset(&r, 0xcc, sizeof r);
    CHECK_ST(vmi_get_regs(o.vmi, 0, &r), VMI_OK, vmi_last_error(o.vmi));
    CHECK_U64(r.arch, VMI_ARCH_X86_64);
    CHECK_U64(r.valid, VMI_REGS_GPR | VMI_REGS_SEGMENT | VMI_REGS_CONTROL);
    /* QEMU note wins for what it has */
    CHECK_U64(r.x86.rax, 0x10100);
    CHECK_U64(r.x86.rbx, 0x10101);
    CHECK_U64(r.x86.rsp, 0x10106);
    CHECK_U64(r.x86.r8, 0x10108);
    CHECK_U64(r.x86.r15, 0x1010f);
    CHECK_U64(r.x86.rip, 0x10110);
    CHECK_U64(r.x86.rflags, 0x10111);
    CHECK_U64(r.x86.cs, 0x10);
    CHECK_U64(r.x86.ds, 0x18);
    CHECK_U64(r.x86.ss, 0x10 + 8 * 5);
    CHECK_U64(r.x86.fs_base, 0x10203);
    CHECK_U64(r.x86.gs_base, 0x10204);
    CHECK_U64(r.x86.gdtr_base, 0x10208);
    CHECK_U64(r.x86.gdtr_limit, 0xffff + 8);
    CHECK_U64(r.x86.idtr_base, 0x10209);
    CHECK_U64(r.x86.idtr_limit, 0xffff + 9);
    CHECK_U64(r.x86.cr0, X64_CR0);
    CHECK_U64(r.x86.cr2, 0x10300);
    CHECK_U64(r.x86.cr3, X64_CR3);
    CHECK_U64(r.x86.cr4, X64_CR4);
    CHECK_U64(r.x86.efer, 0x500); /* LME | LMA, NXE unknown */
    CHECK_U64(r.x86.cr8, 0);
    CHECK_U64(r.x86.kernel_gs_base, 0);

    CHECK_ST(vmi_get_regs(o.vmi, 1, &r), VMI_OK, vmi_last_error(o.vmi));
    CHECK_U64(r.x86.rax, 0x20100);
    CHECK_U64(r.x86.cr0, 0x10);
    CHECK_U64(r.x86.efer, 0); /* paging off: not in long mode */
    CHECK(vmi_get_regs(o.vmi, 2, &r) != VMI_OK, "no vCPU 2");

    CHECK_ST(vmi_get_note(o.vmi, "VMCOREINFO", &data, &len), VMI_OK, "");
    CHECK_U64(len, sizeof g_vmcoreinfo - 1);
    CHECK(data && len == sizeof g_vmcoreinfo - 1 && memcmp(data, g_vmcoreinfo, len) == 0,
          "VMCOREINFO text");
    CHECK_ST(vmi_get_note(o.vmi, "CORE", &data, &len), VMI_OK, "");
    CHECK_U64(len, 336);
    CHECK_ST(vmi_get_note(o.vmi, "NOPE", &data, &len), VMI_ERR_NOT_FOUND, "");
    vmi_close(o.vmi);

    /* Writable: the data part takes writes, the zero tail refuses them. */
    o = open_vmi(path, "elf", 0, 1);
    CHECK_ST(o.st, VMI_OK, o.err);
    if (o.st == VMI_OK) {
        CHECK_ST(vmi_write_pa(o.vmi, 0x1000, "WXYZ", 4, NULL), VMI_OK, "");
        CHECK_ST(vmi_write_pa(o.vmi, 0x1090, "WXYZ", 4, NULL), VMI_ERR_READ_ONLY, "");
        vmi_close(o.vmi);
    }
    {
        /* PT_LOAD 2's data follows the 0x500 bytes of loads 0 and 1 */
        long off = (long)(b.len - 0x80);
        CHECK(read_back(path, back, 4, off) && memcmp(back, "WXYZ", 4) == 0,
              "write through an ELF PT_LOAD reached the file");
    }
    b_free(&b);

    /* Every allocation is freed at close; err may be NULL or short. */
    {
        vmi_backend be;
        counts c;
        char small[8];
        memset(&c, 0, sizeof c);
        CHECK_ST(file_open(path, NULL, 0, 0, &be, NULL, 0, &c), VMI_OK, "");
        be.close(be.ctx);
        CHECK(c.allocs > 0 && c.allocs == c.frees, "allocations balance after close");
        CHECK_ST(file_open(path_of("missing"), NULL, 0, 0, &be, NULL, 0, NULL), VMI_ERR_IO, "");
        CHECK_ST(file_open(path_of("missing"), NULL, 0, 0, &be, small, sizeof small, NULL),
                 VMI_ERR_IO, "");
        CHECK_U64(strlen(small), sizeof small - 1);
    }

    /* Without QEMU notes: kdump style, GPRs from NT_PRSTATUS only; and the
       kernel-text PT_LOAD that repeats part of RAM is dropped. */
    build_x86_64(&b, 0, 1);
    path = write_file("kdump-x86_64.elf", b.p, b.len);
    write_seed("kdump-x86_64.elf", &b);
    o = open_vmi(path, NULL, 0, 0);
    CHECK_ST(o.st, VMI_OK, o.err);
    if (o.st == VMI_OK) {
        vmi_memory_map(o.vmi, &n);
        CHECK_STR(vmi_get_backend(o.vmi)->format, "elf-kdump");
        CHECK_U64(n, 3);
        CHECK(read_matches(o.vmi, 0x80, 0x100, NO_ZEROS), "over the repeated kernel text");
        CHECK_ST(vmi_vcpu_count(o.vmi, &vcpus), VMI_OK, "");
        CHECK_U64(vcpus, 2);
        CHECK_ST(vmi_get_regs(o.vmi, 1, &r), VMI_OK, vmi_last_error(o.vmi));
        CHECK_U64(r.valid, VMI_REGS_GPR);
        CHECK_U64(r.x86.r15, 0x2000);
        CHECK_U64(r.x86.rbp, 0x2004);
        CHECK_U64(r.x86.rax, 0x200a);
        CHECK_U64(r.x86.rdi, 0x200e);
        CHECK_U64(r.x86.rip, 0x2010);
        CHECK_U64(r.x86.cs, 0x2011);
        CHECK_U64(r.x86.rflags, 0x2012);
        CHECK_U64(r.x86.rsp, 0x2013);
        CHECK_U64(r.x86.fs_base, 0x2015);
        CHECK_U64(r.x86.gs, 0x201a);
        CHECK_U64(r.x86.cr3, 0);
        vmi_close(o.vmi);
    }
    b_free(&b);
}

static void test_i386(void)
{
    buf b;
    opened o;
    vmi_regs r;
    uint32_t vcpus = 0;
    int xnum;
    memset(&b, 0, sizeof b);
    for (xnum = 0; xnum < 2; xnum++) {
        const char *name = xnum ? "qemu-i386-xnum.elf" : "qemu-i386.elf";
        build_i386(&b, xnum);
        o = open_vmi(write_file(name, b.p, b.len), NULL, 0, 0);
        write_seed(name, &b);
        CHECK_ST(o.st, VMI_OK, o.err);
        if (o.st != VMI_OK)
            continue;
        CHECK_STR(vmi_get_backend(o.vmi)->format, "elf-qemu");
        CHECK_U64(vmi_get_backend(o.vmi)->arch, VMI_ARCH_X86);
        CHECK(read_matches(o.vmi, 0x400, 0x100, NO_ZEROS), "i386 PT_LOAD 1");
        CHECK_ST(vmi_vcpu_count(o.vmi, &vcpus), VMI_OK, "");
        CHECK_U64(vcpus, 1);
        CHECK_ST(vmi_get_regs(o.vmi, 0, &r), VMI_OK, vmi_last_error(o.vmi));
        CHECK_U64(r.arch, VMI_ARCH_X86);
        CHECK_U64(r.valid, VMI_REGS_GPR | VMI_REGS_SEGMENT | VMI_REGS_CONTROL);
        CHECK_U64(r.x86.cr3, 0x2000);
        CHECK_U64(r.x86.efer, 0);
        CHECK_U64(r.x86.rax, 0x30100);
        vmi_close(o.vmi);
    }
    /* NT_PRSTATUS alone: the i386 user_regs_struct */
    {
        buf n;
        load l;
        memset(&n, 0, sizeof n);
        prstatus32(&n, 0x3000, 17, 144, 1);
        memset(&l, 0, sizeof l);
        l.filesz = l.memsz = 0x100;
        build_elf(&b, 0, EM_386, &n, &l, 1, 0);
        b_free(&n);
        o = open_vmi(write_file("i386-prstatus.elf", b.p, b.len), NULL, 0, 0);
        CHECK_ST(o.st, VMI_OK, o.err);
        if (o.st == VMI_OK) {
            CHECK_STR(vmi_get_backend(o.vmi)->format, "elf");
            CHECK_ST(vmi_get_regs(o.vmi, 0, &r), VMI_OK, vmi_last_error(o.vmi));
            CHECK_U64(r.valid, VMI_REGS_GPR);
            CHECK_U64(r.x86.rbx, 0x3000);
            CHECK_U64(r.x86.rcx, 0x3001);
            CHECK_U64(r.x86.rax, 0x3006);
            CHECK_U64(r.x86.ds, 0x17);
            CHECK_U64(r.x86.gs, 0x1a);
            CHECK_U64(r.x86.rip, 0x300c);
            CHECK_U64(r.x86.cs, 0x1d);
            CHECK_U64(r.x86.rflags, 0x300e);
            CHECK_U64(r.x86.rsp, 0x300f);
            CHECK_U64(r.x86.ss, 0x20);
            vmi_close(o.vmi);
        }
    }
    b_free(&b);
}

static void test_arm(void)
{
    buf b;
    opened o;
    vmi_regs r;
    uint32_t vcpus = 0;
    size_t n = 0;
    memset(&b, 0, sizeof b);
    build_aarch64(&b);
    write_seed("aarch64.elf", &b);
    o = open_vmi(write_file("aarch64.elf", b.p, b.len), NULL, 0, 0);
    CHECK_ST(o.st, VMI_OK, o.err);
    if (o.st == VMI_OK) {
        vmi_memory_map(o.vmi, &n);
        CHECK_STR(vmi_get_backend(o.vmi)->format, "elf");
        CHECK_U64(vmi_get_backend(o.vmi)->arch, VMI_ARCH_AARCH64);
        CHECK_U64(n, 2);
        CHECK(read_matches(o.vmi, 0x40001000, 0x100, NO_ZEROS), "AArch64 PT_LOAD 1");
        CHECK_ST(vmi_vcpu_count(o.vmi, &vcpus), VMI_OK, "");
        CHECK_U64(vcpus, 2); /* the NT_PRFPREG note is no vCPU */
        CHECK_ST(vmi_get_regs(o.vmi, 1, &r), VMI_OK, vmi_last_error(o.vmi));
        CHECK_U64(r.arch, VMI_ARCH_AARCH64);
        CHECK_U64(r.valid, VMI_REGS_GPR);
        CHECK_U64(r.arm64.x[0], 0x5000);
        CHECK_U64(r.arm64.x[30], 0x501e);
        CHECK_U64(r.arm64.sp, 0x501f);
        CHECK_U64(r.arm64.pc, 0x5020);
        CHECK_U64(r.arm64.pstate, 0x5021);
        CHECK_U64(r.arm64.ttbr1, 0);
        vmi_close(o.vmi);
    }
    build_arm(&b);
    write_seed("arm.elf", &b);
    o = open_vmi(write_file("arm.elf", b.p, b.len), NULL, 0, 0);
    CHECK_ST(o.st, VMI_OK, o.err);
    if (o.st == VMI_OK) {
        CHECK_U64(vmi_get_backend(o.vmi)->arch, VMI_ARCH_ARM);
        CHECK(read_matches(o.vmi, 0x40000000, 0x180, NO_ZEROS), "ARM PT_LOAD");
        CHECK_ST(vmi_get_regs(o.vmi, 0, &r), VMI_OK, vmi_last_error(o.vmi));
        CHECK_U64(r.arch, VMI_ARCH_ARM);
        CHECK_U64(r.valid, VMI_REGS_GPR);
        CHECK_U64(r.arm.r[0], 0x6000);
        CHECK_U64(r.arm.r[15], 0x600f);
        CHECK_U64(r.arm.cpsr, 0x6010);
        vmi_close(o.vmi);
    }
    b_free(&b);
}

/* ---- tests: refusals ---------------------------------------------------------- */

/* Opens `b` and expects `want`, an error naming the file and containing
   `needle`, *out untouched and every allocation freed. */
static void expect_fail(const char *file, int line, const char *name, const buf *b,
                        const char *format, vmi_status want, const char *needle)
{
    vmi_backend be, before;
    char err[256], what[128];
    counts c;
    vmi_status st;
    const char *path = b ? write_file(name, b->p, b->len) : path_of(name);
    memset(&c, 0, sizeof c);
    memset(&be, 0xab, sizeof be);
    before = be;
    st = file_open(path, format, 0, 0, &be, err, sizeof err, &c);
    snprintf(what, sizeof what, "open %s", name);
    check_status(file, line, what, st, want, err);
    if (st == VMI_OK) {
        be.close(be.ctx);
        return;
    }
    {
        char msg[400];
        snprintf(msg, sizeof msg, "expected \"%s\" and the file name in \"%s\"", needle, err);
        check(strstr(err, name) != NULL && strstr(err, needle) != NULL, file, line, what, msg);
        snprintf(msg, sizeof msg, "%ld allocations, %ld frees", c.allocs, c.frees);
        check(c.allocs == c.frees, file, line, what, msg);
        check(memcmp(&be, &before, sizeof be) == 0, file, line, what,
              "vmi_backend changed on failure");
    }
}

#define EXPECT_FAIL(name, b, format, want, needle)                                          \
    expect_fail(__FILE__, __LINE__, name, b, format, want, needle)

static uint8_t *ph64(buf *b, unsigned i)
{
    return b->p + 64 + i * 56;
}

static void test_refusals(void)
{
    buf b, n;
    load loads[2];
    memset(&b, 0, sizeof b);
    memset(&n, 0, sizeof n);

    EXPECT_FAIL("does-not-exist", NULL, NULL, VMI_ERR_IO, "cannot open");
    EXPECT_FAIL(".", NULL, NULL, VMI_ERR_ARG, "not a regular file");
    b.len = 0;
    EXPECT_FAIL("empty", &b, NULL, VMI_ERR_FORMAT, "empty");
    b_put(&b, "PAGEDU64", 8);
    b_put(&b, NULL, 0x100);
    EXPECT_FAIL("win.dmp", &b, NULL, VMI_ERR_TRUNCATED, "header cut short");
    EXPECT_FAIL("bogus-format", &b, "vmem", VMI_ERR_ARG, "vmem");
    EXPECT_FAIL("forced-lime", &b, "lime", VMI_ERR_FORMAT, "magic");
    EXPECT_FAIL("forced-elf", &b, "elf", VMI_ERR_FORMAT, "ELF magic");

    /* raw base past the end of the address space */
    {
        vmi_backend be;
        char err[256];
        const char *path = write_file("raw-high", b.p, b.len);
        CHECK_ST(file_open(path, "raw", 0xffffffffffffff00ull, 0, &be, err, sizeof err, NULL),
                 VMI_ERR_ARG, err);
    }

    /* LiME */
    build_lime(&b);
    b.p[4] = 2;
    EXPECT_FAIL("lime-v2", &b, NULL, VMI_ERR_UNSUPPORTED, "version 2");
    b.len = 0;
    lime_range(&b, 0x2000, 0x1000, 0);
    b_put(&b, NULL, 0x2000);
    EXPECT_FAIL("lime-backwards", &b, NULL, VMI_ERR_FORMAT, "below start");
    b.len = 0;
    lime_range(&b, 0, UINT64_MAX, 0);
    b_put(&b, NULL, 64);
    EXPECT_FAIL("lime-huge", &b, NULL, VMI_ERR_TRUNCATED, "LiME range 0");
    build_lime(&b);
    b.len -= 1;
    EXPECT_FAIL("lime-short", &b, NULL, VMI_ERR_TRUNCATED, "LiME range 2");
    build_lime(&b);
    b_put(&b, NULL, 8);
    EXPECT_FAIL("lime-tail", &b, NULL, VMI_ERR_TRUNCATED, "LiME header 3");
    b.len = 0;
    lime_range(&b, 0x000, 0x1ff, 1);
    lime_range(&b, 0x100, 0x2ff, 1);
    EXPECT_FAIL("lime-overlap", &b, NULL, VMI_ERR_FORMAT, "overlaps");
    b.len = 0;
    lime_range(&b, 0xfffffffffffff000ull, 0xffffffffffffffffull, 1);
    {   /* the last page of the address space: pa + size wraps to 0 */
        vmi_backend be;
        char err[256];
        vmi_status st = file_open(write_file("lime-top", b.p, b.len), NULL, 0, 0, &be, err,
                                  sizeof err, NULL);
        CHECK_ST(st, VMI_ERR_FORMAT, err);
        if (st == VMI_OK)
            be.close(be.ctx);
    }

    /* ELF */
    build_x86_64(&b, 1, 0);
    b.p[5] = 2;
    EXPECT_FAIL("big-endian.elf", &b, NULL, VMI_ERR_UNSUPPORTED, "big-endian");
    build_x86_64(&b, 1, 0);
    b.p[16] = 2; /* ET_EXEC */
    EXPECT_FAIL("exec.elf", &b, NULL, VMI_ERR_FORMAT, "ET_CORE");
    build_x86_64(&b, 1, 0);
    set16(b.p + 54, 40);
    EXPECT_FAIL("phentsize.elf", &b, NULL, VMI_ERR_FORMAT, "e_phentsize");
    build_x86_64(&b, 1, 0);
    set16(b.p + 56, 0xfffe);
    EXPECT_FAIL("phnum.elf", &b, NULL, VMI_ERR_TRUNCATED, "program headers");
    build_x86_64(&b, 1, 0);
    set16(b.p + 56, 0);
    EXPECT_FAIL("nophdr.elf", &b, NULL, VMI_ERR_FORMAT, "without program headers");
    build_x86_64(&b, 1, 0);
    set64(ph64(&b, 3) + 32, 0x100000); /* PT_LOAD 3: filesz */
    set64(ph64(&b, 3) + 40, 0x100000);
    EXPECT_FAIL("load-past-eof.elf", &b, NULL, VMI_ERR_TRUNCATED, "PT_LOAD 3 ends at");
    build_x86_64(&b, 1, 0);
    set64(ph64(&b, 1) + 8, UINT64_MAX - 4); /* PT_LOAD 1: offset */
    EXPECT_FAIL("load-offset.elf", &b, NULL, VMI_ERR_FORMAT, "overflows");
    build_x86_64(&b, 1, 0);
    set64(ph64(&b, 3) + 40, 0x40); /* p_memsz < p_filesz */
    EXPECT_FAIL("filesz.elf", &b, NULL, VMI_ERR_FORMAT, "p_filesz");
    build_x86_64(&b, 1, 0);
    set64(ph64(&b, 3) + 24, UINT64_MAX - 0x10); /* paddr: wraps */
    EXPECT_FAIL("paddr-wrap.elf", &b, NULL, VMI_ERR_FORMAT, "wraps");
    build_x86_64(&b, 1, 0);
    set64(ph64(&b, 0) + 32, b.len); /* PT_NOTE 0 size */
    EXPECT_FAIL("note-past-eof.elf", &b, NULL, VMI_ERR_TRUNCATED, "PT_NOTE 0");
    build_x86_64(&b, 1, 0);
    set32(b.p + 64 * 1 + 56 * 4 + 4, 0xfffffff0u); /* first note's descsz */
    EXPECT_FAIL("note-desc.elf", &b, NULL, VMI_ERR_TRUNCATED, "runs past");

    /* partial overlap between PT_LOADs */
    memset(loads, 0, sizeof loads);
    loads[0].filesz = loads[0].memsz = 0x200;
    loads[1].pa = 0x100;
    loads[1].filesz = loads[1].memsz = 0x200;
    build_elf(&b, 1, EM_X86_64, NULL, loads, 2, 0);
    EXPECT_FAIL("overlap.elf", &b, NULL, VMI_ERR_FORMAT, "PT_LOAD 1 [0x100-0x300) overlaps PT_LOAD 0");
    /* a file-backed PT_LOAD inside a zero tail is not a repeat */
    loads[0].filesz = 0x10;
    loads[1].filesz = loads[1].memsz = 0x80;
    build_elf(&b, 1, EM_X86_64, NULL, loads, 2, 0);
    EXPECT_FAIL("overlap-tail.elf", &b, NULL, VMI_ERR_FORMAT, "overlaps");
    /* PN_XNUM with a huge count */
    build_i386(&b, 1);
    set32(b.p + 52 + 3 * 32 + 28, 0xffffffffu); /* section header 0's sh_info */
    EXPECT_FAIL("xnum-huge.elf", &b, NULL, VMI_ERR_LIMIT, "program headers");
    build_i386(&b, 1);
    set32(b.p + 32, 0); /* e_shoff */
    EXPECT_FAIL("xnum-noshdr.elf", &b, NULL, VMI_ERR_FORMAT, "PN_XNUM");
    /* a too short QEMU note: registers refused, file still opens */
    {
        vmi_backend be;
        char err[256];
        vmi_regs r;
        uint32_t count = 0;
        n.len = 0;
        note_add(&n, "QEMU", 0, "\1\0\0\0\x40\0\0\0", 8);
        loads[0].pa = 0;
        loads[0].filesz = loads[0].memsz = 0x100;
        build_elf(&b, 1, EM_X86_64, &n, loads, 1, 0);
        CHECK_ST(file_open(write_file("qemu-short.elf", b.p, b.len), NULL, 0, 0, &be, err,
                           sizeof err, NULL),
                 VMI_OK, err);
        be.vcpu_count(be.ctx, &count);
        CHECK_U64(count, 1);
        CHECK_ST(be.get_regs(be.ctx, 0, &r), VMI_ERR_FORMAT, be.last_error(be.ctx));
        CHECK(strstr(be.last_error(be.ctx), "qemu-short.elf") != NULL, be.last_error(be.ctx));
        be.close(be.ctx);
    }
    b_free(&b);
    b_free(&n);
}

/* ---- tests: Windows crash dumps (synthetic) ---------------------------------- */

/* Ranges `want` (pages) with host pointers and the pattern in every byte;
   the page past each range unmapped. */
static void check_win_ranges(vmi_instance *vmi, const wrun *want, size_t nwant, const char *what)
{
    size_t n = 0, i;
    const vmi_mem_range *map = vmi_memory_map(vmi, &n);
    uint8_t byte;
    CHECK_U64(n, nwant);
    for (i = 0; i < n && i < nwant; i++) {
        uint64_t pa = want[i].base * 4096, size = want[i].count * 4096;
        CHECK_U64(map[i].pa, pa);
        CHECK_U64(map[i].size, size);
        CHECK(map[i].host != NULL, what);
        CHECK(read_matches(vmi, pa, (size_t)size, NO_ZEROS), what);
        CHECK_ST(vmi_read_pa(vmi, pa + size, &byte, 1, NULL), VMI_ERR_UNMAPPED, what);
    }
}

/* The note is the file's header, byte for byte. */
static void check_win_note(vmi_instance *vmi, const buf *b, size_t hsize)
{
    const void *data = NULL;
    size_t len = 0;
    CHECK_ST(vmi_get_note(vmi, "WINDUMP_HEADER", &data, &len), VMI_OK, vmi_last_error(vmi));
    CHECK_U64(len, hsize);
    CHECK(data && len == hsize && memcmp(data, b->p, hsize) == 0,
          "WINDUMP_HEADER note is the raw dump header");
    CHECK_ST(vmi_get_note(vmi, "VMCOREINFO", &data, &len), VMI_ERR_NOT_FOUND, "");
}

static void check_win64_regs(vmi_instance *vmi)
{
    vmi_regs r;
    vmi_paging pg;
    uint32_t vcpus = 0;
    CHECK_U64(vmi_get_backend(vmi)->arch, VMI_ARCH_X86_64);
    CHECK_ST(vmi_vcpu_count(vmi, &vcpus), VMI_OK, "");
    CHECK_U64(vcpus, 2);
    CHECK_ST(vmi_get_regs(vmi, 0, &r), VMI_OK, vmi_last_error(vmi));
    CHECK_U64(r.arch, VMI_ARCH_X86_64);
    CHECK_U64(r.valid, VMI_REGS_CONTROL | VMI_REGS_GPR);
    CHECK_U64(r.x86.cr3, WIN_DTB64);
    CHECK_U64(r.x86.rax, 0x1000);
    CHECK_U64(r.x86.rcx, 0x1001);
    CHECK_U64(r.x86.rbx, 0x1003);
    CHECK_U64(r.x86.rsp, 0x1004);
    CHECK_U64(r.x86.rdi, 0x1007);
    CHECK_U64(r.x86.r8, 0x1008);
    CHECK_U64(r.x86.r15, 0x100f);
    CHECK_U64(r.x86.rip, 0xfffff80001234567ull);
    CHECK_U64(r.x86.rflags, 0x246);
    CHECK_U64(r.x86.cs, 0x10);
    CHECK_U64(r.x86.ss, 0x18);
    CHECK_ST(vmi_paging_from_regs(&r, &pg), VMI_OK, "");
    CHECK_U64(pg.mode, VMI_PAGING_IA32E);
    CHECK_U64(pg.dtb, WIN_DTB64);
    CHECK_U64(pg.flags & VMI_PAGING_NXE, VMI_PAGING_NXE);
    CHECK_ST(vmi_get_regs(vmi, 1, &r), VMI_OK, vmi_last_error(vmi));
    CHECK_U64(r.valid, VMI_REGS_CONTROL); /* the CONTEXT is vCPU 0's */
    CHECK_U64(r.x86.cr3, WIN_DTB64);
    CHECK_ST(vmi_get_regs(vmi, 2, &r), VMI_ERR_ARG, "");
}

static void test_win64_full(void)
{
    static const wrun merged[] = {{0, 2}, {3, 2}, {0x100000, 2}};
    buf b;
    opened o;
    uint8_t back[4];
    vmi_regs r;
    memset(&b, 0, sizeof b);
    build_win_full(&b, 1, 0, g_win_runs, 4);
    write_seed("win64-full.dmp", &b);
    o = open_vmi(write_file("win64-full.dmp", b.p, b.len), NULL, 0, 0);
    CHECK_ST(o.st, VMI_OK, o.err);
    if (o.st == VMI_OK) {
        CHECK_STR(vmi_get_backend(o.vmi)->format, "windump-full");
        check_win_ranges(o.vmi, merged, 3, "synthetic 64-bit full dump");
        check_win64_regs(o.vmi);
        check_win_note(o.vmi, &b, 0x2000);
        CHECK_ST(vmi_write_pa(o.vmi, 0x3000, "x", 1, NULL), VMI_ERR_READ_ONLY, "");
        vmi_close(o.vmi);
    }
    /* forced formats */
    o = open_vmi(path_of("win64-full.dmp"), "windump", 0, 0);
    CHECK_ST(o.st, VMI_OK, o.err);
    if (o.st == VMI_OK)
        vmi_close(o.vmi);
    o = open_vmi(path_of("win64-full.dmp"), "windump-full", 0, 0);
    CHECK_ST(o.st, VMI_OK, o.err);
    if (o.st == VMI_OK)
        vmi_close(o.vmi);
    o = open_vmi(path_of("win64-full.dmp"), "raw", 0, 0);
    CHECK_ST(o.st, VMI_OK, o.err);
    if (o.st == VMI_OK) {
        CHECK_STR(vmi_get_backend(o.vmi)->format, "raw");
        vmi_close(o.vmi);
    }
    /* writable: lands in the file at the page's offset (header + 2 pages) */
    o = open_vmi(path_of("win64-full.dmp"), NULL, 0, 1);
    CHECK_ST(o.st, VMI_OK, o.err);
    if (o.st == VMI_OK) {
        CHECK_ST(vmi_write_pa(o.vmi, 0x3004, "WIN!", 4, NULL), VMI_OK, vmi_last_error(o.vmi));
        vmi_close(o.vmi);
    }
    CHECK(read_back(path_of("win64-full.dmp"), back, 4, 0x2000 + 2 * 4096 + 4) &&
              memcmp(back, "WIN!", 4) == 0,
          "a write to a windump page reaches the file");
    /* a CONTEXT left as "PAGE" padding: control registers only */
    memset(b.p + 0x348, 'P', 0x100);
    memcpy(b.p + 0x348 + 0x30, "PAGE", 4);
    o = open_vmi(write_file("win64-noctx.dmp", b.p, b.len), NULL, 0, 0);
    CHECK_ST(o.st, VMI_OK, o.err);
    if (o.st == VMI_OK) {
        CHECK_ST(vmi_get_regs(o.vmi, 0, &r), VMI_OK, vmi_last_error(o.vmi));
        CHECK_U64(r.valid, VMI_REGS_CONTROL);
        CHECK_U64(r.x86.rax, 0);
        vmi_close(o.vmi);
    }
    b_free(&b);
}

static void test_win64_bitmap(void)
{
    static const char *const sigs[] = {"SDMP", "FDMP"};
    buf b;
    size_t k;
    memset(&b, 0, sizeof b);
    for (k = 0; k < 2; k++) {
        opened o;
        build_win_bitmap(&b, 1, sigs[k]);
        if (k == 0)
            write_seed("win64-bitmap.dmp", &b);
        o = open_vmi(write_file("win64-bitmap.dmp", b.p, b.len), NULL, 0, 0);
        CHECK_ST(o.st, VMI_OK, o.err);
        if (o.st != VMI_OK)
            continue;
        CHECK_STR(vmi_get_backend(o.vmi)->format, "windump-bitmap");
        check_win_ranges(o.vmi, g_win_bits, 4, "synthetic 64-bit bitmap dump");
        check_win64_regs(o.vmi);
        check_win_note(o.vmi, &b, 0x2000);
        vmi_close(o.vmi);
    }
    /* DumpType 6 (live kernel bitmap) reads the same */
    set32(b.p + 0xf98, 6);
    {
        opened o = open_vmi(write_file("win64-live.dmp", b.p, b.len), "windump-bitmap", 0, 0);
        CHECK_ST(o.st, VMI_OK, o.err);
        if (o.st == VMI_OK) {
            check_win_ranges(o.vmi, g_win_bits, 4, "DumpType 6");
            vmi_close(o.vmi);
        }
    }
    b_free(&b);
}

/* 32-bit: a full dump with and without PAE, and a bitmap dump. */
static void test_win32(void)
{
    static const wrun runs[] = {{1, 2}, {0x10, 1}};
    buf b;
    int pae;
    memset(&b, 0, sizeof b);
    for (pae = 0; pae < 2; pae++) {
        opened o;
        vmi_regs r;
        vmi_paging pg;
        uint32_t vcpus = 0;
        build_win_full(&b, 0, pae, runs, 2);
        write_seed(pae ? "win32-pae-full.dmp" : "win32-full.dmp", &b);
        o = open_vmi(write_file("win32-full.dmp", b.p, b.len), NULL, 0, 0);
        CHECK_ST(o.st, VMI_OK, o.err);
        if (o.st != VMI_OK)
            continue;
        CHECK_STR(vmi_get_backend(o.vmi)->format, "windump32-full");
        CHECK_U64(vmi_get_backend(o.vmi)->arch, VMI_ARCH_X86);
        check_win_ranges(o.vmi, runs, 2, "synthetic 32-bit full dump");
        check_win_note(o.vmi, &b, 0x1000);
        CHECK_ST(vmi_vcpu_count(o.vmi, &vcpus), VMI_OK, "");
        CHECK_U64(vcpus, 1);
        CHECK_ST(vmi_get_regs(o.vmi, 0, &r), VMI_OK, vmi_last_error(o.vmi));
        CHECK_U64(r.arch, VMI_ARCH_X86);
        CHECK_U64(r.valid, VMI_REGS_CONTROL | VMI_REGS_GPR);
        CHECK_U64(r.x86.cr3, WIN_DTB32);
        CHECK_U64(r.x86.rdi, 0x3000);
        CHECK_U64(r.x86.rax, 0x3005);
        CHECK_U64(r.x86.rbp, 0x3006);
        CHECK_U64(r.x86.rsp, 0x3007);
        CHECK_U64(r.x86.rip, 0x80501234u);
        CHECK_U64(r.x86.cs, 8);
        CHECK_U64(r.x86.ss, 0x10);
        CHECK_U64(r.x86.efer & ((1u << 8) | (1u << 10)), 0);
        CHECK_ST(vmi_paging_from_regs(&r, &pg), VMI_OK, "");
        CHECK_U64(pg.mode, pae ? VMI_PAGING_PAE : VMI_PAGING_LEGACY);
        CHECK_U64(pg.dtb, WIN_DTB32);
        CHECK_U64(pg.flags & VMI_PAGING_NO_PSE, 0);
        vmi_close(o.vmi);
    }
    build_win_bitmap(&b, 0, "SDMP");
    write_seed("win32-bitmap.dmp", &b);
    {
        opened o = open_vmi(write_file("win32-bitmap.dmp", b.p, b.len), NULL, 0, 0);
        CHECK_ST(o.st, VMI_OK, o.err);
        if (o.st == VMI_OK) {
            CHECK_STR(vmi_get_backend(o.vmi)->format, "windump32-bitmap");
            check_win_ranges(o.vmi, g_win_bits, 4, "synthetic 32-bit bitmap dump");
            check_win_note(o.vmi, &b, 0x1000);
            vmi_close(o.vmi);
        }
    }
    b_free(&b);
}

/* NumberProcessors capped (0 means one); a machine without registers. */
static void test_win_fields(void)
{
    static const struct {
        uint32_t nproc, machine, want_vcpus;
        vmi_arch arch;
    } cases[] = {{0, 0x8664, 1, VMI_ARCH_X86_64},
                 {0xffffffffu, 0x8664, 4096, VMI_ARCH_X86_64},
                 {4, 0xaa64, 0, VMI_ARCH_AARCH64},
                 {4, 0x14c, 0, VMI_ARCH_UNKNOWN}}; /* i386 in a 64-bit header */
    buf b;
    size_t k;
    memset(&b, 0, sizeof b);
    for (k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        opened o;
        uint32_t vcpus = 99;
        vmi_regs r;
        build_win_full(&b, 1, 0, g_win_runs, 4);
        set32(b.p + 0x34, cases[k].nproc);
        set32(b.p + 0x30, cases[k].machine);
        o = open_vmi(write_file("win-fields.dmp", b.p, b.len), NULL, 0, 0);
        CHECK_ST(o.st, VMI_OK, o.err);
        if (o.st != VMI_OK)
            continue;
        CHECK_U64(vmi_get_backend(o.vmi)->arch, cases[k].arch);
        CHECK_ST(vmi_vcpu_count(o.vmi, &vcpus), VMI_OK, "");
        CHECK_U64(vcpus, cases[k].want_vcpus);
        if (cases[k].want_vcpus == 0)
            CHECK(vmi_get_regs(o.vmi, 0, &r) != VMI_OK, "no x86 registers for this machine");
        else
            CHECK_ST(vmi_get_regs(o.vmi, cases[k].want_vcpus - 1, &r), VMI_OK,
                     vmi_last_error(o.vmi));
        vmi_close(o.vmi);
    }
    b_free(&b);
}

/* Each corrupt field: status, a message naming it, nothing leaked. */
static void test_win_refusals(void)
{
    buf b;
    memset(&b, 0, sizeof b);
    build_win_full(&b, 1, 0, g_win_runs, 4);
    b.len = 0x1800;
    EXPECT_FAIL("win-short.dmp", &b, NULL, VMI_ERR_TRUNCATED, "header cut short");
    build_win_full(&b, 1, 0, g_win_runs, 4);
    memcpy(b.p + 4, "DU32", 4);
    EXPECT_FAIL("win-validdump.dmp", &b, "windump", VMI_ERR_FORMAT, "ValidDump");
    EXPECT_FAIL("win-validdump.dmp", &b, "windump-full", VMI_ERR_FORMAT, "ValidDump");
    build_win_full(&b, 1, 0, g_win_runs, 4);
    set32(b.p + 0xf98, 2);
    EXPECT_FAIL("win-type2.dmp", &b, NULL, VMI_ERR_UNSUPPORTED, "DumpType 2");
    build_win_full(&b, 1, 0, g_win_runs, 4);
    EXPECT_FAIL("win-forced.dmp", &b, "windump-bitmap", VMI_ERR_FORMAT, "windump-full");
    build_win_full(&b, 1, 0, g_win_runs, 4);
    set32(b.p + 0x88, 44);
    EXPECT_FAIL("win-nruns.dmp", &b, NULL, VMI_ERR_FORMAT, "NumberOfRuns is 44");
    build_win_full(&b, 1, 0, g_win_runs, 4);
    set32(b.p + 0x88, 0);
    set64(b.p + 0x90, 0);
    EXPECT_FAIL("win-noruns.dmp", &b, NULL, VMI_ERR_FORMAT, "no memory ranges");
    build_win_full(&b, 1, 0, g_win_runs, 4);
    set64(b.p + 0x98 + 3 * 16, 1ull << 40); /* run 3's BasePage */
    EXPECT_FAIL("win-2p52.dmp", &b, NULL, VMI_ERR_FORMAT, "run 3 (BasePage 0x10000000000");
    build_win_full(&b, 1, 0, g_win_runs, 4);
    set64(b.p + 0x98 + 1 * 16 + 8, UINT64_MAX); /* run 1's PageCount */
    EXPECT_FAIL("win-count.dmp", &b, NULL, VMI_ERR_FORMAT, "run 1");
    build_win_full(&b, 1, 0, g_win_runs, 4);
    set64(b.p + 0x98 + 1 * 16 + 8, 0x1000); /* run 1 larger than the file */
    EXPECT_FAIL("win-past-eof.dmp", &b, NULL, VMI_ERR_TRUNCATED, "run 1");
    build_win_full(&b, 1, 0, g_win_runs, 4);
    b.len -= 1;
    EXPECT_FAIL("win-cut.dmp", &b, NULL, VMI_ERR_TRUNCATED, "run 3");
    build_win_full(&b, 1, 0, g_win_runs, 4);
    set64(b.p + 0x90, 5);
    EXPECT_FAIL("win-npages.dmp", &b, NULL, VMI_ERR_FORMAT, "NumberOfPages is 0x5");
    build_win_full(&b, 1, 0, g_win_runs, 4);
    set64(b.p + 0x98 + 2 * 16, 1); /* run 2 at page 1: inside run 0 */
    EXPECT_FAIL("win-overlap.dmp", &b, NULL, VMI_ERR_FORMAT,
                "PhysicalMemoryBlock run 2 [0x1000-0x2000) overlaps");
    {
        static const wrun r32[] = {{0xfffff, 2}}; /* the last two pages below 4 GiB */
        build_win_full(&b, 0, 1, r32, 1);
        b.len = 0x1000 + 4096;
        EXPECT_FAIL("win32-cut.dmp", &b, NULL, VMI_ERR_TRUNCATED, "run 0");
        build_win_full(&b, 0, 1, r32, 1);
        b.len = 0x1000 + 4096;
        set32(b.p + 0x64, 87);
        EXPECT_FAIL("win32-nruns.dmp", &b, NULL, VMI_ERR_FORMAT, "NumberOfRuns is 87");
    }
    /* bitmap */
    build_win_bitmap(&b, 1, "SDMP");
    memcpy(b.p + 0x2000, "XDMP", 4);
    EXPECT_FAIL("win-bmp-sig.dmp", &b, NULL, VMI_ERR_FORMAT, "SDMP");
    build_win_bitmap(&b, 1, "SDMP");
    b.len = 0x2010;
    EXPECT_FAIL("win-bmp-short.dmp", &b, NULL, VMI_ERR_TRUNCATED, "summary header");
    build_win_bitmap(&b, 1, "SDMP");
    set64(b.p + 0x2030, 1ull << 30);
    EXPECT_FAIL("win-bmp-big.dmp", &b, NULL, VMI_ERR_TRUNCATED, "BitmapSize 1073741824");
    build_win_bitmap(&b, 1, "SDMP");
    set64(b.p + 0x2030, (1ull << 40) + 1);
    EXPECT_FAIL("win-bmp-2p52.dmp", &b, NULL, VMI_ERR_FORMAT, "2^52");
    build_win_bitmap(&b, 1, "SDMP");
    set64(b.p + 0x2020, 0x2040);
    EXPECT_FAIL("win-bmp-low.dmp", &b, NULL, VMI_ERR_FORMAT, "HeaderSize");
    build_win_bitmap(&b, 1, "SDMP");
    set64(b.p + 0x2020, UINT64_MAX);
    EXPECT_FAIL("win-bmp-high.dmp", &b, NULL, VMI_ERR_FORMAT, "HeaderSize");
    build_win_bitmap(&b, 1, "SDMP");
    set64(b.p + 0x2028, 13);
    EXPECT_FAIL("win-bmp-pages.dmp", &b, NULL, VMI_ERR_FORMAT, "Pages says 13");
    build_win_bitmap(&b, 1, "SDMP");
    b.len -= 4096;
    EXPECT_FAIL("win-bmp-cut.dmp", &b, NULL, VMI_ERR_TRUNCATED, "14 present pages");
    build_x86_64(&b, 1, 0);
    EXPECT_FAIL("elf-as-windump", &b, "windump", VMI_ERR_FORMAT, "PAGE");
    b_free(&b);
}

/* ---- tests: damaged files --------------------------------------------------- */

static uint32_t g_rng = 12345;

static uint32_t rnd(void)
{
    g_rng = g_rng * 1103515245u + 12345u;
    return g_rng >> 8;
}

/* Prefixes of a file: every one below TRUNC_HEAD and within TRUNC_NEAR of
   a structure the parsers read (the caller's [from, to] ranges: headers,
   program headers, notes, run tables, the bitmap, the first pages; and the
   end), since that is where their reads start and stop; of the rest
   TRUNC_SAMPLE, drawn by a generator with a fixed seed of its own (g_rng,
   which the corruptions draw from, keeps its sequence). Opening every
   prefix of the Windows dumps took most of a minute under ASan. */
#define TRUNC_HEAD 0x100u
#define TRUNC_NEAR 16u
#define TRUNC_SAMPLE 160u
#define TRUNC_EDGES 64u

static int trunc_near(size_t len, size_t size, const size_t *edges, size_t nedges)
{
    size_t i;
    if (len < TRUNC_HEAD || size - len <= TRUNC_NEAR)
        return 1;
    for (i = 0; i + 1 < nedges; i += 2)
        if (len + TRUNC_NEAR >= edges[i] && len <= edges[i + 1] + TRUNC_NEAR)
            return 1;
    return 0;
}

static void truncations_at(const char *name, const buf *b, const size_t *edges, size_t nedges)
{
    buf t;
    uint32_t rng = 0x7e57f11eu;
    size_t len, rest = 0;
    memset(&t, 0, sizeof t);
    for (len = 0; len < b->len; len++)
        rest += !trunc_near(len, b->len, edges, nedges);
    for (len = 0; len < b->len; len++) {
        if (!trunc_near(len, b->len, edges, nedges)) {
            rng = rng * 1103515245u + 12345u;
            if ((rng >> 8) % rest >= TRUNC_SAMPLE)
                continue;
        }
        t.len = 0;
        b_put(&t, b->p, len);
        open_any(name, &t);
    }
    b_free(&t);
}

static uint64_t le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    while (n--)
        v = v << 8 | p[n];
    return v;
}

static size_t edge_add(size_t *e, size_t n, uint64_t from, uint64_t to)
{
    if (n + 2 <= TRUNC_EDGES) {
        e[n] = (size_t)from;
        e[n + 1] = (size_t)to;
        n += 2;
    }
    return n;
}

/* The structures of one of our ELF cores (ELF32 or ELF64, little-endian):
   the program and section headers, every note segment whole, the start
   and end of every other segment's data. */
static void elf_truncations(const char *name, const buf *b)
{
    size_t e[TRUNC_EDGES], n = 0, i, nph;
    int is64 = b->p[4] == 2;
    uint64_t phoff = le(b->p + (is64 ? 0x20 : 0x1c), is64 ? 8 : 4);
    uint64_t shoff = le(b->p + (is64 ? 0x28 : 0x20), is64 ? 8 : 4);
    size_t phent = (size_t)le(b->p + (is64 ? 0x36 : 0x2a), 2), shent = (size_t)le(b->p + (is64 ? 0x3a : 0x2e), 2);
    nph = (size_t)le(b->p + (is64 ? 0x38 : 0x2c), 2);
    if (shoff && shoff + shent <= b->len) {
        n = edge_add(e, n, shoff, shoff + shent);
        if (nph == 0xffff) /* PN_XNUM: the count is section 0's sh_info */
            nph = (size_t)le(b->p + shoff + (is64 ? 0x2c : 0x1c), 4);
    }
    n = edge_add(e, n, phoff, phoff + nph * phent);
    for (i = 0; i < nph && phoff + (i + 1) * phent <= b->len; i++) {
        const uint8_t *ph = b->p + phoff + i * phent;
        uint64_t off = le(ph + (is64 ? 8 : 4), is64 ? 8 : 4), sz = le(ph + (is64 ? 0x20 : 0x10), is64 ? 8 : 4);
        if (le(ph, 4) == 4) /* PT_NOTE */
            n = edge_add(e, n, off, off + sz);
        else {
            n = edge_add(e, n, off, off);
            n = edge_add(e, n, off + sz, off + sz);
        }
    }
    truncations_at(name, b, e, n);
}

/* LiME: each range's 32-byte header and the first bytes of its data. */
static void lime_truncations(const char *name, const buf *b)
{
    size_t e[TRUNC_EDGES], n = 0;
    uint64_t off = 0;
    while (off + 32 <= b->len && le(b->p + off, 4) == 0x4c694d45u) {
        uint64_t size = le(b->p + off + 16, 8) - le(b->p + off + 8, 8) + 1;
        n = edge_add(e, n, off, off + 32);
        off += 32 + size;
    }
    truncations_at(name, b, e, n);
}

/* Random damage in [from, from + span) (the headers and notes). */
static void corruptions_at(const char *name, const buf *b, size_t from, size_t span, int rounds)
{
    buf t;
    int i, k;
    static const uint64_t nasty[] = {0, 1, 0x7f, 0xff, 0xffff, 0xfffe, 0x7fffffff, 0xffffffff,
                                     0x100000000ull, 0x7fffffffffffffffull, UINT64_MAX,
                                     UINT64_MAX - 31};
    memset(&t, 0, sizeof t);
    if (from >= b->len)
        return;
    if (span > b->len - from)
        span = b->len - from;
    for (i = 0; i < rounds; i++) {
        int flips = 1 + (int)(rnd() % 4);
        t.len = 0;
        b_put(&t, b->p, b->len);
        for (k = 0; k < flips; k++) {
            size_t at = from + rnd() % span;
            switch (rnd() % 4) {
            case 0:
                t.p[at] ^= (uint8_t)(1u << (rnd() % 8));
                break;
            case 1:
                t.p[at] = (uint8_t)rnd();
                break;
            default:
                if (at + 8 <= t.len) {
                    uint64_t v = nasty[rnd() % (sizeof nasty / sizeof nasty[0])];
                    if (rnd() % 2)
                        set32(t.p + at, v);
                    else
                        set64(t.p + at, v);
                }
                break;
            }
        }
        open_any(name, &t);
    }
    b_free(&t);
}

static void corruptions(const char *name, const buf *b, size_t span, int rounds)
{
    corruptions_at(name, b, 0, span, rounds);
}

/* A Windows dump's fields sit in a few spots of a mostly padded header. */
static void win_damage(const char *name, const buf *b, int is64, int bitmap)
{
    size_t hdr = is64 ? 0x2000 : 0x1000, first = hdr + (bitmap ? 0x1000 : 0);
    /* the run table's and CONTEXT's ends, DumpType, the header's end, the
       summary header with its bitmap, the first two pages; all that comes
       before them is a header too short, as the first bytes test */
    const size_t edges[] = {is64 ? 0x88 + 16 * 5 : 0x64 + 8 * 4, is64 ? 0x88 + 16 * 5 : 0x64 + 8 * 4,
                            is64 ? 0x348 : 0x320, is64 ? 0x348 : 0x320, is64 ? 0x818 : 0x5ec, is64 ? 0x818 : 0x5ec,
                            is64 ? 0xf98 : 0xf88, is64 ? 0xf9c : 0xf8c, hdr, hdr + 0x38 + WIN_BITMAP_BITS / 8 + 1,
                            first, first, first + 0x1000, first + 0x1000};
    truncations_at(name, b, edges, sizeof edges / sizeof edges[0]);
    corruptions_at(name, b, 0, is64 ? 0x160 : 0x100, 1500);
    corruptions_at(name, b, is64 ? 0x348 : 0x320, 0x120, 300);
    corruptions_at(name, b, is64 ? 0xf98 : 0xf88, 4, 200);
    corruptions_at(name, b, hdr, 0x48, 1500);
}

static void test_damage(void)
{
    buf b;
    memset(&b, 0, sizeof b);
    build_lime(&b);
    lime_truncations("t.lime", &b);
    corruptions("c.lime", &b, b.len, 1500);
    build_x86_64(&b, 1, 1);
    elf_truncations("t-x86_64.elf", &b);
    corruptions("c-x86_64.elf", &b, b.len - 0x580, 3000);
    build_i386(&b, 1);
    elf_truncations("t-i386.elf", &b);
    corruptions("c-i386.elf", &b, b.len - 0x300, 1500);
    build_aarch64(&b);
    elf_truncations("t-aarch64.elf", &b);
    corruptions("c-aarch64.elf", &b, b.len - 0x300, 1500);
    build_arm(&b);
    corruptions("c-arm.elf", &b, b.len, 1000);
    build_win_full(&b, 1, 0, g_win_runs, 4);
    win_damage("d-win64-full.dmp", &b, 1, 0);
    build_win_bitmap(&b, 1, "SDMP");
    win_damage("d-win64-bitmap.dmp", &b, 1, 1);
    build_win_full(&b, 0, 1, g_win_runs, 3);
    win_damage("d-win32-full.dmp", &b, 0, 0);
    build_win_bitmap(&b, 0, "FDMP");
    win_damage("d-win32-bitmap.dmp", &b, 0, 1);
    g_pass++; /* every damaged file failed cleanly or opened: no crash */
    b_free(&b);
}

/* ---- main ------------------------------------------------------------------- */

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];
    if (!d)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/test_file.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 2;
    }
    if (argc > 1)
        g_seed_dir = argv[1];
    test_raw();
    test_lime();
    test_x86_64();
    test_i386();
    test_arm();
    test_win64_full();
    test_win64_bitmap();
    test_win32();
    test_win_fields();
    test_refusals();
    test_win_refusals();
    test_damage();
    remove_dir(g_dir);
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
