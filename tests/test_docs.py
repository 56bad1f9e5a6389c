"""Every Python block in the README and docs/ runs: a page's blocks in order, in one fresh
interpreter, from an empty folder, so a name used before it is defined (or never) fails here.

The placeholders the pages name are filled in first: ``path/to/folder`` is a small class-folder
image set and ``path/to/resnets`` this checkout."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import make_image_folder

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def python_blocks(page: Path) -> list[str]:
    """The page's ```python blocks, in order."""
    return BLOCK.findall(page.read_text())


def run_blocks(blocks: list[str], folder: Path, label: str) -> subprocess.CompletedProcess:
    """The blocks as one script, run in ``folder`` by a fresh interpreter; each block keeps a
    marker line so a failure names the block it came from."""
    parts = [f"# --- {label}, block {i + 1} ---\n{block}" for i, block in enumerate(blocks)]
    script = folder / "page_blocks.py"
    script.write_text("\n".join(parts))
    return subprocess.run(
        [sys.executable, str(script)], cwd=folder, capture_output=True, text=True, timeout=300
    )


def fill_placeholders(folder: Path) -> None:
    make_image_folder(folder / "path" / "to" / "folder", per_class=8, size=32)
    (folder / "path" / "to" / "resnets").symlink_to(ROOT, target_is_directory=True)


PAGES_WITH_CODE = [p for p in PAGES if python_blocks(p)]


def test_the_pages_have_python_blocks_to_run():
    """The README's Python is on docs/python.md; the detection page has its own."""
    names = {p.relative_to(ROOT).as_posix() for p in PAGES_WITH_CODE}
    assert {"docs/python.md", "docs/detection.md"} <= names


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_python_block_on_the_page_runs(page, tmp_path):
    fill_placeholders(tmp_path)
    label = page.relative_to(ROOT).as_posix()
    done = run_blocks(python_blocks(page), tmp_path, label)
    assert done.returncode == 0, f"{label}: a Python block failed\n{done.stderr[-3000:]}"


def test_a_block_with_an_undefined_name_fails(tmp_path):
    """The negative control: the runner reports an undefined name, naming its block."""
    page = tmp_path / "page.md"
    page.write_text("```python\nx = 1\n```\n\ntext\n\n```python\nprint(config)\n```\n")
    done = run_blocks(python_blocks(page), tmp_path, "page.md")
    assert done.returncode != 0
    assert "NameError: name 'config' is not defined" in done.stderr
    assert "page.md, block 2" in (tmp_path / "page_blocks.py").read_text()
