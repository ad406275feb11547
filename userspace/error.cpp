#include "error.h"

#include <cstdlib>
#include <cstring>

namespace rsttrace {

std::string errno_text(int error_number) {
  return std::strerror(std::abs(error_number));
}

}  // namespace rsttrace
