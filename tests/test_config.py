"""Configuration as an operator meets it: a TOML file, environment overrides, clear errors."""

from __future__ import annotations

import tomllib
from dataclasses import fields
from pathlib import Path

import pytest

from dibot.config import Config, ConfigError, load_config

EXAMPLE = Path(__file__).parent.parent / "config.example.toml"


@pytest.fixture(autouse=True)
def away_from_any_config_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own ./config.toml must not change what these tests see."""
    monkeypatch.chdir(tmp_path)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "dibot.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_run_locally_on_sqlite() -> None:
    config = load_config(environ={})
    assert config == Config()
    assert config.server.host == "127.0.0.1"
    assert config.server.port == 8000
    assert config.database.url.startswith("sqlite:///")


def test_file_values_are_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[server]\nport = 9000\nworkers = 4\n[twilio]\npublic_url = "https://dibot.example.gov.uk"\n'
        '[council]\nname = "Exampleshire"\n',
    )
    config = load_config(path, environ={})
    assert config.server.port == 9000
    assert config.server.workers == 4
    assert config.twilio.public_url == "https://dibot.example.gov.uk"
    assert config.council.name == "Exampleshire"
    assert config.server.host == "127.0.0.1"  # untouched keys keep their defaults


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[server]\nport = 9000\n[database]\nurl = "sqlite:///a.db"\n')
    environ = {
        "DIBOT_SERVER_PORT": "9100",
        "DIBOT_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:5432/test",
        "DIBOT_TWILIO_AUTH_TOKEN": "secret-token",
    }
    config = load_config(path, environ=environ)
    assert config.server.port == 9100
    assert config.database.url == "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    assert config.twilio.auth_token == "secret-token"


def test_config_file_named_by_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nworkers = 3\n")
    assert load_config(environ={"DIBOT_CONFIG": str(path)}).server.workers == 3


def test_config_toml_in_the_working_directory_is_used(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[server]\nport = 8123\n", encoding="utf-8")
    assert load_config(environ={}).server.port == 8123


def test_unknown_key_is_an_error_naming_it(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nprot = 9000\n")
    with pytest.raises(ConfigError, match="unknown key 'prot' in \\[server\\]"):
        load_config(path, environ={})


def test_unknown_section_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, '[sever]\nhost = "0.0.0.0"\n')
    with pytest.raises(ConfigError, match="unknown section \\[sever\\]"):
        load_config(path, environ={})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[server]\nport = "eighty"\n', "\\[server\\] port must be a whole number"),
        ("[server]\nport = true\n", "\\[server\\] port must be a whole number"),
        ("[twilio]\nauth_token = 12345\n", "\\[twilio\\] auth_token must be a string"),
        ("server = 1\n", "\\[server\\] must be a table"),
    ],
)
def test_wrong_type_is_an_error_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text), environ={})


def test_wrong_type_in_the_environment_is_an_error() -> None:
    with pytest.raises(ConfigError, match="\\[server\\] workers must be a whole number"):
        load_config(environ={"DIBOT_SERVER_WORKERS": "many"})


def test_missing_file_and_bad_toml_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "absent.toml", environ={})
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[server\n"), environ={})


def test_example_documents_every_key_with_its_default() -> None:
    with EXAMPLE.open("rb") as handle:
        example = tomllib.load(handle)
    defaults = Config()
    documented = {(section, key) for section, keys in example.items() for key in keys}
    expected = {
        (section.name, key.name)
        for section in fields(Config)
        for key in fields(getattr(defaults, section.name))
        if key.name != "translations"  # [council.<lang>] tables, documented in a comment
    }
    assert documented == expected
    assert "# [council.cy]" in EXAMPLE.read_text(encoding="utf-8")
    for section, key in expected:
        assert example[section][key] == getattr(getattr(defaults, section), key)


@pytest.mark.parametrize("value", ["--5", "²", "8000.0", ""])
def test_a_malformed_number_in_the_environment_is_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError, match="\\[server\\] port must be a whole number"):
        load_config(environ={"DIBOT_SERVER_PORT": value})


def test_council_texts_in_another_language_from_the_file_and_the_environment(
    tmp_path: Path,
) -> None:
    path = tmp_path / "dibot.toml"
    path.write_text(
        '[council]\nname = "Cardiff Council"\n[council.cy]\nname = "Cyngor Caerdydd"\n',
        encoding="utf-8",
    )
    config = load_config(path, environ={"DIBOT_COUNCIL_CY_SIGNPOSTING": "Ffoniwch 0300 000 0000."})
    assert config.council.name == "Cardiff Council"
    assert config.council.translations == {
        "cy": {"name": "Cyngor Caerdydd", "signposting": "Ffoniwch 0300 000 0000."}
    }


@pytest.mark.parametrize(
    ("toml", "problem"),
    [
        ('[council.cy]\nnmae = "x"\n', "unknown key 'nmae' in [council.cy]"),
        ("[council.cy]\nname = 3\n", "[council.cy] name must be a string"),
        ('[council.Welsh]\nname = "x"\n', "[council.Welsh] must be a language's table"),
    ],
)
def test_council_translation_mistakes_are_named(tmp_path: Path, toml: str, problem: str) -> None:
    path = tmp_path / "dibot.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_config(path, environ={})
    assert problem in str(error.value)
