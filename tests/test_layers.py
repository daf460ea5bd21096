"""The folders name the domains and imports run one way: web, then the domain packages,
then sending, mail and core. `lint-imports` checks the contracts in pyproject.toml
([tool.importlinter]); an import that runs back up, or a cycle, fails here. Every layer
may read any package's models, so a models module must stand on nothing but the data."""

import subprocess
import sys
from pathlib import Path

import grimp

from newsletter import MODEL_MODULES

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


# What a models module may import of the project: the database, the sealing of secrets,
# and other models modules (to name a column's type or default).
DATA_MODULES = {"newsletter.extensions", "newsletter.secret_box", *MODEL_MODULES}


def test_models_modules_import_only_the_data_and_every_one_is_loaded():
    graph = grimp.build_graph("newsletter", exclude_type_checking_imports=True)
    found = {name for name in graph.modules if name.endswith(".models")}
    assert found == set(MODEL_MODULES)
    for module in MODEL_MODULES:
        project_imports = graph.find_modules_directly_imported_by(module)
        assert project_imports <= DATA_MODULES, (module, project_imports - DATA_MODULES)
