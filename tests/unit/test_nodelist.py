"""Slurm hostlist expressions, with cases from Slurm's own documentation (slurm.conf(5),
scontrol(1), slurm_hostlist_create(3), Slurm::Hostlist(3pm))."""
from __future__ import annotations

import pytest

from hvdrun_cli.errors import HostfileError
from hvdrun_cli.hosts import expand_nodelist, parse_tasks_per_node
from hvdrun_cli.hosts.hostlist import MAX_HOSTS


def names(prefix: str, numbers: "range | list[int]", width: int = 0) -> list:
    return [f"{prefix}{n:0{width}d}" for n in numbers]


@pytest.mark.parametrize(
    "expr, expected",
    [
        # slurm.conf(5)
        ("linux[0-64,128]", names("linux", [*range(0, 65), 128])),
        ("lx[15,18,32-33]", ["lx15", "lx18", "lx32", "lx33"]),
        ("rack[0-63]_blade[0-41]",
         [f"rack{r}_blade{b}" for r in range(64) for b in range(42)]),
        ("lx[0-7]", names("lx", range(8))),
        # scontrol(1): "does not sort the node list or make it unique"
        ("lx[10-20]", names("lx", range(10, 21))),
        ("tux[2,1-2]", ["tux2", "tux1", "tux2"]),
        ("tux[1-3]", ["tux1", "tux2", "tux3"]),
        # slurm_hostlist_create(3), Slurm::Hostlist(3pm)
        ("linux[1-3,6]", ["linux1", "linux2", "linux3", "linux6"]),
        ("tux[0-5,12,20-25]", names("tux", [*range(6), 12, *range(20, 26)])),
        ("node1,node[2-5,12]", ["node1", "node2", "node3", "node4", "node5", "node12"]),
        ("node21 node[27-34]", ["node21", *names("node", range(27, 35))]),
        # zero padding kept; width comes from the low end of the range
        ("node[001-004,007]", names("node", [1, 2, 3, 4, 7], 3)),
        ("n[08-11]", ["n08", "n09", "n10", "n11"]),
        ("n[98-100]", ["n98", "n99", "n100"]),
        # several names and groups, dashes and dots in names
        ("node[1-2],gpu-a[01-02]", ["node1", "node2", "gpu-a01", "gpu-a02"]),
        ("login.cluster.org,c-1.x[1-2]", ["login.cluster.org", "c-1.x1", "c-1.x2"]),
        ("rack[1-2]-node[01-02]", ["rack1-node01", "rack1-node02", "rack2-node01", "rack2-node02"]),
        ("single", ["single"]),
    ],
)
def test_documented_expressions(expr: str, expected: list) -> None:
    assert expand_nodelist(expr) == expected


def test_three_groups_follow_slurms_order() -> None:
    # Slurm expands the last group fastest, then the first, then the second (hostlist.c recursion).
    assert expand_nodelist("a[1-2]-b[1-2]-c[1-2]") == [
        "a1-b1-c1", "a1-b1-c2", "a2-b1-c1", "a2-b1-c2",
        "a1-b2-c1", "a1-b2-c2", "a2-b2-c1", "a2-b2-c2",
    ]


@pytest.mark.parametrize(
    "expr, fragment",
    [
        ("node[1-2", "'[' without a matching ']'"),
        ("node1-2]", "']' without a matching '['"),
        ("node[[1-2]]", "nested '['"),
        ("node[3-1]", "reversed range '3-1'"),
        ("node[]", "bad range ''"),
        ("node[a-b]", "bad range 'a-b'"),
        ("node[1-]", "bad range '1-'"),
        ("node[-1]", "bad range '-1'"),
        ("node[1 ,2]", "bad range '1 '"),
        ("node[1-2]x", "text after the last ']'"),
        ("no$de", "invalid characters"),
        ("", "empty host list"),
        (" , ", "empty host list"),
        ("n[0-99999999]", f"more than {MAX_HOSTS} hosts"),
    ],
)
def test_bad_expressions(expr: str, fragment: str) -> None:
    with pytest.raises(HostfileError) as info:
        expand_nodelist(expr, origin="SLURM_JOB_NODELIST")
    (problem,) = info.value.problems
    assert problem.key == "SLURM_JOB_NODELIST"
    assert problem.got == expr
    assert fragment in str(problem)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2(x3),1", [2, 2, 2, 1]),
        ("4", [4]),
        ("1,2,3", [1, 2, 3]),
        ("8(x2)", [8, 8]),
        ("2(x1)", [2]),
    ],
)
def test_tasks_per_node(text: str, expected: list) -> None:
    assert parse_tasks_per_node(text) == expected


@pytest.mark.parametrize("text", ["", "2(x)", "x", "2(3)", "0", "2(x0)", "-1", "2,,1"])
def test_bad_tasks_per_node(text: str) -> None:
    with pytest.raises(HostfileError) as info:
        parse_tasks_per_node(text, origin="SLURM_TASKS_PER_NODE")
    assert str(info.value).startswith("SLURM_TASKS_PER_NODE: ")
