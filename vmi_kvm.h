/* vmi_kvm.h - the kvm backend of vmi.h: live QEMU guests (KVM or TCG) through a shared memory-backend-file, QMP and the gdbstub.

   NOT IMPLEMENTED YET (tracked as issue 5). This header holds the place
   of the backend in the layout so that embedders can already include it;
   vmi_kvm_open() answers VMI_ERR_UNSUPPORTED and says so. */
#ifndef VMI_H_INCLUDED
#error "include vmi.h before vmi_kvm.h"
#endif
#ifndef VMI_KVM_H_INCLUDED
#define VMI_KVM_H_INCLUDED
#ifdef __cplusplus
extern "C" {
#endif

/* TARGET is "a QMP socket path". */
VMI_API vmi_status vmi_kvm_open(const char *target, vmi_backend *out, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* VMI_KVM_H_INCLUDED */

#if (defined(VMI_KVM_IMPLEMENTATION) || defined(VMI_IMPLEMENTATION)) && !defined(VMI_KVM_IMPL_INCLUDED)
#define VMI_KVM_IMPL_INCLUDED
VMI_API vmi_status vmi_kvm_open(const char *target, vmi_backend *out, char *err, size_t errlen) {
    (void)target;
    (void)out;
    if (err && errlen) snprintf(err, errlen, "the kvm backend is not implemented yet");
    return VMI_ERR_UNSUPPORTED;
}
#endif
