#!/usr/bin/env python3
"""A TCP forwarder the specs repoint and cut, in user space.

    tcpgate.py TARGET_HOST TARGET_PORT

Listens on an ephemeral port of 127.0.0.1 and forwards every connection to
TARGET. It stands for the address clients use to reach Redis: a managed
Redis that moves its address on failover, or the endpoint an operator (or
a sentinel-aware script) repoints. A second ephemeral port takes control
requests, plain HTTP GETs answered with a JSON document:

  /target/HOST/PORT  new connections go to HOST:PORT; open ones keep their
                     upstream (they end when that server goes away)
  /cut               a network partition: nothing moves in either
                     direction and nothing is closed; new connections wait
                     in the listen backlog, open ones keep their bytes in
                     the kernel's buffers (TCP would retransmit them), so
                     both ends see a silent peer, not a reset
  /heal              traffic flows again, the held bytes first
  /kick              closes every open connection (both ends see EOF)
  /stats             the state: {"cut", "target", "open", "accepted"}

Prints "ready LISTEN_PORT CONTROL_PORT" once both ports listen; exits on
SIGTERM. Python 3 standard library only (Debian's /usr/bin/python3).
"""

import json
import select
import signal
import socket
import sys

CAP = 1 << 20           # bytes held per direction before reading pauses


class Pair:
    def __init__(self, c, u):
        self.c, self.u = c, u
        self.buf = {c: bytearray(), u: bytearray()}   # bytes to send to it
        self.peer = {c: u, u: c}
        self.eof = {c: False, u: False}
        self.closed = False

    def close(self):
        if not self.closed:
            self.closed = True
            for s in (self.c, self.u):
                try:
                    s.close()
                except OSError:
                    pass


def listener():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(128)
    s.setblocking(False)
    return s


def main():
    target = [sys.argv[1], int(sys.argv[2])]
    state = {"cut": False, "accepted": 0}
    lst, ctl = listener(), listener()
    pairs = []
    owner = {}                                  # socket -> Pair

    def drop(p):
        p.close()
        owner.pop(p.c, None)
        owner.pop(p.u, None)
        if p in pairs:
            pairs.remove(p)

    def accept():
        try:
            c, _ = lst.accept()
        except (BlockingIOError, InterruptedError):
            return
        state["accepted"] += 1
        try:
            u = socket.create_connection(tuple(target), timeout=2)
        except OSError:
            c.close()                           # as a refused connection
            return
        for s in (c, u):
            s.setblocking(False)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        p = Pair(c, u)
        pairs.append(p)
        owner[c] = owner[u] = p

    def control():
        try:
            s, _ = ctl.accept()
        except (BlockingIOError, InterruptedError):
            return
        s.setblocking(True)
        s.settimeout(2)
        try:
            req = b""
            while b"\r\n\r\n" not in req and len(req) < 8192:
                chunk = s.recv(4096)
                if not chunk:
                    break
                req += chunk
            parts = req.split(b" ", 2)
            path = parts[1].decode() if len(parts) > 1 else "/"
            status = "200 OK"
            if path == "/cut":
                state["cut"] = True
            elif path == "/heal":
                state["cut"] = False
            elif path == "/kick":
                for p in list(pairs):
                    drop(p)
            elif path.startswith("/target/"):
                host, port = path[len("/target/"):].split("/")
                target[:] = [host, int(port)]
            elif path != "/stats":
                status = "404 Not Found"
            body = json.dumps({"cut": state["cut"],
                               "target": "%s:%d" % tuple(target),
                               "open": len(pairs),
                               "accepted": state["accepted"]}).encode()
            s.sendall(("HTTP/1.1 %s\r\nContent-Type: application/json\r\n"
                       "Content-Length: %d\r\nConnection: close\r\n\r\n"
                       % (status, len(body))).encode() + body)
        except (OSError, ValueError):
            pass
        finally:
            s.close()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("ready %d %d" % (lst.getsockname()[1], ctl.getsockname()[1]),
          flush=True)

    while True:
        rl, wl = [ctl], []
        if not state["cut"]:
            rl.append(lst)
            for p in pairs:
                for s in (p.c, p.u):
                    if not p.eof[s] and len(p.buf[p.peer[s]]) < CAP:
                        rl.append(s)
                    if p.buf[s]:
                        wl.append(s)
        r, w, _ = select.select(rl, wl, [], 1.0)
        for s in r:
            if s is ctl:
                control()
            elif s is lst:
                accept()
            else:
                p = owner.get(s)
                if p is None or p.closed:
                    continue
                try:
                    data = s.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    drop(p)
                    continue
                if data:
                    p.buf[p.peer[s]] += data
                else:
                    p.eof[s] = True
        for s in w:
            p = owner.get(s)
            if p is None or p.closed:
                continue
            try:
                n = s.send(p.buf[s])
                del p.buf[s][:n]
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                drop(p)
        # A side that ended closes the pair once its bytes reached the other.
        for p in list(pairs):
            for s in (p.c, p.u):
                if p.eof[s] and not p.buf[p.peer[s]]:
                    drop(p)
                    break


if __name__ == "__main__":
    main()
