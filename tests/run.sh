#!/bin/sh
# Runs the test suite and sums every step's "N passed, M failed" line.
# A step without such a line counts as one check, passed by exit code 0.
# Usage: tests/run.sh quick|all   (from the repository root, after make)
set -u
mode=${1:-all}
B=${BUILD:-build}
LOG=$B/test-logs
mkdir -p "$LOG"
pass=0
fail=0
failed_steps=""

step() {
    name=$1; shift
    log="$LOG/$name.log"
    start=$(date +%s)
    "$@" >"$log" 2>&1
    rc=$?
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
    if [ -n "$line" ]; then
        p=${line%% passed*}; f=${line#*passed, }; f=${f%% failed*}
    elif [ $rc -eq 0 ]; then p=1; f=0
    else p=0; f=1
    fi
    [ $rc -ne 0 ] && [ "$f" -eq 0 ] && f=1
    pass=$((pass + p)); fail=$((fail + f))
    secs=$(( $(date +%s) - start ))
    if [ "$f" -eq 0 ]; then
        echo "ok    $name ($p checks, ${secs}s)"
    else
        echo "FAIL  $name ($f of $((p + f)) failed, ${secs}s) - log: $log"
        tail -n 30 "$log" | sed 's/^/    | /'
        failed_steps="$failed_steps $name"
    fi
}

compile_one() { # compiler std lang [macros]
    cc=$1; std=$2; lang=$3; macros=${4:-}
    out="$B/compile-$cc-$std"
    if [ "$lang" = c ]; then flags="-x c -std=$std -Wstrict-prototypes"; else flags="-x c++ -std=$std"; fi
    flags="$flags $macros"
    $cc $flags -Wall -Wextra -Wpedantic -Werror -Wshadow -I. -c tests/compile/impl.c -o "$out-impl.o" &&
    $cc $flags -Wall -Wextra -Wpedantic -Werror -Wshadow -I. -c tests/compile/other.c -o "$out-other.o" &&
    $cc "$out-impl.o" "$out-other.o" -o "$out" && "./$out" &&
    ! nm -g --defined-only "$out-impl.o" | awk '{print $3}' | grep -v -e '^vmi_' -e '^main$' | grep -q .
}

compile_matrix() {
    n=0; bad=0
    for combo in "gcc c99 c" "gcc c11 c" "g++ c++17 cxx" "clang c99 c" "clang c11 c" "clang++ c++17 cxx"; do
        set -- $combo
        if compile_one "$1" "$2" "$3"; then echo "ok   $1 -std=$2, two translation units"; n=$((n + 1))
        else echo "FAIL $1 -std=$2"; bad=$((bad + 1)); fi
    done
    # the feature-pruning macros build too
    for combo in "gcc c99 c" "clang c11 c" "g++ c++17 cxx"; do
        set -- $combo
        if compile_one "$1" "$2" "$3" "-DVMI_NO_ARM -DVMI_NO_LOG"; then echo "ok   $1 -std=$2 -DVMI_NO_ARM -DVMI_NO_LOG"; n=$((n + 1))
        else echo "FAIL $1 -std=$2 -DVMI_NO_ARM -DVMI_NO_LOG"; bad=$((bad + 1)); fi
    done
    echo "$n passed, $bad failed"
    [ $bad -eq 0 ]
}

# vmi_xen.h against Debian's libxen-dev: linked (VMI_XEN_LINK) into the
# compile test and run (it calls no Xen), and its ABI declarations asserted
# against Xen's headers (abi_check.c; those headers need GNU C).
compile_matrix_xen() {
    n=0; bad=0
    for combo in "gcc c99 c gnu99" "gcc c11 c gnu11" "g++ c++17 cxx gnu++17" \
                 "clang c99 c gnu99" "clang c11 c gnu11" "clang++ c++17 cxx gnu++17"; do
        set -- $combo
        out="$B/compile-xen-$1-$2"
        if [ "$3" = c ]; then flags="-x c -Wstrict-prototypes"; else flags="-x c++"; fi
        w="-Wall -Wextra -Wpedantic -Werror -Wshadow -DVMI_XEN_LINK -I."
        xl="-lxenctrl -lxenforeignmemory -lxenevtchn -lxenstore"
        if $1 $flags -std=$2 $w -c tests/compile/impl.c -o "$out-impl.o" &&
           $1 $flags -std=$2 $w -c tests/compile/other.c -o "$out-other.o" &&
           $1 "$out-impl.o" "$out-other.o" -o "$out" $xl && "./$out" &&
           ! nm -g --defined-only "$out-impl.o" | awk '{print $3}' | grep -v -e '^vmi_' -e '^main$' | grep -q . &&
           $1 $flags -std=$4 $w tests/xen/abi_check.c -o "$out-abi" $xl && "./$out-abi" > /dev/null; then
            echo "ok   $1 -std=$2 linked with libxen, ABI checked with -std=$4"; n=$((n + 1))
        else echo "FAIL $1 -std=$2 (xen)"; bad=$((bad + 1)); fi
    done
    echo "$n passed, $bad failed"
    [ $bad -eq 0 ]
}

step compile-matrix compile_matrix
step compile-matrix-xen compile_matrix_xen
for t in test_paging test_mem test_cache test_file test_types; do
    step "$t" "$B/unit/$t"
    step "$t-asan-ubsan" "$B/unit-san/$t"
done
# The synthetic Windows images (tests/windows/synth.py, ~3 GB): made again
# only when the generator changed. Wine's PE files come with them.
WINE=tests/guests/.cache/debs/libwine_8.0~repack-4
W64=${WINE}_amd64/usr/lib/x86_64-linux-gnu/wine W32=${WINE}_i386/usr/lib/i386-linux-gnu/wine
step windows-images sh -c "[ '$B/windows/READY' -nt tests/windows/synth.py ] || python3 tests/windows/synth.py --out '$B/windows'"
step test_windows "$B/unit/test_windows" "$W64" "$W32" "$B/windows"
step test_windows-asan-ubsan "$B/unit-san/test_windows" "$W64" "$W32" "$B/windows"
step cli sh tests/cli/test_cli.sh "$B/vmi" "$B/cli-scratch"
if [ "$mode" = all ]; then
    step fuzz-smoke sh tests/fuzz/run.sh "$B/fuzz" "${FUZZ_SECONDS:-10}"
    step guest-capture python3 tests/guests/lab.py capture all --jobs 2 --out "$B/guests"
    step guest-lab-check python3 tests/guests/check.py --out "$B/guests"
    # the Xen backend on a SIMULATED hypervisor (tests/xen), over the x86_64 capture
    step xen-sim "$B/xensim/test_xen_sim" "$B/guests/x86_64"
    step xen-sim-asan-ubsan "$B/xensim/test_xen_sim-san" "$B/guests/x86_64"
    step xen-sim-dlopen "$B/xensim/test_xen_sim_dlopen" "$B/guests/x86_64"
    step xen-sim-cli-ps sh tests/xen/test_cli_ps.sh "$B" "$B/guests/x86_64"
    step windows-cli python3 tests/windows/test_windows.py --vmi "$B/vmi" --san "$B/vmi-san" --images "$B/windows"
    step guests python3 tests/guests/test_guests.py --vmi "$B/vmi" --out "$B/guests"
    step guests-linux python3 tests/guests/test_linux.py --vmi "$B/vmi" --out "$B/guests"
    step profiles python3 tests/guests/test_profiles.py --vmi "$B/vmi" --out "$B/guests"
    step live-qemu "$B/unit/test_kvm"
    step live-qemu-asan-ubsan "$B/unit-san/test_kvm"
    step live-events "$B/unit/test_events"
    step live-events-asan-ubsan "$B/unit-san/test_events"
    step live-cli python3 tests/guests/test_live_cli.py --vmi "$B/vmi"
    step virtual-reads "$B/unit/test_reads" "$B/guests"
    step virtual-reads-asan-ubsan "$B/unit-san/test_reads" "$B/guests"
    step kallsyms-recovery "$B/unit/test_kallsyms" "$B/guests"
    step kallsyms-recovery-asan-ubsan "$B/unit-san/test_kallsyms" "$B/guests"
    step kernel-log "$B/unit/test_dmesg" "$B/guests"
    step kernel-log-asan-ubsan "$B/unit-san/test_dmesg" "$B/guests"
    for a in x86_64 arm64; do
        step "btf-vs-pahole-$a" sh -c "python3 tests/guests/gen_expected.py $B/guests/$a/vmlinux.btf > $B/expected-$a.txt &&
            $B/unit-san/test_types $B/guests/$a/vmlinux.btf $B/expected-$a.txt"
    done
fi
echo
[ -n "$failed_steps" ] && echo "failed steps:$failed_steps"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
