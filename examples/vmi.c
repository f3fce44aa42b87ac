/* vmi - the command-line tool of vmi.h: look into a guest's memory image.

       vmi info      TARGET                 memory map, vCPUs, registers, paging
       vmi read      TARGET ADDR LEN        hexdump (or --raw bytes) of guest memory
       vmi translate TARGET VA              a page-table walk, level by level
       vmi write     TARGET ADDR HEXBYTES   patch guest memory (with --write)
       vmi ps        TARGET                 the guest's processes (Linux)
       vmi modules   TARGET                 its loaded kernel modules
       vmi sym       TARGET NAME|ADDR       a kernel symbol's address, or ADDR as sym+off
       vmi syms      TARGET                 every kernel symbol, as /proc/kallsyms
       vmi dmesg     TARGET                 the kernel log
       vmi offset    TARGET TYPE[.MEMBER]   a member's offset (or a type's size)
       vmi isf       TARGET -o FILE         the types and symbols as a Volatility3 ISF
       vmi dump      TARGET OUT             guest memory into a raw, LiME or ELF core image

   Build: gcc -std=c99 -O2 -Wall -Wextra -I. examples/vmi.c -o build/vmi
   Options, output formats and exit codes: examples/README.md.

   Every failure is one line on stderr, "vmi: <what failed>: <detail>", and
   exit code 1; a command line that cannot be run exits with 2. */

#define VMI_IMPLEMENTATION
#include "vmi.h"
#include "vmi_file.h"
#include "vmi_kvm.h"
#include "vmi_xen.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__unix__)
#include <sys/ioctl.h>
#include <sys/time.h>
#include <unistd.h>
#endif

#if defined(__GNUC__) || defined(__clang__)
#define CLI_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CLI_PRINTF(f, a)
#endif

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

#define CLI_COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char cli_usage_text[] =
    "usage: vmi info      TARGET [options]\n"
    "       vmi read      TARGET ADDR LEN [--phys | --dtb X | --kernel | --pid N] [--raw] [options]\n"
    "       vmi translate TARGET VA [--dtb X | --pid N] [options]\n"
    "       vmi write     TARGET ADDR HEXBYTES --write [--phys | --dtb X | --kernel | --pid N] [options]\n"
    "       vmi ps        TARGET [--threads | --current] [options]\n"
    "       vmi modules   TARGET [options]\n"
    "       vmi dlls      TARGET --pid N [options]\n"
    "       vmi sym       TARGET NAME|ADDR [options]\n"
    "       vmi syms      TARGET [options]\n"
    "       vmi dmesg     TARGET [options]\n"
    "       vmi offset    TARGET TYPE[.MEMBER] [options]\n"
    "       vmi isf       TARGET -o FILE [options]\n"
    "       vmi dump      TARGET OUT [--format raw|lime|elf] [--json]\n"
    "       vmi help | --help | --version\n";

static const char cli_options_text[] =
    "TARGET is a memory image (raw, LiME, an ELF core from QEMU dump-guest-memory or\n"
    "kdump, a Windows crash dump), qemu:QMP_SOCKET (a running QEMU) or xen:DOMID|NAME.\n"
    "options:\n"
    "  --json                   print one JSON document\n"
    "  --phys                   ADDR is guest-physical (default: virtual, kernel DTB)\n"
    "  --kernel                 ADDR is virtual, through the kernel DTB (the default)\n"
    "  --raw                    read: write the bytes themselves to stdout\n"
    "  --mode MODE              paging: legacy pae ia32e la57 aarch32 lpae aarch64 off\n"
    "  --dtb X                  page-table root: CR3, TTBR1 (TTBR0 without a split)\n"
    "  --tcr X                  AArch64 TCR_EL1, ARM TTBCR\n"
    "  --granule 4k|16k|64k     AArch64: build --tcr from the granule and --va-bits\n"
    "  --va-bits N              (defaults 4k and 48)\n"
    "  --base X                 raw images: guest-physical address of file offset 0\n"
    "  --format FMT             raw, lime, elf or windump: do not detect the format\n"
    "                           from the content; dump (raw, lime or elf): the\n"
    "                           format of OUT (default elf)\n"
    "  --write                  open TARGET writable (needed by vmi write)\n"
    "  --profile FILE           BTF, vmlinux, ISF JSON, System.map or a LibVMI config\n"
    "                           (repeatable)\n"
    "  --pid N                  read, write, translate: through process N's page tables\n"
    "  --threads                ps: every thread, not only thread-group leaders (Windows:\n"
    "                           each process, then its threads: PID is the thread id)\n"
    "  --current                ps: the process each vCPU runs (needs registers)\n"
    "  -o FILE                  isf: the file to write\n"
    "Numbers are decimal or hex with 0x. Registers in the target (ELF cores) give the\n"
    "paging mode and DTB of vCPU 0; --mode, --dtb and --tcr override them. The OS\n"
    "commands (and --pid, --profile) find the kernel, Linux or Windows, in memory\n"
    "first: its symbols, types, KASLR offset and, without registers, the paging.\n";

/* ---- errors ---------------------------------------------------------------- */

/* Control characters (a path may hold a newline) would break the promise of
   one line per error. */
static void cli_put_safe(FILE *out, const char *s)
{
    for (; *s; s++)
        fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, out);
}

static int cli_verror(int code, const char *detail, const char *fmt, va_list ap)
{
    char what[512];
    vsnprintf(what, sizeof what, fmt, ap);
    fputs("vmi: ", stderr);
    cli_put_safe(stderr, what);
    if (detail) {
        fputs(": ", stderr);
        cli_put_safe(stderr, *detail ? detail : "unknown error");
    }
    fputc('\n', stderr);
    return code;
}

/* "vmi: <what>[: <detail>]" on stderr; returns `code` for the exit status. */
static int cli_error(int code, const char *detail, const char *fmt, ...) CLI_PRINTF(3, 4);
static int cli_error(int code, const char *detail, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    code = cli_verror(code, detail, fmt, ap);
    va_end(ap);
    return code;
}

/* A command line of the wrong shape: the error, then how it should look.
   (A bad value on a well-formed command line is a one-line cli_error.) */
static int cli_usage(const char *fmt, ...) CLI_PRINTF(1, 2);
static int cli_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cli_verror(CLI_USAGE, NULL, fmt, ap);
    va_end(ap);
    fputs(cli_usage_text, stderr);
    fputs("Run 'vmi --help' for the options.\n", stderr);
    return CLI_USAGE;
}

/* ---- numbers --------------------------------------------------------------- */

/* Hex with 0x, else decimal, and nothing else: strtoull alone takes "12ab"
   as 12, "-1" as 2^64-1, " 7" as 7 and "010" as octal. */
static int cli_parse_u64(const char *s, uint64_t *out)
{
    const char *digits = "0123456789";
    unsigned long long v;
    char *end;
    int base = 10;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        digits = "0123456789abcdefABCDEF";
        base = 16;
        s += 2;
    }
    if (!*s || s[strspn(s, digits)])
        return 0;
    errno = 0;
    v = strtoull(s, &end, base);
    if (errno == ERANGE)
        return 0;
    *out = (uint64_t)v;
    return 1;
}

/* A number from the command line, or a one-line complaint naming it. */
static int cli_number(const char *name, const char *s, uint64_t *out)
{
    if (cli_parse_u64(s, out))
        return CLI_OK;
    return cli_error(CLI_USAGE, NULL,
                     "%s \"%s\" is not a 64-bit number (decimal, or hex with 0x)", name, s);
}

static int cli_hexval(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* ---- JSON writer ------------------------------------------------------------ */

#define CLI_JSON_DEPTH 8

/* Just enough state to place the commas. */
typedef struct cli_json {
    FILE *out;
    unsigned depth;
    unsigned char need_comma[CLI_JSON_DEPTH];
} cli_json;

/* Length of the valid UTF-8 sequence at s, or 0. JSON text is UTF-8: a path
   with other bytes must not make the document unparseable. */
static size_t cli_utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    size_t n = c >= 0xf5 ? 0 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0, i;
    /* overlong forms (e0, f0), surrogates (ed), past U+10FFFF (f4) */
    if (!n || (c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0) ||
        (c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] >= 0x90))
        return 0;
    for (i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

static void cli_json_quote(FILE *out, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    fputc('"', out);
    while (*s) {
        size_t n = 1;
        if (*s == '"' || *s == '\\')
            fprintf(out, "\\%c", *s);
        else if (*s < 0x20 || *s == 0x7f)
            fprintf(out, "\\u%04x", *s);
        else if (*s < 0x80)
            fputc(*s, out);
        else if ((n = cli_utf8_len(s)) != 0)
            fwrite(s, 1, n, out);
        else
            fputs("\\ufffd", out);
        s += n ? n : 1;
    }
    fputc('"', out);
}

/* The comma before a member and its key (NULL inside arrays). */
static void cli_json_key(cli_json *j, const char *key)
{
    if (j->need_comma[j->depth])
        fputc(',', j->out);
    j->need_comma[j->depth] = 1;
    if (key) {
        cli_json_quote(j->out, key);
        fputc(':', j->out);
    }
}

static void cli_json_open(cli_json *j, const char *key, char bracket)
{
    cli_json_key(j, key);
    fputc(bracket, j->out);
    VMI_ASSERT(j->depth + 1 < CLI_JSON_DEPTH);
    j->need_comma[++j->depth] = 0;
}

static void cli_json_close(cli_json *j, char bracket)
{
    fputc(bracket, j->out);
    j->depth--;
    if (j->depth == 0)
        fputc('\n', j->out);
}

static void cli_json_str(cli_json *j, const char *key, const char *s)
{
    cli_json_key(j, key);
    if (s)
        cli_json_quote(j->out, s);
    else
        fputs("null", j->out);
}

/* Addresses: always a hex string, whatever their size. */
static void cli_json_hex(cli_json *j, const char *key, uint64_t v)
{
    cli_json_key(j, key);
    fprintf(j->out, "\"0x%" PRIx64 "\"", v);
}

/* Counts and sizes: a number where a double holds it exactly (below 2^53),
   else a hex string, so no JSON reader rounds it. */
static void cli_json_num(cli_json *j, const char *key, uint64_t v)
{
    if (v >= (1ull << 53)) {
        cli_json_hex(j, key, v);
        return;
    }
    cli_json_key(j, key);
    fprintf(j->out, "%" PRIu64, v);
}

static const char *const cli_status_names[] = {
#define CLI_STATUS_NAME(name, text) #name,
    VMI_STATUS_LIST(CLI_STATUS_NAME)
#undef CLI_STATUS_NAME
};

/* "error": null, or the status (its enum name and text) and the detail. */
static void cli_json_error(cli_json *j, vmi_status st, const char *detail)
{
    if (st == VMI_OK) {
        cli_json_str(j, "error", NULL);
        return;
    }
    cli_json_open(j, "error", '{');
    cli_json_str(j, "code", (unsigned)st < VMI_STATUS_COUNT ? cli_status_names[st] : "?");
    cli_json_str(j, "status", vmi_status_string(st));
    cli_json_str(j, "message", detail);
    cli_json_close(j, '}');
}

/* ---- options ----------------------------------------------------------------- */

/* Option ids double as bits in cli.seen and in each command's allowed set. */
enum {
    CLI_OPT_JSON, CLI_OPT_MODE, CLI_OPT_DTB, CLI_OPT_TCR, CLI_OPT_GRANULE, CLI_OPT_VA_BITS,
    CLI_OPT_BASE, CLI_OPT_FORMAT, CLI_OPT_WRITE, CLI_OPT_PHYS, CLI_OPT_KERNEL, CLI_OPT_RAW,
    CLI_OPT_HELP, CLI_OPT_VERSION, CLI_OPT_PROFILE, CLI_OPT_PID, CLI_OPT_THREADS, CLI_OPT_OUTPUT,
    CLI_OPT_BREAK, CLI_OPT_HITS, CLI_OPT_SECONDS, CLI_OPT_READ, CLI_OPT_CURRENT,
    CLI_OPT_COUNT
};
#define CLI_BIT(id) (1u << (id))
#define CLI_COMMON                                                                        \
    (CLI_BIT(CLI_OPT_JSON) | CLI_BIT(CLI_OPT_MODE) | CLI_BIT(CLI_OPT_DTB) |               \
     CLI_BIT(CLI_OPT_TCR) | CLI_BIT(CLI_OPT_GRANULE) | CLI_BIT(CLI_OPT_VA_BITS) |         \
     CLI_BIT(CLI_OPT_BASE) | CLI_BIT(CLI_OPT_FORMAT) | CLI_BIT(CLI_OPT_WRITE) |           \
     CLI_BIT(CLI_OPT_HELP) | CLI_BIT(CLI_OPT_VERSION) | CLI_BIT(CLI_OPT_PROFILE))
#define CLI_SPACE (CLI_BIT(CLI_OPT_PHYS) | CLI_BIT(CLI_OPT_KERNEL) | CLI_BIT(CLI_OPT_PID))
#define CLI_PAGING_OPTS                                                                   \
    (CLI_BIT(CLI_OPT_MODE) | CLI_BIT(CLI_OPT_DTB) | CLI_BIT(CLI_OPT_TCR) |                \
     CLI_BIT(CLI_OPT_GRANULE) | CLI_BIT(CLI_OPT_VA_BITS))

static const struct cli_optdef {
    const char *name;
    int has_value;
} cli_optdefs[CLI_OPT_COUNT] = {
    {"--json", 0},   {"--mode", 1},  {"--dtb", 1},   {"--tcr", 1},    {"--granule", 1},
    {"--va-bits", 1}, {"--base", 1}, {"--format", 1}, {"--write", 0},  {"--phys", 0},
    {"--kernel", 0}, {"--raw", 0},   {"--help", 0},  {"--version", 0}, {"--profile", 1},
    {"--pid", 1},    {"--threads", 0}, {"-o", 1},   {"--break", 1},  {"--count", 1},
    {"--seconds", 1}, {"--read", 0}, {"--current", 0}};

/* Where the paging mode or the DTB came from. */
typedef enum cli_source { CLI_SRC_UNKNOWN, CLI_SRC_REGS, CLI_SRC_OPTIONS, CLI_SRC_OS } cli_source;

static const char *const cli_source_text[] = {"unknown", "from vCPU 0 registers",
                                              "from --mode/--dtb", "found in memory"};
static const char *const cli_source_json[] = {"unknown", "vcpu0", "options", "os"};

#define CLI_MAX_POS 4 /* command, TARGET and two more */
#define CLI_MAX_PROFILES 8

/* How a command needs the OS layer (vmi_os_init). */
enum { CLI_OS_NO, CLI_OS_NEEDED, CLI_OS_OPTIONAL };

typedef struct cli cli;
typedef struct cli_cmd {
    const char *name;
    unsigned nargs; /* after the command */
    const char *args;
    unsigned allowed; /* CLI_BIT()s */
    int os;           /* CLI_OS_* */
    int (*run)(cli *c);
} cli_cmd;

struct cli {
    const char *pos[CLI_MAX_POS];
    unsigned npos;
    unsigned seen;
    const char *value[CLI_OPT_COUNT];
    const char *profiles[CLI_MAX_PROFILES];
    unsigned nprofiles;
    const cli_cmd *cmd;
    /* resolved options */
    vmi_paging_mode mode;
    uint64_t dtb, tcr, base, pid;
    /* the open target */
    vmi_instance *vmi;
    cli_source mode_src, dtb_src;
    vmi_status os_status; /* of vmi_os_init, when it ran */
    char os_error[256];
    uint64_t pid_dtb;     /* --pid: the process's page-table root */
    uint32_t cur_vcpu[64]; /* ps --current: the vCPU of each process listed */
    cli_json json;
};

static int cli_has(const cli *c, int id)
{
    return (c->seen & CLI_BIT(id)) != 0;
}

/* One option at argv[*i]: "--name", "--name value" or "--name=value". */
static int cli_parse_option(cli *c, int argc, char **argv, int *i)
{
    const char *arg = argv[*i], *eq = strchr(arg, '=');
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
    int id;
    for (id = 0; id < CLI_OPT_COUNT; id++)
        if (strlen(cli_optdefs[id].name) == len && strncmp(cli_optdefs[id].name, arg, len) == 0)
            break;
    if (id == CLI_OPT_COUNT)
        return cli_usage("unknown option \"%s\"", arg);
    if (!cli_optdefs[id].has_value && eq)
        return cli_usage("%s takes no value", cli_optdefs[id].name);
    if (cli_optdefs[id].has_value && !eq && *i + 1 >= argc)
        return cli_usage("%s needs a value", cli_optdefs[id].name);
    c->value[id] = cli_optdefs[id].has_value ? (eq ? eq + 1 : argv[++*i]) : "";
    c->seen |= CLI_BIT(id);
    if (id == CLI_OPT_PROFILE) {
        if (c->nprofiles == CLI_MAX_PROFILES)
            return cli_usage("more than %d --profile options", CLI_MAX_PROFILES);
        c->profiles[c->nprofiles++] = c->value[id];
    }
    return CLI_OK;
}

/* Options may come anywhere; "--" ends them (for a TARGET named "-x"). */
static int cli_parse_args(cli *c, int argc, char **argv)
{
    int i, options = 1, rc;
    for (i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (options && strcmp(arg, "--") == 0) {
            options = 0;
        } else if (options && arg[0] == '-' && arg[1]) {
            if ((rc = cli_parse_option(c, argc, argv, &i)) != CLI_OK)
                return rc;
        } else if (c->npos == CLI_MAX_POS) {
            return cli_usage("too many arguments, from \"%s\" on", arg);
        } else {
            c->pos[c->npos++] = arg;
        }
    }
    return CLI_OK;
}

/* T0SZ = T1SZ = 64 - va_bits; TG0 and TG1 number the granules differently. */
static int cli_resolve_tcr(cli *c)
{
    static const struct { const char *name; uint64_t tg0, tg1; } granules[] = {
        {"4k", 0, 2}, {"16k", 2, 1}, {"64k", 1, 3}};
    const char *g = cli_has(c, CLI_OPT_GRANULE) ? c->value[CLI_OPT_GRANULE] : "4k";
    uint64_t bits = 48, tsz;
    size_t i;
    int rc;
    if (cli_has(c, CLI_OPT_TCR))
        return cli_error(CLI_USAGE, NULL,
                         "--tcr and --granule/--va-bits both give the TCR: use one");
    if (cli_has(c, CLI_OPT_VA_BITS) &&
        (rc = cli_number("--va-bits", c->value[CLI_OPT_VA_BITS], &bits)) != CLI_OK)
        return rc;
    if (bits < 16 || bits > 52)
        return cli_error(CLI_USAGE, NULL, "--va-bits %" PRIu64 " is outside 16..52", bits);
    for (i = 0; i < CLI_COUNT(granules); i++)
        if (strcmp(g, granules[i].name) == 0)
            break;
    if (i == CLI_COUNT(granules))
        return cli_error(CLI_USAGE, NULL, "--granule \"%s\" is not 4k, 16k or 64k", g);
    tsz = 64 - bits;
    c->tcr = tsz | (tsz << 16) | (granules[i].tg0 << 14) | (granules[i].tg1 << 30);
    return CLI_OK;
}

/* Option values into numbers and modes, before anything is opened. */
static int cli_resolve_options(cli *c)
{
    int rc = CLI_OK;
    if (cli_has(c, CLI_OPT_MODE)) {
        c->mode = vmi_paging_mode_parse(c->value[CLI_OPT_MODE]);
        if (c->mode == VMI_PAGING_UNKNOWN)
            return cli_error(CLI_USAGE, NULL,
                             "--mode \"%s\" is not a paging mode (legacy, pae, ia32e, la57, "
                             "aarch32, lpae, aarch64, off)",
                             c->value[CLI_OPT_MODE]);
    }
    if (cli_has(c, CLI_OPT_DTB))
        rc = cli_number("--dtb", c->value[CLI_OPT_DTB], &c->dtb);
    if (rc == CLI_OK && cli_has(c, CLI_OPT_TCR))
        rc = cli_number("--tcr", c->value[CLI_OPT_TCR], &c->tcr);
    if (rc == CLI_OK && cli_has(c, CLI_OPT_BASE))
        rc = cli_number("--base", c->value[CLI_OPT_BASE], &c->base);
    if (rc == CLI_OK && cli_has(c, CLI_OPT_PID) &&
        (rc = cli_number("--pid", c->value[CLI_OPT_PID], &c->pid)) == CLI_OK && c->pid > INT64_MAX)
        return cli_error(CLI_USAGE, NULL, "--pid %s is not a process id", c->value[CLI_OPT_PID]);
    if (rc == CLI_OK && (cli_has(c, CLI_OPT_GRANULE) || cli_has(c, CLI_OPT_VA_BITS)))
        rc = cli_resolve_tcr(c);
    if (rc == CLI_OK && cli_has(c, CLI_OPT_RAW) && cli_has(c, CLI_OPT_JSON))
        return cli_usage("--raw and --json both say what to print: use one");
    if (rc == CLI_OK && cli_has(c, CLI_OPT_PHYS) &&
        (cli_has(c, CLI_OPT_KERNEL) || cli_has(c, CLI_OPT_DTB)))
        return cli_usage("--phys reads physical memory: it takes no --dtb or --kernel");
    if (rc == CLI_OK && cli_has(c, CLI_OPT_PID) &&
        (cli_has(c, CLI_OPT_PHYS) || cli_has(c, CLI_OPT_KERNEL)))
        return cli_usage("--pid reads through the process's page tables: it takes no --phys "
                         "or --kernel");
    return rc;
}

/* ---- opening a target ---------------------------------------------------------- */

/* TARGET names the backend. Only memory images exist so far: "qemu:" and
   "xen:" targets will open the live backends (vmi_kvm.h, vmi_xen.h) here. */
static vmi_status cli_open_backend(const cli *c, const char *target, vmi_backend *be,
                                   char *err, size_t errlen)
{
    vmi_file_desc fdesc;
    if (strncmp(target, "qemu:", 5) == 0) { /* a running QEMU, by its QMP socket */
        vmi_kvm_desc kdesc;
        memset(&kdesc, 0, sizeof kdesc);
        kdesc.qmp = target + 5;
        kdesc.writable = cli_has(c, CLI_OPT_WRITE);
        return vmi_kvm_open(&kdesc, be, err, errlen);
    }
    if (strncmp(target, "xen:", 4) == 0) { /* a Xen domain, by id or name (dom0, root) */
        vmi_xen_desc xdesc;
        memset(&xdesc, 0, sizeof xdesc);
        xdesc.domain = target + 4;
        xdesc.writable = cli_has(c, CLI_OPT_WRITE);
        return vmi_xen_open(&xdesc, be, err, errlen);
    }
    memset(&fdesc, 0, sizeof fdesc);
    fdesc.path = target;
    fdesc.writable = cli_has(c, CLI_OPT_WRITE);
    fdesc.base = c->base;
    fdesc.format = c->value[CLI_OPT_FORMAT];
    return vmi_file_open(&fdesc, be, err, errlen);
}

/* vmi_open took the paging from vCPU 0's registers where the target has
   them; --mode, --dtb and --tcr override it field by field. */
static int cli_apply_paging(cli *c)
{
    vmi_paging p = *vmi_get_paging(c->vmi);
    c->mode_src = c->dtb_src = p.mode != VMI_PAGING_UNKNOWN ? CLI_SRC_REGS : CLI_SRC_UNKNOWN;
    if (cli_has(c, CLI_OPT_MODE)) {
        p.mode = c->mode;
        c->mode_src = CLI_SRC_OPTIONS;
    }
    if (p.mode == VMI_PAGING_UNKNOWN && (c->seen & CLI_PAGING_OPTS))
        return cli_error(CLI_USAGE, NULL,
                         "%s carries no registers to take the paging mode from: add --mode",
                         c->pos[1]);
    if ((cli_has(c, CLI_OPT_GRANULE) || cli_has(c, CLI_OPT_VA_BITS)) &&
        p.mode != VMI_PAGING_AARCH64)
        return cli_error(CLI_USAGE, NULL,
                         "--granule and --va-bits describe AArch64 paging (--mode aarch64)");
    if (cli_has(c, CLI_OPT_DTB)) {
        p.dtb = c->dtb;
        c->dtb_src = CLI_SRC_OPTIONS;
    }
    if (cli_has(c, CLI_OPT_TCR) || cli_has(c, CLI_OPT_GRANULE) || cli_has(c, CLI_OPT_VA_BITS))
        p.tcr = c->tcr;
    /* With 8-byte x86 entries, bit 63 set while EFER.NXE is clear is a
       reserved-bit fault: a guest that sets it has NXE on. Images carry no
       EFER, so say NX where the guest does. */
    if (p.mode == VMI_PAGING_PAE || p.mode == VMI_PAGING_IA32E || p.mode == VMI_PAGING_LA57)
        p.flags |= VMI_PAGING_NXE;
    if (vmi_set_paging(c->vmi, &p) != VMI_OK)
        return cli_error(CLI_FAIL, vmi_last_error(c->vmi), "paging");
    return CLI_OK;
}

/* The --profile files, then vmi_os_init: the kernel's symbols, types, KASLR
   offset and, where no register gave it, the paging. It runs after
   cli_apply_paging, so --mode and --dtb win. */
static int cli_os_init(cli *c)
{
    uint64_t dtb = vmi_kernel_dtb(c->vmi);
    unsigned i;
    for (i = 0; i < c->nprofiles; i++)
        if (vmi_load_profile(c->vmi, c->profiles[i]) != VMI_OK)
            return cli_error(CLI_FAIL, vmi_last_error(c->vmi), "profile %s", c->profiles[i]);
    c->os_status = vmi_os_init(c->vmi);
    if (c->os_status != VMI_OK) {
        snprintf(c->os_error, sizeof c->os_error, "%s", vmi_last_error(c->vmi));
        if (c->cmd->os != CLI_OS_NEEDED && !cli_has(c, CLI_OPT_PID))
            return CLI_OK;
        return cli_error(CLI_FAIL, c->os_error, "%s: no operating system found", c->pos[1]);
    }
    if (c->mode_src == CLI_SRC_UNKNOWN && vmi_get_paging(c->vmi)->mode != VMI_PAGING_UNKNOWN)
        c->mode_src = CLI_SRC_OS;
    if (c->dtb_src != CLI_SRC_OPTIONS && vmi_kernel_dtb(c->vmi) != dtb)
        c->dtb_src = CLI_SRC_OS; /* found, or a register's KPTI user root fixed */
    if (cli_has(c, CLI_OPT_PID) && vmi_pid_to_dtb(c->vmi, (int64_t)c->pid, &c->pid_dtb) != VMI_OK)
        return cli_error(CLI_FAIL, vmi_last_error(c->vmi), "--pid %" PRIu64, c->pid);
    return CLI_OK;
}

static int cli_open(cli *c)
{
    const char *target = c->pos[1];
    vmi_desc desc;
    vmi_status st;
    char err[512];
    int rc;
    memset(&desc, 0, sizeof desc);
    st = cli_open_backend(c, target, &desc.backend, err, sizeof err);
    if (st != VMI_OK)
        return cli_error(CLI_FAIL, err, "open");
    /* vmi_open frees its instance on failure: the status is all there is. */
    st = vmi_open(&desc, &c->vmi);
    if (st != VMI_OK)
        return cli_error(CLI_FAIL, vmi_status_string(st), "open %s", target);
    if ((rc = cli_apply_paging(c)) != CLI_OK)
        return rc;
    /* Reads of virtual memory without a paging mode (raw and LiME images)
       try to find it from the kernel too. */
    if (c->cmd->os != CLI_OS_NO || cli_has(c, CLI_OPT_PID) || cli_has(c, CLI_OPT_PROFILE) ||
        (!cli_has(c, CLI_OPT_PHYS) && vmi_get_paging(c->vmi)->mode == VMI_PAGING_UNKNOWN))
        return cli_os_init(c);
    return CLI_OK;
}

/* Virtual addresses need a mode, and a root unless paging is off. */
static int cli_need_paging(const cli *c)
{
    const vmi_paging *p = vmi_get_paging(c->vmi);
    if (p->mode == VMI_PAGING_UNKNOWN)
        return cli_error(CLI_USAGE, NULL,
                         "%s: paging mode unknown (no registers in the target%s%s): give "
                         "--mode and --dtb%s",
                         c->pos[1], c->os_status != VMI_OK ? ", no kernel found: " : "",
                         c->os_status != VMI_OK ? c->os_error : "",
                         c->cmd->allowed & CLI_SPACE ? ", or use --phys" : "");
    if (p->mode != VMI_PAGING_OFF && c->dtb_src == CLI_SRC_UNKNOWN)
        return cli_error(CLI_USAGE, NULL, "%s: no page-table root known: give --dtb",
                         c->pos[1]);
    return CLI_OK;
}

/* ---- info ------------------------------------------------------------------------ */

/* Registers worth showing, per architecture, with the group that fills them. */
typedef struct cli_reg {
    const char *name;
    uint32_t group;
    size_t off, size;
} cli_reg;

#define CLI_REG(name, group, member) \
    {name, group, offsetof(vmi_regs, member), sizeof(((vmi_regs *)0)->member)}

static const cli_reg cli_regs_x86[] = {
    CLI_REG("rip", VMI_REGS_GPR, x86.rip),
    CLI_REG("rsp", VMI_REGS_GPR, x86.rsp),
    CLI_REG("cr0", VMI_REGS_CONTROL, x86.cr0),
    CLI_REG("cr3", VMI_REGS_CONTROL, x86.cr3),
    CLI_REG("cr4", VMI_REGS_CONTROL, x86.cr4),
    CLI_REG("efer", VMI_REGS_CONTROL, x86.efer)};
static const cli_reg cli_regs_arm64[] = {
    CLI_REG("pc", VMI_REGS_GPR, arm64.pc),
    CLI_REG("sp", VMI_REGS_GPR, arm64.sp),
    CLI_REG("ttbr0", VMI_REGS_CONTROL, arm64.ttbr0),
    CLI_REG("ttbr1", VMI_REGS_CONTROL, arm64.ttbr1),
    CLI_REG("tcr", VMI_REGS_CONTROL, arm64.tcr)};
static const cli_reg cli_regs_arm[] = {
    CLI_REG("pc", VMI_REGS_GPR, arm.r[15]),
    CLI_REG("sp", VMI_REGS_GPR, arm.r[13]),
    CLI_REG("ttbr0", VMI_REGS_CONTROL, arm.ttbr0),
    CLI_REG("ttbr1", VMI_REGS_CONTROL, arm.ttbr1),
    CLI_REG("ttbcr", VMI_REGS_CONTROL, arm.ttbcr)};

static const cli_reg *cli_regs_for(vmi_arch arch, size_t *n)
{
    switch (arch) {
    case VMI_ARCH_X86:
    case VMI_ARCH_X86_64: *n = CLI_COUNT(cli_regs_x86); return cli_regs_x86;
    case VMI_ARCH_AARCH64: *n = CLI_COUNT(cli_regs_arm64); return cli_regs_arm64;
    case VMI_ARCH_ARM: *n = CLI_COUNT(cli_regs_arm); return cli_regs_arm;
    default: *n = 0; return NULL;
    }
}

static uint64_t cli_reg_value(const vmi_regs *regs, const cli_reg *r)
{
    const unsigned char *p = (const unsigned char *)regs + r->off;
    uint32_t v32;
    uint64_t v64;
    if (r->size == sizeof v32) {
        memcpy(&v32, p, sizeof v32);
        return v32;
    }
    memcpy(&v64, p, sizeof v64);
    return v64;
}

/* "64 KiB": the largest binary unit that divides the size exactly. */
static const char *cli_human(uint64_t v, char *buf, size_t cap)
{
    static const char *const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    unsigned u = 0;
    while (v && u + 1 < CLI_COUNT(units) && (v & 1023) == 0) {
        v >>= 10;
        u++;
    }
    snprintf(buf, cap, "%" PRIu64 " %s", v, units[u]);
    return buf;
}

static int cli_arm_mode(vmi_paging_mode m)
{
    return m == VMI_PAGING_AARCH64 || m == VMI_PAGING_LPAE || m == VMI_PAGING_AARCH32;
}

static void cli_info_regs_text(const vmi_regs *regs)
{
    size_t n, i;
    const cli_reg *r = cli_regs_for(regs->arch, &n);
    for (i = 0; i < n; i++)
        if (regs->valid & r[i].group)
            printf("  %s 0x%" PRIx64, r[i].name, cli_reg_value(regs, &r[i]));
    putchar('\n');
}

static void cli_info_vcpus_text(cli *c)
{
    uint32_t count, v;
    vmi_regs regs;
    if (vmi_vcpu_count(c->vmi, &count) != VMI_OK) {
        printf("vcpus     unknown\n");
        return;
    }
    printf("vcpus     %" PRIu32 "%s\n", count, count ? "" : " (no registers in the target)");
    for (v = 0; v < count; v++) {
        printf("  vcpu %" PRIu32 ":", v);
        if (vmi_get_regs(c->vmi, v, &regs) == VMI_OK)
            cli_info_regs_text(&regs);
        else
            printf("  registers unavailable: %s\n", vmi_last_error(c->vmi));
    }
}

static const char *cli_os_name(vmi_os os)
{
    return os == VMI_OS_LINUX ? "linux" : os == VMI_OS_WINDOWS ? "windows" : "unknown";
}

/* "label     value (how it was found)"; guest strings made safe to print. */
static void cli_text_found(const char *label, const char *value, const char *source)
{
    printf("%-9s ", label);
    cli_put_safe(stdout, value);
    if (source && *source) {
        fputs(" (", stdout);
        cli_put_safe(stdout, source);
        putchar(')');
    }
    putchar('\n');
}

/* Which kernel this is and which PDB describes it (a symbol server's
   NAME/ID/NAME path). */
static void cli_info_windows_text(const vmi_os_info *os)
{
    char v[160];
    snprintf(v, sizeof v, "0x%" PRIx64, os->kernel_base);
    cli_text_found("ntoskrnl", v, NULL);
    snprintf(v, sizeof v, "%u", os->build);
    cli_text_found("build", v, NULL);
    if (os->kdbg)
        snprintf(v, sizeof v, "0x%" PRIx64, os->kdbg);
    else
        snprintf(v, sizeof v, "not found");
    cli_text_found("kdbg", v, NULL);
    snprintf(v, sizeof v, "%s %s", os->pdb_name[0] ? os->pdb_name : "unknown",
             os->pdb_id[0] ? os->pdb_id : "");
    cli_text_found("pdb", v, NULL);
}

static void cli_info_os_text(const cli *c)
{
    const vmi_os_info *os = vmi_os_get_info(c->vmi);
    char v[64];
    if (c->os_status != VMI_OK) {
        cli_text_found("os", "not found", c->os_error);
        return;
    }
    cli_text_found("os", cli_os_name(os->os), os->os_source);
    cli_text_found("release", os->release, NULL);
    cli_text_found("banner", os->version, NULL);
    snprintf(v, sizeof v, "0x%" PRIx64 " (physical 0x%" PRIx64 ")", os->kaslr_offset, os->kaslr_phys_offset);
    cli_text_found("kaslr", v, os->slide_source);
    snprintf(v, sizeof v, "VA - PA 0x%" PRIx64, os->kernel_pa_offset);
    cli_text_found("kernel", v, NULL);
    snprintf(v, sizeof v, "%zu", os->nsymbols);
    cli_text_found("symbols", v, os->symbols_source);
    snprintf(v, sizeof v, "%zu", os->ntypes);
    cli_text_found("types", v, os->types_source);
    cli_text_found("os paging", vmi_paging_mode_name(vmi_get_paging(c->vmi)->mode),
                   os->paging_source);
    if (os->os == VMI_OS_WINDOWS)
        cli_info_windows_text(os);
}

static void cli_info_text(cli *c)
{
    const vmi_backend *be = vmi_get_backend(c->vmi);
    const vmi_paging *p = vmi_get_paging(c->vmi);
    size_t n, i;
    const vmi_mem_range *r = vmi_memory_map(c->vmi, &n);
    char h[32];
    printf("target    %s\nbackend   %s\nformat    %s\narch      %s\n", c->pos[1],
           be->name ? be->name : "?", be->format ? be->format : "?", vmi_arch_name(be->arch));
    printf("memory    %zu range%s, 0x%" PRIx64 " bytes (%s)\n", n, n == 1 ? "" : "s",
           vmi_memory_size(c->vmi), cli_human(vmi_memory_size(c->vmi), h, sizeof h));
    for (i = 0; i < n; i++)
        printf("  0x%016" PRIx64 "-0x%016" PRIx64 "  0x%" PRIx64 " (%s)\n", r[i].pa,
               r[i].pa + (r[i].size - 1), r[i].size, cli_human(r[i].size, h, sizeof h));
    cli_info_vcpus_text(c);
    if (c->mode_src == CLI_SRC_UNKNOWN)
        printf("paging    unknown (no registers in the target: give --mode)\n");
    else
        printf("paging    %s (%s)\n", vmi_paging_mode_name(p->mode), cli_source_text[c->mode_src]);
    if (c->dtb_src == CLI_SRC_UNKNOWN)
        printf("dtb       unknown\n");
    else
        printf("dtb       0x%016" PRIx64 " (%s)\n", p->dtb, cli_source_text[c->dtb_src]);
    if (cli_arm_mode(p->mode))
        printf("tcr       0x%" PRIx64 "\n", p->tcr);
    cli_info_os_text(c);
}

static void cli_info_vcpus_json(cli *c)
{
    cli_json *j = &c->json;
    uint32_t count, v;
    size_t n, i;
    vmi_regs regs;
    if (vmi_vcpu_count(c->vmi, &count) != VMI_OK) {
        cli_json_str(j, "vcpus", NULL);
        count = 0;
    } else {
        cli_json_num(j, "vcpus", count);
    }
    cli_json_open(j, "registers", '[');
    for (v = 0; v < count; v++) {
        const cli_reg *r;
        cli_json_open(j, NULL, '{');
        cli_json_num(j, "vcpu", v);
        if (vmi_get_regs(c->vmi, v, &regs) != VMI_OK) {
            cli_json_str(j, "error", vmi_last_error(c->vmi));
        } else {
            r = cli_regs_for(regs.arch, &n);
            for (i = 0; i < n; i++)
                if (regs.valid & r[i].group)
                    cli_json_hex(j, r[i].name, cli_reg_value(&regs, &r[i]));
        }
        cli_json_close(j, '}');
    }
    cli_json_close(j, ']');
}

/* A string of vmi_os_info: null when the OS was not found or it is empty. */
static void cli_json_os_str(cli *c, const char *key, const char *s)
{
    cli_json_str(&c->json, key, c->os_status == VMI_OK && *s ? s : NULL);
}

static void cli_info_os_json(cli *c)
{
    cli_json *j = &c->json;
    const vmi_os_info *os = vmi_os_get_info(c->vmi);
    int ok = c->os_status == VMI_OK;
    cli_json_open(j, "os", '{');
    cli_json_os_str(c, "name", cli_os_name(os->os));
    cli_json_os_str(c, "source", os->os_source);
    cli_json_os_str(c, "release", os->release);
    cli_json_os_str(c, "banner", os->version);
    if (ok) {
        cli_json_hex(j, "kaslr_offset", os->kaslr_offset);
        cli_json_hex(j, "kaslr_phys_offset", os->kaslr_phys_offset);
        cli_json_hex(j, "kernel_pa_offset", os->kernel_pa_offset);
        cli_json_num(j, "symbols", os->nsymbols);
        cli_json_num(j, "types", os->ntypes);
    } else {
        cli_json_str(j, "kaslr_offset", NULL);
        cli_json_str(j, "kaslr_phys_offset", NULL);
        cli_json_str(j, "kernel_pa_offset", NULL);
        cli_json_str(j, "symbols", NULL);
        cli_json_str(j, "types", NULL);
    }
    cli_json_os_str(c, "kaslr_source", os->slide_source);
    cli_json_os_str(c, "symbols_source", os->symbols_source);
    cli_json_os_str(c, "types_source", os->types_source);
    cli_json_os_str(c, "paging_source", os->paging_source);
    if (ok && os->os == VMI_OS_WINDOWS) {
        cli_json_hex(j, "kernel_base", os->kernel_base);
        if (os->kdbg)
            cli_json_hex(j, "kdbg", os->kdbg);
        else
            cli_json_str(j, "kdbg", NULL);
        cli_json_os_str(c, "pdb_name", os->pdb_name);
        cli_json_os_str(c, "pdb_id", os->pdb_id);
        cli_json_num(j, "build", os->build);
    }
    cli_json_error(j, c->os_status, ok ? NULL : c->os_error);
    cli_json_close(j, '}');
}

static void cli_info_json(cli *c)
{
    cli_json *j = &c->json;
    const vmi_backend *be = vmi_get_backend(c->vmi);
    const vmi_paging *p = vmi_get_paging(c->vmi);
    size_t n, i;
    const vmi_mem_range *r = vmi_memory_map(c->vmi, &n);
    cli_json_open(j, NULL, '{');
    cli_json_str(j, "target", c->pos[1]);
    cli_json_str(j, "backend", be->name);
    cli_json_str(j, "format", be->format);
    cli_json_str(j, "arch", vmi_arch_name(be->arch));
    cli_json_open(j, "ranges", '[');
    for (i = 0; i < n; i++) {
        cli_json_open(j, NULL, '{');
        cli_json_hex(j, "start", r[i].pa);
        cli_json_hex(j, "end", r[i].pa + (r[i].size - 1));
        cli_json_num(j, "size", r[i].size);
        cli_json_close(j, '}');
    }
    cli_json_close(j, ']');
    cli_json_num(j, "memory_size", vmi_memory_size(c->vmi));
    cli_info_vcpus_json(c);
    cli_json_open(j, "paging", '{');
    cli_json_str(j, "mode", vmi_paging_mode_name(p->mode));
    cli_json_str(j, "mode_source", cli_source_json[c->mode_src]);
    cli_json_hex(j, "dtb", p->dtb);
    cli_json_str(j, "dtb_source", cli_source_json[c->dtb_src]);
    cli_json_hex(j, "tcr", p->tcr);
    cli_json_close(j, '}');
    cli_info_os_json(c);
    cli_json_close(j, '}');
}

static int cli_cmd_info(cli *c)
{
    int rc = cli_open(c);
    if (rc != CLI_OK)
        return rc;
    if (cli_has(c, CLI_OPT_JSON))
        cli_info_json(c);
    else
        cli_info_text(c);
    return CLI_OK;
}

/* ---- read and write ------------------------------------------------------------- */

/* The root of virtual accesses: the process's with --pid (found once, as
   vmi_read_pid would on every call), else the kernel's (which --dtb sets). */
static uint64_t cli_dtb(const cli *c)
{
    return cli_has(c, CLI_OPT_PID) ? c->pid_dtb : vmi_kernel_dtb(c->vmi);
}

/* ADDR in the space the options name: physical, or virtual through
   cli_dtb. */
static vmi_status cli_access(cli *c, uint64_t addr, uint8_t *rbuf, const uint8_t *wbuf,
                             size_t n, size_t *done)
{
    uint64_t dtb = cli_dtb(c);
    if (cli_has(c, CLI_OPT_PHYS))
        return wbuf ? vmi_write_pa(c->vmi, addr, wbuf, n, done)
                    : vmi_read_pa(c->vmi, addr, rbuf, n, done);
    return wbuf ? vmi_write_va(c->vmi, dtb, addr, wbuf, n, done)
                : vmi_read_va(c->vmi, dtb, addr, rbuf, n, done);
}

static int cli_open_space(cli *c)
{
    int rc = cli_open(c);
    if (rc == CLI_OK && !cli_has(c, CLI_OPT_PHYS))
        rc = cli_need_paging(c);
    return rc;
}

/* The head of a read or write report in JSON: what was asked. */
static void cli_json_access_head(cli *c, uint64_t addr)
{
    cli_json *j = &c->json;
    cli_json_open(j, NULL, '{');
    cli_json_str(j, "target", c->pos[1]);
    cli_json_str(j, "space", cli_has(c, CLI_OPT_PHYS) ? "physical" : "virtual");
    if (cli_has(c, CLI_OPT_PHYS))
        cli_json_str(j, "dtb", NULL);
    else
        cli_json_hex(j, "dtb", cli_dtb(c));
    if (cli_has(c, CLI_OPT_PID))
        cli_json_num(j, "pid", c->pid);
    else
        cli_json_str(j, "pid", NULL);
    cli_json_hex(j, "address", addr);
}

/* One hexdump -C line (up to 16 bytes), with the full 64-bit address. */
static void cli_hexdump_line(uint64_t addr, const uint8_t *p, size_t n)
{
    size_t i;
    printf("%016" PRIx64 " ", addr);
    for (i = 0; i < 16; i++) {
        if (i == 8)
            putchar(' ');
        if (i < n)
            printf(" %02x", p[i]);
        else
            fputs("   ", stdout);
    }
    fputs("  |", stdout);
    for (i = 0; i < n; i++)
        putchar(p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '.');
    fputs("|\n", stdout);
}

/* Bytes as they arrive, in the chosen form. Chunks are whole lines except
   the last, so hexdump lines stay 16 bytes from ADDR. */
static void cli_emit(cli *c, uint64_t addr, const uint8_t *buf, size_t n)
{
    size_t i;
    if (cli_has(c, CLI_OPT_RAW)) {
        fwrite(buf, 1, n, stdout);
    } else if (cli_has(c, CLI_OPT_JSON)) {
        for (i = 0; i < n; i++)
            printf("%02x", buf[i]);
    } else {
        for (i = 0; i < n; i += 16)
            cli_hexdump_line(addr + i, buf + i, n - i < 16 ? n - i : 16);
    }
}

/* Reads in chunks so LEN is not bounded by memory; stops at the first
   failure, after printing what came before it. */
static vmi_status cli_read_loop(cli *c, uint64_t addr, uint64_t len, uint64_t *total)
{
    uint8_t buf[4096];
    vmi_status st = VMI_OK;
    *total = 0;
    while (*total < len && st == VMI_OK) {
        size_t want = len - *total < sizeof buf ? (size_t)(len - *total) : sizeof buf, got = 0;
        st = cli_access(c, addr + *total, buf, NULL, want, &got);
        cli_emit(c, addr + *total, buf, got);
        *total += got;
    }
    return st;
}

static int cli_cmd_read(cli *c)
{
    uint64_t addr, len, total;
    cli_json *j = &c->json;
    vmi_status st;
    int rc = cli_number("ADDR", c->pos[2], &addr);
    if (rc == CLI_OK)
        rc = cli_number("LEN", c->pos[3], &len);
    if (rc == CLI_OK && len && len - 1 > UINT64_MAX - addr)
        return cli_error(CLI_USAGE, NULL, "ADDR + LEN passes the end of the address space");
    if (rc != CLI_OK || (rc = cli_open_space(c)) != CLI_OK)
        return rc;
    if (cli_has(c, CLI_OPT_JSON)) {
        cli_json_access_head(c, addr);
        cli_json_num(j, "length", len);
        cli_json_key(j, "data");
        putchar('"');
    }
    st = cli_read_loop(c, addr, len, &total);
    if (cli_has(c, CLI_OPT_JSON)) {
        putchar('"');
        cli_json_num(j, "read", total);
        cli_json_error(j, st, st == VMI_OK ? NULL : vmi_last_error(c->vmi));
        cli_json_close(j, '}');
    }
    if (st != VMI_OK)
        return cli_error(CLI_FAIL, vmi_last_error(c->vmi), "read at 0x%" PRIx64 " (%" PRIu64
                         " of %" PRIu64 " bytes read)", addr + total, total, len);
    return CLI_OK;
}

/* HEXBYTES: pairs of hex digits, e.g. "90c3". */
static int cli_parse_hexbytes(const char *s, uint8_t **out, size_t *n)
{
    size_t len = strlen(s), i;
    uint8_t *b;
    for (i = 0; i < len && cli_hexval(s[i]) >= 0; i++)
        ;
    if (len == 0 || i < len || len % 2)
        return cli_error(CLI_USAGE, NULL,
                         "HEXBYTES \"%s\" is not an even number of hex digits (e.g. 90c3)", s);
    b = (uint8_t *)malloc(len / 2);
    if (!b)
        return cli_error(CLI_FAIL, "out of memory", "HEXBYTES");
    for (i = 0; i < len / 2; i++)
        b[i] = (uint8_t)(cli_hexval(s[2 * i]) << 4 | cli_hexval(s[2 * i + 1]));
    *out = b;
    *n = len / 2;
    return CLI_OK;
}

static int cli_write_bytes(cli *c, uint64_t addr, const uint8_t *bytes, size_t n)
{
    size_t done = 0;
    vmi_status st = cli_access(c, addr, NULL, bytes, n, &done);
    if (cli_has(c, CLI_OPT_JSON)) {
        cli_json_access_head(c, addr);
        cli_json_num(&c->json, "length", n);
        cli_json_num(&c->json, "written", done);
        cli_json_error(&c->json, st, st == VMI_OK ? NULL : vmi_last_error(c->vmi));
        cli_json_close(&c->json, '}');
    } else if (st == VMI_OK) {
        printf("wrote %zu bytes at 0x%" PRIx64 "\n", n, addr);
    }
    if (st != VMI_OK)
        return cli_error(CLI_FAIL, vmi_last_error(c->vmi),
                         "write at 0x%" PRIx64 " (%zu of %zu bytes written)", addr + done, done,
                         n);
    return CLI_OK;
}

static int cli_cmd_write(cli *c)
{
    uint64_t addr;
    uint8_t *bytes = NULL;
    size_t n = 0;
    int rc;
    if (!cli_has(c, CLI_OPT_WRITE))
        return cli_usage("write changes TARGET: add --write to open it writable");
    rc = cli_number("ADDR", c->pos[2], &addr);
    if (rc == CLI_OK)
        rc = cli_parse_hexbytes(c->pos[3], &bytes, &n);
    if (rc == CLI_OK && n - 1 > UINT64_MAX - addr)
        rc = cli_error(CLI_USAGE, NULL, "ADDR + length passes the end of the address space");
    if (rc == CLI_OK)
        rc = cli_open_space(c);
    if (rc == CLI_OK)
        rc = cli_write_bytes(c, addr, bytes, n);
    free(bytes);
    return rc;
}

/* ---- translate ----------------------------------------------------------------- */

static const struct { uint32_t bit; const char *name; } cli_page_flags[] = {
    {VMI_PAGE_WRITE, "W"}, {VMI_PAGE_USER, "U"},     {VMI_PAGE_NX, "NX"},
    {VMI_PAGE_PXN, "PXN"}, {VMI_PAGE_GLOBAL, "G"}, {VMI_PAGE_CONTIG, "CONTIG"}};
#define CLI_NFLAGS CLI_COUNT(cli_page_flags)

static void cli_walk_text(const vmi_walk *w, vmi_paging_mode mode, vmi_status st)
{
    char h[32];
    uint32_t l;
    size_t i;
    printf("va 0x%016" PRIx64 "  mode %s  dtb 0x%" PRIx64 "\n", w->va,
           vmi_paging_mode_name(mode), w->dtb);
    if (w->nlevels)
        printf("level  table              index  entry pa           entry\n");
    for (l = 0; l < w->nlevels && l < VMI_WALK_MAX_LEVELS; l++)
        printf("%-5" PRIu32 "  0x%016" PRIx64 " %5" PRIu32 "  0x%016" PRIx64 " 0x%016" PRIx64
               "\n", l, w->levels[l].table_pa, w->levels[l].index, w->levels[l].entry_pa,
               w->levels[l].entry);
    if (st != VMI_OK)
        return; /* why it stopped is the error line on stderr */
    printf("pa 0x%016" PRIx64 "  page %s  flags", w->pa, cli_human(w->page_size, h, sizeof h));
    for (i = 0; i < CLI_NFLAGS; i++)
        if (w->flags & cli_page_flags[i].bit)
            printf(" %s", cli_page_flags[i].name);
    printf("%s\n", w->flags ? "" : " -");
}

static void cli_walk_json(cli *c, uint64_t va, const vmi_walk *w, vmi_status st)
{
    cli_json *j = &c->json;
    uint32_t l;
    size_t i;
    cli_json_open(j, NULL, '{');
    cli_json_str(j, "target", c->pos[1]);
    cli_json_str(j, "mode", vmi_paging_mode_name(vmi_get_paging(c->vmi)->mode));
    cli_json_hex(j, "va", va);
    cli_json_hex(j, "dtb", cli_dtb(c));
    cli_json_open(j, "levels", '[');
    for (l = 0; l < w->nlevels && l < VMI_WALK_MAX_LEVELS; l++) {
        cli_json_open(j, NULL, '{');
        cli_json_num(j, "level", l);
        cli_json_hex(j, "table", w->levels[l].table_pa);
        cli_json_num(j, "index", w->levels[l].index);
        cli_json_hex(j, "entry_pa", w->levels[l].entry_pa);
        cli_json_hex(j, "entry", w->levels[l].entry);
        cli_json_close(j, '}');
    }
    cli_json_close(j, ']');
    if (st == VMI_OK) {
        cli_json_hex(j, "pa", w->pa);
        cli_json_num(j, "page_size", w->page_size);
        cli_json_open(j, "flags", '[');
        for (i = 0; i < CLI_NFLAGS; i++)
            if (w->flags & cli_page_flags[i].bit)
                cli_json_str(j, NULL, cli_page_flags[i].name);
        cli_json_close(j, ']');
    } else {
        cli_json_str(j, "pa", NULL);
        cli_json_str(j, "page_size", NULL);
        cli_json_str(j, "flags", NULL);
    }
    cli_json_error(j, st, st == VMI_OK ? NULL : vmi_last_error(c->vmi));
    cli_json_close(j, '}');
}

static int cli_cmd_translate(cli *c)
{
    uint64_t va;
    vmi_walk w;
    vmi_status st;
    int rc = cli_number("VA", c->pos[2], &va);
    if (rc != CLI_OK || (rc = cli_open_space(c)) != CLI_OK)
        return rc;
    st = vmi_translate_walk(c->vmi, cli_dtb(c), va, &w);
    if (cli_has(c, CLI_OPT_JSON))
        cli_walk_json(c, va, &w, st);
    else
        cli_walk_text(&w, vmi_get_paging(c->vmi)->mode, st);
    if (st != VMI_OK)
        return cli_error(CLI_FAIL, vmi_last_error(c->vmi), "translate 0x%" PRIx64, va);
    return CLI_OK;
}

/* ---- Linux views ------------------------------------------------------------------ */

/* A growing array of fixed-size items. Walks are collected whole, so one
   that fails half-way prints its error and nothing else. */
typedef struct cli_vec {
    void *items;
    size_t n, cap, size;
    int oom;
} cli_vec;

static int cli_vec_push(cli_vec *v, const void *item)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        void *p = realloc(v->items, cap * v->size);
        if (!p)
            return v->oom = 1;
        v->items = p;
        v->cap = cap;
    }
    memcpy((char *)v->items + v->n++ * v->size, item, v->size);
    return 0;
}

static int cli_collect_process(void *user, const vmi_process *p)
{
    return cli_vec_push((cli_vec *)user, p);
}

static int cli_collect_module(void *user, const vmi_module *m)
{
    return cli_vec_push((cli_vec *)user, m);
}

/* The text of a record is only valid during the callback: keep a copy. */
static int cli_collect_log(void *user, const vmi_log_record *r)
{
    cli_vec *v = (cli_vec *)user;
    vmi_log_record copy = *r;
    char *text = (char *)malloc(r->len + 1);
    if (!text)
        return v->oom = 1;
    memcpy(text, r->text, r->len);
    text[r->len] = 0;
    copy.text = text;
    if (cli_vec_push(v, &copy))
        free(text);
    return v->oom;
}

/* --current: what each vCPU runs; the vCPUs that cannot say are skipped
   unless none can. */
static vmi_status cli_walk_current(cli *c, cli_vec *v)
{
    uint32_t n = 0, i;
    vmi_status st = vmi_vcpu_count(c->vmi, &n), last = VMI_ERR_NOT_FOUND;
    for (i = 0; st == VMI_OK && i < n && v->n < CLI_COUNT(c->cur_vcpu) && !v->oom; i++) {
        vmi_process p;
        if ((last = vmi_current_process(c->vmi, i, &p)) != VMI_OK)
            continue;
        c->cur_vcpu[v->n] = i;
        cli_collect_process(v, &p);
    }
    return st != VMI_OK ? st : v->n ? VMI_OK : last;
}

static vmi_status cli_walk_processes(cli *c, cli_vec *v)
{
    if (cli_has(c, CLI_OPT_CURRENT))
        return cli_walk_current(c, v);
    return vmi_foreach_process(c->vmi, cli_has(c, CLI_OPT_THREADS), cli_collect_process, v);
}

static vmi_status cli_walk_modules(cli *c, cli_vec *v)
{
    return vmi_foreach_module(c->vmi, cli_collect_module, v);
}

static vmi_status cli_walk_log(cli *c, cli_vec *v)
{
    return vmi_foreach_log_record(c->vmi, cli_collect_log, v);
}

/* Opens TARGET and collects one of the walks above into v. */
static int cli_walk(cli *c, vmi_status (*walk)(cli *, cli_vec *), cli_vec *v, const char *what)
{
    vmi_status st;
    int rc = cli_open(c);
    if (rc != CLI_OK)
        return rc;
    st = walk(c, v);
    if (v->oom)
        return cli_error(CLI_FAIL, "out of memory", "%s", what);
    if (st != VMI_OK && v->n)
        return cli_error(CLI_FAIL, vmi_last_error(c->vmi), "%s (stopped after %zu)", what, v->n);
    if (st != VMI_OK)
        return cli_error(CLI_FAIL, vmi_last_error(c->vmi), "%s", what);
    return CLI_OK;
}

/* ps: the command line, as /proc/PID/cmdline (NUL-separated), read from the
   process's memory into buf (CLI_CMDLINE_MAX + 1 bytes) and NUL-terminated;
   its length, or -1 when it cannot be read. A longer one is cut. */
#define CLI_CMDLINE_MAX 32768

static long cli_cmdline(cli *c, const vmi_process *p, char *buf)
{
    size_t len = 0;
    vmi_status st = vmi_process_cmdline(c->vmi, p, buf, CLI_CMDLINE_MAX, &len);
    if (st != VMI_OK && st != VMI_ERR_LIMIT)
        return -1;
    buf[len] = 0;
    return (long)len;
}

static void cli_json_cmdline(cli_json *j, const char *buf, long len)
{
    long i;
    if (len < 0) {
        cli_json_str(j, "cmdline", NULL);
        return;
    }
    cli_json_open(j, "cmdline", '[');
    for (i = 0; i < len; i += (long)strlen(buf + i) + 1)
        cli_json_str(j, NULL, buf + i);
    cli_json_close(j, ']');
}

/* Windows: the image's full path, "" when it cannot be read. */
static void cli_image_path(cli *c, const vmi_process *p, char *buf, size_t cap)
{
    vmi_status st = vmi_process_image_path(c->vmi, p, buf, cap, NULL);
    if (st != VMI_OK && st != VMI_ERR_LIMIT)
        buf[0] = 0;
}

static void cli_ps_json(cli *c, const vmi_process *p, const char *cmd, long len, long vcpu)
{
    cli_json *j = &c->json;
    char state[2] = {p->state, 0};
    cli_json_open(j, NULL, '{');
    if (vcpu >= 0)
        cli_json_num(j, "vcpu", (uint64_t)vcpu);
    cli_json_num(j, "pid", (uint64_t)p->pid);
    cli_json_num(j, "ppid", (uint64_t)p->ppid);
    cli_json_num(j, "tgid", (uint64_t)p->tgid);
    cli_json_str(j, "name", p->name);
    cli_json_str(j, "state", state);
    cli_json_num(j, "uid", p->uid);
    cli_json_num(j, "euid", p->euid);
    cli_json_num(j, "threads", p->threads);
    cli_json_num(j, "start_time_ns", p->start_time_ns);
    cli_json_hex(j, "dtb", p->dtb);
    cli_json_hex(j, "task", p->task);
    cli_json_key(j, "kernel_thread");
    fputs(p->kernel_thread ? "true" : "false", j->out);
    cli_json_cmdline(j, cmd, len);
    if (vmi_os_get_info(c->vmi)->os == VMI_OS_WINDOWS) {
        char path[520];
        cli_image_path(c, p, path, sizeof path);
        cli_json_hex(j, "peb", p->peb);
        cli_json_num(j, "create_time", p->create_time);
        cli_json_str(j, "path", path);
    }
    cli_json_close(j, '}');
}

/* Text lines are cut at the terminal's width (COLUMNS when set, else 80
   columns when stdout is no terminal), as ps does. */
static size_t cli_columns(void)
{
    const char *env = getenv("COLUMNS");
    if (env && *env >= '1' && *env <= '9' && strlen(env) < 6)
        return (size_t)atoi(env);
#if defined(__unix__) && defined(TIOCGWINSZ)
    struct winsize ws;
    if (ioctl(1, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
#endif
    return 80;
}

static void cli_ps_text(const vmi_process *p, const char *cmd, long len, size_t width)
{
    char line[1024];
    size_t n;
    long i;
    n = (size_t)snprintf(line, sizeof line,
                         "%6" PRId64 " %6" PRId64 " %6" PRId64 " %5" PRIu32 " %c %7" PRIu32
                         " %6" PRIu64 ".%02" PRIu64 " %-16s ",
                         p->pid, p->ppid, p->tgid, p->uid, p->state ? p->state : '?', p->threads,
                         p->start_time_ns / 1000000000u, p->start_time_ns / 10000000u % 100, p->name);
    if (p->kernel_thread || len <= 0) {
        snprintf(line + n, sizeof line - n, p->kernel_thread ? "[%s]" : "?", p->name);
    } else {
        for (i = 0; i < len && n + 1 < sizeof line; i++) /* NULs become spaces */
            line[n++] = cmd[i] ? cmd[i] : ' ';
        while (n && line[n - 1] == ' ' && !cmd[len - 1])
            n--; /* the closing NUL */
        line[n] = 0;
    }
    if (width < sizeof line)
        line[width] = 0;
    cli_put_safe(stdout, line);
    putchar('\n');
}

/* A FILETIME (100 ns since 1601) as UTC "YYYY-MM-DD HH:MM:SS"; the date
   from the day count by the proleptic Gregorian calendar (no gmtime: the
   year may be anything a hostile guest writes). */
static void cli_filetime(uint64_t ft, char *out, size_t cap)
{
    uint64_t secs = ft / 10000000u, days = secs / 86400u, era, doe, yoe, doy, mp;
    uint64_t z = days + 584694u; /* days from 0000-03-01 to 1601-01-01 */
    era = z / 146097u;
    doe = z - era * 146097u;
    yoe = (doe - doe / 1460u + doe / 36524u - doe / 146096u) / 365u;
    doy = doe - (365u * yoe + yoe / 4u - yoe / 100u);
    mp = (5u * doy + 2u) / 153u;
    snprintf(out, cap, "%04" PRIu64 "-%02" PRIu64 "-%02" PRIu64 " %02" PRIu64 ":%02" PRIu64 ":%02" PRIu64,
             yoe + era * 400u + (mp >= 10u), mp < 10u ? mp + 3u : mp - 9u, doy - (153u * mp + 2u) / 5u + 1u,
             secs / 3600u % 24u, secs / 60u % 60u, secs % 60u);
}

/* Windows: PID PPID NAME DTB EPROCESS CREATE (UTC) PATH; a thread (pid
   is not tgid) shows its ETHREAD, and "thread of TGID" for the path. */
static void cli_ps_windows_text(cli *c, const vmi_process *p, size_t width)
{
    char line[1024], path[520], created[72];
    if (p->pid != p->tgid)
        snprintf(path, sizeof path, "thread of %" PRId64, p->tgid);
    else
        cli_image_path(c, p, path, sizeof path);
    if (p->create_time)
        cli_filetime(p->create_time, created, sizeof created);
    else
        snprintf(created, sizeof created, "%19s", "-");
    snprintf(line, sizeof line, "%6" PRId64 " %6" PRId64 " %-15s 0x%012" PRIx64 " 0x%016" PRIx64 " %s %s",
             p->pid, p->ppid, p->name, p->dtb, p->task, created, path);
    if (width < sizeof line)
        line[width] = 0;
    cli_put_safe(stdout, line);
    putchar('\n');
}

static int cli_cmd_ps(cli *c)
{
    cli_vec v = {NULL, 0, 0, sizeof(vmi_process), 0};
    const vmi_process *p;
    size_t i, width = cli_columns();
    char *buf = NULL;
    int rc = cli_walk(c, cli_walk_processes, &v, "process list");
    if (rc == CLI_OK && !(buf = (char *)malloc(CLI_CMDLINE_MAX + 1)))
        rc = cli_error(CLI_FAIL, "out of memory", "ps");
    int windows = rc == CLI_OK && vmi_os_get_info(c->vmi)->os == VMI_OS_WINDOWS;
    if (rc == CLI_OK && cli_has(c, CLI_OPT_JSON))
        cli_json_open(&c->json, NULL, '[');
    else if (windows)
        printf("%-.*s\n", (int)width,
               "   PID   PPID NAME            DTB            EPROCESS           CREATED (UTC)       PATH");
    else if (rc == CLI_OK)
        printf("%-.*s\n", (int)width, "   PID   PPID   TGID   UID S THREADS      START NAME             CMDLINE");
    for (i = 0, p = (const vmi_process *)v.items; rc == CLI_OK && i < v.n; i++) {
        long len = windows && !cli_has(c, CLI_OPT_JSON) ? 0 : cli_cmdline(c, &p[i], buf);
        if (cli_has(c, CLI_OPT_CURRENT) && !cli_has(c, CLI_OPT_JSON))
            printf("vCPU %" PRIu32 ": ", c->cur_vcpu[i]);
        if (cli_has(c, CLI_OPT_JSON))
            cli_ps_json(c, &p[i], buf, len, cli_has(c, CLI_OPT_CURRENT) ? (long)c->cur_vcpu[i] : -1);
        else if (windows)
            cli_ps_windows_text(c, &p[i], width);
        else
            cli_ps_text(&p[i], buf, len, width);
    }
    if (rc == CLI_OK && cli_has(c, CLI_OPT_JSON))
        cli_json_close(&c->json, ']');
    free(buf);
    free(v.items);
    return rc;
}

/* modules and dlls: one table of images. */
static int cli_print_modules(cli *c, const cli_vec *v, int rc)
{
    const vmi_module *m;
    size_t i;
    int windows = rc == CLI_OK && vmi_os_get_info(c->vmi)->os == VMI_OS_WINDOWS;
    if (rc == CLI_OK && cli_has(c, CLI_OPT_JSON))
        cli_json_open(&c->json, NULL, '[');
    else if (rc == CLI_OK)
        printf("%-24s %-18s %10s %s\n", "NAME", "BASE", "SIZE", windows ? "LDR ENTRY          PATH" : "STRUCT MODULE");
    for (i = 0, m = (const vmi_module *)v->items; rc == CLI_OK && i < v->n; i++) {
        if (cli_has(c, CLI_OPT_JSON)) {
            cli_json_open(&c->json, NULL, '{');
            cli_json_str(&c->json, "name", m[i].name);
            cli_json_hex(&c->json, "base", m[i].base);
            cli_json_num(&c->json, "size", m[i].size);
            cli_json_hex(&c->json, "addr", m[i].addr);
            if (windows)
                cli_json_str(&c->json, "path", m[i].path);
            cli_json_close(&c->json, '}');
        } else {
            cli_put_safe(stdout, m[i].name);
            printf("%*s 0x%016" PRIx64 " %10" PRIu64 " 0x%016" PRIx64 "%s",
                   (int)(strlen(m[i].name) < 24 ? 24 - strlen(m[i].name) : 0), "", m[i].base,
                   m[i].size, m[i].addr, windows ? " " : "\n");
            if (windows) {
                cli_put_safe(stdout, m[i].path);
                putchar('\n');
            }
        }
    }
    if (rc == CLI_OK && cli_has(c, CLI_OPT_JSON))
        cli_json_close(&c->json, ']');
    free(v->items);
    return rc;
}

static int cli_cmd_modules(cli *c)
{
    cli_vec v = {NULL, 0, 0, sizeof(vmi_module), 0};
    return cli_print_modules(c, &v, cli_walk(c, cli_walk_modules, &v, "module list"));
}

/* dlls --pid N: the process's loaded images (Windows: its PEB loader list). */
static vmi_status cli_walk_dlls(cli *c, cli_vec *v)
{
    vmi_process p;
    vmi_status st = vmi_process_by_pid(c->vmi, (int64_t)c->pid, &p);
    return st == VMI_OK ? vmi_foreach_dll(c->vmi, &p, cli_collect_module, v) : st;
}

static int cli_cmd_dlls(cli *c)
{
    cli_vec v = {NULL, 0, 0, sizeof(vmi_module), 0};
    if (!cli_has(c, CLI_OPT_PID))
        return cli_usage("dlls needs --pid");
    return cli_print_modules(c, &v, cli_walk(c, cli_walk_dlls, &v, "DLL list"));
}

/* One record as dmesg prints it: every line of its text with the time. */
static void cli_log_text(const vmi_log_record *r)
{
    const char *s = r->text;
    unsigned long sec = (unsigned long)(r->ts_nsec / 1000000000u);
    unsigned long usec = (unsigned long)(r->ts_nsec % 1000000000u / 1000u);
    do {
        size_t n = strcspn(s, "\n");
        printf("[%5lu.%06lu] ", sec, usec);
        for (; n; n--, s++)
            if ((unsigned char)*s < 0x20 && *s != '\t')
                printf("\\x%02x", (unsigned char)*s);
            else
                putchar(*s);
        putchar('\n');
    } while (*s++);
}

static int cli_cmd_dmesg(cli *c)
{
    cli_vec v = {NULL, 0, 0, sizeof(vmi_log_record), 0};
    const vmi_log_record *r;
    size_t i;
    int rc = cli_walk(c, cli_walk_log, &v, "kernel log");
    if (rc == CLI_OK && cli_has(c, CLI_OPT_JSON))
        cli_json_open(&c->json, NULL, '[');
    for (i = 0, r = (const vmi_log_record *)v.items; rc == CLI_OK && i < v.n; i++) {
        if (cli_has(c, CLI_OPT_JSON)) {
            cli_json_open(&c->json, NULL, '{');
            cli_json_num(&c->json, "seq", r[i].seq);
            cli_json_num(&c->json, "ts_nsec", r[i].ts_nsec);
            cli_json_num(&c->json, "level", r[i].level);
            cli_json_num(&c->json, "facility", r[i].facility);
            cli_json_str(&c->json, "text", r[i].text);
            cli_json_close(&c->json, '}');
        } else {
            cli_log_text(&r[i]);
        }
    }
    if (rc == CLI_OK && cli_has(c, CLI_OPT_JSON))
        cli_json_close(&c->json, ']');
    for (i = 0, r = (const vmi_log_record *)v.items; i < v.n; i++)
        free((void *)r[i].text);
    free(v.items);
    return rc;
}

/* sym NAME: its address; sym 0xADDR: the symbol at or below it, +offset.
   JSON: {name, address (the symbol's), offset (of ADDR from it)}. */
static int cli_cmd_sym(cli *c)
{
    const char *arg = c->pos[2];
    int by_addr = arg[0] == '0' && (arg[1] == 'x' || arg[1] == 'X');
    uint64_t addr = 0, off = 0;
    char name[256];
    vmi_status st;
    int rc = by_addr ? cli_number("ADDR", arg, &addr) : CLI_OK;
    if (rc != CLI_OK || (rc = cli_open(c)) != CLI_OK)
        return rc;
    snprintf(name, sizeof name, "%s", arg);
    st = by_addr ? vmi_ksym_lookup(c->vmi, addr, name, sizeof name, &off)
                 : vmi_ksym(c->vmi, arg, &addr);
    if (st != VMI_OK)
        return cli_error(CLI_FAIL, vmi_last_error(c->vmi), "sym %s", arg);
    if (cli_has(c, CLI_OPT_JSON)) {
        cli_json_open(&c->json, NULL, '{');
        cli_json_str(&c->json, "name", name);
        cli_json_hex(&c->json, "address", addr - off);
        cli_json_num(&c->json, "offset", off);
        cli_json_close(&c->json, '}');
    } else if (by_addr) {
        cli_put_safe(stdout, name);
        printf("+0x%" PRIx64 "\n", off);
    } else {
        printf("0x%" PRIx64 "\n", addr);
    }
    return CLI_OK;
}

/* syms: one symbol, as a /proc/kallsyms line or a JSON object. */
static int cli_sym_out(void *user, const char *name, uint64_t va, char type)
{
    cli *c = (cli *)user;
    char t[2] = {type, 0};
    if (cli_has(c, CLI_OPT_JSON)) {
        cli_json_open(&c->json, NULL, '{');
        cli_json_str(&c->json, "name", name);
        cli_json_hex(&c->json, "address", va);
        cli_json_str(&c->json, "type", t);
        cli_json_close(&c->json, '}');
    } else {
        printf("%0*" PRIx64 " %c ", (int)(2 * vmi_addr_width(c->vmi)), va, type ? type : '?');
        cli_put_safe(stdout, name);
        putchar('\n');
    }
    return 0;
}

static int cli_cmd_syms(cli *c)
{
    vmi_status st;
    int rc = cli_open(c);
    if (rc != CLI_OK)
        return rc;
    if (cli_has(c, CLI_OPT_JSON))
        cli_json_open(&c->json, NULL, '[');
    st = vmi_foreach_ksym(c->vmi, cli_sym_out, c);
    if (cli_has(c, CLI_OPT_JSON))
        cli_json_close(&c->json, ']');
    if (st != VMI_OK)
        return cli_error(CLI_FAIL, vmi_last_error(c->vmi), "symbols");
    return CLI_OK;
}

/* offset TYPE.MEMBER: where the member is (vmi_member); offset TYPE: its
   size. The member may be a path through embedded structs. */
static int cli_cmd_offset(cli *c)
{
    const char *arg = c->pos[2], *dot = strchr(arg, '.'), *member = dot ? dot + 1 : NULL;
    size_t tlen = dot ? (size_t)(dot - arg) : strlen(arg);
    uint64_t bit = 0, size = 0;
    uint32_t bits = 0;
    char type[256];
    vmi_status st;
    int rc;
    if (tlen == 0 || tlen >= sizeof type || (member && !*member))
        return cli_error(CLI_USAGE, NULL, "\"%s\" is not TYPE or TYPE.MEMBER", arg);
    memcpy(type, arg, tlen);
    type[tlen] = 0;
    if ((rc = cli_open(c)) != CLI_OK)
        return rc;
    st = member ? vmi_member(c->vmi, type, member, &bit, &bits, &size)
                : vmi_type_size(c->vmi, type, &size);
    if (st != VMI_OK)
        return cli_error(CLI_FAIL, vmi_last_error(c->vmi), "offset %s", arg);
    if (cli_has(c, CLI_OPT_JSON)) {
        cli_json_open(&c->json, NULL, '{');
        cli_json_str(&c->json, "type", type);
        cli_json_str(&c->json, "member", member);
        if (member) {
            cli_json_num(&c->json, "offset", bit / 8);
            cli_json_num(&c->json, "bit_offset", bit);
            cli_json_num(&c->json, "bit_size", bits);
        } else {
            cli_json_str(&c->json, "offset", NULL);
            cli_json_str(&c->json, "bit_offset", NULL);
            cli_json_str(&c->json, "bit_size", NULL);
        }
        cli_json_num(&c->json, "size", size);
        cli_json_close(&c->json, '}');
    } else if (member) {
        printf("%s: offset 0x%" PRIx64 " (%" PRIu64 "), size %" PRIu64, arg, bit / 8, bit / 8, size);
        if (bits)
            printf(", bits %" PRIu32 " at bit %" PRIu64, bits, bit);
        putchar('\n');
    } else {
        printf("%s: size %" PRIu64 "\n", arg, size);
    }
    return CLI_OK;
}

/* isf: vmi_write_isf into -o FILE; a file left half-written is removed. */
typedef struct cli_file_out {
    FILE *f;
    uint64_t bytes;
} cli_file_out;

static int cli_file_write(void *user, const char *s, size_t n)
{
    cli_file_out *o = (cli_file_out *)user;
    o->bytes += n;
    return fwrite(s, 1, n, o->f) != n;
}

static int cli_cmd_isf(cli *c)
{
    const char *path = c->value[CLI_OPT_OUTPUT];
    cli_file_out o = {NULL, 0};
    vmi_status st;
    int rc, bad;
    if (!cli_has(c, CLI_OPT_OUTPUT))
        return cli_usage("isf writes a file: add -o FILE");
    if ((rc = cli_open(c)) != CLI_OK)
        return rc;
    if (!(o.f = fopen(path, "wb")))
        return cli_error(CLI_FAIL, strerror(errno), "%s", path);
    st = vmi_write_isf(c->vmi, cli_file_write, &o);
    bad = ferror(o.f);
    if (fclose(o.f) != 0 || bad || st != VMI_OK) {
        remove(path);
        return cli_error(CLI_FAIL, st != VMI_OK ? vmi_last_error(c->vmi) : strerror(errno),
                         "writing %s", path);
    }
    if (cli_has(c, CLI_OPT_JSON)) {
        cli_json_open(&c->json, NULL, '{');
        cli_json_str(&c->json, "target", c->pos[1]);
        cli_json_str(&c->json, "file", path);
        cli_json_num(&c->json, "bytes", o.bytes);
        cli_json_close(&c->json, '}');
    } else {
        printf("wrote %s (%" PRIu64 " bytes)\n", path, o.bytes);
    }
    return CLI_OK;
}

/* ---- main ------------------------------------------------------------------------ */

/* ---- trace, watch: events on a live guest ---------------------------------------- */

typedef struct cli_events {
    cli *c;
    uint64_t want, seen;
} cli_events;

/* One line (or JSON object) per hit: vCPU, pc and its symbol, the process
   on that vCPU, the first argument registers. */
static int cli_event_hit(vmi_instance *vmi, vmi_event *ev, const vmi_event_hit *hit, void *user)
{
    cli_events *t = (cli_events *)user;
    const vmi_regs *r = &hit->regs;
    int x86 = r->arch == VMI_ARCH_X86_64 || r->arch == VMI_ARCH_X86;
    uint64_t pc = x86 ? r->x86.rip : r->arm64.pc, off = 0;
    uint64_t a0 = x86 ? r->x86.rdi : r->arm64.x[0], a1 = x86 ? r->x86.rsi : r->arm64.x[1];
    char sym[128] = "?";
    vmi_process p;
    int have_p = vmi_current_process(vmi, hit->vcpu, &p) == VMI_OK;
    (void)ev;
    vmi_ksym_lookup(vmi, pc, sym, sizeof sym, &off);
    t->seen++;
    if (cli_has(t->c, CLI_OPT_JSON)) {
        cli_json *j = &t->c->json;
        cli_json_open(j, NULL, '{');
        cli_json_num(j, "hit", t->seen);
        cli_json_num(j, "vcpu", hit->vcpu);
        cli_json_hex(j, "pc", pc);
        cli_json_str(j, "symbol", sym);
        cli_json_num(j, "symbol_offset", off);
        cli_json_hex(j, "addr", hit->addr);
        cli_json_hex(j, "arg0", a0);
        cli_json_hex(j, "arg1", a1);
        if (have_p) cli_json_num(j, "pid", (uint64_t)p.pid); else cli_json_str(j, "pid", NULL);
        cli_json_str(j, "name", have_p ? p.name : NULL);
        cli_json_close(j, '}');
    } else {
        printf("hit %-4" PRIu64 " vcpu %u  pc 0x%" PRIx64 " %s+0x%" PRIx64 "  addr 0x%" PRIx64
               "  arg0 0x%" PRIx64 " arg1 0x%" PRIx64 "  pid %lld %s\n", t->seen, hit->vcpu, pc, sym, off,
               hit->addr, a0, a1, have_p ? (long long)p.pid : -1LL, have_p ? p.name : "?");
        fflush(stdout);
    }
    return t->seen >= t->want ? VMI_EVENT_REMOVE : VMI_EVENT_KEEP;
}

/* Arms ev, listens until --count hits (default 10) or --seconds (default
   10) pass, and clears it. */
static int cli_events_run(cli *c, vmi_event *ev, const char *what)
{
    cli_events t;
    uint64_t seconds = 10;
    time_t end;
    vmi_status st = VMI_OK;
    int rc = CLI_OK;
    t.c = c, t.seen = 0, t.want = 10;
    if (cli_has(c, CLI_OPT_HITS) && (rc = cli_number("--count", c->value[CLI_OPT_HITS], &t.want)) != CLI_OK)
        return rc;
    if (cli_has(c, CLI_OPT_SECONDS) && (rc = cli_number("--seconds", c->value[CLI_OPT_SECONDS], &seconds)) != CLI_OK)
        return rc;
    ev->fn = cli_event_hit;
    ev->user = &t;
    if (vmi_event_register(c->vmi, ev) != VMI_OK)
        return cli_error(CLI_FAIL, vmi_last_error(c->vmi), "%s", what);
    if (cli_has(c, CLI_OPT_JSON)) cli_json_open(&c->json, NULL, '[');
    end = time(NULL) + (time_t)seconds;
    while (t.seen < t.want && time(NULL) < end) {
        st = vmi_events_listen(c->vmi, 250);
        if (st != VMI_OK && st != VMI_ERR_TIMEOUT) break;
        st = VMI_OK;
    }
    if (cli_has(c, CLI_OPT_JSON)) cli_json_close(&c->json, ']');
    if (st != VMI_OK) rc = cli_error(CLI_FAIL, vmi_last_error(c->vmi), "%s (after %" PRIu64 " hits)", what, t.seen);
    else if (t.seen < t.want)
        rc = cli_error(CLI_FAIL, NULL, "%s: %" PRIu64 " of %" PRIu64 " hits in %" PRIu64 " s", what, t.seen, t.want,
                       seconds);
    if (t.seen < t.want) vmi_event_clear(c->vmi, ev); /* the callback cleared it otherwise */
    return rc;
}

/* trace TARGET --break SYMBOL|0xADDR: a breakpoint, each hit printed. */
static int cli_cmd_trace(cli *c)
{
    vmi_event ev;
    const char *at = c->value[CLI_OPT_BREAK];
    int rc;
    if (!cli_has(c, CLI_OPT_BREAK)) return cli_error(CLI_USAGE, NULL, "trace needs --break SYMBOL|ADDR");
    if ((rc = cli_open(c)) != CLI_OK) return rc;
    memset(&ev, 0, sizeof ev);
    ev.type = VMI_EVENT_BREAKPOINT;
    if (at[0] == '0' && (at[1] == 'x' || at[1] == 'X')) {
        if ((rc = cli_number("--break", at, &ev.addr)) != CLI_OK) return rc;
    } else if (vmi_ksym(c->vmi, at, &ev.addr) != VMI_OK) {
        return cli_error(CLI_FAIL, vmi_last_error(c->vmi), "--break %s", at);
    }
    return cli_events_run(c, &ev, "trace");
}

/* watch TARGET ADDR LEN [--write] [--read]: a watchpoint (writes by default). */
static int cli_cmd_watch(cli *c)
{
    vmi_event ev;
    uint64_t len;
    int rc;
    memset(&ev, 0, sizeof ev);
    ev.type = VMI_EVENT_WATCH;
    if ((rc = cli_number("ADDR", c->pos[2], &ev.addr)) != CLI_OK || (rc = cli_number("LEN", c->pos[3], &len)) != CLI_OK)
        return rc;
    ev.len = len;
    ev.access = (cli_has(c, CLI_OPT_READ) ? VMI_WATCH_READ : 0u) |
                (cli_has(c, CLI_OPT_WRITE) || !cli_has(c, CLI_OPT_READ) ? VMI_WATCH_WRITE : 0u);
    if ((rc = cli_open(c)) != CLI_OK) return rc;
    return cli_events_run(c, &ev, "watch");
}

/* ---- dump: memory into a new image ---------------------------------------------- */

/* Every range of the memory map, read with vmi_read_pa CLI_DUMP_CHUNK bytes at
   a time, into OUT.tmp, renamed to OUT once all is written: a failed dump
   leaves no OUT. The ELF core carries the vCPU registers as QEMU writes them
   (NT_PRSTATUS, then QEMUCPUState on x86), the layouts vmi_file.h reads. */
#define CLI_DUMP_CHUNK (4u << 20)
#define CLI_DUMP_RAW_MAX (64ull << 30)
#define CLI_EM_NONE 0u
#define CLI_EM_386 3u
#define CLI_EM_ARM 40u
#define CLI_EM_X86_64 62u
#define CLI_EM_AARCH64 183u
#define CLI_PRS64_REG 112u /* struct elf_prstatus: pr_reg, 64-bit targets */
#define CLI_PRS32_REG 72u  /* 32-bit targets */
#define CLI_QEMU_SIZE 0x1B8u /* QEMUCPUState v1, kernel_gs_base included */

enum { CLI_DUMP_RAW, CLI_DUMP_LIME, CLI_DUMP_ELF };
static const char *const cli_dump_formats[] = {"raw", "lime", "elf"};

static volatile sig_atomic_t cli_dump_stop;

static void cli_dump_signal(int sig)
{
    cli_dump_stop = sig;
}

typedef struct cli_dump {
    cli *c;
    FILE *f;
    const char *tmp;
    uint8_t *buf;
    uint64_t total, done, written; /* bytes to read, read, in the file */
    uint64_t t0, shown;            /* ms */
    int progress;                  /* stderr is a terminal */
} cli_dump;

static uint64_t cli_now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
}

static void cli_put16(uint8_t *p, uint64_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void cli_put32(uint8_t *p, uint64_t v) { cli_put16(p, v); cli_put16(p + 2, v >> 16); }
static void cli_put64(uint8_t *p, uint64_t v) { cli_put32(p, v); cli_put32(p + 4, v >> 32); }

/* At most ~10 updates a second; `final` clears the line. */
static void cli_dump_progress(cli_dump *d, int final)
{
    uint64_t now;
    double secs;
    if (!d->progress)
        return;
    if (final) {
        fputs("\r\033[K", stderr);
        return;
    }
    now = cli_now_ms();
    if (d->shown && now - d->shown < 100)
        return;
    d->shown = now;
    secs = (double)(now - d->t0) / 1000.0;
    fprintf(stderr, "\r\033[Kdump %3u%%  %" PRIu64 " of %" PRIu64 " MiB  %.1f MiB/s",
            (unsigned)(d->total ? d->done * 100 / d->total : 100), d->done >> 20, d->total >> 20,
            secs > 0 ? (double)d->done / 1048576.0 / secs : 0.0);
}

static int cli_dump_put(cli_dump *d, const void *p, size_t n)
{
    if (cli_dump_stop)
        return cli_error(CLI_FAIL, "interrupted", "dump");
    if (fwrite(p, 1, n, d->f) != n)
        return cli_error(CLI_FAIL, strerror(errno), "writing %s", d->tmp);
    d->written += n;
    return CLI_OK;
}

static int cli_dump_zeros(cli_dump *d, uint64_t n)
{
    int rc = CLI_OK;
    memset(d->buf, 0, CLI_DUMP_CHUNK);
    while (n && rc == CLI_OK) {
        size_t k = n < CLI_DUMP_CHUNK ? (size_t)n : CLI_DUMP_CHUNK;
        rc = cli_dump_put(d, d->buf, k);
        n -= k;
        d->done += k;
        cli_dump_progress(d, 0);
    }
    return rc;
}

static int cli_dump_range(cli_dump *d, const vmi_mem_range *r)
{
    uint64_t off = 0;
    int rc = CLI_OK;
    while (off < r->size && rc == CLI_OK) {
        size_t k = r->size - off < CLI_DUMP_CHUNK ? (size_t)(r->size - off) : CLI_DUMP_CHUNK,
               got = 0;
        if (vmi_read_pa(d->c->vmi, r->pa + off, d->buf, k, &got) != VMI_OK || got != k)
            return cli_error(CLI_FAIL, vmi_last_error(d->c->vmi),
                             "reading 0x%" PRIx64 " (range 0x%" PRIx64 "-0x%" PRIx64 ")",
                             r->pa + off + got, r->pa, r->pa + r->size - 1);
        rc = cli_dump_put(d, d->buf, k);
        off += k;
        d->done += k;
        cli_dump_progress(d, 0);
    }
    return rc;
}

/* One ELF note: name padded to 4, desc padded to 4. Returns its size; writes
   it when p is set. */
static size_t cli_note(uint8_t *p, const char *name, uint32_t type, const void *desc,
                       size_t descsz)
{
    size_t namesz = strlen(name) + 1, npad = (namesz + 3) & ~(size_t)3;
    size_t dpad = (descsz + 3) & ~(size_t)3;
    if (p) {
        memset(p, 0, 12 + npad + dpad);
        cli_put32(p, namesz);
        cli_put32(p + 4, descsz);
        cli_put32(p + 8, type);
        memcpy(p + 12, name, namesz);
        if (descsz)
            memcpy(p + 12 + npad, desc, descsz);
    }
    return 12 + npad + dpad;
}

/* struct elf_prstatus of vCPU `i`, as QEMU's arch_dump.c fills it. */
static size_t cli_prstatus(uint8_t *p, unsigned machine, const vmi_regs *g, uint32_t i)
{
    const vmi_regs_x86 *x = &g->x86;
    size_t n;
    unsigned k;
    memset(p, 0, 400);
    switch (machine) {
    case CLI_EM_X86_64: {
        const uint64_t r[27] = {x->r15, x->r14, x->r13, x->r12, x->rbp, x->rbx, x->r11,
                                x->r10, x->r9,  x->r8,  x->rax, x->rcx, x->rdx, x->rsi,
                                x->rdi, x->rax, x->rip, x->cs,  x->rflags, x->rsp, x->ss,
                                x->fs_base, x->gs_base, x->ds, x->es, x->fs, x->gs};
        for (k = 0; k < 27; k++)
            cli_put64(p + CLI_PRS64_REG + k * 8, r[k]);
        n = 336;
        break;
    }
    case CLI_EM_386: {
        const uint64_t r[17] = {x->rbx, x->rcx, x->rdx, x->rsi, x->rdi, x->rbp,
                                x->rax, x->ds,  x->es,  x->fs,  x->gs,  x->rax,
                                x->rip, x->cs,  x->rflags, x->rsp, x->ss};
        for (k = 0; k < 17; k++)
            cli_put32(p + CLI_PRS32_REG + k * 4, r[k]);
        n = 144;
        break;
    }
    case CLI_EM_AARCH64:
        for (k = 0; k < 31; k++)
            cli_put64(p + CLI_PRS64_REG + k * 8, g->arm64.x[k]);
        cli_put64(p + CLI_PRS64_REG + 31 * 8, g->arm64.sp);
        cli_put64(p + CLI_PRS64_REG + 32 * 8, g->arm64.pc);
        cli_put64(p + CLI_PRS64_REG + 33 * 8, g->arm64.pstate);
        n = 392;
        break;
    default: /* CLI_EM_ARM */
        for (k = 0; k < 16; k++)
            cli_put32(p + CLI_PRS32_REG + k * 4, g->arm.r[k]);
        cli_put32(p + CLI_PRS32_REG + 16 * 4, g->arm.cpsr);
        n = 148;
        break;
    }
    /* pr_pid: QEMU numbers the CPUs from 1 */
    cli_put32(p + (machine == CLI_EM_X86_64 || machine == CLI_EM_AARCH64 ? 32 : 24), i + 1);
    return n;
}

/* QEMUCPUState v1 (QEMU target/i386/arch_dump.c). */
static void cli_qemu_state(uint8_t *p, const vmi_regs_x86 *x)
{
    const uint64_t gpr[18] = {x->rax, x->rbx, x->rcx, x->rdx, x->rsi, x->rdi,
                              x->rsp, x->rbp, x->r8,  x->r9,  x->r10, x->r11,
                              x->r12, x->r13, x->r14, x->r15, x->rip, x->rflags};
    const uint64_t sel[6] = {x->cs, x->ds, x->es, x->fs, x->gs, x->ss};
    uint8_t *seg = p + 0x98, *cr = p + 0x188;
    unsigned k;
    memset(p, 0, CLI_QEMU_SIZE);
    cli_put32(p, 1);
    cli_put32(p + 4, CLI_QEMU_SIZE);
    for (k = 0; k < 18; k++)
        cli_put64(p + 8 + k * 8, gpr[k]);
    /* cs ds es fs gs ss ldt tr gdt idt: u32 selector, limit, flags, pad; u64 base */
    for (k = 0; k < 6; k++)
        cli_put32(seg + k * 24, sel[k]);
    cli_put64(seg + 3 * 24 + 16, x->fs_base);
    cli_put64(seg + 4 * 24 + 16, x->gs_base);
    cli_put32(seg + 8 * 24 + 4, x->gdtr_limit);
    cli_put64(seg + 8 * 24 + 16, x->gdtr_base);
    cli_put32(seg + 9 * 24 + 4, x->idtr_limit);
    cli_put64(seg + 9 * 24 + 16, x->idtr_base);
    cli_put64(cr + 0 * 8, x->cr0);
    cli_put64(cr + 2 * 8, x->cr2);
    cli_put64(cr + 3 * 8, x->cr3);
    cli_put64(cr + 4 * 8, x->cr4);
    cli_put64(p + 0x1B0, x->kernel_gs_base);
}

static unsigned cli_elf_machine(vmi_arch arch)
{
    switch (arch) {
    case VMI_ARCH_X86_64: return CLI_EM_X86_64;
    case VMI_ARCH_X86: return CLI_EM_386;
    case VMI_ARCH_AARCH64: return CLI_EM_AARCH64;
    case VMI_ARCH_ARM: return CLI_EM_ARM;
    default: return CLI_EM_NONE;
    }
}

/* The PT_NOTE contents: the vCPUs' registers and the target's VMCOREINFO.
   On success *notes is malloc'd (or NULL when there are none). */
static int cli_dump_notes(cli *c, unsigned *machine, uint8_t **notes, size_t *len)
{
    const vmi_backend *be = vmi_get_backend(c->vmi);
    vmi_arch arch = be->arch;
    vmi_regs *regs = NULL;
    uint32_t n = 0, i;
    const void *info = NULL;
    size_t infolen = 0, size = 0, pos = 0;
    uint8_t prs[400], *qemu = NULL, *out;
    int control = 1;
    *notes = NULL;
    *len = 0;
    if (vmi_vcpu_count(c->vmi, &n) != VMI_OK)
        n = 0;
    if (n && !(regs = (vmi_regs *)calloc(n, sizeof *regs)))
        return cli_error(CLI_FAIL, strerror(ENOMEM), "registers of %u vCPUs", (unsigned)n);
    for (i = 0; i < n; i++) {
        if (vmi_get_regs(c->vmi, i, &regs[i]) != VMI_OK) {
            free(regs);
            return cli_error(CLI_FAIL, vmi_last_error(c->vmi), "vCPU %u registers (a raw or "
                             "LiME dump takes none)", (unsigned)i);
        }
        control &= (regs[i].valid & VMI_REGS_CONTROL) != 0;
    }
    if (arch == VMI_ARCH_UNKNOWN && n)
        arch = regs[0].arch;
    *machine = cli_elf_machine(arch);
    /* As QEMU: EM_X86_64 only when vCPU 0 is in long mode, or not paging. */
    if (*machine == CLI_EM_X86_64 && n && (regs[0].valid & VMI_REGS_CONTROL) &&
        (regs[0].x86.cr0 & 0x80000000u) && !(regs[0].x86.efer & (1u << 10)))
        *machine = CLI_EM_386;
    if (*machine == CLI_EM_NONE)
        n = 0; /* no layout to write registers in */
    if (*machine != CLI_EM_X86_64 && *machine != CLI_EM_386)
        control = 0;
    if (vmi_get_note(c->vmi, "VMCOREINFO", &info, &infolen) != VMI_OK)
        info = NULL;
    for (i = 0; i < n; i++)
        size += cli_note(NULL, "CORE", 1, NULL, cli_prstatus(prs, *machine, &regs[i], i)) +
                (control ? cli_note(NULL, "QEMU", 0, NULL, CLI_QEMU_SIZE) : 0);
    if (info)
        size += cli_note(NULL, "VMCOREINFO", 0, NULL, infolen);
    if (!size) {
        free(regs);
        return CLI_OK;
    }
    out = (uint8_t *)malloc(size);
    qemu = (uint8_t *)malloc(CLI_QEMU_SIZE);
    if (!out || !qemu) {
        free(out);
        free(qemu);
        free(regs);
        return cli_error(CLI_FAIL, strerror(ENOMEM), "ELF notes");
    }
    for (i = 0; i < n; i++) /* all NT_PRSTATUS first, then all QEMU notes: QEMU's order */
        pos += cli_note(out + pos, "CORE", 1, prs, cli_prstatus(prs, *machine, &regs[i], i));
    for (i = 0; control && i < n; i++) {
        cli_qemu_state(qemu, &regs[i].x86);
        pos += cli_note(out + pos, "QEMU", 0, qemu, CLI_QEMU_SIZE);
    }
    if (info)
        pos += cli_note(out + pos, "VMCOREINFO", 0, info, infolen);
    free(qemu);
    free(regs);
    *notes = out;
    *len = pos;
    return CLI_OK;
}

/* ELF header, program headers (PT_NOTE, then a PT_LOAD per range), notes,
   padding to the first page boundary. */
static int cli_dump_elf_head(cli_dump *d, const vmi_mem_range *map, size_t n, unsigned machine,
                             const uint8_t *notes, size_t nlen)
{
    uint64_t phnum = n + 1, head = 64 + 56 * phnum, data, off;
    uint8_t *h;
    size_t i;
    int rc;
    if (phnum >= 0xffff)
        return cli_error(CLI_FAIL, NULL, "%zu ranges: too many for an ELF core (use --format "
                         "lime)", n);
    data = (head + nlen + 4095) & ~(uint64_t)4095;
    if (!(h = (uint8_t *)calloc(1, (size_t)data)))
        return cli_error(CLI_FAIL, strerror(ENOMEM), "ELF headers");
    memcpy(h, "\177ELF", 4);
    h[4] = 2; /* ELFCLASS64 */
    h[5] = 1; /* little-endian */
    h[6] = 1; /* EV_CURRENT */
    cli_put16(h + 16, 4); /* ET_CORE */
    cli_put16(h + 18, machine);
    cli_put32(h + 20, 1);
    cli_put64(h + 32, 64); /* e_phoff */
    cli_put16(h + 52, 64); /* e_ehsize */
    cli_put16(h + 54, 56); /* e_phentsize */
    cli_put16(h + 56, phnum);
    cli_put32(h + 64, 4);  /* PT_NOTE */
    cli_put64(h + 64 + 8, head);
    cli_put64(h + 64 + 32, nlen);
    cli_put64(h + 64 + 40, nlen);
    cli_put64(h + 64 + 48, 4);
    if (nlen)
        memcpy(h + head, notes, nlen);
    for (i = 0, off = data; i < n; off += map[i].size, i++) {
        uint8_t *ph = h + 64 + 56 * (i + 1);
        cli_put32(ph, 1);      /* PT_LOAD */
        cli_put32(ph + 4, 7);  /* RWX */
        cli_put64(ph + 8, off);
        cli_put64(ph + 16, map[i].pa);
        cli_put64(ph + 24, map[i].pa);
        cli_put64(ph + 32, map[i].size);
        cli_put64(ph + 40, map[i].size);
    }
    rc = cli_dump_put(d, h, (size_t)data);
    free(h);
    return rc;
}

/* The whole image after the ELF head (if any): ranges, their LiME headers or
   the zeros between them. */
static int cli_dump_body(cli_dump *d, int format, const vmi_mem_range *map, size_t n)
{
    size_t i;
    int rc = CLI_OK;
    for (i = 0; i < n && rc == CLI_OK; i++) {
        if (format == CLI_DUMP_RAW && i)
            rc = cli_dump_zeros(d, map[i].pa - (map[i - 1].pa + map[i - 1].size));
        if (format == CLI_DUMP_LIME) {
            uint8_t lh[32];
            memset(lh, 0, sizeof lh);
            cli_put32(lh, 0x4C694D45u);
            cli_put32(lh + 4, 1);
            cli_put64(lh + 8, map[i].pa);
            cli_put64(lh + 16, map[i].pa + map[i].size - 1); /* inclusive */
            rc = cli_dump_put(d, lh, sizeof lh);
        }
        if (rc == CLI_OK)
            rc = cli_dump_range(d, &map[i]);
    }
    return rc;
}

static int cli_dump_write(cli_dump *d, int format, const vmi_mem_range *map, size_t n)
{
    unsigned machine = CLI_EM_NONE;
    uint8_t *notes = NULL;
    size_t nlen = 0;
    int rc = CLI_OK;
    if (format == CLI_DUMP_ELF && (rc = cli_dump_notes(d->c, &machine, &notes, &nlen)) == CLI_OK)
        rc = cli_dump_elf_head(d, map, n, machine, notes, nlen);
    free(notes);
    if (rc == CLI_OK)
        rc = cli_dump_body(d, format, map, n);
    return rc;
}

static int cli_cmd_dump(cli *c)
{
    const char *out = c->pos[2], *fmt = cli_has(c, CLI_OPT_FORMAT) ? c->value[CLI_OPT_FORMAT] : "elf";
    const vmi_mem_range *all, *map;
    vmi_desc desc;
    vmi_status st;
    cli_dump d;
    char err[512], *tmp;
    size_t n, i;
    int format, live, rc;
    void (*old_int)(int), (*old_term)(int);
    double secs;
    for (format = 0; format < 3; format++)
        if (strcmp(fmt, cli_dump_formats[format]) == 0)
            break;
    if (format == 3)
        return cli_error(CLI_USAGE, NULL, "--format \"%s\" is not raw, lime or elf", fmt);
    /* --format names what to write: TARGET's own format is detected. */
    c->value[CLI_OPT_FORMAT] = NULL;
    memset(&desc, 0, sizeof desc);
    if (cli_open_backend(c, c->pos[1], &desc.backend, err, sizeof err) != VMI_OK)
        return cli_error(CLI_FAIL, err, "open");
    if ((st = vmi_open(&desc, &c->vmi)) != VMI_OK)
        return cli_error(CLI_FAIL, vmi_status_string(st), "open %s", c->pos[1]);
    all = vmi_memory_map(c->vmi, &n);
    for (i = 0, map = all; n && !all[i].size; i++, n--, map++)
        ; /* no empty ranges ahead */
    if (!n)
        return cli_error(CLI_FAIL, NULL, "%s: no memory to dump", c->pos[1]);
    memset(&d, 0, sizeof d);
    d.c = c;
    for (i = 0; i < n; i++)
        d.total += map[i].size;
    if (format == CLI_DUMP_RAW) {
        uint64_t span = map[n - 1].pa + map[n - 1].size - map[0].pa;
        if (span > CLI_DUMP_RAW_MAX)
            return cli_error(CLI_FAIL, NULL, "a raw dump of 0x%" PRIx64 "-0x%" PRIx64 " would "
                             "be %" PRIu64 " GiB with its holes, more than 64: use --format "
                             "lime or elf", map[0].pa, map[n - 1].pa + map[n - 1].size - 1,
                             span >> 30);
        d.total = span;
    }
    if (!(tmp = (char *)malloc(strlen(out) + 5)) || !(d.buf = (uint8_t *)malloc(CLI_DUMP_CHUNK))) {
        free(tmp);
        return cli_error(CLI_FAIL, strerror(ENOMEM), "dump");
    }
    sprintf(tmp, "%s.tmp", out);
    d.tmp = tmp;
    if (!(d.f = fopen(tmp, "wb"))) {
        rc = cli_error(CLI_FAIL, strerror(errno), "%s", tmp);
        free(d.buf);
        free(tmp);
        return rc;
    }
#if defined(__unix__)
    d.progress = isatty(2);
#endif
    /* Ctrl-C must not leave OUT.tmp behind, nor a live guest paused. */
    cli_dump_stop = 0;
    old_int = signal(SIGINT, cli_dump_signal);
    old_term = signal(SIGTERM, cli_dump_signal);
    live = (vmi_get_backend(c->vmi)->flags & VMI_BACKEND_LIVE) != 0;
    rc = CLI_OK;
    if (live && vmi_pause(c->vmi) != VMI_OK) {
        rc = cli_error(CLI_FAIL, vmi_last_error(c->vmi), "pausing %s", c->pos[1]);
        live = 0;
    }
    d.t0 = cli_now_ms();
    if (rc == CLI_OK)
        rc = cli_dump_write(&d, format, map, n);
    secs = (double)(cli_now_ms() - d.t0) / 1000.0;
    if (live && vmi_resume(c->vmi) != VMI_OK && rc == CLI_OK)
        rc = cli_error(CLI_FAIL, vmi_last_error(c->vmi), "resuming %s", c->pos[1]);
    cli_dump_progress(&d, 1);
    if (fclose(d.f) != 0 && rc == CLI_OK)
        rc = cli_error(CLI_FAIL, strerror(errno), "writing %s", tmp);
    if (rc == CLI_OK && rename(tmp, out) != 0)
        rc = cli_error(CLI_FAIL, strerror(errno), "renaming %s to %s", tmp, out);
    if (rc != CLI_OK)
        remove(tmp);
    signal(SIGINT, old_int == SIG_ERR ? SIG_DFL : old_int);
    signal(SIGTERM, old_term == SIG_ERR ? SIG_DFL : old_term);
    free(d.buf);
    free(tmp);
    if (rc != CLI_OK)
        return rc;
    if (cli_has(c, CLI_OPT_JSON)) {
        cli_json_open(&c->json, NULL, '{');
        cli_json_str(&c->json, "target", c->pos[1]);
        cli_json_str(&c->json, "out", out);
        cli_json_str(&c->json, "format", cli_dump_formats[format]);
        cli_json_num(&c->json, "bytes", d.written);
        cli_json_num(&c->json, "ranges", n);
        if (format == CLI_DUMP_RAW)
            cli_json_hex(&c->json, "base", map[0].pa);
        cli_json_key(&c->json, "seconds");
        printf("%.3f", secs);
        cli_json_close(&c->json, '}');
    } else {
        printf("wrote %s: %s, %" PRIu64 " bytes, %zu range%s, %.2f s (%.1f MiB/s)\n", out,
               cli_dump_formats[format], d.written, n, n == 1 ? "" : "s", secs,
               secs > 0 ? (double)d.done / 1048576.0 / secs : 0.0);
        if (format == CLI_DUMP_RAW && map[0].pa)
            printf("read it with --base 0x%" PRIx64 "\n", map[0].pa);
    }
    return CLI_OK;
}

#define CLI_EVENT_OPTS (CLI_BIT(CLI_OPT_HITS) | CLI_BIT(CLI_OPT_SECONDS))

static const cli_cmd cli_cmds[] = {
    {"info", 1, "TARGET", CLI_COMMON, CLI_OS_OPTIONAL, cli_cmd_info},
    {"read", 3, "TARGET ADDR LEN", CLI_COMMON | CLI_SPACE | CLI_BIT(CLI_OPT_RAW), CLI_OS_NO,
     cli_cmd_read},
    {"translate", 2, "TARGET VA", CLI_COMMON | CLI_BIT(CLI_OPT_PID), CLI_OS_NO, cli_cmd_translate},
    {"write", 3, "TARGET ADDR HEXBYTES", CLI_COMMON | CLI_SPACE, CLI_OS_NO, cli_cmd_write},
    {"ps", 1, "TARGET", CLI_COMMON | CLI_BIT(CLI_OPT_THREADS) | CLI_BIT(CLI_OPT_CURRENT), CLI_OS_NEEDED, cli_cmd_ps},
    {"modules", 1, "TARGET", CLI_COMMON, CLI_OS_NEEDED, cli_cmd_modules},
    {"dlls", 1, "TARGET --pid N", CLI_COMMON | CLI_BIT(CLI_OPT_PID), CLI_OS_NEEDED, cli_cmd_dlls},
    {"sym", 2, "TARGET NAME|ADDR", CLI_COMMON, CLI_OS_NEEDED, cli_cmd_sym},
    {"syms", 1, "TARGET", CLI_COMMON, CLI_OS_NEEDED, cli_cmd_syms},
    {"dmesg", 1, "TARGET", CLI_COMMON, CLI_OS_NEEDED, cli_cmd_dmesg},
    {"offset", 2, "TARGET TYPE[.MEMBER]", CLI_COMMON, CLI_OS_NEEDED, cli_cmd_offset},
    {"isf", 1, "TARGET", CLI_COMMON | CLI_BIT(CLI_OPT_OUTPUT), CLI_OS_NEEDED, cli_cmd_isf},
    {"trace", 1, "TARGET", CLI_COMMON | CLI_EVENT_OPTS | CLI_BIT(CLI_OPT_BREAK), CLI_OS_NEEDED, cli_cmd_trace},
    {"watch", 3, "TARGET ADDR LEN", CLI_COMMON | CLI_EVENT_OPTS | CLI_BIT(CLI_OPT_READ), CLI_OS_NEEDED,
     cli_cmd_watch},
    {"dump", 2, "TARGET OUT",
     CLI_BIT(CLI_OPT_JSON) | CLI_BIT(CLI_OPT_FORMAT) | CLI_BIT(CLI_OPT_BASE) |
         CLI_BIT(CLI_OPT_HELP) | CLI_BIT(CLI_OPT_VERSION),
     CLI_OS_NO, cli_cmd_dump}};

static int cli_select_command(cli *c)
{
    size_t i;
    unsigned stray;
    int id;
    for (i = 0; i < CLI_COUNT(cli_cmds); i++)
        if (strcmp(c->pos[0], cli_cmds[i].name) == 0)
            c->cmd = &cli_cmds[i];
    if (!c->cmd)
        return cli_usage("unknown command \"%s\"", c->pos[0]);
    if (c->npos - 1 != c->cmd->nargs)
        return cli_usage("%s takes %s", c->cmd->name, c->cmd->args);
    stray = c->seen & ~c->cmd->allowed;
    for (id = 0; id < CLI_OPT_COUNT; id++)
        if (stray & CLI_BIT(id))
            return cli_usage("%s does not apply to %s", cli_optdefs[id].name, c->cmd->name);
    return CLI_OK;
}

int main(int argc, char **argv)
{
    cli c;
    int rc;
    memset(&c, 0, sizeof c);
    c.json.out = stdout;
    if ((rc = cli_parse_args(&c, argc, argv)) != CLI_OK)
        return rc;
    if (cli_has(&c, CLI_OPT_HELP) || (c.npos && strcmp(c.pos[0], "help") == 0)) {
        fputs(cli_usage_text, stdout);
        fputs(cli_options_text, stdout);
        return CLI_OK;
    }
    if (cli_has(&c, CLI_OPT_VERSION)) {
        puts(VMI_VERSION_STRING);
        return CLI_OK;
    }
    if (c.npos == 0)
        return cli_usage("no command");
    if ((rc = cli_select_command(&c)) == CLI_OK && (rc = cli_resolve_options(&c)) == CLI_OK)
        rc = c.cmd->run(&c);
    vmi_close(c.vmi);
    /* A full disk or a closed pipe must not pass for success. */
    if (fflush(stdout) != 0 || ferror(stdout))
        rc = cli_error(CLI_FAIL, strerror(errno), "writing the output");
    return rc;
}
