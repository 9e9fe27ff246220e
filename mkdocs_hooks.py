"""MkDocs hooks for the documentation site (``hooks:`` in mkdocs.yml).

The README is the project's front page, outside ``docs/``; a page takes one of its
sections with a line ``<!-- readme-section: Heading -->``: the section under the README's
``## Heading``, up to the next ``## ``, with the heading left out and the README's links
made relative to the page (``docs/usage.md#x`` becomes ``usage.md#x`` on a page in
``docs/``, ``../usage.md#x`` on one in ``docs/guides/``). A section that is not there
fails the build.

A link from a page to one of those README sections (``../README.md#job-apis-it-understands``,
which works on GitHub) leads, on the site, to the page that includes the section; a link
to the README that no page includes fails the build.

A line ``<!-- include-file: PATH -->`` (PATH relative to the page) becomes a code block
holding that file, so that a page shows an example that its own test runs.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

README = Path(__file__).parent / "README.md"

_DIRECTIVE = re.compile(r"^<!-- readme-section: (?P<heading>.+?) -->$", re.M)
_INCLUDE = re.compile(r"^<!-- include-file: (?P<path>\S+) -->$", re.M)
_README_LINK = re.compile(r"\]\((?:\.\./)+README\.md(?:#(?P<anchor>[^)\s]*))?\)")
_LANGUAGES = {".py": "python", ".toml": "toml", ".yml": "yaml", ".json": "json"}
_LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")


def readme_section(heading: str) -> str:
    """The README's section under ``## heading``, without the heading."""
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(heading)}\n(?P<body>.*?)(?=^## |\Z)", text, re.S | re.M)
    if match is None:
        raise ValueError(f"README.md has no section '## {heading}'")
    return match["body"].strip("\n")


def relink(markdown: str, page_path: str) -> str:
    """The README's links made relative to the page at ``page_path`` (under docs/)."""
    page_dir = posixpath.dirname(page_path)

    def fix(match: re.Match[str]) -> str:
        target = match["target"]
        if "://" in target or target.startswith(("#", "mailto:")):
            return match[0]
        if target.startswith("docs/"):
            target = posixpath.relpath(target[len("docs/") :], page_dir or ".")
        return f"]({target})"

    return _LINK.sub(fix, markdown)


def slug(heading: str) -> str:
    """The anchor Python-Markdown's toc (and GitHub) gives a heading."""
    return re.sub(r"[\s]+", "-", re.sub(r"[^\w\s-]", "", heading).strip().lower())


#: README section anchors -> the page (under docs/) that includes the section.
_INCLUDED: dict[str, str] = {}


def on_files(files: Any, config: Any, **_: Any) -> Any:
    """Note which page includes which README section."""
    _INCLUDED.clear()
    for file in files.documentation_pages():
        text = Path(file.abs_src_path).read_text(encoding="utf-8")
        for match in _DIRECTIVE.finditer(text):
            _INCLUDED[slug(match["heading"])] = file.src_uri
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, **_: Any) -> str:
    """Replace each ``readme-section`` and ``include-file`` line with what it names."""
    path = page.file.src_uri

    def section(match: re.Match[str]) -> str:
        return relink(readme_section(match["heading"]), path)

    def include(match: re.Match[str]) -> str:
        target = Path(config["docs_dir"]) / posixpath.dirname(path) / match["path"]
        language = _LANGUAGES.get(target.suffix, "")
        return f"```{language}\n{target.read_text(encoding='utf-8').rstrip()}\n```"

    def readme_link(match: re.Match[str]) -> str:
        anchor = match["anchor"]
        if anchor not in _INCLUDED:
            raise ValueError(
                f"{path} links to README.md#{anchor}, a section no page includes "
                "(<!-- readme-section: ... -->)"
            )
        return f"]({posixpath.relpath(_INCLUDED[anchor], posixpath.dirname(path) or '.')})"

    markdown = _README_LINK.sub(readme_link, markdown)
    return _INCLUDE.sub(include, _DIRECTIVE.sub(section, markdown))
