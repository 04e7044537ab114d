"""`jhub-af`: the command line of the facility (`jhub-af demo`, `jhub-af check-config`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jhub_af import __version__


def _port(text: str) -> int:
    """A TCP port from the command line; argparse's error names the bad value."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (1-65535)")
    return port


def _demo(args: argparse.Namespace) -> int:
    """`jhub-af demo`: the hub's exit status, or 2 with the reason on stderr."""
    from jhub_af.demo import DemoError, run_demo

    try:
        return run_demo(
            args.ip,
            args.port,
            Path(args.data_dir),
            login=args.login,
            issuer=args.issuer,
            client_id=args.client_id,
            client_secret_file=args.client_secret_file,
            ssh_port=args.ssh_port,
        )
    except DemoError as e:
        print(f"jhub-af demo: {e}", file=sys.stderr)
        return 2


def _demo_config():
    """The demo facility's hub config, as `jhub-af demo` builds it.

    Building it writes the components' files (secrets, service configs) into a data
    directory: a temporary one, removed at once, so that a check leaves nothing behind
    in the working directory.
    """
    import tempfile

    from traitlets.config import Config

    from jhub_af.demo import DemoSettings, configure

    c = Config()
    with tempfile.TemporaryDirectory(prefix="jhub-af-check-") as data_dir:
        settings = DemoSettings(
            ip="127.0.0.1", port=8000, data_dir=data_dir, hub_port=8081, proxy_api_port=8001
        )
        configure(c, settings)
    return c


def _check_config(args: argparse.Namespace) -> int:
    """`jhub-af check-config [FILE]`: the report on stdout; 1 when it finds problems,
    2 when the configuration cannot be read (the reason on stderr)."""
    from jhub_af.demo import demo_user_groups
    from jhub_af.spawner import check_config, load_hub_config

    try:
        if args.file is None:
            c, source = _demo_config(), "the demo's configuration"
        else:
            c, source = load_hub_config(args.file), args.file
        status, text = check_config(c, source, demo_user_groups(c))
    except Exception as e:
        print(f"jhub-af check-config: cannot read the configuration: {e}", file=sys.stderr)
        return 2
    print(text)
    return status


def _usage(args: argparse.Namespace) -> int:
    from jhub_af.accounting import ReportError, usage_report

    try:
        report = usage_report(
            args.db_url,
            fmt=args.format,
            user=args.user,
            group=args.group,
            since=args.since,
            until=args.until,
        )
    except ReportError as e:
        print(f"jhub-af usage: {e}", file=sys.stderr)
        return 2
    print(report)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The `jhub-af` parser; each command sets ``func``, which :func:`main` calls."""
    parser = argparse.ArgumentParser(
        prog="jhub-af", description="jhub_af: an analysis facility on JupyterHub."
    )
    parser.add_argument("--version", action="version", version=f"jhub_af {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="run a whole facility on this machine",
        description=(
            "Run the demo facility: hub and proxy, the demo login (alice, bob, carol, "
            "admin; password 'demo') and JupyterLab notebooks as local processes. "
            "Ctrl-C stops it and everything it started."
        ),
    )
    demo.add_argument("--ip", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    demo.add_argument("--port", type=_port, default=8000, help="port to listen on (default 8000)")
    demo.add_argument(
        "--ssh-port",
        type=_port,
        default=8022,
        help="port of af-ssh, the SSH-on-demand service (default 8022)",
    )
    demo.add_argument(
        "--data-dir",
        default="./.jhub-af-demo",
        help="where the demo keeps its database, secrets and homes (default ./.jhub-af-demo)",
    )
    demo.add_argument(
        "--login",
        choices=["demo", "iam"],
        default="demo",
        help="'demo' (the demo users, the default) or 'iam' (sign in with an OIDC IAM)",
    )
    demo.add_argument("--issuer", default="", help="with --login iam: the IAM's issuer URL")
    demo.add_argument("--client-id", default="", help="with --login iam: the OIDC client id")
    demo.add_argument(
        "--client-secret-file",
        default="",
        help="with --login iam: a file holding the OIDC client secret",
    )
    demo.set_defaults(func=_demo)

    check = commands.add_parser(
        "check-config",
        help="print which profiles each group sees, and flag problems",
        description=(
            "Read a jupyterhub_config.py (default: the demo's configuration) and print, "
            "per VO group, the profiles its members see. Flags profiles no group can see, "
            "unknown groups and invalid resources; exits 1 when it finds a problem."
        ),
    )
    check.add_argument("file", nargs="?", default=None, help="a jupyterhub_config.py")
    check.set_defaults(func=_check_config)

    usage = commands.add_parser(
        "usage",
        help="core-, GPU- and memory-hours per user and group, from the accounting ledger",
        description=(
            "Print usage from af-accounting's ledger (read only): per user and per group, "
            "this month (UTC) unless --since/--until say otherwise."
        ),
    )
    usage.add_argument("--user", help="only this user")
    usage.add_argument("--group", help="only this group (e.g. /atlas/users)")
    usage.add_argument("--since", help="first day counted, e.g. 2026-11-01 (default: month start)")
    usage.add_argument("--until", help="day after the last counted (default: next month start)")
    usage.add_argument("--format", choices=["table", "csv", "json"], default="table")
    usage.add_argument(
        "--db-url",
        default="sqlite:///.jhub-af-demo/accounting/af-accounting.sqlite",
        help="the ledger's database (AccountingService.db_url; default: the demo's)",
    )
    usage.set_defaults(func=_usage)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one `jhub-af` command (``argv`` default: ``sys.argv[1:]``); its exit status.

    Called by the ``jhub-af`` console script and ``python -m jhub_af.cli``.
    """
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
