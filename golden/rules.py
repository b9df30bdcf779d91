"""The lookup shared by the study's rule families (`golden.selection`, `golden.lr_rules`): a rule by name."""

from dpfm.golden.contract.errors import DpfmError


def lookup(registry: dict, rule, what: str):
    """`registry[rule]` for a name (a rule object is returned as is); an unknown name is a DpfmError that
    lists the known ones, `what` saying which family it is."""
    if not isinstance(rule, str):
        return rule
    try:
        return registry[rule]
    except KeyError:
        raise DpfmError(f"unknown {what} '{rule}'", f"choose one of {', '.join(registry)}") from None
