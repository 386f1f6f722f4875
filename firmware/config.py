# The board's config.json, validated once at boot. Every field and its default is described in
# firmware/README.md ("Config"); a bad file stops the node with one clear line naming the field
# (main.py prints it and blinks the LED) instead of failing later in the field.
#
# This module is unloaded after boot, but every name it holds stays interned in RAM for good
# (firmware/README.md "Memory"): the sections are checked in one function rather than one
# helper each, and field paths are made from the section's name ("broker" + "port").
import json

from lwproto.const import CLASS_NAMES

from .settings import Config

BOARDS = ("esp32", "rp2", "unix", "sim")


class ConfigError(ValueError):
    pass


def load(path):
    """Config from a JSON file; ConfigError (one line, naming the problem) for anything wrong."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        raise ConfigError("config: cannot read %s (missing? copy the provisioned config.json "
                          "onto the board)" % path)
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ConfigError("config: %s is not valid JSON (%s)" % (path, exc))
    return parse(raw)


def parse(raw):
    if not isinstance(raw, dict):
        raise ConfigError("config: the top level must be a JSON object, got %s"
                          % type(raw).__name__)
    cfg = Config()
    cfg.node = _number(raw, "node", None, 1, 65535)
    cfg.segment = _number(raw, "segment", None, 0, 255)
    cfg.key = _key(raw)
    sec = _section(raw, "position", None)
    cfg.position = {
        "lat": _number(sec, "lat", None, -90, 90, "position", False),
        "lon": _number(sec, "lon", None, -180, 180, "position", False),
        "alt_m": _number(sec, "alt_m", 0, -32768, 32767, "position", False),
        "error_m": _number(sec, "error_m", 10, 0, 65535, "position", False),
    }
    cfg.board = board = raw.get("board")   # None: from sys.platform (boot.board_module)
    if board is not None and board not in BOARDS:
        _fail("", "board", "one of " + "|".join(BOARDS), board)
    sec = _section(raw, "wifi", {})
    cfg.wifi = {"ssid": _text(sec, "ssid", board not in ("esp32", "rp2"), "wifi"),
                "password": _text(sec, "password", True, "wifi")}
    sec = _section(raw, "broker", None)
    cfg.broker = {
        "host": _text(sec, "host", False, "broker"),
        "port": _number(sec, "port", 1883, 1, 65535, "broker"),
        "user": _text(sec, "user", True, "broker"),
        "password": _text(sec, "password", True, "broker"),
        "keepalive_s": _number(sec, "keepalive_s", 60, 5, 3600, "broker"),
        "ca": _text(sec, "ca", True, "broker"),   # the line's CA (PEM): TLS; null: plain MQTT
    }
    cfg.pins = _section(raw, "pins", {})
    sec = _section(raw, "audio", {})
    rate = _number(sec, "rate_hz", 16000, 8000, 16000, "audio")
    block = _number(sec, "block", 512, 64, 4096, "audio")
    hop = max(8, rate // 1000)   # the impulse detector works in hops of ~1 ms
    if block % hop:
        _fail("audio", "block", "a multiple of %d at %d Hz" % (hop, rate), block)
    cfg.audio = {"rate_hz": rate, "block": block}
    cfg.thresholds = _per_class(raw, "thresholds", 0, 6553.5, False)
    cfg.refractory_ms = _per_class(raw, "refractory_ms", 0, 65535, True)
    cfg.heartbeat_s = _number(raw, "heartbeat_s", 60, 1, 86400)
    cfg.queue = {"records": _number(_section(raw, "queue", {}), "records", 256, 8, 65535,
                                    "queue")}
    storage = _get(raw, "storage", "data")
    if not isinstance(storage, str) or not storage:
        _fail("", "storage", "a non-empty string", storage)
    cfg.storage = storage
    # power: keys over 10 characters are not interned in the node's RAM (README "Memory"); the
    # node reads the settings as a tuple (node.py: save mV, sleep mV, sleep s, save heartbeat s,
    # quiet windows as (start, end) seconds of the UTC day)
    sec = _section(raw, "power", {})
    cfg.power = (_number(sec, "save_below_mv", 3500, 0, 65535, "power"),
                 _number(sec, "sleep_below_mv", 3350, 0, 65535, "power"),
                 _number(sec, "low_battery_sleep_s", 3600, 1, 604800, "power"),
                 _number(sec, "save_heartbeat_s", 300, 1, 65535, "power"),
                 _windows(sec.get("quiet_windows") or ()))
    cfg.feed = _section(raw, "feed", {})   # hal/unix's sample source; hal/unix checks it
    cfg.raw = raw
    return cfg


# ---- field checks: `section` is the name of the object a field is in ("" at the top) --------

def _get(raw, name, default, section=""):
    value = raw.get(name)
    if value is None:
        if default is None:
            raise ConfigError("config: %s%s is required" % (section and section + ".", name))
        return default
    return value


def _fail(section, name, expected, value):
    raise ConfigError("config: %s%s must be %s, got %r"
                      % (section and section + ".", name, expected, value))


def _number(raw, name, default, min, max, section="", integer=True):
    value = _get(raw, name, default, section)
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)) \
            or not min <= value <= max:
        _fail(section, name, "%d..%d" % (min, max) if integer else "a number in %s..%s" % (min, max),
              value)
    return value


def _text(raw, name, null_ok, section):
    """A non-empty string, or when null_ok any string or null (None)."""
    value = raw.get(name)
    if value is None and null_ok:
        return None
    if value is None:
        _get(raw, name, None, section)
    if not isinstance(value, str) or not (value or null_ok):
        _fail(section, name, "a string or null" if null_ok else "a non-empty string", value)
    return value


def _section(raw, name, default):
    value = _get(raw, name, default)
    if not isinstance(value, dict):
        _fail("", name, "an object", value)
    return value


def _key(raw):
    value = _get(raw, "key", None)
    if not isinstance(value, str) or len(value) != 64:
        raise ConfigError("config: key must be 64 hex characters (the node's 32-byte key), "
                          "got a %s of length %s" % (type(value).__name__, len(value)
                                                     if isinstance(value, str) else "-"))
    try:
        return bytes(int(value[i:i + 2], 16) for i in range(0, 64, 2))
    except ValueError:
        # never echo the key itself: consoles end up in photos and bug reports
        raise ConfigError("config: key must be 64 hex characters, got a non-hex character")


def _windows(raw):
    """((start, end) seconds of the UTC day, ...) from [["HH:MM", "HH:MM[:SS]"], ...]."""
    out = []
    try:
        for start, end in raw:
            pair = []
            for text in (start, end):
                parts = [int(p) for p in text.split(":")] + [0]
                if len(parts) > 4 or not (0 <= parts[0] < 24 and 0 <= parts[1] < 60
                                          and 0 <= parts[2] < 60):
                    raise ValueError
                pair.append(parts[0] * 3600 + parts[1] * 60 + parts[2])
            if pair[0] == pair[1]:
                raise ValueError
            out.append(tuple(pair))
    except (ValueError, TypeError, AttributeError):
        _fail("power", "quiet_windows", 'a list of ["HH:MM", "HH:MM"] pairs (UTC, start before '
              "end or across midnight)", raw)
    return tuple(out)


def _per_class(raw, section, min, max, integer):
    out = {}
    raw = _section(raw, section, {})
    for name, value in raw.items():
        if name not in CLASS_NAMES:
            _fail("", section, "keyed by class names (" + ", ".join(CLASS_NAMES) + ")", name)
        out[CLASS_NAMES.index(name)] = _number(raw, name, None, min, max, section, integer)
    return out
