#include "app/startup_pages.h"

#include <elf.h>
#include <link.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>

namespace rsttrace {
namespace {

// An object with text relocations has written into its "read-only" pages
// (private copies: dropping them would lose the relocations). None of
// Debian's x86-64 or arm64 builds have them; such an object is left alone.
bool has_text_relocations(const dl_phdr_info* info) {
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& segment = info->dlpi_phdr[i];
    if (segment.p_type != PT_DYNAMIC) continue;
    for (auto* entry = reinterpret_cast<const ElfW(Dyn)*>(info->dlpi_addr + segment.p_vaddr); entry->d_tag != DT_NULL;
         ++entry)
      if (entry->d_tag == DT_TEXTREL || (entry->d_tag == DT_FLAGS && (entry->d_un.d_val & DF_TEXTREL))) return true;
  }
  return false;
}

int release_object(dl_phdr_info* info, size_t, void*) {
  const uintptr_t vdso = getauxval(AT_SYSINFO_EHDR);
  if ((vdso && info->dlpi_addr == vdso) || has_text_relocations(info)) return 0;
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& segment = info->dlpi_phdr[i];
    if (segment.p_type != PT_LOAD || (segment.p_flags & PF_W)) continue;
    // Whole pages inside the segment only: a page it shares with a writable
    // neighbour (an unaligned layout) is mapped by that neighbour.
    const uintptr_t begin = info->dlpi_addr + segment.p_vaddr;
    const uintptr_t first = (begin + page - 1) & ~(page - 1);
    const uintptr_t last = (begin + segment.p_filesz) & ~(page - 1);
    if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
  }
  return 0;
}

}  // namespace

void release_startup_pages() { dl_iterate_phdr(release_object, nullptr); }

}  // namespace rsttrace
