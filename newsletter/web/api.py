"""The JSON API, for sites that sign subscribers up from their own scripts."""

from flask import Blueprint, g, jsonify, request
from flask.json.provider import DefaultJSONProvider

from newsletter.core import i18n
from newsletter.core.addresses import InvalidSignup
from newsletter.extensions import limiter
from newsletter.subscribers import captcha, lifecycle
from newsletter.web.languages import browser_locale
from newsletter.web.public import HONEYPOT, limit_per_address, signup_rate_limit, signup_source

bp = Blueprint("api", __name__, url_prefix="/api")


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, except that a body nested too deeply for the decoder ("[[[[…",
    a RecursionError) is malformed JSON like any other: a 400, not a 500."""

    def loads(self, s, **kwargs):
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None


def json_error(message, status):
    return jsonify(error=message), status


@bp.post("/subscribe")
@limiter.shared_limit(signup_rate_limit, scope="signup")
@limit_per_address
def subscribe():
    data = request.get_json(silent=True)
    problem = malformed(data)
    if problem:
        return json_error(problem, 400)
    email, name = data["email"], data.get("name", "")
    language = i18n.supported(data["language"]) if "language" in data else browser_locale()
    if "language" in data and language is None:
        return json_error(f'"language" must be one of: {", ".join(i18n.LANGUAGES)}.', 422)
    # The subscriber's messages below, like their emails, speak the language they asked for.
    g.subscriber_locale = language
    if data.get(HONEYPOT):
        return jsonify(status="pending"), 202
    try:
        captcha.check(data.get(captcha.API_FIELD), request.remote_addr)
        lifecycle.subscribe(
            email,
            name,
            source=signup_source("api", data),
            ip=request.remote_addr,
            newsletters=data.get("newsletters"),
            locale=language,
        )
    except captcha.CaptchaFailed as error:
        return json_error(str(error), error.status)
    except InvalidSignup as error:
        return json_error(str(error), 422)
    return jsonify(status="pending"), 202


def malformed(data: object) -> str | None:
    """What is wrong with the shape of a sign-up's JSON, if anything."""
    if not isinstance(data, dict):
        return 'Send a JSON object, e.g. {"email": "reader@example.com"}.'
    if not isinstance(data.get("email"), str):
        return '"email" is required and must be a string.'
    if not isinstance(data.get("name", ""), str):
        return '"name" must be a string.'
    chosen = data.get("newsletters")
    if chosen is not None and not (
        isinstance(chosen, list) and all(isinstance(slug, str) for slug in chosen)
    ):
        return '"newsletters" must be a list of newsletter slugs, e.g. ["weekly"].'
    if not isinstance(data.get("language", ""), str):
        return '"language" must be a language tag, e.g. "de".'
    return None
