"""Every file the repo cites is in the repo: paths in code, comments, tests and docs (`docs/...md`, `shared/...py`,
a bare `NAME.md`), markdown links and their heading anchors. A `§` is only for a standard's section (RFC 6750 §3);
our own documents are cited by path and heading."""

from __future__ import annotations

import posixpath
import re
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parents[2]
# Published samples and their provenance cite paths in other repositories; the hygiene checks' own tests cite
# made-up paths on purpose.
NOT_SCANNED = ("tests/fixtures/", "tests/unit/test_citations.py", "tests/unit/test_repo_hygiene.py")
NOT_TEXT = {".png", ".jpg", ".ico", ".gz", ".zip"}
# Cited on purpose though absent: the reader's own playbook in an example.
EXAMPLES = {"playbooks/my-playbook.yaml"}

_URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+")
_PATH = re.compile(r"(?<![\w./@$%~:<>{}-])((?:\.\.?/)*[\w.-]+(?:/[\w.*-]+)*/?)(?:#([\w-]+))?(?![\w/{}<>-])")
_SECTION = re.compile(r"§")
_STANDARD = re.compile(r"\bRFC \d+\s*$")


@dataclass(frozen=True)
class Repo:
    files: frozenset[str]
    read: Callable[[str], str]

    @property
    def dirs(self) -> set[str]:
        return {str(parent) for path in self.files for parent in PurePosixPath(path).parents if str(parent) != "."}

    @property
    def top_dirs(self) -> set[str]:
        return {path.split("/", 1)[0] for path in self.files if "/" in path}

    def has(self, path: str) -> bool:
        if any(char in path for char in "*?["):
            return any(fnmatch(file, path) for file in self.files)
        return path in self.files or path.rstrip("/") in self.dirs


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes."""
    headings = re.findall(r"^#+ (.+)$", markdown, re.MULTILINE)
    return {re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


def _target(repo: Repo, citing: str, token: str) -> str | None:
    """The repo path a cited token names, or None when it names nothing in the repo."""
    if "/" not in token:
        names = {PurePosixPath(file).name for file in repo.files}
        return next((f for f in repo.files if PurePosixPath(f).name == token), None) if token in names else None
    here = posixpath.dirname(citing)
    for candidate in (token, posixpath.join(here, token)):
        normal = posixpath.normpath(candidate) + ("/" if token.endswith("/") else "")
        if repo.has(normal):
            return normal
    return None


def _is_citation(repo: Repo, token: str) -> bool:
    path = token.rstrip("/")
    if path.endswith(".md"):
        return True
    first = path.lstrip("./").split("/", 1)[0]
    return "/" in path and not path.startswith("/") and first in repo.top_dirs


def broken(repo: Repo, citing: str, text: str) -> list[str]:
    """`citing:line: what` for every citation in `text` of a file, directory or heading the repo lacks."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        line = _URL.sub(" ", line)
        for section in _SECTION.finditer(line):
            if not _STANDARD.search(line[: section.start()]):
                found.append(f"{citing}:{number}: a § that is not a standard's (cite our docs by path and heading)")
        for match in _PATH.finditer(line):
            token, anchor = match.group(1).rstrip("."), match.group(2)
            if not _is_citation(repo, token) or token in EXAMPLES:
                continue
            target = _target(repo, citing, token)
            if target is None:
                found.append(f"{citing}:{number}: {token} is not in the repo")
            elif anchor and target.endswith(".md") and anchor not in anchors(repo.read(target)):
                found.append(f"{citing}:{number}: {target} has no heading #{anchor}")
    return found


def scanned(files: Iterable[str]) -> list[str]:
    return [f for f in files if not f.startswith(NOT_SCANNED) and PurePosixPath(f).suffix not in NOT_TEXT]


def test_every_cited_file_is_in_the_repo() -> None:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True).stdout
    files = frozenset(path for path in out.decode().split("\0") if path)
    repo = Repo(files, lambda path: (ROOT / path).read_text(encoding="utf-8"))
    found: list[str] = []
    for path in scanned(files):
        file = ROOT / path
        if file.is_file():
            found += broken(repo, path, file.read_text(encoding="utf-8", errors="replace"))
    assert found == [], "\n".join(found)


SYNTHETIC = {
    "README.md": "# Riposte\n## Layout\n",
    "docs/architecture.md": "# Architecture\n## The run state machine\n",
    "docs/reference/payloads.md": "# Payloads\n",
    "shared/azure/graph.py": "",
    "playbooks/queries/risky.kql": "",
}


def synthetic_repo() -> Repo:
    return Repo(frozenset(SYNTHETIC), SYNTHETIC.__getitem__)


def test_the_check_passes_citations_of_what_exists() -> None:
    text = "\n".join(
        [
            "# see docs/architecture.md#the-run-state-machine and shared/azure/ and playbooks/queries/*.kql",
            "[payloads](reference/payloads.md), [home](../README.md#layout), README.md",
            "RFC 6750 §3: no error attribute; https://github.com/x/y/blob/main/DESIGN.md is elsewhere",
            'ROOT / "docs" / "architecture.md"; route "/api/runs/{id}"; f"docs/{name}.md"',
        ]
    )
    assert broken(synthetic_repo(), "docs/architecture.md", text) == []


def test_the_check_finds_each_kind_of_broken_citation() -> None:
    text = "\n".join(
        [
            '"""The run API of DESIGN.md §3."""',
            "# (reference/sdk-notes.md) and shared/azure/nothing.py",
            "see docs/architecture.md#no-such-heading, section 2 of docs/gone/",
        ]
    )
    assert broken(synthetic_repo(), "shared/api/runs.py", text) == [
        "shared/api/runs.py:1: a § that is not a standard's (cite our docs by path and heading)",
        "shared/api/runs.py:1: DESIGN.md is not in the repo",
        "shared/api/runs.py:2: reference/sdk-notes.md is not in the repo",
        "shared/api/runs.py:2: shared/azure/nothing.py is not in the repo",
        "shared/api/runs.py:3: docs/architecture.md has no heading #no-such-heading",
        "shared/api/runs.py:3: docs/gone/ is not in the repo",
    ]
