"""Who may act from the line screen: token login, sessions, CSRF, and a brake on guessing.

A login exchanges a token from the local token file for a session cookie (HttpOnly,
SameSite=Strict) and a CSRF token. Every action must carry the session cookie, the CSRF token in
a header, a JSON body and, when the browser sends one, an Origin equal to the screen's own: a page
from elsewhere can neither read the CSRF token nor make the browser send it.
"""
import hmac
import secrets
import time
from collections import deque
from dataclasses import dataclass, field

SESSION_COOKIE = "sortline_session"
CSRF_HEADER = "X-CSRF-Token"
SESSION_IDLE_S = 30 * 60          # a screen left logged in locks itself after half an hour
MAX_SESSIONS = 64
FAILURES_ALLOWED = 5               # wrong tokens per address and window before logins are refused
FAILURE_WINDOW_S = 60.0


@dataclass
class Session:
    id: str
    who: str
    csrf: str
    used_mono: float = field(default_factory=time.monotonic)


def match_token(tokens: dict[str, str], given: str) -> str | None:
    """The name bound to `given` ("" for a shared token), None if it is not a token; constant time."""
    found = None
    for token, name in tokens.items():
        if hmac.compare_digest(token.encode(), given.encode()):
            found = name
    return found


class Sessions:
    def __init__(self, idle_s: float = SESSION_IDLE_S):
        self.idle_s = idle_s
        self._by_id: dict[str, Session] = {}

    def open(self, who: str) -> Session:
        self._expire()
        if len(self._by_id) >= MAX_SESSIONS:
            oldest = min(self._by_id.values(), key=lambda s: s.used_mono)
            del self._by_id[oldest.id]
        s = Session(secrets.token_urlsafe(24), who, secrets.token_urlsafe(24))
        self._by_id[s.id] = s
        return s

    def get(self, session_id: str | None) -> Session | None:
        self._expire()
        s = self._by_id.get(session_id or "")
        if s is not None:
            s.used_mono = time.monotonic()
        return s

    def close(self, session_id: str | None) -> None:
        self._by_id.pop(session_id or "", None)

    def _expire(self) -> None:
        now = time.monotonic()
        for sid in [sid for sid, s in self._by_id.items() if now - s.used_mono > self.idle_s]:
            del self._by_id[sid]


class LoginThrottle:
    """Wrong tokens per remote address in a sliding window."""

    def __init__(self, allowed: int = FAILURES_ALLOWED, window_s: float = FAILURE_WINDOW_S):
        self.allowed, self.window_s = allowed, window_s
        self._failures: dict[str, deque] = {}

    def blocked(self, remote: str) -> bool:
        q = self._failures.get(remote)
        if not q:
            return False
        while q and time.monotonic() - q[0] > self.window_s:
            q.popleft()
        return len(q) >= self.allowed

    def failed(self, remote: str) -> None:
        self._failures.setdefault(remote, deque()).append(time.monotonic())


def csrf_ok(session: Session, request) -> bool:
    given = request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(session.csrf.encode(), given.encode()):
        return False
    origin = request.headers.get("Origin")
    return origin is None or origin == f"{request.scheme}://{request.host}"
