# torch.cmake: finds libtorch (>= 2.9) and decides whether this is the CUDA build. Included by CMakeLists.txt.
#
#   libtorch: from CMAKE_PREFIX_PATH — scripts/setup.sh passes .venv's torch.utils.cmake_prefix_path; one given by
#             the user (a GPU machine's own torch, an unpacked libtorch zip) wins.
#   CUDA:     -DNANOCHAT_CUDA=AUTO (default): the CUDA build when libtorch has CUDA and a CUDA toolkit (nvcc) is
#             found; ON: the same, but an error when either is missing; OFF: CPU only, even from a CUDA libtorch.
#             Kernels are compiled for NANOCHAT_CUDA_ARCHS (default 80;90, plus 100;120 with CUDA >= 12.8; 120
#             also runs on GB10's sm_121).
#
# Sets TORCH_LIBRARIES (what to link), TORCH_VERSION_STRING, NANOCHAT_CUDA_BUILD (ON/OFF), NANOCHAT_CUDA_ARCHS.
# Without a toolkit, a CUDA libtorch (PyPI's torch wheel is one) is linked as its CPU part alone (libtorch_cpu,
# libc10), because libtorch's own CMake config refuses to load a CUDA build where no toolkit is installed.

set(NANOCHAT_CUDA AUTO CACHE STRING "CUDA build: AUTO (when nvcc and a CUDA libtorch are found), ON, OFF")
set_property(CACHE NANOCHAT_CUDA PROPERTY STRINGS AUTO ON OFF)

find_path(NANOCHAT_TORCH_CONFIG_DIR TorchConfig.cmake PATH_SUFFIXES Torch share/cmake/Torch NO_CACHE)
if(NOT NANOCHAT_TORCH_CONFIG_DIR)
  message(FATAL_ERROR "libtorch not found: run bash scripts/setup.sh (it installs torch into .venv/), or pass "
                      "-DCMAKE_PREFIX_PATH=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')")
endif()
get_filename_component(NANOCHAT_TORCH_ROOT "${NANOCHAT_TORCH_CONFIG_DIR}/../../.." ABSOLUTE)
file(STRINGS "${NANOCHAT_TORCH_CONFIG_DIR}/TorchConfigVersion.cmake" _torch_version_line
     REGEX "set\\(PACKAGE_VERSION ")
string(REGEX MATCH "[0-9]+\\.[0-9]+(\\.[0-9]+)?" TORCH_VERSION_STRING "${_torch_version_line}")
if(TORCH_VERSION_STRING VERSION_LESS 2.9)
  message(FATAL_ERROR "libtorch ${TORCH_VERSION_STRING} at ${NANOCHAT_TORCH_ROOT} is too old: nanochat-cpp needs "
                      ">= 2.9 (bash scripts/setup.sh installs the pinned one from requirements.txt)")
endif()
set(_torch_has_cuda OFF)
if(EXISTS "${NANOCHAT_TORCH_ROOT}/lib/libtorch_cuda.so")
  set(_torch_has_cuda ON)
endif()

set(NANOCHAT_CUDA_BUILD OFF)
if(_torch_has_cuda AND NOT NANOCHAT_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(NANOCHAT_CUDA_BUILD ON)
  elseif(NANOCHAT_CUDA STREQUAL "ON")
    message(FATAL_ERROR "-DNANOCHAT_CUDA=ON but no CUDA toolkit (nvcc) was found: put nvcc on PATH or set CUDACXX")
  endif()
elseif(NANOCHAT_CUDA STREQUAL "ON")
  message(FATAL_ERROR "-DNANOCHAT_CUDA=ON but libtorch ${TORCH_VERSION_STRING} at ${NANOCHAT_TORCH_ROOT} has no CUDA")
endif()

if(NANOCHAT_CUDA_BUILD)
  execute_process(COMMAND ${CMAKE_CUDA_COMPILER} --version OUTPUT_VARIABLE _nvcc_out)
  string(REGEX MATCH "release ([0-9]+\\.[0-9]+)" _ "${_nvcc_out}")
  set(_nvcc_version ${CMAKE_MATCH_1})
  if(NOT NANOCHAT_CUDA_ARCHS)
    set(NANOCHAT_CUDA_ARCHS 80 90)
    if(_nvcc_version VERSION_GREATER_EQUAL 12.8)
      list(APPEND NANOCHAT_CUDA_ARCHS 100 120)
    endif()
  endif()
  set(NANOCHAT_CUDA_ARCHS "${NANOCHAT_CUDA_ARCHS}" CACHE STRING "CUDA architectures our kernels are built for")
  # libtorch's CMake reads TORCH_CUDA_ARCH_LIST ("8.0;9.0"); without it, it probes for a GPU and falls back to a list
  # that includes architectures CUDA 13 no longer has. Our own kernels take CUDA_ARCHITECTURES per target instead.
  set(TORCH_CUDA_ARCH_LIST "")
  foreach(a ${NANOCHAT_CUDA_ARCHS})
    string(REGEX REPLACE "([0-9]+)([0-9])$" "\\1.\\2" _dotted ${a})
    list(APPEND TORCH_CUDA_ARCH_LIST ${_dotted})
  endforeach()
  set(CMAKE_CUDA_STANDARD 17)  # CMake 3.25 (Debian 12) knows no C++20 flag for nvcc; the kernels need none
  # libtorch's CMake enables CUDA itself, then warns that it ignores CMAKE_CUDA_ARCHITECTURES (we set ours per target).
  find_package(Torch REQUIRED)
  message(STATUS "nanochat: CUDA build (nvcc ${_nvcc_version}, libtorch ${TORCH_VERSION_STRING}), kernels for "
                 "sm_${NANOCHAT_CUDA_ARCHS}")
elseif(_torch_has_cuda)
  # The CPU half of a CUDA libtorch, as libtorch's own targets would give it: headers, libtorch_cpu and libc10.
  add_library(nanochat_libtorch_cpu INTERFACE)
  target_include_directories(nanochat_libtorch_cpu SYSTEM INTERFACE
    ${NANOCHAT_TORCH_ROOT}/include ${NANOCHAT_TORCH_ROOT}/include/torch/csrc/api/include)
  target_link_libraries(nanochat_libtorch_cpu INTERFACE
    ${NANOCHAT_TORCH_ROOT}/lib/libtorch_cpu.so ${NANOCHAT_TORCH_ROOT}/lib/libc10.so)
  target_compile_definitions(nanochat_libtorch_cpu INTERFACE _GLIBCXX_USE_CXX11_ABI=1)
  set(TORCH_LIBRARIES nanochat_libtorch_cpu)
  set(TORCH_INCLUDE_DIRS ${NANOCHAT_TORCH_ROOT}/include)
  message(STATUS "nanochat: CPU build from the CUDA libtorch ${TORCH_VERSION_STRING} at ${NANOCHAT_TORCH_ROOT} "
                 "(no CUDA toolkit found, or -DNANOCHAT_CUDA=OFF)")
else()
  find_package(Torch REQUIRED)
  message(STATUS "nanochat: CPU build (libtorch ${TORCH_VERSION_STRING} has no CUDA)")
endif()

# PyPI's libtorch.so and libtorch_cpu.so export an unversioned copy of parts of std::filesystem. Linked ahead of
# libstdc++, they would take our own calls (std::filesystem::remove_all crashes there); naming libstdc++ first makes
# the linker bind them to libstdc++'s versioned symbols.
add_link_options("LINKER:--push-state,--no-as-needed" "-lstdc++" "LINKER:--pop-state")
