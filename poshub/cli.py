"""The ``poshub`` command line."""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from poshub.core.settings import Mode, Settings

if TYPE_CHECKING:
    import datetime as dt

    from poshub.bootstrap import AppState
    from poshub.core.crypto import KeyVault
    from poshub.core.db import Database

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def _settings(args: argparse.Namespace, **overrides: object) -> Settings:
    values: dict[str, object] = {k: v for k, v in overrides.items() if v is not None}
    if getattr(args, "data_dir", None):
        values["data_dir"] = Path(args.data_dir)
    if getattr(args, "database_url", None):
        values["database_url"] = args.database_url
    return Settings(**values)  # type: ignore[arg-type]


def _logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from poshub.bootstrap import open_database, upgrade

    settings = _settings(args)
    database = open_database(settings)
    upgrade(database)
    from poshub.core import workdays
    from poshub.core.migrate import current_revision

    with database.unit_of_work() as uow:
        seeded = workdays.seed_published(uow.session)
        uow.commit()
    if seeded:
        print(f"working-day calendar: {seeded} days seeded from chinese-calendar")

    print(f"database at revision {current_revision(database.engine)}")
    return EXIT_OK


def _keyed_database(settings: Settings) -> tuple[Database, KeyVault]:
    """The database with the audit key of the configured KEK (audit rows written through
    it are keyed; verification needs the key)."""
    from poshub.bootstrap import open_database
    from poshub.core.crypto import KeyVault, load_kek

    vault = KeyVault(load_kek(settings))
    database = open_database(settings)
    database.audit_key = vault.audit_key
    return database, vault


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from poshub.core import anchors

    settings = _settings(args)
    database, vault = _keyed_database(settings)
    directory = settings.effective_audit_anchor_dir
    with database.unit_of_work(read_only=True) as uow:
        checked, problem = anchors.verify(
            uow.session, vault.audit_key, vault.audit_anchor_key, directory
        )
    if problem is None:
        print(f"audit log intact: {checked} rows verified, anchors in {directory} match")
        return EXIT_OK
    where = f"at row {problem.seq}" if problem.seq else f"({directory})"
    print(
        f"audit log BROKEN {where}: {problem.reason} ({checked} rows before it verified)",
        file=sys.stderr,
    )
    return EXIT_FAILURE


def cmd_audit_anchor(args: argparse.Namespace) -> int:
    from poshub.core import anchors
    from poshub.core.db import utcnow

    settings = _settings(args)
    database, vault = _keyed_database(settings)
    directory = settings.effective_audit_anchor_dir
    with database.unit_of_work(read_only=True) as uow:
        written = anchors.write(
            uow.session, vault.audit_key, vault.audit_anchor_key, directory, now=utcnow()
        )
    if written.problem is not None:
        print(f"not anchored: row {written.problem.seq}: {written.problem.reason}", file=sys.stderr)
        return EXIT_FAILURE
    if written.anchor is None:
        print(f"audit chain head unchanged since the last anchor in {directory}")
    else:
        print(f"anchored audit row {written.anchor.seq} in {anchors.anchor_file(directory)}")
    return EXIT_OK


def cmd_ledger_verify(args: argparse.Namespace) -> int:
    from poshub.bootstrap import open_database
    from poshub.settlement import service as ledger

    database = open_database(_settings(args))
    with database.unit_of_work(read_only=True) as uow:
        report = ledger.verify(uow.session)
    kinds = ", ".join(f"{kind} {fen}" for kind, fen in report.totals_by_kind.items()) or "none"
    summary = (
        f"{report.entries} entries, {report.lines} lines, {report.accounts} accounts; "
        f"totals per kind (fen, debit +): {kinds}"
    )
    if report.intact:
        print(f"ledger balanced: {summary}")
        return EXIT_OK
    print(f"ledger NOT balanced: {summary}", file=sys.stderr)
    for problem in report.problems():
        print(f"  {problem}", file=sys.stderr)
    return EXIT_FAILURE


def cmd_ledger_balances(args: argparse.Namespace) -> int:
    from poshub.bootstrap import open_database
    from poshub.settlement import service as ledger

    as_of = None
    if args.date is not None:
        as_of = _parse_date(args.date)
        if as_of is None:
            return EXIT_USAGE
    database = open_database(_settings(args))
    with database.unit_of_work(read_only=True) as uow:
        trial = ledger.trial_balance(uow.session, as_of)
    for account in trial.accounts:
        print(f"{account.code:<48} {account.normal_side:<6} {account.normal_balance_fen:>18}")
    if trial.truncated:
        print("… more accounts not listed (the totals cover all)")
    print(f"debits {trial.debit_total_fen} fen, credits {trial.credit_total_fen} fen")
    return EXIT_OK if trial.balanced else EXIT_FAILURE


def cmd_reconcile(args: argparse.Namespace) -> int:
    """Reconcile a business day against the network's clearing file (docs/settlement.md):
    0 all matched, 1 exceptions queued for operations, 2 bad input (nothing recorded)."""
    from poshub.core.db import utcnow
    from poshub.core.limits import RECONCILIATION_SHOWN_MAX
    from poshub.settlement.clearing_file import ClearingFileError, default_clearing_path
    from poshub.settlement.reconciliation import reconcile_day

    day = _parse_date(args.date)
    if day is None:
        return EXIT_USAGE
    settings = _settings(args)
    path = Path(args.file) if args.file else default_clearing_path(settings.data_dir, day)
    database, _ = _keyed_database(settings)
    with database.unit_of_work() as uow:
        try:
            result = reconcile_day(uow.session, day, path, now=utcnow())
        except ClearingFileError as error:
            print(f"not reconciled 未对账: {path}: {error}", file=sys.stderr)
            return EXIT_USAGE
        uow.commit()
    found = result.reconciliation
    counts = ", ".join(f"{kind} {count}" for kind, count in found.counts().items())
    print(
        f"{day.isoformat()}: {counts}; ours {found.our_count} lines {found.our_fen} fen, "
        f"network {found.network_count} lines {found.network_fen} fen"
    )
    if not found.exceptions:
        return EXIT_OK
    print(
        f"{len(found.exceptions)} exception(s) 对账差错, {result.queued} newly queued:",
        file=sys.stderr,
    )
    for exception in found.exceptions[:RECONCILIATION_SHOWN_MAX]:
        print(
            f"  {exception.kind.value} {exception.rrn} mid {exception.mid or '-'} "
            f"tid {exception.tid or '-'} ours {exception.our_amount_fen} "
            f"network {exception.network_amount_fen}",
            file=sys.stderr,
        )
    if len(found.exceptions) > RECONCILIATION_SHOWN_MAX:
        print("  … more in the reconciliation exceptions queue", file=sys.stderr)
    return EXIT_FAILURE


def _state(settings: Settings) -> AppState:
    from poshub.bootstrap import build_state, open_database

    return build_state(settings, database=open_database(settings))


def cmd_web(args: argparse.Namespace) -> int:
    import os

    import uvicorn

    from poshub.web.app import create_app

    settings = _settings(args, web_host=args.host, web_port=args.port)
    _logging(settings)
    if args.workers < 1:
        print("--workers must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    if args.workers == 1:
        state = _state(settings)
        # proxy_headers=False: the app alone decides whom to believe about the client's
        # address (POSHUB_TRUSTED_PROXIES, poshub.web.deps.client_ip), not uvicorn.
        uvicorn.run(
            create_app(state),
            host=settings.web_host,
            port=settings.web_port,
            log_level="info",
            proxy_headers=False,
        )
        return EXIT_OK
    # Several processes: each imports the app factory and reads its settings from the
    # environment, so the command line's choices are passed on through it. On SQLite they
    # queue their writes on the lock file beside the database (core/db.py).
    _state(settings)  # fail here, once, on a bad configuration or a missing key
    if getattr(args, "data_dir", None):
        os.environ["POSHUB_DATA_DIR"] = str(args.data_dir)
    if getattr(args, "database_url", None):
        os.environ["POSHUB_DATABASE_URL"] = args.database_url
    uvicorn.run(
        "poshub.web.app:app_from_environment",
        factory=True,
        workers=args.workers,
        host=settings.web_host,
        port=settings.web_port,
        log_level="info",
        proxy_headers=False,
    )
    return EXIT_OK


def cmd_gateway(args: argparse.Namespace) -> int:
    from poshub.gateway.process import run_gateway

    overrides: dict[str, object] = {"gateway_host": args.host, "gateway_port": args.port}
    settings = _settings(args, **overrides)
    _logging(settings)
    if args.workers < 1:
        print("--workers must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    try:
        return run_gateway(settings, workers=args.workers)
    except OSError as exc:  # the port is taken, or the address is not this machine's
        print(
            f"gateway: cannot listen on {settings.gateway_host}:{settings.gateway_port}: "
            f"{exc.strerror or exc}",
            file=sys.stderr,
        )
        return EXIT_FAILURE


def cmd_worker(args: argparse.Namespace) -> int:
    from poshub.runtime import anchor_audit_chain, run_jobs_once, worker_loop

    settings = _settings(args)
    _logging(settings)
    state = _state(settings)
    if args.once:
        results = run_jobs_once(state)
        results["audit_anchors_written"] = anchor_audit_chain(state)
        print(results)
        return EXIT_OK
    stop = threading.Event()
    try:
        worker_loop(state, stop)
    except KeyboardInterrupt:
        stop.set()
    return EXIT_OK


def cmd_user_add(args: argparse.Namespace) -> int:
    import getpass

    from poshub.core.audit import Actor
    from poshub.core.errors import PosHubError
    from poshub.core.i18n import Translator
    from poshub.core.roles import Role
    from poshub.staff import service as staff_service

    try:
        roles = [Role(r) for r in args.role]
    except ValueError:
        print(f"unknown role; choose from: {', '.join(r.value for r in Role)}", file=sys.stderr)
        return EXIT_USAGE
    password = args.password or getpass.getpass("password: ")
    database, _ = _keyed_database(_settings(args))
    t = Translator("en")
    with database.unit_of_work() as uow:
        try:
            staff_service.create_user(
                uow.session,
                username=args.username,
                display_name=args.display_name or args.username,
                password=password,
                roles=roles,
                actor=Actor.system("cli"),
            )
        except PosHubError as exc:
            errors = getattr(exc, "errors", [])
            print(t(exc.message, exc.params), file=sys.stderr)
            for error in errors:
                print(f"  {error.field}: {t(error.message, error.params)}", file=sys.stderr)
            return EXIT_FAILURE
        uow.commit()
    print(f"created {args.username} with roles {', '.join(sorted(r.value for r in roles))}")
    return EXIT_OK


def cmd_catalog_load(args: argparse.Namespace) -> int:
    import json

    from poshub.bootstrap import open_database
    from poshub.catalog import service as catalog_service

    try:
        data = (
            catalog_service.read_catalog(Path(args.file))
            if args.file
            else catalog_service.default_catalog()
        )
    except (OSError, json.JSONDecodeError) as exc:
        print(f"cannot read catalogue: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    database = open_database(_settings(args))
    with database.unit_of_work() as uow:
        try:
            models, plans = catalog_service.load(uow.session, data)
        except (KeyError, ValueError) as exc:
            print(f"catalogue file is not valid: {exc}", file=sys.stderr)
            return EXIT_FAILURE
        uow.commit()
    print(f"{models} terminal models loaded, {plans} new fee-plan versions")
    return EXIT_OK


def _calendar_database(args: argparse.Namespace) -> Database:
    from poshub.bootstrap import open_database

    return open_database(_settings(args))


def cmd_calendar_load(args: argparse.Namespace) -> int:
    """Load a State Council holiday schedule (docs/settlement.md, "Schedule file")."""
    from poshub.core import workdays

    try:
        text = Path(args.file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"cannot read calendar file 无法读取日历文件: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    try:
        rows = workdays.parse_schedule(text)
    except workdays.ScheduleError as exc:
        print("calendar file is not valid, nothing loaded 日历文件有误，未导入:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_FAILURE
    database = _calendar_database(args)
    with database.unit_of_work() as uow:
        years = workdays.load_schedule(uow.session, rows, by=args.by)
        uow.commit()
    with database.unit_of_work(read_only=True) as uow:
        workdays.refresh(uow.session)
    listed = ", ".join(str(year) for year in years)
    print(f"calendar loaded for {listed} ({len(rows)} days listed) 已导入 {listed} 年日历")
    return EXIT_OK


def _parse_date(value: str) -> dt.date | None:
    """``YYYY-MM-DD``, or None after saying why not."""
    import datetime as dt

    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        print(f"not a date 日期格式有误: {value!r} (YYYY-MM-DD)", file=sys.stderr)
        return None


def cmd_calendar_set(args: argparse.Namespace) -> int:
    """Operations' edit of one day (kind ``manual``)."""
    from poshub.core import workdays

    day = _parse_date(args.date)
    if day is None:
        return EXIT_USAGE
    database = _calendar_database(args)
    with database.unit_of_work() as uow:
        try:
            workdays.set_day(
                uow.session, day, is_working=args.status == "working", note=args.note, by=args.by
            )
        except ValueError as exc:
            print(f"cannot set the day 无法修改: {exc}", file=sys.stderr)
            return EXIT_USAGE
        uow.commit()
    print(f"{day.isoformat()} is now {args.status} (manual) 已修改")
    return EXIT_OK


def _parse_month(value: str) -> tuple[int, int] | None:
    import datetime as dt

    try:
        first = dt.date.fromisoformat(f"{value}-01")
    except ValueError:
        return None
    if len(value) != 7:
        return None
    return first.year, first.month


def cmd_calendar_show(args: argparse.Namespace) -> int:
    """A month, one line a day: working or not, where the answer comes from, the holiday."""
    from poshub.core import workdays
    from poshub.core.calendar import DayKind

    parsed = _parse_month(args.month)
    if parsed is None:
        print(f"not a month 月份格式有误: {args.month!r} (YYYY-MM)", file=sys.stderr)
        return EXIT_USAGE
    database = _calendar_database(args)
    with database.unit_of_work(read_only=True) as uow:
        workdays.refresh(uow.session)
    days = workdays.month(*parsed)
    weekdays = ("Mon 一", "Tue 二", "Wed 三", "Thu 四", "Fri 五", "Sat 六", "Sun 日")
    print(f"{args.month}")
    if any(day.kind is DayKind.PROVISIONAL for day in days):
        print(
            f"PROVISIONAL 临时: no published schedule for {parsed[0]}; statutory holidays and "
            "weekends only, no make-up days. Load it with `poshub calendar load FILE`."
        )
    for day in days:
        ordinary = day.day.weekday() < 5
        status = "working 工作日" if day.is_working else "off 休息日"
        marks = []
        if day.is_working != ordinary:
            marks.append("make-up 调休" if day.is_working else "holiday 节假日")
        if day.kind is not DayKind.PUBLISHED:
            marks.append(day.kind.value)
        extra = f"  [{', '.join(marks)}]" if marks else ""
        note = f"  {day.note}" if day.note else ""
        print(f"{day.day.isoformat()} {weekdays[day.day.weekday()]}  {status}{extra}{note}")
    return EXIT_OK


def cmd_calendar_add_working_days(args: argparse.Namespace) -> int:
    import datetime as dt

    from poshub.core import workdays
    from poshub.core.calendar import DayKind, add_working_days, day_info

    start = _parse_date(args.date)
    if start is None:
        return EXIT_USAGE
    try:
        n = int(args.n)
    except ValueError:
        print(f"not a number of days 天数有误: {args.n!r}", file=sys.stderr)
        return EXIT_USAGE
    database = _calendar_database(args)
    with database.unit_of_work(read_only=True) as uow:
        workdays.refresh(uow.session)
    try:
        end = add_working_days(start, n)
    except ValueError as exc:
        print(f"cannot count working days 无法计算工作日: {exc}", file=sys.stderr)
        return EXIT_USAGE
    provisional = any(
        day_info(start + dt.timedelta(days=offset)).kind is DayKind.PROVISIONAL
        for offset in range(1, (end - start).days + 1)
    )
    print(end.isoformat() + ("  (provisional 临时日历)" if provisional else ""))
    return EXIT_OK


def cmd_inventory_stock_in(args: argparse.Namespace) -> int:
    """Stock-in from a CSV on the command line, for deliveries too large for a browser."""
    from poshub.core.db import utcnow
    from poshub.core.i18n import Translator
    from poshub.core.limits import STOCK_CSV_BYTES_MAX
    from poshub.core.roles import Role
    from poshub.staff import repository as staff_repository
    from poshub.staff.service import Principal
    from poshub.terminals import service as terminal_service

    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        print(f"cannot read {path}: {exc.strerror}", file=sys.stderr)
        return EXIT_FAILURE
    if len(data) > STOCK_CSV_BYTES_MAX:
        print(f"{path} is larger than {STOCK_CSV_BYTES_MAX} bytes; split it", file=sys.stderr)
        return EXIT_FAILURE
    database, _ = _keyed_database(_settings(args))
    t = Translator("en")
    with database.unit_of_work() as uow:
        user = staff_repository.by_username(uow.session, args.as_user)
        roles = staff_repository.roles_of(uow.session, user.id) if user else frozenset()
        if user is None or not user.active or Role.OPERATIONS not in roles:
            print(
                f"{args.as_user}: no active staff account with the operations role", file=sys.stderr
            )
            return EXIT_FAILURE
        actor = Principal(user.id, user.username, user.display_name, roles).actor
        result = terminal_service.stock_in(
            uow.session, data, file_name=path.name, user_id=user.id, actor=actor, now=utcnow()
        )
        if result.batch is None:
            print(
                f"{path}: nothing imported; fix these rows and send the file again:",
                file=sys.stderr,
            )
            for problem in result.problems:
                message = t(problem.message, problem.params)
                print(f"  row {problem.row}, {problem.column}: {message}", file=sys.stderr)
            return EXIT_FAILURE
        uow.commit()
    print(
        f"{result.imported} devices in stock (batch {result.batch.id}, sha256 {result.batch.file_sha256})"
    )
    return EXIT_OK


def cmd_terminal_list(args: argparse.Namespace) -> int:
    from poshub.bootstrap import open_database
    from poshub.merchants import repository as merchant_repository
    from poshub.terminals import service as terminal_service

    database = open_database(_settings(args))
    with database.unit_of_work(read_only=True) as uow:
        merchant = merchant_repository.by_mid(uow.session, args.mid)
        if merchant is None:
            print(f"no merchant has MID {args.mid}", file=sys.stderr)
            return EXIT_FAILURE
        for summary in terminal_service.merchant_terminals(uow.session, merchant.id):
            print(
                f"{summary.tid}  {summary.status:<12} {summary.model_code:<10} "
                f"{summary.serial_number or '-':<18} {summary.device_status or '-':<10} "
                f"KCV {summary.kcv or '-'}"
            )
    return EXIT_OK


def cmd_terminal_show(args: argparse.Namespace) -> int:
    """One terminal, with its key check value recomputed from the stored key block: a
    quick proof that the configured KEK unwraps the fleet's keys."""
    from poshub.bootstrap import open_database
    from poshub.core.crypto import KeyVault, load_kek
    from poshub.terminals import hsm, repository
    from poshub.terminals import service as terminal_service

    settings = _settings(args)
    database = open_database(settings)
    vault = KeyVault(load_kek(settings))
    with database.unit_of_work(read_only=True) as uow:
        terminal = repository.terminal_by_tid(uow.session, args.tid)
        if terminal is None:
            print(f"no terminal has TID {args.tid}", file=sys.stderr)
            return EXIT_FAILURE
        device = repository.device_of(uow.session, terminal.id)
        key = repository.current_key(uow.session, terminal.id)
        print(f"TID {terminal.tid}: {terminal.status}, model {terminal.model_code}")
        print(f"device: {device.serial_number + ' (' + device.status + ')' if device else '-'}")
        if key is None:
            print("master key: none")
            return EXIT_OK
        try:
            recomputed = terminal_service.key_check_value(uow.session, vault, terminal)
        except hsm.KeyBlockError:
            print("master key: the key block does not unwrap under this KEK", file=sys.stderr)
            return EXIT_FAILURE
        verdict = "matches" if recomputed == key.kcv else "DOES NOT MATCH"
        print(f"master key: KCV {key.kcv} ({key.source}); unwrapped under the KEK: {verdict}")
        return EXIT_OK if recomputed == key.kcv else EXIT_FAILURE


def cmd_privacy_purge(args: argparse.Namespace) -> int:
    """Anonymise the personal data of merchants past their retention (docs/privacy.md)."""
    from poshub.core.db import utcnow
    from poshub.privacy.service import run_purge

    settings = _settings(args)
    state = _state(settings)
    purged = run_purge(
        state.db,
        state.onboarding.store,
        retention_years=settings.retention_years,
        now=utcnow(),
        batch=args.batch,
        batches_max=args.batches_max,
    )
    for mid in purged:
        print(f"purged merchant {mid}")
    print(
        f"{len(purged)} merchant(s) purged; retention {settings.retention_years} years "
        "after the termination date"
    )
    return EXIT_OK


def cmd_risk_regrade(args: argparse.Namespace) -> int:
    """Regrade merchants from a finished month's traffic (docs/risk.md); merchants
    already graded for that month are left alone, so it is safe to run again."""
    from poshub.core.db import utcnow
    from poshub.risk import grading
    from poshub.risk import jobs as risk_jobs

    now = utcnow()
    latest = grading.previous_period(now)
    try:
        period = grading.parse_period(args.month) if args.month else latest
    except ValueError as exc:
        print(f"--month: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if period > latest:
        print(
            f"--month: {period} is not over yet; the latest month to regrade is {latest}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    database, _ = _keyed_database(_settings(args))
    graded = risk_jobs.regrade(database, period, now=now)
    print(f"{graded} merchant(s) regraded for {period}")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from poshub.demo_runner import run_demo

    return run_demo(
        _settings(args, mode=Mode.DEMO, web_host=args.host, web_port=args.port),
        serve=not args.no_serve,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="poshub", description="PosHub: acquiring platform for POS terminals."
    )
    parser.add_argument("--data-dir", help="data directory (default ./var, or POSHUB_DATA_DIR)")
    parser.add_argument(
        "--database-url", help="SQLAlchemy URL (default SQLite in the data directory)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="migrate, seed demo data and run every process on SQLite")
    # No defaults here: POSHUB_WEB_HOST / POSHUB_WEB_PORT apply unless a flag is given.
    demo.add_argument("--host", default=None)
    demo.add_argument("--port", type=int, default=None)
    demo.add_argument(
        "--no-serve", action="store_true", help="seed and print the logins, then exit"
    )
    demo.set_defaults(func=cmd_demo)

    web = sub.add_parser("web", help="run the web process (API, back office, public pages)")
    web.add_argument("--host", default=None)
    web.add_argument("--port", type=int, default=None)
    web.add_argument(
        "--workers",
        type=int,
        default=1,
        help="web processes (2-3 on a 2-core machine serve the most applications a second)",
    )
    web.set_defaults(func=cmd_web)

    gateway = sub.add_parser(
        "gateway", help="run the ISO 8583 host for POS terminals (docs/gateway.md)"
    )
    gateway.add_argument("--host", default=None, help="listen address (POSHUB_GATEWAY_HOST)")
    gateway.add_argument("--port", type=int, default=None, help="listen port (POSHUB_GATEWAY_PORT)")
    gateway.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes sharing the port (SO_REUSEPORT); the first owns store-and-forward",
    )
    gateway.set_defaults(func=cmd_gateway)

    from poshub.simulators import network as network_simulator

    network_simulator.add_cli(sub, _settings)

    worker = sub.add_parser("worker", help="run scheduled jobs (notifications, SLA clocks)")
    worker.add_argument("--once", action="store_true", help="run one pass and exit")
    worker.set_defaults(func=cmd_worker)

    db = sub.add_parser("db", help="database administration")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="SUBCOMMAND")
    db_sub.add_parser("upgrade", help="apply every migration").set_defaults(func=cmd_db_upgrade)

    audit = sub.add_parser("audit", help="the keyed, hash-chained audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, metavar="SUBCOMMAND")
    audit_sub.add_parser(
        "verify",
        help="check the chain (MACs under the KEK) and its anchors; exit 0 when intact, "
        "1 naming the first problem",
    ).set_defaults(func=cmd_audit_verify)
    audit_sub.add_parser(
        "anchor",
        help="append the chain head to the anchor file outside the database "
        "(POSHUB_AUDIT_ANCHOR_DIR), after verifying the rows since the last anchor",
    ).set_defaults(func=cmd_audit_anchor)

    ledger = sub.add_parser("ledger", help="the double-entry ledger (docs/settlement.md)")
    ledger_sub = ledger.add_subparsers(dest="ledger_command", required=True, metavar="SUBCOMMAND")
    ledger_sub.add_parser(
        "verify",
        help="check that every entry and the whole ledger balance; exit 0 when intact, "
        "1 naming the first problems",
    ).set_defaults(func=cmd_ledger_verify)
    ledger_balances = ledger_sub.add_parser(
        "balances", help="trial balance: each account on its normal side, in fen"
    )
    ledger_balances.add_argument(
        "--date", default=None, help="YYYY-MM-DD: entries of business dates up to this one"
    )
    ledger_balances.set_defaults(func=cmd_ledger_balances)

    reconcile = sub.add_parser(
        "reconcile",
        help="reconcile a business day against the network's clearing file; exit 0 all "
        "matched, 1 exceptions queued, 2 bad date or file (docs/settlement.md)",
    )
    reconcile.add_argument("--date", required=True, help="the business date, YYYY-MM-DD")
    reconcile.add_argument(
        "--file",
        default=None,
        help="the clearing file (default <data_dir>/clearing/CUP-YYYYMMDD.csv)",
    )
    reconcile.set_defaults(func=cmd_reconcile)

    user = sub.add_parser("user", help="staff accounts")
    user_sub = user.add_subparsers(dest="user_command", required=True, metavar="SUBCOMMAND")
    add = user_sub.add_parser("add", help="create a staff account")
    add.add_argument("username")
    add.add_argument("--role", action="append", required=True, help="role (repeatable)")
    add.add_argument("--display-name")
    add.add_argument("--password", help="omit to be prompted")
    add.set_defaults(func=cmd_user_add)

    catalog = sub.add_parser("catalog", help="the product catalogue")
    catalog_sub = catalog.add_subparsers(
        dest="catalog_command", required=True, metavar="SUBCOMMAND"
    )
    load = catalog_sub.add_parser("load", help="load terminal models and fee plans from JSON")
    load.add_argument("file", nargs="?", help="catalogue JSON (default: the shipped sample)")
    load.set_defaults(func=cmd_catalog_load)

    calendar = sub.add_parser(
        "calendar", help="the working-day calendar and business day (docs/settlement.md)"
    )
    calendar_sub = calendar.add_subparsers(
        dest="calendar_command", required=True, metavar="SUBCOMMAND"
    )
    calendar_load = calendar_sub.add_parser(
        "load", help="load a published holiday schedule (CSV: date,is_working,note)"
    )
    calendar_load.add_argument("file", help="schedule CSV")
    calendar_load.add_argument("--by", default="cli", help="who loads it (recorded per day)")
    calendar_load.set_defaults(func=cmd_calendar_load)
    calendar_set = calendar_sub.add_parser(
        "set", help="mark one day working or off (kept until its year's schedule is loaded)"
    )
    calendar_set.add_argument("date", help="YYYY-MM-DD")
    calendar_set.add_argument("status", choices=("working", "off"))
    calendar_set.add_argument("--note", default="", help="shown by calendar show")
    calendar_set.add_argument("--by", default="cli", help="who edits it (recorded)")
    calendar_set.set_defaults(func=cmd_calendar_set)
    calendar_show = calendar_sub.add_parser("show", help="show a month's working days")
    calendar_show.add_argument("month", help="YYYY-MM")
    calendar_show.set_defaults(func=cmd_calendar_show)
    calendar_add = calendar_sub.add_parser(
        "add-working-days", help="print the date N working days after DATE"
    )
    calendar_add.add_argument("date", help="YYYY-MM-DD")
    calendar_add.add_argument("n", help="working days, 0 or more")
    calendar_add.set_defaults(func=cmd_calendar_add_working_days)

    inventory = sub.add_parser("inventory", help="terminal devices in stock")
    inventory_sub = inventory.add_subparsers(
        dest="inventory_command", required=True, metavar="SUBCOMMAND"
    )
    stock_in = inventory_sub.add_parser(
        "stock-in", help="import devices from a CSV (all or nothing; docs/terminals.md)"
    )
    stock_in.add_argument("file", help="CSV: serial_number,model_code,warehouse[,firmware_version]")
    stock_in.add_argument("--as", dest="as_user", required=True, help="operations staff username")
    stock_in.set_defaults(func=cmd_inventory_stock_in)

    privacy = sub.add_parser("privacy", help="personal data retention (docs/privacy.md)")
    privacy_sub = privacy.add_subparsers(
        dest="privacy_command", required=True, metavar="SUBCOMMAND"
    )
    purge = privacy_sub.add_parser(
        "purge",
        help="anonymise closed merchants past POSHUB_RETENTION_YEARS after termination",
    )
    purge.add_argument("--batch", type=int, default=50, help="merchants per transaction")
    purge.add_argument("--batches-max", type=int, default=1000, help="stop after this many batches")
    purge.set_defaults(func=cmd_privacy_purge)

    risk = sub.add_parser("risk", help="risk control (docs/risk.md)")
    risk_sub = risk.add_subparsers(dest="risk_command", required=True, metavar="SUBCOMMAND")
    regrade = risk_sub.add_parser(
        "regrade",
        help="regrade merchants from a month's traffic, alerts and cases (once per month)",
    )
    regrade.add_argument(
        "--month", help="the month to regrade, YYYY-MM (default: last month, Beijing time)"
    )
    regrade.set_defaults(func=cmd_risk_regrade)

    terminal = sub.add_parser("terminal", help="terminals (TIDs) and their keys")
    terminal_sub = terminal.add_subparsers(
        dest="terminal_command", required=True, metavar="SUBCOMMAND"
    )
    listing = terminal_sub.add_parser("list", help="a merchant's terminals")
    listing.add_argument("--mid", required=True, help="merchant number (15 digits)")
    listing.set_defaults(func=cmd_terminal_list)
    show = terminal_sub.add_parser(
        "show", help="one terminal; checks its key block unwraps to the recorded KCV"
    )
    show.add_argument("tid", help="terminal id (8 digits)")
    show.set_defaults(func=cmd_terminal_show)
    # The terminal simulator: sign on and run each transaction against a gateway.
    from poshub.simulators import loadgen
    from poshub.simulators import terminal as terminal_simulator

    terminal_simulator.add_cli(terminal_sub, _settings)
    loadgen.add_cli(sub, _settings)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from pydantic import ValidationError

    from poshub.contracts.fonts import ContractFontMissing
    from poshub.core.crypto import KeyMaterialError

    try:
        result: int = args.func(args)
    except ValidationError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyMaterialError as exc:
        print(f"key error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except ContractFontMissing as exc:  # the demo prints its merchant's contract
        print(f"font error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return result


if __name__ == "__main__":
    sys.exit(main())
