"""The README's quick start runs as written (on a throwaway schema instead of DripDrop())."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_quick_start_block_runs(dd):
    text = README.read_text()
    section = text[text.index("## Quick start") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    code = code.replace("from dripdrop import DripDrop\n", "").replace("DripDrop()", "_dd")
    namespace = {"_dd": dd}
    exec(compile(code, str(README), "exec"), namespace)
    enrollment = dd.get_enrollment("saas_onboarding", "User", 42)
    assert enrollment is not None and enrollment.data["name"] == "Ada"
    assert [s.key for s in dd.list_steps(enrollment.sequence_version_id)] == [
        "welcome_email",
        "setup_reminder",
        "weekly_digest",
    ]
