# The board's config.json, validated once at boot. Every field and its default is described in
# firmware/README.md ("Config"); a bad file stops the node with one clear line naming the field
# (main.py prints it and blinks the LED) instead of failing later in the field.
import json

from lwproto.const import CLASS_NAMES

from .settings import Config

BOARDS = ("esp32", "rp2", "unix", "sim")


class ConfigError(ValueError):
    pass


def _settings(raw):
    cfg = Config()
    cfg.node = _int(raw, "node", None, 1, 65535)
    cfg.segment = _int(raw, "segment", None, 0, 255)
    cfg.key = _key(raw)
    cfg.position = _position(_section(raw, "position", None))
    cfg.board = _choice(raw, "board", None, BOARDS)
    cfg.wifi = _wifi(_section(raw, "wifi", {}), cfg.board)
    cfg.broker = _broker(_section(raw, "broker", None))
    cfg.pins = _section(raw, "pins", {})
    cfg.audio = _audio(_section(raw, "audio", {}))
    cfg.thresholds = _per_class(_section(raw, "thresholds", {}), "thresholds", 0, 6553.5)
    cfg.refractory_ms = _per_class(_section(raw, "refractory_ms", {}), "refractory_ms",
                                   0, 65535, True)
    cfg.heartbeat_s = _int(raw, "heartbeat_s", 60, 1, 86400)
    cfg.queue = {"records": _int(_section(raw, "queue", {}), "records", 256, 8, 65535,
                                 "queue.")}
    cfg.storage = _text(raw, "storage", "data")
    cfg.feed = _section(raw, "feed", {})   # hal/unix's sample source; hal/unix checks it
    cfg.raw = raw
    return cfg


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
        raise ConfigError("config: the top level must be a JSON object, got %s" % _kind(raw))
    return _settings(raw)


# ---- field checks -----------------------------------------------------------------------

_MISSING = object()


def _kind(value):
    return type(value).__name__


def _get(raw, name, default, prefix=""):
    value = raw.get(name, _MISSING)
    if value is _MISSING or value is None:
        if default is None:
            raise ConfigError("config: %s%s is required" % (prefix, name))
        return _MISSING if default is _MISSING else default
    return value


def _fail(field, expected, value):
    raise ConfigError("config: %s must be %s, got %r" % (field, expected, value))


def _int(raw, name, default, lo, hi, prefix=""):
    value = _get(raw, name, default, prefix)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        _fail(prefix + name, "%d..%d" % (lo, hi), value)
    return value


def _number(raw, name, default, lo, hi, prefix=""):
    value = _get(raw, name, default, prefix)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        _fail(prefix + name, "a number in %s..%s" % (lo, hi), value)
    return value


def _text(raw, name, default, prefix="", empty_ok=False):
    value = _get(raw, name, default, prefix)
    if not isinstance(value, str) or (not value and not empty_ok):
        _fail(prefix + name, "a non-empty string", value)
    return value


def _optional_text(raw, name, prefix):
    value = raw.get(name)
    if value is not None and not isinstance(value, str):
        _fail(prefix + name, "a string or null", value)
    return value


def _bool(raw, name, default, prefix=""):
    value = _get(raw, name, default, prefix)
    if value is not True and value is not False:
        _fail(prefix + name, "true or false", value)
    return value


def _choice(raw, name, default, choices, prefix=""):
    value = _get(raw, name, default if default is not None else _MISSING, prefix)
    if value is _MISSING:
        return None
    if value not in choices:
        _fail(prefix + name, "one of " + "|".join(choices), value)
    return value


def _section(raw, name, default):
    value = _get(raw, name, default)
    if not isinstance(value, dict):
        _fail(name, "an object", value)
    return value


def _key(raw):
    value = _get(raw, "key", None)
    if not isinstance(value, str) or len(value) != 64:
        raise ConfigError("config: key must be 64 hex characters (the node's 32-byte key), "
                          "got a %s of length %s" % (_kind(value), len(value)
                                                     if isinstance(value, str) else "-"))
    try:
        return bytes(int(value[i:i + 2], 16) for i in range(0, 64, 2))
    except ValueError:
        # never echo the key itself: consoles end up in photos and bug reports
        raise ConfigError("config: key must be 64 hex characters, got a non-hex character")


def _position(raw):
    return {
        "lat": _number(raw, "lat", None, -90, 90, "position."),
        "lon": _number(raw, "lon", None, -180, 180, "position."),
        "alt_m": _number(raw, "alt_m", 0, -32768, 32767, "position."),
        "error_m": _number(raw, "error_m", 10, 0, 65535, "position."),
    }


def _wifi(raw, board):
    needed = board in ("esp32", "rp2")
    ssid = _text(raw, "ssid", None, "wifi.") if needed else _optional_text(raw, "ssid", "wifi.")
    return {"ssid": ssid, "password": _optional_text(raw, "password", "wifi.")}


def _broker(raw):
    return {
        "host": _text(raw, "host", None, "broker."),
        "port": _int(raw, "port", 1883, 1, 65535, "broker."),
        "user": _optional_text(raw, "user", "broker."),
        "password": _optional_text(raw, "password", "broker."),
        "keepalive_s": _int(raw, "keepalive_s", 60, 5, 3600, "broker."),
    }


def _audio(raw):
    rate = _int(raw, "rate_hz", 16000, 8000, 16000, "audio.")
    block = _int(raw, "block", 512, 64, 4096, "audio.")
    hop = max(8, rate // 1000)   # the impulse detector works in hops of ~1 ms
    if block % hop:
        _fail("audio.block", "a multiple of %d at %d Hz" % (hop, rate), block)
    return {"rate_hz": rate, "block": block}


def _per_class(raw, section, lo, hi, integer=False):
    out = {}
    for name, value in raw.items():
        if name not in CLASS_NAMES:
            _fail(section, "keyed by class names (" + ", ".join(CLASS_NAMES) + ")", name)
        if integer:
            out[CLASS_NAMES.index(name)] = _int(raw, name, None, lo, hi, section + ".")
        else:
            out[CLASS_NAMES.index(name)] = _number(raw, name, None, lo, hi, section + ".")
    return out
