// The lab's Debian 13 userland: a trixie root built once with debootstrap
// from the machine's own Debian mirror, cached in a root-only directory, and
// used read-only (the lower layer of each sshd's overlay, selftest/lab.h).
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "fd.h"

namespace rsttrace::lab {

// What the root holds: the brief's debootstrap line, and issue 16's front-ends
// (ufw, ipset, sshguard, firewalld with its dbus; libpam-systemd provides the
// logind that firewalld's polkitd depends on in trixie: debootstrap does not
// choose among alternatives).
inline constexpr const char* kDebian13Packages =
    "openssh-server,openssh-client,fail2ban,nftables,iptables,python3,iproute2,procps,ufw,ipset,sshguard,firewalld,dbus,libpam-systemd";

// The Debian 13 root, ready for use while this object lives: it holds a
// shared lock on the cache, so no concurrent selftest rebuilds it meanwhile.
class Debian13Root {
 public:
  // Validates the cached root, builds it when missing or invalid (or when
  // `rebuild`); on failure path() is empty and reason() says why.
  Debian13Root(const std::string& cache, bool rebuild, bool verbose);
  const std::string& path() const { return path_; }
  const std::string& reason() const { return reason_; }
  bool built() const { return built_; }

 private:
  std::string build(const std::string& cache, bool verbose);
  Fd lock_;
  std::string path_, reason_;
  bool built_ = false;
};

}  // namespace rsttrace::lab
