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
       >>profiles       type information: BTF and ISF into one database, ISF export
       >>symbols        symbol tables; >>sysmap System.map; >>kallsyms recovery
       >>profile-glue   loading profiles, type and symbol queries
       >>scan           searching guest-physical memory
       >>linux          finding the kernel, processes, modules
       >>dmesg          the kernel log: the 5.10+ lockless printk ring buffer
       >>pe             PE images in guest memory: headers, exports, CodeView
       >>windows        finding ntoskrnl, KDBG, processes, modules, DLLs
       >>events         breakpoints, watchpoints, single-steps: register, listen
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
/* Windows x86: a not-present PTE with Transition set and Prototype clear
   still names its frame (a page on the standby or modified list): the walk
   resolves it. Set by vmi_os_init on Windows; never for Linux, whose swap
   entries would be misread. */
#define VMI_PAGING_WIN_TRANSITION 0x4u

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
    /* After the callback, before resume(): what it returned (VMI_EVENT_*
       bits), e.g. for Xen's vm_event response. Optional. */
    void (*event_respond)(void *ctx, const struct vmi_event_hit *hit, int response);
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

/* ---- profiles: types and symbols -----------------------------------------
   Type information answers "where is member M of struct T"; it comes from
   BTF (the kernel's own, found in guest memory, or a file), or a Volatility3
   ISF. Symbols come from the kernel's kallsyms tables recovered from guest
   memory, or a System.map / ISF (slid by the KASLR offset once it is known).
   vmi_load_profile takes any of these files, the kind told by its content. */
VMI_API vmi_status vmi_load_profile(vmi_instance *vmi, const char *path);
VMI_API vmi_status vmi_load_profile_mem(vmi_instance *vmi, const void *data, size_t len);
/* Byte offset of `member` in `type`; member may be a path ("mm.pgd" is not
   followed through pointers; "signal.nr_threads" inside embedded structs is).
   With member NULL, type may hold both: "mm_struct.pgd". */
VMI_API vmi_status vmi_offset(vmi_instance *vmi, const char *type, const char *member, uint64_t *offset);
/* The same to the bit: bit offset, bit width (0: not a bitfield), byte size. */
VMI_API vmi_status vmi_member(vmi_instance *vmi, const char *type, const char *member,
                              uint64_t *bit_offset, uint32_t *bit_size, uint64_t *size);
VMI_API vmi_status vmi_type_size(vmi_instance *vmi, const char *type, uint64_t *size);
/* Kernel symbols: name -> address, and address -> nearest symbol + offset. */
VMI_API vmi_status vmi_ksym(vmi_instance *vmi, const char *name, uint64_t *va);
VMI_API vmi_status vmi_ksym_lookup(vmi_instance *vmi, uint64_t va, char *name, size_t cap, uint64_t *offset);
typedef int (*vmi_ksym_fn)(void *user, const char *name, uint64_t va, char type);
VMI_API vmi_status vmi_foreach_ksym(vmi_instance *vmi, vmi_ksym_fn fn, void *user);
/* A Volatility3 ISF JSON of the types and symbols known, through a writer
   (return 0 to go on), so Volatility3 can analyse a kernel without a debug
   package. */
VMI_API vmi_status vmi_write_isf(vmi_instance *vmi, int (*write_fn)(void *user, const char *s, size_t n), void *user);

/* ---- operating system -------------------------------------------------- */
typedef enum vmi_os { VMI_OS_UNKNOWN = 0, VMI_OS_LINUX, VMI_OS_WINDOWS } vmi_os;

/* What vmi_os_init found, and how ("kallsyms recovered from memory", ...). */
typedef struct vmi_os_info {
    vmi_os os;
    char release[65];        /* "6.1.0-56-amd64" */
    char version[256];       /* the kernel's banner, without its newline */
    uint64_t kaslr_offset;   /* virtual KASLR slide (0 when not randomized) */
    uint64_t kaslr_phys_offset; /* x86_64: where the image was loaded minus where it was linked */
    uint64_t kernel_pa_offset; /* kernel image VA - PA */
    size_t nsymbols, ntypes;
    /* Windows: the kernel image, its debug record and the KDBG block. */
    uint64_t kernel_base;    /* VA of ntoskrnl's MZ header (Linux: 0) */
    uint64_t kdbg;           /* VA of KDDEBUGGER_DATA64, 0 when not found or encoded */
    char pdb_name[64];       /* CodeView: "ntkrnlmp.pdb" */
    char pdb_id[41];         /* GUID (32 hex) + age (hex), as symbol servers index it */
    uint32_t build;          /* NtBuildNumber & 0xffff (7601, 19041, ...) */
    char os_source[96], symbols_source[96], types_source[96], paging_source[96], slide_source[96];
} vmi_os_info;

/* Finds the kernel: its symbols, types, page-table root (when no register
   gave it) and KASLR offset. Zero-config on kernels with kallsyms and BTF;
   load a profile first (vmi_load_profile) for the others. */
VMI_API vmi_status vmi_os_init(vmi_instance *vmi);
VMI_API const vmi_os_info *vmi_os_get_info(const vmi_instance *vmi);

typedef struct vmi_process {
    int64_t pid, tgid, ppid;
    char name[32];          /* the kernel's comm (Linux) or image name */
    char state;             /* Linux: R S D T t Z X I, as /proc shows */
    uint32_t uid, euid;
    uint32_t threads;
    uint64_t dtb;           /* page-table root (kernel's for kernel threads) */
    uint64_t start_time_ns; /* since boot */
    uint64_t task;          /* VA of task_struct / EPROCESS */
    int kernel_thread;
    uint64_t peb;           /* Windows: the PEB's VA (0 for System and kernel processes) */
    uint64_t create_time;   /* Windows: CreateTime, a FILETIME (100 ns since 1601) */
} vmi_process;
/* Return nonzero to stop. */
typedef int (*vmi_process_fn)(void *user, const vmi_process *p);
/* Every process (thread-group leaders); with threads != 0 every thread.
   Windows: with threads, each process is followed by its threads (pid =
   the thread id, tgid = the process id, task = the ETHREAD). */
VMI_API vmi_status vmi_foreach_process(vmi_instance *vmi, int threads, vmi_process_fn fn, void *user);
VMI_API vmi_status vmi_process_by_pid(vmi_instance *vmi, int64_t pid, vmi_process *out);
VMI_API vmi_status vmi_pid_to_dtb(vmi_instance *vmi, int64_t pid, uint64_t *dtb);
/* The task a vCPU runs in kernel mode (x86_64: the per-CPU current_task
   through GS; AArch64: SP_EL0), e.g. inside an event callback. Windows:
   the process its current thread runs in (KPCR through GS or, on x86, FS;
   in user mode x64 through KERNEL_GS_BASE, x86 through the GDT's selector
   0x30, so VMI_REGS_SEGMENT with GDTR is needed), pid = the process's. */
VMI_API vmi_status vmi_current_process(vmi_instance *vmi, uint32_t vcpu, vmi_process *out);
/* The command line from the process's own memory, arguments separated by
   NUL as in /proc/PID/cmdline; *len counts the bytes. */
VMI_API vmi_status vmi_process_cmdline(vmi_instance *vmi, const vmi_process *p, char *buf, size_t cap, size_t *len);
/* The full path of the process's image, NUL-terminated (Windows: the PEB's
   ProcessParameters.ImagePathName, else the kernel's
   SeAuditProcessCreationInfo). VMI_ERR_UNSUPPORTED on Linux. */
VMI_API vmi_status vmi_process_image_path(vmi_instance *vmi, const vmi_process *p, char *buf, size_t cap, size_t *len);
VMI_API vmi_status vmi_read_pid(vmi_instance *vmi, int64_t pid, uint64_t va, void *buf, size_t len, size_t *done);
VMI_API vmi_status vmi_write_pid(vmi_instance *vmi, int64_t pid, uint64_t va, const void *buf, size_t len, size_t *done);

typedef struct vmi_module {
    char name[64];
    uint64_t base, size;
    uint64_t addr;  /* VA of struct module / LDR_DATA_TABLE_ENTRY */
    char path[260]; /* Windows: FullDllName; Linux: empty */
} vmi_module;
typedef int (*vmi_module_fn)(void *user, const vmi_module *m);
/* Kernel modules: Linux's module list, Windows's PsLoadedModuleList. */
VMI_API vmi_status vmi_foreach_module(vmi_instance *vmi, vmi_module_fn fn, void *user);
/* A process's loaded images (Windows: the PEB loader's InLoadOrder list,
   read in the process's address space; `addr` is the LDR entry).
   VMI_ERR_UNSUPPORTED on Linux. */
VMI_API vmi_status vmi_foreach_dll(vmi_instance *vmi, const vmi_process *p, vmi_module_fn fn, void *user);

/* The kernel log, record by record (Linux 5.10+ lockless ring buffer). */
typedef struct vmi_log_record {
    uint64_t seq, ts_nsec;
    uint32_t level, facility;
    const char *text; /* not NUL-terminated; valid during the callback only */
    size_t len;
} vmi_log_record;
typedef int (*vmi_log_fn)(void *user, const vmi_log_record *rec);
VMI_API vmi_status vmi_foreach_log_record(vmi_instance *vmi, vmi_log_fn fn, void *user);

/* Events: breakpoints, watchpoints and single-steps on a live guest,
   delivered to callbacks by vmi_events_listen. A vCPU that reaches an
   armed event stops there (all vCPUs stop with it) until a listen
   dispatches the event, then runs on; stepping over a breakpoint at its
   pc is the backend's job. The callback runs with the vCPUs stopped: it
   may read and write memory and registers, clear or register events
   (a single-step, say) and return VMI_EVENT_REMOVE to clear its own.
   A paused instance (vmi_pause) dispatches nothing; vmi_resume lets the
   guest run into its events again. Register-write and guest-physical
   access events are Xen's (vm_event): QEMU's gdbstub cannot report them.
   Every event drops the page and V2P caches before its callback runs (the
   guest ran), so a CR3 write never leaves stale translations behind. */
typedef enum vmi_event_type {
    VMI_EVENT_BREAKPOINT = 1,
    VMI_EVENT_WATCH,      /* a memory access by kernel VA (after it happened) */
    VMI_EVENT_SINGLESTEP, /* one instruction of one vCPU: at most one armed */
    VMI_EVENT_REG_WRITE,  /* a write to `reg` (CR0, CR3, CR4, or MSR `msr`), before it lands */
    VMI_EVENT_MEM_ACCESS  /* `access` to guest-physical [addr, addr+len): whole 4 KiB pages */
} vmi_event_type;

#define VMI_WATCH_READ 0x1u
#define VMI_WATCH_WRITE 0x2u /* READ|WRITE: any access */
#define VMI_WATCH_EXEC 0x4u  /* VMI_EVENT_MEM_ACCESS only */

/* VMI_EVENT_REG_WRITE: which register. */
typedef enum vmi_reg_id { VMI_REG_CR0 = 1, VMI_REG_CR3, VMI_REG_CR4, VMI_REG_MSR } vmi_reg_id;

/* What a callback returns: KEEP or REMOVE, optionally with DENY. */
#define VMI_EVENT_KEEP 0   /* stay armed */
#define VMI_EVENT_REMOVE 1 /* clear this event */
#define VMI_EVENT_DENY 2   /* REG_WRITE: the register keeps its value; MEM_ACCESS:
                              the instruction completes without its write */

typedef struct vmi_event vmi_event;

typedef struct vmi_event_hit {
    uint32_t vcpu;
    uint64_t addr;   /* breakpoint VA, watched address, pc after the step,
                        or the guest-physical address accessed (MEM_ACCESS) */
    vmi_regs regs;   /* that vCPU's, at the stop */
    vmi_event *event;/* the event hit (filled by the backend) */
    uint32_t access; /* MEM_ACCESS: the access made (VMI_WATCH_*) */
    uint64_t va;     /* MEM_ACCESS: its linear address when the hardware gave one, else 0 */
    uint32_t reg, msr;              /* REG_WRITE: the register written */
    uint64_t old_value, new_value;  /* REG_WRITE */
} vmi_event_hit;

typedef int (*vmi_event_fn)(vmi_instance *vmi, vmi_event *ev, const vmi_event_hit *hit, void *user);

/* Zero-initialize, fill, register; the caller owns the memory and keeps it
   valid until the event is cleared or the instance closed. */
struct vmi_event {
    vmi_event_type type;
    uint64_t addr;    /* kernel VA (breakpoints, watchpoints) */
    uint64_t len;     /* watchpoints: 1, 2, 4 or 8, and addr a multiple of it */
    uint32_t access;  /* watchpoints, MEM_ACCESS: VMI_WATCH_* */
    int hardware;     /* breakpoints: a hardware breakpoint (KVM: at most 4) */
    uint32_t reg;     /* REG_WRITE: a vmi_reg_id */
    uint32_t msr;     /* REG_WRITE of VMI_REG_MSR: the MSR's index */
    int32_t vcpu;     /* single-step: which vCPU */
    vmi_event_fn fn;  /* may be NULL: the event is only counted */
    void *user;
    uint64_t hits;    /* counted by the core */
    struct vmi_event *next__; /* the armed list (kept by the backend): do not touch */
    int armed__;
    uint64_t pa__;    /* breakpoints, watchpoints: addr's guest-physical address when the core could
                         translate it, else all ones (for backends that patch memory) */
};

/* VMI_ERR_ARG for a malformed or duplicate event (a second breakpoint at one
   address, a second single-step), VMI_ERR_UNSUPPORTED when the backend or
   QEMU cannot arm it. Either may be called from a callback. vmi_event_clear
   forgets the event even when removing it from the guest failed. */
VMI_API vmi_status vmi_event_register(vmi_instance *vmi, vmi_event *ev);
VMI_API vmi_status vmi_event_clear(vmi_instance *vmi, vmi_event *ev);
/* Waits up to timeout_ms for events and dispatches them; the guest runs
   between events. Returns VMI_OK after dispatching at least one,
   VMI_ERR_TIMEOUT when none came (at once while paused), an error when the
   backend died. A callback that calls vmi_pause leaves the guest stopped at
   its event until the matching vmi_resume. */
VMI_API vmi_status vmi_events_listen(vmi_instance *vmi, int timeout_ms);

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
    uint32_t span;  /* bytes physically contiguous from the page's start: to the
                       end of a large page, or of a run of table entries */
} vmi__v2p_entry;

#define VMI__V2P_VALID (1ull << 63)
#define VMI__V2P_WAYS 4u

typedef struct vmi__types vmi__types;   /* >>profiles */
typedef struct vmi__symtab vmi__symtab; /* >>symbols */
typedef struct vmi__linux vmi__linux;   /* >>linux */
typedef struct vmi__win vmi__win;       /* >>windows */
static void vmi__paging_changed(vmi_instance *vmi);

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
    /* what the OS layer knows */
    vmi__types *types;    /* BTF or ISF */
    vmi__symtab *ksyms;   /* kallsyms recovered from memory */
    vmi__symtab *psyms;   /* a System.map profile, slid by profile_slide */
    uint64_t profile_slide;
    char *vmcoreinfo;     /* the kernel's VMCOREINFO text, NUL-terminated */
    vmi__linux *lx;
    vmi__win *win;
    vmi_os_info os;
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
    char msg[VMI__ERR_MAX]; /* the arguments may quote the previous error */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    memcpy(vmi->err, msg, sizeof msg);
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
                            uint32_t span, uint32_t flags) {
    vmi__v2p_entry *set = vmi__v2p_set(vmi, dtb, vpn), *e = NULL;
    unsigned w;
    for (w = 0; w < VMI__V2P_WAYS && !e; w++)
        if (!(set[w].tag & VMI__V2P_VALID)) e = &set[w];
    if (!e) e = &set[vmi->v2p_victim++ % VMI__V2P_WAYS];
    e->dtb = dtb;
    e->tag = vpn | VMI__V2P_VALID;
    e->pfn = pfn;
    e->span = span;
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

/* Windows keeps a page on its standby or modified list in a not-present
   PTE with Transition (bit 11) set and Prototype (bit 10) clear: the frame
   still holds the data. */
static int vmi__x86_transition(const vmi__fmt *f, int last, uint64_t e, vmi__entry *d) {
    if (!last || !(f->pflags & VMI_PAGING_WIN_TRANSITION) || (e & 0xc00) != 0x800) return VMI__E_INVALID;
    d->shift = 12;
    d->addr = e & f->oa_mask;
    return VMI__E_LEAF;
}

static int vmi__decode_x86(const vmi__fmt *f, unsigned l, uint64_t e, vmi__entry *d) {
    unsigned shift = f->shift[l];
    int last = l + 1u == f->nlevels;
    if (!(e & 1)) return vmi__x86_transition(f, last, e, d);
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
/* AArch64 with TCR_EL1: T0SZ 5:0, TG0 15:14, T1SZ 21:16, TG1 31:30,
   TBI0 37, TBI1 38. Upper-half addresses walk from the kernel's TTBR1. */
#define VMI__TCR_DEFAULT (16ull | (16ull << 16) | (2ull << 30))
#ifndef VMI_NO_ARM
/* Top tables are aligned to their size, at least 32 bytes. */
static uint64_t vmi__align_root(const vmi__fmt *f, uint64_t root) {
    uint64_t bytes = ((uint64_t)f->esize) << f->bits[0];
    return root & ~((bytes < 32 ? 32 : bytes) - 1);
}

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

/* Bytes physically contiguous from w->va, up to `want` when the walk ended
   in the last level: the entries after its leaf lie side by side in the
   same table, so reading on beats a translation per page. The run stops
   where a per-page translation would differ: another table, an entry that
   is not a leaf, another frame; or at other rights (an entry holds one set). */
static uint64_t vmi__walk_run(vmi_instance *vmi, const vmi__fmt *f, const vmi_walk *w, uint64_t want) {
    unsigned l = f->nlevels - 1u, reach = f->shift[l] + f->bits[l];
    uint64_t avail = w->page_size - (w->va & (w->page_size - 1)), table = w->levels[l].table_pa;
    vmi__entry d0, d;
    if (w->nlevels != f->nlevels || avail >= want) return avail;
    vmi__decode(f, l, w->levels[l].entry, &d0);
    while (avail < want) {
        uint64_t va = w->va + avail, at, e, size;
        if ((va ^ w->va) >> reach) break; /* another table (or wrapped) */
        at = table + ((va >> f->shift[l]) & ((1ull << f->bits[l]) - 1)) * f->esize;
        if (vmi__read_entry(vmi, f, at, &e) != VMI_OK || vmi__decode(f, l, e, &d) != VMI__E_LEAF ||
            d.set != d0.set || d.clear != d0.clear)
            break;
        size = 1ull << d.shift;
        if ((d.addr | (va & (size - 1))) != w->pa + avail) break;
        avail += size - (va & (size - 1));
    }
    return avail;
}

/* Translation through the V2P cache. *avail: bytes from va on, physically
   contiguous, at least to the end of its page. A miss with `want` beyond
   the page caches the run vmi__walk_run finds, so the next read of these
   bytes costs one lookup, not one per page (at most 1 GiB: the largest
   page, or one last-level table's reach). */
static vmi_status vmi__translate_run(vmi_instance *vmi, uint64_t dtb, uint64_t va, uint64_t want, uint64_t *pa,
                                     uint64_t *avail) {
    const vmi__v2p_entry *e;
    uint64_t v = va, off = va & (VMI__PAGE_SIZE - 1);
    vmi__fmt f;
    vmi_walk w;
    vmi_status st;
    dtb = vmi__key_dtb(vmi, dtb, va);
    if ((e = vmi__v2p_lookup(vmi, dtb, va >> VMI__PAGE_SHIFT)) != NULL) {
        vmi->stats.v2p_hits++;
        *pa = (e->pfn << VMI__PAGE_SHIFT) | off;
        *avail = e->span - off;
        return VMI_OK;
    }
    if (vmi->paging.mode == VMI_PAGING_OFF) {
        *pa = va;
        *avail = VMI__PAGE_SIZE - off;
        return VMI_OK;
    }
    vmi->stats.v2p_misses++;
    if ((st = vmi__fmt_for(vmi, dtb, &v, &f)) != VMI_OK) return st;
    if ((st = vmi__walk(vmi, &f, v, &w)) != VMI_OK) return st;
    *pa = w.pa;
    *avail = vmi__walk_run(vmi, &f, &w, want);
    vmi__v2p_insert(vmi, dtb, va >> VMI__PAGE_SHIFT, w.pa >> VMI__PAGE_SHIFT, (uint32_t)(*avail + off), w.flags);
    return VMI_OK;
}

static vmi_status vmi__translate(vmi_instance *vmi, uint64_t dtb, uint64_t va, uint64_t *pa, uint64_t *avail) {
    return vmi__translate_run(vmi, dtb, va, 0, pa, avail);
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
        if ((st = vmi__translate_run(vmi, dtb, va + got, len - got, &pa, &avail)) != VMI_OK) break;
        n = (size_t)vmi__min64(len - got, avail);
        while (got + n < len) { /* physically contiguous pages become one copy */
            uint64_t pa2, avail2;
            if (vmi__translate_run(vmi, dtb, va + got + n, len - got - n, &pa2, &avail2) != VMI_OK || pa2 != pa + n)
                break;
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
    /* hot path: within the span of the last translation, inside one mapped range */
    if (e->tag == ((va >> VMI__PAGE_SHIFT) | VMI__V2P_VALID) && e->dtb == vmi__key_dtb(vmi, dtb, va) &&
        len <= e->span - (va & (VMI__PAGE_SIZE - 1))) {
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

/* >>profiles =============================================================== */
/* Type information ("profiles"): one in-memory database of structs, unions,
   enums, base types and typedefs, filled from BTF (the kernel's .BTF section,
   /sys/kernel/btf/vmlinux, or carved from memory) or from Volatility3 ISF
   JSON, so that every query has one implementation.

   Ownership: the database copies what it keeps (the BTF string section, the
   ISF names); the input may be freed as soon as the loader returns.

   Everything read is untrusted: every offset, length, type id and string
   offset is checked, the number of types is capped (VMI__TYPES_MAX_TYPES) and
   every chain of typedefs, qualifiers, anonymous members or nested type
   descriptors is cut at VMI__TYPES_MAX_DEPTH so that cycles cannot hang.
   A corrupt input gives a status and an error string, never a crash.

   Names: "task_struct" finds the struct (or union) of that name, then a
   typedef or base type, then an enum; "struct x", "union x" and "enum x"
   look in one namespace only. When BTF holds several types of one name, a
   complete definition wins over a forward declaration, otherwise the first. */

#define VMI__TYPES_MAX_TYPES (1u << 22)
#define VMI__TYPES_MAX_MEMBERS (1u << 26)
#define VMI__TYPES_MAX_POOL ((size_t)1 << 31)
#define VMI__TYPES_MAX_DEPTH 32
#define VMI__TYPES_SEARCH_BUDGET 65536u /* members visited by one lookup */
#define VMI__JSON_MAX_DEPTH 512
#define VMI__JSON_MAX_LEN ((size_t)1 << 31)

/* Kinds of the database, shared by both sources. */
enum {
    VMI__TK_VOID, VMI__TK_INT, VMI__TK_FLOAT, VMI__TK_PTR, VMI__TK_ARRAY,
    VMI__TK_STRUCT, VMI__TK_UNION, VMI__TK_ENUM, VMI__TK_FWD, VMI__TK_TYPEDEF,
    VMI__TK_QUAL, VMI__TK_FUNC, VMI__TK_OTHER
};
#define VMI__TF_SIGNED 0x1u /* INT, ENUM */
#define VMI__TF_CHAR 0x2u   /* INT */
#define VMI__TF_BOOL 0x4u   /* INT */
#define VMI__TF_UNION 0x8u  /* FWD: of a union */
#define VMI__TM_ANON 0x1u   /* member: anonymous (ISF names it anyway) */

/* Name spaces of the hash table, kept in the two low bits of each hash. */
enum { VMI__NS_STRUCT, VMI__NS_ENUM, VMI__NS_ORD, VMI__NS_SYM };
enum { VMI__OS_UNKNOWN, VMI__OS_LINUX, VMI__OS_WINDOWS, VMI__OS_MAC };

typedef struct vmi__types_type {
    uint64_t size;   /* bytes; ARRAY: element count */
    uint32_t name;   /* offset in the string pool, 0: anonymous */
    uint32_t ref;    /* PTR, ARRAY, TYPEDEF, QUAL: the type referred to */
    uint32_t first;  /* STRUCT, UNION, ENUM: index of the first member */
    uint32_t vlen;   /* STRUCT, UNION, ENUM: number of members */
    uint8_t kind, flags;
    uint8_t int_bits, int_off; /* BTF INT encoding (old-style bitfields) */
} vmi__types_type;

typedef struct vmi__types_field {
    uint64_t off;   /* bit offset from the start of the struct; ENUM: value */
    uint32_t name;  /* pool offset, 0: anonymous */
    uint32_t type;
    uint32_t bits;  /* bitfield width, 0: not a bitfield */
    uint32_t flags; /* VMI__TM_* */
} vmi__types_field;

typedef struct vmi__types_sym {
    uint64_t addr;
    uint32_t name, type_name; /* pool offsets; type_name 0: none */
} vmi__types_sym;

typedef struct vmi__types_slot {
    uint32_t hash; /* low two bits: name space */
    uint32_t val;  /* type or symbol index, VMI__NONE: empty */
} vmi__types_slot;

struct vmi__types {
    vmi_allocator a;
    vmi__types_type *types; /* types[0] is void */
    size_t ntypes, ctypes;
    vmi__types_field *mem;
    size_t nmem, cmem;
    vmi__types_sym *syms;
    size_t nsyms, csyms;
    char *pool; /* NUL-terminated names; pool[0] is "" */
    size_t npool, cpool;
    vmi__types_slot *slots;
    uint32_t hmask, hcount;
    uint32_t ptr_size;
    int os;
    /* Windows ISF: metadata.windows.pdb, the kernel build it describes */
    char pdb_guid[40], pdb_database[64];
    uint64_t pdb_age;
    int has_pdb;
};

/* ---- database plumbing --------------------------------------------------- */

static vmi_status vmi__types_err(char *err, size_t errlen, vmi_status st, const char *fmt, ...) VMI__PRINTF(4, 5);
static vmi_status vmi__types_err(char *err, size_t errlen, vmi_status st, const char *fmt, ...) {
    va_list ap;
    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return st;
}

/* Returns `old` grown to hold `need` elements (its `used` first kept), or NULL. */
static void *vmi__types_regrow(vmi__types *t, void *old, size_t used, size_t *cap, size_t need, size_t elem) {
    size_t ncap = *cap ? *cap : 64;
    void *p;
    if (need <= *cap) return old;
    while (ncap < need) ncap *= 2;
    p = t->a.alloc(ncap * elem, t->a.user);
    if (!p) return NULL;
    if (used) memcpy(p, old, used * elem);
    if (old) t->a.free(old, t->a.user);
    *cap = ncap;
    return p;
}

static vmi_status vmi__types_new(vmi__types *t, int kind, uint32_t name, uint32_t *id) {
    void *p;
    vmi__types_type *ty;
    if (t->ntypes >= VMI__TYPES_MAX_TYPES) return VMI_ERR_LIMIT;
    p = vmi__types_regrow(t, t->types, t->ntypes, &t->ctypes, t->ntypes + 1, sizeof *t->types);
    if (!p) return VMI_ERR_NOMEM;
    t->types = (vmi__types_type *)p;
    ty = &t->types[t->ntypes];
    memset(ty, 0, sizeof *ty);
    ty->kind = (uint8_t)kind;
    ty->name = name;
    *id = (uint32_t)t->ntypes++;
    return VMI_OK;
}

static vmi_status vmi__types_add_member(vmi__types *t, uint32_t name, uint32_t type, uint64_t off, uint32_t bits,
                                        uint32_t flags) {
    void *p;
    vmi__types_field *m;
    if (t->nmem >= VMI__TYPES_MAX_MEMBERS) return VMI_ERR_LIMIT;
    p = vmi__types_regrow(t, t->mem, t->nmem, &t->cmem, t->nmem + 1, sizeof *t->mem);
    if (!p) return VMI_ERR_NOMEM;
    t->mem = (vmi__types_field *)p;
    m = &t->mem[t->nmem++];
    m->off = off;
    m->name = name;
    m->type = type;
    m->bits = bits;
    m->flags = flags;
    return VMI_OK;
}

/* Room for n more pool bytes: the caller may write at pool + npool. */
static vmi_status vmi__types_pool_reserve(vmi__types *t, size_t n) {
    void *p;
    if (n > VMI__TYPES_MAX_POOL - t->npool) return VMI_ERR_LIMIT;
    p = vmi__types_regrow(t, t->pool, t->npool, &t->cpool, t->npool + n, 1);
    if (!p) return VMI_ERR_NOMEM;
    t->pool = (char *)p;
    return VMI_OK;
}

/* Makes the len bytes written at pool + npool a name and returns its offset. */
static uint32_t vmi__types_pool_commit(vmi__types *t, size_t len) {
    uint32_t off = (uint32_t)t->npool;
    t->pool[t->npool + len] = '\0';
    t->npool += len + 1;
    return off;
}

static uint32_t vmi__types_hash(const char *s, size_t n, unsigned ns) {
    return ((uint32_t)XXH3_64bits(s, n) & ~3u) | ns;
}

static const char *vmi__types_slot_name(const vmi__types *t, const vmi__types_slot *s) {
    return t->pool + ((s->hash & 3u) == VMI__NS_SYM ? t->syms[s->val].name : t->types[s->val].name);
}

/* Index of the slot holding (ns, s[0..n)) or of the empty slot ending its probe. */
static uint32_t vmi__types_probe(const vmi__types *t, unsigned ns, const char *s, size_t n) {
    uint32_t h = vmi__types_hash(s, n, ns), i = h & t->hmask;
    for (;;) {
        const vmi__types_slot *sl = &t->slots[i];
        if (sl->val == VMI__NONE) return i;
        if (sl->hash == h) {
            const char *name = vmi__types_slot_name(t, sl);
            if (strncmp(name, s, n) == 0 && name[n] == '\0') return i;
        }
        i = (i + 1) & t->hmask;
    }
}

static uint32_t vmi__types_get(const vmi__types *t, unsigned ns, const char *s, size_t n) {
    if (!t->slots) return VMI__NONE;
    return t->slots[vmi__types_probe(t, ns, s, n)].val;
}

static vmi_status vmi__types_rehash(vmi__types *t, uint32_t cap) {
    vmi__types_slot *old = t->slots;
    uint32_t i, oldcap = old ? t->hmask + 1 : 0;
    t->slots = (vmi__types_slot *)t->a.alloc((size_t)cap * sizeof *t->slots, t->a.user);
    if (!t->slots) {
        t->slots = old;
        return VMI_ERR_NOMEM;
    }
    for (i = 0; i < cap; i++) t->slots[i].val = VMI__NONE;
    t->hmask = cap - 1;
    for (i = 0; i < oldcap; i++) {
        uint32_t j;
        if (old[i].val == VMI__NONE) continue;
        j = old[i].hash & t->hmask;
        while (t->slots[j].val != VMI__NONE) j = (j + 1) & t->hmask;
        t->slots[j] = old[i];
    }
    if (old) t->a.free(old, t->a.user);
    return VMI_OK;
}

/* A complete definition replaces a forward declaration of the same name. */
static int vmi__types_better(const vmi__types *t, unsigned ns, uint32_t old, uint32_t id) {
    if (ns == VMI__NS_SYM) return 0;
    if (t->types[old].kind == VMI__TK_FWD && t->types[id].kind != VMI__TK_FWD) return 1;
    return t->types[old].kind == VMI__TK_ENUM && t->types[old].vlen == 0 && t->types[id].vlen > 0;
}

/* Files type or symbol `id` under its name in name space `ns`. */
static vmi_status vmi__types_put(vmi__types *t, unsigned ns, uint32_t id) {
    const char *name = t->pool + (ns == VMI__NS_SYM ? t->syms[id].name : t->types[id].name);
    size_t n = strlen(name);
    uint32_t i;
    if (!t->slots || (t->hcount + 1) * 2 > t->hmask + 1) {
        vmi_status st = vmi__types_rehash(t, t->slots ? (t->hmask + 1) * 2 : 1024);
        if (st != VMI_OK) return st;
    }
    i = vmi__types_probe(t, ns, name, n);
    if (t->slots[i].val == VMI__NONE) {
        t->slots[i].hash = vmi__types_hash(name, n, ns);
        t->slots[i].val = id;
        t->hcount++;
    } else if (vmi__types_better(t, ns, t->slots[i].val, id)) {
        t->slots[i].val = id;
    }
    return VMI_OK;
}

static vmi__types *vmi__types_create(const vmi_allocator *a) {
    vmi_allocator al;
    vmi__types *t;
    uint32_t id;
    if (a && a->alloc && a->free) {
        al = *a;
    } else {
        al.alloc = vmi__default_alloc;
        al.free = vmi__default_free;
        al.user = NULL;
    }
    t = (vmi__types *)al.alloc(sizeof *t, al.user);
    if (!t) return NULL;
    memset(t, 0, sizeof *t);
    t->a = al;
    t->ptr_size = 8;
    if (vmi__types_new(t, VMI__TK_VOID, 0, &id) != VMI_OK) {
        al.free(t, al.user);
        return NULL;
    }
    return t;
}

static void vmi__types_free(vmi__types *t) {
    void *user;
    if (!t) return;
    user = t->a.user;
    if (t->types) t->a.free(t->types, user);
    if (t->mem) t->a.free(t->mem, user);
    if (t->syms) t->a.free(t->syms, user);
    if (t->pool) t->a.free(t->pool, user);
    if (t->slots) t->a.free(t->slots, user);
    t->a.free(t, user);
}

/* ---- queries --------------------------------------------------------------- */

/* Follows typedefs and qualifiers; VMI__NONE on a bad id or a cycle. */
static uint32_t vmi__types_strip(const vmi__types *t, uint32_t id) {
    int d;
    for (d = 0; d < VMI__TYPES_MAX_DEPTH; d++) {
        if (id >= t->ntypes) return VMI__NONE;
        if (t->types[id].kind != VMI__TK_TYPEDEF && t->types[id].kind != VMI__TK_QUAL) return id;
        id = t->types[id].ref;
    }
    return VMI__NONE;
}

static int vmi__types_is_record(const vmi__types *t, uint32_t id) {
    return id != VMI__NONE && (t->types[id].kind == VMI__TK_STRUCT || t->types[id].kind == VMI__TK_UNION);
}

static vmi_status vmi__types_sizeof(const vmi__types *t, uint32_t id, int depth, uint64_t *size) {
    const vmi__types_type *ty;
    uint64_t elem;
    vmi_status st;
    id = vmi__types_strip(t, id);
    if (id == VMI__NONE || depth > VMI__TYPES_MAX_DEPTH) return VMI_ERR_FORMAT;
    ty = &t->types[id];
    switch (ty->kind) {
    case VMI__TK_VOID: case VMI__TK_INT: case VMI__TK_FLOAT:
    case VMI__TK_STRUCT: case VMI__TK_UNION: case VMI__TK_ENUM:
        *size = ty->size;
        return VMI_OK;
    case VMI__TK_PTR:
        *size = t->ptr_size;
        return VMI_OK;
    case VMI__TK_ARRAY:
        st = vmi__types_sizeof(t, ty->ref, depth + 1, &elem);
        if (st != VMI_OK) return st;
        if (elem && ty->size > UINT64_MAX / elem) return VMI_ERR_LIMIT;
        *size = elem * ty->size;
        return VMI_OK;
    default:
        return VMI_ERR_NOT_FOUND; /* incomplete: forward declaration, function */
    }
}

static int vmi__types_prefix(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

static uint32_t vmi__types_lookup(const vmi__types *t, const char *name) {
    uint32_t id;
    size_t n;
    int un;
    if (vmi__types_prefix(name, "enum ")) return vmi__types_get(t, VMI__NS_ENUM, name + 5, strlen(name + 5));
    un = vmi__types_prefix(name, "union ");
    if (un || vmi__types_prefix(name, "struct ")) { /* the keyword must match the kind */
        name += un ? 6 : 7;
        id = vmi__types_get(t, VMI__NS_STRUCT, name, strlen(name));
        if (id == VMI__NONE) return id;
        if (t->types[id].kind == VMI__TK_FWD)
            return (t->types[id].flags & VMI__TF_UNION) == (un ? VMI__TF_UNION : 0u) ? id : VMI__NONE;
        return (t->types[id].kind == VMI__TK_UNION) == (un != 0) ? id : VMI__NONE;
    }
    n = strlen(name);
    if ((id = vmi__types_get(t, VMI__NS_STRUCT, name, n)) != VMI__NONE) return id;
    if ((id = vmi__types_get(t, VMI__NS_ORD, name, n)) != VMI__NONE) return id;
    return vmi__types_get(t, VMI__NS_ENUM, name, n);
}

/* Finds member name[0..n) of record `rid`, looking through anonymous struct
   and union members; returns its index and adds its bit offset to *bits. */
static uint32_t vmi__types_find_member(const vmi__types *t, uint32_t rid, const char *name, size_t n, int depth,
                                       uint32_t *budget, uint64_t *bit_offset) {
    const vmi__types_type *r = &t->types[rid];
    uint32_t i;
    if (depth > VMI__TYPES_MAX_DEPTH) return VMI__NONE;
    for (i = 0; i < r->vlen; i++) {
        const vmi__types_field *m = &t->mem[r->first + i];
        const char *mn = t->pool + m->name;
        if (*budget == 0) return VMI__NONE;
        --*budget;
        if (m->name && strncmp(mn, name, n) == 0 && mn[n] == '\0') {
            *bit_offset += m->off;
            return r->first + i;
        }
        if (!m->name || (m->flags & VMI__TM_ANON)) {
            uint32_t sub = vmi__types_strip(t, m->type), found;
            uint64_t inner = 0;
            if (!vmi__types_is_record(t, sub)) continue;
            found = vmi__types_find_member(t, sub, name, n, depth + 1, budget, &inner);
            if (found != VMI__NONE) {
                *bit_offset += m->off + inner;
                return found;
            }
        }
    }
    return VMI__NONE;
}

/* Bit offset and width of a member, counting BTF's old-style INT bitfields. */
static void vmi__types_member_bits(const vmi__types *t, const vmi__types_field *m, uint64_t *off, uint32_t *bits) {
    uint32_t base = vmi__types_strip(t, m->type);
    *off = m->off;
    *bits = m->bits;
    if (!m->bits && base != VMI__NONE && t->types[base].kind == VMI__TK_INT && t->types[base].int_bits &&
        t->types[base].int_bits != t->types[base].size * 8) {
        *bits = t->types[base].int_bits;
        *off += t->types[base].int_off;
    }
}

static vmi_status vmi__types_member(const vmi__types *t, const char *type, const char *path, uint64_t *bit_offset,
                                    uint32_t *bit_size, uint64_t *byte_size) {
    uint32_t rid, mid = VMI__NONE;
    uint64_t total = 0, off, size;
    uint32_t bits;
    if (!t || !type || !path || !bit_offset || !bit_size || !byte_size) return VMI_ERR_ARG;
    rid = vmi__types_lookup(t, type);
    if (rid == VMI__NONE) return VMI_ERR_NOT_FOUND;
    rid = vmi__types_strip(t, rid);
    for (;;) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        uint32_t budget = VMI__TYPES_SEARCH_BUDGET;
        if (n == 0) return VMI_ERR_ARG;
        if (!vmi__types_is_record(t, rid)) return VMI_ERR_NOT_FOUND;
        mid = vmi__types_find_member(t, rid, path, n, 0, &budget, &total);
        if (mid == VMI__NONE) return VMI_ERR_NOT_FOUND;
        if (!dot) break;
        rid = vmi__types_strip(t, t->mem[mid].type);
        path = dot + 1;
    }
    vmi__types_member_bits(t, &t->mem[mid], &off, &bits);
    *bit_offset = total + (off - t->mem[mid].off);
    *bit_size = bits;
    *byte_size = vmi__types_sizeof(t, t->mem[mid].type, 0, &size) == VMI_OK ? size : 0;
    return VMI_OK;
}


static vmi_status vmi__types_size(const vmi__types *t, const char *type, uint64_t *size) {
    uint32_t id;
    if (!t || !type || !size) return VMI_ERR_ARG;
    id = vmi__types_lookup(t, type);
    if (id == VMI__NONE) return VMI_ERR_NOT_FOUND;
    return vmi__types_sizeof(t, id, 0, size);
}

static vmi_status vmi__types_symbol(const vmi__types *t, const char *name, uint64_t *address) {
    uint32_t id;
    if (!t || !name || !address) return VMI_ERR_ARG;
    id = vmi__types_get(t, VMI__NS_SYM, name, strlen(name));
    if (id == VMI__NONE) return VMI_ERR_NOT_FOUND;
    *address = t->syms[id].addr;
    return VMI_OK;
}

static size_t vmi__types_count(const vmi__types *t) { return t ? t->ntypes - 1 : 0; }

/* ---- BTF --------------------------------------------------------------- */
/* include/uapi/linux/btf.h, Documentation/bpf/btf.rst. Little-endian only. */

enum {
    VMI__BTF_INT = 1, VMI__BTF_PTR, VMI__BTF_ARRAY, VMI__BTF_STRUCT, VMI__BTF_UNION, VMI__BTF_ENUM,
    VMI__BTF_FWD, VMI__BTF_TYPEDEF, VMI__BTF_VOLATILE, VMI__BTF_CONST, VMI__BTF_RESTRICT, VMI__BTF_FUNC,
    VMI__BTF_FUNC_PROTO, VMI__BTF_VAR, VMI__BTF_DATASEC, VMI__BTF_FLOAT, VMI__BTF_DECL_TAG,
    VMI__BTF_TYPE_TAG, VMI__BTF_ENUM64
};

static uint32_t vmi__btf_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Bytes that follow the 12-byte btf_type of each kind; (size_t)-1: unknown. */
static size_t vmi__btf_extra(uint32_t kind, uint32_t vlen) {
    switch (kind) {
    case VMI__BTF_INT: case VMI__BTF_VAR: case VMI__BTF_DECL_TAG: return 4;
    case VMI__BTF_ARRAY: return 12;
    case VMI__BTF_STRUCT: case VMI__BTF_UNION: case VMI__BTF_DATASEC: case VMI__BTF_ENUM64: return 12u * vlen;
    case VMI__BTF_ENUM: case VMI__BTF_FUNC_PROTO: return 8u * vlen;
    case VMI__BTF_PTR: case VMI__BTF_FWD: case VMI__BTF_TYPEDEF: case VMI__BTF_VOLATILE: case VMI__BTF_CONST:
    case VMI__BTF_RESTRICT: case VMI__BTF_FUNC: case VMI__BTF_FLOAT: case VMI__BTF_TYPE_TAG: return 0;
    default: return (size_t)-1;
    }
}

typedef struct vmi__btf {
    const uint8_t *types; /* type section */
    uint32_t types_len, str_len, n;
    char *err;
    size_t errlen;
} vmi__btf;

/* Pass 1: walks the type section, checks each record fits, counts types and members. */
static vmi_status vmi__btf_count(vmi__btf *b, size_t *nmem) {
    uint32_t p = 0;
    b->n = 0;
    *nmem = 0;
    while (p < b->types_len) {
        uint32_t info, kind, vlen;
        size_t extra;
        if (b->types_len - p < 12)
            return vmi__types_err(b->err, b->errlen, VMI_ERR_FORMAT, "BTF: type %u truncated at %u", b->n + 1, p);
        info = vmi__btf_u32(b->types + p + 4);
        kind = (info >> 24) & 0x1f;
        vlen = info & 0xffff;
        extra = vmi__btf_extra(kind, vlen);
        if (extra == (size_t)-1)
            return vmi__types_err(b->err, b->errlen, VMI_ERR_FORMAT, "BTF: type %u has unknown kind %u", b->n + 1,
                                  kind);
        if (b->types_len - p - 12 < extra)
            return vmi__types_err(b->err, b->errlen, VMI_ERR_FORMAT, "BTF: type %u (kind %u, vlen %u) truncated",
                                  b->n + 1, kind, vlen);
        if (++b->n >= VMI__TYPES_MAX_TYPES)
            return vmi__types_err(b->err, b->errlen, VMI_ERR_LIMIT, "BTF: more than %u types", VMI__TYPES_MAX_TYPES);
        if (kind == VMI__BTF_STRUCT || kind == VMI__BTF_UNION || kind == VMI__BTF_ENUM || kind == VMI__BTF_ENUM64)
            *nmem += vlen;
        p += 12 + (uint32_t)extra;
    }
    return VMI_OK;
}

static vmi_status vmi__btf_check(vmi__btf *b, uint32_t id, uint32_t name_off, uint32_t ref) {
    if (name_off >= b->str_len)
        return vmi__types_err(b->err, b->errlen, VMI_ERR_FORMAT, "BTF: type %u: name offset %u beyond strings (%u)",
                              id, name_off, b->str_len);
    if (ref > b->n)
        return vmi__types_err(b->err, b->errlen, VMI_ERR_FORMAT, "BTF: type %u refers to type %u of %u", id, ref,
                              b->n);
    return VMI_OK;
}

/* Members of a struct, union, enum or enum64 (already known to fit). */
static vmi_status vmi__btf_members(vmi__types *t, vmi__btf *b, uint32_t id, uint32_t kind, uint32_t info,
                                   const uint8_t *x) {
    vmi__types_type *ty = &t->types[id];
    uint32_t i, vlen = info & 0xffff, kflag = info >> 31;
    ty->first = (uint32_t)t->nmem;
    ty->vlen = vlen;
    for (i = 0; i < vlen; i++) {
        vmi__types_field *m = &t->mem[t->nmem++];
        vmi_status st;
        memset(m, 0, sizeof *m);
        m->name = vmi__btf_u32(x);
        if (kind == VMI__BTF_ENUM) {
            uint32_t v = vmi__btf_u32(x + 4);
            m->off = kflag && (v & 0x80000000u) ? (uint64_t)v | 0xffffffff00000000ull : v;
            x += 8;
        } else if (kind == VMI__BTF_ENUM64) {
            m->off = (uint64_t)vmi__btf_u32(x + 4) | (uint64_t)vmi__btf_u32(x + 8) << 32;
            x += 12;
        } else {
            uint32_t off = vmi__btf_u32(x + 8);
            m->type = vmi__btf_u32(x + 4);
            m->off = kflag ? off & 0xffffffu : off;
            m->bits = kflag ? off >> 24 : 0;
            x += 12;
        }
        st = vmi__btf_check(b, id, m->name, m->type);
        if (st != VMI_OK) return st;
    }
    return VMI_OK;
}

/* Pass 2: fills types[1..n] and the members. */
static vmi_status vmi__btf_fill(vmi__types *t, vmi__btf *b) {
    uint32_t id, p = 0;
    for (id = 1; id <= b->n; id++) {
        const uint8_t *tp = b->types + p;
        uint32_t name_off = vmi__btf_u32(tp), info = vmi__btf_u32(tp + 4), st32 = vmi__btf_u32(tp + 8);
        uint32_t kind = (info >> 24) & 0x1f, kflag = info >> 31, ref = 0;
        vmi__types_type *ty = &t->types[id];
        vmi_status st;
        memset(ty, 0, sizeof *ty);
        ty->name = name_off;
        switch (kind) {
        case VMI__BTF_INT: {
            uint32_t enc = vmi__btf_u32(tp + 12);
            ty->kind = VMI__TK_INT;
            ty->size = st32;
            ty->flags = (uint8_t)((enc >> 24) & 7u); /* SIGNED 1, CHAR 2, BOOL 4 as VMI__TF_* */
            ty->int_bits = (uint8_t)(enc & 0xff);
            ty->int_off = (uint8_t)((enc >> 16) & 0xff);
            break;
        }
        case VMI__BTF_FLOAT: ty->kind = VMI__TK_FLOAT; ty->size = st32; break;
        case VMI__BTF_PTR: ty->kind = VMI__TK_PTR; ref = st32; break;
        case VMI__BTF_ARRAY:
            ty->kind = VMI__TK_ARRAY;
            ref = vmi__btf_u32(tp + 12);
            ty->size = vmi__btf_u32(tp + 20);
            break;
        case VMI__BTF_STRUCT: case VMI__BTF_UNION: case VMI__BTF_ENUM: case VMI__BTF_ENUM64:
            ty->kind = (uint8_t)(kind == VMI__BTF_STRUCT ? VMI__TK_STRUCT
                                 : kind == VMI__BTF_UNION ? VMI__TK_UNION : VMI__TK_ENUM);
            ty->size = st32;
            if ((kind == VMI__BTF_ENUM || kind == VMI__BTF_ENUM64) && kflag) ty->flags = VMI__TF_SIGNED;
            st = vmi__btf_members(t, b, id, kind, info, tp + 12);
            if (st != VMI_OK) return st;
            break;
        case VMI__BTF_FWD: ty->kind = VMI__TK_FWD; ty->flags = kflag ? VMI__TF_UNION : 0; break;
        case VMI__BTF_TYPEDEF: ty->kind = VMI__TK_TYPEDEF; ref = st32; break;
        case VMI__BTF_VOLATILE: case VMI__BTF_CONST: case VMI__BTF_RESTRICT: case VMI__BTF_TYPE_TAG:
            ty->kind = VMI__TK_QUAL;
            ref = st32;
            break;
        case VMI__BTF_FUNC_PROTO: ty->kind = VMI__TK_FUNC; break;
        default: ty->kind = VMI__TK_OTHER; break; /* FUNC, VAR, DATASEC, DECL_TAG */
        }
        ty->ref = ref;
        st = vmi__btf_check(b, id, name_off, ref);
        if (st != VMI_OK) return st;
        p += 12 + (uint32_t)vmi__btf_extra(kind, info & 0xffff);
    }
    t->ntypes = (size_t)b->n + 1;
    return VMI_OK;
}

static vmi_status vmi__btf_index(vmi__types *t) {
    size_t i, named = 0;
    uint32_t cap = 1024, id;
    vmi_status st;
    for (i = 1; i < t->ntypes; i++) named += t->types[i].name != 0;
    while (cap < named * 2 + 2) cap *= 2;
    st = vmi__types_rehash(t, cap);
    for (i = 1; i < t->ntypes && st == VMI_OK; i++) {
        const vmi__types_type *ty = &t->types[i];
        if (!ty->name) continue;
        switch (ty->kind) {
        case VMI__TK_STRUCT: case VMI__TK_UNION: case VMI__TK_FWD: st = vmi__types_put(t, VMI__NS_STRUCT, (uint32_t)i); break;
        case VMI__TK_ENUM: st = vmi__types_put(t, VMI__NS_ENUM, (uint32_t)i); break;
        case VMI__TK_TYPEDEF: case VMI__TK_INT: case VMI__TK_FLOAT: st = vmi__types_put(t, VMI__NS_ORD, (uint32_t)i); break;
        default: break;
        }
    }
    if (st != VMI_OK) return st;
    id = vmi__types_get(t, VMI__NS_ORD, "long unsigned int", 17);
    if (id == VMI__NONE) id = vmi__types_get(t, VMI__NS_ORD, "long int", 8);
    if (id != VMI__NONE && (t->types[id].size == 4 || t->types[id].size == 8)) t->ptr_size = (uint32_t)t->types[id].size;
    return VMI_OK;
}

static vmi_status vmi__btf_load(vmi__types *t, const uint8_t *data, size_t len, char *err, size_t errlen) {
    uint32_t hdr_len, type_off, type_len, str_off, str_len;
    const uint8_t *base, *str;
    size_t rest, nmem;
    vmi__btf b;
    vmi_status st;
    void *p;
    if (len < 24) return vmi__types_err(err, errlen, VMI_ERR_TRUNCATED, "BTF: %zu bytes, the header needs 24", len);
    if (data[0] == 0xeb && data[1] == 0x9f)
        return vmi__types_err(err, errlen, VMI_ERR_UNSUPPORTED, "BTF: big-endian BTF is not supported");
    if (data[0] != 0x9f || data[1] != 0xeb)
        return vmi__types_err(err, errlen, VMI_ERR_FORMAT, "BTF: bad magic %02x%02x", data[1], data[0]);
    if (data[2] != 1) return vmi__types_err(err, errlen, VMI_ERR_UNSUPPORTED, "BTF: version %u", data[2]);
    hdr_len = vmi__btf_u32(data + 4);
    if (hdr_len < 24 || hdr_len > len)
        return vmi__types_err(err, errlen, VMI_ERR_FORMAT, "BTF: header length %u (blob %zu)", hdr_len, len);
    type_off = vmi__btf_u32(data + 8);
    type_len = vmi__btf_u32(data + 12);
    str_off = vmi__btf_u32(data + 16);
    str_len = vmi__btf_u32(data + 20);
    base = data + hdr_len;
    rest = len - hdr_len;
    if ((uint64_t)type_off + type_len > rest || (uint64_t)str_off + str_len > rest)
        return vmi__types_err(err, errlen, VMI_ERR_TRUNCATED,
                              "BTF: sections (types %u+%u, strings %u+%u) beyond the %zu bytes after the header",
                              type_off, type_len, str_off, str_len, rest);
    str = base + str_off;
    if (str_len == 0 || str[0] != '\0' || str[str_len - 1] != '\0')
        return vmi__types_err(err, errlen, VMI_ERR_FORMAT, "BTF: string section must start and end with NUL");
    b.types = base + type_off;
    b.types_len = type_len;
    b.str_len = str_len;
    b.err = err;
    b.errlen = errlen;
    st = vmi__btf_count(&b, &nmem);
    if (st != VMI_OK) return st;
    if (nmem > VMI__TYPES_MAX_MEMBERS)
        return vmi__types_err(err, errlen, VMI_ERR_LIMIT, "BTF: %zu members", nmem);
    /* Sized once: no growth while filling. */
    p = vmi__types_regrow(t, t->types, t->ntypes, &t->ctypes, (size_t)b.n + 1, sizeof *t->types);
    if (p) t->types = (vmi__types_type *)p;
    if (p && nmem) {
        p = vmi__types_regrow(t, t->mem, 0, &t->cmem, nmem, sizeof *t->mem);
        if (p) t->mem = (vmi__types_field *)p;
    }
    if (!p || vmi__types_pool_reserve(t, str_len) != VMI_OK)
        return vmi__types_err(err, errlen, VMI_ERR_NOMEM, "BTF: no memory for %u types", b.n);
    memcpy(t->pool, str, str_len); /* name offsets stay BTF string offsets */
    t->npool = str_len;
    st = vmi__btf_fill(t, &b);
    if (st != VMI_OK) return st;
    t->os = VMI__OS_LINUX;
    if (vmi__btf_index(t) != VMI_OK) return vmi__types_err(err, errlen, VMI_ERR_NOMEM, "BTF: no memory for the index");
    return VMI_OK;
}

static vmi_status vmi__types_from_btf(const vmi_allocator *a, const uint8_t *data, size_t len, vmi__types **out,
                                      char *err, size_t errlen) {
    vmi__types *t;
    vmi_status st;
    if (err && errlen) err[0] = '\0';
    if (!out || (!data && len)) return vmi__types_err(err, errlen, VMI_ERR_ARG, "BTF: no data");
    *out = NULL;
    if (!data) return vmi__types_err(err, errlen, VMI_ERR_TRUNCATED, "BTF: empty");
    t = vmi__types_create(a);
    if (!t) return vmi__types_err(err, errlen, VMI_ERR_NOMEM, "BTF: no memory");
    st = vmi__btf_load(t, data, len, err, errlen);
    if (st != VMI_OK) {
        vmi__types_free(t);
        return st;
    }
    *out = t;
    return VMI_OK;
}

/* ---- JSON reader ----------------------------------------------------------- */
/* A pull parser over the whole JSON grammar (RFC 8259): it never reads past
   `n`, keeps integers exact to 64 bits, caps nesting at VMI__JSON_MAX_DEPTH
   and reports errors with line and column. Strings are returned raw (a
   pointer into the text) and decoded on demand. */

typedef struct vmi__json {
    const char *s;
    size_t n, pos;
    char *err;
    size_t errlen;
} vmi__json;

typedef struct vmi__json_str {
    const char *p; /* raw text between the quotes, NULL: none */
    size_t len;
    int esc; /* has escapes: decode with vmi__json_decode */
} vmi__json_str;

static vmi_status vmi__json_fail(vmi__json *j, const char *what) {
    size_t i, line = 1, col = 1, end = j->pos < j->n ? j->pos : j->n;
    for (i = 0; i < end; i++) {
        if (j->s[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    return vmi__types_err(j->err, j->errlen, j->pos >= j->n ? VMI_ERR_TRUNCATED : VMI_ERR_FORMAT,
                          "ISF: %s at line %zu column %zu%s", what, line, col, j->pos >= j->n ? " (end of input)" : "");
}

/* Skips white space; the next byte or -1 at the end. */
static int vmi__json_peek(vmi__json *j) {
    while (j->pos < j->n) {
        char c = j->s[j->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return (unsigned char)c;
        j->pos++;
    }
    return -1;
}

static int vmi__json_hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static vmi_status vmi__json_string(vmi__json *j, vmi__json_str *out) {
    size_t p;
    if (vmi__json_peek(j) != '"') return vmi__json_fail(j, "expected a string");
    p = ++j->pos;
    out->p = j->s + p;
    out->esc = 0;
    while (p < j->n) {
        unsigned char c = (unsigned char)j->s[p];
        if (c == '"') {
            out->len = p - j->pos;
            j->pos = p + 1;
            return VMI_OK;
        }
        if (c < 0x20) {
            j->pos = p;
            return vmi__json_fail(j, "control character in a string");
        }
        if (c == '\\') {
            out->esc = 1;
            if (++p >= j->n) break;
            c = (unsigned char)j->s[p];
            if (c == 'u') {
                int k;
                for (k = 1; k <= 4; k++) {
                    if (p + k >= j->n) {
                        j->pos = j->n;
                        return vmi__json_fail(j, "truncated \\u escape");
                    }
                    if (vmi__json_hex(j->s[p + k]) < 0) {
                        j->pos = p + k;
                        return vmi__json_fail(j, "bad hex digit in \\u escape");
                    }
                }
                p += 4;
            } else if (!strchr("\"\\/bfnrt", c) || c == '\0') {
                j->pos = p;
                return vmi__json_fail(j, "bad escape");
            }
        }
        p++;
    }
    j->pos = j->n;
    return vmi__json_fail(j, "unterminated string");
}

static unsigned vmi__json_u4(const char *p) {
    return (unsigned)(vmi__json_hex(p[0]) << 12 | vmi__json_hex(p[1]) << 8 | vmi__json_hex(p[2]) << 4 |
                      vmi__json_hex(p[3]));
}

/* Decodes a string checked by vmi__json_string into dst (at most s->len
   bytes); lone surrogates are kept as 3-byte sequences. */
static size_t vmi__json_decode(const vmi__json_str *s, char *dst) {
    size_t i = 0, o = 0;
    if (!s->esc) {
        memcpy(dst, s->p, s->len);
        return s->len;
    }
    while (i < s->len) {
        unsigned cp;
        char c = s->p[i++];
        if (c != '\\') {
            dst[o++] = c;
            continue;
        }
        c = s->p[i++];
        switch (c) {
        case 'b': dst[o++] = '\b'; continue;
        case 'f': dst[o++] = '\f'; continue;
        case 'n': dst[o++] = '\n'; continue;
        case 'r': dst[o++] = '\r'; continue;
        case 't': dst[o++] = '\t'; continue;
        case 'u': break;
        default: dst[o++] = c; continue;
        }
        cp = vmi__json_u4(s->p + i);
        i += 4;
        if (cp >= 0xd800 && cp < 0xdc00 && i + 6 <= s->len && s->p[i] == '\\' && s->p[i + 1] == 'u') {
            unsigned lo = vmi__json_u4(s->p + i + 2);
            if (lo >= 0xdc00 && lo < 0xe000) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                i += 6;
            }
        }
        if (cp < 0x80) {
            dst[o++] = (char)cp;
        } else if (cp < 0x800) {
            dst[o++] = (char)(0xc0 | cp >> 6);
            dst[o++] = (char)(0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
            dst[o++] = (char)(0xe0 | cp >> 12);
            dst[o++] = (char)(0x80 | ((cp >> 6) & 0x3f));
            dst[o++] = (char)(0x80 | (cp & 0x3f));
        } else {
            dst[o++] = (char)(0xf0 | cp >> 18);
            dst[o++] = (char)(0x80 | ((cp >> 12) & 0x3f));
            dst[o++] = (char)(0x80 | ((cp >> 6) & 0x3f));
            dst[o++] = (char)(0x80 | (cp & 0x3f));
        }
    }
    return o;
}

static int vmi__json_is(const vmi__json_str *s, const char *lit) {
    char buf[64];
    size_t n = strlen(lit);
    if (!s->p) return 0;
    if (!s->esc) return s->len == n && memcmp(s->p, lit, n) == 0;
    if (s->len > sizeof buf) return 0;
    return vmi__json_decode(s, buf) == n && memcmp(buf, lit, n) == 0;
}

static int vmi__json_digit(vmi__json *j, size_t p) { return p < j->n && j->s[p] >= '0' && j->s[p] <= '9'; }

/* A number: *mag its magnitude, *isint set when it is an integer that fits. */
static vmi_status vmi__json_number(vmi__json *j, uint64_t *mag, int *neg, int *isint) {
    size_t p = j->pos;
    uint64_t v = 0;
    int ovf = 0, frac = 0;
    *neg = 0;
    if (p < j->n && j->s[p] == '-') {
        *neg = 1;
        p++;
    }
    if (!vmi__json_digit(j, p)) {
        j->pos = p;
        return vmi__json_fail(j, "bad number");
    }
    if (j->s[p] == '0') {
        p++;
    } else {
        while (vmi__json_digit(j, p)) {
            unsigned d = (unsigned)(j->s[p++] - '0');
            if (v > (UINT64_MAX - d) / 10) ovf = 1;
            else v = v * 10 + d;
        }
    }
    if (p < j->n && j->s[p] == '.') {
        frac = 1;
        if (!vmi__json_digit(j, ++p)) {
            j->pos = p;
            return vmi__json_fail(j, "bad fraction");
        }
        while (vmi__json_digit(j, p)) p++;
    }
    if (p < j->n && (j->s[p] == 'e' || j->s[p] == 'E')) {
        frac = 1;
        p++;
        if (p < j->n && (j->s[p] == '+' || j->s[p] == '-')) p++;
        if (!vmi__json_digit(j, p)) {
            j->pos = p;
            return vmi__json_fail(j, "bad exponent");
        }
        while (vmi__json_digit(j, p)) p++;
    }
    j->pos = p;
    *mag = v;
    *isint = !ovf && !frac;
    return VMI_OK;
}

static vmi_status vmi__json_literal(vmi__json *j, const char *lit) {
    size_t n = strlen(lit);
    if (j->n - j->pos < n || memcmp(j->s + j->pos, lit, n) != 0) return vmi__json_fail(j, "unexpected character");
    j->pos += n;
    return VMI_OK;
}

/* Steps to the next member of an object whose '{' was consumed. key->p is
   NULL at the closing '}'; *first is 1 before the first member. */
static vmi_status vmi__json_next(vmi__json *j, int *first, vmi__json_str *key) {
    int c = vmi__json_peek(j);
    vmi_status st;
    key->p = NULL;
    if (c == '}') {
        j->pos++;
        return VMI_OK;
    }
    if (!*first) {
        if (c != ',') return vmi__json_fail(j, "expected ',' or '}'");
        j->pos++;
    }
    st = vmi__json_string(j, key);
    if (st != VMI_OK) return st;
    if (vmi__json_peek(j) != ':') return vmi__json_fail(j, "expected ':'");
    j->pos++;
    *first = 0;
    return VMI_OK;
}

static vmi_status vmi__json_open(vmi__json *j) {
    if (vmi__json_peek(j) != '{') return vmi__json_fail(j, "expected an object");
    j->pos++;
    return VMI_OK;
}

/* Skips (and checks) any value. */
static vmi_status vmi__json_skip(vmi__json *j, int depth) {
    int c = vmi__json_peek(j), first = 1, neg, isint;
    vmi__json_str s;
    uint64_t v;
    vmi_status st;
    if (depth > VMI__JSON_MAX_DEPTH) {
        vmi__json_fail(j, "nesting too deep");
        return VMI_ERR_LIMIT;
    }
    switch (c) {
    case '{':
        j->pos++;
        for (;;) {
            st = vmi__json_next(j, &first, &s);
            if (st != VMI_OK || !s.p) return st;
            st = vmi__json_skip(j, depth + 1);
            if (st != VMI_OK) return st;
        }
    case '[':
        j->pos++;
        if (vmi__json_peek(j) == ']') {
            j->pos++;
            return VMI_OK;
        }
        for (;;) {
            st = vmi__json_skip(j, depth + 1);
            if (st != VMI_OK) return st;
            c = vmi__json_peek(j);
            j->pos++;
            if (c == ']') return VMI_OK;
            if (c != ',') {
                j->pos--;
                return vmi__json_fail(j, "expected ',' or ']'");
            }
        }
    case '"': return vmi__json_string(j, &s);
    case 't': return vmi__json_literal(j, "true");
    case 'f': return vmi__json_literal(j, "false");
    case 'n': return vmi__json_literal(j, "null");
    case -1: return vmi__json_fail(j, "expected a value");
    default:
        if (c == '-' || (c >= '0' && c <= '9')) return vmi__json_number(j, &v, &neg, &isint);
        return vmi__json_fail(j, "unexpected character");
    }
}

static vmi_status vmi__json_u64(vmi__json *j, uint64_t *v) {
    int c = vmi__json_peek(j), neg, isint;
    vmi_status st;
    if (c != '-' && (c < '0' || c > '9')) return vmi__json_fail(j, "expected a number");
    st = vmi__json_number(j, v, &neg, &isint);
    if (st != VMI_OK) return st;
    if (!isint || (neg && *v)) return vmi__json_fail(j, "expected an unsigned 64-bit integer");
    return VMI_OK;
}

/* An integer from -2^63 to 2^64-1, returned as its 64-bit pattern. */
static vmi_status vmi__json_int(vmi__json *j, uint64_t *v, int *neg) {
    int c = vmi__json_peek(j), isint;
    vmi_status st;
    if (c != '-' && (c < '0' || c > '9')) return vmi__json_fail(j, "expected a number");
    st = vmi__json_number(j, v, neg, &isint);
    if (st != VMI_OK) return st;
    if (!isint || (*neg && *v > (1ull << 63))) return vmi__json_fail(j, "expected a 64-bit integer");
    if (*neg) *v = 0 - *v;
    return VMI_OK;
}

static vmi_status vmi__json_bool(vmi__json *j, int *b) {
    int c = vmi__json_peek(j);
    *b = c == 't';
    if (c == 't') return vmi__json_literal(j, "true");
    if (c == 'f') return vmi__json_literal(j, "false");
    return vmi__json_fail(j, "expected true or false");
}

/* ---- ISF ------------------------------------------------------------------- */
/* Volatility3's schemas/schema-6.x.json. Anonymous members are fields marked
   "anonymous": true or named "unnamed_field...": lookups see through them. */

typedef struct vmi__isf_pending {
    size_t pos;  /* the "fields" object of a user type */
    uint32_t id;
} vmi__isf_pending;

typedef struct vmi__isf {
    vmi__types *t;
    vmi__json j;
    vmi__isf_pending *pend;
    size_t npend, cpend;
} vmi__isf;

static vmi_status vmi__isf_nomem(vmi__isf *x, vmi_status st) {
    if (st == VMI_ERR_NOMEM) return vmi__types_err(x->j.err, x->j.errlen, st, "ISF: out of memory");
    if (st == VMI_ERR_LIMIT) return vmi__types_err(x->j.err, x->j.errlen, st, "ISF: too many types or names");
    return st;
}

/* Copies a JSON string into the pool as a new name. */
static vmi_status vmi__isf_intern(vmi__isf *x, const vmi__json_str *s, uint32_t *off) {
    vmi_status st = vmi__types_pool_reserve(x->t, s->len + 1);
    if (st != VMI_OK) return vmi__isf_nomem(x, st);
    *off = vmi__types_pool_commit(x->t, vmi__json_decode(s, x->t->pool + x->t->npool));
    return VMI_OK;
}

/* The type named s in name space ns, created as `kind` if it is not there. */
static vmi_status vmi__isf_named(vmi__isf *x, unsigned ns, const vmi__json_str *s, int kind, uint8_t flags,
                                 uint32_t *id, int *created) {
    vmi__types *t = x->t;
    size_t n;
    uint32_t name;
    vmi_status st = vmi__types_pool_reserve(t, s->len + 1);
    if (st != VMI_OK) return vmi__isf_nomem(x, st);
    n = vmi__json_decode(s, t->pool + t->npool); /* decoded in place, kept only if new */
    *id = vmi__types_get(t, ns, t->pool + t->npool, n);
    *created = *id == VMI__NONE;
    if (*id != VMI__NONE) return VMI_OK;
    name = vmi__types_pool_commit(t, n);
    st = vmi__types_new(t, kind, name, id);
    if (st == VMI_OK) {
        t->types[*id].flags = flags;
        st = vmi__types_put(t, ns, *id);
    }
    return vmi__isf_nomem(x, st);
}

typedef struct vmi__isf_desc {
    uint32_t type;
    uint64_t bits, bitpos;
} vmi__isf_desc;

static vmi_status vmi__isf_type(vmi__isf *x, int depth, vmi__isf_desc *d);

/* Parses the descriptor at pos (recorded earlier) and comes back. */
static vmi_status vmi__isf_type_at(vmi__isf *x, size_t pos, int depth, vmi__isf_desc *d) {
    size_t save = x->j.pos;
    vmi_status st;
    x->j.pos = pos;
    st = vmi__isf_type(x, depth, d);
    x->j.pos = save;
    return st;
}

/* A type descriptor {kind, name, subtype, count, bit_position, bit_length, type}. */
static vmi_status vmi__isf_type(vmi__isf *x, int depth, vmi__isf_desc *d) {
    vmi__json *j = &x->j;
    vmi__json_str key, kind, name;
    size_t sub = 0, inner = 0;
    uint64_t count = 0, bitpos = 0, bitlen = 0;
    int first = 1, tk = -1, created;
    vmi_status st;
    if (depth > VMI__TYPES_MAX_DEPTH) {
        vmi__json_fail(j, "type descriptors nested too deep");
        return VMI_ERR_LIMIT;
    }
    kind.p = name.p = NULL;
    if ((st = vmi__json_open(j)) != VMI_OK) return st;
    for (;;) {
        if ((st = vmi__json_next(j, &first, &key)) != VMI_OK) return st;
        if (!key.p) break;
        if (vmi__json_is(&key, "kind")) st = vmi__json_string(j, &kind);
        else if (vmi__json_is(&key, "name")) st = vmi__json_string(j, &name);
        else if (vmi__json_is(&key, "count")) st = vmi__json_u64(j, &count);
        else if (vmi__json_is(&key, "bit_position")) st = vmi__json_u64(j, &bitpos);
        else if (vmi__json_is(&key, "bit_length")) st = vmi__json_u64(j, &bitlen);
        else if (vmi__json_is(&key, "subtype") || vmi__json_is(&key, "type")) {
            vmi__json_peek(j);
            *(vmi__json_is(&key, "subtype") ? &sub : &inner) = j->pos;
            st = vmi__json_skip(j, depth + 2);
        } else {
            st = vmi__json_skip(j, depth + 2);
        }
        if (st != VMI_OK) return st;
    }
    d->bits = d->bitpos = 0;
    if (vmi__json_is(&kind, "base") || vmi__json_is(&kind, "struct") || vmi__json_is(&kind, "class") ||
        vmi__json_is(&kind, "union") || vmi__json_is(&kind, "enum")) {
        int un = vmi__json_is(&kind, "union"), base = vmi__json_is(&kind, "base");
        int en = vmi__json_is(&kind, "enum");
        if (!name.p) return vmi__json_fail(j, "type descriptor without a name");
        return vmi__isf_named(x, base ? VMI__NS_ORD : en ? VMI__NS_ENUM : VMI__NS_STRUCT, &name,
                              base ? VMI__TK_OTHER : en ? VMI__TK_ENUM : VMI__TK_FWD,
                              (uint8_t)(un ? VMI__TF_UNION : 0), &d->type, &created);
    }
    if (vmi__json_is(&kind, "pointer")) tk = VMI__TK_PTR;
    else if (vmi__json_is(&kind, "array")) tk = VMI__TK_ARRAY;
    else if (vmi__json_is(&kind, "function")) tk = VMI__TK_FUNC;
    else if (!vmi__json_is(&kind, "bitfield")) return vmi__json_fail(j, "unknown type descriptor kind");
    if (tk == -1) { /* bitfield */
        if (!inner) return vmi__json_fail(j, "bitfield without a type");
        if (bitlen == 0 || bitlen > 255 || bitpos > 0xffffff) return vmi__json_fail(j, "bad bitfield");
        st = vmi__isf_type_at(x, inner, depth + 1, d);
        d->bits = bitlen;
        d->bitpos = bitpos;
        return st;
    }
    if (tk == VMI__TK_ARRAY && !sub) return vmi__json_fail(j, "array without a subtype");
    d->type = 0;
    if (sub && (st = vmi__isf_type_at(x, sub, depth + 1, d)) != VMI_OK) return st;
    {
        uint32_t ref = d->type;
        st = vmi__types_new(x->t, tk, 0, &d->type);
        if (st != VMI_OK) return vmi__isf_nomem(x, st);
        x->t->types[d->type].ref = ref;
        x->t->types[d->type].size = tk == VMI__TK_ARRAY ? count : 0;
    }
    return VMI_OK;
}

static vmi_status vmi__isf_base_type(vmi__isf *x, uint32_t id) {
    vmi__json *j = &x->j;
    vmi__types_type *ty;
    vmi__json_str key, s;
    uint64_t size = 0;
    int first = 1, sign = 0, kind = VMI__TK_INT;
    uint8_t flags = 0;
    vmi_status st;
    if ((st = vmi__json_open(j)) != VMI_OK) return st;
    for (;;) {
        if ((st = vmi__json_next(j, &first, &key)) != VMI_OK) return st;
        if (!key.p) break;
        if (vmi__json_is(&key, "kind")) {
            if ((st = vmi__json_string(j, &s)) != VMI_OK) return st;
            if (vmi__json_is(&s, "void")) kind = VMI__TK_VOID;
            else if (vmi__json_is(&s, "float")) kind = VMI__TK_FLOAT;
            else if (vmi__json_is(&s, "char")) flags |= VMI__TF_CHAR;
            else if (vmi__json_is(&s, "bool")) flags |= VMI__TF_BOOL;
            else if (!vmi__json_is(&s, "int")) return vmi__json_fail(j, "unknown base type kind");
        } else if (vmi__json_is(&key, "size")) {
            st = vmi__json_u64(j, &size);
        } else if (vmi__json_is(&key, "signed")) {
            st = vmi__json_bool(j, &sign);
        } else {
            st = vmi__json_skip(j, 2);
        }
        if (st != VMI_OK) return st;
    }
    ty = &x->t->types[id];
    ty->kind = (uint8_t)kind;
    ty->flags = (uint8_t)(flags | (sign ? VMI__TF_SIGNED : 0));
    ty->size = size;
    if (strcmp(x->t->pool + ty->name, "pointer") == 0 && size >= 1 && size <= 16) x->t->ptr_size = (uint32_t)size;
    return VMI_OK;
}

/* First pass over a user type: kind and size; its fields wait for pass two. */
static vmi_status vmi__isf_user_type(vmi__isf *x, uint32_t id) {
    vmi__json *j = &x->j;
    vmi__json_str key, s;
    uint64_t size = 0;
    int first = 1, kind = VMI__TK_STRUCT;
    vmi_status st;
    if ((st = vmi__json_open(j)) != VMI_OK) return st;
    for (;;) {
        if ((st = vmi__json_next(j, &first, &key)) != VMI_OK) return st;
        if (!key.p) break;
        if (vmi__json_is(&key, "kind")) {
            if ((st = vmi__json_string(j, &s)) != VMI_OK) return st;
            if (vmi__json_is(&s, "union")) kind = VMI__TK_UNION;
            else if (!vmi__json_is(&s, "struct") && !vmi__json_is(&s, "class"))
                return vmi__json_fail(j, "unknown user type kind");
        } else if (vmi__json_is(&key, "size")) {
            st = vmi__json_u64(j, &size);
        } else if (vmi__json_is(&key, "fields")) {
            void *p = vmi__types_regrow(x->t, x->pend, x->npend, &x->cpend, x->npend + 1, sizeof *x->pend);
            if (!p) return vmi__isf_nomem(x, VMI_ERR_NOMEM);
            x->pend = (vmi__isf_pending *)p;
            vmi__json_peek(j);
            x->pend[x->npend].pos = j->pos;
            x->pend[x->npend++].id = id;
            st = vmi__json_skip(j, 2);
        } else {
            st = vmi__json_skip(j, 2);
        }
        if (st != VMI_OK) return st;
    }
    x->t->types[id].kind = (uint8_t)kind;
    x->t->types[id].size = size;
    return VMI_OK;
}

static vmi_status vmi__isf_field(vmi__isf *x, uint32_t name) {
    vmi__json *j = &x->j;
    vmi__json_str key;
    vmi__isf_desc d;
    size_t type = 0;
    uint64_t offset = 0;
    int first = 1, anon = 0;
    vmi_status st;
    if ((st = vmi__json_open(j)) != VMI_OK) return st;
    for (;;) {
        if ((st = vmi__json_next(j, &first, &key)) != VMI_OK) return st;
        if (!key.p) break;
        if (vmi__json_is(&key, "offset")) {
            st = vmi__json_u64(j, &offset);
        } else if (vmi__json_is(&key, "anonymous")) {
            st = vmi__json_bool(j, &anon);
        } else {
            if (vmi__json_is(&key, "type")) {
                vmi__json_peek(j);
                type = j->pos;
            }
            st = vmi__json_skip(j, 3);
        }
        if (st != VMI_OK) return st;
    }
    if (!type) return vmi__json_fail(j, "field without a type");
    if (offset > (UINT64_MAX >> 4)) return vmi__json_fail(j, "field offset too large");
    if ((st = vmi__isf_type_at(x, type, 0, &d)) != VMI_OK) return st;
    if (vmi__types_prefix(x->t->pool + name, "unnamed_field")) anon = 1;
    st = vmi__types_add_member(x->t, name, d.type, offset * 8 + d.bitpos, (uint32_t)d.bits, anon ? VMI__TM_ANON : 0);
    return vmi__isf_nomem(x, st);
}

static vmi_status vmi__isf_fields(vmi__isf *x, uint32_t id) {
    vmi__json *j = &x->j;
    vmi__json_str key;
    size_t first_mem = x->t->nmem;
    int first = 1;
    uint32_t name;
    vmi_status st;
    if ((st = vmi__json_open(j)) != VMI_OK) return st;
    for (;;) {
        if ((st = vmi__json_next(j, &first, &key)) != VMI_OK) return st;
        if (!key.p) break;
        if ((st = vmi__isf_intern(x, &key, &name)) != VMI_OK) return st;
        if ((st = vmi__isf_field(x, name)) != VMI_OK) return st;
    }
    x->t->types[id].first = (uint32_t)first_mem;
    x->t->types[id].vlen = (uint32_t)(x->t->nmem - first_mem);
    return VMI_OK;
}

static vmi_status vmi__isf_enum(vmi__isf *x, uint32_t id) {
    vmi__json *j = &x->j;
    vmi__json_str key, c;
    size_t first_mem = x->t->nmem;
    uint64_t size = 0, v;
    int first = 1, neg, cfirst, sign = 0;
    uint32_t name;
    vmi_status st;
    if ((st = vmi__json_open(j)) != VMI_OK) return st;
    for (;;) {
        if ((st = vmi__json_next(j, &first, &key)) != VMI_OK) return st;
        if (!key.p) break;
        if (vmi__json_is(&key, "size")) {
            st = vmi__json_u64(j, &size);
        } else if (vmi__json_is(&key, "constants")) {
            if ((st = vmi__json_open(j)) != VMI_OK) return st;
            for (cfirst = 1;;) {
                if ((st = vmi__json_next(j, &cfirst, &c)) != VMI_OK) return st;
                if (!c.p) break;
                if ((st = vmi__isf_intern(x, &c, &name)) != VMI_OK) return st;
                if ((st = vmi__json_int(j, &v, &neg)) != VMI_OK) return st;
                sign |= neg;
                st = vmi__types_add_member(x->t, name, 0, v, 0, 0);
                if (st != VMI_OK) return vmi__isf_nomem(x, st);
            }
        } else {
            st = vmi__json_skip(j, 2);
        }
        if (st != VMI_OK) return st;
    }
    x->t->types[id].size = size;
    x->t->types[id].flags = (uint8_t)(sign ? VMI__TF_SIGNED : 0);
    x->t->types[id].first = (uint32_t)first_mem;
    x->t->types[id].vlen = (uint32_t)(x->t->nmem - first_mem);
    return VMI_OK;
}

static vmi_status vmi__isf_symbol(vmi__isf *x, uint32_t name) {
    vmi__json *j = &x->j;
    vmi__types *t = x->t;
    vmi__json_str key, tkey, tname;
    uint64_t addr = 0;
    int first = 1, tfirst, have = 0;
    uint32_t type_name = 0;
    vmi_status st;
    void *p;
    if ((st = vmi__json_open(j)) != VMI_OK) return st;
    for (;;) {
        if ((st = vmi__json_next(j, &first, &key)) != VMI_OK) return st;
        if (!key.p) break;
        if (vmi__json_is(&key, "address")) {
            st = vmi__json_u64(j, &addr);
            have = 1;
        } else if (vmi__json_is(&key, "type") && vmi__json_peek(j) == '{') {
            j->pos++;
            for (tfirst = 1;;) { /* only the descriptor's name is kept */
                if ((st = vmi__json_next(j, &tfirst, &tkey)) != VMI_OK) return st;
                if (!tkey.p) break;
                if (vmi__json_is(&tkey, "name")) {
                    if ((st = vmi__json_string(j, &tname)) != VMI_OK) return st;
                    if ((st = vmi__isf_intern(x, &tname, &type_name)) != VMI_OK) return st;
                } else if (vmi__json_is(&tkey, "kind") && !type_name) {
                    if ((st = vmi__json_string(j, &tname)) != VMI_OK) return st;
                    if (vmi__json_is(&tname, "pointer") && (st = vmi__isf_intern(x, &tname, &type_name)) != VMI_OK)
                        return st;
                } else if ((st = vmi__json_skip(j, 4)) != VMI_OK) {
                    return st;
                }
            }
        } else {
            st = vmi__json_skip(j, 3);
        }
        if (st != VMI_OK) return st;
    }
    if (!have) return vmi__json_fail(j, "symbol without an address");
    p = vmi__types_regrow(t, t->syms, t->nsyms, &t->csyms, t->nsyms + 1, sizeof *t->syms);
    if (!p || t->nsyms >= VMI__TYPES_MAX_MEMBERS) return vmi__isf_nomem(x, p ? VMI_ERR_LIMIT : VMI_ERR_NOMEM);
    t->syms = (vmi__types_sym *)p;
    t->syms[t->nsyms].addr = addr;
    t->syms[t->nsyms].name = name;
    t->syms[t->nsyms].type_name = type_name;
    return vmi__isf_nomem(x, vmi__types_put(t, VMI__NS_SYM, (uint32_t)t->nsyms++));
}

enum { VMI__ISF_BASE, VMI__ISF_USER, VMI__ISF_ENUMS, VMI__ISF_SYMBOLS };

/* Walks the {name: {...}} section at pos, handling each entry by `what`. */
static vmi_status vmi__isf_section(vmi__isf *x, size_t pos, int what) {
    vmi__json *j = &x->j;
    vmi__json_str key;
    int first = 1;
    vmi_status st;
    if (!pos) return VMI_OK;
    j->pos = pos;
    if ((st = vmi__json_open(j)) != VMI_OK) return st;
    for (;;) {
        uint32_t id = 0, name;
        int created;
        if ((st = vmi__json_next(j, &first, &key)) != VMI_OK) return st;
        if (!key.p) return VMI_OK;
        if (what == VMI__ISF_SYMBOLS) {
            if ((st = vmi__isf_intern(x, &key, &name)) != VMI_OK) return st;
            st = vmi__isf_symbol(x, name);
        } else {
            unsigned ns = what == VMI__ISF_BASE ? VMI__NS_ORD : what == VMI__ISF_ENUMS ? VMI__NS_ENUM : VMI__NS_STRUCT;
            if ((st = vmi__isf_named(x, ns, &key, what == VMI__ISF_ENUMS ? VMI__TK_ENUM : VMI__TK_FWD, 0, &id,
                                     &created)) != VMI_OK)
                return st;
            st = !created ? vmi__json_skip(j, 1) /* a name seen before: the first definition wins */
                 : what == VMI__ISF_BASE ? vmi__isf_base_type(x, id)
                 : what == VMI__ISF_ENUMS ? vmi__isf_enum(x, id) : vmi__isf_user_type(x, id);
        }
        if (st != VMI_OK) return st;
    }
}

/* A short JSON string into dst (cap bytes, NUL-terminated); longer ones
   are left out: no PDB name or GUID is that long. */
static vmi_status vmi__isf_short_str(vmi__isf *x, char *dst, size_t cap) {
    vmi__json_str s;
    vmi_status st = vmi__json_string(&x->j, &s);
    if (st == VMI_OK && s.len < cap) dst[vmi__json_decode(&s, dst)] = 0;
    return st;
}

/* metadata.windows: {"pdb": {"GUID", "age", "database"}} names the kernel
   build the types come from. */
static vmi_status vmi__isf_windows(vmi__isf *x, int depth) {
    vmi__json *j = &x->j;
    vmi__json_str key;
    int first = 1;
    vmi_status st;
    if ((st = vmi__json_open(j)) != VMI_OK) return st;
    for (;;) {
        if ((st = vmi__json_next(j, &first, &key)) != VMI_OK) return st;
        if (!key.p) return VMI_OK;
        if (!depth && vmi__json_is(&key, "pdb") && vmi__json_peek(j) == '{') {
            st = vmi__isf_windows(x, 1);
        } else if (depth && vmi__json_is(&key, "GUID") && vmi__json_peek(j) == '"') {
            st = vmi__isf_short_str(x, x->t->pdb_guid, sizeof x->t->pdb_guid);
            x->t->has_pdb = 1;
        } else if (depth && vmi__json_is(&key, "database") && vmi__json_peek(j) == '"') {
            st = vmi__isf_short_str(x, x->t->pdb_database, sizeof x->t->pdb_database);
        } else if (depth && vmi__json_is(&key, "age") && vmi__json_peek(j) != '"') {
            st = vmi__json_u64(j, &x->t->pdb_age);
        } else {
            st = vmi__json_skip(j, 3);
        }
        if (st != VMI_OK) return st;
    }
}

static vmi_status vmi__isf_metadata(vmi__isf *x) {
    vmi__json *j = &x->j;
    vmi__json_str key;
    int first = 1;
    vmi_status st;
    if ((st = vmi__json_open(j)) != VMI_OK) return st;
    for (;;) {
        if ((st = vmi__json_next(j, &first, &key)) != VMI_OK) return st;
        if (!key.p) return VMI_OK;
        if (vmi__json_is(&key, "linux")) x->t->os = VMI__OS_LINUX;
        else if (vmi__json_is(&key, "windows")) x->t->os = VMI__OS_WINDOWS;
        else if (vmi__json_is(&key, "mac")) x->t->os = VMI__OS_MAC;
        if (vmi__json_is(&key, "windows") && vmi__json_peek(j) == '{') st = vmi__isf_windows(x, 0);
        else st = vmi__json_skip(j, 2);
        if (st != VMI_OK) return st;
    }
}

static vmi_status vmi__isf_load(vmi__isf *x) {
    static const char *const names[4] = {"base_types", "user_types", "enums", "symbols"};
    vmi__json *j = &x->j;
    vmi__json_str key;
    size_t pos[4] = {0, 0, 0, 0}, i;
    int first = 1, meta = 0, k;
    vmi_status st;
    if ((st = vmi__json_open(j)) != VMI_OK) return st;
    for (;;) { /* pass 1 checks the whole document and finds the sections */
        if ((st = vmi__json_next(j, &first, &key)) != VMI_OK) return st;
        if (!key.p) break;
        if (vmi__json_is(&key, "metadata")) {
            meta = 1;
            st = vmi__isf_metadata(x);
        } else {
            for (k = 0; k < 4; k++) {
                if (vmi__json_is(&key, names[k]) && !pos[k]) {
                    vmi__json_peek(j);
                    pos[k] = j->pos;
                }
            }
            st = vmi__json_skip(j, 1);
        }
        if (st != VMI_OK) return st;
    }
    if (vmi__json_peek(j) != -1) return vmi__json_fail(j, "trailing characters after the document");
    if (!meta || !pos[VMI__ISF_USER]) {
        j->pos = 0;
        return vmi__json_fail(j, "not an ISF (no metadata or user_types)");
    }
    for (k = VMI__ISF_BASE; k <= VMI__ISF_SYMBOLS; k++) {
        if (k == VMI__ISF_SYMBOLS) { /* named types all exist now: fields may refer to them */
            for (i = 0; i < x->npend; i++) {
                j->pos = x->pend[i].pos;
                if ((st = vmi__isf_fields(x, x->pend[i].id)) != VMI_OK) return st;
            }
        }
        if ((st = vmi__isf_section(x, pos[k], k)) != VMI_OK) return st;
    }
    return VMI_OK;
}

static vmi_status vmi__types_from_isf(const vmi_allocator *a, const char *json, size_t len, vmi__types **out,
                                      char *err, size_t errlen) {
    vmi__isf x;
    vmi_status st;
    if (err && errlen) err[0] = '\0';
    if (!out || (!json && len)) return vmi__types_err(err, errlen, VMI_ERR_ARG, "ISF: no data");
    *out = NULL;
    if (len >= VMI__JSON_MAX_LEN) return vmi__types_err(err, errlen, VMI_ERR_LIMIT, "ISF: %zu bytes", len);
    memset(&x, 0, sizeof x);
    x.j.s = json ? json : "";
    x.j.n = len;
    x.j.err = err;
    x.j.errlen = errlen;
    x.t = vmi__types_create(a);
    if (!x.t) return vmi__types_err(err, errlen, VMI_ERR_NOMEM, "ISF: no memory");
    if (vmi__types_pool_reserve(x.t, 1) != VMI_OK || vmi__types_rehash(x.t, 1024) != VMI_OK) {
        st = vmi__types_err(err, errlen, VMI_ERR_NOMEM, "ISF: no memory");
    } else {
        vmi__types_pool_commit(x.t, 0); /* offset 0 is "" */
        st = vmi__isf_load(&x);
    }
    if (x.pend) x.t->a.free(x.pend, x.t->a.user);
    if (st != VMI_OK) {
        vmi__types_free(x.t);
        return st;
    }
    *out = x.t;
    return VMI_OK;
}

/* ---- ISF writer -------------------------------------------------------- */

#define VMI__ISF_BUF 65536

typedef struct vmi__isf_out {
    const vmi__types *t;
    int (*write)(void *user, const char *s, size_t n);
    void *user;
    char *buf;
    size_t n;
    vmi_status st;
    char base[2][4][24]; /* base type names by [signed][log2 size] */
} vmi__isf_out;

static void vmi__isf_flush(vmi__isf_out *o) {
    if (o->st == VMI_OK && o->n && o->write(o->user, o->buf, o->n) != 0) o->st = VMI_ERR_IO;
    o->n = 0;
}

static void vmi__isf_put(vmi__isf_out *o, const char *s, size_t n) {
    while (n && o->st == VMI_OK) {
        size_t k = VMI__ISF_BUF - o->n;
        if (k > n) k = n;
        memcpy(o->buf + o->n, s, k);
        o->n += k;
        s += k;
        n -= k;
        if (o->n == VMI__ISF_BUF) vmi__isf_flush(o);
    }
}

static void vmi__isf_puts(vmi__isf_out *o, const char *s) { vmi__isf_put(o, s, strlen(s)); }

static void vmi__isf_num(vmi__isf_out *o, uint64_t v, int neg) {
    char b[24];
    size_t i = sizeof b;
    if (neg) v = 0 - v;
    do {
        b[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    if (neg) b[--i] = '-';
    vmi__isf_put(o, b + i, sizeof b - i);
}

static void vmi__isf_hex(vmi__isf_out *o, uint64_t v) {
    char b[16];
    size_t i = sizeof b;
    do {
        b[--i] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    vmi__isf_put(o, b + i, sizeof b - i);
}

/* A string's body, escaped. */
static void vmi__isf_esc(vmi__isf_out *o, const char *s) {
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        vmi__isf_put(o, run, (size_t)(s - run));
        run = s + 1;
        if (c == '"' || c == '\\') {
            char e[2];
            e[0] = '\\';
            e[1] = (char)c;
            vmi__isf_put(o, e, 2);
        } else {
            vmi__isf_puts(o, "\\u00");
            vmi__isf_put(o, &"0123456789abcdef"[c >> 4], 1);
            vmi__isf_put(o, &"0123456789abcdef"[c & 15], 1);
        }
    }
    vmi__isf_put(o, run, (size_t)(s - run));
}

static void vmi__isf_key(vmi__isf_out *o, const char *s) {
    vmi__isf_put(o, "\"", 1);
    vmi__isf_esc(o, s);
    vmi__isf_put(o, "\":", 2);
}

/* The ISF name of a struct, union or enum: its own, with "__<id>" when
   another type of that name is the one looked up, "unnamed_<id>" if none. */
static void vmi__isf_tname(vmi__isf_out *o, uint32_t id) {
    const vmi__types *t = o->t;
    const vmi__types_type *ty = &t->types[id];
    const char *name = t->pool + ty->name;
    unsigned ns = ty->kind == VMI__TK_ENUM ? VMI__NS_ENUM : VMI__NS_STRUCT;
    int fwd = ty->kind == VMI__TK_FWD || (ty->kind == VMI__TK_ENUM && ty->vlen == 0);
    vmi__isf_put(o, "\"", 1);
    if (!ty->name) {
        vmi__isf_puts(o, "unnamed_");
        vmi__isf_hex(o, id);
    } else {
        vmi__isf_esc(o, name);
        if (!fwd && vmi__types_get(t, ns, name, strlen(name)) != id) {
            vmi__isf_puts(o, "__");
            vmi__isf_hex(o, id);
        }
    }
    vmi__isf_put(o, "\"", 1);
}

static const char *vmi__isf_base_name(const vmi__isf_out *o, uint32_t id) {
    const vmi__types_type *ty = &o->t->types[id];
    uint32_t lg = ty->size >= 8 ? 3 : ty->size >= 4 ? 2 : ty->size >= 2 ? 1 : 0;
    if (ty->name) return o->t->pool + ty->name;
    if (ty->kind == VMI__TK_VOID) return "void";
    return o->base[(ty->flags & VMI__TF_SIGNED) ? 1 : 0][lg];
}

static void vmi__isf_out_desc(vmi__isf_out *o, uint32_t id, int depth) {
    const vmi__types *t = o->t;
    const vmi__types_type *ty;
    id = vmi__types_strip(t, id);
    if (id == VMI__NONE || depth >= VMI__TYPES_MAX_DEPTH - 1) id = 0; /* the reader's cap, with room */
    ty = &t->types[id];
    switch (ty->kind) {
    case VMI__TK_INT: case VMI__TK_FLOAT: case VMI__TK_VOID:
        vmi__isf_puts(o, "{\"kind\":\"base\",\"name\":\"");
        vmi__isf_esc(o, vmi__isf_base_name(o, id));
        vmi__isf_puts(o, "\"}");
        return;
    case VMI__TK_PTR:
        vmi__isf_puts(o, "{\"kind\":\"pointer\",\"subtype\":");
        vmi__isf_out_desc(o, ty->ref, depth + 1);
        vmi__isf_puts(o, "}");
        return;
    case VMI__TK_ARRAY:
        vmi__isf_puts(o, "{\"kind\":\"array\",\"count\":");
        vmi__isf_num(o, ty->size, 0);
        vmi__isf_puts(o, ",\"subtype\":");
        vmi__isf_out_desc(o, ty->ref, depth + 1);
        vmi__isf_puts(o, "}");
        return;
    case VMI__TK_STRUCT: case VMI__TK_UNION: case VMI__TK_FWD: case VMI__TK_ENUM:
        vmi__isf_puts(o, ty->kind == VMI__TK_ENUM ? "{\"kind\":\"enum\",\"name\":"
                         : ty->kind == VMI__TK_UNION || (ty->flags & VMI__TF_UNION) ? "{\"kind\":\"union\",\"name\":"
                                                                                   : "{\"kind\":\"struct\",\"name\":");
        vmi__isf_tname(o, id);
        vmi__isf_puts(o, "}");
        return;
    case VMI__TK_FUNC:
        vmi__isf_puts(o, "{\"kind\":\"function\"}");
        return;
    default:
        vmi__isf_puts(o, "{\"kind\":\"base\",\"name\":\"void\"}");
        return;
    }
}

static void vmi__isf_out_field(vmi__isf_out *o, const vmi__types_field *m, uint32_t index) {
    const vmi__types *t = o->t;
    uint64_t off, size = 0;
    uint32_t bits;
    int anon = !m->name || (m->flags & VMI__TM_ANON);
    vmi__isf_put(o, "\"", 1);
    if (m->name) {
        vmi__isf_esc(o, t->pool + m->name);
    } else {
        vmi__isf_puts(o, "unnamed_field_");
        vmi__isf_hex(o, index);
    }
    vmi__isf_puts(o, "\":{\"type\":");
    vmi__types_member_bits(t, m, &off, &bits);
    if (bits) { /* offset: the aligned unit of the base type holding the bits */
        uint64_t start, pos;
        if (vmi__types_sizeof(t, m->type, 0, &size) != VMI_OK || size == 0 || size > 16) size = 1;
        start = off / (size * 8) * size;
        pos = off - start * 8;
        if (pos + bits > size * 8) {
            start = off / 8;
            pos = off % 8;
        }
        vmi__isf_puts(o, "{\"kind\":\"bitfield\",\"bit_position\":");
        vmi__isf_num(o, pos, 0);
        vmi__isf_puts(o, ",\"bit_length\":");
        vmi__isf_num(o, bits, 0);
        vmi__isf_puts(o, ",\"type\":");
        vmi__isf_out_desc(o, m->type, 1);
        vmi__isf_puts(o, "},\"offset\":");
        vmi__isf_num(o, start, 0);
    } else {
        vmi__isf_out_desc(o, m->type, 0);
        vmi__isf_puts(o, ",\"offset\":");
        vmi__isf_num(o, off / 8, 0);
    }
    vmi__isf_puts(o, anon ? ",\"anonymous\":true}" : "}");
}

/* Chooses a base type name for each size and signedness (enum bases,
   unnamed integers) and writes the synthetic ones it needs. */
static int vmi__isf_out_base_types(vmi__isf_out *o) {
    const vmi__types *t = o->t;
    int s, lg, n = 0;
    size_t i;
    memset(o->base, 0, sizeof o->base);
    for (i = 1; i < t->ntypes; i++) {
        const vmi__types_type *ty = &t->types[i];
        const char *name = t->pool + ty->name;
        if (ty->kind != VMI__TK_INT && ty->kind != VMI__TK_FLOAT && ty->kind != VMI__TK_VOID) continue;
        if (!ty->name || vmi__types_get(t, VMI__NS_ORD, name, strlen(name)) != i) continue;
        vmi__isf_puts(o, n++ ? ",\n" : "\n");
        vmi__isf_key(o, name);
        vmi__isf_puts(o, "{\"kind\":\"");
        vmi__isf_puts(o, ty->kind == VMI__TK_VOID ? "void" : ty->kind == VMI__TK_FLOAT ? "float"
                         : (ty->flags & VMI__TF_BOOL) ? "bool" : (ty->flags & VMI__TF_CHAR) ? "char" : "int");
        vmi__isf_puts(o, "\",\"size\":");
        vmi__isf_num(o, ty->size, 0);
        vmi__isf_puts(o, (ty->flags & VMI__TF_SIGNED) ? ",\"signed\":true" : ",\"signed\":false");
        vmi__isf_puts(o, ",\"endian\":\"little\"}");
        if (ty->kind == VMI__TK_INT && !(ty->flags & (VMI__TF_BOOL | VMI__TF_CHAR)) && strlen(name) < 24 &&
            (ty->size == 1 || ty->size == 2 || ty->size == 4 || ty->size == 8)) {
            s = (ty->flags & VMI__TF_SIGNED) ? 1 : 0;
            lg = (int)vmi__log2(ty->size);
            if (!o->base[s][lg][0]) memcpy(o->base[s][lg], name, strlen(name) + 1);
        }
    }
    for (s = 0; s < 2; s++) {
        for (lg = 0; lg < 4; lg++) {
            if (o->base[s][lg][0]) continue;
            snprintf(o->base[s][lg], sizeof o->base[s][lg], "__vmi_%c%d", s ? 's' : 'u', 8 << lg);
            vmi__isf_puts(o, n++ ? ",\n" : "\n");
            vmi__isf_key(o, o->base[s][lg]);
            vmi__isf_puts(o, "{\"kind\":\"int\",\"size\":");
            vmi__isf_num(o, 1u << lg, 0);
            vmi__isf_puts(o, s ? ",\"signed\":true,\"endian\":\"little\"}" : ",\"signed\":false,\"endian\":\"little\"}");
        }
    }
    return n;
}

static void vmi__isf_out_user_types(vmi__isf_out *o) {
    const vmi__types *t = o->t;
    size_t i;
    uint32_t k;
    int n = 0;
    for (i = 1; i < t->ntypes; i++) {
        const vmi__types_type *ty = &t->types[i];
        const char *name = t->pool + ty->name;
        if (ty->kind == VMI__TK_FWD) { /* only a declaration: an empty struct */
            if (!ty->name || vmi__types_get(t, VMI__NS_STRUCT, name, strlen(name)) != i) continue;
        } else if (ty->kind != VMI__TK_STRUCT && ty->kind != VMI__TK_UNION) {
            continue;
        }
        vmi__isf_puts(o, n++ ? ",\n" : "\n");
        vmi__isf_tname(o, (uint32_t)i);
        vmi__isf_puts(o, ty->kind == VMI__TK_UNION || (ty->flags & VMI__TF_UNION) ? ":{\"kind\":\"union\",\"size\":"
                                                                                 : ":{\"kind\":\"struct\",\"size\":");
        vmi__isf_num(o, ty->size, 0);
        vmi__isf_puts(o, ",\"fields\":{");
        for (k = 0; k < ty->vlen; k++) {
            if (k) vmi__isf_put(o, ",", 1);
            vmi__isf_out_field(o, &t->mem[ty->first + k], k);
        }
        vmi__isf_puts(o, "}}");
    }
}

static void vmi__isf_out_enums(vmi__isf_out *o) {
    const vmi__types *t = o->t;
    size_t i;
    uint32_t k;
    int n = 0;
    for (i = 1; i < t->ntypes; i++) {
        const vmi__types_type *ty = &t->types[i];
        const char *name = t->pool + ty->name;
        int sign = (ty->flags & VMI__TF_SIGNED) != 0;
        if (ty->kind != VMI__TK_ENUM) continue;
        if (ty->vlen == 0 && ty->name && vmi__types_get(t, VMI__NS_ENUM, name, strlen(name)) != i) continue;
        vmi__isf_puts(o, n++ ? ",\n" : "\n");
        vmi__isf_tname(o, (uint32_t)i);
        vmi__isf_puts(o, ":{\"size\":");
        vmi__isf_num(o, ty->size, 0);
        vmi__isf_puts(o, ",\"base\":\"");
        vmi__isf_esc(o, o->base[sign][ty->size >= 8 ? 3 : ty->size >= 4 ? 2 : ty->size >= 2 ? 1 : 0]);
        vmi__isf_puts(o, "\",\"constants\":{");
        for (k = 0; k < ty->vlen; k++) {
            const vmi__types_field *m = &t->mem[ty->first + k];
            if (k) vmi__isf_put(o, ",", 1);
            vmi__isf_key(o, t->pool + m->name);
            vmi__isf_num(o, m->off, sign && (m->off >> 63));
        }
        vmi__isf_puts(o, "}}");
    }
}

/* Writes an ISF (Volatility3 schema 6.2.0) of every type and the given
   symbols. Typedefs have no place in ISF: descriptors name what they stand
   for. write() returns 0 on success; a failure gives VMI_ERR_IO. */
/* os_meta: the metadata's OS member (`"windows":{"pdb":{...}}`), NULL for
   an empty one named by t->os. */
static vmi_status vmi__types_write_isf(const vmi__types *t, const char *os_meta, const char *const *sym_names,
                                            const uint64_t *sym_addrs, size_t nsyms,
                                            int (*write_fn)(void *user, const char *s, size_t n), void *user) {
    vmi__isf_out o;
    size_t i;
    int n = 0, ns = 0;
    if (!t || !write_fn || (nsyms && (!sym_names || !sym_addrs))) return VMI_ERR_ARG;
    memset(&o, 0, sizeof o);
    o.t = t;
    o.write = write_fn;
    o.user = user;
    o.buf = (char *)t->a.alloc(VMI__ISF_BUF, t->a.user);
    if (!o.buf) return VMI_ERR_NOMEM;
    vmi__isf_puts(&o, "{\"metadata\":{\"format\":\"6.2.0\",\"producer\":{\"name\":\"vmi.h\",\"version\":\"");
    vmi__isf_puts(&o, VMI_VERSION_STRING);
    if (os_meta) {
        vmi__isf_puts(&o, "\"},");
        vmi__isf_puts(&o, os_meta);
        vmi__isf_puts(&o, "},\n");
    } else
        vmi__isf_puts(&o, t->os == VMI__OS_WINDOWS ? "\"},\"windows\":{}},\n"
                          : t->os == VMI__OS_MAC   ? "\"},\"mac\":{}},\n"
                          : t->os == VMI__OS_LINUX ? "\"},\"linux\":{}},\n" : "\"}},\n");
    vmi__isf_puts(&o, "\"base_types\":{");
    n = vmi__isf_out_base_types(&o);
    if (vmi__types_get(t, VMI__NS_ORD, "pointer", 7) == VMI__NONE) {
        vmi__isf_puts(&o, n++ ? ",\n\"pointer\":{\"kind\":\"int\",\"size\":" : "\n\"pointer\":{\"kind\":\"int\",\"size\":");
        vmi__isf_num(&o, t->ptr_size, 0);
        vmi__isf_puts(&o, ",\"signed\":false,\"endian\":\"little\"}");
    }
    if (vmi__types_get(t, VMI__NS_ORD, "void", 4) == VMI__NONE)
        vmi__isf_puts(&o, ",\n\"void\":{\"kind\":\"void\",\"size\":0,\"signed\":false,\"endian\":\"little\"}");
    vmi__isf_puts(&o, "},\n\"user_types\":{");
    vmi__isf_out_user_types(&o);
    vmi__isf_puts(&o, "},\n\"enums\":{");
    vmi__isf_out_enums(&o);
    vmi__isf_puts(&o, "},\n\"symbols\":{");
    for (i = 0; i < nsyms; i++) {
        if (!sym_names[i]) continue;
        vmi__isf_puts(&o, ns++ ? ",\n" : "\n");
        vmi__isf_key(&o, sym_names[i]);
        vmi__isf_puts(&o, "{\"address\":");
        vmi__isf_num(&o, sym_addrs[i], 0);
        vmi__isf_puts(&o, "}");
    }
    vmi__isf_puts(&o, "}}\n");
    vmi__isf_flush(&o);
    t->a.free(o.buf, t->a.user);
    return o.st;
}

/* >>symbols ================================================================ */
/* A symbol table: names, type letters and addresses, from the kernel's own
   kallsyms tables (recovered from guest memory, below) or from a System.map.
   Symbols are kept sorted by address (nearest-symbol lookups) and hashed by
   name (exact lookups). With duplicate names (static functions of different
   files) a lookup by name returns the lowest address, as the kernel's
   kallsyms_lookup_name does. */

typedef struct vmi__sym {
    uint64_t addr;
    uint32_t name; /* offset into the string pool */
    char type;     /* nm's letter: T t D d B b R r A ... */
} vmi__sym;

/* Where the kallsyms tables were found: guest-physical addresses (0 when a
   table is absent) and the format details, for `vmi info`. */
typedef struct vmi__kallsyms_info {
    uint64_t num_syms_pa, names_pa, markers_pa, seqs_pa, token_table_pa, token_index_pa;
    uint64_t addresses_pa;     /* kallsyms_offsets, or kallsyms_addresses */
    uint64_t relative_base_pa; /* 0 without CONFIG_KALLSYMS_BASE_RELATIVE */
    uint64_t relative_base;    /* its value: a runtime (relocated) address */
    uint32_t num_syms;
    uint32_t ptr_size;         /* 4 or 8: the kernel's BITS_PER_LONG / 8 */
    uint32_t anchors;          /* token-table anchors examined */
    uint32_t token_tables;     /* of which valid token tables */
    uint8_t order_6_4;         /* 1: the 6.4+ order (num_syms first) */
    uint8_t base_relative;     /* kallsyms_offsets + kallsyms_relative_base */
    uint8_t absolute_percpu;   /* x86_64 SMP: non-negative offsets are absolute */
    uint8_t has_seqs;          /* kallsyms_seqs_of_names present (6.2+, stable backports) */
    uint64_t scan_us;          /* time spent, scan and decode */
} vmi__kallsyms_info;

struct vmi__symtab {
    vmi__sym *syms;  /* sorted by address, ties in table order */
    size_t count;
    char *pool;      /* NUL-terminated names */
    size_t pool_len;
    uint32_t *hash;  /* open addressing: index + 1, 0 when empty */
    uint32_t hmask;
    const char *source; /* "kallsyms" or "System.map" */
    vmi__kallsyms_info ks; /* kallsyms only */
};

#define VMI__KS_MAX_SYMS (1u << 21)  /* far above any kernel (~150k with KALLSYMS_ALL) */
#define VMI__SYSMAP_MAX_SYMS (1u << 24)
#define VMI__KS_NAME_MAX 512u        /* KSYM_NAME_LEN since 6.1, type letter included */
#define VMI__KS_BACK (40u << 20)     /* bytes before the token table to look at */
#define VMI__KS_NAMES_MAX (24u << 20) /* names + markers + seqs before the token table */
#define VMI__KS_DECODES 16u          /* full name decodes per token table */
#define VMI__KS_TABLES 32u           /* token tables examined in full per recovery */
#define VMI__KS_FWD (24u << 20)      /* bytes after it (6.4+: offsets, seqs) */
#define VMI__KS_CHUNK (4u << 20)     /* scan chunk for ranges without a host mapping */

static size_t vmi__symtab_count(const vmi__symtab *s) { return s ? s->count : 0; }

static void vmi__symtab_get(const vmi__symtab *s, size_t i, const char **name, uint64_t *addr, char *type) {
    VMI_ASSERT(s && i < s->count);
    if (name) *name = s->pool + s->syms[i].name;
    if (addr) *addr = s->syms[i].addr;
    if (type) *type = s->syms[i].type;
}

static void vmi__symtab_free(vmi_instance *vmi, vmi__symtab *s) {
    if (!s) return;
    vmi__free(vmi, s->syms);
    vmi__free(vmi, s->pool);
    vmi__free(vmi, s->hash);
    vmi__free(vmi, s);
}

static uint32_t vmi__symtab_slot(const vmi__symtab *s, const char *name, size_t len) {
    return (uint32_t)XXH3_64bits(name, len) & s->hmask;
}

static vmi_status vmi__symtab_find(const vmi__symtab *s, const char *name, uint64_t *addr, char *type) {
    size_t len;
    uint32_t h, n;
    if (!s || !name || !s->hash) return VMI_ERR_NOT_FOUND;
    len = strlen(name);
    for (h = vmi__symtab_slot(s, name, len), n = 0; n <= s->hmask; h = (h + 1) & s->hmask, n++) {
        uint32_t e = s->hash[h];
        if (!e) break;
        if (strcmp(s->pool + s->syms[e - 1].name, name) == 0) {
            if (addr) *addr = s->syms[e - 1].addr;
            if (type) *type = s->syms[e - 1].type;
            return VMI_OK;
        }
    }
    return VMI_ERR_NOT_FOUND;
}

/* The greatest symbol at or below addr (the last of equals, so an alias
   listed later wins as in /proc/kallsyms order); offset = addr - its address. */
static vmi_status vmi__symtab_nearest(const vmi__symtab *s, uint64_t addr, const char **name, uint64_t *offset) {
    size_t lo = 0, hi;
    if (!s || !s->count || s->syms[0].addr > addr) return VMI_ERR_NOT_FOUND;
    hi = s->count;
    while (hi - lo > 1) { /* invariant: syms[lo].addr <= addr, syms[hi].addr > addr or hi == count */
        size_t mid = lo + (hi - lo) / 2;
        if (s->syms[mid].addr <= addr) lo = mid;
        else hi = mid;
    }
    if (name) *name = s->pool + s->syms[lo].name;
    if (offset) *offset = addr - s->syms[lo].addr;
    return VMI_OK;
}

static int vmi__sym_cmp(const void *a, const void *b) {
    const vmi__sym *x = (const vmi__sym *)a, *y = (const vmi__sym *)b;
    if (x->addr != y->addr) return x->addr < y->addr ? -1 : 1;
    return x->name < y->name ? -1 : x->name > y->name; /* pool order = table order */
}

/* The name hash holds indexes into the address-sorted array: rebuilt
   whenever that order changes. */
static void vmi__symtab_rehash(vmi__symtab *s) {
    size_t i;
    memset(s->hash, 0, ((size_t)s->hmask + 1) * sizeof *s->hash);
    for (i = 0; i < s->count; i++) { /* address order: the first of duplicates stays */
        const char *nm = s->pool + s->syms[i].name;
        uint32_t h = vmi__symtab_slot(s, nm, strlen(nm));
        for (;; h = (h + 1) & s->hmask) {
            uint32_t e = s->hash[h];
            if (!e) { s->hash[h] = (uint32_t)i + 1; break; }
            if (strcmp(s->pool + s->syms[e - 1].name, nm) == 0) break;
        }
    }
}

/* Sorts by address (when needed) and builds the name hash. */
static vmi_status vmi__symtab_index(vmi_instance *vmi, vmi__symtab *s) {
    size_t i, cap;
    for (i = 1; i < s->count; i++)
        if (vmi__sym_cmp(&s->syms[i - 1], &s->syms[i]) > 0) break;
    if (i < s->count) qsort(s->syms, s->count, sizeof *s->syms, vmi__sym_cmp);
    vmi__free(vmi, s->hash);
    for (cap = 16; cap < 2 * s->count + 1; cap <<= 1) {}
    s->hash = (uint32_t *)vmi__alloc(vmi, cap * sizeof *s->hash);
    if (!s->hash) return vmi__fail(vmi, VMI_ERR_NOMEM, "symbol hash of %zu slots", cap);
    s->hmask = (uint32_t)(cap - 1);
    vmi__symtab_rehash(s);
    return VMI_OK;
}

/* System.map addresses are link-time: add the KASLR slide (runtime _stext -
   System.map _stext). Absolute symbols ('A', 'a') do not move. */
static void vmi__symtab_slide(vmi__symtab *s, uint64_t slide) {
    size_t i;
    int moved = 0;
    if (!s || !slide) return;
    for (i = 0; i < s->count; i++) {
        if (s->syms[i].type == 'A' || s->syms[i].type == 'a') continue;
        s->syms[i].addr += slide;
        moved = 1;
    }
    if (!moved) return;
    qsort(s->syms, s->count, sizeof *s->syms, vmi__sym_cmp); /* absolutes kept still */
    if (s->hash) vmi__symtab_rehash(s);
}

static const vmi__kallsyms_info *vmi__symtab_kallsyms_info(const vmi__symtab *s) {
    return s && s->ks.num_syms ? &s->ks : NULL;
}

/* >>sysmap ================================================================= */
/* "ffffffff81000000 T _text" lines (nm's output). Lines that do not parse
   are skipped and counted; no symbol at all is an error. */
static int vmi__sysmap_line(const char *p, const char *end, uint64_t *addr, char *type,
                            const char **name, size_t *nlen) {
    unsigned digits = 0;
    uint64_t a = 0;
    for (; p < end && digits < 17; p++, digits++) {
        unsigned c = (unsigned char)*p, v;
        if (c >= '0' && c <= '9') v = c - '0';
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') v = (c | 0x20) - 'a' + 10;
        else break;
        a = (a << 4) | v;
    }
    if (!digits || digits > 16 || p + 3 > end || *p != ' ') return 0;
    if (p[1] <= ' ' || p[1] > '~' || p[2] != ' ') return 0;
    *addr = a;
    *type = p[1];
    p += 3;
    *name = p;
    while (p < end && *p > ' ' && *p <= '~') p++;
    *nlen = (size_t)(p - *name);
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r')) p++;
    if (p < end && *p == '[') return 0; /* "[module]": kallsyms output, not a map */
    return *nlen > 0 && *nlen < VMI__KS_NAME_MAX;
}

static vmi_status vmi__symtab_from_sysmap(vmi_instance *vmi, const char *text, size_t len, vmi__symtab **out) {
    const char *p = text, *end = text + len;
    size_t lines = 0, bad = 0, n = 0, pool = 0;
    vmi__symtab *s;
    vmi_status st;
    *out = NULL;
    if (!text && len) return vmi__fail(vmi, VMI_ERR_ARG, "System.map: no text");
    /* pass 1: count and size */
    while (p < end) {
        const char *eol = (const char *)memchr(p, '\n', (size_t)(end - p)), *name;
        uint64_t a;
        char t;
        size_t nl;
        if (!eol) eol = end;
        if (eol > p) {
            lines++;
            if (vmi__sysmap_line(p, eol, &a, &t, &name, &nl)) n++, pool += nl + 1;
            else bad++;
        }
        p = eol + (eol < end);
    }
    if (!n) return vmi__fail(vmi, VMI_ERR_FORMAT, "System.map: no symbol lines in %zu lines", lines);
    if (n > VMI__SYSMAP_MAX_SYMS || pool > 0xffffffffu)
        return vmi__fail(vmi, VMI_ERR_LIMIT, "System.map: %zu symbols, %zu bytes of names", n, pool);
    s = (vmi__symtab *)vmi__alloc(vmi, sizeof *s);
    if (!s) return vmi__fail(vmi, VMI_ERR_NOMEM, "symbol table");
    s->syms = (vmi__sym *)vmi__alloc(vmi, n * sizeof *s->syms);
    s->pool = (char *)vmi__alloc(vmi, pool);
    if (!s->syms || !s->pool) {
        vmi__symtab_free(vmi, s);
        return vmi__fail(vmi, VMI_ERR_NOMEM, "symbol table of %zu symbols", n);
    }
    s->source = "System.map";
    /* pass 2: fill */
    for (p = text; p < end;) {
        const char *eol = (const char *)memchr(p, '\n', (size_t)(end - p)), *name;
        uint64_t a;
        char t;
        size_t nl;
        if (!eol) eol = end;
        if (eol > p && vmi__sysmap_line(p, eol, &a, &t, &name, &nl)) {
            vmi__sym *y = &s->syms[s->count++];
            y->addr = a;
            y->type = t;
            y->name = (uint32_t)s->pool_len;
            memcpy(s->pool + s->pool_len, name, nl);
            s->pool_len += nl + 1;
        }
        p = eol + (eol < end);
    }
    if ((st = vmi__symtab_index(vmi, s)) != VMI_OK) { vmi__symtab_free(vmi, s); return st; }
    if (bad) vmi__log(vmi, VMI_LOG_WARN, "System.map: skipped %zu malformed lines of %zu", bad, lines);
    *out = s;
    return VMI_OK;
}

/* >>kallsyms =============================================================== */
/* Recovers the kernel's compressed symbol table (scripts/kallsyms.c output,
   read by kernel/kallsyms.c) from guest-physical memory, with no profile and
   no page tables: the tables sit in the kernel image's .rodata, physically
   contiguous.

   Layout, each table opened by `.balign` to the pointer size (8 or 4):
     kallsyms_num_syms      .long   number of symbols
     kallsyms_names         per symbol: length (ULEB128: one byte, two for
                            "big" symbols since 6.1), then that many token
                            indices; the expansion is the type letter, then
                            the name
     kallsyms_markers       .long   names offset of every 256th symbol
                            (pointer-sized in old kernels: also accepted)
     kallsyms_seqs_of_names 3 bytes per symbol (.long in early 6.2), 6.2+ and
                            stable backports (Debian 6.1.1xx has it): between
                            markers and token table up to 6.3, last since 6.4
     kallsyms_token_table   256 NUL-terminated tokens; every character used
                            in a name is its own token, so "0" .. "9" sit
                            consecutively at indices 0x30..0x39: the anchor
     kallsyms_token_index   256 .short offsets into the token table
     kallsyms_offsets       .long per symbol, or kallsyms_addresses (pointer
                            per symbol) without CONFIG_KALLSYMS_BASE_RELATIVE
     kallsyms_relative_base pointer (relocated at boot: a runtime address)
   Before 6.4 offsets/addresses + relative_base come first and num_syms
   follows relative_base directly; since 6.4 they follow the token index.
   Address of symbol i: relative_base + (u32)offset[i]; with
   CONFIG_KALLSYMS_ABSOLUTE_PERCPU (x86_64 SMP) non-negative offsets are
   absolute values and negative ones mean relative_base - 1 - offset[i].

   Recovery: find the anchor, walk to the token table's start and check it
   against the token index (256 offsets that must match the NULs), then look
   back for num_syms such that names, markers (and seqs) fill the gap exactly
   and every name decodes to an in-bounds, printable string whose markers
   agree; then read and check the addresses (sorted). */

typedef struct vmi__ks_view { /* bytes [pa, pa + len) of guest memory */
    const uint8_t *b;
    uint64_t pa;
    size_t len;
    uint8_t *own; /* our copy, when the memory is not host-mapped */
} vmi__ks_view;

typedef struct vmi__ks_tok {
    size_t table, index;     /* view offsets of token table and token index */
    uint16_t off[256];
    uint8_t len[256];
} vmi__ks_tok;

typedef struct vmi__ks_cand {
    size_t num_syms, names, markers, seqs, addrs, rbase; /* view offsets */
    uint32_t n, ptr, marker_size, pool;
    uint8_t order_6_4, base_relative, percpu, has_seqs;
    uint64_t relative_base;
} vmi__ks_cand;

static const char vmi__ks_anchor[20] = {'0', 0, '1', 0, '2', 0, '3', 0, '4', 0,
                                        '5', 0, '6', 0, '7', 0, '8', 0, '9', 0};

static uint64_t vmi__ks_u(const vmi__ks_view *v, size_t off, unsigned n) { return vmi__le(v->b + off, n); }

/* Alignment is of guest-physical addresses (the kernel image is mapped with
   pages, so physical and virtual agree modulo 8): view offset x rounded. */
static size_t vmi__ks_up(const vmi__ks_view *v, size_t x, size_t a) {
    return x + (size_t)((a - ((v->pa + x) & (a - 1))) & (a - 1));
}
static size_t vmi__ks_down(const vmi__ks_view *v, size_t x, size_t a) { return x - (size_t)((v->pa + x) & (a - 1)); }

/* Next anchor at or after `from` in p[0, n), or n. A 20-byte match
   contains 17 starting points of a 4-byte word, so probing one word every
   16 bytes cannot miss it: the word reads "d\0e\0" or "\0d\0e" with digits
   d, e = d + 1, and says where '0' must be. Four probes per cache line. */
static size_t vmi__ks_find_anchor(const uint8_t *p, size_t n, size_t from) {
    const uint32_t m1 = 0xfff0fff0u, e1 = 0x00300030u, m2 = 0xf0fff0ffu, e2 = 0x30003000u;
    size_t i = (from + 15) & ~(size_t)15, k;
    if (n < sizeof vmi__ks_anchor) return n;
    for (k = from; k < i && k + sizeof vmi__ks_anchor <= n; k++) /* the head */
        if (p[k] == '0' && memcmp(p + k, vmi__ks_anchor, sizeof vmi__ks_anchor) == 0) return k;
    for (; i + 64 <= n; i += 64) {
        uint32_t w[4], hit = 0;
        for (k = 0; k < 4; k++) {
            memcpy(&w[k], p + i + 16 * k, 4);
            hit |= ((w[k] & m1) == e1) | ((w[k] & m2) == e2);
        }
        if (!hit) continue;
        for (k = 0; k < 4; k++) {
            size_t at = i + 16 * k, d, start;
            if ((w[k] & m1) == e1) d = w[k] & 0xff, start = at;
            else if ((w[k] & m2) == e2) d = (w[k] >> 8) & 0xff, start = at + 1;
            else continue;
            if (d < '0' || d > '9' || start < from + 2 * (d - '0')) continue;
            start -= 2 * (d - '0');
            if (start + sizeof vmi__ks_anchor <= n && memcmp(p + start, vmi__ks_anchor, sizeof vmi__ks_anchor) == 0)
                return start;
        }
    }
    for (i = i > 16 ? i - 16 : 0, i = i > from ? i : from; i + sizeof vmi__ks_anchor <= n; i++) /* the tail */
        if (p[i] == '0' && memcmp(p + i, vmi__ks_anchor, sizeof vmi__ks_anchor) == 0) return i;
    return n;
}

/* Bulk reads go straight to the backend when one unmapped range holds
   them: hundreds of MiB of scanning would only flush the page cache. */
static vmi_status vmi__ks_read(vmi_instance *vmi, uint64_t pa, void *buf, size_t len) {
    uint32_t ri = vmi__range_find(vmi, pa);
    if (ri != VMI__NONE && !vmi->be.ranges[ri].host && vmi->be.read_pa &&
        len <= vmi->be.ranges[ri].size - (pa - vmi->be.ranges[ri].pa)) {
        vmi_status st = vmi->be.read_pa(vmi->be.ctx, pa, buf, len);
        return st == VMI_OK ? st : vmi__backend_fail(vmi, st, "kallsyms: backend read_pa");
    }
    return vmi__read_pa(vmi, pa, buf, len, NULL);
}

/* A view of [anchor - back, anchor + fwd), clipped to the guest memory that
   is contiguous with the anchor: host bytes when one mapped range holds it
   all, else a copy. */
static vmi_status vmi__ks_view_get(vmi_instance *vmi, uint64_t anchor, uint64_t back, uint64_t fwd, vmi__ks_view *v) {
    size_t nr, i, lo, hi;
    const vmi_mem_range *r = vmi_memory_map(vmi, &nr);
    uint64_t start, end;
    memset(v, 0, sizeof *v);
    for (i = 0; i < nr && !(anchor - r[i].pa < r[i].size); i++) {}
    if (i == nr) return VMI_ERR_UNMAPPED;
    for (lo = i; lo > 0 && r[lo - 1].pa + r[lo - 1].size == r[lo].pa; lo--) {}
    for (hi = i; hi + 1 < nr && r[hi].pa + r[hi].size == r[hi + 1].pa; hi++) {}
    start = anchor - r[lo].pa > back + 8 ? (anchor - back) & ~(uint64_t)7 : r[lo].pa;
    end = r[hi].pa + r[hi].size - anchor > fwd ? anchor + fwd : r[hi].pa + r[hi].size;
    v->pa = start;
    v->len = (size_t)(end - start);
    if ((v->b = vmi__host_span(vmi, start, v->len)) != NULL) return VMI_OK;
    v->own = (uint8_t *)vmi->alloc.alloc(v->len, vmi->alloc.user); /* filled at once: no zeroing */
    if (!v->own) return vmi__fail(vmi, VMI_ERR_NOMEM, "kallsyms window of %zu bytes", v->len);
    v->b = v->own;
    return vmi__ks_read(vmi, start, v->own, v->len);
}

static void vmi__ks_view_put(vmi_instance *vmi, vmi__ks_view *v) {
    vmi__free(vmi, v->own);
    memset(v, 0, sizeof *v);
}

/* Token table around the anchor at view offset `a` (token 0x30): walk back
   to token 1, forward past token 255, and require a token index right after
   (aligned to 2, 4 or 8) whose 256 offsets land exactly on the tokens. */
static int vmi__ks_tokens(const vmi__ks_view *v, size_t a, vmi__ks_tok *t) {
    size_t p = a, e, s1, i, align;
    unsigned k;
    for (k = 0x30; k > 1; k--) { /* p: start of token k; find start of k - 1 */
        size_t q = p - 1, lim; /* v->b[q] is the NUL ending token k - 1 */
        if (p < 2 || v->b[q]) return 0;
        lim = q > 256 ? q - 256 : 0;
        while (q > lim && v->b[q - 1]) q--;
        if (q == p - 1 || (q > 0 && v->b[q - 1])) return 0; /* empty or overlong token */
        p = q;
    }
    s1 = p;
    for (e = a, k = 0x30; k < 256; k++) {
        size_t q = e;
        while (q < v->len && q - e < 256 && v->b[q]) q++;
        if (q == e || q >= v->len || v->b[q]) return 0;
        e = q + 1;
    }
    for (align = 2; align <= 8; align <<= 1) {
        size_t ix = vmi__ks_up(v, e, align), tab;
        uint32_t prev;
        if (ix + 512 > v->len) return 0;
        if (vmi__ks_u(v, ix, 2) != 0) continue;
        tab = a - (size_t)vmi__ks_u(v, ix + 2 * 0x30, 2);
        if (a < (size_t)vmi__ks_u(v, ix + 2 * 0x30, 2) || tab + vmi__ks_u(v, ix + 2, 2) != s1) continue;
        for (i = 0, prev = 0; i < 256; i++) {
            uint32_t o = (uint32_t)vmi__ks_u(v, ix + 2 * i, 2);
            size_t q = tab + o;
            if ((i && o <= prev) || q >= e) break;
            while (q < e && v->b[q] >= 0x20 && v->b[q] < 0x7f) q++;
            if (q >= e || v->b[q] || q == tab + o || q - (tab + o) > 255) break;
            if (i < 255 ? (tab + vmi__ks_u(v, ix + 2 * (i + 1), 2) != q + 1) : (q + 1 != e)) break;
            t->off[i] = (uint16_t)o;
            t->len[i] = (uint8_t)(q - (tab + o));
            prev = o;
        }
        if (i == 256) {
            t->table = tab;
            t->index = ix;
            return 1;
        }
    }
    return 0;
}

/* Length prefix of a name: ULEB128 of one or two bytes (two since 6.1). */
static size_t vmi__ks_namelen(const uint8_t *b, size_t *pos, size_t end) {
    size_t len;
    if (*pos >= end) return 0;
    len = b[(*pos)++];
    if (len & 0x80) {
        if (*pos >= end) return 0;
        len = (len & 0x7f) | ((size_t)b[(*pos)++] << 7);
    }
    return len;
}

/* Decodes every name once, checking lengths, markers and characters, and
   sums the pool size. Returns 1 when the names end exactly before the
   markers (up to alignment). */
static int vmi__ks_check_names(const vmi__ks_view *v, const vmi__ks_tok *t, vmi__ks_cand *c) {
    size_t pos = c->names, end = c->markers, i;
    uint64_t pool = 0;
    for (i = 0; i < c->n; i++) {
        size_t len, j, out = 0;
        if (!(i & 0xff) && pos - c->names != vmi__ks_u(v, c->markers + (i >> 8) * c->marker_size, c->marker_size))
            return 0;
        len = vmi__ks_namelen(v->b, &pos, end);
        if (!len || len > end - pos) return 0;
        for (j = 0; j < len; j++) out += t->len[v->b[pos + j]];
        if (out < 2 || out > VMI__KS_NAME_MAX) return 0;
        {
            uint8_t type = v->b[t->table + t->off[v->b[pos]]];
            if (!((type | 0x20) >= 'a' && (type | 0x20) <= 'z') && type != '?') return 0;
        }
        pos += len;
        pool += out; /* type letter dropped, NUL added */
    }
    if (end - pos >= c->ptr || pool > 0xffffffffu) return 0;
    c->pool = (uint32_t)pool;
    return 1;
}

/* Markers: first 0, strictly increasing, each step at least 2 bytes per
   symbol, all inside the names. */
static int vmi__ks_check_markers(const vmi__ks_view *v, const vmi__ks_cand *c) {
    uint32_t nm = (c->n + 255) >> 8, k;
    uint64_t prev = 0, room = c->markers - c->names;
    if (vmi__ks_u(v, c->markers, c->marker_size) != 0) return 0;
    for (k = 1; k < nm; k++) {
        uint64_t m = vmi__ks_u(v, c->markers + (size_t)k * c->marker_size, c->marker_size);
        if (m < prev + 512 || m >= room) return 0;
        prev = m;
    }
    return 1;
}

static uint64_t vmi__ks_addr(const vmi__ks_view *v, const vmi__ks_cand *c, uint32_t i) {
    int32_t off;
    if (!c->base_relative) return vmi__ks_u(v, c->addrs + (size_t)i * c->ptr, c->ptr);
    off = (int32_t)(uint32_t)vmi__ks_u(v, c->addrs + (size_t)i * 4, 4);
    if (!c->percpu) return (c->relative_base + (uint32_t)off) & (c->ptr == 4 ? 0xffffffffull : ~0ull);
    if (off >= 0) return (uint64_t)off;
    return c->relative_base - 1 - (uint64_t)(int64_t)off;
}

/* Tries the address table at `addrs` (and relative_base at `rbase`):
   decoded addresses must be sorted. Counts inversions as a tolerance. */
static int vmi__ks_check_addrs(const vmi__ks_view *v, vmi__ks_cand *c) {
    uint32_t i, neg = 0, bad = 0;
    uint64_t prev = 0;
    size_t need = c->base_relative ? (size_t)c->n * 4 : (size_t)c->n * c->ptr;
    if (c->addrs > v->len || need > v->len - c->addrs) return 0;
    if (c->base_relative) {
        if (c->rbase + c->ptr > v->len) return 0;
        c->relative_base = vmi__ks_u(v, c->rbase, c->ptr);
        if (!c->relative_base) return 0;
        for (i = 0; i < c->n; i++) neg += (int32_t)(uint32_t)vmi__ks_u(v, c->addrs + (size_t)i * 4, 4) < 0;
        c->percpu = c->ptr == 8 && neg > c->n / 2;
        if (!c->percpu && neg) return 0;
    }
    for (i = 0; i < c->n; i++) {
        uint64_t a = vmi__ks_addr(v, c, i);
        bad += i && a < prev;
        prev = a;
    }
    return bad <= c->n / 1000 && prev > vmi__ks_addr(v, c, 0); /* sorted, not all equal */
}

/* Address tables of both orders, base-relative first. */
static int vmi__ks_find_addrs(const vmi__ks_view *v, const vmi__ks_tok *t, vmi__ks_cand *c) {
    unsigned order;
    size_t p = c->ptr;
    for (order = 0; order < 2; order++) {
        c->order_6_4 = (uint8_t)order;
        c->base_relative = 1;
        if (!order) {
            if (c->num_syms < p) continue;
            c->rbase = c->num_syms - p;
            if (c->rbase < (size_t)c->n * 4) continue;
            c->addrs = vmi__ks_down(v, c->rbase - (size_t)c->n * 4, p);
        } else {
            if (c->has_seqs) break; /* seqs before the token table: pre-6.4 */
            c->addrs = vmi__ks_up(v, t->index + 512, p);
            c->rbase = vmi__ks_up(v, c->addrs + (size_t)c->n * 4, p);
        }
        if (vmi__ks_check_addrs(v, c)) return 1;
        c->base_relative = 0;
        c->rbase = 0;
        c->relative_base = 0;
        c->percpu = 0;
        if (!order) {
            if (c->num_syms < (size_t)c->n * p) continue;
            c->addrs = c->num_syms - (size_t)c->n * p;
        } else {
            c->addrs = vmi__ks_up(v, t->index + 512, p);
        }
        if (vmi__ks_check_addrs(v, c)) return 1;
    }
    return 0;
}

/* Looks back from the token table for kallsyms_num_syms: a count n such that
   the names, the markers (and seqs_of_names: 3 bytes a symbol, 4 in early
   6.2) fill the gap to the token table exactly, and everything decodes.
   Full decodes are budgeted so crafted memory cannot make this quadratic. */
static int vmi__ks_find_names(const vmi__ks_view *v, const vmi__ks_tok *t, vmi__ks_cand *c) {
    static const unsigned seq_sizes[3] = {0, 3, 4};
    size_t lim = t->table > VMI__KS_NAMES_MAX ? t->table - VMI__KS_NAMES_MAX : 0, q;
    unsigned decodes = 0;
    if (t->table < 16) return 0;
    for (q = vmi__ks_down(v, t->table - 8, 4); q >= lim + 8; q -= 4) {
        uint32_t n = (uint32_t)vmi__ks_u(v, q, 4), nm;
        unsigned pi, mi, si;
        if (!n || n > VMI__KS_MAX_SYMS) continue;
        nm = (n + 255) >> 8;
        for (pi = 0; pi < 2; pi++) {
            size_t p = pi ? 4 : 8, names = q + p;
            if (((v->pa + q) & (p - 1)) || (p == 8 && vmi__ks_u(v, q + 4, 4) != 0)) continue;
            for (mi = 0; mi < (p == 8 ? 2u : 1u); mi++) { /* .long markers; pointer-sized before 4.20 */
                size_t ms = mi ? 8 : 4;
                for (si = 0; si < 3; si++) {
                    size_t top = t->table, mk, seqs = 0, sz = (size_t)n * seq_sizes[si];
                    if (sz) {
                        if (top < sz) continue;
                        seqs = vmi__ks_down(v, top - sz, p);
                        if (vmi__ks_up(v, seqs + sz, p) != top) continue;
                        top = seqs;
                    }
                    if (top < (size_t)nm * ms) continue;
                    mk = vmi__ks_down(v, top - (size_t)nm * ms, p);
                    if (vmi__ks_up(v, mk + (size_t)nm * ms, p) != top || mk <= names) continue;
                    memset(c, 0, sizeof *c);
                    c->num_syms = q, c->names = names, c->markers = mk, c->seqs = seqs;
                    c->n = n, c->ptr = (uint32_t)p, c->marker_size = (uint32_t)ms;
                    c->has_seqs = (uint8_t)(sz != 0);
                    if (!vmi__ks_check_markers(v, c)) continue;
                    if (++decodes > VMI__KS_DECODES) return 0;
                    if (vmi__ks_check_names(v, t, c) && vmi__ks_find_addrs(v, t, c)) return 1;
                }
            }
        }
    }
    return 0;
}

/* Fills the table from a validated candidate. */
static vmi_status vmi__ks_build(vmi_instance *vmi, const vmi__ks_view *v, const vmi__ks_tok *t,
                                const vmi__ks_cand *c, vmi__symtab **out) {
    vmi__symtab *s = (vmi__symtab *)vmi__alloc(vmi, sizeof *s);
    size_t pos = c->names;
    uint32_t i;
    vmi_status st;
    if (!s) return vmi__fail(vmi, VMI_ERR_NOMEM, "symbol table");
    s->syms = (vmi__sym *)vmi__alloc(vmi, (size_t)c->n * sizeof *s->syms);
    s->pool = (char *)vmi->alloc.alloc((size_t)c->pool + 1, vmi->alloc.user); /* written in full below */
    if (!s->syms || !s->pool) {
        vmi__symtab_free(vmi, s);
        return vmi__fail(vmi, VMI_ERR_NOMEM, "symbol table of %u symbols", c->n);
    }
    s->source = "kallsyms";
    for (i = 0; i < c->n; i++) {
        size_t len = vmi__ks_namelen(v->b, &pos, c->markers), j;
        char *dst = s->pool + s->pool_len, *d0 = dst;
        for (j = 0; j < len; j++) {
            uint8_t tok = v->b[pos + j];
            memcpy(dst, v->b + t->table + t->off[tok], t->len[tok]);
            dst += t->len[tok];
        }
        pos += len;
        s->syms[i].type = d0[0];
        s->syms[i].addr = vmi__ks_addr(v, c, i);
        s->syms[i].name = (uint32_t)s->pool_len;
        memmove(d0, d0 + 1, (size_t)(dst - d0 - 1)); /* drop the type letter */
        dst[-1] = 0;
        s->pool_len += (size_t)(dst - d0);
    }
    s->count = c->n;
    if ((st = vmi__symtab_index(vmi, s)) != VMI_OK) { vmi__symtab_free(vmi, s); return st; }
    s->ks.num_syms_pa = v->pa + c->num_syms;
    s->ks.names_pa = v->pa + c->names;
    s->ks.markers_pa = v->pa + c->markers;
    s->ks.seqs_pa = c->has_seqs ? v->pa + c->seqs : 0;
    s->ks.token_table_pa = v->pa + t->table;
    s->ks.token_index_pa = v->pa + t->index;
    s->ks.addresses_pa = v->pa + c->addrs;
    s->ks.relative_base_pa = c->base_relative ? v->pa + c->rbase : 0;
    s->ks.relative_base = c->relative_base;
    s->ks.num_syms = c->n;
    s->ks.ptr_size = c->ptr;
    s->ks.order_6_4 = c->order_6_4;
    s->ks.base_relative = c->base_relative;
    s->ks.absolute_percpu = c->percpu;
    s->ks.has_seqs = c->has_seqs;
    *out = s;
    return VMI_OK;
}

/* One anchor: cheap token checks on a small window, then the full window. */
static vmi_status vmi__ks_try(vmi_instance *vmi, uint64_t anchor, uint32_t *tables, vmi__symtab **out) {
    vmi__ks_view v;
    vmi__ks_tok t;
    vmi__ks_cand c;
    vmi_status st;
    int ok;
    *out = NULL;
    if ((st = vmi__ks_view_get(vmi, anchor, 4096, 8192, &v)) != VMI_OK) { vmi__ks_view_put(vmi, &v); return st; }
    ok = vmi__ks_tokens(&v, (size_t)(anchor - v.pa), &t);
    vmi__ks_view_put(vmi, &v);
    if (!ok) return VMI_ERR_NOT_FOUND;
    if (++*tables > VMI__KS_TABLES)
        return vmi__fail(vmi, VMI_ERR_LIMIT, "kallsyms: more than %u token tables without a valid symbol table", VMI__KS_TABLES);
    if ((st = vmi__ks_view_get(vmi, anchor, VMI__KS_BACK, VMI__KS_FWD, &v)) != VMI_OK) {
        vmi__ks_view_put(vmi, &v);
        return st;
    }
    st = VMI_ERR_NOT_FOUND;
    if (vmi__ks_tokens(&v, (size_t)(anchor - v.pa), &t) && vmi__ks_find_names(&v, &t, &c))
        st = vmi__ks_build(vmi, &v, &t, &c, out);
    vmi__ks_view_put(vmi, &v);
    return st;
}

/* After a reboot RAM still holds the previous kernel's tables. When the
   paging is known (registers), a table belongs to the running kernel only if
   its _stext is mapped; without paging the first table is taken. */
static int vmi__ks_live(vmi_instance *vmi, const vmi__symtab *s) {
    uint64_t stext, pa, avail;
    char type;
    if (vmi->paging.mode <= VMI_PAGING_OFF || vmi__symtab_find(s, "_stext", &stext, &type) != VMI_OK) return 1;
    return vmi__translate(vmi, vmi->paging.dtb, stext, &pa, &avail) == VMI_OK;
}

/* Scans all guest memory for the anchor, range by range (host bytes in
   place, other ranges in chunks that overlap by the anchor's length); the
   first anchor that leads to a complete, consistent table of the running
   kernel wins. */
static vmi_status vmi__kallsyms_recover(vmi_instance *vmi, vmi__symtab **out) {
    size_t nr, ri;
    const vmi_mem_range *r = vmi_memory_map(vmi, &nr);
    struct timeval t0, t1;
    uint32_t anchors = 0, tables = 0;
    uint8_t *chunk = NULL;
    vmi__symtab *found = NULL;
    vmi_status st = VMI_OK;
    gettimeofday(&t0, NULL);
    *out = NULL;
    for (ri = 0; ri < nr && st == VMI_OK && !found; ri++) {
        uint64_t base = 0; /* offset of the chunk in the range */
        while (base < r[ri].size && st == VMI_OK && !found) {
            const uint8_t *p = (const uint8_t *)r[ri].host;
            size_t want = (size_t)vmi__min64(p ? r[ri].size : VMI__KS_CHUNK, r[ri].size - base), n = want, at;
            if (!p) {
                if (!chunk && !(chunk = (uint8_t *)vmi->alloc.alloc(VMI__KS_CHUNK, vmi->alloc.user))) {
                    st = vmi__fail(vmi, VMI_ERR_NOMEM, "kallsyms scan buffer");
                    break;
                }
                p = chunk;
                if (vmi__ks_read(vmi, r[ri].pa + base, chunk, n) != VMI_OK) n = 0; /* skip what cannot be read */
            }
            for (at = 0; (at = vmi__ks_find_anchor(p, n, at)) < n; at += sizeof vmi__ks_anchor) {
                vmi_status ts = vmi__ks_try(vmi, r[ri].pa + base + at, &tables, &found);
                anchors++;
                if (ts == VMI_ERR_NOMEM || ts == VMI_ERR_LIMIT) st = ts;
                if (ts == VMI_OK && !vmi__ks_live(vmi, found)) { /* a previous kernel's, left in RAM */
                    vmi__symtab_free(vmi, found);
                    found = NULL;
                    ts = VMI_ERR_NOT_FOUND;
                }
                if (st != VMI_OK || ts == VMI_OK) break;
            }
            if (base + want >= r[ri].size) base = r[ri].size;
            else base += want - (sizeof vmi__ks_anchor - 1);
        }
    }
    vmi__free(vmi, chunk);
    if (st != VMI_OK) return st;
    if (!found)
        return vmi__fail(vmi, VMI_ERR_NOT_FOUND,
                         "kallsyms: no valid table in %zu memory ranges (%u token-table anchors checked)", nr, anchors);
    gettimeofday(&t1, NULL);
    found->ks.anchors = anchors;
    found->ks.token_tables = tables;
    found->ks.scan_us = (uint64_t)((int64_t)(t1.tv_sec - t0.tv_sec) * 1000000 + ((int64_t)t1.tv_usec - t0.tv_usec));
    vmi__log(vmi, VMI_LOG_INFO,
             "kallsyms: %u symbols, %u-bit, %s order%s%s%s; num_syms at pa 0x%llx, names 0x%llx, markers 0x%llx, "
             "token_table 0x%llx, token_index 0x%llx, %s 0x%llx",
             found->ks.num_syms, found->ks.ptr_size * 8, found->ks.order_6_4 ? "6.4+" : "pre-6.4",
             found->ks.base_relative ? ", base-relative" : ", absolute addresses",
             found->ks.absolute_percpu ? ", absolute per-cpu" : "", found->ks.has_seqs ? ", seqs_of_names" : "",
             (unsigned long long)found->ks.num_syms_pa, (unsigned long long)found->ks.names_pa,
             (unsigned long long)found->ks.markers_pa, (unsigned long long)found->ks.token_table_pa,
             (unsigned long long)found->ks.token_index_pa, found->ks.base_relative ? "offsets" : "addresses",
             (unsigned long long)found->ks.addresses_pa);
    *out = found;
    return VMI_OK;
}

/* >>profile-glue =========================================================== */
/* Loading profiles into an instance, and the public type/symbol queries. */

#define VMI__PROFILE_MAX ((size_t)1 << 30) /* largest profile file read */

/* The .BTF section of a vmlinux ELF (64- or 32-bit, little-endian). */
static int vmi__elf_btf(const uint8_t *d, size_t n, const uint8_t **btf, size_t *len) {
    int is64;
    uint64_t shoff, i, shnum, shentsize, strndx, stroff, strsz;
    if (n < 52 || memcmp(d, "\177ELF", 4) || d[5] != 1) return 0;
    is64 = d[4] == 2;
    shoff = is64 ? vmi__le(d + 0x28, 8) : vmi__le(d + 0x20, 4);
    shentsize = vmi__le(d + (is64 ? 0x3a : 0x2e), 2);
    shnum = vmi__le(d + (is64 ? 0x3c : 0x30), 2);
    strndx = vmi__le(d + (is64 ? 0x3e : 0x32), 2);
    if (shentsize < (is64 ? 64u : 40u) || strndx >= shnum || shoff > n || shnum > (n - shoff) / shentsize) return 0;
#define VMI__SH(k, f64, f32) vmi__le(d + shoff + (k) * shentsize + (is64 ? (f64) : (f32)), is64 ? 8 : 4)
    stroff = VMI__SH(strndx, 0x18, 0x10);
    strsz = VMI__SH(strndx, 0x20, 0x14);
    if (stroff > n || strsz > n - stroff) return 0;
    for (i = 0; i < shnum; i++) {
        uint64_t name = vmi__le(d + shoff + i * shentsize, 4);
        uint64_t off = VMI__SH(i, 0x18, 0x10), size = VMI__SH(i, 0x20, 0x14);
        if (name + 5 <= strsz && !memcmp(d + stroff + name, ".BTF", 5) && off <= n && size <= n - off) {
            *btf = d + off;
            *len = (size_t)size;
            return 1;
        }
    }
#undef VMI__SH
    return 0;
}

static void vmi__set_source(char *dst, const char *src) {
    snprintf(dst, 96, "%s", src);
}

static vmi_status vmi__load_libvmi(vmi_instance *vmi, const char *text, size_t len);

/* A decimal or 0x-hex number in [p, end), which need not be NUL-terminated. */
static const char *vmi__parse_u64(const char *p, const char *end, uint64_t *v) {
    int hex = end - p > 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X');
    *v = 0;
    for (p += hex ? 2 : 0; p < end; p++) {
        int d = *p >= '0' && *p <= '9' ? *p - '0' : hex && (*p | 32) >= 'a' && (*p | 32) <= 'f' ? (*p | 32) - 'a' + 10 : -1;
        if (d < 0) break;
        *v = *v * (hex ? 16u : 10u) + (unsigned)d;
    }
    return p;
}

/* Whether the NUL-terminated `needle` occurs in d[0..n). */
static int vmi__memfind(const uint8_t *d, size_t n, const char *needle) {
    size_t k = strlen(needle), i;
    for (i = 0; i + k <= n; i++)
        if (d[i] == (uint8_t)needle[0] && !memcmp(d + i, needle, k)) return 1;
    return 0;
}

static vmi_status vmi__adopt_types(vmi_instance *vmi, vmi_status st, vmi__types *t, const char *source) {
    if (st != VMI_OK) return vmi__fail(vmi, st, "%s: %s", source, vmi->err);
    if (vmi->types) vmi__types_free(vmi->types);
    vmi->types = t;
    vmi->os.ntypes = vmi__types_count(t);
    vmi__set_source(vmi->os.types_source, source);
    return VMI_OK;
}

VMI_API vmi_status vmi_load_profile_mem(vmi_instance *vmi, const void *data, size_t len) {
    const uint8_t *d = (const uint8_t *)data, *btf;
    size_t i = 0, blen;
    vmi__types *t = NULL;
    vmi__symtab *syms = NULL;
    vmi_status st;
    VMI_ASSERT(vmi && (data || !len));
    while (i < len && i < 64 && (d[i] == ' ' || d[i] == '\t' || d[i] == '\r' || d[i] == '\n')) i++;
    if (len >= 4 && d[0] == 0x9f && d[1] == 0xeb) {
        st = vmi__types_from_btf(&vmi->alloc, d, len, &t, vmi->err, sizeof vmi->err);
        return vmi__adopt_types(vmi, st, t, "BTF profile");
    }
    if (vmi__elf_btf(d, len, &btf, &blen)) {
        st = vmi__types_from_btf(&vmi->alloc, btf, blen, &t, vmi->err, sizeof vmi->err);
        return vmi__adopt_types(vmi, st, t, "BTF from a vmlinux ELF");
    }
    if (i < len && d[i] == '{') {
        st = vmi__types_from_isf(&vmi->alloc, (const char *)d, len, &t, vmi->err, sizeof vmi->err);
        return vmi__adopt_types(vmi, st, t, "ISF profile");
    }
    if (vmi__memfind(d, len, "linux_tasks") || vmi__memfind(d, len, "win_tasks"))
        return vmi__load_libvmi(vmi, (const char *)d, len);
    if ((st = vmi__symtab_from_sysmap(vmi, (const char *)d, len, &syms)) != VMI_OK)
        return vmi__fail(vmi, st, "profile is not BTF, a vmlinux ELF, ISF JSON or a System.map: %s", vmi->err);
    if (vmi->psyms) vmi__symtab_free(vmi, vmi->psyms);
    vmi->psyms = syms;
    vmi->profile_slide = 0;
    return VMI_OK;
}

VMI_API vmi_status vmi_load_profile(vmi_instance *vmi, const char *path) {
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t cap = 1 << 20, n = 0;
    vmi_status st;
    if (!f) return vmi__fail(vmi, VMI_ERR_IO, "%s: cannot open", path);
    for (;;) {
        uint8_t *nb;
        if (!buf || n == cap) {
            if (buf) cap *= 2;
            if (cap > VMI__PROFILE_MAX) { st = vmi__fail(vmi, VMI_ERR_LIMIT, "%s: larger than 1 GiB", path); goto out; }
            nb = (uint8_t *)vmi__alloc(vmi, cap);
            if (!nb) { st = vmi__fail(vmi, VMI_ERR_NOMEM, "%s: %zu bytes", path, cap); goto out; }
            if (buf) memcpy(nb, buf, n);
            vmi__free(vmi, buf);
            buf = nb;
        }
        {
            size_t got = fread(buf + n, 1, cap - n, f);
            n += got;
            if (got == 0) break;
        }
    }
    if (ferror(f)) { st = vmi__fail(vmi, VMI_ERR_IO, "%s: read error", path); goto out; }
    st = vmi_load_profile_mem(vmi, buf, n);
    if (st != VMI_OK) vmi__fail(vmi, st, "%s: %s", path, vmi->err);
out:
    vmi__free(vmi, buf);
    fclose(f);
    return st;
}

/* "mm_struct.pgd" with member NULL means type "mm_struct", member "pgd". */
VMI_API vmi_status vmi_member(vmi_instance *vmi, const char *type, const char *member,
                              uint64_t *bit_offset, uint32_t *bit_size, uint64_t *size) {
    char tbuf[128];
    vmi_status st;
    if (!vmi->types) return vmi__fail(vmi, VMI_ERR_NOT_FOUND, "no type information (no BTF found, no profile loaded)");
    if (!member) {
        const char *dot = strchr(type, '.');
        if (!dot || (size_t)(dot - type) >= sizeof tbuf)
            return vmi__fail(vmi, VMI_ERR_ARG, "\"%s\" is not TYPE.MEMBER", type);
        memcpy(tbuf, type, (size_t)(dot - type));
        tbuf[dot - type] = 0;
        type = tbuf;
        member = dot + 1;
    }
    st = vmi__types_member(vmi->types, type, member, bit_offset, bit_size, size);
    return st == VMI_OK ? st : vmi__fail(vmi, st, "%s.%s: no such member", type, member);
}

VMI_API vmi_status vmi_offset(vmi_instance *vmi, const char *type, const char *member, uint64_t *offset) {
    uint64_t bits, size;
    uint32_t width;
    vmi_status st = vmi_member(vmi, type, member, &bits, &width, &size);
    *offset = st == VMI_OK ? bits / 8 : 0;
    return st;
}

VMI_API vmi_status vmi_type_size(vmi_instance *vmi, const char *type, uint64_t *size) {
    vmi_status st;
    if (!vmi->types) return vmi__fail(vmi, VMI_ERR_NOT_FOUND, "no type information (no BTF found, no profile loaded)");
    st = vmi__types_size(vmi->types, type, size);
    return st == VMI_OK ? st : vmi__fail(vmi, st, "type %s: not found or incomplete", type);
}

/* The VMCOREINFO value of `key` ("SYMBOL(prb)") parsed in `base`. */
static int vmi__vmcoreinfo_u64(const vmi_instance *vmi, const char *key, int base, uint64_t *out) {
    const char *p = vmi->vmcoreinfo;
    size_t klen = strlen(key);
    while (p && *p) {
        if (!strncmp(p, key, klen) && p[klen] == '=') {
            char *end;
            *out = (uint64_t)strtoull(p + klen + 1, &end, base);
            return end != p + klen + 1;
        }
        p = strchr(p, '\n');
        if (p) p++;
    }
    return 0;
}

static int vmi__lx_found_sym(const vmi_instance *vmi, const char *name, uint64_t *va);

/* Symbols, in order of trust: recovered kallsyms, a System.map, an ISF's
   symbols (both slid by the KASLR offset), VMCOREINFO's SYMBOL() lines. */
VMI_API vmi_status vmi_ksym(vmi_instance *vmi, const char *name, uint64_t *va) {
    char type, key[160];
    if (vmi->ksyms && vmi__symtab_find(vmi->ksyms, name, va, &type) == VMI_OK) return VMI_OK;
    if (vmi->psyms && vmi__symtab_find(vmi->psyms, name, va, &type) == VMI_OK) return VMI_OK;
    if (vmi->types && vmi->os.os != VMI_OS_WINDOWS && vmi__types_symbol(vmi->types, name, va) == VMI_OK) {
        *va += vmi->profile_slide;
        return VMI_OK;
    }
    snprintf(key, sizeof key, "SYMBOL(%s)", name);
    if (vmi__vmcoreinfo_u64(vmi, key, 16, va)) return VMI_OK;
    if (vmi__lx_found_sym(vmi, name, va)) return VMI_OK;
    *va = 0;
    return vmi__fail(vmi, VMI_ERR_NOT_FOUND, "symbol %s not found", name);
}

VMI_API vmi_status vmi_ksym_lookup(vmi_instance *vmi, uint64_t va, char *name, size_t cap, uint64_t *offset) {
    const vmi__symtab *s = vmi->ksyms ? vmi->ksyms : vmi->psyms;
    const char *n;
    if (!s || vmi__symtab_nearest(s, va, &n, offset) != VMI_OK)
        return vmi__fail(vmi, VMI_ERR_NOT_FOUND, "no symbol at or below 0x%llx", (unsigned long long)va);
    if (cap) snprintf(name, cap, "%s", n);
    return VMI_OK;
}

VMI_API vmi_status vmi_foreach_ksym(vmi_instance *vmi, vmi_ksym_fn fn, void *user) {
    const vmi__symtab *s = vmi->ksyms ? vmi->ksyms : vmi->psyms;
    size_t i, n = vmi__symtab_count(s);
    if (!s) return vmi__fail(vmi, VMI_ERR_NOT_FOUND, "no symbols (kallsyms not found, no System.map loaded)");
    for (i = 0; i < n; i++) {
        const char *name;
        uint64_t addr;
        char type;
        vmi__symtab_get(s, i, &name, &addr, &type);
        if (fn(user, name, addr, type)) break;
    }
    return VMI_OK;
}

static int vmi__win_isf_meta(vmi_instance *vmi, char *buf, size_t cap, uint64_t *base, uint64_t *size,
                             vmi__types **empty); /* >>windows */

/* Windows writes what Volatility3's Windows ISFs hold: symbols as RVAs
   from the kernel base (those outside the image are left out) and the
   PDB's GUID, age and name, which tie the file to this kernel. With no
   profile loaded the types are the base types alone. */
VMI_API vmi_status vmi_write_isf(vmi_instance *vmi, int (*write_fn)(void *user, const char *s, size_t n), void *user) {
    const vmi__symtab *s = vmi->ksyms ? vmi->ksyms : vmi->psyms;
    size_t i, n = vmi__symtab_count(s);
    const char **names;
    uint64_t *addrs, kbase = 0, ksize = 0;
    vmi__types *empty = NULL;
    char meta[256];
    int win = vmi->os.os == VMI_OS_WINDOWS && vmi__win_isf_meta(vmi, meta, sizeof meta, &kbase, &ksize, &empty);
    vmi_status st;
    if (!vmi->types && !empty) return vmi__fail(vmi, VMI_ERR_NOT_FOUND, "no type information to export");
    names = (const char **)vmi__alloc(vmi, (n + 1) * sizeof *names);
    addrs = (uint64_t *)vmi__alloc(vmi, (n + 1) * sizeof *addrs);
    if (!names || !addrs) {
        vmi__free(vmi, (void *)names);
        vmi__free(vmi, addrs);
        if (empty) vmi__types_free(empty);
        return vmi__fail(vmi, VMI_ERR_NOMEM, "ISF export of %zu symbols", n);
    }
    /* ISF symbols are link-time addresses: take the KASLR offset out. */
    for (i = 0; i < n; i++) {
        char type;
        vmi__symtab_get(s, i, &names[i], &addrs[i], &type);
        if (win && addrs[i] - kbase >= ksize) names[i] = NULL;
        else if (win) addrs[i] -= kbase;
        else if (type != 'A' && type != 'a') addrs[i] -= vmi->os.kaslr_offset;
    }
    st = vmi__types_write_isf(vmi->types ? vmi->types : empty, win ? meta : NULL, names, addrs, n, write_fn, user);
    vmi__free(vmi, (void *)names);
    vmi__free(vmi, addrs);
    if (empty) vmi__types_free(empty);
    return st == VMI_OK ? st : vmi__fail(vmi, st, "ISF export failed");
}

/* >>scan =================================================================== */
/* Calls hit(pa) for every place in guest-physical memory where `needle`
   starts at a multiple of `align`; stops when hit returns nonzero. Ranges
   without a host mapping are read in chunks that overlap by the needle. */
#define VMI__SCAN_CHUNK (4u << 20)

typedef int (*vmi__scan_fn)(vmi_instance *vmi, uint64_t pa, const uint8_t *at, size_t avail, void *user);

static vmi_status vmi__scan_phys(vmi_instance *vmi, const void *needle, size_t n, unsigned align,
                                 vmi__scan_fn hit, void *user) {
    const uint8_t *nd = (const uint8_t *)needle;
    uint8_t *chunk = NULL;
    size_t ri;
    int stop = 0;
    for (ri = 0; ri < vmi->be.nranges && !stop; ri++) {
        const vmi_mem_range *r = &vmi->be.ranges[ri];
        uint64_t base = 0;
        while (base < r->size && !stop) {
            size_t span = (size_t)vmi__min64(r->host ? r->size : VMI__SCAN_CHUNK, r->size - base), want = span, i = 0;
            const uint8_t *p = (const uint8_t *)r->host;
            if (p) p += base;
            else {
                if (!chunk && !(chunk = (uint8_t *)vmi__alloc(vmi, VMI__SCAN_CHUNK)))
                    return vmi__fail(vmi, VMI_ERR_NOMEM, "scan buffer");
                if (vmi->be.read_pa(vmi->be.ctx, r->pa + base, chunk, span) != VMI_OK) want = 0; /* skip the chunk */
                p = chunk;
            }
            while (want >= n && i <= want - n && !stop) {
                const uint8_t *q = (const uint8_t *)memchr(p + i, nd[0], want - n + 1 - i);
                if (!q) break;
                i = (size_t)(q - p);
                if (((r->pa + base + i) % align) == 0 && !memcmp(q, nd, n))
                    stop = hit(vmi, r->pa + base + i, q, want - i, user);
                i++;
            }
            if (base + span >= r->size || span < n) base = r->size;
            else base += span - (n - 1);
        }
    }
    vmi__free(vmi, chunk);
    return VMI_OK;
}

/* >>linux ================================================================== */
/* Finding a Linux kernel with nothing given, and its processes, modules and
   log. Offsets come from the type information (BTF, ISF), symbols from
   kallsyms, a System.map, an ISF or VMCOREINFO. Every guest pointer is
   checked by the reads that use it; every list walk is capped and
   cycle-checked. */

#define VMI__MAX_TASKS (1u << 22) /* PID_MAX_LIMIT */
#define VMI__MAX_MODULES 65536u

/* Offsets the views use, resolved once. -1: the kernel has no such member. */
struct vmi__linux {
    int64_t task_tasks, task_pid, task_tgid, task_comm, task_real_parent, task_mm, task_real_cred,
        task_state, task_exit_state, task_flags, task_start_boottime, task_signal, task_thread_node;
    int64_t mm_pgd, mm_arg_start, mm_arg_end, cred_uid, cred_euid, signal_nr_threads, signal_thread_head;
    int64_t mod_list, mod_name, mod_base, mod_size, mod_init_size, mod_state;
    uint64_t state_size, init_task, modules;
    uint64_t cfg_init_task; /* LibVMI linux_init_task: a link-time address */
    int resolved, from_config;
};

static vmi__linux *vmi__lx_get(vmi_instance *vmi) {
    size_t i;
    if (vmi->lx || !(vmi->lx = (vmi__linux *)vmi__alloc(vmi, sizeof *vmi->lx))) return vmi->lx;
    for (i = 0; i < offsetof(vmi__linux, state_size) / sizeof(int64_t); i++) ((int64_t *)vmi->lx)[i] = -1;
    return vmi->lx;
}

/* LibVMI's libvmi.conf offsets ("linux_tasks = 0x2f8;" ...), for users who
   bring their config: enough for processes without any type information. */
static const struct {
    const char *key;
    size_t at;
} vmi__libvmi_keys[] = {
    {"linux_tasks", offsetof(vmi__linux, task_tasks)}, {"linux_mm", offsetof(vmi__linux, task_mm)},
    {"linux_pid", offsetof(vmi__linux, task_pid)},     {"linux_name", offsetof(vmi__linux, task_comm)},
    {"linux_pgd", offsetof(vmi__linux, mm_pgd)},
};

static int vmi__win_config(vmi_instance *vmi, const char *key, uint64_t v);

static vmi_status vmi__load_libvmi(vmi_instance *vmi, const char *text, size_t len) {
    vmi__linux *lx = vmi__lx_get(vmi);
    size_t i, k, found = 0, win = 0;
    if (!lx) return vmi__fail(vmi, VMI_ERR_NOMEM, "Linux state");
    for (i = 0; i < len;) {
        char key[32];
        const char *end;
        size_t n = 0;
        uint64_t v;
        while (i < len && (text[i] == '_' || (text[i] >= 'a' && text[i] <= 'z') || (text[i] >= '0' && text[i] <= '9'))) {
            if (n + 1 < sizeof key) key[n++] = text[i];
            i++;
        }
        key[n] = 0;
        if (!n) { i++; continue; }
        while (i < len && (text[i] == ' ' || text[i] == '\t')) i++;
        if (i >= len || text[i] != '=') continue;
        for (i++; i < len && (text[i] == ' ' || text[i] == '\t'); i++) {}
        if (i >= len || text[i] < '0' || text[i] > '9') continue;
        end = vmi__parse_u64(text + i, text + len, &v);
        i = (size_t)(end - text);
        for (k = 0; k < sizeof vmi__libvmi_keys / sizeof vmi__libvmi_keys[0]; k++)
            if (!strcmp(key, vmi__libvmi_keys[k].key)) *(int64_t *)((char *)lx + vmi__libvmi_keys[k].at) = (int64_t)v, found++;
        if (!strcmp(key, "linux_init_task")) lx->cfg_init_task = v, found++;
        if (!strncmp(key, "win_", 4)) win += (size_t)vmi__win_config(vmi, key, v);
    }
    if (win && !found) return VMI_OK;
    if (!found) return vmi__fail(vmi, VMI_ERR_FORMAT, "LibVMI config: no linux_* or win_* offsets");
    lx->from_config = 1;
    lx->resolved = 0;
    return VMI_OK;
}

/* Data symbols vmi_os_init or vmi_foreach_module found by their structure. */
static int vmi__lx_found_sym(const vmi_instance *vmi, const char *name, uint64_t *va) {
    if (!vmi->lx) return 0;
    if (!strcmp(name, "init_task")) *va = vmi->lx->init_task;
    else if (!strcmp(name, "modules")) *va = vmi->lx->modules;
    else return 0;
    return *va != 0;
}

typedef struct vmi__lx_spec {
    const char *type, *member;
    size_t at; /* offsetof in vmi__linux */
    int required;
} vmi__lx_spec;

/* The first of several spellings that exists (fields renamed across
   kernel versions). */
static const vmi__lx_spec vmi__lx_fields[] = {
    {"task_struct", "tasks", offsetof(vmi__linux, task_tasks), 1},
    {"task_struct", "pid", offsetof(vmi__linux, task_pid), 1},
    {"task_struct", "tgid", offsetof(vmi__linux, task_tgid), 0},
    {"task_struct", "comm", offsetof(vmi__linux, task_comm), 1},
    {"task_struct", "real_parent", offsetof(vmi__linux, task_real_parent), 0},
    {"task_struct", "mm", offsetof(vmi__linux, task_mm), 1},
    {"task_struct", "real_cred", offsetof(vmi__linux, task_real_cred), 0},
    {"task_struct", "__state", offsetof(vmi__linux, task_state), 0},
    {"task_struct", "state", offsetof(vmi__linux, task_state), 0},
    {"task_struct", "exit_state", offsetof(vmi__linux, task_exit_state), 0},
    {"task_struct", "flags", offsetof(vmi__linux, task_flags), 0},
    {"task_struct", "start_boottime", offsetof(vmi__linux, task_start_boottime), 0},
    {"task_struct", "real_start_time", offsetof(vmi__linux, task_start_boottime), 0},
    {"task_struct", "signal", offsetof(vmi__linux, task_signal), 0},
    {"task_struct", "thread_node", offsetof(vmi__linux, task_thread_node), 0},
    {"mm_struct", "pgd", offsetof(vmi__linux, mm_pgd), 1},
    {"mm_struct", "arg_start", offsetof(vmi__linux, mm_arg_start), 0},
    {"mm_struct", "arg_end", offsetof(vmi__linux, mm_arg_end), 0},
    {"cred", "uid", offsetof(vmi__linux, cred_uid), 0},
    {"cred", "euid", offsetof(vmi__linux, cred_euid), 0},
    {"signal_struct", "nr_threads", offsetof(vmi__linux, signal_nr_threads), 0},
    {"signal_struct", "thread_head", offsetof(vmi__linux, signal_thread_head), 0},
    {"module", "list", offsetof(vmi__linux, mod_list), 0},
    {"module", "name", offsetof(vmi__linux, mod_name), 0},
    {"module", "core_layout.base", offsetof(vmi__linux, mod_base), 0},
    {"module", "mem.base", offsetof(vmi__linux, mod_base), 0},
    {"module", "core_layout.size", offsetof(vmi__linux, mod_size), 0},
    {"module", "mem.size", offsetof(vmi__linux, mod_size), 0},
    {"module", "init_layout.size", offsetof(vmi__linux, mod_init_size), 0},
    {"module", "state", offsetof(vmi__linux, mod_state), 0},
};

static vmi_status vmi__lx_resolve(vmi_instance *vmi) {
    vmi__linux *lx = vmi->lx;
    size_t i;
    uint64_t bits, size;
    uint32_t width;
    if (lx->resolved) return VMI_OK;
    for (i = 0; i < sizeof vmi__lx_fields / sizeof vmi__lx_fields[0] && vmi->types; i++) {
        const vmi__lx_spec *f = &vmi__lx_fields[i];
        int64_t *dst = (int64_t *)((char *)lx + f->at);
        if (*dst >= 0) continue; /* set by a LibVMI config, or an earlier spelling */
        if (vmi__types_member(vmi->types, f->type, f->member, &bits, &width, &size) == VMI_OK) {
            *dst = (int64_t)(bits / 8);
            if (f->at == offsetof(vmi__linux, task_state)) lx->state_size = size;
        }
    }
    for (i = 0; i < sizeof vmi__lx_fields / sizeof vmi__lx_fields[0]; i++) {
        const vmi__lx_spec *f = &vmi__lx_fields[i];
        if (f->required && *(int64_t *)((char *)lx + f->at) < 0)
            return vmi__fail(vmi, VMI_ERR_NOT_FOUND, "%s lacks %s.%s",
                             vmi->types ? "type information" : "the LibVMI offsets", f->type, f->member);
    }
    lx->resolved = 1;
    return VMI_OK;
}

/* Reads an unsigned field of `size` bytes (1-8) at va in the kernel. */
static vmi_status vmi__kread(vmi_instance *vmi, uint64_t va, unsigned size, uint64_t *out) {
    return vmi__read_le_va(vmi, vmi->paging.dtb, va, size, out);
}

static vmi_status vmi__kptr(vmi_instance *vmi, uint64_t va, uint64_t *out) {
    return vmi_read_addr(vmi, vmi->paging.dtb, va, out);
}

/* Walks a circular list_head chain from `head` (not itself an element),
   calling fn(node) for every other node. Capped at `cap` nodes; a cycle
   that does not come back to the head (a torn read, a rootkit) is caught
   by Brent's method within twice its length. `good` (optional): how many
   entries come before the chain breaks, each counted once (all of them
   when it does not break). */
typedef int (*vmi__node_fn)(vmi_instance *vmi, uint64_t node, void *user);

/* Entries of a chain whose cycle `mark` lies on, before the first repeat:
   the tail (mu, from the head) and the cycle (lambda), less the head. Each
   loop is capped; 0 when a read fails after all. */
static uint64_t vmi__list_distinct(vmi_instance *vmi, uint64_t dtb, uint64_t head, uint64_t mark, uint64_t cap) {
    uint64_t a = mark, b = head, lam = 0, mu = 0, i;
    do
        if (++lam > cap || vmi_read_addr(vmi, dtb, a, &a) != VMI_OK) return 0;
    while (a != mark);
    for (i = 0; i < lam; i++) /* b runs lambda entries ahead */
        if (vmi_read_addr(vmi, dtb, b, &b) != VMI_OK) return 0;
    for (a = head; a != b; mu++) /* and meets the tail at the cycle's first entry */
        if (mu > cap || vmi_read_addr(vmi, dtb, a, &a) != VMI_OK || vmi_read_addr(vmi, dtb, b, &b) != VMI_OK) return 0;
    return mu + lam - 1;
}

static vmi_status vmi__list_pass(vmi_instance *vmi, uint64_t dtb, uint64_t head, uint64_t cap, vmi__node_fn fn,
                                  void *user, uint64_t *good) {
    uint64_t node, mark = head, steps = 0, power = 1, lam = 0;
    vmi_status st = vmi_read_addr(vmi, dtb, head, &node);
    if (good) *good = 0;
    while (st == VMI_OK && node != head) {
        if (++steps > cap) {
            if (good) *good = cap;
            return vmi__fail(vmi, VMI_ERR_LIMIT, "list at 0x%llx: more than %llu entries", (unsigned long long)head,
                             (unsigned long long)cap);
        }
        if (node == mark) {
            if (good) *good = vmi__list_distinct(vmi, dtb, head, mark, cap);
            return vmi__fail(vmi, VMI_ERR_LIMIT, "list at 0x%llx: cycle at 0x%llx that misses the head",
                             (unsigned long long)head, (unsigned long long)node);
        }
        if (++lam == power) { /* Brent: move the mark every power of two */
            mark = node;
            power <<= 1;
            lam = 0;
        }
        if (fn && fn(vmi, node, user)) return VMI_OK;
        st = vmi_read_addr(vmi, dtb, node, &node);
    }
    if (good) *good = steps;
    return st == VMI_OK ? VMI_OK : vmi__fail(vmi, st, "list at 0x%llx broken after %llu entries: %s",
                                              (unsigned long long)head, (unsigned long long)steps, vmi->err);
}

/* The chain is checked whole before any callback, so a caller never sees
   the entries a cycle would repeat. `dtb`: the address space the list lives
   in (a process's, for Windows's loader lists). */
static vmi_status vmi__list_walk_in(vmi_instance *vmi, uint64_t dtb, uint64_t head, uint64_t cap, vmi__node_fn fn,
                                    void *user) {
    vmi_status st = vmi__list_pass(vmi, dtb, head, cap, NULL, NULL, NULL);
    return st == VMI_OK ? vmi__list_pass(vmi, dtb, head, cap, fn, user, NULL) : st;
}

static vmi_status vmi__list_walk(vmi_instance *vmi, uint64_t head, uint64_t cap, vmi__node_fn fn, void *user) {
    return vmi__list_walk_in(vmi, vmi->paging.dtb, head, cap, fn, user);
}

typedef struct vmi__list_upto {
    vmi__node_fn fn;
    void *user;
    uint64_t left;
} vmi__list_upto;

static int vmi__list_upto_node(vmi_instance *vmi, uint64_t node, void *user) {
    vmi__list_upto *u = (vmi__list_upto *)user;
    int stop = u->fn(vmi, node, u->user);
    return stop || !--u->left;
}

/* For lists whose entries are worth having even when the chain breaks
   (a thread list): fn sees the entries before the break, each once, and
   the chain's status comes back, with its message. */
static vmi_status vmi__list_walk_prefix(vmi_instance *vmi, uint64_t head, uint64_t cap, vmi__node_fn fn, void *user) {
    vmi__list_upto u;
    char err[VMI__ERR_MAX];
    vmi_status st = vmi__list_pass(vmi, vmi->paging.dtb, head, cap, NULL, NULL, &u.left);
    memcpy(err, vmi->err, sizeof err);
    u.fn = fn, u.user = user;
    if (u.left) vmi__list_pass(vmi, vmi->paging.dtb, head, cap, vmi__list_upto_node, &u, NULL);
    if (st != VMI_OK) memcpy(vmi->err, err, sizeof err);
    return st;
}

/* fs/proc/array.c: task_state_index(), "RSDTtXZPI". */
static char vmi__lx_state_letter(uint64_t state, uint64_t exit_state) {
    static const char letters[] = "RSDTtXZPI";
    uint64_t s = (state | exit_state) & 0x7f;
    unsigned i = 0;
    if (state == 0x402) s = 0x80; /* TASK_IDLE */
    if (state == 0x1000) s = 0x2; /* TASK_RTLOCK_WAIT shows as D */
    while (s) { i++; s >>= 1; }
    return letters[i < sizeof letters - 1 ? i : 0];
}

static uint64_t vmi__lx_field(vmi_instance *vmi, uint64_t base, int64_t off, unsigned size) {
    uint64_t v = 0;
    if (off >= 0) vmi__kread(vmi, base + (uint64_t)off, size, &v);
    return v;
}

/* Page-table root of an address space: mm->pgd is a kernel VA. */
static uint64_t vmi__lx_dtb(vmi_instance *vmi, uint64_t mm) {
    uint64_t pgd = 0, pa = 0, avail;
    if (!mm || vmi__kptr(vmi, mm + (uint64_t)vmi->lx->mm_pgd, &pgd) != VMI_OK) return vmi->paging.dtb;
    if (vmi__translate(vmi, vmi->paging.dtb, pgd, &pa, &avail) != VMI_OK) return vmi->paging.dtb;
    return pa;
}

static vmi_status vmi__lx_task(vmi_instance *vmi, uint64_t task, vmi_process *p) {
    const vmi__linux *lx = vmi->lx;
    unsigned w = vmi_addr_width(vmi);
    uint64_t v, parent, mm, cred, sig;
    memset(p, 0, sizeof *p);
    p->task = task;
    if (vmi__kread(vmi, task + (uint64_t)lx->task_pid, 4, &v) != VMI_OK) return VMI_ERR_NOT_PRESENT;
    p->pid = (int32_t)v;
    p->tgid = lx->task_tgid >= 0 ? (int32_t)vmi__lx_field(vmi, task, lx->task_tgid, 4) : p->pid;
    vmi_read_va(vmi, vmi->paging.dtb, task + (uint64_t)lx->task_comm, p->name, 16, NULL);
    p->name[16] = 0;
    parent = vmi__lx_field(vmi, task, lx->task_real_parent, w);
    p->ppid = parent && parent != task ? (int32_t)vmi__lx_field(vmi, parent, lx->task_tgid, 4) : 0;
    p->state = vmi__lx_state_letter(vmi__lx_field(vmi, task, lx->task_state, (unsigned)(lx->state_size ? lx->state_size : 4)),
                                    vmi__lx_field(vmi, task, lx->task_exit_state, 4));
    cred = vmi__lx_field(vmi, task, lx->task_real_cred, w);
    if (cred) {
        p->uid = (uint32_t)vmi__lx_field(vmi, cred, lx->cred_uid, 4);
        p->euid = (uint32_t)vmi__lx_field(vmi, cred, lx->cred_euid, 4);
    }
    sig = vmi__lx_field(vmi, task, lx->task_signal, w);
    p->threads = sig ? (uint32_t)vmi__lx_field(vmi, sig, lx->signal_nr_threads, 4) : 1;
    p->start_time_ns = vmi__lx_field(vmi, task, lx->task_start_boottime, 8);
    p->kernel_thread = (vmi__lx_field(vmi, task, lx->task_flags, 4) & 0x00200000u) != 0; /* PF_KTHREAD */
    mm = vmi__lx_field(vmi, task, lx->task_mm, w);
    p->dtb = vmi__lx_dtb(vmi, mm);
    return VMI_OK;
}

typedef struct vmi__lx_walk {
    vmi_process_fn fn;
    void *user;
    int threads, stop;
    vmi_status st;
} vmi__lx_walk;

static int vmi__lx_thread(vmi_instance *vmi, uint64_t node, void *user) {
    vmi__lx_walk *w = (vmi__lx_walk *)user;
    vmi_process p;
    if (vmi__lx_task(vmi, node - (uint64_t)vmi->lx->task_thread_node, &p) != VMI_OK) return 0;
    return w->stop = w->fn(w->user, &p);
}

/* One thread-group leader, and with `threads` its other threads. */
static int vmi__lx_leader(vmi_instance *vmi, uint64_t task, vmi__lx_walk *w) {
    const vmi__linux *lx = vmi->lx;
    vmi_process p;
    uint64_t sig;
    if (vmi__lx_task(vmi, task, &p) != VMI_OK) return 0; /* unreadable entry: skipped */
    if (!w->threads || p.threads <= 1 || lx->signal_thread_head < 0 || lx->task_thread_node < 0)
        return w->stop = w->fn(w->user, &p);
    sig = vmi__lx_field(vmi, task, lx->task_signal, vmi_addr_width(vmi));
    w->st = vmi__list_walk(vmi, sig + (uint64_t)lx->signal_thread_head, 1u << 16, vmi__lx_thread, w);
    return w->stop || w->st != VMI_OK;
}

static int vmi__lx_task_node(vmi_instance *vmi, uint64_t node, void *user) {
    return vmi__lx_leader(vmi, node - (uint64_t)vmi->lx->task_tasks, (vmi__lx_walk *)user);
}

static vmi_status vmi__lx_ready(vmi_instance *vmi) {
    if (vmi->os.os != VMI_OS_LINUX || !vmi->lx)
        return vmi__fail(vmi, VMI_ERR_NOT_FOUND, "no Linux kernel found (call vmi_os_init first)");
    if (!vmi->types && !vmi->lx->from_config)
        return vmi__fail(vmi, VMI_ERR_NOT_FOUND, "no type information: load a BTF, ISF or LibVMI profile");
    return vmi__lx_resolve(vmi);
}

static vmi_status vmi__lx_foreach_process(vmi_instance *vmi, int threads, vmi_process_fn fn, void *user) {
    vmi__lx_walk w;
    vmi_status st;
    if ((st = vmi__lx_ready(vmi)) != VMI_OK) return st;
    if (!vmi->lx->init_task) return vmi__fail(vmi, VMI_ERR_NOT_FOUND, "init_task not found");
    memset(&w, 0, sizeof w);
    w.fn = fn, w.user = user, w.threads = threads;
    vmi__tick(vmi);
    if (vmi__lx_leader(vmi, vmi->lx->init_task, &w)) return w.st; /* the idle task, pid 0 */
    st = vmi__list_walk(vmi, vmi->lx->init_task + (uint64_t)vmi->lx->task_tasks, VMI__MAX_TASKS, vmi__lx_task_node, &w);
    return st != VMI_OK ? st : w.st;
}

typedef struct vmi__pid_find {
    int64_t pid;
    vmi_process *out;
    int found;
} vmi__pid_find;

static int vmi__pid_match(void *user, const vmi_process *p) {
    vmi__pid_find *f = (vmi__pid_find *)user;
    if (p->pid != f->pid) return 0;
    *f->out = *p;
    return f->found = 1;
}

VMI_API vmi_status vmi_process_by_pid(vmi_instance *vmi, int64_t pid, vmi_process *out) {
    vmi__pid_find f;
    vmi_status st;
    f.pid = pid, f.out = out, f.found = 0;
    if ((st = vmi_foreach_process(vmi, 1, vmi__pid_match, &f)) != VMI_OK) return st;
    return f.found ? VMI_OK : vmi__fail(vmi, VMI_ERR_NOT_FOUND, "no process with pid %lld", (long long)pid);
}

/* x86_64: current_task is a per-CPU variable (pcpu_hot.current_task from
   6.2); its per-CPU base is GS in kernel mode, KERNEL_GS_BASE in user mode. */
static vmi_status vmi__current_task(vmi_instance *vmi, const vmi_regs *r, uint64_t *task) {
    uint64_t off, base;
    if (r->arch == VMI_ARCH_AARCH64) {
        if (((r->arm64.pstate >> 2) & 3) == 0)
            return vmi__fail(vmi, VMI_ERR_NOT_FOUND, "vCPU in EL0: SP_EL0 is a user stack");
        *task = r->arm64.sp_el0;
        return VMI_OK;
    }
    if (r->arch != VMI_ARCH_X86_64 || !(r->valid & VMI_REGS_SEGMENT))
        return vmi__fail(vmi, VMI_ERR_UNSUPPORTED, "current task: x86_64 and AArch64 only, with segment registers");
    if (vmi_ksym(vmi, "current_task", &off) != VMI_OK) {
        uint64_t member;
        if (vmi_ksym(vmi, "pcpu_hot", &off) != VMI_OK || vmi_offset(vmi, "pcpu_hot", "current_task", &member) != VMI_OK)
            return vmi__fail(vmi, VMI_ERR_NOT_FOUND, "neither current_task nor pcpu_hot.current_task is known");
        off += member;
    }
    base = (r->x86.cs & 3) ? r->x86.kernel_gs_base : r->x86.gs_base;
    return vmi__kptr(vmi, base + off, task);
}

static vmi_status vmi__win_current(vmi_instance *vmi, uint32_t vcpu, vmi_process *out); /* >>windows */

VMI_API vmi_status vmi_current_process(vmi_instance *vmi, uint32_t vcpu, vmi_process *out) {
    vmi_regs regs;
    uint64_t task;
    vmi_status st;
    memset(out, 0, sizeof *out);
    if (vmi->os.os == VMI_OS_WINDOWS) return vmi__win_current(vmi, vcpu, out);
    if ((st = vmi__lx_ready(vmi)) != VMI_OK || (st = vmi_get_regs(vmi, vcpu, &regs)) != VMI_OK ||
        (st = vmi__current_task(vmi, &regs, &task)) != VMI_OK)
        return st;
    if (vmi__lx_task(vmi, task, out) != VMI_OK)
        return vmi__fail(vmi, VMI_ERR_NOT_PRESENT, "vCPU %u: task at 0x%llx is unreadable", vcpu, (unsigned long long)task);
    return VMI_OK;
}

VMI_API vmi_status vmi_pid_to_dtb(vmi_instance *vmi, int64_t pid, uint64_t *dtb) {
    vmi_process p;
    vmi_status st = vmi_process_by_pid(vmi, pid, &p);
    *dtb = st == VMI_OK ? p.dtb : 0;
    return st;
}

VMI_API vmi_status vmi_read_pid(vmi_instance *vmi, int64_t pid, uint64_t va, void *buf, size_t len, size_t *done) {
    uint64_t dtb;
    vmi_status st = vmi_pid_to_dtb(vmi, pid, &dtb);
    if (done) *done = 0;
    return st == VMI_OK ? vmi_read_va(vmi, dtb, va, buf, len, done) : st;
}

VMI_API vmi_status vmi_write_pid(vmi_instance *vmi, int64_t pid, uint64_t va, const void *buf, size_t len, size_t *done) {
    uint64_t dtb;
    vmi_status st = vmi_pid_to_dtb(vmi, pid, &dtb);
    if (done) *done = 0;
    return st == VMI_OK ? vmi_write_va(vmi, dtb, va, buf, len, done) : st;
}

static vmi_status vmi__lx_cmdline(vmi_instance *vmi, const vmi_process *p, char *buf, size_t cap, size_t *len) {
    const vmi__linux *lx = vmi->lx;
    uint64_t mm, start, end;
    size_t n;
    vmi_status st;
    if (len) *len = 0;
    if ((st = vmi__lx_ready(vmi)) != VMI_OK) return st;
    if (lx->mm_arg_start < 0 || lx->mm_arg_end < 0) return vmi__fail(vmi, VMI_ERR_NOT_FOUND, "no mm_struct.arg_start");
    mm = vmi__lx_field(vmi, p->task, lx->task_mm, vmi_addr_width(vmi));
    if (!mm) return VMI_OK; /* kernel thread: empty, as /proc shows */
    start = vmi__lx_field(vmi, mm, lx->mm_arg_start, vmi_addr_width(vmi));
    end = vmi__lx_field(vmi, mm, lx->mm_arg_end, vmi_addr_width(vmi));
    if (end < start) return vmi__fail(vmi, VMI_ERR_FORMAT, "pid %lld: arg_end below arg_start", (long long)p->pid);
    n = (size_t)vmi__min64(end - start, cap);
    st = vmi_read_va(vmi, p->dtb, start, buf, n, len);
    if (st == VMI_OK && end - start > cap) return vmi__fail(vmi, VMI_ERR_LIMIT, "command line longer than %zu bytes", cap);
    return st;
}

typedef struct vmi__mod_walk {
    vmi_module_fn fn;
    void *user;
    uint64_t head;
} vmi__mod_walk;

static int vmi__lx_module(vmi_instance *vmi, uint64_t node, void *user) {
    vmi__mod_walk *w = (vmi__mod_walk *)user;
    const vmi__linux *lx = vmi->lx;
    unsigned aw = vmi_addr_width(vmi);
    vmi_module m;
    memset(&m, 0, sizeof m);
    m.addr = node - (uint64_t)lx->mod_list;
    vmi_read_va(vmi, vmi->paging.dtb, m.addr + (uint64_t)lx->mod_name, m.name, sizeof m.name - 1, NULL);
    m.name[sizeof m.name - 1] = 0;
    m.base = vmi__lx_field(vmi, m.addr, lx->mod_base, aw);
    m.size = vmi__lx_field(vmi, m.addr, lx->mod_size, 4) + vmi__lx_field(vmi, m.addr, lx->mod_init_size, 4);
    return w->fn(w->user, &m);
}

static void vmi__find_modules_head(vmi_instance *vmi);

static vmi_status vmi__lx_foreach_module(vmi_instance *vmi, vmi_module_fn fn, void *user) {
    vmi__mod_walk w;
    vmi_status st;
    if ((st = vmi__lx_ready(vmi)) != VMI_OK) return st;
    if (vmi->lx->mod_list < 0 || vmi->lx->mod_name < 0)
        return vmi__fail(vmi, VMI_ERR_NOT_FOUND, "type information lacks struct module");
    if (!vmi->lx->modules && vmi_ksym(vmi, "modules", &vmi->lx->modules) != VMI_OK) vmi__find_modules_head(vmi);
    if (!(w.head = vmi->lx->modules)) return vmi__fail(vmi, VMI_ERR_NOT_FOUND, "the kernel's module list was not found");
    w.fn = fn, w.user = user;
    vmi__tick(vmi);
    return vmi__list_walk(vmi, w.head, VMI__MAX_MODULES, vmi__lx_module, &w);
}

/* ---- finding the kernel ------------------------------------------------ */

/* VMCOREINFO: a backend note, else the ELF note the kernel keeps in its
   memory ("VMCOREINFO\0" after namesz 11, then "OSRELEASE=..."). */
/* With the paging known, the note of the running kernel names an _stext
   that is mapped. */
static int vmi__vmcoreinfo_live(vmi_instance *vmi) {
    uint64_t stext, pa, avail;
    if (vmi->paging.mode <= VMI_PAGING_OFF || !vmi__vmcoreinfo_u64(vmi, "SYMBOL(_stext)", 16, &stext)) return 1;
    return vmi__translate(vmi, vmi->paging.dtb, stext, &pa, &avail) == VMI_OK;
}

static int vmi__vmcoreinfo_hit(vmi_instance *vmi, uint64_t pa, const uint8_t *at, size_t avail, void *user) {
    uint8_t hdr[12];
    uint64_t descsz;
    char *text;
    (void)at, (void)avail, (void)user;
    if (pa < 12 || vmi__read_pa(vmi, pa - 12, hdr, 12, NULL) != VMI_OK) return 0;
    descsz = vmi__le(hdr + 4, 4);
    if (vmi__le(hdr, 4) != 11 || vmi__le(hdr + 8, 4) != 0 || descsz < 10 || descsz > 65536) return 0;
    if (!(text = (char *)vmi__alloc(vmi, (size_t)descsz + 1))) return 0;
    if (vmi__read_pa(vmi, pa + 12, text, (size_t)descsz, NULL) != VMI_OK || strncmp(text, "OSRELEASE=", 10)) {
        vmi__free(vmi, text);
        return 0;
    }
    vmi->vmcoreinfo = text;
    if (!vmi__vmcoreinfo_live(vmi)) { /* a previous kernel's note, left in RAM by a reboot */
        vmi->vmcoreinfo = NULL;
        vmi__free(vmi, text);
        return 0;
    }
    return 1;
}

static void vmi__find_vmcoreinfo(vmi_instance *vmi) {
    const void *data;
    size_t len;
    if (vmi->vmcoreinfo) return;
    if (vmi->be.get_note && vmi->be.get_note(vmi->be.ctx, "VMCOREINFO", &data, &len) == VMI_OK && len < 65536 &&
        (vmi->vmcoreinfo = (char *)vmi__alloc(vmi, len + 1)) != NULL) {
        memcpy(vmi->vmcoreinfo, data, len);
        return;
    }
    vmi__scan_phys(vmi, "VMCOREINFO\0", 11, 4, vmi__vmcoreinfo_hit, NULL);
}

/* The kernel image's VA - PA: from where kallsyms' tables lie physically
   and their symbol, from arm64's kimage_voffset, or through the page tables. */
static int vmi__image_offset(vmi_instance *vmi, uint64_t *off) {
    uint64_t va, pa, avail;
    const vmi__kallsyms_info *ks = vmi->ksyms ? vmi__symtab_kallsyms_info(vmi->ksyms) : NULL;
    if (ks && ks->token_table_pa && vmi_ksym(vmi, "kallsyms_token_table", &va) == VMI_OK) {
        *off = va - ks->token_table_pa;
        return 1;
    }
    if (vmi__vmcoreinfo_u64(vmi, "NUMBER(kimage_voffset)", 16, off)) return 1;
    if (vmi__vmcoreinfo_u64(vmi, "NUMBER(phys_base)", 10, &pa)) { /* x86_64: __START_KERNEL_map - phys_base */
        *off = 0xffffffff80000000ull - pa;
        return 1;
    }
    if (vmi->paging.mode > VMI_PAGING_OFF && vmi_ksym(vmi, "_stext", &va) == VMI_OK &&
        vmi__translate(vmi, vmi->paging.dtb, va, &pa, &avail) == VMI_OK) {
        *off = va - pa;
        return 1;
    }
    return 0;
}

/* A paging candidate is right when the kernel's text translates to where
   the image really is. */
static int vmi__paging_ok(vmi_instance *vmi, const vmi_paging *p, uint64_t image_off) {
    uint64_t stext, pa, avail;
    vmi_paging saved = vmi->paging;
    int ok;
    if (vmi_ksym(vmi, "_stext", &stext) != VMI_OK) return 0;
    vmi->paging = *p;
    vmi__paging_changed(vmi);
    ok = vmi__translate(vmi, p->dtb, stext, &pa, &avail) == VMI_OK && pa == stext - image_off;
    vmi->paging = saved;
    vmi__paging_changed(vmi);
    return ok;
}

/* AArch64 TCR from VMCOREINFO: VA bits and the page size. */
static uint64_t vmi__arm64_tcr(const vmi_instance *vmi) {
    uint64_t va_bits = 48, t1sz, page = 4096, tg0, tg1;
    vmi__vmcoreinfo_u64(vmi, "NUMBER(VA_BITS)", 10, &va_bits);
    if (!vmi__vmcoreinfo_u64(vmi, "NUMBER(TCR_EL1_T1SZ)", 16, &t1sz)) t1sz = 64 - va_bits;
    vmi__vmcoreinfo_u64(vmi, "PAGESIZE", 10, &page);
    tg0 = page == 65536 ? 1 : page == 16384 ? 2 : 0;
    tg1 = page == 65536 ? 3 : page == 16384 ? 1 : 2;
    return ((64 - va_bits) & 63) | (tg0 << 14) | ((t1sz & 63) << 16) | (tg1 << 30);
}

/* 1: x86, 2: ARM, 0: not known, from the target or the kernel's entry code. */
static int vmi__kernel_family(vmi_instance *vmi) {
    static const char *const x86[] = {"entry_SYSCALL_64", "entry_INT80_32", "do_int80_syscall_32"};
    static const char *const arm[] = {"vector_swi", "el0_svc", "__irq_svc", "el0t_64_sync"};
    uint64_t va;
    size_t i;
    char err[VMI__ERR_MAX];
    int family = 0;
    if (vmi->be.arch == VMI_ARCH_X86 || vmi->be.arch == VMI_ARCH_X86_64) return 1;
    if (vmi->be.arch == VMI_ARCH_ARM || vmi->be.arch == VMI_ARCH_AARCH64) return 2;
    memcpy(err, vmi->err, sizeof err); /* probing is not an error */
    for (i = 0; i < sizeof x86 / sizeof x86[0] && !family; i++)
        if (vmi_ksym(vmi, x86[i], &va) == VMI_OK) family = 1;
    for (i = 0; i < sizeof arm / sizeof arm[0] && !family; i++)
        if (vmi_ksym(vmi, arm[i], &va) == VMI_OK) family = 2;
    memcpy(vmi->err, err, sizeof err);
    return family;
}

/* No register gave the root (raw images, ARM cores): try each mode the
   kernel's word size allows with the root its symbols name. */
static vmi_status vmi__find_paging(vmi_instance *vmi, uint64_t image_off) {
    static const char *const roots[] = {"init_top_pgt", "swapper_pg_dir", "init_level4_pgt"};
    vmi_paging_mode modes[4];
    size_t nm = 0, r, m;
    uint64_t l5 = 0, va;
    const vmi__kallsyms_info *ks = vmi->ksyms ? vmi__symtab_kallsyms_info(vmi->ksyms) : NULL;
    unsigned ptr = ks ? ks->ptr_size : vmi->be.arch == VMI_ARCH_X86 || vmi->be.arch == VMI_ARCH_ARM ? 4 : 8;
    int family = vmi__kernel_family(vmi); /* ARM tables can pass for x86 ones */
    vmi__vmcoreinfo_u64(vmi, "NUMBER(pgtable_l5_enabled)", 10, &l5);
    if (ptr == 8) {
        if (family != 2 && l5) modes[nm++] = VMI_PAGING_LA57;
        if (family != 2) modes[nm++] = VMI_PAGING_IA32E;
        if (family != 1) modes[nm++] = VMI_PAGING_AARCH64;
    } else {
        if (family != 2) modes[nm++] = VMI_PAGING_PAE;
        if (family != 2) modes[nm++] = VMI_PAGING_LEGACY;
        if (family != 1) modes[nm++] = VMI_PAGING_LPAE;
        if (family != 1) modes[nm++] = VMI_PAGING_AARCH32;
    }
    for (r = 0; r < sizeof roots / sizeof roots[0]; r++) {
        if (vmi_ksym(vmi, roots[r], &va) != VMI_OK) continue;
        for (m = 0; m < nm; m++) {
            vmi_paging p;
            memset(&p, 0, sizeof p);
            p.mode = modes[m];
            p.dtb = va - image_off;
            if (p.mode == VMI_PAGING_AARCH64) p.tcr = vmi__arm64_tcr(vmi);
            if (p.mode != VMI_PAGING_LEGACY && p.mode != VMI_PAGING_AARCH32) p.flags = VMI_PAGING_NXE;
            if (vmi__paging_ok(vmi, &p, image_off)) {
                vmi_set_paging(vmi, &p);
                snprintf(vmi->os.paging_source, sizeof vmi->os.paging_source, "%s %s at pa 0x%llx",
                         vmi_paging_mode_name(p.mode), roots[r], (unsigned long long)p.dtb);
                return VMI_OK;
            }
        }
    }
    return vmi__fail(vmi, VMI_ERR_NO_PAGING, "no paging mode translates the kernel text (no usable %s symbol?)", roots[1]);
}

/* A CR3 taken while user code ran may be KPTI's user copy (one page above
   the kernel's) or carry PCID bits: the kernel half is what must work. */
static void vmi__fix_register_dtb(vmi_instance *vmi) {
    uint64_t stext, pa, avail, off;
    vmi_paging p = vmi->paging;
    if (vmi_ksym(vmi, "_stext", &stext) != VMI_OK) return;
    if (vmi__translate(vmi, p.dtb, stext, &pa, &avail) == VMI_OK) return;
    p.dtb &= ~0x1fffull;
    if (vmi__image_offset(vmi, &off) && vmi__paging_ok(vmi, &p, off)) {
        vmi_set_paging(vmi, &p);
        vmi__set_source(vmi->os.paging_source, "vCPU 0 registers, KPTI user bit cleared");
    }
}

/* BTF carved from memory: a header (magic, version 1, 24-byte header)
   whose sections fit and which parses; stale copies in freed memory fail. */
static int vmi__btf_hit(vmi_instance *vmi, uint64_t pa, const uint8_t *at, size_t avail, void *user) {
    uint8_t hdr[24];
    uint64_t total;
    uint8_t *blob;
    vmi__types *t = NULL;
    char err[64];
    (void)at, (void)avail, (void)user;
    if (vmi__read_pa(vmi, pa, hdr, 24, NULL) != VMI_OK || vmi__le(hdr + 4, 4) != 24) return 0;
    total = 24 + vmi__le(hdr + 8, 4) + vmi__le(hdr + 12, 4);                 /* types end */
    if (24 + vmi__le(hdr + 16, 4) + vmi__le(hdr + 20, 4) > total)             /* strings end */
        total = 24 + vmi__le(hdr + 16, 4) + vmi__le(hdr + 20, 4);
    if (total < 1024 || total > (64u << 20)) return 0;
    if (!(blob = (uint8_t *)vmi__alloc(vmi, (size_t)total))) return 0;
    if (vmi__read_pa(vmi, pa, blob, (size_t)total, NULL) == VMI_OK &&
        vmi__types_from_btf(&vmi->alloc, blob, (size_t)total, &t, err, sizeof err) == VMI_OK) {
        uint64_t size;
        if (vmi__types_size(t, "task_struct", &size) == VMI_OK) {
            char src[96];
            snprintf(src, sizeof src, "BTF found in memory at pa 0x%llx", (unsigned long long)pa);
            vmi__adopt_types(vmi, VMI_OK, t, src);
            t = NULL;
        }
    }
    if (t) vmi__types_free(t);
    vmi__free(vmi, blob);
    return vmi->types != NULL;
}

/* init_task without a data symbol: the boot CPU's idle task is named
   "swapper/0" (or "swapper"); check pid 0 and that its task list links back. */
typedef struct vmi__init_find {
    uint64_t image_off;
} vmi__init_find;

static int vmi__init_task_hit(vmi_instance *vmi, uint64_t pa, const uint8_t *at, size_t avail, void *user) {
    const vmi__linux *lx = vmi->lx;
    uint64_t task = pa - (uint64_t)lx->task_comm + ((vmi__init_find *)user)->image_off, pid, next, prev;
    (void)at, (void)avail;
    if (vmi__kread(vmi, task + (uint64_t)lx->task_pid, 4, &pid) != VMI_OK || pid != 0) return 0;
    if (vmi__kptr(vmi, task + (uint64_t)lx->task_tasks, &next) != VMI_OK) return 0;
    if (vmi__kptr(vmi, next + vmi_addr_width(vmi), &prev) != VMI_OK || prev != task + (uint64_t)lx->task_tasks)
        return 0;
    vmi->lx->init_task = task;
    return 1;
}

static void vmi__find_init_task(vmi_instance *vmi, uint64_t image_off, int have_off) {
    vmi__init_find f;
    if (vmi_ksym(vmi, "init_task", &vmi->lx->init_task) == VMI_OK || !have_off) return;
    if (vmi__lx_resolve(vmi) != VMI_OK) return;
    f.image_off = image_off;
    vmi__scan_phys(vmi, "swapper/0\0", 10, 1, vmi__init_task_hit, &f);
    if (!vmi->lx->init_task) vmi__scan_phys(vmi, "swapper\0", 8, 1, vmi__init_task_hit, &f);
}

/* `modules` without a data symbol (kallsyms of text only): the list head in
   the kernel image whose neighbours both lie outside the image in module or
   vmalloc space (VMCOREINFO's MODULES_VADDR..VMALLOC_END where it says so),
   link back to it, and hold a struct module with a sane state and a
   printable name. */
#define VMI__MODSCAN_LEN (64u << 20) /* of the image, from _stext */
#define VMI__MODSCAN_CHUNK (1u << 20)

static int vmi__module_head_ok(vmi_instance *vmi, uint64_t head, uint64_t next, uint64_t prev) {
    uint64_t back;
    char name[64];
    size_t i;
    if (vmi__kptr(vmi, next + vmi_addr_width(vmi), &back) != VMI_OK || back != head) return 0;
    uint64_t mod = next - (uint64_t)vmi->lx->mod_list, state;
    if (vmi__kptr(vmi, prev, &back) != VMI_OK || back != head) return 0;
    if (vmi->lx->mod_state >= 0 && (vmi__kread(vmi, mod + (uint64_t)vmi->lx->mod_state, 4, &state) != VMI_OK || state > 3))
        return 0; /* enum module_state: LIVE, COMING, GOING, UNFORMED */
    if (vmi_read_va(vmi, vmi->paging.dtb, mod + (uint64_t)vmi->lx->mod_name, name, sizeof name, NULL) != VMI_OK)
        return 0;
    for (i = 0; i < sizeof name && name[i]; i++)
        if (name[i] <= ' ' || name[i] > '~') return 0;
    return i > 0 && i < sizeof name;
}

static void vmi__find_modules_head(vmi_instance *vmi) {
    uint64_t lo, hi, stext, pa, avail, off, w = vmi_addr_width(vmi);
    uint8_t *buf;
    if (vmi->lx->modules || vmi->lx->mod_list < 0 || vmi->lx->mod_name < 0) return;
    /* KASLR places arm64 modules near the image, in vmalloc space; the
       32-bit kernels put them just below PAGE_OFFSET (ARM) or in vmalloc */
    if (!vmi__vmcoreinfo_u64(vmi, "NUMBER(MODULES_VADDR)", 16, &lo) ||
        (!vmi__vmcoreinfo_u64(vmi, "NUMBER(VMALLOC_END)", 16, &hi) &&
         !vmi__vmcoreinfo_u64(vmi, "NUMBER(MODULES_END)", 16, &hi))) {
        lo = w == 4 ? 0xbf000000u : 0x8000000000000000ull;
        hi = w == 4 ? 0xffffffffu : ~0ull;
    }
    if (vmi_ksym(vmi, "_stext", &stext) != VMI_OK ||
        vmi__translate(vmi, vmi->paging.dtb, stext, &pa, &avail) != VMI_OK)
        return;
    if (!(buf = (uint8_t *)vmi__alloc(vmi, VMI__MODSCAN_CHUNK))) return;
    for (off = 0; off < VMI__MODSCAN_LEN && !vmi->lx->modules; off += VMI__MODSCAN_CHUNK) {
        size_t got = 0, i;
        vmi__read_pa(vmi, pa + off, buf, VMI__MODSCAN_CHUNK, &got);
        for (i = 0; i + 2 * w <= got && !vmi->lx->modules; i += w) {
            uint64_t next = vmi__le(buf + i, (unsigned)w), prev = vmi__le(buf + i + w, (unsigned)w);
            if (next >= lo && next < hi && prev >= lo && prev < hi && next - stext >= VMI__MODSCAN_LEN &&
                prev - stext >= VMI__MODSCAN_LEN && vmi__module_head_ok(vmi, stext + off + i, next, prev))
                vmi->lx->modules = stext + off + i;
        }
        if (got < VMI__MODSCAN_CHUNK) break;
    }
    vmi__free(vmi, buf);
}

/* The KASLR offset: VMCOREINFO says it (x86_64, arm64), else System.map's
   _stext against the running one. */
static void vmi__find_slide(vmi_instance *vmi) {
    uint64_t now, then;
    char type;
    if (vmi__vmcoreinfo_u64(vmi, "KERNELOFFSET", 16, &vmi->os.kaslr_offset)) {
        vmi__set_source(vmi->os.slide_source, "VMCOREINFO KERNELOFFSET");
    } else if (vmi->psyms && vmi->ksyms && vmi__symtab_find(vmi->psyms, "_stext", &then, &type) == VMI_OK &&
               vmi__symtab_find(vmi->ksyms, "_stext", &now, &type) == VMI_OK) {
        vmi->os.kaslr_offset = now - then;
        vmi__set_source(vmi->os.slide_source, "_stext: kallsyms against the System.map");
    }
    if (vmi->psyms && vmi->profile_slide != vmi->os.kaslr_offset) {
        vmi__symtab_slide(vmi->psyms, vmi->os.kaslr_offset - vmi->profile_slide);
        vmi->profile_slide = vmi->os.kaslr_offset;
    }
}

/* Text-only kallsyms lacks linux_banner: then the first "Linux version
   RELEASE " in memory (the banner, or its copy in the kernel log). */
static int vmi__banner_hit(vmi_instance *vmi, uint64_t pa, const uint8_t *at, size_t avail, void *user) {
    char *nl;
    (void)at, (void)avail, (void)user;
    memset(vmi->os.version, 0, sizeof vmi->os.version);
    if (vmi__read_pa(vmi, pa, vmi->os.version, sizeof vmi->os.version - 1, NULL) != VMI_OK) return 0;
    char *hash;
    if (!(nl = strchr(vmi->os.version, '\n'))) return vmi->os.version[0] = 0;
    *nl = 0;
    hash = strstr(vmi->os.version, " #"); /* UTS_VERSION: "#1 SMP ..."; skip damaged copies */
    if (!hash || hash[2] < '0' || hash[2] > '9') return vmi->os.version[0] = 0;
    return 1;
}

/* x86_64 KASLR also moves the image physically: _stext's PA against its
   link-time PA (link VA - __START_KERNEL_map). */
static void vmi__phys_slide(vmi_instance *vmi) {
    uint64_t stext;
    if ((vmi->paging.mode != VMI_PAGING_IA32E && vmi->paging.mode != VMI_PAGING_LA57) ||
        vmi_ksym(vmi, "_stext", &stext) != VMI_OK)
        return;
    vmi->os.kaslr_phys_offset =
        (stext - vmi->os.kernel_pa_offset) - (stext - vmi->os.kaslr_offset - 0xffffffff80000000ull);
}

static void vmi__read_banner(vmi_instance *vmi) {
    uint64_t va;
    char *nl, key[96];
    char err[VMI__ERR_MAX];
    memcpy(err, vmi->err, sizeof err);
    if (vmi_ksym(vmi, "linux_banner", &va) == VMI_OK &&
        vmi_read_str(vmi, vmi->paging.dtb, va, vmi->os.version, sizeof vmi->os.version, NULL) != VMI_ERR_NOT_PRESENT &&
        (nl = strchr(vmi->os.version, '\n')) != NULL)
        *nl = 0;
    else if (vmi->os.release[0]) {
        snprintf(key, sizeof key, "Linux version %s ", vmi->os.release);
        vmi->os.version[0] = 0;
        vmi__scan_phys(vmi, key, strlen(key), 1, vmi__banner_hit, NULL);
    }
    memcpy(vmi->err, err, sizeof err);
    if (!vmi->os.release[0] && !strncmp(vmi->os.version, "Linux version ", 14)) {
        size_t n = strcspn(vmi->os.version + 14, " ");
        memcpy(vmi->os.release, vmi->os.version + 14, n < 64 ? n : 64);
    }
}

static vmi_status vmi__lx_os_init(vmi_instance *vmi) {
    uint64_t image_off = 0;
    int have_off;
    char rel[65];
    if (!vmi__lx_get(vmi)) return vmi__fail(vmi, VMI_ERR_NOMEM, "Linux state");
    vmi__find_vmcoreinfo(vmi);
    if (vmi->vmcoreinfo && sscanf(vmi->vmcoreinfo, "OSRELEASE=%64s", rel) == 1) {
        memcpy(vmi->os.release, rel, sizeof rel);
        vmi__set_source(vmi->os.os_source, "VMCOREINFO note in memory");
    }
    if (!vmi->ksyms && vmi__kallsyms_recover(vmi, &vmi->ksyms) == VMI_OK)
        snprintf(vmi->os.symbols_source, sizeof vmi->os.symbols_source,
                 "kallsyms recovered from memory, token table at pa 0x%llx",
                 (unsigned long long)vmi__symtab_kallsyms_info(vmi->ksyms)->token_table_pa);
    else if (vmi->psyms)
        vmi__set_source(vmi->os.symbols_source, "System.map profile");
    vmi->os.nsymbols = vmi__symtab_count(vmi->ksyms ? vmi->ksyms : vmi->psyms);
    vmi__find_slide(vmi);
    have_off = vmi__image_offset(vmi, &image_off);
    if (vmi->paging.mode <= VMI_PAGING_OFF) {
        if (!have_off)
            return vmi__fail(vmi, VMI_ERR_NO_PAGING, "kernel image not located: kallsyms %s, VMCOREINFO %s",
                             vmi->ksyms ? "found" : "not found", vmi->vmcoreinfo ? "without its load offset" : "not found");
        if (vmi__find_paging(vmi, image_off) != VMI_OK) return VMI_ERR_NO_PAGING;
    } else {
        vmi__set_source(vmi->os.paging_source, "vCPU 0 registers");
        vmi__fix_register_dtb(vmi);
        have_off = vmi__image_offset(vmi, &image_off);
    }
    vmi->os.kernel_pa_offset = image_off;
    vmi__phys_slide(vmi);
    if (!vmi->types) vmi__scan_phys(vmi, "\x9f\xeb\x01\x00", 4, 4, vmi__btf_hit, NULL);
    vmi__read_banner(vmi);
    if (!vmi->os.release[0] && !vmi->os.version[0])
        return vmi__fail(vmi, VMI_ERR_NOT_FOUND, "no Linux kernel found (no VMCOREINFO, no linux_banner)");
    vmi->os.os = VMI_OS_LINUX;
    if (!vmi->os.os_source[0]) vmi__set_source(vmi->os.os_source, "linux_banner");
    if (vmi->lx->cfg_init_task) vmi->lx->init_task = vmi->lx->cfg_init_task + vmi->os.kaslr_offset;
    else if (vmi->types) vmi__find_init_task(vmi, image_off, have_off);
    return VMI_OK;
}

VMI_API const vmi_os_info *vmi_os_get_info(const vmi_instance *vmi) { return &vmi->os; }

/* >>dmesg ================================================================== */
/* The kernel log: Linux 5.10+ lockless printk ring buffer
   (kernel/printk/printk_ringbuffer.[ch], v5.10..v6.x).

   printk_ringbuffer { desc_ring, text_data_ring, fail }
     prb_desc_ring { unsigned int count_bits; prb_desc *descs; printk_info *infos;
                     atomic_long_t head_id, tail_id; }
     prb_desc      { atomic_long_t state_var; prb_data_blk_lpos text_blk_lpos { unsigned long begin, next; } }
     printk_info   { u64 seq; u64 ts_nsec; u16 text_len; u8 facility; u8 flags:5, level:3; u32 caller_id; ... }
     prb_data_ring { unsigned int size_bits; char *data; atomic_long_t head_lpos, tail_lpos; }
   state_var: the state in its top two bits (0 reserved, 1 committed,
   2 finalized, 3 reusable), the descriptor id in the rest. A data block is
   { unsigned long id; char text[]; } aligned to sizeof(long); one that would
   cross the end of the ring is stored at data[0] with `next` in the next wrap.

   Guest memory is untrusted: count_bits, size_bits and the number of records
   are capped, every id and lpos is checked against the ring's head and tail,
   a record whose descriptor or data is inconsistent is skipped (and counted),
   the data ring is read once into a buffer of our own, and every access to it
   is bounds-checked. Little-endian guests only (as the rest of vmi.h). */

#define VMI__PRB_MAX_COUNT_BITS 26u  /* descriptors: 64 Mi */
#define VMI__PRB_MAX_SIZE_BITS 30u   /* text data ring: 1 GiB */
#define VMI__PRB_MAX_RECORDS (1u << 21) /* records visited by one walk (newest kept) */
#define VMI__PRB_CHUNK 512u          /* descriptors/infos read at a time */
#define VMI__PRB_FAILED_LPOS 0x1u
#define VMI__PRB_NO_LPOS 0x3u

/* Offsets are bytes from the start of their struct unless said otherwise. */
typedef struct vmi__prb_layout {
    uint32_t long_size;  /* sizeof(unsigned long) == sizeof(atomic_long_t): 4 or 8 */
    uint32_t ptr_size;   /* sizeof(void *): 4 or 8 */
    uint64_t rb_size;    /* struct printk_ringbuffer */
    uint64_t rb_desc_ring, rb_text_data_ring;
    uint64_t dr_count_bits, dr_descs, dr_infos, dr_head_id, dr_tail_id;
    uint64_t desc_size, desc_state_var, desc_text_blk_lpos; /* struct prb_desc */
    uint64_t lpos_begin, lpos_next;                         /* struct prb_data_blk_lpos */
    uint64_t info_size, info_seq, info_ts_nsec, info_text_len, info_facility;
    uint64_t info_level_bit;   /* bit offset of printk_info.level */
    uint32_t info_level_bits;  /* its width (3); 0: level unknown */
    int has_facility;
    uint64_t data_size_bits, data_data, data_head_lpos, data_tail_lpos; /* struct prb_data_ring */
    const char *source;        /* "types" or "VMCOREINFO" */
} vmi__prb_layout;

/* What one walk saw, beside the records delivered. */
typedef struct vmi__prb_stats {
    uint64_t records;   /* delivered */
    uint64_t skipped;   /* inconsistent descriptor or data block: not delivered */
    uint64_t lost;      /* data-less (FAILED_LPOS) records: the kernel lost their text */
    uint64_t unfinished;/* reserved (being written) or reusable descriptors */
    uint64_t dropped;   /* older than the VMI__PRB_MAX_RECORDS newest */
    uint32_t count_bits, size_bits;
} vmi__prb_stats;

/* Checks a filled layout: every member inside its struct, the sizes those of
   the kernels we know. */
static vmi_status vmi__prb_layout_check(vmi_instance *vmi, const vmi__prb_layout *L) {
    const uint32_t ls = L->long_size, ps = L->ptr_size;
    if ((ls != 4 && ls != 8) || (ps != 4 && ps != 8))
        return vmi__fail(vmi, VMI_ERR_FORMAT, "printk ring buffer: long size %u, pointer size %u", ls, ps);
    if (L->rb_size > 4096 || L->desc_size > 256 || L->info_size > 1024 || L->desc_size < 3u * ls ||
        L->info_size < 24)
        return vmi__fail(vmi, VMI_ERR_FORMAT,
                         "printk ring buffer: implausible sizes (printk_ringbuffer %llu, prb_desc %llu, printk_info %llu)",
                         (unsigned long long)L->rb_size, (unsigned long long)L->desc_size,
                         (unsigned long long)L->info_size);
    /* desc_ring and text_data_ring with their members inside printk_ringbuffer */
    if (L->rb_desc_ring + L->dr_count_bits + 4 > L->rb_size || L->rb_desc_ring + L->dr_descs + ps > L->rb_size ||
        L->rb_desc_ring + L->dr_infos + ps > L->rb_size || L->rb_desc_ring + L->dr_head_id + ls > L->rb_size ||
        L->rb_desc_ring + L->dr_tail_id + ls > L->rb_size ||
        L->rb_text_data_ring + L->data_size_bits + 4 > L->rb_size ||
        L->rb_text_data_ring + L->data_data + ps > L->rb_size ||
        L->rb_text_data_ring + L->data_head_lpos + ls > L->rb_size ||
        L->rb_text_data_ring + L->data_tail_lpos + ls > L->rb_size)
        return vmi__fail(vmi, VMI_ERR_FORMAT, "printk ring buffer: a member lies outside printk_ringbuffer (%llu bytes)",
                         (unsigned long long)L->rb_size);
    if (L->desc_state_var + ls > L->desc_size || L->desc_text_blk_lpos + L->lpos_begin + ls > L->desc_size ||
        L->desc_text_blk_lpos + L->lpos_next + ls > L->desc_size)
        return vmi__fail(vmi, VMI_ERR_FORMAT, "printk ring buffer: a member lies outside prb_desc (%llu bytes)",
                         (unsigned long long)L->desc_size);
    if (L->info_seq + 8 > L->info_size || L->info_ts_nsec + 8 > L->info_size || L->info_text_len + 2 > L->info_size ||
        (L->has_facility && L->info_facility + 1 > L->info_size) ||
        (L->info_level_bits && (L->info_level_bits > 8 || L->info_level_bit + L->info_level_bits > L->info_size * 8 ||
                                (L->info_level_bit & 7) + L->info_level_bits > 8)))
        return vmi__fail(vmi, VMI_ERR_FORMAT, "printk ring buffer: a member lies outside printk_info (%llu bytes)",
                         (unsigned long long)L->info_size);
    return VMI_OK;
}

/* One member from the type information: byte offset, and optionally its size. */
static vmi_status vmi__prb_member(vmi_instance *vmi, const char *type, const char *member, uint64_t *off,
                                  uint64_t *size) {
    uint64_t bit = 0, sz = 0;
    uint32_t bits = 0;
    vmi_status st = vmi_member(vmi, type, member, &bit, &bits, &sz);
    if (st != VMI_OK) return vmi__fail(vmi, st, "printk ring buffer: no member %s.%s in the type information", type, member);
    *off = bit / 8;
    if (size) *size = sz;
    return VMI_OK;
}

static vmi_status vmi__prb_layout_types(vmi_instance *vmi, vmi__prb_layout *L) {
    uint64_t sz_begin = 0, sz_head = 0, sz_descs = 0, sz_seq = 0, sz_ts = 0, sz_len = 0, sz_fac = 0, bit = 0, sz = 0,
             tmp = 0;
    uint32_t bits = 0;
    vmi_status st;
    memset(L, 0, sizeof *L);
    L->source = "types";
#define VMI__PRB_T(type, member, off, size) \
    if ((st = vmi__prb_member(vmi, type, member, off, size)) != VMI_OK) return st
    if ((st = vmi_type_size(vmi, "printk_ringbuffer", &L->rb_size)) != VMI_OK ||
        (st = vmi_type_size(vmi, "prb_desc", &L->desc_size)) != VMI_OK ||
        (st = vmi_type_size(vmi, "printk_info", &L->info_size)) != VMI_OK)
        return vmi__fail(vmi, st, "printk ring buffer: printk_ringbuffer, prb_desc or printk_info missing from the type information (kernel before 5.10?)");
    VMI__PRB_T("printk_ringbuffer", "desc_ring", &L->rb_desc_ring, NULL);
    VMI__PRB_T("printk_ringbuffer", "text_data_ring", &L->rb_text_data_ring, NULL);
    VMI__PRB_T("prb_desc_ring", "count_bits", &L->dr_count_bits, &tmp);
    if (tmp != 4) return vmi__fail(vmi, VMI_ERR_FORMAT, "printk ring buffer: count_bits is %llu bytes", (unsigned long long)tmp);
    VMI__PRB_T("prb_desc_ring", "descs", &L->dr_descs, &sz_descs);
    VMI__PRB_T("prb_desc_ring", "infos", &L->dr_infos, NULL);
    VMI__PRB_T("prb_desc_ring", "head_id", &L->dr_head_id, &sz_head);
    VMI__PRB_T("prb_desc_ring", "tail_id", &L->dr_tail_id, NULL);
    VMI__PRB_T("prb_desc", "state_var", &L->desc_state_var, NULL);
    VMI__PRB_T("prb_desc", "text_blk_lpos", &L->desc_text_blk_lpos, NULL);
    VMI__PRB_T("prb_data_blk_lpos", "begin", &L->lpos_begin, &sz_begin);
    VMI__PRB_T("prb_data_blk_lpos", "next", &L->lpos_next, NULL);
    VMI__PRB_T("printk_info", "seq", &L->info_seq, &sz_seq);
    VMI__PRB_T("printk_info", "ts_nsec", &L->info_ts_nsec, &sz_ts);
    VMI__PRB_T("printk_info", "text_len", &L->info_text_len, &sz_len);
    VMI__PRB_T("prb_data_ring", "size_bits", &L->data_size_bits, &tmp);
    if (tmp != 4) return vmi__fail(vmi, VMI_ERR_FORMAT, "printk ring buffer: size_bits is %llu bytes", (unsigned long long)tmp);
    VMI__PRB_T("prb_data_ring", "data", &L->data_data, NULL);
    VMI__PRB_T("prb_data_ring", "head_lpos", &L->data_head_lpos, NULL);
    VMI__PRB_T("prb_data_ring", "tail_lpos", &L->data_tail_lpos, NULL);
#undef VMI__PRB_T
    if (sz_seq != 8 || sz_ts != 8 || sz_len != 2)
        return vmi__fail(vmi, VMI_ERR_FORMAT, "printk ring buffer: printk_info seq/ts_nsec/text_len are %llu/%llu/%llu bytes",
                         (unsigned long long)sz_seq, (unsigned long long)sz_ts, (unsigned long long)sz_len);
    if (sz_begin != sz_head)
        return vmi__fail(vmi, VMI_ERR_FORMAT, "printk ring buffer: unsigned long (%llu) and atomic_long_t (%llu) differ",
                         (unsigned long long)sz_begin, (unsigned long long)sz_head);
    L->long_size = (uint32_t)sz_begin;
    /* Linux: sizeof(void *) == sizeof(long); trust the type info when it knows */
    L->ptr_size = sz_descs == 4 || sz_descs == 8 ? (uint32_t)sz_descs : L->long_size;
    /* facility and level are optional: without them records still read */
    if (vmi_member(vmi, "printk_info", "facility", &bit, &bits, &sz_fac) == VMI_OK && !bits && sz_fac == 1) {
        L->info_facility = bit / 8;
        L->has_facility = 1;
    }
    if (vmi_member(vmi, "printk_info", "level", &bit, &bits, &sz) == VMI_OK && bits >= 1 && bits <= 8) {
        L->info_level_bit = bit;
        L->info_level_bits = bits;
    }
    return vmi__prb_layout_check(vmi, L);
}

/* The value of "KEY=" in a VMCOREINFO text, NUL-terminated into buf. */
static int vmi__prb_vmci_get(const char *s, size_t len, const char *key, char *buf, size_t cap) {
    size_t klen = strlen(key), i = 0;
    while (i < len) {
        size_t e = i;
        while (e < len && s[e] != '\n' && s[e] != '\0') e++;
        if (e - i > klen && memcmp(s + i, key, klen) == 0 && s[i + klen] == '=') {
            size_t n = e - (i + klen + 1);
            if (n == 0 || n >= cap) return 0;
            memcpy(buf, s + i + klen + 1, n);
            buf[n] = '\0';
            return 1;
        }
        i = e + 1;
    }
    return 0;
}

/* OFFSET(...) and SIZE(...) values are decimal (printk.c, vmcoreinfo %lu). */
static int vmi__prb_vmci_num(const char *s, size_t len, const char *key, uint64_t *out) {
    char buf[32];
    uint64_t v = 0;
    size_t i;
    if (!vmi__prb_vmci_get(s, len, key, buf, sizeof buf)) return 0;
    for (i = 0; buf[i]; i++) {
        if (buf[i] < '0' || buf[i] > '9' || v > (UINT64_MAX - 9) / 10) return 0;
        v = v * 10 + (uint64_t)(buf[i] - '0');
    }
    *out = v;
    return 1;
}

static vmi_status vmi__prb_layout_vmcoreinfo(vmi_instance *vmi, const char *vmcoreinfo, size_t len, vmi__prb_layout *L) {
    static const struct {
        const char *key;
        size_t off;
    } keys[] = {
#define VMI__PRB_K(k, f) {k, offsetof(vmi__prb_layout, f)}
        VMI__PRB_K("SIZE(printk_ringbuffer)", rb_size),
        VMI__PRB_K("OFFSET(printk_ringbuffer.desc_ring)", rb_desc_ring),
        VMI__PRB_K("OFFSET(printk_ringbuffer.text_data_ring)", rb_text_data_ring),
        VMI__PRB_K("OFFSET(prb_desc_ring.count_bits)", dr_count_bits),
        VMI__PRB_K("OFFSET(prb_desc_ring.descs)", dr_descs),
        VMI__PRB_K("OFFSET(prb_desc_ring.infos)", dr_infos),
        VMI__PRB_K("OFFSET(prb_desc_ring.head_id)", dr_head_id),
        VMI__PRB_K("OFFSET(prb_desc_ring.tail_id)", dr_tail_id),
        VMI__PRB_K("SIZE(prb_desc)", desc_size),
        VMI__PRB_K("OFFSET(prb_desc.state_var)", desc_state_var),
        VMI__PRB_K("OFFSET(prb_desc.text_blk_lpos)", desc_text_blk_lpos),
        VMI__PRB_K("OFFSET(prb_data_blk_lpos.begin)", lpos_begin),
        VMI__PRB_K("OFFSET(prb_data_blk_lpos.next)", lpos_next),
        VMI__PRB_K("SIZE(printk_info)", info_size),
        VMI__PRB_K("OFFSET(printk_info.seq)", info_seq),
        VMI__PRB_K("OFFSET(printk_info.ts_nsec)", info_ts_nsec),
        VMI__PRB_K("OFFSET(printk_info.text_len)", info_text_len),
        VMI__PRB_K("OFFSET(prb_data_ring.size_bits)", data_size_bits),
        VMI__PRB_K("OFFSET(prb_data_ring.data)", data_data),
        VMI__PRB_K("OFFSET(prb_data_ring.head_lpos)", data_head_lpos),
        VMI__PRB_K("OFFSET(prb_data_ring.tail_lpos)", data_tail_lpos),
#undef VMI__PRB_K
    };
    uint64_t along, lpos_size, caller;
    size_t i;
    memset(L, 0, sizeof *L);
    L->source = "VMCOREINFO";
    if (!vmcoreinfo) return vmi__fail(vmi, VMI_ERR_ARG, "printk ring buffer: no VMCOREINFO text");
    for (i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!vmi__prb_vmci_num(vmcoreinfo, len, keys[i].key, (uint64_t *)(void *)((char *)L + keys[i].off)))
            return vmi__fail(vmi, VMI_ERR_NOT_FOUND, "printk ring buffer: VMCOREINFO has no %s (kernel before 5.10?)",
                             keys[i].key);
    if (!vmi__prb_vmci_num(vmcoreinfo, len, "SIZE(atomic_long_t)", &along) ||
        !vmi__prb_vmci_num(vmcoreinfo, len, "SIZE(prb_data_blk_lpos)", &lpos_size))
        return vmi__fail(vmi, VMI_ERR_NOT_FOUND, "printk ring buffer: VMCOREINFO has no SIZE(atomic_long_t) or SIZE(prb_data_blk_lpos)");
    if (lpos_size != 2 * along)
        return vmi__fail(vmi, VMI_ERR_FORMAT, "printk ring buffer: VMCOREINFO SIZE(prb_data_blk_lpos) %llu is not twice SIZE(atomic_long_t) %llu",
                         (unsigned long long)lpos_size, (unsigned long long)along);
    L->long_size = (uint32_t)(along <= 8 ? along : 0);
    L->ptr_size = L->long_size; /* Linux: sizeof(long) == sizeof(void *) */
    /* facility and level have no VMCOREINFO line; since 5.10 they follow
       text_len as u8 facility, u8 flags:5 level:3, then u32 caller_id (which
       is exported, and confirms the layout). */
    if (vmi__prb_vmci_num(vmcoreinfo, len, "OFFSET(printk_info.caller_id)", &caller) && caller == L->info_text_len + 4) {
        L->info_facility = L->info_text_len + 2;
        L->has_facility = 1;
        L->info_level_bit = (L->info_text_len + 3) * 8 + 5;
        L->info_level_bits = 3;
    }
    return vmi__prb_layout_check(vmi, L);
}

static uint64_t vmi__prb_get(const uint8_t *p, unsigned n) {
    uint64_t v = 0;
    while (n--) v = (v << 8) | p[n];
    return v;
}

/* A record's text in the data ring copy, as get_data()/copy_data() find it. */
typedef struct vmi__prb_ring {
    const uint8_t *data;   /* our copy of the text data ring */
    uint64_t size, valid;  /* ring size; bytes of it that could be read */
    uint64_t lmask;        /* all ones in unsigned long */
    uint32_t size_bits, ls;
    uint64_t head, tail;   /* head_lpos, tail_lpos */
} vmi__prb_ring;

/* 1: text found (*text, *avail bytes), 0: data-less record with no text
   (NO_LPOS: empty), -1: lost (FAILED_LPOS), -2: inconsistent. */
static int vmi__prb_text(const vmi__prb_ring *R, uint64_t id, uint64_t begin, uint64_t next, const uint8_t **text,
                         uint64_t *avail) {
    uint64_t off, size, span;
    if ((begin & 1) && (next & 1)) { /* LPOS_DATALESS */
        if (begin == VMI__PRB_NO_LPOS && next == VMI__PRB_NO_LPOS) return 0;
        return -1;
    }
    /* inside the live window [tail_lpos, head_lpos] */
    span = (R->head - R->tail) & R->lmask;
    if (((begin - R->tail) & R->lmask) > span || ((next - R->tail) & R->lmask) > span) return -2;
    if ((begin >> R->size_bits) == (next >> R->size_bits) && begin < next) {
        off = begin & (R->size - 1); /* regular block */
        size = next - begin;
    } else if ((((begin + R->size) & R->lmask) >> R->size_bits) == (next >> R->size_bits)) {
        off = 0; /* wrapping block: its data at the start of the ring */
        size = next & (R->size - 1);
    } else {
        return -2;
    }
    if ((begin | next) & (R->ls - 1)) return -2; /* blocks are aligned to the ID size */
    if (size < R->ls || off + size > R->size || off + size > R->valid) return -2;
    if (vmi__prb_get(R->data + off, R->ls) != id) return -2; /* the block's ID is its descriptor's */
    *text = R->data + off + R->ls;
    *avail = size - R->ls;
    return 1;
}

static vmi_status vmi__prb_walk_stats(vmi_instance *vmi, uint64_t prb_va, const vmi__prb_layout *L, vmi_log_fn fn,
                                      void *user, vmi__prb_stats *stats) {
    uint8_t rb[4096];
    vmi__prb_ring R;
    vmi__prb_stats S;
    uint8_t *ring = NULL, *descs = NULL, *infos = NULL;
    uint64_t count, cmask, idmask, head_id, tail_id, n, i, descs_va, infos_va, data_va, last_seq = 0;
    uint64_t chunk_first = 0, chunk_n = 0, chunk_dvalid = 0, chunk_ivalid = 0;
    int have_seq = 0;
    size_t done = 0;
    unsigned ls, ps;
    vmi_status st;

    memset(&S, 0, sizeof S);
    if (stats) *stats = S;
    if (!L || !fn) return vmi__fail(vmi, VMI_ERR_ARG, "printk ring buffer: no layout or callback");
    if ((st = vmi__prb_layout_check(vmi, L)) != VMI_OK) return st;
    ls = L->long_size;
    ps = L->ptr_size;
    if ((st = vmi_read_kva(vmi, prb_va, rb, (size_t)L->rb_size, NULL)) != VMI_OK)
        return vmi__fail(vmi, st, "printk ring buffer: cannot read printk_ringbuffer at 0x%llx: %s",
                         (unsigned long long)prb_va, vmi_last_error(vmi));

    /* the descriptor ring */
    S.count_bits = (uint32_t)vmi__prb_get(rb + L->rb_desc_ring + L->dr_count_bits, 4);
    S.size_bits = (uint32_t)vmi__prb_get(rb + L->rb_text_data_ring + L->data_size_bits, 4);
    if (stats) *stats = S;
    if (S.count_bits > VMI__PRB_MAX_COUNT_BITS)
        return vmi__fail(vmi, VMI_ERR_FORMAT, "printk ring buffer: count_bits %u is over %u", S.count_bits,
                         VMI__PRB_MAX_COUNT_BITS);
    if (S.size_bits < 3 || S.size_bits > VMI__PRB_MAX_SIZE_BITS || S.size_bits >= ls * 8 ||
        ((uint64_t)1 << S.size_bits) > vmi_memory_size(vmi)) /* no bigger than the guest's RAM */
        return vmi__fail(vmi, VMI_ERR_FORMAT, "printk ring buffer: size_bits %u is outside 3..%u or above RAM",
                         S.size_bits, VMI__PRB_MAX_SIZE_BITS);
    count = (uint64_t)1 << S.count_bits;
    cmask = count - 1;
    R.lmask = ls == 8 ? UINT64_MAX : 0xffffffffu;
    idmask = R.lmask >> 2; /* DESC_ID_MASK: the state takes the top two bits */
    descs_va = vmi__prb_get(rb + L->rb_desc_ring + L->dr_descs, ps);
    infos_va = vmi__prb_get(rb + L->rb_desc_ring + L->dr_infos, ps);
    head_id = vmi__prb_get(rb + L->rb_desc_ring + L->dr_head_id, ls) & idmask;
    tail_id = vmi__prb_get(rb + L->rb_desc_ring + L->dr_tail_id, ls) & idmask;
    n = ((head_id - tail_id) & idmask) + 1;
    if (n > count)
        return vmi__fail(vmi, VMI_ERR_FORMAT,
                         "printk ring buffer: head id 0x%llx and tail id 0x%llx are %llu apart in a ring of %llu",
                         (unsigned long long)head_id, (unsigned long long)tail_id, (unsigned long long)(n - 1),
                         (unsigned long long)count);
    if (n > VMI__PRB_MAX_RECORDS) { /* keep the newest */
        S.dropped = n - VMI__PRB_MAX_RECORDS;
        tail_id = (head_id - (VMI__PRB_MAX_RECORDS - 1)) & idmask;
        n = VMI__PRB_MAX_RECORDS;
    }

    /* the text data ring, read in one go */
    R.size_bits = S.size_bits;
    R.size = (uint64_t)1 << S.size_bits;
    R.ls = ls;
    data_va = vmi__prb_get(rb + L->rb_text_data_ring + L->data_data, ps);
    R.head = vmi__prb_get(rb + L->rb_text_data_ring + L->data_head_lpos, ls);
    R.tail = vmi__prb_get(rb + L->rb_text_data_ring + L->data_tail_lpos, ls);
    if (((R.head - R.tail) & R.lmask) > R.size || ((R.head | R.tail) & (ls - 1)))
        return vmi__fail(vmi, VMI_ERR_FORMAT,
                         "printk ring buffer: data head lpos 0x%llx and tail lpos 0x%llx do not fit a ring of %llu bytes",
                         (unsigned long long)R.head, (unsigned long long)R.tail, (unsigned long long)R.size);
    if ((uint64_t)(size_t)R.size != R.size) return vmi__fail(vmi, VMI_ERR_LIMIT, "printk ring buffer: ring too large");
    /* not zeroed: only the R.valid bytes read from the guest are ever looked at */
    ring = (uint8_t *)vmi->alloc.alloc((size_t)R.size, vmi->alloc.user);
    descs = (uint8_t *)vmi__alloc(vmi, (size_t)(VMI__PRB_CHUNK * L->desc_size));
    infos = (uint8_t *)vmi__alloc(vmi, (size_t)(VMI__PRB_CHUNK * L->info_size));
    if (!ring || !descs || !infos) {
        st = vmi__fail(vmi, VMI_ERR_NOMEM, "printk ring buffer: %llu bytes for the text ring",
                       (unsigned long long)R.size);
        goto out;
    }
    st = vmi_read_kva(vmi, data_va, ring, (size_t)R.size, &done);
    if (st != VMI_OK && !done) {
        st = vmi__fail(vmi, st, "printk ring buffer: cannot read the text data ring at 0x%llx: %s",
                       (unsigned long long)data_va, vmi_last_error(vmi));
        goto out;
    }
    R.data = ring;
    R.valid = done; /* a partly readable ring: records past it are skipped */

    /* tail to head: ids (and so sequence numbers) in order */
    for (i = 0; i < n; i++) {
        uint64_t id = (tail_id + i) & idmask, idx = id & cmask, sv, seq, begin, next, avail, tl;
        const uint8_t *d, *inf, *text = NULL;
        unsigned state;
        int r;
        if (i % VMI__PRB_CHUNK == 0 || idx < chunk_first || idx >= chunk_first + chunk_n) {
            /* the next run of descriptors and infos, up to the end of the arrays */
            uint64_t want = vmi__min64(vmi__min64(n - i, VMI__PRB_CHUNK), count - idx);
            size_t dd = 0, di = 0;
            chunk_first = idx;
            chunk_n = want;
            (void)vmi_read_kva(vmi, descs_va + idx * L->desc_size, descs, (size_t)(want * L->desc_size), &dd);
            (void)vmi_read_kva(vmi, infos_va + idx * L->info_size, infos, (size_t)(want * L->info_size), &di);
            chunk_dvalid = dd / L->desc_size;
            chunk_ivalid = di / L->info_size;
        }
        if (idx - chunk_first >= chunk_dvalid || idx - chunk_first >= chunk_ivalid) {
            S.skipped++; /* unreadable descriptor */
            continue;
        }
        d = descs + (idx - chunk_first) * L->desc_size;
        inf = infos + (idx - chunk_first) * L->info_size;
        sv = vmi__prb_get(d + L->desc_state_var, ls);
        state = (unsigned)(sv >> (ls * 8 - 2)) & 3u;
        if ((sv & idmask) != id) {
            S.skipped++; /* desc_miss: the slot holds another id */
            continue;
        }
        if (state == 0 || state == 3) { /* reserved or reusable */
            S.unfinished++;
            continue;
        }
        seq = vmi__prb_get(inf + L->info_seq, 8);
        if ((seq & cmask) != idx || (have_seq && seq <= last_seq)) {
            S.skipped++; /* a sequence number the slot cannot hold, or out of order */
            continue;
        }
        begin = vmi__prb_get(d + L->desc_text_blk_lpos + L->lpos_begin, ls);
        next = vmi__prb_get(d + L->desc_text_blk_lpos + L->lpos_next, ls);
        tl = vmi__prb_get(inf + L->info_text_len, 2);
        r = vmi__prb_text(&R, id, begin, next, &text, &avail);
        if (r == -1) {
            S.lost++;
            continue;
        }
        if (r == -2 || (r == 1 && avail < tl) || (r == 0 && tl != 0)) {
            S.skipped++;
            continue;
        }
        {
            vmi_log_record rec;
            rec.seq = seq;
            rec.ts_nsec = vmi__prb_get(inf + L->info_ts_nsec, 8);
            rec.facility = L->has_facility ? inf[L->info_facility] : 0;
            rec.level = L->info_level_bits
                            ? (uint32_t)(inf[L->info_level_bit / 8] >> (L->info_level_bit % 8)) &
                                  ((1u << L->info_level_bits) - 1u)
                            : 0;
            rec.text = r == 1 ? (const char *)text : "";
            rec.len = (size_t)tl;
            last_seq = seq;
            have_seq = 1;
            S.records++;
            if (fn(user, &rec)) break;
        }
    }
    st = VMI_OK;
    if (S.skipped)
        vmi__log(vmi, VMI_LOG_WARN, "printk ring buffer: %llu inconsistent records skipped",
                 (unsigned long long)S.skipped);
out:
    vmi__free(vmi, ring);
    vmi__free(vmi, descs);
    vmi__free(vmi, infos);
    if (stats) *stats = S;
    return st;
}

/* prb_va: the ring buffer itself, i.e. the value of the kernel's `prb`
   pointer (read the pointer at symbol `prb` first). Records go to fn in
   sequence order; fn returns nonzero to stop. rec->text points into a
   buffer of ours, valid during the call. */
static vmi_status vmi__prb_walk(vmi_instance *vmi, uint64_t prb_va, const vmi__prb_layout *L, vmi_log_fn fn,
                                void *user) {
    return vmi__prb_walk_stats(vmi, prb_va, L, fn, user, NULL);
}

/* SYMBOL(name)=hex from a VMCOREINFO text (runtime addresses: KASLR included). */
static int vmi__prb_vmci_sym(const char *s, size_t len, const char *key, uint64_t *out) {
    char buf[40];
    uint64_t v = 0;
    size_t i;
    if (!vmi__prb_vmci_get(s, len, key, buf, sizeof buf)) return 0;
    for (i = 0; buf[i]; i++) {
        char c = buf[i];
        unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0')
                     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                     : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10) : 16u;
        if (d > 15 || i >= 16) return 0;
        v = v << 4 | d;
    }
    *out = v;
    return 1;
}

/* The whole of vmi_foreach_log_record: the layout from the type information,
   else from the target's VMCOREINFO note; `prb` from the symbols, else from
   VMCOREINFO's SYMBOL(prb); then the walk. vmcoreinfo/len: a VMCOREINFO text
   the caller found elsewhere (e.g. in guest memory), or NULL to ask the
   backend for its "VMCOREINFO" note. */
static vmi_status vmi__prb_foreach(vmi_instance *vmi, const char *vmcoreinfo, size_t vlen, vmi_log_fn fn, void *user) {
    vmi__prb_layout L;
    uint64_t sym = 0, prb_va = 0;
    vmi_status st;
    char why[VMI__ERR_MAX];
    if (!vmcoreinfo) {
        const void *note = NULL;
        size_t nlen = 0;
        if (vmi->be.get_note && vmi->be.get_note(vmi->be.ctx, "VMCOREINFO", &note, &nlen) == VMI_OK && note) {
            vmcoreinfo = (const char *)note;
            vlen = nlen;
        }
    }
    st = vmi__prb_layout_types(vmi, &L);
    if (st != VMI_OK) {
        snprintf(why, sizeof why, "%s", vmi->err);
        if (!vmcoreinfo)
            return vmi__fail(vmi, st, "%s; and no VMCOREINFO to fall back on", why);
        if ((st = vmi__prb_layout_vmcoreinfo(vmi, vmcoreinfo, vlen, &L)) != VMI_OK) return st;
    }
    if (vmi_ksym(vmi, "prb", &sym) != VMI_OK && !(vmcoreinfo && vmi__prb_vmci_sym(vmcoreinfo, vlen, "SYMBOL(prb)", &sym)))
        return vmi__fail(vmi, VMI_ERR_NOT_FOUND, "printk ring buffer: no symbol prb (kernel before 5.10, or no symbols)");
    if ((st = vmi__read_le_va(vmi, vmi->paging.dtb, sym, L.ptr_size, &prb_va)) != VMI_OK)
        return vmi__fail(vmi, st, "printk ring buffer: cannot read prb at 0x%llx: %s", (unsigned long long)sym,
                         vmi_last_error(vmi));
    return vmi__prb_walk(vmi, prb_va, &L, fn, user);
}

VMI_API vmi_status vmi_foreach_log_record(vmi_instance *vmi, vmi_log_fn fn, void *user) {
    if (!fn) return vmi__fail(vmi, VMI_ERR_ARG, "vmi_foreach_log_record: no callback");
    if (!vmi->vmcoreinfo) vmi__find_vmcoreinfo(vmi);
    vmi__tick(vmi);
    return vmi__prb_foreach(vmi, vmi->vmcoreinfo, vmi->vmcoreinfo ? strlen(vmi->vmcoreinfo) : 0, fn, user);
}


/* >>pe ===================================================================== */
/* Portable Executable images as the loader maps them (headers and sections
   at their RVAs), read through guest virtual memory: the headers, sections,
   export directory and the CodeView record that names the image's PDB.
   A loaded image may miss pages (paged out, discarded INIT sections): a
   read that fails loses only what lay on that page. Every RVA, count and
   length is checked against SizeOfImage and the caps below before use. */

#define VMI__PE_MAX_SECTIONS 96u   /* the Windows loader's own limit */
#define VMI__PE_MAX_EXPORTS 65536u /* ordinals are 16-bit */
#define VMI__PE_MAX_IMAGE (1u << 30)
#define VMI__PE_NAME_MAX 256u
#define VMI__PE_MAX_DEBUG 32u      /* debug directory entries looked at */
#define VMI__PE_SCN_EXEC 0x20000000u

typedef struct vmi__pe_section {
    uint32_t rva, size, flags; /* flags: IMAGE_SCN_* */
} vmi__pe_section;

typedef struct vmi__pe {
    uint64_t base, dtb;
    uint32_t size; /* SizeOfImage */
    uint32_t timestamp;
    uint16_t machine, nsections, os_major, os_minor;
    int is64;
    uint32_t exp_rva, exp_size, dbg_rva, dbg_size;
    vmi__pe_section sec[VMI__PE_MAX_SECTIONS];
} vmi__pe;

/* One export. name NULL: exported by ordinal only; forwarder non-NULL:
   "DLL.Name" (or "DLL.#ord"), and rva is 0. */
typedef struct vmi__pe_export {
    const char *name, *forwarder;
    uint32_t ordinal, rva;
} vmi__pe_export;
typedef int (*vmi__pe_export_fn)(void *user, const vmi__pe_export *e);

/* CodeView RSDS: the PDB's file name, GUID and age, and the id symbol
   servers index it by (GUID as printed by Windows, then the age, in hex). */
typedef struct vmi__pe_cv {
    char pdb[64];
    char id[41];
    uint8_t guid[16];
    uint32_t age;
} vmi__pe_cv;

static int vmi__pe_span_ok(const vmi__pe *pe, uint32_t rva, uint64_t len) {
    return rva < pe->size && len <= (uint64_t)pe->size - rva;
}

static vmi_status vmi__pe_read(vmi_instance *vmi, const vmi__pe *pe, uint32_t rva, void *buf, size_t len) {
    if (!vmi__pe_span_ok(pe, rva, len))
        return vmi__fail(vmi, VMI_ERR_FORMAT, "PE at 0x%llx: rva 0x%x + %zu lies outside SizeOfImage 0x%x",
                         (unsigned long long)pe->base, rva, len, pe->size);
    return vmi_read_va(vmi, pe->dtb, pe->base + rva, buf, len, NULL);
}

/* An array of the image, page by page: bytes of pages that cannot be read
   become 0xff, which no index or RVA check lets through. */
static vmi_status vmi__pe_gather(vmi_instance *vmi, const vmi__pe *pe, uint32_t rva, uint8_t *buf, size_t len) {
    size_t got = 0;
    if (!vmi__pe_span_ok(pe, rva, len))
        return vmi__fail(vmi, VMI_ERR_FORMAT, "PE at 0x%llx: table at rva 0x%x (%zu bytes) lies outside the image",
                         (unsigned long long)pe->base, rva, len);
    while (got < len) {
        uint64_t va = pe->base + rva + got;
        size_t n = (size_t)vmi__min64(len - got, VMI__PAGE_SIZE - (va & (VMI__PAGE_SIZE - 1)));
        if (vmi_read_va(vmi, pe->dtb, va, buf + got, n, NULL) != VMI_OK) memset(buf + got, 0xff, n);
        got += n;
    }
    return VMI_OK;
}

/* A NUL-terminated ASCII name inside the image; empty or unreadable fails. */
static vmi_status vmi__pe_str(vmi_instance *vmi, const vmi__pe *pe, uint32_t rva, char *buf, size_t cap) {
    size_t len = 0;
    vmi_status st;
    buf[0] = 0;
    if (!vmi__pe_span_ok(pe, rva, 1)) return VMI_ERR_FORMAT;
    cap = (size_t)vmi__min64(cap, (uint64_t)pe->size - rva + 1);
    st = vmi_read_str(vmi, pe->dtb, pe->base + rva, buf, cap, &len);
    if (st != VMI_OK || !len) {
        buf[0] = 0;
        return st != VMI_OK ? st : VMI_ERR_FORMAT;
    }
    return VMI_OK;
}

static void vmi__pe_sections(vmi__pe *pe, const uint8_t *h, uint32_t at) {
    uint32_t i;
    for (i = 0; i < pe->nsections; i++) {
        const uint8_t *s = h + at + i * 40u;
        pe->sec[i].size = (uint32_t)vmi__le(s + 8, 4);
        pe->sec[i].rva = (uint32_t)vmi__le(s + 12, 4);
        pe->sec[i].flags = (uint32_t)vmi__le(s + 36, 4);
    }
}

static void vmi__pe_dir(vmi__pe *pe, const uint8_t *d, uint32_t *rva, uint32_t *size) {
    *rva = (uint32_t)vmi__le(d, 4);
    *size = (uint32_t)vmi__le(d + 4, 4);
    if (!*rva || !vmi__pe_span_ok(pe, *rva, *size)) *rva = *size = 0; /* absent or bogus: ignored */
}

/* The headers of the image at `base` in address space `dtb`: its first
   page must be readable. */
static vmi_status vmi__pe_open(vmi_instance *vmi, uint64_t dtb, uint64_t base, vmi__pe *pe) {
    uint8_t h[VMI__PAGE_SIZE];
    size_t got = 0;
    uint32_t nt, opt, optsize, ndirs, dirs, need;
    uint16_t magic;
    memset(pe, 0, sizeof *pe);
    pe->base = base;
    pe->dtb = dtb;
    vmi_read_va(vmi, dtb, base, h, sizeof h, &got);
    if (got < 0x40 || h[0] != 'M' || h[1] != 'Z')
        return vmi__fail(vmi, VMI_ERR_FORMAT, "PE at 0x%llx: no MZ header", (unsigned long long)base);
    nt = (uint32_t)vmi__le(h + 0x3c, 4);
    if (nt > got - 24 || memcmp(h + nt, "PE\0\0", 4))
        return vmi__fail(vmi, VMI_ERR_FORMAT, "PE at 0x%llx: no PE signature at e_lfanew 0x%x", (unsigned long long)base, nt);
    pe->machine = (uint16_t)vmi__le(h + nt + 4, 2);
    pe->nsections = (uint16_t)vmi__le(h + nt + 6, 2);
    pe->timestamp = (uint32_t)vmi__le(h + nt + 8, 4);
    optsize = (uint32_t)vmi__le(h + nt + 20, 2);
    opt = nt + 24;
    magic = optsize >= 2 && opt + 2 <= got ? (uint16_t)vmi__le(h + opt, 2) : 0;
    pe->is64 = magic == 0x20b;
    need = pe->is64 ? 112 : 96; /* through NumberOfRvaAndSizes */
    if ((magic != 0x10b && magic != 0x20b) || optsize < need || opt + optsize > got)
        return vmi__fail(vmi, VMI_ERR_FORMAT, "PE at 0x%llx: optional header (magic 0x%x, %u bytes) is not PE32 or PE32+",
                         (unsigned long long)base, magic, optsize);
    pe->os_major = (uint16_t)vmi__le(h + opt + 40, 2);
    pe->os_minor = (uint16_t)vmi__le(h + opt + 42, 2);
    pe->size = (uint32_t)vmi__le(h + opt + 56, 4);
    if (pe->size < opt + optsize || pe->size > VMI__PE_MAX_IMAGE)
        return vmi__fail(vmi, VMI_ERR_FORMAT, "PE at 0x%llx: SizeOfImage 0x%x is not plausible", (unsigned long long)base, pe->size);
    dirs = opt + need;
    ndirs = (uint32_t)vmi__min64(vmi__le(h + opt + need - 4, 4), (optsize - need) / 8);
    if (ndirs > 0) vmi__pe_dir(pe, h + dirs, &pe->exp_rva, &pe->exp_size);
    if (ndirs > 6) vmi__pe_dir(pe, h + dirs + 48, &pe->dbg_rva, &pe->dbg_size);
    if (pe->nsections > VMI__PE_MAX_SECTIONS || opt + optsize + pe->nsections * 40u > got)
        return vmi__fail(vmi, VMI_ERR_FORMAT, "PE at 0x%llx: %u sections do not fit the header page",
                         (unsigned long long)base, pe->nsections);
    vmi__pe_sections(pe, h, opt + optsize);
    return VMI_OK;
}

/* Whether rva lies in an executable section (nm's T) or not (D). */
static char vmi__pe_sym_type(const vmi__pe *pe, uint32_t rva) {
    uint16_t i;
    for (i = 0; i < pe->nsections; i++)
        if (rva - pe->sec[i].rva < pe->sec[i].size) return (pe->sec[i].flags & VMI__PE_SCN_EXEC) ? 'T' : 'D';
    return 'D';
}

typedef struct vmi__pe_exp_dir {
    uint32_t base, nfuncs, nnames;
    uint8_t *funcs, *names, *ords, *named; /* raw little-endian arrays; named: one byte per function */
} vmi__pe_exp_dir;

static void vmi__pe_exp_free(vmi_instance *vmi, vmi__pe_exp_dir *x) {
    vmi__free(vmi, x->funcs);
    vmi__free(vmi, x->names);
    vmi__free(vmi, x->ords);
    vmi__free(vmi, x->named);
}

static vmi_status vmi__pe_exp_load(vmi_instance *vmi, const vmi__pe *pe, char *dll, size_t dllcap, vmi__pe_exp_dir *x) {
    uint8_t d[40];
    vmi_status st;
    memset(x, 0, sizeof *x);
    if (!pe->exp_rva || pe->exp_size < 40)
        return vmi__fail(vmi, VMI_ERR_NOT_FOUND, "PE at 0x%llx: no export directory", (unsigned long long)pe->base);
    if ((st = vmi__pe_read(vmi, pe, pe->exp_rva, d, sizeof d)) != VMI_OK) return st;
    if (dll && dllcap) vmi__pe_str(vmi, pe, (uint32_t)vmi__le(d + 12, 4), dll, dllcap);
    x->base = (uint32_t)vmi__le(d + 16, 4);
    x->nfuncs = (uint32_t)vmi__le(d + 20, 4);
    x->nnames = (uint32_t)vmi__le(d + 24, 4);
    if (x->nfuncs > VMI__PE_MAX_EXPORTS || x->nnames > VMI__PE_MAX_EXPORTS)
        return vmi__fail(vmi, VMI_ERR_LIMIT, "PE at 0x%llx: %u functions, %u names exported (cap %u)",
                         (unsigned long long)pe->base, x->nfuncs, x->nnames, VMI__PE_MAX_EXPORTS);
    x->funcs = (uint8_t *)vmi__alloc(vmi, (size_t)x->nfuncs * 4 + 1);
    x->names = (uint8_t *)vmi__alloc(vmi, (size_t)x->nnames * 4 + 1);
    x->ords = (uint8_t *)vmi__alloc(vmi, (size_t)x->nnames * 2 + 1);
    x->named = (uint8_t *)vmi__alloc(vmi, (size_t)x->nfuncs + 1);
    if (!x->funcs || !x->names || !x->ords || !x->named) return vmi__fail(vmi, VMI_ERR_NOMEM, "export tables");
    if ((st = vmi__pe_gather(vmi, pe, (uint32_t)vmi__le(d + 28, 4), x->funcs, (size_t)x->nfuncs * 4)) != VMI_OK ||
        (st = vmi__pe_gather(vmi, pe, (uint32_t)vmi__le(d + 32, 4), x->names, (size_t)x->nnames * 4)) != VMI_OK ||
        (st = vmi__pe_gather(vmi, pe, (uint32_t)vmi__le(d + 36, 4), x->ords, (size_t)x->nnames * 2)) != VMI_OK)
        return st;
    return VMI_OK;
}

/* Calls fn for function `index`: its RVA, or the forwarder string when the
   RVA points back into the export directory. 0: skipped or go on. */
static int vmi__pe_exp_emit(vmi_instance *vmi, const vmi__pe *pe, const vmi__pe_exp_dir *x, uint32_t index,
                            const char *name, vmi__pe_export_fn fn, void *user) {
    vmi__pe_export e;
    char fwd[VMI__PE_NAME_MAX];
    uint32_t rva = (uint32_t)vmi__le(x->funcs + 4 * (size_t)index, 4);
    if (!rva || rva >= pe->size) return 0; /* unused slot, or its page was missing */
    e.name = name;
    e.forwarder = NULL;
    e.ordinal = x->base + index;
    e.rva = rva;
    if (rva - pe->exp_rva < pe->exp_size) {
        if (vmi__pe_str(vmi, pe, rva, fwd, sizeof fwd) != VMI_OK) return 0;
        e.forwarder = fwd;
        e.rva = 0;
    }
    return fn(user, &e);
}

/* Every export: named ones in name-table order, then those exported by
   ordinal only. `dll` (may be NULL) gets the directory's DLL name. */
static vmi_status vmi__pe_exports(vmi_instance *vmi, const vmi__pe *pe, char *dll, size_t dllcap, vmi__pe_export_fn fn,
                                  void *user) {
    vmi__pe_exp_dir x;
    char name[VMI__PE_NAME_MAX];
    uint32_t i;
    int stop = 0;
    vmi_status st = vmi__pe_exp_load(vmi, pe, dll, dllcap, &x);
    for (i = 0; st == VMI_OK && i < x.nnames && !stop; i++) {
        uint32_t index = (uint32_t)vmi__le(x.ords + 2 * (size_t)i, 2);
        if (index >= x.nfuncs) continue;
        if (vmi__pe_str(vmi, pe, (uint32_t)vmi__le(x.names + 4 * (size_t)i, 4), name, sizeof name) != VMI_OK) continue;
        x.named[index] = 1;
        stop = vmi__pe_exp_emit(vmi, pe, &x, index, name, fn, user);
    }
    for (i = 0; st == VMI_OK && i < x.nfuncs && !stop; i++)
        if (!x.named[i]) stop = vmi__pe_exp_emit(vmi, pe, &x, i, NULL, fn, user);
    vmi__pe_exp_free(vmi, &x);
    return st;
}

/* The export directory's DLL name alone (kernel identification). */
static vmi_status vmi__pe_dll_name(vmi_instance *vmi, const vmi__pe *pe, char *buf, size_t cap) {
    uint8_t d[16];
    vmi_status st;
    buf[0] = 0;
    if (!pe->exp_rva || pe->exp_size < 40)
        return vmi__fail(vmi, VMI_ERR_NOT_FOUND, "PE at 0x%llx: no export directory", (unsigned long long)pe->base);
    if ((st = vmi__pe_read(vmi, pe, pe->exp_rva, d, sizeof d)) != VMI_OK) return st;
    return vmi__pe_str(vmi, pe, (uint32_t)vmi__le(d + 12, 4), buf, cap);
}

static void vmi__pe_cv_id(vmi__pe_cv *cv) {
    const uint8_t *g = cv->guid;
    snprintf(cv->id, sizeof cv->id, "%08X%04X%04X%02X%02X%02X%02X%02X%02X%02X%02X%X", (unsigned)vmi__le(g, 4),
             (unsigned)vmi__le(g + 4, 2), (unsigned)vmi__le(g + 6, 2), g[8], g[9], g[10], g[11], g[12], g[13], g[14],
             g[15], (unsigned)cv->age);
}

/* An RSDS record: "RSDS", GUID, age, then the PDB path (only its file name
   is kept: the build machine's directories mean nothing here). */
static int vmi__pe_rsds(const uint8_t *rec, size_t n, vmi__pe_cv *cv) {
    const char *name, *slash;
    size_t len;
    if (n < 25 || memcmp(rec, "RSDS", 4)) return 0;
    memcpy(cv->guid, rec + 4, 16);
    cv->age = (uint32_t)vmi__le(rec + 20, 4);
    name = (const char *)rec + 24;
    for (len = 0; len < n - 24 && name[len]; len++) {}
    if (len == n - 24) return 0; /* no NUL inside the record */
    for (slash = name + len; slash > name && slash[-1] != '\\' && slash[-1] != '/'; slash--) {}
    snprintf(cv->pdb, sizeof cv->pdb, "%.63s", slash);
    vmi__pe_cv_id(cv);
    return cv->pdb[0] != 0;
}

static vmi_status vmi__pe_codeview(vmi_instance *vmi, const vmi__pe *pe, vmi__pe_cv *cv) {
    uint32_t i, n = (uint32_t)vmi__min64(pe->dbg_size / 28, VMI__PE_MAX_DEBUG);
    uint8_t e[28], rec[24 + VMI__PE_NAME_MAX];
    memset(cv, 0, sizeof *cv);
    for (i = 0; i < n; i++) {
        uint32_t size, rva;
        if (vmi__pe_read(vmi, pe, pe->dbg_rva + i * 28, e, sizeof e) != VMI_OK) continue;
        size = (uint32_t)vmi__le(e + 16, 4);
        rva = (uint32_t)vmi__le(e + 20, 4);
        if (vmi__le(e + 12, 4) != 2 || size < 25 || !rva) continue; /* IMAGE_DEBUG_TYPE_CODEVIEW */
        size = (uint32_t)vmi__min64(size, sizeof rec);
        if (vmi__pe_read(vmi, pe, rva, rec, size) == VMI_OK && vmi__pe_rsds(rec, size, cv)) return VMI_OK;
    }
    return vmi__fail(vmi, VMI_ERR_NOT_FOUND, "PE at 0x%llx: no CodeView RSDS debug record", (unsigned long long)pe->base);
}

/* >>windows ================================================================ */
/* Finding a Windows kernel with nothing given, and its processes, modules,
   loaded DLLs and exported symbols, through the same API as Linux.

   Discovery, in order of trust: a crash dump's header (WINDUMP_HEADER note:
   page-table root, list heads, KDBG), the x64 low-memory processor start
   block (its PML4 and a kernel entry VA), the KDBG block found by its
   'KDBG' owner tag and checked against the kernel it names, registers (a
   kernel-mode RIP, the IDT), and on 32-bit x86 the page directory that maps
   itself (non-PAE: PDE 0x300 points at the directory; PAE: the fourth page
   directory's entries 0-3 point at the four directories, mapping them at
   0xC0600000), and on x64 the PML4 with a self-referencing entry in its
   upper half (any index: randomized since Windows 10 1607). A root found
   without a kernel VA is checked by finding ntoskrnl in its kernel half; a
   register root without the kernel (a KVA-shadow user root) is replaced so.
   With no sign at all (Windows 8+ encodes KDBG) the self-map search runs
   after Linux's failed. The kernel image is the PE whose export directory
   names it ntoskrnl; its CodeView record says which PDB describes it.

   Offsets: a Volatility3 ISF of that PDB (checked by GUID and age: an ISF
   of another build is refused for the views, and os_info says so), else a
   LibVMI config's win_* keys, else the built-in table of a few published
   builds. Windows 8+ x64 encodes KDBG unless a debugger is attached: it is
   decoded when the profile gives KiWaitNever, KiWaitAlways and
   KdpDataBlockEncoded, else the views use the exports and the profile. */

#define VMI__WIN_MAX_PROCS (1u << 20)
#define VMI__WIN_MAX_MODULES 65536u
#define VMI__WIN_MAX_DLLS 16384u
#define VMI__WIN_MAX_THREADS 65536u /* per process */
#define VMI__WIN_SCAN_BACK (32u << 20) /* bytes scanned below a kernel VA for ntoskrnl's MZ */
#define VMI__WIN_MAX_SYMS (1u << 22)
#define VMI__KDBG_TAG 0x4742444bu     /* 'KDBG' */

/* EPROCESS members the views read, by ISF member path. */
enum {
    VMI__WE_DTB, VMI__WE_PID, VMI__WE_LINKS, VMI__WE_PPID, VMI__WE_NAME, VMI__WE_PEB, VMI__WE_CREATE,
    VMI__WE_THREADS, VMI__WE_AUDIT, VMI__WE_COUNT
};
static const char *const vmi__win_members[VMI__WE_COUNT] = {
    "Pcb.DirectoryTableBase", "UniqueProcessId", "ActiveProcessLinks", "InheritedFromUniqueProcessId",
    "ImageFileName", "Peb", "CreateTime", "ActiveThreads", "SeAuditProcessCreationInfo"};

/* Published EPROCESS layouts (from Microsoft's PDBs, as the ntdiff/headers
   and Vergilius projects and Volatility's profiles print them), in
   vmi__win_members order. Windows 10 19041-19045 share one kernel layout. */
typedef struct vmi__win_layout {
    uint32_t build_lo, build_hi, ptr;
    int16_t off[VMI__WE_COUNT];
    const char *name;
} vmi__win_layout;

static const vmi__win_layout vmi__win_layouts[] = {
    {7600, 7601, 8, {0x28, 0x180, 0x188, 0x290, 0x2e0, 0x338, 0x168, 0x328, 0x390}, "Windows 7 SP1 x64"},
    {19041, 19045, 8, {0x28, 0x440, 0x448, 0x540, 0x5a8, 0x550, 0x468, 0x5f0, 0x5c0}, "Windows 10 2004-22H2 x64"},
    {7600, 7601, 4, {0x18, 0xb4, 0xb8, 0x140, 0x16c, 0x1a8, 0xa0, 0x198, 0x1ec}, "Windows 7 SP1 x86"},
};

/* Threads and processors: KPCR.Self, the KPRCB inside the KPCR,
   KPRCB.CurrentThread, KTHREAD.ApcState, KAPC_STATE.Process,
   EPROCESS.ThreadListHead, ETHREAD.Cid, ETHREAD.ThreadListEntry. From the
   Vergilius Project's pages of _KPCR, _KPRCB, _KTHREAD, _KAPC_STATE,
   _EPROCESS and _ETHREAD for these builds (vergiliusproject.com/kernels/
   x64/Windows 7 | 2008R2/SP1, x64/Windows 10 | 2016/2004 20H1, x86/
   Windows 7 | 2008R2/SP1), which print Microsoft's PDBs. */
enum {
    VMI__WT_PCR_SELF, VMI__WT_PCR_PRCB, VMI__WT_PRCB_THREAD, VMI__WT_APC, VMI__WT_APC_PROCESS, VMI__WT_HEAD,
    VMI__WT_CID, VMI__WT_LINK, VMI__WT_COUNT
};
static const char *const vmi__win_tmembers[2][VMI__WT_COUNT][2] = {
    {{"_KPCR", "SelfPcr"}, {"_KPCR", "PrcbData"}, {"_KPRCB", "CurrentThread"}, {"_KTHREAD", "ApcState"},
     {"_KAPC_STATE", "Process"}, {"_EPROCESS", "ThreadListHead"}, {"_ETHREAD", "Cid"}, {"_ETHREAD", "ThreadListEntry"}},
    {{"_KPCR", "Self"}, {"_KPCR", "Prcb"}, {"_KPRCB", "CurrentThread"}, {"_KTHREAD", "ApcState"},
     {"_KAPC_STATE", "Process"}, {"_EPROCESS", "ThreadListHead"}, {"_ETHREAD", "Cid"}, {"_ETHREAD", "ThreadListEntry"}}};

typedef struct vmi__win_tlayout {
    uint32_t build_lo, build_hi, ptr;
    int16_t off[VMI__WT_COUNT];
} vmi__win_tlayout;

static const vmi__win_tlayout vmi__win_tlayouts[] = {
    {7600, 7601, 8, {0x18, 0x180, 0x8, 0x50, 0x20, 0x308, 0x3b0, 0x420}},
    {19041, 19045, 8, {0x18, 0x180, 0x8, 0x98, 0x20, 0x5e0, 0x478, 0x4e8}},
    {7600, 7601, 4, {0x1c, 0x120, 0x4, 0x40, 0x10, 0x188, 0x22c, 0x268}},
};

/* Heads of structures that have kept their layout since NT 5 on each
   word size: (K)LDR_DATA_TABLE_ENTRY, PEB, PEB_LDR_DATA,
   RTL_USER_PROCESS_PARAMETERS, UNICODE_STRING. */
typedef struct vmi__win_fixed {
    uint8_t ldr_base, ldr_size, ldr_full, ldr_name; /* DllBase, SizeOfImage, FullDllName, BaseDllName */
    uint8_t peb_ldr, peb_params, ldr_list;          /* PEB.Ldr, PEB.ProcessParameters, PEB_LDR_DATA.InLoadOrderModuleList */
    uint8_t params_image, params_cmd;               /* ImagePathName, CommandLine */
} vmi__win_fixed;

static const vmi__win_fixed vmi__win_fixed_layout[2] = {
    {0x18, 0x20, 0x24, 0x2c, 0x0c, 0x10, 0x0c, 0x38, 0x40}, /* 32-bit */
    {0x30, 0x40, 0x48, 0x58, 0x18, 0x20, 0x10, 0x60, 0x70}, /* 64-bit */
};

struct vmi__win {
    int64_t off[VMI__WE_COUNT];  /* -1: unknown */
    int64_t th[VMI__WT_COUNT];   /* threads and processors, -1: unknown */
    int64_t cfg[VMI__WE_COUNT];  /* from a LibVMI config, -1: not given */
    uint64_t cfg_kdvb, cfg_sysproc, cfg_kdbg, cfg_kbase; /* win_kdvb (VA), win_sysproc (VA or PA), win_kdbg (RVA), win_ntoskrnl_va */
    uint64_t ps_head, mod_head, kdbg, sysproc, stub_entry;
    uint64_t dump_dtb, dump_ps, dump_mods, dump_kdbg;
    uint64_t scan_kbase; /* ntoskrnl found by scanning a candidate root's kernel half */
    vmi__pe_cv cv;       /* the kernel's CodeView record (PDB name, GUID, age) */
    uint32_t ptr, image_size, dump_build;
    int dump_bits, dump_pae, stub, isf_ok, encoded;
    char kdbg_note[64];
    char offsets_err[256]; /* why the process views cannot work, "" when they can */
};

static vmi__win *vmi__win_get(vmi_instance *vmi) {
    size_t i;
    if (vmi->win || !(vmi->win = (vmi__win *)vmi__alloc(vmi, sizeof *vmi->win))) return vmi->win;
    for (i = 0; i < VMI__WE_COUNT; i++) vmi->win->off[i] = vmi->win->cfg[i] = -1;
    for (i = 0; i < VMI__WT_COUNT; i++) vmi->win->th[i] = -1;
    return vmi->win;
}

/* LibVMI's win_* keys: EPROCESS offsets and a few addresses. */
static int vmi__win_config(vmi_instance *vmi, const char *key, uint64_t v) {
    static const struct { const char *key; int idx; } keys[] = {
        {"win_tasks", VMI__WE_LINKS}, {"win_pdbase", VMI__WE_DTB}, {"win_pid", VMI__WE_PID}, {"win_pname", VMI__WE_NAME}};
    vmi__win *w = vmi__win_get(vmi);
    size_t i;
    if (!w) return 0;
    for (i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!strcmp(key, keys[i].key)) return (int)(w->cfg[keys[i].idx] = (int64_t)v, 1);
    if (!strcmp(key, "win_kdvb")) return (int)(w->cfg_kdvb = v, 1);
    if (!strcmp(key, "win_sysproc")) return (int)(w->cfg_sysproc = v, 1);
    if (!strcmp(key, "win_kdbg")) return (int)(w->cfg_kdbg = v, 1);
    if (!strcmp(key, "win_ntoskrnl_va")) return (int)(w->cfg_kbase = v, 1);
    return 0;
}

/* ---- reading helpers --------------------------------------------------- */

static uint64_t vmi__win_field(vmi_instance *vmi, uint64_t base, int idx, unsigned size) {
    uint64_t v = 0;
    if (vmi->win->off[idx] >= 0) vmi__kread(vmi, base + (uint64_t)vmi->win->off[idx], size, &v);
    return v;
}

static const vmi__win_fixed *vmi__win_fix(const vmi_instance *vmi) {
    return &vmi__win_fixed_layout[vmi->win->ptr == 8];
}

/* A UNICODE_STRING {Length, MaximumLength, Buffer} at va, as UTF-8. */
static vmi_status vmi__win_ustr(vmi_instance *vmi, uint64_t dtb, uint64_t va, char *buf, size_t cap, size_t *len) {
    uint64_t n, ptr;
    unsigned w = vmi->win->ptr;
    vmi_status st;
    buf[0] = 0;
    if (len) *len = 0;
    if ((st = vmi__read_le_va(vmi, dtb, va, 2, &n)) != VMI_OK || (st = vmi__read_le_va(vmi, dtb, va + w, w, &ptr)) != VMI_OK)
        return st;
    if (!n) return VMI_OK;
    if (!ptr) return vmi__fail(vmi, VMI_ERR_FORMAT, "UNICODE_STRING at 0x%llx: %u bytes at NULL", (unsigned long long)va, (unsigned)n);
    return vmi_read_utf16(vmi, dtb, ptr, (size_t)n, buf, cap, len);
}

/* ---- symbols: exports and the profile's, in one table ------------------ */

typedef struct vmi__symb {
    vmi_instance *vmi;
    vmi__symtab *s;
    size_t cap, pool_cap;
    const vmi__pe *pe;
    size_t nshadowed; /* exports the ISF also names */
    vmi_status st;
} vmi__symb;

static int vmi__symb_grow(vmi__symb *b, size_t name_len) {
    vmi__symtab *s = b->s;
    if (s->count == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 4096;
        vmi__sym *ns = (vmi__sym *)vmi__alloc(b->vmi, nc * sizeof *ns);
        if (!ns) return 0;
        if (s->count) memcpy(ns, s->syms, s->count * sizeof *ns);
        vmi__free(b->vmi, s->syms);
        s->syms = ns, b->cap = nc;
    }
    if (s->pool_len + name_len > b->pool_cap) {
        size_t nc = b->pool_cap ? b->pool_cap * 2 : 65536;
        char *np;
        while (nc < s->pool_len + name_len) nc *= 2;
        if (!(np = (char *)vmi__alloc(b->vmi, nc))) return 0;
        if (s->pool_len) memcpy(np, s->pool, s->pool_len);
        vmi__free(b->vmi, s->pool);
        s->pool = np, b->pool_cap = nc;
    }
    return 1;
}

static void vmi__symb_add(vmi__symb *b, const char *name, uint64_t addr, char type) {
    size_t n = strlen(name) + 1;
    vmi__sym *y;
    if (b->st != VMI_OK || n > VMI__PE_NAME_MAX) return;
    if (b->s->count >= VMI__WIN_MAX_SYMS || b->s->pool_len + n > 0xffffffffu) {
        b->st = vmi__fail(b->vmi, VMI_ERR_LIMIT, "more than %u kernel symbols", VMI__WIN_MAX_SYMS);
        return;
    }
    if (!vmi__symb_grow(b, n)) {
        b->st = vmi__fail(b->vmi, VMI_ERR_NOMEM, "symbol table of %zu symbols", b->s->count);
        return;
    }
    y = &b->s->syms[b->s->count++];
    y->addr = addr;
    y->type = type;
    y->name = (uint32_t)b->s->pool_len;
    memcpy(b->s->pool + b->s->pool_len, name, n);
    b->s->pool_len += n;
}

/* With the kernel's own ISF loaded its symbols are the PDB's: an export
   of the same name is left to them. */
static int vmi__symb_export(void *user, const vmi__pe_export *e) {
    vmi__symb *b = (vmi__symb *)user;
    uint64_t isf;
    if (e->name && b->vmi->win->isf_ok && vmi__types_symbol(b->vmi->types, e->name, &isf) == VMI_OK) {
        b->nshadowed++;
        return 0;
    }
    if (e->name && !e->forwarder) vmi__symb_add(b, e->name, b->pe->base + e->rva, vmi__pe_sym_type(b->pe, e->rva));
    return b->st != VMI_OK;
}

/* The ISF's symbols are RVAs from the kernel base. */
static void vmi__symb_isf(vmi__symb *b, const vmi__types *t) {
    size_t i;
    for (i = 0; i < t->nsyms && b->st == VMI_OK; i++)
        if (t->syms[i].addr < b->pe->size)
            vmi__symb_add(b, t->pool + t->syms[i].name, b->pe->base + t->syms[i].addr,
                          vmi__pe_sym_type(b->pe, (uint32_t)t->syms[i].addr));
}

/* Exports that cannot be read (a hostile export directory) leave the
   table to the profile's symbols: *exp_err says why, the kernel stays
   found. */
static vmi_status vmi__win_symbols(vmi_instance *vmi, const vmi__pe *pe, size_t *nexports, char *exp_err, size_t cap) {
    vmi__symb b;
    vmi_status st;
    memset(&b, 0, sizeof b);
    b.vmi = vmi;
    b.pe = pe;
    if (!(b.s = (vmi__symtab *)vmi__alloc(vmi, sizeof *b.s))) return vmi__fail(vmi, VMI_ERR_NOMEM, "symbol table");
    b.s->source = "exports";
    exp_err[0] = 0;
    if (vmi__pe_exports(vmi, pe, NULL, 0, vmi__symb_export, &b) != VMI_OK) snprintf(exp_err, cap, "%s", vmi->err);
    else if (!b.s->count && !b.nshadowed) snprintf(exp_err, cap, "no export readable");
    *nexports = b.s->count + b.nshadowed;
    if (b.st == VMI_OK && vmi->win->isf_ok) vmi__symb_isf(&b, vmi->types);
    st = b.st;
    if (st == VMI_OK) st = vmi__symtab_index(vmi, b.s);
    if (st != VMI_OK) {
        vmi__symtab_free(vmi, b.s);
        return st;
    }
    if (vmi->ksyms) vmi__symtab_free(vmi, vmi->ksyms);
    vmi->ksyms = b.s;
    return VMI_OK;
}

/* Adds what discovery found by structure (PsActiveProcessHead is not
   exported) unless a symbol of that name exists. */
static void vmi__win_found_sym(vmi_instance *vmi, const char *name, uint64_t va) {
    vmi__symb b;
    if (!va || !vmi->ksyms || vmi__symtab_find(vmi->ksyms, name, NULL, NULL) == VMI_OK) return;
    memset(&b, 0, sizeof b);
    b.vmi = vmi;
    b.s = vmi->ksyms;
    b.cap = b.s->count;
    b.pool_cap = b.s->pool_len;
    vmi__symb_add(&b, name, va, 'D');
    if (b.st == VMI_OK) vmi__symtab_index(vmi, b.s);
}

/* ---- discovery ----------------------------------------------------------- */

/* The crash dump header the file backend exposes (DUMP_HEADER64/32, as
   QEMU's win_dump_defs.h and Volatility's crash layer lay them out). */
static void vmi__win_dump_header(vmi_instance *vmi, vmi__win *w) {
    const uint8_t *h;
    size_t len;
    const void *data;
    if (vmi_get_note(vmi, "WINDUMP_HEADER", &data, &len) != VMI_OK) return;
    h = (const uint8_t *)data;
    if (len >= 0x88 && !memcmp(h, "PAGEDU64", 8)) { /* fields never filled read "PAGE" */
        w->dump_bits = 64;
        w->dump_build = (uint32_t)vmi__le(h + 0x0c, 4) & 0xffff;
        w->dump_dtb = vmi__le(h + 0x10, 8);
        w->dump_mods = vmi__le(h + 0x20, 8);
        w->dump_ps = vmi__le(h + 0x28, 8);
        w->dump_kdbg = vmi__le(h + 0x80, 8);
    } else if (len >= 0x64 && !memcmp(h, "PAGEDUMP", 8)) {
        w->dump_bits = 32;
        w->dump_build = (uint32_t)vmi__le(h + 0x0c, 4) & 0xffff;
        w->dump_dtb = vmi__le(h + 0x10, 4);
        w->dump_mods = vmi__le(h + 0x18, 4);
        w->dump_ps = vmi__le(h + 0x1c, 4);
        w->dump_kdbg = vmi__le(h + 0x60, 4);
        w->dump_pae = h[0x5c] != 0;
    }
    if ((uint32_t)w->dump_mods == 0x45474150u) w->dump_mods = 0;
    if ((uint32_t)w->dump_ps == 0x45474150u) w->dump_ps = 0;
    if ((uint32_t)w->dump_kdbg == 0x45474150u) w->dump_kdbg = 0;
}

/* x64: the real-mode start block below 1 MiB (PROCESSOR_START_BLOCK,
   found as MemProcFS does): a jmp, then the kernel's entry VA at 0x70 and
   the PML4 at 0xA0. */
static void vmi__win_low_stub(vmi_instance *vmi, vmi__win *w) {
    uint64_t pa;
    for (pa = 0x1000; pa < 0x100000 && !w->stub; pa += VMI__PAGE_SIZE) {
        uint8_t b[0xa8];
        uint64_t entry, pml4;
        if (vmi__read_pa(vmi, pa, b, sizeof b, NULL) != VMI_OK) continue;
        entry = vmi__le(b + 0x70, 8);
        pml4 = vmi__le(b + 0xa0, 8);
        if ((vmi__le(b, 8) & 0xffffffffffff00ffull) != 0x00000001000600e9ull) continue;
        if (entry < 0xffff800000000000ull || (pml4 & 0xfff) || !pml4 || vmi__range_find(vmi, pml4) == VMI__NONE) continue;
        w->stub = 1;
        w->stub_entry = entry;
        w->dump_dtb = w->dump_dtb ? w->dump_dtb : pml4;
        if (!w->dump_bits) w->dump_bits = 64;
    }
}

/* KDDEBUGGER_DATA64 (wdbgexts.h): List (16), OwnerTag, Size, KernBase
   0x18, PaeEnabled 0x36, PsLoadedModuleList 0x48, PsActiveProcessHead 0x50.
   32-bit kernels keep the same 64-bit layout. */
typedef struct vmi__kdbg {
    uint64_t pa, kernbase, mods, procs;
    uint32_t size;
    int pae, bits;
} vmi__kdbg;

static int vmi__kdbg_parse(const uint8_t *b, unsigned ptr, vmi__kdbg *k) {
    uint64_t mask = ptr == 4 ? 0xffffffffull : ~0ull;
    if (vmi__le(b + 0x10, 4) != VMI__KDBG_TAG) return 0;
    k->size = (uint32_t)vmi__le(b + 0x14, 4);
    k->kernbase = vmi__le(b + 0x18, 8) & mask;
    k->mods = vmi__le(b + 0x48, 8) & mask;
    k->procs = vmi__le(b + 0x50, 8) & mask;
    k->pae = b[0x36] & 1;
    k->bits = (int)ptr * 8;
    if (k->size < 0x80 || k->size > 0x2000 || (k->kernbase & 0xfff) || !k->mods || !k->procs) return 0;
    if (ptr == 8) /* 32-bit kernels sign-extend their pointers here */
        return k->kernbase >= 0xffff800000000000ull && (k->kernbase >> 32) != 0xffffffffull;
    return k->kernbase >= 0x80000000ull;
}

static uint32_t vmi__le_pa32(vmi_instance *vmi, uint64_t pa) {
    uint64_t v = 0;
    vmi__read_le_pa(vmi, pa, 4, &v);
    return (uint32_t)v;
}

/* A tag whose KernBase looks like a kernel's, whatever else is wrong:
   Windows all the same, with a damaged KDBG. */
static int vmi__kdbg_plausible(const uint8_t *b) {
    uint64_t kb = vmi__le(b + 0x18, 8);
    if (kb & 0xfff) return 0;
    return kb >= 0xffff800000000000ull || (kb >= 0x80000000ull && kb <= 0xffffffffull);
}

typedef struct vmi__kdbg_scan {
    vmi__win *w;
    vmi__kdbg found[8];
    unsigned n, rejected;
    uint64_t rejected_pa;
} vmi__kdbg_scan;

static int vmi__kdbg_hit(vmi_instance *vmi, uint64_t pa, const uint8_t *at, size_t avail, void *user) {
    vmi__kdbg_scan *s = (vmi__kdbg_scan *)user;
    uint8_t b[0x58];
    vmi__kdbg k;
    (void)at, (void)avail;
    if (pa < 0x10 || vmi__read_pa(vmi, pa - 0x10, b, sizeof b, NULL) != VMI_OK) return 0;
    memset(&k, 0, sizeof k);
    k.pa = pa - 0x10;
    if (vmi__kdbg_parse(b, 8, &k) || vmi__kdbg_parse(b, 4, &k)) s->found[s->n++] = k;
    else if (vmi__kdbg_plausible(b) && !s->rejected++)
        s->rejected_pa = pa - 0x10;
    return s->n == sizeof s->found / sizeof s->found[0];
}

static int vmi__win_is_kernel(vmi_instance *vmi, uint64_t va, vmi__pe *pe);

/* Where ntoskrnl lies when nothing names it: x64 kernels since Windows 7
   load it in the PML4 slot of 0xfffff800`00000000 (with hal and, from
   Windows 10, the boot drivers); 32-bit ones above 2 GiB, below the page
   tables' self-map at 0xC0000000. Bounded by tables walked and images opened. */
#define VMI__WIN_KSLOT_LO 0xfffff80000000000ull
#define VMI__WIN_KSLOT_HI 0xfffff87fffffffffull
#define VMI__WIN_KSCAN_TABLES 4096u
#define VMI__WIN_KSCAN_IMAGES 4096u

typedef struct vmi__win_kscan {
    vmi_instance *vmi;
    vmi__pe pe;
    uint32_t budget; /* MZ pages still to open */
    uint64_t found;
} vmi__win_kscan;

static int vmi__win_kscan_page(void *user, const vmi_page *pg) {
    vmi__win_kscan *s = (vmi__win_kscan *)user;
    uint64_t off;
    for (off = 0; off < pg->size && !s->found && s->budget; off += VMI__PAGE_SIZE) {
        uint8_t mz[2];
        if (vmi__read_pa(s->vmi, pg->pa + off, mz, 2, NULL) != VMI_OK || mz[0] != 'M' || mz[1] != 'Z') continue;
        s->budget--;
        if (vmi__win_is_kernel(s->vmi, pg->va + off, &s->pe)) s->found = pg->va + off;
    }
    return s->found || !s->budget;
}

/* ntoskrnl by its export directory, in the kernel half of the current root. */
static uint64_t vmi__win_kernel_scan(vmi_instance *vmi) {
    vmi__win_kscan s;
    int wide = vmi_addr_width(vmi) == 8;
    memset(&s, 0, sizeof s);
    s.vmi = vmi;
    s.budget = VMI__WIN_KSCAN_IMAGES;
    vmi_foreach_page(vmi, vmi->paging.dtb, wide ? VMI__WIN_KSLOT_LO : 0x80000000ull,
                     wide ? VMI__WIN_KSLOT_HI : 0xbfffffffull, VMI__WIN_KSCAN_TABLES, vmi__win_kscan_page, &s);
    return s.found;
}

/* A candidate root is right when the kernel base translates to an MZ; with
   no kernel base, when ntoskrnl turns up in its kernel half. */
static int vmi__win_root_ok(vmi_instance *vmi, const vmi_paging *p, uint64_t kva) {
    vmi_paging saved = vmi->paging;
    uint8_t mz[2] = {0, 0};
    char err[VMI__ERR_MAX];
    int ok;
    memcpy(err, vmi->err, sizeof err);
    vmi->paging = *p;
    vmi__paging_changed(vmi);
    if (!kva && (kva = vmi__win_kernel_scan(vmi)) != 0 && vmi->win) vmi->win->scan_kbase = kva;
    ok = kva && vmi_read_va(vmi, p->dtb, kva, mz, 2, NULL) == VMI_OK && mz[0] == 'M' && mz[1] == 'Z';
    vmi->paging = saved;
    vmi__paging_changed(vmi);
    memcpy(vmi->err, err, sizeof err);
    return ok;
}

static void vmi__win_set_paging(vmi_instance *vmi, vmi_paging_mode mode, uint64_t dtb, const char *how) {
    vmi_paging p;
    memset(&p, 0, sizeof p);
    p.mode = mode;
    p.dtb = dtb;
    p.flags = VMI_PAGING_WIN_TRANSITION | (mode != VMI_PAGING_LEGACY ? VMI_PAGING_NXE : 0);
    vmi_set_paging(vmi, &p);
    snprintf(vmi->os.paging_source, sizeof vmi->os.paging_source, "%s %s at pa 0x%llx", vmi_paging_mode_name(mode), how,
             (unsigned long long)dtb);
}

/* Tries the x86 modes the hints allow for root `dtb`. */
static int vmi__win_try_root(vmi_instance *vmi, uint64_t dtb, int bits, int pae, uint64_t kva, const char *how) {
    vmi_paging_mode modes[3];
    size_t n = 0, i;
    vmi_paging p;
    if (bits != 32) modes[n++] = VMI_PAGING_IA32E;
    if (bits != 64) modes[n++] = pae ? VMI_PAGING_PAE : VMI_PAGING_LEGACY;
    if (bits != 64) modes[n++] = pae ? VMI_PAGING_LEGACY : VMI_PAGING_PAE;
    for (i = 0; i < n; i++) {
        memset(&p, 0, sizeof p);
        p.mode = modes[i];
        p.dtb = dtb;
        if (vmi__win_root_ok(vmi, &p, kva)) {
            vmi__win_set_paging(vmi, modes[i], dtb, how);
            return 1;
        }
    }
    return 0;
}

/* 32-bit x86 without a root: page directories that map themselves. */
typedef struct vmi__selfmap {
    uint64_t kva;
    int pae, found;
} vmi__selfmap;

static int vmi__win_pdpt_hit(vmi_instance *vmi, uint64_t pa, const uint8_t *at, size_t avail, void *user) {
    uint64_t *pd = (uint64_t *)user, e;
    unsigned i;
    (void)at, (void)avail;
    for (i = 1; i < 4; i++)
        if (vmi__read_le_pa(vmi, pa + 8 * i, 8, &e) != VMI_OK || !(e & 1) || (e & 0x000ffffffffff000ull) != pd[i]) return 0;
    pd[4] = pa;
    return 1;
}

static int vmi__win_selfmap_pae(vmi_instance *vmi, uint64_t page, uint64_t kva) {
    uint64_t pd[5], e, needle;
    unsigned i;
    uint8_t nb[8];
    for (i = 0; i < 4; i++) {
        if (vmi__read_le_pa(vmi, page + 8 * i, 8, &e) != VMI_OK || !(e & 1)) return 0;
        pd[i] = e & 0x000ffffffffff000ull;
    }
    if (pd[3] != page) return 0;
    pd[4] = 0;
    needle = pd[0] | 1; /* PDPTEs carry only the present bit */
    for (i = 0; i < 8; i++) nb[i] = (uint8_t)(needle >> (8 * i));
    vmi__scan_phys(vmi, nb, 8, 32, vmi__win_pdpt_hit, pd);
    return pd[4] && vmi__win_try_root(vmi, pd[4], 32, 1, kva, "self-mapped page directories, PDPT");
}

static int vmi__win_selfmap(vmi_instance *vmi, uint64_t kva, int pae_first) {
    size_t r;
    int pass;
    for (pass = 0; pass < 2; pass++) {
        int pae = pass ? !pae_first : pae_first;
        for (r = 0; r < vmi->be.nranges; r++) {
            const vmi_mem_range *rg = &vmi->be.ranges[r];
            uint64_t page;
            for (page = (rg->pa + 0xfff) & ~0xfffull; page + VMI__PAGE_SIZE <= rg->pa + rg->size; page += VMI__PAGE_SIZE) {
                uint64_t e;
                if (pae) {
                    if (vmi__read_le_pa(vmi, page + 0x18, 8, &e) != VMI_OK || (e & 0x000ffffffffff000ull) != page || !(e & 1))
                        continue;
                    if (vmi__win_selfmap_pae(vmi, page, kva)) return 1;
                } else {
                    if (vmi__read_le_pa(vmi, page + 0xc00, 4, &e) != VMI_OK || (e & 0xfffff000u) != page || !(e & 1))
                        continue;
                    if (vmi__win_try_root(vmi, page, 32, 0, kva, "self-mapped page directory")) return 1;
                }
            }
        }
    }
    return 0;
}

/* x64 without a root: Windows maps the PML4 into itself through one entry
   of the upper half (0x1ED up to Windows 10 1511, a random one since 1607),
   present and writable. Only pages whose kernel-image slot is present are
   looked at (one read each), then their upper half. */
static int vmi__win_selfmap64(vmi_instance *vmi, uint64_t kva) {
    size_t r;
    uint8_t half[VMI__PAGE_SIZE / 2];
    for (r = 0; r < vmi->be.nranges; r++) {
        const vmi_mem_range *rg = &vmi->be.ranges[r];
        uint64_t page;
        for (page = (rg->pa + 0xfff) & ~0xfffull; page + VMI__PAGE_SIZE <= rg->pa + rg->size; page += VMI__PAGE_SIZE) {
            uint64_t e;
            unsigned i;
            if (vmi__read_le_pa(vmi, page + ((VMI__WIN_KSLOT_LO >> 39) & 0x1ff) * 8, 8, &e) != VMI_OK || !(e & 1) ||
                vmi__read_pa(vmi, page + sizeof half, half, sizeof half, NULL) != VMI_OK)
                continue;
            for (i = 0; i < 256; i++) {
                char how[64];
                e = vmi__le(half + 8 * i, 8);
                if ((e & 0x000ffffffffff000ull) != page || (e & 0x83) != 0x03) continue;
                snprintf(how, sizeof how, "self-referencing PML4 entry 0x%x", 256 + i);
                if (vmi__win_try_root(vmi, page, 64, 0, kva, how)) return 1;
                break; /* one self-map per root */
            }
        }
    }
    return 0;
}

/* The MZ of ntoskrnl at or below va: its export directory names it. */
static int vmi__win_is_kernel(vmi_instance *vmi, uint64_t va, vmi__pe *pe) {
    char name[32];
    size_t i;
    if (vmi__pe_open(vmi, vmi->paging.dtb, va, pe) != VMI_OK) return 0;
    if (vmi__pe_dll_name(vmi, pe, name, sizeof name) != VMI_OK) return 0;
    for (i = 0; name[i]; i++) name[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
    return !strcmp(name, "ntoskrnl.exe") || !strcmp(name, "ntkrnlpa.exe") || !strcmp(name, "ntkrnlmp.exe") ||
           !strcmp(name, "ntkrpamp.exe");
}

static int vmi__win_scan_back(vmi_instance *vmi, uint64_t va, vmi__pe *pe) {
    uint64_t page = va & ~0xfffull, step;
    char err[VMI__ERR_MAX];
    int found = 0;
    memcpy(err, vmi->err, sizeof err);
    for (step = 0; step < VMI__WIN_SCAN_BACK / VMI__PAGE_SIZE && !found && page; step++, page -= VMI__PAGE_SIZE) {
        uint8_t mz[2];
        if (vmi_read_va(vmi, vmi->paging.dtb, page, mz, 2, NULL) != VMI_OK || mz[0] != 'M' || mz[1] != 'Z') continue;
        found = vmi__win_is_kernel(vmi, page, pe);
    }
    memcpy(vmi->err, err, sizeof err);
    return found;
}

/* Kernel VAs the vCPU registers give: a kernel-mode RIP, the IDT's first
   handler (KiDivideErrorFault, inside ntoskrnl). */
static int vmi__win_from_regs(vmi_instance *vmi, vmi__pe *pe) {
    vmi_regs r;
    uint64_t lo, hi, handler;
    if (!vmi->be.get_regs || vmi->be.get_regs(vmi->be.ctx, 0, &r) != VMI_OK) return 0;
    if (r.arch == VMI_ARCH_X86_64 && r.x86.rip >= 0xffff800000000000ull && vmi__win_scan_back(vmi, r.x86.rip, pe)) return 1;
    if (!(r.valid & VMI_REGS_SEGMENT) || !r.x86.idtr_base) return 0;
    if (vmi_addr_width(vmi) == 8) {
        if (vmi__kread(vmi, r.x86.idtr_base, 8, &lo) != VMI_OK || vmi__kread(vmi, r.x86.idtr_base + 8, 4, &hi) != VMI_OK)
            return 0;
        handler = (lo & 0xffff) | ((lo >> 32) & 0xffff0000ull) | (hi << 32);
    } else {
        if (vmi__kread(vmi, r.x86.idtr_base, 8, &lo) != VMI_OK) return 0;
        handler = (lo & 0xffff) | ((lo >> 32) & 0xffff0000ull);
    }
    return vmi__win_scan_back(vmi, handler, pe);
}

/* The VA of a physical address inside the kernel image, by its pages. */
static uint64_t vmi__win_image_va(vmi_instance *vmi, const vmi__pe *pe, uint64_t pa) {
    uint64_t off, got, avail;
    for (off = 0; off < pe->size; off += VMI__PAGE_SIZE)
        if (vmi__translate(vmi, vmi->paging.dtb, pe->base + off, &got, &avail) == VMI_OK &&
            (got & ~0xfffull) == (pa & ~0xfffull))
            return pe->base + off + (pa & 0xfff);
    return 0;
}

/* The root: registers, the dump header or the low stub, else a
   self-mapped x86 page directory; checked against a kernel VA. */
static vmi_status vmi__win_paging(vmi_instance *vmi, vmi__win *w, const vmi__kdbg *k) {
    uint64_t kva = k ? k->kernbase : 0, dtb;
    int pae = w->dump_bits == 32 ? w->dump_pae : k ? k->pae : 1, bits = w->dump_bits ? w->dump_bits : k ? k->bits : 0;
    vmi_paging regs = vmi->paging;
    if (vmi->paging.mode > VMI_PAGING_OFF) {
        /* A root without the kernel is a KVA-shadow user root (or PTI's):
           the search below finds the kernel's. */
        if (vmi__win_root_ok(vmi, &vmi->paging, kva)) {
            vmi->paging.flags |= VMI_PAGING_WIN_TRANSITION;
            vmi__set_source(vmi->os.paging_source, "vCPU 0 registers");
            return VMI_OK;
        }
        if (!bits) bits = (int)vmi_addr_width(vmi) * 8;
        if (bits == 32 && !w->dump_bits && !k) pae = vmi->paging.mode == VMI_PAGING_PAE;
    }
    if (w->dump_dtb && w->stub && !kva) {
        vmi__win_set_paging(vmi, VMI_PAGING_IA32E, w->dump_dtb, "low-memory start block PML4");
        return VMI_OK;
    }
    if (w->dump_dtb && kva && vmi__win_try_root(vmi, w->dump_dtb, bits, pae, kva, w->stub ? "low-memory start block PML4" : "crash dump DirectoryTableBase"))
        return VMI_OK;
    /* LibVMI's win_sysproc as a physical address: System's root inside it */
    if (kva && w->cfg_sysproc && w->cfg[VMI__WE_DTB] >= 0 && w->cfg_sysproc < 0x80000000ull &&
        vmi__read_le_pa(vmi, w->cfg_sysproc + (uint64_t)w->cfg[VMI__WE_DTB], bits == 64 ? 8 : 4, &dtb) == VMI_OK &&
        vmi__win_try_root(vmi, dtb, bits, pae, kva, "win_sysproc's DirectoryTableBase"))
        return VMI_OK;
    if (w->dump_dtb && !kva) { /* a dump without KDBG: trust its header's word size */
        vmi__win_set_paging(vmi, w->dump_bits == 64 ? VMI_PAGING_IA32E : pae ? VMI_PAGING_PAE : VMI_PAGING_LEGACY,
                            w->dump_dtb, "crash dump DirectoryTableBase");
        return VMI_OK;
    }
    if (bits != 32 && vmi__win_selfmap64(vmi, kva)) return VMI_OK;
    if (bits != 64 && vmi__win_selfmap(vmi, kva, pae)) return VMI_OK;
    if (regs.mode > VMI_PAGING_OFF && !kva) { /* the registers' root, for the kernel-mode RIP and IDT to try */
        vmi->paging = regs;
        vmi->paging.flags |= VMI_PAGING_WIN_TRANSITION;
        vmi__paging_changed(vmi);
        vmi__set_source(vmi->os.paging_source, "vCPU 0 registers");
        return VMI_OK;
    }
    if (regs.mode > VMI_PAGING_OFF)
        return vmi__fail(vmi, VMI_ERR_NO_PAGING, "KDBG's kernel base 0x%llx does not translate", (unsigned long long)kva);
    if (!kva) return vmi__fail(vmi, VMI_ERR_NO_PAGING, "Windows: no page-table root maps ntoskrnl (no self-map found)");
    return vmi__fail(vmi, VMI_ERR_NO_PAGING, "Windows: no page-table root translates the kernel base 0x%llx",
                     (unsigned long long)kva);
}

/* ---- the encoded KDBG (Windows 8+ x64) ----------------------------------- */

static uint64_t vmi__bswap64(uint64_t v) {
    uint64_t r = 0;
    unsigned i;
    for (i = 0; i < 8; i++) r = (r << 8) | ((v >> (8 * i)) & 0xff);
    return r;
}

/* KdCopyDataBlock: plain = KiWaitAlways ^ bswap(&KdpDataBlockEncoded ^
   rol(KiWaitNever ^ stored, KiWaitNever & 63)). */
static uint64_t vmi__kdbg_decode(uint64_t v, uint64_t never, uint64_t always, uint64_t block_va) {
    unsigned r = (unsigned)(never & 63);
    v ^= never;
    v = r ? (v << r) | (v >> (64 - r)) : v;
    return always ^ vmi__bswap64(v ^ block_va);
}

/* Decodes the block's first 11 quadwords in place with the profile's keys
   (KdpDataBlockEncoded non-zero says the kernel did encode it). */
static int vmi__win_kdbg_decode(vmi_instance *vmi, uint8_t *b) {
    uint64_t flag_va, never = 0, always = 0, flag = 0;
    unsigned i, j;
    if (vmi_ksym(vmi, "KiWaitNever", &never) != VMI_OK || vmi_ksym(vmi, "KiWaitAlways", &always) != VMI_OK ||
        vmi_ksym(vmi, "KdpDataBlockEncoded", &flag_va) != VMI_OK || vmi__kread(vmi, never, 8, &never) != VMI_OK ||
        vmi__kread(vmi, always, 8, &always) != VMI_OK || vmi__kread(vmi, flag_va, 1, &flag) != VMI_OK || !flag)
        return 0;
    for (i = 0; i < 11; i++) {
        uint64_t q = vmi__kdbg_decode(vmi__le(b + 8 * i, 8), never, always, flag_va);
        for (j = 0; j < 8; j++) b[8 * i + j] = (uint8_t)(q >> (8 * j));
    }
    return 1;
}

/* The KDBG at va, decoded when the kernel encoded it. 1: *k filled. */
static int vmi__win_kdbg_at(vmi_instance *vmi, vmi__win *w, uint64_t va, vmi__kdbg *k) {
    uint8_t b[0x58];
    if (!va || vmi_read_va(vmi, vmi->paging.dtb, va, b, sizeof b, NULL) != VMI_OK) return 0;
    memset(k, 0, sizeof k[0]);
    if (vmi__kdbg_parse(b, w->ptr, k)) {
        w->kdbg = va;
        return 1;
    }
    if (vmi__le(b + 0x10, 4) == VMI__KDBG_TAG) return 0; /* plain but damaged */
    w->encoded = 1;
    if (!vmi__win_kdbg_decode(vmi, b) || !vmi__kdbg_parse(b, w->ptr, k)) return 0;
    w->kdbg = va;
    snprintf(w->kdbg_note, sizeof w->kdbg_note, "KDBG encoded (Windows 8+), decoded with the profile's keys");
    return 1;
}

/* KDBG by address: the dump header's, the config's RVA, the symbol. */
static int vmi__win_kdbg_symbol(vmi_instance *vmi, vmi__win *w, vmi__kdbg *k, uint64_t kernbase) {
    uint64_t va = 0;
    if (vmi__win_kdbg_at(vmi, w, w->dump_kdbg, k)) return 1;
    if (w->cfg_kdbg && vmi__win_kdbg_at(vmi, w, kernbase + w->cfg_kdbg, k)) return 1;
    if (w->cfg_kdvb && vmi__win_kdbg_at(vmi, w, w->cfg_kdvb, k)) return 1; /* configs that name KDBG so */
    return vmi_ksym(vmi, "KdDebuggerDataBlock", &va) == VMI_OK && vmi__win_kdbg_at(vmi, w, va, k);
}

/* The tag inside ntoskrnl's own pages (it lives in its .data): a few MiB
   to search instead of all of memory. */
static int vmi__win_kdbg_in_image(vmi_instance *vmi, vmi__win *w, const vmi__pe *pe, vmi__kdbg *k) {
    uint8_t page[VMI__PAGE_SIZE], b[0x58];
    uint32_t off, i;
    for (off = 0; off < pe->size; off += VMI__PAGE_SIZE) {
        if (vmi_read_va(vmi, vmi->paging.dtb, pe->base + off, page, sizeof page, NULL) != VMI_OK) continue;
        for (i = 0x10; i + 4 <= sizeof page; i += 8) {
            uint64_t va = pe->base + off + i - 0x10;
            if (vmi__le(page + i, 4) != VMI__KDBG_TAG || vmi_read_va(vmi, vmi->paging.dtb, va, b, sizeof b, NULL) != VMI_OK)
                continue;
            memset(k, 0, sizeof *k);
            if (vmi__kdbg_parse(b, w->ptr, k) && k->kernbase == pe->base) {
                w->kdbg = va;
                return 1;
            }
        }
    }
    return 0;
}

/* ---- offsets --------------------------------------------------------------- */

/* An ISF of the kernel's own PDB, or one that does not say which it is. */
static int vmi__win_isf_matches(vmi_instance *vmi, const vmi__pe_cv *cv) {
    const vmi__types *t = vmi->types;
    char id[48];
    size_t i;
    if (!t || t->os == VMI__OS_LINUX) return 0;
    if (!t->has_pdb || !cv->id[0]) return 1;
    snprintf(id, sizeof id, "%s%llX", t->pdb_guid, (unsigned long long)t->pdb_age);
    for (i = 0; id[i]; i++) id[i] = (char)(id[i] >= 'a' && id[i] <= 'z' ? id[i] - 32 : id[i]);
    if (!strcmp(id, cv->id)) return 1;
    snprintf(vmi->os.types_source, sizeof vmi->os.types_source, "ISF ignored: its PDB is not the kernel's %.41s", cv->id);
    vmi__log(vmi, VMI_LOG_WARN, "Windows: the ISF profile describes PDB %s, the kernel is %s: not used", id, cv->id);
    return 0;
}

/* The built-in layout of this build, a LibVMI config over it, the ISF
   over both: each fills what it knows. */
static const char *vmi__win_layout_for(vmi_instance *vmi, vmi__win *w) {
    size_t i, l;
    for (l = 0; l < sizeof vmi__win_layouts / sizeof vmi__win_layouts[0]; l++) {
        const vmi__win_layout *L = &vmi__win_layouts[l];
        if (vmi->os.build < L->build_lo || vmi->os.build > L->build_hi || L->ptr != w->ptr) continue;
        for (i = 0; i < VMI__WE_COUNT; i++) w->off[i] = L->off[i];
        return L->name;
    }
    return NULL;
}

/* Thread and processor offsets: the built-in table, the ISF over it. */
static void vmi__win_thread_offsets(vmi_instance *vmi, vmi__win *w) {
    size_t i, l;
    uint64_t bits, size;
    uint32_t width;
    for (i = 0; i < VMI__WT_COUNT; i++) w->th[i] = -1;
    for (l = 0; l < sizeof vmi__win_tlayouts / sizeof vmi__win_tlayouts[0]; l++) {
        const vmi__win_tlayout *L = &vmi__win_tlayouts[l];
        if (vmi->os.build >= L->build_lo && vmi->os.build <= L->build_hi && L->ptr == w->ptr)
            for (i = 0; i < VMI__WT_COUNT; i++) w->th[i] = L->off[i];
    }
    for (i = 0; w->isf_ok && i < VMI__WT_COUNT; i++) {
        const char *const *m = vmi__win_tmembers[w->ptr == 8][i];
        if (vmi__types_member(vmi->types, m[0], m[1], &bits, &width, &size) == VMI_OK) w->th[i] = (int64_t)(bits / 8);
    }
}

/* Not finding offsets is not fatal: the kernel, its symbols and modules
   need none; the process views say what is missing. */
static void vmi__win_offsets(vmi_instance *vmi, vmi__win *w, const vmi__pe_cv *cv) {
    size_t i;
    uint64_t bits, size;
    uint32_t width;
    const char *table, *src;
    for (i = 0; i < VMI__WE_COUNT; i++) w->off[i] = -1;
    src = table = vmi__win_layout_for(vmi, w);
    if (w->cfg[VMI__WE_LINKS] >= 0 && w->cfg[VMI__WE_PID] >= 0) {
        for (i = 0; i < VMI__WE_COUNT; i++)
            if (w->cfg[i] >= 0) w->off[i] = w->cfg[i];
        src = table ? "LibVMI config, built-in layout for the rest" : "LibVMI config win_* offsets";
    }
    if (w->isf_ok) {
        for (i = 0; i < VMI__WE_COUNT; i++)
            if (vmi__types_member(vmi->types, "_EPROCESS", vmi__win_members[i], &bits, &width, &size) == VMI_OK)
                w->off[i] = (int64_t)(bits / 8);
        if (vmi__types_member(vmi->types, "_EPROCESS", vmi__win_members[VMI__WE_LINKS], &bits, &width, &size) == VMI_OK)
            src = "ISF profile";
    }
    w->offsets_err[0] = 0;
    if (!src || w->off[VMI__WE_LINKS] < 0 || w->off[VMI__WE_PID] < 0 || w->off[VMI__WE_DTB] < 0) {
        snprintf(w->offsets_err, sizeof w->offsets_err,
                 "no EPROCESS offsets for Windows build %u (%u-bit): load the ISF of %s %s or a LibVMI config with win_* keys",
                 vmi->os.build, w->ptr * 8, cv->pdb[0] ? cv->pdb : "its PDB", cv->id);
        if (!vmi->os.types_source[0]) vmi__set_source(vmi->os.types_source, "no EPROCESS offsets for this build");
        return;
    }
    if (!vmi->os.types_source[0] || w->isf_ok)
        snprintf(vmi->os.types_source, sizeof vmi->os.types_source, "EPROCESS offsets: %s", src);
}

/* ---- list heads -------------------------------------------------------------- */

typedef struct vmi__win_head_find {
    uint64_t lo, hi, head;
} vmi__win_head_find;

static int vmi__win_head_node(vmi_instance *vmi, uint64_t node, void *user) {
    vmi__win_head_find *f = (vmi__win_head_find *)user;
    (void)vmi;
    if (node - f->lo < f->hi - f->lo) f->head = node;
    return f->head != 0;
}

/* Without KDBG: the ActiveProcessLinks ring through System's EPROCESS
   passes one node inside ntoskrnl's image, PsActiveProcessHead. */
static void vmi__win_head_from_system(vmi_instance *vmi, vmi__win *w, const vmi__pe *pe) {
    uint64_t sysp = 0, p;
    vmi__win_head_find f;
    if (w->off[VMI__WE_LINKS] < 0) return;
    if (w->sysproc) sysp = w->sysproc;
    else if (vmi_ksym(vmi, "PsInitialSystemProcess", &p) == VMI_OK && vmi__kptr(vmi, p, &sysp) == VMI_OK) w->sysproc = sysp;
    if (!sysp) return;
    f.lo = pe->base;
    f.hi = pe->base + pe->size;
    f.head = 0;
    vmi__list_pass(vmi, vmi->paging.dtb, sysp + (uint64_t)w->off[VMI__WE_LINKS], VMI__WIN_MAX_PROCS, vmi__win_head_node, &f,
                   NULL);
    w->ps_head = f.head;
}

/* Without KDBG or the export: PsLoadedModuleList is the LIST_ENTRY in
   ntoskrnl's image whose first entry describes ntoskrnl itself (DllBase is
   the kernel base) and links back to it. */
static int vmi__win_mod_head_at(vmi_instance *vmi, vmi__win *w, const vmi__pe *pe, uint64_t head, uint64_t first) {
    uint64_t base, back;
    const vmi__win_fixed *fx = &vmi__win_fixed_layout[w->ptr == 8];
    if (first - pe->base < pe->size || (w->ptr == 8 ? first < 0xffff800000000000ull : first < 0x80000000ull)) return 0;
    return vmi__kread(vmi, first + fx->ldr_base, w->ptr, &base) == VMI_OK && base == pe->base &&
           vmi__kread(vmi, first + w->ptr, w->ptr, &back) == VMI_OK && back == head;
}

static void vmi__win_find_mod_head(vmi_instance *vmi, vmi__win *w, const vmi__pe *pe) {
    uint8_t page[VMI__PAGE_SIZE];
    uint32_t off, i;
    char err[VMI__ERR_MAX];
    memcpy(err, vmi->err, sizeof err);
    for (off = 0; off < pe->size && !w->mod_head; off += VMI__PAGE_SIZE) {
        if (vmi_read_va(vmi, vmi->paging.dtb, pe->base + off, page, sizeof page, NULL) != VMI_OK) continue;
        for (i = 0; i + 2 * w->ptr <= sizeof page && !w->mod_head; i += w->ptr)
            if (vmi__win_mod_head_at(vmi, w, pe, pe->base + off + i, vmi__le(page + i, w->ptr)))
                w->mod_head = pe->base + off + i;
    }
    memcpy(vmi->err, err, sizeof err);
}

static void vmi__win_heads(vmi_instance *vmi, vmi__win *w, const vmi__pe *pe) {
    uint64_t va;
    if (!w->ps_head && vmi_ksym(vmi, "PsActiveProcessHead", &va) == VMI_OK) w->ps_head = va;
    if (!w->mod_head && vmi_ksym(vmi, "PsLoadedModuleList", &va) == VMI_OK) w->mod_head = va;
    if (!w->mod_head) vmi__win_find_mod_head(vmi, w, pe);
    if (!w->ps_head) vmi__win_head_from_system(vmi, w, pe);
    vmi__win_found_sym(vmi, "PsActiveProcessHead", w->ps_head);
    vmi__win_found_sym(vmi, "PsLoadedModuleList", w->mod_head);
    vmi__win_found_sym(vmi, "KdDebuggerDataBlock", w->kdbg);
}

/* System's DirectoryTableBase is the kernel's root: prefer it to one a
   register gave (a user process's) once the process list is readable. */
static void vmi__win_system_root(vmi_instance *vmi, vmi__win *w, uint64_t kernbase) {
    uint64_t first, ep, dtb;
    vmi_paging p = vmi->paging;
    if (!w->ps_head || vmi__kptr(vmi, w->ps_head, &first) != VMI_OK) return;
    ep = w->sysproc ? w->sysproc : first - (uint64_t)w->off[VMI__WE_LINKS];
    if (!w->sysproc) w->sysproc = ep;
    if (vmi__kread(vmi, ep + (uint64_t)w->off[VMI__WE_DTB], w->ptr, &dtb) != VMI_OK || !dtb || dtb == p.dtb) return;
    p.dtb = dtb;
    if (vmi__win_root_ok(vmi, &p, kernbase)) vmi_set_paging(vmi, &p);
}

/* ---- vmi_os_init for Windows ---------------------------------------------- */

static void vmi__win_kdbg_apply(vmi__win *w, const vmi__kdbg *k) {
    if (!w->ps_head) w->ps_head = k->procs;
    if (!w->mod_head) w->mod_head = k->mods;
}

/* ntoskrnl by every route there is. */
static int vmi__win_find_kernel(vmi_instance *vmi, vmi__win *w, const vmi__kdbg *k, vmi__pe *pe) {
    uint64_t first, base;
    char err[VMI__ERR_MAX];
    int ok = 0;
    memcpy(err, vmi->err, sizeof err);
    if (k && vmi__win_is_kernel(vmi, k->kernbase, pe)) ok = 1;
    if (!ok && w->scan_kbase && vmi__win_is_kernel(vmi, w->scan_kbase, pe)) ok = 1;
    if (!ok && w->dump_mods && vmi__kptr(vmi, w->dump_mods, &first) == VMI_OK &&
        vmi__kptr(vmi, first + vmi__win_fixed_layout[w->ptr == 8].ldr_base, &base) == VMI_OK && vmi__win_is_kernel(vmi, base, pe))
        ok = 1; /* the first loaded module is the kernel */
    if (!ok && w->cfg_kbase && vmi__win_is_kernel(vmi, w->cfg_kbase, pe)) ok = 1;
    if (!ok && w->cfg_kdvb && vmi__kread(vmi, w->cfg_kdvb + 0x10, w->ptr, &base) == VMI_OK && vmi__win_is_kernel(vmi, base, pe))
        ok = 1; /* DBGKD_GET_VERSION64.KernBase */
    if (!ok && w->stub_entry) ok = vmi__win_scan_back(vmi, w->stub_entry, pe);
    if (!ok) ok = vmi__win_from_regs(vmi, pe);
    memcpy(vmi->err, err, sizeof err);
    return ok;
}

static void vmi__win_describe(vmi_instance *vmi, const vmi__pe *pe, const vmi__pe_cv *cv) {
    vmi_os_info *o = &vmi->os;
    o->os = VMI_OS_WINDOWS;
    o->kernel_base = pe->base;
    o->kdbg = vmi->win->kdbg;
    snprintf(o->pdb_name, sizeof o->pdb_name, "%s", cv->pdb);
    snprintf(o->pdb_id, sizeof o->pdb_id, "%s", cv->id);
    snprintf(o->release, sizeof o->release, "Windows build %u", o->build);
    snprintf(o->version, sizeof o->version, "Windows NT %u.%u build %u %s, kernel %s (%s)", pe->os_major, pe->os_minor,
             o->build, pe->is64 ? "x64" : "x86", cv->pdb[0] ? cv->pdb : "without a CodeView record",
             cv->id[0] ? cv->id : "no PDB id");
}

/* NtBuildNumber (0xF0000000 marks a free build), else the dump header's. */
static void vmi__win_build(vmi_instance *vmi) {
    uint64_t va, v;
    if (vmi_ksym(vmi, "NtBuildNumber", &va) == VMI_OK && vmi__kread(vmi, va, 4, &v) == VMI_OK) vmi->os.build = (uint32_t)(v & 0xffff);
    if (!vmi->os.build) vmi->os.build = vmi->win->dump_build;
}

static vmi_status vmi__win_kernel(vmi_instance *vmi, vmi__win *w, vmi__kdbg *k, int have_k) {
    vmi__pe pe;
    vmi__pe_cv cv;
    uint64_t pa, avail;
    size_t nexp = 0;
    char exp_err[VMI__ERR_MAX];
    vmi_status st;
    w->ptr = vmi_addr_width(vmi);
    if (!vmi__win_find_kernel(vmi, w, have_k ? k : NULL, &pe))
        return vmi__fail(vmi, VMI_ERR_NOT_FOUND, "Windows: ntoskrnl's image not found (no KDBG, start block or kernel-mode register)");
    w->image_size = pe.size;
    if (w->cfg_sysproc >= (w->ptr == 8 ? 0xffff800000000000ull : 0x80000000ull)) w->sysproc = w->cfg_sysproc; /* a VA */
    vmi__pe_codeview(vmi, &pe, &cv);
    w->cv = cv;
    w->isf_ok = vmi__win_isf_matches(vmi, &cv);
    vmi->os.os = VMI_OS_WINDOWS; /* from here vmi_ksym leaves a Windows ISF's RVAs alone */
    if ((st = vmi__win_symbols(vmi, &pe, &nexp, exp_err, sizeof exp_err)) != VMI_OK) return st;
    vmi->profile_slide = pe.base;
    if (exp_err[0])
        snprintf(vmi->os.symbols_source, sizeof vmi->os.symbols_source, "exports unreadable (%.60s)%s", exp_err,
                 w->isf_ok ? ", ISF symbols" : "");
    else
        snprintf(vmi->os.symbols_source, sizeof vmi->os.symbols_source, "ntoskrnl exports (%zu)%s", nexp,
                 w->isf_ok ? " and ISF symbols" : "");
    vmi->os.nsymbols = vmi->ksyms->count;
    vmi->os.ntypes = vmi__types_count(vmi->types);
    vmi__win_build(vmi);
    if (have_k && k->pa && vmi__translate(vmi, vmi->paging.dtb, k->kernbase, &pa, &avail) == VMI_OK)
        w->kdbg = vmi__win_image_va(vmi, &pe, k->pa);
    if (!have_k && (have_k = vmi__win_kdbg_symbol(vmi, w, k, pe.base)) == 0) have_k = vmi__win_kdbg_in_image(vmi, w, &pe, k);
    if (have_k) vmi__win_kdbg_apply(w, k);
    if (!w->kdbg && pe.is64 && vmi->os.build >= 9200 && !w->kdbg_note[0])
        snprintf(w->kdbg_note, sizeof w->kdbg_note, "KDBG encoded (Windows 8+): lists from exports and profile");
    vmi__win_offsets(vmi, w, &cv);
    vmi__win_thread_offsets(vmi, w);
    vmi__win_heads(vmi, w, &pe);
    if (!w->offsets_err[0] && !w->ps_head)
        snprintf(w->offsets_err, sizeof w->offsets_err, "Windows: PsActiveProcessHead not found (%s)",
                 w->kdbg_note[0] ? w->kdbg_note : "no KDBG, no symbol");
    if (!w->offsets_err[0]) vmi__win_system_root(vmi, w, pe.base);
    vmi__win_describe(vmi, &pe, &cv);
    vmi->os.kernel_pa_offset = vmi__translate(vmi, vmi->paging.dtb, pe.base, &pa, &avail) == VMI_OK ? pe.base - pa : 0;
    return VMI_OK;
}

static void vmi__win_sources(vmi_instance *vmi, const vmi__win *w, int have_k) {
    char *s = vmi->os.os_source;
    if (w->dump_bits && !w->stub) snprintf(s, 96, "crash dump header%s", have_k ? ", KDBG" : "");
    else if (have_k && w->kdbg) snprintf(s, 96, "KDBG at 0x%llx%s", (unsigned long long)w->kdbg, w->encoded ? " (decoded)" : "");
    else if (w->kdbg_note[0]) snprintf(s, 96, "%s", w->kdbg_note);
    else snprintf(s, 96, "ntoskrnl found by its export directory");
}

/* Everything but what a LibVMI config gave, for a fresh vmi_os_init. */
static void vmi__win_reset(vmi__win *w) {
    vmi__win keep = *w;
    size_t i;
    memset(w, 0, sizeof *w);
    for (i = 0; i < VMI__WE_COUNT; i++) w->off[i] = -1, w->cfg[i] = keep.cfg[i];
    for (i = 0; i < VMI__WT_COUNT; i++) w->th[i] = -1;
    w->cfg_kdvb = keep.cfg_kdvb, w->cfg_sysproc = keep.cfg_sysproc;
    w->cfg_kdbg = keep.cfg_kdbg, w->cfg_kbase = keep.cfg_kbase;
}

/* A failed attempt leaves the instance as it found it, for Linux. */
static void vmi__win_undo(vmi_instance *vmi, const vmi_paging *paging, const vmi_os_info *os) {
    if (vmi->ksyms && vmi->ksyms->source && !strcmp(vmi->ksyms->source, "exports")) {
        vmi__symtab_free(vmi, vmi->ksyms);
        vmi->ksyms = NULL;
    }
    vmi->paging = *paging;
    vmi__paging_changed(vmi);
    vmi->os = *os;
    vmi->profile_slide = 0;
}

/* Windows; *seen says whether anything Windows-like was there. `deep`:
   with no sign at all, look for a self-mapped root all the same. */
static vmi_status vmi__win_os_init(vmi_instance *vmi, int *seen, int deep) {
    vmi__win *w = vmi__win_get(vmi);
    vmi__kdbg_scan scan;
    vmi__kdbg k;
    vmi_paging saved = vmi->paging;
    vmi_os_info os = vmi->os;
    vmi_status st;
    unsigned i;
    int have_k = 0;
    *seen = 0;
    if (!w) return vmi__fail(vmi, VMI_ERR_NOMEM, "Windows state");
    vmi__win_reset(w);
    vmi__win_dump_header(vmi, w);
    vmi__win_low_stub(vmi, w);
    memset(&scan, 0, sizeof scan);
    memset(&k, 0, sizeof k);
    if (!w->dump_bits && !w->stub && !deep) /* else the kernel's own pages are searched, later */
        vmi__scan_phys(vmi, "KDBG", 4, 4, vmi__kdbg_hit, &scan);
    *seen = deep || w->dump_bits || w->stub || scan.n || scan.rejected || w->cfg_kdvb || w->cfg[VMI__WE_LINKS] >= 0 ||
            (vmi->types && vmi->types->os == VMI__OS_WINDOWS);
    if (!*seen) return VMI_ERR_NOT_FOUND;
    st = VMI_ERR_NO_PAGING;
    for (i = 0; i < scan.n && st != VMI_OK; i++) /* the first KDBG whose kernel translates */
        if ((st = vmi__win_paging(vmi, w, &scan.found[i])) == VMI_OK) k = scan.found[i], have_k = 1;
    if (st != VMI_OK) st = vmi__win_paging(vmi, w, NULL);
    if (st != VMI_OK && scan.rejected)
        st = vmi__fail(vmi, st, "Windows: the KDBG block at pa 0x%llx is damaged (Size 0x%x) and no start block or dump header gives a page-table root",
                       (unsigned long long)scan.rejected_pa, (unsigned)vmi__le_pa32(vmi, scan.rejected_pa + 0x14));
    if (st == VMI_OK && have_k) vmi__win_kdbg_apply(w, &k);
    if (st == VMI_OK) {
        if (!w->ps_head) w->ps_head = w->dump_ps;
        if (!w->mod_head) w->mod_head = w->dump_mods;
        st = vmi__win_kernel(vmi, w, &k, have_k);
    }
    if (st != VMI_OK) {
        vmi__win_undo(vmi, &saved, &os);
        return st;
    }
    vmi__win_sources(vmi, w, have_k);
    return VMI_OK;
}

/* ---- views ------------------------------------------------------------------ */

static vmi_status vmi__win_ready(vmi_instance *vmi) {
    if (vmi->os.os != VMI_OS_WINDOWS || !vmi->win)
        return vmi__fail(vmi, VMI_ERR_NOT_FOUND, "no Windows kernel found (call vmi_os_init first)");
    if (vmi->win->offsets_err[0]) return vmi__fail(vmi, VMI_ERR_NOT_FOUND, "%s", vmi->win->offsets_err);
    return VMI_OK;
}

static vmi_status vmi__win_process(vmi_instance *vmi, uint64_t ep, vmi_process *p) {
    const vmi__win *w = vmi->win;
    uint64_t v;
    memset(p, 0, sizeof *p);
    p->task = ep;
    if (vmi__kread(vmi, ep + (uint64_t)w->off[VMI__WE_PID], w->ptr, &v) != VMI_OK) return VMI_ERR_NOT_PRESENT;
    p->pid = p->tgid = (int64_t)v;
    p->ppid = (int64_t)vmi__win_field(vmi, ep, VMI__WE_PPID, w->ptr);
    if (w->off[VMI__WE_NAME] >= 0)
        vmi_read_va(vmi, vmi->paging.dtb, ep + (uint64_t)w->off[VMI__WE_NAME], p->name, 15, NULL);
    p->name[15] = 0;
    p->dtb = vmi__win_field(vmi, ep, VMI__WE_DTB, w->ptr);
    p->peb = vmi__win_field(vmi, ep, VMI__WE_PEB, w->ptr);
    p->create_time = vmi__win_field(vmi, ep, VMI__WE_CREATE, 8);
    p->threads = (uint32_t)vmi__win_field(vmi, ep, VMI__WE_THREADS, 4);
    p->kernel_thread = p->peb == 0;
    p->state = 'R';
    return VMI_OK;
}

typedef struct vmi__win_walk {
    vmi_process_fn pfn;
    vmi_module_fn mfn;
    void *user;
    uint64_t dtb;
    int threads, stop;
    vmi_process proc; /* threads: the process they belong to */
} vmi__win_walk;

/* One ETHREAD: as Linux shows a thread, pid = its tid, tgid = the process. */
static int vmi__win_thread_node(vmi_instance *vmi, uint64_t node, void *user) {
    vmi__win_walk *ww = (vmi__win_walk *)user;
    const vmi__win *w = vmi->win;
    vmi_process t = ww->proc;
    uint64_t tid;
    t.task = node - (uint64_t)w->th[VMI__WT_LINK];
    if (vmi__kread(vmi, t.task + (uint64_t)w->th[VMI__WT_CID] + w->ptr, w->ptr, &tid) != VMI_OK) return 0;
    t.pid = (int64_t)tid;
    t.tgid = ww->proc.pid;
    return ww->stop = ww->pfn(ww->user, &t);
}

static int vmi__win_proc_node(vmi_instance *vmi, uint64_t node, void *user) {
    vmi__win_walk *ww = (vmi__win_walk *)user;
    const vmi__win *w = vmi->win;
    if (vmi__win_process(vmi, node - (uint64_t)w->off[VMI__WE_LINKS], &ww->proc) != VMI_OK) return 0;
    if (ww->pfn(ww->user, &ww->proc)) return 1;
    if (!ww->threads || w->th[VMI__WT_HEAD] < 0 || w->th[VMI__WT_CID] < 0 || w->th[VMI__WT_LINK] < 0) return 0;
    /* a broken thread list costs that process the threads after the break
       (each thread is listed once), not the processes after it */
    vmi__list_walk_prefix(vmi, ww->proc.task + (uint64_t)w->th[VMI__WT_HEAD], VMI__WIN_MAX_THREADS, vmi__win_thread_node,
                          ww);
    return ww->stop;
}

/* With threads, each process is followed by its threads (EPROCESS.ThreadListHead);
   without the thread offsets (a LibVMI config alone) the processes only. */
static vmi_status vmi__win_foreach_process(vmi_instance *vmi, int threads, vmi_process_fn fn, void *user) {
    vmi__win_walk ww;
    vmi_status st;
    if ((st = vmi__win_ready(vmi)) != VMI_OK) return st;
    memset(&ww, 0, sizeof ww);
    ww.pfn = fn, ww.user = user, ww.threads = threads;
    vmi__tick(vmi);
    return vmi__list_walk(vmi, vmi->win->ps_head, VMI__WIN_MAX_PROCS, vmi__win_proc_node, &ww);
}

/* x86 in user mode: FS selects the TEB, so the KPCR is the base of the
   kernel's FS descriptor (selector 0x30, KGDT_R0_PCR) in the vCPU's GDT,
   found through GDTR and not through the KPCR itself. The descriptor must
   lie within GDTR's limit and be a present code/data one. */
#define VMI__WIN_KGDT_R0_PCR 0x30u
static vmi_status vmi__win_x86_user_pcr(vmi_instance *vmi, uint32_t vcpu, const vmi_regs_x86 *x, uint64_t *pcr) {
    uint64_t d = 0, at = (x->gdtr_base + VMI__WIN_KGDT_R0_PCR) & 0xffffffffu;
    if (x->gdtr_limit < VMI__WIN_KGDT_R0_PCR + 7)
        return vmi__fail(vmi, VMI_ERR_NOT_FOUND, "vCPU %u runs in user mode; its GDT (limit 0x%x) has no KPCR selector 0x30",
                         vcpu, (unsigned)x->gdtr_limit);
    if (vmi__kread(vmi, at, 8, &d) != VMI_OK)
        return vmi__fail(vmi, VMI_ERR_NOT_PRESENT, "vCPU %u runs in user mode; its GDT entry 0x30 at 0x%llx is unreadable",
                         vcpu, (unsigned long long)at);
    if (((d >> 40) & 0x90u) != 0x90u) /* P and S: a present code/data segment */
        return vmi__fail(vmi, VMI_ERR_NOT_FOUND, "vCPU %u runs in user mode; its GDT entry 0x30 (0x%llx) is no segment",
                         vcpu, (unsigned long long)d);
    *pcr = ((d >> 16) & 0xffffffu) | ((d >> 56) << 24);
    return VMI_OK;
}

/* The process a vCPU runs (attached to): KPCR (x64: GS base in kernel mode,
   KERNEL_GS_BASE in user mode; x86: FS base in kernel mode, the GDT's
   selector 0x30 in user mode) -> KPRCB.CurrentThread ->
   KTHREAD.ApcState.Process. The KPCR's Self pointer vouches for the base. */
static vmi_status vmi__win_current(vmi_instance *vmi, uint32_t vcpu, vmi_process *out) {
    const vmi__win *w = vmi->win;
    vmi_regs r;
    uint64_t pcr = 0, self = 0, thread = 0, ep = 0;
    size_t i;
    vmi_status st;
    if ((st = vmi__win_ready(vmi)) != VMI_OK) return st;
    for (i = 0; i < VMI__WT_HEAD; i++)
        if (w->th[i] < 0)
            return vmi__fail(vmi, VMI_ERR_NOT_FOUND, "no KPCR/KTHREAD offsets for Windows build %u: load the kernel's ISF",
                             vmi->os.build);
    if ((st = vmi_get_regs(vmi, vcpu, &r)) != VMI_OK) return st;
    if (!(r.valid & VMI_REGS_SEGMENT))
        return vmi__fail(vmi, VMI_ERR_UNSUPPORTED, "vCPU %u: no segment bases to find the KPCR by", vcpu);
    if (w->ptr == 4 && (r.x86.cs & 3)) {
        if ((st = vmi__win_x86_user_pcr(vmi, vcpu, &r.x86, &pcr)) != VMI_OK) return st;
    } else
        pcr = w->ptr == 4 ? r.x86.fs_base : (r.x86.cs & 3) ? r.x86.kernel_gs_base : r.x86.gs_base;
    if (vmi__kptr(vmi, pcr + (uint64_t)w->th[VMI__WT_PCR_SELF], &self) != VMI_OK || self != pcr || !pcr)
        return vmi__fail(vmi, VMI_ERR_NOT_FOUND, "vCPU %u: no KPCR at 0x%llx (its Self is 0x%llx)", vcpu,
                         (unsigned long long)pcr, (unsigned long long)self);
    if ((st = vmi__kptr(vmi, pcr + (uint64_t)(w->th[VMI__WT_PCR_PRCB] + w->th[VMI__WT_PRCB_THREAD]), &thread)) != VMI_OK ||
        (st = vmi__kptr(vmi, thread + (uint64_t)(w->th[VMI__WT_APC] + w->th[VMI__WT_APC_PROCESS]), &ep)) != VMI_OK)
        return vmi__fail(vmi, st, "vCPU %u: KPCR 0x%llx, current thread 0x%llx: %s", vcpu, (unsigned long long)pcr,
                         (unsigned long long)thread, vmi->err);
    if (vmi__win_process(vmi, ep, out) != VMI_OK)
        return vmi__fail(vmi, VMI_ERR_NOT_PRESENT, "vCPU %u: EPROCESS at 0x%llx is unreadable", vcpu, (unsigned long long)ep);
    return VMI_OK;
}

/* One (K)LDR_DATA_TABLE_ENTRY, read in address space `dtb`. */
static int vmi__win_ldr_node(vmi_instance *vmi, uint64_t node, void *user) {
    vmi__win_walk *ww = (vmi__win_walk *)user;
    const vmi__win_fixed *fx = vmi__win_fix(vmi);
    vmi_module m;
    uint64_t v = 0;
    memset(&m, 0, sizeof m);
    m.addr = node;
    vmi__read_le_va(vmi, ww->dtb, node + fx->ldr_base, vmi->win->ptr, &m.base);
    vmi__read_le_va(vmi, ww->dtb, node + fx->ldr_size, 4, &v);
    m.size = v;
    vmi__win_ustr(vmi, ww->dtb, node + fx->ldr_name, m.name, sizeof m.name, NULL);
    vmi__win_ustr(vmi, ww->dtb, node + fx->ldr_full, m.path, sizeof m.path, NULL);
    return ww->mfn(ww->user, &m);
}

static vmi_status vmi__win_foreach_module(vmi_instance *vmi, vmi_module_fn fn, void *user) {
    vmi__win_walk ww;
    if (vmi->os.os != VMI_OS_WINDOWS || !vmi->win)
        return vmi__fail(vmi, VMI_ERR_NOT_FOUND, "no Windows kernel found (call vmi_os_init first)");
    if (!vmi->win->mod_head) return vmi__fail(vmi, VMI_ERR_NOT_FOUND, "PsLoadedModuleList not found");
    memset(&ww, 0, sizeof ww);
    ww.mfn = fn, ww.user = user, ww.dtb = vmi->paging.dtb;
    vmi__tick(vmi);
    return vmi__list_walk(vmi, vmi->win->mod_head, VMI__WIN_MAX_MODULES, vmi__win_ldr_node, &ww);
}

/* A pointer of the PEB (or what it points to) in the process's space. */
static vmi_status vmi__win_peb_ptr(vmi_instance *vmi, const vmi_process *p, uint64_t va, uint64_t *out) {
    vmi_status st = vmi__read_le_va(vmi, p->dtb, va, vmi->win->ptr, out);
    if (st == VMI_OK && !*out) st = vmi__fail(vmi, VMI_ERR_NOT_FOUND, "pid %lld: NULL at 0x%llx in its PEB", (long long)p->pid, (unsigned long long)va);
    return st;
}

static vmi_status vmi__win_check_user(vmi_instance *vmi, const vmi_process *p) {
    vmi_status st = vmi__win_ready(vmi);
    if (st == VMI_OK && !p->peb)
        st = vmi__fail(vmi, VMI_ERR_NOT_FOUND, "pid %lld (%s) has no PEB (a kernel process)", (long long)p->pid, p->name);
    return st;
}

static vmi_status vmi__win_foreach_dll(vmi_instance *vmi, const vmi_process *p, vmi_module_fn fn, void *user) {
    vmi__win_walk ww;
    uint64_t ldr;
    vmi_status st;
    if ((st = vmi__win_check_user(vmi, p)) != VMI_OK ||
        (st = vmi__win_peb_ptr(vmi, p, p->peb + vmi__win_fix(vmi)->peb_ldr, &ldr)) != VMI_OK)
        return st;
    memset(&ww, 0, sizeof ww);
    ww.mfn = fn, ww.user = user, ww.dtb = p->dtb;
    vmi__tick(vmi);
    return vmi__list_walk_in(vmi, p->dtb, ldr + vmi__win_fix(vmi)->ldr_list, VMI__WIN_MAX_DLLS, vmi__win_ldr_node, &ww);
}

/* RTL_USER_PROCESS_PARAMETERS' UNICODE_STRING at `member`. */
static vmi_status vmi__win_param(vmi_instance *vmi, const vmi_process *p, unsigned member, char *buf, size_t cap, size_t *len) {
    uint64_t params;
    vmi_status st;
    if ((st = vmi__win_check_user(vmi, p)) != VMI_OK ||
        (st = vmi__win_peb_ptr(vmi, p, p->peb + vmi__win_fix(vmi)->peb_params, &params)) != VMI_OK)
        return st;
    return vmi__win_ustr(vmi, p->dtb, params + member, buf, cap, len);
}

/* The kernel's copy: SeAuditProcessCreationInfo.ImageFileName points at an
   OBJECT_NAME_INFORMATION (a UNICODE_STRING, "\Device\HarddiskVolume..."). */
static vmi_status vmi__win_audit_path(vmi_instance *vmi, const vmi_process *p, char *buf, size_t cap, size_t *len) {
    uint64_t oni;
    vmi_status st;
    if (vmi->win->off[VMI__WE_AUDIT] < 0) return vmi__fail(vmi, VMI_ERR_NOT_FOUND, "no SeAuditProcessCreationInfo offset");
    if ((st = vmi__kptr(vmi, p->task + (uint64_t)vmi->win->off[VMI__WE_AUDIT], &oni)) != VMI_OK) return st;
    if (!oni) return vmi__fail(vmi, VMI_ERR_NOT_FOUND, "pid %lld: no audit image name", (long long)p->pid);
    return vmi__win_ustr(vmi, vmi->paging.dtb, oni, buf, cap, len);
}

/* vmi_write_isf: the metadata's "windows" member and the kernel's extent;
   *empty gets a types database of the base types when no profile is loaded. */
static int vmi__win_isf_meta(vmi_instance *vmi, char *buf, size_t cap, uint64_t *base, uint64_t *size,
                             vmi__types **empty) {
    const vmi__win *w = vmi->win;
    const vmi__pe_cv *cv = w ? &w->cv : NULL;
    char pdb[sizeof cv->pdb];
    size_t i;
    if (!cv || !cv->pdb[0]) return 0;
    for (i = 0; cv->pdb[i]; i++) /* guest data inside a JSON string: no quotes, no escapes */
        pdb[i] = (char)(cv->pdb[i] > 0x20 && cv->pdb[i] < 0x7f && cv->pdb[i] != '"' && cv->pdb[i] != '\\' ? cv->pdb[i] : '_');
    pdb[i] = 0;
    snprintf(buf, cap,
             "\"windows\":{\"pdb\":{\"GUID\":\"%.32s\",\"age\":%u,\"database\":\"%s\",\"machine_type\":%u}}",
             cv->id, (unsigned)cv->age, pdb, w->ptr == 8 ? 0x8664u : 0x14cu);
    *base = vmi->os.kernel_base;
    *size = w->image_size;
    if (!vmi->types && (*empty = vmi__types_create(&vmi->alloc)) != NULL) {
        (*empty)->os = VMI__OS_WINDOWS;
        (*empty)->ptr_size = w->ptr;
    }
    return 1;
}

/* ---- public API: one entry point per view, dispatching on the OS --------- */

/* Windows first: its signs (a dump header, the start block, a KDBG tag)
   are cheaper to look for than Linux's kallsyms recovery, unless the target
   carries a Linux VMCOREINFO note (QEMU's vmcoreinfo device, kdump; a
   Windows guest's holds a dump header instead), which settles it. With no sign
   (Windows 8+ encodes its KDBG) and no Linux, a Windows root is searched
   for by its self-map as a last resort. */
VMI_API vmi_status vmi_os_init(vmi_instance *vmi) {
    vmi_status st;
    char werr[VMI__ERR_MAX];
    const void *note;
    size_t note_len;
    int seen = 0;
    VMI_ASSERT(vmi);
    if (vmi->be.get_note && vmi->be.get_note(vmi->be.ctx, "VMCOREINFO", &note, &note_len) == VMI_OK &&
        vmi__memfind((const uint8_t *)note, note_len, "OSRELEASE="))
        return vmi__lx_os_init(vmi);
    st = vmi__win_os_init(vmi, &seen, 0);
    if (st == VMI_OK) return st;
    if (!seen) {
        if ((st = vmi__lx_os_init(vmi)) == VMI_OK) return st;
        memcpy(werr, vmi->err, sizeof werr);
        if (vmi__win_os_init(vmi, &seen, 1) == VMI_OK) return VMI_OK;
        return vmi__fail(vmi, st, "%s", werr);
    }
    memcpy(werr, vmi->err, sizeof werr);
    if (vmi__lx_os_init(vmi) == VMI_OK) return VMI_OK;
    return vmi__fail(vmi, st, "%s", werr);
}

VMI_API vmi_status vmi_foreach_process(vmi_instance *vmi, int threads, vmi_process_fn fn, void *user) {
    VMI_ASSERT(vmi && fn);
    if (vmi->os.os == VMI_OS_WINDOWS) return vmi__win_foreach_process(vmi, threads, fn, user);
    return vmi__lx_foreach_process(vmi, threads, fn, user);
}

VMI_API vmi_status vmi_foreach_module(vmi_instance *vmi, vmi_module_fn fn, void *user) {
    VMI_ASSERT(vmi && fn);
    if (vmi->os.os == VMI_OS_WINDOWS) return vmi__win_foreach_module(vmi, fn, user);
    return vmi__lx_foreach_module(vmi, fn, user);
}

/* Windows: the CommandLine UNICODE_STRING as one UTF-8 string. */
VMI_API vmi_status vmi_process_cmdline(vmi_instance *vmi, const vmi_process *p, char *buf, size_t cap, size_t *len) {
    VMI_ASSERT(vmi && p && (buf || !cap));
    if (vmi->os.os != VMI_OS_WINDOWS) return vmi__lx_cmdline(vmi, p, buf, cap, len);
    if (len) *len = 0;
    if (!cap) return vmi__fail(vmi, VMI_ERR_ARG, "vmi_process_cmdline: zero-sized buffer");
    return vmi__win_param(vmi, p, vmi__win_fix(vmi)->params_cmd, buf, cap, len);
}

VMI_API vmi_status vmi_process_image_path(vmi_instance *vmi, const vmi_process *p, char *buf, size_t cap, size_t *len) {
    vmi_status st;
    VMI_ASSERT(vmi && p && buf);
    if (len) *len = 0;
    if (!cap) return vmi__fail(vmi, VMI_ERR_ARG, "vmi_process_image_path: zero-sized buffer");
    buf[0] = 0;
    if (vmi->os.os != VMI_OS_WINDOWS) return vmi__fail(vmi, VMI_ERR_UNSUPPORTED, "image paths are a Windows view");
    st = p->peb ? vmi__win_param(vmi, p, vmi__win_fix(vmi)->params_image, buf, cap, len) : VMI_ERR_NOT_FOUND;
    if (st == VMI_OK && buf[0]) return st;
    return vmi__win_audit_path(vmi, p, buf, cap, len);
}

VMI_API vmi_status vmi_foreach_dll(vmi_instance *vmi, const vmi_process *p, vmi_module_fn fn, void *user) {
    VMI_ASSERT(vmi && p && fn);
    if (vmi->os.os != VMI_OS_WINDOWS) return vmi__fail(vmi, VMI_ERR_UNSUPPORTED, "loaded-image lists are a Windows view");
    return vmi__win_foreach_dll(vmi, p, fn, user);
}

/* >>events ================================================================= */
/* The backend keeps the armed events (chained through next__) and says which
   one a stop belongs to; the core checks them, counts hits, calls back, and
   hands the run state back: after a dispatch it calls the backend's
   resume(), which continues the guest (stepping over a breakpoint at the
   pc first), unless the callback paused the instance. */
static vmi_status vmi__event_check(vmi_instance *vmi, const vmi_event *ev) {
    switch (ev->type) {
    case VMI_EVENT_BREAKPOINT: return VMI_OK;
    case VMI_EVENT_WATCH:
        if (ev->len != 1 && ev->len != 2 && ev->len != 4 && ev->len != 8)
            return vmi__fail(vmi, VMI_ERR_ARG, "watchpoint length %llu: 1, 2, 4 or 8", (unsigned long long)ev->len);
        if (ev->addr % ev->len)
            return vmi__fail(vmi, VMI_ERR_ARG, "watchpoint at 0x%llx is not %llu-byte aligned",
                             (unsigned long long)ev->addr, (unsigned long long)ev->len);
        if (!ev->access || (ev->access & ~(VMI_WATCH_READ | VMI_WATCH_WRITE)))
            return vmi__fail(vmi, VMI_ERR_ARG, "watchpoint access 0x%x: VMI_WATCH_READ and/or VMI_WATCH_WRITE",
                             (unsigned)ev->access);
        return VMI_OK;
    case VMI_EVENT_SINGLESTEP:
        if (ev->vcpu < 0) return vmi__fail(vmi, VMI_ERR_ARG, "single-step on vCPU %d", (int)ev->vcpu);
        return VMI_OK;
    case VMI_EVENT_REG_WRITE:
        if (ev->reg < VMI_REG_CR0 || ev->reg > VMI_REG_MSR)
            return vmi__fail(vmi, VMI_ERR_ARG, "register %u: VMI_REG_CR0, CR3, CR4 or MSR", (unsigned)ev->reg);
        return VMI_OK;
    case VMI_EVENT_MEM_ACCESS:
        if ((ev->addr & 0xfff) || !ev->len || (ev->len & 0xfff) || ev->addr + ev->len < ev->addr)
            return vmi__fail(vmi, VMI_ERR_ARG, "memory access event on 0x%llx+0x%llx: whole 4 KiB pages",
                             (unsigned long long)ev->addr, (unsigned long long)ev->len);
        if (!ev->access || (ev->access & ~(VMI_WATCH_READ | VMI_WATCH_WRITE | VMI_WATCH_EXEC)))
            return vmi__fail(vmi, VMI_ERR_ARG, "memory access 0x%x: VMI_WATCH_READ, WRITE and/or EXEC",
                             (unsigned)ev->access);
        return VMI_OK;
    default: return vmi__fail(vmi, VMI_ERR_ARG, "event type %d is not a type", (int)ev->type);
    }
}

/* Xen's breakpoints are int3 bytes the backend writes, its watchpoints
   access rights on a frame: it needs the frame. One the core cannot
   translate is the backend's to refuse, so that failure leaves no last
   error behind. */
static void vmi__event_frame(vmi_instance *vmi, vmi_event *ev) {
    char saved[VMI__ERR_MAX];
    memcpy(saved, vmi->err, sizeof saved);
    if ((ev->type != VMI_EVENT_BREAKPOINT && ev->type != VMI_EVENT_WATCH) ||
        vmi_translate_kva(vmi, ev->addr, &ev->pa__) != VMI_OK) {
        ev->pa__ = ~(uint64_t)0;
        memcpy(vmi->err, saved, sizeof saved);
    }
}

VMI_API vmi_status vmi_event_register(vmi_instance *vmi, vmi_event *ev) {
    vmi_status st;
    VMI_ASSERT(vmi && ev);
    if (ev->armed__) return vmi__fail(vmi, VMI_ERR_ARG, "the event is already registered");
    if ((st = vmi__event_check(vmi, ev)) != VMI_OK) return st;
    if (!vmi->be.event_set)
        return vmi__fail(vmi, VMI_ERR_UNSUPPORTED, "the %s backend has no events", vmi->be.name ? vmi->be.name : "");
    ev->next__ = NULL;
    vmi__event_frame(vmi, ev);
    if ((st = vmi->be.event_set(vmi->be.ctx, ev)) != VMI_OK) return vmi__backend_fail(vmi, st, "event_set");
    ev->armed__ = 1;
    return VMI_OK;
}

VMI_API vmi_status vmi_event_clear(vmi_instance *vmi, vmi_event *ev) {
    vmi_status st;
    VMI_ASSERT(vmi && ev);
    if (!ev->armed__) return vmi__fail(vmi, VMI_ERR_ARG, "the event is not registered");
    st = vmi->be.event_clear ? vmi->be.event_clear(vmi->be.ctx, ev) : VMI_OK;
    ev->armed__ = 0;
    ev->next__ = NULL;
    return st == VMI_OK ? VMI_OK : vmi__backend_fail(vmi, st, "event_clear");
}

VMI_API vmi_status vmi_events_listen(vmi_instance *vmi, int timeout_ms) {
    vmi_event_hit hit;
    vmi_event *ev;
    vmi_status st, st2 = VMI_OK;
    int r;
    VMI_ASSERT(vmi);
    if (timeout_ms < 0) return vmi__fail(vmi, VMI_ERR_ARG, "timeout %d ms", timeout_ms);
    if (!vmi->be.event_wait || !vmi->be.resume)
        return vmi__fail(vmi, VMI_ERR_UNSUPPORTED, "the %s backend has no events", vmi->be.name ? vmi->be.name : "");
    if (vmi->pause_depth) return vmi__fail(vmi, VMI_ERR_TIMEOUT, "paused: a paused guest makes no events");
    memset(&hit, 0, sizeof hit);
    st = vmi->be.event_wait(vmi->be.ctx, timeout_ms, &hit);
    if (st == VMI_ERR_TIMEOUT) return vmi__fail(vmi, st, "no event within %d ms", timeout_ms);
    if (st != VMI_OK) return vmi__backend_fail(vmi, st, "event_wait");
    ev = hit.event;
    if (!ev || !ev->armed__) {
        (void)vmi->be.resume(vmi->be.ctx);
        return vmi__fail(vmi, VMI_ERR_BACKEND, "the %s backend reported a stop no armed event claims", vmi->be.name);
    }
    vmi_flush_caches(vmi); /* the guest ran */
    vmi->pause_depth++;    /* the vCPUs stay stopped through the callback */
    ev->hits++;
    r = ev->fn ? ev->fn(vmi, ev, &hit, ev->user) : VMI_EVENT_KEEP;
    vmi->pause_depth--;
    if (vmi->be.event_respond) vmi->be.event_respond(vmi->be.ctx, &hit, r);
    if ((r & VMI_EVENT_REMOVE) && ev->armed__) st2 = vmi_event_clear(vmi, ev);
    if (vmi->pause_depth) return st2; /* the callback paused: stopped until vmi_resume */
    if ((st = vmi->be.resume(vmi->be.ctx)) != VMI_OK) return vmi__backend_fail(vmi, st, "resume after an event");
    vmi_flush_caches(vmi);
    vmi->v2p_stamp_ms = vmi__now_ms();
    return st2;
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
    if (vmi->types) vmi__types_free(vmi->types);
    if (vmi->ksyms) vmi__symtab_free(vmi, vmi->ksyms);
    if (vmi->psyms) vmi__symtab_free(vmi, vmi->psyms);
    vmi__free(vmi, vmi->vmcoreinfo);
    vmi__free(vmi, vmi->lx);
    vmi__free(vmi, vmi->win);
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
