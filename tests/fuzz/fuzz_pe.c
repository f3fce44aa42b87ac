/* libFuzzer harness for the PE reader: headers, sections, exports (names,
   ordinals, forwarders) and the CodeView record. The input is an image as
   loaded, at VA == PA; its first byte punches a hole of missing pages into
   it, as paged-out parts of a loaded image are. */
#define VMI_IMPLEMENTATION
#include "vmi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int vmi__fz_export(void *user, const vmi__pe_export *e) {
    unsigned *n = (unsigned *)user;
    if (e->name) *n += (unsigned)strlen(e->name) & 1;
    if (e->forwarder) *n += (unsigned)strlen(e->forwarder) & 1;
    return ++*n > 200000;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static uint8_t mem[1 << 17];
    vmi_mem_range r[2];
    vmi_desc desc;
    vmi_instance *vmi;
    vmi__pe pe;
    vmi__pe_cv cv;
    char dll[64];
    unsigned n = 0, hole;
    size_t len;
    if (size < 2) return 0;
    len = size - 1 < sizeof mem ? size - 1 : sizeof mem;
    memset(mem, 0, sizeof mem);
    memcpy(mem, data + 1, len);
    hole = 1 + data[0] % 31u; /* page 1..31 missing */
    r[0].pa = 0x10000, r[0].size = (uint64_t)hole << 12, r[0].host = mem, r[0].flags = 0;
    r[1].pa = 0x10000 + ((uint64_t)(hole + 1) << 12), r[1].size = sizeof mem - ((size_t)(hole + 1) << 12);
    r[1].host = mem + ((size_t)(hole + 1) << 12), r[1].flags = 0;
    memset(&desc, 0, sizeof desc);
    vmi_backend_buffer(&desc.backend, r, 2);
    desc.paging.mode = VMI_PAGING_OFF;
    if (vmi_open(&desc, &vmi) != VMI_OK) return 0;
    if (vmi__pe_open(vmi, 0, 0x10000, &pe) == VMI_OK) {
        (void)vmi__pe_dll_name(vmi, &pe, dll, sizeof dll);
        (void)vmi__pe_exports(vmi, &pe, dll, sizeof dll, vmi__fz_export, &n);
        (void)vmi__pe_codeview(vmi, &pe, &cv);
        (void)vmi__pe_sym_type(&pe, (uint32_t)n);
    }
    vmi_close(vmi);
    return 0;
}
