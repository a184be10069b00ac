"""Reading YAML with line numbers: what the user sees when a file is malformed or surprising."""
from __future__ import annotations

import pytest

from hvdrun_cli.errors import SpecError
from hvdrun_cli.spec.yaml_source import locate, parse_yaml, read_spec_file


def parse(text: str):
    return parse_yaml(text, file="job.yaml", base_dir="/specs")


def test_every_key_path_knows_its_line():
    root, problems = parse("framework: torch\ntrain:\n  lr: 0.1\nresources:\n  hosts:\n    - a:2\n    - b:2\n")
    assert problems == []
    assert locate(root, "framework").line == 1
    assert locate(root, "train").line == 2
    assert locate(root, "train.lr").line == 3
    hosts = locate(root, "resources.hosts")
    assert hosts.line == 5
    assert [item.line for item in hosts.value] == [6, 7]


def test_locate_falls_back_to_the_nearest_parent_for_a_missing_key():
    root, _ = parse("framework: torch\ntrain:\n  lr: 0.1\n")
    assert locate(root, "train.epochs").line == 2


def test_duplicate_key_is_reported_with_both_lines_and_the_last_value_kept():
    root, problems = parse("train:\n  lr: 0.1\n  epochs: 2\n  lr: 0.5\n")
    assert [str(p) for p in problems] == ["job.yaml:4: train.lr: duplicate key (first on line 2)"]
    assert root.to_plain() == {"train": {"lr": 0.5, "epochs": 2}}


def test_syntax_error_gives_line_and_column():
    with pytest.raises(SpecError) as info:
        parse("framework: torch\ntrain:\n  lr: [0.1\n")
    (problem,) = info.value.problems
    assert (problem.file, problem.line) == ("job.yaml", 4)
    assert problem.column is not None
    assert str(problem).startswith("job.yaml:4:")
    assert "started on line 3" in problem.message


def test_tab_indentation_says_tabs():
    with pytest.raises(SpecError) as info:
        parse("train:\n\tlr: 0.1\n")
    assert str(info.value).startswith("job.yaml:2:1: ")
    assert "tabs" in str(info.value)


def test_second_document_is_an_error():
    with pytest.raises(SpecError, match=r"job.yaml:2:1: found a second YAML document"):
        parse("framework: torch\n---\ntrain: {}\n")


def test_references_in_flow_style_stay_one_plain_value():
    root, problems = parse("train: {epochs: ${EPOCHS:-2}, lr: ${LR}}\nhosts: [${H:-a:2,b:2}, c]\nx: {k: '${Q:-{}}'}\n")
    assert problems == []
    epochs = root.value["train"].value["epochs"]
    assert (epochs.value, epochs.plain, epochs.column if hasattr(epochs, "column") else None) == ("${EPOCHS:-2}", True, None)
    assert root.to_plain() == {"train": {"epochs": "${EPOCHS:-2}", "lr": "${LR}"},
                               "hosts": ["${H:-a:2,b:2}", "c"], "x": {"k": "${Q:-{}}"}}


def test_escaped_dollar_is_not_a_reference():
    root, _ = parse("a: $${HOME}\nb: '$${X}, ${Y}'\n")
    assert root.to_plain() == {"a": "$${HOME}", "b": "$${X}, ${Y}"}


def test_reserved_private_use_character_is_refused():
    with pytest.raises(SpecError, match=r"job.yaml:2: contains the private-use character U\+F0002"):
        parse("a: 1\nb: \U000F0002\n")


def test_alias_bomb_is_refused_at_once():
    text = "a: &a [" + ",".join(["x"] * 10) + "]\n"
    for i in range(9):
        text += f"b{i}: &b{i} [" + ",".join([f"*{'a' if i == 0 else f'b{i - 1}'}"] * 10) + "]\n"
    with pytest.raises(SpecError, match=r"aliases expand to more than 10,000 values") as info:
        parse(text)
    assert info.value.problems[-1].line is not None


def test_reasonable_aliases_are_expanded():
    root, problems = parse("base: &b {lr: 0.1, epochs: 2}\ntrain:\n  <<: *b\n  epochs: 3\nother: *b\n")
    assert problems == []
    assert root.to_plain()["train"] == {"lr": 0.1, "epochs": 3}
    assert root.to_plain()["other"] == {"lr": 0.1, "epochs": 2}


@pytest.mark.parametrize("text", [
    "a: " + "[" * 200 + "]" * 200 + "\n",
    "a: " + "{b: " * 200 + "1" + "}" * 200 + "\n",
    "a:\n" + "".join("  " * i + "- \n" for i in range(1, 400)),
    "a: " + "[" * 5000 + "]" * 5000 + "\n",
])
def test_deep_nesting_is_one_located_error(text):
    with pytest.raises(SpecError) as info:
        parse(text)
    (problem,) = info.value.problems
    assert problem.file == "job.yaml" and problem.line is not None
    assert "nest" in problem.message


def test_nesting_within_the_limit_is_fine():
    root, problems = parse("a: " + "[" * 60 + "1" + "]" * 60 + "\n")
    assert problems == [] and root is not None


def test_huge_integer_is_a_problem_not_a_traceback():
    root, problems = parse("np: " + "9" * 5000 + "\n")
    assert [p.message for p in problems] == ["number with 5,000 characters is too large"]


def test_text_larger_than_the_limit_is_refused_without_parsing():
    with pytest.raises(SpecError, match=r"job.yaml: has more than 262,144 characters, hvdjob's limit"):
        parse("a: " + "x" * (1 << 18) + "\n")


def test_too_many_values_is_one_located_error():
    with pytest.raises(SpecError) as info:
        parse("args: [" + ",".join(["a"] * 30_000) + "]\n")
    (problem,) = info.value.problems
    assert problem.line == 1 and "more than 20,000 values" in problem.message


def test_huge_file_is_refused_unread(tmp_path):
    path = tmp_path / "big.yaml"
    with open(path, "w") as handle:
        handle.write("env:\n")
        line = "  K: " + "v" * 1000 + "\n"
        for _ in range(20_000):  # 20 MB
            handle.write(line)
    with pytest.raises(SpecError, match=r"has more than 262,144 characters"):
        read_spec_file(str(path))


def test_comment_only_file_is_empty():
    assert parse("# nothing here\n") == (None, [])


def test_yaml_1_1_surprises_are_avoided():
    root, _ = parse(
        "lr: 1e-3\nday: 2024-01-05\ntime: 1:30:00\non: 1\nversion: 0.10\n"
    )
    assert root.value["lr"].value == 0.001  # a float, as in YAML 1.2
    assert root.value["day"].value == "2024-01-05"  # not a datetime.date
    assert root.value["time"].text == "1:30:00"  # the text survives sexagesimal ints
    assert "on" in root.value  # keys stay as written, not True
    assert root.value["version"].text == "0.10"


def test_quoted_and_plain_scalars_are_told_apart():
    root, _ = parse("a: '4'\nb: 4\n")
    assert (root.value["a"].value, root.value["a"].plain) == ("4", False)
    assert (root.value["b"].value, root.value["b"].plain) == (4, True)


def test_merge_keys_keep_the_lines_of_the_merged_mapping():
    root, problems = parse("base: &b\n  lr: 0.1\n  epochs: 3\ntrain:\n  <<: *b\n  epochs: 5\n")
    assert problems == []
    assert root.value["train"].to_plain() == {"lr": 0.1, "epochs": 5}
    assert locate(root, "train.lr").line == 2
    assert locate(root, "train.epochs").line == 6


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(SpecError, match=r"^nope.yaml: no such file$"):
        read_spec_file("nope.yaml")
    with pytest.raises(SpecError, match="is a directory"):
        read_spec_file(str(tmp_path))


def test_non_utf8_file_is_a_clean_error(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(SpecError, match="is not UTF-8 text"):
        read_spec_file(str(path))
