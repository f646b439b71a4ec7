# Cross-compiling for 64-bit ARM Linux (aarch64) with Debian's cross compiler
# (apt-get install g++-aarch64-linux-gnu). Tests run transparently under qemu-user:
#   cmake -S . -B build/aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake \
#         -DMBF_BUILD_TESTS=ON && cmake --build build/aarch64 && ctest --test-dir build/aarch64
# Override the triple's install prefix with -DMBF_CROSS_ROOT=... (default /usr/aarch64-linux-gnu).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(MBF_CROSS_TRIPLE aarch64-linux-gnu)
if(NOT MBF_CROSS_ROOT)
  set(MBF_CROSS_ROOT /usr/${MBF_CROSS_TRIPLE})
endif()

set(CMAKE_C_COMPILER ${MBF_CROSS_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${MBF_CROSS_TRIPLE}-g++)

# Libraries, headers and CMake packages come from the target's prefix (and the multiarch
# directories of the host system, where Debian puts arch-qualified -dev packages such as
# libbenchmark-dev:arm64); programs come from the host.
# "/" adds the host's multiarch directories (/usr/lib/<triple>) for arch-qualified -dev packages.
set(CMAKE_FIND_ROOT_PATH ${MBF_CROSS_ROOT} /)
set(CMAKE_LIBRARY_ARCHITECTURE ${MBF_CROSS_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# The C++ test programs are linked statically (cpp/tests/CMakeLists.txt reads this): Debian's
# qemu-aarch64 7.2 hangs when a dynamically linked aarch64 program creates a thread, while a
# static one runs fine. Shared libraries (the Python module) and the benchmarks are unaffected.
set(MBF_STATIC_TEST_EXES ON CACHE BOOL "link the C++ test programs statically (qemu-aarch64 threads)")

# ctest (and gtest_discover_tests' PRE_TEST listing) run target binaries through qemu, with the
# cross prefix as the dynamic loader's root (libstdc++, libc).
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64;-L;${MBF_CROSS_ROOT})
