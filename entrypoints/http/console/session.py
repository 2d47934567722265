"""The console's sign-in: a key asked for once, then a signed session cookie.

With CHUTE_API_KEYS set, `/ui` asks for one of the keys on its sign-in page and answers
with a cookie that says which key (the first 8 bytes of its digest, never the key) and
when, signed with HMAC-SHA256. The cookie is `HttpOnly` (no script reads it),
`SameSite=Strict` (no other site's page sends it) and `Secure` on HTTPS; it is valid
for `MAX_AGE` and only while its key is still configured, so that taking a key out of
CHUTE_API_KEYS signs out its sessions.

The signing secret is CHUTE_SESSION_SECRET when set, else derived from the configured
keys, so that every process of a deployment (which share the keys) accepts the same
cookies and a new set of keys ends every session. Set CHUTE_SESSION_SECRET when the
keys are written as digests where others may read them.

Actions (every method but GET and HEAD) are refused when a browser says they come from
another site: `Sec-Fetch-Site` other than `same-origin` or `none`, or, from a browser
that does not send it, an `Origin` that is not this host. Together with the
`SameSite=Strict` cookie this keeps other sites from acting through a signed-in
browser, with no token in the pages.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from urllib.parse import urlsplit

from chute.entrypoints.http.keys import KeyRing, digest_of

COOKIE = "chute_session"
MAX_AGE = 12 * 3600  # seconds a sign-in lasts
_LABEL = 8  # bytes of a key's digest that name it in the cookie
SAFE_METHODS = frozenset({"GET", "HEAD"})


class Sessions:
    """Issues and checks the session cookies of one key ring."""

    def __init__(self, keys: KeyRing, secret: str | None = None) -> None:
        self._keys = keys
        material = secret.encode() if secret else b"".join(sorted(keys.digests))
        self._secret = hmac.new(b"chute console session", material, hashlib.sha256).digest()

    def issue(self, key: str, now: float | None = None) -> str | None:
        """A cookie value for a sign-in with `key`, or None when it is not a key."""
        if not self._keys.accepts(key):
            return None
        label = digest_of(key)[:_LABEL].hex()
        body = f"{label}.{int(time.time() if now is None else now)}"
        return f"{body}.{self._sign(body)}"

    def valid(self, value: str | None, now: float | None = None) -> bool:
        """True for a cookie this ring issued, not expired, whose key is still configured."""
        if not value or len(value) > 200:
            return False
        body, _, signature = value.rpartition(".")
        if not hmac.compare_digest(self._sign(body).encode(), signature.encode()):
            return False
        label, _, issued = body.partition(".")
        if not issued.isdigit():
            return False
        age = (time.time() if now is None else now) - int(issued)
        return 0 <= age < MAX_AGE and self._keys.knows_prefix(bytes.fromhex(label))

    def _sign(self, body: str) -> str:
        mac = hmac.new(self._secret, body.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def cross_site(method: str, headers: dict[str, str]) -> bool:
    """True when a browser says this action comes from another site's page."""
    if method.upper() in SAFE_METHODS:
        return False
    site = headers.get("sec-fetch-site")
    if site is not None:
        return site not in ("same-origin", "none")
    origin = headers.get("origin")
    if origin is None:
        return False  # not a browser's request (curl, scripts): no cookie rides along
    return origin == "null" or urlsplit(origin).netloc != headers.get("host", "")
