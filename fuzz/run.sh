#!/bin/sh
# Runs one fuzz target under AFL++ for a while; fails if it found a crash or
# a hang. Usage: fuzz/run.sh TARGET SECONDS   (targets: head, chunked)
#
# Needs cargo-afl (`cargo install cargo-afl --locked`; .ci/install-deps does
# it). Seeds come from tests/requests; findings stay in fuzz/out/TARGET
# (crashes/ and hangs/ hold the inputs to replay: `target/release/TARGET < file`).
# Set FUZZ_TARGET_DIR to share a build directory between runs.
set -eu
[ $# -eq 2 ] || { echo "usage: $0 TARGET SECONDS" >&2; exit 2; }
target=$1
seconds=$2
fuzz_dir=$(cd "$(dirname "$0")" && pwd)
cd "$fuzz_dir"
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$fuzz_dir/target}"

# AFL++ is built per rustc version; after a toolchain update, build it again
# (when it is already there this says so and changes nothing).
cargo afl config --build >/dev/null 2>&1 || true
cargo afl build --release --locked
bin="$CARGO_TARGET_DIR/release"
work="$fuzz_dir/out/$target"
rm -rf "$work"
mkdir -p "$work"
"$bin/seeds" ../tests/requests "$work/seeds" >/dev/null

# A CI machine is neither tuned for AFL nor ours alone: don't insist on a
# core dump pattern, a performance governor or a free core to bind to.
AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 \
AFL_NO_AFFINITY=1 AFL_QUIET=1 \
    cargo afl fuzz -V "$seconds" -i "$work/seeds/$target" -o "$work/findings" \
    "$bin/$target" >"$work/afl.log" 2>&1 || {
        tail -n 30 "$work/afl.log" >&2
        echo "fuzz: afl-fuzz failed for $target" >&2
        exit 1
    }

stats="$work/findings/default/fuzzer_stats"
stat() { sed -n "s/^$1 *: *//p" "$stats"; }
crashes=$(find "$work/findings/default/crashes" -name 'id:*' | wc -l)
hangs=$(find "$work/findings/default/hangs" -name 'id:*' | wc -l)
echo "fuzz $target: $(stat execs_done) execs in $(stat run_time) s" \
    "($(stat execs_per_sec)/s), $(stat corpus_count) paths," \
    "$crashes crashes, $hangs hangs"
if [ "$crashes" -ne 0 ] || [ "$hangs" -ne 0 ]; then
    echo "fuzz: findings in $work/findings/default/{crashes,hangs}" >&2
    exit 1
fi
