"""Shared test set-up: isolated homes for every library that writes under ~, and the PostgreSQL gate.

With ``CI=true`` (or ``TSLA_FORECAST_REQUIRE_POSTGRES=1``) an unreachable PostgreSQL fails the run instead of
skipping, and a session in which any ``postgres``-marked test was skipped exits non-zero.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

_TMP_HOME = Path(tempfile.mkdtemp(prefix="tsla-forecast-tests-"))
for _var, _sub in {
    "PREFECT_HOME": "prefect",
    "KERAS_HOME": "keras",
    "MPLCONFIGDIR": "mpl",
    "XDG_CACHE_HOME": "cache",
    "TSLA_FORECAST_HOME": "home",
}.items():
    os.environ[_var] = str(_TMP_HOME / _sub)
    (_TMP_HOME / _sub).mkdir(parents=True, exist_ok=True)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.pop("TSLA_FORECAST_DATABASE_URL", None)

import pytest  # noqa: E402
import sqlalchemy as sa  # noqa: E402

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SHARED_CSV = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "tsla_daily.csv"


def postgres_required() -> bool:
    """True in CI: PostgreSQL tests must run, never skip."""
    return os.environ.get("CI", "").lower() == "true" or os.environ.get("TSLA_FORECAST_REQUIRE_POSTGRES") == "1"


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of a reachable PostgreSQL admin database; skips (fails in CI) when there is none."""
    url = os.environ.get("TSLA_FORECAST_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    try:
        engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure means "no server"
        message = f"PostgreSQL not reachable at {sa.engine.make_url(url).render_as_string(hide_password=True)}: {exc}"
        if postgres_required():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return url


@pytest.fixture(scope="session")
def shared_csv() -> Path:
    """The real TSLA CSV from ../shared; tests that use it are marked ``realdata`` and skip without it."""
    if not SHARED_CSV.exists():
        pytest.skip(f"real-data check: {SHARED_CSV} is not present")
    return SHARED_CSV.resolve()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when PostgreSQL tests were skipped and PostgreSQL is required."""
    if not postgres_required():
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    pg_skipped = [r.nodeid for r in skipped if "postgres" in getattr(r, "keywords", {})]
    if pg_skipped:
        print(f"\nERROR: {len(pg_skipped)} PostgreSQL test(s) were skipped but CI requires them: {pg_skipped[:3]}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


SHARED_PREFECT_API = "TSLA_FORECAST_TEST_PREFECT_API"  # the URL of the xdist controller's Prefect test API
SHARE_SWITCH = "TSLA_FORECAST_TEST_SHARED_PREFECT_API"  # "0": each test process starts its own, as without xdist
_HARNESS = pytest.StashKey[contextlib.ExitStack]()


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist the controller starts ONE Prefect test API for all its test processes, before it starts
    them (they inherit :data:`SHARED_PREFECT_API`). A test API costs about 8 s of CPU to start and 1 s a minute
    while idle: one per process, four of them took about 95 s of CPU in a `make test` of 10 minutes."""
    if hasattr(config, "workerinput") or not config.getoption("numprocesses", default=None):
        return  # a test process, or no xdist: ``prefect_api`` starts the process's own
    if os.environ.get(SHARED_PREFECT_API) or config.option.collectonly or os.environ.get(SHARE_SWITCH) == "0":
        return  # TSLA_FORECAST_TEST_SHARED_PREFECT_API=0: one API per test process, as before
    import warnings

    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    stack = contextlib.ExitStack()
    try:
        stack.enter_context(prefect_test_harness(server_startup_timeout=120))
    except Exception as exc:  # noqa: BLE001 - each test process then starts its own, as without xdist
        stack.close()
        warnings.warn(f"the shared Prefect test API did not start ({exc}); each test process starts its own",
                      stacklevel=1)  # fmt: skip
        return
    config.stash[_HARNESS] = stack
    os.environ[SHARED_PREFECT_API] = str(PREFECT_API_URL.value())


def pytest_unconfigure(config: pytest.Config) -> None:
    if (stack := config.stash.get(_HARNESS, None)) is not None:
        os.environ.pop(SHARED_PREFECT_API, None)
        stack.close()


@contextlib.contextmanager
def _shared_api(url: str) -> Iterator[None]:
    """Report to the controller's test API as ``prefect_test_harness`` reports to its own: its URL in this process's
    settings, also for contexts copied before (Prefect's private helper, the one the harness uses), and the logs and
    events this process still holds delivered before the controller stops the server."""
    import prefect.context
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: url}):
        with prefect.context._temporary_global_settings_context(prefect.context.get_settings_context()):
            try:
                yield
            finally:
                APILogWorker.drain_all(timeout=30)
                EventsWorker.drain_all(timeout=30)


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """The session's Prefect API, shared by in-process flows and CLI subprocesses: the xdist controller's (one for
    every test process, see :func:`pytest_configure`), or without xdist this process's own
    (``prefect_test_harness``). Tests that read from it filter by their own flow runs: other processes report to it.

    Its URL is exported as ``PREFECT_API_URL``, so a ``tsla-forecast`` subprocess reports to it instead of starting
    an ephemeral server of its own (about 6 s of CPU per command). Tests of a user's default environment remove the
    variable for their subprocess (``tests/cli/test_first_week.py``) and so still meet ephemeral mode.
    """
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    before = os.environ.get("PREFECT_API_URL")
    shared = os.environ.get(SHARED_PREFECT_API)
    with _shared_api(shared) if shared else prefect_test_harness(server_startup_timeout=120):
        os.environ["PREFECT_API_URL"] = url = str(PREFECT_API_URL.value())
        try:
            yield url
        finally:
            if before is None:
                os.environ.pop("PREFECT_API_URL", None)
            else:
                os.environ["PREFECT_API_URL"] = before


@pytest.fixture(autouse=True)
def reports_setting(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """A daily run makes its reports only in tests marked ``reports`` (those that read the archive, the artifacts,
    the email or the report's log lines): elsewhere ``TSLA_FORECAST_REPORTS_ENABLED=false``, since a report (11
    figures) costs more CPU than the smoke model's whole job and no other test reads it. The end-to-end stacks and
    the first week's commands start from environments without ``TSLA_FORECAST_*`` variables: they keep the default
    (on)."""
    enabled = request.node.get_closest_marker("reports") is not None
    monkeypatch.setenv("TSLA_FORECAST_REPORTS_ENABLED", str(enabled).lower())
    return enabled


@pytest.fixture(scope="session")
def long_prices():
    """700 sessions of seeded synthetic prices (2018-01-02 ..), enough for tiny LSTM fits and backtests."""
    from forecaster.data.sources import generate_prices

    return generate_prices(seed=0, n=700, start="2018-01-02")


@pytest.fixture(scope="session")
def tiny_preset():
    """The default preset shrunk to a 2-epoch, 8-unit model on a short window: seconds, not minutes."""
    from forecaster.models.presets import get_preset

    return get_preset("default").replace(
        name="tiny", lstm_units=(8,), window=10, epochs=2, train_window=300, calibration_size=60,
        finetune_epochs=1, finetune_window=60, batch_size=32,
    )  # fmt: skip


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh TSLA_FORECAST_HOME with an upgraded SQLite database; email off until a test turns it on."""
    monkeypatch.setenv("TSLA_FORECAST_HOME", str(tmp_path))
    monkeypatch.delenv("TSLA_FORECAST_DATABASE_URL", raising=False)
    monkeypatch.setenv("TSLA_FORECAST_FETCH_RETRIES", "0")
    monkeypatch.setenv("TSLA_FORECAST_FINAL_BAR_RETRY_DELAYS", "[]")  # a missing bar fails at once in tests
    monkeypatch.setenv("TSLA_FORECAST_EMAIL_ENABLED", "false")
    from db import migrate

    migrate.upgrade(f"sqlite:///{tmp_path / 'forecast.db'}")
    return tmp_path


@pytest.fixture
def repo(home):
    """A repository over ``home``'s SQLite database (tests/db overrides it with SQLite and PostgreSQL)."""
    from db.repository import Repository

    r = Repository.from_url(f"sqlite:///{home / 'forecast.db'}")
    yield r
    r.dispose()
