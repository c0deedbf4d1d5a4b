#!/usr/bin/env python3
"""Frames no stack sends, for scripts/hostile-data.sh: raw Ethernet frames from the client's namespace
(eth0, 198.18.1.10) to a firewall's inside MAC, towards the server (198.19.1.10).

  hostile.py malformed FW_MAC         one of each kind of malformed or hostile frame, a few times over
  hostile.py synflood FW_MAC SECONDS RATE  unique SYNs (new source port and address each), RATE a second
  hostile.py vrrp SRC_IP VRID           bad VRRP advertisements to the group 224.0.0.18 (for
                                        scripts/vrrp.sh): a bad checksum, TTL 64, another VRID, version 2

Prints what it sent as one line."""

import os
import socket
import struct
import sys
import time

CLIENT = socket.inet_aton("198.18.1.10")
SERVER = socket.inet_aton("198.19.1.10")


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(payload, proto=6, src=CLIENT, ident=1, frag=0, ihl=5, total=None, bad_sum=False, options=b"",
         dst=SERVER, ttl=64):
    header = struct.pack("!BBHHHBBH4s4s", (4 << 4) | ihl, 0, total if total is not None else 20 + len(options) + len(payload),
                         ident, frag, ttl, proto, 0, src, dst) + options
    s = checksum(header)
    if bad_sum:
        s ^= 0x5A5A
    return header[:10] + struct.pack("!H", s) + header[12:] + payload


def tcp(sport, dport, seq, ack, flags, payload=b"", src=CLIENT, bad_sum=False):
    header = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0)
    pseudo = src + SERVER + struct.pack("!BBH", 0, 6, len(header) + len(payload))
    s = checksum(pseudo + header + payload)
    if bad_sum:
        s ^= 0x5A5A
    return header[:16] + struct.pack("!H", s) + header[18:] + payload


def frame(dst_mac, src_mac, ip):
    return dst_mac + src_mac + b"\x08\x00" + ip


SYN, FIN, RST, PSH, ACK, URG = 0x02, 0x01, 0x04, 0x08, 0x10, 0x20

VRRP_GROUP = socket.inet_aton("224.0.0.18")
VRRP_MAC = bytes.fromhex("01005e000012")


def vrrp(src, vrid, priority=250, version=3, bad_sum=False, vip=b"\xc6\x12\x07\xfe"):
    """A VRRP advertisement (RFC 5798 section 5.2) with one address, its checksum over the IPv4
    pseudo-header."""
    body = struct.pack("!BBBBHH", (version << 4) | 1, vrid, priority, 1, 100, 0) + vip
    s = checksum(src + VRRP_GROUP + struct.pack("!BBH", 0, 112, len(body)) + body)
    if bad_sum:
        s ^= 0x5A5A
    return body[:6] + struct.pack("!H", s) + body[8:]


def bad_adverts(src_mac, src, vrid):
    mac = bytes.fromhex("00005e0001%02x" % vrid)
    ad = lambda body, ttl=255: frame(VRRP_MAC, mac, ipv4(body, proto=112, src=src, dst=VRRP_GROUP, ttl=ttl))
    return [
        ad(vrrp(src, vrid, bad_sum=True)),  # checksum
        ad(vrrp(src, vrid), ttl=64),  # forwarded: TTL not 255
        ad(vrrp(src, (vrid % 255) + 1)),  # a VRID nobody here runs
        ad(vrrp(src, vrid, version=2)),  # VRRPv2
    ]


def malformed(dst, src):
    frames = []
    good = ipv4(tcp(40001, 5201, 1, 0, SYN))
    frames += [
        frame(dst, src, good[:12]),                                  # truncated IPv4 header
        frame(dst, src, ipv4(tcp(40002, 5201, 1, 0, SYN), ihl=4)),   # header length below 20
        frame(dst, src, ipv4(tcp(40003, 5201, 1, 0, SYN), ihl=15)),  # header length past the packet
        frame(dst, src, ipv4(tcp(40004, 5201, 1, 0, SYN), total=1400)),  # total length past the frame
        frame(dst, src, ipv4(tcp(40005, 5201, 1, 0, SYN), total=30)),    # total length inside the TCP header
        frame(dst, src, ipv4(tcp(40006, 5201, 1, 0, SYN), bad_sum=True)),  # bad IPv4 checksum
        frame(dst, src, ipv4(tcp(40007, 5201, 1, 0, SYN, bad_sum=True))),  # bad TCP checksum
        frame(dst, src, ipv4(tcp(40008, 5201, 1, 0, SYN)[:10])),     # truncated TCP header
        frame(dst, src, b"\x45" + os.urandom(40)),                   # garbage after a version nibble
    ]
    for i, flags in enumerate([SYN | FIN, SYN | RST, FIN, 0, FIN | PSH | URG, SYN | FIN | RST | PSH | ACK | URG]):
        frames.append(frame(dst, src, ipv4(tcp(40100 + i, 5201, 1, 0, flags))))
    # Fragments: overlapping (second rewrites the first's bytes), tiny (8-byte first fragment).
    body = tcp(40200, 5201, 1, 0, SYN, payload=b"x" * 64)
    frames += [
        frame(dst, src, ipv4(body[:32], ident=77, frag=0x2000)),             # offset 0, more fragments
        frame(dst, src, ipv4(body[16:48], ident=77, frag=0x2000 | 2)),       # offset 16: overlaps
        frame(dst, src, ipv4(body[48:], ident=77, frag=6)),                  # offset 48, last
        frame(dst, src, ipv4(body[:8], ident=78, frag=0x2000)),              # tiny first fragment
        frame(dst, src, ipv4(body[8:], ident=78, frag=1)),
    ]
    return frames


def main():
    mode = sys.argv[1]
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind(("eth0", 0))
    src = s.getsockname()[4]
    if mode == "vrrp":
        frames = bad_adverts(src, socket.inet_aton(sys.argv[2]), int(sys.argv[3]))
        for f in frames:
            s.send(f)
        print(f"sent {len(frames)} bad VRRP advertisements")
        return
    mac = bytes.fromhex(sys.argv[2].replace(":", ""))
    if mode == "malformed":
        frames = malformed(mac, src)
        for _ in range(5):
            for f in frames:
                s.send(f)
            time.sleep(0.05)
        print(f"sent {len(frames)} kinds of malformed or hostile frames, 5 times each")
    elif mode == "synflood":
        seconds, rate = float(sys.argv[3]), float(sys.argv[4])
        # Precomputed SYNs from 240 addresses of the client network (which the rules let out) and 273
        # ports each: unique flows, each a new state if admitted.
        syns = []
        for i in range(65536):
            a = socket.inet_aton("198.18.1.%d" % (11 + i % 240))
            syns.append(frame(mac, src, ipv4(tcp(1024 + i % 60000, 5201, i, 0, SYN, src=a), src=a, ident=i & 0xFFFF)))
        start = time.monotonic()
        sent, end = 0, start + seconds
        while time.monotonic() < end:
            for f in syns[sent % len(syns): sent % len(syns) + 256]:
                try:
                    s.send(f)
                except BlockingIOError:
                    pass
            sent += 256
            # Paced: the sender shares the two CPUs with the firewalls and the transfer under test.
            ahead = sent / rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
        print(f"sent {sent} unique SYNs in {seconds:.0f} s ({sent / seconds:,.0f} a second)")


if __name__ == "__main__":
    main()
