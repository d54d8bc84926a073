"""The `dibot` command: serve, db upgrade, chat, telegram (polling or webhook set-up), worker,
and the personal-data commands (retention, erase, sar, db rekey: `dibot.privacy_commands`).

Every command reads the same configuration (`--config FILE`, else `$DIBOT_CONFIG`, else
`./config.toml`, else defaults, with `DIBOT_<SECTION>_<KEY>` on top). A configuration or flow
that cannot be used is reported in one line and exits with status 2, never a traceback; a
database that cannot be used (unreachable, or for `serve` not at the latest migration) exits
with status 1. The services residents reach (serve, worker, telegram polling) warn in one line
at start-up while the council's texts are still the shipped placeholders. An encryption key that
is missing, or does not open the database's data, stops every command that needs it in one line
(exit status 2) before it reads or writes anything.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from sqlalchemy.exc import NoSuchTableError, OperationalError, ProgrammingError

from dibot import (
    checkin_commands,
    demo_commands,
    export_commands,
    followup_commands,
    outreach_commands,
    persona_commands,
    privacy_commands,
    report_commands,
    staff_commands,
)
from dibot.config import Config, ConfigError, CouncilConfig, load_config
from dibot.runtime import Runtime, check_privacy, configured_keys, load_configured_flow
from flows.loader import FlowError
from storage.privacy import PrivacyKeyError

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
    except (ConfigError, FlowError, PrivacyKeyError) as error:
        print(f"dibot: {error}", file=sys.stderr)
        return USAGE_ERROR
    except OperationalError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else type(error).__name__
        print(f"dibot: cannot use the database: {reason}", file=sys.stderr)
        return FAILURE
    except (ProgrammingError, NoSuchTableError) as error:
        # e.g. a PostgreSQL database nobody has migrated: its text may hold values, its type not
        print(
            f"dibot: the database is not ready ({type(error).__name__}); "
            "run `dibot db upgrade` first",
            file=sys.stderr,
        )
        return FAILURE
    except OSError as error:  # e.g. an SQLite directory that cannot be created
        print(f"dibot: {error}", file=sys.stderr)
        return FAILURE
    except KeyboardInterrupt:
        return INTERRUPTED


WORKER_TIMEOUT_SECONDS = 60
"""gunicorn kills a sync worker busy with one request for longer than this. A webhook waits at
most for SQLite's write lock (the busy timeout, 10 s) and its turn; no webhook calls a provider
(Telegram replies are sent by `dibot worker`), so this is a wide margin, never hit in normal
work."""
GRACEFUL_TIMEOUT_SECONDS = WORKER_TIMEOUT_SECONDS
"""On SIGTERM or a restart, how long a worker may finish the request it is in: as long as any
request may take, so a webhook is not cut off between its commit and its replies."""


def serve(arguments: argparse.Namespace, config: Config) -> int:
    """The web service under gunicorn, one request at a time per worker process (right for
    SQLite's single writer), each request read whole before a worker runs it (`dibot.serving`),
    only on a database at the latest migration: checked here, before any worker starts."""
    from dibot.web import create_app
    from storage.migrate import SchemaNotCurrent, require_current_schema

    flow = load_configured_flow(config)  # configuration and flow first: their errors exit 2
    try:
        require_current_schema(config.database.url)
    except SchemaNotCurrent as error:
        print(f"dibot: {error}", file=sys.stderr)
        return FAILURE
    check_privacy(config)
    staff_commands.check_secret_key(config)
    warn_of_placeholder_council_texts(config)
    gunicorn_server(config, create_app(config, flow=flow)).run()
    return 0


PLACEHOLDER_COUNCIL_TEXTS = ("name", "privacy_url", "helpline")
"""Council texts every resident reads (the consent prompt): left as shipped, they name no one."""


def warn_of_placeholder_council_texts(config: Config) -> None:
    """One line on stderr naming the council texts still at their shipped defaults."""
    shipped = CouncilConfig()
    placeholders = [
        key
        for key in PLACEHOLDER_COUNCIL_TEXTS
        if getattr(config.council, key) == getattr(shipped, key)
    ]
    if placeholders:
        print(
            "dibot: warning: council texts are still the shipped placeholders "
            f"({', '.join(placeholders)}): set them in [council] before residents use this",
            file=sys.stderr,
        )


def gunicorn_server(config: Config, app: Any) -> Any:
    """A gunicorn application serving `app` as `config.server` says (not yet running), on
    `dibot.serving`'s workers: sync workers that are handed only whole requests, recycled
    after a bounded number of them."""
    from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]

    from dibot import serving

    class Server(BaseApplication):  # type: ignore[misc]  # gunicorn is untyped
        def load_config(self) -> None:
            self.cfg.set("bind", f"{config.server.host}:{config.server.port}")
            self.cfg.set("workers", config.server.workers)
            self.cfg.set("worker_class", serving.BufferingWorker)
            self.cfg.set("worker_connections", serving.MAX_CONNECTIONS)
            self.cfg.set("max_requests", serving.MAX_REQUESTS)
            self.cfg.set("max_requests_jitter", serving.MAX_REQUESTS_JITTER)
            self.cfg.set("timeout", WORKER_TIMEOUT_SECONDS)
            self.cfg.set("graceful_timeout", GRACEFUL_TIMEOUT_SECONDS)
            self.cfg.set("proc_name", "dibot")
            # One shared socket under $HOME would tie every `dibot serve` on a host together.
            self.cfg.set("control_socket_disable", True)

        def load(self) -> Any:
            return app

    return Server()


def db_upgrade(arguments: argparse.Namespace, config: Config) -> int:
    """Apply the migrations (an SQLite file and its directory are created if missing, and with
    no key configured its key file, once), then check the keys open the database's data."""
    from storage.migrate import upgrade

    upgrade(config.database.url, keys=lambda: configured_keys(config, create=True))
    check_privacy(config)
    warn_of_open_directory(config)
    return 0


def warn_of_open_directory(config: Config) -> None:
    """One line when others may list the SQLite database's directory (dibot makes it 0700)."""
    from storage.database import sqlite_file

    path = sqlite_file(config.database.url)
    if path is not None and path.parent.stat().st_mode & 0o077:
        print(
            f"dibot: warning: {path.parent} is open to other users: `chmod 700` it, "
            "as it holds personal data",
            file=sys.stderr,
        )


def chat(arguments: argparse.Namespace, config: Config) -> int:
    """Talk to the bot in this terminal, as a respondent would."""
    from channels.terminal import run_chat

    if config.database.url.startswith("sqlite"):
        db_upgrade(arguments, config)  # a local file: make it ready to try the bot at once
    runtime = Runtime(config)
    language = arguments.lang
    if language is not None and language not in runtime.flow.languages:
        print(
            f"dibot: no language {language!r} in the flow (it has {list(runtime.flow.languages)})",
            file=sys.stderr,
        )
        return 2
    if arguments.record is None:
        run_chat(runtime.handler, arguments.urn, sys.stdin, sys.stdout, language=language)
    else:
        with open(arguments.record, "a", encoding="utf-8") as record:
            run_chat(
                runtime.handler, arguments.urn, sys.stdin, sys.stdout, record, language=language
            )
    return 0


def telegram(arguments: argparse.Namespace, config: Config) -> int:
    """Take Telegram updates by long polling (instead of the webhook), or, with
    --set-webhook URL / --delete-webhook, point Telegram at the webhook or take it away."""
    from channels.telegram import run_polling

    if arguments.set_webhook is not None or arguments.delete_webhook:
        return telegram_webhook(arguments, config)
    runtime = _telegram_runtime(config)
    warn_of_placeholder_council_texts(config)
    run_polling(config, runtime.handler, engine=runtime.engine)
    return 0


def telegram_webhook(arguments: argparse.Namespace, config: Config) -> int:
    """setWebhook (or deleteWebhook), then print what getWebhookInfo says."""
    from channels import telegram_setup

    if not config.telegram.bot_token:
        raise ConfigError("[telegram] bot_token is not set (DIBOT_TELEGRAM_BOT_TOKEN)")
    try:
        if arguments.delete_webhook:
            status = telegram_setup.delete_webhook(config.telegram)
        else:
            status = telegram_setup.set_webhook(config.telegram, arguments.set_webhook)
            note = telegram_setup.path_note(arguments.set_webhook)
            if note is not None:
                print(f"dibot: {note}", file=sys.stderr)
    except telegram_setup.WebhookSetupError as error:
        print(f"dibot: {error}", file=sys.stderr)
        return USAGE_ERROR
    except telegram_setup.TelegramCallFailed as error:
        print(f"dibot: {error}", file=sys.stderr)
        return FAILURE
    print("\n".join(status.lines()))
    return 0


def worker(arguments: argparse.Namespace, config: Config) -> int:
    """The scheduler (check-ins, reminders) and the senders (SMS, Telegram): until stopped, or
    with --once until nothing is due now."""
    from dibot.worker import run_worker

    check_privacy(config)
    runtime = Runtime(config)
    warn_of_placeholder_council_texts(config)
    try:
        report = run_worker(runtime, once=arguments.once)
    finally:
        runtime.engine.dispose()
    if arguments.once:
        print(report.summary())
    return 0


def _telegram_runtime(config: Config) -> Runtime:
    if not config.telegram.bot_token:
        raise ConfigError("[telegram] bot_token is not set (DIBOT_TELEGRAM_BOT_TOKEN)")
    check_privacy(config)
    return Runtime(config)


def _version() -> str:
    try:
        return version("dibot")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "(not installed)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dibot", description="A digital inclusion assessment by text message."
    )
    parser.add_argument("--version", action="version", version=f"dibot {_version()}")
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
    database_commands.add_parser(
        "rekey",
        parents=[config_option],
        help="encrypt all personal data again under the first [privacy] encryption_key",
    ).set_defaults(command=privacy_commands.db_rekey)
    chat_command = command("chat", chat, "talk to the bot in the terminal as a respondent")
    chat_command.add_argument(
        "--urn", default="terminal:local", help="who you are to the bot (default terminal:local)"
    )
    chat_command.add_argument(
        "--record", metavar="FILE", help="append the conversation to FILE as a test transcript"
    )
    chat_command.add_argument(
        "--lang",
        metavar="LANG",
        help="start a new conversation in this language (en, cy…) instead of asking",
    )
    telegram_command = command(
        "telegram",
        telegram,
        "take Telegram updates by long polling, or set or delete the webhook instead",
    )
    webhook = telegram_command.add_mutually_exclusive_group()
    webhook.add_argument(
        "--set-webhook",
        metavar="URL",
        help="point Telegram at URL (https://<host>/webhooks/telegram) with"
        " telegram.webhook_secret, print the webhook's status and exit",
    )
    webhook.add_argument(
        "--delete-webhook",
        action="store_true",
        help="remove the webhook (updates then wait for long polling), print its status and exit",
    )
    worker_command = command(
        "worker", worker, "run the scheduler and send queued messages (SMS, Telegram)"
    )
    worker_command.add_argument(
        "--once", action="store_true", help="do what is due now, then exit (for cron and tests)"
    )
    enrol = command("enrol", outreach_commands.enrol_command, "enrol a resident and invite them")
    outreach_commands.add_enrol_options(enrol)
    send = command(
        "send",
        followup_commands.send_command,
        "text a resident as an outreach worker (the bot waits while the thread is open)",
    )
    followup_commands.add_send_options(send)
    checkin = command(
        "checkin", checkin_commands.checkin_command, "schedule a check-in for a resident or cohort"
    )
    checkin_commands.add_checkin_options(checkin)
    show = command(
        "show", checkin_commands.show_command, "print a resident's status, gains and messages"
    )
    checkin_commands.add_show_options(show)
    demo = command(
        "demo", demo_commands.demo_command, "fill an empty database with synthetic residents"
    )
    demo_commands.add_demo_options(demo)
    report = command(
        "report",
        report_commands.report_command,
        "the cohort report: who, at baseline, and what changed (text, json or html)",
    )
    report_commands.add_report_options(report)
    export = command(
        "export",
        export_commands.export_command,
        "export assessments (csv, csv-wide, xlsx, floip), outcome flags or a benchmark file",
    )
    export_commands.add_export_options(export)
    staff_commands.add_staff_commands(commands, config_option)
    persona_commands.add_persona_commands(commands, config_option)
    command(
        "retention",
        privacy_commands.retention,
        "remove typed text and messages older than the [privacy] retention periods",
    )
    erase = command(
        "erase", privacy_commands.erase_person, "remove everything held about one person"
    )
    privacy_commands.add_person_options(erase)
    sar = command(
        "sar", privacy_commands.subject_access_export, "export everything held about one person"
    )
    privacy_commands.add_person_options(sar)
    sar.add_argument("--out", metavar="FILE", required=True, help="the JSON file to write (new)")
    return parser


if __name__ == "__main__":
    sys.exit(main())
