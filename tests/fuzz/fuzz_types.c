/* libFuzzer harness for the type database: the BTF and the ISF loaders.
   The first byte picks the parser (even: BTF, odd: ISF); what loads is
   queried, written back as ISF, and that ISF must load again.
   clang -std=c99 -O1 -g -fsanitize=fuzzer,address,undefined -I../.. fuzz_types.c -o fuzz_types */
#define VMI_IMPLEMENTATION
#include "vmi.h"

typedef struct fuzz_buf {
    char *p;
    size_t n, cap;
} fuzz_buf;

static int fuzz_write(void *user, const char *s, size_t n) {
    fuzz_buf *b = (fuzz_buf *)user;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        char *p;
        while (cap < b->n + n) cap *= 2;
        p = (char *)realloc(b->p, cap);
        if (!p) return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    return 0;
}

static void fuzz_queries(const vmi__types *t) {
    static const char *const names[] = {"s", "struct s", "t", "a", "task_struct", "_EPROCESS", "union u", "enum e"};
    static const char *const paths[] = {"a", "b", "a.b", "x.y.z", "unnamed_field_0", "s.arr", "bf"};
    size_t i, k;
    uint64_t v, bytes;
    uint32_t bits;
    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        vmi__types_size(t, names[i], &v);
        for (k = 0; k < sizeof paths / sizeof paths[0]; k++) vmi__types_member(t, names[i], paths[k], &v, &bits, &bytes);
    }
    vmi__types_symbol(t, "s", &v);
    {
        uint64_t bo, bs;
        uint32_t bw;
        vmi__types_member(t, "a", "a", &bo, &bw, &bs);
    }
    (void)vmi__types_count(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    vmi__types *t = NULL, *r = NULL;
    char err[256];
    fuzz_buf b;
    vmi_status st;
    if (size < 1) return 0;
    if (data[0] & 1) st = vmi__types_from_isf(NULL, (const char *)data + 1, size - 1, &t, err, sizeof err);
    else st = vmi__types_from_btf(NULL, data + 1, size - 1, &t, err, sizeof err);
    if (st != VMI_OK) {
        if (t || !err[0]) abort(); /* a failure leaves nothing and says why */
        return 0;
    }
    fuzz_queries(t);
    memset(&b, 0, sizeof b);
    if (vmi__types_write_isf(t, NULL, NULL, NULL, 0, fuzz_write, &b) != VMI_OK) abort();
    st = vmi__types_from_isf(NULL, b.p, b.n, &r, err, sizeof err);
    if (st != VMI_OK) {
        fprintf(stderr, "written ISF does not load: %s\n", err);
        abort();
    }
    fuzz_queries(r);
    vmi__types_free(r);
    vmi__types_free(t);
    free(b.p);
    return 0;
}
