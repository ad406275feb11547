#include "text/escape.h"

#include <arpa/inet.h>

namespace rsttrace {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

char* put_ipv4(char* out, const uint8_t* addr) {  // inet_ntop's "%u.%u.%u.%u"
  for (int i = 0; i < 4; ++i) {
    if (i) *out++ = '.';
    out = put_decimal(out, addr[i]);
  }
  return out;
}

// inet_ntop(AF_INET6) as glibc writes it: the longest run (the first of equal
// ones) of two or more zero groups becomes "::", groups in lowercase hex without
// leading zeros, and ::a.b.c.d / ::ffff:a.b.c.d for IPv4-compatible and -mapped.
char* put_ipv6(char* out, const uint8_t* addr) {
  unsigned words[8];
  for (int i = 0; i < 8; ++i) words[i] = static_cast<unsigned>(addr[2 * i]) << 8 | addr[2 * i + 1];
  int best_base = -1, best_len = 0, cur_base = -1, cur_len = 0;
  for (int i = 0; i < 8; ++i) {
    if (words[i] == 0) {
      if (cur_base == -1) cur_base = i, cur_len = 1;
      else ++cur_len;
    } else if (cur_base != -1) {
      if (best_base == -1 || cur_len > best_len) best_base = cur_base, best_len = cur_len;
      cur_base = -1;
    }
  }
  if (cur_base != -1 && (best_base == -1 || cur_len > best_len)) best_base = cur_base, best_len = cur_len;
  if (best_base != -1 && best_len < 2) best_base = -1;
  for (int i = 0; i < 8; ++i) {
    if (best_base != -1 && i >= best_base && i < best_base + best_len) {
      if (i == best_base) *out++ = ':';
      continue;
    }
    if (i != 0) *out++ = ':';
    if (i == 6 && best_base == 0 && (best_len == 6 || (best_len == 5 && words[5] == 0xffff)))
      return put_ipv4(out, addr + 12);
    bool leading = true;
    for (int shift = 12; shift >= 0; shift -= 4) {
      const unsigned digit = (words[i] >> shift) & 0xf;
      if (leading && digit == 0 && shift) continue;
      leading = false;
      *out++ = kHexDigits[digit];
    }
  }
  if (best_base != -1 && best_base + best_len == 8) *out++ = ':';
  return out;
}

}  // namespace

// Decimal digits of `value` at `out`; returns the end.
char* put_decimal(char* out, unsigned value) {
  char digits[10];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value);
  while (n) *out++ = digits[--n];
  return out;
}

char* put_address(char* out, int family, const std::array<uint8_t, 16>& addr) {
  return family == 6 ? put_ipv6(out, addr.data()) : put_ipv4(out, addr.data());
}

void append_escaped_untrusted(std::string& out, std::string_view bytes) {
  size_t plain = 0;  // start of the run of bytes that stay as they are
  for (size_t i = 0; i < bytes.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') continue;
    out.append(bytes.data() + plain, i - plain);
    plain = i + 1;
    if (c == '\\') {
      out.append("\\\\", 2);
    } else {
      const char hex[4] = {'\\', 'x', kHexDigits[c >> 4], kHexDigits[c & 0xf]};
      out.append(hex, sizeof(hex));
    }
  }
  out.append(bytes.data() + plain, bytes.size() - plain);
}

std::string escape_untrusted(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  append_escaped_untrusted(out, bytes);
  return out;
}

void append_address(std::string& out, int family, const std::array<uint8_t, 16>& addr) {
  char text[INET6_ADDRSTRLEN];
  out.append(text, static_cast<size_t>(put_address(text, family, addr) - text));
}

std::string format_address(int family, const std::array<uint8_t, 16>& addr) {
  return appended(append_address, family, addr);
}

void append_endpoint(std::string& out, int family, const Endpoint& endpoint) {
  char text[INET6_ADDRSTRLEN + 8];
  char* end = text;
  if (family == 6) {
    *end++ = '[';
    end = put_ipv6(end, endpoint.addr.data());
    *end++ = ']';
  } else {
    end = put_ipv4(end, endpoint.addr.data());
  }
  *end++ = ':';
  end = put_decimal(end, endpoint.port);
  out.append(text, static_cast<size_t>(end - text));
}

std::string format_endpoint(int family, const Endpoint& endpoint) { return appended(append_endpoint, family, endpoint); }

}  // namespace rsttrace
