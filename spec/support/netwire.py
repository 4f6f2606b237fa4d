#!/usr/bin/env python3
"""A network link with latency, jitter and loss, in user space.

    netwire.py TAP_A TAP_B DELAY_MS JITTER_MS LOSS_PERCENT

Creates two TAP devices and copies every Ethernet frame read from one into
the other, each one delayed by DELAY_MS plus a uniform jitter of
+-JITTER_MS and dropped with probability LOSS_PERCENT, in each direction
(what `tc qdisc add ... netem delay D J loss L` does on both ends of a
link). Frames keep their order per direction. spec/support/netns.lua uses
it where the kernel has no netem qdisc (CONFIG_NET_SCH_NETEM): it puts one
TAP on the bridge and moves the other into a host's namespace.

Prints "ready" once both devices exist; on SIGTERM prints the counters
(frames and bytes forwarded, frames dropped, per direction) and exits 0.
The devices disappear with the process. Needs CAP_NET_ADMIN (/dev/net/tun).
"""

import fcntl
import heapq
import os
import random
import select
import signal
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000


def open_tap(name):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF,
                struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    return fd


def main():
    name_a, name_b = sys.argv[1], sys.argv[2]
    delay = float(sys.argv[3]) / 1000
    jitter = float(sys.argv[4]) / 1000
    loss = float(sys.argv[5]) / 100
    a, b = open_tap(name_a), open_tap(name_b)
    peer = {a: b, b: a}
    label = {a: name_a + "->" + name_b, b: name_b + "->" + name_a}
    counts = {fd: {"frames": 0, "bytes": 0, "dropped": 0, "lost": 0}
              for fd in (a, b)}
    last = {a: 0.0, b: 0.0}      # latest release per output: no reordering
    queue = []                   # (release time, seq, output fd, frame)
    seq = 0

    def report(*_):
        for fd in (a, b):
            c = counts[fd]
            print("%s frames %d bytes %d dropped %d unsent %d"
                  % (label[fd], c["frames"], c["bytes"], c["dropped"],
                     c["lost"]), flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, report)
    signal.signal(signal.SIGINT, report)
    print("ready", flush=True)

    while True:
        now = time.monotonic()
        timeout = max(0.0, queue[0][0] - now) if queue else 1.0
        readable, _, _ = select.select([a, b], [], [], timeout)
        now = time.monotonic()
        for fd in readable:
            while True:
                try:
                    frame = os.read(fd, 65536)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:          # the device is down
                    break
                if random.random() < loss:
                    counts[fd]["dropped"] += 1
                    continue
                out = peer[fd]
                release = now + max(0.0, delay + random.uniform(-jitter,
                                                                 jitter))
                release = max(release, last[out])
                last[out] = release
                seq += 1
                heapq.heappush(queue, (release, seq, out, frame, fd))
        while queue and queue[0][0] <= time.monotonic():
            _, _, out, frame, src = heapq.heappop(queue)
            try:
                os.write(out, frame)
                counts[src]["frames"] += 1
                counts[src]["bytes"] += len(frame)
            except OSError:              # the device is down: as a cable
                counts[src]["lost"] += 1


if __name__ == "__main__":
    main()
