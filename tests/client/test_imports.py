"""The client installs and runs without the server: no libvips, FastAPI, NumPy, boto3, uvicorn,
Dramatiq; the base install's dependencies are the client's alone."""

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CLIENT = REPO / "services" / "client"
SERVER_ONLY = ["pyvips", "fastapi", "numpy", "boto3", "botocore", "uvicorn", "dramatiq",
               "redis", "pydantic", "pydantic_settings", "starlette", "scipy", "tifffile",
               "h5py", "openslide", "prometheus_client"]  # fmt: skip
CLIENT_DEPENDENCIES = {"httpx", "click", "rich"}

BLOCKED_RUN = f"""
import sys
for name in {SERVER_ONLY!r}:
    sys.modules[name] = None  # any import of it now raises ImportError
from pathlib import Path
from plexzoom.client import Client
from plexzoom.client.cli import main
from tests.client.fake_server import FakeServer

path = Path(sys.argv[1])
path.write_bytes(b"x" * (6 * 1024 * 1024))
with Client("http://api.test", transport=FakeServer().transport(), state_dir=path.parent) as c:
    result = c.upload(path)
assert (result.parts, result.image.status) == (2, "queued"), result
main(["--url", "http://127.0.0.1:1", "ls"])
"""


def test_the_client_and_the_command_run_with_the_server_packages_blocked(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", BLOCKED_RUN, str(tmp_path / "file.bin")],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr  # uploaded, then `ls` found no server: exit 3
    assert "is unreachable" in done.stderr and "Traceback" not in done.stderr


def test_the_block_itself_works() -> None:
    """The check above can fail: with the block, a server module does not import."""
    script = "import sys\nsys.modules['numpy'] = None\nimport plexzoom.core.pyramid"
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True)
    assert done.returncode != 0 and b"import of numpy halted" in done.stderr


def test_the_client_imports_only_the_standard_library_httpx_click_and_rich() -> None:
    allowed = set(sys.stdlib_module_names) | CLIENT_DEPENDENCIES
    for source in CLIENT.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                inside = name == "plexzoom.client" or name.startswith("plexzoom.client.")
                assert top in allowed or inside, f"{source.name} imports {name}"


def test_the_base_install_is_the_client_and_the_server_is_an_extra() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = {
        req.split("[")[0].split(">")[0].split("=")[0].strip() for req in project["dependencies"]
    }
    assert names == CLIENT_DEPENDENCIES
    server = " ".join(project["optional-dependencies"]["server"])
    assert all(pkg in server for pkg in ("pyvips", "fastapi", "boto3", "dramatiq", "uvicorn"))
    assert "plexzoom[server]" in project["optional-dependencies"]["dev"]
    assert project["scripts"]["plexzoom"] == "plexzoom.client.cli:main"
    packages = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "plexzoom.client" in packages["packages"]
    assert "pip install --no-cache-dir '.[server]'" in (REPO / "deploy" / "Dockerfile").read_text()


def test_the_package_root_stays_import_light() -> None:
    script = "import sys, plexzoom.client; print(sorted(m for m in sys.modules if m in %r))"
    done = subprocess.run(
        [sys.executable, "-c", script % SERVER_ONLY], cwd=REPO, capture_output=True, text=True
    )
    assert done.stdout.strip() == "[]", done.stderr
