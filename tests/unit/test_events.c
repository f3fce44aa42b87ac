/* test_events.c - the events API (vmi.h) on the live QEMU backend under TCG.

   Boots lab guests (tests/guests/lab.py boot ARCH --live; default x86_64
   and arm64; arm64's jiffies comes from its committed System.map) and
   checks, per guest: a software and a hardware breakpoint at a timer
   function fire 5 times at that address and, removed by their callback,
   leave the guest running (jiffies advance); a write watchpoint on jiffies; five
   single-steps from a breakpoint, each moving the pc; no dispatch while
   paused (nested), dispatch after the last resume; QEMU killed during a
   listen ends it with an error within seconds, and vmi_close works after.
   Prints breakpoint events per second (at the guest's own rate, and back
   to back: a function's first two instructions) and pause+resume latency.
   Usage: test_events [ARCH...]   (run from the repository root) */
#define _POSIX_C_SOURCE 200809L /* kill, fdopen */
#define VMI_IMPLEMENTATION
#include "vmi.h"
#include "vmi_kvm.h"
#include "test.h"

#include <signal.h>
#include <sys/wait.h>

#define STEPS 5

#include "live_guest.h"

/* arm64's kallsyms has functions only: data symbols (jiffies) come from the
   committed System.map, when the lab has one for the arch. */
static int load_sysmap(vmi_instance *vmi, const char *arch) {
    char xz[256], path[64], cmd[400];
    vmi_status st;
    snprintf(xz, sizeof xz, "tests/guests/profiles/%s/System.map.xz", arch);
    if (access(xz, R_OK) != 0) return 1;
    snprintf(path, sizeof path, "/tmp/test_events-%d.map", (int)getpid());
    snprintf(cmd, sizeof cmd, "xz -dc '%s' > '%s'", xz, path);
    if (system(cmd) != 0) {
        fprintf(stderr, "%s failed\n", cmd);
        return 0;
    }
    st = vmi_load_profile(vmi, path);
    unlink(path);
    if (st != VMI_OK) fprintf(stderr, "System.map %s: %s\n", xz, vmi_last_error(vmi));
    return st == VMI_OK;
}

static vmi_status open_guest(guest *g, vmi_instance **vmi) {
    vmi_kvm_desc kd;
    vmi_desc d;
    char err[512];
    vmi_status st;
    memset(&kd, 0, sizeof kd);
    memset(&d, 0, sizeof d);
    kd.qmp = g->qmp;
    st = vmi_kvm_open(&kd, &d.backend, err, sizeof err);
    if (st != VMI_OK) {
        fprintf(stderr, "vmi_kvm_open(%s): %s: %s\n", g->qmp, vmi_status_string(st), err);
        return st;
    }
    if ((st = vmi_open(&d, vmi)) != VMI_OK) return st;
    return load_sysmap(*vmi, g->arch) ? vmi_os_init(*vmi) : VMI_ERR_IO;
}

static uint64_t pc_of(const vmi_regs *r) {
    return r->arch == VMI_ARCH_AARCH64 ? r->arm64.pc : r->arch == VMI_ARCH_ARM ? r->arm.r[15] : r->x86.rip;
}

static uint64_t read_jiffies(vmi_instance *vmi, uint64_t va) {
    uint64_t v = 0;
    vmi_read_kva(vmi, va, &v, sizeof v, NULL);
    return v;
}

/* jiffies moves within 1.5 s (a tickless idle guest may hold it a while). */
static int jiffies_advance(vmi_instance *vmi, uint64_t va, uint64_t *from, uint64_t *to) {
    int t;
    *from = *to = read_jiffies(vmi, va);
    for (t = 0; t < 15; t++) {
        poll(NULL, 0, 100);
        *to = read_jiffies(vmi, va);
        if (*to != *from) return 1;
    }
    return 0;
}

/* Listens until ev is cleared (or max_s passes); counts failed listens. */
static vmi_status listen_until_cleared(vmi_instance *vmi, vmi_event *ev, double max_s) {
    double t0 = now_s();
    while (ev->armed__ && now_s() - t0 < max_s) {
        vmi_status st = vmi_events_listen(vmi, 1000);
        if (st != VMI_OK && st != VMI_ERR_TIMEOUT) return st;
    }
    return ev->armed__ ? VMI_ERR_TIMEOUT : VMI_OK;
}

/* ---- breakpoints ----------------------------------------------------------- */

typedef struct bp_seen {
    uint64_t want;
    int n, bad_pc, bad_hit, bad_regs;
    uint64_t got_pc, got_hit;
} bp_seen;

static int on_bp(vmi_instance *vmi, vmi_event *ev, const vmi_event_hit *hit, void *user) {
    bp_seen *s = (bp_seen *)user;
    vmi_regs r;
    s->n++;
    if (vmi_get_regs(vmi, hit->vcpu, &r) != VMI_OK) s->bad_regs++;
    else if (pc_of(&r) != s->want) { s->bad_pc++; s->got_pc = pc_of(&r); }
    if (hit->addr != s->want || pc_of(&hit->regs) != s->want) { s->bad_hit++; s->got_hit = hit->addr; }
    return ev->hits >= 5 ? VMI_EVENT_REMOVE : VMI_EVENT_KEEP;
}

static void test_breakpoint(vmi_instance *vmi, const char *arch, const char *fn, uint64_t va, uint64_t jva, int hw) {
    vmi_event ev;
    bp_seen s;
    uint64_t j0 = 0, j1 = 0;
    vmi_status st;
    test_context("%s %s breakpoint at %s", arch, hw ? "hardware" : "software", fn);
    memset(&ev, 0, sizeof ev);
    memset(&s, 0, sizeof s);
    s.want = va;
    ev.type = VMI_EVENT_BREAKPOINT;
    ev.addr = va;
    ev.hardware = hw;
    ev.fn = on_bp;
    ev.user = &s;
    if (!CHECK_ST(vmi_event_register(vmi, &ev), VMI_OK)) return;
    st = listen_until_cleared(vmi, &ev, 30);
    CHECK(st == VMI_OK, "expected the callback to remove the event after 5 hits, got %s (%s), %d hits",
          vmi_status_string(st), vmi_last_error(vmi), s.n);
    if (ev.armed__) vmi_event_clear(vmi, &ev);
    CHECK_EQ(ev.hits, 5);
    CHECK_EQ(s.n, 5);
    CHECK(s.bad_regs == 0, "expected registers in every callback, %d failed", s.bad_regs);
    CHECK(s.bad_pc == 0, "expected the pc at 0x%llx in every callback, %d times got e.g. 0x%llx",
          (unsigned long long)va, s.bad_pc, (unsigned long long)s.got_pc);
    CHECK(s.bad_hit == 0, "expected hit.addr and hit.regs at 0x%llx, %d times got e.g. 0x%llx", (unsigned long long)va,
          s.bad_hit, (unsigned long long)s.got_hit);
    CHECK(jiffies_advance(vmi, jva, &j0, &j1), "expected jiffies to advance after the removal, stayed at %llu",
          (unsigned long long)j0);
}

/* ---- watchpoint ------------------------------------------------------------ */

typedef struct watch_seen { int n; uint64_t addr; uint32_t vcpu; } watch_seen;

static int on_watch(vmi_instance *vmi, vmi_event *ev, const vmi_event_hit *hit, void *user) {
    watch_seen *s = (watch_seen *)user;
    (void)vmi; (void)ev;
    s->n++;
    s->addr = hit->addr;
    s->vcpu = hit->vcpu;
    return VMI_EVENT_REMOVE;
}

static void test_watch(vmi_instance *vmi, const char *arch, uint64_t jva) {
    vmi_event ev;
    watch_seen s;
    vmi_status st;
    uint64_t j0 = 0, j1 = 0;
    test_context("%s write watchpoint on jiffies", arch);
    memset(&ev, 0, sizeof ev);
    memset(&s, 0, sizeof s);
    ev.type = VMI_EVENT_WATCH;
    ev.addr = jva;
    ev.len = 8;
    ev.access = VMI_WATCH_WRITE;
    ev.fn = on_watch;
    ev.user = &s;
    if (!CHECK_ST(vmi_event_register(vmi, &ev), VMI_OK)) return;
    st = listen_until_cleared(vmi, &ev, 20);
    CHECK(st == VMI_OK, "expected a write to jiffies, got %s (%s)", vmi_status_string(st), vmi_last_error(vmi));
    if (ev.armed__) vmi_event_clear(vmi, &ev);
    CHECK_EQ(s.n, 1);
    CHECK(s.addr >= jva && s.addr < jva + 8, "expected hit.addr in [0x%llx, +8), got 0x%llx", (unsigned long long)jva,
          (unsigned long long)s.addr);
    CHECK(jiffies_advance(vmi, jva, &j0, &j1), "expected jiffies to advance after the watchpoint, stayed at %llu",
          (unsigned long long)j0);
}

/* ---- single-step ----------------------------------------------------------- */

typedef struct step_seen {
    vmi_event step;
    uint64_t bp_pc, pcs[STEPS + 1];
    int n, bad_regs, bad_hit;
    vmi_status reg_st;
} step_seen;

static int on_step(vmi_instance *vmi, vmi_event *ev, const vmi_event_hit *hit, void *user) {
    step_seen *s = (step_seen *)user;
    vmi_regs r;
    (void)ev;
    if (vmi_get_regs(vmi, hit->vcpu, &r) != VMI_OK) s->bad_regs++;
    else if (pc_of(&r) != hit->addr) s->bad_hit++;
    if (s->n < STEPS) s->pcs[s->n] = hit->addr;
    s->n++;
    return s->n >= STEPS ? VMI_EVENT_REMOVE : VMI_EVENT_KEEP;
}

static int on_bp_then_step(vmi_instance *vmi, vmi_event *ev, const vmi_event_hit *hit, void *user) {
    step_seen *s = (step_seen *)user;
    (void)ev;
    s->bp_pc = hit->addr;
    memset(&s->step, 0, sizeof s->step);
    s->step.type = VMI_EVENT_SINGLESTEP;
    s->step.vcpu = (int32_t)hit->vcpu;
    s->step.fn = on_step;
    s->step.user = s;
    s->reg_st = vmi_event_register(vmi, &s->step);
    return VMI_EVENT_REMOVE;
}

static uint64_t test_step(vmi_instance *vmi, const char *arch, const char *fn, uint64_t va, uint64_t jva) {
    vmi_event bp;
    static step_seen s;
    vmi_status st;
    uint64_t j0 = 0, j1 = 0;
    int i, same = 0;
    test_context("%s single-step from a breakpoint at %s", arch, fn);
    memset(&bp, 0, sizeof bp);
    memset(&s, 0, sizeof s);
    s.reg_st = VMI_ERR_NOT_FOUND;
    bp.type = VMI_EVENT_BREAKPOINT;
    bp.addr = va;
    bp.fn = on_bp_then_step;
    bp.user = &s;
    if (!CHECK_ST(vmi_event_register(vmi, &bp), VMI_OK)) return 0;
    st = listen_until_cleared(vmi, &bp, 20);
    CHECK(st == VMI_OK, "expected the breakpoint, got %s (%s)", vmi_status_string(st), vmi_last_error(vmi));
    if (bp.armed__) vmi_event_clear(vmi, &bp);
    if (!CHECK_ST(s.reg_st, VMI_OK)) return 0;
    st = listen_until_cleared(vmi, &s.step, 20);
    CHECK(st == VMI_OK, "expected %d steps, got %s (%s) after %d", STEPS, vmi_status_string(st), vmi_last_error(vmi), s.n);
    if (s.step.armed__) vmi_event_clear(vmi, &s.step);
    CHECK_EQ(s.n, STEPS);
    CHECK_EQ(s.step.hits, STEPS);
    CHECK(s.bad_regs == 0 && s.bad_hit == 0, "expected vmi_get_regs' pc == hit.addr at each step, %d failed, %d differed",
          s.bad_regs, s.bad_hit);
    for (i = 0; i < s.n && i < STEPS; i++) {
        uint64_t prev = i ? s.pcs[i - 1] : s.bp_pc;
        printf("%s: step %d: pc 0x%llx\n", arch, i + 1, (unsigned long long)s.pcs[i]);
        if (s.pcs[i] == prev) same++;
    }
    CHECK(same == 0, "expected the pc to change at each step (from 0x%llx), %d steps stayed", (unsigned long long)s.bp_pc,
          same);
    CHECK(s.pcs[0] > s.bp_pc && s.pcs[0] - s.bp_pc <= 15, "expected the first step 1..15 bytes past 0x%llx, got 0x%llx",
          (unsigned long long)s.bp_pc, (unsigned long long)s.pcs[0]);
    CHECK(jiffies_advance(vmi, jva, &j0, &j1), "expected jiffies to advance after stepping, stayed at %llu",
          (unsigned long long)j0);
    return s.n >= 1 && s.pcs[0] != s.bp_pc ? s.pcs[0] : 0;
}

/* ---- pause/resume ---------------------------------------------------------- */

static int count_only(vmi_instance *vmi, vmi_event *ev, const vmi_event_hit *hit, void *user) {
    (void)vmi; (void)ev; (void)hit;
    ++*(int *)user;
    return VMI_EVENT_KEEP;
}

/* Breakpoints at a function and at its second instruction: the second hit
   follows the first as fast as the backend can step over and go on. */
typedef struct pair_seen { uint64_t first; double t_first, sum; int n, pairs; } pair_seen;
static int on_pair(vmi_instance *vmi, vmi_event *ev, const vmi_event_hit *hit, void *user) {
    pair_seen *s = (pair_seen *)user;
    (void)vmi; (void)ev;
    s->n++;
    if (hit->addr == s->first) s->t_first = now_s();
    else if (s->t_first > 0) {
        s->sum += now_s() - s->t_first;
        s->pairs++;
        s->t_first = 0;
    }
    return VMI_EVENT_KEEP;
}

static void test_pause(vmi_instance *vmi, const char *arch, uint64_t va, uint64_t next, uint64_t jva) {
    vmi_event ev, ev2;
    pair_seen ps;
    int n = 0, i;
    uint64_t j0 = 0, j1 = 0;
    double t0, pr;
    vmi_status st;
    test_context("%s pause/resume with a breakpoint armed", arch);
    memset(&ev, 0, sizeof ev);
    ev.type = VMI_EVENT_BREAKPOINT;
    ev.addr = va;
    ev.fn = count_only;
    ev.user = &n;
    if (!CHECK_ST(vmi_event_register(vmi, &ev), VMI_OK)) return;
    CHECK_ST(vmi_pause(vmi), VMI_OK);
    CHECK_ST(vmi_pause(vmi), VMI_OK);
    j0 = read_jiffies(vmi, jva);
    CHECK_ST(vmi_events_listen(vmi, 300), VMI_ERR_TIMEOUT);
    CHECK_ST(vmi_resume(vmi), VMI_OK);
    CHECK_ST(vmi_events_listen(vmi, 300), VMI_ERR_TIMEOUT);
    poll(NULL, 0, 500);
    j1 = read_jiffies(vmi, jva);
    CHECK(j0 == j1, "expected jiffies to stay while paused, went %llu -> %llu", (unsigned long long)j0,
          (unsigned long long)j1);
    CHECK(n == 0, "expected no dispatch while paused, got %d", n);
    CHECK_ST(vmi_resume(vmi), VMI_OK);
    st = vmi_events_listen(vmi, 10000);
    CHECK(st == VMI_OK, "expected a dispatch after the last resume, got %s (%s)", vmi_status_string(st), vmi_last_error(vmi));
    CHECK(n >= 1, "expected at least one dispatch after resume, got %d", n);

    /* Throughput: every hit of the function for 3 s. */
    test_context("%s breakpoint throughput", arch);
    n = 0;
    t0 = now_s();
    while (now_s() - t0 < 3.0) {
        st = vmi_events_listen(vmi, 1000);
        if (st != VMI_OK && st != VMI_ERR_TIMEOUT) break;
    }
    printf("%s: %.0f breakpoint events per second at the idle guest's own rate (%d in %.1f s)\n", arch,
           n / (now_s() - t0), n, now_s() - t0);
    CHECK(n > 0 && (st == VMI_OK || st == VMI_ERR_TIMEOUT), "expected events, got %d (%s)", n, vmi_last_error(vmi));
    if (next) {
        memset(&ps, 0, sizeof ps);
        memset(&ev2, 0, sizeof ev2);
        ps.first = va;
        ev.fn = ev2.fn = on_pair;
        ev.user = ev2.user = &ps;
        ev2.type = VMI_EVENT_BREAKPOINT;
        ev2.addr = next;
        CHECK_ST(vmi_event_register(vmi, &ev2), VMI_OK);
        t0 = now_s();
        while (now_s() - t0 < 3.0) {
            st = vmi_events_listen(vmi, 1000);
            if (st != VMI_OK && st != VMI_ERR_TIMEOUT) break;
        }
        CHECK_ST(vmi_event_clear(vmi, &ev2), VMI_OK);
        CHECK(ps.pairs > 0, "expected back-to-back hits at 0x%llx and 0x%llx, got %d hits and no pair",
              (unsigned long long)va, (unsigned long long)next, ps.n);
        if (ps.pairs)
            printf("%s: %.0f breakpoint events handled per second back to back (hit to next hit %.2f ms, %d pairs)\n",
                   arch, ps.pairs / ps.sum, ps.sum / ps.pairs * 1e3, ps.pairs);
        ev.fn = count_only;
        ev.user = &n;
    }
    CHECK_ST(vmi_event_clear(vmi, &ev), VMI_OK);

    /* pause + resume latency with an event armed and without. */
    test_context("%s pause+resume latency", arch);
    CHECK_ST(vmi_event_register(vmi, &ev), VMI_OK);
    t0 = now_s();
    for (i = 0; i < 20; i++)
        if (vmi_pause(vmi) != VMI_OK || vmi_resume(vmi) != VMI_OK) break;
    pr = (now_s() - t0) / 20;
    CHECK(i == 20, "expected 20 pause/resume pairs, %d worked (%s)", i, vmi_last_error(vmi));
    while (vmi_events_listen(vmi, 0) == VMI_OK) {
    }
    CHECK_ST(vmi_event_clear(vmi, &ev), VMI_OK);
    t0 = now_s();
    for (i = 0; i < 20; i++)
        if (vmi_pause(vmi) != VMI_OK || vmi_resume(vmi) != VMI_OK) break;
    printf("%s: pause+resume %.2f ms with a breakpoint armed, %.2f ms without\n", arch, pr * 1e3,
           (now_s() - t0) / 20 * 1e3);
    CHECK(i == 20, "expected 20 pause/resume pairs, %d worked (%s)", i, vmi_last_error(vmi));
    CHECK(jiffies_advance(vmi, jva, &j0, &j1), "expected jiffies to advance after pause/resume, stayed at %llu",
          (unsigned long long)j0);
}

/* ---- QEMU killed during a listen ------------------------------------------- */

static void test_kill(guest *g, vmi_instance *vmi, uint64_t never) {
    vmi_event ev;
    pid_t killer;
    double t0, secs;
    vmi_status st;
    test_context("%s QEMU killed during vmi_events_listen", g->arch);
    memset(&ev, 0, sizeof ev);
    ev.type = VMI_EVENT_BREAKPOINT;
    ev.addr = never;
    if (!CHECK_ST(vmi_event_register(vmi, &ev), VMI_OK)) return;
    killer = fork();
    if (killer == 0) {
        poll(NULL, 0, 500);
        kill(g->qemu_pid, SIGKILL);
        _exit(0);
    }
    t0 = now_s();
    st = vmi_events_listen(vmi, 20000);
    secs = now_s() - t0;
    waitpid(killer, NULL, 0);
    CHECK(st != VMI_OK && st != VMI_ERR_TIMEOUT, "expected an error, got %s", vmi_status_string(st));
    CHECK(secs < 3.0, "expected the error within 3 s, got %.1f s", secs);
    printf("%s: QEMU killed: listen ended after %.2f s: %s: %s\n", g->arch, secs, vmi_status_string(st), vmi_last_error(vmi));
    CHECK(vmi_events_listen(vmi, 100) == VMI_ERR_BACKEND, "expected later listens to fail with %s",
          vmi_status_string(VMI_ERR_BACKEND));
}

static void test_guest(guest *g) {
    vmi_instance *vmi = NULL;
    uint64_t tick = 0, jva = 0, never = 0, next;
    const char *tick_fn = "update_process_times";
    test_context("%s attach", g->arch);
    if (!CHECK_ST(open_guest(g, &vmi), VMI_OK)) {
        if (vmi) fprintf(stderr, "  %s\n", vmi_last_error(vmi));
        vmi_close(vmi);
        return;
    }
    CHECK_ST(vmi_ksym(vmi, tick_fn, &tick), VMI_OK);
    CHECK_ST(vmi_ksym(vmi, "jiffies", &jva), VMI_OK);
    CHECK_ST(vmi_ksym(vmi, "panic", &never), VMI_OK);
    if (!tick || !jva || !never) {
        vmi_close(vmi);
        return;
    }
    test_context("%s register checks", g->arch);
    {
        vmi_event ev, ev2;
        memset(&ev, 0, sizeof ev);
        ev.type = VMI_EVENT_WATCH;
        ev.addr = jva + 1;
        ev.len = 8;
        ev.access = VMI_WATCH_WRITE;
        CHECK_ST(vmi_event_register(vmi, &ev), VMI_ERR_ARG);
        ev.addr = jva;
        ev.len = 3;
        CHECK_ST(vmi_event_register(vmi, &ev), VMI_ERR_ARG);
        ev.type = (vmi_event_type)9;
        CHECK_ST(vmi_event_register(vmi, &ev), VMI_ERR_ARG);
        memset(&ev, 0, sizeof ev);
        ev.type = VMI_EVENT_SINGLESTEP;
        ev.vcpu = 99;
        CHECK_ST(vmi_event_register(vmi, &ev), VMI_ERR_ARG);
        memset(&ev, 0, sizeof ev);
        memset(&ev2, 0, sizeof ev2);
        ev.type = ev2.type = VMI_EVENT_BREAKPOINT;
        ev.addr = ev2.addr = never;
        CHECK_ST(vmi_event_register(vmi, &ev), VMI_OK);
        CHECK_ST(vmi_event_register(vmi, &ev), VMI_ERR_ARG);
        CHECK_ST(vmi_event_register(vmi, &ev2), VMI_ERR_ARG);
        CHECK_ST(vmi_event_clear(vmi, &ev), VMI_OK);
        CHECK_ST(vmi_event_clear(vmi, &ev), VMI_ERR_ARG);
        CHECK_ST(vmi_events_listen(vmi, 50), VMI_ERR_TIMEOUT);
    }
    test_breakpoint(vmi, g->arch, tick_fn, tick, jva, 0);
    test_breakpoint(vmi, g->arch, tick_fn, tick, jva, 1);
    test_watch(vmi, g->arch, jva);
    next = test_step(vmi, g->arch, tick_fn, tick, jva);
    test_pause(vmi, g->arch, tick, next, jva);
    test_kill(g, vmi, never);
    vmi_close(vmi);
}

int main(int argc, char **argv) {
    int i;
    if (!boot_guests(argc, argv)) return test_summary();
    for (i = 0; i < nguests; i++) test_guest(&guests[i]);
    stop_guests();
    return test_summary();
}
