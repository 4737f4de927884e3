"""The portal's ASGI app: routes, static files, security headers."""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from roadlab.portal import routes
from roadlab.portal.context import LearnerCallError, Portal
from roadlab.portal.pages import STATIC_DIR, message_page
from roadlab.portal.terminal import terminal

log = logging.getLogger("roadlab.portal")

# Nothing loads from outside the portal; no inline script (the page's values are data-*
# attributes). xterm.js writes <style> elements of its own, hence the inline styles.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    # The sign-in URL carries the token: never let it travel in a Referer.
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
)


class SecurityHeaders:
    """Adds the headers above to every response, and no-store to all but /static/."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cacheable = str(scope.get("path", "")).startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.extend(SECURITY_HEADERS)
                if not cacheable:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


async def learner_call_failed(request: Request, error: Exception) -> Response:
    path = request.url.path
    log.warning("%s %s: a call as the learner failed: %s", request.method, path, error)
    text = f"The lab could not be reached: {error}"
    if "text/html" in request.headers.get("accept", ""):
        return message_page(502, "The lab could not be reached", f"{text}. Try again in a moment.")
    return JSONResponse({"error": text}, status_code=502)


def portal_routes() -> list[BaseRoute]:
    lab = "/labs/{lab}"
    return [
        Route("/healthz", routes.healthz),
        Route("/enter/{lab}", routes.enter),
        Route(lab, routes.lab_page_route),
        Route(f"{lab}/status", routes.status_route),
        Route(f"{lab}/events", routes.events_route),
        Route(f"{lab}/check", routes.check_route, methods=["POST"]),
        Route(f"{lab}/extend", routes.extend_route, methods=["POST"]),
        Route(lab + "/hint/{task}", routes.hint_route, methods=["POST"]),
        Route(f"{lab}/start", routes.start_route, methods=["POST"]),
        WebSocketRoute(f"{lab}/terminal", terminal),
        Mount("/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="static"),
    ]


def create_app(portal: Portal) -> Starlette:
    app = Starlette(
        routes=portal_routes(),
        exception_handlers={LearnerCallError: learner_call_failed},
    )
    app.state.portal = portal
    app.add_middleware(SecurityHeaders)
    return app
