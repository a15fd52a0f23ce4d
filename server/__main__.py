"""Command line: `python -m server [COMMAND] ...`: serve (the default), token, pair, gc..."""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import logging
import os
import signal
import socket
import sys
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from typing import IO, TextIO

import segno

from . import __version__
from .app import make_app
from .catalog import CatalogTooNew, CatalogUnavailable
from .config import Settings
from .config_sources import add_arguments, from_sources
from .config_values import SettingsError
from .errors import ApiError
from .handlers import metrics as metrics_handler
from .progress import ProgressDisplay
from .services import Services, build_services
from .services.auth import DEFAULT_USER, PairingCode
from .services.events_redis import EventsUnavailable
from .services.scrub import Scrubber
from .serving import fit_capacity, http_server, raise_open_file_limit, tls_context
from .storage.home import StorageUnavailable

log = logging.getLogger("tubei")

LOCK_FILE = "tubei.lock"


class DataInUse(Exception):
    """Another server process holds the data folder."""


def lock_data(settings: Settings, *, serving: bool = False) -> IO[str]:
    """Who may use the data folder at once, held for the process's life.

    A SQLite catalog is one process's file: its server holds the folder alone. With a
    PostgreSQL catalog the database arbitrates, so servers share the folder (a shared
    lock, docs/scale-out.md). Maintenance that moves files (`gc`, `scrub --repair`)
    always wants the folder alone, so it still refuses while any server runs.
    """
    settings.data.mkdir(parents=True, exist_ok=True)
    handle = open(settings.data / LOCK_FILE, "a+")  # noqa: SIM115 - held for the process's life
    shared = serving and not settings.catalog_is_sqlite
    try:
        fcntl.flock(handle, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise DataInUse(f"another Tubei server is using {settings.data}") from None
    return handle


def lan_addresses() -> list[str]:
    """This machine's IPv4 addresses a phone on the same network could reach."""
    found: list[str] = []
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        # No packet is sent: connecting a UDP socket only picks the outgoing interface.
        probe.connect(("10.255.255.255", 1))
        found.append(probe.getsockname()[0])
    except OSError:
        pass
    finally:
        probe.close()
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            address = str(info[4][0])
            if address not in found and not address.startswith("127."):
                found.append(address)
    except OSError:
        pass
    return found


def server_urls(settings: Settings) -> list[str]:
    if settings.public_url:
        return [settings.public_url.rstrip("/")]
    scheme = "https" if settings.certfile else "http"
    if settings.host not in ("0.0.0.0", "", "::"):
        return [f"{scheme}://{settings.host}:{settings.port}"]
    urls = [f"{scheme}://{address}:{settings.port}" for address in lan_addresses()]
    return urls or [f"{scheme}://127.0.0.1:{settings.port}"]


def pairing_link(server_url: str, code: str) -> str:
    query = urllib.parse.urlencode({"server": server_url, "code": code})
    return f"tubei://pair?{query}"


def print_pairing(pairing: PairingCode, server_url: str, out: TextIO) -> None:
    link = pairing_link(server_url, pairing.code)
    print(f"Pairing code for {pairing.user.name}: {pairing.code} (valid 10 minutes)", file=out)
    print(f"Server address: {server_url}", file=out)
    print("Scan this with the Tubei mini-program (Settings > Scan to pair):", file=out)
    segno.make(link, error="m").terminal(out=out, compact=True)
    print(link, file=out)


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def run_async(settings: Settings, work: Callable[[Services], Awaitable[int]]) -> int:
    async def main() -> int:
        services = build_services(settings)
        try:
            try:
                await services.start()
            except (CatalogUnavailable, StorageUnavailable) as error:
                print(f"error: {error}", file=sys.stderr)
                return 1
            except EventsUnavailable as error:
                # The catalog is what a command changes; running servers notice at their
                # next check (every --ping-interval) what they are not told now.
                print(f"warning: {error}; servers notice at their next check", file=sys.stderr)
            return await work(services)
        finally:
            await services.close()

    return asyncio.run(main())


# commands -----------------------------------------------------------------------


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    try:
        lock = lock_data(settings, serving=True)
    except DataInUse as error:
        log.error("%s", error)
        return 2
    try:
        return asyncio.run(serve(settings))
    finally:
        if lock is not None:
            lock.close()


async def serve(settings: Settings) -> int:
    try:
        tls = tls_context(settings)
    except SettingsError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    capacity = fit_capacity(settings, raise_open_file_limit())
    services = build_services(settings)
    try:
        await services.start()
    except (CatalogUnavailable, StorageUnavailable) as error:
        log.error("%s", error)
        await services.close()
        return 1
    except EventsUnavailable as error:
        log.error("%s (--events, TUBEI_EVENTS)", error)
        await services.close()
        return 1
    services.sockets.limit = capacity.sockets
    recovered = await services.library.recover()
    if any(vars(recovered).values()):
        log.info("recovered after an unclean stop: %s", recovered)
    services.previews.resume()  # videos whose preview a stop cut short, or never began
    app = make_app(settings, services)
    # Before the port opens: a stop asked for as soon as the server answers is a clean one.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server = http_server(settings, app, tls, capacity)
    try:
        server.listen(settings.port, settings.host)
    except OSError as error:
        log.error("cannot listen on %s port %s: %s", settings.host, settings.port, error.strerror)
        await services.close()
        return 2
    metrics_server = metrics_handler.listen(settings, app)
    if metrics_server is False:
        server.stop()
        await services.close()
        return 2
    urls = server_urls(settings)
    log.info("Tubei %s serving %s on %s", __version__, settings.data, ", ".join(urls))
    if await services.auth.all_devices():
        # Not at every start: each live code is one more a guesser may hit, and several
        # processes sharing a catalog would each make one.
        log.info("to pair another device: python -m server pair [--user NAME]")
    else:
        # A new server: the code that pairs its first phone.
        pairing = await services.auth.create_pairing_code(DEFAULT_USER)
        print_pairing(pairing, urls[0], sys.stderr)
    gc_task = loop.create_task(services.run_gc_forever())
    # Devices revoked from the shell: their open sockets close within a ping interval.
    sweep_task = loop.create_task(services.run_revocation_sweeps_forever(settings.ping_interval))
    await stop.wait()
    log.info("stopping")
    gc_task.cancel()
    sweep_task.cancel()
    server.stop()
    if metrics_server:
        metrics_server.stop()
    await server.close_all_connections()
    await services.close()
    return 0


def cmd_token(settings: Settings, args: argparse.Namespace) -> int:
    async def work(services: Services) -> int:
        issued = await services.auth.issue_token(args.user, args.device)
        print(f"token for {issued.user.name} on {issued.device.name}:", file=sys.stderr)
        print(issued.token)
        return 0

    return run_async(settings, work)


def cmd_pair(settings: Settings, args: argparse.Namespace) -> int:
    async def work(services: Services) -> int:
        pairing = await services.auth.create_pairing_code(args.user)
        print_pairing(pairing, server_urls(settings)[0], sys.stdout)
        return 0

    return run_async(settings, work)


def cmd_devices(settings: Settings, args: argparse.Namespace) -> int:
    async def work(services: Services) -> int:
        found = await services.auth.all_devices(args.user)
        if args.user is not None and not found:
            print(f"no devices for {args.user!r}", file=sys.stderr)
            return 1
        print(f"{'id':>6}  {'user':<20} {'device':<30} {'created':<20}  last seen")
        for user, device in found:
            print(
                f"{device.id:>6}  {user.name:<20} {device.name:<30} {device.created_at:<20}  "
                f"{device.last_seen_at or 'never'}"
            )
        return 0

    return run_async(settings, work)


def cmd_revoke(settings: Settings, args: argparse.Namespace) -> int:
    async def work(services: Services) -> int:
        try:
            device = await services.auth.revoke(args.device_id, None)
        except ApiError:
            print(f"no device {args.device_id} with a live token", file=sys.stderr)
            return 1
        print(f"revoked device {device.id} ({device.name}): its token no longer works")
        return 0

    return run_async(settings, work)


def cmd_gc(settings: Settings, args: argparse.Namespace) -> int:
    try:
        lock = lock_data(settings)
    except DataInUse as error:
        print(f"{error}; it collects garbage itself every so often", file=sys.stderr)
        return 2

    async def work(services: Services) -> int:
        report = await services.library.collect_garbage()
        print(
            f"trash expired: {report.trash_expired}, blobs removed: {report.blobs_removed}, "
            f"orphan files: {report.orphan_files}, thumbnails removed: "
            f"{report.thumbnails_removed}, stale temp files: {report.staging_removed}"
        )
        uploads = await services.uploads.expire()
        print(f"uploads expired: {uploads.expired}, abandoned upload files: {uploads.orphan_files}")
        return 0

    try:
        return run_async(settings, work)
    finally:
        lock.close()


def cmd_scrub(settings: Settings, args: argparse.Namespace) -> int:
    # Reading needs no lock (a server may run); moving files for a repair does.
    lock = None
    if args.repair:
        try:
            lock = lock_data(settings)
        except DataInUse as error:
            print(f"{error}; stop it to repair, or scrub without --repair", file=sys.stderr)
            return 2

    async def work(services: Services) -> int:
        display = ProgressDisplay(sys.stderr, "scrub")
        scrubber = Scrubber(services.catalog, services.store, services.library.thumbnails)
        try:
            report = await scrubber.run(
                repair=args.repair,
                progress=lambda p: display.update(
                    p.bytes_done, p.bytes_total, p.blobs_done, p.blobs_total
                ),
            )
        finally:
            display.close()
        for line in report.lines():
            print(line)
        return 0 if report.settled else 1

    try:
        return run_async(settings, work)
    finally:
        if lock is not None:
            lock.close()


COMMANDS: dict[str, tuple[Callable[[Settings, argparse.Namespace], int], tuple[str, ...], str]] = {
    "serve": (cmd_serve, ("common", "serve", "events"), "run the server (the default)"),
    "token": (cmd_token, ("common",), "create a user if needed and print a new bearer token"),
    "pair": (cmd_pair, ("common", "serve"), "print a one-time pairing code and its QR code"),
    "devices": (cmd_devices, ("common",), "list devices with a live token (all, or one user's)"),
    "revoke": (
        cmd_revoke,
        ("common", "events"),
        "revoke a device's token (works while a server runs)",
    ),
    "gc": (
        cmd_gc,
        ("common",),
        "remove unreferenced blobs, old trash, stale temp files and expired uploads",
    ),
    "scrub": (
        cmd_scrub,
        ("common",),
        "re-hash every blob, check the catalog against the store; exit 1 if not clean",
    ),
}


def user_name(text: str) -> str:
    name = text.strip()
    if not name or not name.isprintable():
        raise argparse.ArgumentTypeError(f"{text!r} is not a user name")
    return name


def device_number(text: str) -> int:
    if not (text.isascii() and text.isdigit() and 0 < len(text) <= 18 and int(text) > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a device id")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m server", description="Tubei photo backup")
    parser.add_argument("--version", action="version", version=f"tubei {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, groups, help_text) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        add_arguments(sub, groups)
        if name == "token":
            sub.add_argument("--user", required=True, type=user_name, help="the user's name")
            sub.add_argument("--device", default="command line", help="a name for the device")
        if name == "pair":
            sub.add_argument(
                "--user", default=DEFAULT_USER, type=user_name, help="the user to pair a device for"
            )
        if name == "devices":
            sub.add_argument("--user", type=user_name, help="only this user's devices")
        if name == "revoke":
            sub.add_argument("device_id", type=device_number, help="the device's id (see devices)")
        if name == "scrub":
            sub.add_argument(
                "--repair",
                action="store_true",
                help="quarantine bad and orphaned blobs, make missing thumbnails "
                "(needs the server stopped)",
            )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv.insert(0, "serve")
    args = build_parser().parse_args(argv)
    command, groups, _ = COMMANDS[args.command]
    try:
        settings = from_sources(args, os.environ, groups)
    except SettingsError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    configure_logging(settings)
    try:
        return command(settings, args)
    except CatalogTooNew as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
