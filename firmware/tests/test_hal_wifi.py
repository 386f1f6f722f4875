"""Wi-Fi link: connects, backs off exponentially with jitter, reports RSSI."""
import asyncio

from lwnode.hal import wifi


class FakeWlan:
    def __init__(self, connect_after_attempts, polls_to_connect=2):
        self.connect_after = connect_after_attempts
        self.polls_to_connect = polls_to_connect
        self.connects = 0
        self.polls = 0
        self.connected = False

    def active(self, on=None):
        return True

    def disconnect(self):
        self.connected = False

    def connect(self, ssid, password):
        self.connects += 1
        self.polls = 0

    def isconnected(self):
        self.polls += 1
        if self.connects > self.connect_after and self.polls >= self.polls_to_connect:
            self.connected = True
        return self.connected

    def status(self, what=None):
        return -61 if what == "rssi" else 1001


def link(wlan, logs, **kw):
    return wifi.WifiLink(wlan, "line-ap", "pw", log=logs.append, attempt_ms=30,
                         first_delay_ms=10, max_delay_ms=40, **kw)


async def test_connects_after_failures_and_resets_backoff(monkeypatch):
    waits = []
    real_sleep = asyncio.sleep

    async def sleep(s):
        waits.append(s)
        await real_sleep(0)
    monkeypatch.setattr(wifi.asyncio, "sleep", sleep)
    logs = []
    wlan = FakeWlan(connect_after_attempts=3)
    net = link(wlan, logs, attempts_per_call=5)
    assert await net.up()
    assert wlan.connects == 4 and net.failures == 0 and net.delay_ms == 10
    backoffs = [w for w in waits if w != wifi.POLL_MS / 1000]
    # delays 10, 20, 40 ms, each jittered into [d/2, d]
    assert len(backoffs) == 3
    for got, delay in zip(backoffs, (0.010, 0.020, 0.040)):
        assert delay / 2 <= got <= delay
    assert any("connected to line-ap after 3 failures" in line for line in logs)
    assert net.rssi() == -61


async def test_gives_up_after_a_few_attempts_and_keeps_the_grown_delay():
    logs = []
    wlan = FakeWlan(connect_after_attempts=99)
    net = link(wlan, logs, attempts_per_call=2)
    assert not await net.up()
    assert net.delay_ms == 40 and net.failures == 2
    assert net.rssi() == 0
    assert "not reached" in logs[-1]


async def test_already_connected_is_quick():
    wlan = FakeWlan(connect_after_attempts=0, polls_to_connect=0)
    wlan.connects = 1
    net = link(wlan, [])
    assert await net.up() and wlan.connects == 1
