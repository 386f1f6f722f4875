"""The speed of sound fusion uses: configured, or from the nodes' heartbeat thermometers."""
import pytest

from linewatch.commission.fusionhook import FusionHook
from linewatch.commission.config import ConfigError, from_dict


class Engine:
    def __init__(self):
        self.temperatures = []

    def set_temperature(self, t):
        self.temperatures.append(t)


def test_heartbeat_temperatures_set_the_median():
    engine = Engine()
    hook = FusionHook(engine, report_cls=None)
    for node, t in ((1, 8.0), (2, 9.5), (3, 30.0)):
        hook.heartbeat(node, t)
    assert engine.temperatures[-1] == 9.5
    hook.heartbeat(3, 7.0)                        # a node's newer reading replaces its older one
    assert engine.temperatures[-1] == 8.0
    hook.heartbeat(4, -3276.8)                    # a broken thermometer is ignored
    assert engine.temperatures[-1] == 8.0


def test_a_configured_temperature_wins_over_heartbeats():
    engine = Engine()
    hook = FusionHook(engine, report_cls=None, temperature_c=8.0)
    hook.heartbeat(1, 25.0)
    assert engine.temperatures == [8.0]


def test_config_temperature_is_checked():
    assert from_dict({"fusion": {"temperature_c": 8}}).fusion.temperature_c == 8.0
    assert from_dict({}).fusion.temperature_c is None
    with pytest.raises(ConfigError, match="temperature_c"):
        from_dict({"fusion": {"temperature_c": 99}})
    with pytest.raises(ConfigError, match="temperature_c"):
        from_dict({"fusion": {"temperature_c": "warm"}})
