#!/bin/sh
# `vmi ps` through the Xen backend on the SIMULATED hypervisor (build/vmi-xensim:
# the tool linked with tests/xen/xensim.c, domain 7 "lab" = a lab capture)
# against the file backend on the same capture's ELF core, which carries the
# same registers (a raw image has none: its kernel threads would show the
# kernel root vmi_os_init found instead of vCPU 0's CR3).
# Usage: test_cli_ps.sh BUILD_DIR CAPTURE_DIR
set -u
B=$1; G=$2
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
export VMI_XENSIM_GUEST="$G" VMI_XENSIM_DOMID=7 VMI_XENSIM_NAME=lab

"$B/vmi" ps --json "$G/mem.elf" > "$T/file.json" || bad "vmi ps on $G/mem.elf"
for target in xen:7 xen:lab; do
    if "$B/vmi-xensim" ps --json "$target" > "$T/xen.json" 2> "$T/err" && cmp -s "$T/xen.json" "$T/file.json"; then ok
    else bad "vmi-xensim ps --json $target differs from vmi ps --json mem.elf: $(cat "$T/err"; diff "$T/xen.json" "$T/file.json" | head -5)"; fi
done
n=$(grep -o '"pid"' "$T/file.json" | wc -l)
[ "$n" -gt 10 ] && ok || bad "only $n processes"

# Errors: one line, "vmi: open: ...", exit code 1.
"$B/vmi-xensim" ps xen:99 > /dev/null 2> "$T/err"; rc=$?
if [ $rc -eq 1 ] && [ "$(wc -l < "$T/err")" -eq 1 ] && grep -q '^vmi: open: .*no Xen domain 99' "$T/err"; then ok
else bad "xen:99: exit $rc, stderr: $(cat "$T/err")"; fi
VMI_XENSIM_GUEST=/nonexistent "$B/vmi-xensim" ps xen:7 > /dev/null 2> "$T/err"; rc=$?
if [ $rc -eq 1 ] && [ "$(wc -l < "$T/err")" -eq 1 ] && grep -q '^vmi: open: xc_interface_open' "$T/err"; then ok
else bad "no Xen: exit $rc, stderr: $(cat "$T/err")"; fi
# The real tool (Xen's real libraries, or none) on this host: a clean failure
# unless a domain 7 really runs here.
"$B/vmi" ps xen:7 > /dev/null 2> "$T/err"; rc=$?
if [ $rc -eq 0 ] || { [ $rc -eq 1 ] && [ "$(wc -l < "$T/err")" -eq 1 ] && grep -q '^vmi: open: ' "$T/err"; }; then ok
else bad "build/vmi ps xen:7: exit $rc, stderr: $(cat "$T/err")"; fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
