"""Checks that the built documentation loads nothing from the network: no script, style
sheet, image, frame, font or CSS import of any page names an address outside the build
(links a reader may follow, ``<a href>``, are fine). ``make docs`` runs it after Sphinx.

    python docs/check_offline.py docs/_build/html
"""

import html.parser
import os
import re
import sys
from typing import List, Tuple

#: Attributes whose address the browser loads by itself (not links the reader follows).
LOADED = {"src", "srcset", "data", "poster", "background", "manifest", "formaction", "action"}
#: ``<link rel=...>`` kinds that load what they name.
LOADED_LINKS = {"stylesheet", "icon", "preload", "prefetch", "modulepreload", "manifest", "import", "preconnect",
                "dns-prefetch", "apple-touch-icon", "shortcut"}
EXTERNAL = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*:)?//", re.I)
CSS_EXTERNAL = re.compile(r"(?:url\(\s*['\"]?|@import\s+['\"])\s*((?:[a-z][a-z0-9+.-]*:)?//[^'\")\s]+)", re.I)


class _Loads(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: List[Tuple[str, str]] = []
        self._style = False

    def handle_starttag(self, tag: str, attrs: List[Tuple[str, str]]) -> None:
        values = {name.lower(): value or "" for name, value in attrs}
        for name, value in values.items():
            if name in LOADED and any(EXTERNAL.match(part.split()[0]) for part in value.split(",") if part.strip()):
                self.found.append((tag, value))
        if tag == "link" and LOADED_LINKS & set(values.get("rel", "").lower().split()) and \
                EXTERNAL.match(values.get("href", "")):
            self.found.append((tag, values["href"]))
        self.found += [(f"{tag} style", address) for address in CSS_EXTERNAL.findall(values.get("style", ""))]
        self._style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._style = False

    def handle_data(self, data: str) -> None:
        if self._style:
            self.found += [("style", address) for address in CSS_EXTERNAL.findall(data)]


def external_loads(root: str) -> List[Tuple[str, str, str]]:
    """``(file, element, address)`` of everything under ``root`` that a browser would fetch
    from outside it (HTML pages and CSS files)."""
    found = []
    for folder, _, files in os.walk(root):
        for name in sorted(files):
            path = os.path.join(folder, name)
            if name.endswith(".html"):
                parser = _Loads()
                with open(path, encoding="utf-8", errors="replace") as handle:
                    parser.feed(handle.read())
                found += [(path, element, address) for element, address in parser.found]
            elif name.endswith(".css"):
                with open(path, encoding="utf-8", errors="replace") as handle:
                    found += [(path, "css", address) for address in CSS_EXTERNAL.findall(handle.read())]
    return found


def main(argv: List[str]) -> int:
    if len(argv) != 1 or not os.path.isdir(argv[0]):
        print("usage: python docs/check_offline.py BUILT_HTML_DIRECTORY", file=sys.stderr)
        return 2
    found = external_loads(argv[0])
    for path, element, address in found[:20]:
        print(f"{path}: <{element}> loads {address}", file=sys.stderr)
    if found:
        print(f"check_offline: {len(found)} network loads in {argv[0]}; the documentation must work offline",
              file=sys.stderr)
        return 1
    print(f"check_offline: nothing in {argv[0]} is loaded from the network")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
