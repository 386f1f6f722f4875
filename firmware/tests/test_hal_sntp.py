"""SNTP reply parsing and one exchange with a fake server socket."""
import struct

import pytest

from lwnode.hal import sntp

UNIX_S = 1764000000


def reply(unix_s, fraction, mode=4, stratum=2):
    head = bytes([(4 << 3) | mode, stratum]) + bytes(38)
    return head + struct.pack(">II", unix_s + sntp.NTP_TO_UNIX_S, fraction)


def test_parse_reply_keeps_the_fraction():
    assert sntp.parse_reply(reply(UNIX_S, 1 << 31)) == UNIX_S * 1000000 + 500000


@pytest.mark.parametrize("data", [b"\x24" * 20, reply(UNIX_S, 0, mode=3),
                                  reply(UNIX_S, 0, stratum=0), bytes(48)])
def test_bad_replies_are_refused(data):
    with pytest.raises(ValueError, match="sntp"):
        sntp.parse_reply(data)


def test_query_gives_offset_from_the_local_clock():
    sent = []

    class FakeSocket:
        def settimeout(self, t):
            pass

        def sendto(self, data, address):
            sent.append((data, address))

        def recv(self, n):
            return reply(UNIX_S, 0)

        def close(self):
            pass

    local = (UNIX_S - 3) * 1000000
    offset, error = sntp.query("127.0.0.1", lambda: local, sock_factory=FakeSocket)
    assert sent[0][0] == sntp.REQUEST and sent[0][1][1] == 123
    assert 3000000 <= offset < 3100000
    assert 1000 <= error < 100000
