"""The admins' JSON API, /api/v1: subscribers, newsletters, posts, digests and outgoing
webhooks, for scripts holding an API key (api_keys.py).

spectree checks every request body and query against the models of api_models.py (a
400 with the reason when they do not fit) and writes the OpenAPI document from them,
served at /api/v1/openapi.json without a key.

Each route names the scope it needs (``needs``); a key without it gets a 403 that names
it. Everything that changes something, or reads subscribers in bulk, is in the audit
log under the key's name."""

import json

from flask import Blueprint, abort, current_app, g, jsonify, request
from spectree import Response, SecurityScheme, SecuritySchemeData, SpecTree
from spectree.models import SecureType

from newsletter.admins import api_keys, audit
from newsletter.content import digests, newsletters, posts
from newsletter.content.models import Digest
from newsletter.core.addresses import InvalidSignup
from newsletter.core.row_ids import MAX_ROW_ID
from newsletter.engagement import figures
from newsletter.extensions import db
from newsletter.subscribers import admin_actions, privacy
from newsletter.subscribers.models import Subscriber
from newsletter.web.api import json_error
from newsletter.web.api_models import (
    DigestDetail,
    DigestOut,
    DigestPage,
    Engagement,
    Error,
    NewDigest,
    NewNewsletter,
    NewsletterChange,
    NewsletterList,
    NewsletterOut,
    NewSubscriber,
    NewWebhook,
    PageQuery,
    PostOut,
    PostPage,
    Schedule,
    SubscriberChange,
    SubscriberOut,
    SubscriberPage,
    SubscriberQuery,
    WebhookOut,
)
from newsletter.webhooks import outgoing

bp = Blueprint("admin_api", __name__, url_prefix="/api/v1")


def answer_validation_error_as_json(_request, response, error, _instance, _adapter):
    """spectree answers a request that does not fit with pydantic's list of errors;
    every error of this API is {"error": "…"} instead."""
    if error is not None:
        reasons = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or 'body'}: {problem['msg']}"
            for problem in error.errors(include_context=False)
        )
        response.set_data(json.dumps({"error": f"The request does not fit: {reasons}."}))


spec = SpecTree(
    "flask",
    mode="strict",
    title="Newsletter admin API",
    version="1",
    validation_error_status=400,
    validation_error_model=Error,
    before=answer_validation_error_as_json,
    security_schemes=[
        SecurityScheme(
            name="bearer",
            data=SecuritySchemeData(
                type=SecureType.HTTP,
                scheme="bearer",
                description="A key from `flask create-api-key`, sent as "
                "'Authorization: Bearer KEY' (an admin's session cookie is not accepted). "
                "Each operation lists the scope it needs; a key made with --scope has only "
                "those it names, one made without has all: "
                + "; ".join(f"`{scope}`: {what}" for scope, what in api_keys.SCOPES.items())
                + ".",
            ),
        )
    ],
    security={"bearer": []},
)

UNAUTHORIZED = {"HTTP_401": Error, "HTTP_403": Error}
NOT_FOUND = {**UNAUTHORIZED, "HTTP_404": Error}


def needs(scope, **validation):
    """spec.validate for a route that a key may call only with ``scope``: the scope is
    kept on the view for ``require_api_key`` and written into the OpenAPI document."""

    def decorate(view):
        validated = spec.validate(security={"bearer": [scope]}, **validation)(view)
        validated.api_scope = scope
        return validated

    return decorate


@bp.before_request
def require_api_key():
    """Who may call /api/v1: a script with an unrevoked, unexpired API key that has the
    route's scope. Never a session cookie: the blueprint is exempt from CSRF tokens, and
    a body-less POST (send, pause, resume) from another site's page would carry it.
    A route that names no scope is refused to every key."""
    if request.endpoint == "admin_api.openapi_document":
        return None
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return unauthorized("Send an API key as 'Authorization: Bearer KEY' to use this API.")
    api_key = api_keys.authenticate(key.strip())
    if api_key is None:
        return unauthorized("This API key is unknown, revoked or expired.")
    g.api_key = api_key
    scope = getattr(current_app.view_functions.get(request.endpoint), "api_scope", None)
    if scope is None or not api_keys.allows(api_key, scope):
        return json_error(f"This API key lacks the scope {scope or 'this route needs'}.", 403)
    return None


def unauthorized(message):
    response, status = json_error(message, 401)
    response.headers["WWW-Authenticate"] = "Bearer"
    return response, status


@bp.get("/openapi.json")
def openapi_document():
    """The OpenAPI document of this API, made by spectree from the routes below; public,
    like any API's documentation. (spectree's own route would leave out every route
    under its path, and it brings documentation pages that load scripts from a CDN.)"""
    return jsonify(spec.spec)


def page_fields(pagination):
    return {"page": pagination.page, "pages": pagination.pages, "total": pagination.total}


def subscriber_out(subscriber):
    return SubscriberOut.of(
        subscriber, newsletters.slugs_by_subscriber([subscriber.id])[subscriber.id]
    )


def newsletter_named(slug):
    """The newsletter of a slug in a query or body; NewsletterError when there is none."""
    return newsletters.by_slug(slug.strip().lower())


@bp.get("/subscribers")
@needs(
    "subscribers:read",
    query=SubscriberQuery,
    resp=Response(HTTP_200=SubscriberPage, HTTP_422=Error, **UNAUTHORIZED),
)
def list_subscribers():
    """Subscribers, newest first: by status, by a newsletter they have on, and matching
    part of an address or name."""
    asked = request.context.query
    newsletter_id = None
    if asked.newsletter is not None:
        try:
            newsletter_id = newsletter_named(asked.newsletter).id
        except newsletters.NewsletterError as error:
            return json_error(str(error), 422)
    found = admin_actions.search(
        asked.q, asked.status or "", asked.page, asked.per_page, newsletter_id=newsletter_id
    )
    chosen = newsletters.slugs_by_subscriber([subscriber.id for subscriber in found.items])
    items = [SubscriberOut.of(subscriber, chosen[subscriber.id]) for subscriber in found.items]
    # A page of addresses is an export: who took which, and how many, is kept.
    audit.record(
        "subscribers.read",
        detail=f"{len(items)} on page {asked.page}; {request.query_string.decode()[:200]}",
    )
    return SubscriberPage(items=items, **page_fields(found))


# Werkzeug's own int converter, not the app's <id:…>: spectree reads the parameter's schema
# from it.
@bp.get(f"/subscribers/<int(min=1, max={MAX_ROW_ID}):subscriber_id>")
@needs("subscribers:read", resp=Response(HTTP_200=SubscriberOut, **NOT_FOUND))
def get_subscriber(subscriber_id):
    return subscriber_out(db.get_or_404(Subscriber, subscriber_id))


@bp.post("/subscribers")
@needs(
    "subscribers:write",
    json=NewSubscriber,
    resp=Response(HTTP_201=SubscriberOut, HTTP_409=Error, HTTP_422=Error, **UNAUTHORIZED),
)
def add_subscriber():
    """Add a subscriber with the consent they gave elsewhere: pending and sent a confirmation
    email, or with "confirmed": true added confirmed, as a CSV import adds them; to the
    newsletters named, or to those on by default."""
    new = request.context.json
    try:
        subscriber = admin_actions.add_subscriber(
            new.email,
            new.name,
            new.consent.source,
            confirmed=new.confirmed,
            newsletters=new.newsletters,
        )
    except admin_actions.AlreadyKnown as error:
        return json_error(str(error), 409)
    except InvalidSignup as error:
        return json_error(str(error), 422)
    # Subscribers are named by id: an address in the audit log would outlive its erasure.
    audit.record("subscribers.add", subscriber_target(subscriber.id), subscriber.status)
    return subscriber_out(subscriber), 201


@bp.patch(f"/subscribers/<int(min=1, max={MAX_ROW_ID}):subscriber_id>")
@needs(
    "subscribers:write",
    json=SubscriberChange,
    resp=Response(HTTP_200=SubscriberOut, HTTP_422=Error, **NOT_FOUND),
)
def change_subscriber(subscriber_id):
    """Rename a subscriber, set the newsletters they get, or unsubscribe them
    ("status": "unsubscribed")."""
    subscriber = db.get_or_404(Subscriber, subscriber_id)
    change = request.context.json
    try:
        admin_actions.edit_subscriber(
            subscriber,
            change.name,
            unsubscribe=change.status is not None,
            newsletters=change.newsletters,
        )
    except InvalidSignup as error:
        return json_error(str(error), 422)
    audit.record("subscribers.change", subscriber_target(subscriber_id), changed_fields(change))
    return subscriber_out(subscriber)


@bp.delete(f"/subscribers/<int(min=1, max={MAX_ROW_ID}):subscriber_id>")
@needs("subscribers:write", resp=Response("HTTP_204", **NOT_FOUND))
def erase_subscriber(subscriber_id):
    """Erase a subscriber and all kept about them; the address is never added again."""
    privacy.erase(db.get_or_404(Subscriber, subscriber_id), by="api")
    audit.record("subscribers.erase", subscriber_target(subscriber_id))
    return "", 204


def subscriber_target(subscriber_id):
    return f"subscriber {subscriber_id}"


def changed_fields(change):
    """Which fields a PATCH set, for the audit log (not their values: names are
    personal data)."""
    return ", ".join(sorted(change.model_fields_set))


def newsletter_or_404(slug_or_id):
    newsletter = newsletters.by_slug_or_id(slug_or_id)
    if newsletter is None:
        abort(404, f"There is no newsletter {slug_or_id!r}.")
    return newsletter


def newsletter_out(newsletter):
    return NewsletterOut.of(newsletter, newsletters.subscriber_counts().get(newsletter.id, 0))


def set_schedule(newsletter, schedule):
    newsletters.set_schedule(
        newsletter, schedule.every, schedule.weekday, schedule.hour, schedule.category
    )


@bp.get("/newsletters")
@needs("newsletters:read", resp=Response(HTTP_200=NewsletterList, **UNAUTHORIZED))
def list_newsletters():
    """Every newsletter, oldest first, with its number of subscribers."""
    subscribers = newsletters.subscriber_counts()
    items = [
        NewsletterOut.of(newsletter, subscribers.get(newsletter.id, 0))
        for newsletter in newsletters.all_newsletters()
    ]
    return NewsletterList(items=items)


@bp.get("/newsletters/<slug_or_id>")
@needs("newsletters:read", resp=Response(HTTP_200=NewsletterOut, **NOT_FOUND))
def get_newsletter(slug_or_id):
    """One newsletter, by its slug or its id."""
    return newsletter_out(newsletter_or_404(slug_or_id))


@bp.post("/newsletters")
@needs(
    "newsletters:write",
    json=NewNewsletter,
    resp=Response(HTTP_201=NewsletterOut, HTTP_409=Error, HTTP_422=Error, **UNAUTHORIZED),
)
def add_newsletter():
    """A newsletter subscribers may choose; its slug is never changed."""
    new = request.context.json
    try:
        newsletter = newsletters.create(
            new.slug, new.name, new.description, default_on=new.default_on, public=new.public
        )
        if new.schedule:
            set_schedule(newsletter, new.schedule)
        if new.tracking != newsletter.tracking:
            newsletters.update_newsletter(newsletter, tracking=new.tracking)
    except newsletters.SlugTaken as error:
        return json_error(str(error), 409)
    except newsletters.NewsletterError as error:
        return json_error(str(error), 422)
    audit.record("newsletters.create", newsletter.slug)
    return newsletter_out(newsletter), 201


@bp.patch("/newsletters/<slug_or_id>")
@needs(
    "newsletters:write",
    json=NewsletterChange,
    resp=Response(HTTP_200=NewsletterOut, HTTP_422=Error, **NOT_FOUND),
)
def change_newsletter(slug_or_id):
    """Change a newsletter's name, description, default, place in the archive, digest
    schedule or tracking."""
    newsletter = newsletter_or_404(slug_or_id)
    change = request.context.json
    try:
        newsletters.update_newsletter(
            newsletter,
            name=change.name,
            description=change.description,
            default_on=change.default_on,
            public=change.public,
            tracking=change.tracking,
        )
        if change.schedule:
            set_schedule(newsletter, change.schedule)
    except newsletters.NewsletterError as error:
        return json_error(str(error), 422)
    audit.record("newsletters.update", newsletter.slug, changed_fields(change))
    return newsletter_out(newsletter)


@bp.get("/posts")
@needs("digests:read", query=PageQuery, resp=Response(HTTP_200=PostPage, **UNAUTHORIZED))
def list_posts():
    asked = request.context.query
    found = posts.newest_page(asked.page, asked.per_page)
    return PostPage(items=[PostOut.of(post) for post in found.items], **page_fields(found))


@bp.get("/digests")
@needs("digests:read", query=PageQuery, resp=Response(HTTP_200=DigestPage, **UNAUTHORIZED))
def list_digests():
    asked = request.context.query
    found = digests.newest_page(asked.page, asked.per_page)
    items = [DigestOut.of(digest) for digest in found.items]
    return DigestPage(items=items, **page_fields(found))


@bp.get(f"/digests/<int(min=1, max={MAX_ROW_ID}):digest_id>")
@needs("digests:read", resp=Response(HTTP_200=DigestDetail, **NOT_FOUND))
def get_digest(digest_id):
    """A digest with its copies per status (pending, sent, failed, skipped) and, when
    its newsletter is tracked, its opens and clicks, people's and machines' apart."""
    return digest_detail(db.get_or_404(Digest, digest_id))


def digest_detail(digest):
    return DigestDetail(
        **DigestOut.of(digest).model_dump(),
        progress=digests.progress(digest.id),
        engagement=Engagement.of(figures.figures(digest.id)),
    )


@bp.post("/digests")
@needs(
    "digests:write",
    json=NewDigest,
    resp=Response(HTTP_201=DigestDetail, HTTP_422=Error, **UNAUTHORIZED),
)
def create_digest():
    """A draft digest of the given posts (default: every post not yet sent) for a
    newsletter's subscribers (default: the first newsletter's)."""
    new = request.context.json
    try:
        newsletter_id = None if new.newsletter is None else newsletter_named(new.newsletter).id
        digest = digests.create_digest(new.subject, new.intro, new.post_ids, newsletter_id)
    except (digests.DigestError, newsletters.NewsletterError) as error:
        return json_error(str(error), 422)
    audit.record("digests.create", digest_target(digest.id), digest.subject)
    return digest_detail(digest), 201


def digest_target(digest_id):
    return f"digest {digest_id}"


@bp.post(f"/digests/<int(min=1, max={MAX_ROW_ID}):digest_id>/send")
@needs("digests:write", resp=Response(HTTP_202=DigestDetail, HTTP_409=Error, **NOT_FOUND))
def send_digest(digest_id):
    """Start sending a draft (or scheduled) digest now."""
    digest = db.get_or_404(Digest, digest_id)
    try:
        digests.send_now(digest_id)
    except digests.DigestError as error:
        return json_error(str(error), 409)
    audit.record("digests.send", digest_target(digest_id))
    return digest_detail(digest), 202


@bp.post(f"/digests/<int(min=1, max={MAX_ROW_ID}):digest_id>/schedule")
@needs(
    "digests:write",
    json=Schedule,
    resp=Response(HTTP_200=DigestDetail, HTTP_409=Error, **NOT_FOUND),
)
def schedule_digest(digest_id):
    """Send a draft digest at a set time (a time past sends it at once)."""
    digest = db.get_or_404(Digest, digest_id)
    try:
        digests.schedule(digest_id, request.context.json.at)
    except digests.DigestError as error:
        return json_error(str(error), 409)
    audit.record("digests.schedule", digest_target(digest_id), f"at {digest.scheduled_at} UTC")
    return digest_detail(digest)


@bp.post(f"/digests/<int(min=1, max={MAX_ROW_ID}):digest_id>/<any(pause, resume):action>")
@needs("digests:write", resp=Response(HTTP_200=DigestDetail, HTTP_409=Error, **NOT_FOUND))
def pause_or_resume_digest(digest_id, action):
    """Pause a digest that is sending, or resume a paused one."""
    digest = db.get_or_404(Digest, digest_id)
    try:
        (digests.pause if action == "pause" else digests.resume)(digest_id)
    except digests.DigestError as error:
        return json_error(str(error), 409)
    audit.record(f"digests.{action}", digest_target(digest_id))
    return digest_detail(digest)


@bp.post("/webhooks")
@needs(
    "webhooks:write",
    json=NewWebhook,
    resp=Response(HTTP_201=WebhookOut, HTTP_422=Error, **UNAUTHORIZED),
)
def add_webhook():
    """Add an endpoint; the answer carries its secret, which is never shown again."""
    new = request.context.json
    try:
        endpoint = outgoing.add_endpoint(new.url, new.events)
    except outgoing.InvalidEndpoint as error:
        return json_error(str(error), 422)
    audit.record("webhooks.create", endpoint.url, " ".join(endpoint.event_list))
    answer = WebhookOut(
        id=endpoint.id, url=endpoint.url, events=endpoint.event_list, secret=endpoint.secret
    )
    return answer, 201, {"Cache-Control": "no-store"}
