#!/usr/bin/env bash
# Runs each fuzz target for a bounded time, one after the other, on the
# stable toolchain (see README.md). Exits non-zero if any target found
# something; the input that triggered it is under fuzz/artifacts/<target>/.
#
# Usage: fuzz/run.sh [SECONDS] [TARGET...]
#   SECONDS  time per target (default 60)
#   TARGET   targets to run (default: all)
#
# New inputs the fuzzer finds go to a scratch corpus (WS_FUZZ_WORK,
# default fuzz/target/work-corpus/<target>); the committed corpus under
# fuzz/corpus/<target>/ is only read. To keep a few of the new ones, see
# "Growing the corpus" in README.md.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."

secs=${1:-60}
[ $# -gt 0 ] && shift
if [ $# -gt 0 ]; then
    targets=("$@")
else
    targets=(frame_decoder handshake_request handshake_response deflate pair_ops client_proxy)
fi
work=${WS_FUZZ_WORK:-$here/target/work-corpus}

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is missing; installing it (cargo install cargo-fuzz)" >&2
    cargo install cargo-fuzz --locked
fi

# --sanitizer none: runs on the stable toolchain as is (README.md);
# -a: debug assertions and overflow checks on.
flags=(--sanitizer none -a)
cargo fuzz build "${flags[@]}"

failed=()
for t in "${targets[@]}"; do
    mkdir -p "$work/$t" "$here/corpus/$t"
    echo "== $t: ${secs}s"
    # -timeout: one input may take 10 s at most (a quadratic path shows up
    # as a timeout); -rss_limit_mb also caps any single allocation.
    set +e
    cargo fuzz run "${flags[@]}" "$t" "$work/$t" "$here/corpus/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=1024 \
        -print_final_stats=1 2>&1 | tee "$work/$t.log" |
        grep -E '^(Done|#[0-9]+ +DONE)|panicked|ERROR|SUMMARY|artifact'
    status=${PIPESTATUS[0]}
    set -e
    if [ "$status" -ne 0 ]; then
        failed+=("$t")
        echo "!! $t found something: see fuzz/artifacts/$t/ and $work/$t.log" >&2
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "findings in: ${failed[*]}" >&2
    exit 1
fi
echo "no findings (${#targets[@]} targets, ${secs}s each)"
