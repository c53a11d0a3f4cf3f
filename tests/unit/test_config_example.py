"""config.example.toml documents every setting, and loads as it stands."""

import dataclasses
import tomllib
import typing
from pathlib import Path

from idp import config

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"


def test_example_documents_every_setting_with_its_default():
    raw = tomllib.loads(EXAMPLE.read_text())
    defaults = config.Settings()
    for field in dataclasses.fields(config.Settings):
        if field.name == "source":
            continue
        section = getattr(defaults, field.name)
        for key in typing.get_type_hints(type(section)):
            assert key in raw.get(field.name, {}), f"[{field.name}] {key} missing from config.example.toml"
            assert raw[field.name][key] == getattr(section, key), f"[{field.name}] {key} default differs"


def test_example_loads():
    settings = config.load(EXAMPLE, env={})
    assert settings.source == str(EXAMPLE)
