"""The README's generated data-layout section matches the readers' docstrings, and names the two commands first."""
from __future__ import annotations

import re

from muva_lib.data.readers import layout_markdown
from muva_lib.paths import repo_root

README = (repo_root() / "README.md").read_text()


def test_data_layout_section_is_in_sync_with_the_readers():
    block = README.split("<!-- data-layout:start")[1].split("-->", 1)[1].split("<!-- data-layout:end -->")[0]
    for section in layout_markdown().split("\n### ")[1:]:
        assert section.strip() in block, f"README data layout is stale for: {section.splitlines()[0]}"


def test_first_two_commands_are_demo_and_test():
    commands = re.findall(r"^(make \w+|python -m \S+)", README, re.M)
    assert commands[:2] == ["make demo", "make test"]


def test_every_figure_the_readme_shows_exists():
    for path in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README):
        assert (repo_root() / path).is_file(), f"README shows a missing figure: {path}"
