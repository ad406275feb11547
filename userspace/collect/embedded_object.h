// The BPF object is embedded in the binary (the skeleton's 1.1 MB string,
// one copy per translation unit that includes the skeleton: the probes' and
// the session's). libbpf reads it only while opening and loading; after that
// its pages would stay in the collector's RSS for the whole run. They are
// read-only file pages, never written: dropping them is safe, and a later read
// (another probe) faults them in again from the page cache.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>

namespace rsttrace {

// Drops the whole pages inside [bytes, bytes + size) from this process's RSS.
inline void release_embedded_object_pages(const void* bytes, size_t size) {
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = reinterpret_cast<uintptr_t>(bytes);
  const uintptr_t first = (begin + page - 1) & ~(page - 1);
  const uintptr_t last = (begin + size) & ~(page - 1);
  if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);  // advice: a failure costs only RSS
}

}  // namespace rsttrace
