/* vmi.h - virtual machine introspection in one header.           v0.1.0
   MIT licensed (see the end of this file).

   Reads and writes a guest's memory and registers from outside it and
   translates its virtual addresses, with no agent inside the guest.

   Do this:
       #define VMI_IMPLEMENTATION
       #include "vmi.h"
   in exactly ONE C or C++ file. Every other file includes "vmi.h" alone.
   Backends live in their own headers (vmi_file.h, vmi_kvm.h, vmi_xen.h),
   included after vmi.h.

   Needs: a C99 compiler, POSIX (gettimeofday), and xxHash's header
   (Debian: libxxhash-dev), used inline: nothing to link.

   Configuration macros (define before the implementation):
       VMI_ASSERT(c)      assert for API misuse (default: assert.h)
       VMI_API            linkage of public functions (default: extern)
       VMI_NO_ARM         leave out the ARM walkers
       VMI_NO_LOG         compile out log messages

   Table of contents (search for the tag, e.g. ">>paging-x86"):
       >>declarations   public types and functions
       >>platform       includes, helpers, clock
       >>errors         status strings, last error, logging
       >>alloc          allocator hooks
       >>backend        the backend contract, the buffer backend
       >>physmem        physical reads and writes, page cache
       >>v2p-cache      (dtb, page) -> frame cache keyed with xxHash
       >>paging         the shared table walker and page enumerator
       >>paging-x86     legacy 32-bit, PAE, IA-32e 4-level and 5-level
       >>paging-arm     AArch32 short descriptors, LPAE, AArch64
       >>virtmem        reads and writes by virtual address, strings
       >>instance       open, close, registers, pause, caches

   Thread safety: an instance is not thread-safe; guard it with a lock or
   use one instance per thread. Distinct instances share nothing, so one
   process can introspect many guests at once.

   Guest data is untrusted: every length is capped, every table walk is
   bounded by the paging mode's depth, every enumeration by a budget.
*/

/* >>declarations ========================================================= */
#ifndef VMI_H_INCLUDED
#define VMI_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#define VMI_VERSION_MAJOR 0
#define VMI_VERSION_MINOR 1
#define VMI_VERSION_PATCH 0
#define VMI_VERSION_STRING "0.1.0"

#ifndef VMI_API
#define VMI_API extern
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes: X(name, description). VMI_OK is zero. */
#define VMI_STATUS_LIST(X)                                                    \
    X(VMI_OK, "ok")                                                           \
    X(VMI_ERR_ARG, "invalid argument")                                        \
    X(VMI_ERR_NOMEM, "out of memory")                                         \
    X(VMI_ERR_IO, "input/output error")                                       \
    X(VMI_ERR_UNSUPPORTED, "not supported by this backend or build")          \
    X(VMI_ERR_FORMAT, "unrecognized or corrupt format")                       \
    X(VMI_ERR_TRUNCATED, "input is truncated")                                \
    X(VMI_ERR_UNMAPPED, "guest-physical address is not backed by memory")     \
    X(VMI_ERR_NOT_PRESENT, "virtual address is not mapped")                   \
    X(VMI_ERR_PAGE_TABLE, "malformed page-table entry")                       \
    X(VMI_ERR_NO_PAGING, "paging mode or page-table root is not known")       \
    X(VMI_ERR_NOT_FOUND, "not found")                                         \
    X(VMI_ERR_READ_ONLY, "target is read-only")                               \
    X(VMI_ERR_LIMIT, "a size or count limit was reached")                     \
    X(VMI_ERR_BACKEND, "backend failure")                                     \
    X(VMI_ERR_TIMEOUT, "timed out")

typedef enum vmi_status {
#define VMI__STATUS_ENUM(name, text) name,
    VMI_STATUS_LIST(VMI__STATUS_ENUM)
#undef VMI__STATUS_ENUM
    VMI_STATUS_COUNT
} vmi_status;

typedef enum vmi_arch {
    VMI_ARCH_UNKNOWN = 0,
    VMI_ARCH_X86,     /* 32-bit x86 */
    VMI_ARCH_X86_64,
    VMI_ARCH_ARM,     /* AArch32 */
    VMI_ARCH_AARCH64
} vmi_arch;

typedef enum vmi_paging_mode {
    VMI_PAGING_UNKNOWN = 0, /* not yet known: virtual accesses fail */
    VMI_PAGING_OFF,         /* paging disabled: VA == PA */
    VMI_PAGING_LEGACY,      /* x86 32-bit, 4 KiB and 4 MiB (PSE, PSE-36) */
    VMI_PAGING_PAE,         /* x86 PAE, 4 KiB and 2 MiB */
    VMI_PAGING_IA32E,       /* x86-64 4-level, 4 KiB, 2 MiB, 1 GiB */
    VMI_PAGING_LA57,        /* x86-64 5-level */
    VMI_PAGING_AARCH32,     /* ARMv7 short descriptors: sections, supersections */
    VMI_PAGING_LPAE,        /* ARMv7 long descriptors */
    VMI_PAGING_AARCH64,     /* ARMv8 4K/16K/64K granules, TTBR0/TTBR1 */
    VMI_PAGING_MODE_COUNT
} vmi_paging_mode;

/* vmi_paging.flags */
#define VMI_PAGING_NO_PSE 0x1u /* legacy x86 with CR4.PSE clear: no 4 MiB pages */
#define VMI_PAGING_NXE 0x2u    /* x86 EFER.NXE: bit 63 is no-execute */

/* How the guest translates addresses. Zero-initialize, then set mode and dtb.
   dtb is the kernel's page-table root: CR3 (PCID bits are masked on use),
   TTBR1 on AArch64 and on LPAE with a TTBR1 split, TTBR0 on AArch32 short
   descriptors without a split. tcr is TCR_EL1 (AArch64) or TTBCR (AArch32,
   LPAE); zero on AArch64 means 4 KiB granules and 48-bit halves. */
typedef struct vmi_paging {
    vmi_paging_mode mode;
    uint64_t dtb;
    uint64_t tcr;
    uint32_t flags;
} vmi_paging;

/* Page attributes, reported by walks and enumeration. */
#define VMI_PAGE_WRITE 0x1u   /* writable by the kernel */
#define VMI_PAGE_USER 0x2u    /* accessible from user mode */
#define VMI_PAGE_NX 0x4u      /* not executable (x86 NX, ARM XN/UXN) */
#define VMI_PAGE_PXN 0x8u     /* ARM: not executable by the kernel */
#define VMI_PAGE_GLOBAL 0x10u /* x86 G, ARM nG clear */
#define VMI_PAGE_CONTIG 0x20u /* ARM contiguous hint / large page group */

#define VMI_WALK_MAX_LEVELS 5

typedef struct vmi_walk_level {
    uint64_t table_pa; /* physical address of the table */
    uint64_t entry_pa; /* physical address of the entry used */
    uint64_t entry;    /* the entry's value */
    uint32_t index;    /* index of the entry in its table */
} vmi_walk_level;

/* One translation, level by level. On failure nlevels says how far it got. */
typedef struct vmi_walk {
    uint64_t va, pa, dtb;  /* dtb: the root actually used */
    uint64_t page_size;
    uint32_t flags;        /* VMI_PAGE_* */
    uint32_t nlevels;
    vmi_walk_level levels[VMI_WALK_MAX_LEVELS];
} vmi_walk;

/* One mapped page (or large page) found by vmi_foreach_page. */
typedef struct vmi_page {
    uint64_t va, pa, size;
    uint32_t flags;
} vmi_page;
/* Return nonzero to stop the enumeration. */
typedef int (*vmi_page_fn)(void *user, const vmi_page *page);

/* Registers of one vCPU. `valid` says which groups the backend filled. */
#define VMI_REGS_GPR 0x1u     /* general registers, instruction pointer, flags */
#define VMI_REGS_SEGMENT 0x2u /* x86 selectors, bases, descriptor tables */
#define VMI_REGS_CONTROL 0x4u /* x86 CRx/EFER, ARM TTBRx/TCR/SCTLR */

typedef struct vmi_regs_x86 {
    uint64_t rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp;
    uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
    uint64_t rip, rflags;
    uint64_t cs, ds, es, fs, gs, ss;       /* selectors */
    uint64_t fs_base, gs_base, kernel_gs_base;
    uint64_t gdtr_base, idtr_base;
    uint32_t gdtr_limit, idtr_limit;
    uint64_t cr0, cr2, cr3, cr4, cr8, efer;
} vmi_regs_x86;

typedef struct vmi_regs_arm64 {
    uint64_t x[31];
    uint64_t sp, pc, pstate;
    uint64_t sp_el0, sp_el1, elr_el1, vbar_el1;
    uint64_t ttbr0, ttbr1, tcr, sctlr;
} vmi_regs_arm64;

typedef struct vmi_regs_arm {
    uint32_t r[16]; /* r13 sp, r14 lr, r15 pc */
    uint32_t cpsr;
    uint64_t ttbr0, ttbr1; /* 64-bit with LPAE */
    uint32_t ttbcr, sctlr, dacr;
} vmi_regs_arm;

typedef struct vmi_regs {
    vmi_arch arch;
    uint32_t valid; /* VMI_REGS_* */
    vmi_regs_x86 x86;     /* VMI_ARCH_X86, VMI_ARCH_X86_64 */
    vmi_regs_arm64 arm64; /* VMI_ARCH_AARCH64 */
    vmi_regs_arm arm;     /* VMI_ARCH_ARM */
} vmi_regs;

/* ---- backend contract ----------------------------------------------------
   A backend header fills a vmi_backend; vmi_open takes it over and calls
   close() when the instance closes (or when vmi_open fails). All callbacks
   get `ctx`. Optional callbacks may be NULL: the core then answers
   VMI_ERR_UNSUPPORTED. A callback reports failure with a status and may
   describe it through last_error().

   Memory is a sorted list of non-overlapping guest-physical ranges. A range
   with a `host` pointer is read with memcpy (zero copy, no cache); one
   without goes through read_pa/write_pa, behind the core's page cache. */

#define VMI_RANGE_WRITABLE 0x1u /* `host` may be written through */

typedef struct vmi_mem_range {
    uint64_t pa;   /* first guest-physical address */
    uint64_t size; /* bytes */
    void *host;    /* the whole range mapped in this process, or NULL */
    uint32_t flags;
} vmi_mem_range;

/* vmi_backend.flags */
#define VMI_BACKEND_LIVE 0x1u     /* the guest runs: cached data expires */
#define VMI_BACKEND_WRITABLE 0x2u /* writes were asked for and are possible */

struct vmi_event;     /* the events API: filled in by the events issue */
struct vmi_event_hit;

typedef struct vmi_backend {
    const char *name;   /* "file", "kvm", "xen", "buffer" */
    const char *format; /* what the target is, e.g. "raw", "lime", "elf" */
    vmi_arch arch;      /* hint from the target, or VMI_ARCH_UNKNOWN */
    uint32_t flags;     /* VMI_BACKEND_* */
    void *ctx;
    const vmi_mem_range *ranges; /* owned by the backend, valid until close */
    size_t nranges;

    /* [pa, pa+len) lies inside one range without a host pointer. */
    vmi_status (*read_pa)(void *ctx, uint64_t pa, void *buf, size_t len);
    vmi_status (*write_pa)(void *ctx, uint64_t pa, const void *buf, size_t len);
    vmi_status (*vcpu_count)(void *ctx, uint32_t *count);
    vmi_status (*get_regs)(void *ctx, uint32_t vcpu, vmi_regs *regs);
    vmi_status (*set_regs)(void *ctx, uint32_t vcpu, const vmi_regs *regs);
    vmi_status (*pause)(void *ctx);
    vmi_status (*resume)(void *ctx);
    /* A note the target carries, by name ("VMCOREINFO"); data stays owned
       by the backend. */
    vmi_status (*get_note)(void *ctx, const char *name, const void **data, size_t *len);
    vmi_status (*event_set)(void *ctx, struct vmi_event *ev);
    vmi_status (*event_clear)(void *ctx, struct vmi_event *ev);
    vmi_status (*event_wait)(void *ctx, int timeout_ms, struct vmi_event_hit *hit);
    const char *(*last_error)(void *ctx);
    void (*close)(void *ctx);
} vmi_backend;

/* ---- instance ------------------------------------------------------------ */

typedef struct vmi_allocator {
    void *(*alloc)(size_t size, void *user); /* NULL on failure */
    void (*free)(void *ptr, void *user);
    void *user;
} vmi_allocator;

typedef enum vmi_log_level {
    VMI_LOG_ERROR = 0,
    VMI_LOG_WARN,
    VMI_LOG_INFO,
    VMI_LOG_DEBUG
} vmi_log_level;

typedef struct vmi_logger {
    void (*func)(vmi_log_level level, const char *msg, void *user);
    void *user;
    vmi_log_level max_level; /* messages above this are dropped; 0: errors */
} vmi_logger;

/* Options. Zero-initialize; zero means the default. */
typedef struct vmi_desc {
    vmi_backend backend;       /* required: filled by a backend's open */
    vmi_allocator allocator;   /* default: malloc/free */
    vmi_logger logger;         /* default: no logging */
    vmi_paging paging;         /* default: from vCPU 0's registers, if any */
    uint32_t page_cache_pages; /* default 1024 pages (4 MiB) */
    uint32_t v2p_cache_entries;/* default 16384, rounded to a power of two */
    uint32_t cache_ttl_ms;     /* live backends; default 100 ms */
} vmi_desc;

typedef struct vmi_instance vmi_instance;

typedef struct vmi_cache_stats {
    uint64_t v2p_hits, v2p_misses, page_hits, page_misses, walks;
} vmi_cache_stats;

VMI_API const char *vmi_status_string(vmi_status status);
VMI_API const char *vmi_arch_name(vmi_arch arch);
VMI_API const char *vmi_paging_mode_name(vmi_paging_mode mode);
/* Parses a mode name as printed by vmi_paging_mode_name ("ia32e", ...). */
VMI_API vmi_paging_mode vmi_paging_mode_parse(const char *name);

/* Takes over desc->backend whatever the outcome. */
VMI_API vmi_status vmi_open(const vmi_desc *desc, vmi_instance **out);
VMI_API void vmi_close(vmi_instance *vmi);
/* Detail of the last failure on this instance ("" when none). */
VMI_API const char *vmi_last_error(const vmi_instance *vmi);
VMI_API const vmi_backend *vmi_get_backend(const vmi_instance *vmi);

/* Memory map, as the backend reports it. */
VMI_API const vmi_mem_range *vmi_memory_map(const vmi_instance *vmi, size_t *count);
VMI_API uint64_t vmi_memory_size(const vmi_instance *vmi);

/* vCPUs and registers. */
VMI_API vmi_status vmi_vcpu_count(vmi_instance *vmi, uint32_t *count);
VMI_API vmi_status vmi_get_regs(vmi_instance *vmi, uint32_t vcpu, vmi_regs *regs);
VMI_API vmi_status vmi_set_regs(vmi_instance *vmi, uint32_t vcpu, const vmi_regs *regs);
/* Pause nests: the guest resumes when every pause has its resume. Resuming
   flushes the caches of a live guest. */
VMI_API vmi_status vmi_pause(vmi_instance *vmi);
VMI_API vmi_status vmi_resume(vmi_instance *vmi);
VMI_API vmi_status vmi_get_note(vmi_instance *vmi, const char *name, const void **data, size_t *len);

/* Paging. vmi_paging_from_regs derives mode and root from control registers
   (CR0/CR4/EFER/CR3; TTBRx/TCR/SCTLR) and fails with VMI_ERR_NO_PAGING when
   they are missing. */
VMI_API vmi_status vmi_paging_from_regs(const vmi_regs *regs, vmi_paging *out);
VMI_API const vmi_paging *vmi_get_paging(const vmi_instance *vmi);
VMI_API vmi_status vmi_set_paging(vmi_instance *vmi, const vmi_paging *paging);
/* The kernel's root as vmi_paging.dtb holds it. */
VMI_API uint64_t vmi_kernel_dtb(const vmi_instance *vmi);

/* Caches. */
VMI_API void vmi_flush_caches(vmi_instance *vmi);
VMI_API void vmi_flush_v2p(vmi_instance *vmi, uint64_t dtb);
VMI_API vmi_cache_stats vmi_get_cache_stats(const vmi_instance *vmi);

/* Translation. dtb is a page-table root in the instance's paging mode; on
   ARM with a TTBR0/TTBR1 split, addresses of the upper region always use the
   kernel root from vmi_paging. */
VMI_API vmi_status vmi_translate(vmi_instance *vmi, uint64_t dtb, uint64_t va, uint64_t *pa);
VMI_API vmi_status vmi_translate_kva(vmi_instance *vmi, uint64_t va, uint64_t *pa);
/* Uncached, level by level, for display and debugging. */
VMI_API vmi_status vmi_translate_walk(vmi_instance *vmi, uint64_t dtb, uint64_t va, vmi_walk *walk);
/* Every mapped page with va in [va_start, va_end] (inclusive), in VA order.
   Large pages are reported once. Stops with VMI_ERR_LIMIT after visiting
   `max_tables` tables (0: 1<<20), which bounds garbage page tables. */
VMI_API vmi_status vmi_foreach_page(vmi_instance *vmi, uint64_t dtb, uint64_t va_start,
                                    uint64_t va_end, uint32_t max_tables, vmi_page_fn fn,
                                    void *user);

/* Physical memory. Reads of any length and alignment; on a hole the call
   fails with VMI_ERR_UNMAPPED and *done (may be NULL) says how much was
   read before it. */
VMI_API vmi_status vmi_read_pa(vmi_instance *vmi, uint64_t pa, void *buf, size_t len, size_t *done);
VMI_API vmi_status vmi_write_pa(vmi_instance *vmi, uint64_t pa, const void *buf, size_t len, size_t *done);
VMI_API vmi_status vmi_read_u32_pa(vmi_instance *vmi, uint64_t pa, uint32_t *out);
VMI_API vmi_status vmi_read_u64_pa(vmi_instance *vmi, uint64_t pa, uint64_t *out);

/* Virtual memory, by page-table root. Partial reads as for vmi_read_pa,
   with VMI_ERR_NOT_PRESENT at an unmapped page. */
VMI_API vmi_status vmi_read_va(vmi_instance *vmi, uint64_t dtb, uint64_t va, void *buf, size_t len, size_t *done);
VMI_API vmi_status vmi_write_va(vmi_instance *vmi, uint64_t dtb, uint64_t va, const void *buf, size_t len, size_t *done);
VMI_API vmi_status vmi_read_kva(vmi_instance *vmi, uint64_t va, void *buf, size_t len, size_t *done);
VMI_API vmi_status vmi_write_kva(vmi_instance *vmi, uint64_t va, const void *buf, size_t len, size_t *done);
VMI_API vmi_status vmi_read_u8(vmi_instance *vmi, uint64_t dtb, uint64_t va, uint8_t *out);
VMI_API vmi_status vmi_read_u16(vmi_instance *vmi, uint64_t dtb, uint64_t va, uint16_t *out);
VMI_API vmi_status vmi_read_u32(vmi_instance *vmi, uint64_t dtb, uint64_t va, uint32_t *out);
VMI_API vmi_status vmi_read_u64(vmi_instance *vmi, uint64_t dtb, uint64_t va, uint64_t *out);
/* A pointer of the guest's width (4 bytes on 32-bit modes), zero-extended. */
VMI_API vmi_status vmi_read_addr(vmi_instance *vmi, uint64_t dtb, uint64_t va, uint64_t *out);
VMI_API vmi_status vmi_write_u8(vmi_instance *vmi, uint64_t dtb, uint64_t va, uint8_t value);
VMI_API vmi_status vmi_write_u16(vmi_instance *vmi, uint64_t dtb, uint64_t va, uint16_t value);
VMI_API vmi_status vmi_write_u32(vmi_instance *vmi, uint64_t dtb, uint64_t va, uint32_t value);
VMI_API vmi_status vmi_write_u64(vmi_instance *vmi, uint64_t dtb, uint64_t va, uint64_t value);
/* Pointer width of the paging mode in bytes (4 or 8; 0 when unknown). */
VMI_API unsigned vmi_addr_width(const vmi_instance *vmi);

/* Strings. A C string up to its NUL into buf (always NUL-terminated);
   *len (may be NULL) gets its length. VMI_ERR_LIMIT when the string and its
   NUL do not fit in cap bytes: buf then holds the first cap - 1 bytes. */
VMI_API vmi_status vmi_read_str(vmi_instance *vmi, uint64_t dtb, uint64_t va, char *buf, size_t cap, size_t *len);
/* UTF-16LE (Windows) as UTF-8: `nbytes` bytes, or up to a NUL when 0.
   Unpaired surrogates become U+FFFD. */
VMI_API vmi_status vmi_read_utf16(vmi_instance *vmi, uint64_t dtb, uint64_t va, size_t nbytes,
                                  char *buf, size_t cap, size_t *len);

/* A backend over memory this process already holds (tests, embedders with
   their own capture). `ranges` must stay valid while the instance lives. */
VMI_API void vmi_backend_buffer(vmi_backend *out, const vmi_mem_range *ranges, size_t nranges);

#ifdef __cplusplus
}
#endif
#endif /* VMI_H_INCLUDED */

/* ========================================================================== */
/*                              IMPLEMENTATION                                */
/* ========================================================================== */
#ifdef VMI_IMPLEMENTATION
#ifndef VMI_IMPL_INCLUDED
#define VMI_IMPL_INCLUDED

/* >>platform =============================================================== */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#ifndef VMI_ASSERT
#include <assert.h>
#define VMI_ASSERT(c) assert(c)
#endif

/* xxHash used inline: its functions become static to this file. */
#ifndef XXH_INLINE_ALL
#define XXH_INLINE_ALL
#endif
#include <xxhash.h>

#define VMI__PAGE_SHIFT 12
#define VMI__PAGE_SIZE 4096u
#define VMI__ERR_MAX 256
#define VMI__NONE 0xffffffffu

static uint64_t vmi__min64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/* gettimeofday, not clock_gettime: <sys/time.h> declares it even in a strict
   -std=c99 build whatever came first. Only cache expiry uses it, and callers
   treat a clock that went back as "expired". */
static uint64_t vmi__now_ms(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
}

static uint32_t vmi__log2(uint64_t v) {
    uint32_t n = 0;
    while (v >>= 1) n++;
    return n;
}

static uint32_t vmi__pow2_at_least(uint32_t v, uint32_t lo) {
    uint32_t p = lo;
    while (p < v && p < 0x40000000u) p <<= 1;
    return p;
}

/* >>alloc ================================================================== */
static void *vmi__default_alloc(size_t size, void *user) { (void)user; return malloc(size); }
static void vmi__default_free(void *ptr, void *user) { (void)user; free(ptr); }

/* >>errors ================================================================= */
static const char *const vmi__status_text[] = {
#define VMI__STATUS_TEXT(name, text) text,
    VMI_STATUS_LIST(VMI__STATUS_TEXT)
#undef VMI__STATUS_TEXT
};

VMI_API const char *vmi_status_string(vmi_status status) {
    if ((unsigned)status >= (unsigned)VMI_STATUS_COUNT) return "unknown status";
    return vmi__status_text[status];
}

static const char *const vmi__mode_names[VMI_PAGING_MODE_COUNT] = {
    "unknown", "off", "legacy", "pae", "ia32e", "la57", "aarch32", "lpae", "aarch64"};

VMI_API const char *vmi_paging_mode_name(vmi_paging_mode mode) {
    if ((unsigned)mode >= (unsigned)VMI_PAGING_MODE_COUNT) return "invalid";
    return vmi__mode_names[mode];
}

VMI_API vmi_paging_mode vmi_paging_mode_parse(const char *name) {
    unsigned i;
    if (!name) return VMI_PAGING_UNKNOWN;
    for (i = 1; i < (unsigned)VMI_PAGING_MODE_COUNT; i++)
        if (strcmp(name, vmi__mode_names[i]) == 0) return (vmi_paging_mode)i;
    if (strcmp(name, "x86-64") == 0 || strcmp(name, "4level") == 0) return VMI_PAGING_IA32E;
    if (strcmp(name, "5level") == 0) return VMI_PAGING_LA57;
    if (strcmp(name, "short") == 0) return VMI_PAGING_AARCH32;
    return VMI_PAGING_UNKNOWN;
}

VMI_API const char *vmi_arch_name(vmi_arch arch) {
    switch (arch) {
    case VMI_ARCH_X86: return "x86";
    case VMI_ARCH_X86_64: return "x86_64";
    case VMI_ARCH_ARM: return "arm";
    case VMI_ARCH_AARCH64: return "aarch64";
    default: return "unknown";
    }
}

/* >>instance (state) ======================================================= */
/* Page-cache slot: one 4 KiB guest page read through read_pa. */
typedef struct vmi__pc_slot {
    uint64_t pfn;
    uint64_t stamp_ms;
    uint32_t range;       /* index of the range the page was filled from */
    uint32_t prev, next;  /* LRU list, most recent first */
    uint32_t hnext;       /* hash chain */
    uint32_t used;
} vmi__pc_slot;

/* V2P entry: a 4 KiB virtual page of one root mapped to a frame. */
typedef struct vmi__v2p_entry {
    uint64_t dtb;
    uint64_t tag;   /* vpn | VMI__V2P_VALID */
    uint64_t pfn;
    uint32_t flags;
    uint32_t shift; /* log2 of the real (possibly large) page size */
} vmi__v2p_entry;

#define VMI__V2P_VALID (1ull << 63)
#define VMI__V2P_WAYS 4u

struct vmi_instance {
    vmi_backend be;
    vmi_allocator alloc;
    vmi_logger log;
    vmi_paging paging;
    char err[VMI__ERR_MAX];
    uint32_t last_range;
    uint32_t pause_depth;
    uint64_t upper_from; /* ARM split: VAs from here walk from the kernel root */
    uint64_t ttl_ms, v2p_stamp_ms;
    /* page cache (only for ranges without a host mapping) */
    uint32_t pc_cap, pc_hmask, pc_head, pc_tail, pc_used;
    vmi__pc_slot *pc_slots;
    uint32_t *pc_hash;
    uint8_t *pc_data;
    /* V2P cache */
    uint32_t v2p_sets;
    vmi__v2p_entry *v2p;
    vmi__v2p_entry v2p_last;
    uint32_t v2p_victim;
    vmi_cache_stats stats;
};

static void *vmi__alloc(vmi_instance *vmi, size_t size) {
    void *p = vmi->alloc.alloc(size, vmi->alloc.user);
    if (p) memset(p, 0, size);
    return p;
}

static void vmi__free(vmi_instance *vmi, void *p) {
    if (p) vmi->alloc.free(p, vmi->alloc.user);
}

#if defined(__GNUC__) || defined(__clang__)
#define VMI__PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define VMI__PRINTF(f, a)
#endif

static void vmi__log(vmi_instance *vmi, vmi_log_level level, const char *fmt, ...) VMI__PRINTF(3, 4);
static void vmi__log(vmi_instance *vmi, vmi_log_level level, const char *fmt, ...) {
#ifndef VMI_NO_LOG
    char msg[VMI__ERR_MAX];
    va_list ap;
    if (!vmi->log.func || level > vmi->log.max_level) return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    vmi->log.func(level, msg, vmi->log.user);
#else
    (void)vmi; (void)level; (void)fmt;
#endif
}

/* Records the detail of a failure and returns its status, so callers can
   write `return vmi__fail(vmi, VMI_ERR_X, "...", ...)`. */
static vmi_status vmi__fail(vmi_instance *vmi, vmi_status st, const char *fmt, ...) VMI__PRINTF(3, 4);
static vmi_status vmi__fail(vmi_instance *vmi, vmi_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(vmi->err, sizeof vmi->err, fmt, ap);
    va_end(ap);
    vmi__log(vmi, VMI_LOG_DEBUG, "%s: %s", vmi_status_string(st), vmi->err);
    return st;
}

/* A backend's own words for a failure, when it has any. */
static vmi_status vmi__backend_fail(vmi_instance *vmi, vmi_status st, const char *what) {
    const char *detail = vmi->be.last_error ? vmi->be.last_error(vmi->be.ctx) : NULL;
    return vmi__fail(vmi, st, "%s: %s", what, detail && *detail ? detail : vmi_status_string(st));
}

VMI_API const char *vmi_last_error(const vmi_instance *vmi) { return vmi ? vmi->err : "no instance"; }

/* >>backend ================================================================ */
VMI_API void vmi_backend_buffer(vmi_backend *out, const vmi_mem_range *ranges, size_t nranges) {
    size_t i;
    memset(out, 0, sizeof *out);
    out->name = "buffer";
    out->format = "memory";
    out->ranges = ranges;
    out->nranges = nranges;
    for (i = 0; i < nranges; i++)
        if (ranges[i].flags & VMI_RANGE_WRITABLE) out->flags |= VMI_BACKEND_WRITABLE;
}

/* The core relies on sorted, non-overlapping, non-empty ranges for its
   binary search; a backend that breaks that is refused at open. */
static vmi_status vmi__check_ranges(vmi_instance *vmi) {
    size_t i;
    for (i = 0; i < vmi->be.nranges; i++) {
        const vmi_mem_range *r = &vmi->be.ranges[i];
        if (r->size == 0 || r->pa + r->size - 1 < r->pa)
            return vmi__fail(vmi, VMI_ERR_ARG, "backend range %zu is empty or wraps", i);
        if (!r->host && !vmi->be.read_pa)
            return vmi__fail(vmi, VMI_ERR_ARG, "backend range %zu has no host mapping and no read_pa", i);
        if (i && r->pa <= vmi->be.ranges[i - 1].pa + vmi->be.ranges[i - 1].size - 1)
            return vmi__fail(vmi, VMI_ERR_ARG, "backend ranges %zu and %zu overlap or are unsorted", i - 1, i);
    }
    return VMI_OK;
}

/* Live guests change under us: cached translations expire after ttl_ms
   unless the guest is paused. */
static void vmi__v2p_flush_all(vmi_instance *vmi);
static void vmi__tick(vmi_instance *vmi) {
    uint64_t now;
    if (!(vmi->be.flags & VMI_BACKEND_LIVE) || vmi->pause_depth) return;
    now = vmi__now_ms();
    if (now < vmi->v2p_stamp_ms || now - vmi->v2p_stamp_ms >= vmi->ttl_ms) {
        vmi__v2p_flush_all(vmi);
        vmi->v2p_stamp_ms = now;
    }
}

/* >>physmem ================================================================ */
/* Index of the range holding pa, or VMI__NONE. */
static uint32_t vmi__range_find(vmi_instance *vmi, uint64_t pa) {
    const vmi_mem_range *r = vmi->be.ranges;
    size_t lo = 0, hi = vmi->be.nranges;
    if (vmi->last_range < hi && pa - r[vmi->last_range].pa < r[vmi->last_range].size)
        return vmi->last_range;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (pa < r[mid].pa) hi = mid;
        else if (pa - r[mid].pa >= r[mid].size) lo = mid + 1;
        else return vmi->last_range = (uint32_t)mid;
    }
    return VMI__NONE;
}

static uint32_t vmi__pc_bucket(const vmi_instance *vmi, uint64_t pfn) {
    return (uint32_t)XXH3_64bits(&pfn, sizeof pfn) & vmi->pc_hmask;
}

static vmi_status vmi__pc_init(vmi_instance *vmi, uint32_t pages) {
    uint32_t i, buckets = vmi__pow2_at_least(pages * 2, 16);
    vmi->pc_cap = pages;
    vmi->pc_hmask = buckets - 1;
    vmi->pc_slots = (vmi__pc_slot *)vmi__alloc(vmi, sizeof(vmi__pc_slot) * pages);
    vmi->pc_hash = (uint32_t *)vmi__alloc(vmi, sizeof(uint32_t) * buckets);
    vmi->pc_data = (uint8_t *)vmi__alloc(vmi, (size_t)pages * VMI__PAGE_SIZE);
    if (!vmi->pc_slots || !vmi->pc_hash || !vmi->pc_data)
        return vmi__fail(vmi, VMI_ERR_NOMEM, "page cache of %u pages", pages);
    for (i = 0; i < buckets; i++) vmi->pc_hash[i] = VMI__NONE;
    vmi->pc_head = vmi->pc_tail = VMI__NONE;
    return VMI_OK;
}

static void vmi__pc_unlink(vmi_instance *vmi, uint32_t s) {
    vmi__pc_slot *e = &vmi->pc_slots[s];
    if (e->prev != VMI__NONE) vmi->pc_slots[e->prev].next = e->next; else vmi->pc_head = e->next;
    if (e->next != VMI__NONE) vmi->pc_slots[e->next].prev = e->prev; else vmi->pc_tail = e->prev;
}

static void vmi__pc_push_front(vmi_instance *vmi, uint32_t s) {
    vmi__pc_slot *e = &vmi->pc_slots[s];
    e->prev = VMI__NONE;
    e->next = vmi->pc_head;
    if (vmi->pc_head != VMI__NONE) vmi->pc_slots[vmi->pc_head].prev = s; else vmi->pc_tail = s;
    vmi->pc_head = s;
}

static void vmi__pc_push_back(vmi_instance *vmi, uint32_t s) {
    vmi__pc_slot *e = &vmi->pc_slots[s];
    e->next = VMI__NONE;
    e->prev = vmi->pc_tail;
    if (vmi->pc_tail != VMI__NONE) vmi->pc_slots[vmi->pc_tail].next = s; else vmi->pc_head = s;
    vmi->pc_tail = s;
}

static void vmi__pc_unhash(vmi_instance *vmi, uint32_t s) {
    uint32_t *link = &vmi->pc_hash[vmi__pc_bucket(vmi, vmi->pc_slots[s].pfn)];
    while (*link != VMI__NONE && *link != s) link = &vmi->pc_slots[*link].hnext;
    if (*link == s) *link = vmi->pc_slots[s].hnext;
}

static uint32_t vmi__pc_lookup(vmi_instance *vmi, uint64_t pfn, uint32_t range) {
    uint32_t s = vmi->pc_hash[vmi__pc_bucket(vmi, pfn)];
    while (s != VMI__NONE && (vmi->pc_slots[s].pfn != pfn || vmi->pc_slots[s].range != range))
        s = vmi->pc_slots[s].hnext;
    return s;
}

/* Fills a slot with the part of the page that lies inside `range`. */
static vmi_status vmi__pc_fill(vmi_instance *vmi, uint32_t s, uint64_t pfn, uint32_t range) {
    const vmi_mem_range *r = &vmi->be.ranges[range];
    uint64_t page = pfn << VMI__PAGE_SHIFT;
    uint64_t lo = page > r->pa ? page : r->pa;
    uint64_t hi = vmi__min64(page + VMI__PAGE_SIZE, r->pa + r->size);
    uint8_t *data = vmi->pc_data + (size_t)s * VMI__PAGE_SIZE;
    vmi_status st;
    memset(data, 0, VMI__PAGE_SIZE);
    st = vmi->be.read_pa(vmi->be.ctx, lo, data + (lo - page), (size_t)(hi - lo));
    if (st != VMI_OK) return vmi__backend_fail(vmi, st, "backend read_pa");
    vmi->pc_slots[s].pfn = pfn;
    vmi->pc_slots[s].range = range;
    vmi->pc_slots[s].stamp_ms = (vmi->be.flags & VMI_BACKEND_LIVE) ? vmi__now_ms() : 0;
    return VMI_OK;
}

static int vmi__pc_fresh(vmi_instance *vmi, uint32_t s) {
    if (!(vmi->be.flags & VMI_BACKEND_LIVE) || vmi->pause_depth) return 1;
    uint64_t now = vmi__now_ms(), stamp = vmi->pc_slots[s].stamp_ms;
    return now >= stamp && now - stamp < vmi->ttl_ms;
}

/* The cached copy of page pfn (from range), loading it on a miss. */
static vmi_status vmi__pc_get(vmi_instance *vmi, uint64_t pfn, uint32_t range, const uint8_t **page) {
    uint32_t s;
    vmi_status st;
    if (!vmi->pc_slots && (st = vmi__pc_init(vmi, vmi->pc_cap)) != VMI_OK) return st;
    s = vmi__pc_lookup(vmi, pfn, range);
    if (s != VMI__NONE && vmi__pc_fresh(vmi, s)) {
        vmi->stats.page_hits++;
        vmi__pc_unlink(vmi, s);
        vmi__pc_push_front(vmi, s);
        *page = vmi->pc_data + (size_t)s * VMI__PAGE_SIZE;
        return VMI_OK;
    }
    vmi->stats.page_misses++;
    if (s == VMI__NONE) {
        if (vmi->pc_used < vmi->pc_cap) {
            s = vmi->pc_used++;
        } else {
            s = vmi->pc_tail;
            vmi__pc_unhash(vmi, s);
            vmi__pc_unlink(vmi, s);
        }
    } else {
        vmi__pc_unhash(vmi, s);
        vmi__pc_unlink(vmi, s);
    }
    st = vmi__pc_fill(vmi, s, pfn, range);
    if (st != VMI_OK) {
        /* an empty slot goes to the cold end, first to be reused */
        vmi->pc_slots[s].range = VMI__NONE;
        vmi__pc_push_back(vmi, s);
        return st;
    }
    {
        uint32_t b = vmi__pc_bucket(vmi, pfn);
        vmi->pc_slots[s].hnext = vmi->pc_hash[b];
        vmi->pc_hash[b] = s;
    }
    vmi__pc_push_front(vmi, s);
    *page = vmi->pc_data + (size_t)s * VMI__PAGE_SIZE;
    return VMI_OK;
}

static void vmi__pc_flush(vmi_instance *vmi) {
    uint32_t i;
    if (!vmi->pc_slots) return;
    for (i = 0; i <= vmi->pc_hmask; i++) vmi->pc_hash[i] = VMI__NONE;
    vmi->pc_head = vmi->pc_tail = VMI__NONE;
    vmi->pc_used = 0;
}

static void vmi__pc_forget(vmi_instance *vmi, uint64_t pfn, uint32_t range) {
    uint32_t s;
    if (!vmi->pc_slots) return;
    s = vmi__pc_lookup(vmi, pfn, range);
    if (s != VMI__NONE) vmi->pc_slots[s].stamp_ms = 0, vmi->pc_slots[s].range = VMI__NONE;
}

/* Reads within one range without a host mapping, page by page. */
static vmi_status vmi__read_cached(vmi_instance *vmi, uint32_t range, uint64_t pa, uint8_t *buf, size_t len,
                                   size_t *done) {
    *done = 0;
    while (*done < len) {
        const uint8_t *page;
        uint64_t at = pa + *done, off = at & (VMI__PAGE_SIZE - 1);
        size_t n = (size_t)vmi__min64(len - *done, VMI__PAGE_SIZE - off);
        vmi_status st = vmi__pc_get(vmi, at >> VMI__PAGE_SHIFT, range, &page);
        if (st != VMI_OK) return st;
        memcpy(buf + *done, page + off, n);
        *done += n;
    }
    return VMI_OK;
}

/* The range holding `at` and how many of the `want` bytes from there it holds. */
static vmi_status vmi__range_span(vmi_instance *vmi, uint64_t at, size_t want, uint32_t *ri, size_t *n) {
    const vmi_mem_range *r;
    if ((*ri = vmi__range_find(vmi, at)) == VMI__NONE)
        return vmi__fail(vmi, VMI_ERR_UNMAPPED, "physical address 0x%llx is not in guest memory", (unsigned long long)at);
    r = &vmi->be.ranges[*ri];
    *n = (size_t)vmi__min64(want, r->size - (at - r->pa));
    return VMI_OK;
}

/* The host bytes of [pa, pa+len) when one mapped range holds them all. */
static const uint8_t *vmi__host_span(vmi_instance *vmi, uint64_t pa, size_t len) {
    const vmi_mem_range *r;
    uint64_t off;
    uint32_t ri = vmi->last_range;
    if (ri >= vmi->be.nranges || pa - vmi->be.ranges[ri].pa >= vmi->be.ranges[ri].size) {
        if ((ri = vmi__range_find(vmi, pa)) == VMI__NONE) return NULL;
    }
    r = &vmi->be.ranges[ri];
    off = pa - r->pa;
    if (!r->host || len > r->size - off) return NULL;
    return (const uint8_t *)r->host + off;
}

static vmi_status vmi__read_pa(vmi_instance *vmi, uint64_t pa, void *buf, size_t len, size_t *done) {
    size_t got = 0;
    vmi_status st = VMI_OK;
    const uint8_t *host = vmi__host_span(vmi, pa, len);
    if (host) { /* the common case: one memcpy */
        memcpy(buf, host, len);
        if (done) *done = len;
        return VMI_OK;
    }
    while (got < len) {
        uint64_t at = pa + got;
        uint32_t ri;
        const vmi_mem_range *r;
        size_t n = 0;
        if ((st = vmi__range_span(vmi, at, len - got, &ri, &n)) != VMI_OK) break;
        r = &vmi->be.ranges[ri];
        if (r->host) {
            memcpy((uint8_t *)buf + got, (const uint8_t *)r->host + (at - r->pa), n);
        } else {
            st = vmi__read_cached(vmi, ri, at, (uint8_t *)buf + got, n, &n);
        }
        got += n;
        if (st != VMI_OK) break;
    }
    if (done) *done = got;
    return st;
}

static vmi_status vmi__write_pa(vmi_instance *vmi, uint64_t pa, const void *buf, size_t len, size_t *done) {
    size_t got = 0;
    vmi_status st = VMI_OK;
    while (got < len) {
        uint64_t at = pa + got, p;
        uint32_t ri;
        const vmi_mem_range *r;
        size_t n = 0;
        if ((st = vmi__range_span(vmi, at, len - got, &ri, &n)) != VMI_OK) break;
        r = &vmi->be.ranges[ri];
        if (r->host && (r->flags & VMI_RANGE_WRITABLE)) {
            memcpy((uint8_t *)r->host + (at - r->pa), (const uint8_t *)buf + got, n);
        } else if (r->host || !vmi->be.write_pa) {
            st = vmi__fail(vmi, VMI_ERR_READ_ONLY, "physical address 0x%llx is read-only (%s target)",
                           (unsigned long long)at, vmi->be.name ? vmi->be.name : "backend");
            break;
        } else {
            st = vmi->be.write_pa(vmi->be.ctx, at, (const uint8_t *)buf + got, n);
            for (p = at >> VMI__PAGE_SHIFT; p <= (at + n - 1) >> VMI__PAGE_SHIFT; p++)
                vmi__pc_forget(vmi, p, ri);
            if (st != VMI_OK) { st = vmi__backend_fail(vmi, st, "backend write_pa"); break; }
        }
        got += n;
    }
    if (done) *done = got;
    return st;
}

VMI_API vmi_status vmi_read_pa(vmi_instance *vmi, uint64_t pa, void *buf, size_t len, size_t *done) {
    VMI_ASSERT(vmi && (buf || !len));
    vmi__tick(vmi);
    return vmi__read_pa(vmi, pa, buf, len, done);
}

VMI_API vmi_status vmi_write_pa(vmi_instance *vmi, uint64_t pa, const void *buf, size_t len, size_t *done) {
    VMI_ASSERT(vmi && (buf || !len));
    return vmi__write_pa(vmi, pa, buf, len, done);
}

/* Guest data is little-endian on every supported architecture. */
static uint64_t vmi__le(const uint8_t *p, unsigned n) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t v8;
    uint32_t v4;
    if (n == 8) { memcpy(&v8, p, 8); return v8; }
    if (n == 4) { memcpy(&v4, p, 4); return v4; }
#endif
    {
        uint64_t v = 0;
        while (n--) v = (v << 8) | p[n];
        return v;
    }
}

static vmi_status vmi__read_le_pa(vmi_instance *vmi, uint64_t pa, unsigned n, uint64_t *out) {
    uint8_t b[8];
    vmi_status st = vmi__read_pa(vmi, pa, b, n, NULL);
    *out = st == VMI_OK ? vmi__le(b, n) : 0;
    return st;
}

VMI_API vmi_status vmi_read_u32_pa(vmi_instance *vmi, uint64_t pa, uint32_t *out) {
    uint64_t v;
    vmi_status st = vmi__read_le_pa(vmi, pa, 4, &v);
    *out = (uint32_t)v;
    return st;
}

VMI_API vmi_status vmi_read_u64_pa(vmi_instance *vmi, uint64_t pa, uint64_t *out) {
    return vmi__read_le_pa(vmi, pa, 8, out);
}

/* >>v2p-cache ============================================================== */
static vmi_status vmi__v2p_init(vmi_instance *vmi, uint32_t entries) {
    uint32_t n = vmi__pow2_at_least(entries, VMI__V2P_WAYS * 4);
    vmi->v2p_sets = n / VMI__V2P_WAYS;
    vmi->v2p = (vmi__v2p_entry *)vmi__alloc(vmi, sizeof(vmi__v2p_entry) * n);
    return vmi->v2p ? VMI_OK : vmi__fail(vmi, VMI_ERR_NOMEM, "V2P cache of %u entries", n);
}

static vmi__v2p_entry *vmi__v2p_set(vmi_instance *vmi, uint64_t dtb, uint64_t vpn) {
    uint64_t key[2];
    key[0] = dtb;
    key[1] = vpn;
    return vmi->v2p + (size_t)(XXH3_64bits(key, sizeof key) & (vmi->v2p_sets - 1)) * VMI__V2P_WAYS;
}

static const vmi__v2p_entry *vmi__v2p_lookup(vmi_instance *vmi, uint64_t dtb, uint64_t vpn) {
    vmi__v2p_entry *set;
    unsigned w;
    uint64_t tag = vpn | VMI__V2P_VALID;
    if (vmi->v2p_last.tag == tag && vmi->v2p_last.dtb == dtb) return &vmi->v2p_last;
    set = vmi__v2p_set(vmi, dtb, vpn);
    for (w = 0; w < VMI__V2P_WAYS; w++)
        if (set[w].tag == tag && set[w].dtb == dtb) {
            vmi->v2p_last = set[w];
            return &vmi->v2p_last;
        }
    return NULL;
}

static void vmi__v2p_insert(vmi_instance *vmi, uint64_t dtb, uint64_t vpn, uint64_t pfn,
                            uint32_t shift, uint32_t flags) {
    vmi__v2p_entry *set = vmi__v2p_set(vmi, dtb, vpn), *e = NULL;
    unsigned w;
    for (w = 0; w < VMI__V2P_WAYS && !e; w++)
        if (!(set[w].tag & VMI__V2P_VALID)) e = &set[w];
    if (!e) e = &set[vmi->v2p_victim++ % VMI__V2P_WAYS];
    e->dtb = dtb;
    e->tag = vpn | VMI__V2P_VALID;
    e->pfn = pfn;
    e->shift = shift;
    e->flags = flags;
    vmi->v2p_last = *e;
}

static void vmi__v2p_flush_all(vmi_instance *vmi) {
    if (vmi->v2p) memset(vmi->v2p, 0, sizeof(vmi__v2p_entry) * vmi->v2p_sets * VMI__V2P_WAYS);
    memset(&vmi->v2p_last, 0, sizeof vmi->v2p_last);
}

VMI_API void vmi_flush_v2p(vmi_instance *vmi, uint64_t dtb) {
    size_t i, n = (size_t)vmi->v2p_sets * VMI__V2P_WAYS;
    for (i = 0; i < n; i++)
        if (vmi->v2p[i].dtb == dtb) vmi->v2p[i].tag = 0;
    if (vmi->v2p_last.dtb == dtb) vmi->v2p_last.tag = 0;
}

VMI_API void vmi_flush_caches(vmi_instance *vmi) {
    vmi__v2p_flush_all(vmi);
    vmi__pc_flush(vmi);
}

VMI_API vmi_cache_stats vmi_get_cache_stats(const vmi_instance *vmi) { return vmi->stats; }

/* >>paging ================================================================= */
/* Every mode is described by a vmi__fmt: per level, where its index sits in
   the VA and how wide it is, plus a decoder for the family's entries. One
   walker and one enumerator serve all modes. */
enum { VMI__FAM_X86, VMI__FAM_LONG, VMI__FAM_SHORT };
enum { VMI__E_INVALID, VMI__E_TABLE, VMI__E_LEAF, VMI__E_BAD };

typedef struct vmi__fmt {
    uint64_t root;         /* physical address of the top table */
    uint64_t va_lo, va_hi; /* the region this root translates (inclusive) */
    uint64_t va_base;      /* VA of the top table's entry 0 */
    uint64_t oa_mask;      /* output-address bits of an entry */
    uint8_t family, nlevels, esize, sext; /* sext: sign-extend VAs from this bit count */
    uint8_t shift[VMI_WALK_MAX_LEVELS], bits[VMI_WALK_MAX_LEVELS];
    uint32_t pflags;
    vmi_paging_mode mode;
} vmi__fmt;

typedef struct vmi__entry {
    uint64_t addr;       /* next table, or the leaf's base address */
    uint32_t shift;      /* leaf: log2 of the page size */
    uint32_t set, clear; /* VMI_PAGE_* this level adds and removes */
} vmi__entry;

/* Levels from the bottom: page_shift, then `stride` bits each, until
   va_bits are covered; the top level takes what remains. */
static void vmi__fmt_levels(vmi__fmt *f, unsigned page_shift, unsigned stride, unsigned va_bits) {
    unsigned n = (va_bits - page_shift + stride - 1) / stride, i;
    f->nlevels = (uint8_t)n;
    for (i = 0; i < n; i++) {
        f->shift[i] = (uint8_t)(page_shift + stride * (n - 1 - i));
        f->bits[i] = (uint8_t)stride;
    }
    f->bits[0] = (uint8_t)(va_bits - f->shift[0]);
}

/* Top tables are aligned to their size, at least 32 bytes. */
static uint64_t vmi__align_root(const vmi__fmt *f, uint64_t root) {
    uint64_t bytes = ((uint64_t)f->esize) << f->bits[0];
    return root & ~((bytes < 32 ? 32 : bytes) - 1);
}

static uint64_t vmi__fmt_va(const vmi__fmt *f, uint64_t raw) {
    if (f->sext && ((raw >> (f->sext - 1)) & 1)) return raw | (~0ull << f->sext);
    return f->va_base + raw;
}

/* >>paging-x86 ============================================================= */
static void vmi__fmt_x86(const vmi_paging *p, uint64_t dtb, vmi__fmt *f) {
    f->family = VMI__FAM_X86;
    f->esize = 8;
    f->oa_mask = 0x000ffffffffff000ull;
    switch (p->mode) {
    case VMI_PAGING_LEGACY:
        f->esize = 4;
        f->oa_mask = 0xfffff000u;
        vmi__fmt_levels(f, 12, 10, 32);
        f->root = dtb & 0xfffff000u;
        f->va_hi = 0xffffffffu;
        break;
    case VMI_PAGING_PAE:
        vmi__fmt_levels(f, 12, 9, 32);
        f->root = dtb & 0xffffffe0u;
        f->va_hi = 0xffffffffu;
        break;
    default: /* IA-32e: 4 or 5 levels; CR3's PCID and flag bits drop out */
        f->sext = p->mode == VMI_PAGING_LA57 ? 57 : 48;
        vmi__fmt_levels(f, 12, 9, f->sext);
        f->root = dtb & f->oa_mask;
        break;
    }
}

static int vmi__x86_large_ok(const vmi__fmt *f, unsigned shift) {
    switch (f->mode) {
    case VMI_PAGING_LEGACY: return shift == 22;
    case VMI_PAGING_PAE: return shift == 21;
    default: return shift == 21 || shift == 30;
    }
}

static int vmi__decode_x86(const vmi__fmt *f, unsigned l, uint64_t e, vmi__entry *d) {
    unsigned shift = f->shift[l];
    int last = l + 1u == f->nlevels;
    if (!(e & 1)) return VMI__E_INVALID;
    if (f->mode == VMI_PAGING_PAE && l == 0) { /* PDPTEs carry no rights */
        d->addr = e & f->oa_mask;
        return VMI__E_TABLE;
    }
    if (!(e & 2)) d->clear |= VMI_PAGE_WRITE;
    if (!(e & 4)) d->clear |= VMI_PAGE_USER;
    if (f->esize == 8 && (f->pflags & VMI_PAGING_NXE) && (e >> 63)) d->set |= VMI_PAGE_NX;
    if (!last && (e & 0x80) && !(f->mode == VMI_PAGING_LEGACY && (f->pflags & VMI_PAGING_NO_PSE))) {
        if (!vmi__x86_large_ok(f, shift)) return VMI__E_BAD; /* PS is reserved here */
        d->shift = shift;
        if (f->mode == VMI_PAGING_LEGACY) /* PSE-36: PA[39:32] in bits 20:13 */
            d->addr = (e & 0xffc00000u) | (((e >> 13) & 0xff) << 32);
        else
            d->addr = e & f->oa_mask & ~((1ull << shift) - 1);
    } else if (last) {
        d->shift = 12;
        d->addr = e & f->oa_mask;
    } else {
        d->addr = e & f->oa_mask;
        return VMI__E_TABLE;
    }
    if (e & 0x100) d->set |= VMI_PAGE_GLOBAL;
    return VMI__E_LEAF;
}

/* >>paging-arm ============================================================= */
#ifndef VMI_NO_ARM
/* AArch64 with TCR_EL1: T0SZ 5:0, TG0 15:14, T1SZ 21:16, TG1 31:30,
   TBI0 37, TBI1 38. Upper-half addresses walk from the kernel's TTBR1. */
#define VMI__TCR_DEFAULT (16ull | (16ull << 16) | (2ull << 30))

static vmi_status vmi__fmt_aarch64(const vmi_paging *p, uint64_t dtb, int upper, vmi__fmt *f) {
    uint64_t tcr = p->tcr ? p->tcr : VMI__TCR_DEFAULT;
    unsigned tsz, tg, g, insize;
    if (upper) {
        tsz = (unsigned)(tcr >> 16) & 63;
        tg = (unsigned)(tcr >> 30) & 3;
        g = tg == 1 ? 14 : tg == 3 ? 16 : 12;
        dtb = p->dtb;
    } else {
        tsz = (unsigned)tcr & 63;
        tg = (unsigned)(tcr >> 14) & 3;
        g = tg == 1 ? 16 : tg == 2 ? 14 : 12;
    }
    if (tsz < 12 || tsz > 48) return VMI_ERR_PAGE_TABLE;
    insize = 64 - tsz;
    f->family = VMI__FAM_LONG;
    f->esize = 8;
    vmi__fmt_levels(f, g, g - 3, insize);
    f->oa_mask = 0x0000fffffffff000ull & ~((1ull << g) - 1);
    f->root = vmi__align_root(f, dtb & 0x0000fffffffffffeull);
    f->va_lo = upper ? ~0ull << insize : 0;
    f->va_hi = upper ? ~0ull : (1ull << insize) - 1;
    f->va_base = f->va_lo;
    return VMI_OK;
}

/* LPAE with TTBCR: T0SZ 2:0, T1SZ 18:16 (ARM ARM B3.6.4). Linux's 3G/1G
   split has T1SZ = 2: the kernel's TTBR1 walk starts at level 2. */
static vmi_status vmi__fmt_lpae(const vmi_paging *p, uint64_t dtb, int upper, vmi__fmt *f) {
    unsigned t0 = (unsigned)p->tcr & 7, t1 = (unsigned)(p->tcr >> 16) & 7, insize;
    f->family = VMI__FAM_LONG;
    f->esize = 8;
    f->oa_mask = 0x000000fffffff000ull;
    if (!upper) {
        insize = 32 - t0;
        f->va_hi = t0 ? (1ull << insize) - 1 : t1 ? 0xffffffffull - (1ull << (32 - t1)) : 0xffffffffull;
    } else if (t1) {
        insize = 32 - t1;
        f->va_lo = f->va_base = 0x100000000ull - (1ull << insize);
        f->va_hi = 0xffffffffull;
        dtb = p->dtb;
    } else if (t0) {
        insize = 32;
        f->va_lo = 1ull << (32 - t0);
        f->va_hi = 0xffffffffull;
        dtb = p->dtb;
    } else {
        return VMI_ERR_NOT_FOUND; /* no TTBR1 region */
    }
    vmi__fmt_levels(f, 12, 9, insize);
    f->root = vmi__align_root(f, dtb & 0xffffffffffull);
    return VMI_OK;
}

/* Short descriptors with TTBCR.N: TTBR1 translates VAs >= 2^(32-N). */
static vmi_status vmi__fmt_short(const vmi_paging *p, uint64_t dtb, int upper, vmi__fmt *f) {
    unsigned n = (unsigned)p->tcr & 7;
    if (upper && !n) return VMI_ERR_NOT_FOUND;
    f->family = VMI__FAM_SHORT;
    f->esize = 4;
    f->nlevels = 2;
    f->shift[0] = 20;
    f->shift[1] = 12;
    f->bits[0] = (uint8_t)(upper ? 12 : 12 - n);
    f->bits[1] = 8;
    f->root = vmi__align_root(f, (upper ? p->dtb : dtb) & 0xffffffffu);
    f->va_lo = upper ? 1ull << (32 - n) : 0;
    f->va_hi = upper || !n ? 0xffffffffull : (1ull << (32 - n)) - 1;
    return VMI_OK;
}

static uint64_t vmi__long_oa(const vmi__fmt *f, uint64_t e) {
    uint64_t a = e & f->oa_mask;
    if (f->oa_mask == 0x0000ffffffff0000ull) a |= ((e >> 12) & 0xf) << 48; /* 64K: PA[51:48] */
    return a;
}

/* VMSAv8-64 and LPAE descriptors: bit 0 valid, bit 1 table/page vs block.
   Blocks exist only where a level maps at most 1 GiB. */
static int vmi__decode_long(const vmi__fmt *f, unsigned l, uint64_t e, vmi__entry *d) {
    unsigned shift = f->shift[l];
    int last = l + 1u == f->nlevels;
    if (!(e & 1)) return VMI__E_INVALID;
    if (!last && (e & 2)) {
        d->addr = vmi__long_oa(f, e);
        if ((e >> 62) & 1) d->clear |= VMI_PAGE_WRITE; /* APTable[1] */
        if ((e >> 61) & 1) d->clear |= VMI_PAGE_USER;  /* APTable[0] */
        if ((e >> 60) & 1) d->set |= VMI_PAGE_NX;      /* UXNTable */
        if ((e >> 59) & 1) d->set |= VMI_PAGE_PXN;     /* PXNTable */
        return VMI__E_TABLE;
    }
    if (last && !(e & 2)) return VMI__E_INVALID; /* reserved at the last level */
    if (!last && shift > 30) return VMI__E_BAD;   /* no block at this level */
    d->shift = shift;
    d->addr = vmi__long_oa(f, e) & ~((1ull << shift) - 1);
    if ((e >> 7) & 1) d->clear |= VMI_PAGE_WRITE;  /* AP[2]: read-only */
    if (!((e >> 6) & 1)) d->clear |= VMI_PAGE_USER; /* AP[1]: EL0 access */
    if ((e >> 54) & 1) d->set |= VMI_PAGE_NX;
    if ((e >> 53) & 1) d->set |= VMI_PAGE_PXN;
    if ((e >> 52) & 1) d->set |= VMI_PAGE_CONTIG;
    if (!((e >> 11) & 1)) d->set |= VMI_PAGE_GLOBAL;
    return VMI__E_LEAF;
}

/* AP[2:0] of short descriptors, for privileged writes and user access. */
static void vmi__short_ap(uint64_t ap, uint64_t xn, uint64_t ng, vmi__entry *d) {
    if ((ap & 4) || !(ap & 3)) d->clear |= VMI_PAGE_WRITE;
    if (!(ap & 2)) d->clear |= VMI_PAGE_USER;
    if (xn) d->set |= VMI_PAGE_NX;
    if (!ng) d->set |= VMI_PAGE_GLOBAL;
}

static int vmi__decode_short(const vmi__fmt *f, unsigned l, uint64_t e, vmi__entry *d) {
    (void)f;
    if (!(e & 3)) return VMI__E_INVALID;
    if (l == 0) {
        if ((e & 3) == 1) { /* coarse page table of 256 entries */
            d->addr = e & 0xfffffc00u;
            if (e & 4) d->set |= VMI_PAGE_PXN;
            return VMI__E_TABLE;
        }
        if ((e >> 18) & 1) { /* supersection: PA[35:32] in 23:20, PA[39:36] in 8:5 */
            d->shift = 24;
            d->addr = (e & 0xff000000u) | (((e >> 20) & 0xf) << 32) | (((e >> 5) & 0xf) << 36);
            d->set |= VMI_PAGE_CONTIG;
        } else {
            d->shift = 20;
            d->addr = e & 0xfff00000u;
        }
        if (e & 1) d->set |= VMI_PAGE_PXN;
        vmi__short_ap(((e >> 10) & 3) | (((e >> 15) & 1) << 2), (e >> 4) & 1, (e >> 17) & 1, d);
        return VMI__E_LEAF;
    }
    if ((e & 3) == 1) { /* 64 KiB large page, repeated in 16 entries */
        d->shift = 16;
        d->addr = e & 0xffff0000u;
        d->set |= VMI_PAGE_CONTIG;
        vmi__short_ap(((e >> 4) & 3) | (((e >> 9) & 1) << 2), (e >> 15) & 1, (e >> 11) & 1, d);
    } else {
        d->shift = 12;
        d->addr = e & 0xfffff000u;
        vmi__short_ap(((e >> 4) & 3) | (((e >> 9) & 1) << 2), e & 1, (e >> 11) & 1, d);
    }
    return VMI__E_LEAF;
}
#endif /* VMI_NO_ARM */

/* >>paging (shared walker) ================================================= */
static int vmi__decode(const vmi__fmt *f, unsigned l, uint64_t e, vmi__entry *d) {
    d->set = d->clear = 0;
    d->shift = 0;
    switch (f->family) {
#ifndef VMI_NO_ARM
    case VMI__FAM_LONG: return vmi__decode_long(f, l, e, d);
    case VMI__FAM_SHORT: return vmi__decode_short(f, l, e, d);
#endif
    default: return vmi__decode_x86(f, l, e, d);
    }
}

/* The format of one region: 0 the lower (or only) one, 1 ARM's TTBR1. */
static vmi_status vmi__fmt_region(const vmi_paging *p, uint64_t dtb, int upper, vmi__fmt *f) {
    memset(f, 0, sizeof *f);
    f->mode = p->mode;
    f->pflags = p->flags;
    f->va_hi = ~0ull;
    switch (p->mode) {
    case VMI_PAGING_LEGACY:
    case VMI_PAGING_PAE:
    case VMI_PAGING_IA32E:
    case VMI_PAGING_LA57:
        if (upper) return VMI_ERR_NOT_FOUND;
        vmi__fmt_x86(p, dtb, f);
        return VMI_OK;
#ifndef VMI_NO_ARM
    case VMI_PAGING_AARCH64: return vmi__fmt_aarch64(p, dtb, upper, f);
    case VMI_PAGING_LPAE: return vmi__fmt_lpae(p, dtb, upper, f);
    case VMI_PAGING_AARCH32: return vmi__fmt_short(p, dtb, upper, f);
#endif
    default: return VMI_ERR_NO_PAGING;
    }
}

/* The format that translates va, or why none does. */
static vmi_status vmi__fmt_for(vmi_instance *vmi, uint64_t dtb, uint64_t *va, vmi__fmt *f) {
    const vmi_paging *p = &vmi->paging;
    int upper = 0;
    vmi_status st;
    if (p->mode == VMI_PAGING_AARCH64) {
        uint64_t tcr = p->tcr ? p->tcr : VMI__TCR_DEFAULT;
        upper = (int)((*va >> 55) & 1);
        if ((tcr >> (upper ? 38 : 37)) & 1) /* top byte ignored */
            *va = (*va & 0x00ffffffffffffffull) | (upper ? 0xff00000000000000ull : 0);
    } else if (p->mode == VMI_PAGING_LPAE || p->mode == VMI_PAGING_AARCH32) {
        vmi__fmt lower;
        if (vmi__fmt_region(p, dtb, 0, &lower) == VMI_OK && *va > lower.va_hi) upper = 1;
    }
    st = vmi__fmt_region(p, dtb, upper, f);
    if (st == VMI_ERR_NO_PAGING)
        return vmi__fail(vmi, st, "no paging mode set (mode %s)", vmi_paging_mode_name(p->mode));
    if (st != VMI_OK)
        return vmi__fail(vmi, VMI_ERR_PAGE_TABLE, "%s: translation control 0x%llx is invalid",
                         vmi_paging_mode_name(p->mode), (unsigned long long)p->tcr);
    if (*va < f->va_lo || *va > f->va_hi ||
        (f->sext && vmi__fmt_va(f, *va & ((1ull << f->sext) - 1)) != *va))
        return vmi__fail(vmi, VMI_ERR_NOT_PRESENT, "%s: va 0x%llx is outside the translated range",
                         vmi_paging_mode_name(p->mode), (unsigned long long)*va);
    return VMI_OK;
}

static vmi_status vmi__read_entry(vmi_instance *vmi, const vmi__fmt *f, uint64_t pa, uint64_t *e) {
    const uint8_t *host = vmi__host_span(vmi, pa, f->esize);
    if (host) {
        *e = vmi__le(host, f->esize);
        return VMI_OK;
    }
    return vmi__read_le_pa(vmi, pa, f->esize, e);
}

static vmi_status vmi__walk(vmi_instance *vmi, const vmi__fmt *f, uint64_t va, vmi_walk *w) {
    uint64_t table = f->root;
    uint32_t flags = VMI_PAGE_WRITE | VMI_PAGE_USER;
    unsigned l;
    const char *mode = vmi_paging_mode_name(f->mode);
    vmi->stats.walks++;
    w->va = va;
    w->dtb = f->root;
    w->nlevels = 0;
    for (l = 0; l < f->nlevels; l++) {
        vmi_walk_level *lv = &w->levels[l];
        vmi__entry d;
        int kind;
        lv->table_pa = table;
        lv->index = (uint32_t)((va >> f->shift[l]) & ((1ull << f->bits[l]) - 1));
        lv->entry_pa = table + (uint64_t)lv->index * f->esize;
        if (vmi__read_entry(vmi, f, lv->entry_pa, &lv->entry) != VMI_OK)
            return vmi__fail(vmi, VMI_ERR_UNMAPPED, "%s walk of va 0x%llx: level %u table at pa 0x%llx is outside guest memory",
                             mode, (unsigned long long)va, l, (unsigned long long)table);
        w->nlevels = l + 1;
        kind = vmi__decode(f, l, lv->entry, &d);
        flags = (flags & ~d.clear) | d.set;
        if (kind == VMI__E_INVALID)
            return vmi__fail(vmi, VMI_ERR_NOT_PRESENT, "%s walk of va 0x%llx: level %u entry 0x%llx at pa 0x%llx is not present",
                             mode, (unsigned long long)va, l, (unsigned long long)lv->entry, (unsigned long long)lv->entry_pa);
        if (kind == VMI__E_BAD)
            return vmi__fail(vmi, VMI_ERR_PAGE_TABLE, "%s walk of va 0x%llx: level %u entry 0x%llx at pa 0x%llx is malformed",
                             mode, (unsigned long long)va, l, (unsigned long long)lv->entry, (unsigned long long)lv->entry_pa);
        if (kind == VMI__E_LEAF) {
            w->page_size = 1ull << d.shift;
            w->pa = d.addr | (va & (w->page_size - 1));
            w->flags = flags;
            return VMI_OK;
        }
        table = d.addr;
    }
    return vmi__fail(vmi, VMI_ERR_PAGE_TABLE, "%s walk of va 0x%llx ran past the last level", mode, (unsigned long long)va);
}

/* The root a VA really walks from, which keys the V2P cache: on ARM the
   upper region is the kernel's whatever root the caller gave, so flushing
   the kernel root must reach those entries. */
static uint64_t vmi__key_dtb(const vmi_instance *vmi, uint64_t dtb, uint64_t va) {
    if (vmi->paging.mode == VMI_PAGING_AARCH64) return ((va >> 55) & 1) ? vmi->paging.dtb : dtb;
    return vmi->upper_from && va >= vmi->upper_from ? vmi->paging.dtb : dtb;
}

/* Translation through the V2P cache. *avail: bytes from va to the end of
   its page, all physically contiguous. */
static vmi_status vmi__translate(vmi_instance *vmi, uint64_t dtb, uint64_t va, uint64_t *pa, uint64_t *avail) {
    const vmi__v2p_entry *e;
    uint64_t v = va;
    vmi__fmt f;
    vmi_walk w;
    vmi_status st;
    dtb = vmi__key_dtb(vmi, dtb, va);
    if ((e = vmi__v2p_lookup(vmi, dtb, va >> VMI__PAGE_SHIFT)) != NULL) {
        vmi->stats.v2p_hits++;
        *pa = (e->pfn << VMI__PAGE_SHIFT) | (va & (VMI__PAGE_SIZE - 1));
        *avail = (1ull << e->shift) - (va & ((1ull << e->shift) - 1));
        return VMI_OK;
    }
    if (vmi->paging.mode == VMI_PAGING_OFF) {
        *pa = va;
        *avail = VMI__PAGE_SIZE - (va & (VMI__PAGE_SIZE - 1));
        return VMI_OK;
    }
    vmi->stats.v2p_misses++;
    if ((st = vmi__fmt_for(vmi, dtb, &v, &f)) != VMI_OK) return st;
    if ((st = vmi__walk(vmi, &f, v, &w)) != VMI_OK) return st;
    vmi__v2p_insert(vmi, dtb, va >> VMI__PAGE_SHIFT, w.pa >> VMI__PAGE_SHIFT,
                    vmi__log2(w.page_size), w.flags);
    *pa = w.pa;
    *avail = w.page_size - (w.pa & (w.page_size - 1));
    return VMI_OK;
}

VMI_API vmi_status vmi_translate(vmi_instance *vmi, uint64_t dtb, uint64_t va, uint64_t *pa) {
    uint64_t avail;
    VMI_ASSERT(vmi && pa);
    vmi__tick(vmi);
    return vmi__translate(vmi, dtb, va, pa, &avail);
}

VMI_API vmi_status vmi_translate_kva(vmi_instance *vmi, uint64_t va, uint64_t *pa) {
    return vmi_translate(vmi, vmi->paging.dtb, va, pa);
}

VMI_API vmi_status vmi_translate_walk(vmi_instance *vmi, uint64_t dtb, uint64_t va, vmi_walk *walk) {
    vmi__fmt f;
    vmi_status st;
    VMI_ASSERT(vmi && walk);
    memset(walk, 0, sizeof *walk);
    if (vmi->paging.mode == VMI_PAGING_OFF) {
        walk->va = walk->pa = va;
        walk->page_size = VMI__PAGE_SIZE;
        walk->flags = VMI_PAGE_WRITE | VMI_PAGE_USER;
        return VMI_OK;
    }
    if ((st = vmi__fmt_for(vmi, dtb, &va, &f)) != VMI_OK) return st;
    return vmi__walk(vmi, &f, va, walk);
}

/* Enumeration: depth first in VA order, one table read per entry. */
typedef struct vmi__enum {
    vmi_instance *vmi;
    const vmi__fmt *f;
    uint64_t lo, hi;
    uint32_t budget;
    int stop;
    vmi_page_fn fn;
    void *user;
} vmi__enum;

/* A leaf wider than its entry (ARM large pages, supersections) repeats in
   several entries: report it once, at its first entry inside the range. */
static int vmi__enum_leaf(vmi__enum *en, uint64_t va, uint64_t span, const vmi__entry *d, uint32_t flags) {
    vmi_page pg;
    uint64_t size = 1ull << d->shift;
    if (size > span && (va & (size - 1)) && va > en->lo) return 0;
    pg.size = size;
    pg.va = va & ~(size - 1);
    pg.pa = d->addr;
    pg.flags = flags;
    return en->fn(en->user, &pg);
}

static vmi_status vmi__enum_table(vmi__enum *en, unsigned l, uint64_t table, uint64_t raw, uint32_t flags) {
    const vmi__fmt *f = en->f;
    uint64_t span = 1ull << f->shift[l], n = 1ull << f->bits[l], i;
    vmi_status st;
    if (!en->budget)
        return vmi__fail(en->vmi, VMI_ERR_LIMIT, "page enumeration stopped at its budget of tables (garbage page tables?)");
    en->budget--;
    for (i = 0; i < n && !en->stop; i++) {
        uint64_t e, va = vmi__fmt_va(f, raw + i * span);
        vmi__entry d;
        int kind;
        if (va + (span - 1) < en->lo) continue;
        if (va > en->hi) break;
        if (vmi__read_entry(en->vmi, f, table + i * f->esize, &e) != VMI_OK) break; /* table outside memory */
        kind = vmi__decode(f, l, e, &d);
        if (kind == VMI__E_LEAF) {
            en->stop = vmi__enum_leaf(en, va, span, &d, (flags & ~d.clear) | d.set);
        } else if (kind == VMI__E_TABLE && l + 1u < f->nlevels) {
            st = vmi__enum_table(en, l + 1, d.addr, raw + i * span, (flags & ~d.clear) | d.set);
            if (st != VMI_OK) return st;
        }
    }
    return VMI_OK;
}

/* Paging off: the memory map itself, one "page" per range. */
static vmi_status vmi__enum_identity(vmi_instance *vmi, uint64_t lo, uint64_t hi, vmi_page_fn fn, void *user) {
    size_t i;
    for (i = 0; i < vmi->be.nranges; i++) {
        const vmi_mem_range *r = &vmi->be.ranges[i];
        vmi_page pg;
        uint64_t end = r->pa + r->size - 1;
        if (end < lo || r->pa > hi) continue;
        pg.va = pg.pa = r->pa > lo ? r->pa : lo;
        pg.size = (end < hi ? end : hi) - pg.va + 1;
        pg.flags = VMI_PAGE_WRITE | VMI_PAGE_USER;
        if (fn(user, &pg)) break;
    }
    return VMI_OK;
}

VMI_API vmi_status vmi_foreach_page(vmi_instance *vmi, uint64_t dtb, uint64_t va_start, uint64_t va_end,
                                    uint32_t max_tables, vmi_page_fn fn, void *user) {
    vmi__enum en;
    int region;
    VMI_ASSERT(vmi && fn);
    if (vmi->paging.mode == VMI_PAGING_OFF) return vmi__enum_identity(vmi, va_start, va_end, fn, user);
    memset(&en, 0, sizeof en);
    en.vmi = vmi;
    en.budget = max_tables ? max_tables : 1u << 20;
    en.fn = fn;
    en.user = user;
    for (region = 0; region < 2 && !en.stop; region++) {
        vmi__fmt f;
        vmi_status st = vmi__fmt_region(&vmi->paging, dtb, region, &f);
        if (st == VMI_ERR_NOT_FOUND) continue;
        if (st == VMI_ERR_NO_PAGING) return vmi__fail(vmi, st, "no paging mode set");
        if (st != VMI_OK) return vmi__fail(vmi, st, "translation control 0x%llx is invalid", (unsigned long long)vmi->paging.tcr);
        en.f = &f;
        en.lo = va_start > f.va_lo ? va_start : f.va_lo;
        en.hi = va_end < f.va_hi ? va_end : f.va_hi;
        if (en.lo > en.hi) continue;
        if ((st = vmi__enum_table(&en, 0, f.root, 0, VMI_PAGE_WRITE | VMI_PAGE_USER)) != VMI_OK) return st;
    }
    return VMI_OK;
}

/* >>virtmem ================================================================ */
/* Reads (rbuf) or writes (wbuf) by VA, one physically contiguous piece at a
   time; stops at the first page that is not mapped. */
static vmi_status vmi__access_va(vmi_instance *vmi, uint64_t dtb, uint64_t va, uint8_t *rbuf,
                                 const uint8_t *wbuf, size_t len, size_t *done) {
    size_t got = 0;
    vmi_status st = VMI_OK;
    while (got < len) {
        uint64_t pa, avail;
        size_t n, d = 0;
        if ((st = vmi__translate(vmi, dtb, va + got, &pa, &avail)) != VMI_OK) break;
        n = (size_t)vmi__min64(len - got, avail);
        while (got + n < len) { /* physically contiguous pages become one copy */
            uint64_t pa2, avail2;
            if (vmi__translate(vmi, dtb, va + got + n, &pa2, &avail2) != VMI_OK || pa2 != pa + n) break;
            n += (size_t)vmi__min64(len - got - n, avail2);
        }
        st = rbuf ? vmi__read_pa(vmi, pa, rbuf + got, n, &d) : vmi__write_pa(vmi, pa, wbuf + got, n, &d);
        got += d;
        if (st != VMI_OK) break;
    }
    if (done) *done = got;
    return st;
}

VMI_API vmi_status vmi_read_va(vmi_instance *vmi, uint64_t dtb, uint64_t va, void *buf, size_t len, size_t *done) {
    const vmi__v2p_entry *e = &vmi->v2p_last;
    VMI_ASSERT(vmi && (buf || !len));
    vmi__tick(vmi);
    /* hot path: the page of the last translation, inside one mapped range */
    if (e->tag == ((va >> VMI__PAGE_SHIFT) | VMI__V2P_VALID) && e->dtb == vmi__key_dtb(vmi, dtb, va) &&
        len <= VMI__PAGE_SIZE - (va & (VMI__PAGE_SIZE - 1))) {
        const uint8_t *host = vmi__host_span(vmi, (e->pfn << VMI__PAGE_SHIFT) | (va & (VMI__PAGE_SIZE - 1)), len);
        if (host) {
            vmi->stats.v2p_hits++;
            memcpy(buf, host, len);
            if (done) *done = len;
            return VMI_OK;
        }
    }
    return vmi__access_va(vmi, dtb, va, (uint8_t *)buf, NULL, len, done);
}

VMI_API vmi_status vmi_write_va(vmi_instance *vmi, uint64_t dtb, uint64_t va, const void *buf, size_t len, size_t *done) {
    VMI_ASSERT(vmi && (buf || !len));
    vmi__tick(vmi);
    return vmi__access_va(vmi, dtb, va, NULL, (const uint8_t *)buf, len, done);
}

VMI_API vmi_status vmi_read_kva(vmi_instance *vmi, uint64_t va, void *buf, size_t len, size_t *done) {
    return vmi_read_va(vmi, vmi->paging.dtb, va, buf, len, done);
}

VMI_API vmi_status vmi_write_kva(vmi_instance *vmi, uint64_t va, const void *buf, size_t len, size_t *done) {
    return vmi_write_va(vmi, vmi->paging.dtb, va, buf, len, done);
}

static vmi_status vmi__read_le_va(vmi_instance *vmi, uint64_t dtb, uint64_t va, unsigned n, uint64_t *out) {
    uint8_t b[8];
    vmi_status st = vmi_read_va(vmi, dtb, va, b, n, NULL);
    *out = st == VMI_OK ? vmi__le(b, n) : 0;
    return st;
}

static vmi_status vmi__write_le_va(vmi_instance *vmi, uint64_t dtb, uint64_t va, unsigned n, uint64_t v) {
    uint8_t b[8];
    unsigned i;
    for (i = 0; i < n; i++) b[i] = (uint8_t)(v >> (8 * i));
    return vmi_write_va(vmi, dtb, va, b, n, NULL);
}

#define VMI__READ_INT(name, type, n)                                                   \
    VMI_API vmi_status name(vmi_instance *vmi, uint64_t dtb, uint64_t va, type *out) { \
        uint64_t v;                                                                    \
        vmi_status st = vmi__read_le_va(vmi, dtb, va, n, &v);                          \
        *out = (type)v;                                                                \
        return st;                                                                     \
    }
VMI__READ_INT(vmi_read_u8, uint8_t, 1)
VMI__READ_INT(vmi_read_u16, uint16_t, 2)
VMI__READ_INT(vmi_read_u32, uint32_t, 4)
VMI__READ_INT(vmi_read_u64, uint64_t, 8)
#undef VMI__READ_INT

#define VMI__WRITE_INT(name, type, n)                                                 \
    VMI_API vmi_status name(vmi_instance *vmi, uint64_t dtb, uint64_t va, type value) { \
        return vmi__write_le_va(vmi, dtb, va, n, value);                              \
    }
VMI__WRITE_INT(vmi_write_u8, uint8_t, 1)
VMI__WRITE_INT(vmi_write_u16, uint16_t, 2)
VMI__WRITE_INT(vmi_write_u32, uint32_t, 4)
VMI__WRITE_INT(vmi_write_u64, uint64_t, 8)
#undef VMI__WRITE_INT

VMI_API unsigned vmi_addr_width(const vmi_instance *vmi) {
    switch (vmi->paging.mode) {
    case VMI_PAGING_LEGACY: case VMI_PAGING_PAE: case VMI_PAGING_AARCH32: case VMI_PAGING_LPAE: return 4;
    case VMI_PAGING_IA32E: case VMI_PAGING_LA57: case VMI_PAGING_AARCH64: return 8;
    case VMI_PAGING_OFF:
        if (vmi->be.arch == VMI_ARCH_X86 || vmi->be.arch == VMI_ARCH_ARM) return 4;
        return vmi->be.arch == VMI_ARCH_UNKNOWN ? 0 : 8;
    default: return 0;
    }
}

VMI_API vmi_status vmi_read_addr(vmi_instance *vmi, uint64_t dtb, uint64_t va, uint64_t *out) {
    unsigned w = vmi_addr_width(vmi);
    if (!w) {
        *out = 0;
        return vmi__fail(vmi, VMI_ERR_NO_PAGING, "pointer width unknown: no paging mode set");
    }
    return vmi__read_le_va(vmi, dtb, va, w, out);
}

/* Strings are read in small pieces that never cross a page, so a string
   that ends just before an unmapped page still reads. */
#define VMI__STR_CHUNK 256u

VMI_API vmi_status vmi_read_str(vmi_instance *vmi, uint64_t dtb, uint64_t va, char *buf, size_t cap, size_t *len) {
    size_t got = 0;
    vmi_status st = VMI_OK;
    VMI_ASSERT(vmi && buf);
    if (len) *len = 0;
    if (!cap) return vmi__fail(vmi, VMI_ERR_ARG, "vmi_read_str: zero-sized buffer");
    vmi__tick(vmi);
    while (got < cap) {
        uint64_t pa, avail;
        size_t n, d = 0;
        const char *nul;
        if ((st = vmi__translate(vmi, dtb, va + got, &pa, &avail)) != VMI_OK) break;
        n = (size_t)vmi__min64(vmi__min64(cap - got, avail), got ? VMI__STR_CHUNK : 64);
        st = vmi__read_pa(vmi, pa, buf + got, n, &d);
        nul = (const char *)memchr(buf + got, 0, d);
        if (nul) {
            if (len) *len = (size_t)(nul - buf);
            return VMI_OK;
        }
        got += d;
        if (st != VMI_OK) break;
    }
    if (got == cap) got--; /* no NUL in cap bytes: cut to make room for one */
    buf[got] = 0;
    if (len) *len = got;
    if (st != VMI_OK) return st;
    return vmi__fail(vmi, VMI_ERR_LIMIT, "string at va 0x%llx and its NUL do not fit in %zu bytes", (unsigned long long)va, cap);
}

/* Appends cp as UTF-8 if it fits with room for the final NUL. */
static int vmi__utf8_put(char *buf, size_t cap, size_t *out, uint32_t cp) {
    uint8_t b[4];
    size_t n, i;
    if (cp < 0x80) { b[0] = (uint8_t)cp; n = 1; }
    else if (cp < 0x800) { b[0] = (uint8_t)(0xc0 | (cp >> 6)); b[1] = (uint8_t)(0x80 | (cp & 0x3f)); n = 2; }
    else if (cp < 0x10000) {
        b[0] = (uint8_t)(0xe0 | (cp >> 12)); b[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        b[2] = (uint8_t)(0x80 | (cp & 0x3f)); n = 3;
    } else {
        b[0] = (uint8_t)(0xf0 | (cp >> 18)); b[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
        b[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f)); b[3] = (uint8_t)(0x80 | (cp & 0x3f)); n = 4;
    }
    if (*out + n + 1 > cap) return 0;
    for (i = 0; i < n; i++) buf[(*out)++] = (char)b[i];
    return 1;
}

/* UTF-16 decoder state across chunks: `hi` is a pending high surrogate. */
typedef struct vmi__u16 {
    char *buf;
    size_t cap, out;
    uint32_t hi;
} vmi__u16;

/* Feeds one code unit; 0 when the output is full. */
static int vmi__u16_feed(vmi__u16 *s, uint32_t u) {
    if (s->hi) {
        uint32_t hi = s->hi;
        s->hi = 0;
        if (u >= 0xdc00 && u <= 0xdfff)
            return vmi__utf8_put(s->buf, s->cap, &s->out, 0x10000 + ((hi - 0xd800) << 10) + (u - 0xdc00));
        if (!vmi__utf8_put(s->buf, s->cap, &s->out, 0xfffd)) return 0;
    }
    if (u >= 0xd800 && u <= 0xdbff) { s->hi = u; return 1; }
    return vmi__utf8_put(s->buf, s->cap, &s->out, (u >= 0xdc00 && u <= 0xdfff) ? 0xfffd : u);
}

VMI_API vmi_status vmi_read_utf16(vmi_instance *vmi, uint64_t dtb, uint64_t va, size_t nbytes,
                                  char *buf, size_t cap, size_t *len) {
    vmi__u16 s;
    uint64_t pos = 0, limit = nbytes ? (nbytes & ~(size_t)1) : ~0ull;
    vmi_status st = VMI_OK;
    int full = 0, ended = 0;
    VMI_ASSERT(vmi && buf);
    if (len) *len = 0;
    if (!cap) return vmi__fail(vmi, VMI_ERR_ARG, "vmi_read_utf16: zero-sized buffer");
    s.buf = buf, s.cap = cap, s.out = 0, s.hi = 0;
    vmi__tick(vmi);
    while (pos < limit && !full && !ended) {
        uint8_t tmp[VMI__STR_CHUNK];
        uint64_t page_left = VMI__PAGE_SIZE - ((va + pos) & (VMI__PAGE_SIZE - 1));
        size_t want = (size_t)vmi__min64(vmi__min64(limit - pos, sizeof tmp), page_left < 2 ? 2 : page_left) & ~(size_t)1;
        size_t d = 0, i;
        st = vmi__access_va(vmi, dtb, va + pos, tmp, NULL, want, &d);
        for (i = 0; i + 1 < d && !full; i += 2) {
            uint32_t u = (uint32_t)tmp[i] | ((uint32_t)tmp[i + 1] << 8);
            if (!nbytes && !u) { ended = 1; break; }
            full = !vmi__u16_feed(&s, u);
        }
        pos += i;
        if (st != VMI_OK) break;
    }
    if (s.hi && !full) full = !vmi__utf8_put(buf, cap, &s.out, 0xfffd);
    buf[s.out] = 0;
    if (len) *len = s.out;
    if (st != VMI_OK) return st;
    if (full) return vmi__fail(vmi, VMI_ERR_LIMIT, "UTF-16 string at va 0x%llx does not fit in %zu bytes", (unsigned long long)va, cap);
    return VMI_OK;
}

/* >>instance =============================================================== */
VMI_API vmi_status vmi_paging_from_regs(const vmi_regs *regs, vmi_paging *out) {
    VMI_ASSERT(regs && out);
    memset(out, 0, sizeof *out);
    if (!(regs->valid & VMI_REGS_CONTROL)) return VMI_ERR_NO_PAGING;
    switch (regs->arch) {
    case VMI_ARCH_X86:
    case VMI_ARCH_X86_64: {
        const vmi_regs_x86 *x = &regs->x86;
        if (!((x->cr0 >> 31) & 1)) { out->mode = VMI_PAGING_OFF; return VMI_OK; }
        if ((x->efer >> 10) & 1) out->mode = ((x->cr4 >> 12) & 1) ? VMI_PAGING_LA57 : VMI_PAGING_IA32E;
        else if ((x->cr4 >> 5) & 1) out->mode = VMI_PAGING_PAE;
        else out->mode = VMI_PAGING_LEGACY;
        if (out->mode == VMI_PAGING_LEGACY && !((x->cr4 >> 4) & 1)) out->flags |= VMI_PAGING_NO_PSE;
        if ((x->efer >> 11) & 1) out->flags |= VMI_PAGING_NXE;
        out->dtb = x->cr3;
        return VMI_OK;
    }
    case VMI_ARCH_AARCH64:
        if (!(regs->arm64.sctlr & 1)) { out->mode = VMI_PAGING_OFF; return VMI_OK; }
        out->mode = VMI_PAGING_AARCH64;
        out->dtb = regs->arm64.ttbr1;
        out->tcr = regs->arm64.tcr;
        return VMI_OK;
    case VMI_ARCH_ARM: {
        const vmi_regs_arm *a = &regs->arm;
        if (!(a->sctlr & 1)) { out->mode = VMI_PAGING_OFF; return VMI_OK; }
        out->tcr = a->ttbcr;
        if ((a->ttbcr >> 31) & 1) {
            out->mode = VMI_PAGING_LPAE;
            out->dtb = (a->ttbcr & 0x70007) ? a->ttbr1 : a->ttbr0;
        } else {
            out->mode = VMI_PAGING_AARCH32;
            out->dtb = (a->ttbcr & 7) ? a->ttbr1 : a->ttbr0;
        }
        return VMI_OK;
    }
    default: return VMI_ERR_NO_PAGING;
    }
}

VMI_API const vmi_paging *vmi_get_paging(const vmi_instance *vmi) { return &vmi->paging; }
VMI_API uint64_t vmi_kernel_dtb(const vmi_instance *vmi) { return vmi->paging.dtb; }

static void vmi__paging_changed(vmi_instance *vmi) {
    vmi__fmt f;
    vmi->upper_from = 0; /* no split: an ARM upper region never starts at 0 */
    if (vmi->paging.mode != VMI_PAGING_AARCH64 && vmi__fmt_region(&vmi->paging, 0, 1, &f) == VMI_OK)
        vmi->upper_from = f.va_lo;
    vmi__v2p_flush_all(vmi);
}

VMI_API vmi_status vmi_set_paging(vmi_instance *vmi, const vmi_paging *paging) {
    VMI_ASSERT(vmi && paging);
    if ((unsigned)paging->mode >= (unsigned)VMI_PAGING_MODE_COUNT)
        return vmi__fail(vmi, VMI_ERR_ARG, "paging mode %d is not a mode", (int)paging->mode);
#ifdef VMI_NO_ARM
    if (paging->mode >= VMI_PAGING_AARCH32)
        return vmi__fail(vmi, VMI_ERR_UNSUPPORTED, "built with VMI_NO_ARM");
#endif
    vmi->paging = *paging;
    vmi__paging_changed(vmi);
    return VMI_OK;
}

VMI_API const vmi_backend *vmi_get_backend(const vmi_instance *vmi) { return &vmi->be; }

VMI_API const vmi_mem_range *vmi_memory_map(const vmi_instance *vmi, size_t *count) {
    if (count) *count = vmi->be.nranges;
    return vmi->be.ranges;
}

VMI_API uint64_t vmi_memory_size(const vmi_instance *vmi) {
    uint64_t total = 0;
    size_t i;
    for (i = 0; i < vmi->be.nranges; i++) total += vmi->be.ranges[i].size;
    return total;
}

static vmi_status vmi__unsupported(vmi_instance *vmi, const char *what) {
    return vmi__fail(vmi, VMI_ERR_UNSUPPORTED, "the %s backend cannot %s", vmi->be.name ? vmi->be.name : "", what);
}

/* Runs a backend call and turns its failure into a described one. */
static vmi_status vmi__be_call(vmi_instance *vmi, vmi_status st, const char *what) {
    return st == VMI_OK ? VMI_OK : vmi__backend_fail(vmi, st, what);
}

VMI_API vmi_status vmi_vcpu_count(vmi_instance *vmi, uint32_t *count) {
    *count = 0;
    if (!vmi->be.vcpu_count) return vmi__unsupported(vmi, "count vCPUs");
    return vmi__be_call(vmi, vmi->be.vcpu_count(vmi->be.ctx, count), "vcpu_count");
}

VMI_API vmi_status vmi_get_regs(vmi_instance *vmi, uint32_t vcpu, vmi_regs *regs) {
    memset(regs, 0, sizeof *regs);
    if (!vmi->be.get_regs) return vmi__unsupported(vmi, "read registers");
    return vmi__be_call(vmi, vmi->be.get_regs(vmi->be.ctx, vcpu, regs), "get_regs");
}

VMI_API vmi_status vmi_set_regs(vmi_instance *vmi, uint32_t vcpu, const vmi_regs *regs) {
    if (!vmi->be.set_regs) return vmi__unsupported(vmi, "write registers");
    return vmi__be_call(vmi, vmi->be.set_regs(vmi->be.ctx, vcpu, regs), "set_regs");
}

VMI_API vmi_status vmi_get_note(vmi_instance *vmi, const char *name, const void **data, size_t *len) {
    *data = NULL;
    *len = 0;
    if (!vmi->be.get_note) return vmi__unsupported(vmi, "provide notes");
    return vmi__be_call(vmi, vmi->be.get_note(vmi->be.ctx, name, data, len), name);
}

/* A target that does not run (an image) is always paused. */
VMI_API vmi_status vmi_pause(vmi_instance *vmi) {
    if (!vmi->pause_depth && (vmi->be.flags & VMI_BACKEND_LIVE)) {
        vmi_status st;
        if (!vmi->be.pause) return vmi__unsupported(vmi, "pause");
        if ((st = vmi__be_call(vmi, vmi->be.pause(vmi->be.ctx), "pause")) != VMI_OK) return st;
        vmi_flush_caches(vmi); /* what was read while it ran may be stale */
    }
    vmi->pause_depth++;
    return VMI_OK;
}

VMI_API vmi_status vmi_resume(vmi_instance *vmi) {
    if (!vmi->pause_depth) return vmi__fail(vmi, VMI_ERR_ARG, "resume without a matching pause");
    if (vmi->pause_depth == 1 && (vmi->be.flags & VMI_BACKEND_LIVE)) {
        vmi_status st;
        if (!vmi->be.resume) return vmi__unsupported(vmi, "resume");
        if ((st = vmi__be_call(vmi, vmi->be.resume(vmi->be.ctx), "resume")) != VMI_OK) return st;
        vmi_flush_caches(vmi);
        vmi->v2p_stamp_ms = vmi__now_ms();
    }
    vmi->pause_depth--;
    return VMI_OK;
}

static void vmi__detect_paging(vmi_instance *vmi, const vmi_desc *desc) {
    vmi_regs regs;
    if (desc->paging.mode != VMI_PAGING_UNKNOWN) {
        vmi->paging = desc->paging;
        return;
    }
    if (!vmi->be.get_regs || vmi->be.get_regs(vmi->be.ctx, 0, &regs) != VMI_OK) return;
    if (vmi_paging_from_regs(&regs, &vmi->paging) == VMI_OK)
        vmi__log(vmi, VMI_LOG_INFO, "paging %s, dtb 0x%llx, from vCPU 0",
                 vmi_paging_mode_name(vmi->paging.mode), (unsigned long long)vmi->paging.dtb);
}

VMI_API vmi_status vmi_open(const vmi_desc *desc, vmi_instance **out) {
    vmi_allocator a = desc->allocator;
    vmi_instance *vmi;
    vmi_status st;
    VMI_ASSERT(desc && out);
    *out = NULL;
    if (!a.alloc || !a.free) {
        a.alloc = vmi__default_alloc;
        a.free = vmi__default_free;
        a.user = NULL;
    }
    vmi = (vmi_instance *)a.alloc(sizeof *vmi, a.user);
    if (!vmi) {
        if (desc->backend.close) desc->backend.close(desc->backend.ctx);
        return VMI_ERR_NOMEM;
    }
    memset(vmi, 0, sizeof *vmi);
    vmi->alloc = a;
    vmi->be = desc->backend;
    vmi->log = desc->logger;
    vmi->pc_cap = desc->page_cache_pages ? desc->page_cache_pages : 1024;
    vmi->ttl_ms = desc->cache_ttl_ms ? desc->cache_ttl_ms : 100;
    vmi->v2p_stamp_ms = vmi__now_ms();
    if ((st = vmi__check_ranges(vmi)) != VMI_OK ||
        (st = vmi__v2p_init(vmi, desc->v2p_cache_entries ? desc->v2p_cache_entries : 16384)) != VMI_OK) {
        vmi__log(vmi, VMI_LOG_ERROR, "vmi_open: %s", vmi->err);
        vmi_close(vmi);
        return st;
    }
    vmi__detect_paging(vmi, desc);
    vmi__paging_changed(vmi);
    *out = vmi;
    return VMI_OK;
}

VMI_API void vmi_close(vmi_instance *vmi) {
    if (!vmi) return;
    if (vmi->be.close) vmi->be.close(vmi->be.ctx);
    vmi__free(vmi, vmi->pc_slots);
    vmi__free(vmi, vmi->pc_hash);
    vmi__free(vmi, vmi->pc_data);
    vmi__free(vmi, vmi->v2p);
    vmi->alloc.free(vmi, vmi->alloc.user);
}

#endif /* VMI_IMPL_INCLUDED */
#endif /* VMI_IMPLEMENTATION */

/*
MIT License

Copyright (c) 2026 the vmi.h developers

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in
all copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
*/
