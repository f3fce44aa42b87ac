#!/bin/sh
# Runs every libFuzzer harness for SECONDS each; a crash fails the run.
# Usage: tests/fuzz/run.sh BUILD_FUZZ_DIR SECONDS
set -u
dir=$1; secs=$2
pass=0; fail=0
for f in "$dir"/fuzz_*; do
    [ -x "$f" ] || continue
    name=$(basename "$f")
    corpus="$dir/corpus-$name"
    mkdir -p "$corpus"
    [ -d "tests/fuzz/seeds/$name" ] && cp -n tests/fuzz/seeds/"$name"/* "$corpus"/ 2>/dev/null
    if "$f" -max_total_time="$secs" -max_len=70000 -rss_limit_mb=2048 -artifact_prefix="$dir/crash-$name-" \
        "$corpus" >"$dir/$name.log" 2>&1; then
        echo "ok   $name: $(grep -E '^Done [0-9]+ runs' "$dir/$name.log" | tail -n 1)"
        pass=$((pass + 1))
    else
        echo "FAIL $name (see $dir/$name.log)"; tail -n 20 "$dir/$name.log"
        fail=$((fail + 1))
    fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
