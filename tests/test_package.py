"""The ROS package wiring: package.xml, setup.py entry points, installed data files."""

from __future__ import annotations

import ast
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
    names = [p.name for p in (REPO / "tests").rglob("*.py") if p.name != "conftest.py"]
    dupes = sorted({n for n in names if names.count(n) > 1})
    assert not dupes, f"duplicate test module names: {dupes}"
