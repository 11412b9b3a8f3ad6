"""The README and local.settings.sample.json stay true to the settings the code reads."""
import json
import re

from containment.core.settings import SETTINGS
from localazure.shared import REPO_ROOT


def test_every_setting_is_in_the_readme_table_with_its_default():
    readme = (REPO_ROOT / "README.md").read_text()
    rows = dict(re.findall(r"^\| `([A-Z_]+)` \| ([^|]+) \|", readme, re.MULTILINE))
    for setting in SETTINGS:
        documented = rows.get(setting.name)
        assert documented is not None, f"{setting.name} is missing from the README settings table"
        expected = f"`{setting.default}`" if setting.default else "(empty)"
        assert documented.strip() == expected, (setting.name, documented)
    assert set(rows) == {s.name for s in SETTINGS}, "the README documents a setting the code does not read"


def test_every_setting_is_in_the_sample_with_its_default():
    values = json.loads((REPO_ROOT / "local.settings.sample.json").read_text())["Values"]
    for setting in SETTINGS:
        assert values.get(setting.name) == setting.default, setting.name
    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python"


def test_ci_runs_the_readme_test_command():
    readme = (REPO_ROOT / "README.md").read_text()
    assert "make test" in readme
    assert "make test" in (REPO_ROOT / ".ci" / "run").read_text()
