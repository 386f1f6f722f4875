# The board interface. Each board module (esp32, rp2, unix, sim) defines `Board(config)`
# with these methods; nothing above hal/ imports machine or network, and nothing above hal/
# creates hardware objects at import time: the app receives a Board and passes it in.
#
# Units: audio int16 samples; acceleration milli-g (ints); time in UTC microseconds (ints,
# 1970 epoch on every board: esp32.py converts from its 2000 epoch).


class BoardBase:
    name = "unknown"          # one of lwproto.const.BOARD_NAMES
    sensors = 0               # lwproto.const.SENSOR_* bits present on this board
    capabilities = 0          # lwproto.const.CAP_* bits

    def __init__(self, config):
        self.config = config

    # Every board defines these four itself (no raising stubs here: each function costs the
    # node's heap for good, firmware/README.md "Memory"):
    #   mic_start(rate_hz, block_samples)  the microphone fills int16 blocks at audio.rate_hz
    #   async mic_read(buf)   fill buf (array('h')) with the next samples; the number filled
    #   ticks_us()            monotonic microseconds (wraps on boards: use ticks_diff in the app)
    #   time_us()             UTC microseconds since 1970

    # --- other sensors
    def accel_read(self):
        """(x, y, z) in milli-g, or None when the board has no accelerometer."""
        return None

    def battery_mv(self):
        return 0

    def temperature_c(self):
        return 0.0

    def position(self):
        """(lat, lon, alt_m, error_m) from GPS when it has a fix, else None (config position used)."""
        return None

    # --- time
    def clock(self):
        """(clock_source, estimated_error_us) of time_us(), lwproto.const.CLOCK_*."""
        return (0, 65535)

    # --- network
    async def network_up(self):
        """Bring the link up (Wi-Fi with backoff on boards); True when usable."""
        return True

    def rssi(self):
        return 0

    async def open_connection(self, host, port, **tls):
        """(reader, writer) asyncio streams to the broker; over TLS with `ssl` (a context) and
        `server_hostname` (checked against the broker's certificate)."""
        import asyncio
        return await asyncio.open_connection(host, port, **tls)

    # --- system
    def storage_dir(self):
        """Folder in flash for the queue, boot counter and downlink counter."""
        return "."

    def free_memory(self):
        try:
            import gc
            return gc.mem_free()
        except (ImportError, AttributeError):
            return 0

    def led(self, on):
        pass

    def degraded(self):
        """The node can no longer publish (out of memory): a board blinks its LED for it
        (the node does, between tries); a board nobody watches says it otherwise."""

    def reset(self):
        raise SystemExit("reset requested")

    # A board that sleeps sets CAP_DEEP_SLEEP and defines deep_sleep(ms): power down, wake
    # after ms as a new boot (never returns on a board). No stub here (see above).

    def radio_power(self, on):
        """The radio's power save: deepest (1) on a low battery, else the board's default (0)."""

    def log(self, message):
        print(message)
