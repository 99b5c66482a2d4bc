"""docs/api.md's examples work: every ``sh`` block of the page is run, in order, as one script with the real
``curl`` against a live ``yinsi serve --demo``, and each command marked ``# → NNN`` must answer NNN. Every app
operation of ``/openapi.json`` has an example there."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.api_world import ROOT, LiveServer, serve_env
from tests.test_api_matrix import OPERATIONS
from yinsi.api.deps import AUTH_EXTENSION

DOC = ROOT / "docs" / "api.md"
MARK = re.compile(r"^# → (\d{3})$")


def commands(text: str) -> tuple[str, list[int]]:
    """The script (all ``sh`` blocks; each marked curl prints its status after its body) and the statuses
    expected, in order."""
    script, expected = ["set -u"], []
    for block in re.findall(r"^```sh\n(.*?)^```", text, flags=re.S | re.M):
        lines = block.splitlines()
        i, want = 0, None
        while i < len(lines):
            line = lines[i]
            command = [line]
            while (command[-1].endswith("\\") or "\n".join(command).count("'") % 2) and i + 1 < len(lines):
                i += 1
                command.append(lines[i])
            i += 1
            full = "\n".join(command)
            if (m := MARK.match(full.strip())) is not None:
                want = int(m.group(1))
                continue
            if want is not None:
                assert full.lstrip().startswith("curl "), f"a status mark must precede a curl command: {full}"
                full += " -w '\\n__STATUS__%{http_code}\\n'"
                expected.append(want)
                want = None
            script.append(full)
    return "\n".join(script), expected


def test_every_app_operation_has_a_curl_example() -> None:
    text = DOC.read_text(encoding="utf-8")
    script, _ = commands(text)
    for method, path, op in OPERATIONS:
        if str(op.get(AUTH_EXTENSION, "")).startswith("app:"):
            pattern = re.escape(path).replace(r"\{subject\}", "[^/\"]+")
            assert re.search(r"\$YINSI" + pattern + "[\"?]", script), f"docs/api.md has no curl example of {method} {path}"
            if method == "POST":
                assert re.search(r"-X POST \"\$YINSI" + pattern + '"', script), f"no POST example of {path}"


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl 不可用")
def test_the_curl_examples_answer_as_documented(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    server = LiveServer(["--demo", "--data-dir", str(data), "--policies", str(ROOT / "policies")], serve_env(), tmp_path,
                        tmp_path / "logs")
    try:
        server.wait_ready()
        info = (data / "demo-login.txt").read_text(encoding="utf-8")
        dpo = re.search(r"账号 dpo，口令 (\S+)，TOTP 密钥 (\w+)", info)
        assert dpo is not None
        work = tmp_path / "work"
        work.mkdir()
        (work / ".venv").symlink_to(ROOT / ".venv")  # the page calls .venv/bin/python, as a user in the checkout
        env = {**os.environ, "YINSI": server.url, "KEY": re.search(r"yk_\S+", info).group(0),  # type: ignore[union-attr]
               "PHONE": re.search(r"演示手机号 (\d+)", info).group(1),  # type: ignore[union-attr]
               "OUTBOX": str(data / "sms-outbox" / "sms-outbox.jsonl"),
               "DPO_PASSWORD": dpo.group(1), "DPO_TOTP_SECRET": dpo.group(2)}
        script, expected = commands(DOC.read_text(encoding="utf-8"))
        assert len(expected) >= 20
        done = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=300)
        got = [int(s) for s in re.findall(r"__STATUS__(\d{3})", done.stdout)]
        assert got == expected, f"statuses {got}, documented {expected}\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}"
    finally:
        server.stop()
