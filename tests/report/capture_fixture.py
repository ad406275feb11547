"""A hand-made capture with known counts: two rotated files (given out of
order), a malformed line, a truncated last line, a lost record, hostile strings."""

import json
import os

EXPECTED = {"events": 9, "tcp-wrappers": 5, "firewall": 3, "sshd": 1, "lost": 4, "malformed_line": ("capture.jsonl.1", 3)}


def event(ts, verdict, remote, jail=None, rule=None):
    record = {"type": "event", "ts": ts, "kind": "drop" if verdict == "firewall" else "reset",
              "direction": "dropped" if verdict == "firewall" else "sent", "remote_addr": remote, "verdict": verdict,
              "detail": f"{verdict} refused {remote}"}
    if jail:
        record["fail2ban_jail"] = jail
    if rule:
        record["rule"] = rule
    if jail:
        record["remedy"] = [f"fail2ban-client set {jail} unbanip {remote}"]
    elif rule:
        record["remedy"] = [f"nft delete rule inet {rule['table']} {rule['chain']} handle {rule['handle']}"]
    return json.dumps(record)


F2B_RULE = {"backend": "nftables", "family": "inet", "table": "f2b-table", "chain": "f2b-chain", "handle": 3,
            "text": "tcp dport 22 ip saddr @addr-set-recidive reject", "verdict": "reject", "packets": 1, "certain": True}
HOSTILE_RULE = {"backend": "nftables", "family": "inet", "table": "t", "chain": "input", "handle": 7,
                "text": "<img src=x onerror=alert(1)> drop", "verdict": "drop", "packets": None, "certain": True}


def write(directory):
    older = [event(f"2026-11-25T02:1{m}:0{m}.000000Z", "tcp-wrappers", "127.0.0.2", "sshd") for m in range(3)]
    older.insert(2, "{this is not json")
    older.append(json.dumps({"type": "lost", "ts": "2026-11-25T02:13:00.000000Z", "count": 4, "total": 4}))
    newer = [event("2026-11-25T02:14:01.000000Z", "tcp-wrappers", "127.0.0.2", "sshd"),
             event("2026-11-25T02:14:02.000000Z", "tcp-wrappers", "127.0.0.3", "sshd"),
             event("2026-11-25T02:20:00.000000Z", "firewall", "127.0.0.4", "recidive", F2B_RULE),
             event("2026-11-25T02:20:30.000000Z", "firewall", "127.0.0.4", "recidive", F2B_RULE),
             event("2026-11-25T02:21:00.000000Z", "firewall", "<script>alert(1)</script>", rule=HOSTILE_RULE),
             event("2026-11-25T02:25:00.000000Z", "sshd", "127.0.0.5"),
             json.dumps({"type": "summary", "ts": "2026-11-25T02:26:00.000000Z", "events": 6})]
    paths = [os.path.join(directory, "capture.jsonl"), os.path.join(directory, "capture.jsonl.1")]
    with open(paths[0], "w") as f:
        f.write("\n".join(newer) + '\n{"type":"event","ts":"2026-11-25T02:2')  # cut mid-line
    with open(paths[1], "w") as f:
        f.write("\n".join(older) + "\n")
    return paths


def write_short(directory):
    """A 3-second capture: wrappers refusals in its first and last second, none in between."""
    lines = [event(f"2026-11-25T03:00:0{s}.{ms:06d}Z", "tcp-wrappers", "127.0.0.2", "sshd")
             for s in (0, 2) for ms in (100000, 500000)]
    path = os.path.join(directory, "short.jsonl")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return [path]
