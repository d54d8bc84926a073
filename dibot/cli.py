"""The `dibot` command: serve, db upgrade, chat, telegram, worker.

Every command reads the same configuration (`--config FILE`, else `$DIBOT_CONFIG`, else
`./config.toml`, else defaults, with `DIBOT_<SECTION>_<KEY>` on top). A configuration or flow
that cannot be used is reported in one line and exits with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.exc import OperationalError

from dibot.config import Config, ConfigError, load_config
from dibot.runtime import Runtime
from flows.loader import FlowError

USAGE_ERROR = 2
FAILURE = 1
INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    arguments = parser.parse_args(argv)
    command: Callable[[argparse.Namespace, Config], int] = arguments.command
    try:
        config = load_config(arguments.config)
        return command(arguments, config)
    except (ConfigError, FlowError) as error:
        print(f"dibot: {error}", file=sys.stderr)
        return USAGE_ERROR
    except OperationalError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else type(error).__name__
        print(f"dibot: cannot use the database: {reason}", file=sys.stderr)
        return FAILURE
    except OSError as error:  # e.g. an SQLite directory that cannot be created
        print(f"dibot: {error}", file=sys.stderr)
        return FAILURE
    except KeyboardInterrupt:
        return INTERRUPTED


def serve(arguments: argparse.Namespace, config: Config) -> int:
    """The web service under gunicorn's sync workers (right for SQLite's single writer)."""
    from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]

    from dibot.web import create_app

    app = create_app(config)

    class Server(BaseApplication):  # type: ignore[misc]  # gunicorn is untyped
        def load_config(self) -> None:
            self.cfg.set("bind", f"{config.server.host}:{config.server.port}")
            self.cfg.set("workers", config.server.workers)
            self.cfg.set("worker_class", "sync")
            self.cfg.set("proc_name", "dibot")
            # One shared socket under $HOME would tie every `dibot serve` on a host together.
            self.cfg.set("control_socket_disable", True)

        def load(self) -> Any:
            return app

    Server().run()
    return 0


def db_upgrade(arguments: argparse.Namespace, config: Config) -> int:
    """Apply the migrations (an SQLite file and its directory are created if missing)."""
    from storage.migrate import upgrade

    upgrade(config.database.url)
    return 0


def chat(arguments: argparse.Namespace, config: Config) -> int:
    """Talk to the bot in this terminal, as a respondent would."""
    from channels.terminal import run_chat

    if config.database.url.startswith("sqlite"):
        db_upgrade(arguments, config)  # a local file: make it ready to try the bot at once
    handler = Runtime(config).handler
    if arguments.record is None:
        run_chat(handler, arguments.urn, sys.stdin, sys.stdout)
    else:
        with open(arguments.record, "a", encoding="utf-8") as record:
            run_chat(handler, arguments.urn, sys.stdin, sys.stdout, record)
    return 0


def telegram(arguments: argparse.Namespace, config: Config) -> int:
    """Take Telegram updates by long polling (instead of the webhook)."""
    from channels.telegram import run_polling

    runtime = _telegram_runtime(config)
    run_polling(config, runtime.handler, engine=runtime.engine)
    return 0


def worker(arguments: argparse.Namespace, config: Config) -> int:
    """Send what waits in the outbox, within the providers' rate limits."""
    from channels.telegram import run_worker

    runtime = _telegram_runtime(config)
    run_worker(config, runtime.handler, engine=runtime.engine)
    return 0


def _telegram_runtime(config: Config) -> Runtime:
    if not config.telegram.bot_token:
        raise ConfigError("[telegram] bot_token is not set (DIBOT_TELEGRAM_BOT_TOKEN)")
    return Runtime(config)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dibot", description="A digital inclusion assessment by text message."
    )
    config_option = argparse.ArgumentParser(add_help=False)
    config_option.add_argument(
        "--config",
        metavar="FILE",
        help="TOML configuration (default: $DIBOT_CONFIG, else ./config.toml if present)",
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    def command(
        name: str, function: Callable[[argparse.Namespace, Config], int], help: str
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[config_option], help=help, description=help)
        sub.set_defaults(command=function)
        return sub

    command("serve", serve, "run the web service (webhooks, health check) under gunicorn")
    database = commands.add_parser("db", help="database maintenance")
    database_commands = database.add_subparsers(title="commands", required=True, metavar="COMMAND")
    upgrade = database_commands.add_parser(
        "upgrade", parents=[config_option], help="apply the database migrations"
    )
    upgrade.set_defaults(command=db_upgrade)
    chat_command = command("chat", chat, "talk to the bot in the terminal as a respondent")
    chat_command.add_argument(
        "--urn", default="terminal:local", help="who you are to the bot (default terminal:local)"
    )
    chat_command.add_argument(
        "--record", metavar="FILE", help="append the conversation to FILE as a test transcript"
    )
    command("telegram", telegram, "take Telegram updates by long polling")
    command("worker", worker, "send queued outbound messages")
    return parser


if __name__ == "__main__":
    sys.exit(main())
