"""Who may reach and act on the line screen: Host names, token login, sessions, CSRF, a brake on guessing.

A login exchanges a token from the local token file for a session cookie (HttpOnly,
SameSite=Strict) and a CSRF token. Every action must carry the session cookie, the CSRF token in
a header, a JSON body and, when the browser sends one, an Origin equal to the screen's own: a page
from elsewhere can neither read the CSRF token nor make the browser send it.

Every request must also name the screen in its Host header: a page on another site whose name the
attacker points at this PC's address (DNS rebinding) would otherwise be the same origin as the
screen for the browser, and could read what needs no login.
"""
import hmac
import ipaddress
import secrets
import time
from collections import deque
from dataclasses import dataclass, field

SESSION_COOKIE = "sortline_session"
CSRF_HEADER = "X-CSRF-Token"
SESSION_IDLE_S = 30 * 60          # a screen left logged in locks itself after half an hour
MAX_SESSIONS = 64
FAILURES_ALLOWED = 5               # wrong tokens per address and window answered at once
FAILURE_WINDOW_S = 60.0
FIRST_DELAY_S = 0.25               # the next wrong answer waits this long, then twice as long each time
MAX_DELAY_S = 4.0
MAX_CLIENTS_TRACKED = 1024
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


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
        """The session, kept alive by this use (an action, a page load)."""
        s = self.peek(session_id)
        if s is not None:
            s.used_mono = time.monotonic()
        return s

    def peek(self, session_id: str | None) -> Session | None:
        """The session without keeping it alive: a page that only watches the live view must not
        stop an unattended login from expiring."""
        self._expire()
        return self._by_id.get(session_id or "")

    def close(self, session_id: str | None) -> None:
        self._by_id.pop(session_id or "", None)

    def _expire(self) -> None:
        now = time.monotonic()
        for sid in [sid for sid, s in self._by_id.items() if now - s.used_mono > self.idle_s]:
            del self._by_id[sid]


class LoginThrottle:
    """Wrong tokens per client address: the first FAILURES_ALLOWED in a window are answered at once,
    each later one after a delay that doubles, up to MAX_DELAY_S.

    Why a delay on wrong answers and not a lock-out: on loopback, or behind a proxy, every technician
    has the same address as whoever guesses, so a lock-out by address locked all of them out (five
    wrong tokens from 127.0.0.1 did, on a site). The token is checked first: the right one always
    logs in at once, only wrong answers wait. Tokens have at least 16 characters of 64 kinds (96
    bits), so guessing is hopeless at any rate the screen can answer; the delay slows a script down,
    and only the first wrong tokens of a window go into the logbook one by one, so that a flood
    cannot fill it.
    """

    def __init__(self, allowed: int = FAILURES_ALLOWED, window_s: float = FAILURE_WINDOW_S,
                 first_delay_s: float = FIRST_DELAY_S, max_delay_s: float = MAX_DELAY_S):
        self.allowed, self.window_s = allowed, window_s
        self.first_delay_s, self.max_delay_s = first_delay_s, max_delay_s
        self._failures: dict[str, deque] = {}

    def failed(self, remote: str) -> float:
        """Count a wrong token from `remote`; how long its answer waits (0: answer and record it at once)."""
        now = time.monotonic()
        if remote not in self._failures and len(self._failures) >= MAX_CLIENTS_TRACKED:
            self._forget_quiet(now)
        q = self._failures.setdefault(remote, deque(maxlen=self.allowed + 64))
        while q and now - q[0] > self.window_s:
            q.popleft()
        q.append(now)
        beyond = len(q) - self.allowed
        return 0.0 if beyond <= 0 else min(self.max_delay_s, self.first_delay_s * 2 ** (beyond - 1))

    def _forget_quiet(self, now: float) -> None:
        for remote in [r for r, q in self._failures.items() if not q or now - q[-1] > self.window_s]:
            del self._failures[remote]
        if len(self._failures) >= MAX_CLIENTS_TRACKED:       # many addresses guessing: keep the newest
            oldest = min(self._failures, key=lambda r: self._failures[r][-1])
            del self._failures[oldest]


def host_name(header: str) -> str:
    """The name in a Host header, as compared: lower case, without port, brackets or final dot."""
    h = header.strip().lower()
    if h.startswith("["):
        h = h[1:h.find("]")] if "]" in h else h[1:]
    elif h.count(":") == 1:
        h = h.split(":", 1)[0]
    return _canonical(h.rstrip("."))


def _canonical(name: str) -> str:
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name


class HostCheck:
    """Which Host headers name this screen.

    Accepted: the bind address; localhost and the loopback addresses when the screen listens on
    loopback or on every address; this PC's own names; the address the client connected to, written
    as an address; and the site's own names ([screen] allowed_hosts). A rebinding page always uses
    a name of its own, which is none of these.
    """

    def __init__(self, bind: str, loopback: bool, machine_names=(), allowed=()):
        wildcard = bind in ("", "0.0.0.0", "::")
        names = set(machine_names) | set(allowed)
        if not wildcard:
            names.add(bind)
        if wildcard or loopback:
            names.update(LOOPBACK_NAMES)
        self.names = {host_name(n) for n in names if n}

    def allows(self, header: str, local_address: str | None) -> bool:
        name = host_name(header)
        return name in self.names or (local_address is not None and name == _canonical(local_address))


def csrf_ok(session: Session, request) -> bool:
    given = request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(session.csrf.encode(), given.encode()):
        return False
    origin = request.headers.get("Origin")
    return origin is None or origin == f"{request.scheme}://{request.host}"
