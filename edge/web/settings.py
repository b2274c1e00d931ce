"""Where the line screen listens, which names it answers to, and where its technician tokens live.

The [screen] section of the line config gives `bind`, `port`, `token_file` and `allowed_hosts`; a
config without the section gets the defaults below: loopback only, so that nothing on the line
network can reach the technician actions unless the config says so.
"""
import ipaddress
import logging
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("sortline.screen")

DEFAULT_BIND = "127.0.0.1"
DEFAULT_PORT = 8480
DEFAULT_TOKEN_FILE = "screen-tokens.txt"      # beside the records when the config names none
MIN_TOKEN_CHARS = 16
_TOKEN = re.compile(r"[A-Za-z0-9_\-.~+/=]+")

TOKEN_FILE_HEADER = """\
# Technicians who may act from the line screen (disable a chute, reload the plan).
# One per line: "name token" (the name goes into the logbook), or a token alone (the
# technician then types a name at login). Tokens: at least 16 letters, digits, - or _.
# Keep this file readable by the controller's user only (chmod 600).
"""


class TokenFileError(Exception):
    pass


@dataclass(frozen=True)
class ScreenSettings:
    enabled: bool
    bind: str
    port: int
    token_file: Path
    # Names the screen answers to besides its own (the bind address, this PC's name and addresses):
    # a name the site's DNS gives this PC, for example "sorter-3.line.example".
    allowed_hosts: tuple[str, ...] = ()

    @property
    def loopback_only(self) -> bool:
        """True when only this PC can reach the screen; a host name other than localhost counts as
        reachable from elsewhere, the safe side."""
        if self.bind.lower() == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.bind.strip("[]")).is_loopback
        except ValueError:
            return False


def screen_settings(config) -> ScreenSettings:
    section = config.values.get("screen") or {}
    token_file = section.get("token_file") or str(Path(config["records"]["folder"]) / DEFAULT_TOKEN_FILE)
    return ScreenSettings(enabled=section.get("enabled", True), bind=section.get("bind") or DEFAULT_BIND,
                          port=int(section.get("port") or DEFAULT_PORT),
                          token_file=config.resolve(token_file),
                          allowed_hosts=host_names(section.get("allowed_hosts") or ""))


def host_names(given) -> tuple[str, ...]:
    """`allowed_hosts` as written: "a.example, b.example" (or a list of names) -> the names."""
    words = given if isinstance(given, (list, tuple)) else re.split(r"[\s,]+", str(given))
    return tuple(w.strip() for w in words if w.strip())


def read_tokens(path: Path) -> dict[str, str]:
    """token -> technician name ("" for a shared token). Read at every login, so edits apply at once."""
    from fastpath.text_files import TOKENS, FileRefused, read_text
    try:
        # Read on the event loop at every login: a named pipe or /dev/zero under this name must
        # not hold it (only a small regular file is read).
        text = read_text(path, TOKENS)
    except FileRefused as exc:
        raise TokenFileError(str(exc)) from None
    except OSError as exc:
        raise TokenFileError(f"{path}: cannot read the screen token file: {exc.strerror}; "
                             f"check [screen] token_file in the line config") from None
    tokens = {}
    for n, line in enumerate(text.splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) > 2:
            raise TokenFileError(f"{path}:{n}: expected 'name token' or a token alone, found {len(words)} words")
        token, name = words[-1], (words[0] if len(words) == 2 else "")
        if len(token) < MIN_TOKEN_CHARS or not _TOKEN.fullmatch(token):
            raise TokenFileError(f"{path}:{n}: the token must be at least {MIN_TOKEN_CHARS} letters, digits, "
                                 f"- or _ (a short token can be guessed); make a new one, for example with "
                                 f"'python3 -c \"import secrets; print(secrets.token_urlsafe(18))\"'")
        tokens[token] = name
    if not tokens:
        raise TokenFileError(f"{path}: no token in the file: add a line 'name token' for each technician")
    return tokens


def ensure_token_file(path: Path) -> None:
    """A first start makes one shared token so that the screen works; its path goes to the log."""
    if path.exists():
        if os.name == "posix" and path.stat().st_mode & 0o077:
            log.warning("%s can be read by other users of this PC: chmod 600 it", path)
        read_tokens(path)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(TOKEN_FILE_HEADER + secrets.token_urlsafe(18) + "\n")
    log.warning("created the screen token file %s with one shared token: give it to the technicians, "
                "or write one 'name token' line per technician", path)
