/* Translation unit 1 of the compile test: holds every implementation. */
#define VMI_IMPLEMENTATION
#include "vmi.h"
#include "vmi_file.h"
#include "vmi_kvm.h"
#include "vmi_xen.h"
#include <string.h>

int vmi_compile_other(void);

int main(void) {
    vmi_paging p;
    vmi_regs regs;
    memset(&regs, 0, sizeof regs);
    regs.arch = VMI_ARCH_X86_64;
    regs.valid = VMI_REGS_CONTROL;
    regs.x86.cr0 = 1ull << 31;
    regs.x86.cr4 = 1ull << 5;
    regs.x86.efer = 1ull << 10;
    if (vmi_paging_from_regs(&regs, &p) != VMI_OK || p.mode != VMI_PAGING_IA32E) return 1;
    return vmi_compile_other();
}
