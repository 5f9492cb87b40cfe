"""The desk's web app: Starlette routes over a Desk, one HTML page, its script and style, JSON.

Security, because the dataset's text is hostile and the desk writes to the dataset:
- every response carries a Content-Security-Policy without inline scripts or outside origins
  (script, style, image and fetch sources are the desk itself), and the page's template is
  autoescaped; the script writes dataset text with ``textContent`` only;
- a session is a random cookie (HttpOnly, SameSite=Strict); every write needs the session's CSRF
  token (an HMAC of the session id) in the ``X-CSRF-Token`` header, which another site's page can
  neither read nor send;
- only the dataset's images are served, by key and position; anything else is a 404;
- the Host header must name the desk (a DNS-rebinding page cannot read the API).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import pathlib
import re
import secrets

import jinja2
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from vlcurate.taxonomy.desk.desk import Desk, DeskError, check_editor
from vlcurate.taxonomy.desk.queue import Conflict, Filter
from vlcurate.transforms.data.sample import IMAGE_EXTENSIONS
from vlcurate.transforms.io.shard_reader import ShardError

HERE = pathlib.Path(__file__).parent
SESSION = "vlcurate_desk"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "X-Frame-Options": "DENY", "Cache-Control": "no-store"}
KEY = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")
MAX_BODY = 64 * 1024
_TYPES = {"png": "image/png", "jpeg": "image/jpeg"}
assert set(_TYPES) == set(IMAGE_EXTENSIONS)


class _Secured:
    """ASGI middleware: the security headers on every response, the ones above included."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                names = {name for name, _ in message.get("headers", [])}
                extra = [(k.lower().encode(), v.encode()) for k, v in HEADERS.items() if k.lower().encode() not in names]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)


def build_app(desk: Desk, editor: str = "", hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> Starlette:
    secret = secrets.token_bytes(32)
    pages = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True)

    def token_of(session: str) -> str:
        return hmac.new(secret, session.encode(), hashlib.sha256).hexdigest()

    def session_of(request: Request) -> str:
        session = request.cookies.get(SESSION, "")
        if not re.fullmatch(r"[A-Za-z0-9_-]{20,64}", session):
            raise PermissionError("no desk session: load the desk's page first")
        return session

    async def page(request: Request) -> Response:
        session = request.cookies.get(SESSION, "")
        if not re.fullmatch(r"[A-Za-z0-9_-]{20,64}", session):
            session = secrets.token_urlsafe(24)
        html = pages.get_template("desk.html").render(
            csrf=token_of(session), editor=editor, dataset=desk.dataset, version=desk.taxonomy.version)
        response = HTMLResponse(html)
        response.set_cookie(SESSION, session, httponly=True, samesite="strict", path="/")
        return response

    def json_error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    async def read_json(request: Request) -> tuple[str, dict]:
        """The session and JSON body of a write, after its CSRF token is checked."""
        session = session_of(request)
        if not hmac.compare_digest(request.headers.get("x-csrf-token", ""), token_of(session)):
            raise PermissionError("a write needs this session's CSRF token: reload the page (the desk restarted?)")
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            raise ValueError("a write is JSON")
        body = await request.body()
        if len(body) > MAX_BODY:
            raise ValueError("request too large")
        doc = json.loads(body or b"{}")
        if not isinstance(doc, dict):
            raise ValueError("a write is a JSON object")
        return session, doc

    def guarded(handler):
        """Errors as JSON with a status: a user's mistake 400, a refusal 403/409, unknown 404."""

        async def call(request: Request) -> Response:
            try:
                return await handler(request)
            except Conflict as error:
                return json_error(409, str(error))
            except PermissionError as error:
                return json_error(403, str(error))
            except LookupError as error:
                return json_error(404, str(error).strip("'\""))
            except (DeskError, ValueError) as error:
                return json_error(400, str(error))

        return call

    async def next_item(request: Request) -> Response:
        wanted = Filter.of(request.query_params)
        item = desk.next_item(session_of(request), wanted)
        return JSONResponse({"item": item, "decided": len(desk.log)})

    async def counts(request: Request) -> Response:
        return JSONResponse(desk.queue.counts(Filter.of(request.query_params)))

    async def taxonomy(request: Request) -> Response:
        return JSONResponse(desk.taxonomy_view())

    async def mix(request: Request) -> Response:
        return JSONResponse(desk.mix())

    async def decide(request: Request) -> Response:
        session, doc = await read_json(request)
        decision = desk.decide(session, check_editor(doc.get("editor")), str(doc.get("key", "")), doc.get("label"))
        return JSONResponse({"decision": {k: decision[k] for k in ("key", "label", "previous", "editor", "time")}})

    async def skip(request: Request) -> Response:
        session, doc = await read_json(request)
        desk.skip(session, str(doc.get("key", "")))
        return JSONResponse({"skipped": doc.get("key")})

    async def undo(request: Request) -> Response:
        session, doc = await read_json(request)
        undone = desk.undo(session, check_editor(doc.get("editor")))
        return JSONResponse({"undone": undone and {k: undone[k] for k in ("key", "label", "undoes")}})

    async def image(request: Request) -> Response:
        key, position = request.path_params["key"], request.path_params["position"]
        item = desk.queue.by_key.get(key) if KEY.match(key) else None
        if item is None or not position.isdigit():
            return Response("not found", status_code=404, media_type="text/plain")
        try:
            sample = desk.samples.sample(item.key, item.shard, item.number)
        except ShardError:
            return Response("damaged shard", status_code=500, media_type="text/plain")
        if int(position) >= len(sample.images):
            return Response("not found", status_code=404, media_type="text/plain")
        picture = sample.images[int(position)]
        return Response(picture.data, media_type=_TYPES[picture.format],
                        headers={"Cache-Control": "private, max-age=3600"})

    routes = [
        Route("/", page),
        Route("/api/next", guarded(next_item)),
        Route("/api/counts", guarded(counts)),
        Route("/api/taxonomy", guarded(taxonomy)),
        Route("/api/mix", guarded(mix)),
        Route("/api/decide", guarded(decide), methods=["POST"]),
        Route("/api/skip", guarded(skip), methods=["POST"]),
        Route("/api/undo", guarded(undo), methods=["POST"]),
        Route("/image/{key}/{position}", image),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    return Starlette(routes=routes, middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=list(hosts)),
                                                Middleware(_Secured)])
