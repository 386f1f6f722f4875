"""esp32.py and rp2.py on CPython with fake machine/network modules: wiring from the config,
battery scaling, GPS PPS time taking over from the RTC, and clear errors for bad pins."""
import importlib
import sys
import time
import types

import pytest

from lwproto.const import CLOCK_ERROR_MAX_US, CLOCK_GPS_PPS, CLOCK_NONE, SENSOR_GPS


class Pin:
    OUT, IN, ALT, IRQ_RISING, PULL_DOWN = 1, 0, 3, 1, 2
    made = []

    def __init__(self, gpio, mode=None, value=None, **kw):
        self.gpio, self.mode, self.state, self.handler = gpio, mode, value, None
        Pin.made.append(self)

    def value(self, v=None):
        self.state = v

    def irq(self, trigger, handler, hard=False):
        self.handler = handler


class ADC:
    ATTN_11DB = 3

    def __init__(self, pin, atten=None):
        self.pin = pin

    def read_uv(self):
        return 1850000

    def read_u16(self):
        return 30000


class UART:
    def __init__(self, bus, **kw):
        self.bus, self.kw, self.pending = bus, kw, b""

    def any(self):
        return len(self.pending)

    def read(self, n):
        data, self.pending = self.pending[:n], self.pending[n:]
        return data


class I2C:
    def __init__(self, bus, **kw):
        pass

    def scan(self):
        return []


class WLAN:
    def __init__(self, interface):
        pass

    def isconnected(self):
        return False


def fake_modules():
    machine = types.SimpleNamespace(Pin=Pin, ADC=ADC, UART=UART, I2C=I2C, I2S=None,
                                    disable_irq=lambda: 1, enable_irq=lambda state: None,
                                    reset=lambda: None, deepsleep=lambda ms: None)
    return {"machine": machine,
            "network": types.SimpleNamespace(WLAN=WLAN, STA_IF=0),
            "esp32": types.SimpleNamespace(raw_temperature=lambda: 122),
            "micropython": types.SimpleNamespace(schedule=lambda f, arg: f(arg), const=lambda x: x)}


@pytest.fixture
def boards(monkeypatch):
    for name, module in fake_modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    clock = {"us": 1000}
    monkeypatch.setattr(time, "ticks_us", lambda: clock["us"], raising=False)
    monkeypatch.setattr(time, "ticks_ms", lambda: clock["us"] // 1000, raising=False)
    monkeypatch.setattr(time, "ticks_diff", lambda a, b: a - b, raising=False)
    for name in ("lwnode.hal.mcu", "lwnode.hal.esp32", "lwnode.hal.rp2"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    Pin.made = []
    yield types.SimpleNamespace(esp32=importlib.import_module("lwnode.hal.esp32"),
                                rp2=importlib.import_module("lwnode.hal.rp2"), clock=clock)
    for name in ("lwnode.hal.mcu", "lwnode.hal.esp32", "lwnode.hal.rp2"):
        sys.modules.pop(name, None)


def config(**raw):
    return types.SimpleNamespace(raw=raw, wifi={"ssid": "ap", "password": None})


def test_esp32_defaults_battery_and_temperature(boards):
    board = boards.esp32.Board(config())
    assert board.pins["mic_sd"] == 33 and board.gps is None
    assert board.battery_mv() == 3700                    # 1.85 V at the divider midpoint x 2
    assert board.temperature_c() == pytest.approx(50.0)  # 122 F, no accelerometer
    assert board.accel_read() is None
    assert board.clock() == (CLOCK_NONE, CLOCK_ERROR_MAX_US)


def test_rp2_vsys_reads_through_the_wifi_quirk(boards):
    board = boards.rp2.Board(config())
    mv = board.battery_mv()
    assert mv == int(30000 * 3300000 / 65535 * 3.0 / 1000)
    gpio29 = [p for p in Pin.made if p.gpio == 29]
    assert gpio29[-1].mode == Pin.ALT                    # handed back to the Wi-Fi chip


def test_rp2_refuses_ws_not_next_to_sck(boards):
    board = boards.rp2.Board(config(pins={"mic_ws": 20}))
    with pytest.raises(ValueError, match="mic_ws must be pins.mic_sck"):
        board.mic_start(16000, 512)


def test_bad_pin_is_named(boards):
    with pytest.raises(ValueError, match="pins.led must be a GPIO number 0..39"):
        boards.esp32.Board(config(pins={"led": 99}))


def test_gps_pps_takes_over_the_clock(boards):
    board = boards.rp2.Board(config(hardware={"gps": True}))
    assert board.sensors & SENSOR_GPS
    pps = [p for p in Pin.made if p.gpio == 10][-1]
    rmc = "GPRMC,123519.00,A,4807.038,N,01131.000,E,0.0,0.0,230394,,"
    check = 0
    for ch in rmc:
        check ^= ord(ch)
    boards.clock["us"] = 5000000
    pps.handler(pps)                                     # pulse of 12:35:19
    board._uart.pending = ("$%s*%02X\r\n" % (rmc, check)).encode()
    boards.clock["us"] = 6000000
    pps.handler(pps)                                     # next pulse pairs the first
    boards.clock["us"] = 6250000
    source, error = board.clock()
    # the PPS capture, 62 us of drift allowance, the 1 ms allowance for dating a block
    assert source == CLOCK_GPS_PPS and error == 20 + 62 + 1000
    second = 3920186119 * 1000000                        # 2094-03-23 12:35:19 UTC (yy=94)
    assert board.time_us() == second + 1250000
    assert board.position()[:2] == pytest.approx((48.1173, 11.5167), abs=1e-4)


# ---- the sample feed from flash (hil tests on hardware): hal/feed.py through hal/mcu.py

def feed_config(path, **feed):
    cfg = config(pins={"mic_sck": None, "mic_ws": None, "mic_sd": None})
    cfg.feed = dict({"audio": str(path)}, **feed)
    return cfg


def raw_file(tmp_path, samples):
    from array import array
    path = tmp_path / "feed.raw"
    path.write_bytes(array("h", samples).tobytes())
    return path


def read_all(board, block=4):
    import asyncio
    from array import array

    async def run():
        out = []
        while True:
            buf = array("h", [0] * block)
            n = await board.mic_read(buf)
            if not n:
                return out
            out.append((list(buf[:n]), board.time_us()))
    return asyncio.run(run())


def test_no_feed_section_keeps_the_microphone_and_never_loads_the_feed_code(boards, monkeypatch):
    monkeypatch.delitem(sys.modules, "lwnode.hal.feed", raising=False)
    board = boards.esp32.Board(config())
    assert board._feed is None and "lwnode.hal.feed" not in sys.modules
    with pytest.raises(ValueError, match="pins.mic_sck, mic_ws and mic_sd are needed"):
        boards.esp32.Board(config(pins={"mic_sd": None})).mic_start(16000, 512)


@pytest.mark.parametrize("board_name", ["esp32", "rp2"])
def test_a_fast_feed_replaces_the_microphone_with_its_virtual_clock(boards, tmp_path, capsys,
                                                                    board_name):
    from lwproto.const import CLOCK_NTP
    path = raw_file(tmp_path, range(-3, 7))                       # 10 samples
    board = getattr(boards, board_name).Board(
        feed_config(path, realtime=False, plays=2, start_us=1795000000000000))
    assert "MICROPHONE OFF" in capsys.readouterr().out              # never silent at boot
    board.mic_start(8000, 4)                                        # no mic pins needed
    blocks = read_all(board)
    samples = [s for block, _ in blocks for s in block]
    assert samples == list(range(-3, 7)) * 2                        # played twice, then ends
    assert [at for _, at in blocks][:3] == [1795000000000000 + us for us in (500, 1000, 1250)]
    assert board.clock() == (CLOCK_NTP, 2000)
    assert blocks[-1][1] == 1795000000000000 + 20 * 125             # 20 samples at 8 kHz


def test_a_realtime_feed_is_paced_by_the_board_clock_and_keeps_the_board_time(boards, tmp_path,
                                                                              monkeypatch):
    import asyncio
    from lwnode.hal import feed as feed_module
    waits = []

    async def sleep(seconds):
        waits.append(seconds)
    monkeypatch.setattr(feed_module.asyncio, "sleep", sleep)
    monkeypatch.setattr(time, "time_ns", lambda: 5_000_000_000)     # the board's clock stands still
    board = boards.esp32.Board(feed_config(raw_file(tmp_path, [1] * 1600), plays=0))
    board.mic_start(16000, 800)
    from array import array
    buf = array("h", [0] * 800)
    for _ in range(3):                                              # plays 0: loops forever
        assert asyncio.run(board.mic_read(buf)) == 800
    assert waits == [0.05, 0.1, 0.15]                               # 50 ms a block, due from start
    assert board.clock() == (CLOCK_NONE, CLOCK_ERROR_MAX_US)       # its own clock, not the feed's
    assert board.time_us() == 5_000_000 + board._epoch_us


@pytest.mark.parametrize("feed, error", [
    ({"audio": ""}, "feed.audio must be the path"),
    ({"audio": "f.raw", "plays": -1}, "feed.plays must be 0"),
    ({"audio": "f.raw", "start_us": "soon"}, "feed.start_us must be UTC"),
])
def test_a_bad_feed_section_is_named_at_boot(boards, feed, error):
    cfg = config()
    cfg.feed = feed
    with pytest.raises(ValueError, match=error):
        boards.rp2.Board(cfg)


def test_a_missing_feed_file_fails_the_microphone_start(boards, tmp_path):
    board = boards.esp32.Board(feed_config(tmp_path / "nowhere.raw"))
    with pytest.raises(OSError):
        board.mic_start(16000, 512)
