"""Bad config, unreachable broker and unwritable DB: a clear message and a non-zero exit."""
from __future__ import annotations

import os

import pytest

from linewatch import cli, keys
from linewatch.commission import config as cfg
from linewatch.commands.aggregator import EXIT_BROKER, EXIT_CONFIG, EXIT_STORE
from linewatch.mosquitto import free_port


def write(tmp_path, text):
    path = tmp_path / "aggregator.toml"
    path.write_text(text)
    return path


def test_documented_example_loads_and_equals_the_defaults():
    example = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "aggregator.toml")
    loaded = cfg.load(example)
    assert loaded.broker == cfg.Config().broker and loaded.acks == cfg.Config().acks
    assert loaded.health == cfg.Config().health and loaded.alerts == cfg.Config().alerts
    assert loaded.evidence == cfg.Config().evidence and loaded.desk == cfg.Config().desk
    assert [p.name for p in loaded.report.places] == ["Novoselivka", "Krasnyi Yar"]
    assert cfg.validate(loaded) == loaded          # validating twice keeps the places as they are


@pytest.mark.parametrize("text, message", [
    ("[broker]\nport = 70000\n", "port 70000"),
    ("[broker]\nport = \"x\"\n", "[broker] port"),
    ("[brocker]\n", "unknown section [brocker]"),
    ("[store]\nsynchronus = \"FULL\"\n", "unknown field 'synchronus'"),
    ("[store]\nsynchronous = \"OFF\"\n", "synchronous 'OFF'"),
    ("[fusion]\nline = [[48.0, 37.0]]\n", "at least two"),
    ("[broker\n", "not valid TOML"),
    ('[report]\nplaces = [{ name = "Pisky", lat = 95, lon = 37.7 }]\n', "entry 1 (Pisky): lat must be a number in -90..90"),
    ('[report]\nplaces = [{ name = " ", lat = 48, lon = 37 }]\n', "entry 1: name must be a non-empty text"),
    ('[report]\nplaces = [{ name = "A", lat = 48, lon = 37, alt = 3 }]\n', "entry 1: unknown field 'alt'"),
    ('[report]\nplaces = [{ name = "A", lat = 48, lon = 37 }, "B"]\n', "entry 2: 'B' is not a table"),
    ('[report]\nplaces = [{ name = "A", lat = 48, lon = 37 }, { name = "A", lat = 47, lon = 37 }]\n',
     "entry 2: the name 'A' is given twice"),
    ('[report]\nplaces = { name = "A" }\n', "[report] places"),
    ("[desk]\nlisten = \"8470\"\n", "[desk] listen '8470': expected HOST:PORT"),
    ("[desk]\nlisten = \"127.0.0.1:99999\"\n", "[desk] listen"),
    ("[desk]\nsession_minutes = 0\n", "[desk] session_minutes must be in 1..10080"),
    ("[desk]\nobservers = \"yes\"\n", "[desk] observers"),
    ("[desk]\nbasemap_file = \"map.png\"\n", "basemap_file and basemap_bounds go together"),
    ("[desk]\nbasemap_file = \"m.png\"\nbasemap_bounds = [48, 37, 47, 38]\n", "south < north"),
])
def test_bad_config_is_refused_with_the_field_named(tmp_path, capsys, text, message):
    path = write(tmp_path, text)
    assert cli.main(["aggregator", "--config", str(path)]) == EXIT_CONFIG
    assert message in capsys.readouterr().err


def test_unreachable_broker_exits_after_retries(tmp_path, capsys):
    keys.create_master_key(tmp_path / "master.key")
    path = write(tmp_path, f'[broker]\nport = {free_port()}\nconnect_retries = 1\nretry_delay_s = 0.1\n'
                           '[store]\npath = "lw.db"\n[keys]\nmaster_key_file = "master.key"\n')
    assert cli.main(["aggregator", "--config", str(path)]) == EXIT_BROKER
    assert "unreachable after 2 tries" in capsys.readouterr().err


@pytest.mark.parametrize("db, message", [("missing/lw.db", "does not exist"), ("a-folder", "a-folder")])
def test_unwritable_database_is_refused(tmp_path, capsys, db, message):
    keys.create_master_key(tmp_path / "master.key")
    (tmp_path / "a-folder").mkdir()
    # a free port, never the machine's broker: if the store were opened, connecting fails fast
    path = write(tmp_path, f'[broker]\nport = {free_port()}\nconnect_retries = 0\n'
                           f'[store]\npath = "{db}"\n[keys]\nmaster_key_file = "master.key"\n')
    assert cli.main(["aggregator", "--config", str(path)]) == EXIT_STORE
    assert message in capsys.readouterr().err


def test_flags_override_the_file(tmp_path):
    path = write(tmp_path, '[broker]\nhost = "10.0.0.1"\nport = 1883\n')
    args = cli.build_parser().parse_args(["aggregator", "--config", str(path), "--broker", "127.0.0.1:2000",
                                          "--db", "/tmp/x.db"])
    config = cfg.from_args(args)
    assert (config.broker.host, config.broker.port, config.store.path) == ("127.0.0.1", 2000, "/tmp/x.db")
