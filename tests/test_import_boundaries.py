"""The architecture, checked by parsing every module (docs/architecture.md).

ROS at the edge (only ``*/ros/`` imports rclpy or message types), torch inside the model, and an
import graph that runs one way: every folder (or loose module) sits in a declared layer, no arrow
points to a higher layer, no module takes part in an import circle (lazy imports inside functions
included), and ``motus_recorder``, the foundation package, imports nothing from the other two.
Run as a script to print the graph's figures: ``python tests/test_import_boundaries.py``.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("motus_policy", "motus_teleop", "motus_recorder")
GRAPH_PACKAGES = (*PACKAGES, "benchmarks")
"""Non-test code whose import graph is checked (benchmarks sit on top of everything)."""
ROS_ROOTS = {
    "rclpy",
    "launch",
    "launch_ros",
    "rosbag2_py",
    "message_filters",
    "cv_bridge",
    "rosidl_runtime_py",
    "builtin_interfaces",
}
TORCH_ROOTS = {"torch", "torchvision", "diffusers", "transformers", "accelerate", "safetensors"}
# Where torch may be imported, and why:
TORCH_ALLOWED = (
    "motus_policy/model/",  # the network, encoders, sampler, checkpoint loading
    "motus_policy/training/",  # stage-3 fine-tuning
    "motus_policy/latent_action/",  # the latent-action VAE and its trainer (stage 2)
    "motus_policy/backends/motus.py",  # the in-process Motus PolicyBackend (numpy in, numpy out)
    "motus_recorder/writers/torch_io.py",  # .pt files of the Motus format need torch.save/load
)


def _roots(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module.split(".")[0]


def _modules():
    for pkg in PACKAGES:
        for path in sorted((REPO / pkg).rglob("*.py")):
            yield path.relative_to(REPO).as_posix(), ast.parse(path.read_text(), str(path))


def test_ros_imports_only_under_ros_subpackages():
    bad = []
    for rel, tree in _modules():
        if "/ros/" in rel:
            continue
        for line, root in _roots(tree):
            if root in ROS_ROOTS or root.endswith("_msgs") or root.endswith("_srvs"):
                bad.append(f"{rel}:{line} imports {root}")
    assert not bad, "ROS imports outside */ros/:\n" + "\n".join(bad)


def test_torch_imports_only_in_the_model():
    bad = []
    for rel, tree in _modules():
        if rel.startswith(TORCH_ALLOWED):
            continue
        for line, root in _roots(tree):
            if root in TORCH_ROOTS:
                bad.append(f"{rel}:{line} imports {root}")
    assert not bad, "torch-stack imports outside the model:\n" + "\n".join(bad)


def test_boundary_check_sees_violations(tmp_path):
    """The checker itself flags a message import and a torch import (guards against a no-op)."""
    tree = ast.parse("import rclpy\nfrom sensor_msgs.msg import Image\nimport torch.nn as nn\n")
    roots = [r for _, r in _roots(tree)]
    assert roots == ["rclpy", "sensor_msgs", "torch"]


# ---------------------------------------------------------------------------------------------
# The import graph: layers, no upward arrows, no circles.

LAYERS: tuple[tuple[str, ...], ...] = (
    ("motus_recorder.schema", "motus_recorder.share"),
    (
        "motus_recorder.profile",
        "motus_recorder.composite",
        "motus_recorder.stats",
        "motus_recorder.images",
    ),
    ("motus_recorder.sync", "motus_recorder.episode"),
    ("motus_recorder.writers",),
    ("motus_recorder.dataset", "motus_recorder.recorder"),
    ("motus_recorder.cli", "motus_recorder.ros"),
    ("motus_policy.types",),
    ("motus_policy.model", "motus_policy.robots", "motus_policy.latent_action"),
    ("motus_policy.backends", "motus_policy.training"),
    ("motus_policy.runtime",),
    ("motus_policy.evaluation", "motus_teleop.mapping", "motus_teleop.operator"),
    ("motus_teleop.expert",),
    ("motus_policy.bringup",),
    ("motus_policy.ros", "motus_teleop.ros"),
    ("motus_policy.cli", "motus_teleop.record_demos"),
    ("benchmarks",),
)
"""Graph nodes (a package's folders and loose modules) from the bottom layer to the top. An
arrow may point within a layer or down, never up. A new folder must be placed here."""


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _module_graph(root: Path = REPO) -> dict[str, set[str]]:
    """Module -> the project modules it imports (anywhere in the file, lazy imports included)."""
    files = {}
    for pkg in GRAPH_PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            files[_module_name(path, root)] = path
    known = set(files)
    graph: dict[str, set[str]] = {}
    for mod, path in files.items():
        is_pkg = path.name == "__init__.py"
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    parts = parts[: len(parts) - node.level + 1]
                    base = ".".join(parts + ([node.module] if node.module else []))
                # `from pkg import name`: name is a module when one exists by that name
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                         for a in node.names]  # fmt: skip
            for name in names:
                while name and name not in known:  # `import a.b.c` -> the deepest known module
                    name = name.rpartition(".")[0]
                if name and name != mod:
                    targets.add(name)
        graph[mod] = targets
    return graph


def _node(module: str) -> str:
    """Graph node of a module: its package's sub-folder or loose module (``motus_policy.ros``)."""
    parts = module.split(".")
    return parts[0] if parts[0] == "benchmarks" else ".".join(parts[:2])


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan), i.e. import circles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _node_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    nodes: dict[str, set[str]] = {}
    for src, dsts in graph.items():
        s = _node(src)
        nodes.setdefault(s, set()).update(_node(d) for d in dsts if _node(d) != s)
    return nodes


def _layer_of() -> dict[str, int]:
    return {node: i for i, layer in enumerate(LAYERS) for node in layer}


def _package_roots_only(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Drop the (empty) package ``__init__`` modules as graph nodes of their own."""
    roots = {m for m in graph if "." not in m}
    return {m: {d for d in ds if d not in roots} for m, ds in graph.items() if m not in roots}


def test_every_folder_sits_in_a_declared_layer():
    graph = _node_graph(_package_roots_only(_module_graph()))
    nodes = set(graph) | {d for ds in graph.values() for d in ds}
    unplaced = sorted(nodes - set(_layer_of()))
    assert not unplaced, f"place these in LAYERS: {unplaced}"


def _upward(nodes: dict[str, set[str]]) -> list[str]:
    layer = _layer_of()
    return [
        f"{src} (layer {layer[src]}) -> {dst} (layer {layer[dst]})"
        for src, dsts in sorted(nodes.items())
        for dst in sorted(dsts)
        if src in layer and dst in layer and layer[dst] > layer[src]
    ]


def test_no_import_arrow_points_up():
    up = _upward(_node_graph(_package_roots_only(_module_graph())))
    assert not up, "imports that point up the layers:\n" + "\n".join(up)


def test_no_import_circles_between_modules_or_folders():
    graph = _package_roots_only(_module_graph())
    circles = _circles(graph) + _circles(_node_graph(graph))
    assert not circles, f"import circles: {circles}"


def test_foundation_package_imports_neither_of_the_others():
    bad = [
        f"{src} -> {dst}"
        for src, dsts in sorted(_module_graph().items())
        for dst in sorted(dsts)
        if src.startswith("motus_recorder") and not dst.startswith("motus_recorder")
    ] + [
        f"{src} -> {dst}"
        for src, dsts in sorted(_module_graph().items())
        for dst in sorted(dsts)
        if src.startswith("motus_policy") and dst.startswith("motus_teleop")
    ]
    assert not bad, "package arrows against the layering:\n" + "\n".join(bad)


def test_graph_checks_see_violations(tmp_path):
    """A planted circle, lazy import included, and an upward arrow are both found."""
    for pkg in GRAPH_PACKAGES:
        (tmp_path / pkg).mkdir()
    (tmp_path / "motus_recorder" / "schema.py").write_text(
        "def f():\n    from motus_recorder import profile\n"
    )
    (tmp_path / "motus_recorder" / "profile.py").write_text("import motus_recorder.schema\n")
    (tmp_path / "motus_policy" / "types.py").write_text("from motus_policy.cli import demo\n")
    (tmp_path / "motus_policy" / "cli").mkdir()
    (tmp_path / "motus_policy" / "cli" / "demo.py").write_text("")
    graph = _module_graph(tmp_path)
    assert _circles(graph) == [["motus_recorder.profile", "motus_recorder.schema"]]
    assert _upward(_node_graph(graph)) == [
        "motus_policy.types (layer 6) -> motus_policy.cli (layer 14)",
        "motus_recorder.schema (layer 0) -> motus_recorder.profile (layer 1)",
    ]


def _figures() -> str:
    graph = _package_roots_only(_module_graph())
    nodes = _node_graph(graph)
    n_nodes = len(set(nodes) | {d for ds in nodes.values() for d in ds})
    arrows = sum(len(ds) for ds in nodes.values())
    up = len(_upward(nodes))
    return (
        f"modules {len(graph)}, graph nodes {n_nodes} in {len(LAYERS)} layers, arrows {arrows}, "
        f"upward arrows {up}, module circles {len(_circles(graph))}, "
        f"folder circles {len(_circles(nodes))}"
    )


if __name__ == "__main__":
    print(_figures())
