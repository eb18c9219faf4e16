"""Screen texts, one module a language: `ui/lang/<code>.py` holds TEXT plus number conventions.

Adding a language = adding one module with the same keys as `en` (a test checks every language
has every key and the same {placeholders}); scripts DejaVu Sans lacks also need a font (see
`FONTS` in the module and ui/theme.py). No I/O beyond importing the module.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from types import ModuleType

DEFAULT = "en"


@dataclass(frozen=True)
class Language:
    """One language's texts and how it writes amounts."""

    code: str
    name: str
    text: dict[str, str]
    decimal_sep: str = "."
    group_sep: str = ","
    symbol_first: bool = True  # "€12.50" (en) or "12,50 €" (it)
    symbol_space: bool = False
    grouping: tuple[int, ...] = (3,)  # digit groups from the right; (3, 2) for Indian lakh/crore
    # Font file names under ui/fonts for regular / bold text, when DejaVu does not cover the script.
    fonts: dict[str, str] = field(default_factory=dict)
    printable: bool = True  # False: ESC/POS text mode has no code page for it (receipts in en)

    def t(self, key: str, **values: object) -> str:
        """The text for `key` with {placeholders} filled; unknown keys fall back to English."""
        template = self.text.get(key)
        if template is None:
            template = load(DEFAULT).text.get(key, key)
        return template.format(**values)


_CACHE: dict[str, Language] = {}
_CODE = re.compile(r"^[a-z]{2,3}$")


def available() -> list[str]:
    """Language codes shipped (modules in this package)."""
    import pkgutil

    return sorted(m.name for m in pkgutil.iter_modules(__path__) if _CODE.match(m.name))


def load(code: str) -> Language:
    """The language `code` ("en", "it", ...); ValueError naming the known ones when missing."""
    code = (code or DEFAULT).lower()
    if code in _CACHE:
        return _CACHE[code]
    if not _CODE.match(code):
        raise ValueError(f"unknown language {code!r} (known: {', '.join(available())})")
    try:
        module: ModuleType = importlib.import_module(f"{__name__}.{code}")
    except ModuleNotFoundError:
        raise ValueError(f"unknown language {code!r} (known: {', '.join(available())})") from None
    lang = Language(
        code=code,
        name=module.NAME,
        text=dict(module.TEXT),
        decimal_sep=getattr(module, "DECIMAL_SEP", "."),
        group_sep=getattr(module, "GROUP_SEP", ","),
        symbol_first=getattr(module, "SYMBOL_FIRST", True),
        symbol_space=getattr(module, "SYMBOL_SPACE", False),
        grouping=tuple(getattr(module, "GROUPING", (3,))),
        fonts=dict(getattr(module, "FONTS", {})),
        printable=bool(getattr(module, "PRINTABLE", True)),
    )
    _CACHE[code] = lang
    return lang
