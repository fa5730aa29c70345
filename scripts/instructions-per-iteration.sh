#!/usr/bin/env bash
# Instructions per iteration of one criterion case of the bench binary, under callgrind: the
# repeatable figure BENCHMARKS.md quotes next to times (which drift on shared machines).
#
#   cargo bench -p reliable-benches --bench reliability --no-run
#   scripts/instructions-per-iteration.sh 'open_rejection/reliable' ['closed_call/floor' ...]
#
# Only the measured loop is collected (`Bencher::iter`); the iteration count is the execution
# count most instructions of that loop share (each runs once per iteration), so no counter has
# to be added to the cases. Needs valgrind.
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${BENCH_BINARY:-$(ls -t target/release/deps/reliability-* 2>/dev/null | grep -v '\.d$' | head -n 1)}
[ -x "$binary" ] || { echo "build the bench first: cargo bench -p reliable-benches --bench reliability --no-run" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for case in "$@"; do
    file="$out/callgrind.out"
    valgrind --tool=callgrind --dump-instr=yes --callgrind-out-file="$file" \
        --toggle-collect='criterion::bencher::Bencher*iter*' \
        "$binary" --bench "^${case}\$" --warm-up-time 0.1 --measurement-time 0.3 >/dev/null 2>&1
    awk -v case="$case" '
        /^(summary|totals):/ { total = $2 }
        /^calls=/ { skip = 1; next }
        /^(0x[0-9a-f]+|[+-][0-9]+|\*)[ \t]/ {
            if (skip) { skip = 0; next }
            count = $NF
            if (count > 20000) seen[count]++
        }
        END {
            for (count in seen) if (seen[count] > best) { best = seen[count]; iterations = count }
            if (iterations == 0) { print case ": no loop found" > "/dev/stderr"; exit 1 }
            printf "%-45s %8.1f instructions per iteration (%d iterations)\n", case, total / iterations, iterations
        }' "$file"
done
