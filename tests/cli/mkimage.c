/* mkimage - test images for tests/cli/test_cli.sh.

   Usage: mkimage DIR
   Writes DIR/raw.img, DIR/lime.img and DIR/core.elf: the same 256 KiB of
   guest-physical memory at 0 with hand-built IA-32e page tables (CR3 0x1000),
   as a flat image, as LiME and as a QEMU-style ELF64 core whose two vCPUs
   carry CR0/CR3/CR4 in QEMU notes (so the paging comes from registers).
   LiME and ELF leave out [0x20000, 0x30000): a hole that raw.img fills with
   zeros.

   Mappings (test_cli.sh relies on every one of them):
       0xffffffff81000000 -> 0x10000  4 KiB  W G     "vmi.h test kernel string"
       0xffffffff81001000 -> 0x11000  4 KiB  NX      ends with "END-OF-THE-PAGE!"
       0xffffffff81002000    not present (PTE 0)
       0xffffffff81200000 -> 0x200000 2 MiB  W       outside guest memory
   and physical 0x1fff0 holds "LAST-BYTES-RANGE", just before the hole. */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MEM_SIZE 0x40000u
#define HOLE_START 0x20000u
#define HOLE_END 0x30000u
#define NT_PRSTATUS_SIZE 336u /* struct elf_prstatus on x86_64 */
#define PRSTATUS_REG_OFF 112u
#define QEMU_NOTE_SIZE 0x1b0u /* QEMUCPUState v1 */
#define QEMU_CR_OFF 0x188u
#define NVCPUS 2u

static uint8_t mem[MEM_SIZE];

static void put32(uint8_t *p, uint32_t v)
{
    int i;
    for (i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    int i;
    for (i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void build_memory(void)
{
    /* PML4[511] -> PDPT[510] -> PD[8] -> PT; PD[9] is a 2 MiB page. */
    put64(mem + 0x1000 + 511 * 8, 0x2000 | 0x3);
    put64(mem + 0x2000 + 510 * 8, 0x3000 | 0x3);
    put64(mem + 0x3000 + 8 * 8, 0x4000 | 0x3);
    put64(mem + 0x3000 + 9 * 8, 0x200000 | 0x83);
    put64(mem + 0x4000 + 0 * 8, 0x10000 | 0x103);
    put64(mem + 0x4000 + 1 * 8, 0x8000000000000000ull | 0x11000 | 0x1);
    strcpy((char *)mem + 0x10000, "vmi.h test kernel string");
    memcpy(mem + 0x11ff0, "END-OF-THE-PAGE!", 16);
    memcpy(mem + 0x1fff0, "LAST-BYTES-RANGE", 16);
}

static FILE *create(const char *dir, const char *name)
{
    char path[4096];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    return f;
}

static void done(FILE *f)
{
    if (ferror(f) || fclose(f) != 0) {
        perror("mkimage: write");
        exit(1);
    }
}

static void write_lime_range(FILE *f, uint64_t start, uint64_t end)
{
    uint8_t h[32];
    memset(h, 0, sizeof h);
    put32(h, 0x4C694D45u);
    put32(h + 4, 1);
    put64(h + 8, start);
    put64(h + 16, end - 1); /* LiME's end is inclusive */
    fwrite(h, 1, sizeof h, f);
    fwrite(mem + start, 1, end - start, f);
}

/* One ELF note: 12-byte header, name and descriptor padded to 4 bytes. */
static size_t note(uint8_t *p, const char *name, uint32_t type, const uint8_t *desc,
                   uint32_t descsz)
{
    uint32_t namesz = (uint32_t)strlen(name) + 1;
    size_t off = 12;
    put32(p, namesz);
    put32(p + 4, descsz);
    put32(p + 8, type);
    memcpy(p + off, name, namesz);
    off += (namesz + 3u) & ~3u;
    memcpy(p + off, desc, descsz);
    return off + ((descsz + 3u) & ~3u);
}

static size_t build_notes(uint8_t *p)
{
    uint8_t prs[NT_PRSTATUS_SIZE], qemu[QEMU_NOTE_SIZE];
    size_t off = 0;
    uint32_t v;
    for (v = 0; v < NVCPUS; v++) {
        memset(prs, 0, sizeof prs);
        put64(prs + PRSTATUS_REG_OFF + 16 * 8, 0xffffffff81000000ull + 0x10 * v); /* rip */
        put64(prs + PRSTATUS_REG_OFF + 19 * 8, 0xffffffff81001f00ull);            /* rsp */
        off += note(p + off, "CORE", 1, prs, sizeof prs);
    }
    for (v = 0; v < NVCPUS; v++) {
        memset(qemu, 0, sizeof qemu);
        put32(qemu, 1);
        put32(qemu + 4, QEMU_NOTE_SIZE);
        put64(qemu + 8 + 6 * 8, 0xffffffff81001f00ull);             /* rsp */
        put64(qemu + 8 + 16 * 8, 0xffffffff81000000ull + 0x10 * v); /* rip */
        put64(qemu + QEMU_CR_OFF + 0 * 8, 0x80050033u);             /* cr0: PG PE */
        put64(qemu + QEMU_CR_OFF + 3 * 8, 0x1000);                  /* cr3 */
        put64(qemu + QEMU_CR_OFF + 4 * 8, 0xa0);                    /* cr4: PAE PGE */
        off += note(p + off, "QEMU", 0, qemu, sizeof qemu);
    }
    return off;
}

static void phdr(uint8_t *p, uint32_t type, uint64_t offset, uint64_t paddr, uint64_t size)
{
    memset(p, 0, 56);
    put32(p, type);
    put64(p + 8, offset);
    put64(p + 16, paddr); /* p_vaddr: QEMU writes the PA when paging is not asked for */
    put64(p + 24, paddr);
    put64(p + 32, size);
    put64(p + 40, size);
}

static void write_elf(FILE *f)
{
    static uint8_t head[0x1000];
    uint8_t *e = head;
    size_t notes_off = 64 + 3 * 56, notes_len = build_notes(head + notes_off);
    memcpy(e, "\177ELF", 4);
    e[4] = 2; /* 64-bit */
    e[5] = 1; /* little-endian */
    e[6] = 1;
    e[16] = 4;  /* ET_CORE */
    e[18] = 62; /* EM_X86_64 */
    put32(e + 20, 1);
    put64(e + 32, 64);   /* e_phoff */
    e[52] = 64;          /* e_ehsize */
    e[54] = 56;          /* e_phentsize */
    e[56] = 3;           /* e_phnum */
    phdr(head + 64, 4, notes_off, 0, notes_len);
    phdr(head + 64 + 56, 1, sizeof head, 0, HOLE_START);
    phdr(head + 64 + 112, 1, sizeof head + HOLE_START, HOLE_END, MEM_SIZE - HOLE_END);
    fwrite(head, 1, sizeof head, f);
    fwrite(mem, 1, HOLE_START, f);
    fwrite(mem + HOLE_END, 1, MEM_SIZE - HOLE_END, f);
}

int main(int argc, char **argv)
{
    FILE *f;
    if (argc != 2) {
        fprintf(stderr, "usage: mkimage DIR\n");
        return 2;
    }
    build_memory();
    f = create(argv[1], "raw.img");
    fwrite(mem, 1, sizeof mem, f);
    done(f);
    f = create(argv[1], "lime.img");
    write_lime_range(f, 0, HOLE_START);
    write_lime_range(f, HOLE_END, MEM_SIZE);
    done(f);
    f = create(argv[1], "core.elf");
    write_elf(f);
    done(f);
    return 0;
}
