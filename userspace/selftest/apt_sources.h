// Facts the lab's Debian 13 root is built from and guarded by: the machine's
// Debian mirror (apt's sources) and whether a path is root's alone.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace rsttrace::lab {

// The URI of the first enabled `deb` entry for `suite` (the host's own
// release) in apt's sources, given as (file name, text) pairs of one-line
// `.list` and deb822 `.sources` files. Empty if none. Never throws.
std::string debian_mirror(const std::vector<std::pair<std::string, std::string>>& files, const std::string& suite);

// Why `path` and every directory above it could be changed by someone other
// than root (not root-owned, group or world writable, a symlink), or empty.
std::string unsafe_path_reason(const std::string& path);

}  // namespace rsttrace::lab
