"""What every response carries to keep pages safe in a browser, how large a request may
be, and where the client's address comes from behind a proxy."""

import re
import secrets

from flask import Flask, current_app, g, request
from werkzeug.middleware.proxy_fix import ProxyFix

from newsletter.extensions import cors
from newsletter.subscribers import captcha

# Where an admin uploads a CSV file: larger than any other request.
UPLOAD_ENDPOINTS = {"admin.import_subscribers"}
HSTS_SECONDS = 365 * 24 * 3600
# A web origin as CSP's frame-ancestors takes it: scheme and host (a leading "*." for
# every subdomain), and a port; no path.
ORIGIN = re.compile(r"https?://(\*\.)?[A-Za-z0-9.-]+(:[0-9]{1,5})?")


def embeddable(view):
    """Mark a view whose page the sites of EMBED_ORIGINS may show in a frame."""
    view.embeddable = True
    return view


def embed_origins(value: str) -> list[str]:
    """The origins of EMBED_ORIGINS (space-separated); refuses to start on anything else,
    rather than let a typo open the frame to the wrong site or to none."""
    origins = value.split()
    wrong = [origin for origin in origins if not ORIGIN.fullmatch(origin)]
    if wrong:
        raise ValueError(
            f"EMBED_ORIGINS: {', '.join(wrong)} is not an origin such as https://news.example"
        )
    return origins


def origin_pattern(origin: str) -> str | re.Pattern:
    """An EMBED_ORIGINS entry as Flask-Cors matches it: as it is, or, with a leading
    ``*.``, as a pattern for every subdomain (CSP's meaning)."""
    scheme, _, host = origin.partition("://")
    if not host.startswith("*."):
        return origin
    return re.compile(rf"{re.escape(scheme)}://([a-z0-9-]+\.)+{re.escape(host[2:])}", re.IGNORECASE)


def init_app(app: Flask) -> None:
    """Before CSRFProtect, whose check reads the form: an upload's larger limit must
    be set before anything reads the body."""
    app.config["EMBED_ORIGINS"] = embed_origins(app.config["EMBED_ORIGINS"])
    cors.init_app(
        app,
        resources={
            "/api/subscribe": {"origins": [origin_pattern(o) for o in app.config["EMBED_ORIGINS"]]}
        },
        methods=["POST"],
        allow_headers=["Content-Type"],
        max_age=600,
    )
    proxies = app.config["TRUSTED_PROXIES"]
    if proxies:
        # Flask's documented way to wrap the app in WSGI middleware.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies
        )
    https = app.config["BASE_URL"].startswith("https://")
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=https,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=https,
    )
    app.before_request(allow_uploads)
    app.after_request(add_security_headers)
    app.jinja_env.globals["csp_nonce"] = csp_nonce


def allow_uploads() -> None:
    if request.endpoint in UPLOAD_ENDPOINTS:
        request.max_content_length = current_app.config["UPLOAD_MAX_CONTENT_LENGTH"]


def csp_nonce() -> str:
    """This response's nonce: the only scripts a page may run carry it."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def content_security_policy(framed_by: tuple[str, ...]) -> str:
    directives = {
        "default-src": ("'self'",),
        "script-src": (f"'nonce-{csp_nonce()}'",),
        # Emails and their previews carry inline styles, as every email does.
        "style-src": ("'self'", "'unsafe-inline'"),
        "img-src": ("'self'", "https:", "data:"),
        "object-src": ("'none'",),
        "base-uri": ("'none'",),
        "form-action": ("'self'",),
        "frame-ancestors": framed_by,
    }
    chosen = captcha.provider()
    for directive, sources in (chosen.csp if chosen else {}).items():
        # A directive not set above starts from default-src: this site's own stays allowed.
        ours = directives.get(directive, directives["default-src"])
        directives[directive] = tuple(dict.fromkeys(ours + sources))
    return "; ".join(" ".join((name, *sources)) for name, sources in directives.items())


def add_security_headers(response):
    headers = response.headers
    view = current_app.view_functions.get(request.endpoint)
    if getattr(view, "embeddable", False):
        # X-Frame-Options cannot name several sites; frame-ancestors can.
        framed_by = ("'self'", *current_app.config["EMBED_ORIGINS"])
    else:
        framed_by = ("'none'",)
        headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Content-Security-Policy", content_security_policy(framed_by))
    headers.setdefault("X-Content-Type-Options", "nosniff")
    # A page whose URL holds a subscriber's token: no Referer may carry it elsewhere.
    holds_token = "token" in (request.view_args or {})
    referrer = "no-referrer" if holds_token else "same-origin"
    headers.setdefault("Referrer-Policy", referrer)
    if current_app.config["BASE_URL"].startswith("https://"):
        headers.setdefault("Strict-Transport-Security", f"max-age={HSTS_SECONDS}")
    return response
