# Abseil-style helpers: every vtaserve target gets the same warnings and options.

set(VTASERVE_WARNINGS -Wall -Wextra -Werror -Werror=unused-result -Wno-unused-parameter)
set(VTASERVE_SANITIZER_FLAGS -fsanitize=address,undefined -fno-omit-frame-pointer)

# Applies project-wide compile options to one of our own targets.
function(vtaserve_target_options target)
  target_compile_options(${target} PRIVATE ${VTASERVE_WARNINGS})
  if(VTASERVE_ENABLE_SANITIZERS)
    target_compile_options(${target} PRIVATE ${VTASERVE_SANITIZER_FLAGS})
    target_link_options(${target} PRIVATE ${VTASERVE_SANITIZER_FLAGS})
  endif()
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
