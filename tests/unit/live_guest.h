/* live_guest.h - lab guests booted live for the tests that need a running
   QEMU (test_kvm, test_events): `lab.py boot ARCH --live` in a child, its
   JSON line parsed with vmi.h's reader, every guest stopped at exit or on a
   signal. Include after vmi.h and vmi_kvm.h with their implementations,
   and test.h. */
#ifndef LIVE_GUEST_H_INCLUDED
#define LIVE_GUEST_H_INCLUDED
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_GUESTS 4

typedef struct guest {
    const char *arch;
    pid_t lab;          /* lab.py */
    int qemu_pid;
    char qmp[256], truth[256], line[4096];
    uint64_t ram_base, ram_size;
    char *truth_json;
    size_t truth_len;
} guest;

static guest guests[MAX_GUESTS];
static int nguests;

static void stop_guests(void) {
    int i;
    for (i = 0; i < nguests; i++)
        if (guests[i].lab > 0) {
            kill(guests[i].lab, SIGTERM);
            waitpid(guests[i].lab, NULL, 0);
            guests[i].lab = 0;
        }
}

static void on_signal(int sig) {
    stop_guests();
    signal(sig, SIG_DFL);
    raise(sig);
}

static double now_s(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* JSON field of the lab's line or of truth.json (vmi.h's reader). */
static int json_str(const char *s, size_t n, const char *key, char *out, size_t cap) {
    vmi__json j;
    j.s = s; j.n = n; j.pos = 0; j.err = NULL; j.errlen = 0;
    return vmi__kvm_jfind(&j, key) && vmi__kvm_jstr(&j, out, cap);
}

static int start_guest(guest *g, const char *arch) {
    int fds[2];
    g->arch = arch;
    if (pipe(fds) != 0) return 0;
    g->lab = fork();
    if (g->lab == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        execlp("python3", "python3", "tests/guests/lab.py", "boot", arch, "--live", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    g->line[0] = '\0';
    {
        FILE *f = fdopen(fds[0], "r");
        if (!f || !fgets(g->line, sizeof g->line, f)) return 0;
    }
    return 1;
}

static int parse_guest(guest *g) {
    char v[64];
    size_t n = strlen(g->line);
    if (!json_str(g->line, n, "qmp", g->qmp, sizeof g->qmp) || !json_str(g->line, n, "truth", g->truth, sizeof g->truth))
        return 0;
    json_str(g->line, n, "ram_base", v, sizeof v);
    g->ram_base = strtoull(v, NULL, 16);
    json_str(g->line, n, "ram_size", v, sizeof v);
    g->ram_size = strtoull(v, NULL, 16);
    {
        vmi__json j;
        uint64_t pid = 0;
        j.s = g->line; j.n = n; j.pos = 0; j.err = NULL; j.errlen = 0;
        if (vmi__kvm_jfind(&j, "pid")) vmi__json_u64(&j, &pid);
        g->qemu_pid = (int)pid;
    }
    return (g->truth_json = test_slurp(g->truth, &g->truth_len)) != NULL;
}

/* Boots the guests named on the command line (default x86_64 and arm64),
   stopped again at exit or on a signal; 0 when one did not come up. */
static int boot_guests(int argc, char **argv) {
    const char *def[] = {"x86_64", "arm64"};
    const char **arches = argc > 1 ? (const char **)(argv + 1) : def;
    int n = argc > 1 ? argc - 1 : 2, i;
    signal(SIGPIPE, SIG_DFL); /* the backend must not need SIGPIPE ignored */
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    atexit(stop_guests);
    for (i = 0; i < n && i < MAX_GUESTS; i++) {
        test_context("boot %s", arches[i]);
        nguests++;
        if (!CHECK(start_guest(&guests[i], arches[i]) && parse_guest(&guests[i]), "lab boot of %s: got \"%s\"",
                   arches[i], guests[i].line))
            return 0;
    }
    return 1;
}

#endif /* LIVE_GUEST_H_INCLUDED */
