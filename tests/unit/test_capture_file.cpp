#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>

#include "error.h"
#include "output/capture_file.h"

using namespace rsttrace;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("rsttrace-unit-" + std::to_string(::getpid()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
};

size_t lines_in(const fs::path& file) {
  std::ifstream in(file);
  std::string line;
  size_t count = 0;
  while (std::getline(in, line)) ++count;
  return count;
}

}  // namespace

TEST_CASE("sizes take K, M and G") {
  CHECK(parse_size("4096") == 4096);
  CHECK(parse_size("8K") == 8192);
  CHECK(parse_size("100M") == 100ULL << 20);
  CHECK(parse_size("1G") == 1ULL << 30);
  CHECK_THROWS_AS(parse_size("ten"), Error);
  CHECK_THROWS_AS(parse_size("5T"), Error);
}

TEST_CASE("a capture file rotates by size, keeps N files of whole lines, mode 0600") {
  TempDir dir;
  const fs::path path = dir.path / "capture.jsonl";
  const std::string line(99, 'x');  // 100 bytes with its newline
  {
    CaptureFile capture(path.string(), 1000, 2);
    for (int i = 0; i < 35; ++i) REQUIRE(capture.write_line(line));
    CHECK(capture.rotations() == 3);
    CHECK(capture.failed_writes() == 0);
  }
  CHECK(lines_in(path) == 5);
  CHECK(lines_in(path.string() + ".1") == 10);
  CHECK(lines_in(path.string() + ".2") == 10);
  CHECK_FALSE(fs::exists(path.string() + ".3"));
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
}

TEST_CASE("a capture file that cannot be opened is one clear error") {
  CHECK_THROWS_WITH(CaptureFile("/nonexistent-dir/capture.jsonl", 0, 1),
                    Catch::Contains("failed to open capture file /nonexistent-dir/capture.jsonl"));
}
