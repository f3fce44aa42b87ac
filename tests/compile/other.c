/* Translation unit 2: declarations only, linked against impl.c. */
#include "vmi.h"
#include "vmi_file.h"
#include "vmi_kvm.h"
#include "vmi_xen.h"
#include <string.h>

int vmi_compile_other(void);

int vmi_compile_other(void) {
    static unsigned char mem[8192];
    vmi_mem_range r;
    vmi_desc desc;
    vmi_instance *vmi = 0;
    vmi_status st;
    r.pa = 0;
    r.size = sizeof mem;
    r.host = mem;
    r.flags = 0;
    memset(&desc, 0, sizeof desc);
    vmi_backend_buffer(&desc.backend, &r, 1);
    st = vmi_open(&desc, &vmi);
    if (st != VMI_OK) return 1;
    st = vmi_read_pa(vmi, 0, mem, 16, 0);
    vmi_close(vmi);
    return st == VMI_OK ? 0 : 1;
}
