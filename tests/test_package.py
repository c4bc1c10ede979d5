"""The ROS package wiring: package.xml, setup.py entry points, installed data files."""

from __future__ import annotations

import ast
import re
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _setup_dict(name: str) -> dict[str, str]:
    tree = ast.parse((REPO / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == name:
            return ast.literal_eval(node.value)
    raise AssertionError(f"setup.py has no {name}")


def test_package_xml_is_format_3_ament_python():
    root = ET.parse(REPO / "package.xml").getroot()
    assert root.get("format") == "3"
    assert root.findtext("name") == "motus_policy"
    assert root.find("export/build_type").text == "ament_python"
    deps = {e.text for e in root.findall("exec_depend")}
    assert {"rclpy", "sensor_msgs", "trajectory_msgs", "std_srvs"} <= deps
    assert (REPO / "resource" / "motus_policy").is_file()


def test_every_entry_point_has_a_main():
    for name, target in {**_setup_dict("NODES"), **_setup_dict("CLIS")}.items():
        module, func = target.split(":")
        path = REPO / (module.replace(".", "/") + ".py")
        assert path.is_file(), f"entry point {name}: {path} missing"
        tree = ast.parse(path.read_text())
        funcs = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        imported = {a.asname or a.name for n in tree.body if isinstance(n, ast.ImportFrom)
                    for a in n.names}  # fmt: skip
        assert func in funcs | imported, f"entry point {name}: {module} has no {func}()"


def test_ros2_ws_src_points_at_the_repository_root():
    link = REPO / "ros2_ws" / "src" / "motus_policy"
    assert link.is_symlink() and link.resolve() == REPO.resolve()


def test_setup_cfg_installs_scripts_where_ros2_run_looks():
    text = (REPO / "setup.cfg").read_text()
    assert "install_scripts=$base/lib/motus_policy" in text


def test_test_module_basenames_are_unique():
    """tests/ has no __init__.py files (rootdir import mode): equal basenames would collide."""
    support = REPO / "tests" / "support"  # packages installed for tests, not collected
    names = [
        p.name
        for p in (REPO / "tests").rglob("*.py")
        if p.name != "conftest.py" and support not in p.parents
    ]
    dupes = sorted({n for n in names if names.count(n) > 1})
    assert not dupes, f"duplicate test module names: {dupes}"


def test_code_cites_only_documents_that_ship():
    """Comments and docs cite files of this repository (docs/*.md), the paper or upstream code."""
    outside = re.compile(
        r"reference §|ref §|keys §|(?<!docs/)platform\.md|anchors\.md|house-style|DESIGN\.md"
        r"|motus-reference|motus-checkpoint-keys"
    )
    cited = re.compile(r"docs/([\w-]+\.md)")
    roots = ("motus_policy", "motus_teleop", "motus_recorder", "benchmarks", "tests", "config",
             "launch", "scripts", "docs")  # fmt: skip
    paths = [p for r in roots for p in (REPO / r).rglob("*")]
    paths += [REPO / n for n in ("README.md", "Makefile", "requirements.txt", "setup.py")]
    bad, missing = [], []
    for path in sorted(paths):
        rel = path.relative_to(REPO).as_posix()
        if path.suffix not in {".py", ".md", ".yaml", ".txt", ".sh", ""} or not path.is_file():
            continue
        if rel == "tests/test_package.py":
            continue
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            hit = outside.search(line)
            # inside docs/, "platform.md" is a relative link to our own docs/platform.md
            own_link = hit is not None and hit.group() == "platform.md" and rel.startswith("docs/")
            if hit and not own_link:
                bad.append(f"{rel}:{n}: {line.strip()}")
            missing += [f"{rel}:{n}: docs/{m}" for m in cited.findall(line)
                        if not (REPO / "docs" / m).is_file()]  # fmt: skip
    assert not bad, "citations of documents that are not in the repository:\n" + "\n".join(bad)
    assert not missing, "citations of docs/ files that do not exist:\n" + "\n".join(missing)


def _ros_packages_imported() -> set[str]:
    """Top-level ROS 2 packages the code imports (rclpy, ament_index_python, *_msgs, ...)."""
    ros = {"rclpy", "ament_index_python", "launch", "launch_ros", "rcl_interfaces"}
    found: set[str] = set()
    for pkg in ("motus_policy", "motus_recorder", "motus_teleop"):
        for path in (REPO / pkg).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                for name in names:
                    top = name.split(".")[0]
                    if top in ros or top.endswith(("_msgs", "_srvs", "_interfaces")):
                        found.add(top)
    return found


def test_package_xml_declares_every_ros_package_the_code_imports():
    root = ET.parse(REPO / "package.xml").getroot()
    deps = {e.text for e in root.findall("exec_depend")}
    missing = sorted(_ros_packages_imported() - deps)
    assert not missing, f"package.xml lacks <exec_depend> for {missing}"


def test_readme_commands_exist_after_setup():
    """Every `motus-*` CLI and `.venv/bin/<tool>` the README names is installed by make setup."""
    import sys

    text = (REPO / "README.md").read_text()
    clis = set(_setup_dict("CLIS"))
    named = set(re.findall(r"(?<![\w/.-])(motus-[a-z0-9-]+)(?![\w.-])", text))
    assert named, "the README names no motus-* command"
    assert named <= clis, f"README names commands setup.py does not install: {named - clis}"
    bindir = Path(sys.executable).parent
    if (REPO / ".venv").resolve() not in bindir.resolve().parents:
        return  # not running from the project's venv: only the entry-point check applies
    tools = set(re.findall(r"\.venv/bin/([A-Za-z0-9_.-]+)", text)) | named
    absent = sorted(t for t in tools if not (bindir / t).exists())
    assert not absent, f"README commands missing from {bindir}: {absent} (run make setup)"
