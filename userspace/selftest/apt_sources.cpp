#include "selftest/apt_sources.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <sstream>

#include "error.h"

namespace rsttrace::lab {
namespace {

std::vector<std::string> words(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string word;
  while (in >> word) out.push_back(word);
  return out;
}

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t end = std::min(text.find(separator, start), text.size());
    if (end > start) out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

bool ends_with(const std::string& text, const std::string& tail) {
  return text.size() >= tail.size() && text.compare(text.size() - tail.size(), tail.size(), tail) == 0;
}

// One-line format: deb [options] URI suite [component...]
std::string mirror_of_list(const std::string& text, const std::string& suite) {
  for (const auto& raw : split(text, '\n')) {
    std::string line = raw.substr(0, raw.find('#'));
    if (const size_t open = line.find('['); open != std::string::npos) {
      const size_t close = line.find(']', open);
      if (close == std::string::npos) continue;
      line.erase(open, close - open + 1);
    }
    const auto fields = words(line);
    if (fields.size() >= 3 && fields[0] == "deb" && fields[2] == suite) return fields[1];
  }
  return "";
}

// deb822 format: paragraphs of "Field: value" (continuation lines start with a space).
std::string mirror_of_sources(const std::string& text, const std::string& suite) {
  std::string types, uris, suites, enabled = "yes";
  auto paragraph_mirror = [&]() -> std::string {
    const auto type_list = words(types), suite_list = words(suites), uri_list = words(uris);
    const bool deb = std::find(type_list.begin(), type_list.end(), "deb") != type_list.end();
    const bool has_suite = std::find(suite_list.begin(), suite_list.end(), suite) != suite_list.end();
    if (deb && has_suite && enabled != "no" && !uri_list.empty()) return uri_list.front();
    return "";
  };
  std::string* last = nullptr;
  for (size_t start = 0; start <= text.size();) {
    const size_t end = std::min(text.find('\n', start), text.size());
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string::npos) {  // end of a paragraph
      if (std::string uri = paragraph_mirror(); !uri.empty()) return uri;
      types.clear(), uris.clear(), suites.clear(), enabled = "yes", last = nullptr;
      continue;
    }
    if (line[0] == '#') continue;
    if ((line[0] == ' ' || line[0] == '\t') && last) {
      *last += " " + line;
      continue;
    }
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string field = line.substr(0, colon), value = line.substr(colon + 1);
    std::transform(field.begin(), field.end(), field.begin(), [](unsigned char c) { return std::tolower(c); });
    last = field == "types" ? &types : field == "uris" ? &uris : field == "suites" ? &suites : field == "enabled" ? &enabled : nullptr;
    if (last) *last = value;
    if (field == "enabled") enabled = words(value).empty() ? "" : words(value).front();
  }
  return paragraph_mirror();
}

}  // namespace

std::string debian_mirror(const std::vector<std::pair<std::string, std::string>>& files, const std::string& suite) {
  if (suite.empty()) return "";
  for (const auto& [name, text] : files) {
    const std::string uri = ends_with(name, ".sources") ? mirror_of_sources(text, suite) : mirror_of_list(text, suite);
    if (!uri.empty()) return uri;
  }
  return "";
}

std::string unsafe_path_reason(const std::string& path) {
  if (path.empty() || path[0] != '/') return path + " is not an absolute path";
  std::string prefix;
  for (const auto& part : split(path, '/')) {
    if (part == "." || part == "..") return path + " has a . or .. component";
    prefix += "/" + part;
  }
  for (std::string at = prefix.empty() ? "/" : prefix;;) {
    struct stat st {};
    if (lstat(at.c_str(), &st) != 0) return "cannot stat " + at + ": " + errno_text(errno);
    if (!S_ISDIR(st.st_mode)) return at + " is not a directory (a symlink?)";
    if (st.st_uid != 0) return at + " is not owned by root";
    if (st.st_mode & (S_IWGRP | S_IWOTH)) return at + " is group or world writable";
    if (at == "/") return "";
    const size_t slash = at.rfind('/');
    at = slash == 0 ? "/" : at.substr(0, slash);
  }
}

}  // namespace rsttrace::lab
