/* test.h - a tiny check harness for the unit tests.

   CHECK(cond, fmt, ...)          a condition, with a message on failure
   CHECK_EQ(got, want)            two integers (printed in hex and decimal)
   CHECK_STR(got, want)           two C strings
   CHECK_MEM(got, want, len)      two byte ranges
   CHECK_ST(got, want)            two vmi_status values (needs vmi.h first)
   The *_AT forms take the file and line to report, for helpers that check
   on behalf of their caller. test_context() names what is being tested;
   it is printed with every failure until changed.
   test_slurp(path, &len) reads a whole file, NUL-terminated (NULL on
   failure; len may be NULL).
   test_summary() prints "N passed, M failed" and returns nonzero when
   anything failed: `return test_summary();` from main. */
#ifndef TEST_H_INCLUDED
#define TEST_H_INCLUDED

#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__)
#define TEST__PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define TEST__PRINTF(f, a)
#endif

typedef struct test_state {
    unsigned long passed, failed;
    char context[256];
} test_state;

static inline test_state *test_state_get(void)
{
    static test_state state;
    return &state;
}

static inline void test_context(const char *fmt, ...) TEST__PRINTF(1, 2);
static inline void test_context(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(test_state_get()->context, sizeof test_state_get()->context, fmt, ap);
    va_end(ap);
}

static inline int test_check_at(int ok, const char *file, int line, const char *expr,
                                const char *fmt, ...) TEST__PRINTF(5, 6);
static inline int test_check_at(int ok, const char *file, int line, const char *expr,
                                const char *fmt, ...)
{
    test_state *s = test_state_get();
    va_list ap;
    if (ok) {
        s->passed++;
        return 1;
    }
    s->failed++;
    fprintf(stderr, "%s:%d: FAIL [%s] %s: ", file, line, s->context, expr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 0;
}

static inline int test_eq_at(uint64_t got, uint64_t want, const char *file, int line,
                             const char *got_expr, const char *want_expr)
{
    return test_check_at(got == want, file, line, got_expr,
                         "expected %s = 0x%" PRIx64 " (%" PRIu64 "), got 0x%" PRIx64
                         " (%" PRIu64 ")",
                         want_expr, want, want, got, got);
}

static inline int test_str_at(const char *got, const char *want, const char *file, int line,
                              const char *got_expr)
{
    int ok = got && want && strcmp(got, want) == 0;
    return test_check_at(ok, file, line, got_expr, "expected \"%s\", got \"%s\"",
                         want ? want : "(null)", got ? got : "(null)");
}

static inline int test_mem_at(const void *got, const void *want, size_t len, const char *file,
                              int line, const char *got_expr)
{
    const unsigned char *g = (const unsigned char *)got, *w = (const unsigned char *)want;
    size_t i;
    for (i = 0; i < len; i++)
        if (g[i] != w[i])
            break;
    if (i == len)
        return test_check_at(1, file, line, got_expr, "%s", "");
    return test_check_at(0, file, line, got_expr,
                         "bytes differ at offset %lu of %lu: expected 0x%02x, got 0x%02x",
                         (unsigned long)i, (unsigned long)len, w[i], g[i]);
}

/* Prints exactly one line, "N passed, M failed"; nonzero when M > 0. */
static inline char *test_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = (char *)malloc((size_t)n + 1)) != NULL) {
        if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        } else {
            buf[n] = 0;
            if (len) *len = (size_t)n;
        }
    }
    fclose(f);
    return buf;
}

static inline int test_summary(void)
{
    test_state *s = test_state_get();
    fflush(stderr);
    printf("%lu passed, %lu failed\n", s->passed, s->failed);
    fflush(stdout);
    return s->failed != 0;
}

#define CHECK_AT(file, line, cond, ...) test_check_at((cond) != 0, file, line, #cond, __VA_ARGS__)
#define CHECK(cond, ...) CHECK_AT(__FILE__, __LINE__, cond, __VA_ARGS__)
#define CHECK_EQ_AT(file, line, got, want)                                                   \
    test_eq_at((uint64_t)(got), (uint64_t)(want), file, line, #got, #want)
#define CHECK_EQ(got, want) CHECK_EQ_AT(__FILE__, __LINE__, got, want)
#define CHECK_STR_AT(file, line, got, want) test_str_at(got, want, file, line, #got)
#define CHECK_STR(got, want) CHECK_STR_AT(__FILE__, __LINE__, got, want)
#define CHECK_MEM_AT(file, line, got, want, len) test_mem_at(got, want, len, file, line, #got)
#define CHECK_MEM(got, want, len) CHECK_MEM_AT(__FILE__, __LINE__, got, want, len)

#ifdef VMI_H_INCLUDED
static inline int test_st_at(vmi_status got, vmi_status want, const char *file, int line,
                             const char *got_expr)
{
    return test_check_at(got == want, file, line, got_expr, "expected %s (%d), got %s (%d)",
                         vmi_status_string(want), (int)want, vmi_status_string(got), (int)got);
}
#define CHECK_ST_AT(file, line, got, want) test_st_at(got, want, file, line, #got)
#define CHECK_ST(got, want) CHECK_ST_AT(__FILE__, __LINE__, got, want)
#endif

#endif /* TEST_H_INCLUDED */
