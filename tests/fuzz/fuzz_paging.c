/* libFuzzer harness for the page walkers, the enumerator and string reads.
   The input is guest memory; its first bytes choose the mode, root and
   translation control, so garbage page tables of every mode are walked. */
#define VMI_IMPLEMENTATION
#include "vmi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int vmi__fz_count(void *user, const vmi_page *page) {
    (void)page;
    return ++*(unsigned *)user > 4096;
}

static uint64_t vmi__fz_u64(const uint8_t *p) {
    uint64_t v = 0;
    int i;
    for (i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static uint8_t mem[1 << 16];
    vmi_mem_range r[2];
    vmi_desc desc;
    vmi_instance *vmi;
    uint64_t pa, va, dtb;
    char str[64];
    unsigned i, pages = 0;
    if (size < 32) return 0;
    memset(mem, 0, sizeof mem);
    memcpy(mem, data + 32, size - 32 < sizeof mem ? size - 32 : sizeof mem);
    /* two ranges with a hole, the second above 4 GiB */
    r[0].pa = 0, r[0].size = sizeof mem / 2, r[0].host = mem, r[0].flags = 0;
    r[1].pa = 0x100000000ull, r[1].size = sizeof mem / 2, r[1].host = mem + sizeof mem / 2, r[1].flags = 0;
    memset(&desc, 0, sizeof desc);
    vmi_backend_buffer(&desc.backend, r, 2);
    desc.v2p_cache_entries = 64;
    desc.paging.mode = (vmi_paging_mode)(data[0] % VMI_PAGING_MODE_COUNT);
    desc.paging.flags = data[1] & 3;
    dtb = vmi__fz_u64(data + 8) & 0x10000ffffull;
    desc.paging.dtb = dtb;
    desc.paging.tcr = vmi__fz_u64(data + 16);
    if (vmi_open(&desc, &vmi) != VMI_OK) return 0;
    va = vmi__fz_u64(data + 24);
    for (i = 0; i < 8; i++) {
        vmi_walk w;
        uint64_t v = va + ((uint64_t)i << (12 + 3 * (data[2] & 7)));
        (void)vmi_translate(vmi, dtb, v, &pa);
        (void)vmi_translate_walk(vmi, dtb, v, &w);
    }
    (void)vmi_read_str(vmi, dtb, va, str, sizeof str, NULL);
    (void)vmi_read_utf16(vmi, dtb, va, data[3], str, sizeof str, NULL);
    (void)vmi_foreach_page(vmi, dtb, 0, ~0ull, 64, vmi__fz_count, &pages);
    vmi_close(vmi);
    return 0;
}
