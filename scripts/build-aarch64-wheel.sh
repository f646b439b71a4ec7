#!/usr/bin/env bash
# Cross-builds an aarch64 wheel of mobilenet-fast on an x86-64 Debian/Ubuntu host and checks it
# under qemu-user with a real arm64 CPython 3.11:
#  1. an arm64 Python sysroot from Debian (mmdebstrap --variant=extract: python3.11 and its
#     headers, no chroot needed, ~10 s);
#  2. the wheel: scikit-build-core with cmake/toolchains/aarch64-linux-gnu.cmake,
#     PYBIND11_USE_CROSSCOMPILING=ON, the sysroot's Python headers, the extension suffix
#     .cpython-311-aarch64-linux-gnu.so (SETUPTOOLS_EXT_SUFFIX) and the tag linux_aarch64
#     (_PYTHON_HOST_PLATFORM) -> dist-aarch64/mobilenet_fast-*-cp311-cp311-linux_aarch64.whl;
#  3. aarch64 wheels of numpy, safetensors, Pillow and pytest from PyPI (pip download
#     --platform ...), installed with ours into a target directory;
#  4. under qemu-aarch64 with the sysroot's python3.11: import, classify examples/coffee.png and
#     compare the top-5 with this machine's; the shipped int8 model likewise on the emulated
#     "max" (i8mm), Cortex-A76 (dot product) and Cortex-A53 (widening) CPUs, top-5 and logits bit
#     for bit; then pytest tests/test_ops.py -k "not onnx".
# Usage: scripts/build-aarch64-wheel.sh [WORKDIR]   (default build/aarch64-wheel; as root or sudo)
# Limitation: qemu-aarch64 7.2 hangs when a dynamically linked program (this python) starts a thread, so
# the checks use threads=1 and skip tests/test_threads.py.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="$(mkdir -p "${1:-build/aarch64-wheel}" && cd "${1:-build/aarch64-wheel}" && pwd)"
PY="${PYTHON:-python}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
SR="$WORK/sysroot"
T0=$SECONDS

APT_WHO=build-aarch64-wheel
# shellcheck source=scripts/lib/apt.sh
. "scripts/lib/apt.sh"
# shellcheck disable=SC2046
apt_install $(missing g++-aarch64-linux-gnu qemu-user mmdebstrap)

echo "=== arm64 Python sysroot"
# libstdc++6 and libgcc-s1: the extension module's C++ runtime. Without them in the sysroot the
# import only worked where the host happened to have arm64 libraries in /usr/lib/aarch64-linux-gnu
# (qemu falls back to host paths), so a fresh machine failed with "libstdc++.so.6: cannot open".
if [ ! -e "$SR/usr/lib/aarch64-linux-gnu/libstdc++.so.6" ]; then
  rm -rf "$SR"
  mmdebstrap --quiet --arch=arm64 --variant=extract \
    --include=python3.11,libpython3.11-dev,python3.11-venv,libstdc++6,libgcc-s1 bookworm "$SR"
fi
PYA64=(qemu-aarch64 -L "$SR" "$SR/usr/bin/python3.11")
"${PYA64[@]}" -c "import sys; print('arm64', sys.version.split()[0])"

echo "=== cross-built wheel"
rm -rf "$WORK/dist"
"$PY" -m pip install --quiet build >/dev/null 2>&1 || true
SETUPTOOLS_EXT_SUFFIX=.cpython-311-aarch64-linux-gnu.so _PYTHON_HOST_PLATFORM=linux-aarch64 \
  "$PY" -m pip wheel --quiet --no-deps -w "$WORK/dist" . \
  -C build-dir="$WORK/build" \
  -C cmake.define.CMAKE_TOOLCHAIN_FILE="$PWD/cmake/toolchains/aarch64-linux-gnu.cmake" \
  -C cmake.define.PYBIND11_USE_CROSSCOMPILING=ON \
  -C cmake.define.Python_INCLUDE_DIR="$SR/usr/include/python3.11" \
  -C cmake.define.CMAKE_CXX_FLAGS="-idirafter $SR/usr/include"
WHEEL="$(ls "$WORK"/dist/mobilenet_fast-*-linux_aarch64.whl)"
echo "$WHEEL"

echo "=== aarch64 dependencies from PyPI"
rm -rf "$WORK/deps" "$WORK/site"
PLAT=(--platform manylinux_2_28_aarch64 --platform manylinux_2_17_aarch64 --platform manylinux2014_aarch64
      --platform linux_aarch64 --only-binary=:all: --python-version 3.11 --implementation cp)
"$PY" -m pip download --quiet --dest "$WORK/deps" "${PLAT[@]}" numpy safetensors Pillow pytest
"$PY" -m pip install --quiet --no-deps --target "$WORK/site" "${PLAT[@]}" "$WORK"/deps/*.whl "$WHEEL"

echo "=== import + classify under qemu-aarch64"
WANT="$("$PY" -c "import mobilenet_fast as mf; print([p.index for p in mf.load(threads=1).classify('examples/coffee.png', top=5)])")"
GOT="$(PYTHONPATH="$WORK/site" "${PYA64[@]}" -c "
import mobilenet_fast as mf
m = mf.load(threads=1)
print([p.index for p in m.classify('examples/coffee.png', top=5)])")"
echo "x86 top-5 $WANT, aarch64 top-5 $GOT"
[ "$WANT" = "$GOT" ] || { echo "top-5 differ" >&2; exit 1; }

echo "=== int8 classify under qemu-aarch64: same top-5 and the same logits bit for bit"
INT8_CHECK="
import hashlib, mobilenet_fast as mf
m = mf.load(precision='int8', threads=1)
x = m.preprocess('examples/coffee.png')
print([p.index for p in m.classify('examples/coffee.png', top=5)], hashlib.sha256(m.logits(x).tobytes()).hexdigest()[:16])"
WANT8="$("$PY" -c "$INT8_CHECK")"
for cpu in max cortex-a76 cortex-a53; do  # i8mm, dot product, widening kernels
  GOT8="$(QEMU_CPU=$cpu PYTHONPATH="$WORK/site" "${PYA64[@]}" -c "$INT8_CHECK")"
  echo "int8: x86 $WANT8, aarch64 ($cpu) $GOT8"
  [ "$WANT8" = "$GOT8" ] || { echo "int8 top-5 or logits differ on $cpu" >&2; exit 1; }
done

echo "=== pytest under qemu-aarch64: tests/test_ops.py -k 'not onnx'"
# Only the copied test files and a neutral rootdir: the checkout's pyproject makes pytest pick up
# the source tree's package instead of the installed wheel otherwise.
rm -rf "$WORK/tests" && cp -r tests "$WORK/tests"
(cd "$WORK" && PYTHONPATH="$WORK/site" "${PYA64[@]}" -m pytest -q -p no:cacheprovider \
   -o addopts="" tests/test_ops.py -k "not onnx")
echo "=== aarch64 wheel: $((SECONDS - T0)) s"
