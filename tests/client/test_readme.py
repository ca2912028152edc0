"""The README's library example is real code: extracted from README.md and run as a script
(it starts its own devnet)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("<!-- library-example:start -->", 1)[1].split(
        "<!-- library-example:end -->", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) == 1, "the library section holds one python example"
    return blocks[0]


def test_readme__library_example__runs_against_a_fresh_devnet():
    code = readme_example()
    for step in ("Devnet()", "stake", "open_job", "sign_vote", "settle(", "withdraw("):
        assert step in code
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    printed = done.stdout.splitlines()
    assert [line.split("(")[0] for line in printed] == ["JobSettled", "Feedback"]
    assert "score_bps=9000" in printed[0]
