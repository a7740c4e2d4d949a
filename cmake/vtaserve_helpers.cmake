# Abseil-style helpers: every vtaserve target gets the same warnings and options.

set(VTASERVE_WARNINGS -Wall -Wextra -Werror -Werror=unused-result -Wno-unused-parameter)

# Sanitizers apply to every target of the build (ours, the generated protobuf
# code and GoogleTest's mains we compile), so nothing of ours runs uninstrumented.
# address: ASan + UBSan, and any report ends the process (no recovery), so a
#   test cannot pass with a report in its log.
# thread:  TSan; suppressions for the uninstrumented Debian libraries (oneTBB,
#   gRPC) live in tests/sanitizers/tsan.supp (see the comment there).
if(NOT VTASERVE_SANITIZER AND VTASERVE_ENABLE_SANITIZERS)
  set(VTASERVE_SANITIZER address)
endif()
if(VTASERVE_FUZZ AND NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "VTASERVE_FUZZ needs clang (libFuzzer): CC=clang-14 CXX=clang++-14")
endif()
set(VTASERVE_SANITIZER_FLAGS)
if(VTASERVE_FUZZ)
  # Every library is built with coverage for libFuzzer plus ASan and UBSan;
  # only the fuzz targets link the fuzzer's main (-fsanitize=fuzzer).
  set(VTASERVE_SANITIZER_FLAGS -fsanitize=fuzzer-no-link,address,undefined
      -fno-sanitize-recover=all -fno-omit-frame-pointer)
elseif(VTASERVE_SANITIZER STREQUAL "address")
  set(VTASERVE_SANITIZER_FLAGS -fsanitize=address,undefined -fno-sanitize-recover=all
      -fno-omit-frame-pointer)
elseif(VTASERVE_SANITIZER STREQUAL "thread")
  set(VTASERVE_SANITIZER_FLAGS -fsanitize=thread -fno-omit-frame-pointer)
elseif(VTASERVE_SANITIZER AND NOT VTASERVE_SANITIZER STREQUAL "off")
  message(FATAL_ERROR "VTASERVE_SANITIZER must be address, thread or off, not '${VTASERVE_SANITIZER}'")
endif()
if(VTASERVE_SANITIZER_FLAGS)
  message(STATUS "vtaserve sanitizer flags: ${VTASERVE_SANITIZER_FLAGS}")
  add_compile_options(${VTASERVE_SANITIZER_FLAGS})
  if(VTASERVE_FUZZ)
    add_link_options(-fsanitize=address,undefined)
  else()
    add_link_options(${VTASERVE_SANITIZER_FLAGS})
  endif()
endif()

# Applies project-wide compile options to one of our own targets.
function(vtaserve_target_options target)
  target_compile_options(${target} PRIVATE ${VTASERVE_WARNINGS})
endfunction()
# vtaserve_cc_library(NAME <name> SRCS ... DEPS ... [PRIVATE_DEPS ...])
# Creates vtaserve_<name> with alias vtaserve::<name>, rooted at the source tree.
function(vtaserve_cc_library)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(vtaserve_${ARG_NAME} STATIC ${ARG_SRCS})
  add_library(vtaserve::${ARG_NAME} ALIAS vtaserve_${ARG_NAME})
  target_include_directories(vtaserve_${ARG_NAME} PUBLIC ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
  target_link_libraries(vtaserve_${ARG_NAME} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  vtaserve_target_options(vtaserve_${ARG_NAME})
endfunction()

# vtaserve_cc_binary(NAME <name> SRCS ... DEPS ...)
function(vtaserve_cc_binary)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS})
  vtaserve_target_options(${ARG_NAME})
endfunction()

# vtaserve_cc_test(NAME <name> SRCS ... DEPS ... [LABELS ...])
# One executable per module, registered with ctest through gtest_discover_tests.
function(vtaserve_cc_test)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS} GTest::gmock vtaserve_test_main)
  target_include_directories(${ARG_NAME} PRIVATE ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
  vtaserve_target_options(${ARG_NAME})
  include(GoogleTest)
  gtest_discover_tests(${ARG_NAME} DISCOVERY_TIMEOUT 120
    PROPERTIES LABELS "${ARG_LABELS}"
    ENVIRONMENT "VTASERVE_SOURCE_DIR=${PROJECT_SOURCE_DIR};VTASERVE_BINARY_DIR=${PROJECT_BINARY_DIR}")
endfunction()
