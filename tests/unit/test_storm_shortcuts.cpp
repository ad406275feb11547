// Loopback class storms' shortcuts: which storms get one, and what each .bss
// word holds as storms come and go (the kernel trusts a word only when it is
// exactly one storm's; bpf/storm.bpf.h).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <vector>
#include <string>

#include "attribute/storm.h"
#include "collect/storm_shortcuts.h"
#include "collect/top_counts.h"

using namespace rsttrace;

namespace {

// A loopback class storm of resets sent to refused SYNs on `port` (what a local flood makes).
rsttrace_storm_key sent_class(uint16_t port, uint8_t family = 4, uint32_t netns = 4026531840u) {
  rsttrace_storm_key key{};
  key.family = family;
  if (family == 4) key.peer_addr[0] = 127;
  else key.peer_addr[RSTTRACE_ADDR_LEN - 1] = 1;
  key.netns = netns;
  key.port = port;
  key.flags = RSTTRACE_FLAG_PACKET | RSTTRACE_FLAG_INGRESS;
  key.kind = RSTTRACE_KIND_RESET_SENT;
  key.tcp_flags = 0x02;
  key.watched_local = 1;
  key.peerless = 1;
  return key;
}

std::string id(uint16_t port) { return "storm on " + std::to_string(port); }

}  // namespace

TEST_CASE("only a loopback class storm's received twin gets a twin shortcut", "[storm_shortcuts]") {
  const rsttrace_storm_key sent = sent_class(22);
  const auto twin = loopback_twin_key(sent);
  REQUIRE(twin);
  CHECK(twin_shortcut(*twin, 5, false) == rsttrace_shortcut_of(sent.netns, 22, 4, 5));
  CHECK(twin_shortcut(*loopback_twin_key(sent_class(22, 6)), 7, false) == rsttrace_shortcut_of(sent.netns, 22, 6, 7));
  CHECK_FALSE(twin_shortcut(sent, 5, false));  // the sent storm counts peers, through the maps
  CHECK_FALSE(twin_shortcut(*twin, 5, true));  // one that counts peers needs the key's way
  rsttrace_storm_key remote = *twin;
  std::memset(remote.peer_addr, 0, sizeof(remote.peer_addr));
  CHECK_FALSE(twin_shortcut(remote, 5, false));  // a remote class: its clients are elsewhere
  rsttrace_storm_key peer = *twin;
  peer.peerless = 0;
  CHECK_FALSE(twin_shortcut(peer, 5, false));  // one peer's storm: its address is in the key
  rsttrace_storm_key local_watched = *twin;
  local_watched.watched_local = 1;
  CHECK_FALSE(twin_shortcut(local_watched, 5, false));
}

TEST_CASE("a shortcut packs netns, port, family and slot, and is never the 'several' word", "[storm_shortcuts]") {
  const uint64_t word = rsttrace_shortcut_of(0xffffffffu, 0xffff, 6, RSTTRACE_STORM_SLOTS - 1);
  CHECK(word != RSTTRACE_SHORTCUT_SEVERAL);
  CHECK((word & (RSTTRACE_STORM_SLOTS - 1)) == RSTTRACE_STORM_SLOTS - 1);
  CHECK(ShortcutTable::index_of(word) == (0xffffu & (RSTTRACE_SHORTCUTS - 1)));
  CHECK(rsttrace_shortcut_of(1, 22, 4, 0) != rsttrace_shortcut_of(1, 22, 6, 0));
  CHECK(rsttrace_shortcut_of(1, 22, 4, 0) != rsttrace_shortcut_of(2, 22, 4, 0));
  CHECK(rsttrace_shortcut_of(1, 22, 4, 0) != 0);
}

TEST_CASE("a shortcut word: empty, one storm's, or several", "[storm_shortcuts]") {
  ShortcutTable table;
  const uint64_t on22 = rsttrace_shortcut_of(1, 22, 4, 3);
  const uint64_t on86 = rsttrace_shortcut_of(1, 22 + RSTTRACE_SHORTCUTS, 4, 4);  // the same word
  const uint64_t on23 = rsttrace_shortcut_of(1, 23, 4, 5);
  const uint32_t index = ShortcutTable::index_of(on22);
  CHECK(table.word(index) == 0);
  CHECK(table.add(id(22), on22) == index);
  CHECK(table.word(index) == on22);
  CHECK(table.add(id(23), on23) == ShortcutTable::index_of(on23));
  CHECK(table.word(index) == on22);
  CHECK(table.add(id(86), on86) == index);
  CHECK(table.word(index) == RSTTRACE_SHORTCUT_SEVERAL);  // the kernel takes the maps' way
  CHECK(table.remove(id(22)) == index);
  CHECK(table.word(index) == on86);
  CHECK_FALSE(table.remove(id(22)));  // deactivate, then remove: the second finds nothing
  CHECK(table.remove(id(86)) == index);
  CHECK(table.word(index) == 0);
  CHECK(table.word(ShortcutTable::index_of(on23)) == on23);
}

// Bounded top counts (collect/top_counts.h): issue 17's collector in a flood, as the shortcuts.

TEST_CASE("the top counts of a stream, most first, as a full sort would give them", "[top_counts]") {
  std::vector<ClassPeerCount> all;
  for (uint8_t i = 0; i < 200; ++i) {
    ClassPeerCount peer;
    peer.addr[0] = static_cast<uint8_t>(i * 37);  // a shuffled order
    peer.family = 4;
    peer.prefix_len = 32;
    peer.count = (i * 7919u) % 23;  // many ties: broken by the lower address
    all.push_back(peer);
  }
  for (size_t top : {size_t{0}, size_t{1}, size_t{10}, size_t{200}, size_t{500}}) {
    TopCounts most(top);
    for (const auto& peer : all) most.offer(peer);
    const auto kept = std::move(most).take();
    auto sorted = all;
    std::sort(sorted.begin(), sorted.end(), [](const ClassPeerCount& a, const ClassPeerCount& b) {
      return a.count != b.count ? a.count > b.count : a.addr < b.addr;
    });
    sorted.resize(std::min(top, sorted.size()));
    REQUIRE(kept.size() == sorted.size());
    for (size_t i = 0; i < kept.size(); ++i) {
      CHECK(kept[i].count == sorted[i].count);
      CHECK(kept[i].addr == sorted[i].addr);
    }
  }
}
