"""Hostfile formats a user may hand us, and the file:line errors they see for bad lines."""
from __future__ import annotations

from pathlib import Path

import pytest

from hvdrun_cli.errors import HostfileError, UserInputError
from hvdrun_cli.hosts import Host, parse_hostfile

HOSTFILES = Path(__file__).resolve().parents[2] / "hostfiles"


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "hosts.txt"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a slots=2\nb slots=4\n", [("a", 2), ("b", 4)]),  # Open MPI / DeepSpeed
        ("a slots=2 max_slots=4\n", [("a", 2)]),
        ("a max_slots=4\n", [("a", 1)]),
        ("a:2\nb:3\n", [("a", 2), ("b", 3)]),  # Horovod
        ("a\nb\n", [("a", 1), ("b", 1)]),  # bare
        ("a slots=2\nb:3\nc\n", [("a", 2), ("b", 3), ("c", 1)]),  # mixed
        ("# cluster\n\n  a slots=2   \n\t b:1\t\n#c\n", [("a", 2), ("b", 1)]),
        ("a slots=2 # big box\nb:1# small\nc#bare\n", [("a", 2), ("b", 1), ("c", 1)]),
        ("a\tslots=2\r\nb\r\n", [("a", 2), ("b", 1)]),  # tabs, CRLF
        ("node-01.cluster.local:8\n10.0.0.5 slots=2\nnode_3\n",
         [("node-01.cluster.local", 8), ("10.0.0.5", 2), ("node_3", 1)]),
        ("a", [("a", 1)]),  # no trailing newline
    ],
)
def test_valid_hostfiles(tmp_path: Path, text: str, expected: list) -> None:
    hosts = parse_hostfile(write(tmp_path, text))
    assert hosts == tuple(Host(name, slots) for name, slots in expected)


@pytest.mark.parametrize(
    "text, line, fragment",
    [
        ("a slots=0\n", 1, "slots must be a positive integer (got '0')"),
        ("a\nb slots=-1\n", 2, "slots must be a positive integer (got '-1')"),
        ("a slots=two\n", 1, "(got 'two')"),
        ("a slots=1.5\n", 1, "(got '1.5')"),
        ("a slots=\n", 1, "(got '')"),
        ("a:0\n", 1, "slot count must be a positive integer (got '0')"),
        ("\n\na:x\n", 3, "slot count must be a positive integer (got 'x')"),
        ("a:\n", 1, "(got '')"),
        ("a:2:3\n", 1, "(got '2:3')"),
        ("a gpus=2\n", 1, "unknown option 'gpus' (valid: max_slots, slots)"),
        ("a slot=2\n", 1, "unknown option 'slot'; did you mean 'slots'?"),
        ("a slots=2 slots=3\n", 1, "slots given twice"),
        ("a:2 slots=2\n", 1, "slot count given twice"),
        ("a slots=4 max_slots=2\n", 1, "max_slots (2) is smaller than slots (4)"),
        ("a slots 4\n", 1, "unexpected text after the host name; expected 'host slots=N', "
                            "'host:N' or 'host' (got 'slots 4')"),
        ("hello world\n", 1, "(got 'world')"),
        ("slots=2\n", 1, "expected a host name first"),
        (":2\n", 1, "missing host name"),
        ("-np:2\n", 1, "invalid host name"),
        ("[node1]\n", 1, "invalid host name"),
        ("a;rm slots=1\n", 1, "invalid host name"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(HostfileError) as info:
        parse_hostfile(path)
    (problem,) = info.value.problems
    assert (problem.file, problem.line, problem.key) == (path, line, None)
    assert str(problem).startswith(f"{path}:{line}: ")
    assert fragment in str(problem)


def test_duplicate_host_names_both_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "a slots=2\nb\n# again\nA:1\n")
    with pytest.raises(HostfileError) as info:
        parse_hostfile(path)
    (problem,) = info.value.problems
    assert problem.line == 4
    assert str(problem).startswith(f"{path}:4: duplicate host 'A' (first listed at line 1); a host with a slot"
                                   " count is listed once")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a\na\nb\na\n", [("a", 3), ("b", 1)]),  # MPI machinefile / $PBS_NODEFILE: one line per slot
        ("n1\r\nn1\r\nn2\r\n", [("n1", 2), ("n2", 1)]),  # written on Windows
        ("A\na\n", [("A", 2)]),  # host names are case-insensitive; the first spelling is kept
        ("a max_slots=4\na max_slots=4\n", [("a", 2)]),  # max_slots alone gives no count
        ("a slots=2 max_slots=8\r\nb max_slots=2\n", [("a", 2), ("b", 1)]),
    ],
)
def test_machinefile_repeats_add_slots(tmp_path: Path, text: str, expected: list) -> None:
    assert parse_hostfile(write(tmp_path, text)) == tuple(Host(n, s) for n, s in expected)


@pytest.mark.parametrize("text, line", [
    ("a slots=2\na slots=2\n", 2),  # counted twice: adding or replacing would be a guess
    ("a\na slots=2\n", 2),
    ("a:2\na\n", 2),
    ("a\nb\na:1\n", 3),
])
def test_a_counted_host_listed_again_is_an_error(tmp_path: Path, text: str, line: int) -> None:
    with pytest.raises(HostfileError) as info:
        parse_hostfile(write(tmp_path, text))
    (problem,) = info.value.problems
    assert problem.line == line and problem.message.startswith("duplicate host 'a'")


@pytest.mark.parametrize("text, fragment", [
    ("a slots=4097\n", "slots must be at most 4096 (hvdjob's limit for one host) (got '4097')"),
    ("a:100000000000000000000\n", "slot count must be at most 4096"),
    ("a:" + "9" * 5000 + "\n", "slot count must be at most 4096"),
    ("a max_slots=" + "9" * 5000 + "\n", "max_slots must be at most 4096"),
    ("a\n" * 4097, "4097 slots for 'a' is more than hvdjob's limit of 4096"),
])
def test_counts_are_bounded(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(HostfileError) as info:
        parse_hostfile(write(tmp_path, text))
    (problem,) = info.value.problems
    assert fragment in str(problem) and problem.line is not None


def test_host_count_is_bounded(tmp_path: Path) -> None:
    path = write(tmp_path, "".join(f"n{i}\n" for i in range(65_537)))
    with pytest.raises(HostfileError, match=r":65537: 65537 hosts is more than hvdjob's limit of 65536"):
        parse_hostfile(path)


def test_huge_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "hosts.txt"
    with open(path, "w") as handle:
        for _ in range(100):
            handle.write("# " + "x" * 100_000 + "\n")
    with pytest.raises(HostfileError, match=r"has more than 8,388,608 characters"):
        parse_hostfile(str(path))


def test_problems_are_capped(tmp_path: Path) -> None:
    with pytest.raises(HostfileError) as info:
        parse_hostfile(write(tmp_path, "a:0\n" * 1000))
    assert len(info.value.problems) == 101
    assert info.value.problems[-1].message == "more problems after line 101 not shown"


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, "a slots=0\ngood:2\nb gpus=1\ngood\nc:x\n")
    with pytest.raises(HostfileError) as info:
        parse_hostfile(path)
    assert [p.line for p in info.value.problems] == [1, 3, 4, 5]
    assert len(str(info.value).splitlines()) == 4


@pytest.mark.parametrize("text", ["", "\n\n", "# only comments\n   # and more\n"])
def test_file_without_hosts(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(HostfileError) as info:
        parse_hostfile(path)
    (problem,) = info.value.problems
    assert (problem.file, problem.line) == (path, None)
    assert str(problem).startswith(f"{path}: no hosts found")


def test_missing_file(tmp_path: Path) -> None:
    path = str(tmp_path / "nope.txt")
    with pytest.raises(HostfileError) as info:
        parse_hostfile(path)
    assert str(info.value) == f"{path}: cannot read hostfile: No such file or directory"


def test_directory_and_binary_file(tmp_path: Path) -> None:
    with pytest.raises(HostfileError, match="cannot read hostfile"):
        parse_hostfile(str(tmp_path))
    binary = tmp_path / "hosts.bin"
    binary.write_bytes(b"\xff\xfe\x00a slots=2")
    with pytest.raises(HostfileError, match="not a UTF-8 text file"):
        parse_hostfile(str(binary))


def test_path_reported_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "rel.txt").write_text("a:0\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(HostfileError) as info:
        parse_hostfile("rel.txt")
    assert str(info.value).startswith("rel.txt:1: ")


def test_errors_are_user_input_errors(tmp_path: Path) -> None:
    # The CLI turns UserInputError into exit code 2 with one line per problem.
    with pytest.raises(UserInputError):
        parse_hostfile(write(tmp_path, "a:0\n"))


@pytest.mark.parametrize(
    "name, expected",
    [
        ("mpi-style.txt", [("node001", 4), ("node002", 4), ("node003", 2)]),
        ("horovod-style.txt", [("node001", 4), ("node002", 4), ("node003", 2)]),
        ("bare.txt", [("node001", 1), ("node002", 1), ("node003", 1), ("node004", 1)]),
        ("localhost.txt", [("localhost", 2)]),
    ],
)
def test_example_hostfiles_parse(name: str, expected: list) -> None:
    assert parse_hostfile(str(HOSTFILES / name)) == tuple(Host(n, s) for n, s in expected)
