// The correlator's group pool (attribute/group_pool.h): indices and event
// room are reused, and the open count follows opens and closes.
#include <catch2/catch.hpp>

#include <set>

#include "attribute/group_pool.h"

using namespace rsttrace;

TEST_CASE("group pool: a closed group's index and room serve the next", "[group_pool]") {
  GroupPool pool;
  const uint32_t a = pool.open(100, 3);
  const uint32_t b = pool.open(200, 0);
  CHECK(a != b);
  CHECK(pool.open_count() == 2);
  CHECK(pool[a].first_ns == 100);
  CHECK(pool[a].last_ns == 0);
  CHECK(pool[a].events.capacity() >= 3);
  CHECK(pool[b].events.capacity() == 0);  // a dropped SYN: no room kept
  for (int i = 0; i < 5; ++i) pool[a].events.push_back(TcpEvent{});
  const size_t room = pool[a].events.capacity();
  pool.close(a);
  CHECK(pool.open_count() == 1);
  CHECK(pool[a].events.empty());
  const uint32_t c = pool.open(300, 0);
  CHECK(c == a);  // the freed index
  CHECK(pool[c].events.empty());
  CHECK(pool[c].events.capacity() == room);  // the judged group's room, no new allocation
  CHECK(pool[c].first_ns == 300);
}

TEST_CASE("group pool: events moved out leave no room to keep; clear forgets every group", "[group_pool]") {
  GroupPool pool;
  const uint32_t a = pool.open(1, 3);
  pool[a].events.push_back(TcpEvent{});
  std::vector<TcpEvent> taken = std::move(pool[a].events);  // judged early: the events went with it
  pool.close(a);
  CHECK(pool.open(2, 0) == a);
  CHECK(pool[a].events.capacity() == 0);
  std::set<uint32_t> indices;
  for (int i = 0; i < 1000; ++i) indices.insert(pool.open(static_cast<uint64_t>(i), 3));
  CHECK(indices.size() == 1000);
  CHECK(pool.open_count() == 1001);
  pool.clear();
  CHECK(pool.open_count() == 0);
  CHECK(pool.open(5, 0) == 0);  // indices start again
  CHECK(taken.size() == 1);
}

TEST_CASE("group pool: at most a few hundred emptied vectors are kept", "[group_pool]") {
  GroupPool pool;
  std::vector<uint32_t> open;
  for (int i = 0; i < 1000; ++i) open.push_back(pool.open(0, 3));
  for (uint32_t index : open) pool.close(index);
  size_t with_room = 0;
  for (int i = 0; i < 1000; ++i) with_room += pool[pool.open(0, 0)].events.capacity() != 0;
  CHECK(with_room == 256);
}
