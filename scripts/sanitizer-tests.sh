#!/usr/bin/env bash
# Memory and undefined-behaviour checks of the C++ core (called by .ci/run; runs anywhere with apt,
# as root or via sudo):
#  1. AddressSanitizer + UndefinedBehaviorSanitizer: configures build/asan with MBF_SANITIZE=ON
#     MBF_BUILD_TESTS=ON (-fsanitize=address,undefined -fno-sanitize-recover=all, -O1 -g) and runs
#     the GoogleTest kernel tests (cpp/tests) once per ISA the CPU supports (scalar, avx2, avx512, avx512_vnni;
#     neon on ARM): the ISA-parameterised tests are instantiated for every supported ISA, so each
#     ISA's processes take its instances with --gtest_filter='*/<isa>' (and MOBILENET_FAST_ISA=<isa>
#     for the default dispatch), split into nproc gtest shards; one more process runs the tests
#     that take no ISA (dispatch, thread pool, shapes file). Up to nproc processes at a time. The
#     script fails if an ISA the CPU reports (/proc/cpuinfo) has no tests. The test buffers' guard
#     zones are poisoned under ASan (test_support.cpp), so any access next to an operand is
#     reported, not only one reaching the result.
#     GCC's ASan does not instrument masked vector loads/stores (_mm256_maskload_ps,
#     _mm512_maskz_loadu_ps ...): a wrong mask is caught by the tests' NaN sentinels instead.
#     Clang's ASan checks their enabled lanes (CXX=clang++, see below).
#  2. valgrind memcheck over whole-network Plan runs (Isa/PlanNet.*) in a build WITHOUT the
#     sanitizer (valgrind and ASan do not mix): by default build/ctest, the Release build .ci/run
#     has just built and run ctest in (so CI builds nothing more; the code checked is the -O3 code
#     that ships; reports name functions but no lines: MBF_VALGRIND_BUILD=build/vg with
#     MBF_VALGRIND_BUILD_TYPE=RelWithDebInfo for line numbers). Valgrind 3.19
#     cannot execute AVX-512 (it hides AVX-512 from CPUID, so the tests do not even list avx512
#     under it): MOBILENET_FAST_ISA=avx2 forces the AVX2 kernels for the Plan's default dispatch,
#     the gtest filter picks the avx2 instances, and every whole-network check also runs the scalar
#     table as its reference, so both paths valgrind can run are covered.
# Exits non-zero on any sanitizer report, valgrind error, definite leak, or failing test.
#
# Environment:
#   MBF_SAN_QUICK=1      MBF_TEST_QUICK for the sanitizer runs (shorter shape lists; default 0:
#                        the full suite). The whole script costs about 5 CPU-minutes (sanitized
#                        build 2.5, tests 2, valgrind 0.5): a few minutes on an idle 2-core machine
#   MBF_SAN_VALGRIND=0   skip step 2
#   MBF_SAN_BUILD, MBF_VALGRIND_BUILD   build directories (default build/asan, build/ctest);
#                        e.g. CXX=clang++ MBF_SAN_BUILD=build/asan-clang MBF_SAN_VALGRIND=0 for a
#                        Clang run (Debian: apt-get install clang libclang-rt-14-dev)
#   MBF_VALGRIND_BUILD_TYPE             CMAKE_BUILD_TYPE of the valgrind build (default Release)
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD="${MBF_SAN_BUILD:-build/asan}"
VG_BUILD="${MBF_VALGRIND_BUILD:-build/ctest}"
VG_BUILD_TYPE="${MBF_VALGRIND_BUILD_TYPE:-Release}"
JOBS="$(nproc)"
QUICK="${MBF_SAN_QUICK:-0}"
VALGRIND="${MBF_SAN_VALGRIND:-1}"
T0=$SECONDS

APT_WHO=sanitizer-tests
# shellcheck source=scripts/lib/apt.sh
. "scripts/lib/apt.sh"  # the cwd is the repository root here

NEED="libgtest-dev"
[ "$VALGRIND" = 0 ] || NEED="$NEED valgrind"
# shellcheck disable=SC2046,SC2086
apt_install $(missing $NEED)
for tool in cmake ninja; do
  command -v "$tool" >/dev/null 2>&1 || { echo "sanitizer-tests: $tool not found (pip install cmake ninja)" >&2; exit 1; }
done

FAILED=""

# ------------------------------------------------------------------ 1. ASan + UBSan
echo "=== ASan+UBSan build ($BUILD)"
T=$SECONDS
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMBF_SANITIZE=ON -DMBF_BUILD_TESTS=ON \
  -DMBF_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build "$BUILD" --parallel "$JOBS" --target mbf_kernel_tests
TESTS="$BUILD/cpp/tests/mbf_kernel_tests"
echo "ASan+UBSan build: $((SECONDS - T)) s"
# The flags really reached the program: it calls into both runtimes.
SYMS=$(nm "$TESTS")
for sym in __asan_init __ubsan_handle_; do
  grep -q "$sym" <<<"$SYMS" || { echo "sanitizer-tests: $TESTS has no $sym: not built with MBF_SANITIZE" >&2; exit 1; }
done

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export MBF_TEST_QUICK="$QUICK"

# The ISAs the tests are instantiated for (every compiled ISA this CPU supports)...
ISAS=$("$TESTS" --gtest_list_tests | sed -n 's/.*# GetParam() = "\([a-z0-9_]*\)"$/\1/p' | awk '!seen[$0]++')
# ...must be every ISA the CPU reports: a dispatch regression must not silently skip a path.
EXPECT="scalar"
case "$(uname -m)" in
  x86_64)
    flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
    has() { local f; for f in "$@"; do [[ $flags == *" $f "* ]] || return 1; done; }
    if has avx2 fma; then EXPECT="$EXPECT avx2"; fi
    if has avx512f avx512bw avx512vl avx512dq; then EXPECT="$EXPECT avx512"; fi
    if has avx512f avx512bw avx512vl avx512dq avx512_vnni; then EXPECT="$EXPECT avx512_vnni"; fi ;;
  aarch64) EXPECT="$EXPECT neon" ;;
esac
for isa in $EXPECT; do
  grep -qx "$isa" <<<"$ISAS" || FAILED="$FAILED missing-isa:$isa"
done
echo "=== ASan+UBSan tests (MBF_TEST_QUICK=$QUICK), ISAs: $(echo $ISAS) (CPU: $EXPECT)"

# Per ISA, JOBS gtest shards (GTEST_TOTAL_SHARDS: the ISA's tests dealt round-robin) so that the
# three ISAs pack evenly onto the cores; plus one process for the ISA-free tests. Scalar, the
# slowest, starts first. Up to JOBS processes at a time.
LOGDIR="$BUILD/sanitizer-logs"
rm -rf "$LOGDIR"
mkdir -p "$LOGDIR"
run_tests() {  # label filter shards shard [MOBILENET_FAST_ISA]
  local label=$1 filter=$2 shards=$3 shard=$4 isa=${5:-} t=$SECONDS rc=0
  if [ -n "$isa" ]; then
    MOBILENET_FAST_ISA="$isa" GTEST_TOTAL_SHARDS="$shards" GTEST_SHARD_INDEX="$shard" \
      "$TESTS" --gtest_filter="$filter" >"$LOGDIR/$label.log" 2>&1 || rc=$?
  else
    GTEST_TOTAL_SHARDS="$shards" GTEST_SHARD_INDEX="$shard" \
      "$TESTS" --gtest_filter="$filter" >"$LOGDIR/$label.log" 2>&1 || rc=$?
  fi
  echo "$rc $((SECONDS - t))" >"$LOGDIR/$label.status"
}
show_failure() {  # log: the first sanitizer report or test failure, with some context
  local first
  first=$(grep -nm1 -E '==[0-9]+==ERROR|runtime error:|: Failure$' "$1" | cut -d: -f1 || true)
  if [ -n "$first" ]; then
    sed -n "$((first > 3 ? first - 3 : 1)),$((first + 50))p" "$1"
  else
    tail -n 50 "$1"
  fi
}
start_job() {  # waits for a free slot, then runs run_tests "$@" in the background
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
  run_tests "$@" &
}
T=$SECONDS
for isa in $ISAS; do
  for ((s = 0; s < JOBS; s++)); do start_job "$isa.$s" "*/$isa" "$JOBS" "$s" "$isa"; done
done
start_job no-isa.0 "-*/*" 1 0
wait
echo "ASan+UBSan tests: $((SECONDS - T)) s"

TOTAL_RUN=0
for group in $ISAS no-isa; do
  ok=0 skipped=0 failed=0 secs=0 bad=""
  for log in "$LOGDIR/$group".*.log; do
    read -r rc s <"${log%.log}.status"
    secs=$((secs + s))
    # Per-test result lines end in "(N ms)"; the closing summary lines do not.
    ok=$((ok + $(grep -cE '^\[ +OK \] .* \([0-9]+ ms\)$' "$log" || true)))
    skipped=$((skipped + $(grep -cE '^\[ +SKIPPED \] .* \([0-9]+ ms\)$' "$log" || true)))
    f=$(grep -cE '^\[ +FAILED +\] .* \([0-9]+ ms\)$' "$log" || true)
    failed=$((failed + f))
    if [ "$rc" -ne 0 ] || [ "$f" -ne 0 ]; then
      bad="$bad $log"
      echo "--- $log (exit $rc)"
      show_failure "$log"
    fi
  done
  TOTAL_RUN=$((TOTAL_RUN + ok + failed))
  printf '%-7s %3d passed, %d failed, %d skipped  (%d s of test processes)\n' "$group:" "$ok" "$failed" "$skipped" "$secs"
  if [ -n "$bad" ] || [ "$ok" -eq 0 ]; then FAILED="$FAILED asan:$group"; fi
done
echo "ASan+UBSan: $TOTAL_RUN tests run, logs in $LOGDIR"

# ------------------------------------------------------------------ 2. valgrind memcheck
if [ "$VALGRIND" != 0 ]; then
  echo "=== valgrind build ($VG_BUILD, no sanitizer)"
  T=$SECONDS
  cmake -S . -B "$VG_BUILD" -G Ninja -DCMAKE_BUILD_TYPE="$VG_BUILD_TYPE" -DMBF_SANITIZE=OFF -DMBF_BUILD_TESTS=ON \
    >/dev/null
  cmake --build "$VG_BUILD" --parallel "$JOBS" --target mbf_kernel_tests
  echo "valgrind build: $((SECONDS - T)) s"
  # The dispatch test prints the ISAs valgrind's CPU offers; then whole networks on one thread and on
  # the pool (the pool's workers are created and joined under memcheck too).
  VG_FILTER='Dispatch.SupportedIsasAreCompiledAndScalarComesFirst:Isa/PlanNet.*/avx2'
  VG_FILTER="$VG_FILTER:Isa/PlanNet.ThreadsAndBatchesGiveIdenticalResults/scalar"
  VG_LOG="$VG_BUILD/valgrind.log"
  echo "=== valgrind memcheck: $VG_FILTER (MOBILENET_FAST_ISA=avx2, MBF_TEST_QUICK=1)"
  T=$SECONDS
  rc=0
  MOBILENET_FAST_ISA=avx2 MBF_TEST_QUICK=1 valgrind --error-exitcode=1 --leak-check=full \
    --errors-for-leak-kinds=definite "$VG_BUILD/cpp/tests/mbf_kernel_tests" --gtest_filter="$VG_FILTER" \
    >"$VG_LOG" 2>&1 || rc=$?
  grep -E '^\[ +(OK|FAILED|SKIPPED) +\] .* \([0-9]+ ms\)$|supported ISAs' "$VG_LOG" || true
  sed -n '/HEAP SUMMARY/,$p' "$VG_LOG" | sed 's/^==[0-9]*== \{0,1\}//'
  vg_ok=$(grep -cE '^\[ +OK \] .* \([0-9]+ ms\)$' "$VG_LOG" || true)
  echo "valgrind: $vg_ok tests passed, $((SECONDS - T)) s, exit $rc"
  if [ "$rc" -ne 0 ] || [ "$vg_ok" -eq 0 ]; then
    FAILED="$FAILED valgrind"
    echo "--- $VG_LOG (tail)"
    tail -n 80 "$VG_LOG"
  fi
fi

echo "=== sanitizer tests: $((SECONDS - T0)) s"
if [ -n "$FAILED" ]; then
  echo "sanitizer tests FAILED:$FAILED" >&2
  exit 1
fi
echo "sanitizer tests passed"
