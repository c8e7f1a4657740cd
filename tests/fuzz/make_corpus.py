#!/usr/bin/env python3
"""Writes the seed corpora (tests/fuzz/corpus/<target>/) in the formats the targets decode:
little-endian integers read front to back (fuzz_input.hpp). Run from anywhere; rewrites the seeds.
Each seed is a small meaningful case: valid chains, a full negotiation, valid blk/net requests."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(HERE, 'corpus', target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)


def u8(*v): return struct.pack('<%dB' % len(v), *v)
def u16(*v): return struct.pack('<%dH' % len(v), *v)
def u32(*v): return struct.pack('<%dI' % len(v), *v)
def u64(*v): return struct.pack('<%dQ' % len(v), *v)


# ---- fuzz_ring: header {u8 flags (1 packed, 2 event_idx, 4 indirect, 8 dirty log, 16 in_order),
# u8 size_sel}, ops: 0/128 add(+indirect) {u8 counts (bits 0-1 readable, 2-3 writable), per buffer
# u16 off, u16 len} 1 kick_prepare, 2 pop, 3 push {u8 pick; in_order: the oldest pick%8+1, as one
# push_unwritten batch if pick >= 128}, 4 flush, 5 needs_notification, 6/134 disable/enable
# notification, 7 get_used, 8/136 disable_cb/enable_cb, 9 scribble {u16 off, u8 len, bytes},
# 10 pop_burst(4), 11 reconnect.
def ring_round(indirect=False, nr=1, nw=1):
    op = 128 if indirect else 0
    b = u8(op, nr | (nw << 2))
    for i in range(nr + nw):
        b += u16(0x100 * i, 0x80)
    return b + u8(1, 2, 3, 0, 4, 5, 7)


def ring_seeds():
    for packed in (0, 1):
        for flags in (0, 2, 4, 6, 14):
            name = '%s_f%d' % ('packed' if packed else 'split', flags)
            body = b''.join(ring_round(indirect=(flags & 4) != 0 and i % 2 == 1, nr=1 + i % 3, nw=i % 2)
                            for i in range(12))
            write('ring', name, u8(flags | packed, 3) + body)
        # wrap-around: many rounds on a size-4 ring, with notification toggles and reconnects
        body = b''.join(ring_round() + u8(6, 134, 8, 136) for _ in range(10)) + u8(11) + ring_round()
        write('ring', ('packed' if packed else 'split') + '_wrap', u8(2 | packed, 2) + body)
        # a hostile scribble over the first descriptor after it was made available
        body = ring_round()[:-6] + u8(1, 9) + u16(0) + u8(16) + u64(0x10000, 0xffffffff00001000) + u8(2, 10)
        write('ring', ('packed' if packed else 'split') + '_scribble', u8(packed, 3) + body)
        # IN_ORDER: four buffers (chains of 1-2), popped together, returned as one batch; twice
        # around a size-8 ring
        rnd = b''.join(u8(0, (1 + i % 2) | (0 << 2)) + b''.join(u16(0x100 * k, 0x80) for k in range(1 + i % 2))
                       for i in range(4)) + u8(1, 10, 3, 0x83, 4, 5, 7, 7)
        write('ring', ('packed' if packed else 'split') + '_inorder', u8(16 | 2 | packed, 3) + rnd * 6)


# ---- fuzz_blk: limits {u8 flags (1 blk_size 4096, 2 read-only, 4 discard, 8 write zeroes, 16 may
# unmap), u8 capacity, [discard: u8 max_sectors, u8 max_seg, u8 alignment], [write zeroes: u8
# max_sectors, u8 max_seg]}, u8 descriptors-1, per descriptor {u16 offset, u16 len, u8 writable},
# then the readable bytes.
def blk_req(limits, descs, readable):
    b = limits + u8(len(descs) - 1)
    for off, ln, w in descs:
        b += u16(off, ln) + u8(w)
    return b + readable


def hdr(t, sector=0):
    return u32(t, 0) + u64(sector)


def blk_seeds():
    lim = u8(4 | 8, 64) + u8(64, 4, 1) + u8(64, 4)
    write('blk', 'in', blk_req(lim, [(0, 16, 0), (0x1000, 1024, 1), (0x1800, 1, 1)], hdr(0, 2)))
    write('blk', 'out', blk_req(lim, [(0, 16, 0), (0x1000, 1024, 0), (0x1800, 1, 1)], hdr(1, 8) + b'\xab' * 1024))
    write('blk', 'flush', blk_req(lim, [(0, 16, 0), (0x1800, 1, 1)], hdr(4)))
    write('blk', 'get_id', blk_req(lim, [(0, 16, 0), (0x1000, 21, 1)], hdr(8)))
    write('blk', 'discard', blk_req(lim, [(0, 48, 0), (0x1800, 1, 1)],
                                    hdr(11) + u64(0) + u32(8, 0) + u64(16) + u32(4, 0)))
    write('blk', 'write_zeroes', blk_req(lim, [(0, 32, 0), (0x1800, 1, 1)], hdr(13) + u64(4) + u32(4, 1)))
    # header and data straddle the edge between the two regions (0x2000)
    write('blk', 'out_split', blk_req(lim, [(0x1ff8, 16 + 512, 0), (0x3000, 1, 1)], hdr(1, 63) + b'\x11' * 512))
    write('blk', 'in_ro_4k', blk_req(u8(1 | 2, 64), [(0, 16, 0), (0x1000, 4096, 1), (0x3000, 1, 1)], hdr(0, 8)))
    write('blk', 'unknown', blk_req(lim, [(0, 16, 0), (0x1800, 1, 1)], hdr(99)))


# ---- fuzz_session: per message u8 request, u8 flags (bits 0-1 version, 0 = 1; 4 REPLY; 8
# NEED_REPLY), u16 size, payload, u8 fd count, per fd u8 kind (0 eventfd, 1 memfd + u8 pages-1,
# 2 socket, 3 pipe). Harness ops: 0xFF kick {u8 which eventfd}, 0xFE poke {u8 which memfd, u16
# offset, u8 len, bytes}.
UVA = 0x7f0000000000
F_VERSION1, F_PROTOCOL, F_EVENT_IDX, F_INDIRECT, F_PACKED, F_LOG_ALL = 1 << 32, 1 << 30, 1 << 29, 1 << 28, 1 << 34, 1 << 26
PROTO_ALL = sum(1 << b for b in (0, 1, 3, 5, 9, 12, 13, 15, 16))


def msg(req, payload=b'', fds=(), flags=1):
    b = u8(req, flags) + u16(len(payload)) + payload + u8(len(fds))
    for k in fds:
        b += u8(k) if k != 1 else u8(1, 15)  # memfds: 16 pages (64 KiB)
    return b


def poke(off, data, which=0):
    return u8(0xFE, which) + u16(off) + u8(len(data)) + data


def region(gpa=0, size=0x10000, uva=UVA, off=0):
    return u64(gpa, size, uva, off)


def negotiate(features, ack=False):
    fl = 1 | (8 if ack else 0)
    return (msg(1) + msg(15) + msg(16, u64(PROTO_ALL)) + msg(17) + msg(3, flags=fl) +
            msg(2, u64(features), flags=fl) +
            msg(5, u32(1, 0) + region(), fds=(1,), flags=fl))


def queue(index, size, desc, avail, used, ack=False, base=0):
    fl = 1 | (8 if ack else 0)
    return (msg(8, u32(index, size), flags=fl) + msg(10, u32(index, base), flags=fl) +
            msg(9, u32(index, 0) + u64(UVA + desc, UVA + used, UVA + avail, 0), flags=fl) +
            msg(13, u64(index), fds=(0,), flags=fl) + msg(12, u64(index), fds=(0,), flags=fl) +
            msg(18, u32(index, 1), flags=fl))


def session_seeds():
    split_chain = poke(0, u64(0x4000) + u32(64) + u16(2, 0)) + poke(0x1000, u16(0, 1, 0))
    # eventfds sent: [call0, kick0]; kick0 is index 1
    body = negotiate(F_VERSION1 | F_PROTOCOL | F_EVENT_IDX) + queue(0, 8, 0, 0x1000, 0x2000)
    body += split_chain + u8(0xFF, 1) + msg(11, u32(0, 0))
    write('session', 'split_ring', body)
    # the same with REPLY_ACK on every set-message, then config, inflight, log, mem slots, reset
    body = negotiate(F_VERSION1 | F_PROTOCOL | F_LOG_ALL, ack=True) + queue(0, 8, 0, 0x1000, 0x2000, ack=True)
    body += split_chain + u8(0xFF, 1)
    body += msg(24, u32(0, 16, 0) + bytes(16)) + msg(25, u32(4, 4, 0) + b'abcd', flags=9)
    body += msg(31, u64(0, 0) + u16(2, 8, 0, 0)) + msg(6, u64(0x1000, 0), fds=(1,))
    body += msg(36) + msg(37, u64(0) + region(0x100000, 0x8000, UVA + 0x100000), fds=(1,))
    body += msg(38, u64(0) + region(0x100000, 0x8000, UVA + 0x100000))
    body += msg(39, u64(0xf)) + msg(40) + msg(11, u32(0, 0)) + msg(34)
    write('session', 'split_features', body)
    # packed: desc ring at 0, driver event at 0x1000, device event at 0x2000
    body = negotiate(F_VERSION1 | F_PROTOCOL | F_PACKED | F_EVENT_IDX) + queue(1, 8, 0, 0x1000, 0x2000, base=0x80008000)
    body += poke(0, u64(0x4000) + u32(64) + u16(0, 2 | (1 << 7))) + u8(0xFF, 1) + msg(11, u32(1, 0))
    write('session', 'packed_ring', body)
    # back-end channel, inflight fd set back, then a disconnect-worthy message
    body = negotiate(F_VERSION1 | F_PROTOCOL) + msg(21, fds=(2,)) + msg(32, u64(0x1000, 0) + u16(2, 8, 0, 0), fds=(1,))
    body += queue(0, 8, 0, 0x1000, 0x2000) + msg(8, u32(0, 16))
    write('session', 'channel_inflight', body)
    # malformed: wrong version, short payload, unknown request, too many fds, a reply flag
    for i, m in enumerate((msg(1, flags=2), msg(2, u32(1)), msg(99), msg(12, u64(0), fds=(0, 0, 3)),
                           msg(1, flags=5), msg(5, u32(9, 0) + region(), fds=(1,)))):
        write('session', 'malformed_%d' % i, negotiate(F_VERSION1 | F_PROTOCOL) + m)


# ---- fuzz_net: header {u8 flags (1 packed, 2 EVENT_IDX, 4 INDIRECT, 8 MRG_RXBUF, 16 CSUM, 32 two
# pairs + ctrl), u8 port (0 loopback, 1 responder=192.0.2.1, 2 sink), u8 size_sel}; ops: 0/128 TX
# {u8 segs-1, per seg u16 len + bytes}, 1/129 RX {u8 bufs-1, u16 lens} (129: one chain each),
# 2 ctrl {u8 class, u8 cmd, u8 len, data}, 3/11/19 kick RX/TX/ctrl, 4 reap, 5 scribble {u16 off,
# u8 len, bytes}, 6/14/22 restart RX/TX/ctrl, 7 RX completion.
def csum(b):
    if len(b) % 2:
        b += b'\0'
    t = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while t >> 16:
        t = (t & 0xffff) + (t >> 16)
    return (~t) & 0xffff


MAC_GUEST = bytes([0x52, 0x54, 0, 0x12, 0x34, 0x56])
IP_GUEST, IP_RESP = bytes([192, 0, 2, 2]), bytes([192, 0, 2, 1])


def arp_request():
    eth = b'\xff' * 6 + MAC_GUEST + b'\x08\x06'
    arp = struct.pack('!HHBBH', 1, 0x0800, 6, 4, 1) + MAC_GUEST + IP_GUEST + b'\0' * 6 + IP_RESP
    return (eth + arp).ljust(60, b'\0')


def icmp_echo(dst_mac=b'\x02\x76\x69\x72\x65\x6f'):
    icmp = struct.pack('!BBHHH', 8, 0, 0, 0x1234, 1) + b'vireo-fuzz' * 4
    icmp = icmp[:2] + struct.pack('!H', csum(icmp)) + icmp[4:]
    ip = struct.pack('!BBHHHBBH', 0x45, 0, 20 + len(icmp), 1, 0, 64, 1, 0) + IP_GUEST + IP_RESP
    ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
    return dst_mac + MAC_GUEST + b'\x08\x00' + ip + icmp


def net_hdr(flags=0, gso=0, num_buffers=0):
    return struct.pack('<BBHHHHH', flags, gso, 0, 0, 0, 0, num_buffers)


def tx(*segs, op=0):
    b = u8(op, len(segs) - 1)
    for seg in segs:
        b += u16(len(seg)) + seg
    return b


def rx(*lens, separate=False):
    return u8(129 if separate else 1, len(lens) - 1) + u16(*lens)


def net_seeds():
    frame = icmp_echo(MAC_GUEST)
    for packed in (0, 1):
        lay = 'packed' if packed else 'split'
        sz = 4 if packed else 3
        write('net', lay + '_loopback', u8(packed, 0, sz) + rx(1600, 1600) + u8(3) +
              tx(net_hdr() + frame) + u8(11, 4))
        write('net', lay + '_mergeable', u8(packed | 8 | 2, 0, sz) + rx(256, 256, 256, 256, separate=True) +
              u8(3) + tx(net_hdr() + frame * 6) + u8(11, 4, 6, 14) + tx(net_hdr() + frame) + u8(11, 4))
        write('net', lay + '_responder', u8(packed, 1, sz) + rx(1600, separate=True) + rx(1600, separate=True) +
              u8(3) + tx(net_hdr() + arp_request()) + tx(net_hdr() + icmp_echo()) + u8(11, 7, 4))
        write('net', lay + '_ctrl_mq', u8(packed | 32, 2, sz) + u8(2, 4, 0, 2) + u16(2) + u8(19, 4) +
              u8(2, 99, 1, 0, 3) + u8(19, 4))
        # header split over three descriptors; bad headers (NEEDS_CSUM without CSUM, GSO)
        hf = net_hdr() + frame
        write('net', lay + '_tx_split', u8(packed | 4, 2, sz) + tx(hf[:5], hf[5:20], hf[20:], op=128) +
              tx(net_hdr(flags=1) + frame) + tx(net_hdr(gso=1) + frame) + tx(net_hdr()[:8]) + u8(11, 4))


if __name__ == '__main__':
    net_seeds()
    session_seeds()
    ring_seeds()
    blk_seeds()
