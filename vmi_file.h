/* vmi_file.h - the file backend of vmi.h: memory images and core dumps.  v0.1.0
   MIT licensed (see the end of vmi.h).

   Opens a saved guest memory image read-only (or read-write on request) and
   fills a vmi_backend for vmi_open. The whole file is mapped once; every
   memory range points into the mapping, so physical reads are a memcpy.

   Formats, recognized from the content (never from the file name):
       raw   a flat copy of guest-physical memory (QEMU pmemsave, a
             memory-backend-file, dd of /dev/mem): file offset 0 is guest-
             physical `base` (0x40000000 for RAM on an arm "virt" machine).
       lime  LiME (504ensicsLabs/LiME, src/lime.h): 32-byte headers
             {u32 magic 0x4C694D45, u32 version 1, u64 start, u64 end
             (inclusive), u8 reserved[8]}, each followed by its bytes.
       elf   ELF core files, 32- and 64-bit, little-endian: QEMU
             dump-guest-memory (format elf) and Linux kdump (/proc/vmcore,
             makedumpfile -E). Each PT_LOAD is a range at p_paddr; a part
             past p_filesz (up to p_memsz) reads as zeros and cannot be
             written. PT_NOTE gives registers and notes:
               "CORE" NT_PRSTATUS  general registers, one note per vCPU
                                   (x86_64, i386, AArch64, AArch32);
               "QEMU" type 0       QEMUCPUState v1 (x86): adds segments,
                                   GDTR/IDTR and CR0/CR2/CR3/CR4;
               any other note      by name through get_note, e.g.
                                   "VMCOREINFO".
       windump  Windows crash dumps, "PAGEDU64" (DUMP_HEADER64, 0x2000
             bytes) or "PAGEDUMP" (DUMP_HEADER32, 0x1000 bytes); QEMU writes
             them with dump-guest-memory -w. DumpType 1 (full): the
             header's PhysicalMemoryBlock runs {BasePage, PageCount}, their
             pages one after the other from the end of the header. DumpType
             5 and 6 (bitmap: complete, kernel, active and live-kernel
             dumps): at the end of the header a summary header {"SDMP" or
             "FDMP", "DUMP", ..., u64 HeaderSize (file offset of the first
             page) at 0x20, u64 Pages (present) at 0x28, u64 BitmapSize
             (bits) at 0x30, bitmap at 0x38}; bit n set means page n is
             present, present pages stored in bit order. Other DumpTypes
             (2, 4 mini, 8-10 "RDMP") are refused with VMI_ERR_UNSUPPORTED.
   backend.format says which: "raw", "lime", "elf-qemu" (an ELF core with
   QEMU notes), "elf-kdump" (a VMCOREINFO note and no QEMU notes) or "elf"
   (anything else); "windump-full", "windump-bitmap" (64-bit) and
   "windump32-full", "windump32-bitmap". Test for the prefix "elf" to mean
   any ELF core and "windump" for any crash dump. Compressed kdump files
   (KDUMP, makedumpfile's flattened format) are recognized and refused with
   VMI_ERR_UNSUPPORTED; force "raw" to map such a file anyway.

   Do this:
       #include "vmi.h"
       #include "vmi_file.h"
   and in the one file that has VMI_IMPLEMENTATION (or define
   VMI_FILE_IMPLEMENTATION there) the implementation comes along.

   Use:
       vmi_file_desc fdesc;
       vmi_desc desc;
       vmi_instance *vmi;
       char err[256];
       memset(&fdesc, 0, sizeof fdesc);
       memset(&desc, 0, sizeof desc);
       fdesc.path = "mem.elf";
       if (vmi_file_open(&fdesc, &desc.backend, err, sizeof err) != VMI_OK) {
           fprintf(stderr, "%s\n", err);   e.g. "mem.elf: PT_LOAD 3 ends ..."
           return 1;
       }
       if (vmi_open(&desc, &vmi) != VMI_OK) ...   vmi_open owns the backend now

   Registers (ELF cores and Windows dumps; raw and LiME images carry none):
       x86_64, i386  NT_PRSTATUS fills the GPRs, rip, rflags, the selectors
                     and (x86_64) fs_base/gs_base: VMI_REGS_GPR. With a QEMU
                     note also VMI_REGS_SEGMENT (bases, GDTR, IDTR) and
                     VMI_REGS_CONTROL (cr0, cr2, cr3, cr4, efer). QEMUCPUState
                     has no EFER: on an EM_X86_64 core (QEMU writes those only
                     when the first CPU is in long mode) a vCPU with CR0.PG
                     and CR4.PAE gets EFER.LME|LMA; NXE cannot be known and
                     is left clear. EM_386 cores get efer 0. cr8 stays 0;
                     kernel_gs_base is read from notes that hold it (0x1B8
                     bytes, QEMU 5.2+), else 0.
       AArch64, ARM  NT_PRSTATUS only: x0-x30 sp pc pstate / r0-r15 cpsr,
                     VMI_REGS_GPR. No TTBR/TCR in these files: give the
                     paging to vmi_open yourself.
   The i-th NT_PRSTATUS and the i-th QEMU note are vCPU i (QEMU writes all
   NT_PRSTATUS notes, then all QEMU notes, in CPU order).
       Windows dumps (MachineImageType 0x8664 in DU64: x86_64; 0x14c in
                     DUMP: x86; 0xAA64: aarch64 with no registers)
                     NumberProcessors vCPUs (1 if 0, at most 4096), each
                     with VMI_REGS_CONTROL made up from the header: cr3 =
                     DirectoryTableBase, cr0 PG|PE, cr4 PSE, plus PAE on
                     64-bit or with PaeEnabled, efer NXE with PAE and
                     LME|LMA on 64-bit, so vmi_paging_from_regs gives IA32E,
                     PAE or LEGACY. vCPU 0 also gets VMI_REGS_GPR from the
                     header's CONTEXT (that of the CPU that wrote the dump)
                     when its ContextFlags look valid; QEMU leaves it as the
                     guest prepared it (it patches the CONTEXT in memory).
   set_regs is not offered; pause and resume succeed and do nothing.

   Notes: ELF notes by name (above). A Windows dump has one note,
   "WINDUMP_HEADER": the raw dump header (0x2000 bytes for 64-bit, 0x1000
   for 32-bit), for the OS layer to read. Offsets (64-bit / 32-bit; fields
   u64 / u32 unless said):
       Signature "PAGE" 0x0/0x0, ValidDump "DU64"/"DUMP" 0x4/0x4,
       MajorVersion u32 0x8/0x8, MinorVersion u32 (the build) 0xC/0xC,
       DirectoryTableBase 0x10/0x10, PfnDataBase 0x18/0x14,
       PsLoadedModuleList 0x20/0x18, PsActiveProcessHead 0x28/0x1C,
       MachineImageType u32 0x30/0x20, NumberProcessors u32 0x34/0x24,
       BugCheckCode u32 0x38/0x28, BugCheckParameter1-4 0x40/0x2C,
       PaeEnabled u8 -/0x5C, KdDebuggerDataBlock 0x80/0x60,
       PhysicalMemoryBlock 0x88/0x64 {u32 NumberOfRuns; NumberOfPages at
       0x90/0x68; runs {BasePage, PageCount} from 0x98/0x6C},
       ContextRecord 0x348/0x320, DumpType u32 0xF98/0xF88.

   Writes (vmi_file_desc.writable): the file is opened O_RDWR and mapped
   MAP_SHARED, so writes through vmi_write_* land in the file (through the
   page cache: visible at once to other readers, on disk at the kernel's
   writeback). Read-only images are mapped MAP_PRIVATE, PROT_READ.

   Overlaps: ranges are sorted by address and adjacent ones merged. Two
   ranges that overlap are an error, with one exception: a kdump vmcore
   repeats the kernel image in a PT_LOAD of its own that lies wholly inside
   a RAM PT_LOAD; a file-backed PT_LOAD inside another one is dropped.

   Configuration macros (define before the implementation):
       VMI_FILE_MAX_RANGES  cap on LiME ranges and ELF program headers
                            (default 65536)
       VMI_FILE_MAX_NOTES   cap on ELF notes (default 65536)
       VMI_FILE_MAX_BITMAP_RUNS  cap on runs of present pages in a Windows
                            bitmap dump (default 1048576)

   Thread safety: as for vmi.h, one instance (and so its backend) per thread
   at a time. Every byte of the file is untrusted: sizes and offsets are
   checked before use, with overflow-safe arithmetic, and every loop is
   bounded. A file truncated by someone else while mapped can still raise
   SIGBUS: do not shrink an image that is open.
*/

#ifndef VMI_FILE_H_INCLUDED
#define VMI_FILE_H_INCLUDED

#ifndef VMI_H_INCLUDED
#error "include vmi.h before vmi_file.h"
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Options for vmi_file_open. Zero-initialize; zero means the default. */
typedef struct vmi_file_desc {
    const char *path;        /* required */
    int writable;            /* map read-write (MAP_SHARED) so vmi_write_* reach the file;
                                default read-only */
    uint64_t base;           /* raw images: guest-physical address of file offset 0
                                (0x40000000 on arm virt); ignored by other formats */
    const char *format;      /* NULL: detect from content; or "raw", "lime", "elf",
                                "windump" (or one exact "windump..." backend.format) */
    vmi_allocator allocator; /* zero: malloc/free */
} vmi_file_desc;

/* Maps desc->path and fills *out for vmi_open (which then owns it: its
   close() unmaps the file). On failure *out is untouched, nothing is
   leaked and err (may be NULL) gets one line naming the file and the
   problem. */
VMI_API vmi_status vmi_file_open(const vmi_file_desc *desc, vmi_backend *out, char *err,
                                 size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* VMI_FILE_H_INCLUDED */

/* ======================================================================== */
#if defined(VMI_FILE_IMPLEMENTATION) || defined(VMI_IMPLEMENTATION)
#ifndef VMI_FILE_IMPL_INCLUDED
#define VMI_FILE_IMPL_INCLUDED

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#ifndef VMI_FILE_MAX_RANGES
#define VMI_FILE_MAX_RANGES 65536u
#endif
#ifndef VMI_FILE_MAX_NOTES
#define VMI_FILE_MAX_NOTES 65536u
#endif
#ifndef VMI_FILE_MAX_BITMAP_RUNS
#define VMI_FILE_MAX_BITMAP_RUNS 1048576u
#endif

#if defined(__GNUC__) || defined(__clang__)
#define VMI__FILE_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define VMI__FILE_PRINTF(f, a)
#endif

#define VMI__FILE_LIME_MAGIC 0x4C694D45u
#define VMI__FILE_LIME_HEADER 32u

#define VMI__FILE_ET_CORE 4u
#define VMI__FILE_PT_LOAD 1u
#define VMI__FILE_PT_NOTE 4u
#define VMI__FILE_PN_XNUM 0xffffu
#define VMI__FILE_NT_PRSTATUS 1u
#define VMI__FILE_EM_386 3u
#define VMI__FILE_EM_ARM 40u
#define VMI__FILE_EM_X86_64 62u
#define VMI__FILE_EM_AARCH64 183u

/* struct elf_prstatus: where pr_reg starts and how many registers we read
   (QEMU target/i386/arch_dump.c, target/arm/arch_dump.c; Linux
   include/uapi/linux/elfcore.h). */
#define VMI__FILE_PRS64_REG_OFF 112u /* x86_64 and AArch64 */
#define VMI__FILE_PRS32_REG_OFF 72u  /* i386 and ARM */
#define VMI__FILE_PRS_X86_64_NREG 27u
#define VMI__FILE_PRS_I386_NREG 17u
#define VMI__FILE_PRS_AARCH64_NREG 34u
#define VMI__FILE_PRS_ARM_NREG 17u   /* r0-r15, cpsr (orig_r0 unused) */

/* QEMUCPUState v1 (QEMU target/i386/arch_dump.c). */
#define VMI__FILE_QEMU_SEG_OFF 0x98u /* after version, size and 18 u64 */
#define VMI__FILE_QEMU_SEG_SIZE 24u  /* u32 selector, limit, flags, pad; u64 base */
#define VMI__FILE_QEMU_CR_OFF 0x188u
#define VMI__FILE_QEMU_SIZE 0x1B0u

/* A note from a PT_NOTE segment; pointers into the mapping. */
typedef struct vmi__file_note {
    const uint8_t *name, *desc;
    uint32_t namesz, descsz, type;
} vmi__file_note;

/* A range while it is being built: `src` numbers it for messages. */
typedef struct vmi__file_seg {
    uint64_t pa, size;
    uint8_t *host;
    uint32_t src;
} vmi__file_seg;

typedef struct vmi__file {
    vmi_allocator alloc;
    char *path;
    uint8_t *map;
    size_t size;
    int writable;
    const char *format;
    unsigned machine; /* ELF e_machine, 0 otherwise */
    vmi_arch arch;
    const char *seg_kind; /* "PT_LOAD", "LiME range", "raw image": for messages */

    vmi__file_seg *segs;
    size_t nsegs, segs_cap;
    vmi_mem_range *ranges;
    size_t nranges;

    vmi__file_note *notes;
    size_t nnotes;
    uint32_t *prstatus; /* note indices, one per vCPU */
    uint32_t *qemu;
    uint32_t nprstatus, nqemu, nvcpus;

    const struct vmi__file_winlayout *win; /* Windows crash dumps only */

    char err[320];
} vmi__file;

/* ---- helpers ------------------------------------------------------------ */

static uint16_t vmi__file_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t vmi__file_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static uint64_t vmi__file_le64(const uint8_t *p)
{
    return (uint64_t)vmi__file_le32(p) | ((uint64_t)vmi__file_le32(p + 4) << 32);
}

static void *vmi__file_malloc_default(size_t size, void *user)
{
    (void)user;
    return malloc(size);
}

static void vmi__file_free_default(void *ptr, void *user)
{
    (void)user;
    free(ptr);
}

/* count * size bytes, zeroed; NULL on overflow or failure. */
static void *vmi__file_calloc(vmi__file *f, size_t count, size_t size)
{
    void *p;
    if (count == 0)
        count = 1;
    if (size != 0 && count > (size_t)-1 / size)
        return NULL;
    p = f->alloc.alloc(count * size, f->alloc.user);
    if (p)
        memset(p, 0, count * size);
    return p;
}

static void vmi__file_free(vmi__file *f, void *p)
{
    if (p)
        f->alloc.free(p, f->alloc.user);
}

static void vmi__file_vset_error(vmi__file *f, const char *fmt, va_list ap)
{
    int n = snprintf(f->err, sizeof f->err, "%s: ", f->path ? f->path : "(file)");
    if (n < 0 || (size_t)n >= sizeof f->err)
        return;
    vsnprintf(f->err + n, sizeof f->err - (size_t)n, fmt, ap);
}

/* Records the message (prefixed with the path) and returns `status`. */
static vmi_status vmi__file_fail(vmi__file *f, vmi_status status, const char *fmt, ...)
    VMI__FILE_PRINTF(3, 4);
static vmi_status vmi__file_fail(vmi__file *f, vmi_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmi__file_vset_error(f, fmt, ap);
    va_end(ap);
    return status;
}

typedef unsigned long long vmi__file_ull; /* for printf */

/* ---- ranges ------------------------------------------------------------- */

static vmi_status vmi__file_reserve_segs(vmi__file *f, size_t count)
{
    f->segs = (vmi__file_seg *)vmi__file_calloc(f, count, sizeof(vmi__file_seg));
    if (!f->segs)
        return vmi__file_fail(f, VMI_ERR_NOMEM, "out of memory for %llu ranges",
                              (vmi__file_ull)count);
    f->segs_cap = count;
    return VMI_OK;
}

/* host NULL: the range reads as zeros. */
static vmi_status vmi__file_add_seg(vmi__file *f, uint64_t pa, uint64_t size, uint8_t *host,
                                    uint32_t src)
{
    vmi__file_seg *s;
    if (size == 0)
        return VMI_OK;
    if (size > UINT64_MAX - pa)
        return vmi__file_fail(f, VMI_ERR_FORMAT,
                              "%s %u at 0x%llx, size 0x%llx, wraps past the end of the "
                              "64-bit address space",
                              f->seg_kind, (unsigned)src, (vmi__file_ull)pa,
                              (vmi__file_ull)size);
    if (f->nsegs >= f->segs_cap) /* the callers reserve enough: a bug otherwise */
        return vmi__file_fail(f, VMI_ERR_LIMIT, "too many ranges");
    s = &f->segs[f->nsegs++];
    s->pa = pa;
    s->size = size;
    s->host = host;
    s->src = src;
    return VMI_OK;
}

static int vmi__file_seg_cmp(const void *a, const void *b)
{
    const vmi__file_seg *x = (const vmi__file_seg *)a;
    const vmi__file_seg *y = (const vmi__file_seg *)b;
    if (x->pa != y->pa)
        return x->pa < y->pa ? -1 : 1;
    if (x->size != y->size) /* the larger first: a duplicate then lies inside it */
        return x->size > y->size ? -1 : 1;
    return x->src < y->src ? -1 : (x->src > y->src ? 1 : 0);
}

/* Sorts, rejects overlaps, merges neighbours, builds f->ranges. */
static vmi_status vmi__file_finish_ranges(vmi__file *f, int allow_duplicates)
{
    size_t i, n = 0;
    vmi__file_seg *segs = f->segs;
    if (f->nsegs == 0)
        return vmi__file_fail(f, VMI_ERR_FORMAT, "no memory ranges in the file");
    qsort(segs, f->nsegs, sizeof *segs, vmi__file_seg_cmp);
    for (i = 0; i < f->nsegs; i++) {
        vmi__file_seg cur = segs[i];
        if (n > 0) {
            vmi__file_seg *prev = &segs[n - 1];
            uint64_t prev_end = prev->pa + prev->size; /* checked by add_seg */
            if (cur.pa < prev_end) {
                if (allow_duplicates && cur.size <= prev_end - cur.pa && prev->host &&
                    cur.host)
                    continue;
                return vmi__file_fail(
                    f, VMI_ERR_FORMAT,
                    "%s %u [0x%llx-0x%llx) overlaps %s %u [0x%llx-0x%llx)", f->seg_kind,
                    (unsigned)cur.src, (vmi__file_ull)cur.pa,
                    (vmi__file_ull)(cur.pa + cur.size), f->seg_kind, (unsigned)prev->src,
                    (vmi__file_ull)prev->pa, (vmi__file_ull)prev_end);
            }
            if (cur.pa == prev_end &&
                ((prev->host && cur.host && prev->host + prev->size == cur.host) ||
                 (!prev->host && !cur.host))) {
                prev->size += cur.size;
                continue;
            }
        }
        segs[n++] = cur;
    }
    f->ranges = (vmi_mem_range *)vmi__file_calloc(f, n, sizeof(vmi_mem_range));
    if (!f->ranges)
        return vmi__file_fail(f, VMI_ERR_NOMEM, "out of memory for %llu ranges",
                              (vmi__file_ull)n);
    for (i = 0; i < n; i++) {
        f->ranges[i].pa = segs[i].pa;
        f->ranges[i].size = segs[i].size;
        f->ranges[i].host = segs[i].host;
        f->ranges[i].flags = (segs[i].host && f->writable) ? VMI_RANGE_WRITABLE : 0u;
    }
    f->nranges = n;
    vmi__file_free(f, f->segs);
    f->segs = NULL;
    f->nsegs = f->segs_cap = 0;
    return VMI_OK;
}

/* The range holding pa, or NULL. */
static const vmi_mem_range *vmi__file_find(const vmi__file *f, uint64_t pa)
{
    size_t lo = 0, hi = f->nranges;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const vmi_mem_range *r = &f->ranges[mid];
        if (pa < r->pa)
            hi = mid;
        else if (pa - r->pa >= r->size)
            lo = mid + 1;
        else
            return r;
    }
    return NULL;
}

/* ---- raw ---------------------------------------------------------------- */

static vmi_status vmi__file_parse_raw(vmi__file *f, uint64_t base)
{
    vmi_status st;
    f->format = "raw";
    f->seg_kind = "raw image";
    st = vmi__file_reserve_segs(f, 1);
    if (st != VMI_OK)
        return st;
    if ((uint64_t)f->size > UINT64_MAX - base)
        return vmi__file_fail(f, VMI_ERR_ARG,
                              "base 0x%llx + size 0x%llx passes the end of the 64-bit "
                              "address space",
                              (vmi__file_ull)base, (vmi__file_ull)f->size);
    return vmi__file_add_seg(f, base, f->size, f->map, 0);
}

/* ---- LiME --------------------------------------------------------------- */

/* Walks the headers; adds the ranges when `add` (the second pass). */
static vmi_status vmi__file_lime_walk(vmi__file *f, int add, size_t *count)
{
    uint64_t off = 0, size = f->size;
    uint32_t i = 0;
    while (off < size) {
        const uint8_t *h = f->map + off;
        uint32_t magic, version;
        uint64_t start, end, len, data;
        vmi_status st;
        if (i >= VMI_FILE_MAX_RANGES)
            return vmi__file_fail(f, VMI_ERR_LIMIT, "more than %u LiME ranges",
                                  (unsigned)VMI_FILE_MAX_RANGES);
        if (size - off < VMI__FILE_LIME_HEADER)
            return vmi__file_fail(f, VMI_ERR_TRUNCATED,
                                  "LiME header %u at offset 0x%llx is cut short: %llu of "
                                  "%u bytes before the end of the file",
                                  (unsigned)i, (vmi__file_ull)off, (vmi__file_ull)(size - off),
                                  VMI__FILE_LIME_HEADER);
        magic = vmi__file_le32(h);
        version = vmi__file_le32(h + 4);
        start = vmi__file_le64(h + 8);
        end = vmi__file_le64(h + 16);
        if (magic != VMI__FILE_LIME_MAGIC)
            return vmi__file_fail(f, VMI_ERR_FORMAT,
                                  "LiME header %u at offset 0x%llx: magic 0x%08x, expected "
                                  "0x%08x",
                                  (unsigned)i, (vmi__file_ull)off, (unsigned)magic,
                                  VMI__FILE_LIME_MAGIC);
        if (version != 1)
            return vmi__file_fail(f, VMI_ERR_UNSUPPORTED,
                                  "LiME header %u at offset 0x%llx: version %u, only 1 is "
                                  "known",
                                  (unsigned)i, (vmi__file_ull)off, (unsigned)version);
        if (end < start)
            return vmi__file_fail(f, VMI_ERR_FORMAT,
                                  "LiME header %u at offset 0x%llx: end 0x%llx is below "
                                  "start 0x%llx",
                                  (unsigned)i, (vmi__file_ull)off, (vmi__file_ull)end,
                                  (vmi__file_ull)start);
        len = end - start;
        data = off + VMI__FILE_LIME_HEADER;
        if (len >= size - data) /* len + 1 > size - data, without overflow */
            return vmi__file_fail(f, VMI_ERR_TRUNCATED,
                                  "LiME range %u [0x%llx-0x%llx] needs 0x%llx bytes at "
                                  "offset 0x%llx but the file ends at 0x%llx",
                                  (unsigned)i, (vmi__file_ull)start, (vmi__file_ull)end,
                                  (vmi__file_ull)(len + (len < UINT64_MAX)),
                                  (vmi__file_ull)data, (vmi__file_ull)size);
        len += 1;
        if (add) {
            st = vmi__file_add_seg(f, start, len, f->map + data, i);
            if (st != VMI_OK)
                return st;
        }
        off = data + len;
        i++;
    }
    *count = i;
    return VMI_OK;
}

static vmi_status vmi__file_parse_lime(vmi__file *f)
{
    size_t count = 0;
    vmi_status st;
    f->format = "lime";
    f->seg_kind = "LiME range";
    st = vmi__file_lime_walk(f, 0, &count);
    if (st == VMI_OK)
        st = vmi__file_reserve_segs(f, count);
    if (st == VMI_OK)
        st = vmi__file_lime_walk(f, 1, &count);
    return st;
}

/* ---- ELF ---------------------------------------------------------------- */

typedef struct vmi__file_phdr {
    uint32_t type;
    uint64_t offset, paddr, filesz, memsz;
} vmi__file_phdr;

typedef struct vmi__file_elf {
    int is64;
    uint64_t phoff, phnum;
    unsigned phentsize;
} vmi__file_elf;

static void vmi__file_read_phdr(const vmi__file *f, const vmi__file_elf *e, uint64_t i,
                                vmi__file_phdr *ph)
{
    const uint8_t *p = f->map + e->phoff + i * e->phentsize; /* bounds checked */
    ph->type = vmi__file_le32(p);
    if (e->is64) {
        ph->offset = vmi__file_le64(p + 8);
        ph->paddr = vmi__file_le64(p + 24);
        ph->filesz = vmi__file_le64(p + 32);
        ph->memsz = vmi__file_le64(p + 40);
    } else {
        ph->offset = vmi__file_le32(p + 4);
        ph->paddr = vmi__file_le32(p + 12);
        ph->filesz = vmi__file_le32(p + 16);
        ph->memsz = vmi__file_le32(p + 20);
    }
}

/* [off, off+len) lies inside the file. */
static int vmi__file_in_file(const vmi__file *f, uint64_t off, uint64_t len)
{
    return off <= (uint64_t)f->size && len <= (uint64_t)f->size - off;
}

static vmi_status vmi__file_elf_header(vmi__file *f, vmi__file_elf *e)
{
    const uint8_t *h = f->map;
    unsigned ehsize, min_phent, type;
    if (f->size < 16)
        return vmi__file_fail(f, VMI_ERR_TRUNCATED,
                              "ELF identification cut short (%llu of 16 bytes)",
                              (vmi__file_ull)f->size);
    if (memcmp(h, "\177ELF", 4) != 0)
        return vmi__file_fail(f, VMI_ERR_FORMAT, "no ELF magic at offset 0");
    if (h[4] != 1 && h[4] != 2)
        return vmi__file_fail(f, VMI_ERR_FORMAT, "bad ELF class %u", (unsigned)h[4]);
    if (h[5] == 2)
        return vmi__file_fail(f, VMI_ERR_UNSUPPORTED,
                              "big-endian ELF cores are not supported");
    if (h[5] != 1)
        return vmi__file_fail(f, VMI_ERR_FORMAT, "bad ELF data encoding %u",
                              (unsigned)h[5]);
    e->is64 = h[4] == 2;
    ehsize = e->is64 ? 64u : 52u;
    min_phent = e->is64 ? 56u : 32u;
    if (f->size < ehsize)
        return vmi__file_fail(f, VMI_ERR_TRUNCATED,
                              "ELF header cut short (%llu of %u bytes)",
                              (vmi__file_ull)f->size, ehsize);
    type = vmi__file_le16(h + 16);
    f->machine = vmi__file_le16(h + 18);
    if (type != VMI__FILE_ET_CORE)
        return vmi__file_fail(f, VMI_ERR_FORMAT,
                              "ELF type %u is not a core dump (ET_CORE, 4)", type);
    if (e->is64) {
        e->phoff = vmi__file_le64(h + 32);
        e->phentsize = vmi__file_le16(h + 54);
        e->phnum = vmi__file_le16(h + 56);
    } else {
        e->phoff = vmi__file_le32(h + 28);
        e->phentsize = vmi__file_le16(h + 42);
        e->phnum = vmi__file_le16(h + 44);
    }
    if (e->phnum == VMI__FILE_PN_XNUM) {
        /* The real count is section header 0's sh_info. */
        uint64_t shoff = e->is64 ? vmi__file_le64(h + 40) : vmi__file_le32(h + 32);
        unsigned shentsize = vmi__file_le16(h + (e->is64 ? 58 : 46));
        unsigned min_shent = e->is64 ? 64u : 40u;
        if (shoff == 0 || shentsize < min_shent)
            return vmi__file_fail(f, VMI_ERR_FORMAT,
                                  "e_phnum is PN_XNUM but there is no section header 0 "
                                  "(e_shoff 0x%llx, e_shentsize %u)",
                                  (vmi__file_ull)shoff, shentsize);
        if (!vmi__file_in_file(f, shoff, min_shent))
            return vmi__file_fail(f, VMI_ERR_TRUNCATED,
                                  "section header 0 at 0x%llx is past end of file (size "
                                  "0x%llx)",
                                  (vmi__file_ull)shoff, (vmi__file_ull)f->size);
        e->phnum = vmi__file_le32(f->map + shoff + (e->is64 ? 44 : 28));
    }
    if (e->phnum == 0)
        return vmi__file_fail(f, VMI_ERR_FORMAT, "ELF core without program headers");
    if (e->phnum > VMI_FILE_MAX_RANGES)
        return vmi__file_fail(f, VMI_ERR_LIMIT, "%llu program headers, more than %u",
                              (vmi__file_ull)e->phnum, (unsigned)VMI_FILE_MAX_RANGES);
    if (e->phentsize < min_phent)
        return vmi__file_fail(f, VMI_ERR_FORMAT,
                              "e_phentsize %u is smaller than a program header (%u)",
                              e->phentsize, min_phent);
    if (!vmi__file_in_file(f, e->phoff, e->phnum * e->phentsize))
        return vmi__file_fail(f, VMI_ERR_TRUNCATED,
                              "program headers (%llu x %u bytes at 0x%llx) end past end of "
                              "file (size 0x%llx)",
                              (vmi__file_ull)e->phnum, e->phentsize,
                              (vmi__file_ull)e->phoff, (vmi__file_ull)f->size);
    switch (f->machine) {
    case VMI__FILE_EM_X86_64: f->arch = VMI_ARCH_X86_64; break;
    case VMI__FILE_EM_386: f->arch = VMI_ARCH_X86; break;
    case VMI__FILE_EM_AARCH64: f->arch = VMI_ARCH_AARCH64; break;
    case VMI__FILE_EM_ARM: f->arch = VMI_ARCH_ARM; break;
    default: f->arch = VMI_ARCH_UNKNOWN; break;
    }
    return VMI_OK;
}

static uint64_t vmi__file_align4(uint64_t n)
{
    return (n + 3u) & ~(uint64_t)3u; /* n < 2^32: no overflow */
}

/* Walks the notes of PT_NOTE `idx` (ELF notes use 4-byte alignment in
   cores, 64-bit ones included); stores them when f->notes is set. A header
   of zeros ends the segment (kdump's unused per-CPU note space). */
static vmi_status vmi__file_note_walk(vmi__file *f, const vmi__file_phdr *ph, uint32_t idx)
{
    const uint8_t *seg = f->map + ph->offset;
    uint64_t len = ph->filesz, pos = 0;
    while (len - pos >= 12) {
        uint32_t namesz = vmi__file_le32(seg + pos);
        uint32_t descsz = vmi__file_le32(seg + pos + 4);
        uint32_t type = vmi__file_le32(seg + pos + 8);
        uint64_t start = pos, name_pad;
        if (namesz == 0 && descsz == 0 && type == 0)
            break;
        if (f->nnotes >= VMI_FILE_MAX_NOTES)
            return vmi__file_fail(f, VMI_ERR_LIMIT, "more than %u ELF notes",
                                  (unsigned)VMI_FILE_MAX_NOTES);
        pos += 12;
        name_pad = vmi__file_align4(namesz);
        if (name_pad > len - pos || descsz > len - pos - name_pad)
            return vmi__file_fail(f, VMI_ERR_TRUNCATED,
                                  "note at offset 0x%llx of PT_NOTE %u (namesz %u, descsz "
                                  "%u) runs past the segment's 0x%llx bytes",
                                  (vmi__file_ull)start, (unsigned)idx, (unsigned)namesz,
                                  (unsigned)descsz, (vmi__file_ull)len);
        if (f->notes) {
            vmi__file_note *n = &f->notes[f->nnotes];
            n->name = seg + pos;
            n->namesz = namesz;
            n->desc = seg + pos + name_pad;
            n->descsz = descsz;
            n->type = type;
        }
        f->nnotes++;
        pos += name_pad;
        /* The last note's padding may be missing. */
        pos += vmi__file_align4(descsz) <= len - pos ? vmi__file_align4(descsz) : len - pos;
    }
    return VMI_OK;
}

/* PT_NOTE and PT_LOAD checks shared by both passes. */
static vmi_status vmi__file_check_phdr(vmi__file *f, const vmi__file_phdr *ph, uint32_t i)
{
    const char *kind = ph->type == VMI__FILE_PT_LOAD ? "PT_LOAD" : "PT_NOTE";
    if (ph->type == VMI__FILE_PT_LOAD && ph->filesz > ph->memsz)
        return vmi__file_fail(f, VMI_ERR_FORMAT, "PT_LOAD %u: p_filesz 0x%llx > p_memsz 0x%llx",
                              (unsigned)i, (vmi__file_ull)ph->filesz,
                              (vmi__file_ull)ph->memsz);
    if (!vmi__file_in_file(f, ph->offset, ph->filesz)) {
        if (ph->filesz > UINT64_MAX - ph->offset)
            return vmi__file_fail(f, VMI_ERR_FORMAT,
                                  "%s %u: offset 0x%llx + size 0x%llx overflows", kind,
                                  (unsigned)i, (vmi__file_ull)ph->offset,
                                  (vmi__file_ull)ph->filesz);
        return vmi__file_fail(f, VMI_ERR_TRUNCATED,
                              "%s %u ends at 0x%llx past end of file (size 0x%llx)", kind,
                              (unsigned)i, (vmi__file_ull)(ph->offset + ph->filesz),
                              (vmi__file_ull)f->size);
    }
    return VMI_OK;
}

static int vmi__file_note_is(const vmi__file_note *n, const char *name)
{
    size_t len = strlen(name);
    if (n->namesz == len + 1)
        return n->name[len] == 0 && memcmp(n->name, name, len) == 0;
    return n->namesz == len && memcmp(n->name, name, len) == 0;
}

/* Pairs notes with vCPUs and picks the format name. */
static vmi_status vmi__file_elf_vcpus(vmi__file *f)
{
    size_t i;
    int x86 = f->machine == VMI__FILE_EM_X86_64 || f->machine == VMI__FILE_EM_386;
    int vmcoreinfo = 0;
    uint32_t nprs = 0, nqemu = 0;
    for (i = 0; i < f->nnotes; i++) {
        const vmi__file_note *n = &f->notes[i];
        if (n->type == VMI__FILE_NT_PRSTATUS && vmi__file_note_is(n, "CORE"))
            nprs++;
        else if (n->type == 0 && vmi__file_note_is(n, "QEMU"))
            nqemu++;
        else if (vmi__file_note_is(n, "VMCOREINFO"))
            vmcoreinfo = 1;
    }
    f->format = nqemu ? "elf-qemu" : (vmcoreinfo ? "elf-kdump" : "elf");
    if (f->arch == VMI_ARCH_UNKNOWN)
        return VMI_OK; /* no layout to read registers with */
    if (!x86)
        nqemu = 0;
    f->prstatus = (uint32_t *)vmi__file_calloc(f, nprs, sizeof(uint32_t));
    f->qemu = (uint32_t *)vmi__file_calloc(f, nqemu, sizeof(uint32_t));
    if (!f->prstatus || !f->qemu)
        return vmi__file_fail(f, VMI_ERR_NOMEM, "out of memory for %u vCPUs",
                              (unsigned)(nprs + nqemu));
    for (i = 0; i < f->nnotes; i++) {
        const vmi__file_note *n = &f->notes[i];
        if (n->type == VMI__FILE_NT_PRSTATUS && vmi__file_note_is(n, "CORE"))
            f->prstatus[f->nprstatus++] = (uint32_t)i;
        else if (x86 && n->type == 0 && vmi__file_note_is(n, "QEMU"))
            f->qemu[f->nqemu++] = (uint32_t)i;
    }
    f->nvcpus = f->nprstatus > f->nqemu ? f->nprstatus : f->nqemu;
    return VMI_OK;
}

static vmi_status vmi__file_parse_elf(vmi__file *f)
{
    vmi__file_elf e;
    vmi__file_phdr ph;
    uint64_t i;
    size_t nloads = 0;
    vmi_status st;
    f->format = "elf";
    f->seg_kind = "PT_LOAD";
    memset(&e, 0, sizeof e);
    st = vmi__file_elf_header(f, &e);
    if (st != VMI_OK)
        return st;
    /* First pass: check every PT_LOAD and PT_NOTE, count ranges and notes. */
    for (i = 0; i < e.phnum; i++) {
        vmi__file_read_phdr(f, &e, i, &ph);
        if (ph.type != VMI__FILE_PT_LOAD && ph.type != VMI__FILE_PT_NOTE)
            continue;
        st = vmi__file_check_phdr(f, &ph, (uint32_t)i);
        if (st == VMI_OK && ph.type == VMI__FILE_PT_NOTE)
            st = vmi__file_note_walk(f, &ph, (uint32_t)i);
        if (st != VMI_OK)
            return st;
        if (ph.type == VMI__FILE_PT_LOAD)
            nloads++;
    }
    st = vmi__file_reserve_segs(f, 2 * nloads); /* the data, and a zero tail */
    if (st != VMI_OK)
        return st;
    f->notes = (vmi__file_note *)vmi__file_calloc(f, f->nnotes, sizeof(vmi__file_note));
    if (!f->notes)
        return vmi__file_fail(f, VMI_ERR_NOMEM, "out of memory for %llu notes",
                              (vmi__file_ull)f->nnotes);
    f->nnotes = 0;
    /* Second pass: the same headers, now checked; collect. */
    for (i = 0; i < e.phnum; i++) {
        vmi__file_read_phdr(f, &e, i, &ph);
        if (ph.type == VMI__FILE_PT_NOTE) {
            st = vmi__file_note_walk(f, &ph, (uint32_t)i);
        } else if (ph.type == VMI__FILE_PT_LOAD) {
            st = VMI_OK;
            if (ph.memsz > UINT64_MAX - ph.paddr)
                return vmi__file_fail(f, VMI_ERR_FORMAT,
                                      "PT_LOAD %u at 0x%llx, size 0x%llx, wraps past the end "
                                      "of the 64-bit address space",
                                      (unsigned)i, (vmi__file_ull)ph.paddr,
                                      (vmi__file_ull)ph.memsz);
            if (ph.filesz)
                st = vmi__file_add_seg(f, ph.paddr, ph.filesz, f->map + ph.offset,
                                       (uint32_t)i);
            if (st == VMI_OK && ph.memsz > ph.filesz)
                st = vmi__file_add_seg(f, ph.paddr + ph.filesz, ph.memsz - ph.filesz, NULL,
                                       (uint32_t)i);
        } else {
            continue;
        }
        if (st != VMI_OK)
            return st;
    }
    return vmi__file_elf_vcpus(f);
}

/* ---- Windows crash dumps ------------------------------------------------ */

/* Where DUMP_HEADER64 ("PAGEDU64") and DUMP_HEADER32 ("PAGEDUMP") keep what
   we read; checked in QEMU include/qemu/win_dump_defs.h, Volatility's
   crash_vtypes.py and kdmp-parser's HEADER64. A bitmap dump's summary header
   follows the dump header: {"SDMP" or "FDMP", "DUMP", ..., u64 first page's
   file offset at 0x20, u64 pages present at 0x28, u64 bitmap bits at 0x30,
   the bitmap at 0x38} (kdmp-parser BMP_HEADER64, radare2 dmp64, Volatility3
   crash_common.json; Volatility3 reads 32-bit bitmap dumps the same way). */
typedef struct vmi__file_winlayout {
    uint32_t header;    /* dump header size: where pages or the summary header start */
    unsigned wide;      /* 8: pointer-sized fields are u64; 4: u32 */
    uint32_t dtb, machine, nproc, runs, context, dump_type;
    uint32_t max_runs;  /* runs that fit in PhysicalMemoryBlockBuffer */
    const char *full, *bitmap; /* backend.format */
} vmi__file_winlayout;

static const vmi__file_winlayout vmi__file_win64 = {
    0x2000, 8, 0x10, 0x30, 0x34, 0x88, 0x348, 0xF98, 43, "windump-full", "windump-bitmap"};
static const vmi__file_winlayout vmi__file_win32 = {
    0x1000, 4, 0x10, 0x20, 0x24, 0x64, 0x320, 0xF88, 86, "windump32-full", "windump32-bitmap"};

#define VMI__FILE_WIN_PAE_OFF 0x5Cu       /* DUMP_HEADER32.PaeEnabled, a byte */
#define VMI__FILE_WIN_BMP_HEADER 0x38u    /* summary header size, bitmap excluded */
#define VMI__FILE_WIN_MAX_PFN (1ull << 40) /* 2^52 bytes: x86's physical limit */
#define VMI__FILE_WIN_MAX_VCPUS 4096u
#define VMI__FILE_WIN_AMD64 0x8664u
#define VMI__FILE_WIN_I386 0x14cu
#define VMI__FILE_WIN_ARM64 0xAA64u

/* A pointer-sized header field (u64 in DU64, u32 in DUMP). */
static uint64_t vmi__file_win_word(const vmi__file *f, uint64_t off)
{
    return f->win->wide == 8 ? vmi__file_le64(f->map + off) : vmi__file_le32(f->map + off);
}

/* DumpType 1: PhysicalMemoryBlock's runs, their pages one after the other
   from the end of the header. */
static vmi_status vmi__file_win_full(vmi__file *f)
{
    const vmi__file_winlayout *w = f->win;
    uint32_t nruns = vmi__file_le32(f->map + w->runs), i;
    uint64_t npages = vmi__file_win_word(f, w->runs + w->wide), sum = 0, off = w->header;
    vmi_status st;
    f->format = w->full;
    f->seg_kind = "PhysicalMemoryBlock run";
    if (nruns > w->max_runs)
        return vmi__file_fail(f, VMI_ERR_FORMAT,
                              "PhysicalMemoryBlock.NumberOfRuns is %u, more than the %u runs "
                              "the header holds",
                              (unsigned)nruns, (unsigned)w->max_runs);
    st = vmi__file_reserve_segs(f, nruns);
    for (i = 0; st == VMI_OK && i < nruns; i++) {
        uint64_t at = w->runs + 2u * w->wide * (1u + i);
        uint64_t base = vmi__file_win_word(f, at), count = vmi__file_win_word(f, at + w->wide);
        if (base > VMI__FILE_WIN_MAX_PFN || count > VMI__FILE_WIN_MAX_PFN - base)
            return vmi__file_fail(f, VMI_ERR_FORMAT,
                                  "PhysicalMemoryBlock run %u (BasePage 0x%llx, PageCount "
                                  "0x%llx) reaches past 2^52",
                                  (unsigned)i, (vmi__file_ull)base, (vmi__file_ull)count);
        if (count > ((uint64_t)f->size - off) / 4096u)
            return vmi__file_fail(f, VMI_ERR_TRUNCATED,
                                  "PhysicalMemoryBlock run %u (BasePage 0x%llx, PageCount "
                                  "0x%llx) needs file bytes up to 0x%llx but the file ends at "
                                  "0x%llx",
                                  (unsigned)i, (vmi__file_ull)base, (vmi__file_ull)count,
                                  (vmi__file_ull)(off + count * 4096u), (vmi__file_ull)f->size);
        st = vmi__file_add_seg(f, base * 4096u, count * 4096u, f->map + off, i);
        off += count * 4096u;
        sum += count;
    }
    if (st == VMI_OK && sum != npages)
        return vmi__file_fail(f, VMI_ERR_FORMAT,
                              "PhysicalMemoryBlock.NumberOfPages is 0x%llx but its runs hold "
                              "0x%llx pages",
                              (vmi__file_ull)npages, (vmi__file_ull)sum);
    return st;
}

/* Runs of set bits in the bitmap; present pages are stored in bit order
   from file offset `first`, so a run is contiguous in the file too. Adds
   them when `add` (the second pass). */
static vmi_status vmi__file_win_bits(vmi__file *f, const uint8_t *bm, uint64_t nbits,
                                     uint64_t first, int add, uint64_t *nruns, uint64_t *nset)
{
    uint64_t i = 0, runs = 0, set = 0;
    while (i < nbits) {
        uint64_t start;
        if ((i & 7) == 0 && nbits - i >= 8 && bm[i >> 3] == 0) {
            i += 8;
            continue;
        }
        if (!((bm[i >> 3] >> (i & 7)) & 1)) {
            i++;
            continue;
        }
        for (start = i; i < nbits; i++) {
            if ((i & 7) == 0 && nbits - i >= 8 && bm[i >> 3] == 0xff)
                i += 7; /* the whole byte is set */
            else if (!((bm[i >> 3] >> (i & 7)) & 1))
                break;
        }
        if (add) {
            vmi_status st = vmi__file_add_seg(f, start * 4096u, (i - start) * 4096u,
                                              f->map + first + set * 4096u, (uint32_t)runs);
            if (st != VMI_OK)
                return st;
        }
        set += i - start;
        runs++;
    }
    *nruns = runs;
    *nset = set;
    return VMI_OK;
}

/* DumpType 5 and 6: the summary header and bitmap after the dump header. */
static vmi_status vmi__file_win_bitmap(vmi__file *f)
{
    const vmi__file_winlayout *w = f->win;
    const uint8_t *h = f->map + w->header;
    uint64_t first, present, nbits, bytes, bm_end, nruns = 0, nset = 0;
    vmi_status st;
    f->format = w->bitmap;
    f->seg_kind = "bitmap run";
    if (!vmi__file_in_file(f, w->header, VMI__FILE_WIN_BMP_HEADER))
        return vmi__file_fail(f, VMI_ERR_TRUNCATED,
                              "bitmap dump: the summary header at 0x%x is cut short (file size "
                              "0x%llx)",
                              (unsigned)w->header, (vmi__file_ull)f->size);
    if ((memcmp(h, "SDMP", 4) != 0 && memcmp(h, "FDMP", 4) != 0) ||
        memcmp(h + 4, "DUMP", 4) != 0)
        return vmi__file_fail(f, VMI_ERR_FORMAT,
                              "bitmap dump: summary header at 0x%x has signature 0x%08x 0x%08x, "
                              "expected \"SDMP\" or \"FDMP\" then \"DUMP\"",
                              (unsigned)w->header, (unsigned)vmi__file_le32(h),
                              (unsigned)vmi__file_le32(h + 4));
    first = vmi__file_le64(h + 0x20);
    present = vmi__file_le64(h + 0x28);
    nbits = vmi__file_le64(h + 0x30);
    if (nbits > VMI__FILE_WIN_MAX_PFN)
        return vmi__file_fail(f, VMI_ERR_FORMAT,
                              "bitmap dump: BitmapSize %llu bits reaches past 2^52",
                              (vmi__file_ull)nbits);
    bytes = (nbits + 7) / 8;
    bm_end = w->header + VMI__FILE_WIN_BMP_HEADER + bytes;
    if (!vmi__file_in_file(f, w->header + VMI__FILE_WIN_BMP_HEADER, bytes))
        return vmi__file_fail(f, VMI_ERR_TRUNCATED,
                              "bitmap dump: BitmapSize %llu bits needs the bitmap to end at "
                              "0x%llx but the file ends at 0x%llx",
                              (vmi__file_ull)nbits, (vmi__file_ull)bm_end,
                              (vmi__file_ull)f->size);
    if (first < bm_end || first > (uint64_t)f->size)
        return vmi__file_fail(f, VMI_ERR_FORMAT,
                              "bitmap dump: HeaderSize (first page's offset) 0x%llx is not "
                              "between the bitmap's end 0x%llx and the file's end 0x%llx",
                              (vmi__file_ull)first, (vmi__file_ull)bm_end,
                              (vmi__file_ull)f->size);
    vmi__file_win_bits(f, h + VMI__FILE_WIN_BMP_HEADER, nbits, first, 0, &nruns, &nset);
    if (nset != present)
        return vmi__file_fail(f, VMI_ERR_FORMAT,
                              "bitmap dump: Pages says %llu pages are present but the bitmap "
                              "has %llu bits set",
                              (vmi__file_ull)present, (vmi__file_ull)nset);
    if (nset > ((uint64_t)f->size - first) / 4096u)
        return vmi__file_fail(f, VMI_ERR_TRUNCATED,
                              "bitmap dump: %llu present pages need file bytes up to 0x%llx but "
                              "the file ends at 0x%llx",
                              (vmi__file_ull)nset, (vmi__file_ull)(first + nset * 4096u),
                              (vmi__file_ull)f->size);
    if (nruns > VMI_FILE_MAX_BITMAP_RUNS)
        return vmi__file_fail(f, VMI_ERR_LIMIT, "bitmap dump: %llu runs of pages, more than %u",
                              (vmi__file_ull)nruns, (unsigned)VMI_FILE_MAX_BITMAP_RUNS);
    st = vmi__file_reserve_segs(f, (size_t)nruns);
    if (st == VMI_OK)
        st = vmi__file_win_bits(f, h + VMI__FILE_WIN_BMP_HEADER, nbits, first, 1, &nruns, &nset);
    return st;
}

/* The raw header as note "WINDUMP_HEADER", for the OS layer. */
static vmi_status vmi__file_win_note(vmi__file *f)
{
    static const char name[] = "WINDUMP_HEADER";
    f->notes = (vmi__file_note *)vmi__file_calloc(f, 1, sizeof(vmi__file_note));
    if (!f->notes)
        return vmi__file_fail(f, VMI_ERR_NOMEM, "out of memory for a note");
    f->notes[0].name = (const uint8_t *)name;
    f->notes[0].namesz = sizeof name;
    f->notes[0].desc = f->map;
    f->notes[0].descsz = f->win->header;
    f->nnotes = 1;
    return VMI_OK;
}

static vmi_status vmi__file_parse_windump(vmi__file *f)
{
    const uint8_t *m = f->map;
    uint32_t machine, nproc, type;
    vmi_status st;
    f->format = "windump";
    if (f->size < 8 || memcmp(m, "PAGE", 4) != 0)
        return vmi__file_fail(f, VMI_ERR_FORMAT,
                              "no Windows crash dump signature (\"PAGE\") at offset 0");
    if (memcmp(m + 4, "DU64", 4) == 0)
        f->win = &vmi__file_win64;
    else if (memcmp(m + 4, "DUMP", 4) == 0)
        f->win = &vmi__file_win32;
    else
        return vmi__file_fail(f, VMI_ERR_FORMAT,
                              "Windows crash dump ValidDump 0x%08x is neither \"DU64\" nor "
                              "\"DUMP\"",
                              (unsigned)vmi__file_le32(m + 4));
    if (f->size < f->win->header)
        return vmi__file_fail(f, VMI_ERR_TRUNCATED,
                              "Windows crash dump header cut short (%llu of %u bytes)",
                              (vmi__file_ull)f->size, (unsigned)f->win->header);
    machine = vmi__file_le32(m + f->win->machine);
    nproc = vmi__file_le32(m + f->win->nproc);
    type = vmi__file_le32(m + f->win->dump_type);
    if (machine == VMI__FILE_WIN_AMD64 && f->win->wide == 8)
        f->arch = VMI_ARCH_X86_64;
    else if (machine == VMI__FILE_WIN_I386 && f->win->wide == 4)
        f->arch = VMI_ARCH_X86;
    else if (machine == VMI__FILE_WIN_ARM64 && f->win->wide == 8)
        f->arch = VMI_ARCH_AARCH64;
    /* Registers come from the header alone: one set per processor, and
       one processor when the count is zero. */
    if (f->arch == VMI_ARCH_X86 || f->arch == VMI_ARCH_X86_64)
        f->nvcpus = nproc == 0 ? 1u : (nproc < VMI__FILE_WIN_MAX_VCPUS ? nproc
                                                                        : VMI__FILE_WIN_MAX_VCPUS);
    if (type == 1)
        st = vmi__file_win_full(f);
    else if (type == 5 || type == 6)
        st = vmi__file_win_bitmap(f);
    else
        return vmi__file_fail(f, VMI_ERR_UNSUPPORTED,
                              "Windows crash dump DumpType %u is not supported (full 1, bitmap "
                              "5 and 6 are)",
                              (unsigned)type);
    return st == VMI_OK ? vmi__file_win_note(f) : st;
}

/* ---- registers ---------------------------------------------------------- */

static const vmi__file_note *vmi__file_vcpu_note(const vmi__file *f, const uint32_t *idx,
                                                 uint32_t count, uint32_t vcpu)
{
    return vcpu < count ? &f->notes[idx[vcpu]] : NULL;
}

static int vmi__file_prs_x86_64(const vmi__file_note *n, vmi_regs_x86 *x)
{
    const uint8_t *r = n->desc + VMI__FILE_PRS64_REG_OFF;
    if (n->descsz < VMI__FILE_PRS64_REG_OFF + VMI__FILE_PRS_X86_64_NREG * 8u)
        return 0;
    /* user_regs_struct order */
    x->r15 = vmi__file_le64(r + 0 * 8);
    x->r14 = vmi__file_le64(r + 1 * 8);
    x->r13 = vmi__file_le64(r + 2 * 8);
    x->r12 = vmi__file_le64(r + 3 * 8);
    x->rbp = vmi__file_le64(r + 4 * 8);
    x->rbx = vmi__file_le64(r + 5 * 8);
    x->r11 = vmi__file_le64(r + 6 * 8);
    x->r10 = vmi__file_le64(r + 7 * 8);
    x->r9 = vmi__file_le64(r + 8 * 8);
    x->r8 = vmi__file_le64(r + 9 * 8);
    x->rax = vmi__file_le64(r + 10 * 8);
    x->rcx = vmi__file_le64(r + 11 * 8);
    x->rdx = vmi__file_le64(r + 12 * 8);
    x->rsi = vmi__file_le64(r + 13 * 8);
    x->rdi = vmi__file_le64(r + 14 * 8); /* 15: orig_rax */
    x->rip = vmi__file_le64(r + 16 * 8);
    x->cs = vmi__file_le64(r + 17 * 8);
    x->rflags = vmi__file_le64(r + 18 * 8);
    x->rsp = vmi__file_le64(r + 19 * 8);
    x->ss = vmi__file_le64(r + 20 * 8);
    x->fs_base = vmi__file_le64(r + 21 * 8);
    x->gs_base = vmi__file_le64(r + 22 * 8);
    x->ds = vmi__file_le64(r + 23 * 8);
    x->es = vmi__file_le64(r + 24 * 8);
    x->fs = vmi__file_le64(r + 25 * 8);
    x->gs = vmi__file_le64(r + 26 * 8);
    return 1;
}

static int vmi__file_prs_i386(const vmi__file_note *n, vmi_regs_x86 *x)
{
    const uint8_t *r = n->desc + VMI__FILE_PRS32_REG_OFF;
    if (n->descsz < VMI__FILE_PRS32_REG_OFF + VMI__FILE_PRS_I386_NREG * 4u)
        return 0;
    x->rbx = vmi__file_le32(r + 0 * 4);
    x->rcx = vmi__file_le32(r + 1 * 4);
    x->rdx = vmi__file_le32(r + 2 * 4);
    x->rsi = vmi__file_le32(r + 3 * 4);
    x->rdi = vmi__file_le32(r + 4 * 4);
    x->rbp = vmi__file_le32(r + 5 * 4);
    x->rax = vmi__file_le32(r + 6 * 4);
    x->ds = vmi__file_le16(r + 7 * 4); /* u16 selector, u16 padding */
    x->es = vmi__file_le16(r + 8 * 4);
    x->fs = vmi__file_le16(r + 9 * 4);
    x->gs = vmi__file_le16(r + 10 * 4); /* 11: orig_eax */
    x->rip = vmi__file_le32(r + 12 * 4);
    x->cs = vmi__file_le16(r + 13 * 4);
    x->rflags = vmi__file_le32(r + 14 * 4);
    x->rsp = vmi__file_le32(r + 15 * 4);
    x->ss = vmi__file_le16(r + 16 * 4);
    return 1;
}

/* QEMUCPUState v1. */
static int vmi__file_qemu_state(const vmi__file *f, const vmi__file_note *n, vmi_regs_x86 *x)
{
    const uint8_t *d = n->desc;
    const uint8_t *g = d + 8, *seg = d + VMI__FILE_QEMU_SEG_OFF, *cr = d + VMI__FILE_QEMU_CR_OFF;
    if (n->descsz < VMI__FILE_QEMU_SIZE || vmi__file_le32(d) != 1 ||
        vmi__file_le32(d + 4) < VMI__FILE_QEMU_SIZE)
        return 0;
    x->rax = vmi__file_le64(g + 0 * 8);
    x->rbx = vmi__file_le64(g + 1 * 8);
    x->rcx = vmi__file_le64(g + 2 * 8);
    x->rdx = vmi__file_le64(g + 3 * 8);
    x->rsi = vmi__file_le64(g + 4 * 8);
    x->rdi = vmi__file_le64(g + 5 * 8);
    x->rsp = vmi__file_le64(g + 6 * 8);
    x->rbp = vmi__file_le64(g + 7 * 8);
    x->r8 = vmi__file_le64(g + 8 * 8);
    x->r9 = vmi__file_le64(g + 9 * 8);
    x->r10 = vmi__file_le64(g + 10 * 8);
    x->r11 = vmi__file_le64(g + 11 * 8);
    x->r12 = vmi__file_le64(g + 12 * 8);
    x->r13 = vmi__file_le64(g + 13 * 8);
    x->r14 = vmi__file_le64(g + 14 * 8);
    x->r15 = vmi__file_le64(g + 15 * 8);
    x->rip = vmi__file_le64(g + 16 * 8);
    x->rflags = vmi__file_le64(g + 17 * 8);
    /* segments: cs ds es fs gs ss ldt tr gdt idt, {selector, limit, flags, pad, base} */
    x->cs = vmi__file_le32(seg + 0 * VMI__FILE_QEMU_SEG_SIZE);
    x->ds = vmi__file_le32(seg + 1 * VMI__FILE_QEMU_SEG_SIZE);
    x->es = vmi__file_le32(seg + 2 * VMI__FILE_QEMU_SEG_SIZE);
    x->fs = vmi__file_le32(seg + 3 * VMI__FILE_QEMU_SEG_SIZE);
    x->gs = vmi__file_le32(seg + 4 * VMI__FILE_QEMU_SEG_SIZE);
    x->ss = vmi__file_le32(seg + 5 * VMI__FILE_QEMU_SEG_SIZE);
    x->fs_base = vmi__file_le64(seg + 3 * VMI__FILE_QEMU_SEG_SIZE + 16);
    x->gs_base = vmi__file_le64(seg + 4 * VMI__FILE_QEMU_SEG_SIZE + 16);
    x->gdtr_limit = vmi__file_le32(seg + 8 * VMI__FILE_QEMU_SEG_SIZE + 4);
    x->gdtr_base = vmi__file_le64(seg + 8 * VMI__FILE_QEMU_SEG_SIZE + 16);
    x->idtr_limit = vmi__file_le32(seg + 9 * VMI__FILE_QEMU_SEG_SIZE + 4);
    x->idtr_base = vmi__file_le64(seg + 9 * VMI__FILE_QEMU_SEG_SIZE + 16);
    x->cr0 = vmi__file_le64(cr + 0 * 8);
    x->cr2 = vmi__file_le64(cr + 2 * 8);
    x->cr3 = vmi__file_le64(cr + 3 * 8);
    x->cr4 = vmi__file_le64(cr + 4 * 8);
    /* kernel_gs_base: the last field, in notes of QEMU 5.2 and later */
    if (n->descsz >= VMI__FILE_QEMU_SIZE + 8 && vmi__file_le32(d + 4) >= VMI__FILE_QEMU_SIZE + 8)
        x->kernel_gs_base = vmi__file_le64(d + VMI__FILE_QEMU_SIZE);
    /* No EFER in the note. QEMU writes EM_X86_64 only when the first CPU is
       in long mode; a CPU with paging and PAE on is taken to be in it too. */
    x->efer = 0;
    if (f->machine == VMI__FILE_EM_X86_64 && (x->cr0 & 0x80000000u) && (x->cr4 & 0x20u))
        x->efer = (1u << 8) | (1u << 10); /* LME | LMA; NXE unknown */
    return 1;
}

/* CONTEXT (winnt.h; QEMU WinContext64/WinContext32, kdmp-parser CONTEXT):
   trusted when its ContextFlags name this architecture with the control
   and integer groups (a header that was never filled holds zeros or
   "PAGE" repeated) and, on x64, both copies of MXCSR agree. */
static int vmi__file_win_ctx64(const uint8_t *c, vmi_regs_x86 *x)
{
    uint32_t flags = vmi__file_le32(c + 0x30);
    if (!(flags & 0x100000u) || (flags & 3u) != 3u ||
        vmi__file_le32(c + 0x34) != vmi__file_le32(c + 0x118))
        return 0;
    x->cs = vmi__file_le16(c + 0x38);
    x->ds = vmi__file_le16(c + 0x3A);
    x->es = vmi__file_le16(c + 0x3C);
    x->fs = vmi__file_le16(c + 0x3E);
    x->gs = vmi__file_le16(c + 0x40);
    x->ss = vmi__file_le16(c + 0x42);
    x->rflags = vmi__file_le32(c + 0x44);
    x->rax = vmi__file_le64(c + 0x78);
    x->rcx = vmi__file_le64(c + 0x80);
    x->rdx = vmi__file_le64(c + 0x88);
    x->rbx = vmi__file_le64(c + 0x90);
    x->rsp = vmi__file_le64(c + 0x98);
    x->rbp = vmi__file_le64(c + 0xA0);
    x->rsi = vmi__file_le64(c + 0xA8);
    x->rdi = vmi__file_le64(c + 0xB0);
    x->r8 = vmi__file_le64(c + 0xB8);
    x->r9 = vmi__file_le64(c + 0xC0);
    x->r10 = vmi__file_le64(c + 0xC8);
    x->r11 = vmi__file_le64(c + 0xD0);
    x->r12 = vmi__file_le64(c + 0xD8);
    x->r13 = vmi__file_le64(c + 0xE0);
    x->r14 = vmi__file_le64(c + 0xE8);
    x->r15 = vmi__file_le64(c + 0xF0);
    x->rip = vmi__file_le64(c + 0xF8);
    return 1;
}

static int vmi__file_win_ctx32(const uint8_t *c, vmi_regs_x86 *x)
{
    uint32_t flags = vmi__file_le32(c);
    if (!(flags & 0x10000u) || (flags & 0x100000u) || (flags & 3u) != 3u)
        return 0;
    x->gs = vmi__file_le16(c + 0x8C);
    x->fs = vmi__file_le16(c + 0x90);
    x->es = vmi__file_le16(c + 0x94);
    x->ds = vmi__file_le16(c + 0x98);
    x->rdi = vmi__file_le32(c + 0x9C);
    x->rsi = vmi__file_le32(c + 0xA0);
    x->rbx = vmi__file_le32(c + 0xA4);
    x->rdx = vmi__file_le32(c + 0xA8);
    x->rcx = vmi__file_le32(c + 0xAC);
    x->rax = vmi__file_le32(c + 0xB0);
    x->rbp = vmi__file_le32(c + 0xB4);
    x->rip = vmi__file_le32(c + 0xB8);
    x->cs = vmi__file_le16(c + 0xBC);
    x->rflags = vmi__file_le32(c + 0xC0);
    x->rsp = vmi__file_le32(c + 0xC4);
    x->ss = vmi__file_le16(c + 0xC8);
    return 1;
}

/* The header has no control registers: they are made up from what it
   says (DirectoryTableBase, 64-bit or PaeEnabled) so that the paging mode
   follows. Windows turns PSE on, and NX whenever PAE is on. */
static vmi_status vmi__file_win_regs(vmi__file *f, uint32_t vcpu, vmi_regs *regs)
{
    vmi_regs_x86 *x = &regs->x86;
    const uint8_t *ctx = f->map + f->win->context;
    int pae = f->arch == VMI_ARCH_X86_64 || f->map[VMI__FILE_WIN_PAE_OFF] != 0;
    x->cr3 = vmi__file_win_word(f, f->win->dtb);
    x->cr0 = 0x80000001u; /* PG | PE */
    x->cr4 = 0x10u | (pae ? 0x20u : 0u); /* PSE | PAE */
    if (pae)
        x->efer = 1u << 11; /* NXE */
    if (f->arch == VMI_ARCH_X86_64)
        x->efer |= (1u << 8) | (1u << 10); /* LME | LMA */
    regs->valid = VMI_REGS_CONTROL;
    /* The one CONTEXT is the processor that wrote the dump: vCPU 0 here. */
    if (vcpu == 0 && (f->arch == VMI_ARCH_X86_64 ? vmi__file_win_ctx64(ctx, x)
                                                 : vmi__file_win_ctx32(ctx, x)))
        regs->valid |= VMI_REGS_GPR;
    return VMI_OK;
}

static vmi_status vmi__file_get_regs(void *ctx, uint32_t vcpu, vmi_regs *regs)
{
    vmi__file *f = (vmi__file *)ctx;
    const vmi__file_note *prs, *qemu;
    uint32_t i;
    if (!regs)
        return vmi__file_fail(f, VMI_ERR_ARG, "get_regs: regs is NULL");
    if (f->nvcpus == 0)
        return vmi__file_fail(f, VMI_ERR_UNSUPPORTED, "%s file holds no vCPU registers",
                              f->format);
    if (vcpu >= f->nvcpus)
        return vmi__file_fail(f, VMI_ERR_ARG, "no vCPU %u: the file holds %u", (unsigned)vcpu,
                              (unsigned)f->nvcpus);
    memset(regs, 0, sizeof *regs);
    regs->arch = f->arch;
    if (f->win)
        return vmi__file_win_regs(f, vcpu, regs);
    prs = vmi__file_vcpu_note(f, f->prstatus, f->nprstatus, vcpu);
    qemu = vmi__file_vcpu_note(f, f->qemu, f->nqemu, vcpu);
    switch (f->machine) {
    case VMI__FILE_EM_X86_64:
    case VMI__FILE_EM_386:
        if (prs && (f->machine == VMI__FILE_EM_X86_64 ? vmi__file_prs_x86_64(prs, &regs->x86)
                                                      : vmi__file_prs_i386(prs, &regs->x86)))
            regs->valid |= VMI_REGS_GPR;
        if (qemu && vmi__file_qemu_state(f, qemu, &regs->x86))
            regs->valid |= VMI_REGS_GPR | VMI_REGS_SEGMENT | VMI_REGS_CONTROL;
        break;
    case VMI__FILE_EM_AARCH64:
        if (prs && prs->descsz >= VMI__FILE_PRS64_REG_OFF + VMI__FILE_PRS_AARCH64_NREG * 8u) {
            const uint8_t *r = prs->desc + VMI__FILE_PRS64_REG_OFF;
            for (i = 0; i < 31; i++)
                regs->arm64.x[i] = vmi__file_le64(r + i * 8);
            regs->arm64.sp = vmi__file_le64(r + 31 * 8);
            regs->arm64.pc = vmi__file_le64(r + 32 * 8);
            regs->arm64.pstate = vmi__file_le64(r + 33 * 8);
            regs->valid |= VMI_REGS_GPR;
        }
        break;
    case VMI__FILE_EM_ARM:
        if (prs && prs->descsz >= VMI__FILE_PRS32_REG_OFF + VMI__FILE_PRS_ARM_NREG * 4u) {
            const uint8_t *r = prs->desc + VMI__FILE_PRS32_REG_OFF;
            for (i = 0; i < 16; i++)
                regs->arm.r[i] = vmi__file_le32(r + i * 4);
            regs->arm.cpsr = vmi__file_le32(r + 16 * 4);
            regs->valid |= VMI_REGS_GPR;
        }
        break;
    default:
        break;
    }
    if (regs->valid == 0)
        return vmi__file_fail(f, VMI_ERR_FORMAT,
                              "vCPU %u: its notes are too short or of an unknown version "
                              "(NT_PRSTATUS descsz %u, QEMU descsz %u)",
                              (unsigned)vcpu, prs ? (unsigned)prs->descsz : 0u,
                              qemu ? (unsigned)qemu->descsz : 0u);
    return VMI_OK;
}

/* ---- callbacks ---------------------------------------------------------- */

static vmi_status vmi__file_read_pa(void *ctx, uint64_t pa, void *buf, size_t len)
{
    vmi__file *f = (vmi__file *)ctx;
    const vmi_mem_range *r = vmi__file_find(f, pa);
    if (!r || len > r->size - (pa - r->pa))
        return vmi__file_fail(f, VMI_ERR_UNMAPPED,
                              "read of 0x%llx bytes at 0x%llx is not inside one range",
                              (vmi__file_ull)len, (vmi__file_ull)pa);
    if (r->host)
        memcpy(buf, (const uint8_t *)r->host + (pa - r->pa), len);
    else
        memset(buf, 0, len);
    return VMI_OK;
}

static vmi_status vmi__file_write_pa(void *ctx, uint64_t pa, const void *buf, size_t len)
{
    vmi__file *f = (vmi__file *)ctx;
    const vmi_mem_range *r = vmi__file_find(f, pa);
    if (!r || len > r->size - (pa - r->pa))
        return vmi__file_fail(f, VMI_ERR_UNMAPPED,
                              "write of 0x%llx bytes at 0x%llx is not inside one range",
                              (vmi__file_ull)len, (vmi__file_ull)pa);
    if (!r->host)
        return vmi__file_fail(f, VMI_ERR_READ_ONLY,
                              "0x%llx lies past a PT_LOAD's p_filesz: it reads as zeros and "
                              "has no bytes in the file to write",
                              (vmi__file_ull)pa);
    if (!(r->flags & VMI_RANGE_WRITABLE))
        return vmi__file_fail(f, VMI_ERR_READ_ONLY,
                              "opened read-only (set vmi_file_desc.writable)");
    memcpy((uint8_t *)r->host + (pa - r->pa), buf, len);
    return VMI_OK;
}

static vmi_status vmi__file_vcpu_count(void *ctx, uint32_t *count)
{
    vmi__file *f = (vmi__file *)ctx;
    if (!count)
        return vmi__file_fail(f, VMI_ERR_ARG, "vcpu_count: count is NULL");
    *count = f->nvcpus;
    return VMI_OK;
}

/* pause and resume: a file does not run. */
static vmi_status vmi__file_nop(void *ctx)
{
    (void)ctx;
    return VMI_OK;
}

static vmi_status vmi__file_get_note(void *ctx, const char *name, const void **data,
                                     size_t *len)
{
    vmi__file *f = (vmi__file *)ctx;
    size_t i;
    if (!name || !data || !len)
        return vmi__file_fail(f, VMI_ERR_ARG, "get_note: name, data and len are required");
    for (i = 0; i < f->nnotes; i++) {
        if (vmi__file_note_is(&f->notes[i], name)) {
            *data = f->notes[i].desc;
            *len = f->notes[i].descsz;
            return VMI_OK;
        }
    }
    return vmi__file_fail(f, VMI_ERR_NOT_FOUND, "no \"%.64s\" note in this %s file", name,
                          f->format);
}

static const char *vmi__file_last_error(void *ctx)
{
    return ((vmi__file *)ctx)->err;
}

static void vmi__file_destroy(vmi__file *f)
{
    if (f->map)
        munmap(f->map, f->size);
    vmi__file_free(f, f->segs);
    vmi__file_free(f, f->ranges);
    vmi__file_free(f, f->notes);
    vmi__file_free(f, f->prstatus);
    vmi__file_free(f, f->qemu);
    vmi__file_free(f, f->path);
    f->alloc.free(f, f->alloc.user);
}

static void vmi__file_close(void *ctx)
{
    if (ctx)
        vmi__file_destroy((vmi__file *)ctx);
}

/* ---- open --------------------------------------------------------------- */

static vmi_status vmi__file_map(vmi__file *f, int writable)
{
    struct stat sb;
    int fd, saved;
    uint64_t size;
    void *map;
    int flags = writable ? O_RDWR : O_RDONLY;
#ifdef O_CLOEXEC
    flags |= O_CLOEXEC;
#endif
    fd = open(f->path, flags);
    if (fd < 0)
        return vmi__file_fail(f, VMI_ERR_IO, "cannot open%s: %s",
                              writable ? " for writing" : "", strerror(errno));
    if (fstat(fd, &sb) != 0) {
        saved = errno;
        close(fd);
        return vmi__file_fail(f, VMI_ERR_IO, "fstat: %s", strerror(saved));
    }
    if (S_ISREG(sb.st_mode)) {
        size = (uint64_t)sb.st_size;
    } else if (S_ISBLK(sb.st_mode)) {
        off_t end = lseek(fd, 0, SEEK_END);
        if (end < 0) {
            saved = errno;
            close(fd);
            return vmi__file_fail(f, VMI_ERR_IO, "cannot size the block device: %s",
                                  strerror(saved));
        }
        size = (uint64_t)end;
    } else {
        close(fd);
        return vmi__file_fail(f, VMI_ERR_ARG, "not a regular file or block device");
    }
    if (size == 0) {
        close(fd);
        return vmi__file_fail(f, VMI_ERR_FORMAT, "empty file");
    }
    if (size > (uint64_t)(size_t)-1) {
        close(fd);
        return vmi__file_fail(f, VMI_ERR_LIMIT, "0x%llx bytes cannot be mapped on this host",
                              (vmi__file_ull)size);
    }
    map = mmap(NULL, (size_t)size, writable ? PROT_READ | PROT_WRITE : PROT_READ,
               writable ? MAP_SHARED : MAP_PRIVATE, fd, 0);
    saved = errno;
    close(fd);
    if (map == MAP_FAILED)
        return vmi__file_fail(f, VMI_ERR_IO, "mmap of 0x%llx bytes: %s", (vmi__file_ull)size,
                              strerror(saved));
    f->map = (uint8_t *)map;
    f->size = (size_t)size;
    f->writable = writable;
    return VMI_OK;
}

/* Content sniffing: new formats get their parser here. */
static vmi_status vmi__file_detect(vmi__file *f, uint64_t base)
{
    const uint8_t *m = f->map;
    if (f->size >= 4 && memcmp(m, "\177ELF", 4) == 0)
        return vmi__file_parse_elf(f);
    if (f->size >= 4 && vmi__file_le32(m) == VMI__FILE_LIME_MAGIC)
        return vmi__file_parse_lime(f);
    if (f->size >= 8 && (memcmp(m, "PAGEDU64", 8) == 0 || memcmp(m, "PAGEDUMP", 8) == 0))
        return vmi__file_parse_windump(f);
    if (f->size >= 8 && memcmp(m, "KDUMP   ", 8) == 0)
        return vmi__file_fail(f, VMI_ERR_UNSUPPORTED,
                              "compressed kdump files are not supported: convert with "
                              "makedumpfile -E, or dump with format elf");
    if (f->size >= 12 && memcmp(m, "makedumpfile", 12) == 0)
        return vmi__file_fail(f, VMI_ERR_UNSUPPORTED,
                              "flattened makedumpfile output is not supported: rearrange it "
                              "with makedumpfile -R");
    return vmi__file_parse_raw(f, base);
}

/* "windump" (either kind) or one of the exact backend.format names. */
static int vmi__file_is_windump_name(const char *fmt)
{
    static const char *const names[] = {"windump", "windump-full", "windump-bitmap",
                                        "windump32-full", "windump32-bitmap"};
    size_t i;
    for (i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(fmt, names[i]) == 0)
            return 1;
    return 0;
}

static vmi_status vmi__file_parse(vmi__file *f, const vmi_file_desc *desc)
{
    vmi_status st;
    const char *fmt = desc->format;
    if (!fmt)
        st = vmi__file_detect(f, desc->base);
    else if (strcmp(fmt, "raw") == 0)
        st = vmi__file_parse_raw(f, desc->base);
    else if (strcmp(fmt, "lime") == 0)
        st = vmi__file_parse_lime(f);
    else if (strcmp(fmt, "elf") == 0)
        st = vmi__file_parse_elf(f);
    else if (vmi__file_is_windump_name(fmt))
        st = vmi__file_parse_windump(f);
    else
        st = vmi__file_fail(f, VMI_ERR_ARG,
                            "unknown format \"%.32s\" (raw, lime, elf or windump)", fmt);
    if (st != VMI_OK)
        return st;
    if (f->win && fmt && strcmp(fmt, "windump") != 0 && strcmp(fmt, f->format) != 0)
        return vmi__file_fail(f, VMI_ERR_FORMAT, "forced format %s, but the file is %s", fmt,
                              f->format);
    /* Only ELF (kdump) repeats memory in a second segment. */
    return vmi__file_finish_ranges(f, strncmp(f->format, "elf", 3) == 0);
}

static void vmi__file_copy_error(char *err, size_t errlen, const char *msg)
{
    size_t n;
    if (!err || errlen == 0)
        return;
    n = strlen(msg);
    if (n >= errlen)
        n = errlen - 1;
    memcpy(err, msg, n);
    err[n] = 0;
}

VMI_API vmi_status vmi_file_open(const vmi_file_desc *desc, vmi_backend *out, char *err,
                                 size_t errlen)
{
    vmi_allocator alloc;
    vmi__file *f;
    vmi_status st;
    size_t plen;
    vmi__file_copy_error(err, errlen, "");
    if (!desc || !desc->path || !out) {
        vmi__file_copy_error(err, errlen, "vmi_file_open: desc, desc->path and out are required");
        return VMI_ERR_ARG;
    }
    alloc = desc->allocator;
    if (!alloc.alloc && !alloc.free) {
        alloc.alloc = vmi__file_malloc_default;
        alloc.free = vmi__file_free_default;
    } else if (!alloc.alloc || !alloc.free) {
        vmi__file_copy_error(err, errlen, "vmi_file_open: set both allocator.alloc and .free");
        return VMI_ERR_ARG;
    }
    f = (vmi__file *)alloc.alloc(sizeof(vmi__file), alloc.user);
    if (!f) {
        vmi__file_copy_error(err, errlen, "vmi_file_open: out of memory");
        return VMI_ERR_NOMEM;
    }
    memset(f, 0, sizeof *f);
    f->alloc = alloc;
    f->format = "file";
    plen = strlen(desc->path);
    f->path = (char *)vmi__file_calloc(f, plen + 1, 1);
    if (!f->path) {
        vmi__file_destroy(f);
        vmi__file_copy_error(err, errlen, "vmi_file_open: out of memory");
        return VMI_ERR_NOMEM;
    }
    memcpy(f->path, desc->path, plen + 1);
    st = vmi__file_map(f, desc->writable != 0);
    if (st == VMI_OK)
        st = vmi__file_parse(f, desc);
    if (st != VMI_OK) {
        vmi__file_copy_error(err, errlen, f->err);
        vmi__file_destroy(f);
        return st;
    }
    memset(out, 0, sizeof *out);
    out->name = "file";
    out->format = f->format;
    out->arch = f->arch;
    out->flags = f->writable ? VMI_BACKEND_WRITABLE : 0u;
    out->ctx = f;
    out->ranges = f->ranges;
    out->nranges = f->nranges;
    out->read_pa = vmi__file_read_pa;
    out->write_pa = vmi__file_write_pa;
    out->vcpu_count = vmi__file_vcpu_count;
    out->get_regs = vmi__file_get_regs;
    out->pause = vmi__file_nop;
    out->resume = vmi__file_nop;
    out->get_note = vmi__file_get_note;
    out->last_error = vmi__file_last_error;
    out->close = vmi__file_close;
    return VMI_OK;
}

#endif /* VMI_FILE_IMPL_INCLUDED */
#endif /* VMI_FILE_IMPLEMENTATION || VMI_IMPLEMENTATION */
