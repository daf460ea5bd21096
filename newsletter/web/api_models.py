"""What /api/v1 takes and answers, as pydantic models: spectree checks each request
against them and writes the OpenAPI document (GET /api/v1/openapi.json) from them."""

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, Field, StrictBool, StrictStr

from newsletter.directory import LAST_PAGE, SEARCH_MAX_LENGTH
from newsletter.models import Digest, Post, Subscriber, SubscriberStatus


def _no_nul(text: str) -> str:
    # PostgreSQL cannot store a NUL in text: refuse it here rather than fail there.
    if "\x00" in text:
        raise ValueError("must not contain a NUL character")
    return text


Text = Annotated[StrictStr, AfterValidator(_no_nul)]


def _as_utc(moment: datetime | None) -> datetime | None:
    """The database keeps naive UTC; the API says so."""
    return moment.replace(tzinfo=UTC) if moment else None


def _to_naive_utc(moment: datetime) -> datetime:
    try:
        return moment.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:
        raise ValueError("is out of range in UTC") from None


class Error(BaseModel):
    error: str = Field(description="What went wrong, for a person to read.")


class PageQuery(BaseModel):
    page: int = Field(1, ge=1, le=LAST_PAGE)
    per_page: int = Field(50, ge=1, le=200)


class SubscriberQuery(PageQuery):
    status: SubscriberStatus | None = None
    q: str = Field("", max_length=SEARCH_MAX_LENGTH, description="Part of an address or name.")


class Page(BaseModel):
    page: int
    pages: int
    total: int


class SubscriberOut(BaseModel):
    id: int
    email: str
    name: str
    status: SubscriberStatus
    signup_at: datetime
    signup_source: str
    confirmed_at: datetime | None
    unsubscribed_at: datetime | None

    @classmethod
    def of(cls, subscriber: Subscriber) -> "SubscriberOut":
        return cls(
            id=subscriber.id,
            email=subscriber.email,
            name=subscriber.name,
            status=subscriber.status,
            signup_at=_as_utc(subscriber.signup_at),
            signup_source=subscriber.signup_source,
            confirmed_at=_as_utc(subscriber.confirmed_at),
            unsubscribed_at=_as_utc(subscriber.unsubscribed_at),
        )


class SubscriberPage(Page):
    items: list[SubscriberOut]


class Consent(BaseModel):
    source: Text = Field(
        min_length=1,
        max_length=32,
        description="Where the reader gave their consent (e.g. 'crm', 'event-2026'); logged.",
    )


class NewSubscriber(BaseModel):
    email: Text
    name: Text = ""
    consent: Consent
    confirmed: StrictBool = Field(
        False,
        description="True: the reader confirmed elsewhere, added confirmed like a CSV import. "
        "False: pending, and sent a confirmation email.",
    )


class SubscriberChange(BaseModel):
    name: Text | None = None
    status: Literal["unsubscribed"] | None = Field(None, description="Only unsubscribing.")


class PostOut(BaseModel):
    id: int
    title: str
    link: str
    published_at: datetime

    @classmethod
    def of(cls, post: Post) -> "PostOut":
        return cls(
            id=post.id, title=post.title, link=post.link, published_at=_as_utc(post.published_at)
        )


class PostPage(Page):
    items: list[PostOut]


class DigestOut(BaseModel):
    id: int
    subject: str
    intro: str
    status: str
    created_at: datetime
    scheduled_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    paused_reason: str | None
    post_ids: list[int]

    @classmethod
    def of(cls, digest: Digest) -> "DigestOut":
        return cls(
            id=digest.id,
            subject=digest.subject,
            intro=digest.intro,
            status=digest.status,
            created_at=_as_utc(digest.created_at),
            scheduled_at=_as_utc(digest.scheduled_at),
            started_at=_as_utc(digest.started_at),
            finished_at=_as_utc(digest.finished_at),
            paused_reason=digest.paused_reason,
            post_ids=[post.id for post in digest.posts],
        )


class Progress(BaseModel):
    pending: int
    sent: int
    failed: int
    skipped: int


class DigestDetail(DigestOut):
    progress: Progress


class DigestPage(Page):
    items: list[DigestOut]


class NewDigest(BaseModel):
    subject: Text = Field(min_length=1, max_length=200)
    intro: Text = ""
    post_ids: list[Annotated[int, Field(ge=1)]] | None = Field(
        None, description="The posts to carry (default: every post not yet sent)."
    )


class Schedule(BaseModel):
    at: Annotated[AwareDatetime, AfterValidator(_to_naive_utc)] = Field(
        description="When to send, ISO 8601 with its offset (e.g. 2026-12-24T08:00:00Z)."
    )


class NewWebhook(BaseModel):
    url: Text
    events: list[Text]


class WebhookOut(BaseModel):
    id: int
    url: str
    events: list[str]
    secret: str = Field(description="The signing secret, shown only in this answer.")
