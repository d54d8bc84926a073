"""`dibot telegram --set-webhook URL` and `--delete-webhook`, against the fake Bot API server.

The working paths run the real console script, as a council's operator would; the refusals run
`main()` in this process (they must stop before any call reaches Telegram). Plain
`dibot telegram` still polls.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from channels.telegram_parse import ALLOWED_UPDATES
from dibot.cli import main
from tests.fake_telegram import FakeTelegram, text_update
from tests.processes import DIBOT, STARTUP_LIMIT_SECONDS, STOP_LIMIT_SECONDS, environment
from tests.telegram_support import SECRET

PUBLIC_URL = "https://dibot.example.gov.uk/webhooks/telegram"
CHAT = 840001


def settings(fake: FakeTelegram, secret: str = SECRET) -> dict[str, str]:
    return {
        "DIBOT_TELEGRAM_BOT_TOKEN": fake.token,
        "DIBOT_TELEGRAM_WEBHOOK_SECRET": secret,
        "DIBOT_TELEGRAM_API_BASE_URL": fake.base_url,
    }


def dibot(cwd: Path, *arguments: str, **env: str) -> subprocess.CompletedProcess[str]:
    assert DIBOT is not None, "the dibot console script is not installed in this environment"
    return subprocess.run(
        [DIBOT, "telegram", *arguments],
        cwd=cwd,
        env=environment(**env),
        capture_output=True,
        text=True,
        timeout=STARTUP_LIMIT_SECONDS,
        check=False,
    )


@pytest.fixture
def in_process(
    fake: FakeTelegram, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """`main()` in this process sees only the fake's settings (no developer DIBOT_* values)."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("DIBOT_"):
            monkeypatch.delenv(name)
    env = settings(fake)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def no_secrets_in(fake: FakeTelegram, *outputs: str) -> None:
    for output in outputs:
        assert SECRET not in output
        assert fake.token not in output


def test_set_webhook_registers_the_url_with_the_secret_and_reports_the_status(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    fake.push_update(text_update(CHAT, "hi"))
    fake.push_update(text_update(CHAT, "1"))

    result = dibot(tmp_path, "--set-webhook", PUBLIC_URL, **settings(fake))

    assert result.returncode == 0, result.stderr
    [call] = fake.calls_to("setWebhook")
    assert call.params["url"] == PUBLIC_URL
    assert call.params["secret_token"] == SECRET
    assert call.params["allowed_updates"] == [
        "message",
        "edited_message",
        "callback_query",
        "my_chat_member",
    ]
    assert list(ALLOWED_UPDATES) == call.params["allowed_updates"]
    assert call.params["drop_pending_updates"] is False
    assert fake.webhook["url"] == PUBLIC_URL
    assert fake.calls_to("getWebhookInfo")
    assert result.stdout.splitlines() == [
        f"webhook: {PUBLIC_URL}",
        "pending updates: 2",
        "last error: none",
    ]
    assert not fake.calls_to("getUpdates")
    assert result.stderr == ""
    no_secrets_in(fake, result.stdout)


def test_set_webhook_shows_telegrams_last_error_calling_it(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    fake.webhook_failed("Wrong response from the webhook: 403 FORBIDDEN", at=1_790_000_000)
    result = dibot(tmp_path, "--set-webhook", PUBLIC_URL, **settings(fake))
    assert result.returncode == 0, result.stderr
    assert (
        "last error: 2026-09-21 14:13:20 UTC: Wrong response from the webhook: 403 FORBIDDEN"
        in (result.stdout.splitlines())
    )


def test_delete_webhook_removes_it_and_keeps_waiting_updates(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    assert dibot(tmp_path, "--set-webhook", PUBLIC_URL, **settings(fake)).returncode == 0
    fake.push_update(text_update(CHAT, "hi"))

    result = dibot(tmp_path, "--delete-webhook", **settings(fake))

    assert result.returncode == 0, result.stderr
    [call] = fake.calls_to("deleteWebhook")
    assert call.params.get("drop_pending_updates") is False
    assert fake.webhook == {}
    assert result.stdout.splitlines() == [
        "webhook: none (updates wait for long polling)",
        "pending updates: 1",
        "last error: none",
    ]
    no_secrets_in(fake, result.stdout, result.stderr)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://dibot.example.gov.uk/webhooks/telegram", "must start with https://"),
        ("dibot.example.gov.uk/webhooks/telegram", "must start with https://"),
        ("https://dibot.example.gov.uk/webhooks/tele gram", "no spaces"),
        ("ftp://dibot.example.gov.uk/webhooks/telegram", "must start with https://"),
        ("https:///webhooks/telegram", "needs a host"),
        ("https://dibot.example.gov.uk:port/webhooks/telegram", "not a usable webhook URL"),
    ],
)
def test_a_url_telegram_would_not_call_is_refused_before_any_call(
    fake: FakeTelegram,
    in_process: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    url: str,
    words: str,
) -> None:
    assert main(["telegram", "--set-webhook", url]) == 2
    err = capsys.readouterr().err
    assert words in err
    assert err.startswith("dibot: ")
    assert len(err.strip().splitlines()) == 1
    assert fake.calls == []


def test_a_url_not_ending_at_the_webhook_path_is_set_with_a_note(
    fake: FakeTelegram, in_process: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["telegram", "--set-webhook", "https://dibot.example.gov.uk/"]) == 0
    assert fake.webhook["url"] == "https://dibot.example.gov.uk/"
    assert "/webhooks/telegram" in capsys.readouterr().err


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8081/webhooks/telegram", "http://localhost/webhooks/telegram"]
)
def test_plain_http_is_allowed_for_a_local_bot_api_server(
    fake: FakeTelegram, in_process: dict[str, str], capsys: pytest.CaptureFixture[str], url: str
) -> None:
    assert main(["telegram", "--set-webhook", url]) == 0
    assert fake.webhook["url"] == url
    assert capsys.readouterr().out.startswith(f"webhook: {url}\n")


@pytest.mark.parametrize(
    ("secret", "words"),
    [
        ("", "webhook_secret is not set"),
        ("has spaces in it", "1 to 256 characters of A-Z, a-z, 0-9, _ and -"),
        ("semi;colon", "1 to 256 characters"),
        ("x" * 257, "1 to 256 characters"),
        ("ünïcode", "1 to 256 characters"),
    ],
)
def test_a_secret_telegram_would_refuse_stops_the_command(
    fake: FakeTelegram,
    in_process: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    secret: str,
    words: str,
) -> None:
    monkeypatch.setenv("DIBOT_TELEGRAM_WEBHOOK_SECRET", secret)
    assert main(["telegram", "--set-webhook", PUBLIC_URL]) == 2
    err = capsys.readouterr().err
    assert words in err
    assert len(err.strip().splitlines()) == 1
    if secret:
        assert secret not in err
    assert fake.calls == []


def test_the_longest_secret_telegram_accepts_is_used(
    fake: FakeTelegram, in_process: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "Az09_-" * 42 + "abcd"
    assert len(secret) == 256
    monkeypatch.setenv("DIBOT_TELEGRAM_WEBHOOK_SECRET", secret)
    assert main(["telegram", "--set-webhook", PUBLIC_URL]) == 0
    assert fake.webhook["secret_token"] == secret


def test_telegrams_refusal_is_one_line_without_the_token(
    fake: FakeTelegram, in_process: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    fake.refuse(
        "setWebhook",
        status=400,
        description="Bad Request: bad webhook: Webhook can be set up only on ports 80, 88, 443",
    )
    assert main(["telegram", "--set-webhook", PUBLIC_URL]) == 1
    err = capsys.readouterr().err
    assert err.strip() == (
        "dibot: Telegram setWebhook failed: "
        "Bad webhook: webhook can be set up only on ports 80, 88, 443"
    )
    no_secrets_in(fake, err)


def test_a_rejected_token_is_reported_without_the_token(
    fake: FakeTelegram, in_process: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    fake.refuse("getMe", status=401, description="Unauthorized")
    assert main(["telegram", "--delete-webhook"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("dibot: Telegram deleteWebhook failed:")
    assert len(err.strip().splitlines()) == 1
    no_secrets_in(fake, err)
    assert fake.calls_to("deleteWebhook") == []


def test_without_a_bot_token_nothing_is_called(
    fake: FakeTelegram,
    in_process: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("DIBOT_TELEGRAM_BOT_TOKEN")
    assert main(["telegram", "--set-webhook", PUBLIC_URL]) == 2
    assert "bot_token is not set" in capsys.readouterr().err
    assert fake.calls == []


def test_set_and_delete_together_is_a_usage_error(
    fake: FakeTelegram, in_process: dict[str, str]
) -> None:
    with pytest.raises(SystemExit) as exit_status:
        main(["telegram", "--set-webhook", PUBLIC_URL, "--delete-webhook"])
    assert exit_status.value.code == 2
    assert fake.calls == []


def test_without_a_flag_dibot_telegram_still_polls(
    fake: FakeTelegram, tmp_path: Path, database_url: str
) -> None:
    assert DIBOT is not None
    fake.push_update(text_update(CHAT, "hi"))
    poller = subprocess.Popen(
        [DIBOT, "telegram"],
        cwd=tmp_path,
        env=environment(DIBOT_DATABASE_URL=database_url, **settings(fake)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        replies = fake.wait_for("sendMessage", 1, timeout=STARTUP_LIMIT_SECONDS)
    finally:
        poller.send_signal(signal.SIGINT)
        try:
            _, stderr = poller.communicate(timeout=STOP_LIMIT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(poller.pid, signal.SIGKILL)
            _, stderr = poller.communicate()
    [reply] = replies
    assert poller.returncode == 0, stderr  # SIGINT stops it cleanly, between updates
    assert reply.params["chat_id"] == CHAT
    assert [c.method for c in fake.calls][:3] == ["getMe", "deleteWebhook", "getUpdates"]
    assert fake.calls_to("setWebhook") == []
    assert "Traceback" not in stderr
