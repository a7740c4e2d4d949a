// The main of every GoogleTest binary: gives each test process its own
// scratch folder. ctest runs every discovered test in its own process, in
// parallel, so a fixed path under the shared temp folder (a PKI, a model
// repository) would be written and deleted by two processes at once. Here
// TEST_TMPDIR (which ::testing::TempDir() returns) is pointed at a fresh
// folder named after the process, created before any test runs and removed
// after the last one (kept when VTASERVE_KEEP_TEST_TMPDIR is set).
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>

#include "gtest/gtest.h"

int main(int argc, char** argv) {
  const char* base = getenv("TEST_TMPDIR");
  if (base == nullptr || *base == '\0') base = getenv("TMPDIR");
  if (base == nullptr || *base == '\0') base = "/tmp";
  std::string tmpl = std::string(base) + "/vtaserve-test-" +
                     std::to_string(getpid()) + "-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) {
    std::perror(("mkdtemp " + tmpl).c_str());
    return 2;
  }
  setenv("TEST_TMPDIR", tmpl.c_str(), 1);
  ::testing::InitGoogleTest(&argc, argv);
  const int rc = RUN_ALL_TESTS();
  if (getenv("VTASERVE_KEEP_TEST_TMPDIR") == nullptr) {
    std::error_code ignored;
    std::filesystem::remove_all(tmpl, ignored);
  }
  return rc;
}
