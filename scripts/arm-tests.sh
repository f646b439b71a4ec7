#!/usr/bin/env bash
# ARM correctness under emulation (called by .ci/run; runs anywhere with apt, as root or via sudo):
#  1. installs what is missing: Debian's cross compilers, qemu-user and the googletest sources;
#  2. cross-builds the C++ tests (cpp/tests) for aarch64 and armv7 with cmake/toolchains/*.cmake
#     and runs them through ctest, which starts each test under qemu (CMAKE_CROSSCOMPILING_EMULATOR)
#     with MBF_TEST_QUICK=1: aarch64 (qemu's "max" CPU: dot product and i8mm), aarch64 as a
#     Cortex-A76 (dot product, no i8mm), as a Cortex-A53 (neither), armv7;
#  3. whole network on the shipped weights: scripts/export_net_check.py writes the folded weights,
#     examples/coffee.png preprocessed and this machine's logits to build/arm/net_check.bin, and
#     mbf_net_check reruns it on each emulated CPU (max |logit diff| <= 1e-3, same top-1); the
#     int8 network likewise, bit for bit (scripts/export_qnet_check.py -> mbf_qnet_check), on the
#     shipped int8 model and on the legacy uint8 test file (weight offsets), every ISA level the
#     emulated CPU has, 1 and 2 threads;
#  4. if Google Benchmark exists for arm64 (Debian multiarch libbenchmark-dev:arm64; installed with
#     MBF_ARM_BENCH=1), a smoke run of the aarch64 microbenchmarks.
# Needs `python` with mobilenet_fast importable for step 3 (installs the package with pip if not).
#
# Debian bookworm's qemu-aarch64 7.2 hangs when a dynamically linked aarch64 program creates a
# thread (qemu-arm is fine); the aarch64 toolchain file therefore links the test programs
# statically (MBF_STATIC_TEST_EXES), and all tests, the thread-pool ones included, run on every
# target. Every test also has a ctest timeout, so a hang fails instead of blocking CI.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD="${MBF_ARM_BUILD:-build/arm}"
JOBS="$(nproc)"
PY="${PYTHON:-python}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
T0=$SECONDS

APT_WHO=arm-tests
# shellcheck source=scripts/lib/apt.sh
. "scripts/lib/apt.sh"  # the cwd is the repository root here

# shellcheck disable=SC2046
apt_install $(missing g++-aarch64-linux-gnu g++-arm-linux-gnueabihf qemu-user googletest)
if [ "${MBF_ARM_BENCH:-auto}" = 1 ] && [ -n "$(missing libbenchmark-dev:arm64)" ]; then
  dpkg --print-foreign-architectures | grep -qx arm64 || { as_root dpkg --add-architecture arm64; APT_UPDATED=0; }
  apt_install libbenchmark-dev:arm64
fi
BENCH=OFF
if [ "${MBF_ARM_BENCH:-auto}" != 0 ] && [ -z "$(missing libbenchmark-dev:arm64)" ]; then BENCH=ON; fi

if ! "$PY" -c "import mobilenet_fast" >/dev/null 2>&1; then
  echo "arm-tests: mobilenet_fast is not importable by $PY; pip install ."
  "$PY" -m pip install --quiet .
fi
# The legacy uint8 test file (.tflite) of the int8 network check is read with the tflite extra.
if ! "$PY" -c "import tflite" >/dev/null 2>&1; then
  echo "arm-tests: the tflite package (mobilenet-fast[tflite]) is missing for $PY; pip install tflite"
  "$PY" -m pip install --quiet "tflite>=2.18"
fi
mkdir -p "$BUILD"
NET_BIN="$BUILD/net_check.bin"
"$PY" scripts/export_net_check.py "$NET_BIN"
QNET_BINS=("$BUILD/qnet_check_int8.bin" "$BUILD/qnet_check_uint8.bin")
"$PY" scripts/export_qnet_check.py "${QNET_BINS[0]}"
"$PY" scripts/export_qnet_check.py "${QNET_BINS[1]}" --weights tests/data/tflite/mnv1_025_128_uint8.tflite --images 4

FAILED=""
configure_build() {  # name toolchain [extra cmake args]
  local name=$1 tc=$2
  shift 2
  echo "=== cross-build $name"
  cmake -S . -B "$BUILD/$name" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/toolchains/$tc.cmake" -DMBF_BUILD_TESTS=ON -Wno-deprecated "$@" >/dev/null
  cmake --build "$BUILD/$name" --parallel "$JOBS"
}
run_ctest() {  # label build-name [ctest args]
  local label=$1 name=$2
  shift 2
  echo "=== ctest under qemu: $label"
  if ! MBF_TEST_QUICK=1 ctest --test-dir "$BUILD/$name" --output-on-failure --parallel "$JOBS" \
       --timeout 300 "$@"; then
    FAILED="$FAILED ctest:$label"
  fi
}
net_check() {  # label emulator... (the program: mbf_net_check; its directory has mbf_qnet_check)
  local label=$1
  shift
  echo "=== whole network under qemu: $label"
  "$@" "$NET_BIN" 1e-3 || FAILED="$FAILED net:$label"
  local prog=${*: -1} f
  local args=("${@:1:$#-1}")
  for f in "${QNET_BINS[@]}"; do
    echo "=== whole int8 network under qemu, bit for bit: $label, $(basename "$f")"
    "${args[@]}" "$(dirname "$prog")/mbf_qnet_check" "$f" || FAILED="$FAILED qnet:$label:$(basename "$f")"
  done
}

A64_ROOT=/usr/aarch64-linux-gnu
ARM_ROOT=/usr/arm-linux-gnueabihf
# Multiarch arm64 libraries (libbenchmark) live in /usr/lib/aarch64-linux-gnu, outside qemu's -L root.
export QEMU_SET_ENV="LD_LIBRARY_PATH=/usr/lib/aarch64-linux-gnu"

configure_build aarch64 aarch64-linux-gnu -DMBF_BUILD_BENCHMARKS="$BENCH"
run_ctest aarch64 aarch64
QEMU_CPU=cortex-a76 run_ctest "aarch64 cortex-a76" aarch64
QEMU_CPU=cortex-a53 run_ctest "aarch64 cortex-a53" aarch64
net_check aarch64 qemu-aarch64 -L "$A64_ROOT" "$BUILD/aarch64/cpp/tests/mbf_net_check"
net_check "aarch64 cortex-a76" qemu-aarch64 -cpu cortex-a76 -L "$A64_ROOT" "$BUILD/aarch64/cpp/tests/mbf_net_check"
net_check "aarch64 cortex-a53" qemu-aarch64 -cpu cortex-a53 -L "$A64_ROOT" "$BUILD/aarch64/cpp/tests/mbf_net_check"
if [ "$BENCH" = ON ] && [ -x "$BUILD/aarch64/bench/mbf_kernels_bench" ]; then
  echo "=== aarch64 microbenchmarks, smoke run under qemu (emulated times mean nothing)"
  qemu-aarch64 -L "$A64_ROOT" "$BUILD/aarch64/bench/mbf_kernels_bench" --benchmark_min_time=0.001 \
    --benchmark_filter='^(stem|blocks\.(0|1)\.(dw|pw)|pool|classifier)/' || FAILED="$FAILED bench:aarch64"
else
  echo "=== aarch64 microbenchmarks skipped (no libbenchmark-dev:arm64; MBF_ARM_BENCH=1 installs it)"
fi

configure_build armv7 arm-linux-gnueabihf
run_ctest armv7 armv7
net_check armv7 qemu-arm -L "$ARM_ROOT" "$BUILD/armv7/cpp/tests/mbf_net_check"

echo "=== ARM tests: $((SECONDS - T0)) s"
if [ -n "$FAILED" ]; then
  echo "ARM tests FAILED:$FAILED" >&2
  exit 1
fi
echo "ARM tests passed"
