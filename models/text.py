"""Text as people type it, made safe to store and show: one validator for every model.

:data:`Text` (multi-line: descriptions, minutes, notes) and :data:`Line` (one line:
names, addresses, places) strip surrounding space and refuse, with a message naming the
character, what is invisible or reorders what is shown:

- control characters (NUL and the rest of Unicode category Cc; ``Line`` refuses tab
  and line breaks too, ``Text`` keeps them);
- bidirectional overrides and isolates (U+202A-U+202E, U+2066-U+2069), which make a
  text read differently from what it says (``Trojan Source``);
- zero-width and other format characters (Unicode category Cf: U+200B-U+200F, U+2060,
  U+FEFF, soft hyphen …), which hide text from search and from masking;
- line and paragraph separators (U+2028, U+2029), private-use and unassigned code
  points, and lone surrogates.

:func:`markdown_escape` makes any text safe inside a Markdown artifact: it can neither
open a link (``[x](javascript:…)``, ``<javascript:…>``) nor start HTML.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

from pydantic import AfterValidator

_KEPT_IN_TEXT = frozenset("\n\r\t")
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cn", "Cs", "Zl", "Zp"})


class UnsafeText(ValueError):
    """A character that must not be stored (pydantic turns it into a 422/400)."""


def _describe(ch: str) -> str:
    name = unicodedata.name(ch, "")
    return f"U+{ord(ch):04X}" + (f" {name}" if name else "")


def check(value: str, *, multiline: bool = True) -> str:
    """The text stripped, or :class:`UnsafeText` naming the first unsafe character."""
    for ch in value:
        if multiline and ch in _KEPT_IN_TEXT:
            continue
        if unicodedata.category(ch) in _REFUSED_CATEGORIES:
            raise UnsafeText(
                f"文本含有不可见或控制字符 {_describe(ch)}，请删除后重试 / the text contains "
                f"an invisible or control character ({_describe(ch)}); remove it and retry"
            )
    return value.strip()


def _text(value: str) -> str:
    return check(value, multiline=True)


def _line(value: str) -> str:
    return check(value, multiline=False)


Text = Annotated[str, AfterValidator(_text)]
Line = Annotated[str, AfterValidator(_line)]

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~:])")


def markdown_escape(value: object) -> str:
    """Any value as literal Markdown text on one line: HTML characters as entities,
    Markdown punctuation backslash-escaped (so ``javascript:`` cannot become a link)."""
    text = " ".join(str(value).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


__all__ = ["Line", "Text", "UnsafeText", "check", "markdown_escape"]
