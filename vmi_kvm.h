/* vmi_kvm.h - the live QEMU backend of vmi.h (KVM or TCG).           v0.1.0
   MIT licensed (see the end of vmi.h).

   Attaches to a running, unpatched QEMU through its QMP socket and its
   gdbstub, and fills a vmi_backend for vmi_open. Nothing runs inside the
   guest and QEMU needs no patch.

   Memory, two paths; backend.format says which one is in use:
       "qemu-shm"    guest RAM is a memory-backend-file with share=on, e.g.
                       -object memory-backend-file,id=ram0,size=256M,
                               mem-path=/dev/shm/NAME,share=on
                       -machine q35,memory-backend=ram0
                     The file is mapped into this process once; every range
                     gets a host pointer, so physical reads are a memcpy
                     (zero copy, no page cache).
       "qemu-readv"  any other RAM (plain -m 256M, private backends):
                     process_vm_readv/process_vm_writev on the QEMU process
                     (needs ptrace rights on it: same user, or root). Its pid
                     comes from SO_PEERCRED on the QMP socket. The host
                     address of each RAM block is found among QEMU's
                     mappings of the block's size and CHECKED: bytes read
                     there must equal what the gdbstub reads at the same
                     guest-physical addresses (Qqemu.PhyMemMode) at 32
                     places, some of them non-zero. Ranges carry no host
                     pointer; reads go through read_pa behind the core's
                     page cache.
   The guest-physical map is QEMU's own: the RAM, ROM and ROMD lines of
   `info mtree -f` in the address space "memory" whose region is a memory
   backend (every RAM block is one since QEMU 5.0: -m makes "pc.ram",
   "mach-virt.ram", ...). q35's RAM above the PCI hole appears at 4 GiB
   and up, arm virt's RAM at 0x40000000, each piece with its offset into
   the block. ROM pieces (PAM-shadowed BIOS areas) are never writable.

   Registers come from the gdbstub, by the names of QEMU's target
   description XML (qXfer:features:read), never by fixed numbers:
       x86_64  (qemu-system-x86_64) rax..r15, rip, eflags: VMI_REGS_GPR;
               cs ss ds es fs gs selectors, fs_base, gs_base, k_gs_base:
               VMI_REGS_SEGMENT (gdtr/idtr are not offered by the gdbstub:
               left 0); cr0 cr2 cr3 cr4 cr8 efer: VMI_REGS_CONTROL.
       i386    (qemu-system-i386) eax..edi, eip, eflags, selectors, the
               same bases and control registers where the XML has them.
       aarch64 x0-x30, sp, pc, cpsr (-> pstate): VMI_REGS_GPR; from QEMU's
               system-registers feature SP_EL0, SP_EL1, ELR_EL1, VBAR_EL1
               and TTBR0_EL1, TTBR1_EL1, TCR_EL1, SCTLR_EL1 (QEMU 7.2 spells
               the last "SCTLR" and VBAR_EL1 "VBAR"; both names work) ->
               VMI_REGS_CONTROL (set when TTBR1_EL1 and TCR_EL1 exist).
       arm     r0-r12, sp, lr, pc, cpsr: VMI_REGS_GPR; TTBR0, TTBR1, TTBCR,
               SCTLR, DACR from the cp-regs feature: VMI_REGS_CONTROL.
   set_regs writes (with gdb `P`) the registers of the groups set in
   regs->valid whose value differs from the current one; QEMU refuses
   writes to ARM system registers (VMI_ERR_BACKEND names the register).
   vCPUs are the gdbstub's threads (qfThreadInfo), in QEMU's CPU order.

   Run state. Connecting to QEMU's gdbstub stops the guest and any byte
   sent to the gdbstub while the guest runs stops it too, so this backend
   only talks to the gdbstub while the guest is stopped: a register access
   on a running guest does QMP stop, the gdb requests (pipelined: one round
   trip), QMP cont, so it never leaves the guest paused. pause/resume are
   QMP stop/cont, confirmed with query-status. After attach the guest is
   in the run state it had before (query-status is asked first). The
   gdbstub's stop notifications are drained: a trap (T05) while events are
   armed is kept for event_wait, the others (T02 after a QMP stop) dropped.

   Events (vmi_event_register, vmi_events_listen) through the gdbstub:
   breakpoints Z0 (software) and Z1 (hardware: TCG has any number, KVM at
   most 4), watchpoints Z2/Z3/Z4 (write/read/access; x86 reports them after
   the access), single-steps vCont;s:THREAD with Qqemu.sstep=0x7 (no
   interrupts or timers during a step; only that vCPU runs). A hit stops
   every vCPU and QEMU sends "T05thread:NN;" ("...;watch:ADDR;" for
   watchpoints), parsed into the vCPU index and address; the event is the
   armed one at that address (the pc for breakpoints), or the single-step
   sent to that vCPU. While the guest runs, event_wait only reads the gdb
   socket (poll, bounded by its timeout): commands that run the guest (c,
   vCont;s) are sent alone and last, after every reply was read and
   acknowledged. One owner of the run state: after a hit the vCPUs stay
   stopped until the core calls resume(), which steps over a breakpoint at
   the pc (z, one vCont;s, Z: KVM's software breakpoints are int3 in guest
   memory) and sends c, or one vCont;s when a single-step is armed. A hit
   that arrives outside a listen holds the guest until the next listen
   (pause/resume do not lose it); setting or clearing an event on a running
   guest is QMP stop, Z/z, continue. Clearing the last event lets a guest
   held only by events run. close() removes every armed event (QEMU keeps a
   departed debugger's breakpoints) and lets a guest held by events run
   unless it was paused. QEMU exiting ends a listen at once with
   VMI_ERR_BACKEND (the socket closes). Not offered: register-write events
   (CR3, ...), which QEMU's gdbstub cannot report.

   gdbstub: desc.gdb is its unix socket; with NULL, QEMU's own gdbstub is
   used when query-chardev shows one on a unix socket; otherwise one is
   started (HMP `gdbserver unix:PATH,server=on,wait=off`) on a private
   socket in a 0700 directory made here, stopped (`gdbserver none`) and
   removed on close. A gdbstub on TCP is refused: unix sockets only. The
   gdbstub serves one debugger at a time: with another one attached the
   open fails after the timeout.

   Failure: every socket operation is bounded by desc.timeout_ms (poll,
   never a blocking call); SIGPIPE is never raised (MSG_NOSIGNAL). When
   QEMU exits or a socket closes, the call in progress and every later
   call that needs QEMU fails with VMI_ERR_BACKEND ("QEMU closed the QMP
   socket", ...); close() still frees everything. The shared mapping stays
   readable after QEMU is gone (the file outlives it): reads through
   "qemu-shm" ranges then return the last contents, reads on "qemu-readv"
   fail. Sockets must be unix sockets owned by this user (or any, for
   root) and the peer (QEMU) must run as this user (or root runs us).
   Replies are untrusted: QMP lines are capped (VMI_KVM_MAX_REPLY), gdb
   packets are bounded by their buffer, every length is checked.

   Do this:
       #define VMI_IMPLEMENTATION
       #include "vmi.h"
       #include "vmi_kvm.h"
   The implementation uses vmi.h's (its JSON reader and clock), so
   VMI_KVM_IMPLEMENTATION alone is not enough: it comes with
   VMI_IMPLEMENTATION, in that file, after vmi.h. Linux only.

   Use:
       vmi_kvm_desc kdesc;
       vmi_desc desc;
       memset(&kdesc, 0, sizeof kdesc);
       memset(&desc, 0, sizeof desc);
       kdesc.qmp = "/run/guest/qmp.sock";
       if (vmi_kvm_open(&kdesc, &desc.backend, err, sizeof err) != VMI_OK) ...
       if (vmi_open(&desc, &vmi) != VMI_OK) ...   paging from vCPU 0's registers

   Configuration macros (define before the implementation):
       VMI_KVM_MAX_REPLY   cap on one QMP reply line (default 16 MiB)

   Thread safety: as for vmi.h, one instance (and so its backend) per thread
   at a time; distinct backends share nothing.
*/

#ifndef VMI_KVM_H_INCLUDED
#define VMI_KVM_H_INCLUDED

#ifndef VMI_H_INCLUDED
#error "include vmi.h before vmi_kvm.h"
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Options for vmi_kvm_open. Zero-initialize; zero means the default. */
typedef struct vmi_kvm_desc {
    const char *qmp;         /* path of QEMU's QMP unix socket (required) */
    const char *gdb;         /* gdbstub unix socket; NULL: QEMU's own, or start one */
    int writable;            /* map guest RAM read-write */
    int force_readv;         /* process_vm_readv even with a shared backend (tests) */
    uint32_t timeout_ms;     /* per request; default 5000 */
    vmi_allocator allocator; /* zero: malloc/free */
} vmi_kvm_desc;

/* Attaches and fills *out for vmi_open (which then owns it: its close()
   detaches). On failure *out is untouched, nothing is leaked, the guest is
   left in the run state it had, and err (may be NULL) gets one line. */
VMI_API vmi_status vmi_kvm_open(const vmi_kvm_desc *desc, vmi_backend *out, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* VMI_KVM_H_INCLUDED */

/* ======================================================================== */
#if defined(VMI_KVM_IMPLEMENTATION) || defined(VMI_IMPLEMENTATION)
#ifndef VMI_KVM_IMPL_INCLUDED
#define VMI_KVM_IMPL_INCLUDED

#ifndef VMI_IMPL_INCLUDED
#error "vmi_kvm.h's implementation needs vmi.h's: define VMI_IMPLEMENTATION and include vmi.h first"
#endif

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef SO_PEERCRED /* strict -std=c99: glibc leaves out the kernel's list */
#include <asm/socket.h>
#endif

#ifndef VMI_KVM_MAX_REPLY
#define VMI_KVM_MAX_REPLY (16u << 20)
#endif

/* glibc declares these only with _GNU_SOURCE, which a strict -std=c99
   build has not; the prototypes are the kernel's. */
#if !defined(__USE_GNU) && !defined(__cplusplus)
extern ssize_t process_vm_readv(pid_t pid, const struct iovec *lvec, unsigned long liovcnt,
                                const struct iovec *rvec, unsigned long riovcnt, unsigned long flags);
extern ssize_t process_vm_writev(pid_t pid, const struct iovec *lvec, unsigned long liovcnt,
                                 const struct iovec *rvec, unsigned long riovcnt, unsigned long flags);
#endif

#define VMI__KVM_ERR 512
#define VMI__KVM_PKT 65536u        /* largest gdb packet accepted (QEMU's is 4096) */
#define VMI__KVM_MAX_VCPUS 4096u
#define VMI__KVM_MAX_REGS 96u
#define VMI__KVM_MAX_BLOCKS 64u
#define VMI__KVM_MAX_RANGES 1024u
#define VMI__KVM_XML_MAX (1u << 20)
#define VMI__KVM_PROBES 32u

/* struct ucred, which glibc also hides behind _GNU_SOURCE. */
typedef struct vmi__kvm_ucred {
    int32_t pid;
    uint32_t uid, gid;
} vmi__kvm_ucred;

/* A register QEMU's XML offers that maps to a vmi_regs field. */
typedef struct vmi__kvm_reg {
    uint32_t num;   /* gdb register number */
    uint32_t bytes; /* size on the wire */
    uint32_t off;   /* offset of the field in vmi_regs */
    uint8_t width;  /* size of that field: 4 or 8 */
    uint8_t group;  /* VMI_REGS_* */
    char name[64];
} vmi__kvm_reg;

/* One RAM block (a memory backend). */
typedef struct vmi__kvm_block {
    char id[64];
    char mem_path[256];
    uint64_t size;
    int shared;       /* memory-backend-file with share=on */
    uint8_t *map;     /* its mapping here (qemu-shm) */
    uint64_t hva;     /* its address in QEMU (qemu-readv) */
} vmi__kvm_block;

typedef struct vmi__kvm {
    vmi_allocator alloc;
    uint32_t timeout_ms;
    int qmp_fd, gdb_fd;
    int dead;              /* QEMU went away: every call fails */
    int reset;             /* the guest rebooted (QMP RESET): what the instance knows is stale */
    int readv, writable;
    int32_t pid;
    vmi_arch arch;
    char err[VMI__KVM_ERR];
    /* QMP: received bytes, and the current reply line */
    char *qin, *line;
    size_t qin_len, qin_cap, line_cap;
    uint32_t qmp_id;
    /* gdb: received bytes, and the current packet (decoded) */
    char *gin, *pkt;
    size_t gin_len, pkt_len;
    /* memory */
    vmi__kvm_block blocks[VMI__KVM_MAX_BLOCKS];
    uint32_t nblocks;
    vmi_mem_range *ranges;
    uint32_t *range_block; /* per range: its block */
    uint64_t *range_off;   /* per range: offset into the block */
    size_t nranges;
    /* registers and vCPUs */
    vmi__kvm_reg regs[VMI__KVM_MAX_REGS];
    uint32_t nregs;
    uint32_t *threads;
    uint32_t nthreads;
    /* a gdbstub we started */
    char gdb_dir[80], gdb_sock[108];
    int own_gdb;
    /* events: the armed list (through next__) and why the guest is stopped */
    vmi_event *events;
    char stop[256];     /* a trap stop reply kept for event_wait */
    int pending;        /* `stop` holds one: the guest waits in it */
    int delivered;      /* event_wait reported a hit: resume continues from it */
    int hit_bp;         /* ... a breakpoint, at hit_pc of hit_vcpu */
    uint32_t hit_vcpu;
    uint64_t hit_pc;
    int32_t stepping;   /* vCPU sent on a user single-step, or -1 */
    int paused;         /* stopped by pause() (or before attach) */
} vmi__kvm;

/* ---- errors, allocation --------------------------------------------------- */

static vmi_status vmi__kvm_fail(vmi__kvm *k, vmi_status st, const char *fmt, ...) VMI__PRINTF(3, 4);
static vmi_status vmi__kvm_fail(vmi__kvm *k, vmi_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(k->err, sizeof k->err, fmt, ap);
    va_end(ap);
    return st;
}

/* QEMU is gone: remembered, so later calls fail fast with the same story. */
static vmi_status vmi__kvm_gone(vmi__kvm *k, const char *what) {
    k->dead = 1;
    return vmi__kvm_fail(k, VMI_ERR_BACKEND, "QEMU (pid %d) closed the %s socket: it exited or detached us",
                         (int)k->pid, what);
}

static void *vmi__kvm_calloc(vmi__kvm *k, size_t count, size_t size) {
    void *p;
    if (size && count > ((size_t)-1) / size) return NULL;
    p = k->alloc.alloc(count && size ? count * size : 1, k->alloc.user);
    if (p) memset(p, 0, count * size);
    return p;
}

static void vmi__kvm_free(vmi__kvm *k, void *p) {
    if (p) k->alloc.free(p, k->alloc.user);
}

/* Grows *buf (holding `used` bytes) to at least `need` bytes, up to `max`. */
static int vmi__kvm_grow(vmi__kvm *k, char **buf, size_t *cap, size_t used, size_t need, size_t max) {
    size_t ncap = *cap ? *cap : 4096;
    char *nb;
    if (need <= *cap) return 1;
    if (need > max) return 0;
    while (ncap < need) ncap = ncap > max / 2 ? max : ncap * 2;
    nb = (char *)k->alloc.alloc(ncap, k->alloc.user);
    if (!nb) return 0;
    if (used) memcpy(nb, *buf, used);
    vmi__kvm_free(k, *buf);
    *buf = nb;
    *cap = ncap;
    return 1;
}

/* ---- sockets ------------------------------------------------------------- */

static int vmi__kvm_left(uint64_t deadline) {
    uint64_t now = vmi__now_ms();
    return now >= deadline ? 0 : (int)vmi__min64(deadline - now, 60000);
}

/* Connects to a unix socket owned by us (any owner when we are root) whose
   peer runs as us (or we are root). */
static vmi_status vmi__kvm_connect(vmi__kvm *k, const char *path, const char *what, int *out, int32_t *pid) {
    struct sockaddr_un sa;
    struct stat sb;
    vmi__kvm_ucred cred;
    socklen_t clen = (socklen_t)sizeof cred;
    uid_t me = geteuid();
    int fd, rc;
    if (strlen(path) >= sizeof sa.sun_path)
        return vmi__kvm_fail(k, VMI_ERR_ARG, "%s socket path too long: %s", what, path);
    if (stat(path, &sb) != 0)
        return vmi__kvm_fail(k, VMI_ERR_IO, "%s socket %s: %s", what, path, strerror(errno));
    if ((sb.st_mode & 0170000) != 0140000) /* S_ISSOCK, hidden by strict modes */
        return vmi__kvm_fail(k, VMI_ERR_ARG, "%s: %s is not a unix socket", what, path);
    if (me != 0 && sb.st_uid != me)
        return vmi__kvm_fail(k, VMI_ERR_ARG, "%s socket %s belongs to uid %u, not to us (uid %u)", what, path,
                             (unsigned)sb.st_uid, (unsigned)me);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) return vmi__kvm_fail(k, VMI_ERR_IO, "socket: %s", strerror(errno));
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    rc = connect(fd, (struct sockaddr *)&sa, (socklen_t)sizeof sa);
    if (rc != 0) {
        int e = errno;
        close(fd);
        return vmi__kvm_fail(k, VMI_ERR_IO, "%s socket %s: connect: %s%s", what, path, strerror(e),
                             e == EAGAIN ? " (its backlog is full: another client holds it?)" : "");
    }
    memset(&cred, 0, sizeof cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0 || clen < (socklen_t)sizeof cred) {
        close(fd);
        return vmi__kvm_fail(k, VMI_ERR_IO, "%s socket %s: no peer credentials", what, path);
    }
    if (me != 0 && cred.uid != me) {
        close(fd);
        return vmi__kvm_fail(k, VMI_ERR_ARG, "%s socket %s: QEMU runs as uid %u, not as us (uid %u)", what,
                             path, (unsigned)cred.uid, (unsigned)me);
    }
    if (pid) *pid = cred.pid;
    *out = fd;
    return VMI_OK;
}

static vmi_status vmi__kvm_send(vmi__kvm *k, int fd, const char *what, const char *data, size_t len) {
    uint64_t deadline = vmi__now_ms() + k->timeout_ms;
    size_t done = 0;
    if (k->dead) return vmi__kvm_fail(k, VMI_ERR_BACKEND, "QEMU (pid %d) is gone", (int)k->pid);
    while (done < len) {
        struct pollfd p;
        ssize_t n = send(fd, data + done, len - done, MSG_NOSIGNAL);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            if (errno == EPIPE || errno == ECONNRESET) return vmi__kvm_gone(k, what);
            return vmi__kvm_fail(k, VMI_ERR_BACKEND, "%s: send: %s", what, strerror(errno));
        }
        p.fd = fd;
        p.events = POLLOUT;
        p.revents = 0;
        if (poll(&p, 1, vmi__kvm_left(deadline)) == 0)
            return vmi__kvm_fail(k, VMI_ERR_TIMEOUT, "%s: QEMU took no data for %u ms", what, k->timeout_ms);
    }
    return VMI_OK;
}

/* Appends what arrives within the deadline to buf (at most cap - *len
   bytes): VMI_ERR_TIMEOUT when nothing came. */
static vmi_status vmi__kvm_recv(vmi__kvm *k, int fd, const char *what, char *buf, size_t *len, size_t cap,
                                uint64_t deadline) {
    for (;;) {
        struct pollfd p;
        ssize_t n;
        int rc;
        if (*len >= cap) return vmi__kvm_fail(k, VMI_ERR_LIMIT, "%s: reply too long", what);
        n = recv(fd, buf + *len, cap - *len, 0);
        if (n > 0) {
            *len += (size_t)n;
            return VMI_OK;
        }
        if (n == 0) return vmi__kvm_gone(k, what);
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            if (errno == ECONNRESET) return vmi__kvm_gone(k, what);
            return vmi__kvm_fail(k, VMI_ERR_BACKEND, "%s: recv: %s", what, strerror(errno));
        }
        p.fd = fd;
        p.events = POLLIN;
        p.revents = 0;
        rc = poll(&p, 1, vmi__kvm_left(deadline));
        if (rc == 0)
            return vmi__kvm_fail(k, VMI_ERR_TIMEOUT, "%s: no answer from QEMU within %u ms", what, k->timeout_ms);
        if (rc < 0 && errno != EINTR) return vmi__kvm_fail(k, VMI_ERR_BACKEND, "%s: poll: %s", what, strerror(errno));
    }
}

/* ---- QMP ------------------------------------------------------------------- */

/* The next line from QMP into k->line (NUL-terminated, without "\r\n"). */
static vmi_status vmi__kvm_qmp_line(vmi__kvm *k, uint64_t deadline, size_t *len) {
    for (;;) {
        char *nl = k->qin_len ? (char *)memchr(k->qin, '\n', k->qin_len) : NULL;
        vmi_status st;
        if (nl) {
            size_t n = (size_t)(nl - k->qin);
            if (!vmi__kvm_grow(k, &k->line, &k->line_cap, 0, n + 1, VMI_KVM_MAX_REPLY + 1))
                return vmi__kvm_fail(k, VMI_ERR_NOMEM, "QMP: no memory for a %zu-byte reply", n);
            memcpy(k->line, k->qin, n);
            if (n && k->line[n - 1] == '\r') n--;
            k->line[n] = '\0';
            memmove(k->qin, nl + 1, k->qin_len - (size_t)(nl - k->qin) - 1);
            k->qin_len -= (size_t)(nl - k->qin) + 1;
            *len = n;
            return VMI_OK;
        }
        if (k->qin_len == k->qin_cap &&
            !vmi__kvm_grow(k, &k->qin, &k->qin_cap, k->qin_len, k->qin_len + 1, VMI_KVM_MAX_REPLY))
            return vmi__kvm_fail(k, VMI_ERR_LIMIT, "QMP: a reply longer than %u bytes", (unsigned)VMI_KVM_MAX_REPLY);
        st = vmi__kvm_recv(k, k->qmp_fd, "QMP", k->qin, &k->qin_len, k->qin_cap, deadline);
        if (st != VMI_OK) return st;
    }
}

static void vmi__kvm_json_at(vmi__kvm *k, vmi__json *j, size_t len) {
    j->s = k->line;
    j->n = len;
    j->pos = 0;
    j->err = NULL;
    j->errlen = 0;
}

/* Positions j at the value of `key` in the object that starts at j->pos. */
static int vmi__kvm_jfind(vmi__json *j, const char *key) {
    vmi__json_str s;
    int first = 1;
    if (vmi__json_open(j) != VMI_OK) return 0;
    for (;;) {
        if (vmi__json_next(j, &first, &s) != VMI_OK || !s.p) return 0;
        if (vmi__json_is(&s, key)) return 1;
        if (vmi__json_skip(j, 0) != VMI_OK) return 0;
    }
}

/* A string value into buf (NUL-terminated); 0 when it is not a string or
   does not fit. */
static int vmi__kvm_jstr(vmi__json *j, char *buf, size_t cap) {
    vmi__json_str s;
    size_t n;
    if (vmi__json_string(j, &s) != VMI_OK || s.len >= cap) return 0;
    n = vmi__json_decode(&s, buf);
    buf[n] = '\0';
    return 1;
}

static int vmi__kvm_jbool(vmi__json *j, int *v) {
    int c = vmi__json_peek(j);
    *v = c == 't';
    return vmi__json_literal(j, c == 't' ? "true" : "false") == VMI_OK;
}

/* Steps into an array: 1 at an element, 0 at its end, -1 on bad input. */
static int vmi__kvm_jelem(vmi__json *j, int *first) {
    int c = vmi__json_peek(j);
    if (*first) {
        if (c != '[') return -1;
        j->pos++;
        *first = 0;
        if (vmi__json_peek(j) != ']') return 1;
        j->pos++;
        return 0;
    }
    j->pos++;
    if (c == ']') return 0;
    return c == ',' ? 1 : -1;
}

/* Appends s to out as a JSON string. */
static size_t vmi__kvm_jquote(char *out, size_t cap, const char *s) {
    size_t o = 0;
    if (cap < 3) return 0;
    out[o++] = '"';
    for (; *s && o + 8 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20) {
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o++] = '"';
    out[o] = '\0';
    return o;
}

/* Runs one command; on success j is positioned at its "return" value in
   k->line (valid until the next command). Events on the way are ignored. */
static vmi_status vmi__kvm_qmp(vmi__kvm *k, const char *cmd, const char *args, vmi__json *j) {
    char req[1024];
    uint64_t deadline;
    uint32_t id = ++k->qmp_id;
    int n = snprintf(req, sizeof req, "{\"execute\":\"%s\"%s%s,\"id\":%u}\n", cmd, args ? ",\"arguments\":" : "",
                     args ? args : "", (unsigned)id);
    vmi_status st;
    if (n < 0 || (size_t)n >= sizeof req) return vmi__kvm_fail(k, VMI_ERR_ARG, "QMP %s: request too long", cmd);
    if ((st = vmi__kvm_send(k, k->qmp_fd, "QMP", req, (size_t)n)) != VMI_OK) return st;
    deadline = vmi__now_ms() + k->timeout_ms;
    for (;;) {
        size_t len, ret_pos = 0;
        uint64_t got_id = 0;
        int first = 1, has_ret = 0, has_id = 0;
        char desc[200];
        vmi__json_str key;
        desc[0] = '\0';
        if ((st = vmi__kvm_qmp_line(k, deadline, &len)) != VMI_OK) return st;
        vmi__kvm_json_at(k, j, len);
        if (vmi__json_open(j) != VMI_OK) return vmi__kvm_fail(k, VMI_ERR_FORMAT, "QMP %s: a reply that is no object", cmd);
        for (;;) {
            if (vmi__json_next(j, &first, &key) != VMI_OK)
                return vmi__kvm_fail(k, VMI_ERR_FORMAT, "QMP %s: malformed reply", cmd);
            if (!key.p) break;
            if (vmi__json_is(&key, "return")) {
                has_ret = 1;
                ret_pos = j->pos;
            } else if (vmi__json_is(&key, "id") && vmi__json_peek(j) != '"') {
                if (vmi__json_u64(j, &got_id) != VMI_OK)
                    return vmi__kvm_fail(k, VMI_ERR_FORMAT, "QMP %s: bad id", cmd);
                has_id = 1;
                continue;
            } else if (vmi__json_is(&key, "error")) {
                size_t at = j->pos;
                if (vmi__kvm_jfind(j, "desc") && vmi__kvm_jstr(j, desc, sizeof desc)) {
                } else {
                    snprintf(desc, sizeof desc, "(no description)");
                }
                j->pos = at;
            }
            if (vmi__json_skip(j, 0) != VMI_OK) return vmi__kvm_fail(k, VMI_ERR_FORMAT, "QMP %s: malformed reply", cmd);
        }
        if (!has_id && strstr(k->line, "\"event\"") && strstr(k->line, "\"RESET\"")) k->reset = 1;
        if (!has_id || got_id != id) continue; /* an event, or a late reply */
        if (desc[0]) return vmi__kvm_fail(k, VMI_ERR_BACKEND, "QMP %s: %s", cmd, desc);
        if (!has_ret) return vmi__kvm_fail(k, VMI_ERR_FORMAT, "QMP %s: reply without a result", cmd);
        j->pos = ret_pos;
        return VMI_OK;
    }
}

/* Events QEMU sent on QMP by itself, read without blocking: a RESET means
   the guest rebooted. */
static vmi_status vmi__kvm_qmp_events(vmi__kvm *k) {
    for (;;) {
        struct pollfd p;
        size_t len;
        vmi_status st;
        if (!k->qin_len || !memchr(k->qin, '\n', k->qin_len)) {
            p.fd = k->qmp_fd;
            p.events = POLLIN;
            p.revents = 0;
            if (poll(&p, 1, 0) <= 0) return VMI_OK;
        }
        if ((st = vmi__kvm_qmp_line(k, vmi__now_ms() + 100, &len)) != VMI_OK) return st;
        if (strstr(k->line, "\"event\"") && strstr(k->line, "\"RESET\"")) k->reset = 1;
    }
}

/* Whether the backend can still act for the instance: QEMU alive and the
   guest not rebooted behind its back (a new kernel, new KASLR, new page
   tables: symbols, roots and events would all be wrong). */
static vmi_status vmi__kvm_usable(vmi__kvm *k) {
    vmi_status st;
    if (k->dead) return vmi__kvm_fail(k, VMI_ERR_BACKEND, "QEMU (pid %d) is gone", (int)k->pid);
    if (!k->reset && (st = vmi__kvm_qmp_events(k)) != VMI_OK) return st;
    if (k->reset)
        return vmi__kvm_fail(k, VMI_ERR_BACKEND, "the guest was reset (rebooted): its kernel, symbols and page tables "
                                                 "are new; open it again");
    return VMI_OK;
}

/* HMP through QMP: the output, decoded, in a buffer the caller frees. */
static vmi_status vmi__kvm_hmp(vmi__kvm *k, const char *line, char **out) {
    char args[600];
    vmi__json j;
    vmi__json_str s;
    size_t n;
    vmi_status st;
    memcpy(args, "{\"command-line\":", 16);
    vmi__kvm_jquote(args + 16, sizeof args - 17, line);
    strcat(args, "}");
    if ((st = vmi__kvm_qmp(k, "human-monitor-command", args, &j)) != VMI_OK) return st;
    if (vmi__json_string(&j, &s) != VMI_OK)
        return vmi__kvm_fail(k, VMI_ERR_FORMAT, "QMP human-monitor-command %s: no text", line);
    *out = (char *)vmi__kvm_calloc(k, s.len + 1, 1);
    if (!*out) return vmi__kvm_fail(k, VMI_ERR_NOMEM, "no memory for HMP output");
    n = vmi__json_decode(&s, *out);
    (*out)[n] = '\0';
    return VMI_OK;
}

/* Run state from query-status. */
static vmi_status vmi__kvm_running(vmi__kvm *k, int *running) {
    vmi__json j;
    vmi_status st = vmi__kvm_qmp(k, "query-status", NULL, &j);
    if (st != VMI_OK) return st;
    if (!vmi__kvm_jfind(&j, "running") || !vmi__kvm_jbool(&j, running))
        return vmi__kvm_fail(k, VMI_ERR_FORMAT, "QMP query-status: no \"running\"");
    return VMI_OK;
}

/* stop or cont, then query-status until the guest is in that state. */
static vmi_status vmi__kvm_set_running(vmi__kvm *k, int run) {
    vmi__json j;
    vmi_status st = vmi__kvm_qmp(k, run ? "cont" : "stop", NULL, &j);
    int running = !run;
    uint64_t deadline = vmi__now_ms() + k->timeout_ms;
    if (st != VMI_OK) return st;
    for (;;) {
        if ((st = vmi__kvm_running(k, &running)) != VMI_OK) return st;
        if (running == run) return VMI_OK;
        if (vmi__now_ms() >= deadline)
            return vmi__kvm_fail(k, VMI_ERR_TIMEOUT, "QMP %s: the guest did not %s", run ? "cont" : "stop",
                                 run ? "resume" : "stop");
        poll(NULL, 0, 1);
    }
}

/* ---- gdb remote serial protocol ------------------------------------------- */
/* Only ever spoken while the guest is stopped: QEMU stops a running guest
   at the first byte that arrives and drops that byte. */

static int vmi__kvm_hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Takes one complete packet off k->gin into k->pkt: 1 done, 0 need more. */
static int vmi__kvm_gdb_take(vmi__kvm *k, vmi_status *st) {
    size_t i = 0, j, o = 0;
    unsigned sum = 0;
    int hi, lo;
    *st = VMI_OK;
    while (i < k->gin_len && k->gin[i] != '$') i++; /* acks, noise */
    if (i == k->gin_len) {
        k->gin_len = 0;
        return 0;
    }
    for (j = i + 1; j < k->gin_len && k->gin[j] != '#'; j++) sum += (unsigned char)k->gin[j];
    if (j + 2 >= k->gin_len) {
        memmove(k->gin, k->gin + i, k->gin_len - i);
        k->gin_len -= i;
        return 0;
    }
    hi = vmi__kvm_hexval(k->gin[j + 1]);
    lo = vmi__kvm_hexval(k->gin[j + 2]);
    if (hi < 0 || lo < 0 || (unsigned)(hi << 4 | lo) != (sum & 0xff)) {
        *st = vmi__kvm_fail(k, VMI_ERR_FORMAT, "gdbstub: packet with a bad checksum");
        return 1;
    }
    /* Decode escapes ('}' x ^ 0x20) and run lengths ('*' n: n - 29 more). */
    for (i = i + 1; i < j; i++) {
        char c = k->gin[i];
        if (c == '}' && i + 1 < j) {
            c = (char)(k->gin[++i] ^ 0x20);
        } else if (c == '*' && i + 1 < j && o > 0) {
            int rep = (unsigned char)k->gin[++i] - 29;
            if (rep < 0 || o + (size_t)rep >= VMI__KVM_PKT) break;
            memset(k->pkt + o, k->pkt[o - 1], (size_t)rep);
            o += (size_t)rep;
            continue;
        }
        if (o + 1 >= VMI__KVM_PKT) break;
        k->pkt[o++] = c;
    }
    if (i < j) {
        *st = vmi__kvm_fail(k, VMI_ERR_LIMIT, "gdbstub: a packet longer than %u bytes", VMI__KVM_PKT);
        return 1;
    }
    k->pkt[o] = '\0';
    k->pkt_len = o;
    memmove(k->gin, k->gin + j + 3, k->gin_len - (j + 3));
    k->gin_len -= j + 3;
    return 1;
}

/* A stop QEMU sent on its own. A trap (T05) while events are armed is an
   event the guest now waits in: kept for event_wait. Others (T02 after a
   QMP stop) are dropped. */
static void vmi__kvm_keep_stop(vmi__kvm *k) {
    if (!k->events || k->pending || k->pkt_len < 3 || memcmp(k->pkt, "T05", 3) != 0) return;
    snprintf(k->stop, sizeof k->stop, "%s", k->pkt);
    k->pending = 1;
}

/* Stop notifications and console output, which QEMU sends on its own. */
static int vmi__kvm_gdb_async(const vmi__kvm *k) {
    char c = k->pkt[0];
    return k->pkt_len && (c == 'T' || c == 'S' || (c == 'O' && k->pkt_len > 1 && k->pkt[1] != 'K'));
}

/* The next reply packet (async ones skipped unless want_stop). */
static vmi_status vmi__kvm_gdb_reply(vmi__kvm *k, uint64_t deadline, int want_stop) {
    for (;;) {
        vmi_status st;
        if (vmi__kvm_gdb_take(k, &st)) {
            if (st != VMI_OK) return st;
            if ((st = vmi__kvm_send(k, k->gdb_fd, "gdbstub", "+", 1)) != VMI_OK) return st;
            if (k->pkt_len && (k->pkt[0] == 'W' || k->pkt[0] == 'X')) {
                k->dead = 1;
                return vmi__kvm_fail(k, VMI_ERR_BACKEND, "gdbstub: the target exited (%s)", k->pkt);
            }
            if (want_stop ? (k->pkt_len && (k->pkt[0] == 'T' || k->pkt[0] == 'S')) : !vmi__kvm_gdb_async(k))
                return VMI_OK;
            if (!want_stop) vmi__kvm_keep_stop(k);
            continue;
        }
        st = vmi__kvm_recv(k, k->gdb_fd, "gdbstub", k->gin, &k->gin_len, VMI__KVM_PKT * 2, deadline);
        if (st != VMI_OK) return st;
    }
}

/* Reads and drops whatever QEMU sent on its own (stop notifications). */
static vmi_status vmi__kvm_gdb_drain(vmi__kvm *k) {
    for (;;) {
        vmi_status st;
        struct pollfd p;
        while (vmi__kvm_gdb_take(k, &st)) {
            if (st != VMI_OK) return st;
            if ((st = vmi__kvm_send(k, k->gdb_fd, "gdbstub", "+", 1)) != VMI_OK) return st;
            if (k->pkt_len && (k->pkt[0] == 'W' || k->pkt[0] == 'X')) {
                k->dead = 1;
                return vmi__kvm_fail(k, VMI_ERR_BACKEND, "gdbstub: the target exited (%s)", k->pkt);
            }
            vmi__kvm_keep_stop(k);
        }
        p.fd = k->gdb_fd;
        p.events = POLLIN;
        p.revents = 0;
        if (poll(&p, 1, 0) <= 0) return VMI_OK;
        st = vmi__kvm_recv(k, k->gdb_fd, "gdbstub", k->gin, &k->gin_len, VMI__KVM_PKT * 2, vmi__now_ms());
        if (st != VMI_OK) return st;
    }
}

/* Appends "$body#cs" to out (capacity cap); 0 when it does not fit. */
static size_t vmi__kvm_gdb_frame(char *out, size_t cap, const char *body) {
    size_t n = strlen(body), i;
    unsigned sum = 0;
    if (n + 5 > cap) return 0;
    out[0] = '$';
    for (i = 0; i < n; i++) {
        out[i + 1] = body[i];
        sum += (unsigned char)body[i];
    }
    snprintf(out + n + 1, 4, "#%02x", sum & 0xff);
    return n + 4;
}

/* Sends a batch of already-framed requests in one write (the caller made
   sure the guest is stopped). */
static vmi_status vmi__kvm_gdb_send(vmi__kvm *k, const char *framed, size_t len) {
    vmi_status st = vmi__kvm_gdb_drain(k);
    if (st != VMI_OK) return st;
    return vmi__kvm_send(k, k->gdb_fd, "gdbstub", framed, len);
}

/* One request, one reply in k->pkt. */
static vmi_status vmi__kvm_gdb(vmi__kvm *k, const char *body) {
    char buf[512];
    size_t n = vmi__kvm_gdb_frame(buf, sizeof buf, body);
    vmi_status st;
    if (!n) return vmi__kvm_fail(k, VMI_ERR_ARG, "gdbstub: request too long");
    if ((st = vmi__kvm_gdb_send(k, buf, n)) != VMI_OK) return st;
    return vmi__kvm_gdb_reply(k, vmi__now_ms() + k->timeout_ms, body[0] == '?');
}

static int vmi__kvm_unhex(const char *s, size_t n, uint8_t *out) {
    size_t i;
    for (i = 0; i < n; i++) {
        int hi = vmi__kvm_hexval(s[2 * i]), lo = vmi__kvm_hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0) return 0;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 1;
}

/* Guest-physical bytes through the gdbstub (PhyMemMode set by the caller). */
static vmi_status vmi__kvm_gdb_read_phys(vmi__kvm *k, uint64_t pa, uint8_t *buf, size_t len) {
    char req[64];
    vmi_status st;
    snprintf(req, sizeof req, "m%llx,%zx", (unsigned long long)pa, len);
    if ((st = vmi__kvm_gdb(k, req)) != VMI_OK) return st;
    if (k->pkt_len != 2 * len || !vmi__kvm_unhex(k->pkt, len, buf))
        return vmi__kvm_fail(k, VMI_ERR_BACKEND, "gdbstub: reading %zu bytes at PA 0x%llx: \"%.20s\"", len,
                             (unsigned long long)pa, k->pkt);
    return VMI_OK;
}

/* ---- registers from the target description -------------------------------- */

typedef struct vmi__kvm_regname {
    const char *name;
    uint16_t off;
    uint8_t width, group;
} vmi__kvm_regname;

#define VMI__KVM_X86(n, f, g) {n, (uint16_t)offsetof(vmi_regs, x86.f), 8, g}
#define VMI__KVM_A64(n, f, g) {n, (uint16_t)offsetof(vmi_regs, arm64.f), 8, g}
#define VMI__KVM_A32(n, f, w, g) {n, (uint16_t)offsetof(vmi_regs, arm.f), w, g}
static const vmi__kvm_regname vmi__kvm_regnames[] = {
    VMI__KVM_X86("rax", rax, VMI_REGS_GPR), VMI__KVM_X86("rbx", rbx, VMI_REGS_GPR),
    VMI__KVM_X86("rcx", rcx, VMI_REGS_GPR), VMI__KVM_X86("rdx", rdx, VMI_REGS_GPR),
    VMI__KVM_X86("rsi", rsi, VMI_REGS_GPR), VMI__KVM_X86("rdi", rdi, VMI_REGS_GPR),
    VMI__KVM_X86("rsp", rsp, VMI_REGS_GPR), VMI__KVM_X86("rbp", rbp, VMI_REGS_GPR),
    VMI__KVM_X86("eax", rax, VMI_REGS_GPR), VMI__KVM_X86("ebx", rbx, VMI_REGS_GPR),
    VMI__KVM_X86("ecx", rcx, VMI_REGS_GPR), VMI__KVM_X86("edx", rdx, VMI_REGS_GPR),
    VMI__KVM_X86("esi", rsi, VMI_REGS_GPR), VMI__KVM_X86("edi", rdi, VMI_REGS_GPR),
    VMI__KVM_X86("esp", rsp, VMI_REGS_GPR), VMI__KVM_X86("ebp", rbp, VMI_REGS_GPR),
    VMI__KVM_X86("r8", r8, VMI_REGS_GPR), VMI__KVM_X86("r9", r9, VMI_REGS_GPR),
    VMI__KVM_X86("r10", r10, VMI_REGS_GPR), VMI__KVM_X86("r11", r11, VMI_REGS_GPR),
    VMI__KVM_X86("r12", r12, VMI_REGS_GPR), VMI__KVM_X86("r13", r13, VMI_REGS_GPR),
    VMI__KVM_X86("r14", r14, VMI_REGS_GPR), VMI__KVM_X86("r15", r15, VMI_REGS_GPR),
    VMI__KVM_X86("rip", rip, VMI_REGS_GPR), VMI__KVM_X86("eip", rip, VMI_REGS_GPR),
    VMI__KVM_X86("eflags", rflags, VMI_REGS_GPR),
    VMI__KVM_X86("cs", cs, VMI_REGS_SEGMENT), VMI__KVM_X86("ds", ds, VMI_REGS_SEGMENT),
    VMI__KVM_X86("es", es, VMI_REGS_SEGMENT), VMI__KVM_X86("fs", fs, VMI_REGS_SEGMENT),
    VMI__KVM_X86("gs", gs, VMI_REGS_SEGMENT), VMI__KVM_X86("ss", ss, VMI_REGS_SEGMENT),
    VMI__KVM_X86("fs_base", fs_base, VMI_REGS_SEGMENT), VMI__KVM_X86("gs_base", gs_base, VMI_REGS_SEGMENT),
    VMI__KVM_X86("k_gs_base", kernel_gs_base, VMI_REGS_SEGMENT),
    VMI__KVM_X86("cr0", cr0, VMI_REGS_CONTROL), VMI__KVM_X86("cr2", cr2, VMI_REGS_CONTROL),
    VMI__KVM_X86("cr3", cr3, VMI_REGS_CONTROL), VMI__KVM_X86("cr4", cr4, VMI_REGS_CONTROL),
    VMI__KVM_X86("cr8", cr8, VMI_REGS_CONTROL), VMI__KVM_X86("efer", efer, VMI_REGS_CONTROL),
    VMI__KVM_A64("sp", sp, VMI_REGS_GPR), VMI__KVM_A64("pc", pc, VMI_REGS_GPR),
    VMI__KVM_A64("cpsr", pstate, VMI_REGS_GPR),
    VMI__KVM_A64("SP_EL0", sp_el0, VMI_REGS_CONTROL), VMI__KVM_A64("SP_EL1", sp_el1, VMI_REGS_CONTROL),
    VMI__KVM_A64("ELR_EL1", elr_el1, VMI_REGS_CONTROL), VMI__KVM_A64("VBAR_EL1", vbar_el1, VMI_REGS_CONTROL),
    VMI__KVM_A64("TTBR0_EL1", ttbr0, VMI_REGS_CONTROL), VMI__KVM_A64("TTBR1_EL1", ttbr1, VMI_REGS_CONTROL),
    VMI__KVM_A64("TCR_EL1", tcr, VMI_REGS_CONTROL), VMI__KVM_A64("SCTLR_EL1", sctlr, VMI_REGS_CONTROL),
    VMI__KVM_A64("SCTLR", sctlr, VMI_REGS_CONTROL), VMI__KVM_A64("VBAR", vbar_el1, VMI_REGS_CONTROL), /* QEMU 7.2's names */
    VMI__KVM_A32("sp", r[13], 4, VMI_REGS_GPR), VMI__KVM_A32("lr", r[14], 4, VMI_REGS_GPR),
    VMI__KVM_A32("pc", r[15], 4, VMI_REGS_GPR), VMI__KVM_A32("cpsr", cpsr, 4, VMI_REGS_GPR),
    VMI__KVM_A32("TTBR0", ttbr0, 8, VMI_REGS_CONTROL), VMI__KVM_A32("TTBR1", ttbr1, 8, VMI_REGS_CONTROL),
    VMI__KVM_A32("TTBCR", ttbcr, 4, VMI_REGS_CONTROL), VMI__KVM_A32("SCTLR", sctlr, 4, VMI_REGS_CONTROL),
    VMI__KVM_A32("DACR", dacr, 4, VMI_REGS_CONTROL),
};

static int vmi__kvm_is_x86(vmi_arch a) { return a == VMI_ARCH_X86 || a == VMI_ARCH_X86_64; }

/* Where register `name` of this architecture goes in vmi_regs. */
static int vmi__kvm_lookup(vmi_arch arch, const char *name, vmi__kvm_regname *out) {
    size_t i;
    char *end;
    unsigned long idx;
    if (arch == VMI_ARCH_AARCH64 && name[0] == 'x') {
        idx = strtoul(name + 1, &end, 10);
        if (end != name + 1 && !*end && idx < 31) {
            out->off = (uint16_t)(offsetof(vmi_regs, arm64.x) + 8 * idx);
            out->width = 8;
            out->group = VMI_REGS_GPR;
            return 1;
        }
    }
    if (arch == VMI_ARCH_ARM && name[0] == 'r') {
        idx = strtoul(name + 1, &end, 10);
        if (end != name + 1 && !*end && idx < 16) {
            out->off = (uint16_t)(offsetof(vmi_regs, arm.r) + 4 * idx);
            out->width = 4;
            out->group = VMI_REGS_GPR;
            return 1;
        }
    }
    for (i = 0; i < sizeof vmi__kvm_regnames / sizeof vmi__kvm_regnames[0]; i++) {
        const vmi__kvm_regname *r = &vmi__kvm_regnames[i];
        size_t at = r->off;
        int fam = at >= offsetof(vmi_regs, arm) ? 2 : at >= offsetof(vmi_regs, arm64) ? 1 : 0;
        int want = vmi__kvm_is_x86(arch) ? 0 : arch == VMI_ARCH_AARCH64 ? 1 : 2;
        if (fam == want && strcmp(r->name, name) == 0) {
            *out = *r;
            return 1;
        }
    }
    return 0;
}

/* The value of attribute `attr` inside tag text [p, end), into buf. */
static int vmi__kvm_xml_attr(const char *p, const char *end, const char *attr, char *buf, size_t cap) {
    size_t an = strlen(attr);
    for (; p + an + 2 < end; p++) {
        const char *q;
        if (memcmp(p, attr, an) != 0 || p[an] != '=' || (p[an + 1] != '"' && p[an + 1] != '\'')) continue;
        if (p[-1] != ' ' && p[-1] != '\t' && p[-1] != '\n') continue;
        q = p + an + 2;
        p = (const char *)memchr(q, p[an + 1], (size_t)(end - q));
        if (!p || (size_t)(p - q) >= cap) return 0;
        memcpy(buf, q, (size_t)(p - q));
        buf[p - q] = '\0';
        return 1;
    }
    return 0;
}

static vmi_status vmi__kvm_xml_file(vmi__kvm *k, const char *annex, int depth, uint32_t *regnum);

/* Walks one XML text: registers numbered in document order, includes
   followed where they appear. */
static vmi_status vmi__kvm_xml_walk(vmi__kvm *k, const char *xml, size_t len, int depth, uint32_t *regnum) {
    const char *p = xml, *end = xml + len;
    char name[64], num[24];
    while ((p = (const char *)memchr(p, '<', (size_t)(end - p))) != NULL) {
        const char *tag_end = (const char *)memchr(p, '>', (size_t)(end - p));
        vmi_status st;
        if (!tag_end) break;
        if (end - p >= 4 && memcmp(p, "<!--", 4) == 0) { /* QEMU comments registers out */
            const char *q = p + 4;
            while (q + 3 <= end && memcmp(q, "-->", 3) != 0) q++;
            if (q + 3 > end) break;
            p = q + 3;
            continue;
        }
        if ((size_t)(tag_end - p) > 11 && memcmp(p, "<xi:include", 11) == 0) {
            if (vmi__kvm_xml_attr(p, tag_end, "href", name, sizeof name) &&
                (st = vmi__kvm_xml_file(k, name, depth + 1, regnum)) != VMI_OK)
                return st;
        } else if ((size_t)(tag_end - p) > 4 && memcmp(p, "<reg", 4) == 0 && (p[4] == ' ' || p[4] == '\t' || p[4] == '\n')) {
            vmi__kvm_regname rn;
            unsigned long bits = 0;
            if (vmi__kvm_xml_attr(p, tag_end, "regnum", num, sizeof num)) *regnum = (uint32_t)strtoul(num, NULL, 10);
            if (vmi__kvm_xml_attr(p, tag_end, "bitsize", num, sizeof num)) bits = strtoul(num, NULL, 10);
            if (vmi__kvm_xml_attr(p, tag_end, "name", name, sizeof name) && bits && bits <= 64 && bits % 8 == 0 &&
                vmi__kvm_lookup(k->arch, name, &rn) && k->nregs < VMI__KVM_MAX_REGS) {
                vmi__kvm_reg *r = &k->regs[k->nregs++];
                r->num = *regnum;
                r->bytes = (uint32_t)(bits / 8);
                r->off = rn.off;
                r->width = rn.width;
                r->group = rn.group;
                snprintf(r->name, sizeof r->name, "%s", name);
            }
            ++*regnum;
        }
        p = tag_end + 1;
    }
    return VMI_OK;
}

/* Fetches one XML annex with qXfer (bounded) and walks it. */
static vmi_status vmi__kvm_xml_file(vmi__kvm *k, const char *annex, int depth, uint32_t *regnum) {
    char req[160];
    char *xml = NULL;
    size_t len = 0, cap = 0;
    vmi_status st = VMI_OK;
    if (depth > 4) return vmi__kvm_fail(k, VMI_ERR_LIMIT, "gdbstub: target XML includes nest too deep");
    for (;;) {
        if (snprintf(req, sizeof req, "qXfer:features:read:%s:%zx,%x", annex, len, 0x7f0) >= (int)sizeof req) {
            st = vmi__kvm_fail(k, VMI_ERR_FORMAT, "gdbstub: XML annex name too long");
            break;
        }
        if ((st = vmi__kvm_gdb(k, req)) != VMI_OK) break;
        if (!k->pkt_len || (k->pkt[0] != 'l' && k->pkt[0] != 'm')) {
            st = vmi__kvm_fail(k, VMI_ERR_FORMAT, "gdbstub: qXfer %s: \"%.20s\"", annex, k->pkt);
            break;
        }
        if (!vmi__kvm_grow(k, &xml, &cap, len, len + k->pkt_len, VMI__KVM_XML_MAX)) {
            st = vmi__kvm_fail(k, VMI_ERR_LIMIT, "gdbstub: %s larger than %u bytes", annex, VMI__KVM_XML_MAX);
            break;
        }
        memcpy(xml + len, k->pkt + 1, k->pkt_len - 1);
        len += k->pkt_len - 1;
        if (k->pkt[0] == 'l') break;
        if (k->pkt_len == 1) {
            st = vmi__kvm_fail(k, VMI_ERR_FORMAT, "gdbstub: qXfer %s makes no progress", annex);
            break;
        }
    }
    if (st == VMI_OK) st = vmi__kvm_xml_walk(k, xml, len, depth, regnum);
    vmi__kvm_free(k, xml);
    return st;
}

/* ---- run state around gdb requests ---------------------------------------- */

/* Stops a running guest for a gdb conversation; *was says to resume it. */
static vmi_status vmi__kvm_hold(vmi__kvm *k, int *was) {
    vmi_status st;
    *was = 0;
    if (k->dead) return vmi__kvm_fail(k, VMI_ERR_BACKEND, "QEMU (pid %d) is gone", (int)k->pid);
    if ((st = vmi__kvm_running(k, was)) != VMI_OK) return st;
    return *was ? vmi__kvm_set_running(k, 0) : VMI_OK;
}

static vmi_status vmi__kvm_go(vmi__kvm *k);

/* Lets the guest run again if hold() stopped it. With events armed it goes
   on through the gdbstub (which keeps a trap seen meanwhile, and steps). */
static vmi_status vmi__kvm_release(vmi__kvm *k, int was, vmi_status st) {
    vmi__json j;
    if (was && !k->dead) {
        char keep[VMI__KVM_ERR];
        vmi_status st2;
        memcpy(keep, k->err, sizeof keep);
        st2 = k->events ? vmi__kvm_go(k) : vmi__kvm_qmp(k, "cont", NULL, &j);
        if (st == VMI_OK) return st2;
        memcpy(k->err, keep, sizeof keep); /* the first failure tells more */
    }
    return st;
}

static vmi__kvm_reg *vmi__kvm_find_reg(vmi__kvm *k, const char *name) {
    uint32_t i;
    for (i = 0; i < k->nregs; i++)
        if (strcmp(k->regs[i].name, name) == 0) return &k->regs[i];
    return NULL;
}

/* Reads every known register of vCPU `vcpu` (guest stopped): one write of
   Hg + p requests, then their replies in order. */
static vmi_status vmi__kvm_read_regs(vmi__kvm *k, uint32_t vcpu, vmi_regs *regs) {
    char body[32], *batch;
    size_t len = 0, cap = 64 + (size_t)k->nregs * 24;
    uint64_t deadline;
    uint32_t i, have = 0;
    vmi_status st;
    batch = (char *)vmi__kvm_calloc(k, cap, 1);
    if (!batch) return vmi__kvm_fail(k, VMI_ERR_NOMEM, "no memory");
    snprintf(body, sizeof body, "Hg%x", (unsigned)k->threads[vcpu]);
    len += vmi__kvm_gdb_frame(batch + len, cap - len, body);
    for (i = 0; i < k->nregs; i++) {
        snprintf(body, sizeof body, "p%x", (unsigned)k->regs[i].num);
        len += vmi__kvm_gdb_frame(batch + len, cap - len, body);
    }
    st = vmi__kvm_gdb_send(k, batch, len);
    vmi__kvm_free(k, batch);
    if (st != VMI_OK) return st;
    deadline = vmi__now_ms() + k->timeout_ms;
    if ((st = vmi__kvm_gdb_reply(k, deadline, 0)) != VMI_OK) return st;
    if (strcmp(k->pkt, "OK") != 0) return vmi__kvm_fail(k, VMI_ERR_BACKEND, "gdbstub: Hg for vCPU %u: \"%.20s\"", vcpu, k->pkt);
    memset(regs, 0, sizeof *regs);
    regs->arch = k->arch;
    for (i = 0; i < k->nregs; i++) {
        const vmi__kvm_reg *r = &k->regs[i];
        uint8_t raw[8];
        uint64_t v = 0;
        uint32_t b;
        if ((st = vmi__kvm_gdb_reply(k, deadline, 0)) != VMI_OK) return st;
        if (k->pkt_len != 2 * r->bytes || !vmi__kvm_unhex(k->pkt, r->bytes, raw)) continue; /* "E14": not readable */
        for (b = 0; b < r->bytes; b++) v |= (uint64_t)raw[b] << (8 * b);
        if (r->width == 8) memcpy((char *)regs + r->off, &v, 8);
        else {
            uint32_t v32 = (uint32_t)v;
            memcpy((char *)regs + r->off, &v32, 4);
        }
        have |= r->group;
    }
    regs->valid = have & (VMI_REGS_GPR | VMI_REGS_SEGMENT);
    if (vmi__kvm_is_x86(k->arch) ? (vmi__kvm_find_reg(k, "cr0") && vmi__kvm_find_reg(k, "cr3") && vmi__kvm_find_reg(k, "cr4"))
        : k->arch == VMI_ARCH_AARCH64 ? (vmi__kvm_find_reg(k, "TTBR1_EL1") && vmi__kvm_find_reg(k, "TCR_EL1"))
                                      : (vmi__kvm_find_reg(k, "TTBR0") && vmi__kvm_find_reg(k, "TTBCR")))
        regs->valid |= have & VMI_REGS_CONTROL;
    return VMI_OK;
}

static vmi_status vmi__kvm_get_regs(void *ctx, uint32_t vcpu, vmi_regs *regs) {
    vmi__kvm *k = (vmi__kvm *)ctx;
    vmi_status st;
    int was;
    if (vcpu >= k->nthreads) return vmi__kvm_fail(k, VMI_ERR_ARG, "vCPU %u of %u", vcpu, k->nthreads);
    if ((st = vmi__kvm_usable(k)) != VMI_OK) return st;
    if ((st = vmi__kvm_hold(k, &was)) != VMI_OK) return st;
    st = vmi__kvm_read_regs(k, vcpu, regs);
    return vmi__kvm_release(k, was, st);
}

/* Writes the registers of regs->valid's groups that differ from now. */
static vmi_status vmi__kvm_write_regs(vmi__kvm *k, uint32_t vcpu, const vmi_regs *regs) {
    vmi_regs cur;
    uint32_t i;
    vmi_status st = vmi__kvm_read_regs(k, vcpu, &cur);
    if (st != VMI_OK) return st;
    for (i = 0; i < k->nregs; i++) {
        const vmi__kvm_reg *r = &k->regs[i];
        uint64_t want = 0, have = 0;
        char body[64];
        int o;
        uint32_t b;
        if (!(regs->valid & r->group)) continue;
        memcpy(&want, (const char *)regs + r->off, r->width);
        memcpy(&have, (const char *)&cur + r->off, r->width);
        if (want == have) continue;
        o = snprintf(body, sizeof body, "P%x=", (unsigned)r->num);
        for (b = 0; b < r->bytes; b++) o += snprintf(body + o, sizeof body - (size_t)o, "%02x", (unsigned)((want >> (8 * b)) & 0xff));
        if ((st = vmi__kvm_gdb(k, body)) != VMI_OK) return st;
        if (strcmp(k->pkt, "OK") != 0)
            return vmi__kvm_fail(k, VMI_ERR_BACKEND, "gdbstub: QEMU refused to write %s of vCPU %u (\"%.20s\")", r->name,
                                 vcpu, k->pkt);
    }
    return VMI_OK;
}

static vmi_status vmi__kvm_set_regs(void *ctx, uint32_t vcpu, const vmi_regs *regs) {
    vmi__kvm *k = (vmi__kvm *)ctx;
    vmi_status st;
    int was;
    if (vcpu >= k->nthreads) return vmi__kvm_fail(k, VMI_ERR_ARG, "vCPU %u of %u", vcpu, k->nthreads);
    if (regs->arch != k->arch) return vmi__kvm_fail(k, VMI_ERR_ARG, "registers of another architecture");
    if ((st = vmi__kvm_usable(k)) != VMI_OK || (st = vmi__kvm_hold(k, &was)) != VMI_OK) return st;
    st = vmi__kvm_write_regs(k, vcpu, regs);
    return vmi__kvm_release(k, was, st);
}

static vmi_status vmi__kvm_vcpu_count(void *ctx, uint32_t *count) {
    vmi__kvm *k = (vmi__kvm *)ctx;
    *count = k->nthreads;
    return VMI_OK;
}

static vmi_status vmi__kvm_pause(void *ctx) {
    vmi__kvm *k = (vmi__kvm *)ctx;
    vmi_status st;
    if ((st = vmi__kvm_usable(k)) != VMI_OK) return st;
    if ((st = vmi__kvm_set_running(k, 0)) == VMI_OK) k->paused = 1;
    return st;
}

/* Also how the core continues after dispatching an event. */
static vmi_status vmi__kvm_resume(void *ctx) {
    vmi__kvm *k = (vmi__kvm *)ctx;
    vmi_status st;
    if ((st = vmi__kvm_usable(k)) != VMI_OK) return st;
    k->paused = 0;
    if (k->events || k->delivered || k->pending) return vmi__kvm_go(k);
    return vmi__kvm_set_running(k, 1);
}

/* ---- memory ----------------------------------------------------------------- */

/* Is QEMU still there? A closed QMP socket says no, before a pid that may
   have been reused is read. */
static vmi_status vmi__kvm_alive(vmi__kvm *k) {
    struct pollfd p;
    char c;
    if (k->dead) return vmi__kvm_fail(k, VMI_ERR_BACKEND, "QEMU (pid %d) is gone", (int)k->pid);
    p.fd = k->qmp_fd;
    p.events = POLLIN;
    p.revents = 0;
    if (poll(&p, 1, 0) > 0 && ((p.revents & (POLLHUP | POLLERR)) || recv(k->qmp_fd, &c, 1, MSG_PEEK) == 0))
        return vmi__kvm_gone(k, "QMP");
    return VMI_OK;
}

static const vmi_mem_range *vmi__kvm_range(const vmi__kvm *k, uint64_t pa, size_t *idx) {
    size_t lo = 0, hi = k->nranges;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const vmi_mem_range *r = &k->ranges[mid];
        if (pa < r->pa) hi = mid;
        else if (pa - r->pa >= r->size) lo = mid + 1;
        else {
            *idx = mid;
            return r;
        }
    }
    return NULL;
}

static vmi_status vmi__kvm_rw(vmi__kvm *k, uint64_t pa, void *buf, size_t len, int write) {
    struct iovec local, remote;
    const vmi_mem_range *r;
    size_t i;
    ssize_t n;
    vmi_status st = vmi__kvm_alive(k);
    if (st != VMI_OK) return st;
    r = vmi__kvm_range(k, pa, &i);
    if (!r || len > r->size - (pa - r->pa))
        return vmi__kvm_fail(k, VMI_ERR_UNMAPPED, "PA 0x%llx+%zu is not in one RAM range", (unsigned long long)pa, len);
    if (write && !(r->flags & VMI_RANGE_WRITABLE))
        return vmi__kvm_fail(k, VMI_ERR_READ_ONLY, "PA 0x%llx is %s", (unsigned long long)pa,
                             k->writable ? "ROM" : "read-only (open with writable)");
    local.iov_base = buf;
    local.iov_len = len;
    remote.iov_base = (void *)(uintptr_t)(k->blocks[k->range_block[i]].hva + k->range_off[i] + (pa - r->pa));
    remote.iov_len = len;
    n = write ? process_vm_writev((pid_t)k->pid, &local, 1, &remote, 1, 0)
              : process_vm_readv((pid_t)k->pid, &local, 1, &remote, 1, 0);
    if (n == (ssize_t)len) return VMI_OK;
    if (n < 0 && errno == ESRCH) {
        k->dead = 1;
        return vmi__kvm_fail(k, VMI_ERR_BACKEND, "QEMU (pid %d) is gone", (int)k->pid);
    }
    return vmi__kvm_fail(k, VMI_ERR_BACKEND, "process_vm_%s of %zu bytes at PA 0x%llx in QEMU (pid %d): %s",
                         write ? "writev" : "readv", len, (unsigned long long)pa, (int)k->pid,
                         n < 0 ? strerror(errno) : "short transfer");
}

static vmi_status vmi__kvm_read_pa(void *ctx, uint64_t pa, void *buf, size_t len) {
    return vmi__kvm_rw((vmi__kvm *)ctx, pa, buf, len, 0);
}

static vmi_status vmi__kvm_write_pa(void *ctx, uint64_t pa, const void *buf, size_t len) {
    return vmi__kvm_rw((vmi__kvm *)ctx, pa, (void *)(uintptr_t)buf, len, 1);
}

/* The memory backends under /objects, with their properties. */
static vmi_status vmi__kvm_find_blocks(vmi__kvm *k) {
    vmi__json j;
    vmi_status st;
    char names[VMI__KVM_MAX_BLOCKS][64];
    int kinds[VMI__KVM_MAX_BLOCKS]; /* 1: file */
    uint32_t n = 0, i;
    int first = 1, e;
    if ((st = vmi__kvm_qmp(k, "qom-list", "{\"path\":\"/objects\"}", &j)) != VMI_OK) return st;
    while ((e = vmi__kvm_jelem(&j, &first)) == 1) {
        char name[64], type[96];
        size_t at = j.pos;
        int ok = vmi__kvm_jfind(&j, "name") && vmi__kvm_jstr(&j, name, sizeof name);
        j.pos = at;
        ok = ok && vmi__kvm_jfind(&j, "type") && vmi__kvm_jstr(&j, type, sizeof type);
        j.pos = at;
        if (vmi__json_skip(&j, 0) != VMI_OK) return vmi__kvm_fail(k, VMI_ERR_FORMAT, "QMP qom-list: malformed reply");
        if (!ok || strncmp(type, "child<memory-backend-", 21) != 0 || n == VMI__KVM_MAX_BLOCKS) continue;
        memcpy(names[n], name, sizeof name);
        kinds[n++] = strcmp(type, "child<memory-backend-file>") == 0;
    }
    if (e < 0) return vmi__kvm_fail(k, VMI_ERR_FORMAT, "QMP qom-list: malformed reply");
    for (i = 0; i < n; i++) {
        vmi__kvm_block *b = &k->blocks[k->nblocks];
        char args[300], q[200], path[160];
        memcpy(b->id, names[i], sizeof b->id);
        snprintf(path, sizeof path, "/objects/%.63s", names[i]);
        vmi__kvm_jquote(q, sizeof q, path);
        snprintf(args, sizeof args, "{\"path\":%s,\"property\":\"size\"}", q);
        if ((st = vmi__kvm_qmp(k, "qom-get", args, &j)) != VMI_OK) return st;
        if (vmi__json_u64(&j, &b->size) != VMI_OK || !b->size)
            return vmi__kvm_fail(k, VMI_ERR_FORMAT, "QMP qom-get %s size: not a size", names[i]);
        if (kinds[i]) {
            int share = 0;
            snprintf(args, sizeof args, "{\"path\":%s,\"property\":\"share\"}", q);
            if ((st = vmi__kvm_qmp(k, "qom-get", args, &j)) != VMI_OK) return st;
            if (!vmi__kvm_jbool(&j, &share)) return vmi__kvm_fail(k, VMI_ERR_FORMAT, "QMP qom-get %s share", names[i]);
            snprintf(args, sizeof args, "{\"path\":%s,\"property\":\"mem-path\"}", q);
            if ((st = vmi__kvm_qmp(k, "qom-get", args, &j)) != VMI_OK) return st;
            if (!vmi__kvm_jstr(&j, b->mem_path, sizeof b->mem_path))
                return vmi__kvm_fail(k, VMI_ERR_FORMAT, "QMP qom-get %s mem-path", names[i]);
            b->shared = share;
        }
        k->nblocks++;
    }
    if (!k->nblocks) return vmi__kvm_fail(k, VMI_ERR_NOT_FOUND, "QMP: no memory backend under /objects");
    return VMI_OK;
}

static int vmi__kvm_range_cmp(const void *a, const void *b) {
    const vmi_mem_range *x = (const vmi_mem_range *)a, *y = (const vmi_mem_range *)b;
    return x->pa < y->pa ? -1 : x->pa > y->pa;
}

/* One line of `info mtree -f`: "  START-END (prio P, KIND): NAME[ @OFFSET]". */
static int vmi__kvm_mtree_line(const char *s, uint64_t *start, uint64_t *end, char *kind, char *name, uint64_t *off) {
    char *p;
    int len;
    while (*s == ' ') s++;
    *start = strtoull(s, &p, 16);
    if (p == s || *p != '-') return 0;
    s = p + 1;
    *end = strtoull(s, &p, 16);
    if (p == s || strncmp(p, " (prio ", 7) != 0) return 0;
    s = strchr(p, ',');
    if (!s || s[1] != ' ') return 0;
    s += 2;
    for (len = 0; s[len] && s[len] != ')' && len < 15; len++) kind[len] = s[len];
    kind[len] = '\0';
    if (s[len] != ')' || s[len + 1] != ':' || s[len + 2] != ' ') return 0;
    s += len + 3;
    for (len = 0; s[len] && s[len] != ' ' && s[len] != '\r' && s[len] != '\n' && len < 63; len++) name[len] = s[len];
    name[len] = '\0';
    s += len;
    *off = 0;
    if (s[0] == ' ' && s[1] == '@') *off = strtoull(s + 2, NULL, 16);
    return *end >= *start;
}

/* The guest-physical map: RAM/ROM pieces of memory backends in the
   address space "memory". */
static vmi_status vmi__kvm_memory_map(vmi__kvm *k) {
    char *text = NULL, *line, *next;
    int in_mem = 0;
    size_t i, o;
    vmi_status st = vmi__kvm_hmp(k, "info mtree -f", &text);
    if (st != VMI_OK) return st;
    k->ranges = (vmi_mem_range *)vmi__kvm_calloc(k, VMI__KVM_MAX_RANGES, sizeof(vmi_mem_range));
    k->range_block = (uint32_t *)vmi__kvm_calloc(k, VMI__KVM_MAX_RANGES, sizeof(uint32_t));
    k->range_off = (uint64_t *)vmi__kvm_calloc(k, VMI__KVM_MAX_RANGES, sizeof(uint64_t));
    if (!k->ranges || !k->range_block || !k->range_off) {
        vmi__kvm_free(k, text);
        return vmi__kvm_fail(k, VMI_ERR_NOMEM, "no memory for the memory map");
    }
    for (line = text; line && *line; line = next) {
        uint64_t start, end, off;
        char kind[16], name[64];
        uint32_t b;
        const char *t = line;
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        while (*t == ' ') t++;
        if (strncmp(line, "FlatView", 8) == 0) {
            in_mem = 0;
            continue;
        }
        if (strncmp(t, "AS ", 3) == 0) {
            in_mem = in_mem || strncmp(t, "AS \"memory\"", 11) == 0;
            continue;
        }
        if (!in_mem || !vmi__kvm_mtree_line(line, &start, &end, kind, name, &off)) continue;
        if (strcmp(kind, "ram") && strcmp(kind, "rom") && strcmp(kind, "ramd") && strcmp(kind, "romd")) continue;
        for (b = 0; b < k->nblocks && strcmp(k->blocks[b].id, name) != 0; b++) {
        }
        if (b == k->nblocks) continue;
        if (off > k->blocks[b].size || end - start >= k->blocks[b].size - off) {
            vmi__kvm_free(k, text);
            return vmi__kvm_fail(k, VMI_ERR_FORMAT, "info mtree: %s piece at 0x%llx runs past the block's %llu bytes", name,
                                 (unsigned long long)start, (unsigned long long)k->blocks[b].size);
        }
        if (k->nranges == VMI__KVM_MAX_RANGES) {
            vmi__kvm_free(k, text);
            return vmi__kvm_fail(k, VMI_ERR_LIMIT, "info mtree: more than %u RAM pieces", VMI__KVM_MAX_RANGES);
        }
        k->ranges[k->nranges].pa = start;
        k->ranges[k->nranges].size = end - start + 1;
        k->ranges[k->nranges].flags = (kind[1] == 'a' && k->writable) ? VMI_RANGE_WRITABLE : 0;
        /* block and offset ride in host until sorted */
        k->ranges[k->nranges].host = (void *)(uintptr_t)(off * VMI__KVM_MAX_BLOCKS + b);
        k->nranges++;
    }
    vmi__kvm_free(k, text);
    if (!k->nranges) return vmi__kvm_fail(k, VMI_ERR_NOT_FOUND, "info mtree: no RAM of a memory backend in \"memory\"");
    qsort(k->ranges, k->nranges, sizeof(vmi_mem_range), vmi__kvm_range_cmp);
    /* Merge neighbours contiguous in both spaces, with the same flags. */
    for (i = 0, o = 0; i < k->nranges; i++) {
        uintptr_t tag = (uintptr_t)k->ranges[i].host;
        uint32_t b = (uint32_t)(tag % VMI__KVM_MAX_BLOCKS);
        uint64_t off = (uint64_t)(tag / VMI__KVM_MAX_BLOCKS);
        if (o && k->ranges[o - 1].pa + k->ranges[o - 1].size > k->ranges[i].pa)
            return vmi__kvm_fail(k, VMI_ERR_FORMAT, "info mtree: RAM pieces overlap at 0x%llx", (unsigned long long)k->ranges[i].pa);
        if (o && k->range_block[o - 1] == b && k->ranges[o - 1].flags == k->ranges[i].flags &&
            k->ranges[o - 1].pa + k->ranges[o - 1].size == k->ranges[i].pa &&
            k->range_off[o - 1] + k->ranges[o - 1].size == off) {
            k->ranges[o - 1].size += k->ranges[i].size;
            continue;
        }
        k->ranges[o] = k->ranges[i];
        k->range_block[o] = b;
        k->range_off[o] = off;
        o++;
    }
    k->nranges = o;
    for (i = 0; i < o; i++) k->ranges[i].host = NULL;
    return VMI_OK;
}

/* Maps every block's file (qemu-shm). */
static vmi_status vmi__kvm_map_files(vmi__kvm *k) {
    uint32_t b;
    size_t i;
    for (b = 0; b < k->nblocks; b++) {
        vmi__kvm_block *bl = &k->blocks[b];
        struct stat sb;
        void *m;
        int fd = open(bl->mem_path, k->writable ? O_RDWR : O_RDONLY);
        if (fd < 0) return vmi__kvm_fail(k, VMI_ERR_IO, "%s (RAM of %s): %s", bl->mem_path, bl->id, strerror(errno));
        if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || (uint64_t)sb.st_size < bl->size) {
            close(fd);
            return vmi__kvm_fail(k, VMI_ERR_FORMAT, "%s: not a regular file of %llu bytes", bl->mem_path,
                                 (unsigned long long)bl->size);
        }
        if (geteuid() != 0 && sb.st_uid != geteuid()) {
            close(fd);
            return vmi__kvm_fail(k, VMI_ERR_ARG, "%s belongs to uid %u, not to us", bl->mem_path, (unsigned)sb.st_uid);
        }
        m = mmap(NULL, (size_t)bl->size, PROT_READ | (k->writable ? PROT_WRITE : 0), MAP_SHARED, fd, 0);
        close(fd);
        if (m == MAP_FAILED) return vmi__kvm_fail(k, VMI_ERR_IO, "mmap %s: %s", bl->mem_path, strerror(errno));
        bl->map = (uint8_t *)m;
    }
    for (i = 0; i < k->nranges; i++) k->ranges[i].host = k->blocks[k->range_block[i]].map + k->range_off[i];
    return VMI_OK;
}

/* Reference bytes of block b for vmi__kvm_probe: up to VMI__KVM_PROBES
   non-zero 64-byte pieces, read through the gdbstub at guest-physical
   addresses spread over the block (256 tries). */
typedef struct vmi__kvm_sample {
    uint64_t off;
    uint8_t data[64];
} vmi__kvm_sample;

static vmi_status vmi__kvm_samples(vmi__kvm *k, uint32_t b, vmi__kvm_sample *out, uint32_t *count) {
    uint64_t total = 0, step;
    uint32_t t;
    size_t i;
    vmi_status st;
    *count = 0;
    for (i = 0; i < k->nranges; i++)
        if (k->range_block[i] == b) total += k->ranges[i].size;
    step = total / 256;
    for (t = 0; t < 256 && *count < VMI__KVM_PROBES; t++) {
        uint64_t at = ((uint64_t)t * step) & ~(uint64_t)63;
        vmi__kvm_sample *sm = &out[*count];
        for (i = 0; i < k->nranges; i++) {
            if (k->range_block[i] != b) continue;
            if (at < k->ranges[i].size) break;
            at -= k->ranges[i].size;
        }
        if (i == k->nranges || k->ranges[i].size - at < sizeof sm->data) continue;
        if ((st = vmi__kvm_gdb_read_phys(k, k->ranges[i].pa + at, sm->data, sizeof sm->data)) != VMI_OK) return st;
        sm->off = k->range_off[i] + at;
        for (i = 0; i < sizeof sm->data && !sm->data[i]; i++) {
        }
        if (i < sizeof sm->data) ++*count;
    }
    if (*count < 2)
        return vmi__kvm_fail(k, VMI_ERR_NOT_FOUND, "RAM block %s is almost all zeros: its place in QEMU cannot be checked",
                             k->blocks[b].id);
    return VMI_OK;
}

/* Does QEMU's memory at hva hold the block? Every sample must match. */
static int vmi__kvm_probe(vmi__kvm *k, const vmi__kvm_sample *sm, uint32_t n, uint64_t hva) {
    uint32_t p;
    for (p = 0; p < n; p++) {
        uint8_t got[64];
        struct iovec local, remote;
        local.iov_base = got;
        local.iov_len = sizeof got;
        remote.iov_base = (void *)(uintptr_t)(hva + sm[p].off);
        remote.iov_len = sizeof got;
        if (process_vm_readv((pid_t)k->pid, &local, 1, &remote, 1, 0) != (ssize_t)sizeof got) return 0;
        if (memcmp(sm[p].data, got, sizeof got) != 0) return 0;
    }
    return 1;
}

/* qemu-readv: each block's address in QEMU, from /proc/PID/maps
   candidates of its size, each checked by vmi__kvm_probe. */
static vmi_status vmi__kvm_find_hva(vmi__kvm *k) {
    char path[64], *maps = NULL;
    size_t len = 0, cap = 0;
    uint32_t b;
    int fd;
    vmi_status st = VMI_OK;
    snprintf(path, sizeof path, "/proc/%d/maps", (int)k->pid);
    if ((fd = open(path, O_RDONLY)) < 0) return vmi__kvm_fail(k, VMI_ERR_IO, "%s: %s", path, strerror(errno));
    for (;;) {
        ssize_t n;
        if (!vmi__kvm_grow(k, &maps, &cap, len, len + 65536, 64u << 20)) {
            close(fd);
            vmi__kvm_free(k, maps);
            return vmi__kvm_fail(k, VMI_ERR_LIMIT, "%s: too large", path);
        }
        n = read(fd, maps + len, cap - len - 1);
        if (n <= 0) break;
        len += (size_t)n;
    }
    close(fd);
    maps[len] = '\0';
    if ((st = vmi__kvm_gdb(k, "Qqemu.PhyMemMode:1")) != VMI_OK || strcmp(k->pkt, "OK") != 0) {
        vmi__kvm_free(k, maps);
        return st != VMI_OK ? st : vmi__kvm_fail(k, VMI_ERR_UNSUPPORTED, "gdbstub: no Qqemu.PhyMemMode");
    }
    for (b = 0; b < k->nblocks && st == VMI_OK; b++) {
        vmi__kvm_block *bl = &k->blocks[b];
        const char *line = maps;
        vmi__kvm_sample sm[VMI__KVM_PROBES];
        uint32_t nsm = 0;
        int found = 0;
        if ((st = vmi__kvm_samples(k, b, sm, &nsm)) != VMI_OK) break;
        while (line && *line && !found) {
            char *p;
            uint64_t lo = strtoull(line, &p, 16), hi = 0, cand[2];
            int c;
            if (*p == '-') hi = strtoull(p + 1, &p, 16);
            if (hi > lo && hi - lo >= bl->size && p[0] == ' ' && p[1] == 'r' && p[2] == 'w') {
                cand[0] = lo;
                cand[1] = hi - bl->size;
                for (c = 0; c < 2 && !found; c++) {
                    if (c == 1 && cand[1] == cand[0]) break;
                    found = vmi__kvm_probe(k, sm, nsm, cand[c]);
                    if (found) bl->hva = cand[c];
                }
            }
            line = strchr(line, '\n');
            if (line) line++;
        }
        if (st == VMI_OK && !found)
            st = vmi__kvm_fail(k, VMI_ERR_NOT_FOUND, "RAM block %s (%llu bytes) not found in QEMU's memory (pid %d)", bl->id,
                               (unsigned long long)bl->size, (int)k->pid);
    }
    vmi__kvm_free(k, maps);
    if (st == VMI_OK && (st = vmi__kvm_gdb(k, "Qqemu.PhyMemMode:0")) == VMI_OK && strcmp(k->pkt, "OK") != 0)
        st = vmi__kvm_fail(k, VMI_ERR_BACKEND, "gdbstub: Qqemu.PhyMemMode:0 refused");
    return st;
}

/* ---- attach ------------------------------------------------------------------ */

static vmi_status vmi__kvm_target(vmi__kvm *k) {
    vmi__json j;
    char arch[32];
    vmi_status st = vmi__kvm_qmp(k, "query-target", NULL, &j);
    if (st != VMI_OK) return st;
    if (!vmi__kvm_jfind(&j, "arch") || !vmi__kvm_jstr(&j, arch, sizeof arch))
        return vmi__kvm_fail(k, VMI_ERR_FORMAT, "QMP query-target: no arch");
    if (!strcmp(arch, "x86_64")) k->arch = VMI_ARCH_X86_64;
    else if (!strcmp(arch, "i386")) k->arch = VMI_ARCH_X86;
    else if (!strcmp(arch, "aarch64")) k->arch = VMI_ARCH_AARCH64;
    else if (!strcmp(arch, "arm")) k->arch = VMI_ARCH_ARM;
    else return vmi__kvm_fail(k, VMI_ERR_UNSUPPORTED, "QEMU target %s is not supported", arch);
    return VMI_OK;
}

/* The gdbstub's unix socket: QEMU's own (query-chardev "gdb"), or a new
   one on a private path. */
static vmi_status vmi__kvm_gdb_path(vmi__kvm *k, char *path, size_t cap) {
    vmi__json j;
    vmi_status st;
    char *out = NULL, cmd[200];
    int first = 1, e, i;
    if ((st = vmi__kvm_qmp(k, "query-chardev", NULL, &j)) != VMI_OK) return st;
    while ((e = vmi__kvm_jelem(&j, &first)) == 1) {
        char label[64], file[300];
        size_t at = j.pos;
        int ok = vmi__kvm_jfind(&j, "label") && vmi__kvm_jstr(&j, label, sizeof label);
        j.pos = at;
        ok = ok && vmi__kvm_jfind(&j, "filename") && vmi__kvm_jstr(&j, file, sizeof file);
        j.pos = at;
        if (vmi__json_skip(&j, 0) != VMI_OK) return vmi__kvm_fail(k, VMI_ERR_FORMAT, "QMP query-chardev: malformed");
        if (ok && strcmp(label, "gdb") == 0) {
            const char *f = file;
            size_t n;
            if (strncmp(f, "disconnected:", 13) == 0) f += 13;
            if (strncmp(f, "unix:", 5) != 0)
                return vmi__kvm_fail(k, VMI_ERR_UNSUPPORTED,
                                     "QEMU's gdbstub is on %s; only unix sockets are used: start QEMU with "
                                     "-gdb unix:PATH,server=on,wait=off or give vmi_kvm_desc.gdb",
                                     file);
            f += 5;
            n = strcspn(f, ", ");
            if (n >= cap) return vmi__kvm_fail(k, VMI_ERR_LIMIT, "gdbstub socket path too long");
            memcpy(path, f, n);
            path[n] = '\0';
            return VMI_OK;
        }
    }
    if (e < 0) return vmi__kvm_fail(k, VMI_ERR_FORMAT, "QMP query-chardev: malformed");
    /* A private directory: mkdir is exclusive, and 0700 keeps others out. */
    for (i = 0;; i++) {
        snprintf(k->gdb_dir, sizeof k->gdb_dir, "/tmp/vmi-kvm-%d-%u-%d", (int)getpid(), (unsigned)(vmi__now_ms() & 0xffffff), i);
        if (mkdir(k->gdb_dir, 0700) == 0) break;
        if (errno != EEXIST || i > 100) {
            k->gdb_dir[0] = '\0';
            return vmi__kvm_fail(k, VMI_ERR_IO, "mkdir for a gdbstub socket: %s", strerror(errno));
        }
    }
    snprintf(k->gdb_sock, sizeof k->gdb_sock, "%s/gdb.sock", k->gdb_dir);
    snprintf(cmd, sizeof cmd, "gdbserver unix:%s,server=on,wait=off", k->gdb_sock);
    if ((st = vmi__kvm_hmp(k, cmd, &out)) != VMI_OK) return st;
    k->own_gdb = strstr(out, "Waiting for gdb") != NULL;
    if (!k->own_gdb) {
        st = vmi__kvm_fail(k, VMI_ERR_BACKEND, "QEMU did not start a gdbstub: %.200s", out);
        vmi__kvm_free(k, out);
        return st;
    }
    vmi__kvm_free(k, out);
    snprintf(path, cap, "%s", k->gdb_sock);
    return VMI_OK;
}

/* gdb handshake, registers and vCPU threads. */
static vmi_status vmi__kvm_gdb_setup(vmi__kvm *k) {
    vmi_status st;
    uint32_t regnum = 0;
    int more = 1;
    k->gin = (char *)vmi__kvm_calloc(k, VMI__KVM_PKT * 2, 1);
    k->pkt = (char *)vmi__kvm_calloc(k, VMI__KVM_PKT, 1);
    k->threads = (uint32_t *)vmi__kvm_calloc(k, VMI__KVM_MAX_VCPUS, sizeof(uint32_t));
    if (!k->gin || !k->pkt || !k->threads) return vmi__kvm_fail(k, VMI_ERR_NOMEM, "no memory");
    if ((st = vmi__kvm_gdb(k, "qSupported:xmlRegisters=i386,arm")) != VMI_OK) return st;
    if (!strstr(k->pkt, "qXfer:features:read+"))
        return vmi__kvm_fail(k, VMI_ERR_UNSUPPORTED, "gdbstub without target descriptions: \"%.60s\"", k->pkt);
    if ((st = vmi__kvm_gdb(k, "?")) != VMI_OK) return st;
    /* Single-steps without interrupts or timers (QEMU's TCG default; KVM
       may refuse, which only makes steps noisier). */
    if ((st = vmi__kvm_gdb(k, "Qqemu.sstep=0x7")) != VMI_OK) return st;
    if ((st = vmi__kvm_xml_file(k, "target.xml", 0, &regnum)) != VMI_OK) return st;
    if (!k->nregs) return vmi__kvm_fail(k, VMI_ERR_UNSUPPORTED, "gdbstub: no known register in the target XML");
    if ((st = vmi__kvm_gdb(k, "qfThreadInfo")) != VMI_OK) return st;
    while (more) {
        const char *p = k->pkt + 1;
        if (k->pkt[0] == 'l') break;
        if (k->pkt[0] != 'm') return vmi__kvm_fail(k, VMI_ERR_FORMAT, "gdbstub: thread list \"%.20s\"", k->pkt);
        while (*p) {
            char *e;
            unsigned long t = strtoul(p, &e, 16);
            if (e == p) return vmi__kvm_fail(k, VMI_ERR_FORMAT, "gdbstub: thread list \"%.20s\"", k->pkt);
            if (k->nthreads == VMI__KVM_MAX_VCPUS) return vmi__kvm_fail(k, VMI_ERR_LIMIT, "more than %u vCPUs", VMI__KVM_MAX_VCPUS);
            k->threads[k->nthreads++] = (uint32_t)t;
            p = *e == ',' ? e + 1 : e;
            if (*e && *e != ',') return vmi__kvm_fail(k, VMI_ERR_FORMAT, "gdbstub: thread list \"%.20s\"", k->pkt);
        }
        if ((st = vmi__kvm_gdb(k, "qsThreadInfo")) != VMI_OK) return st;
    }
    if (!k->nthreads) return vmi__kvm_fail(k, VMI_ERR_FORMAT, "gdbstub: no vCPU threads");
    return VMI_OK;
}

/* ---- events ----------------------------------------------------------------- */
/* Breakpoints (Z0/Z1), watchpoints (Z2 write, Z3 read, Z4 access) and
   single-steps (vCont;s) through the gdbstub. QEMU stops every vCPU at a
   hit and sends a stop reply (T05thread:NN; with watch:/rwatch:/awatch:ADDR;
   for watchpoints). While the guest runs only the socket is read; commands
   that run it (c, vCont;s) go alone and last. */

static int vmi__kvm_bp_at(const vmi__kvm *k, uint64_t pc) {
    const vmi_event *ev;
    for (ev = k->events; ev; ev = ev->next__)
        if (ev->type == VMI_EVENT_BREAKPOINT && ev->addr == pc) return 1;
    return 0;
}

static vmi_event *vmi__kvm_step_event(const vmi__kvm *k) {
    vmi_event *ev;
    for (ev = k->events; ev; ev = ev->next__)
        if (ev->type == VMI_EVENT_SINGLESTEP) return ev;
    return NULL;
}

/* Inserts (Z) or removes (z) the breakpoint or watchpoint of ev. */
static vmi_status vmi__kvm_z(vmi__kvm *k, const vmi_event *ev, int insert) {
    char body[64];
    unsigned type;
    uint64_t len;
    vmi_status st;
    if (ev->type == VMI_EVENT_BREAKPOINT) {
        type = ev->hardware ? 1 : 0;
        len = vmi__kvm_is_x86(k->arch) ? 1 : 4; /* the instruction's size ("kind") */
    } else if (ev->type == VMI_EVENT_WATCH) {
        type = ev->access == VMI_WATCH_WRITE ? 2 : ev->access == VMI_WATCH_READ ? 3 : 4;
        len = ev->len;
    } else {
        return VMI_OK; /* single-steps live in vCont, not in the guest */
    }
    snprintf(body, sizeof body, "%c%u,%llx,%llx", insert ? 'Z' : 'z', type, (unsigned long long)ev->addr,
             (unsigned long long)len);
    if ((st = vmi__kvm_gdb(k, body)) != VMI_OK) return st;
    if (strcmp(k->pkt, "OK") == 0) return VMI_OK;
    if (!k->pkt_len) return vmi__kvm_fail(k, VMI_ERR_UNSUPPORTED, "gdbstub: QEMU does not offer %.3s here", body);
    return vmi__kvm_fail(k, VMI_ERR_BACKEND, "gdbstub: QEMU refused %s (\"%.20s\")", body, k->pkt);
}

/* z or Z for every breakpoint at pc. */
static vmi_status vmi__kvm_bps_at(vmi__kvm *k, uint64_t pc, int insert) {
    const vmi_event *ev;
    vmi_status st;
    for (ev = k->events; ev; ev = ev->next__)
        if (ev->type == VMI_EVENT_BREAKPOINT && ev->addr == pc && (st = vmi__kvm_z(k, ev, insert)) != VMI_OK) return st;
    return VMI_OK;
}

/* Sends a command that runs the guest. Every reply before it was read and
   acknowledged, so no byte of ours follows it into a running guest. */
static vmi_status vmi__kvm_gdb_run(vmi__kvm *k, const char *body) {
    char buf[64];
    size_t n = vmi__kvm_gdb_frame(buf, sizeof buf, body);
    return vmi__kvm_send(k, k->gdb_fd, "gdbstub", buf, n);
}

static vmi_status vmi__kvm_step_cmd(vmi__kvm *k, uint32_t vcpu) {
    char body[32];
    snprintf(body, sizeof body, "vCont;s:%x", (unsigned)k->threads[vcpu]);
    return vmi__kvm_gdb_run(k, body);
}

/* One instruction of vcpu with its breakpoints at pc lifted (KVM's are
   int3 in guest memory); its stop reply ends in k->stop. A step that does
   not end in time is stopped through QMP. */
static vmi_status vmi__kvm_step_over(vmi__kvm *k, uint32_t vcpu, uint64_t pc) {
    vmi_status st, st2;
    if ((st = vmi__kvm_bps_at(k, pc, 0)) != VMI_OK) return st;
    st = vmi__kvm_step_cmd(k, vcpu);
    if (st == VMI_OK) st = vmi__kvm_gdb_reply(k, vmi__now_ms() + k->timeout_ms, 1);
    if (st == VMI_ERR_TIMEOUT && !k->dead && vmi__kvm_set_running(k, 0) == VMI_OK)
        st = vmi__kvm_fail(k, VMI_ERR_TIMEOUT, "gdbstub: a step over the breakpoint at 0x%llx did not end",
                           (unsigned long long)pc);
    if (st == VMI_OK) snprintf(k->stop, sizeof k->stop, "%s", k->pkt);
    if (k->dead) return st;
    st2 = vmi__kvm_bps_at(k, pc, 1);
    return st != VMI_OK ? st : st2;
}

/* Continues a stopped guest: not at all while a kept trap waits for
   event_wait; else past the breakpoint it was reported at; then one step
   of the single-stepped vCPU, or every vCPU on. */
static vmi_status vmi__kvm_go(vmi__kvm *k) {
    vmi_event *step;
    vmi_status st;
    if ((st = vmi__kvm_gdb_drain(k)) != VMI_OK) return st;
    if (k->pending) return VMI_OK;
    step = vmi__kvm_step_event(k);
    if (k->delivered && k->hit_bp && vmi__kvm_bp_at(k, k->hit_pc) && (!step || (uint32_t)step->vcpu == k->hit_vcpu)) {
        k->delivered = 0;
        if ((st = vmi__kvm_step_over(k, k->hit_vcpu, k->hit_pc)) != VMI_OK) return st;
        if (step || strstr(k->stop, "watch:")) { /* that step was the user's, or hit a watchpoint */
            if (step) k->stepping = (int32_t)k->hit_vcpu;
            k->pending = 1;
            return VMI_OK;
        }
    }
    k->delivered = 0;
    if (step) {
        k->stepping = step->vcpu;
        return vmi__kvm_step_cmd(k, (uint32_t)step->vcpu);
    }
    return vmi__kvm_gdb_run(k, "c");
}

/* The vCPU and watched address of the stop reply in k->stop. */
static vmi_status vmi__kvm_parse_stop(vmi__kvm *k, uint32_t *vcpu, uint64_t *waddr, uint32_t *access) {
    const char *p = k->stop + 3;
    unsigned long tid = k->threads[0];
    uint32_t i;
    *waddr = 0;
    *access = 0;
    while (*p) {
        const char *colon = strchr(p, ':'), *end;
        if (!colon) break;
        end = strchr(colon, ';');
        if (!end) end = colon + strlen(colon);
        if (colon - p == 6 && strncmp(p, "thread", 6) == 0) {
            const char *t = colon + 1, *dot = (const char *)memchr(t, '.', (size_t)(end - t));
            tid = strtoul(dot ? dot + 1 : t, NULL, 16); /* "pP.T" with multiprocess */
        } else if (colon - p >= 5 && strncmp(colon - 5, "watch", 5) == 0) {
            *access = colon - p == 5 ? VMI_WATCH_WRITE : *p == 'r' ? VMI_WATCH_READ : VMI_WATCH_READ | VMI_WATCH_WRITE;
            *waddr = strtoull(colon + 1, NULL, 16);
        }
        p = *end ? end + 1 : end;
    }
    for (i = 0; i < k->nthreads; i++)
        if (k->threads[i] == tid) {
            *vcpu = i;
            return VMI_OK;
        }
    return vmi__kvm_fail(k, VMI_ERR_FORMAT, "gdbstub: a stop on unknown thread %lx (\"%.60s\")", tid, k->stop);
}

/* Which armed event the kept stop is: VMI_ERR_NOT_FOUND when none. */
static vmi_status vmi__kvm_deliver(vmi__kvm *k, vmi_event_hit *hit) {
    uint32_t vcpu = 0, access;
    uint64_t waddr, pc;
    int stepped;
    vmi_event *ev;
    vmi_status st = vmi__kvm_parse_stop(k, &vcpu, &waddr, &access);
    stepped = k->stepping == (int32_t)vcpu;
    k->stepping = -1;
    if (st != VMI_OK) return st;
    if ((st = vmi__kvm_read_regs(k, vcpu, &hit->regs)) != VMI_OK) return st;
    pc = vmi__kvm_is_x86(k->arch) ? hit->regs.x86.rip
         : k->arch == VMI_ARCH_AARCH64 ? hit->regs.arm64.pc : hit->regs.arm.r[15];
    for (ev = k->events; ev; ev = ev->next__) {
        if (access ? ev->type == VMI_EVENT_WATCH && ev->access == access && waddr >= ev->addr && waddr - ev->addr < ev->len
            : stepped ? ev->type == VMI_EVENT_SINGLESTEP && (uint32_t)ev->vcpu == vcpu
                      : ev->type == VMI_EVENT_BREAKPOINT && ev->addr == pc)
            break;
    }
    if (!ev) return VMI_ERR_NOT_FOUND; /* cleared since: the guest goes on */
    hit->vcpu = vcpu;
    hit->addr = access ? waddr : pc;
    hit->event = ev;
    k->delivered = 1;
    k->hit_bp = ev->type == VMI_EVENT_BREAKPOINT;
    k->hit_vcpu = vcpu;
    k->hit_pc = pc;
    return VMI_OK;
}

static vmi_status vmi__kvm_event_wait(void *ctx, int timeout_ms, vmi_event_hit *hit) {
    vmi__kvm *k = (vmi__kvm *)ctx;
    uint64_t deadline = vmi__now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    vmi_status st;
    if ((st = vmi__kvm_usable(k)) != VMI_OK) return st;
    for (;;) {
        if (!k->pending) {
            /* waits in slices, looking at QMP in between for a reset */
            uint64_t now = vmi__now_ms(), slice = deadline < now + 250 ? deadline : now + 250;
            st = vmi__kvm_gdb_reply(k, slice, 1);
            if (st == VMI_ERR_TIMEOUT && slice < deadline) {
                if ((st = vmi__kvm_usable(k)) != VMI_OK) return st;
                continue;
            }
            if (st != VMI_OK) return st;
            if (k->pkt_len < 3 || memcmp(k->pkt, "T05", 3) != 0) continue; /* T02: a QMP stop */
            snprintf(k->stop, sizeof k->stop, "%s", k->pkt);
        }
        k->pending = 0;
        st = vmi__kvm_deliver(k, hit);
        if (st != VMI_ERR_NOT_FOUND) return st;
        if ((st = vmi__kvm_go(k)) != VMI_OK) return st;
    }
}

static vmi_status vmi__kvm_event_set(void *ctx, vmi_event *ev) {
    vmi__kvm *k = (vmi__kvm *)ctx;
    const vmi_event *o;
    vmi_status st;
    int was;
    if (ev->type == VMI_EVENT_SINGLESTEP && (uint32_t)ev->vcpu >= k->nthreads)
        return vmi__kvm_fail(k, VMI_ERR_ARG, "single-step on vCPU %d of %u", (int)ev->vcpu, k->nthreads);
    for (o = k->events; o; o = o->next__) {
        if (o->type != ev->type) continue;
        if (ev->type == VMI_EVENT_SINGLESTEP) return vmi__kvm_fail(k, VMI_ERR_ARG, "a single-step is already armed");
        if (o->addr == ev->addr && (ev->type == VMI_EVENT_BREAKPOINT || (o->len == ev->len && o->access == ev->access)))
            return vmi__kvm_fail(k, VMI_ERR_ARG, "an event at 0x%llx is already armed", (unsigned long long)ev->addr);
    }
    if ((st = vmi__kvm_hold(k, &was)) != VMI_OK) return st;
    if ((st = vmi__kvm_z(k, ev, 1)) == VMI_OK) {
        ev->next__ = k->events;
        k->events = ev;
    }
    return vmi__kvm_release(k, was, st);
}

static vmi_status vmi__kvm_event_clear(void *ctx, vmi_event *ev) {
    vmi__kvm *k = (vmi__kvm *)ctx;
    vmi_event **pp;
    vmi_status st;
    int was;
    for (pp = &k->events; *pp && *pp != ev; pp = &(*pp)->next__) {
    }
    if (!*pp) return vmi__kvm_fail(k, VMI_ERR_ARG, "the event is not armed here");
    st = vmi__kvm_hold(k, &was);
    if (st == VMI_OK) st = vmi__kvm_z(k, ev, 0);
    *pp = ev->next__; /* forgotten whatever QEMU said */
    ev->next__ = NULL;
    if (!k->events) {
        /* Nothing left to report: a stop kept for event_wait, or a last step
           that ended, would hold the guest for nobody. */
        k->pending = 0;
        k->stepping = -1;
        if (!was && !k->delivered && !k->paused && !k->dead) {
            vmi_status st2 = vmi__kvm_set_running(k, 1);
            return st != VMI_OK ? st : st2;
        }
        return vmi__kvm_release(k, was, st);
    }
    return vmi__kvm_release(k, was, st);
}

/* On close: QEMU keeps a gdbstub's breakpoints after the debugger left, so
   they are removed, and a guest stopped at an event runs on unless paused. */
static void vmi__kvm_drop_events(vmi__kvm *k) {
    vmi_event *ev;
    int was;
    uint32_t t = k->timeout_ms;
    if (k->dead || k->gdb_fd < 0 || (!k->events && !k->delivered && !k->pending)) return;
    k->timeout_ms = t < 1000 ? t : 1000;
    if (vmi__kvm_hold(k, &was) == VMI_OK) {
        for (ev = k->events; ev && !k->dead; ev = ev->next__) (void)vmi__kvm_z(k, ev, 0);
        k->events = NULL;
        if (!k->paused && !k->dead) (void)vmi__kvm_set_running(k, 1);
    }
    k->timeout_ms = t;
}

static const char *vmi__kvm_last_error(void *ctx) { return ((vmi__kvm *)ctx)->err; }

static void vmi__kvm_destroy(vmi__kvm *k) {
    uint32_t b;
    vmi__kvm_drop_events(k);
    if (k->gdb_fd >= 0) close(k->gdb_fd);
    if (k->own_gdb && k->qmp_fd >= 0 && !k->dead) {
        char *out = NULL;
        uint32_t t = k->timeout_ms;
        k->timeout_ms = t < 1000 ? t : 1000;
        if (vmi__kvm_hmp(k, "gdbserver none", &out) == VMI_OK) vmi__kvm_free(k, out);
        k->timeout_ms = t;
    }
    if (k->gdb_sock[0]) unlink(k->gdb_sock);
    if (k->gdb_dir[0]) rmdir(k->gdb_dir);
    if (k->qmp_fd >= 0) close(k->qmp_fd);
    for (b = 0; b < k->nblocks; b++)
        if (k->blocks[b].map) munmap(k->blocks[b].map, (size_t)k->blocks[b].size);
    vmi__kvm_free(k, k->qin);
    vmi__kvm_free(k, k->line);
    vmi__kvm_free(k, k->gin);
    vmi__kvm_free(k, k->pkt);
    vmi__kvm_free(k, k->ranges);
    vmi__kvm_free(k, k->range_block);
    vmi__kvm_free(k, k->range_off);
    vmi__kvm_free(k, k->threads);
    k->alloc.free(k, k->alloc.user);
}

static void vmi__kvm_close(void *ctx) { vmi__kvm_destroy((vmi__kvm *)ctx); }

static vmi_status vmi__kvm_attach(vmi__kvm *k, const vmi_kvm_desc *desc) {
    char gdb[108];
    vmi__json j;
    size_t len;
    int was = 0, use_shm = 1;
    uint32_t b;
    vmi_status st;
    if ((st = vmi__kvm_connect(k, desc->qmp, "QMP", &k->qmp_fd, &k->pid)) != VMI_OK) return st;
    if ((st = vmi__kvm_qmp_line(k, vmi__now_ms() + k->timeout_ms, &len)) != VMI_OK) return st;
    if (strncmp(k->line, "{\"QMP\"", 6) != 0)
        return vmi__kvm_fail(k, VMI_ERR_FORMAT, "%s: no QMP greeting (\"%.30s\")", desc->qmp, k->line);
    if ((st = vmi__kvm_qmp(k, "qmp_capabilities", NULL, &j)) != VMI_OK ||
        (st = vmi__kvm_target(k)) != VMI_OK || (st = vmi__kvm_find_blocks(k)) != VMI_OK ||
        (st = vmi__kvm_memory_map(k)) != VMI_OK)
        return st;
    for (b = 0; b < k->nblocks; b++) use_shm = use_shm && k->blocks[b].shared;
    k->readv = desc->force_readv || !use_shm;
    if (!k->readv && (st = vmi__kvm_map_files(k)) != VMI_OK) return st;
    if (desc->gdb) snprintf(gdb, sizeof gdb, "%s", desc->gdb);
    else if ((st = vmi__kvm_gdb_path(k, gdb, sizeof gdb)) != VMI_OK) return st;
    /* Stop first, so that no byte of ours reaches a running gdbstub. */
    if ((st = vmi__kvm_hold(k, &was)) != VMI_OK) return st;
    if ((st = vmi__kvm_connect(k, gdb, "gdbstub", &k->gdb_fd, NULL)) == VMI_OK &&
        (st = vmi__kvm_gdb_setup(k)) == VMI_OK && k->readv)
        st = vmi__kvm_find_hva(k);
    if (st == VMI_OK && k->gdb_fd >= 0) st = vmi__kvm_gdb_drain(k);
    if (was && !k->dead) {
        vmi_status st2 = vmi__kvm_set_running(k, 1);
        if (st == VMI_OK) st = st2;
    }
    k->paused = !was;
    return st;
}

VMI_API vmi_status vmi_kvm_open(const vmi_kvm_desc *desc, vmi_backend *out, char *err, size_t errlen) {
    vmi_allocator a;
    vmi__kvm *k;
    vmi_status st;
    if (err && errlen) err[0] = '\0';
    if (!desc || !out || !desc->qmp) {
        if (err && errlen) snprintf(err, errlen, "vmi_kvm_open: desc->qmp is required");
        return VMI_ERR_ARG;
    }
    a = desc->allocator;
    if (!a.alloc && !a.free) {
        a.alloc = vmi__default_alloc;
        a.free = vmi__default_free;
        a.user = NULL;
    } else if (!a.alloc || !a.free) {
        if (err && errlen) snprintf(err, errlen, "vmi_kvm_open: set both allocator.alloc and .free");
        return VMI_ERR_ARG;
    }
    k = (vmi__kvm *)a.alloc(sizeof *k, a.user);
    if (!k) {
        if (err && errlen) snprintf(err, errlen, "vmi_kvm_open: out of memory");
        return VMI_ERR_NOMEM;
    }
    memset(k, 0, sizeof *k);
    k->alloc = a;
    k->qmp_fd = k->gdb_fd = -1;
    k->timeout_ms = desc->timeout_ms ? desc->timeout_ms : 5000;
    k->writable = desc->writable != 0;
    k->stepping = -1;
    st = vmi__kvm_attach(k, desc);
    if (st != VMI_OK) {
        if (err && errlen) snprintf(err, errlen, "%s", k->err);
        vmi__kvm_destroy(k);
        return st;
    }
    memset(out, 0, sizeof *out);
    out->name = "kvm";
    out->format = k->readv ? "qemu-readv" : "qemu-shm";
    out->arch = k->arch;
    out->flags = VMI_BACKEND_LIVE | (k->writable ? VMI_BACKEND_WRITABLE : 0u);
    out->ctx = k;
    out->ranges = k->ranges;
    out->nranges = k->nranges;
    out->read_pa = vmi__kvm_read_pa;
    out->write_pa = vmi__kvm_write_pa;
    out->vcpu_count = vmi__kvm_vcpu_count;
    out->get_regs = vmi__kvm_get_regs;
    out->set_regs = vmi__kvm_set_regs;
    out->pause = vmi__kvm_pause;
    out->resume = vmi__kvm_resume;
    out->event_set = vmi__kvm_event_set;
    out->event_clear = vmi__kvm_event_clear;
    out->event_wait = vmi__kvm_event_wait;
    out->last_error = vmi__kvm_last_error;
    out->close = vmi__kvm_close;
    k->err[0] = '\0';
    return VMI_OK;
}

#endif /* VMI_KVM_IMPL_INCLUDED */
#endif /* VMI_KVM_IMPLEMENTATION || VMI_IMPLEMENTATION */
