// The lab's Debian mirror comes from the machine's own apt sources
// (selftest/apt_sources.h), and its cache must be root's alone.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "selftest/apt_sources.h"

using namespace rsttrace::lab;

TEST_CASE("lab mirror: the deb822 entry of the host's release, not security or updates", "[lab]") {
  const std::string sources =
      "Types: deb\n# http://snapshot.debian.org/archive/debian/20250520T000000Z\nURIs: http://mirror.example/debian\n"
      "Suites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
      "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\nComponents: main\n";
  CHECK(debian_mirror({{"debian.sources", sources}}, "bookworm") == "http://mirror.example/debian");
  CHECK(debian_mirror({{"debian.sources", sources}}, "bookworm-security") == "http://mirror.example/debian-security");
  CHECK(debian_mirror({{"debian.sources", sources}}, "trixie").empty());
  CHECK(debian_mirror({{"debian.sources", sources}}, "").empty());
  // Disabled entries and deb-src are not mirrors to build from.
  CHECK(debian_mirror({{"a.sources", "Types: deb\nURIs: http://off/debian\nSuites: bookworm\nEnabled: no\n\n"
                                     "Types: deb-src\nURIs: http://src/debian\nSuites: bookworm\n\n"
                                     "Types: deb-src deb\nURIs:\n http://continued/debian\nSuites: bookworm\n"}},
                      "bookworm") == "http://continued/debian");
}

TEST_CASE("lab mirror: one-line sources, options and comments", "[lab]") {
  const std::string list = "# deb http://commented/debian bookworm main\n"
                           "deb-src http://src/debian bookworm main\n"
                           "deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main # note\n";
  CHECK(debian_mirror({{"sources.list", list}}, "bookworm") == "http://mirror.example/debian");
  // The first file that has one wins, in the order given.
  CHECK(debian_mirror({{"sources.list", "deb http://first/debian bookworm main\n"}, {"x.list", list}}, "bookworm") ==
        "http://first/debian");
  for (const char* junk : {"deb", "deb [", "deb [x] ", "\n\n\n", "Types: deb\nURIs\nSuites bookworm", ":\n :\n"})
    CHECK(debian_mirror({{"j.list", junk}, {"j.sources", junk}}, "bookworm").empty());
}

TEST_CASE("lab cache: every component root's, not group or world writable", "[lab]") {
  if (geteuid() != 0) return;  // needs root to own the directories
  CHECK(unsafe_path_reason("/").empty());
  CHECK(unsafe_path_reason("/usr/bin").empty());
  CHECK(unsafe_path_reason("/tmp").find("group or world writable") != std::string::npos);
  CHECK(!unsafe_path_reason("relative/path").empty());
  CHECK(!unsafe_path_reason("/usr/../tmp").empty());
  CHECK(unsafe_path_reason("/nonexistent-rsttrace").find("cannot stat") != std::string::npos);
  // Below a world-writable directory, even a root-owned 0700 one is refused.
  char pattern[] = "/tmp/rsttrace-unit-XXXXXX";
  REQUIRE(mkdtemp(pattern));
  const std::string dir = pattern;
  chmod(dir.c_str(), 0700);
  CHECK(unsafe_path_reason(dir).find("/tmp is group or world writable") != std::string::npos);
  // A symlink in the path is refused, wherever it points.
  const std::string link = dir + "/link";
  REQUIRE(symlink("/usr", link.c_str()) == 0);
  CHECK(!unsafe_path_reason(link + "/bin").empty());
  std::filesystem::remove_all(dir);
}
