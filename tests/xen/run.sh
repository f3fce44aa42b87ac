#!/bin/sh
# The Xen backend on the SIMULATED hypervisor (no Xen runs here): the test
# program in link mode, under ASan+UBSan, in dlopen mode, and the CLI's ps
# against the file backend. Sums every "N passed, M failed" line.
# Usage: tests/xen/run.sh [CAPTURE_DIR]   (from the repository root, after make test-xen)
set -u
B=${BUILD:-build}
G=${1:-$B/guests/x86_64}
pass=0; fail=0
for t in "$B/xensim/test_xen_sim $G" "$B/xensim/test_xen_sim-san $G" "$B/xensim/test_xen_sim_dlopen $G" \
         "sh tests/xen/test_cli_ps.sh $B $G"; do
    out=$($t 2>&1); rc=$?
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
    p=${line%% passed*}; f=${line#*passed, }; f=${f%% failed*}
    [ -n "$line" ] || { p=0; f=1; }
    [ $rc -ne 0 ] && [ "$f" -eq 0 ] && f=1
    [ "$f" -eq 0 ] || printf '%s\n' "$out" | tail -n 20
    echo "$t: $p passed, $f failed"
    pass=$((pass + p)); fail=$((fail + f))
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
