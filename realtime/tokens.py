"""Connection tokens: short-lived HS256 JWTs that open a price stream.

The model is Centrifugo's connection token. Whoever holds
``REALTIME_CONNECTION_TOKEN_SECRET`` (this site, or a frontend's own backend)
signs ``{"sub": <who>, "exp": <unix seconds>}``; the browser appends the token to
the WebSocket URL as ``?token=``, which works from any origin because browsers send
no cookies cross-site and cannot set headers on a WebSocket. Nothing is stored on
the server: the signature is the whole check, and a short ``exp`` stands in for
revocation.

- ``sub`` is who the connection belongs to. Limits count per ``sub``, so every
  visitor of a frontend gets their own connection cap instead of sharing one
  baked-in DRF token.
- Tokens this site mints for a logged-in user carry ``sub=str(user.pk)`` and
  ``iss=SITE_ISSUER``; the handshake resolves those to the Django user (and refuses
  a deactivated one) and they count as ``"user:<pk>"``, like the user's session
  and DRF token. Any other ``sub`` becomes a ``ConnectionTokenUser`` in its own
  namespace, ``"ext:<iss or kid>:<sub>"`` (``"ext:-:<sub>"`` with neither): a
  frontend's ``sub="2"`` is not this site's user 2 and cannot use up that user's
  connections.
- ``exp`` is required and must be a NumericDate (a JSON number; RFC 7519 section
  2) at most ``REALTIME_CONNECTION_TOKEN_MAX_TTL`` seconds ahead, so a leaked
  token is worthless after a bounded time without rotating the secret; ``nbf``
  and ``iat``, when present, must be NumericDates too and not in the future
  (``CLOCK_SKEW`` seconds of leeway for the minter's clock; none for ``exp``).
- A token is checked at the handshake, and its ``exp`` bounds the connection: the
  client is warned (``token_expiring``), may send a fresh token of the same
  ``sub`` (``verify_refresh``) and is closed 4001 at ``exp`` otherwise
  (realtime/fanout/tokenlife.py, docs/frontends.md).

A DRF token (40 hex digits) never contains a dot and a JWT always has two, so the
two kinds share ``?token=`` without ambiguity (``is_connection_token``).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from dataclasses import dataclass

import jwt
from django.conf import settings

logger = logging.getLogger(__name__)

ALGORITHM = "HS256"
# Marks tokens minted by this site for one of its own users (``sub`` = user pk).
SITE_ISSUER = "fmpsite"
# ``sub`` ends up in log lines and limit keys: keep it a sane length.
MAX_SUBJECT_LENGTH = 200
MIN_SECRET_BYTES = 32
# Leeway for the clocks of the site and of a frontend's token minter.
CLOCK_SKEW = 30


class ConnectionTokenError(Exception):
    """A connection token that must not open a connection.

    ``reason`` is the stable word logged at the refused handshake:
    ``token_expired``, ``token_bad_signature``, ``token_malformed``,
    ``token_bad_algorithm``, ``token_missing_claim``, ``token_not_yet_valid``,
    ``token_invalid_claims``, ``token_lifetime_too_long``, ``token_user_inactive``
    or ``connection_tokens_disabled``; ``detail`` says what exactly (logged too).
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class ConnectionClaims:
    """The verified claims the gateway uses."""

    sub: str
    exp: int
    issued_by_site: bool
    issuer: str | None = None
    key_id: str | None = None

    @property
    def principal(self) -> str:
        """The key limits count per (docs/protocol.md: "limits count per sub").

        ``user:<pk>`` only for this site's own tokens; an external subject is
        namespaced by who issued it, so it never collides with a site user.
        """
        if self.issued_by_site:
            return f"user:{self.sub}"
        return f"ext:{self.issuer or self.key_id or '-'}:{self.sub}"


class ConnectionTokenUser:
    """The connection's user when ``sub`` names someone outside this site.

    Quacks like enough of a Django user for the consumer (``is_authenticated``,
    ``pk``) and for any permission check, which it fails: it is never staff.
    """

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, sub: str) -> None:
        self.sub = sub

    @property
    def pk(self) -> str:
        return self.sub

    id = pk

    @property
    def username(self) -> str:
        return self.sub

    def get_username(self) -> str:
        return self.sub

    def has_perm(self, perm: str, obj: object = None) -> bool:
        return False

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ConnectionTokenUser) and other.sub == self.sub

    def __hash__(self) -> int:
        return hash(("ConnectionTokenUser", self.sub))

    def __repr__(self) -> str:
        return f"ConnectionTokenUser(sub={self.sub!r})"

    __str__ = get_username


def connection_tokens_enabled() -> bool:
    """True when ``REALTIME_CONNECTION_TOKEN_SECRET`` is set (the feature's switch)."""
    return bool(settings.REALTIME_CONNECTION_TOKEN_SECRET)


def is_connection_token(token: str) -> bool:
    """A JWT (header.payload.signature) rather than a DRF token key."""
    return token.count(".") == 2


def mint_connection_token(
    *, sub: str, ttl: float | None = None, site_user: bool = False
) -> tuple[str, dt.datetime]:
    """Sign a token for ``sub``, valid ``ttl`` seconds (default the setting).

    Returns the token and its expiry as an aware UTC datetime (whole seconds,
    since ``exp`` is). ``site_user`` marks ``sub`` as this site's user pk.
    """
    secret = settings.REALTIME_CONNECTION_TOKEN_SECRET
    if not secret:
        raise ConnectionTokenError(
            "connection_tokens_disabled", "REALTIME_CONNECTION_TOKEN_SECRET is not set"
        )
    _check_subject(sub)
    lifetime = settings.REALTIME_CONNECTION_TOKEN_TTL if ttl is None else ttl
    now = int(time.time())
    exp = now + int(lifetime)
    claims: dict[str, object] = {"sub": sub, "iat": now, "exp": exp}
    if site_user:
        claims["iss"] = SITE_ISSUER
    token = jwt.encode(claims, secret, algorithm=ALGORITHM)
    return token, dt.datetime.fromtimestamp(exp, tz=dt.UTC)


def verify_connection_token(token: str) -> ConnectionClaims:
    """Check signature, algorithm and time claims; raise ``ConnectionTokenError``.

    Only HS256 is accepted (never ``none`` nor an algorithm the token names for
    itself), ``sub`` and ``exp`` are required, and ``exp``/``nbf``/``iat`` are
    checked as the module docstring says.
    """
    secret = settings.REALTIME_CONNECTION_TOKEN_SECRET
    if not secret:
        raise ConnectionTokenError(
            "connection_tokens_disabled", "REALTIME_CONNECTION_TOKEN_SECRET is not set"
        )
    try:
        header = jwt.get_unverified_header(token)
        # The time claims are checked below, strictly: PyJWT accepts an ``exp``
        # given as a numeric string and knows no maximum lifetime.
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={
                "require": ["sub", "exp"],
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
    except jwt.InvalidSignatureError as exc:
        raise ConnectionTokenError("token_bad_signature") from exc
    except jwt.InvalidAlgorithmError as exc:
        raise ConnectionTokenError("token_bad_algorithm", str(exc)) from exc
    except jwt.DecodeError as exc:
        raise ConnectionTokenError("token_malformed", str(exc)) from exc
    except jwt.MissingRequiredClaimError as exc:
        raise ConnectionTokenError("token_missing_claim", exc.claim) from exc
    except jwt.InvalidTokenError as exc:
        raise ConnectionTokenError("token_invalid_claims", str(exc)) from exc
    exp = _check_times(claims, time.time())
    sub = claims["sub"]
    _check_subject(sub)
    issuer = claims.get("iss")
    key_id = header.get("kid")
    return ConnectionClaims(
        sub=sub,
        exp=exp,
        issued_by_site=issuer == SITE_ISSUER,
        issuer=_namespace_part(issuer, "iss"),
        key_id=_namespace_part(key_id, "kid"),
    )


def _numeric_date(claims: dict[str, object], name: str) -> float | None:
    """``claims[name]`` as a NumericDate (RFC 7519: a JSON number), if present."""
    if name not in claims:
        return None
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConnectionTokenError(
            "token_invalid_claims",
            f"{name} must be a NumericDate (seconds as a JSON number), "
            f"got {type(value).__name__}",
        )
    if not math.isfinite(value):
        raise ConnectionTokenError(
            "token_invalid_claims", f"{name} must be a finite NumericDate"
        )
    return float(value)


def _check_times(claims: dict[str, object], now: float) -> int:
    """Check ``exp``, ``nbf`` and ``iat``; return ``exp`` in whole seconds."""
    exp = _numeric_date(claims, "exp")
    nbf = _numeric_date(claims, "nbf")
    iat = _numeric_date(claims, "iat")
    assert exp is not None  # required by the decode
    max_ttl = settings.REALTIME_CONNECTION_TOKEN_MAX_TTL
    if exp > now + max_ttl + CLOCK_SKEW:
        raise ConnectionTokenError(
            "token_lifetime_too_long",
            f"exp is {exp - now:.0f} s ahead; at most {max_ttl} s "
            "(REALTIME_CONNECTION_TOKEN_MAX_TTL)",
        )
    if exp <= now:  # no leeway: a frontend chose this expiry and may rely on it
        raise ConnectionTokenError("token_expired", f"exp was {now - exp:.0f} s ago")
    if nbf is not None and nbf > now + CLOCK_SKEW:
        raise ConnectionTokenError(
            "token_not_yet_valid", f"nbf is {nbf - now:.0f} s ahead"
        )
    if iat is not None and iat > now + CLOCK_SKEW:
        raise ConnectionTokenError(
            "token_invalid_claims", f"iat is {iat - now:.0f} s in the future"
        )
    return int(exp)


def _namespace_part(value: object, name: str) -> str | None:
    """``iss``/``kid`` as part of a principal: a short printable string or None."""
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or not value
        or len(value) > MAX_SUBJECT_LENGTH
        or not value.isprintable()
        or any(ch.isspace() or ch == ":" for ch in value)
    ):
        raise ConnectionTokenError(
            "token_invalid_claims",
            f"{name} must be a short string without spaces, colons or control "
            "characters",
        )
    return value


def _check_subject(sub: object) -> None:
    if not isinstance(sub, str) or not sub or len(sub) > MAX_SUBJECT_LENGTH:
        raise ConnectionTokenError(
            "token_invalid_claims",
            f"sub must be a non-empty string of at most {MAX_SUBJECT_LENGTH} chars",
        )
    if not sub.isprintable() or any(ch.isspace() for ch in sub):
        raise ConnectionTokenError(
            "token_invalid_claims", "sub must not contain spaces or control characters"
        )


def verify_refresh(current: ConnectionClaims, token: str) -> ConnectionClaims:
    """The claims of ``token`` if it may replace ``current`` on an open connection.

    A refresh extends a connection, never moves it: the new token must be valid
    (``verify_connection_token``), name the same ``sub`` and issuer kind, and
    expire later than the one it replaces. ``ConnectionTokenError`` otherwise.
    """
    claims = verify_connection_token(token)
    if claims.sub != current.sub or claims.issued_by_site != current.issued_by_site:
        raise ConnectionTokenError(
            "token_other_subject", "the new token must name the connection's sub"
        )
    if claims.exp <= current.exp:
        raise ConnectionTokenError(
            "token_not_later", "the new token must expire after the current one"
        )
    return claims
