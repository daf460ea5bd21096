"""The folders name the domains and imports run one way: web, then the domain packages,
then sending, mail, core and the models. `lint-imports` checks the contracts in
pyproject.toml ([tool.importlinter]); an import that runs back up, or a cycle, fails here."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def test_imports_run_down_the_layers_and_never_in_a_circle():
    checked = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "0 broken" in checked.stdout
