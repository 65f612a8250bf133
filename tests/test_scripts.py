"""scripts/run and scripts/test: they parse, they set up ./.venv the same way (with python3-venv
from apt-get when Debian lacks it, or a clear message), and scripts/run is `deskbell run`."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "scripts"
BASH = shutil.which("bash") or "/bin/bash"


def _venv_installed() -> bool:
    """True when scripts/run would start at once, without installing anything first."""
    venv = REPO / ".venv"
    if not (venv / "bin" / "deskbell").exists():
        return False
    built = (REPO / "pyproject.toml").stat().st_mtime
    return any(stamp.stat().st_mtime >= built for stamp in venv.glob(".deskbell-installed*"))


needs_venv = pytest.mark.skipif(not _venv_installed(), reason="./.venv is not set up (run ./scripts/test)")


@pytest.mark.parametrize("name", ["run", "test", "_venv.sh"])
def test_scripts_parse(name: str) -> None:
    result = subprocess.run([BASH, "-n", str(SCRIPTS / name)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", ["run", "test"])
def test_scripts_are_executable(name: str) -> None:
    assert os.access(SCRIPTS / name, os.X_OK)


@needs_venv
def test_run_help_is_deskbell_run_help(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(SCRIPTS / "run"), "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: deskbell run")
    assert "--config FILE" in result.stdout


@needs_venv
def test_run_passes_options_and_keeps_the_callers_directory(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text("smtp_in:\n  listen: nowhere\n", encoding="utf-8")
    result = subprocess.run(
        [str(SCRIPTS / "run"), "--config", "mine.yaml"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    assert "smtp_in.listen: expected host:port" in result.stderr  # mine.yaml was found and read


# --- The venv set-up itself, against stand-ins for python3, apt-get and id in a copy of the
# project, so nothing is installed and no network is needed.

FAKE_PYTHON3 = """\
#!/usr/bin/env bash
# python3 without ensurepip until apt-get has "installed" python3-venv.
case "$*" in
  -V) echo "Python 3.11.2" ;;
  "-c "*) exit 0 ;;
  "-m venv "*)
    mkdir -p "$3/bin"
    if [ ! -f "$STATE/venv-installed" ]; then
      echo "The virtual environment was not created successfully because ensurepip is not"
      echo "available.  On Debian/Ubuntu systems, you need to install the python3-venv"
      echo "package using the following command."
      echo
      echo "    apt install python3.11-venv"
      exit 1
    fi
    cp "$STATE/venv-python" "$3/bin/python" ;;
  *) exit 99 ;;
esac
"""

FAKE_VENV_PYTHON = """\
#!/usr/bin/env bash
# The venv's python: pip works, and installing the project makes a deskbell entry point.
case "$*" in
  "-c "*|"-m pip --version") exit 0 ;;
  "-m pip install "*)
    echo "python $*" >>"$STATE/log"
    printf '#!/usr/bin/env bash\\necho "deskbell $*"\\n' >"$(dirname "$0")/deskbell"
    chmod +x "$(dirname "$0")/deskbell" ;;
  *) exit 99 ;;
esac
"""

FAKE_APT_GET = """\
#!/usr/bin/env bash
echo "apt-get $*" >>"$STATE/log"
if [ "$1" = install ]; then touch "$STATE/venv-installed"; fi
"""

TOOLS = ("bash", "env", "dirname", "grep", "sed", "head", "rm", "mkdir", "cp", "touch", "chmod", "flock")


@dataclass
class FakeProject:
    root: Path
    state: Path
    bin_dir: Path

    def run(self, uid: int, *args: str) -> subprocess.CompletedProcess[str]:
        env = {"PATH": str(self.bin_dir), "STATE": str(self.state), "FAKE_UID": str(uid)}
        return subprocess.run(
            [str(self.root / "scripts" / "run"), *args], env=env, capture_output=True, text=True, timeout=30
        )

    @property
    def log(self) -> str:
        path = self.state / "log"
        return path.read_text() if path.exists() else ""


def _write_executable(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    path.chmod(0o755)


@pytest.fixture
def fake(tmp_path: Path) -> FakeProject:
    fake = FakeProject(tmp_path / "project", tmp_path / "state", tmp_path / "bin")
    (fake.root / "scripts").mkdir(parents=True)
    for name in ("run", "_venv.sh"):
        shutil.copy2(SCRIPTS / name, fake.root / "scripts" / name)
    (fake.root / "pyproject.toml").write_text("[project]\nname = 'x'\n", encoding="utf-8")
    fake.state.mkdir()
    fake.bin_dir.mkdir()
    for tool in TOOLS:  # the only commands on PATH, so no real python3, apt-get or sudo
        if found := shutil.which(tool):
            (fake.bin_dir / tool).symlink_to(found)
    _write_executable(fake.bin_dir / "python3", FAKE_PYTHON3)
    _write_executable(fake.bin_dir / "apt-get", FAKE_APT_GET)
    _write_executable(fake.bin_dir / "id", '#!/usr/bin/env bash\necho "$FAKE_UID"\n')
    _write_executable(fake.state / "venv-python", FAKE_VENV_PYTHON)
    return fake


def test_without_venv_module_or_root_it_says_what_to_install(fake: FakeProject) -> None:
    result = fake.run(1000, "--help")
    assert result.returncode == 1
    assert "Install it, then run this again:  sudo apt-get install python3-venv" in result.stderr
    assert not (fake.root / ".venv").exists()
    assert fake.log == ""


def test_as_root_it_installs_python3_venv_then_the_project_once(fake: FakeProject) -> None:
    first = fake.run(0, "--config", "x.yaml")
    assert first.returncode == 0, first.stderr
    assert first.stdout == "deskbell run --config x.yaml\n"
    assert "==> installing python3-venv with apt-get" in first.stderr
    assert fake.log.splitlines() == [
        "apt-get update -qq",
        "apt-get install -y -qq python3-venv",
        "python -m pip install --quiet --disable-pip-version-check -e .",
    ]

    log = fake.log
    second = fake.run(0, "--help")
    assert second.returncode == 0, second.stderr
    assert second.stdout == "deskbell run --help\n"
    assert second.stderr == "==> starting deskbell run\n"  # nothing to create or install
    assert fake.log == log
