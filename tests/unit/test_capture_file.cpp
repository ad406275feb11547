#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
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

namespace {

struct stat regular_file(uid_t owner, nlink_t links = 1) {
  struct stat st {};
  st.st_mode = S_IFREG | 0600;
  st.st_uid = owner;
  st.st_nlink = links;
  return st;
}

std::string read_text(const fs::path& file) {
  std::ifstream in(file);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_text(const fs::path& file, const std::string& text) { std::ofstream(file) << text; }

}  // namespace

TEST_CASE("only a regular file with one link, owned by root or the collector's user, is written") {
  CHECK(check_written_file(regular_file(0), 995).ok());
  CHECK(check_written_file(regular_file(995), 995).ok());
  CHECK_THAT(check_written_file(regular_file(65534), 995).reason(), Catch::Contains("owned by uid 65534"));
  CHECK_THAT(check_written_file(regular_file(0, 2), 995).reason(), Catch::Contains("2 links"));
  struct stat fifo = regular_file(0);
  fifo.st_mode = S_IFIFO | 0600;
  CHECK(check_written_file(fifo, 0).reason() == "not a regular file");
  fifo.st_mode = S_IFCHR | 0600;
  CHECK(check_written_file(fifo, 0).reason() == "not a regular file");
}

TEST_CASE("the capture path is never followed through a symlink, and a FIFO never blocks") {
  TempDir dir;
  const fs::path path = dir.path / "capture.jsonl";
  const fs::path target = dir.path / "target";
  write_text(target, "keep me\n");
  fs::permissions(target, fs::perms(0640));

  fs::create_symlink(target, path);
  OpenedFile opened = open_capture_path(path, CaptureOpen::Append, 1, geteuid());
  CHECK_FALSE(opened.ok());
  CHECK_THAT(opened.reason(), Catch::Contains("symbolic link"));
  CHECK_THROWS_WITH(CaptureFile(path.string(), 0, 1), Catch::Contains("a symbolic link"));
  CHECK(read_text(target) == "keep me\n");
  CHECK((fs::status(target).permissions() & fs::perms::all) == fs::perms(0640));
  fs::remove(path);

  REQUIRE(mkfifo(path.c_str(), 0600) == 0);
  opened = open_capture_path(path, CaptureOpen::Append, 1, geteuid());  // no reader: ENXIO, not a hang
  CHECK_FALSE(opened.ok());
  CHECK_THAT(opened.reason(), Catch::Contains("not a regular file"));
  const int reader = open(path.c_str(), O_RDONLY | O_NONBLOCK);  // with one: opened, then refused by fstat
  REQUIRE(reader >= 0);
  opened = open_capture_path(path, CaptureOpen::Append, 1, geteuid());
  CHECK_FALSE(opened.ok());
  CHECK(opened.reason() == "not a regular file");
  close(reader);
  fs::remove(path);

  fs::create_hard_link(target, path);
  opened = open_capture_path(path, CaptureOpen::Append, 1, geteuid());
  CHECK_FALSE(opened.ok());
  CHECK_THAT(opened.reason(), Catch::Contains("2 links"));
  CHECK(read_text(target) == "keep me\n");
}

TEST_CASE("a file another user owns is refused, the collector's own is made 0600") {
  if (geteuid() != 0) {
    WARN("not run: chown needs root");
    return;
  }
  TempDir dir;
  const fs::path path = dir.path / "capture.jsonl";
  write_text(path, "");
  REQUIRE(chown(path.c_str(), 65534, 65534) == 0);
  fs::permissions(path, fs::perms(0644));
  OpenedFile opened = open_capture_path(path, CaptureOpen::Append, 1, 995);
  CHECK_FALSE(opened.ok());
  CHECK_THAT(opened.reason(), Catch::Contains("owned by uid 65534"));
  opened = open_capture_path(path, CaptureOpen::Append, 1, 65534);
  REQUIRE(opened.ok());
  CHECK(opened->get() >= 0);
  CHECK((fs::status(path).permissions() & fs::perms::all) == fs::perms(0600));
}

TEST_CASE("a refused reopen counts failed writes, retries once a second, and recovers") {
  TempDir dir;
  const fs::path path = dir.path / "capture.jsonl";
  CaptureFile capture(path.string(), 0, 1);
  REQUIRE(capture.write_line("before"));
  fs::rename(path, dir.path / "moved");
  REQUIRE(mkfifo(path.c_str(), 0600) == 0);
  CHECK_FALSE(capture.reopen());  // SIGHUP onto a FIFO: refused at once
  for (int i = 0; i < 100; ++i) CHECK_FALSE(capture.write_line("lost"));
  CHECK(capture.failed_writes() == 100);

  int opens = 0;
  capture.set_opener([&](CaptureOpen how) {
    ++opens;
    return open_capture_path(path.string(), how, 1, geteuid());
  });
  CHECK_FALSE(capture.reopen());
  for (int i = 0; i < 100; ++i) CHECK_FALSE(capture.write_line("lost"));
  CHECK(opens == 1);  // not one open per line: the next try is a second away
  fs::remove(path);
  CHECK(capture.reopen());
  CHECK(capture.write_line("after"));
  CHECK(capture.failed_writes() == 200);
  CHECK(read_text(path) == "after\n");
  CHECK(read_text(dir.path / "moved") == "before\n");
}

TEST_CASE("rotation creates the new file exclusively; what appears there is refused") {
  TempDir dir;
  const fs::path path = dir.path / "capture.jsonl";
  write_text(path, "old\n");
  OpenedFile opened = open_capture_path(path, CaptureOpen::Rotate, 2, geteuid());
  REQUIRE(opened.ok());
  CHECK(opened->get() >= 0);
  CHECK(read_text(path.string() + ".1") == "old\n");
  CHECK(fs::file_size(path) == 0);
  // keep 0: the file is removed, then created anew; a symlink put there meanwhile is not followed.
  const fs::path target = dir.path / "target";
  write_text(target, "keep me\n");
  opened = open_capture_path(path, CaptureOpen::Rotate, 0, geteuid());
  REQUIRE(opened.ok());
  CHECK(opened->get() >= 0);
  fs::remove(path);
  fs::create_symlink(target, path);
  opened = open_capture_path(path, CaptureOpen::Append, 0, geteuid());
  CHECK_FALSE(opened.ok());
  CHECK(read_text(target) == "keep me\n");
}

TEST_CASE("the ready file replaces what is at its path without following it, and removes only itself") {
  TempDir dir;
  const fs::path path = dir.path / "ready";
  const fs::path target = dir.path / "target";
  write_text(target, "keep me\n");
  fs::create_symlink(target, path);
  Result<FileIdentity> ready = write_ready_file(path.string(), 4242);
  REQUIRE(ready.ok());
  const FileIdentity written = *ready;
  CHECK(read_text(path) == "4242\n");
  CHECK_FALSE(fs::is_symlink(path));
  CHECK(read_text(target) == "keep me\n");
  CHECK((fs::status(path).permissions() & fs::perms::all) == fs::perms(0600));
  CHECK_FALSE(fs::exists(path.string() + ".tmp." + std::to_string(getpid())));

  fs::remove(path);
  write_text(path, "someone else's\n");  // replaced since: left alone
  CHECK_FALSE(remove_ready_file(path.string(), written));
  CHECK(fs::exists(path));
  fs::remove(path);
  ready = write_ready_file(path.string(), 4242);
  REQUIRE(ready.ok());
  CHECK(remove_ready_file(path.string(), *ready));
  CHECK_FALSE(fs::exists(path));
}
