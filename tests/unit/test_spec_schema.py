"""The schema's limits and the reference spec stay in step with the model."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from hvdrun_cli.spec import schema

REFERENCE = Path(__file__).resolve().parents[2] / "jobs" / "reference.yaml"
LIMIT_TABLES = {
    "CHECKS": schema.CHECKS,
    "CHOICES": schema.CHOICES,
    "ITEM_CHECKS": schema.ITEM_CHECKS,
    "PATHS": schema.PATHS,
    "ALTERNATIVES": schema.ALTERNATIVES,
    "COMMA_LISTS": dict.fromkeys(schema.COMMA_LISTS),
    "SINGLE_STRING_LISTS": dict.fromkeys(schema.SINGLE_STRING_LISTS),
}


@pytest.mark.parametrize("table", sorted(LIMIT_TABLES))
def test_every_limit_names_a_field_of_the_model(table):
    missing = [path for path in LIMIT_TABLES[table] if schema.field_at(path) is None]
    assert missing == []


def test_list_rules_apply_to_list_fields():
    for path in [*schema.ITEM_CHECKS, *schema.COMMA_LISTS, *schema.SINGLE_STRING_LISTS]:
        assert schema.field_at(path).kind == "strlist", path


def test_loader_fields_are_not_user_keys():
    assert "source" not in schema.section_fields("")
    assert "base_dir" not in schema.section_fields("")


def test_unknown_key_messages():
    assert schema.unknown_key_message("epoch", "train") == "unknown key; did you mean 'epochs'?"
    assert schema.unknown_key_message("zzz", "watchdog") == (
        "unknown key; valid keys in 'watchdog': progress_timeout_seconds"
    )


@pytest.mark.parametrize("good", ["30", "30:00", "1:30:00", "2-0", "2-12:00", "2-12:00:00", "UNLIMITED"])
def test_slurm_time_accepts_slurm_formats(good):
    assert schema.CHECKS["slurm.time"](good) is None


@pytest.mark.parametrize("bad", ["1h", "90m", "1:2:3:4", "-5", "", "1-"])
def test_slurm_time_rejects_other_text(bad):
    assert schema.CHECKS["slurm.time"](bad) is not None


def test_reference_spec_mentions_every_key():
    text = REFERENCE.read_text()
    missing = []
    for section, fields in schema.SECTIONS.items():
        for name in fields:
            if not re.search(rf"^[#\s]*{re.escape(name)}:", text, re.MULTILINE):
                missing.append(f"{section}.{name}" if section else name)
    assert missing == []
