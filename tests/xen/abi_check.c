/* abi_check.c - vmi_xen.h's own declarations of Xen 4.17's ABI against the
   real headers (libxen-dev), at compile time: sizes, every field's offset,
   the constants, and the prototypes of the functions it calls. Xen's
   headers need GNU C (-std=gnu99/gnu11/gnu++17). Built in link mode beside
   xenctrl.h, it also shows that an embedder may include both. Linked
   against the real libraries and run, it calls nothing of Xen's.
   Prints "N passed, 0 failed": the count of checks compiled in. */
#define XC_WANT_COMPAT_DEVICEMODEL_API
#include <xenctrl.h>
#include <xenevtchn.h>
#include <xenforeignmemory.h>
#include <xenstore.h>
#include <xen/hvm/save.h>
#include <xen/vm_event.h>

#define VMI_IMPLEMENTATION
#ifndef VMI_XEN_LINK
#define VMI_XEN_LINK
#endif
#include "vmi.h"
#include "vmi_xen.h"

#include <stdio.h>

#ifdef __cplusplus
#include <type_traits>
#define SAME_TYPE(a, b) std::is_same<a, b>::value
#define TYPEOF(x) decltype(x)
#define ASSERT(c, m) static_assert(c, m)
#else
#define SAME_TYPE(a, b) __builtin_types_compatible_p(a, b)
#define TYPEOF(x) __typeof__(x)
#if __STDC_VERSION__ >= 201112L
#define ASSERT(c, m) _Static_assert(c, m)
#else
#define ASSERT(c, m) (void)sizeof(char[(c) ? 1 : -1])
#endif
#endif

/* Every assertion is also counted at run time, so the step reports how many it made. */
static unsigned checks;
#define CHECK(...) ASSERT((__VA_ARGS__), #__VA_ARGS__); checks++

#define SAME_LAYOUT(ours, theirs) CHECK(sizeof(ours) == sizeof(theirs)); CHECK(__alignof__(ours) == __alignof__(theirs))
#define FIELD(ours, theirs, fo, ft) CHECK(offsetof(ours, fo) == offsetof(theirs, ft)); \
    CHECK(sizeof(((ours *)0)->fo) == sizeof(((theirs *)0)->ft))
#define SAMEF(ours, theirs, f) FIELD(ours, theirs, f, f)

static void check_dominfo(void) {
#define D(f) SAMEF(vmi__xen_dominfo, xc_domaininfo_t, f)
    SAME_LAYOUT(vmi__xen_dominfo, xc_domaininfo_t);
    D(domain); D(pad1); D(flags); D(tot_pages); D(max_pages); D(outstanding_pages); D(shr_pages);
    D(paged_pages); D(shared_info_frame); D(cpu_time); D(nr_online_vcpus); D(max_vcpu_id); D(ssidref);
    D(handle); D(cpupool); D(gpaddr_bits); D(pad2);
    FIELD(vmi__xen_dominfo, xc_domaininfo_t, emulation_flags, arch_config.emulation_flags);
    FIELD(vmi__xen_dominfo, xc_domaininfo_t, misc_flags, arch_config.misc_flags);
#undef D
    CHECK(XEN_DOMCTL_INTERFACE_VERSION == 0x15);
    CHECK(VMI__XEN_DOMINF_DYING == XEN_DOMINF_dying);
    CHECK(VMI__XEN_DOMINF_HVM == XEN_DOMINF_hvm_guest);
    CHECK(VMI__XEN_EMU_VGA == XEN_X86_EMU_VGA);
}

static void check_cpu(void) {
#define C(f) SAMEF(vmi__xen_cpu, struct hvm_hw_cpu, f)
    SAME_LAYOUT(vmi__xen_cpu, struct hvm_hw_cpu);
    SAME_LAYOUT(vmi__xen_save_desc, struct hvm_save_descriptor);
    SAMEF(vmi__xen_save_desc, struct hvm_save_descriptor, typecode);
    SAMEF(vmi__xen_save_desc, struct hvm_save_descriptor, instance);
    SAMEF(vmi__xen_save_desc, struct hvm_save_descriptor, length);
    C(fpu_regs); C(rax); C(rbx); C(rcx); C(rdx); C(rbp); C(rsi); C(rdi); C(rsp); C(r8); C(r9); C(r10); C(r11);
    C(r12); C(r13); C(r14); C(r15); C(rip); C(rflags); C(cr0); C(cr2); C(cr3); C(cr4); C(dr0); C(dr1); C(dr2);
    C(dr3); C(dr6); C(dr7); C(cs_sel); C(ds_sel); C(es_sel); C(fs_sel); C(gs_sel); C(ss_sel); C(tr_sel);
    C(ldtr_sel); C(cs_limit); C(ds_limit); C(es_limit); C(fs_limit); C(gs_limit); C(ss_limit); C(tr_limit);
    C(ldtr_limit); C(idtr_limit); C(gdtr_limit); C(cs_base); C(ds_base); C(es_base); C(fs_base); C(gs_base);
    C(ss_base); C(tr_base); C(ldtr_base); C(idtr_base); C(gdtr_base); C(cs_arbytes); C(ds_arbytes);
    C(es_arbytes); C(fs_arbytes); C(gs_arbytes); C(ss_arbytes); C(tr_arbytes); C(ldtr_arbytes);
    C(sysenter_cs); C(sysenter_esp); C(sysenter_eip); C(shadow_gs); C(msr_flags); C(msr_lstar); C(msr_star);
    C(msr_cstar); C(msr_syscall_mask); C(msr_efer); C(msr_tsc_aux); C(tsc); C(pending_event); C(error_code);
    C(flags); C(pad0);
#undef C
    CHECK(VMI__XEN_SAVE_CPU == HVM_SAVE_CODE(CPU));
    CHECK(VMI__XEN_SAVE_END == HVM_SAVE_CODE(END));
    CHECK(VMI__XEN_DEBUG_STEP_ON == XEN_DOMCTL_DEBUG_OP_SINGLE_STEP_ON);
    CHECK(VMI__XEN_DEBUG_STEP_OFF == XEN_DOMCTL_DEBUG_OP_SINGLE_STEP_OFF);
}

static void check_vm_event(void) {
#define E(f) SAMEF(vmi__xen_vm_event, vm_event_request_t, f)
#define R(f) SAMEF(vmi__xen_ev_regs, struct vm_event_regs_x86, f)
    SAME_LAYOUT(vmi__xen_vm_event, vm_event_request_t);
    SAME_LAYOUT(vmi__xen_vm_event, vm_event_response_t);
    SAME_LAYOUT(vmi__xen_ev_regs, struct vm_event_regs_x86);
    E(version); E(flags); E(reason); E(vcpu_id); E(altp2m_idx); E(u); E(data);
    E(u.mem_access.gfn); E(u.mem_access.offset); E(u.mem_access.gla); E(u.mem_access.flags);
    E(u.write_ctrlreg.index); E(u.write_ctrlreg.new_value); E(u.write_ctrlreg.old_value);
    E(u.mov_to_msr.msr); E(u.mov_to_msr.new_value); E(u.mov_to_msr.old_value);
    E(u.singlestep.gfn); E(u.software_breakpoint.gfn); E(u.software_breakpoint.insn_length);
    E(u.software_breakpoint.type);
    FIELD(vmi__xen_vm_event, vm_event_request_t, data.x86, data.regs.x86);
    R(rax); R(rcx); R(rdx); R(rbx); R(rsp); R(rbp); R(rsi); R(rdi); R(r8); R(r9); R(r10); R(r11); R(r12);
    R(r13); R(r14); R(r15); R(rflags); R(dr6); R(dr7); R(rip); R(cr0); R(cr2); R(cr3); R(cr4); R(sysenter_cs);
    R(sysenter_esp); R(sysenter_eip); R(msr_efer); R(msr_star); R(msr_lstar); R(gdtr_base); R(npt_base);
    R(vmtrace_pos); R(cs_base); R(ss_base); R(ds_base); R(es_base); R(fs_base); R(gs_base); R(cs); R(ss);
    R(ds); R(es); R(fs); R(gs); R(shadow_gs); R(gdtr_limit); R(cs_sel); R(ss_sel); R(ds_sel); R(es_sel);
    R(fs_sel); R(gs_sel);
#undef E
#undef R
    CHECK(VMI__XEN_VM_EVENT_VERSION == VM_EVENT_INTERFACE_VERSION);
    CHECK(VMI__XEN_FLAG_VCPU_PAUSED == VM_EVENT_FLAG_VCPU_PAUSED);
    CHECK(VMI__XEN_FLAG_EMULATE == VM_EVENT_FLAG_EMULATE);
    CHECK(VMI__XEN_FLAG_EMULATE_NOWRITE == VM_EVENT_FLAG_EMULATE_NOWRITE);
    CHECK(VMI__XEN_FLAG_TOGGLE_SINGLESTEP == VM_EVENT_FLAG_TOGGLE_SINGLESTEP);
    CHECK(VMI__XEN_FLAG_DENY == VM_EVENT_FLAG_DENY);
    CHECK(VMI__XEN_REASON_MEM_ACCESS == VM_EVENT_REASON_MEM_ACCESS);
    CHECK(VMI__XEN_REASON_WRITE_CTRLREG == VM_EVENT_REASON_WRITE_CTRLREG);
    CHECK(VMI__XEN_REASON_MOV_TO_MSR == VM_EVENT_REASON_MOV_TO_MSR);
    CHECK(VMI__XEN_REASON_SOFTWARE_BREAKPOINT == VM_EVENT_REASON_SOFTWARE_BREAKPOINT);
    CHECK(VMI__XEN_REASON_SINGLESTEP == VM_EVENT_REASON_SINGLESTEP);
    CHECK(VMI__XEN_MEM_ACCESS_RWX == MEM_ACCESS_RWX && MEM_ACCESS_R == VMI_WATCH_READ &&
          MEM_ACCESS_W == VMI_WATCH_WRITE && MEM_ACCESS_X == VMI_WATCH_EXEC);
    CHECK(VMI__XEN_MEM_ACCESS_GLA_VALID == MEM_ACCESS_GLA_VALID &&
          VMI__XEN_MEM_ACCESS_FAULT_IN_GPT == MEM_ACCESS_FAULT_IN_GPT);
    CHECK(VM_EVENT_X86_CR0 == 0 && VM_EVENT_X86_CR3 == 1 && VM_EVENT_X86_CR4 == 2);
    /* the ring: header size and entries per page */
    CHECK(sizeof(vmi__xen_sring) == offsetof(vm_event_sring_t, ring));
    CHECK(offsetof(vmi__xen_sring, req_prod) == offsetof(vm_event_sring_t, req_prod));
    CHECK(offsetof(vmi__xen_sring, req_event) == offsetof(vm_event_sring_t, req_event));
    CHECK(offsetof(vmi__xen_sring, rsp_prod) == offsetof(vm_event_sring_t, rsp_prod));
    CHECK(offsetof(vmi__xen_sring, rsp_event) == offsetof(vm_event_sring_t, rsp_event));
    CHECK(sizeof(union vm_event_sring_entry) == sizeof(vmi__xen_vm_event));
    CHECK(__CONST_RING_SIZE(vm_event, VMI__XEN_RING_PAGE) == 8);
    CHECK(XENMEM_access_n == 0 && XENMEM_access_r == 1 && XENMEM_access_w == 2 && XENMEM_access_rw == 3 &&
          XENMEM_access_x == 4 && XENMEM_access_rx == 5 && XENMEM_access_wx == 6 && XENMEM_access_rwx == 7);
    CHECK(sizeof(xenmem_access_t) == sizeof(int));
}

static void check_logger(void) {
    CHECK(offsetof(vmi__xen_logger, vmessage) == offsetof(struct xentoollog_logger, vmessage));
    CHECK(offsetof(vmi__xen_logger, progress) == offsetof(struct xentoollog_logger, progress));
    CHECK(offsetof(vmi__xen_logger, destroy) == offsetof(struct xentoollog_logger, destroy));
    CHECK(XTL_ERROR == 8);
}

/* Our prototypes are the real ones, but where our own struct or an int
   stands for Xen's type (those are checked above). */
#define PROTO(name) CHECK(SAME_TYPE(TYPEOF(&name), TYPEOF(((vmi__xen_api *)0)->name)))
static void check_functions(void) {
    PROTO(xc_interface_open); PROTO(xc_interface_close); PROTO(xc_domain_maximum_gpfn); PROTO(xc_domain_pause);
    PROTO(xc_domain_unpause); PROTO(xc_domain_hvm_getcontext); PROTO(xc_domain_hvm_getcontext_partial);
    PROTO(xc_domain_hvm_setcontext); PROTO(xc_domain_debug_control); PROTO(xc_monitor_enable);
    PROTO(xc_monitor_disable); PROTO(xc_monitor_write_ctrlreg); PROTO(xc_monitor_mov_to_msr);
    PROTO(xc_monitor_singlestep); PROTO(xc_monitor_software_breakpoint); PROTO(xc_hvm_inject_trap);
    PROTO(xenforeignmemory_open); PROTO(xenforeignmemory_close); PROTO(xenforeignmemory_map);
    PROTO(xenforeignmemory_unmap); PROTO(xenevtchn_open); PROTO(xenevtchn_close); PROTO(xenevtchn_fd);
    PROTO(xenevtchn_bind_interdomain); PROTO(xenevtchn_unbind); PROTO(xenevtchn_pending); PROTO(xenevtchn_unmask);
    PROTO(xenevtchn_notify); PROTO(xs_open); PROTO(xs_close); PROTO(xs_directory); PROTO(xs_read);
    CHECK(SAME_TYPE(TYPEOF(&xc_domain_getinfolist), int (*)(xc_interface *, uint32_t, unsigned, xc_domaininfo_t *)));
    CHECK(SAME_TYPE(TYPEOF(&xc_set_mem_access), int (*)(xc_interface *, uint32_t, xenmem_access_t, uint64_t, uint32_t)));
    CHECK(SAME_TYPE(TYPEOF(&xc_get_mem_access), int (*)(xc_interface *, uint32_t, uint64_t, xenmem_access_t *)));
}

int main(void) {
    check_dominfo();
    check_cpu();
    check_vm_event();
    check_logger();
    check_functions();
    printf("%u passed, 0 failed\n", checks);
    return 0;
}
