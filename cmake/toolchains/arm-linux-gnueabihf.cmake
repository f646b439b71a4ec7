# Cross-compiling for 32-bit ARM Linux (armv7-a, hard-float ABI) with Debian's cross compiler
# (apt-get install g++-arm-linux-gnueabihf). Tests run transparently under qemu-user:
#   cmake -S . -B build/armv7 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/arm-linux-gnueabihf.cmake \
#         -DMBF_BUILD_TESTS=ON && cmake --build build/armv7 && ctest --test-dir build/armv7
# The baseline is ARMv7-A with the hard-float ABI and no NEON: `-march=armv7-a+fp` (VFPv3-D16,
# what Debian armhf assumes; GCC refuses -mfloat-abi=hard with a bare -march=armv7-a, "lacks an
# FPU"). Sources that use NEON add -mfpu=neon (or neon-vfpv4) on their own, so the library still
# runs on ARMv7 cores without NEON and picks NEON kernels at run time where there is NEON.
# Override the triple's install prefix with -DMBF_CROSS_ROOT=... (default /usr/arm-linux-gnueabihf).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR armv7)

set(MBF_CROSS_TRIPLE arm-linux-gnueabihf)
if(NOT MBF_CROSS_ROOT)
  set(MBF_CROSS_ROOT /usr/${MBF_CROSS_TRIPLE})
endif()

set(CMAKE_C_COMPILER ${MBF_CROSS_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${MBF_CROSS_TRIPLE}-g++)
set(CMAKE_C_FLAGS_INIT "-march=armv7-a+fp -mfloat-abi=hard")
set(CMAKE_CXX_FLAGS_INIT "-march=armv7-a+fp -mfloat-abi=hard")

set(CMAKE_FIND_ROOT_PATH ${MBF_CROSS_ROOT} /)
set(CMAKE_LIBRARY_ARCHITECTURE ${MBF_CROSS_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

set(CMAKE_CROSSCOMPILING_EMULATOR qemu-arm;-L;${MBF_CROSS_ROOT})
