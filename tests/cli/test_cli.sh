#!/bin/sh
# test_cli.sh - checks the vmi command-line tool (examples/vmi.c).
#
# Usage: tests/cli/test_cli.sh VMI SCRATCH [MKIMAGE]
#   VMI      the vmi binary to test
#   SCRATCH  a directory for the test images (created if missing)
#   MKIMAGE  tests/cli/mkimage.c built (default: mkimage next to VMI)
# Builds nothing. Prints ok/FAIL per check, then "N passed, M failed";
# exits non-zero when a check failed. Needs python3 for the JSON checks.

VMI=$1
S=$2
MKIMAGE=${3:-$(dirname "$1")/mkimage}
if [ -z "$VMI" ] || [ -z "$S" ]; then
    echo "usage: $0 VMI SCRATCH [MKIMAGE]" >&2
    exit 2
fi
for exe in "$VMI" "$MKIMAGE"; do
    if [ ! -x "$exe" ]; then
        echo "$0: $exe is not an executable (build it first)" >&2
        exit 2
    fi
done
mkdir -p "$S" || exit 2

passed=0
failed=0
OUT=$S/out
ERR=$S/err

ok() {
    passed=$((passed + 1))
    echo "ok   $1"
}

bad() { # what expected got
    failed=$((failed + 1))
    echo "FAIL $1"
    echo "     expected: $2"
    echo "     got:      $3"
}

# run ARGS...: vmi's stdout in $OUT, stderr in $ERR, exit code in $rc.
run() {
    "$VMI" "$@" >"$OUT" 2>"$ERR"
    rc=$?
}

show() { # a file, short, on one line
    head -c 600 "$1" | tr '\n' '|'
}

check_rc() { # what want (0, 1, 2 or nonzero)
    if [ "$2" = nonzero ] && [ "$rc" -ne 0 ]; then
        ok "$1: exit code $rc"
    elif [ "$2" = "$rc" ]; then
        ok "$1: exit code $rc"
    else
        bad "$1: exit code" "$2" "$rc (stderr: $(show "$ERR"))"
    fi
}

check_out() { # what text: some stdout line holds the text
    if grep -qF -- "$2" "$OUT"; then
        ok "$1"
    else
        bad "$1" "stdout with \"$2\"" "$(show "$OUT")"
    fi
}

check_err1() { # what [text]: stderr is one line, "vmi: ...", holding the text
    n=$(wc -l <"$ERR")
    first=$(head -n 1 "$ERR")
    case $first in
    "vmi: "*"$2"*)
        if [ "$n" -eq 1 ]; then
            ok "$1: one-line error"
            return
        fi
        ;;
    esac
    bad "$1: one-line error" "1 line \"vmi: ...$2...\"" "$n lines: $(show "$ERR")"
}

# check_json what EXPR WANT: EXPR (Python, on the document d) is WANT (JSON).
check_json() {
    got=$(python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
print(json.dumps(eval(sys.argv[2])))' "$OUT" "$2" 2>&1 | tail -n 1)
    if [ "$got" = "$3" ]; then
        ok "$1"
    else
        bad "$1" "$2 == $3" "$got"
    fi
}

check_cmp() { # what expected-file got-file
    if cmp -s "$2" "$3"; then
        ok "$1"
    else
        bad "$1" "bytes of $2" "$(od -An -c "$3" | head -n 3 | tr '\n' ' ')"
    fi
}

RAW=$S/raw.img
LIME=$S/lime.img
ELF=$S/core.elf
KVA=0xffffffff81000000          # -> PA 0x10000, "vmi.h test kernel string"
NXVA=0xffffffff81001000         # -> PA 0x11000, NX, ends with "END-OF-THE-PAGE!"
HOLEVA=0xffffffff81002000       # not present
BIGVA=0xffffffff81200000        # 2 MiB page at PA 0x200000, outside memory
KX="--mode ia32e --dtb 0x1000"  # the paging of the raw and LiME images
STR="vmi.h test kernel string"
LINE0="0000000000010000  76 6d 69 2e 68 20 74 65  73 74 20 6b 65 72 6e 65  |vmi.h test kerne|"

if "$MKIMAGE" "$S"; then ok "mkimage"; else bad "mkimage" "exit 0" "failed"; fi

# ---- info -------------------------------------------------------------------
run info "$RAW"
check_rc "info raw" 0
check_out "info raw: format" "format    raw"
check_out "info raw: range" "0x0000000000000000-0x000000000003ffff  0x40000 (256 KiB)"
check_out "info raw: size" "memory    1 range, 0x40000 bytes (256 KiB)"
check_out "info raw: no paging" "paging    unknown"

run info "$RAW" $KX
check_out "info raw --mode: mode" "paging    ia32e (from --mode/--dtb)"
check_out "info raw --dtb: dtb" "dtb       0x0000000000001000 (from --mode/--dtb)"

run info "$LIME"
check_rc "info lime" 0
check_out "info lime: format" "format    lime"
check_out "info lime: size" "memory    2 ranges, 0x30000 bytes (192 KiB)"
check_out "info lime: range 1" "0x0000000000000000-0x000000000001ffff  0x20000 (128 KiB)"
check_out "info lime: range 2" "0x0000000000030000-0x000000000003ffff  0x10000 (64 KiB)"

run info "$ELF"
check_rc "info elf" 0
check_out "info elf: format" "format    elf-qemu"
check_out "info elf: arch" "arch      x86_64"
check_out "info elf: vcpus" "vcpus     2"
check_out "info elf: vcpu 1 registers" "vcpu 1:  rip 0xffffffff81000010  rsp 0xffffffff81001f00  cr0 0x80050033  cr3 0x1000  cr4 0xa0"
check_out "info elf: mode from registers" "paging    ia32e (from vCPU 0 registers)"
check_out "info elf: dtb from registers" "dtb       0x0000000000001000 (from vCPU 0 registers)"

run info "$ELF" --json
check_rc "info elf --json" 0
check_json "info elf --json: ranges" '[(r["start"], r["end"], r["size"]) for r in d["ranges"]]' \
    '[["0x0", "0x1ffff", 131072], ["0x30000", "0x3ffff", 65536]]'
check_json "info elf --json: memory_size" 'd["memory_size"]' '196608'
check_json "info elf --json: vcpus" '[d["vcpus"], len(d["registers"])]' '[2, 2]'
check_json "info elf --json: cr3" 'd["registers"][0]["cr3"]' '"0x1000"'
check_json "info elf --json: paging" '[d["paging"][k] for k in ("mode", "mode_source", "dtb", "dtb_source")]' \
    '["ia32e", "vcpu0", "0x1000", "vcpu0"]'

run info "$LIME" --json
check_json "info lime --json: format and mode" '[d["format"], d["paging"]["mode"], d["vcpus"], d["registers"]]' \
    '["lime", "unknown", 0, []]'

run info "$RAW" --mode aarch64 --granule 16k --va-bits 39 --json
check_json "info --granule 16k --va-bits 39: tcr" 'd["paging"]["tcr"]' '"0x40198019"'
run info "$RAW" --mode aarch64 --granule 64k --json
check_json "info --granule 64k: tcr" 'd["paging"]["tcr"]' '"0xc0104010"'

# A path JSON must escape.
WEIRD=$S/'we"ird\name.img'
cp "$RAW" "$WEIRD"
run info "$WEIRD" --json
check_json "info --json: target escaped" 'd["target"]' "$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$WEIRD")"

# ---- read -------------------------------------------------------------------
run read "$RAW" 0x10000 24 --phys
check_rc "read --phys raw" 0
check_out "read --phys raw: hexdump" "$LINE0"
check_out "read --phys raw: short last line" "0000000000010010  6c 20 73 74 72 69 6e 67                           |l string|"

run read "$RAW" 65536 24 --phys
check_out "read --phys decimal address" "$LINE0"

run read "$LIME" 0x10000 24 --phys
check_out "read --phys lime: hexdump" "$LINE0"

run read "$RAW" $KVA 24 $KX
check_rc "read virtual raw --mode --dtb" 0
check_out "read virtual raw: hexdump" "ffffffff81000000  76 6d 69 2e 68 20 74 65  73 74 20 6b 65 72 6e 65  |vmi.h test kerne|"

run read "$LIME" $KVA 24 $KX --kernel
check_out "read virtual lime --kernel" "ffffffff81000000  76 6d 69 2e 68 20 74 65  73 74 20 6b 65 72 6e 65  |vmi.h test kerne|"

run read "$ELF" $KVA 24
check_rc "read virtual elf (registers)" 0
check_out "read virtual elf: hexdump" "ffffffff81000000  76 6d 69 2e 68 20 74 65  73 74 20 6b 65 72 6e 65  |vmi.h test kerne|"

printf '%s' "$STR" >"$S/expect.str"
run read "$ELF" $KVA 24 --raw
check_cmp "read --raw elf: bytes" "$S/expect.str" "$OUT"
run read "$RAW" $KVA 24 --raw $KX
check_cmp "read --raw raw: bytes" "$S/expect.str" "$OUT"

# 128 KiB: many chunks, from LiME, against the raw image's bytes.
head -c 131072 "$RAW" >"$S/expect.low"
run read "$LIME" 0 0x20000 --phys --raw
check_cmp "read --raw --phys lime 128 KiB: bytes" "$S/expect.low" "$OUT"

run read "$ELF" $KVA 24 --json
check_rc "read --json" 0
check_json "read --json: data" '[d["space"], d["address"], d["dtb"], d["length"], d["read"], bytes.fromhex(d["data"]).decode(), d["error"]]' \
    "[\"virtual\", \"$KVA\", \"0x1000\", 24, 24, \"$STR\", null]"

# Partial reads: what was read, then the error.
run read "$ELF" 0xffffffff81001ff0 32
check_rc "read across an unmapped page" 1
check_out "read across an unmapped page: first part" "ffffffff81001ff0  45 4e 44 2d 4f 46 2d 54  48 45 2d 50 41 47 45 21  |END-OF-THE-PAGE!|"
check_err1 "read across an unmapped page" "16 of 32 bytes"

run read "$ELF" 0xffffffff81001ff8 16 --json
check_rc "read --json across an unmapped page" 1
check_json "read --json partial: data and error" '[d["read"], d["data"], d["error"]["code"]]' \
    '[8, "48452d5041474521", "VMI_ERR_NOT_PRESENT"]'

run read "$LIME" 0x1fff0 32 --phys
check_rc "read --phys lime into the hole" 1
check_out "read --phys lime into the hole: first part" "|LAST-BYTES-RANGE|"
check_err1 "read --phys lime into the hole" "0x20000"

run read "$ELF" $BIGVA 16
check_rc "read a page outside memory" 1
check_err1 "read a page outside memory" "0x200000"

# ---- translate ------------------------------------------------------------------
run translate "$ELF" $KVA
check_rc "translate" 0
check_out "translate: level 0" "0      0x0000000000001000   511  0x0000000000001ff8 0x0000000000002003"
check_out "translate: level 1" "1      0x0000000000002000   510  0x0000000000002ff0 0x0000000000003003"
check_out "translate: level 2" "2      0x0000000000003000     8  0x0000000000003040 0x0000000000004003"
check_out "translate: level 3" "3      0x0000000000004000     0  0x0000000000004000 0x0000000000010103"
check_out "translate: result" "pa 0x0000000000010000  page 4 KiB  flags W G"

run translate "$RAW" $NXVA $KX
check_out "translate raw NX page" "pa 0x0000000000011000  page 4 KiB  flags NX"

run translate "$ELF" $BIGVA
check_out "translate 2 MiB page" "pa 0x0000000000200000  page 2 MiB  flags W"

run translate "$ELF" $KVA --json
check_json "translate --json: levels" '[(l["level"], l["table"], l["index"], l["entry_pa"], l["entry"]) for l in d["levels"]]' \
    '[[0, "0x1000", 511, "0x1ff8", "0x2003"], [1, "0x2000", 510, "0x2ff0", "0x3003"], [2, "0x3000", 8, "0x3040", "0x4003"], [3, "0x4000", 0, "0x4000", "0x10103"]]'
check_json "translate --json: result" '[d["pa"], d["page_size"], d["flags"], d["error"]]' \
    '["0x10000", 4096, ["W", "G"], null]'

run translate "$ELF" $HOLEVA
check_rc "translate unmapped VA" 1
check_out "translate unmapped VA: levels so far" "3      0x0000000000004000     2  0x0000000000004010 0x0000000000000000"
check_err1 "translate unmapped VA" "not present"

run translate "$RAW" $HOLEVA $KX --json
check_rc "translate --json unmapped VA" 1
check_json "translate --json unmapped VA" '[len(d["levels"]), d["pa"], d["error"]["code"]]' \
    '[4, null, "VMI_ERR_NOT_PRESENT"]'

# ---- write ------------------------------------------------------------------------
cp "$RAW" "$S/w.img"
run write "$S/w.img" $KVA 564d49 $KX --write
check_rc "write" 0
run read "$S/w.img" 0x10000 3 --phys --raw
printf 'VMI' >"$S/expect.w"
check_cmp "write: bytes landed" "$S/expect.w" "$OUT"
run write "$S/w.img" 0x10000 4142 --phys
check_rc "write without --write" 2
run read "$S/w.img" 0x10000 3 --phys --raw
check_cmp "write without --write: bytes unchanged" "$S/expect.w" "$OUT"

# ---- errors -----------------------------------------------------------------------
run info "$S/does-not-exist.img"
check_rc "missing file" 1
check_err1 "missing file" "does-not-exist.img"

run read "$RAW" 0x10zz 4 --phys
check_rc "garbage ADDR" 2
check_err1 "garbage ADDR" "0x10zz"

run read "$RAW" 0x10000 12abc --phys
check_rc "garbage LEN" 2
check_err1 "garbage LEN" "12abc"

run translate "$RAW" $KVA --mode ia32e --dtb 0x1000x
check_rc "garbage --dtb" 2
check_err1 "garbage --dtb" "0x1000x"

run read "$RAW" 0x10000 99999999999999999999 --phys
check_rc "number over 64 bits" 2
check_err1 "number over 64 bits"

run translate "$RAW" $KVA --dtb 0x1000
check_rc "--dtb without --mode on raw" 2
check_err1 "--dtb without --mode on raw" "--mode"

run read "$RAW" $KVA 4
check_rc "virtual read without paging" 2
check_err1 "virtual read without paging" "--mode"

head -c 100000 "$ELF" >"$S/trunc.elf"
run info "$S/trunc.elf"
check_rc "truncated ELF" 1
check_err1 "truncated ELF" "trunc.elf"

head -c 1000 "$LIME" >"$S/trunc.lime"
run info "$S/trunc.lime"
check_rc "truncated LiME" 1
check_err1 "truncated LiME" "trunc.lime"

run info "$RAW" --mode nonsense
check_rc "unknown --mode" 2
check_err1 "unknown --mode" "nonsense"

run info "$RAW" --frobnicate
check_rc "unknown option" 2
run frobnicate "$RAW"
check_rc "unknown command" 2
run read "$RAW" 0x10000
check_rc "missing LEN" 2

# ---- Linux commands on an image without a kernel ------------------------------------
# The real-guest checks are tests/guests/test_linux.py; here only the shape of
# failures: one error line and exit 1, usage errors exit 2.
for cmd in ps modules syms dmesg; do
    run $cmd "$ELF"
    check_rc "$cmd without a kernel" 1
    check_err1 "$cmd without a kernel" "no operating system found"
done
run sym "$ELF" init_task --json
check_rc "sym without a kernel" 1
if [ -s "$OUT" ]; then bad "sym --json failure: stdout" "empty" "$(show "$OUT")"; else ok "sym --json failure: stdout empty"; fi
run info "$ELF"
check_rc "info without a kernel" 0
check_out "info without a kernel: os line" "os        not found ("
run info "$ELF" --json
check_json "info --json without a kernel: os" '[d["os"]["name"], d["os"]["error"]["code"] != None]' '[null, true]'
run info "$ELF" --profile "$S/does-not-exist.btf"
check_rc "--profile missing file" 1
check_err1 "--profile missing file" "does-not-exist.btf"
run info "$ELF" --profile "$ELF"
check_rc "--profile that is no profile" 1
check_err1 "--profile that is no profile" "profile"
run read "$ELF" 0x1000 16 --pid 1
check_rc "read --pid without a kernel" 1
check_err1 "read --pid without a kernel" "no operating system found"
run read "$ELF" 0x1000 16 --pid 1 --phys
check_rc "--pid with --phys" 2
run read "$ELF" 0x1000 16 --pid -1
check_rc "--pid -1" 2
check_err1 "--pid -1" "--pid"
run isf "$ELF"
check_rc "isf without -o" 2
if head -n 1 "$ERR" | grep -qF "add -o FILE"; then ok "isf without -o: says so"; else bad "isf without -o: says so" "add -o FILE" "$(show "$ERR")"; fi
run offset "$ELF" .tasks
check_rc "offset .tasks" 2
check_err1 "offset .tasks" "TYPE.MEMBER"
run ps "$ELF" --raw
check_rc "ps --raw" 2
run info "$ELF" --threads
check_rc "info --threads" 2
run sym "$ELF"
check_rc "sym without NAME" 2
i=0; args=""
while [ $i -le 8 ]; do args="$args --profile $S/p$i"; i=$((i + 1)); done
run info "$ELF" $args
check_rc "nine --profile" 2

# ---- dump ---------------------------------------------------------------------------
# Each source image into each format; the dump must read back as the source.
ranges_of() { # TARGET [options]: the ranges as "start-end" words
    "$VMI" info "$@" --json 2>/dev/null | python3 -c 'import json, sys
print(" ".join(r["start"] + "-" + r["end"] for r in json.load(sys.stdin)["ranges"]))'
}
for src in raw lime elf; do
    case $src in raw) SRC=$RAW ;; lime) SRC=$LIME ;; elf) SRC=$ELF ;; esac
    for fmt in raw lime elf; do
        D=$S/dump-$src.$fmt
        rm -f "$D"
        run dump "$SRC" "$D" --format $fmt
        check_rc "dump $src -> $fmt" 0
        check_out "dump $src -> $fmt: summary" "wrote $D: $fmt,"
        if [ -e "$D.tmp" ]; then bad "dump $src -> $fmt: no .tmp left" "no $D.tmp" "it exists"; else ok "dump $src -> $fmt: no .tmp left"; fi
        run info "$D"
        check_out "dump $src -> $fmt: detected as $fmt" "format    $fmt"
        # A raw image is one range: the span of the source's, holes as zeros.
        want=$(ranges_of "$SRC")
        [ $fmt = raw ] && want="0x0-0x3ffff"
        got=$(ranges_of "$D")
        if [ "$got" = "$want" ]; then ok "dump $src -> $fmt: ranges"; else bad "dump $src -> $fmt: ranges" "$want" "$got"; fi
        for a in 0x0 0x10000 0x11ff0 0x1fff0 0x30000 0x3fff0; do
            "$VMI" read "$SRC" $a 16 --phys --raw >"$S/want.bin" 2>/dev/null
            run read "$D" $a 16 --phys --raw
            check_cmp "dump $src -> $fmt: bytes at $a" "$S/want.bin" "$OUT"
        done
        if [ $fmt = raw ] && [ $src != raw ]; then
            head -c 16 /dev/zero >"$S/want.bin"
            run read "$D" 0x2fff0 16 --phys --raw
            check_cmp "dump $src -> raw: the hole is zeros" "$S/want.bin" "$OUT"
        fi
    done
done
# The ELF dump of the ELF core keeps the registers: paging without --mode/--dtb.
run info "$S/dump-elf.elf" --json
check_json "dump elf -> elf: vcpus and cr3" '[d["vcpus"]] + [r["cr3"] for r in d["registers"]]' '[2, "0x1000", "0x1000"]'
check_json "dump elf -> elf: registers" '[[r[k] for k in ("rip", "rsp", "cr0", "cr4")] for r in d["registers"]]' \
    '[["0xffffffff81000000", "0xffffffff81001f00", "0x80050033", "0xa0"], ["0xffffffff81000010", "0xffffffff81001f00", "0x80050033", "0xa0"]]'
check_json "dump elf -> elf: paging" '[d["paging"][k] for k in ("mode", "mode_source", "dtb", "dtb_source")]' \
    '["ia32e", "vcpu0", "0x1000", "vcpu0"]'
check_json "dump elf -> elf: format and arch" '[d["format"], d["arch"]]' '["elf-qemu", "x86_64"]'
run read "$S/dump-elf.elf" $KVA 24 --raw
check_cmp "dump elf -> elf: virtual read, no --mode/--dtb" "$S/expect.str" "$OUT"
run read "$S/dump-raw.elf" $KVA 24 --raw $KX
check_cmp "dump raw -> elf: virtual read with --mode/--dtb" "$S/expect.str" "$OUT"

run dump "$ELF" "$S/dump-json.elf" --json
check_rc "dump --json" 0
check_json "dump --json: summary" '[d["out"], d["format"], d["bytes"], d["ranges"], type(d["seconds"]).__name__]' \
    "[$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$S/dump-json.elf"), \"elf\", $(wc -c <"$S/dump-json.elf"), 2, \"float\"]"
if [ -s "$ERR" ]; then bad "dump, stderr not a tty: no progress" "empty stderr" "$(show "$ERR")"; else ok "dump, stderr not a tty: no progress"; fi

# Failures: one line, exit 1, and no OUT (nor OUT.tmp) left.
run dump "$ELF" "$S/no-such-dir/d.elf"
check_rc "dump to an unwritable path" 1
check_err1 "dump to an unwritable path" "no-such-dir/d.elf.tmp"
if [ -e "$S/no-such-dir/d.elf" ]; then bad "dump to an unwritable path: no OUT" "no file" "exists"; else ok "dump to an unwritable path: no OUT"; fi
mkdir -p "$S/isdir.elf"
run dump "$ELF" "$S/isdir.elf"
check_rc "dump onto a directory" 1
check_err1 "dump onto a directory" "isdir.elf"
if [ -e "$S/isdir.elf.tmp" ]; then bad "dump onto a directory: .tmp removed" "no .tmp" "exists"; else ok "dump onto a directory: .tmp removed"; fi
if [ -w /dev/full ]; then
    ln -sf /dev/full "$S/full.elf.tmp"
    run dump "$ELF" "$S/full.elf"
    check_rc "dump to a full disk" 1
    check_err1 "dump to a full disk" "full.elf.tmp"
    if [ -e "$S/full.elf" ]; then bad "dump to a full disk: no OUT" "no file" "exists"; else ok "dump to a full disk: no OUT"; fi
    rm -f "$S/full.elf.tmp"
fi
run dump "$ELF" "$S/d.x" --format zip
check_rc "dump --format zip" 2
check_err1 "dump --format zip" "zip"
run dump "$ELF"
check_rc "dump without OUT" 2
run dump "$ELF" "$S/d.x" --phys
check_rc "dump --phys" 2
run dump "$S/does-not-exist" "$S/d.x"
check_rc "dump of a missing target" 1
check_err1 "dump of a missing target" "does-not-exist"
# A raw dump refuses a span past 64 GiB: a LiME image with ranges 0 and 0x1000000000000.
python3 -c 'import struct, sys
h = lambda s, e: struct.pack("<IIQQ8x", 0x4C694D45, 1, s, e)
open(sys.argv[1], "wb").write(h(0, 0xfff) + bytes(4096) + h(1 << 48, (1 << 48) + 0xfff) + bytes(4096))' "$S/far.lime"
run dump "$S/far.lime" "$S/far.raw" --format raw
check_rc "dump raw past 64 GiB" 1
check_err1 "dump raw past 64 GiB" "64"
if [ -e "$S/far.raw" ] || [ -e "$S/far.raw.tmp" ]; then bad "dump raw past 64 GiB: no file" "none" "exists"; else ok "dump raw past 64 GiB: no file"; fi
run dump "$S/far.lime" "$S/far.elf"
check_rc "dump far ranges to elf" 0
check_out "dump far ranges to elf: 2 ranges" "2 ranges"

# ---- help and version ---------------------------------------------------------------
run --help
check_rc "--help" 0
check_out "--help: usage" "usage: vmi info"
check_out "--help: ps" "vmi ps        TARGET [--threads | --current]"
check_out "--help: --profile" "--profile FILE"
check_out "--help: dump" "vmi dump      TARGET OUT [--format raw|lime|elf]"
run help
check_out "help: usage" "usage: vmi info"
run --version
if grep -qE '^[0-9]+\.[0-9]+\.[0-9]+$' "$OUT"; then ok "--version"; else bad "--version" "x.y.z" "$(show "$OUT")"; fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
