"""Nothing generated is tracked, and a clone stays small: no virtualenv, node_modules, cache or bytecode, nothing the
.gitignore excludes, no file over 1 MiB, and under 2 MB for the tracked files in all.

The budget is counted as a clone transfers it: git stores and sends each file zlib-compressed. Issue 10 measured in
those units ("a 57 MB repository of which the project is 0.6 MB" was the pack, not the bytes on disk)."""

from __future__ import annotations

import random
import subprocess
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parents[2]
MAX_FILE_BYTES = 1024 * 1024
MAX_CLONE_BYTES = 2_000_000

GENERATED_DIRS = {
    "node_modules",
    "site-packages",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
}
GENERATED_SUFFIXES = {".pyc", ".pyo"}


def git(*args: str, repo: Path = ROOT) -> list[str]:
    out = subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True).stdout
    return [path for path in out.decode().split("\0") if path]


def tracked() -> list[str]:
    return git("ls-files", "-z")


def generated(paths: Iterable[str]) -> list[str]:
    """The paths that belong to a virtualenv, node_modules, a tool's cache or compiled bytecode."""
    paths = list(paths)
    venvs = {str(PurePosixPath(path).parent) for path in paths if PurePosixPath(path).name == "pyvenv.cfg"}
    venvs |= {
        str(PurePosixPath(path).parents[1]) for path in paths if PurePosixPath(path).parts[-2:] == ("bin", "activate")
    }
    found = []
    for path in paths:
        pure = PurePosixPath(path)
        in_venv = any(venv == "." or pure.is_relative_to(venv) for venv in venvs)
        if in_venv or GENERATED_DIRS & set(pure.parts[:-1]) or pure.suffix in GENERATED_SUFFIXES:
            found.append(path)
    return found


def oversized(sizes: Mapping[str, int]) -> list[str]:
    return [path for path, size in sizes.items() if size > MAX_FILE_BYTES]


def sizes_of(paths: Iterable[str]) -> dict[str, int]:
    """Bytes per tracked path as it stands in the working tree (a file deleted but not yet staged counts 0)."""
    return {path: (ROOT / path).lstat().st_size if (ROOT / path).is_file() else 0 for path in paths}


def test_no_generated_path_is_tracked() -> None:
    assert generated(tracked()) == []


def tracked_but_ignored(repo: Path = ROOT) -> list[str]:
    # .gitignore names what the tools generate; a tracked file it matches was committed by mistake.
    return git("ls-files", "-z", "--cached", "--ignored", "--exclude-standard", repo=repo)


def test_no_tracked_path_is_ignored() -> None:
    assert tracked_but_ignored() == []


def test_the_check_finds_a_tracked_path_the_gitignore_excludes(tmp_path: Path) -> None:
    git("init", "-q", repo=tmp_path)
    (tmp_path / "kept.py").write_text("")
    (tmp_path / "local.settings.json").write_text("{}")
    git("add", "kept.py", "local.settings.json", repo=tmp_path)
    assert tracked_but_ignored(tmp_path) == []
    (tmp_path / ".gitignore").write_text("local.settings.json\n")
    assert tracked_but_ignored(tmp_path) == ["local.settings.json"]


def test_no_tracked_file_is_over_1_mib() -> None:
    assert oversized(sizes_of(tracked())) == []


def clone_bytes(paths: Iterable[str], root: Path = ROOT) -> dict[str, int]:
    """What each tracked file costs a clone: its bytes zlib-compressed, as git stores a blob (an upper bound, since a
    pack also deltas blobs against each other)."""
    return {path: len(zlib.compress((root / path).read_bytes())) if (root / path).is_file() else 0 for path in paths}


def test_a_clone_stays_within_the_size_budget() -> None:
    paths = tracked()
    raw = sum(sizes_of(paths).values())
    cost = clone_bytes(paths)
    total = sum(cost.values())
    largest = sorted(cost, key=cost.__getitem__, reverse=True)[:5]
    print(f"tracked: {len(paths)} files, {raw:,} bytes on disk, {total:,} to clone; largest: {', '.join(largest)}")
    assert total < MAX_CLONE_BYTES, f"{total:,} bytes to clone; the largest: {largest}"


def test_the_budget_counts_what_does_not_compress(tmp_path: Path) -> None:
    (tmp_path / "text.md").write_bytes(b"riposte " * 500_000)
    (tmp_path / "noise.bin").write_bytes(random.Random(10).randbytes(MAX_CLONE_BYTES))
    cost = clone_bytes(["text.md", "noise.bin", "gone.py"], root=tmp_path)
    assert cost["text.md"] < 50_000 and cost["gone.py"] == 0
    assert sum(cost.values()) > MAX_CLONE_BYTES


def test_the_check_finds_each_kind_of_generated_path() -> None:
    paths = [
        ".venv-checkov/pyvenv.cfg",
        ".venv-checkov/lib/python3.11/site-packages/checkov/__init__.py",
        ".venv-checkov/README.txt",
        "env/bin/activate",
        "env/bin/python",
        "vendor/lib/site-packages/six.py",
        "node_modules/azurite/package.json",
        "shared/__pycache__/settings.cpython-311.pyc",
        "stray.pyc",
        ".mypy_cache/3.11/cache.db",
        ".ruff_cache/CACHEDIR.TAG",
        "tests/.pytest_cache/v/lastfailed",
        ".hypothesis/examples/x",
        # ours, and must stay unflagged
        "shared/settings.py",
        "docs/reference/service-limits.md",
        "local/cloud/tenants/demo.yaml",
        "bin/activate.md",
    ]
    assert generated(paths) == paths[:13]


def test_the_check_finds_a_file_over_1_mib() -> None:
    sizes = {"big.json": MAX_FILE_BYTES + 1, "exact.json": MAX_FILE_BYTES, "small.py": 10}
    assert oversized(sizes) == ["big.json"]
