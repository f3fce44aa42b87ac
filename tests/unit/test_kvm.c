/* test_kvm.c - vmi_kvm.h against real QEMU guests under TCG.

   Boots lab guests (tests/guests/lab.py boot ARCH --live; default x86_64
   and arm64, both at once) and checks, per guest: attach through QMP, the
   memory map, linux_banner through the zero-copy mapping and through
   process_vm_readv (force_readv), registers and the paging mode they give,
   nested pause/resume (seen in the guest's own jiffies), processes on the
   live guest, two guests attached at once, and QEMU killed while attached.
   Every lab QEMU is stopped with SIGTERM to its lab.py, also on failure.
   Usage: test_kvm [ARCH...]   (run from the repository root) */
#define _POSIX_C_SOURCE 200809L /* kill, fdopen */
#define VMI_IMPLEMENTATION
#include "vmi.h"
#include "vmi_kvm.h"
#include "test.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "live_guest.h"

static vmi_status open_guest(guest *g, int readv, vmi_instance **vmi, double *secs) {
    vmi_kvm_desc kd;
    vmi_desc d;
    char err[512];
    double t0 = now_s();
    vmi_status st;
    memset(&kd, 0, sizeof kd);
    memset(&d, 0, sizeof d);
    kd.qmp = g->qmp;
    kd.force_readv = readv;
    st = vmi_kvm_open(&kd, &d.backend, err, sizeof err);
    if (secs) *secs = now_s() - t0;
    if (st != VMI_OK) {
        fprintf(stderr, "vmi_kvm_open(%s%s): %s: %s\n", g->qmp, readv ? ", readv" : "", vmi_status_string(st), err);
        return st;
    }
    return vmi_open(&d, vmi);
}

/* Does the guest run? Its jiffies move (x86_64: the symbol is known), or
   else its RAM changes within a second (arm64 kallsyms has no data). */
static uint64_t jiffies(vmi_instance *vmi, uint64_t va) {
    uint64_t v = 0;
    vmi_flush_caches(vmi);
    vmi_read_kva(vmi, va, &v, sizeof v, NULL);
    return v;
}

static int running(vmi_instance *vmi, uint64_t va) {
    const vmi_mem_range *m;
    size_t n;
    char *snap;
    int moved;
    if (va) { /* a tickless idle guest may hold jiffies for a while */
        uint64_t a = jiffies(vmi, va);
        int t;
        for (t = 0; t < 15; t++) {
            poll(NULL, 0, 100);
            if (jiffies(vmi, va) != a) return 1;
        }
        return 0;
    }
    m = vmi_memory_map(vmi, &n);
    snap = (char *)malloc((size_t)m[0].size);
    memcpy(snap, m[0].host, (size_t)m[0].size);
    poll(NULL, 0, 1000);
    moved = memcmp(snap, m[0].host, (size_t)m[0].size) != 0;
    free(snap);
    return moved;
}

typedef struct proc_seen { char names[512][32]; int64_t pids[512]; int n; } proc_seen;
static int collect(void *user, const vmi_process *p) {
    proc_seen *s = (proc_seen *)user;
    if (s->n < 512) {
        memcpy(s->names[s->n], p->name, 32);
        s->pids[s->n++] = p->pid;
    }
    return 0;
}

/* Every truth process (pid, comm) is in the live list. */
static void check_processes(guest *g, vmi_instance *vmi) {
    static proc_seen seen;
    vmi__json j;
    int first = 1, e, missing = 0, total = 0;
    memset(&seen, 0, sizeof seen);
    CHECK_ST(vmi_foreach_process(vmi, 0, collect, &seen), VMI_OK);
    j.s = g->truth_json; j.n = g->truth_len; j.pos = 0; j.err = NULL; j.errlen = 0;
    if (!vmi__kvm_jfind(&j, "processes")) {
        CHECK(0, "truth.json has no processes");
        return;
    }
    while ((e = vmi__kvm_jelem(&j, &first)) == 1) {
        size_t at = j.pos;
        char comm[64];
        uint64_t pid = 0;
        int k, found = 0;
        vmi__kvm_jfind(&j, "pid");
        vmi__json_u64(&j, &pid);
        j.pos = at;
        vmi__kvm_jfind(&j, "comm");
        vmi__kvm_jstr(&j, comm, sizeof comm);
        j.pos = at;
        vmi__json_skip(&j, 0);
        total++;
        for (k = 0; k < seen.n; k++)
            if (seen.pids[k] == (int64_t)pid && strncmp(seen.names[k], comm, strlen(seen.names[k])) == 0 &&
                (comm[strlen(seen.names[k])] == '\0' || comm[strlen(seen.names[k])] == '-' || strlen(seen.names[k]) == 15))
                found = 1; /* /proc shows kworkers with their current work after a '-' */
        if (!found) {
            missing++;
            fprintf(stderr, "  process %llu %s not in the live list\n", (unsigned long long)pid, comm);
        }
    }
    CHECK(total > 10 && missing == 0, "expected all %d truth processes, %d missing (live list: %d)", total, missing, seen.n);
}

static void test_guest(guest *g) {
    vmi_instance *vmi = NULL, *rv = NULL;
    const vmi_mem_range *m;
    vmi_regs r;
    vmi_paging pg;
    char banner[512], got[512];
    uint64_t va = 0, pa = 0, jva = 0;
    size_t n, blen;
    double secs, t0;
    int i;
    test_context("%s attach", g->arch);
    if (!CHECK_ST(open_guest(g, 0, &vmi, &secs), VMI_OK)) return;
    printf("%s: attach (qemu-shm) %.1f ms\n", g->arch, secs * 1e3);
    CHECK_STR(vmi_get_backend(vmi)->format, "qemu-shm");
    CHECK_EQ(vmi_get_backend(vmi)->flags, VMI_BACKEND_LIVE);
    m = vmi_memory_map(vmi, &n);
    test_context("%s memory map", g->arch);
    CHECK_EQ(n, 1);
    CHECK_EQ(m[0].pa, g->ram_base);
    CHECK_EQ(m[0].size, g->ram_size);
    CHECK(m[0].host != NULL, "expected a host pointer");

    test_context("%s registers", g->arch);
    CHECK_ST(vmi_get_regs(vmi, 0, &r), VMI_OK);
    CHECK_ST(vmi_paging_from_regs(&r, &pg), VMI_OK);
    if (!strncmp(g->arch, "i386", 4)) {
        CHECK_EQ(r.valid, VMI_REGS_GPR | VMI_REGS_SEGMENT | VMI_REGS_CONTROL);
        CHECK(r.x86.cr0 & 0x80000001u, "cr0 0x%llx: PG|PE", (unsigned long long)r.x86.cr0);
        CHECK(r.x86.rip >= 0xc0000000u, "eip 0x%llx in the kernel's 1 GiB", (unsigned long long)r.x86.rip);
        CHECK_STR(vmi_paging_mode_name(pg.mode), strcmp(g->arch, "i386-pae") ? "legacy" : "pae");
    } else if (!strcmp(g->arch, "x86_64")) {
        CHECK_EQ(r.valid, VMI_REGS_GPR | VMI_REGS_SEGMENT | VMI_REGS_CONTROL);
        CHECK(r.x86.cr0 & 0x80000001u, "cr0 0x%llx: PG|PE", (unsigned long long)r.x86.cr0);
        CHECK(r.x86.cr4 & 0x20u, "cr4 0x%llx: PAE", (unsigned long long)r.x86.cr4);
        CHECK_EQ(r.x86.efer & 0x500u, 0x500u);
        CHECK(r.x86.rip >> 63, "rip 0x%llx in the kernel half", (unsigned long long)r.x86.rip);
        CHECK_STR(vmi_paging_mode_name(pg.mode), "ia32e");
    } else {
        CHECK_EQ(r.valid, VMI_REGS_GPR | VMI_REGS_CONTROL);
        CHECK(r.arm64.ttbr1 && r.arm64.tcr && (r.arm64.sctlr & 1), "TTBR1 0x%llx TCR 0x%llx SCTLR 0x%llx",
              (unsigned long long)r.arm64.ttbr1, (unsigned long long)r.arm64.tcr, (unsigned long long)r.arm64.sctlr);
        CHECK_STR(vmi_paging_mode_name(pg.mode), "aarch64");
    }

    test_context("%s banner", g->arch);
    CHECK(json_str(g->truth_json, g->truth_len, "banner", banner, sizeof banner), "truth banner");
    blen = strcspn(banner, "\n");
    banner[blen] = '\0';
    {   /* kernels without BTF: the lab's committed profile (xz), when xz is here */
        const char *files[2] = {"vmlinux.btf", "System.map"};
        int f;
        for (f = 0; f < 2; f++) {
            char cmd[512], out[128];
            snprintf(out, sizeof out, "/tmp/test_kvm-%d-%s", (int)getpid(), files[f]);
            snprintf(cmd, sizeof cmd, "test -f tests/guests/profiles/%s/%s.xz && xz -dc tests/guests/profiles/%s/%s.xz > %s",
                     g->arch, files[f], g->arch, files[f], out);
            if (system(cmd) == 0) CHECK_ST(vmi_load_profile(vmi, out), VMI_OK);
            unlink(out);
        }
    }
    CHECK_ST(vmi_os_init(vmi), VMI_OK);
    CHECK_STR(vmi_os_get_info(vmi)->version, banner);
    if (vmi_ksym(vmi, "linux_banner", &va) != VMI_OK) {
        char s[64];
        vmi__json j;
        j.s = g->truth_json; j.n = g->truth_len; j.pos = 0; j.err = NULL; j.errlen = 0;
        if (vmi__kvm_jfind(&j, "kallsyms") && vmi__kvm_jfind(&j, "linux_banner") && vmi__kvm_jstr(&j, s, sizeof s))
            va = strtoull(s, NULL, 16);
    }
    if (va && CHECK_ST(vmi_translate_kva(vmi, va, &pa), VMI_OK)) {
        memset(got, 0, sizeof got);
        memcpy(got, (const char *)m[0].host + (pa - m[0].pa), blen); /* the zero-copy mapping itself */
        CHECK_STR(got, banner);
    } else {
        /* arm64: kallsyms has text only; find the banner in RAM through the mapping */
        const char *h = (const char *)m[0].host;
        size_t k;
        for (k = 0; k + blen < m[0].size && memcmp(h + k, banner, blen) != 0; k++) {
        }
        CHECK(k + blen < m[0].size, "banner in the mapping");
        pa = m[0].pa + k;
    }

    test_context("%s pause/resume", g->arch);
    if (vmi_ksym(vmi, "jiffies_64", &jva) != VMI_OK && vmi_ksym(vmi, "jiffies", &jva) != VMI_OK) jva = 0;
    {
        CHECK(running(vmi, jva), "guest running after attach");
        CHECK(running(vmi, jva), "guest running after a register read");
        t0 = now_s();
        for (i = 0; i < 20; i++) {
            vmi_pause(vmi);
            vmi_resume(vmi);
        }
        printf("%s: pause+resume %.2f ms\n", g->arch, (now_s() - t0) / 20 * 1e3);
        CHECK_ST(vmi_pause(vmi), VMI_OK);
        CHECK_ST(vmi_pause(vmi), VMI_OK);
        CHECK(!running(vmi, jva), "paused after two pauses");
        CHECK_ST(vmi_get_regs(vmi, 0, &r), VMI_OK);
        CHECK(!running(vmi, jva), "still paused after a register read");
        CHECK_ST(vmi_resume(vmi), VMI_OK);
        CHECK(!running(vmi, jva), "still paused after one resume of two");
        CHECK_ST(vmi_resume(vmi), VMI_OK);
        CHECK(running(vmi, jva), "running after the second resume");
    }
    t0 = now_s();
    for (i = 0; i < 20; i++) vmi_get_regs(vmi, 0, &r);
    printf("%s: get_regs on a running guest %.2f ms\n", g->arch, (now_s() - t0) / 20 * 1e3);

    test_context("%s processes", g->arch);
    check_processes(g, vmi);

    /* zero-copy throughput vs memcpy of the same mapping (second passes) */
    {
        size_t len = (size_t)m[0].size;
        char *buf = (char *)malloc(len);
        double a, b;
        int pass;
        for (pass = 0; pass < 2; pass++) {
            t0 = now_s();
            CHECK_ST(vmi_read_pa(vmi, m[0].pa, buf, len, NULL), VMI_OK);
            a = now_s() - t0;
            t0 = now_s();
            memcpy(buf, m[0].host, len);
            b = now_s() - t0;
        }
        CHECK(buf[len / 2] == ((const char *)m[0].host)[len / 2] || 1, "touch");
        printf("%s: all RAM (%zu MiB) through vmi_read_pa (qemu-shm) %.0f MB/s; memcpy of the mapping %.0f MB/s\n",
               g->arch, len >> 20, len / a / 1e6, len / b / 1e6);
        free(buf);
    }
    vmi_close(vmi);

    test_context("%s readv", g->arch);
    if (!CHECK_ST(open_guest(g, 1, &rv, &secs), VMI_OK)) return;
    printf("%s: attach (qemu-readv, with the address check) %.1f ms\n", g->arch, secs * 1e3);
    CHECK_STR(vmi_get_backend(rv)->format, "qemu-readv");
    memset(got, 0, sizeof got);
    CHECK_ST(vmi_read_pa(rv, pa, got, blen, NULL), VMI_OK);
    CHECK_STR(got, banner);
    {
        size_t len = 16u << 20;
        char *buf = (char *)malloc(len);
        vmi_desc *unused = NULL;
        (void)unused;
        t0 = now_s();
        CHECK_ST(vmi_read_pa(rv, g->ram_base, buf, len, NULL), VMI_OK);
        printf("%s: readv path %.0f MB/s (16 MiB through the page cache)\n", g->arch, len / (now_s() - t0) / 1e6);
        free(buf);
    }
    vmi_close(rv);
}

/* Two guests attached at once, then QEMU killed under one of them. */
static void test_two_and_kill(guest *a, guest *b) {
    vmi_instance *va = NULL, *vb = NULL;
    vmi_regs r;
    double t0;
    vmi_status st;
    char buf[64];
    test_context("two guests at once");
    if (!CHECK_ST(open_guest(a, 1, &va, NULL), VMI_OK) || !CHECK_ST(open_guest(b, 0, &vb, NULL), VMI_OK)) {
        vmi_close(va);
        return;
    }
    CHECK_ST(vmi_get_regs(va, 0, &r), VMI_OK);
    CHECK_EQ(r.arch, vmi_get_backend(va)->arch);
    CHECK_ST(vmi_get_regs(vb, 0, &r), VMI_OK);
    CHECK_EQ(r.arch, vmi_get_backend(vb)->arch);
    CHECK(r.arch != vmi_get_backend(va)->arch, "two different architectures");
    test_context("QEMU killed while attached (%s, readv)", a->arch);
    kill(a->qemu_pid, SIGKILL);
    poll(NULL, 0, 200);
    t0 = now_s();
    vmi_flush_caches(va);
    st = vmi_read_pa(va, a->ram_base + 0x10000, buf, sizeof buf, NULL);
    CHECK_ST(st, VMI_ERR_BACKEND);
    printf("after kill: read_pa: %s (%s)\n", vmi_status_string(st), vmi_last_error(va));
    st = vmi_get_regs(va, 0, &r);
    CHECK_ST(st, VMI_ERR_BACKEND);
    printf("after kill: get_regs: %s (%s)\n", vmi_status_string(st), vmi_last_error(va));
    CHECK(now_s() - t0 < 3, "errors within 3 s, took %.1f s", now_s() - t0);
    vmi_close(va);
    test_context("the other guest after the kill");
    CHECK_ST(vmi_get_regs(vb, 0, &r), VMI_OK);
    vmi_close(vb);
}

/* Plain QEMU (RAM from -m, no gdbstub, SeaBIOS only): the readv path with
   a gdbstub started through QMP, writes, and the bytes checked against
   QEMU's own pmemsave. */
static void test_plain_qemu(void) {
    char dir[] = "/tmp/test-kvm-XXXXXX", qmp[64], mem[64], err[512], gdb_dir[80];
    vmi_kvm_desc kd;
    vmi_desc d;
    vmi_instance *vmi = NULL;
    const vmi_mem_range *m;
    size_t n, size = 64u << 20;
    uint32_t count = 0;
    vmi_regs r;
    struct stat sb;
    char *buf, *file;
    const char mark[16] = "vmi_kvm wrote me";
    pid_t q;
    int i;
    FILE *f;
    test_context("plain QEMU -m 64M");
    if (!mkdtemp(dir)) return;
    snprintf(qmp, sizeof qmp, "%s/qmp.sock", dir);
    snprintf(mem, sizeof mem, "%s/mem", dir);
    q = fork();
    if (q == 0) {
        char arg[160];
        snprintf(arg, sizeof arg, "unix:%s,server=on,wait=off", qmp);
        execlp("qemu-system-x86_64", "qemu-system-x86_64", "-m", "64M", "-nodefaults", "-display", "none", "-accel",
               "tcg", "-qmp", arg, (char *)NULL);
        _exit(127);
    }
    for (i = 0; i < 100 && stat(qmp, &sb) != 0; i++) poll(NULL, 0, 100);
    poll(NULL, 0, 500); /* SeaBIOS fills some memory */
    memset(&kd, 0, sizeof kd);
    memset(&d, 0, sizeof d);
    kd.qmp = qmp;
    kd.writable = 1;
    if (!CHECK_ST(vmi_kvm_open(&kd, &d.backend, err, sizeof err), VMI_OK)) {
        fprintf(stderr, "  %s\n", err);
        kill(q, SIGKILL);
        waitpid(q, NULL, 0);
        return;
    }
    snprintf(gdb_dir, sizeof gdb_dir, "%s", ((vmi__kvm *)d.backend.ctx)->gdb_dir);
    CHECK(gdb_dir[0] && stat(gdb_dir, &sb) == 0 && (sb.st_mode & 0777) == 0700, "a private 0700 gdbstub directory: %s", gdb_dir);
    CHECK_ST(vmi_open(&d, &vmi), VMI_OK);
    CHECK_STR(vmi_get_backend(vmi)->format, "qemu-readv");
    CHECK_EQ(vmi_get_backend(vmi)->flags, VMI_BACKEND_LIVE | VMI_BACKEND_WRITABLE);
    m = vmi_memory_map(vmi, &n);
    CHECK(n >= 1 && m[0].pa == 0 && !m[0].host, "map starts at 0 without host pointers");
    CHECK_EQ(vmi_memory_size(vmi), size);
    CHECK_ST(vmi_vcpu_count(vmi, &count), VMI_OK);
    CHECK_EQ(count, 1);
    CHECK_ST(vmi_get_regs(vmi, 0, &r), VMI_OK);
    CHECK(r.valid & VMI_REGS_CONTROL, "control registers");
    CHECK_ST(vmi_pause(vmi), VMI_OK);
    CHECK_ST(vmi_write_pa(vmi, 0x500000, mark, sizeof mark, NULL), VMI_OK);
    buf = (char *)calloc(1, size);
    CHECK_ST(vmi_read_pa(vmi, 0, buf, size, NULL), VMI_OK);
    vmi_close(vmi); /* the guest stays paused */
    CHECK(stat(gdb_dir, &sb) != 0, "gdbstub directory removed on close");
    {   /* our own QMP: pmemsave, then quit */
        struct sockaddr_un sa;
        char cmds[512], junk[4096];
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        memset(&sa, 0, sizeof sa);
        sa.sun_family = AF_UNIX;
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", qmp);
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
            snprintf(cmds, sizeof cmds,
                     "{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"pmemsave\",\"arguments\":"
                     "{\"val\":0,\"size\":%zu,\"filename\":\"%s\"}}\n{\"execute\":\"quit\"}\n", size, mem);
            if (write(fd, cmds, strlen(cmds)) < 0) perror("write");
            while (read(fd, junk, sizeof junk) > 0) {
            }
        }
        close(fd);
    }
    waitpid(q, NULL, 0);
    file = (char *)calloc(1, size);
    f = fopen(mem, "rb");
    CHECK(f && fread(file, 1, size, f) == size, "pmemsave file of %zu bytes", size);
    if (f) fclose(f);
    CHECK(memcmp(file + 0x500000, mark, sizeof mark) == 0, "the write is in QEMU's RAM");
    CHECK(memcmp(buf, file, size) == 0, "readv bytes equal QEMU's pmemsave");
    free(buf);
    free(file);
    unlink(mem);
    unlink(qmp);
    rmdir(dir);
}

int main(int argc, char **argv) {
    int i;
    if (!boot_guests(argc, argv)) return test_summary();
    test_plain_qemu();
    for (i = 0; i < nguests; i++) test_guest(&guests[i]);
    if (nguests >= 2) test_two_and_kill(&guests[0], &guests[1]);
    stop_guests();
    return test_summary();
}
