"""A TCP peer for the root tests, in a process of its own so that its pid and
comm differ from the test's. Driven over stdio: it prints one word per step
and waits for a line on stdin where the test must act in between.

  peer.py server ADDR PORT COMM (hold|close)
  peer.py client ADDR PORT COMM (linger0|send-after)
"""
import socket
import struct
import sys


def say(*words):
    print(*words, flush=True)


def wait_for_test():
    sys.stdin.readline()


def family_of(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def server(addr, port, mode):
    listener = socket.socket(family_of(addr), socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((addr, port))
    listener.listen(8)
    say("listening", port)
    conn, peer = listener.accept()
    say("accepted", peer[1])
    if mode == "close":
        conn.close()  # nothing unread: FIN, the socket lives on orphaned
        say("closed")
    wait_for_test()


def client(addr, port, mode):
    sock = socket.socket(family_of(addr), socket.SOCK_STREAM)
    sock.connect((addr, port))
    say("connected", sock.getsockname()[1])
    wait_for_test()
    if mode == "linger0":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # abort: RST instead of FIN
        say("closed")
    elif mode == "send-after":
        sock.send(b"data after the server closed\n")
        say("sent")
    wait_for_test()


def main():
    role, addr, port, comm, mode = sys.argv[1:6]
    with open("/proc/self/comm", "w") as f:
        f.write(comm)
    {"server": server, "client": client}[role](addr, int(port), mode)


if __name__ == "__main__":
    main()
