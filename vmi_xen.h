/* vmi_xen.h - the xen backend of vmi.h: Xen domains through libxenforeignmemory, libxenctrl, libxenevtchn and vm_event.

   NOT IMPLEMENTED YET (tracked as issue 7). This header holds the place
   of the backend in the layout so that embedders can already include it;
   vmi_xen_open() answers VMI_ERR_UNSUPPORTED and says so. */
#ifndef VMI_H_INCLUDED
#error "include vmi.h before vmi_xen.h"
#endif
#ifndef VMI_XEN_H_INCLUDED
#define VMI_XEN_H_INCLUDED
#ifdef __cplusplus
extern "C" {
#endif

/* TARGET is "a domain id or name". */
VMI_API vmi_status vmi_xen_open(const char *target, vmi_backend *out, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* VMI_XEN_H_INCLUDED */

#if (defined(VMI_XEN_IMPLEMENTATION) || defined(VMI_IMPLEMENTATION)) && !defined(VMI_XEN_IMPL_INCLUDED)
#define VMI_XEN_IMPL_INCLUDED
VMI_API vmi_status vmi_xen_open(const char *target, vmi_backend *out, char *err, size_t errlen) {
    (void)target;
    (void)out;
    if (err && errlen) snprintf(err, errlen, "the xen backend is not implemented yet");
    return VMI_ERR_UNSUPPORTED;
}
#endif
