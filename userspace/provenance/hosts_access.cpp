#include "provenance/hosts_access.h"

#include <arpa/inet.h>

#include <array>
#include <cctype>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "provenance/hosts_access/options.h"
#include "provenance/hosts_access/tokens.h"
#include "provenance/tristate.h"

namespace rsttrace {

namespace {

using namespace hosts_access;

// libwrap reads a rule into a 2048-byte buffer; a longer one ends the file.
constexpr size_t kMaxRuleLength = 2046;
// libwrap recurses into pattern files without a limit; a loop would hang it.
constexpr int kMaxPatternFileDepth = 8;
// One evaluation's work in pattern files: every reference and every token
// looked at costs (a token by its length). A pattern file naming itself n
// times is n^depth references: the budget, not the depth, bounds it. Out of
// budget, what needs a pattern file is undecided (the decision uncertain);
// the lines of hosts.allow and hosts.deny themselves are linear in their size.
constexpr long kWorkBudget = 250'000;  // a blocklist pattern file of 100k addresses still fits
constexpr size_t kMaxPatternFiles = 64;           // distinct files loaded per evaluation
constexpr size_t kMaxPatternFileSize = 4 << 20;   // larger: undecided, not read
constexpr size_t kMaxNotes = 64;                  // notes kept per decision
constexpr const char* kBudgetNote = "pattern files exceed the budget";
constexpr std::string_view kListSeparators = ", \t\r\n";

// A string as libwrap's eval_* gives it; nullopt: libwrap knew it, rsttrace does not.
using Known = std::optional<std::string>;

struct HostView {
  Known address;
  Known name;
};

// A pattern file as read once per evaluation, with its tokens.
struct PatternFile {
  std::optional<std::string> text;  // nullopt: cannot be read
  std::vector<std::string_view> tokens;
  bool too_large = false;
};

// The facts one rule is matched against, and the reasons for undecided patterns.
struct Matcher {
  const AccessClient& client;
  HostView client_host;
  HostView server_host;
  Known user;
  const PatternFileLoader& load_pattern_file;
  std::set<std::string> maybe_reasons;  // for the line being matched
  std::vector<std::string>& notes;
  int depth = 0;
  long budget = kWorkBudget;
  bool out_of_budget = false;
  std::map<std::string, PatternFile> pattern_files;  // by path; node addresses are stable

  Match undecided(std::string reason) {
    if (maybe_reasons.size() < kMaxNotes) maybe_reasons.insert(std::move(reason));
    return Match::Maybe;
  }

  void note(std::string text) {
    if (notes.size() < kMaxNotes) notes.push_back(std::move(text));
    else if (notes.size() == kMaxNotes) notes.push_back("more notes left out");
  }

  // Work for one token (a long one costs more: wildcards are matched in
  // length x length); false once the evaluation's budget is spent.
  bool spend(std::string_view token = {}) {
    const long cost = 1 + static_cast<long>(token.size() / 32);
    if (budget >= cost) {
      budget -= cost;
      return true;
    }
    budget = 0;
    out_of_budget = true;
    return false;
  }

  const PatternFile* pattern_file(std::string_view path) {
    const std::string key(path);
    if (auto it = pattern_files.find(key); it != pattern_files.end()) return &it->second;
    if (pattern_files.size() >= kMaxPatternFiles) return nullptr;
    PatternFile& file = pattern_files[key];
    file.text = load_pattern_file(key);
    if (file.text && file.text->size() > kMaxPatternFileSize) {
      file.too_large = true;
      file.text->clear();
    } else if (file.text) {
      file.tokens = tokens_of(*file.text, " \t\r\n\v\f");
    } else {
      note("pattern file " + key + " cannot be read: libwrap matches nothing from it");
    }
    return &file;
  }

  // string_match: the patterns that apply to names, addresses and users alike.
  Match string_match(std::string_view tok, const Known& value, std::string_view what) {
    if (iequals(tok, "ALL")) return Match::Yes;
    if (!value) return undecided(std::string(what) + " is unknown to rsttrace (pattern " + std::string(tok) + ")");
    const std::string& s = *value;
    if (tok.front() == '.') return match_of(s.size() > tok.size() && iequals(tok, std::string_view(s).substr(s.size() - tok.size())));
    if (iequals(tok, "KNOWN")) return match_of(!iequals(s, "unknown"));
    if (tok.back() == '.') return match_of(istarts_with(s, tok));
    if (tok.find_first_of("*?") != std::string_view::npos) return match_of(wildcard_match(s, tok));
    if (tok.size() > 2 && tok.front() == '[' && tok.back() == ']') {
      auto pattern = parse_v6(tok.substr(1, tok.size() - 2));
      auto address = parse_v6(s);
      return match_of(pattern && address && *pattern == *address);
    }
    return match_of(iequals(tok, s));
  }

  // net/mask, net/prefixlen and [v6net]/prefixlen: against the address only.
  Match masked_match(std::string_view net, std::string_view mask, const Known& address) {
    if (!address) return undecided("the server address is unknown to rsttrace (pattern " + std::string(net) + "/" + std::string(mask) + ")");
    auto leading_number = [](std::string_view s) -> std::optional<unsigned> {
      // libwrap reads the prefix length with strtol: trailing junk is ignored.
      size_t digits = 0;
      while (digits < s.size() && digits < 4 && std::isdigit(static_cast<unsigned char>(s[digits]))) ++digits;
      if (digits == 0) return std::nullopt;
      return static_cast<unsigned>(std::stoul(std::string(s.substr(0, digits))));
    };
    const std::string bad = "bad net/mask " + std::string(net) + "/" + std::string(mask) + ": never matches";
    if (net.size() > 2 && net.front() == '[' && net.back() == ']') {
      auto network = parse_v6(net.substr(1, net.size() - 2));
      auto length = leading_number(mask);
      if (!network || !length || *length > 128) {
        note(bad);
        return Match::No;
      }
      auto client = parse_v6(*address);
      if (!client) return Match::No;
      // Unlike IPv4, both sides are masked: [fd00::1]/64 matches fd00::2.
      for (unsigned bit = 0; bit < *length; ++bit) {
        const uint8_t m = uint8_t(0x80 >> (bit % 8));
        if (((*network)[bit / 8] & m) != ((*client)[bit / 8] & m)) return Match::No;
      }
      return Match::Yes;
    }
    auto network = parse_v4(net);
    std::optional<uint32_t> mask_bits;
    if (auto dotted = parse_v4(mask)) {
      // 255.255.255.255 is INADDR_NONE to libwrap: not a valid mask.
      if (v4_number(*dotted) != 0xffffffffu) mask_bits = v4_number(*dotted);
    } else if (auto length = leading_number(mask); length && *length <= 32) {
      mask_bits = *length == 0 ? 0u : 0xffffffffu << (32 - *length);
    }
    if (!network || !mask_bits) {
      note(bad);
      return Match::No;
    }
    auto client = parse_v4(*address);
    if (!client) return Match::No;
    // libwrap compares with the net as written: host bits in it never match.
    if ((v4_number(*network) & ~*mask_bits) != 0)
      note("net/mask " + std::string(net) + "/" + std::string(mask) + " has host bits set: libwrap never matches it");
    return match_of((v4_number(*client) & *mask_bits) == v4_number(*network));
  }

  Match pattern_file_match(std::string_view path, const HostView& host) {
    if (!load_pattern_file) return undecided("pattern file " + std::string(path) + " is not read");
    if (depth >= kMaxPatternFileDepth) return undecided("pattern file " + std::string(path) + " nests too deep");
    if (!spend()) return undecided(kBudgetNote);
    const PatternFile* file = pattern_file(path);
    if (!file) return undecided("more than " + std::to_string(kMaxPatternFiles) + " pattern files");
    if (file->too_large) return undecided("pattern file " + std::string(path) + " is larger than " +
                                          std::to_string(kMaxPatternFileSize) + " bytes: not read");
    if (!file->text) return Match::No;
    ++depth;
    Match result = Match::No;
    for (std::string_view tok : file->tokens) {
      if (!spend(tok)) {
        result = either(result, undecided(kBudgetNote));
        break;
      }
      result = either(result, host_match(tok, host));
      if (result == Match::Yes) break;  // libwrap stops at the first match
    }
    --depth;
    return result;
  }

  // host_match: a client (or server endpoint) host pattern.
  Match host_match(std::string_view tok, const HostView& host) {
    if (tok.front() == '@') return undecided("netgroup " + std::string(tok) + " is not looked up");
    if (tok.front() == '/') return pattern_file_match(tok, host);
    auto name_known = [](const std::string& n) { return !iequals(n, "unknown") && !iequals(n, "paranoid"); };
    if (iequals(tok, "KNOWN")) {
      if (host.address && iequals(*host.address, "unknown")) return Match::No;
      if (!host.name || !host.address) return undecided("the host name is unknown to rsttrace (pattern KNOWN)");
      return match_of(name_known(*host.name));
    }
    if (iequals(tok, "LOCAL")) {
      if (!host.name) return undecided("the host name is unknown to rsttrace (pattern LOCAL)");
      return match_of(host.name->find('.') == std::string::npos && name_known(*host.name));
    }
    if (auto net_mask = split_at(tok, '/')) return masked_match(net_mask->first, net_mask->second, host.address);
    // Patterns of only digits, dots and slashes are addresses: not tried on names.
    Match by_address = string_match(tok, host.address, "the server address");
    if (by_address == Match::Yes || tok.find_first_not_of("0123456789./") == std::string_view::npos)
      return by_address;
    return either(by_address, string_match(tok, host.name, "the host name"));
  }

  Match daemon_match(std::string_view tok) {
    auto daemon_host = split_at(tok.substr(1), '@');
    std::string_view daemon = daemon_host ? tok.substr(0, daemon_host->first.size() + 1) : tok;
    Match result = string_match(daemon, client.daemon, "the daemon");
    // Debian's extension: a number in a daemon list is the server's port.
    if (result != Match::Yes && daemon.find_first_not_of("0123456789") == std::string_view::npos) {
      result = client.server_port == 0
                   ? either(result, undecided("the server port is unknown to rsttrace (pattern " + std::string(daemon) + ")"))
                   : either(result, match_of(std::to_string(client.server_port) == daemon));
    }
    if (!daemon_host || result == Match::No) return result;
    return both(result, host_match(daemon_host->second, server_host));
  }

  Match client_match(std::string_view tok) {
    auto user_host = split_at(tok.substr(1), '@');
    if (!user_host) return host_match(tok, client_host);
    // libwrap looks the user up only once the host part matched.
    Match by_host = host_match(user_host->second, client_host);
    if (by_host == Match::No) return by_host;
    std::string_view user_pattern = tok.substr(0, user_host->first.size() + 1);
    return both(by_host, string_match(user_pattern, user, "the client user"));
  }

  // list_match: the first matching element, unless the list after EXCEPT matches.
  template <typename Fn>
  Match list_match(const std::vector<std::string_view>& tokens, size_t from, Fn&& match_one) {
    Match head = Match::No;
    size_t i = from;
    for (; i < tokens.size() && !iequals(tokens[i], "EXCEPT"); ++i) {
      if (head == Match::Yes) continue;
      head = either(head, match_one(tokens[i]));
    }
    if (head == Match::No || i == tokens.size()) return head;
    return both(head, negate(list_match(tokens, i + 1, match_one)));
  }
};

std::string normalized_address(const std::string& address, std::vector<std::string>& notes) {
  if (address.empty()) return "unknown";
  // libwrap matches an IPv4-mapped client as its IPv4 address.
  if (istarts_with(address, "::ffff:") && parse_v4(std::string_view(address).substr(7)))
    return address.substr(7);
  if (auto v6 = parse_v6(address)) {  // libwrap sees inet_ntop's spelling
    char text[INET6_ADDRSTRLEN] = {};
    inet_ntop(AF_INET6, v6->data(), text, sizeof(text));
    return text;
  }
  if (!parse_v4(address)) notes.push_back("client address " + address + " is not an IP address");
  return address;
}

struct TableResult {
  std::optional<WrapperRule> rule;
  std::optional<std::string> options;
};

// table_match: the first line of one file whose daemon and client lists both match.
TableResult table_match(std::string_view text, const std::string& file, Matcher& matcher, bool& certain) {
  for (const LogicalLine& line : logical_lines(text)) {
    const std::string where = file + " line " + std::to_string(line.first);
    if (!line.terminated || line.text.size() > kMaxRuleLength) {
      matcher.note(where + ": missing newline or line too long: libwrap ignores it and the rest of the file");
      certain = certain && line.text.find_first_not_of(kBlanks) == std::string::npos;
      break;
    }
    if (line.text.empty() || line.text[0] == '#' || line.text.find_first_not_of(kBlanks) == std::string::npos)
      continue;
    auto daemons_rest = split_at(line.text, ':');
    if (!daemons_rest) {
      matcher.note(where + ": missing \":\" separator: libwrap skips the line");
      continue;
    }
    auto clients_options = split_at(daemons_rest->second, ':');
    std::string_view clients = clients_options ? clients_options->first : daemons_rest->second;
    matcher.maybe_reasons.clear();
    const auto daemon_tokens = tokens_of(daemons_rest->first, kListSeparators);
    Match match = matcher.list_match(daemon_tokens, 0, [&](std::string_view t) { return matcher.daemon_match(t); });
    if (match != Match::No) {
      const auto client_tokens = tokens_of(clients, kListSeparators);
      match = both(match, matcher.list_match(client_tokens, 0, [&](std::string_view t) { return matcher.client_match(t); }));
    }
    if (match == Match::Maybe) {
      std::string why;
      for (const auto& reason : matcher.maybe_reasons) why += (why.empty() ? "" : "; ") + reason;
      matcher.note(where + " may match (" + why + "): treated as not matching");
      certain = false;
      continue;
    }
    if (match == Match::Yes) {
      TableResult result;
      result.rule = WrapperRule{file, line.first, line.last, line.text};
      if (clients_options) result.options = std::string(clients_options->second);
      return result;
    }
  }
  return {};
}

std::optional<std::string> read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

}  // namespace

AccessDecision decide_access(std::string_view allow_text, std::string_view deny_text, const AccessClient& client,
                             std::string allow_name, std::string deny_name,
                             const PatternFileLoader& load_pattern_file) {
  AccessDecision decision;
  Known hostname = client.hostname.empty() ? Known{} : Known{client.hostname};
  Matcher matcher{client,
                  HostView{normalized_address(client.address, decision.notes), hostname},
                  HostView{client.server_address.empty() ? Known{} : Known{client.server_address}, Known{}},
                  client.user.empty() ? Known{} : Known{client.user},
                  load_pattern_file,
                  {},
                  decision.notes};
  if (matcher.server_host.address)
    matcher.server_host.address = normalized_address(*matcher.server_host.address, decision.notes);

  TableResult found = table_match(allow_text, allow_name, matcher, decision.certain);
  bool allowed = true;
  if (!found.rule) {
    found = table_match(deny_text, deny_name, matcher, decision.certain);
    allowed = !found.rule;
  }
  if (matcher.out_of_budget) {
    decision.certain = false;
    decision.notes.push_back(std::string(kBudgetNote) + " (" + std::to_string(kWorkBudget) +
                             " tokens and references an evaluation): the rest was not matched");
  }
  decision.allowed = allowed;
  if (found.rule && found.options) {
    OptionsOutcome outcome = process_options(*found.options);
    if (outcome.allowed) decision.allowed = *outcome.allowed;
    decision.certain = decision.certain && outcome.certain;
    for (auto& note : outcome.notes) {
      decision.option_notes.push_back(note);
      decision.notes.push_back(found.rule->file + " line " + std::to_string(found.rule->line) + ": " + note);
    }
  }
  decision.rule = std::move(found.rule);
  return decision;
}

AccessDecision decide_access_from_files(const AccessClient& client, const std::string& root,
                                        const PatternFileLoader& read_file) {
  const PatternFileLoader read = read_file ? read_file : PatternFileLoader(read_whole_file);
  const std::string allow = read(root + "/etc/hosts.allow").value_or("");
  const std::string deny = read(root + "/etc/hosts.deny").value_or("");
  return decide_access(allow, deny, client, "/etc/hosts.allow", "/etc/hosts.deny",
                       [&root, &read](const std::string& path) { return read(root + path); });
}

}  // namespace rsttrace
