"""Config validation: defaults filled, every bad field named in one clear line."""
import json

import pytest

from lwnode import config

GOOD = {"node": 0x0102, "segment": 3, "key": "ab" * 32, "position": {"lat": 48.0, "lon": 37.7},
        "broker": {"host": "10.0.0.2"}, "board": "unix"}


def parsed(**changes):
    raw = json.loads(json.dumps(GOOD))
    for path, value in changes.items():
        where = raw
        parts = path.split("__")
        for part in parts[:-1]:
            where = where.setdefault(part, {})
        where[parts[-1]] = value
    return config.parse(raw)


def test_defaults_are_filled_in():
    cfg = parsed()
    assert cfg.key == bytes([0xAB]) * 32
    assert cfg.broker == {"host": "10.0.0.2", "port": 1883, "user": None, "password": None,
                          "keepalive_s": 60, "ca": None}
    assert cfg.audio == {"rate_hz": 16000, "block": 512}
    assert (cfg.heartbeat_s, cfg.queue["records"], cfg.storage) == (60, 256, "data")
    assert cfg.position["error_m"] == 10 and cfg.name() == "0x0102"


def test_thresholds_are_keyed_by_class_name():
    cfg = parsed(thresholds={"explosion": 12.5, "tamper": 500}, refractory_ms={"drone": 1000})
    assert cfg.thresholds == {1: 12.5, 5: 500} and cfg.refractory_ms == {3: 1000}


@pytest.mark.parametrize("changes, message", [
    ({"broker__port": "abc"}, "config: broker.port must be 1..65535, got 'abc'"),
    ({"node": 0}, "config: node must be 1..65535, got 0"),
    ({"segment": 256}, "config: segment must be 0..255, got 256"),
    ({"position__lat": 91}, "config: position.lat must be a number in -90..90, got 91"),
    ({"audio__rate_hz": 44100}, "config: audio.rate_hz must be 8000..16000, got 44100"),
    ({"audio__block": 500}, "config: audio.block must be a multiple of 16 at 16000 Hz, got 500"),
    ({"board": "arduino"}, "config: board must be one of esp32|rp2|unix|sim, got 'arduino'"),
    ({"thresholds": {"tank": 3}}, "config: thresholds must be keyed by class names"),
    ({"heartbeat_s": True}, "config: heartbeat_s must be 1..86400, got True"),
    ({"board": "esp32"}, "config: wifi.ssid is required"),
])
def test_bad_fields_are_named(changes, message):
    with pytest.raises(config.ConfigError) as info:
        parsed(**changes)
    assert str(info.value).startswith(message)


def test_key_is_checked_and_never_echoed():
    with pytest.raises(config.ConfigError, match="64 hex characters"):
        parsed(key="ab" * 31)
    secret = "zz" + "ab" * 31
    with pytest.raises(config.ConfigError) as info:
        parsed(key=secret)
    assert secret not in str(info.value)


def test_missing_required_and_unreadable_files(tmp_path):
    raw = dict(GOOD)
    del raw["broker"]
    with pytest.raises(config.ConfigError, match="config: broker is required"):
        config.parse(raw)
    with pytest.raises(config.ConfigError, match="cannot read"):
        config.load(str(tmp_path / "nope.json"))
    (tmp_path / "bad.json").write_text("{node: 1")
    with pytest.raises(config.ConfigError, match="not valid JSON"):
        config.load(str(tmp_path / "bad.json"))
    with pytest.raises(config.ConfigError, match="top level must be a JSON object"):
        config.parse([1])


def test_config_loads_on_micropython(micropython, tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(dict(GOOD, broker={"host": "h", "port": "abc"})))
    code = ("from lwnode import config\ntry:\n config.load(%r)\nexcept config.ConfigError as e:\n"
            " print(e)\nprint(config.load(%r).node if False else 'done')\n" % (str(path), str(path)))
    result = micropython.run_code(code)
    assert "config: broker.port must be 1..65535, got 'abc'" in result.stdout, result.stdout
