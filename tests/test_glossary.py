"""The glossary says where each word lives in the code: every module or package its
"in the code" column names is there (inside newsletter/, or from the project's root)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATH = re.compile(r"`([\w/]+(?:\.py|/))`")


def test_every_path_the_glossary_names_exists():
    rows = (ROOT / "docs" / "glossary.md").read_text().splitlines()
    in_the_code = [row.rstrip(" |").rsplit("|", 1)[-1] for row in rows if row.startswith("| **")]
    named = [path for cell in in_the_code for path in PATH.findall(cell)]
    assert len(named) > 20
    missing = [
        path
        for path in named
        if not (ROOT / "newsletter" / path).exists() and not (ROOT / path).exists()
    ]
    assert missing == []
