#include <arpa/inet.h>
#include <catch2/catch.hpp>

#include "attribute/attributor.h"
#include "output/format.h"
#include "output/json_writer.h"
#include "synthetic_btf.h"

using namespace rsttrace;
using rsttrace::testing::SyntheticBtf;

namespace {

KernelNames sample_names() {
  SyntheticBtf types;
  types.add_enum("sk_rst_reason", {{"SK_RST_REASON_NO_SOCKET", 1}, {"SK_RST_REASON_TCP_ABORT_ON_CLOSE", 11}});
  types.add_enum("skb_drop_reason", {{"SKB_DROP_REASON_NETFILTER_DROP", 12}});
  types.add_enum("", {{"TCP_ESTABLISHED", 1}, {"TCP_CLOSE", 7}});
  return KernelNames::from_btf(types.get());
}

TcpEvent sample_event() {
  TcpEvent e;
  e.kind = EventKind::ResetSent;
  e.monotonic_ns = 1'000'000'000;
  e.family = 4;
  inet_pton(AF_INET, "127.0.0.1", e.local.addr.data());
  inet_pton(AF_INET, "127.0.0.2", e.remote.addr.data());
  e.local.port = 22;
  e.remote.port = 40000;
  e.netns = 4026532000u;
  e.tcp_state = 7;
  e.reason = 11;
  e.owner = Process{812, "sshd"};
  e.owner_source = OwnerSource::Close;
  e.context = Process{812, "sshd"};
  e.sock_id = 1;
  e.full_socket = true;
  e.unread_bytes = 21;
  return e;
}

}  // namespace

TEST_CASE("untrusted strings are escaped to printable ASCII") {
  CHECK(escape_untrusted("sshd") == "sshd");
  CHECK(escape_untrusted("a\\b") == "a\\\\b");
  CHECK(escape_untrusted("evil\n\x1b[31m") == "evil\\x0a\\x1b[31m");
  CHECK(escape_untrusted(std::string("\xff\xfe", 2)) == "\\xff\\xfe");
  CHECK(escape_untrusted(std::string("a\0b", 3)) == "a\\x00b");
}

TEST_CASE("timestamps are RFC 3339 UTC with microseconds") {
  CHECK(format_rfc3339_micro(0) == "1970-01-01T00:00:00.000000Z");
  CHECK(format_rfc3339_micro(1'795'000'000'123'456'789ULL) == "2026-11-18T11:06:40.123456Z");
}

TEST_CASE("addresses and endpoints") {
  std::array<uint8_t, 16> v6{};
  inet_pton(AF_INET6, "fd00::2", v6.data());
  CHECK(format_address(6, v6) == "fd00::2");
  CHECK(format_endpoint(6, Endpoint{v6, 22}) == "[fd00::2]:22");
  std::array<uint8_t, 16> v4{};
  inet_pton(AF_INET, "192.0.2.7", v4.data());
  CHECK(format_endpoint(4, Endpoint{v4, 2222}) == "192.0.2.7:2222");
}

TEST_CASE("TCP flags by name") {
  CHECK(format_tcp_flags(0x02) == "SYN");
  CHECK(format_tcp_flags(0x14) == "RST|ACK");
  CHECK(format_tcp_flags(0) == "none");
}

TEST_CASE("an event renders to the documented JSON contract") {
  const KernelNames names = sample_names();
  const Formatter formatter{names, WallClock{0}};
  Attribution report{sample_event(), Verdict::Unknown, "evidence"};
  const nlohmann::ordered_json j = formatter.event_json(report);
  CHECK(j["type"] == "event");
  CHECK(j["ts"] == "1970-01-01T00:00:01.000000Z");
  CHECK(j["kind"] == "reset");
  CHECK(j["direction"] == "sent");
  CHECK(j["family"] == 4);
  CHECK(j["local_addr"] == "127.0.0.1");
  CHECK(j["local_port"] == 22);
  CHECK(j["remote_addr"] == "127.0.0.2");
  CHECK(j["remote_port"] == 40000);
  CHECK(j["netns"] == 4026532000u);
  CHECK(j["tcp_state"] == "CLOSE");
  CHECK(j["kernel_reason"] == "TCP_ABORT_ON_CLOSE");
  CHECK(j["pid"] == 812);
  CHECK(j["comm"] == "sshd");
  CHECK(j["verdict"] == "unknown");
  CHECK(j["detail"] == "evidence");
  CHECK(j["owner_source"] == "close");
  CHECK(j["unread_bytes"] == 21);
}

TEST_CASE("missing facts are JSON null, never invented") {
  const KernelNames names = sample_names();
  const Formatter formatter{names, WallClock{0}};
  TcpEvent e = sample_event();
  e.kind = EventKind::Drop;
  e.owner.reset();
  e.tcp_state.reset();
  e.reason = 12;
  e.full_socket = false;
  e.tcp_flags = 0x02;
  const nlohmann::ordered_json j = formatter.event_json(Attribution{e, Verdict::Unknown, ""});
  CHECK(j["kind"] == "drop");
  CHECK(j["direction"] == "dropped");
  CHECK(j["pid"].is_null());
  CHECK(j["comm"].is_null());
  CHECK(j["tcp_state"].is_null());
  CHECK(j["kernel_reason"] == "NETFILTER_DROP");
  CHECK(j["tcp_flags"] == "SYN");
  CHECK_FALSE(j.contains("unread_bytes"));

  e.reason.reset();
  CHECK(formatter.event_json(Attribution{e, Verdict::Unknown, ""})["kernel_reason"].is_null());
  e.reason = 93;  // a value this kernel's BTF does not name
  CHECK(formatter.event_json(Attribution{e, Verdict::Unknown, ""})["kernel_reason"] == "reason 93");
}

TEST_CASE("hostile process names stay inert in JSON and text") {
  const KernelNames names = sample_names();
  const Formatter formatter{names, WallClock{0}};
  TcpEvent e = sample_event();
  e.owner = Process{1, std::string("x\"}\n{\"a\xff", 8)};
  const Attribution report{e, Verdict::Unknown, describe_evidence(names, e)};
  const std::string line = json_line(formatter.event_json(report));
  CHECK(line.find('\n') == std::string::npos);
  const nlohmann::ordered_json back = nlohmann::ordered_json::parse(line);
  CHECK(back["comm"] == "x\"}\\x0a{\"a\\xff");
  const std::string text = formatter.event_text(report);
  CHECK(text.find('\n') == std::string::npos);
  CHECK_THAT(text, Catch::Contains("owner x\"}\\x0a{\"a\\xff[1]"));
}

TEST_CASE("the text line carries the same facts") {
  const KernelNames names = sample_names();
  const Formatter formatter{names, WallClock{0}};
  const TcpEvent e = sample_event();
  const std::string text = formatter.event_text(Attribution{e, Verdict::Unknown, describe_evidence(names, e)});
  CHECK(text ==
        "1970-01-01T00:00:01.000000Z unknown reset sent 127.0.0.1:22 <> 127.0.0.2:40000 netns 4026532000 state CLOSE "
        "reason TCP_ABORT_ON_CLOSE owner sshd[812]: RST sent on a socket (TCP_ABORT_ON_CLOSE), "
        "socket in CLOSE, owner sshd[812] (close), 21 bytes unread, hook ran in sshd[812]");
}

TEST_CASE("the direct JSON writer escapes strings exactly as nlohmann's dump does", "[format]") {
  const std::string samples[] = {"",          "plain",         "quote\" backslash\\ slash/", "\n\r\t\b\f",
                                 std::string("nul\0byte", 8), "\x01\x1f\x7f", "caf\xc3\xa9 \xe2\x82\xac",
                                 "\xff\xfe broken utf-8", "\xc3", "<script>alert(1)</script>"};
  for (const std::string& sample : samples) {
    std::string mine;
    rsttrace::append_json_string(mine, sample);
    CHECK(mine == nlohmann::json(sample).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
  std::string object;
  rsttrace::JsonObjectWriter out(object);
  out.string("a", "x").number("n", 18446744073709551615ULL).boolean("b", false).null("z");
  rsttrace::JsonObjectWriter inner = out.object("o");
  inner.optional_string("s", std::nullopt).optional_string("t", std::string("v"));
  inner.close();
  out.close();
  CHECK(object == R"({"a":"x","n":18446744073709551615,"b":false,"z":null,"o":{"s":null,"t":"v"}})");
  CHECK(nlohmann::ordered_json::parse(object).dump() == object);
}
