/* test_reads.c - virtual reads on real guests' page tables.

   Usage: test_reads [LAB_DIR]   (default build/guests)
   For every lab capture (LAB_DIR/ARCH/mem.elf), the kernel's paging as
   vmi_os_init finds it, then reads of up to 1 MiB from mapped kernel pages
   spread over the address space: vmi_read_va, which translates a run of
   contiguous pages with one walk and caches it as one V2P entry, must give
   the same status, count and bytes as a page-by-page reference (an uncached
   vmi_translate_walk, then vmi_read_pa), cold, warm, and from inside a page.
   Prints one line per failed check and "N passed, M failed". */
#define VMI_IMPLEMENTATION
#include "vmi.h"
#include "vmi_file.h"
#include "test.h"

#include <stdlib.h>

static const char *const arches[] = {"x86_64", "x86_64-la57", "x86_64-cloud", "i386-pae",
                                     "i386", "arm64", "armhf", "armhf-lpae"};

#define READ_LEN (1u << 20)
#define PICKS 48

/* Every mapped kernel page (or large page) is a candidate start: one pass
   counts them, a second takes every step-th, spread over the whole space. */
typedef struct picks {
    uint64_t va[PICKS + 1];
    size_t n, seen, step;
} picks;

static int on_page(void *user, const vmi_page *pg) {
    picks *p = (picks *)user;
    if (pg->flags & VMI_PAGE_USER) return 0;
    if (p->step && p->seen % p->step == 0 && p->n < PICKS + 1) p->va[p->n++] = pg->va;
    p->seen++;
    return 0;
}

/* The reference: one uncached walk per page, then a physical read. */
static vmi_status read_ref(vmi_instance *vmi, uint64_t dtb, uint64_t va, uint8_t *buf, size_t len, size_t *done) {
    vmi_walk w;
    vmi_status st;
    *done = 0;
    while (*done < len) {
        uint64_t at = va + *done, n = 4096 - (at & 4095);
        size_t got = 0;
        if (n > len - *done) n = len - *done;
        if ((st = vmi_translate_walk(vmi, dtb, at, &w)) != VMI_OK) return st;
        st = vmi_read_pa(vmi, w.pa, buf + *done, (size_t)n, &got);
        *done += got;
        if (st != VMI_OK) return st;
    }
    return VMI_OK;
}

static void compare(vmi_instance *vmi, uint64_t dtb, uint64_t va, uint8_t *got, uint8_t *want, const char *how) {
    size_t n_got = 0, n_want = 0;
    vmi_status s_want = read_ref(vmi, dtb, va, want, READ_LEN, &n_want);
    vmi_status s_got = vmi_read_va(vmi, dtb, va, got, READ_LEN, &n_got);
    test_context("%s read of 0x%llx", how, (unsigned long long)va);
    CHECK_ST(s_got, s_want);
    CHECK_EQ(n_got, n_want);
    CHECK(n_got == n_want && !memcmp(got, want, n_got), "the %zu bytes read equal the page-by-page reference", n_got);
}

static void test_arch(const char *lab, const char *arch) {
    char path[512], err[256];
    vmi_file_desc fd;
    vmi_desc desc;
    vmi_instance *vmi = NULL;
    picks *p = (picks *)calloc(1, sizeof *p);
    uint8_t *got = (uint8_t *)malloc(READ_LEN), *want = (uint8_t *)malloc(READ_LEN);
    size_t i;
    uint64_t dtb;
    snprintf(path, sizeof path, "%s/%s/mem.elf", lab, arch);
    memset(&fd, 0, sizeof fd);
    memset(&desc, 0, sizeof desc);
    fd.path = path;
    test_context("%s: open", arch);
    if (!p || !got || !want || !CHECK(vmi_file_open(&fd, &desc.backend, err, sizeof err) == VMI_OK, "open %s: %s", path, err) ||
        !CHECK(vmi_open(&desc, &vmi) == VMI_OK, "vmi_open %s", path))
        goto out;
    (void)vmi_os_init(vmi); /* the paging is what is wanted: found even where a profile would be needed for more */
    dtb = vmi_kernel_dtb(vmi);
    if (!CHECK(vmi_get_paging(vmi)->mode > VMI_PAGING_OFF, "%s: paging found (%s)", arch, vmi_last_error(vmi))) goto out;
    CHECK_ST(vmi_foreach_page(vmi, dtb, 0, ~(uint64_t)0, 0, on_page, p), VMI_OK);
    if (!CHECK(p->seen >= PICKS, "%s: %zu kernel mappings found", arch, p->seen)) goto out;
    p->step = p->seen / PICKS;
    p->seen = 0;
    CHECK_ST(vmi_foreach_page(vmi, dtb, 0, ~(uint64_t)0, 0, on_page, p), VMI_OK);
    for (i = 0; i < p->n; i++) {
        vmi_flush_caches(vmi);
        compare(vmi, dtb, p->va[i], got, want, "cold");
        compare(vmi, dtb, p->va[i], got, want, "warm");
        compare(vmi, dtb, p->va[i] + 0x123, got, want, "unaligned");
    }
    printf("  %s: %s, %zu kernel mappings, %zu starts from 0x%llx to 0x%llx, up to 1 MiB read three ways\n", arch,
           vmi_paging_mode_name(vmi_get_paging(vmi)->mode), p->seen, p->n, (unsigned long long)p->va[0],
           (unsigned long long)p->va[p->n - 1]);
out:
    if (vmi) vmi_close(vmi);
    free(p);
    free(got);
    free(want);
}

int main(int argc, char **argv) {
    const char *lab = argc > 1 ? argv[1] : "build/guests";
    size_t i;
    for (i = 0; i < sizeof arches / sizeof arches[0]; i++) test_arch(lab, arches[i]);
    return test_summary();
}
