# One SNTP exchange over UDP, with the round trip measured in ticks so the offset is good to
# a few milliseconds (micropython-lib's ntptime keeps whole seconds only). The board keeps the
# offset in memory and adds it to its RTC; nothing here touches machine.
import socket
import struct
import time


def _cpython_ticks_us():
    return getattr(time, "monotonic_ns")() // 1000


def _plain_diff(a, b):
    return a - b


ticks_us = getattr(time, "ticks_us", _cpython_ticks_us)
ticks_diff = getattr(time, "ticks_diff", _plain_diff)

NTP_TO_UNIX_S = 2208988800     # 1900-01-01 to 1970-01-01
REQUEST = b"\x23" + bytes(47)  # LI 0, version 4, mode 3 (client)


def parse_reply(reply):
    """UTC microseconds of the server's transmit time; ValueError for a bad reply."""
    if len(reply) < 48:
        raise ValueError("sntp: reply of %d bytes, expected 48" % len(reply))
    mode = reply[0] & 7
    stratum = reply[1]
    if mode != 4 or not 1 <= stratum <= 15:
        raise ValueError("sntp: not a server reply (mode %d, stratum %d)" % (mode, stratum))
    seconds, fraction = struct.unpack(">II", reply[40:48])
    if seconds == 0:
        raise ValueError("sntp: server sent no time")
    return (seconds - NTP_TO_UNIX_S) * 1000000 + (fraction * 1000000 >> 32)


def query(host, local_us, timeout_s=0.5, port=123, sock_factory=None):
    """(offset_us, error_us): add offset to local_us() to get UTC; error is half the round
    trip. `local_us` is the board's RTC in 1970 microseconds. Raises OSError / ValueError."""
    address = socket.getaddrinfo(host, port)[0][-1]
    sock = sock_factory() if sock_factory else socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.settimeout(timeout_s)
        sent = ticks_us()
        sock.sendto(REQUEST, address)
        reply = sock.recv(64)
        rtt = ticks_diff(ticks_us(), sent)
        local = local_us()
    finally:
        sock.close()
    server = parse_reply(reply)
    return (server + rtt // 2 - local, rtt // 2 + 1000)
