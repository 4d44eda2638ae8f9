"""Report tests: a fresh home per test, a seeded history written through the repository (no training), a real
SMTP server (aiosmtpd) on a loopback port, and the session's Prefect API (``prefect_api``, tests/conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from tests.fixtures.ports import free_port
from tests.report.seed import SeededHistory, seed_history

SMTP_USER, SMTP_PASSWORD = "reporter", "pw-Zq81-never-logged"
RECIPIENTS = ["ops@example.com", "audit@example.com"]


@pytest.fixture
def seeded(repo) -> SeededHistory:
    """80 daily runs with forecasts, so the last 60 sessions have matured outcomes."""
    return seed_history(repo, runs=80)


@dataclass
class Inbox:
    """An aiosmtpd handler that keeps every message it accepts."""

    envelopes: list = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        self.envelopes.append(envelope)
        return "250 Message accepted"


def _authenticator(server, session, envelope, mechanism, auth_data):
    from aiosmtpd.smtp import AuthResult, LoginPassword

    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        SMTP_USER.encode(),
        SMTP_PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


def start_smtp(port: int | None = None):
    """A real SMTP server with AUTH (LOGIN/PLAIN over the loopback, no TLS) on ``port``; returns (controller, inbox)."""
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port or free_port(), authenticator=_authenticator,
                            auth_require_tls=False, auth_required=True)  # fmt: skip
    controller.start()
    return controller, inbox


@pytest.fixture
def smtp_server():
    controller, inbox = start_smtp()
    yield controller, inbox
    controller.stop()


def email_env(port: int) -> dict[str, str]:
    """Settings that email reports to ``RECIPIENTS`` through 127.0.0.1:``port`` with a user and password."""
    return {
        "TSLA_FORECAST_EMAIL_ENABLED": "true",
        "TSLA_FORECAST_SMTP_HOST": "127.0.0.1",
        "TSLA_FORECAST_SMTP_PORT": str(port),
        "TSLA_FORECAST_SMTP_SECURITY": "none",
        "TSLA_FORECAST_SMTP_USER": SMTP_USER,
        "TSLA_FORECAST_SMTP_PASSWORD": SMTP_PASSWORD,
        "TSLA_FORECAST_EMAIL_SENDER": "tsla-forecast@example.com",
        "TSLA_FORECAST_EMAIL_RECIPIENTS": '["' + '", "'.join(RECIPIENTS) + '"]',
        "TSLA_FORECAST_EMAIL_RETRIES": "2",
        "TSLA_FORECAST_EMAIL_RETRY_DELAY": "0",
        "TSLA_FORECAST_SMTP_TIMEOUT": "5",
    }
