/* test_dmesg.c - tests of the printk ring buffer reader (vmi.h >>dmesg).

   1. Synthetic rings (4- and 8-byte longs) written the way the kernel's
      writer does (wrapping blocks, id and lpos overflow, empty and lost
      records, an unfinished head), decoded and compared record by record.
   2. Every lab guest under build/guests/ARCH: the records, formatted as
      dmesg formats them, equal the guest's own dmesg.txt (x86_64 ones and
      arm64 through BTF, every arch through VMCOREINFO; ELF, raw and LiME).
   3. Hostile memory on private writable copies: corrupted count_bits,
      size_bits, ids, lpos, text_len, block ids, pointers, and random bytes.

   Built and run by make test (plain and ASan+UBSan):
       cc -std=c99 -O2 -Wall -Wextra -Wpedantic -Werror -Wshadow -I. \
          tests/unit/test_dmesg.c -o build/unit/test_dmesg
   Run from the repository root or pass the guests directory as argv[1]. */
#define _POSIX_C_SOURCE 200809L
#define VMI_IMPLEMENTATION
#include "vmi.h"
#include "vmi_file.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>




static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void put_le(uint8_t *p, uint64_t v, unsigned n) {
    unsigned i;
    for (i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* ---- records collected from a walk --------------------------------------- */
typedef struct rec {
    uint64_t seq, ts;
    uint32_t level, facility;
    char *text;
    size_t len;
} rec;

typedef struct recs {
    rec *r;
    size_t n, cap, stop_after;
} recs;

static int collect(void *user, const vmi_log_record *lr) {
    recs *c = (recs *)user;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 256;
        c->r = (rec *)realloc(c->r, c->cap * sizeof *c->r);
    }
    c->r[c->n].seq = lr->seq;
    c->r[c->n].ts = lr->ts_nsec;
    c->r[c->n].level = lr->level;
    c->r[c->n].facility = lr->facility;
    c->r[c->n].len = lr->len;
    c->r[c->n].text = (char *)malloc(lr->len + 1);
    memcpy(c->r[c->n].text, lr->text, lr->len);
    c->r[c->n].text[lr->len] = 0;
    c->n++;
    return c->stop_after && c->n >= c->stop_after;
}

static int count_only(void *user, const vmi_log_record *lr) {
    (void)lr;
    ((recs *)user)->n++;
    return 0;
}

static void recs_free(recs *c) {
    size_t i;
    for (i = 0; i < c->n; i++) free(c->r[i].text);
    free(c->r);
    memset(c, 0, sizeof *c);
}

/* ---- 1. synthetic rings ---------------------------------------------------- */
/* A writer that follows kernel/printk/printk_ringbuffer.c (desc_reserve,
   data_alloc, get_next_lpos, data_push_tail, desc_push_tail). */
typedef struct sim {
    uint8_t *mem;
    uint64_t base, memsize;
    vmi__prb_layout L;
    unsigned ls, count_bits, size_bits;
    uint64_t lmask, idmask, count, size;
    uint64_t rb_va, descs_va, infos_va, data_va;
    uint64_t head_id, tail_id, head_lpos, tail_lpos;
    /* the live records, oldest first: what a reader should see */
    /* descriptors tail_id..head_id, oldest first: what a reader should see */
    struct live { uint64_t id, seq, next, ts; int dataless, state, reusable; unsigned len; char text[128]; } q[8192];
    size_t qh, qn;
    uint32_t rng;
} sim;

static uint32_t rnd(uint32_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static uint8_t *sim_at(sim *s, uint64_t va) { return s->mem + (va - s->base); }

static void sim_layout(sim *s) {
    /* the kernel's own layouts (VMCOREINFO of the lab's x86_64 and i386 guests) */
    char vc[4096];
    unsigned l = s->ls;
    snprintf(vc, sizeof vc,
             "OSRELEASE=synthetic\nSIZE(printk_ringbuffer)=%u\nOFFSET(printk_ringbuffer.desc_ring)=0\n"
             "OFFSET(printk_ringbuffer.text_data_ring)=%u\nOFFSET(printk_ringbuffer.fail)=%u\n"
             "SIZE(prb_desc_ring)=%u\nOFFSET(prb_desc_ring.count_bits)=0\nOFFSET(prb_desc_ring.descs)=%u\n"
             "OFFSET(prb_desc_ring.infos)=%u\nOFFSET(prb_desc_ring.head_id)=%u\nOFFSET(prb_desc_ring.tail_id)=%u\n"
             "SIZE(prb_desc)=%u\nOFFSET(prb_desc.state_var)=0\nOFFSET(prb_desc.text_blk_lpos)=%u\n"
             "SIZE(prb_data_blk_lpos)=%u\nOFFSET(prb_data_blk_lpos.begin)=0\nOFFSET(prb_data_blk_lpos.next)=%u\n"
             "SIZE(printk_info)=88\nOFFSET(printk_info.seq)=0\nOFFSET(printk_info.ts_nsec)=8\n"
             "OFFSET(printk_info.text_len)=16\nOFFSET(printk_info.caller_id)=20\nOFFSET(printk_info.dev_info)=24\n"
             "SIZE(prb_data_ring)=%u\nOFFSET(prb_data_ring.size_bits)=0\nOFFSET(prb_data_ring.data)=%u\n"
             "OFFSET(prb_data_ring.head_lpos)=%u\nOFFSET(prb_data_ring.tail_lpos)=%u\nSIZE(atomic_long_t)=%u\n"
             "SYMBOL(prb)=%llx\n",
             11 * l, 6 * l, 10 * l, 6 * l, l, 2 * l, 3 * l, 4 * l, 3 * l, l, 2 * l, l, 4 * l, l, 2 * l, 3 * l, l,
             (unsigned long long)s->rb_va - 64);
    {
        vmi_instance *v = NULL;
        vmi_desc d;
        vmi_mem_range r;
        vmi_status st;
        memset(&d, 0, sizeof d);
        r.pa = s->base;
        r.size = s->memsize;
        r.host = s->mem;
        r.flags = VMI_RANGE_WRITABLE;
        vmi_backend_buffer(&d.backend, &r, 1);
        d.paging.mode = VMI_PAGING_OFF;
        if (vmi_open(&d, &v) != VMI_OK) abort();
        st = vmi__prb_layout_vmcoreinfo(v, vc, strlen(vc), &s->L);
        CHECK(st == VMI_OK, "synthetic VMCOREINFO layout (long %u): %s", l, vmi_last_error(v));
        CHECK(s->L.info_level_bits == 3 && s->L.info_level_bit == 19 * 8 + 5 && s->L.has_facility &&
                  s->L.info_facility == 18 && s->L.long_size == l,
              "level/facility derived from caller_id: level bit %llu/%u facility %llu", (unsigned long long)s->L.info_level_bit,
              s->L.info_level_bits, (unsigned long long)s->L.info_facility);
        vmi_close(v);
    }
}

static void sim_init(sim *s, unsigned ls, unsigned count_bits, unsigned size_bits, uint32_t seed) {
    const vmi__prb_layout *L = &s->L;
    uint64_t desc0;
    memset(s, 0, sizeof *s);
    s->ls = ls;
    s->count_bits = count_bits;
    s->size_bits = size_bits;
    s->lmask = ls == 8 ? UINT64_MAX : 0xffffffffu;
    s->idmask = s->lmask >> 2;
    s->count = 1ull << count_bits;
    s->size = 1ull << size_bits;
    s->base = 0x100000;
    s->rb_va = s->base + 64;
    s->memsize = 1 << 20;
    s->mem = (uint8_t *)calloc(1, (size_t)s->memsize);
    s->rng = seed;
    sim_layout(s);
    s->descs_va = s->base + 0x1000;
    s->infos_va = s->descs_va + ((s->count * L->desc_size + 0xfff) & ~0xfffull);
    s->data_va = s->infos_va + ((s->count * L->info_size + 0xfff) & ~0xfffull);
    /* DEFINE_PRINTKRB: descs[0].info.seq = -count; the last descriptor is the
       reusable initial head and tail, DESC0_ID; the data ring at BLK0_LPOS. */
    desc0 = (0 - (s->count + 1)) & s->idmask;
    s->head_id = s->tail_id = desc0;
    s->head_lpos = s->tail_lpos = (0 - s->size) & s->lmask;
    put_le(sim_at(s, s->infos_va + 0 * L->info_size + L->info_seq), 0 - s->count, 8);
    put_le(sim_at(s, s->descs_va + (s->count - 1) * L->desc_size + L->desc_state_var), (3ull << (ls * 8 - 2)) | desc0, ls);
    put_le(sim_at(s, s->descs_va + (s->count - 1) * L->desc_size + L->desc_text_blk_lpos + L->lpos_begin), 1, ls);
    put_le(sim_at(s, s->descs_va + (s->count - 1) * L->desc_size + L->desc_text_blk_lpos + L->lpos_next), 1, ls);
    s->q[0].id = desc0;
    s->q[0].reusable = 1;
    s->q[0].dataless = 2;
    s->qn = 1;
}

static void sim_sync(sim *s) { /* the ring buffer struct from the writer's state */
    const vmi__prb_layout *L = &s->L;
    uint8_t *rb = sim_at(s, s->rb_va);
    put_le(rb + L->rb_desc_ring + L->dr_count_bits, s->count_bits, 4);
    put_le(rb + L->rb_desc_ring + L->dr_descs, s->descs_va, s->ls);
    put_le(rb + L->rb_desc_ring + L->dr_infos, s->infos_va, s->ls);
    put_le(rb + L->rb_desc_ring + L->dr_head_id, s->head_id, s->ls);
    put_le(rb + L->rb_desc_ring + L->dr_tail_id, s->tail_id, s->ls);
    put_le(rb + L->rb_text_data_ring + L->data_size_bits, s->size_bits, 4);
    put_le(rb + L->rb_text_data_ring + L->data_data, s->data_va, s->ls);
    put_le(rb + L->rb_text_data_ring + L->data_head_lpos, s->head_lpos, s->ls);
    put_le(rb + L->rb_text_data_ring + L->data_tail_lpos, s->tail_lpos, s->ls);
}

static void sim_set_state(sim *s, uint64_t id, unsigned state) {
    uint8_t *d = sim_at(s, s->descs_va + (id & (s->count - 1)) * s->L.desc_size + s->L.desc_state_var);
    put_le(d, ((uint64_t)state << (s->ls * 8 - 2)) | id, s->ls);
}

/* data_push_tail: data-bearing records up to and including q[k] become
   reusable, the data tail moves past them. */
static void sim_push_data(sim *s, size_t k) {
    size_t j;
    for (j = 0; j <= k && j < s->qn; j++) {
        struct live *e = &s->q[(s->qh + j) % 8192];
        if (e->reusable || e->dataless) continue;
        sim_set_state(s, e->id, 3);
        e->reusable = 1;
        s->tail_lpos = e->next;
    }
}

/* One record: state 1 committed, 2 finalized, 0 reserved (being written). */
static void sim_write(sim *s, const char *text, unsigned len, unsigned state) {
    const vmi__prb_layout *L = &s->L;
    uint64_t id = (s->head_id + 1) & s->idmask, idx = id & (s->count - 1);
    uint64_t begin = 0, next = 0, bsize, seq;
    uint8_t *info = sim_at(s, s->infos_va + idx * L->info_size), *desc;
    int dataless = 0;
    struct live *e;
    /* desc_reserve: the slot's previous id is the tail: push the tail */
    if (((id - s->count) & s->idmask) == s->tail_id) {
        if (!s->qn || s->q[s->qh].id != s->tail_id) abort();
        sim_push_data(s, 0);
        s->qh = (s->qh + 1) % 8192;
        s->qn--;
        s->tail_id = (s->tail_id + 1) & s->idmask;
    }
    seq = vmi__prb_get(info + L->info_seq, 8);
    if (seq == 0 && idx != 0) seq = idx;
    else seq += s->count;
    put_le(info + L->info_seq, seq, 8);
    /* data_alloc */
    bsize = ((uint64_t)len + s->ls + s->ls - 1) & ~(uint64_t)(s->ls - 1);
    if (len == 0) {
        begin = next = 3; /* NO_LPOS */
        dataless = 1;
    } else if (bsize > s->size / 2) {
        begin = next = 1; /* FAILED_LPOS: the text is lost */
        dataless = 2;
    } else {
        begin = s->head_lpos;
        next = (begin + bsize) & s->lmask;
        if ((begin >> s->size_bits) != (next >> s->size_bits)) /* get_next_lpos: wrap to index 0 */
            next = ((next & ~(s->size - 1)) + bsize) & s->lmask;
        {
            size_t k = 0;
            while (((next - s->tail_lpos) & s->lmask) > s->size) { /* data_push_tail */
                if (k >= s->qn) abort();
                sim_push_data(s, k++);
            }
        }
        put_le(s->mem + (s->data_va - s->base) + (begin & (s->size - 1)), id, s->ls);
        if ((begin >> s->size_bits) != (next >> s->size_bits) || (next & (s->size - 1)) < bsize) {
            put_le(s->mem + (s->data_va - s->base), id, s->ls);
            memcpy(s->mem + (s->data_va - s->base) + s->ls, text, len);
        } else {
            memcpy(s->mem + (s->data_va - s->base) + (begin & (s->size - 1)) + s->ls, text, len);
        }
        s->head_lpos = next;
    }
    desc = sim_at(s, s->descs_va + idx * L->desc_size);
    put_le(desc + L->desc_text_blk_lpos + L->lpos_begin, begin, s->ls);
    put_le(desc + L->desc_text_blk_lpos + L->lpos_next, next, s->ls);
    put_le(info + L->info_ts_nsec, 1000000ull * seq + 7, 8);
    put_le(info + L->info_text_len, dataless == 2 ? len : len, 2);
    info[L->info_facility] = (uint8_t)(seq % 3 == 0);
    info[L->info_level_bit / 8] = (uint8_t)((len % 8) << 5 | 0x4); /* flags: LOG_NEWLINE */
    sim_set_state(s, id, state);
    s->head_id = id;
    e = &s->q[(s->qh + s->qn) % 8192];
    s->qn++;
    e->id = id;
    e->seq = seq;
    e->next = next;
    e->ts = 1000000ull * seq + 7;
    e->dataless = dataless;
    e->state = (int)state;
    e->reusable = 0;
    e->len = len;
    memcpy(e->text, text, len < sizeof e->text ? len : sizeof e->text);
    sim_sync(s);
}

static vmi_instance *sim_open(sim *s) {
    vmi_desc d;
    static vmi_mem_range r;
    vmi_instance *v = NULL;
    memset(&d, 0, sizeof d);
    r.pa = s->base;
    r.size = s->memsize;
    r.host = s->mem;
    r.flags = VMI_RANGE_WRITABLE;
    vmi_backend_buffer(&d.backend, &r, 1);
    d.paging.mode = VMI_PAGING_OFF;
    if (vmi_open(&d, &v) != VMI_OK) abort();
    return v;
}

/* Decodes and compares with the writer's live records. */
static void sim_check(sim *s, const char *what) {
    vmi_instance *v = sim_open(s);
    recs c;
    vmi__prb_stats S;
    size_t i, k = 0, bad = 0;
    uint64_t lost = 0, unfinished = 0;
    vmi_status st;
    memset(&c, 0, sizeof c);
    st = vmi__prb_walk_stats(v, s->rb_va, &s->L, collect, &c, &S);
    CHECK(st == VMI_OK, "%s: walk: %s", what, vmi_last_error(v));
    for (i = 0; i < s->qn; i++) {
        const struct live *e = &s->q[(s->qh + i) % 8192];
        if (e->state == 0 || e->reusable) { unfinished++; continue; }
        if (e->dataless == 2) { lost++; continue; }
        if (k >= c.n) { bad++; continue; }
        if (c.r[k].seq != e->seq || c.r[k].len != e->len || memcmp(c.r[k].text, e->text, e->len) != 0 ||
            c.r[k].ts != e->ts || c.r[k].level != e->len % 8 || c.r[k].facility != (uint32_t)(e->seq % 3 == 0)) {
            if (!bad)
                printf("  %s: record %zu: expected seq %llu len %u \"%.*s\", got seq %llu len %zu \"%s\"\n", what, k,
                       (unsigned long long)e->seq, e->len, (int)e->len, e->text, (unsigned long long)c.r[k].seq,
                       c.r[k].len, c.r[k].text);
            bad++;
        }
        k++;
    }
    CHECK(bad == 0 && k == c.n, "%s: %zu records differ; expected %zu, got %zu", what, bad, k, c.n);
    CHECK(S.skipped == 0 && S.lost == lost, "%s: skipped %llu (expected 0), lost %llu (expected %llu)", what,
          (unsigned long long)S.skipped, (unsigned long long)S.lost, (unsigned long long)lost);
    (void)unfinished;
    recs_free(&c);
    vmi_close(v);
}

static void test_synthetic(unsigned ls) {
    static sim s;
    char text[128], what[64];
    unsigned i, wraps = 0;
    uint64_t first_lpos, first_id;
    sim_init(&s, ls, 4, 8, 0x12345u + ls);
    first_lpos = s.head_lpos;
    first_id = s.head_id;
    snprintf(what, sizeof what, "synthetic long=%u empty", ls);
    sim_sync(&s);
    sim_check(&s, what); /* the bootstrap state: no records */
    for (i = 0; i < 300; i++) {
        unsigned len = rnd(&s.rng) % 61, j, state = 2;
        uint64_t before = s.head_lpos;
        if (i % 17 == 5) len = 0;            /* empty record: NO_LPOS */
        if (i % 53 == 7) len = 100;          /* over half the ring: FAILED_LPOS */
        if (i == 299) state = 1;             /* committed, not yet finalized */
        for (j = 0; j < len && j < sizeof text; j++) text[j] = (char)('a' + (i + j) % 26);
        if (len > 6) memcpy(text, "line\nx", 6); /* multi-line text */
        sim_write(&s, text, len, state);
        if (((s.head_lpos ^ before) >> 8) && len && len <= 60 && (s.head_lpos & 255) == ((len + 2 * ls - 1) & ~(ls - 1u)))
            wraps++;
        if (i == 40 || i == 150 || i == 299) {
            snprintf(what, sizeof what, "synthetic long=%u after %u", ls, i + 1);
            sim_check(&s, what);
        }
    }
    CHECK(wraps > 3, "synthetic long=%u: %u wrapping blocks written", ls, wraps);
    CHECK(s.head_id < first_id && s.head_lpos < first_lpos, "synthetic long=%u: ids and lpos overflowed", ls);
    /* a reserved record at the head is not delivered */
    sim_write(&s, "being written", 13, 0);
    snprintf(what, sizeof what, "synthetic long=%u reserved head", ls);
    sim_check(&s, what);

    /* stop on request */
    {
        vmi_instance *v = sim_open(&s);
        recs c;
        memset(&c, 0, sizeof c);
        c.stop_after = 3;
        CHECK(vmi__prb_walk(v, s.rb_va, &s.L, collect, &c) == VMI_OK && c.n == 3, "callback stop: %zu records", c.n);
        recs_free(&c);
        vmi_close(v);
    }

    /* random bytes anywhere in the structures: no crash, never more records */
    {
        vmi_instance *v = sim_open(&s);
        uint8_t *save = (uint8_t *)malloc((size_t)s.memsize);
        unsigned it, okruns = 0;
        uint64_t span = s.data_va + s.size - s.base;
        memcpy(save, s.mem, (size_t)s.memsize);
        for (it = 0; it < 20000; it++) {
            recs c;
            unsigned nflip = 1 + rnd(&s.rng) % 4, f;
            memset(&c, 0, sizeof c);
            for (f = 0; f < nflip; f++) {
                uint64_t off;
                switch (rnd(&s.rng) % 4) {
                case 0: off = s.rb_va - s.base + rnd(&s.rng) % s.L.rb_size; break;
                case 1: off = s.descs_va - s.base + rnd(&s.rng) % (s.count * s.L.desc_size); break;
                case 2: off = s.infos_va - s.base + rnd(&s.rng) % (s.count * s.L.info_size); break;
                default: off = rnd(&s.rng) % span; break;
                }
                s.mem[off] = (uint8_t)rnd(&s.rng);
            }
            if (vmi__prb_walk(v, s.rb_va, &s.L, collect, &c) == VMI_OK) okruns++;
            CHECK(c.n <= s.count, "fuzz: %zu records from a ring of %llu", c.n, (unsigned long long)s.count);
            recs_free(&c);
            memcpy(s.mem, save, (size_t)s.memsize);
        }
        printf("synthetic long=%u: 20000 random corruptions, %u walks ok, no crash\n", ls, okruns);
        free(save);
        vmi_close(v);
    }
    free(s.mem);
}

/* A full ring the size of the lab kernels' (4096 descriptors, 128 KiB of
   text): decode time. */
static void bench_full(unsigned ls) {
    static sim s;
    char text[64], what[64];
    unsigned i, reps = 200;
    vmi_instance *v;
    double t0, t1;
    recs c;
    sim_init(&s, ls, 12, 17, 777u + ls);
    for (i = 0; i < 10000; i++) {
        unsigned len = 16 + rnd(&s.rng) % 17, j;
        for (j = 0; j < len; j++) text[j] = (char)('A' + (i + j) % 26);
        sim_write(&s, text, len, 2);
    }
    snprintf(what, sizeof what, "full ring long=%u", ls);
    sim_check(&s, what);
    v = sim_open(&s);
    memset(&c, 0, sizeof c);
    t0 = now_ms();
    for (i = 0; i < reps; i++) {
        c.n = 0;
        vmi__prb_walk(v, s.rb_va, &s.L, count_only, &c);
    }
    t1 = now_ms();
    printf("%s: %zu records decoded in %.3f ms per walk (ring %u KiB, %u descriptors)\n", what, c.n,
           (t1 - t0) / reps, 1u << (17 - 10), 1u << 12);
    CHECK(c.n > 2000, "%s: %zu records", what, c.n);
    vmi_close(v);
    free(s.mem);
}

/* ---- 2. the lab guests ------------------------------------------------------ */
static const char *g_dir = "build/guests";

/* The string value of "key" at or after `from` in a JSON text. */
static int jstr(const char *from, const char *key, char *out, size_t cap) {
    char pat[128];
    const char *p, *e;
    snprintf(pat, sizeof pat, "\"%s\":", key);
    if (!from || !(p = strstr(from, pat))) return 0;
    p += strlen(pat);
    while (*p == ' ' || *p == '\n') p++;
    if (*p != '"') return 0;
    p++;
    e = strchr(p, '"');
    if (!e || (size_t)(e - p) >= cap) return 0;
    memcpy(out, p, (size_t)(e - p));
    out[e - p] = 0;
    return 1;
}

static uint64_t jhex(const char *from, const char *key) {
    char v[64];
    return jstr(from, key, v, sizeof v) ? strtoull(v, NULL, 16) : 0;
}

typedef struct guest {
    const char *arch;
    int btf;
    char *truth;
    char *dmesg;
    size_t dmesg_len;
    uint64_t ram_base;
} guest;

static int set_paging(vmi_instance *v, const guest *g) {
    vmi_paging p;
    const char *regs = strstr(g->truth, "\"regs\":");
    memset(&p, 0, sizeof p);
    if (!strncmp(g->arch, "x86_64", 6) || !strncmp(g->arch, "i386", 4)) {
        uint64_t cr4 = jhex(regs, "cr4"), efer = jhex(regs, "efer");
        p.dtb = jhex(regs, "cr3");
        if (!strncmp(g->arch, "x86_64", 6)) p.mode = (cr4 >> 12) & 1 ? VMI_PAGING_LA57 : VMI_PAGING_IA32E;
        else if ((cr4 >> 5) & 1) p.mode = VMI_PAGING_PAE;
        else {
            p.mode = VMI_PAGING_LEGACY;
            if (!((cr4 >> 4) & 1)) p.flags |= VMI_PAGING_NO_PSE;
        }
        if ((efer >> 11) & 1) p.flags |= VMI_PAGING_NXE;
    } else if (!strcmp(g->arch, "arm64")) {
        p.mode = VMI_PAGING_AARCH64;
        p.dtb = jhex(regs, "TTBR1_EL1");
        p.tcr = jhex(regs, "TCR_EL1");
    } else {
        uint64_t ttbcr = jhex(regs, "TTBCR");
        p.tcr = ttbcr;
        if (ttbcr >> 31) {
            p.mode = VMI_PAGING_LPAE;
            p.dtb = (ttbcr & 0x70007) ? jhex(regs, "TTBR1") : jhex(regs, "TTBR0");
        } else {
            p.mode = VMI_PAGING_AARCH32;
            p.dtb = jhex(regs, "TTBR0");
        }
    }
    return vmi_set_paging(v, &p) == VMI_OK;
}

static vmi_instance *open_guest(const guest *g, const char *fmt, int *auto_paging) {
    char path[512], err[256];
    vmi_file_desc fd;
    vmi_desc d;
    vmi_instance *v = NULL;
    memset(&fd, 0, sizeof fd);
    memset(&d, 0, sizeof d);
    snprintf(path, sizeof path, "%s/%s/mem.%s", g_dir, g->arch, fmt);
    fd.path = path;
    if (!strcmp(fmt, "raw")) fd.base = g->ram_base;
    if (vmi_file_open(&fd, &d.backend, err, sizeof err) != VMI_OK) {
        printf("  %s: %s\n", path, err);
        return NULL;
    }
    if (vmi_open(&d, &v) != VMI_OK) return NULL;
    *auto_paging = vmi_get_paging(v)->mode != VMI_PAGING_UNKNOWN;
    if (!*auto_paging && !set_paging(v, g)) {
        printf("  %s: paging: %s\n", path, vmi_last_error(v));
        vmi_close(v);
        return NULL;
    }
    return v;
}

/* The VMCOREINFO text: the core's note, else the kernel's own note in guest
   memory (truth "sys_kernel_vmcoreinfo" paddr, /sys/kernel/vmcoreinfo). */
static char *get_vmcoreinfo(vmi_instance *v, const guest *g, size_t *len, const char **from) {
    const void *note;
    size_t nlen;
    uint8_t hdr[12];
    uint64_t pa = jhex(strstr(g->truth, "\"sys_kernel_vmcoreinfo\""), "paddr");
    uint32_t namesz, descsz;
    char *t;
    if (vmi_get_note(v, "VMCOREINFO", &note, &nlen) == VMI_OK) {
        t = (char *)malloc(nlen + 1);
        memcpy(t, note, nlen);
        t[nlen] = 0;
        *len = nlen;
        *from = "ELF note";
        return t;
    }
    if (!pa || vmi_read_pa(v, pa, hdr, 12, NULL) != VMI_OK) return NULL;
    namesz = (uint32_t)vmi__prb_get(hdr, 4);
    descsz = (uint32_t)vmi__prb_get(hdr + 4, 4);
    if (namesz != 11 || descsz > 65536) return NULL;
    t = (char *)calloc(1, descsz + 1);
    if (vmi_read_pa(v, pa + 12 + 12, t, descsz, NULL) != VMI_OK) {
        free(t);
        return NULL;
    }
    *len = strnlen(t, descsz);
    *from = "guest memory";
    return t;
}

static uint64_t kallsyms_prb(const guest *g) {
    char path[512], line[512];
    FILE *f;
    uint64_t va = 0;
    snprintf(path, sizeof path, "%s/%s/kallsyms.txt", g_dir, g->arch);
    if (!(f = fopen(path, "r"))) return 0;
    while (fgets(line, sizeof line, f)) {
        char *sp = strchr(line, ' ');
        if (sp && !strcmp(sp, " d prb\n")) {
            va = strtoull(line, NULL, 16);
            break;
        }
    }
    fclose(f);
    return va;
}

/* dmesg's lines: "[%5lu.%06lu] " before every line of a record's text
   (kernel/printk/printk.c record_print_text; busybox strips the "<N>"). */
static char *format_dmesg(const recs *c, size_t *len) {
    size_t cap = 1 << 16, n = 0, i;
    char *out = (char *)malloc(cap);
    for (i = 0; i < c->n; i++) {
        const char *t = c->r[i].text, *end = t + c->r[i].len;
        for (;;) {
            const char *nl = memchr(t, '\n', (size_t)(end - t));
            size_t ll = nl ? (size_t)(nl - t) : (size_t)(end - t);
            while (n + ll + 64 > cap) out = (char *)realloc(out, cap *= 2);
            n += (size_t)sprintf(out + n, "[%5lu.%06lu] ", (unsigned long)(c->r[i].ts / 1000000000u),
                                 (unsigned long)(c->r[i].ts % 1000000000u / 1000u));
            memcpy(out + n, t, ll);
            n += ll;
            out[n++] = '\n';
            if (!nl) break;
            t = nl + 1;
        }
    }
    out[n] = 0;
    *len = n;
    return out;
}

/* Same lines in the same order; extra lines allowed only after the last. */
static void compare_dmesg(const guest *g, const char *what, const recs *c) {
    size_t glen, el = 0, gl = 0, line = 0;
    char *got = format_dmesg(c, &glen);
    const char *e = g->dmesg, *p = got;
    size_t i;
    int ok = 1, seq_ok = 1, lvl_ok = 1;
    for (i = 1; i < c->n; i++)
        if (c->r[i].seq <= c->r[i - 1].seq) seq_ok = 0;
    for (i = 0; i < c->n; i++)
        if (c->r[i].level > 7) lvl_ok = 0;
    CHECK(seq_ok && lvl_ok, "%s: sequence numbers increase (%d), levels <= 7 (%d)", what, seq_ok, lvl_ok);
    while (*e) {
        const char *ee = strchr(e, '\n'), *pe;
        size_t elen = ee ? (size_t)(ee - e) : strlen(e);
        line++;
        if (!*p) {
            printf("  %s: line %zu: expected \"%.*s\", got end of log\n", what, line, (int)elen, e);
            ok = 0;
            break;
        }
        pe = strchr(p, '\n');
        if ((size_t)(pe - p) != elen || memcmp(p, e, elen) != 0) {
            printf("  %s: line %zu: expected \"%.*s\"\n  %*s got      \"%.*s\"\n", what, line, (int)elen, e,
                   (int)strlen(what), "", (int)(pe - p), p);
            ok = 0;
            break;
        }
        el++;
        p = pe + 1;
        e = ee ? ee + 1 : e + elen;
    }
    while (*p) {
        gl++;
        p = strchr(p, '\n') + 1;
    }
    CHECK(ok, "%s: decoded log equals dmesg.txt (%zu lines matched)", what, el);
    if (ok) printf("  %s: %zu records, %zu lines = dmesg.txt, %zu later lines\n", what, c->n, el, gl);
    free(got);
}

static int load_btf(vmi_instance *v, const guest *g) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s/vmlinux.btf", g_dir, g->arch);
    if (vmi_load_profile(v, path) != VMI_OK) {
        printf("  %s: %s\n", path, vmi_last_error(v));
        return 0;
    }
    return 1;
}

typedef struct hostile_ctx {
    vmi_instance *v;
    uint64_t prb_va;
    vmi__prb_layout L;
    size_t base_n;
    vmi__prb_stats base_S;
    uint64_t mid_seq; /* a delivered record in the middle */
} hostile_ctx;

static vmi_status walk_n(hostile_ctx *h, size_t *n, vmi__prb_stats *S) {
    recs c;
    vmi_status st;
    memset(&c, 0, sizeof c);
    st = vmi__prb_walk_stats(h->v, h->prb_va, &h->L, collect, &c, S);
    *n = c.n;
    recs_free(&c);
    return st;
}

static uint64_t rd(hostile_ctx *h, uint64_t va, unsigned n) {
    uint8_t b[8];
    if (vmi_read_kva(h->v, va, b, n, NULL) != VMI_OK) return 0;
    return vmi__prb_get(b, n);
}

static void wr(hostile_ctx *h, uint64_t va, uint64_t val, unsigned n) {
    uint8_t b[8];
    put_le(b, val, n);
    if (vmi_write_kva(h->v, va, b, n, NULL) != VMI_OK) printf("  write at 0x%llx failed\n", (unsigned long long)va);
}

/* Corrupts n bytes at va with val, walks, restores; returns the outcome. */
static vmi_status poke(hostile_ctx *h, uint64_t va, uint64_t val, unsigned n, size_t *recs_n, vmi__prb_stats *S) {
    uint64_t old = rd(h, va, n);
    vmi_status st;
    wr(h, va, val, n);
    st = walk_n(h, recs_n, S);
    wr(h, va, old, n);
    return st;
}

static void test_hostile(const guest *g, hostile_ctx *h, const char *what) {
    const vmi__prb_layout *L = &h->L;
    unsigned ls = L->long_size;
    uint64_t dr = h->prb_va + L->rb_desc_ring, tr = h->prb_va + L->rb_text_data_ring;
    uint32_t cb = (uint32_t)rd(h, dr + L->dr_count_bits, 4), sb = (uint32_t)rd(h, tr + L->data_size_bits, 4);
    uint64_t count = 1ull << cb, idmask = (ls == 8 ? UINT64_MAX : 0xffffffffull) >> 2;
    uint64_t head = rd(h, dr + L->dr_head_id, ls), tail = rd(h, dr + L->dr_tail_id, ls);
    uint64_t descs = rd(h, dr + L->dr_descs, L->ptr_size), infos = rd(h, dr + L->dr_infos, L->ptr_size);
    uint64_t data = rd(h, tr + L->data_data, L->ptr_size), tl = rd(h, tr + L->data_tail_lpos, ls);
    uint64_t idx = h->mid_seq & (count - 1);
    uint64_t dva = descs + idx * L->desc_size, iva = infos + idx * L->info_size;
    uint64_t bva = dva + L->desc_text_blk_lpos + L->lpos_begin, nva = dva + L->desc_text_blk_lpos + L->lpos_next;
    uint64_t begin = rd(h, bva, ls), next = rd(h, nva, ls), sv = rd(h, dva + L->desc_state_var, ls);
    size_t n;
    vmi__prb_stats S;
    vmi_status st;
    unsigned i;
    (void)g;

#define EXPECT_ERR(expr, label)                                                                            \
    do {                                                                                                   \
        st = (expr);                                                                                       \
        CHECK(st != VMI_OK, "%s: %s: expected an error, got %zu records", what, label, n);                \
    } while (0)
#define EXPECT_CLEAN(expr, label)                                                                          \
    do {                                                                                                   \
        st = (expr);                                                                                       \
        CHECK(st != VMI_OK || n <= count, "%s: %s: %zu records", what, label, n);                         \
    } while (0)
#define EXPECT_SKIP1(expr, label, field)                                                                   \
    do {                                                                                                   \
        st = (expr);                                                                                       \
        CHECK(st == VMI_OK && n == h->base_n - 1 && S.field == h->base_S.field + 1,                        \
              "%s: %s: expected %zu records and one more " #field ", got %s, %zu records, " #field " %llu", \
              what, label, h->base_n - 1, vmi_status_string(st), n, (unsigned long long)S.field);          \
    } while (0)

    n = 0;
    EXPECT_ERR(poke(h, dr + L->dr_count_bits, 0xffffffffu, 4, &n, &S), "count_bits 0xffffffff");
    EXPECT_ERR(poke(h, dr + L->dr_count_bits, 27, 4, &n, &S), "count_bits 27");
    EXPECT_ERR(poke(h, dr + L->dr_count_bits, 0, 4, &n, &S), "count_bits 0");
    EXPECT_CLEAN(poke(h, dr + L->dr_count_bits, cb + 1, 4, &n, &S), "count_bits + 1");
    EXPECT_CLEAN(poke(h, dr + L->dr_count_bits, cb - 1, 4, &n, &S), "count_bits - 1");
    EXPECT_ERR(poke(h, tr + L->data_size_bits, 0xffffffffu, 4, &n, &S), "size_bits 0xffffffff");
    EXPECT_ERR(poke(h, tr + L->data_size_bits, 31, 4, &n, &S), "size_bits 31");
    EXPECT_ERR(poke(h, tr + L->data_size_bits, 2, 4, &n, &S), "size_bits 2");
    EXPECT_CLEAN(poke(h, tr + L->data_size_bits, sb - 1, 4, &n, &S), "size_bits - 1");
    EXPECT_CLEAN(poke(h, tr + L->data_size_bits, sb + 1, 4, &n, &S), "size_bits + 1");
    EXPECT_CLEAN(poke(h, tr + L->data_size_bits, 30, 4, &n, &S), "size_bits 30");
    EXPECT_ERR(poke(h, dr + L->dr_head_id, tail - 1, ls, &n, &S), "head id = tail id - 1");
    EXPECT_ERR(poke(h, dr + L->dr_head_id, tail + count, ls, &n, &S), "head id = tail id + count");
    EXPECT_ERR(poke(h, dr + L->dr_tail_id, head + 1, ls, &n, &S), "tail id = head id + 1");
    EXPECT_CLEAN(poke(h, dr + L->dr_head_id, head - 1, ls, &n, &S), "head id - 1");
    CHECK(st == VMI_OK && n <= h->base_n, "%s: head id - 1: %zu records of %zu", what, n, h->base_n);
    EXPECT_CLEAN(poke(h, dr + L->dr_head_id, head ^ (idmask & ~(count - 1)), ls, &n, &S), "head id high bits flipped");
    EXPECT_CLEAN(poke(h, dr + L->dr_tail_id, head, ls, &n, &S), "tail id = head id");
    CHECK(n <= 1, "%s: tail id = head id: %zu records", what, n);
    EXPECT_ERR(poke(h, tr + L->data_head_lpos, tl + 3 * (1ull << sb), ls, &n, &S), "head lpos 3 rings past tail");
    st = poke(h, tr + L->data_tail_lpos, tl + ls, ls, &n, &S);
    CHECK(st == VMI_OK && n < h->base_n && S.skipped > h->base_S.skipped,
          "%s: tail lpos moved on: records before it skipped (%s, %zu of %zu)", what, vmi_status_string(st), n, h->base_n);
    EXPECT_ERR(poke(h, tr + L->data_tail_lpos, tl + 1, ls, &n, &S), "tail lpos unaligned");
    EXPECT_CLEAN(poke(h, tr + L->data_data, 0, L->ptr_size, &n, &S), "data pointer NULL");
    EXPECT_CLEAN(poke(h, tr + L->data_data, data + 3, L->ptr_size, &n, &S), "data pointer + 3");
    EXPECT_CLEAN(poke(h, dr + L->dr_descs, 0x1000, L->ptr_size, &n, &S), "descs pointer 0x1000");
    CHECK(n == 0, "%s: descs pointer 0x1000: %zu records", what, n);
    EXPECT_CLEAN(poke(h, dr + L->dr_infos, infos + 8, L->ptr_size, &n, &S), "infos pointer + 8");
    /* one record's descriptor, info and data block */
    EXPECT_SKIP1(poke(h, bva, next, ls, &n, &S), "lpos begin = next", skipped);
    EXPECT_SKIP1(poke(h, nva, begin + 2 * (1ull << sb), ls, &n, &S), "lpos next two rings on", skipped);
    EXPECT_SKIP1(poke(h, nva, begin - 8, ls, &n, &S), "lpos next before begin", skipped);
    EXPECT_SKIP1(poke(h, bva, begin + 1, ls, &n, &S), "lpos begin unaligned", skipped);
    EXPECT_SKIP1(poke(h, bva, 5, ls, &n, &S), "lpos begin 5", skipped);
    EXPECT_SKIP1(poke(h, bva, 1, ls, &n, &S), "lpos begin FAILED_LPOS, next not", skipped);
    {
        uint64_t ob = rd(h, bva, ls), on = rd(h, nva, ls);
        wr(h, bva, 1, ls);
        wr(h, nva, 1, ls);
        EXPECT_SKIP1(walk_n(h, &n, &S), "FAILED_LPOS (lost text)", lost);
        wr(h, bva, 3, ls);
        wr(h, nva, 3, ls);
        EXPECT_SKIP1(walk_n(h, &n, &S), "NO_LPOS with text_len > 0", skipped);
        wr(h, bva, ob, ls);
        wr(h, nva, on, ls);
    }
    EXPECT_SKIP1(poke(h, iva + L->info_text_len, 0xffff, 2, &n, &S), "text_len 0xffff", skipped);
    EXPECT_SKIP1(poke(h, iva + L->info_seq, h->mid_seq + 1, 8, &n, &S), "seq + 1", skipped);
    EXPECT_SKIP1(poke(h, dva + L->desc_state_var, sv ^ 1, ls, &n, &S), "state_var id", skipped);
    EXPECT_SKIP1(poke(h, dva + L->desc_state_var, sv | 3ull << (ls * 8 - 2), ls, &n, &S), "state reusable", unfinished);
    EXPECT_SKIP1(poke(h, data + (begin & ((1ull << sb) - 1)), ~sv, ls, &n, &S), "block id", skipped);
    /* random bytes in the ring buffer struct, the descriptors and infos near
       the record, and the data ring */
    {
        uint32_t r = 0x9e3779b9u;
        unsigned okruns = 0;
        for (i = 0; i < 3000; i++) {
            uint64_t va;
            switch (rnd(&r) % 4) {
            case 0: va = h->prb_va + rnd(&r) % L->rb_size; break;
            case 1: va = descs + ((idx + rnd(&r) % 64) & (count - 1)) * L->desc_size + rnd(&r) % L->desc_size; break;
            case 2: va = infos + ((idx + rnd(&r) % 64) & (count - 1)) * L->info_size + rnd(&r) % 24; break;
            default: va = data + rnd(&r) % (1u << sb); break;
            }
            if (poke(h, va, rnd(&r) & 0xff, 1, &n, &S) == VMI_OK) okruns++;
            CHECK(n <= count, "%s: random byte at 0x%llx: %zu records", what, (unsigned long long)va, n);
        }
        printf("  %s: 3000 random byte corruptions, %u walks ok, no crash\n", what, okruns);
    }
    /* untouched again */
    st = walk_n(h, &n, &S);
    CHECK(st == VMI_OK && n == h->base_n, "%s: restored: %zu records of %zu", what, n, h->base_n);
#undef EXPECT_ERR
#undef EXPECT_CLEAN
#undef EXPECT_SKIP1
}

static void test_guest(const char *arch, int btf) {
    guest g;
    char path[512], sym_s[64];
    const char *fmts[] = {"elf", "raw", "lime"};
    size_t f, vlen = 0;
    uint64_t sym_vmci = 0, sym_ks;
    memset(&g, 0, sizeof g);
    g.arch = arch;
    g.btf = btf;
    snprintf(path, sizeof path, "%s/%s/truth.json", g_dir, arch);
    g.truth = test_slurp(path, NULL);
    snprintf(path, sizeof path, "%s/%s/dmesg.txt", g_dir, arch);
    g.dmesg = test_slurp(path, &g.dmesg_len);
    if (!g.truth || !g.dmesg) {
        printf("SKIP %s: no capture under %s\n", arch, g_dir);
        free(g.truth);
        free(g.dmesg);
        return;
    }
    g.ram_base = jhex(g.truth, "ram_base");
    if (jstr(strstr(g.truth, "\"vmcoreinfo\":"), "SYMBOL(prb)", sym_s, sizeof sym_s)) sym_vmci = strtoull(sym_s, NULL, 16);
    sym_ks = kallsyms_prb(&g);
    if (sym_ks) CHECK(sym_ks == sym_vmci, "%s: kallsyms prb 0x%llx = VMCOREINFO SYMBOL(prb) 0x%llx", arch,
                      (unsigned long long)sym_ks, (unsigned long long)sym_vmci);
    printf("%s: prb symbol 0x%llx (%s)\n", arch, (unsigned long long)(sym_ks ? sym_ks : sym_vmci),
           sym_ks ? "kallsyms.txt" : "VMCOREINFO");

    for (f = 0; f < 3; f++) {
        int auto_paging = 0, pass;
        vmi_instance *v = open_guest(&g, fmts[f], &auto_paging);
        const char *vfrom = "";
        char *vmci;
        uint64_t prb_va = 0, sym = sym_ks ? sym_ks : sym_vmci;
        if (!v) {
            CHECK(0, "%s %s: cannot open", arch, fmts[f]);
            continue;
        }
        vmci = get_vmcoreinfo(v, &g, &vlen, &vfrom);
        CHECK(vmci != NULL, "%s %s: VMCOREINFO text", arch, fmts[f]);
        if (vmci) {
            uint64_t s2 = 0;
            CHECK(vmi__prb_vmci_sym(vmci, vlen, "SYMBOL(prb)", &s2) && s2 == sym_vmci,
                  "%s %s: VMCOREINFO from %s has SYMBOL(prb) 0x%llx, truth 0x%llx", arch, fmts[f], vfrom,
                  (unsigned long long)s2, (unsigned long long)sym_vmci);
        }
        if (vmi_read_kva(v, sym, &prb_va, 0, NULL), 1) {
            uint8_t b[8];
            unsigned w = vmi_addr_width(v);
            CHECK(vmi_read_kva(v, sym, b, w, NULL) == VMI_OK, "%s %s: read prb: %s", arch, fmts[f], vmi_last_error(v));
            prb_va = vmi__prb_get(b, w);
        }
        for (pass = 0; pass < 2; pass++) { /* 0: VMCOREINFO layout, 1: types */
            vmi__prb_layout L;
            vmi__prb_stats S;
            recs c;
            char what[128];
            vmi_status st;
            double t0, t1;
            if (pass == 1 && !btf) break;
            snprintf(what, sizeof what, "%s %s%s %s", arch, fmts[f], auto_paging ? " (CR3 from the core)" : "",
                     pass ? "types" : "VMCOREINFO");
            memset(&c, 0, sizeof c);
            if (pass == 0) {
                if (!vmci) continue;
                st = vmi__prb_layout_vmcoreinfo(v, vmci, vlen, &L);
            } else {
                if (!load_btf(v, &g)) {
                    CHECK(0, "%s: load BTF", what);
                    continue;
                }
                st = vmi__prb_layout_types(v, &L);
            }
            CHECK(st == VMI_OK, "%s: layout: %s", what, vmi_last_error(v));
            if (st != VMI_OK) continue;
            t0 = now_ms();
            st = vmi__prb_walk_stats(v, prb_va, &L, collect, &c, &S);
            t1 = now_ms();
            CHECK(st == VMI_OK, "%s: walk: %s", what, vmi_last_error(v));
            CHECK(S.skipped == 0, "%s: %llu records skipped", what, (unsigned long long)S.skipped);
            printf("  %s: layout long=%u, count_bits %u, size_bits %u, %llu records (lost %llu, unfinished %llu) in %.2f ms\n",
                   what, L.long_size, S.count_bits, S.size_bits, (unsigned long long)S.records,
                   (unsigned long long)S.lost, (unsigned long long)S.unfinished, t1 - t0);
            compare_dmesg(&g, what, &c);
            if (pass == 1) { /* both layouts agree */
                vmi__prb_layout V;
                if (vmci && vmi__prb_layout_vmcoreinfo(v, vmci, vlen, &V) == VMI_OK) {
                    V.source = L.source;
                    CHECK(memcmp(&V, &L, sizeof V) == 0, "%s: types layout = VMCOREINFO layout", what);
                }
            }
            /* the whole wiring (layout from types else VMCOREINFO, prb from
               symbols else VMCOREINFO) gives the same records */
            {
                recs c2;
                size_t i;
                int same;
                memset(&c2, 0, sizeof c2);
                st = vmi__prb_foreach(v, vmci, vlen, collect, &c2);
                same = st == VMI_OK && c2.n == c.n;
                for (i = 0; same && i < c.n; i++)
                    same = c.r[i].seq == c2.r[i].seq && c.r[i].len == c2.r[i].len &&
                           !memcmp(c.r[i].text, c2.r[i].text, c.r[i].len);
                CHECK(same, "%s: vmi__prb_foreach: %s, %zu records of %zu", what, vmi_status_string(st), c2.n, c.n);
                recs_free(&c2);
            }
            recs_free(&c);
        }
        free(vmci);
        vmi_close(v);
        /* zero-config, as vmi_foreach_log_record will run it: vmi_os_init
           finds the types, symbols and VMCOREINFO; nothing from the test */
        if ((v = open_guest(&g, fmts[f], &auto_paging)) != NULL) {
            recs c;
            char what[128];
            vmi_status st = vmi_os_init(v);
            double t0, t1;
            snprintf(what, sizeof what, "%s %s os_init+foreach", arch, fmts[f]);
            CHECK(st == VMI_OK, "%s: vmi_os_init: %s", what, vmi_last_error(v));
            memset(&c, 0, sizeof c);
            t0 = now_ms();
            st = vmi__prb_foreach(v, v->vmcoreinfo, v->vmcoreinfo ? strlen(v->vmcoreinfo) : 0, collect, &c);
            t1 = now_ms();
            CHECK(st == VMI_OK, "%s: %s", what, vmi_last_error(v));
            printf("  %s: %zu records in %.2f ms (types: %s)\n", what, c.n, t1 - t0,
                   vmi_os_get_info(v)->types_source[0] ? vmi_os_get_info(v)->types_source : "none");
            compare_dmesg(&g, what, &c);
            recs_free(&c);
            vmi_close(v);
        }
    }

    /* hostile: a private writable copy of mem.raw (4- and 8-byte longs) */
    if (!strcmp(arch, "x86_64") || !strcmp(arch, "i386") || !strcmp(arch, "armhf-lpae") || !strcmp(arch, "arm64")) {
        size_t len;
        char *copy;
        vmi_mem_range r;
        vmi_desc d;
        hostile_ctx h;
        recs c;
        char *vmci;
        const char *vfrom;
        char what[64];
        snprintf(path, sizeof path, "%s/%s/mem.raw", g_dir, arch);
        copy = test_slurp(path, &len);
        if (!copy) {
            CHECK(0, "%s: read %s", arch, path);
            goto done;
        }
        memset(&d, 0, sizeof d);
        memset(&h, 0, sizeof h);
        r.pa = g.ram_base;
        r.size = len;
        r.host = copy;
        r.flags = VMI_RANGE_WRITABLE;
        vmi_backend_buffer(&d.backend, &r, 1);
        if (vmi_open(&d, &h.v) != VMI_OK || !set_paging(h.v, &g)) {
            CHECK(0, "%s: open the copy", arch);
            free(copy);
            goto done;
        }
        vmci = get_vmcoreinfo(h.v, &g, &vlen, &vfrom);
        if (!vmci || vmi__prb_layout_vmcoreinfo(h.v, vmci, vlen, &h.L) != VMI_OK) {
            CHECK(0, "%s: hostile: layout", arch);
        } else {
            uint64_t sym = sym_ks ? sym_ks : sym_vmci;
            h.prb_va = rd(&h, sym, h.L.ptr_size);
            memset(&c, 0, sizeof c);
            CHECK(vmi__prb_walk_stats(h.v, h.prb_va, &h.L, collect, &c, &h.base_S) == VMI_OK && c.n > 10,
                  "%s: hostile baseline: %zu records", arch, c.n);
            if (c.n > 10) {
                h.base_n = c.n;
                h.mid_seq = c.r[c.n / 2].seq;
                snprintf(what, sizeof what, "%s hostile", arch);
                test_hostile(&g, &h, what);
            }
            recs_free(&c);
        }
        free(vmci);
        vmi_close(h.v);
        free(copy);
    }
done:
    free(g.truth);
    free(g.dmesg);
}

/* ---- layout errors ------------------------------------------------------------ */
static void test_layout_errors(void) {
    static uint8_t mem[4096];
    vmi_mem_range r;
    vmi_desc d;
    vmi_instance *v = NULL;
    vmi__prb_layout L;
    const char *ok = "SIZE(printk_ringbuffer)=88\nOFFSET(printk_ringbuffer.desc_ring)=0\n";
    memset(&d, 0, sizeof d);
    r.pa = 0x1000;
    r.size = sizeof mem;
    r.host = mem;
    r.flags = 0;
    vmi_backend_buffer(&d.backend, &r, 1);
    d.paging.mode = VMI_PAGING_OFF;
    if (vmi_open(&d, &v) != VMI_OK) abort();
    CHECK(vmi__prb_layout_vmcoreinfo(v, ok, strlen(ok), &L) == VMI_ERR_NOT_FOUND, "incomplete VMCOREINFO: %s",
          vmi_last_error(v));
    CHECK(vmi__prb_layout_vmcoreinfo(v, NULL, 0, &L) == VMI_ERR_ARG, "no VMCOREINFO");
    CHECK(vmi__prb_layout_vmcoreinfo(v, "", 0, &L) == VMI_ERR_NOT_FOUND, "empty VMCOREINFO");
    {
        /* a complete text with an offset pushed outside its struct */
        char vc[2048];
        const char *keys =
            "SIZE(printk_ringbuffer)=88\nOFFSET(printk_ringbuffer.desc_ring)=0\nOFFSET(printk_ringbuffer.text_data_ring)=48\n"
            "OFFSET(prb_desc_ring.count_bits)=0\nOFFSET(prb_desc_ring.descs)=8\nOFFSET(prb_desc_ring.infos)=16\n"
            "OFFSET(prb_desc_ring.head_id)=24\nOFFSET(prb_desc_ring.tail_id)=32\nSIZE(prb_desc)=24\n"
            "OFFSET(prb_desc.state_var)=0\nOFFSET(prb_desc.text_blk_lpos)=8\nSIZE(prb_data_blk_lpos)=16\n"
            "OFFSET(prb_data_blk_lpos.begin)=0\nOFFSET(prb_data_blk_lpos.next)=8\nSIZE(printk_info)=88\n"
            "OFFSET(printk_info.seq)=0\nOFFSET(printk_info.ts_nsec)=8\nOFFSET(printk_info.text_len)=16\n"
            "OFFSET(printk_info.caller_id)=20\nOFFSET(prb_data_ring.size_bits)=0\nOFFSET(prb_data_ring.data)=8\n"
            "OFFSET(prb_data_ring.head_lpos)=16\nOFFSET(prb_data_ring.tail_lpos)=%s\nSIZE(atomic_long_t)=%s\n";
        snprintf(vc, sizeof vc, keys, "24", "8");
        CHECK(vmi__prb_layout_vmcoreinfo(v, vc, strlen(vc), &L) == VMI_OK, "complete VMCOREINFO: %s", vmi_last_error(v));
        snprintf(vc, sizeof vc, keys, "40", "8");
        CHECK(vmi__prb_layout_vmcoreinfo(v, vc, strlen(vc), &L) == VMI_ERR_FORMAT, "tail_lpos outside: %s",
              vmi_last_error(v));
        snprintf(vc, sizeof vc, keys, "24", "2");
        CHECK(vmi__prb_layout_vmcoreinfo(v, vc, strlen(vc), &L) == VMI_ERR_FORMAT, "atomic_long_t of 2");
        snprintf(vc, sizeof vc, keys, "99999999999999999999999", "8");
        CHECK(vmi__prb_layout_vmcoreinfo(v, vc, strlen(vc), &L) != VMI_OK, "overflowing number");
        snprintf(vc, sizeof vc, keys, "-8", "8");
        CHECK(vmi__prb_layout_vmcoreinfo(v, vc, strlen(vc), &L) != VMI_OK, "negative number");
        /* the walk refuses an unchecked layout and unreadable memory */
        snprintf(vc, sizeof vc, keys, "24", "8");
        vmi__prb_layout_vmcoreinfo(v, vc, strlen(vc), &L);
        CHECK(vmi__prb_walk(v, 0x900000, &L, collect, NULL) != VMI_OK, "walk of unmapped memory");
        CHECK(vmi__prb_walk(v, 0x1000, &L, collect, NULL) == VMI_ERR_FORMAT, "walk of zeros (count/size bits 0)");
        L.desc_size = 100000;
        CHECK(vmi__prb_walk(v, 0x1000, &L, collect, NULL) == VMI_ERR_FORMAT, "walk with a bad layout");
    }
    CHECK(vmi__prb_layout_types(v, &L) == VMI_ERR_NOT_FOUND, "types layout without types: %s", vmi_last_error(v));
    CHECK(vmi__prb_foreach(v, NULL, 0, collect, NULL) != VMI_OK, "foreach with neither types nor VMCOREINFO: %s",
          vmi_last_error(v));
    vmi_close(v);
}

int main(int argc, char **argv) {
    if (argc > 1) g_dir = argv[1];
    test_layout_errors();
    test_synthetic(8);
    test_synthetic(4);
    bench_full(8);
    bench_full(4);
    test_guest("x86_64", 1);
    test_guest("x86_64-la57", 1);
    test_guest("x86_64-cloud", 1);
    test_guest("i386", 0);
    test_guest("i386-pae", 0);
    test_guest("arm64", 1);
    test_guest("armhf", 0);
    test_guest("armhf-lpae", 0);
    return test_summary();
}
