/* Memory unit tests on the buffer backend: physical and virtual reads and
   writes of every small length across pages, ranges and holes; integer,
   pointer, C string and UTF-16 reads; status strings, last error, the
   allocator and logger hooks. Expected bytes always come from the host
   buffers themselves. */
#define VMI_IMPLEMENTATION
#include "vmi.h"
#include "test.h"

#include <stdlib.h>

/* ---- the guest -------------------------------------------------------------
   R0 [0x00000, 0x10000)   writable, holds the page tables
   hole [0x10000, 0x20000)
   R1 [0x20000, 0x30000)   writable
   R2 [0x30000, 0x40000)   writable, adjacent to R1
   R3 [0x100000, 0x101000) read-only (no VMI_RANGE_WRITABLE)

   IA-32e tables (PML4 0x1000): VA 0x400000 -> PA 0x6000, 0x401000 -> 0x8000,
   0x402000 not present, 0x403000 -> 0x22000 (R1), 0x404000 -> 0x12000 (hole),
   0x405000 -> 0x2f000 (end of R1), 0x406000 -> 0x30000 (start of R2),
   0x407000 -> 0x100000 (R3).
   Legacy tables (PD 0x9000): VA 0x400000 -> 0x6000, 0x401000 -> 0x8000. */

#define NR 4
static vmi_mem_range ranges[NR];
static uint8_t *snapshot[NR];

static const uint64_t DTB = 0x1000, DTB32 = 0x9000;

static uint8_t pat(uint64_t pa)
{
    return (uint8_t)(pa * 131 + (pa >> 8) * 7 + 1);
}

static uint8_t *host(uint64_t pa)
{
    int i;
    for (i = 0; i < NR; i++)
        if (pa >= ranges[i].pa && pa < ranges[i].pa + ranges[i].size)
            return (uint8_t *)ranges[i].host + (pa - ranges[i].pa);
    return NULL;
}

static void w64(uint64_t pa, uint64_t v)
{
    int i;
    for (i = 0; i < 8; i++)
        host(pa)[i] = (uint8_t)(v >> (8 * i));
}

static void w32(uint64_t pa, uint32_t v)
{
    int i;
    for (i = 0; i < 4; i++)
        host(pa)[i] = (uint8_t)(v >> (8 * i));
}

static void put(uint64_t pa, const void *data, size_t len)
{
    memcpy(host(pa), data, len);
}

static void build(void)
{
    const uint64_t pa[4] = {0, 0x20000, 0x30000, 0x100000};
    const uint64_t size[4] = {0x10000, 0x10000, 0x10000, 0x1000};
    int i;
    uint64_t a;
    for (i = 0; i < NR; i++) {
        ranges[i].pa = pa[i];
        ranges[i].size = size[i];
        ranges[i].host = malloc((size_t)size[i]);
        ranges[i].flags = i == 3 ? 0 : VMI_RANGE_WRITABLE;
        snapshot[i] = malloc((size_t)size[i]);
        if (!ranges[i].host || !snapshot[i])
            abort();
        for (a = 0; a < size[i]; a++)
            ((uint8_t *)ranges[i].host)[a] = pat(pa[i] + a);
    }
    memset(host(0x1000), 0, 0x4000);
    w64(0x1000, 0x2000 | 7);
    w64(0x2000, 0x3000 | 7);
    w64(0x3000 + 2 * 8, 0x4000 | 7);
    w64(0x4000 + 0 * 8, 0x6000 | 7);
    w64(0x4000 + 1 * 8, 0x8000 | 7);
    w64(0x4000 + 3 * 8, 0x22000 | 7);
    w64(0x4000 + 4 * 8, 0x12000 | 7);
    w64(0x4000 + 5 * 8, 0x2f000 | 7);
    w64(0x4000 + 6 * 8, 0x30000 | 7);
    w64(0x4000 + 7 * 8, 0x100000 | 7);
    memset(host(0x9000), 0, 0x2000);
    w32(0x9000 + 1 * 4, 0xa000 | 7);
    w32(0xa000 + 0 * 4, 0x6000 | 7);
    w32(0xa000 + 1 * 4, 0x8000 | 7);
    for (i = 0; i < NR; i++)
        memcpy(snapshot[i], ranges[i].host, (size_t)ranges[i].size);
}

/* Puts every range back as it was after build(). */
static void restore(void)
{
    int i;
    for (i = 0; i < NR; i++)
        memcpy(ranges[i].host, snapshot[i], (size_t)ranges[i].size);
}

static uint8_t snap(uint64_t pa)
{
    int i;
    for (i = 0; i < NR; i++)
        if (pa >= ranges[i].pa && pa < ranges[i].pa + ranges[i].size)
            return snapshot[i][pa - ranges[i].pa];
    return 0;
}

/* buf against guest memory at pa, byte by byte (ranges may be adjacent). */
#define SAME(buf, pa, n) same_(__FILE__, __LINE__, buf, pa, n)
static void same_(const char *file, int line, const uint8_t *buf, uint64_t pa, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (!CHECK_AT(file, line, host(pa + i) && *host(pa + i) == buf[i],
                      "pa 0x%" PRIx64 ": guest has 0x%02x, buffer has 0x%02x", pa + i,
                      host(pa + i) ? *host(pa + i) : 0, buf[i]))
            return;
    CHECK_AT(file, line, 1, "%s", "");
}

/* Bytes readable from pa on before the first hole, up to len. */
static size_t readable(uint64_t pa, size_t len)
{
    size_t n = 0;
    while (n < len && host(pa + n))
        n++;
    return n;
}

static vmi_instance *open_guest(vmi_paging_mode mode, uint64_t dtb, const vmi_allocator *alloc,
                                const vmi_logger *logger, vmi_status *status)
{
    vmi_desc desc;
    vmi_instance *vmi = NULL;
    vmi_status st;
    memset(&desc, 0, sizeof desc);
    vmi_backend_buffer(&desc.backend, ranges, NR);
    desc.paging.mode = mode;
    desc.paging.dtb = dtb;
    desc.paging.flags = VMI_PAGING_NXE;
    if (alloc)
        desc.allocator = *alloc;
    if (logger)
        desc.logger = *logger;
    st = vmi_open(&desc, &vmi);
    if (status) {
        *status = st;
        return st == VMI_OK ? vmi : NULL;
    }
    CHECK_ST(st, VMI_OK);
    if (st != VMI_OK || !vmi) {
        test_summary();
        exit(1);
    }
    return vmi;
}

/* ---- physical ------------------------------------------------------------- */

static void test_phys(vmi_instance *vmi)
{
    static const uint64_t starts[][2] = {
        {0x0fc0, 0x1040},   /* page boundary inside R0 */
        {0xffb0, 0x10010},  /* end of R0 into the hole */
        {0x1ffc0, 0x20010}, /* hole into R1 */
        {0x2ffb0, 0x30010}, /* R1 into R2, adjacent */
        {0x3ffc0, 0x40000}, /* end of R2 */
    };
    uint8_t buf[80], w[80];
    size_t k, len, done, i;
    uint64_t s, v64;
    uint32_t v32;
    vmi_status st;

    test_context("read_pa");
    for (k = 0; k < sizeof starts / sizeof starts[0]; k++)
        for (s = starts[k][0]; s < starts[k][1]; s++)
            for (len = 0; len <= 64; len++) {
                size_t want = readable(s, len);
                memset(buf, 0xee, sizeof buf);
                done = 12345;
                st = vmi_read_pa(vmi, s, buf, len, &done);
                if (!CHECK(st == (want == len ? VMI_OK : VMI_ERR_UNMAPPED),
                           "read_pa(0x%" PRIx64 ", %lu): expected %s, got %s", s,
                           (unsigned long)len, want == len ? "ok" : "unmapped",
                           vmi_status_string(st)) ||
                    !CHECK(done == want, "read_pa(0x%" PRIx64 ", %lu): expected done %lu, got %lu",
                           s, (unsigned long)len, (unsigned long)want, (unsigned long)done))
                    continue;
                SAME(buf, s, want);
            }
    CHECK_ST(vmi_read_pa(vmi, 0x0ff0, buf, 32, NULL), VMI_OK);
    CHECK_MEM(buf, host(0x0ff0), 32);
    CHECK_ST(vmi_read_pa(vmi, 0xfff0, buf, 32, NULL), VMI_ERR_UNMAPPED);
    CHECK_ST(vmi_read_pa(vmi, 0x50000, buf, 1, NULL), VMI_ERR_UNMAPPED);
    CHECK_ST(vmi_read_pa(vmi, ~0ULL - 3, buf, 8, &done), VMI_ERR_UNMAPPED);
    CHECK_EQ(done, 0);
    CHECK_ST(vmi_read_pa(vmi, 0x0ff0, buf, 0, NULL), VMI_OK);
    CHECK_ST(vmi_read_pa(vmi, 0x12345, buf, 0, &done), VMI_OK);
    CHECK_EQ(done, 0);

    test_context("read_u32_pa / read_u64_pa");
    CHECK_ST(vmi_read_u32_pa(vmi, 0x0ffe, &v32), VMI_OK);
    CHECK_EQ(v32, (uint32_t)*host(0xffe) | (uint32_t)*host(0xfff) << 8 |
                      (uint32_t)*host(0x1000) << 16 | (uint32_t)*host(0x1001) << 24);
    CHECK_ST(vmi_read_u64_pa(vmi, 0x2fffc, &v64), VMI_OK);
    for (i = 0, s = 0; i < 8; i++)
        s |= (uint64_t)pat(0x2fffc + i) << (8 * i);
    CHECK_EQ(v64, s);
    CHECK_ST(vmi_read_u64_pa(vmi, 0xfffc, &v64), VMI_ERR_UNMAPPED);
    CHECK_ST(vmi_read_u32_pa(vmi, 0x18000, &v32), VMI_ERR_UNMAPPED);

    test_context("write_pa");
    for (k = 0; k < sizeof starts / sizeof starts[0]; k++)
        for (s = starts[k][0]; s < starts[k][1]; s += 3)
            for (len = 0; len <= 64; len += 1 + (len > 8) * 6) {
                size_t want = readable(s, len);
                for (i = 0; i < len; i++)
                    w[i] = (uint8_t)(0x5a ^ (i * 29) ^ s);
                done = 12345;
                st = vmi_write_pa(vmi, s, w, len, &done);
                CHECK(st == (want == len ? VMI_OK : VMI_ERR_UNMAPPED),
                      "write_pa(0x%" PRIx64 ", %lu): expected %s, got %s", s, (unsigned long)len,
                      want == len ? "ok" : "unmapped", vmi_status_string(st));
                CHECK(done == want, "write_pa(0x%" PRIx64 ", %lu): expected done %lu, got %lu", s,
                      (unsigned long)len, (unsigned long)want, (unsigned long)done);
                SAME(w, s, want);
                if (host(s - 1))
                    CHECK(*host(s - 1) == snap(s - 1), "write_pa(0x%" PRIx64 ") wrote before", s);
                if (host(s + want))
                    CHECK(*host(s + want) == snap(s + want), "write_pa(0x%" PRIx64 ") wrote after", s);
                memset(buf, 0, sizeof buf);
                if (want) {
                    CHECK_ST(vmi_read_pa(vmi, s, buf, want, NULL), VMI_OK);
                    CHECK_MEM(buf, w, want);
                }
                restore();
            }
    /* the read-only range */
    st = vmi_write_pa(vmi, 0x100010, w, 8, &done);
    CHECK(st != VMI_OK, "write into a range without VMI_RANGE_WRITABLE: got ok");
    CHECK_ST(st, VMI_ERR_READ_ONLY);
    CHECK_EQ(done, 0);
    CHECK_MEM(host(0x100010), &snapshot[3][0x10], 8);
    CHECK_ST(vmi_read_pa(vmi, 0x100ff8, buf, 8, NULL), VMI_OK);
    CHECK_MEM(buf, host(0x100ff8), 8);
    restore();
}

/* ---- virtual -------------------------------------------------------------- */

/* PA of a VA in the IA-32e mapping above, or ~0 when there is none. */
static uint64_t v2p(uint64_t va)
{
    static const uint64_t map[8] = {0x6000, 0x8000, ~0ULL, 0x22000, 0x12000, 0x2f000, 0x30000,
                                    0x100000};
    if (va < 0x400000 || va >= 0x408000 || map[(va - 0x400000) >> 12] == ~0ULL)
        return ~0ULL;
    return map[(va - 0x400000) >> 12] | (va & 0xfff);
}

/* Expected outcome of an access of len bytes at va: bytes done and status. */
static size_t expect_va(uint64_t va, size_t len, vmi_status *st)
{
    size_t n;
    for (n = 0; n < len; n++) {
        uint64_t pa = v2p(va + n);
        if (pa == ~0ULL) {
            *st = VMI_ERR_NOT_PRESENT;
            return n;
        }
        if (!host(pa)) {
            *st = VMI_ERR_UNMAPPED;
            return n;
        }
    }
    *st = VMI_OK;
    return n;
}

static void test_virt(vmi_instance *vmi)
{
    static const uint64_t starts[][2] = {
        {0x400fc0, 0x401010}, /* two distant frames */
        {0x401fc0, 0x402000}, /* into a page that is not present */
        {0x403fc0, 0x404010}, /* into a frame in the hole */
        {0x405fc0, 0x406010}, /* end of R1 into R2 */
    };
    uint8_t buf[80], w[80];
    size_t k, len, done, i, want;
    uint64_t s, v64;
    uint32_t v32;
    uint16_t v16;
    uint8_t v8;
    vmi_status st, est;

    test_context("read_va");
    for (k = 0; k < sizeof starts / sizeof starts[0]; k++)
        for (s = starts[k][0]; s < starts[k][1]; s++)
            for (len = 0; len <= 64; len++) {
                want = expect_va(s, len, &est);
                memset(buf, 0xee, sizeof buf);
                done = 12345;
                st = vmi_read_va(vmi, DTB, s, buf, len, &done);
                if (!CHECK(st == est, "read_va(0x%" PRIx64 ", %lu): expected %s, got %s", s,
                           (unsigned long)len, vmi_status_string(est), vmi_status_string(st)) ||
                    !CHECK(done == want, "read_va(0x%" PRIx64 ", %lu): expected done %lu, got %lu",
                           s, (unsigned long)len, (unsigned long)want, (unsigned long)done))
                    continue;
                for (i = 0; i < want; i++)
                    if (!CHECK(buf[i] == *host(v2p(s + i)),
                               "read_va(0x%" PRIx64 ", %lu): byte %lu is 0x%02x, expected 0x%02x", s,
                               (unsigned long)len, (unsigned long)i, buf[i], *host(v2p(s + i))))
                        break;
            }
    CHECK_ST(vmi_read_va(vmi, DTB, 0x402000, buf, 0, &done), VMI_OK);
    CHECK_ST(vmi_read_va(vmi, DTB, 0x402000, buf, 1, NULL), VMI_ERR_NOT_PRESENT);
    CHECK_ST(vmi_read_kva(vmi, 0x400ffc, buf, 8, &done), VMI_OK);
    CHECK_EQ(done, 8);
    CHECK_MEM(buf, host(0x6ffc), 4);
    CHECK_MEM(buf + 4, host(0x8000), 4);

    test_context("write_va");
    for (k = 0; k < sizeof starts / sizeof starts[0]; k++)
        for (s = starts[k][0]; s < starts[k][1]; s += 5)
            for (len = 0; len <= 64; len += 1 + (len > 8) * 6) {
                want = expect_va(s, len, &est);
                for (i = 0; i < len; i++)
                    w[i] = (uint8_t)(0xa5 ^ (i * 13) ^ s);
                done = 12345;
                st = vmi_write_va(vmi, DTB, s, w, len, &done);
                CHECK(st == est, "write_va(0x%" PRIx64 ", %lu): expected %s, got %s", s,
                      (unsigned long)len, vmi_status_string(est), vmi_status_string(st));
                CHECK(done == want, "write_va(0x%" PRIx64 ", %lu): expected done %lu, got %lu", s,
                      (unsigned long)len, (unsigned long)want, (unsigned long)done);
                for (i = 0; i < want; i++)
                    if (!CHECK(*host(v2p(s + i)) == w[i], "write_va(0x%" PRIx64 ", %lu): byte %lu",
                               s, (unsigned long)len, (unsigned long)i))
                        break;
                if (v2p(s + want) != ~0ULL && host(v2p(s + want)))
                    CHECK(*host(v2p(s + want)) == snap(v2p(s + want)),
                          "write_va(0x%" PRIx64 ", %lu) wrote past its end", s, (unsigned long)len);
                memset(buf, 0, sizeof buf);
                if (want) {
                    CHECK_ST(vmi_read_va(vmi, DTB, s, buf, want, NULL), VMI_OK);
                    CHECK_MEM(buf, w, want);
                }
                restore();
            }
    st = vmi_write_va(vmi, DTB, 0x407010, w, 4, &done);
    CHECK_ST(st, VMI_ERR_READ_ONLY);
    CHECK_MEM(host(0x100010), &snapshot[3][0x10], 4);
    CHECK_ST(vmi_write_kva(vmi, 0x400ffe, "\x11\x22\x33\x44", 4, &done), VMI_OK);
    CHECK_EQ(done, 4);
    CHECK_EQ(*host(0x6ffe), 0x11);
    CHECK_EQ(*host(0x8001), 0x44);
    restore();

    test_context("read_u8..u64, read_addr (ia32e)");
    CHECK_EQ(vmi_addr_width(vmi), 8);
    CHECK_ST(vmi_read_u8(vmi, DTB, 0x400fff, &v8), VMI_OK);
    CHECK_EQ(v8, pat(0x6fff));
    CHECK_ST(vmi_read_u16(vmi, DTB, 0x400fff, &v16), VMI_OK);
    CHECK_EQ(v16, pat(0x6fff) | pat(0x8000) << 8);
    CHECK_ST(vmi_read_u32(vmi, DTB, 0x400ffe, &v32), VMI_OK);
    CHECK_EQ(v32, (uint32_t)pat(0x6ffe) | (uint32_t)pat(0x6fff) << 8 |
                      (uint32_t)pat(0x8000) << 16 | (uint32_t)pat(0x8001) << 24);
    CHECK_ST(vmi_read_u64(vmi, DTB, 0x400ffb, &v64), VMI_OK);
    for (i = 0, s = 0; i < 8; i++)
        s |= (uint64_t)*host(v2p(0x400ffb + i)) << (8 * i);
    CHECK_EQ(v64, s);
    CHECK_ST(vmi_read_addr(vmi, DTB, 0x400ffb, &v64), VMI_OK);
    CHECK_EQ(v64, s);
    CHECK_ST(vmi_read_u32(vmi, DTB, 0x401ffe, &v32), VMI_ERR_NOT_PRESENT);
    CHECK_ST(vmi_read_u64(vmi, DTB, 0x404000, &v64), VMI_ERR_UNMAPPED);

    test_context("write_u8..u64");
    CHECK_ST(vmi_write_u8(vmi, DTB, 0x400fff, 0xab), VMI_OK);
    CHECK_ST(vmi_read_u8(vmi, DTB, 0x400fff, &v8), VMI_OK);
    CHECK_EQ(v8, 0xab);
    CHECK_ST(vmi_write_u16(vmi, DTB, 0x400fff, 0xbeef), VMI_OK);
    CHECK_EQ(*host(0x6fff), 0xef);
    CHECK_EQ(*host(0x8000), 0xbe);
    CHECK_ST(vmi_write_u32(vmi, DTB, 0x400ffd, 0x12345678), VMI_OK);
    CHECK_ST(vmi_read_u32(vmi, DTB, 0x400ffd, &v32), VMI_OK);
    CHECK_EQ(v32, 0x12345678);
    CHECK_ST(vmi_write_u64(vmi, DTB, 0x400ff9, 0x0123456789abcdefULL), VMI_OK);
    CHECK_ST(vmi_read_u64(vmi, DTB, 0x400ff9, &v64), VMI_OK);
    CHECK_EQ(v64, 0x0123456789abcdefULL);
    CHECK_EQ(*host(0x6ff9), 0xef);
    CHECK_EQ(*host(0x8000), 0x01);
    CHECK_ST(vmi_write_u32(vmi, DTB, 0x402000, 1), VMI_ERR_NOT_PRESENT);
    restore();

    test_context("read_addr (legacy, 32-bit)");
    {
        vmi_paging p;
        memset(&p, 0, sizeof p);
        p.mode = VMI_PAGING_LEGACY;
        p.dtb = DTB32;
        CHECK_ST(vmi_set_paging(vmi, &p), VMI_OK);
        CHECK_EQ(vmi_addr_width(vmi), 4);
        put(0x6010, "\xef\xbe\xad\xde\x0d\xf0\xad\x0b", 8);
        CHECK_ST(vmi_read_addr(vmi, DTB32, 0x400010, &v64), VMI_OK);
        CHECK_EQ(v64, 0xdeadbeefULL);
        put(0x6ffe, "\x01\x02", 2);
        put(0x8000, "\x03\x84", 2);
        CHECK_ST(vmi_read_addr(vmi, DTB32, 0x400ffe, &v64), VMI_OK);
        CHECK_EQ(v64, 0x84030201ULL);
        CHECK_ST(vmi_read_addr(vmi, DTB32, 0x401ffe, &v64), VMI_ERR_NOT_PRESENT);
        p.mode = VMI_PAGING_IA32E;
        p.dtb = DTB;
        p.flags = VMI_PAGING_NXE;
        CHECK_ST(vmi_set_paging(vmi, &p), VMI_OK);
        restore();
    }
}

/* ---- strings ---------------------------------------------------------------- */

static void test_str(vmi_instance *vmi)
{
    char buf[64];
    size_t len;
    vmi_status st;

    test_context("read_str");
    put(0x6100, "hello\0world", 12);
    memset(buf, 'x', sizeof buf);
    len = 999;
    CHECK_ST(vmi_read_str(vmi, DTB, 0x400100, buf, sizeof buf, &len), VMI_OK);
    CHECK_STR(buf, "hello");
    CHECK_EQ(len, 5);
    CHECK_ST(vmi_read_str(vmi, DTB, 0x400106, buf, sizeof buf, NULL), VMI_OK);
    CHECK_STR(buf, "world");
    /* across two distant frames */
    put(0x6ffc, "abcd", 4);
    put(0x8000, "efgh", 5);
    CHECK_ST(vmi_read_str(vmi, DTB, 0x400ffc, buf, sizeof buf, &len), VMI_OK);
    CHECK_STR(buf, "abcdefgh");
    CHECK_EQ(len, 8);
    /* no NUL within cap - 1: truncated and terminated */
    memset(buf, 'x', sizeof buf);
    CHECK_ST(vmi_read_str(vmi, DTB, 0x400100, buf, 4, &len), VMI_ERR_LIMIT);
    CHECK_STR(buf, "hel");
    CHECK_EQ(len, 3);
    CHECK(buf[4] == 'x', "read_str with cap 4 wrote past its buffer");
    /* a string that exactly fills the buffer, NUL included */
    put(0x6200, "abc", 4);
    memset(buf, 'x', sizeof buf);
    st = vmi_read_str(vmi, DTB, 0x400200, buf, 4, &len);
    CHECK_STR(buf, "abc");
    CHECK(st == VMI_OK, "\"abc\" into cap 4 (fits, NUL included): expected ok, got %s",
          vmi_status_string(st));
    /* cap 1: only the terminator fits */
    memset(buf, 'x', sizeof buf);
    st = vmi_read_str(vmi, DTB, 0x400100, buf, 1, &len);
    CHECK_ST(st, VMI_ERR_LIMIT);
    CHECK_EQ(buf[0], 0);
    CHECK(buf[1] == 'x', "read_str with cap 1 wrote past its buffer");
    /* cap 0: nothing may be written */
    memset(buf, 'x', sizeof buf);
    st = vmi_read_str(vmi, DTB, 0x400100, buf, 0, &len);
    CHECK(st != VMI_OK, "read_str with cap 0: expected a failure, got ok");
    CHECK(buf[0] == 'x', "read_str with cap 0 wrote into the buffer");
    /* an empty string */
    put(0x6300, "", 1);
    CHECK_ST(vmi_read_str(vmi, DTB, 0x400300, buf, sizeof buf, &len), VMI_OK);
    CHECK_STR(buf, "");
    CHECK_EQ(len, 0);
    /* runs into a page that is not present */
    put(0x8ffd, "xyz", 3);
    memset(buf, 'q', sizeof buf);
    st = vmi_read_str(vmi, DTB, 0x401ffd, buf, sizeof buf, &len);
    CHECK_ST(st, VMI_ERR_NOT_PRESENT);
    CHECK(memchr(buf, 0, sizeof buf) != NULL, "read_str failure left buf unterminated");
    CHECK_STR(buf, "xyz");
    /* a string that ends right before a page that is not present */
    put(0x8ffd, "xy", 3);
    CHECK_ST(vmi_read_str(vmi, DTB, 0x401ffd, buf, sizeof buf, &len), VMI_OK);
    CHECK_STR(buf, "xy");
    /* nothing mapped at all */
    memset(buf, 'q', sizeof buf);
    CHECK_ST(vmi_read_str(vmi, DTB, 0x402010, buf, sizeof buf, &len), VMI_ERR_NOT_PRESENT);
    CHECK_EQ(buf[0], 0);
    CHECK(vmi_last_error(vmi)[0] != 0, "vmi_last_error empty after a failed read_str");
    /* a long string: cap 64 */
    memset(host(0x6400), 'L', 200);
    CHECK_ST(vmi_read_str(vmi, DTB, 0x400400, buf, sizeof buf, &len), VMI_ERR_LIMIT);
    CHECK_EQ(len, 63);
    CHECK_EQ(strlen(buf), 63);
    restore();
}

#define U16(s) s, sizeof(s) - 1 /* bytes of a UTF-16LE literal without the C NUL */

static void utf16_case(const char *file, int line, vmi_instance *vmi, uint64_t va, size_t nbytes,
                       size_t cap, vmi_status want_st, const char *want)
{
    char buf[64];
    size_t len = 999;
    vmi_status st;
    memset(buf, 'x', sizeof buf);
    st = vmi_read_utf16(vmi, DTB, va, nbytes, buf, cap, &len);
    CHECK_AT(file, line, st == want_st, "read_utf16(va 0x%" PRIx64 ", nbytes %lu, cap %lu): expected %s, got %s",
             va, (unsigned long)nbytes, (unsigned long)cap, vmi_status_string(want_st),
             vmi_status_string(st));
    CHECK_STR_AT(file, line, buf, want);
    CHECK_AT(file, line, len == strlen(want), "read_utf16: expected len %lu, got %lu",
             (unsigned long)strlen(want), (unsigned long)len);
    CHECK_AT(file, line, cap >= sizeof buf || buf[cap] == 'x', "read_utf16 wrote past cap %lu",
             (unsigned long)cap);
}
#define UTF16(va, nbytes, cap, st, want) utf16_case(__FILE__, __LINE__, vmi, va, nbytes, cap, st, want)

static void test_utf16(vmi_instance *vmi)
{
    char buf[16];
    size_t len;
    vmi_status st;

    test_context("read_utf16");
    put(0x6500, U16("H\0i\0\0\0!\0"));
    UTF16(0x400500, 0, 64, VMI_OK, "Hi");
    UTF16(0x400500, 4, 64, VMI_OK, "Hi");
    UTF16(0x400500, 2, 64, VMI_OK, "H");
    put(0x6520, U16("\xe9\x00\xac\x20\x2d\x4e\0\0")); /* U+00E9 U+20AC U+4E2D */
    UTF16(0x400520, 0, 64, VMI_OK, "\xc3\xa9\xe2\x82\xac\xe4\xb8\xad");
    put(0x6540, U16("\x3d\xd8\x00\xde\0\0")); /* U+1F600 */
    UTF16(0x400540, 0, 64, VMI_OK, "\xf0\x9f\x98\x80");
    UTF16(0x400540, 4, 64, VMI_OK, "\xf0\x9f\x98\x80");
    put(0x6560, U16("\x3d\xd8" "A\0\0\0")); /* high surrogate, then 'A' */
    UTF16(0x400560, 0, 64, VMI_OK, "\xef\xbf\xbd" "A");
    put(0x6580, U16("\x00\xde" "B\0\0\0")); /* lone low surrogate */
    UTF16(0x400580, 0, 64, VMI_OK, "\xef\xbf\xbd" "B");
    put(0x65a0, U16("A\0\x3d\xd8\0\0")); /* high surrogate at the end */
    UTF16(0x4005a0, 0, 64, VMI_OK, "A\xef\xbf\xbd");
    UTF16(0x4005a0, 4, 64, VMI_OK, "A\xef\xbf\xbd");
    put(0x65c0, U16("\x3d\xd8\x3d\xd8\x00\xde\0\0")); /* high, then a full pair */
    UTF16(0x4005c0, 0, 64, VMI_OK, "\xef\xbf\xbd\xf0\x9f\x98\x80");
    /* nbytes odd: the last lone byte is no code unit */
    memset(buf, 'x', sizeof buf);
    st = vmi_read_utf16(vmi, DTB, 0x400500, 5, buf, sizeof buf, &len);
    CHECK((st == VMI_OK && strcmp(buf, "Hi") == 0) || st == VMI_ERR_ARG,
          "odd nbytes: got %s, \"%s\"", vmi_status_string(st), st == VMI_OK ? buf : "");
    /* buffer too small: truncated on a character boundary, terminated */
    put(0x6600, U16("H\0e\0l\0l\0o\0\0\0"));
    UTF16(0x400600, 0, 4, VMI_ERR_LIMIT, "Hel");
    UTF16(0x400600, 0, 6, VMI_OK, "Hello");
    UTF16(0x400600, 0, 5, VMI_ERR_LIMIT, "Hell");
    put(0x6620, U16("\xe9\x00\xe9\x00\xe9\x00\0\0"));
    UTF16(0x400620, 0, 4, VMI_ERR_LIMIT, "\xc3\xa9");
    UTF16(0x400620, 0, 7, VMI_OK, "\xc3\xa9\xc3\xa9\xc3\xa9");
    UTF16(0x400540, 0, 4, VMI_ERR_LIMIT, "");
    UTF16(0x400500, 0, 1, VMI_ERR_LIMIT, "");
    memset(buf, 'x', sizeof buf);
    st = vmi_read_utf16(vmi, DTB, 0x400500, 0, buf, 0, &len);
    CHECK(st != VMI_OK, "read_utf16 with cap 0: got ok");
    CHECK(buf[0] == 'x', "read_utf16 with cap 0 wrote into the buffer");
    /* a surrogate pair split between two distant frames */
    put(0x6ffc, U16("Z\0\x3d\xd8"));
    put(0x8000, U16("\x00\xde\0\0"));
    UTF16(0x400ffc, 0, 64, VMI_OK, "Z\xf0\x9f\x98\x80");
    /* odd address across a page */
    put(0x6ffd, U16("a\0b\0"));
    put(0x8000, U16("\0c\0\0\0"));
    UTF16(0x400ffd, 0, 64, VMI_OK, "abc");
    /* into a page that is not present */
    put(0x8ffc, U16("y\0z\0"));
    memset(buf, 'x', sizeof buf);
    st = vmi_read_utf16(vmi, DTB, 0x401ffc, 0, buf, sizeof buf, &len);
    CHECK_ST(st, VMI_ERR_NOT_PRESENT);
    CHECK(memchr(buf, 0, sizeof buf) != NULL, "read_utf16 failure left buf unterminated");
    CHECK_STR(buf, "yz");
    CHECK_ST(vmi_read_utf16(vmi, DTB, 0x401ffc, 4, buf, sizeof buf, &len), VMI_OK);
    CHECK_STR(buf, "yz");
    restore();
}

/* ---- names, errors, hooks --------------------------------------------------- */

typedef struct counts {
    unsigned long allocs, frees, fail_after;
    long live;
} counts;

static void *count_alloc(size_t size, void *user)
{
    counts *c = (counts *)user;
    if (c->fail_after && c->allocs + 1 >= c->fail_after)
        return NULL;
    c->allocs++;
    c->live++;
    return malloc(size);
}

static void count_free(void *ptr, void *user)
{
    counts *c = (counts *)user;
    if (ptr) {
        c->frees++;
        c->live--;
    }
    free(ptr);
}

typedef struct logs {
    unsigned long n, above;
    vmi_log_level max;
    char last[256];
} logs;

static void log_fn(vmi_log_level level, const char *msg, void *user)
{
    logs *l = (logs *)user;
    l->n++;
    if (level > l->max)
        l->above++;
    snprintf(l->last, sizeof l->last, "%s", msg ? msg : "(null)");
}

static void test_api(void)
{
    static const char *const texts[] = {
#define X(name, text) text,
        VMI_STATUS_LIST(X)
#undef X
    };
    int i;
    vmi_instance *vmi;
    vmi_allocator a;
    vmi_logger lg;
    counts c;
    logs l;
    uint64_t pa;
    size_t n;
    vmi_status st;
    unsigned long k;

    test_context("status strings");
    CHECK_EQ(sizeof texts / sizeof texts[0], VMI_STATUS_COUNT);
    for (i = 0; i < VMI_STATUS_COUNT; i++) {
        const char *s = vmi_status_string((vmi_status)i);
        CHECK(s && s[0], "status %d has no string", i);
        if (s)
            CHECK_STR(s, texts[i]);
    }
    CHECK(vmi_status_string(VMI_STATUS_COUNT) != NULL, "out-of-range status gives NULL");
    CHECK(vmi_status_string((vmi_status)-1) != NULL, "status -1 gives NULL");
    CHECK(vmi_status_string((vmi_status)1000) != NULL, "status 1000 gives NULL");

    test_context("names");
    for (i = 0; i <= VMI_ARCH_AARCH64; i++)
        CHECK(vmi_arch_name((vmi_arch)i) && vmi_arch_name((vmi_arch)i)[0], "arch %d has no name", i);
    for (i = 0; i < VMI_PAGING_MODE_COUNT; i++) {
        const char *name = vmi_paging_mode_name((vmi_paging_mode)i);
        if (!CHECK(name && name[0], "paging mode %d has no name", i))
            continue;
        CHECK(vmi_paging_mode_parse(name) == (vmi_paging_mode)i,
              "vmi_paging_mode_parse(\"%s\") = %d, expected %d", name,
              (int)vmi_paging_mode_parse(name), i);
    }
    CHECK_EQ(vmi_paging_mode_parse("ia32e"), VMI_PAGING_IA32E);
    CHECK_EQ(vmi_paging_mode_parse("no such mode"), VMI_PAGING_UNKNOWN);

    test_context("memory map, backend");
    vmi = open_guest(VMI_PAGING_IA32E, DTB, NULL, NULL, NULL);
    CHECK(vmi_memory_map(vmi, &n) != NULL, "no memory map");
    CHECK_EQ(n, NR);
    CHECK_EQ(vmi_memory_map(vmi, &n)[2].pa, 0x30000);
    CHECK_EQ(vmi_memory_size(vmi), 0x31000);
    CHECK_STR(vmi_get_backend(vmi)->name, "buffer");
    CHECK_STR(vmi_last_error(vmi), "");

    test_context("last error");
    CHECK_ST(vmi_translate(vmi, DTB, 0x402000, &pa), VMI_ERR_NOT_PRESENT);
    CHECK(vmi_last_error(vmi)[0] != 0, "vmi_last_error is empty after a failed translation");
    CHECK_ST(vmi_read_pa(vmi, 0x18000, &pa, 8, NULL), VMI_ERR_UNMAPPED);
    CHECK(vmi_last_error(vmi)[0] != 0, "vmi_last_error is empty after a failed read");
    vmi_close(vmi);

    test_context("allocator");
    memset(&c, 0, sizeof c);
    a.alloc = count_alloc;
    a.free = count_free;
    a.user = &c;
    vmi = open_guest(VMI_PAGING_IA32E, DTB, &a, NULL, NULL);
    CHECK(c.allocs > 0, "vmi_open did not use the allocator");
    CHECK_ST(vmi_translate(vmi, DTB, 0x400000, &pa), VMI_OK);
    CHECK_ST(vmi_read_va(vmi, DTB, 0x400ff0, &pa, 8, NULL), VMI_OK);
    vmi_flush_caches(vmi);
    vmi_close(vmi);
    CHECK(c.live == 0 && c.allocs == c.frees, "allocator unbalanced after close: %lu allocs, %lu frees",
          c.allocs, c.frees);
    /* every allocation failing in turn: NOMEM, nothing leaked */
    for (k = 1; k < 64; k++) {
        memset(&c, 0, sizeof c);
        c.fail_after = k;
        vmi = open_guest(VMI_PAGING_IA32E, DTB, &a, NULL, &st);
        if (st == VMI_OK) {
            vmi_close(vmi);
            CHECK(c.live == 0, "unbalanced after close (fail_after %lu)", k);
            break;
        }
        CHECK_ST(st, VMI_ERR_NOMEM);
        CHECK(c.live == 0, "vmi_open failing at allocation %lu leaked %ld blocks", k, c.live);
    }
    CHECK(k < 64, "vmi_open never succeeded with a failing allocator");

    test_context("logger");
    memset(&l, 0, sizeof l);
    l.max = VMI_LOG_DEBUG;
    lg.func = log_fn;
    lg.user = &l;
    lg.max_level = VMI_LOG_DEBUG;
    vmi = open_guest(VMI_PAGING_IA32E, DTB, NULL, &lg, NULL);
    CHECK_ST(vmi_translate(vmi, DTB, 0x402000, &pa), VMI_ERR_NOT_PRESENT);
    CHECK(l.n > 0, "no log message at VMI_LOG_DEBUG after a failure");
    CHECK(l.last[0] != 0, "empty log message");
    vmi_close(vmi);
    memset(&l, 0, sizeof l);
    l.max = VMI_LOG_ERROR;
    lg.max_level = VMI_LOG_ERROR;
    vmi = open_guest(VMI_PAGING_IA32E, DTB, NULL, &lg, NULL);
    CHECK_ST(vmi_translate(vmi, DTB, 0x402000, &pa), VMI_ERR_NOT_PRESENT);
    CHECK_ST(vmi_read_pa(vmi, 0x18000, &pa, 8, NULL), VMI_ERR_UNMAPPED);
    CHECK_EQ(l.above, 0);
    vmi_close(vmi);
}

int main(void)
{
    vmi_instance *vmi;
    int i;
    build();
    vmi = open_guest(VMI_PAGING_IA32E, DTB, NULL, NULL, NULL);
    test_phys(vmi);
    test_virt(vmi);
    test_str(vmi);
    test_utf16(vmi);
    vmi_close(vmi);
    test_api();
    for (i = 0; i < NR; i++) {
        free(ranges[i].host);
        free(snapshot[i]);
    }
    return test_summary();
}
