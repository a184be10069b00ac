"""Inputs shaped like the real thing, then bent: spec trees, hostfile lines, Slurm hostlists.

Pure random text rarely gets past a parser's first character, so each strategy builds mostly
well-formed input from the grammar (real keys, real forms) and mixes in the hostile parts: huge
numbers, ``${VAR}`` in flow style, aliases, deep nesting, stray brackets, CRLF, odd whitespace.
"""
from __future__ import annotations

import yaml
from hypothesis import strategies as st

from hvdrun_cli.spec import schema

_SECTION_KEYS = sorted({name for fields in schema.SECTIONS.values() for name in fields})
_TOP_KEYS = sorted(schema.SECTIONS[""])
KEYS = st.sampled_from(_SECTION_KEYS + ["epoch", "np ", "slot", "<<", "data_args", "model_args"]) | st.text(max_size=6)

_WORDS = ["${NP}", "${NP:-2}", "${UNSET}", "${X:-a,b}", "${X:-{}}", "$$", "${", "${A", "$${NP}", "auto", "torch",
          "tensorflow", "mlp", "cnn", "digits", "synthetic", "adam", "a:2", "b:4096", "c:99999999999", "1:30:00",
          "1e-3", "0x1F", "~", "USR2", "KILL", "train.py", "hosts.txt", "../x", "/etc/passwd", "mod:fn", "-np",
          "node[1-3]", "a" * 300]
SCALARS = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.sampled_from(_WORDS),
    st.text(max_size=12),
)
TREES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=25,
)
DOCUMENTS = st.dictionaries(st.sampled_from(_TOP_KEYS) | KEYS, TREES, max_size=8)

_SNIPPETS = [
    "\n", "\r\n", "\t", ": ", "- ", "{", "}", "[", "]", ",", "&a ", "*a", "<<: *a\n", "!!binary ", "!!set ",
    "---\n", "'", '"', "#", "${NP}", "{epochs: ${EPOCHS:-2}}", "[" * 80, "]" * 80, "9" * 5000, "\x00", "\ufeff",
    "\U000F0003",
]


@st.composite
def spec_texts(draw: st.DrawFn) -> str:
    """A YAML rendering of a random spec tree, sometimes cut and spliced with hostile snippets."""
    document = draw(DOCUMENTS)
    if draw(st.booleans()):
        document.setdefault("framework", draw(st.sampled_from(["torch", "tensorflow"])))
        document.setdefault("train", {})
    text = yaml.safe_dump(document, default_flow_style=draw(st.sampled_from([None, True, False])),
                          allow_unicode=True)
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(text)))
        cut = draw(st.integers(0, 5))
        text = text[:at] + draw(st.sampled_from(_SNIPPETS) | st.text(max_size=4)) + text[at + cut:]
    return text


_NAMES = st.sampled_from(["a", "A", "node1", "n-01.x", "10.0.0.5", "-np", "[n]", "a;rm", "", "é"]) | \
    st.text(alphabet="abcxyz019._-", min_size=1, max_size=8)
_COUNTS = st.sampled_from(["1", "2", "0", "-1", "4096", "4097", "x", "", "1.5", "9" * 30, "٣"]) | \
    st.integers(0, 10000).map(str)


@st.composite
def hostfile_lines(draw: st.DrawFn) -> str:
    name = draw(_NAMES)
    form = draw(st.sampled_from(["bare", "colon", "slots", "max", "both", "junk", "comment", "blank"]))
    if form == "colon":
        line = f"{name}:{draw(_COUNTS)}"
    elif form == "slots":
        line = f"{name} slots={draw(_COUNTS)}"
    elif form == "max":
        line = f"{name} max_slots={draw(_COUNTS)}"
    elif form == "both":
        line = f"{name} slots={draw(_COUNTS)} max_slots={draw(_COUNTS)}"
    elif form == "junk":
        line = f"{name} {draw(st.text(max_size=10))}"
    elif form == "comment":
        line = f"# {draw(st.text(max_size=10))}"
    elif form == "blank":
        line = draw(st.sampled_from(["", " ", "\t"]))
    else:
        line = name
    if draw(st.booleans()):
        line += " # " + draw(st.text(max_size=5))
    return line


HOSTFILES = st.builds(
    lambda lines, end: end.join(lines),
    st.lists(hostfile_lines(), max_size=30),
    st.sampled_from(["\n", "\r\n", "\r", "\n\n"]),
)

_RANGE_ITEMS = st.one_of(
    st.integers(0, 120).map(str),
    st.tuples(st.integers(0, 50), st.integers(0, 300)).map(lambda t: f"{t[0]:03d}-{t[1]}"),
    st.sampled_from(["1-", "-3", "", "x", "5-2", "0-99999999", "1-" + "9" * 40, "07-11"]),
)


@st.composite
def hostlist_texts(draw: st.DrawFn) -> str:
    pieces = []
    for _ in range(draw(st.integers(1, 4))):
        name = draw(st.sampled_from(["n", "gpu-a", "rack", "", "x.y", "a_b", "n;"]))
        for _ in range(draw(st.integers(0, 2))):
            name += "[" + ",".join(draw(st.lists(_RANGE_ITEMS, min_size=1, max_size=3))) + "]"
            name += draw(st.sampled_from(["", "", "-n", "]", "["]))
        pieces.append(name)
    text = draw(st.sampled_from([",", " ", ",,"])).join(pieces)
    if draw(st.booleans()):  # SLURM_TASKS_PER_NODE shapes too
        counts = draw(st.lists(st.sampled_from(["2", "2(x3)", "1(x100000)", "0", "5000", "3(x0)", "x"]),
                               min_size=1, max_size=4))
        text = ",".join(counts)
    return text
