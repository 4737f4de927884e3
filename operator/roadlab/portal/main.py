"""roadlab-portal: serve the learner portal (`roadlab-portal --host 0.0.0.0 --port 8080`)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import uvicorn

from roadlab.kube.portal_api import PortalApi
from roadlab.portal.app import create_app
from roadlab.portal.context import Portal
from roadlab.portal.logs import log_config
from roadlab.portal.settings import PortalSettings


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="roadlab-portal", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    return parser.parse_args(argv)


def server_config(portal: Portal, args: argparse.Namespace) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(portal),
        host=args.host,
        port=args.port,
        # The sign-in URL holds a Lab's access token: no access log (logs.py redacts the
        # WebSocket lines uvicorn still writes).
        access_log=False,
        log_config=log_config(args.log_level.upper()),
        ws="websockets-sansio",
        # Browsers and proxies keep an idle terminal open with pings of their own too.
        ws_ping_interval=20.0,
        server_header=False,
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    portal = Portal(PortalApi.from_environment(), PortalSettings.from_environment())
    uvicorn.Server(server_config(portal, args)).run()


if __name__ == "__main__":
    main()
