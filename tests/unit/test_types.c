/* Tests of the type database (vmi.h >>profiles): BTF and ISF loaders,
   queries, the ISF writer, corrupt inputs.

   usage: test_types VMLINUX.BTF [EXPECTED.txt]
   VMLINUX.BTF: a kernel's BTF (carve_btf.py takes it out of a RAM image);
   EXPECTED.txt: member offsets printed by pahole (gen_expected.py).
   Prints one line per failed check and "N passed, M failed". */
#define VMI_IMPLEMENTATION
#include "vmi.h"
#include "test.h"
#include <sys/time.h>


/* Byte offset of a member, as vmi_offset gives it. */
static vmi_status t_offset(const vmi__types *t, const char *type, const char *path, uint64_t *offset) {
    uint64_t bit_offset, byte_size;
    uint32_t bit_size;
    vmi_status st = vmi__types_member(t, type, path, &bit_offset, &bit_size, &byte_size);
    *offset = st == VMI_OK ? bit_offset / 8 : 0;
    return st;
}


static double now_ms(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec * 1e3 + (double)tv.tv_usec / 1e3;
}

/* ---- a growable buffer as the ISF writer's sink -------------------------- */
typedef struct sink {
    char *p;
    size_t n, cap;
    int fail_after; /* fail the write after this many calls, -1: never */
} sink;

static int sink_write(void *user, const char *s, size_t n) {
    sink *k = (sink *)user;
    if (k->fail_after == 0) return -1;
    if (k->fail_after > 0) k->fail_after--;
    if (k->n + n + 1 > k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 1 << 20;
        char *p;
        while (cap < k->n + n + 1) cap *= 2;
        p = (char *)realloc(k->p, cap);
        if (!p) return -1;
        k->p = p;
        k->cap = cap;
    }
    memcpy(k->p + k->n, s, n);
    k->n += n;
    k->p[k->n] = '\0';
    return 0;
}

static int null_write(void *user, const char *s, size_t n) {
    (void)user;
    (void)s;
    (void)n;
    return 0;
}

/* ---- a hand-built BTF ------------------------------------------------------ */
typedef struct btfb {
    uint8_t types[4096], strs[1024];
    uint32_t ntypes_len, nstrs;
} btfb;

static void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t bstr(btfb *b, const char *s) {
    uint32_t off = b->nstrs;
    size_t n = strlen(s) + 1;
    if (b->nstrs == 0) b->strs[b->nstrs++] = 0, off = 1;
    memcpy(b->strs + b->nstrs, s, n);
    b->nstrs += (uint32_t)n;
    return off;
}

static void bw(btfb *b, uint32_t v) {
    put32(b->types + b->ntypes_len, v);
    b->ntypes_len += 4;
}

static void btype(btfb *b, uint32_t name, uint32_t kind, uint32_t vlen, int kflag, uint32_t size_type) {
    bw(b, name);
    bw(b, (kflag ? 0x80000000u : 0) | kind << 24 | vlen);
    bw(b, size_type);
}

/* Serializes header + types + strings; returns the length. */
static size_t bfinish(const btfb *b, uint8_t *out) {
    put32(out, 0x0001eb9fu);
    put32(out + 4, 24);
    put32(out + 8, 0);
    put32(out + 12, b->ntypes_len);
    put32(out + 16, b->ntypes_len);
    put32(out + 20, b->nstrs);
    memcpy(out + 24, b->types, b->ntypes_len);
    memcpy(out + 24 + b->ntypes_len, b->strs, b->nstrs);
    return 24 + b->ntypes_len + b->nstrs;
}

/* Every kind once. ids: 1 int, 2 struct s, 3 typedef t, 4 ptr, 5 array, 6 enum,
   7 enum64, 8 fwd, 9 const, 10 func_proto, 11 func, 12 var, 13 datasec,
   14 float, 15 decl_tag, 16 type_tag, 17 volatile, 18 restrict, 19 union u,
   20 struct outer (anonymous union member), 21 old-style INT bitfield int. */
static size_t build_synthetic(uint8_t *out) {
    btfb b;
    memset(&b, 0, sizeof b);
    btype(&b, bstr(&b, "int"), VMI__BTF_INT, 0, 0, 4);
    bw(&b, 1u << 24 | 32);                                   /* 1 signed, 32 bits */
    btype(&b, bstr(&b, "s"), VMI__BTF_STRUCT, 3, 1, 16);     /* 2 */
    bw(&b, bstr(&b, "a")); bw(&b, 1); bw(&b, 0);
    bw(&b, bstr(&b, "bf")); bw(&b, 1); bw(&b, 3u << 24 | 37); /* 3-bit field at bit 37 */
    bw(&b, bstr(&b, "arr")); bw(&b, 5); bw(&b, 64);
    btype(&b, bstr(&b, "t"), VMI__BTF_TYPEDEF, 0, 0, 2);     /* 3 */
    btype(&b, 0, VMI__BTF_PTR, 0, 0, 2);                     /* 4 */
    btype(&b, 0, VMI__BTF_ARRAY, 0, 0, 0);                   /* 5: int[2] */
    bw(&b, 1); bw(&b, 1); bw(&b, 2);
    btype(&b, bstr(&b, "e"), VMI__BTF_ENUM, 2, 1, 4);        /* 6 signed */
    bw(&b, bstr(&b, "E_A")); bw(&b, 0xffffffffu);
    bw(&b, bstr(&b, "E_B")); bw(&b, 7);
    btype(&b, bstr(&b, "e64"), VMI__BTF_ENUM64, 1, 0, 8);    /* 7 */
    bw(&b, bstr(&b, "BIG")); bw(&b, 0x89abcdefu); bw(&b, 0xfedcba98u);
    btype(&b, bstr(&b, "fwd_only"), VMI__BTF_FWD, 0, 0, 0);  /* 8 */
    btype(&b, 0, VMI__BTF_CONST, 0, 0, 3);                   /* 9 const t */
    btype(&b, 0, VMI__BTF_FUNC_PROTO, 2, 0, 1);              /* 10 int (int, ...) */
    bw(&b, bstr(&b, "x")); bw(&b, 1);
    bw(&b, 0); bw(&b, 0);
    btype(&b, bstr(&b, "f"), VMI__BTF_FUNC, 1, 0, 10);       /* 11 */
    btype(&b, bstr(&b, "v"), VMI__BTF_VAR, 0, 0, 1);         /* 12 */
    bw(&b, 1);
    btype(&b, bstr(&b, ".data"), VMI__BTF_DATASEC, 1, 0, 4); /* 13 */
    bw(&b, 12); bw(&b, 0); bw(&b, 4);
    btype(&b, bstr(&b, "double"), VMI__BTF_FLOAT, 0, 0, 8);  /* 14 */
    btype(&b, bstr(&b, "tag"), VMI__BTF_DECL_TAG, 0, 0, 2);  /* 15 */
    bw(&b, 0xffffffffu);
    btype(&b, bstr(&b, "user"), VMI__BTF_TYPE_TAG, 0, 0, 1); /* 16 */
    btype(&b, 0, VMI__BTF_VOLATILE, 0, 0, 9);                /* 17 volatile const t */
    btype(&b, 0, VMI__BTF_RESTRICT, 0, 0, 4);                /* 18 */
    btype(&b, bstr(&b, "u"), VMI__BTF_UNION, 2, 0, 16);      /* 19 */
    bw(&b, bstr(&b, "i")); bw(&b, 1); bw(&b, 0);
    bw(&b, bstr(&b, "s")); bw(&b, 17); bw(&b, 0);
    btype(&b, bstr(&b, "outer"), VMI__BTF_STRUCT, 3, 0, 40); /* 20 */
    bw(&b, bstr(&b, "head")); bw(&b, 1); bw(&b, 0);
    bw(&b, 0); bw(&b, 19); bw(&b, 64);                       /* anonymous union at byte 8 */
    bw(&b, bstr(&b, "old")); bw(&b, 21); bw(&b, 192);
    btype(&b, bstr(&b, "oldbits"), VMI__BTF_INT, 0, 0, 4);   /* 21: 5 bits at bit offset 3 */
    bw(&b, 3u << 16 | 5);
    return bfinish(&b, out);
}

static void test_synthetic(void) {
    uint8_t blob[8192];
    size_t len = build_synthetic(blob), cut;
    vmi__types *t = NULL;
    char err[256];
    uint64_t off, size, bytes;
    uint32_t bits;
    vmi_status st = vmi__types_from_btf(NULL, blob, len, &t, err, sizeof err);
    CHECK(st == VMI_OK, "synthetic BTF: expected ok, got %s (%s)", vmi_status_string(st), err);
    if (st != VMI_OK) return;
    CHECK(vmi__types_count(t) == 21, "synthetic count: expected 21, got %zu", vmi__types_count(t));
    st = vmi__types_member(t, "t", "bf", &off, &bits, &bytes);
    CHECK(st == VMI_OK && off == 37 && bits == 3 && bytes == 4, "t.bf: expected 37/3/4, got %s %llu/%u/%llu",
          vmi_status_string(st), (unsigned long long)off, bits, (unsigned long long)bytes);
    st = vmi__types_member(t, "struct s", "arr", &off, &bits, &bytes);
    CHECK(st == VMI_OK && off == 64 && bits == 0 && bytes == 8, "s.arr: expected 64/0/8, got %s %llu/%u/%llu",
          vmi_status_string(st), (unsigned long long)off, bits, (unsigned long long)bytes);
    st = t_offset(t, "outer", "s.arr", &off); /* through the anonymous union, then volatile const t */
    CHECK(st == VMI_OK && off == 16, "outer.s.arr: expected 16, got %s %llu", vmi_status_string(st),
          (unsigned long long)off);
    st = t_offset(t, "outer", "i", &off);
    CHECK(st == VMI_OK && off == 8, "outer.i: expected 8, got %s %llu", vmi_status_string(st), (unsigned long long)off);
    st = vmi__types_member(t, "outer", "old", &off, &bits, &bytes);
    CHECK(st == VMI_OK && off == 195 && bits == 5 && bytes == 4, "outer.old: expected 195/5/4, got %s %llu/%u/%llu",
          vmi_status_string(st), (unsigned long long)off, bits, (unsigned long long)bytes);
    st = vmi__types_size(t, "union u", &size);
    CHECK(st == VMI_OK && size == 16, "size union u: expected 16, got %s %llu", vmi_status_string(st),
          (unsigned long long)size);
    st = vmi__types_size(t, "enum e64", &size);
    CHECK(st == VMI_OK && size == 8, "size e64: expected 8, got %s", vmi_status_string(st));
    st = vmi__types_size(t, "double", &size);
    CHECK(st == VMI_OK && size == 8, "size double: expected 8, got %s", vmi_status_string(st));
    CHECK(vmi__types_size(t, "fwd_only", &size) == VMI_ERR_NOT_FOUND, "size of a forward declaration must fail");
    CHECK(vmi__types_size(t, "struct u", &size) == VMI_ERR_NOT_FOUND, "\"struct u\" must not find union u");
    CHECK(vmi__types_size(t, "union s", &size) == VMI_ERR_NOT_FOUND, "\"union s\" must not find struct s");
    CHECK(t_offset(t, "s", "nope", &off) == VMI_ERR_NOT_FOUND, "missing member must be NOT_FOUND");
    CHECK(t_offset(t, "s", "a.b", &off) == VMI_ERR_NOT_FOUND, "path into an int must be NOT_FOUND");
    CHECK(t_offset(t, "s", "a..", &off) == VMI_ERR_ARG, "empty path component must be ARG");
    CHECK(t_offset(t, "nosuch", "a", &off) == VMI_ERR_NOT_FOUND, "missing type must be NOT_FOUND");
    CHECK(vmi__types_symbol(t, "v", &off) == VMI_ERR_NOT_FOUND, "BTF has no symbols");
    {   /* the synthetic database through ISF and back: enums keep their values */
        sink k;
        vmi__types *r = NULL;
        memset(&k, 0, sizeof k);
        k.fail_after = -1;
        st = vmi__types_write_isf(t, NULL, NULL, NULL, 0, sink_write, &k);
        CHECK(st == VMI_OK, "synthetic write_isf: %s", vmi_status_string(st));
        st = vmi__types_from_isf(NULL, k.p, k.n, &r, err, sizeof err);
        CHECK(st == VMI_OK, "synthetic ISF read back: %s (%s)", vmi_status_string(st), err);
        if (st == VMI_OK) {
            uint32_t e = vmi__types_lookup(r, "enum e"), e64 = vmi__types_lookup(r, "e64");
            CHECK(e != VMI__NONE && r->types[e].vlen == 2 && r->mem[r->types[e].first].off == UINT64_MAX,
                  "enum e: E_A must read back as -1");
            CHECK(e64 != VMI__NONE && r->mem[r->types[e64].first].off == 0xfedcba9889abcdefull,
                  "enum e64: BIG must read back exactly");
            st = vmi__types_member(r, "outer", "old", &off, &bits, &bytes);
            CHECK(st == VMI_OK && off == 195 && bits == 5, "ISF outer.old: expected 195/5, got %s %llu/%u",
                  vmi_status_string(st), (unsigned long long)off, bits);
            st = t_offset(r, "outer", "s.arr", &off);
            CHECK(st == VMI_OK && off == 16, "ISF outer.s.arr: expected 16, got %s %llu", vmi_status_string(st),
                  (unsigned long long)off);
            vmi__types_free(r);
        }
        k.fail_after = 0;
        CHECK(vmi__types_write_isf(t, NULL, NULL, NULL, 0, sink_write, &k) == VMI_ERR_IO, "failing writer must give IO");
        free(k.p);
    }
    vmi__types_free(t);

    /* every truncation fails cleanly */
    for (cut = 0; cut < len; cut++) {
        st = vmi__types_from_btf(NULL, blob, cut, &t, err, sizeof err);
        CHECK(st != VMI_OK && t == NULL && err[0], "truncated to %zu of %zu: expected an error, got %s", cut, len,
              vmi_status_string(st));
        if (st == VMI_OK) vmi__types_free(t);
    }
}

/* A small BTF from hand-written records (types only). */
static vmi_status load_records(const uint32_t *w, size_t nw, const char *strs, size_t nstrs, char *err,
                               size_t errlen, vmi__types **t) {
    uint8_t blob[1024];
    size_t i;
    put32(blob, 0x0001eb9fu);
    put32(blob + 4, 24);
    put32(blob + 8, 0);
    put32(blob + 12, (uint32_t)(nw * 4));
    put32(blob + 16, (uint32_t)(nw * 4));
    put32(blob + 20, (uint32_t)nstrs);
    for (i = 0; i < nw; i++) put32(blob + 24 + 4 * i, w[i]);
    memcpy(blob + 24 + nw * 4, strs, nstrs);
    return vmi__types_from_btf(NULL, blob, 24 + nw * 4 + nstrs, t, err, errlen);
}

#define KIND(k, vlen) ((uint32_t)(k) << 24 | (vlen))

static void test_corrupt_btf(void) {
    static const char strs[] = "\0a\0b\0s\0m";
    vmi__types *t = NULL;
    char err[256];
    uint64_t v;
    vmi_status st;
    double t0;
    {   /* cyclic typedefs a -> b -> a */
        const uint32_t w[] = {1, KIND(VMI__BTF_TYPEDEF, 0), 2, 3, KIND(VMI__BTF_TYPEDEF, 0), 1};
        st = load_records(w, 6, strs, sizeof strs, err, sizeof err, &t);
        CHECK(st == VMI_OK, "cyclic typedefs load (the cycle is found by queries): %s %s", vmi_status_string(st), err);
        if (st == VMI_OK) {
            CHECK(vmi__types_size(t, "a", &v) != VMI_OK, "size of a typedef cycle must fail");
            CHECK(t_offset(t, "a", "x", &v) == VMI_ERR_NOT_FOUND, "offset in a typedef cycle must fail");
            vmi__types_write_isf(t, NULL, NULL, NULL, 0, null_write, NULL);
            vmi__types_free(t);
        }
    }
    {   /* a struct holding 16 anonymous members of its own type, and an array of itself */
        uint32_t w[3 + 16 * 3 + 6];
        size_t i, n = 0;
        w[n++] = 5; w[n++] = KIND(VMI__BTF_STRUCT, 16); w[n++] = 8;
        for (i = 0; i < 16; i++) {
            w[n++] = 0; w[n++] = 1; w[n++] = 0;
        }
        w[n++] = 0; w[n++] = KIND(VMI__BTF_ARRAY, 0); w[n++] = 0;
        w[n++] = 2; w[n++] = 2; w[n++] = 3;
        w[n - 3] = 2; /* array of itself: elem type 2 */
        st = load_records(w, n, strs, sizeof strs, err, sizeof err, &t);
        CHECK(st == VMI_OK, "self-referencing struct loads: %s %s", vmi_status_string(st), err);
        if (st == VMI_OK) {
            t0 = now_ms();
            CHECK(t_offset(t, "s", "zz", &v) == VMI_ERR_NOT_FOUND, "anonymous cycle lookup must fail");
            CHECK(now_ms() - t0 < 1000, "anonymous cycle lookup took %.0f ms", now_ms() - t0);
            CHECK(vmi__types_sizeof(t, 2, 0, &v) != VMI_OK, "size of an array of itself must fail");
            vmi__types_write_isf(t, NULL, NULL, NULL, 0, null_write, NULL);
            vmi__types_free(t);
        }
    }
    {   /* huge vlen, string offset out of range, type id out of range, unknown kind */
        const uint32_t huge[] = {5, KIND(VMI__BTF_STRUCT, 0xffff), 8, 0, 0, 0};
        const uint32_t badstr[] = {500, KIND(VMI__BTF_INT, 0), 4, 32};
        const uint32_t badmem[] = {5, KIND(VMI__BTF_STRUCT, 1), 8, 9999, 0, 0};
        const uint32_t badref[] = {0, KIND(VMI__BTF_PTR, 0), 77};
        const uint32_t badkind[] = {0, KIND(25, 0), 0};
        const uint32_t badmemtype[] = {5, KIND(VMI__BTF_STRUCT, 1), 8, 7, 42, 0};
        st = load_records(huge, 6, strs, sizeof strs, err, sizeof err, &t);
        CHECK(st == VMI_ERR_FORMAT && t == NULL, "huge vlen: expected FORMAT, got %s", vmi_status_string(st));
        st = load_records(badstr, 4, strs, sizeof strs, err, sizeof err, &t);
        CHECK(st == VMI_ERR_FORMAT, "name offset out of range: expected FORMAT, got %s", vmi_status_string(st));
        st = load_records(badmem, 6, strs, sizeof strs, err, sizeof err, &t);
        CHECK(st == VMI_ERR_FORMAT, "member name out of range: expected FORMAT, got %s", vmi_status_string(st));
        st = load_records(badref, 3, strs, sizeof strs, err, sizeof err, &t);
        CHECK(st == VMI_ERR_FORMAT, "type id out of range: expected FORMAT, got %s", vmi_status_string(st));
        st = load_records(badkind, 3, strs, sizeof strs, err, sizeof err, &t);
        CHECK(st == VMI_ERR_FORMAT, "unknown kind: expected FORMAT, got %s", vmi_status_string(st));
        st = load_records(badmemtype, 6, strs, sizeof strs, err, sizeof err, &t);
        CHECK(st == VMI_ERR_FORMAT, "member type out of range: expected FORMAT, got %s", vmi_status_string(st));
        st = load_records(badref, 3, "a\0", 3, err, sizeof err, &t);
        CHECK(st == VMI_ERR_FORMAT, "strings not starting with NUL: expected FORMAT, got %s", vmi_status_string(st));
        st = load_records(badref, 3, "\0a", 2, err, sizeof err, &t);
        CHECK(st == VMI_ERR_FORMAT, "strings not ending with NUL: expected FORMAT, got %s", vmi_status_string(st));
    }
    {   /* headers */
        uint8_t blob[64];
        memset(blob, 0, sizeof blob);
        st = vmi__types_from_btf(NULL, blob, sizeof blob, &t, err, sizeof err);
        CHECK(st == VMI_ERR_FORMAT, "zeroed header: expected FORMAT, got %s", vmi_status_string(st));
        blob[0] = 0xeb; blob[1] = 0x9f; blob[2] = 1;
        st = vmi__types_from_btf(NULL, blob, sizeof blob, &t, err, sizeof err);
        CHECK(st == VMI_ERR_UNSUPPORTED, "byte-swapped BTF: expected UNSUPPORTED, got %s", vmi_status_string(st));
        blob[0] = 0x9f; blob[1] = 0xeb; blob[2] = 2;
        st = vmi__types_from_btf(NULL, blob, sizeof blob, &t, err, sizeof err);
        CHECK(st == VMI_ERR_UNSUPPORTED, "version 2: expected UNSUPPORTED, got %s", vmi_status_string(st));
        blob[2] = 1; put32(blob + 4, 1000);
        st = vmi__types_from_btf(NULL, blob, sizeof blob, &t, err, sizeof err);
        CHECK(st == VMI_ERR_FORMAT, "hdr_len beyond the blob: expected FORMAT, got %s", vmi_status_string(st));
        put32(blob + 4, 24); put32(blob + 8, 0xfffffff0u); put32(blob + 12, 0x20);
        st = vmi__types_from_btf(NULL, blob, sizeof blob, &t, err, sizeof err);
        CHECK(st == VMI_ERR_TRUNCATED, "type section wrapping: expected TRUNCATED, got %s", vmi_status_string(st));
        CHECK(vmi__types_from_btf(NULL, NULL, 0, &t, err, sizeof err) != VMI_OK, "NULL blob must fail");
    }
}

/* Random byte flips of the real blob: no crash, no hang; whatever loads answers. */
static void test_flips(const uint8_t *blob, size_t len, int rounds) {
    uint8_t *copy = (uint8_t *)malloc(len);
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    int r, ok = 0;
    char err[256];
    for (r = 0; r < rounds; r++) {
        vmi__types *t = NULL;
        int k, flips = 1 + r % 8;
        memcpy(copy, blob, len);
        for (k = 0; k < flips; k++) {
            size_t at;
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            at = r % 4 == 0 ? (size_t)(seed % 64) : (size_t)(seed % len); /* the header and first types often */
            copy[at] ^= (uint8_t)(1u << ((seed >> 32) % 8));
        }
        if (vmi__types_from_btf(NULL, copy, len, &t, err, sizeof err) == VMI_OK) {
            uint64_t v, b;
            uint32_t bits;
            ok++;
            vmi__types_member(t, "task_struct", "comm", &v, &bits, &b);
            vmi__types_size(t, "mm_struct", &v);
            if (r % 16 == 0) vmi__types_write_isf(t, NULL, NULL, NULL, 0, null_write, NULL);
            vmi__types_free(t);
        }
    }
    printf("byte flips: %d rounds, %d loaded\n", rounds, ok);
    CHECK(1, "flips");
    free(copy);
}

/* Checks the database against pahole's offsets. */
static void test_expected(const vmi__types *t, const char *what, const char *path) {
    FILE *f = fopen(path, "r");
    char line[512], kw[16], type[128], mpath[256];
    unsigned long long a, b, c;
    int n = 0;
    if (!f) {
        CHECK(0, "cannot open %s", path);
        return;
    }
    while (fgets(line, sizeof line, f)) {
        uint64_t off, bytes, size;
        uint32_t bits;
        vmi_status st;
        if (sscanf(line, "%15s %127s %255s %llu %llu %llu", kw, type, mpath, &a, &b, &c) == 6 &&
            strcmp(kw, "member") == 0) {
            st = vmi__types_member(t, type, mpath, &off, &bits, &bytes);
            CHECK(st == VMI_OK && off == a && bits == b && bytes == c,
                  "%s %s.%s: expected bit offset %llu, bits %llu, bytes %llu; got %s %llu, %u, %llu", what, type,
                  mpath, a, b, c, vmi_status_string(st), (unsigned long long)off, bits, (unsigned long long)bytes);
            if (b == 0) {
                st = t_offset(t, type, mpath, &off);
                CHECK(st == VMI_OK && off == a / 8, "%s offset %s.%s: expected %llu, got %llu", what, type, mpath,
                      a / 8, (unsigned long long)off);
            }
            n++;
        } else if (sscanf(line, "%15s %127s %llu", kw, type, &a) == 3 && strcmp(kw, "size") == 0) {
            st = vmi__types_size(t, type, &size);
            CHECK(st == VMI_OK && size == a, "%s size %s: expected %llu, got %s %llu", what, type, a,
                  vmi_status_string(st), (unsigned long long)size);
            n++;
        }
    }
    fclose(f);
    printf("%s: %d expected values from pahole checked\n", what, n);
}

/* Every member of every named struct or union of `a`, queried in both. */
static long compare_all(const vmi__types *a, const vmi__types *b, const char *what);

static long compare_record(const vmi__types *a, const vmi__types *b, const char *tname, uint32_t rid,
                           const char *prefix, int depth, const char *what) {
    const vmi__types_type *r = &a->types[rid];
    uint32_t i;
    long n = 0;
    if (depth > 8) return 0;
    for (i = 0; i < r->vlen; i++) {
        const vmi__types_field *m = &a->mem[r->first + i];
        char path[512];
        uint64_t o1, o2, s1, s2;
        uint32_t b1, b2;
        vmi_status st1, st2;
        if (!m->name) { /* anonymous: its members are reachable by their own names */
            uint32_t sub = vmi__types_strip(a, m->type);
            if (vmi__types_is_record(a, sub)) n += compare_record(a, b, tname, sub, prefix, depth + 1, what);
            continue;
        }
        snprintf(path, sizeof path, "%s%s", prefix, a->pool + m->name);
        st1 = vmi__types_member(a, tname, path, &o1, &b1, &s1);
        st2 = vmi__types_member(b, tname, path, &o2, &b2, &s2);
        n++;
        if (st1 != VMI_OK) continue; /* duplicate names in corrupt-looking types: nothing to compare */
        CHECK(st2 == VMI_OK && o1 == o2 && b1 == b2 && s1 == s2,
              "%s %s.%s: expected %llu/%u/%llu, got %s %llu/%u/%llu", what, tname, path, (unsigned long long)o1, b1,
              (unsigned long long)s1, vmi_status_string(st2), (unsigned long long)o2, b2, (unsigned long long)s2);
    }
    return n;
}

static long compare_all(const vmi__types *a, const vmi__types *b, const char *what) {
    size_t i;
    long n = 0, types = 0;
    for (i = 1; i < a->ntypes; i++) {
        const vmi__types_type *ty = &a->types[i];
        const char *name = a->pool + ty->name;
        uint64_t s1, s2;
        vmi_status st;
        if (!vmi__types_is_record(a, (uint32_t)i) || !ty->name) continue;
        if (vmi__types_get(a, VMI__NS_STRUCT, name, strlen(name)) != i) continue;
        types++;
        vmi__types_size(a, name, &s1);
        st = vmi__types_size(b, name, &s2);
        CHECK(st == VMI_OK && s1 == s2, "%s size %s: expected %llu, got %s %llu", what, name, (unsigned long long)s1,
              vmi_status_string(st), (unsigned long long)s2);
        n += compare_record(a, b, name, (uint32_t)i, "", 0, what);
    }
    printf("%s: %ld named structs/unions, %ld members compared\n", what, types, n);
    return n;
}

static void test_real(const uint8_t *blob, size_t len, const char *expected) {
    vmi__types *t = NULL, *r = NULL;
    char err[256];
    double best = 1e9, t0, t1;
    int i;
    vmi_status st;
    sink k;
    static const char *const names[] = {"init_task", "linux_banner", "big"};
    static const uint64_t addrs[] = {0xffffffff82a0c940ull, 0xffffffff82200140ull, 0xffffffffffffffffull};
    for (i = 0; i < 10; i++) {
        t0 = now_ms();
        st = vmi__types_from_btf(NULL, blob, len, &t, err, sizeof err);
        t1 = now_ms();
        if (t1 - t0 < best) best = t1 - t0;
        if (st != VMI_OK) break;
        if (i < 9) vmi__types_free(t);
    }
    CHECK(st == VMI_OK, "real BTF: expected ok, got %s (%s)", vmi_status_string(st), err);
    if (st != VMI_OK) return;
    printf("BTF: %zu bytes, %zu types, %zu members, parsed and indexed in %.2f ms (best of 10)\n", len,
           vmi__types_count(t), t->nmem, best);
    if (expected) test_expected(t, "BTF", expected);
    if (vmi__types_lookup(t, "task_struct") != VMI__NONE) { /* a Linux kernel's BTF: queries by other names */
        uint64_t a, b;
        CHECK(t_offset(t, "struct task_struct", "tasks", &a) == VMI_OK &&
                  t_offset(t, "task_struct", "tasks", &b) == VMI_OK && a == b,
              "\"struct task_struct\" and \"task_struct\" must agree");
        CHECK(vmi__types_size(t, "pid_t", &a) == VMI_OK && a == 4, "size pid_t: expected 4, got %llu",
              (unsigned long long)a);
        CHECK(t_offset(t, "task_struct", "mm.pgd", &a) == VMI_ERR_NOT_FOUND,
              "task_struct.mm.pgd must not follow the pointer");
        CHECK(t_offset(t, "task_struct", "se.vruntime", &a) == VMI_OK, "task_struct.se.vruntime: nested");
        CHECK(vmi__types_size(t, "union", &a) == VMI_ERR_NOT_FOUND, "bare keyword is not a type");
    }
    memset(&k, 0, sizeof k);
    k.fail_after = -1;
    t0 = now_ms();
    st = vmi__types_write_isf(t, NULL, names, addrs, 3, sink_write, &k);
    t1 = now_ms();
    CHECK(st == VMI_OK, "write_isf: %s", vmi_status_string(st));
    printf("ISF written: %zu bytes in %.1f ms\n", k.n, t1 - t0);
    {
        FILE *f = fopen("/tmp/vmlinux-isf.json", "wb");
        if (f) {
            fwrite(k.p, 1, k.n, f);
            fclose(f);
        }
    }
    t0 = now_ms();
    st = vmi__types_from_isf(NULL, k.p, k.n, &r, err, sizeof err);
    t1 = now_ms();
    CHECK(st == VMI_OK, "ISF read back: %s (%s)", vmi_status_string(st), err);
    if (st == VMI_OK) {
        uint64_t a;
        printf("ISF read back: %zu types in %.1f ms\n", vmi__types_count(r), t1 - t0);
        compare_all(t, r, "round trip");
        if (expected) test_expected(r, "ISF", expected);
        CHECK(vmi__types_symbol(r, "init_task", &a) == VMI_OK && a == addrs[0], "symbol init_task");
        CHECK(vmi__types_symbol(r, "big", &a) == VMI_OK && a == UINT64_MAX, "symbol with address 2^64-1");
        CHECK(vmi__types_symbol(r, "nope", &a) == VMI_ERR_NOT_FOUND, "missing symbol");
        vmi__types_free(r);
    }
    free(k.p);
    vmi__types_free(t);
}

/* ---- JSON / ISF edge cases -------------------------------------------------- */

static vmi_status isf(const char *s, vmi__types **t, char *err, size_t errlen) {
    return vmi__types_from_isf(NULL, s, strlen(s), t, err, errlen);
}

static void expect_isf_error(const char *doc, vmi_status want, const char *what) {
    vmi__types *t = NULL;
    char err[256];
    vmi_status st = isf(doc, &t, err, sizeof err);
    CHECK(st == want && t == NULL && strstr(err, "line "), "%s: expected %s with a line number, got %s (%s)", what,
          vmi_status_string(want), vmi_status_string(st), err);
    if (st == VMI_OK) vmi__types_free(t);
}

static const char *const sample_isf =
    "{\n"
    "  \"metadata\": {\"format\": \"6.2.0\", \"windows\": {\"pdb\": {\"GUID\": \"X\", \"age\": 1}}},\n"
    "  \"base_types\": {\n"
    "    \"unsigned long\": {\"kind\": \"int\", \"size\": 4, \"signed\": false, \"endian\": \"little\"},\n"
    "    \"pointer\": {\"kind\": \"int\", \"size\": 8, \"signed\": false, \"endian\": \"little\"},\n"
    "    \"char\": {\"kind\": \"char\", \"size\": 1, \"signed\": true, \"endian\": \"little\"},\n"
    "    \"void\": {\"kind\": \"void\", \"size\": 0, \"signed\": true, \"endian\": \"little\"}\n"
    "  },\n"
    "  \"user_types\": {\n"
    "    \"_LIST_ENTRY\": {\"kind\": \"struct\", \"size\": 16, \"fields\": {\n"
    "      \"Flink\": {\"offset\": 0, \"type\": {\"kind\": \"pointer\", \"subtype\": {\"kind\": \"struct\", \"name\": \"_LIST_ENTRY\"}}},\n"
    "      \"Blink\": {\"type\": {\"kind\": \"pointer\", \"subtype\": {\"kind\": \"struct\", \"name\": \"_LIST_ENTRY\"}}, \"offset\": 8}}},\n"
    "    \"_EPROCESS\": {\"kind\": \"class\", \"size\": 2048, \"fields\": {\n"
    "      \"Pcb\": {\"offset\": 0, \"type\": {\"kind\": \"struct\", \"name\": \"_KPROCESS\"}},\n"
    "      \"unnamed_field_440\": {\"offset\": 1088, \"anonymous\": true, \"type\": {\"kind\": \"union\", \"name\": \"unnamed_1\"}},\n"
    "      \"Flags\": {\"offset\": 1124, \"type\": {\"kind\": \"bitfield\", \"bit_position\": 3, \"bit_length\": 2, \"type\": {\"kind\": \"base\", \"name\": \"unsigned long\"}}},\n"
    "      \"ImageFileName\": {\"offset\": 1448, \"type\": {\"kind\": \"array\", \"count\": 15, \"subtype\": {\"kind\": \"base\", \"name\": \"char\"}}},\n"
    "      \"Matrix\": {\"offset\": 1464, \"type\": {\"kind\": \"array\", \"count\": 2, \"subtype\": {\"kind\": \"array\", \"count\": 3, \"subtype\": {\"kind\": \"enum\", \"name\": \"_MODE\"}}}},\n"
    "      \"Callback\": {\"offset\": 1496, \"type\": {\"kind\": \"pointer\", \"subtype\": {\"kind\": \"function\"}}},\n"
    "      \"\\u004eame\\ud83d\\ude00\": {\"offset\": 1504, \"type\": {\"kind\": \"base\", \"name\": \"pointer\"}}}},\n"
    "    \"unnamed_1\": {\"kind\": \"union\", \"size\": 16, \"fields\": {\n"
    "      \"UniqueProcessId\": {\"offset\": 0, \"type\": {\"kind\": \"pointer\", \"subtype\": {\"kind\": \"base\", \"name\": \"void\"}}},\n"
    "      \"ActiveProcessLinks\": {\"offset\": 0, \"type\": {\"kind\": \"struct\", \"name\": \"_LIST_ENTRY\"}}}}\n"
    "  },\n"
    "  \"enums\": {\"_MODE\": {\"size\": 4, \"base\": \"unsigned long\", \"constants\": {\"KernelMode\": 0, \"UserMode\": 1, \"Neg\": -9223372036854775808}}},\n"
    "  \"symbols\": {\n"
    "    \"PsActiveProcessHead\": {\"address\": 18446735277616529408, \"type\": {\"kind\": \"struct\", \"name\": \"_LIST_ENTRY\"}},\n"
    "    \"KiSystemCall64\": {\"address\": 12345, \"constant_data\": \"AAAA\", \"ignored\": [1, 2.5e-3, -0.0, true, false, null, {}, [], \"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]}\n"
    "  }\n"
    "}\n";

static void test_isf_sample(void) {
    vmi__types *t = NULL;
    char err[256];
    uint64_t off, bytes, v;
    uint32_t bits;
    size_t cut, n = strlen(sample_isf);
    vmi_status st = isf(sample_isf, &t, err, sizeof err);
    CHECK(st == VMI_OK, "sample ISF: %s (%s)", vmi_status_string(st), err);
    if (st != VMI_OK) return;
    st = t_offset(t, "_EPROCESS", "ActiveProcessLinks", &off);
    CHECK(st == VMI_OK && off == 1088, "_EPROCESS.ActiveProcessLinks through the anonymous union: got %s %llu",
          vmi_status_string(st), (unsigned long long)off);
    st = t_offset(t, "_EPROCESS", "ActiveProcessLinks.Blink", &off);
    CHECK(st == VMI_OK && off == 1096, "_EPROCESS.ActiveProcessLinks.Blink: got %s %llu", vmi_status_string(st),
          (unsigned long long)off);
    st = t_offset(t, "_EPROCESS", "unnamed_field_440.UniqueProcessId", &off);
    CHECK(st == VMI_OK && off == 1088, "anonymous field by its ISF name: got %s", vmi_status_string(st));
    st = vmi__types_member(t, "_EPROCESS", "Flags", &off, &bits, &bytes);
    CHECK(st == VMI_OK && off == 1124 * 8 + 3 && bits == 2 && bytes == 4, "bitfield: got %s %llu/%u/%llu",
          vmi_status_string(st), (unsigned long long)off, bits, (unsigned long long)bytes);
    st = vmi__types_member(t, "_EPROCESS", "ImageFileName", &off, &bits, &bytes);
    CHECK(st == VMI_OK && bytes == 15, "char[15]: got %s %llu", vmi_status_string(st), (unsigned long long)bytes);
    st = vmi__types_member(t, "_EPROCESS", "Matrix", &off, &bits, &bytes);
    CHECK(st == VMI_OK && bytes == 24, "enum[2][3]: expected 24 bytes, got %s %llu", vmi_status_string(st),
          (unsigned long long)bytes);
    st = vmi__types_member(t, "_EPROCESS", "Callback", &off, &bits, &bytes);
    CHECK(st == VMI_OK && bytes == 8, "function pointer: expected 8 bytes, got %s %llu", vmi_status_string(st),
          (unsigned long long)bytes);
    st = t_offset(t, "_EPROCESS", "Name\xf0\x9f\x98\x80", &off);
    CHECK(st == VMI_OK && off == 1504, "\\u escapes and surrogate pairs in names: got %s", vmi_status_string(st));
    CHECK(vmi__types_size(t, "_EPROCESS", &v) == VMI_OK && v == 2048, "class size");
    CHECK(vmi__types_size(t, "pointer", &v) == VMI_OK && v == 8, "pointer size");
    CHECK(vmi__types_size(t, "_KPROCESS", &v) == VMI_ERR_NOT_FOUND, "undefined struct: NOT_FOUND");
    CHECK(vmi__types_symbol(t, "PsActiveProcessHead", &v) == VMI_OK && v == 18446735277616529408ull,
          "symbol above 2^53 must be exact, got %llu", (unsigned long long)v);
    CHECK(vmi__types_symbol(t, "KiSystemCall64", &v) == VMI_OK && v == 12345, "second symbol");
    {
        uint32_t e = vmi__types_lookup(t, "enum _MODE");
        CHECK(e != VMI__NONE && t->types[e].vlen == 3 && t->mem[t->types[e].first + 2].off == 0x8000000000000000ull,
              "enum constant -2^63");
    }
    {   /* the sample written and read again */
        sink k;
        vmi__types *r = NULL;
        memset(&k, 0, sizeof k);
        k.fail_after = -1;
        CHECK(vmi__types_write_isf(t, NULL, NULL, NULL, 0, sink_write, &k) == VMI_OK, "sample write_isf");
        st = vmi__types_from_isf(NULL, k.p, k.n, &r, err, sizeof err);
        CHECK(st == VMI_OK, "sample re-read: %s (%s)", vmi_status_string(st), err);
        if (st == VMI_OK) {
            compare_all(t, r, "sample round trip");
            CHECK(strstr(k.p, "\"windows\":{}") != NULL, "windows metadata kept");
            vmi__types_free(r);
        }
        free(k.p);
    }
    vmi__types_free(t);
    for (cut = 0; cut < n - 1; cut++) { /* every prefix fails (the last byte is a newline) */
        st = vmi__types_from_isf(NULL, sample_isf, cut, &t, err, sizeof err);
        CHECK(st != VMI_OK && t == NULL, "ISF truncated to %zu: expected an error, got %s", cut, vmi_status_string(st));
        if (st == VMI_OK) vmi__types_free(t);
    }
}

#define MINI_HEAD "{\"metadata\":{\"format\":\"6.2.0\"},\"base_types\":{},\"user_types\":{},\"enums\":{},"

static void test_json_edges(void) {
    char *deep = (char *)malloc(200400);
    vmi__types *t = NULL;
    char err[256];
    uint64_t v;
    vmi_status st;
    expect_isf_error("", VMI_ERR_TRUNCATED, "empty");
    expect_isf_error("   ", VMI_ERR_TRUNCATED, "white space only");
    expect_isf_error("[]", VMI_ERR_FORMAT, "array at top");
    expect_isf_error("{}", VMI_ERR_FORMAT, "empty object");
    expect_isf_error("{\"metadata\":{}}", VMI_ERR_FORMAT, "no user_types");
    expect_isf_error(MINI_HEAD "\"symbols\":{}} x", VMI_ERR_FORMAT, "trailing characters");
    expect_isf_error(MINI_HEAD "\"symbols\":{},}", VMI_ERR_FORMAT, "trailing comma in object");
    expect_isf_error(MINI_HEAD "\"symbols\":{}, \"x\":[1,]}", VMI_ERR_FORMAT, "trailing comma in array");
    expect_isf_error(MINI_HEAD "\"symbols\":{}, \"x\":01}", VMI_ERR_FORMAT, "leading zero");
    expect_isf_error(MINI_HEAD "\"symbols\":{}, \"x\":-}", VMI_ERR_FORMAT, "bare minus");
    expect_isf_error(MINI_HEAD "\"symbols\":{}, \"x\":1.}", VMI_ERR_FORMAT, "bad fraction");
    expect_isf_error(MINI_HEAD "\"symbols\":{}, \"x\":1e}", VMI_ERR_FORMAT, "bad exponent");
    expect_isf_error(MINI_HEAD "\"symbols\":{}, \"x\":\"\\x\"}", VMI_ERR_FORMAT, "bad escape");
    expect_isf_error(MINI_HEAD "\"symbols\":{}, \"x\":\"\\u12G4\"}", VMI_ERR_FORMAT, "bad \\u escape");
    expect_isf_error(MINI_HEAD "\"symbols\":{}, \"x\":\"\\u12", VMI_ERR_TRUNCATED, "truncated \\u escape");
    expect_isf_error(MINI_HEAD "\"symbols\":{}, \"x\":\"a\tb\"}", VMI_ERR_FORMAT, "raw tab in a string");
    expect_isf_error(MINI_HEAD "\"symbols\":{}, \"x\":\"abc", VMI_ERR_TRUNCATED, "unterminated string");
    expect_isf_error(MINI_HEAD "\"symbols\":{}, \"x\":tru}", VMI_ERR_FORMAT, "bad literal");
    expect_isf_error(MINI_HEAD "\"symbols\":{}, \"x\" 1}", VMI_ERR_FORMAT, "missing colon");
    expect_isf_error(MINI_HEAD "\"symbols\":{}, 5:1}", VMI_ERR_FORMAT, "non-string key");
    expect_isf_error(MINI_HEAD "\"symbols\":{\"s\":{\"address\":18446744073709551616}}}", VMI_ERR_FORMAT,
                     "address above 2^64-1");
    expect_isf_error(MINI_HEAD "\"symbols\":{\"s\":{\"address\":1.5}}}", VMI_ERR_FORMAT, "fractional address");
    expect_isf_error(MINI_HEAD "\"symbols\":{\"s\":{\"address\":-1}}}", VMI_ERR_FORMAT, "negative address");
    expect_isf_error(MINI_HEAD "\"symbols\":{\"s\":{\"type\":{}}}}", VMI_ERR_FORMAT, "symbol without address");
    expect_isf_error("{\"metadata\":{},\"user_types\":{\"a\":{\"kind\":\"struct\",\"size\":4,\"fields\":{\"f\":"
                     "{\"offset\":0,\"type\":{\"kind\":\"weird\"}}}}}}",
                     VMI_ERR_FORMAT, "unknown type kind");
    expect_isf_error("{\"metadata\":{},\"user_types\":{\"a\":{\"kind\":\"struct\",\"size\":4,\"fields\":{\"f\":"
                     "{\"offset\":0}}}}}",
                     VMI_ERR_FORMAT, "field without a type");
    st = isf(MINI_HEAD "\"symbols\":{}, \"x\":[1e400, 123456789012345678901234567890, -0, 0.5E+3]}", &t, err,
             sizeof err);
    CHECK(st == VMI_OK, "huge numbers in ignored values are valid JSON: %s (%s)", vmi_status_string(st), err);
    if (st == VMI_OK) vmi__types_free(t);
    st = isf(MINI_HEAD "\"symbols\":{\"s\":{\"address\":18446744073709551615}}}", &t, err, sizeof err);
    CHECK(st == VMI_OK && vmi__types_symbol(t, "s", &v) == VMI_OK && v == UINT64_MAX, "address 2^64-1: %s",
          vmi_status_string(st));
    if (st == VMI_OK) vmi__types_free(t);
    {   /* the error names the line and column */
        st = isf("{\n\"metadata\":{},\n  \"user_types\": {\"a\": nul}}", &t, err, sizeof err);
        CHECK(st == VMI_ERR_FORMAT && strstr(err, "line 3 column 23"), "line/column: got %s (%s)",
              vmi_status_string(st), err);
    }
    {   /* deep nesting: refused, no stack overflow */
        size_t i, n = 100000;
        size_t h = (size_t)sprintf(deep, "%s\"symbols\":{}, \"x\":", MINI_HEAD);
        for (i = 0; i < n; i++) deep[h + i] = '[';
        for (i = 0; i < n; i++) deep[h + n + i] = ']';
        deep[h + 2 * n] = '}';
        st = vmi__types_from_isf(NULL, deep, h + 2 * n + 1, &t, err, sizeof err);
        CHECK(st == VMI_ERR_LIMIT && t == NULL, "100000 nested arrays: expected LIMIT, got %s (%s)",
              vmi_status_string(st), err);
        for (i = 0; i < 100; i++) deep[h + i] = '[';
        for (i = 0; i < 100; i++) deep[h + 100 + i] = ']';
        deep[h + 200] = '}';
        st = vmi__types_from_isf(NULL, deep, h + 201, &t, err, sizeof err);
        CHECK(st == VMI_OK, "100 nested arrays are fine: %s (%s)", vmi_status_string(st), err);
        if (st == VMI_OK) vmi__types_free(t);
    }
    {   /* nested type descriptors beyond the cap */
        char doc[8192];
        int i, len = sprintf(doc, "{\"metadata\":{},\"user_types\":{\"a\":{\"kind\":\"struct\",\"size\":8,"
                                  "\"fields\":{\"f\":{\"offset\":0,\"type\":");
        for (i = 0; i < 100; i++) len += sprintf(doc + len, "{\"kind\":\"pointer\",\"subtype\":");
        len += sprintf(doc + len, "{\"kind\":\"base\",\"name\":\"void\"}");
        for (i = 0; i < 100; i++) len += sprintf(doc + len, "}");
        sprintf(doc + len, "}}}}}");
        st = isf(doc, &t, err, sizeof err);
        CHECK(st == VMI_ERR_LIMIT, "100 nested pointers: expected LIMIT, got %s (%s)", vmi_status_string(st), err);
        if (st == VMI_OK) vmi__types_free(t);
    }
    {   /* a field may name a type defined later, or never */
        st = isf("{\"metadata\":{},\"user_types\":{\"a\":{\"kind\":\"struct\",\"size\":8,\"fields\":{\"b\":"
                 "{\"offset\":0,\"type\":{\"kind\":\"struct\",\"name\":\"b\"}},\"c\":{\"offset\":4,\"type\":{\"kind\":"
                 "\"struct\",\"name\":\"nowhere\"}}}},\"b\":{\"kind\":\"struct\",\"size\":4,\"fields\":{\"x\":{\"offset\""
                 ":2,\"type\":{\"kind\":\"base\",\"name\":\"short\"}}}}}}",
                 &t, err, sizeof err);
        CHECK(st == VMI_OK && t_offset(t, "a", "b.x", &v) == VMI_OK && v == 2, "forward reference: %s (%s)",
              vmi_status_string(st), err);
        if (st == VMI_OK) {
            CHECK(t_offset(t, "a", "c.x", &v) == VMI_ERR_NOT_FOUND, "undefined struct member");
            vmi__types_free(t);
        }
    }
    free(deep);
}

int main(int argc, char **argv) {
    size_t len = 0;
    uint8_t *blob;
    test_synthetic();
    test_corrupt_btf();
    test_isf_sample();
    test_json_edges();
    if (argc > 1) {
        blob = (uint8_t *)test_slurp(argv[1], &len);
        CHECK(blob != NULL, "cannot read %s", argv[1]);
        if (blob) {
            test_real(blob, len, argc > 2 ? argv[2] : NULL);
            test_flips(blob, len, argc > 3 ? atoi(argv[3]) : 300);
            free(blob);
        }
    } else {
        printf("no BTF file given: the real-kernel checks were skipped\n");
    }
    return test_summary();
}
