"""Verbs of the learner portal: `url` (a Lab's access link, for an instructor) and `open`
(the portal through a port-forward, the link opened in the browser)."""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import time
import webbrowser
from urllib.parse import quote

from roadlab.api import naming
from roadlab.cli.common import EXIT_FAILURE, EXIT_NOT_FOUND, EXIT_OK, CliError
from roadlab.cli.session import App

PORTAL_SERVICE = "svc/roadlab-portal"
PORTAL_PORT = 8080
DEFAULT_LOCAL_PORT = 8765
PORTAL_URL_ENV = "ROADLAB_PORTAL_URL"


def access_link(base_url: str, lab: str, token: str) -> str:
    """The link that signs a browser in to the Lab's page (the token then leaves the URL)."""
    return f"{base_url.rstrip('/')}/enter/{quote(lab, safe='')}?token={quote(token, safe='')}"


def _token(app: App, lab: str, operator_namespace: str) -> str:
    app.get_lab(lab)  # a clear "not found" first
    token = app.api.secret_value(
        operator_namespace, naming.portal_access_secret(lab), naming.PORTAL_ACCESS_KEY
    )
    if not token:
        raise CliError(
            f"lab {lab} has no portal access token yet (is the portal enabled, and the lab "
            "provisioned?)",
            EXIT_NOT_FOUND,
        )
    return token


def cmd_url(app: App, args: argparse.Namespace) -> int:
    base = args.portal_url or app.env.get(PORTAL_URL_ENV)
    token = _token(app, args.name, args.operator_namespace)
    if not base:
        base = f"http://127.0.0.1:{DEFAULT_LOCAL_PORT}"
        app.note(f"note: no portal URL given ({PORTAL_URL_ENV} or --portal-url); this link "
                 f"works while `kubectl lab open {args.name}` runs")  # fmt: skip
    app.print(access_link(base, args.name, token))
    return EXIT_OK


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise CliError("kubectl port-forward to the portal ended; is the portal installed?")
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise CliError(f"the portal's port-forward did not open port {port} in {timeout:.0f} s")


def cmd_open(app: App, args: argparse.Namespace) -> int:
    """Port-forward to the portal (kubectl, with the same kubeconfig), print the link and
    open it in the browser; until Ctrl-C."""
    token = _token(app, args.name, args.operator_namespace)
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise CliError("kubectl is not on PATH (kubectl lab open port-forwards with it)")
    command = [kubectl, "port-forward", "-n", args.operator_namespace, PORTAL_SERVICE,
               f"{args.port}:{PORTAL_PORT}"]  # fmt: skip
    if app.kubeconfig:
        command[1:1] = ["--kubeconfig", app.kubeconfig]
    if app.context:
        command[1:1] = ["--context", app.context]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(args.port, process)
        link = access_link(f"http://127.0.0.1:{args.port}", args.name, token)
        app.print(link)
        app.note("the portal is open at that link; Ctrl-C ends the port-forward")
        if not args.no_browser and (os.environ.get("DISPLAY") or os.name != "posix"):
            webbrowser.open(link)
        process.wait()
        return EXIT_OK if process.returncode == 0 else EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    finally:
        process.terminate()
