#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>

#include "error.h"
#include "fd.h"
#include "output/capture_file.h"

using namespace rsttrace;
namespace fs = std::filesystem;

namespace {

bool is_open(int fd) { return fcntl(fd, F_GETFD) != -1; }

struct TempDir {
  fs::path path;
  TempDir() {
    char name[] = "/tmp/rsttrace-fd-XXXXXX";
    path = mkdtemp(name);
  }
  ~TempDir() { fs::remove_all(path); }
};

}  // namespace

TEST_CASE("an Fd closes its descriptor once, moves it, and releases it on request") {
  int raw = -1;
  {
    Fd fd(open("/dev/null", O_RDONLY | O_CLOEXEC));
    REQUIRE(fd);
    raw = fd.get();
    Fd moved(std::move(fd));
    CHECK_FALSE(fd);  // NOLINT: the moved-from owner owns nothing
    CHECK(moved.get() == raw);
    Fd assigned;
    assigned = std::move(moved);
    CHECK(assigned.get() == raw);
    CHECK(is_open(raw));
  }
  CHECK_FALSE(is_open(raw));

  Fd fd(open("/dev/null", O_RDONLY | O_CLOEXEC));
  raw = fd.release();
  CHECK_FALSE(fd);
  CHECK(is_open(raw));  // the caller owns it now
  close(raw);

  Fd replaced(open("/dev/null", O_RDONLY | O_CLOEXEC));
  const int first = replaced.get();
  replaced.reset(open("/dev/zero", O_RDONLY | O_CLOEXEC));  // opened before the first is closed: another number
  CHECK(replaced.get() != first);
  CHECK_FALSE(is_open(first));
}

TEST_CASE("a Result holds a value or a failure's reason") {
  const Result<int> value = 4;
  REQUIRE(value.ok());
  CHECK(*value == 4);
  const Result<int> failure = Failure{"failed to read counter: Operation not permitted"};
  CHECK_FALSE(failure.ok());
  CHECK(failure.reason() == "failed to read counter: Operation not permitted");
  const Result<void> done;
  CHECK(done.ok());
  const Result<void> refused = Failure{"not a regular file"};
  CHECK_FALSE(refused);
  CHECK(refused.reason() == "not a regular file");
}

TEST_CASE("replace_file writes atomically with the given mode, and leaves no temp file behind") {
  TempDir dir;
  const fs::path path = dir.path / "report.html";
  std::ofstream(path) << "old";
  const mode_t previous = umask(022);
  const Result<FileIdentity> written = replace_file(path.string(), "new contents", 0666);
  umask(previous);
  REQUIRE(written.ok());
  std::ifstream in(path);
  CHECK(std::string(std::istreambuf_iterator<char>(in), {}) == "new contents");
  CHECK((fs::status(path).permissions() & fs::perms::all) == fs::perms(0644));
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK(st.st_ino == written->ino);
  CHECK_FALSE(fs::exists(path.string() + ".tmp." + std::to_string(getpid())));

  // A directory that does not exist: a reason, no exception.
  const Result<FileIdentity> refused = replace_file((dir.path / "missing" / "x").string(), "x", 0600);
  REQUIRE_FALSE(refused.ok());
  CHECK_THAT(refused.reason(), Catch::Contains("No such file or directory"));
}
