"""The ``poshub`` command line."""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from poshub.core.settings import Mode, Settings

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
    from poshub.runtime import open_database, upgrade

    settings = _settings(args)
    database = open_database(settings)
    upgrade(database)
    from poshub.core.migrate import current_revision

    print(f"database at revision {current_revision(database.engine)}")
    return EXIT_OK


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from poshub.core import audit
    from poshub.runtime import open_database

    database = open_database(_settings(args))
    with database.unit_of_work(read_only=True) as uow:
        checked, problem = audit.verify(uow.session)
    if problem is None:
        print(f"audit log intact: {checked} rows verified")
        return EXIT_OK
    print(
        f"audit log BROKEN at row {problem.seq}: {problem.reason} ({checked} rows before it verified)",
        file=sys.stderr,
    )
    return EXIT_FAILURE


def _state(settings: Settings):  # type: ignore[no-untyped-def]
    from poshub.runtime import open_database
    from poshub.web.app import build_state

    return build_state(settings, database=open_database(settings))


def cmd_web(args: argparse.Namespace) -> int:
    import uvicorn

    from poshub.web.app import create_app

    settings = _settings(args, web_host=args.host, web_port=args.port)
    _logging(settings)
    state = _state(settings)
    uvicorn.run(create_app(state), host=settings.web_host, port=settings.web_port, log_level="info")
    return EXIT_OK


def cmd_worker(args: argparse.Namespace) -> int:
    from poshub.runtime import run_jobs_once, worker_loop

    settings = _settings(args)
    _logging(settings)
    state = _state(settings)
    if args.once:
        print(run_jobs_once(state))
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
    from poshub.runtime import open_database
    from poshub.staff import service as staff_service

    try:
        roles = [Role(r) for r in args.role]
    except ValueError:
        print(f"unknown role; choose from: {', '.join(r.value for r in Role)}", file=sys.stderr)
        return EXIT_USAGE
    password = args.password or getpass.getpass("password: ")
    database = open_database(_settings(args))
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

    from poshub.catalog import service as catalog_service
    from poshub.runtime import open_database

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
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument(
        "--no-serve", action="store_true", help="seed and print the logins, then exit"
    )
    demo.set_defaults(func=cmd_demo)

    web = sub.add_parser("web", help="run the web process (API, back office, public pages)")
    web.add_argument("--host", default=None)
    web.add_argument("--port", type=int, default=None)
    web.set_defaults(func=cmd_web)

    worker = sub.add_parser("worker", help="run scheduled jobs (notifications, SLA clocks)")
    worker.add_argument("--once", action="store_true", help="run one pass and exit")
    worker.set_defaults(func=cmd_worker)

    db = sub.add_parser("db", help="database administration")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="SUBCOMMAND")
    db_sub.add_parser("upgrade", help="apply every migration").set_defaults(func=cmd_db_upgrade)

    audit = sub.add_parser("audit", help="the hash-chained audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, metavar="SUBCOMMAND")
    audit_sub.add_parser(
        "verify", help="check the chain; exit 0 when intact, 1 naming the first bad row"
    ).set_defaults(func=cmd_audit_verify)

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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from pydantic import ValidationError

    from poshub.core.crypto import KeyMaterialError

    try:
        result: int = args.func(args)
    except ValidationError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyMaterialError as exc:
        print(f"key error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return result


if __name__ == "__main__":
    sys.exit(main())
