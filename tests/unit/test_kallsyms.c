/* test_kallsyms.c - kallsyms recovery and System.map parsing on real guests.

   Usage: test_kallsyms [LAB_DIR]   (default build/guests)
   LAB_DIR/ARCH/{mem.raw,mem.elf,mem.lime,truth.json[,kallsyms.txt]};
   System.map.xz from tests/guests/profiles/ARCH (or $KS_PROFILES) when its
   kernel version matches the guest's. Run from the repository root.

   Build (from the repository root):
       gcc -std=c99 -O2 -Wall -Wextra -Wpedantic -Werror -Wshadow -Wstrict-prototypes \
           -I. tests/unit/test_kallsyms.c -o /tmp/test_kallsyms
       gcc -std=c99 -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all \
           -I. tests/unit/test_kallsyms.c -o /tmp/test_kallsyms_san
       g++ -std=c++17 -x c++ -O2 -Wall -Wextra -Wpedantic -Werror -Wshadow \
           -I. tests/unit/test_kallsyms.c -o /tmp/test_kallsyms_cpp
   Prints one line per failed check and "N passed, M failed"; exits 1 on
   failure. */
#define _XOPEN_SOURCE 700 /* popen */

#define VMI_IMPLEMENTATION
#include "vmi.h"
#include "vmi_file.h"
#include "test.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

static const char *const arches[] = {"x86_64", "x86_64-la57", "x86_64-cloud", "i386-pae",
                                     "i386", "arm64", "armhf", "armhf-lpae"};
static const char *const formats[] = {"raw", "elf", "lime"};

static char *run_cmd(const char *cmd, size_t *len) {
    FILE *f = popen(cmd, "r");
    size_t cap = 1 << 20, n = 0, got;
    char *b = (char *)malloc(cap);
    if (!f || !b) { if (f) pclose(f); free(b); return NULL; }
    while ((got = fread(b + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n < 2) {
            char *nb = (char *)realloc(b, cap *= 2);
            if (!nb) { free(b); pclose(f); return NULL; }
            b = nb;
        }
    }
    b[n] = 0;
    *len = n;
    if (pclose(f) != 0 || !n) { free(b); return NULL; }
    return b;
}

/* ---- just enough JSON: string values of a flat object ------------------- */
static const char *json_obj(const char *j, const char *key) {
    char pat[128];
    const char *p;
    snprintf(pat, sizeof pat, "\"%s\": {", key);
    p = strstr(j, pat);
    return p ? p + strlen(pat) : NULL;
}

/* Next "key": "value" pair of an object; NULL at its end. */
static const char *json_pair(const char *p, char *k, size_t kc, char *v, size_t vc) {
    const char *q;
    size_t n;
    while (*p == ' ' || *p == ',' || *p == '\n') p++;
    if (*p != '"') return NULL;
    q = strchr(p + 1, '"');
    if (!q) return NULL;
    n = (size_t)(q - p - 1) < kc - 1 ? (size_t)(q - p - 1) : kc - 1;
    memcpy(k, p + 1, n), k[n] = 0;
    p = strchr(q + 1, '"');
    if (!p) return NULL;
    q = strchr(p + 1, '"');
    if (!q) return NULL;
    n = (size_t)(q - p - 1) < vc - 1 ? (size_t)(q - p - 1) : vc - 1;
    memcpy(v, p + 1, n), v[n] = 0;
    return q + 1;
}

static int json_str(const char *j, const char *key, char *v, size_t vc) {
    char pat[128];
    const char *p, *q;
    size_t n;
    snprintf(pat, sizeof pat, "\"%s\": \"", key);
    if (!(p = strstr(j, pat))) return 0;
    p += strlen(pat);
    if (!(q = strchr(p, '"'))) return 0;
    n = (size_t)(q - p) < vc - 1 ? (size_t)(q - p) : vc - 1;
    memcpy(v, p, n), v[n] = 0;
    return 1;
}

/* ---- helpers ------------------------------------------------------------- */
static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static vmi_instance *open_image(const char *path, uint64_t base) {
    vmi_file_desc fd;
    vmi_desc desc;
    vmi_instance *vmi = NULL;
    char err[256];
    memset(&fd, 0, sizeof fd);
    memset(&desc, 0, sizeof desc);
    fd.path = path;
    fd.base = base;
    if (vmi_file_open(&fd, &desc.backend, err, sizeof err) != VMI_OK) {
        CHECK(0, "open %s: %s", path, err);
        return NULL;
    }
    if (vmi_open(&desc, &vmi) != VMI_OK) {
        CHECK(0, "vmi_open %s", path);
        return NULL;
    }
    return vmi;
}

/* Index of the first symbol at addr (binary search), or count. */
static size_t first_at(const vmi__symtab *s, uint64_t addr) {
    size_t lo = 0, hi = vmi__symtab_count(s);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t a;
        vmi__symtab_get(s, mid, NULL, &a, NULL);
        if (a < addr) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static int has_sym_at(const vmi__symtab *s, const char *name, uint64_t addr, char *type) {
    size_t i;
    for (i = first_at(s, addr); i < vmi__symtab_count(s); i++) {
        const char *n;
        uint64_t a;
        vmi__symtab_get(s, i, &n, &a, type);
        if (a != addr) break;
        if (strcmp(n, name) == 0) return 1;
    }
    return 0;
}

/* Every truth name at its address with its type; nearest(addr + 0x10). */
static void check_truth(const vmi__symtab *s, const char *truth) {
    const char *p = json_obj(truth, "kallsyms"), *q = json_obj(truth, "kallsyms_types");
    char k[256], v[64];
    unsigned names = 0;
    CHECK(p && q, "truth.json has kallsyms and kallsyms_types");
    if (!p || !q) return;
    while ((p = json_pair(p, k, sizeof k, v, sizeof v)) != NULL) {
        uint64_t want = strtoull(v, NULL, 16), got = 0, off = 0, expect_at;
        char type = 0, tv[8], *tp;
        const char *near = NULL;
        size_t i;
        char pat[300];
        snprintf(pat, sizeof pat, "\"%s\": \"", k);
        tp = strstr((char *)q, pat);
        tv[0] = 0;
        if (tp) { tp += strlen(pat); tv[0] = *tp; tv[1] = 0; }
        names++;
        if (!CHECK(vmi__symtab_find(s, k, &got, &type) == VMI_OK, "symbol %s not found (want 0x%llx)", k,
                   (unsigned long long)want))
            continue;
        CHECK(got == want, "%s: expected 0x%llx, got 0x%llx", k, (unsigned long long)want, (unsigned long long)got);
        CHECK(type == tv[0], "%s: expected type %c, got %c", k, tv[0], type);
        /* nearest: the last symbol at or below want + 0x10, by brute force */
        i = first_at(s, want + 0x11);
        CHECK(i > 0, "%s: a symbol at or below +0x10", k);
        if (!i) continue;
        vmi__symtab_get(s, i - 1, NULL, &expect_at, NULL);
        CHECK(vmi__symtab_nearest(s, want + 0x10, &near, &off) == VMI_OK && off == want + 0x10 - expect_at,
              "%s+0x10: nearest gave %s+0x%llx, expected a symbol at 0x%llx", k, near ? near : "?",
              (unsigned long long)off, (unsigned long long)expect_at);
        if (expect_at == want) {
            char t2;
            CHECK(near && has_sym_at(s, near, want, &t2), "%s+0x10: nearest %s is not at 0x%llx", k, near ? near : "?",
                  (unsigned long long)want);
        }
    }
    CHECK(names > 0, "truth lists symbols");
}

/* kallsyms keeps text symbols only inside [_stext, _etext] and
   [_sinittext, _einittext] (scripts/kallsyms.c text_ranges) and drops some
   prefixes (EFI stub and KVM hyp aliases on arm64). */
static int explained_miss(const vmi__symtab *sm, const char *name, uint64_t addr) {
    static const char *const ranges[][2] = {{"_stext", "_etext"}, {"_sinittext", "_einittext"}};
    size_t i;
    if (strncmp(name, "__efistub_", 10) == 0 || strncmp(name, "__kvm_nvhe_", 11) == 0) return 1;
    for (i = 0; i < 2; i++) {
        uint64_t lo, hi;
        if (vmi__symtab_find(sm, ranges[i][0], &lo, NULL) == VMI_OK && vmi__symtab_find(sm, ranges[i][1], &hi, NULL) == VMI_OK &&
            addr >= lo && addr < hi)
            return 0;
    }
    return 1;
}

/* Every 'T'/'t' symbol of System.map, slid, must be in the recovered table
   (with its type letter) unless kallsyms leaves it out by design. */
static void check_sysmap(vmi_instance *vmi, const vmi__symtab *ks, const char *arch, const char *kver) {
    char path[512], cmd[600], ver[128] = "";
    const char *dir = getenv("KS_PROFILES");
    size_t len = 0, i, total = 0, ok = 0, typed = 0, shown = 0, omitted = 0, other = 0, other_ok = 0;
    char *text, *prof;
    vmi__symtab *sm = NULL;
    uint64_t st_map = 0, st_ks = 0, slide;
    snprintf(path, sizeof path, "%s/%s/profile.json", dir ? dir : "tests/guests/profiles", arch);
    if (!(prof = test_slurp(path, &len))) { printf("  %s: no System.map profile\n", arch); return; }
    json_str(prof, "kernel_version", ver, sizeof ver);
    free(prof);
    if (strcmp(ver, kver) != 0) {
        printf("  %s: System.map is for %s, guest runs %s: skipped\n", arch, ver, kver);
        return;
    }
    snprintf(cmd, sizeof cmd, "xz -dc '%s/%s/System.map.xz'", dir ? dir : "tests/guests/profiles", arch);
    if (!(text = run_cmd(cmd, &len))) { printf("  %s: cannot read System.map.xz\n", arch); return; }
    if (!CHECK(vmi__symtab_from_sysmap(vmi, text, len, &sm) == VMI_OK, "%s: System.map parse: %s", arch,
               vmi_last_error(vmi))) {
        free(text);
        return;
    }
    free(text);
    CHECK(vmi__symtab_find(sm, "_stext", &st_map, NULL) == VMI_OK && vmi__symtab_find(ks, "_stext", &st_ks, NULL) == VMI_OK,
          "%s: _stext in both tables", arch);
    slide = st_ks - st_map;
    vmi__symtab_slide(sm, slide);
    for (i = 0; i < vmi__symtab_count(sm); i++) {
        const char *n;
        uint64_t a;
        char t, t2 = 0;
        vmi__symtab_get(sm, i, &n, &a, &t);
        if (t != 'T' && t != 't') {
            if (t == 'A' || t == 'a' || t == 'N' || t == 'U' || t == 'w' || t == 'W' || t == 'V' || t == 'v') continue;
            other++;
            other_ok += has_sym_at(ks, n, a, &t2);
            continue;
        }
        total++;
        if (has_sym_at(ks, n, a, &t2)) {
            ok++;
            if (t2 == t) typed++;
            else CHECK(0, "%s: %s type: System.map %c, kallsyms %c", arch, n, t, t2);
            continue;
        }
        if (explained_miss(sm, n, a)) { omitted++; continue; }
        if (shown++ < 10) printf("  %s: System.map %c %s at 0x%llx is not in kallsyms\n", arch, t, n, (unsigned long long)a);
    }
    printf("  %s: slide 0x%llx; System.map text symbols: %zu, in kallsyms %zu (type letters equal %zu), "
           "left out by kallsyms' rules %zu, unexplained %zu; data/bss/rodata in kallsyms: %zu of %zu\n",
           arch, (unsigned long long)slide, total, ok, typed, omitted, shown, other_ok, other);
    CHECK(total > 0 && shown == 0, "%s: %zu text symbols of System.map missing from kallsyms unexplained", arch, shown);
    CHECK(ok + omitted == total, "%s: text symbols %zu = %zu found + %zu omitted", arch, total, ok, omitted);
    vmi__symtab_free(vmi, sm);
}

/* The guest's whole /proc/kallsyms (ARCH/kallsyms.txt, when captured): its
   vmlinux lines, in the same order, equal to what was recovered. */
static void check_proc_kallsyms(vmi_instance *vmi, const vmi__symtab *ks, const char *lab, const char *arch) {
    char path[512];
    size_t len = 0, i, bad = 0, n;
    char *text;
    vmi__symtab *pk = NULL;
    snprintf(path, sizeof path, "%s/%s/kallsyms.txt", lab, arch);
    if (!(text = test_slurp(path, &len))) { printf("  %s: no kallsyms.txt\n", arch); return; }
    if (!CHECK(vmi__symtab_from_sysmap(vmi, text, len, &pk) == VMI_OK, "%s: parse kallsyms.txt: %s", arch, vmi_last_error(vmi))) {
        free(text);
        return;
    }
    free(text);
    n = vmi__symtab_count(pk);
    CHECK(n == vmi__symtab_count(ks), "%s: /proc/kallsyms has %zu vmlinux symbols, recovered %zu", arch, n,
          vmi__symtab_count(ks));
    for (i = 0; i < n && i < vmi__symtab_count(ks); i++) {
        const char *n1, *n2;
        uint64_t a1, a2;
        char t1, t2;
        vmi__symtab_get(pk, i, &n1, &a1, &t1);
        vmi__symtab_get(ks, i, &n2, &a2, &t2);
        if (a1 == a2 && t1 == t2 && strcmp(n1, n2) == 0) continue;
        if (bad++ < 3)
            CHECK(0, "%s: symbol %zu: /proc/kallsyms %c %s 0x%llx, recovered %c %s 0x%llx", arch, i, t1, n1,
                  (unsigned long long)a1, t2, n2, (unsigned long long)a2);
    }
    CHECK(bad == 0, "%s: %zu of %zu symbols differ from /proc/kallsyms", arch, bad, n);
    printf("  %s: /proc/kallsyms: %zu vmlinux symbols, %zu identical (name, address, type)\n", arch, n, n - bad);
    vmi__symtab_free(vmi, pk);
}

/* ---- one guest ------------------------------------------------------------ */
static void test_arch(const char *lab, const char *arch) {
    char path[512], kver[128] = "", rb[32] = "0";
    size_t tlen, f;
    char *truth;
    uint64_t base;
    test_context("%s", arch);
    snprintf(path, sizeof path, "%s/%s/truth.json", lab, arch);
    if (!(truth = test_slurp(path, &tlen))) { CHECK(0, "read %s", path); return; }
    json_str(truth, "kernel_version", kver, sizeof kver);
    json_str(truth, "ram_base", rb, sizeof rb);
    base = strtoull(rb, NULL, 16);
    for (f = 0; f < sizeof formats / sizeof *formats; f++) {
        vmi_instance *vmi;
        vmi__symtab *s = NULL;
        vmi_status st;
        double t[7];
        unsigned k, runs = f == 0 ? 7 : 1;
        test_context("%s %s", arch, formats[f]);
        snprintf(path, sizeof path, "%s/%s/mem.%s", lab, arch, formats[f]);
        if (!(vmi = open_image(path, base))) continue;
        for (k = 0; k < runs; k++) {
            double t0 = now_ms();
            if (s) vmi__symtab_free(vmi, s), s = NULL;
            st = vmi__kallsyms_recover(vmi, &s);
            t[k] = now_ms() - t0;
        }
        qsort(t, runs, sizeof *t, cmp_double);
        if (CHECK(st == VMI_OK, "recover: %s: %s", vmi_status_string(st), vmi_last_error(vmi))) {
            const vmi__kallsyms_info *ki = vmi__symtab_kallsyms_info(s);
            size_t n = vmi__symtab_count(s);
            CHECK(n > 20000 && n < VMI__KS_MAX_SYMS, "symbol count %zu plausible", n);
            printf("%-13s %-4s %6zu symbols %u-bit %s%s%s%s  median %.2f ms (min %.2f, %u runs)  anchors %u\n"
                   "    num_syms pa 0x%llx names 0x%llx markers 0x%llx seqs 0x%llx token_table 0x%llx token_index 0x%llx "
                   "%s 0x%llx relative_base 0x%llx = 0x%llx\n",
                   arch, formats[f], n, ki->ptr_size * 8, ki->order_6_4 ? "6.4+" : "pre-6.4",
                   ki->base_relative ? " base-relative" : " absolute", ki->absolute_percpu ? " abs-percpu" : "",
                   ki->has_seqs ? " seqs" : "", t[runs / 2], t[0], runs, ki->anchors, (unsigned long long)ki->num_syms_pa,
                   (unsigned long long)ki->names_pa, (unsigned long long)ki->markers_pa,
                   (unsigned long long)ki->seqs_pa, (unsigned long long)ki->token_table_pa,
                   (unsigned long long)ki->token_index_pa, ki->base_relative ? "offsets" : "addresses",
                   (unsigned long long)ki->addresses_pa, (unsigned long long)ki->relative_base_pa,
                   (unsigned long long)ki->relative_base);
            check_truth(s, truth);
            check_proc_kallsyms(vmi, s, lab, arch);
            if (f == 0) check_sysmap(vmi, s, arch, kver);
        }
        vmi__symtab_free(vmi, s);
        vmi_close(vmi);
    }
    free(truth);
}

/* ---- hostile memory, on a private copy of the x86_64 image ---------------- */
typedef struct rd_ctx { const uint8_t *b; uint64_t size; } rd_ctx;
static vmi_status rd_read(void *ctx, uint64_t pa, void *buf, size_t len) {
    rd_ctx *c = (rd_ctx *)ctx;
    if (pa > c->size || len > c->size - pa) return VMI_ERR_UNMAPPED;
    memcpy(buf, c->b + pa, len);
    return VMI_OK;
}

static vmi_status recover_buf(uint8_t *b, size_t n, int host, vmi__symtab **out, char *err, size_t errcap) {
    vmi_mem_range r;
    vmi_desc desc;
    vmi_instance *vmi;
    vmi_status st;
    static rd_ctx ctx;
    memset(&r, 0, sizeof r);
    memset(&desc, 0, sizeof desc);
    r.pa = 0;
    r.size = n;
    r.host = host ? b : NULL;
    vmi_backend_buffer(&desc.backend, &r, 1);
    if (!host) {
        ctx.b = b, ctx.size = n;
        desc.backend.ctx = &ctx;
        desc.backend.read_pa = rd_read;
    }
    if ((st = vmi_open(&desc, &vmi)) != VMI_OK) return st;
    st = vmi__kallsyms_recover(vmi, out);
    snprintf(err, errcap, "%s", vmi_last_error(vmi));
    if (st == VMI_OK) {
        /* freed with this instance's allocator (malloc): same as the caller's */
    }
    vmi_close(vmi);
    return st;
}

static void test_hostile(const char *lab) {
    char path[512], err[256];
    size_t n = 0;
    uint8_t *img, *save;
    vmi__symtab *s = NULL, *s2 = NULL;
    vmi__kallsyms_info ki;
    vmi_instance *vmi;
    vmi_desc d;
    vmi_mem_range none;
    vmi_status st;
    const char *nm1, *nm2;
    uint64_t a1, a2;
    size_t i, nsave;
    double t0;
    test_context("hostile x86_64");
    snprintf(path, sizeof path, "%s/x86_64/mem.raw", lab);
    if (!(img = (uint8_t *)test_slurp(path, &n))) { CHECK(0, "read %s", path); return; }
    if (!CHECK(recover_buf(img, n, 1, &s, err, sizeof err) == VMI_OK, "baseline: %s", err)) { free(img); return; }
    ki = s->ks;
    /* the same through read_pa chunks (no host pointer) */
    t0 = now_ms();
    st = recover_buf(img, n, 0, &s2, err, sizeof err);
    printf("  read_pa backend (4 MiB chunks): %.1f ms\n", now_ms() - t0);
    if (CHECK(st == VMI_OK, "read_pa path: %s", err)) {
        CHECK_EQ(vmi__symtab_count(s2), vmi__symtab_count(s));
        for (i = 0; i < vmi__symtab_count(s); i += 97) {
            vmi__symtab_get(s, i, &nm1, &a1, NULL);
            vmi__symtab_get(s2, i, &nm2, &a2, NULL);
            if (!CHECK(a1 == a2 && strcmp(nm1, nm2) == 0, "read_pa path symbol %zu", i)) break;
        }
    }
    /* symtabs were allocated with malloc through default allocators */
    memset(&d, 0, sizeof d);
    memset(&none, 0, sizeof none);
    none.size = 4096;
    none.host = img;
    vmi_backend_buffer(&d.backend, &none, 1);
    if (vmi_open(&d, &vmi) != VMI_OK) { free(img); return; }
    vmi__symtab_free(vmi, s);
    vmi__symtab_free(vmi, s2);
    s = s2 = NULL;

    nsave = (size_t)(ki.markers_pa - ki.names_pa) + 64;
    save = (uint8_t *)malloc(nsave);
#define HOSTILE(what, pa, len, mutate)                                                            \
    do {                                                                                          \
        size_t at_ = (size_t)(pa), len_ = (size_t)(len);                                          \
        memcpy(save, img + at_, len_);                                                            \
        mutate;                                                                                   \
        st = recover_buf(img, n, 1, &s, err, sizeof err);                                         \
        CHECK(st != VMI_OK && err[0], "%s: expected a clean error, got %s (%s)", what,            \
              vmi_status_string(st), err);                                                        \
        if (st != VMI_OK) printf("  %-34s -> %s: %s\n", what, vmi_status_string(st), err);      \
        if (s) vmi__symtab_free(vmi, s), s = NULL;                                                \
        memcpy(img + at_, save, len_);                                                            \
    } while (0)
    HOSTILE("token table zeroed", ki.token_table_pa, 256, memset(img + at_, 0, len_));
    HOSTILE("token index shifted", ki.token_index_pa, 512, memmove(img + at_ + 2, save, len_ - 2));
    HOSTILE("names stream truncated (2nd half 0)", ki.names_pa + (ki.markers_pa - ki.names_pa) / 2,
            (ki.markers_pa - ki.names_pa) / 2, memset(img + at_, 0, len_));
    HOSTILE("names: first length byte changed", ki.names_pa, 1, img[at_] ^= 0x01);
    HOSTILE("num_syms huge", ki.num_syms_pa, 4, memset(img + at_, 0xff, 3));
    HOSTILE("num_syms 0x7fffffff", ki.num_syms_pa, 4, img[at_ + 3] = 0x7f);
    HOSTILE("num_syms + 1", ki.num_syms_pa, 4, img[at_] = (uint8_t)(img[at_] + 1));
    HOSTILE("markers inconsistent", ki.markers_pa + 4 * 5, 4, img[at_] = (uint8_t)(img[at_] + 1));
    HOSTILE("markers zeroed", ki.markers_pa, (ki.num_syms + 255) / 256 * 4, memset(img + at_, 0, len_));
    HOSTILE("offsets zeroed", ki.addresses_pa, (size_t)ki.num_syms * 4, memset(img + at_, 0, len_));
    HOSTILE("offsets scrambled", ki.addresses_pa, (size_t)ki.num_syms * 4,
            for (i = 0; i < len_; i += 4) img[at_ + i + 1] ^= (uint8_t)(i * 7));
    st = recover_buf(img, (size_t)ki.token_index_pa + 100, 1, &s, err, sizeof err);
    CHECK(st != VMI_OK, "image ending in the token index: got %s", vmi_status_string(st));
    st = recover_buf(img, (size_t)ki.token_table_pa + 0x40, 1, &s, err, sizeof err);
    CHECK(st != VMI_OK, "image ending in the token table: got %s", vmi_status_string(st));
    st = recover_buf(img, 4096, 1, &s, err, sizeof err);
    CHECK(st == VMI_ERR_NOT_FOUND, "a page of memory: expected not found, got %s", vmi_status_string(st));
    /* tokens only: the anchor at the very start of memory */
    st = recover_buf(img + ki.token_table_pa, (size_t)(ki.token_index_pa + 512 - ki.token_table_pa), 1, &s, err, sizeof err);
    CHECK(st == VMI_ERR_NOT_FOUND, "token table alone: expected not found, got %s", vmi_status_string(st));
    { /* random damage and cuts to a copy of just the tables: OK or a clean error, never a crash (ASan) */
        size_t lo = ((size_t)ki.addresses_pa - 8192) & ~(size_t)4095, hi = (size_t)ki.token_index_pa + 512 + 8192;
        size_t len = hi - lo, it, okc = 0, errc = 0;
        uint32_t x = 777;
        double tf = now_ms();
        for (it = 0; it < 240; it++) {
            size_t cut = len, k, nmut;
            uint8_t *b;
            x = x * 1103515245u + 12345u;
            if (it % 3 == 0) cut = 1 + (size_t)(x >> 4) % len;
            b = (uint8_t *)malloc(cut);
            memcpy(b, img + lo, cut);
            nmut = it % 3 ? 1 + it % 8 : 0;
            for (k = 0; k < nmut; k++) {
                x = x * 1103515245u + 12345u;
                b[(size_t)(ki.num_syms_pa - lo) + (size_t)(x >> 3) % (size_t)(ki.token_index_pa + 512 - ki.num_syms_pa)] ^=
                    (uint8_t)(1u << (x & 7));
            }
            st = recover_buf(b, cut, (int)(it & 1), &s, err, sizeof err);
            if (st == VMI_OK) okc++;
            else errc += err[0] != 0;
            CHECK(st == VMI_OK || err[0], "damage %zu: error without detail", it);
            if (s) vmi__symtab_free(vmi, s), s = NULL;
            free(b);
        }
        printf("  240 damaged/cut table copies         -> %zu recovered (damage inside names), %zu clean errors, %.0f ms\n", okc,
               errc, now_ms() - tf);
    }
    { /* many valid token tables, no symbols: a bounded search, then a limit */
        size_t tl = (size_t)(ki.token_index_pa + 512 - ki.token_table_pa), k, fsz = 64 * 65536;
        uint8_t *fake = (uint8_t *)calloc(1, fsz);
        double tf = now_ms();
        for (k = 0; k < 64; k++) memcpy(fake + k * 65536 + 4096, img + ki.token_table_pa, tl);
        st = recover_buf(fake, fsz, 1, &s, err, sizeof err);
        CHECK(st == VMI_ERR_LIMIT, "64 bare token tables: expected limit, got %s (%s)", vmi_status_string(st), err);
        printf("  64 bare token tables                -> %s in %.1f ms: %s\n", vmi_status_string(st), now_ms() - tf, err);
        free(fake);
    }
    free(save);
    vmi_close(vmi);
    free(img);
#undef HOSTILE
}

/* ---- other layouts, rebuilt from real tables ------------------------------- */
/* The tables of a recovered image laid out again: the 6.4+ order (num_syms,
   names, markers, token table, token index, offsets, relative_base, seqs)
   or without CONFIG_KALLSYMS_BASE_RELATIVE (kallsyms_addresses), between
   pseudo-random filler. Recovery must give back the same symbols. */
static size_t put(uint8_t *dst, size_t at, const void *src, size_t len, size_t align) {
    memcpy(dst + at, src, len);
    at += len;
    return (at + align - 1) & ~(align - 1);
}

static void test_relayout(const char *lab, const char *arch, int order_6_4, int absolute, int seq4) {
    char path[512], err[256];
    size_t n = 0, i, at, size, names_len, tok_len, bad = 0;
    uint8_t *img, *buf, w[8];
    vmi__symtab *s = NULL, *s2 = NULL;
    vmi__kallsyms_info ki;
    uint32_t p, nsym, x = 12345;
    uint64_t *addrs;
    test_context("relayout %s %s%s%s", arch, order_6_4 ? "6.4+" : "pre-6.4", absolute ? " absolute" : " base-relative",
                 seq4 ? " 4-byte seqs" : "");
    snprintf(path, sizeof path, "%s/%s/mem.raw", lab, arch);
    if (!(img = (uint8_t *)test_slurp(path, &n))) { CHECK(0, "read %s", path); return; }
    if (!CHECK(recover_buf(img, n, 1, &s, err, sizeof err) == VMI_OK, "baseline: %s", err)) { free(img); return; }
    ki = s->ks;
    p = ki.ptr_size;
    nsym = ki.num_syms;
    names_len = (size_t)(ki.markers_pa - ki.names_pa);
    tok_len = (size_t)(ki.token_index_pa - ki.token_table_pa);
    addrs = (uint64_t *)malloc(nsym * sizeof *addrs);
    for (i = 0; i < nsym; i++) { /* table order = address order (ties by name) */
        vmi__symtab_get(s, i, NULL, &addrs[i], NULL);
    }
    size = (size_t)nsym * 16 + names_len + tok_len + (8u << 20);
    buf = (uint8_t *)malloc(size);
    for (i = 0; i < size; i++) x = x * 1103515245u + 12345u, buf[i] = (uint8_t)(x >> 16);
    at = 1u << 20;
    if (!order_6_4) {
        if (absolute) {
            for (i = 0; i < nsym; i++) memcpy(buf + at + i * p, &addrs[i], p);
            at += (size_t)nsym * p;
        } else {
            at = put(buf, at, img + ki.addresses_pa, (size_t)nsym * 4, p);
            at = put(buf, at, img + ki.relative_base_pa, p, p);
        }
    }
    memset(w, 0, sizeof w);
    memcpy(w, &nsym, 4);
    at = put(buf, at, w, p, p); /* .long + .balign: zero padding */
    at = put(buf, at, img + ki.names_pa, names_len, p);
    at = put(buf, at, img + ki.markers_pa, ((size_t)nsym + 255) / 256 * 4, p);
    if (!order_6_4 && ki.has_seqs && seq4) { /* early 6.2: .long per symbol */
        for (i = 0; i < nsym; i++) memcpy(buf + at + 4 * i, &i, 4);
        at = (at + (size_t)nsym * 4 + p - 1) & ~(size_t)(p - 1);
    } else if (!order_6_4 && ki.has_seqs) {
        at = put(buf, at, img + ki.seqs_pa, (size_t)nsym * 3, p);
    }
    at = put(buf, at, img + ki.token_table_pa, tok_len, 1);
    at = put(buf, at, img + ki.token_index_pa, 512, p);
    if (order_6_4) {
        if (absolute) {
            for (i = 0; i < nsym; i++) memcpy(buf + at + i * p, &addrs[i], p);
            at += (size_t)nsym * p;
        } else {
            at = put(buf, at, img + ki.addresses_pa, (size_t)nsym * 4, p);
            at = put(buf, at, img + ki.relative_base_pa, p, p);
        }
        if (ki.has_seqs) put(buf, at, img + ki.seqs_pa, (size_t)nsym * 3, p);
    }
    if (CHECK(recover_buf(buf, size, 1, &s2, err, sizeof err) == VMI_OK, "recover: %s", err)) {
        CHECK_EQ(s2->ks.order_6_4, order_6_4);
        CHECK_EQ(s2->ks.base_relative, !absolute);
        CHECK_EQ(s2->ks.ptr_size, p);
        CHECK_EQ(vmi__symtab_count(s2), vmi__symtab_count(s));
        for (i = 0; i < vmi__symtab_count(s) && i < vmi__symtab_count(s2); i++) {
            const char *n1, *n2;
            uint64_t a1, a2;
            char t1, t2;
            vmi__symtab_get(s, i, &n1, &a1, &t1);
            vmi__symtab_get(s2, i, &n2, &a2, &t2);
            if (a1 == a2 && t1 == t2 && strcmp(n1, n2) == 0) continue;
            if (!bad++)
                CHECK(0, "symbol %zu: expected %c %s 0x%llx, got %c %s 0x%llx", i, t1, n1, (unsigned long long)a1, t2, n2,
                      (unsigned long long)a2);
        }
        CHECK(bad == 0, "%zu symbols differ", bad);
        printf("  relayout %-12s %-7s %-13s%s: %zu symbols, %zu differ\n", arch, order_6_4 ? "6.4+" : "pre-6.4",
               absolute ? "absolute" : "base-relative", seq4 ? " seqs .long" : "", i, bad);
    }
    {
        vmi_desc d;
        vmi_mem_range r;
        vmi_instance *vmi;
        memset(&d, 0, sizeof d);
        memset(&r, 0, sizeof r);
        r.size = 4096;
        r.host = buf;
        vmi_backend_buffer(&d.backend, &r, 1);
        if (vmi_open(&d, &vmi) == VMI_OK) {
            vmi__symtab_free(vmi, s);
            vmi__symtab_free(vmi, s2);
            vmi_close(vmi);
        }
    }
    free(addrs);
    free(buf);
    free(img);
}

/* ---- System.map parsing ------------------------------------------------------ */
static void test_sysmap_parse(void) {
    static const char text[] =
        "ffffffff81000000 T _text\n"
        "ffffffff81000000 T startup_64\n"
        "garbage line\n"
        "\n"
        "ffffffff81000040 t secondary\r\n"
        "zzzz T bad_hex\n"
        "ffffffff81000080T no_space\n"
        "ffffffff810000c0 T \n"
        "ffffffffffffffffff T too_long_address\n"
        "0000000000000000 A __per_cpu_start\n"
        "ffffffff81000100 t dup\n"
        "ffffffff81000200 t dup\n"
        "ffffffff81000300 T mod_sym\t[ext4]\n"
        "ffffffff81000050 W weak_one";
    vmi_desc d;
    vmi_mem_range r;
    vmi_instance *vmi;
    vmi__symtab *s = NULL;
    uint8_t page[4096];
    uint64_t a = 0, off = 0;
    char t = 0;
    const char *nm = NULL;
    test_context("System.map parse");
    memset(&d, 0, sizeof d);
    memset(&r, 0, sizeof r);
    memset(page, 0, sizeof page);
    r.size = sizeof page;
    r.host = page;
    vmi_backend_buffer(&d.backend, &r, 1);
    if (vmi_open(&d, &vmi) != VMI_OK) { CHECK(0, "open"); return; }
    if (CHECK(vmi__symtab_from_sysmap(vmi, text, sizeof text - 1, &s) == VMI_OK, "parse: %s", vmi_last_error(vmi))) {
        CHECK_EQ(vmi__symtab_count(s), 7);
        CHECK(vmi__symtab_find(s, "_text", &a, &t) == VMI_OK && a == 0xffffffff81000000ull && t == 'T', "_text");
        CHECK(vmi__symtab_find(s, "secondary", &a, &t) == VMI_OK && a == 0xffffffff81000040ull && t == 't', "CRLF line");
        CHECK(vmi__symtab_find(s, "weak_one", &a, &t) == VMI_OK && t == 'W', "last line without newline");
        CHECK(vmi__symtab_find(s, "dup", &a, NULL) == VMI_OK && a == 0xffffffff81000100ull, "duplicate: lowest, got 0x%llx",
              (unsigned long long)a);
        CHECK(vmi__symtab_find(s, "bad_hex", NULL, NULL) == VMI_ERR_NOT_FOUND, "bad hex skipped");
        CHECK(vmi__symtab_find(s, "no_space", NULL, NULL) == VMI_ERR_NOT_FOUND, "no space skipped");
        CHECK(vmi__symtab_find(s, "too_long_address", NULL, NULL) == VMI_ERR_NOT_FOUND, "17 digits skipped");
        CHECK(vmi__symtab_find(s, "mod_sym", NULL, NULL) == VMI_ERR_NOT_FOUND, "module line skipped");
        CHECK(vmi__symtab_nearest(s, 0xffffffff81000048ull, &nm, &off) == VMI_OK && strcmp(nm, "secondary") == 0 && off == 8,
              "nearest 0x...48: %s+0x%llx", nm ? nm : "?", (unsigned long long)off);
        CHECK(vmi__symtab_nearest(s, 0xffffffff81000058ull, &nm, &off) == VMI_OK && strcmp(nm, "weak_one") == 0 && off == 8,
              "nearest sorts unsorted input: %s+0x%llx", nm ? nm : "?", (unsigned long long)off);
        vmi__symtab_slide(s, 0x1000);
        CHECK(vmi__symtab_find(s, "_text", &a, NULL) == VMI_OK && a == 0xffffffff81001000ull, "slide moves _text");
        CHECK(vmi__symtab_find(s, "__per_cpu_start", &a, NULL) == VMI_OK && a == 0, "slide keeps absolute symbols");
        CHECK(vmi__symtab_nearest(s, 0x10, &nm, &off) == VMI_OK && strcmp(nm, "__per_cpu_start") == 0, "nearest low");
        CHECK(vmi__symtab_nearest(s, 0xffffffff81001000ull, &nm, &off) == VMI_OK && off == 0, "nearest after slide");
        vmi__symtab_free(vmi, s);
        s = NULL;
    }
    CHECK(vmi__symtab_from_sysmap(vmi, "not a map\nat all\n", 17, &s) == VMI_ERR_FORMAT && !s, "no symbols -> format error");
    CHECK(vmi__symtab_from_sysmap(vmi, "", 0, &s) == VMI_ERR_FORMAT && !s, "empty -> format error");
    CHECK(vmi__symtab_from_sysmap(vmi, "ffff T ", 7, &s) == VMI_ERR_FORMAT && !s, "no name -> format error");
    CHECK(vmi__symtab_nearest(NULL, 0, &nm, &off) == VMI_ERR_NOT_FOUND, "nearest on no table");
    vmi_close(vmi);
}

int main(int argc, char **argv) {
    const char *lab = argc > 1 ? argv[1] : "build/guests";
    struct stat sb;
    size_t i;
    if (argc <= 1 && stat(lab, &sb) != 0) lab = "build/guests";
    test_sysmap_parse();
    for (i = 0; i < sizeof arches / sizeof *arches; i++) test_arch(lab, arches[i]);
    test_hostile(lab);
    test_relayout(lab, "x86_64", 1, 0, 0);
    test_relayout(lab, "x86_64", 0, 1, 0);
    test_relayout(lab, "x86_64", 1, 1, 0);
    test_relayout(lab, "x86_64", 0, 0, 1);
    test_relayout(lab, "i386", 1, 0, 0);
    test_relayout(lab, "i386", 0, 1, 0);
    test_relayout(lab, "i386", 0, 0, 1);
    test_relayout(lab, "arm64", 1, 0, 0);
    test_relayout(lab, "armhf", 1, 1, 0);
    return test_summary();
}
