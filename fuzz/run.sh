#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for a bounded time each.
#
#   bash fuzz/run.sh                      # 30 s per target, what CI runs
#   bash fuzz/run.sh --seconds 600 token  # ten minutes on one target
#
# Installs cargo-fuzz if it is missing. Builds with `--sanitizer none`,
# the one mode that works on the stable toolchain (see README.md,
# Fuzzing). Each run starts from the committed seeds (fuzz/corpus/) and
# kept inputs (fuzz/regressions/), read only; what a run discovers goes to
# fuzz/target/corpus/<target>/, so a later run picks up where it stopped,
# and a crasher to fuzz/artifacts/<target>/. Exits non-zero if any target
# found a crash.
set -euo pipefail
cd "$(dirname "$0")"

seconds=30
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds="$2"; shift 2 ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) targets+=("$1"); shift ;;
    esac
done
if [ ${#targets[@]} -eq 0 ]; then
    targets=(token jwks path config)
fi
case "$seconds" in
    ''|*[!0-9]*) echo "--seconds takes a whole number" >&2; exit 2 ;;
esac

# Pinned, so CI installs what was measured; --locked uses its own lock file.
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "--- installing cargo-fuzz"
    cargo install cargo-fuzz --version 0.13.2 --locked
fi

echo "--- cargo fuzz build (sanitizer none)"
cargo fetch --locked
cargo fuzz build --sanitizer none

failed=()
mkdir -p target/logs
for target in "${targets[@]}"; do
    echo "--- fuzz ${target} for ${seconds}s"
    mkdir -p "target/corpus/${target}"
    log="target/logs/${target}.log"
    # libFuzzer stops itself at max_total_time; the outer timeout only
    # guards against a hang in libFuzzer's own start or shutdown.
    if timeout "$((seconds + 120))" cargo fuzz run --sanitizer none "${target}" \
        "target/corpus/${target}" "corpus/${target}" "regressions/${target}" \
        -- -max_total_time="${seconds}" -timeout=10 -rss_limit_mb=2048 >"${log}" 2>&1
    then
        grep -E '^#[0-9]+ +DONE' "${log}" || tail -n 3 "${log}"
    else
        tail -n 40 "${log}"
        failed+=("${target}")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: crashes in: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${seconds}s each, no crash"
