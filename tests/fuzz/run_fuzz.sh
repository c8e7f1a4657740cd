#!/usr/bin/env bash
# Runs one libFuzzer target for a fixed time over its seed corpus (meson suite 'fuzz').
#   run_fuzz.sh TARGET SEED_DIR [DICT]     new inputs go to a scratch dir, never into SEED_DIR
#   run_fuzz.sh --skip REASON              prints SKIPPED with the reason, exits 77 (meson skip)
# FUZZ_SECONDS (default 20) sets -max_total_time; FUZZ_ARTIFACTS keeps crashes (default: the
# scratch dir, printed on failure).
set -uo pipefail
if [[ $1 == --skip ]]; then
  echo "SKIPPED: $2"
  exit 77
fi
target=$1 seeds=$2 dict=${3:-}
work=$(mktemp -d "${TMPDIR:-/tmp}/vireo-fuzz.XXXXXX")
trap 'rm -rf "$work/corpus"' EXIT
mkdir -p "$work/corpus" "${FUZZ_ARTIFACTS:-$work}"
args=(-max_total_time="${FUZZ_SECONDS:-20}" -timeout=10 -error_exitcode=1 -timeout_exitcode=1 -rss_limit_mb=2048 -print_final_stats=1
      -artifact_prefix="${FUZZ_ARTIFACTS:-$work}/")
[[ -n $dict && -f $dict ]] && args+=(-dict="$dict")
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
"$target" "${args[@]}" "$work/corpus" "$seeds" 2>&1 | grep -v '^#[0-9]*.*\(NEW\|REDUCE\|pulse\)'
rc=${PIPESTATUS[0]}
if [[ $rc -ne 0 ]]; then
  echo "$(basename "$target"): FAILED (exit $rc); crashing input kept in ${FUZZ_ARTIFACTS:-$work}/"
  trap - EXIT
fi
exit "$rc"
