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
        ('[server]\nport = "8000"\n', "\\[server\\] port must be a whole number, not '8000'"),
        ("[server]\nport = true\n", "\\[server\\] port must be a whole number"),
        ("[twilio]\nauth_token = 12345\n", "\\[twilio\\] auth_token must be a string"),
        ("server = 1\n", "\\[server\\] must be a table"),
    ],
)
def test_wrong_type_is_an_error_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text), environ={})


def test_a_number_in_the_environment_is_text_to_read(tmp_path: Path) -> None:
    """Environment variables are text by nature; a file's string is a string, not a number."""
    assert load_config(environ={"DIBOT_SERVER_PORT": " 8000 "}).server.port == 8000
    path = write(tmp_path, "[server]\nworkers = 3\n")
    assert load_config(path, environ={"DIBOT_SERVER_WORKERS": "4"}).server.workers == 4


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


@pytest.mark.parametrize(
    ("text", "environ", "message"),
    [
        ("[server]\nport = 70000\n", {}, "[server] port must be from 1 to 65535, not 70000"),
        ("[server]\nport = 0\n", {}, "[server] port must be from 1 to 65535, not 0"),
        ("", {"DIBOT_SERVER_PORT": "-1"}, "[server] port must be from 1 to 65535, not -1"),
        ("[server]\nworkers = 0\n", {}, "[server] workers must be at least 1, not 0"),
    ],
)
def test_a_port_or_worker_count_no_server_could_use_is_an_error(
    tmp_path: Path, text: str, environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, text), environ=environ)
    assert str(error.value) == message


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (
            "postgresql+psycopg2://dibot:hunter2@127.0.0.1/dibot",
            "[database] url names 'postgresql+psycopg2'",
        ),
        ("mysql://dibot:hunter2@127.0.0.1/dibot", "[database] url names 'mysql'"),
        ("dibot.db", "[database] url is not a database URL"),
        ("postgresql+psycopg://dibot:hunter2@127.0.0.1:port/dibot", "is not a database URL"),
    ],
)
def test_a_database_other_than_sqlite_or_postgresql_is_an_error(url: str, problem: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(environ={"DIBOT_DATABASE_URL": url})
    message = str(error.value)
    assert problem in message
    assert "use sqlite:///… or postgresql://…" in message
    assert "hunter2" not in message


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///var/dibot.db",
        "sqlite://",
        "postgresql+psycopg://u@127.0.0.1:5432/d",
        "postgresql://u:p%40ss@127.0.0.1:5432/d",  # psycopg 3 implied
        "postgres://u@127.0.0.1/d",  # as some hosts give it
    ],
)
def test_sqlite_and_postgresql_through_psycopg_are_accepted(url: str) -> None:
    assert load_config(environ={"DIBOT_DATABASE_URL": url}).database.url == url


def test_a_misspelt_environment_variable_is_an_error_naming_the_sections_variables() -> None:
    with pytest.raises(ConfigError) as error:
        load_config(environ={"DIBOT_TWILIO_AUTHTOKEN": "secret-token"})
    assert str(error.value) == (
        "environment variable DIBOT_TWILIO_AUTHTOKEN names no setting; [twilio] is set by "
        "DIBOT_TWILIO_ACCOUNT_SID, DIBOT_TWILIO_AUTH_TOKEN, DIBOT_TWILIO_FROM_NUMBER, "
        "DIBOT_TWILIO_MESSAGING_SERVICE_SID, DIBOT_TWILIO_PUBLIC_URL, "
        "DIBOT_TWILIO_API_BASE_URL, DIBOT_TWILIO_SEGMENTS_PER_SECOND"
    )
    assert "secret-token" not in str(error.value)


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("DIBOT_DATABSE_URL", "DIBOT_CONFIG names the config file"),
        (
            "DIBOT_COUNCIL_CY_SIGNPOST",
            "DIBOT_COUNCIL_<LANG>_{NAME,PRIVACY_URL,HELPLINE,SIGNPOSTING,HELP_DEVICE,HELP_DATA,"
            "HELP_SKILLS}",
        ),
        ("DIBOT_COUNCIL_TRANSLATIONS", "DIBOT_COUNCIL_SIGNPOSTING"),
        ("dibot_server_port", "[server] is set by DIBOT_SERVER_HOST, DIBOT_SERVER_PORT"),
        ("DIBOT_CONFIG_FILE", "DIBOT_CONFIG names the config file"),
    ],
)
def test_every_dibot_variable_that_names_no_setting_is_an_error(name: str, words: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(environ={name: "x"})
    assert str(error.value).startswith(f"environment variable {name} names no setting")
    assert words in str(error.value)


def test_every_documented_variable_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    environ = {
        "DIBOT_CONFIG": str(path),
        "DIBOT_SERVER_HOST": "127.0.0.1",
        "DIBOT_SERVER_PORT": "8001",
        "DIBOT_SERVER_WORKERS": "1",
        "DIBOT_DATABASE_URL": "sqlite:///x.db",
        "DIBOT_TWILIO_ACCOUNT_SID": "AC0",
        "DIBOT_TWILIO_AUTH_TOKEN": "t",
        "DIBOT_TWILIO_FROM_NUMBER": "+447700900001",
        "DIBOT_TWILIO_MESSAGING_SERVICE_SID": "MG0",
        "DIBOT_TWILIO_PUBLIC_URL": "https://dibot.example.gov.uk",
        "DIBOT_TELEGRAM_BOT_TOKEN": "1:a",
        "DIBOT_TELEGRAM_WEBHOOK_SECRET": "s",
        "DIBOT_TELEGRAM_API_BASE_URL": "http://127.0.0.1:1/bot",
        "DIBOT_COUNCIL_NAME": "Testshire Council",
        "DIBOT_COUNCIL_PRIVACY_URL": "testshire.gov.uk/privacy",
        "DIBOT_COUNCIL_HELPLINE": "0300 000 0000",
        "DIBOT_COUNCIL_SIGNPOSTING": "Call us.",
        "DIBOT_COUNCIL_CY_NAME": "Cyngor Testshire",
        "DIBOT_FLOW_PATH": "",
        "DIBOT_FLOW_LANGUAGES": "en,cy",
    }
    config = load_config(environ=environ)
    assert config.server.workers == 1
    assert config.council.translations == {"cy": {"name": "Cyngor Testshire"}}


def test_sqlite_durability_is_normal_unless_full_is_asked_for(tmp_path: Path) -> None:
    """The service's engine syncs SQLite as configured: NORMAL by default, FULL when asked."""
    import sqlalchemy as sa

    from dibot.runtime import Runtime

    url = f"sqlite:///{tmp_path / 'dibot.db'}"
    levels = {}
    for given, pragma in (({}, "normal"), ({"DIBOT_DATABASE_SQLITE_SYNCHRONOUS": "full"}, "full")):
        config = load_config(environ={"DIBOT_DATABASE_URL": url, **given})
        assert config.database.sqlite_synchronous == pragma
        engine = Runtime(config).engine
        with engine.connect() as conn:
            levels[pragma] = conn.execute(sa.text("PRAGMA synchronous")).scalar()
        engine.dispose()
    assert levels == {"normal": 1, "full": 2}


def test_operator_commands_sync_sqlite_as_the_service_does(tmp_path: Path) -> None:
    """`dibot retention`, `erase`, `staff add`, `personas` write with the configured durability
    too: a council that asked for FULL gets it from every command, not only the service."""
    import sqlalchemy as sa

    from dibot.privacy_commands import keyed_engine
    from dibot.runtime import command_engine
    from storage.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'dibot.db'}"
    config = load_config(
        environ={
            "DIBOT_DATABASE_URL": url,
            "DIBOT_DATABASE_SQLITE_SYNCHRONOUS": "full",
            "DIBOT_PRIVACY_ENCRYPTION_KEY": "",
        }
    )
    upgrade(url)
    engines = [command_engine(config), command_engine(config, poolclass=sa.NullPool)]
    engines.append(keyed_engine(config))
    levels = []
    for engine in engines:
        with engine.connect() as conn:
            levels.append(conn.execute(sa.text("PRAGMA synchronous")).scalar())
        engine.dispose()
    assert levels == [2, 2, 2]


def test_an_unknown_sqlite_durability_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, '[database]\nsqlite_synchronous = "off"\n')
    with pytest.raises(
        ConfigError, match="sqlite_synchronous must be 'normal' or 'full', not 'off'"
    ):
        load_config(path, environ={})
