"""A smart code reader's result lines: framing (where one result ends) and layout (its fields).

Fixed-mount code readers send one result per trigger over TCP as a line of text, framed by
STX ... ETX or ended by CR, LF or CR LF, often behind a fixed header, with the trigger number,
the codes read (several, separated) or a no-read marker ("NoRead", "NOREAD"). The reader's
output settings say which; docs/equipment.md has the common vendors' settings.

Nothing here raises on the reader's bytes: a stream of garbage, a cut-off frame or a line of a
megabyte becomes a counted Problem, and the next good frame is read as if nothing happened.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

STX, ETX = 0x02, 0x03
FRAMINGS = ("line", "stx-etx")
MAX_CODES = 16                 # per result: a label has a few symbols, never dozens
MAX_CODE_LEN = 64              # waybills are 10-22 characters; a 2D code's payload may be longer
TEMPLATE_FIELDS = {"trigger": r"(?P<trigger>[0-9]{1,10})", "codes": r"(?P<codes>.*)", "skip": r"(?:.*?)"}
_FIELD = re.compile(r"\{([^{}]*)\}")
_PRINTABLE = re.compile(r"[\x20-\x7e]*")


@dataclass(frozen=True)
class Problem:
    kind: str          # garbage, partial, overlong (here); flood, unknown_trigger, late, unmatched (matching)
    detail: str


@dataclass(frozen=True)
class Parsed:
    trigger: int | None
    codes: tuple[str, ...]       # empty: the reader read nothing (its no-read marker, or no codes)


class LayoutError(ValueError):
    """A [reader] template or pattern that cannot describe a result line (config checking)."""


def shown(data: bytes | str, limit: int = 40) -> str:
    """A frame's start as a technician can read it in a log line: control bytes as <02>, <0D>."""
    text = data.decode("latin-1") if isinstance(data, bytes) else data
    out = "".join(ch if " " <= ch <= "~" else f"<{ord(ch):02X}>" for ch in text[:limit])
    return out + (f"... ({len(text)} characters)" if len(text) > limit else "")


class Framer:
    """Bytes from the socket in, whole frames out, in order; problems beside them."""

    def __init__(self, framing: str, max_frame_bytes: int, section: str = "reader"):
        if framing not in FRAMINGS:
            raise ValueError(f"framing {framing!r}: use one of {', '.join(FRAMINGS)}")
        self.framing = framing
        self.max_frame_bytes = max_frame_bytes
        self.section = section           # the config section the messages name: [reader], [scale]
        self._buf = bytearray()
        self._in_frame = False         # stx-etx: an STX was seen and its ETX not yet
        self._skipping = False         # an overlong frame is being thrown away up to its end
        self._outside = bytearray()    # stx-etx: bytes between frames, other than CR/LF

    def feed(self, data: bytes) -> list[bytes | Problem]:
        out: list[bytes | Problem] = []
        if self.framing == "line":
            self._feed_lines(data, out)
        else:
            self._feed_stx(data, out)
        return out

    def end(self) -> list[Problem]:
        """The connection ended: what was left unfinished."""
        out: list[Problem] = []
        left = bytes(self._buf)
        skipping, self._buf, self._skipping, self._in_frame = self._skipping, bytearray(), False, False
        if left.strip(b"\r\n") and not skipping:
            out.append(Problem("partial", f"the connection ended in the middle of a result: {shown(left)}"))
        self._flush_outside(out)
        return out

    def _feed_lines(self, data: bytes, out: list) -> None:
        start = 0
        for m in re.finditer(rb"[\r\n]", data):
            self._take(data[start:m.start()], out)
            self._close(out)
            start = m.end()
        self._take(data[start:], out)

    def _feed_stx(self, data: bytes, out: list) -> None:
        start = 0
        for m in re.finditer(rb"[\x02\x03]", data):
            piece = data[start:m.start()]
            if self._in_frame:
                self._take(piece, out)
            else:
                self._outside += piece.strip(b"\r\n")
            if data[m.start()] == STX:
                if self._in_frame and (self._buf or self._skipping):
                    out.append(Problem("partial", f"a result without its ETX before the next STX: "
                                                  f"{shown(bytes(self._buf))}"))
                self._flush_outside(out)
                self._buf, self._skipping, self._in_frame = bytearray(), False, True
            elif self._in_frame:
                self._close(out)
                self._in_frame = False
            else:
                self._outside += b"\x03"
            start = m.end()
        rest = data[start:]
        if self._in_frame:
            self._take(rest, out)
        else:
            self._outside += rest.strip(b"\r\n")
            if len(self._outside) > self.max_frame_bytes:
                self._flush_outside(out)

    def _flush_outside(self, out: list) -> None:
        if self._outside:
            out.append(Problem("garbage", f"{len(self._outside)} bytes outside STX ... ETX: {shown(bytes(self._outside))}"))
            self._outside = bytearray()

    def _take(self, piece: bytes, out: list) -> None:
        if self._skipping or not piece:
            return
        self._buf += piece
        if len(self._buf) > self.max_frame_bytes:
            out.append(Problem("overlong", f"a result longer than {self.max_frame_bytes} bytes "
                                           f"([{self.section}] max_frame_bytes), thrown away: {shown(bytes(self._buf))}"))
            self._buf, self._skipping = bytearray(), True

    def _close(self, out: list) -> None:
        frame, skipping = bytes(self._buf), self._skipping
        self._buf, self._skipping = bytearray(), False
        if skipping:
            return
        frame = frame.strip(b"\r\n")
        if frame or self.framing == "stx-etx":
            out.append(frame)


def template_regex(template: str) -> str:
    """`{trigger},{codes}` as a regular expression; LayoutError names a field that is not allowed."""
    parts, pos = [], 0
    for m in _FIELD.finditer(template):
        name = m.group(1)
        if name not in TEMPLATE_FIELDS:
            raise LayoutError(f"{{{name}}} is not a field: a template names {{trigger}}, {{codes}} and {{skip}}")
        parts += [re.escape(template[pos:m.start()]), TEMPLATE_FIELDS[name]]
        pos = m.end()
    parts.append(re.escape(template[pos:]))
    names = _FIELD.findall(template)
    for name in ("trigger", "codes"):
        if names.count(name) > 1:
            raise LayoutError(f"{{{name}}} is named {names.count(name)} times: once at most")
    if "codes" not in names:
        raise LayoutError("the template names no {codes}: where are the codes in the result?")
    return "".join(parts)


def compiled_pattern(pattern: str) -> re.Pattern:
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise LayoutError(f"not a regular expression: {exc}") from None
    if "codes" not in rx.groupindex:
        raise LayoutError("the pattern has no group named codes: write (?P<codes>...) around the codes")
    unknown = set(rx.groupindex) - {"codes", "trigger"}
    if unknown:
        raise LayoutError(f"groups {', '.join(sorted(unknown))} are not fields: name only (?P<trigger>...) and "
                          f"(?P<codes>...); leave other groups unnamed")
    return rx


class Layout:
    """One frame's text into a trigger id and the codes read."""

    def __init__(self, *, prefix: str = "", template: str = "{codes}", pattern: str = "", separator: str = ";",
                 no_read: str = "NoRead"):
        self.prefix = prefix
        self.rx = compiled_pattern(pattern) if pattern else re.compile(template_regex(template))
        self.has_trigger = "trigger" in self.rx.groupindex
        self.separator = separator
        self.no_read = no_read.casefold()

    @classmethod
    def from_config(cls, reader: dict) -> Layout:
        return cls(prefix=reader["prefix"], template=reader["template"], pattern=reader["pattern"],
                   separator=reader["code_separator"], no_read=reader["no_read"])

    def parse(self, frame: bytes) -> Parsed | Problem:
        try:
            text = frame.decode("utf-8")
        except UnicodeDecodeError:
            return Problem("garbage", f"not text (bytes that are no UTF-8): {shown(frame)}")
        if self.prefix:
            if not text.startswith(self.prefix):
                return Problem("garbage", f"does not begin with the prefix {self.prefix!r}: {shown(text)}")
            text = text[len(self.prefix):]
        m = self.rx.fullmatch(text)
        if m is None:
            return Problem("garbage", f"does not match the [reader] layout: {shown(text)}")
        trigger = None
        if self.has_trigger:
            raw = m.group("trigger")
            if raw is None or not raw.strip().isdigit() or int(raw) > 0xFFFFFFFF:
                return Problem("garbage", f"trigger id {raw!r} is not a number up to 4294967295: {shown(text)}")
            trigger = int(raw)
        codes = []
        for code in (m.group("codes") or "").split(self.separator) if self.separator else [m.group("codes") or ""]:
            code = code.strip()
            if not code or code.casefold() == self.no_read:
                continue
            if len(code) > MAX_CODE_LEN or not _PRINTABLE.fullmatch(code):
                return Problem("garbage", f"a code that is not {MAX_CODE_LEN} printable ASCII characters or fewer: "
                                          f"{shown(code)}")
            if code not in codes:
                codes.append(code)
        if len(codes) > MAX_CODES:
            return Problem("garbage", f"{len(codes)} codes in one result (at most {MAX_CODES}): {shown(text)}")
        return Parsed(trigger, tuple(codes))


def frame_bytes(text: str, framing: str, terminator: bytes = b"\r\n") -> bytes:
    """One result as a reader sends it (the simulated reader, tests)."""
    body = text.encode("utf-8")
    if framing == "stx-etx":
        return bytes([STX]) + body + bytes([ETX])
    return body + terminator
