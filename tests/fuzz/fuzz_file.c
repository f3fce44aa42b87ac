/* fuzz_file.c - libFuzzer harness for vmi_file.h (raw, LiME, ELF cores,
   Windows crash dumps).

   Each input is written to a memfd and opened by path (/proc/self/fd/N)
   with format detection and with each forced format; what opens is read
   range by range (64 KiB at each end of a range at most), its vCPUs' registers
   and notes are fetched, and a few kernel addresses are translated with
   whatever paging vCPU 0's registers give. Last, a writable open writes to
   the start of every range.

   Build and run (seeds: `test_file SEED_DIR` writes one per format):
       clang -g -O1 -fsanitize=fuzzer,address,undefined -I. \
           tests/fuzz/fuzz_file.c -o /tmp/fuzz_file
       mkdir -p /tmp/seeds && /tmp/test_file /tmp/seeds
       /tmp/fuzz_file -max_total_time=60 -max_len=65536 /tmp/corpus /tmp/seeds
*/
#define _GNU_SOURCE /* memfd_create */

#define VMI_IMPLEMENTATION
#include "vmi.h"
#include "vmi_file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void exercise(vmi_instance *vmi, int write)
{
    size_t n = 0, i, len;
    const vmi_mem_range *map = vmi_memory_map(vmi, &n);
    uint8_t chunk[4096];
    uint32_t vcpus = 0, v;
    vmi_regs regs;
    const void *data;
    uint64_t pa;
    for (i = 0; i < n; i++) {
        uint64_t off = 0, size = map[i].size;
        while (off < size) {
            uint64_t step = size - off < sizeof chunk ? size - off : sizeof chunk;
            if (vmi_read_pa(vmi, map[i].pa + off, chunk, (size_t)step, NULL) != VMI_OK)
                break;
            off += step;
            if (off == 0x10000 && size - off > 0x10000)
                off = size - 0x10000;
        }
        if (write)
            vmi_write_pa(vmi, map[i].pa, "\xcc", 1, NULL);
    }
    /* reads that start in a range and run past it */
    if (n)
        vmi_read_pa(vmi, map[n - 1].pa + map[n - 1].size - 1, chunk, 2, NULL);
    if (vmi_vcpu_count(vmi, &vcpus) == VMI_OK)
        for (v = 0; v < vcpus && v < 64; v++)
            vmi_get_regs(vmi, v, &regs);
    vmi_get_regs(vmi, vcpus, &regs);
    vmi_get_note(vmi, "VMCOREINFO", &data, &len);
    vmi_get_note(vmi, "CORE", &data, &len);
    vmi_get_note(vmi, "QEMU", &data, &len);
    vmi_get_note(vmi, "WINDUMP_HEADER", &data, &len);
    vmi_translate_kva(vmi, 0xffffffff81000000ull, &pa);
    vmi_translate_kva(vmi, 0xc0000000ull, &pa);
    vmi_read_kva(vmi, 0xffff800000000000ull, chunk, 64, NULL);
}

static void try_open(const char *path, const char *format, int writable)
{
    vmi_file_desc fdesc;
    vmi_desc desc;
    vmi_instance *vmi = NULL;
    char err[256];
    memset(&fdesc, 0, sizeof fdesc);
    memset(&desc, 0, sizeof desc);
    fdesc.path = path;
    fdesc.format = format;
    fdesc.writable = writable;
    desc.page_cache_pages = 16; /* small caches: faster runs */
    desc.v2p_cache_entries = 64;
    if (vmi_file_open(&fdesc, &desc.backend, err, sizeof err) != VMI_OK) {
        if (err[0] == 0 || strlen(err) >= sizeof err)
            abort(); /* a failure always says why */
        return;
    }
    if (vmi_open(&desc, &vmi) != VMI_OK)
        return;
    exercise(vmi, writable);
    vmi_close(vmi);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz_file", 0);
        if (fd < 0) {
            perror("memfd_create");
            abort();
        }
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    /* Nothing maps the memfd between inputs: shrinking it is safe. */
    if (ftruncate(fd, 0) != 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size))
        abort();
    try_open(path, NULL, 0);
    try_open(path, "raw", 0);
    try_open(path, "lime", 0);
    try_open(path, "elf", 0);
    try_open(path, "windump", 0);
    try_open(path, NULL, 1);
    return 0;
}
