"""Printed routing codes (三段码 / 大头笔) as the reader accepts them.

A line's codes come in a few fixed shapes (the lengths of their segments); the sort plan tells
which, so that a code read with a character lost or two merged into one is not taken.
"""
from __future__ import annotations

import re

# 三段码: hub-outlet-route; EMS prints a fourth segment.
ROUTING_CODE = re.compile(r"[0-9A-Z]{2,4}-[0-9A-Z]{2,4}-[0-9A-Z]{1,3}(?:-[0-9A-Z]{1,3})?")


# The shapes (lengths of the segments) of the routing codes the line's sort plan knows. A code
# read with a character lost or two merged into one still fits ROUTING_CODE, but rarely the
# plan's shapes: a line's codes come in a few fixed shapes (571-J25-03 is 3-3-2).
_routing_shapes = None


def routing_shape(code: str) -> tuple[int, ...]:
    """The lengths of the segments of `code`: (3, 3, 2) for 571-J25-03."""
    return tuple(len(segment) for segment in code.split("-"))


def use_routing_shapes(shapes) -> None:
    """Accept only routing codes of these shapes from now on (None: any shape ROUTING_CODE fits)."""
    global _routing_shapes
    _routing_shapes = frozenset(shapes) if shapes else None


def looks_like_routing_code(text: str) -> bool:
    """Written like a routing code, whatever its shape."""
    return isinstance(text, str) and ROUTING_CODE.fullmatch(text) is not None


def is_routing_code(text: str) -> bool:
    """A routing code in one of the shapes given (any, when none was)."""
    return looks_like_routing_code(text) and (_routing_shapes is None or routing_shape(text) in _routing_shapes)
