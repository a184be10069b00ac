"""The job spec: the typed model (:mod:`.model`) and how a YAML file becomes one (:func:`load_spec`)."""
from hvdrun_cli.spec.load import load_spec, load_spec_text
from hvdrun_cli.spec.overrides import Override, parse_set_option

__all__ = ["Override", "load_spec", "load_spec_text", "parse_set_option"]
