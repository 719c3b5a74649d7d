"""The string catalogue: every string the pages show in English has its French translation
(frontend/i18n/fr.json), with the same {placeholders}, and the file holds no stale entries."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"
# t("...") in the scripts: the English text is the key.
CALL = re.compile(r'\bt\(\s*"((?:[^"\\]|\\.)*)"')
PLACEHOLDER = re.compile(r"\{(\w+)\}")


class _Marked(HTMLParser):
    """Text of elements marked data-i18n, values of attributes named by data-i18n-attr, and
    the document's title."""

    def __init__(self) -> None:
        super().__init__()
        self.found: set[str] = set()
        self._capture: list[str] | None = None
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if "data-i18n" in named:
            self._capture = []
        for attr in (named.get("data-i18n-attr") or "").split(","):
            if attr.strip() and named.get(attr.strip()):
                self.found.add(str(named[attr.strip()]))
        self._in_title = tag == "title"

    def handle_data(self, data: str) -> None:
        if self._capture is not None:
            self._capture.append(data)
        if self._in_title:
            self.found.add(data.strip())

    def handle_endtag(self, tag: str) -> None:
        if self._capture is not None:
            self.found.add("".join(self._capture).strip())
            self._capture = None
        self._in_title = False


def english_strings() -> set[str]:
    found: set[str] = set()
    for script in (FRONTEND / "js").glob("*.js"):
        found |= {json.loads(f'"{m}"') for m in CALL.findall(script.read_text())}
    for page in ("agent.html", "supervisor.html", "reports.html"):
        parser = _Marked()
        parser.feed((FRONTEND / page).read_text())
        found |= parser.found
    return found


def test_every_string_has_a_french_translation_with_its_placeholders() -> None:
    french = json.loads((FRONTEND / "i18n" / "fr.json").read_text())
    english = english_strings()
    assert len(english) > 150  # the extraction found the pages' strings
    missing = sorted(english - french.keys())
    assert missing == [], f"{len(missing)} strings have no French translation: {missing}"
    stale = sorted(french.keys() - english)
    assert stale == [], f"translations of strings the pages no longer use: {stale}"
    for key, value in french.items():
        assert value.strip(), key
        assert set(PLACEHOLDER.findall(key)) == set(PLACEHOLDER.findall(value)), key
