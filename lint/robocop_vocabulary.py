"""Robocop rules for the CCS step vocabulary (``resources/*.resource``, used by ``suites/``).

The conventions a tester relies on (docs/testers-guide.md): a name or a text is quoted, a number
is not (``"alice-phone" Sends 3 Messages To "team-room"``); one phrasing per action (the removed
synonyms fail); a test's step names show values, not the names of global variables.

Loaded through ``custom_rules`` in the robocop configuration of ``pyproject.toml``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from robocop.linter.rules import Rule, RuleSeverity, VisitorChecker

if TYPE_CHECKING:
    from robot.parsing.model.blocks import Keyword, TestCase
    from robot.parsing.model.statements import KeywordCall

BDD_PREFIX = re.compile(r"^(given|when|then|and|but)\s+", re.IGNORECASE)

# Removed phrasings and the one the vocabulary keeps instead.
REMOVED_SYNONYMS: dict[re.Pattern[str], str] = {
    re.compile(r'" Has Sent (\d+|\$\{[^}]*\}) Messages To "', re.IGNORECASE): (
        '"<device>" Sends <count> Messages To "<conversation>"'
    ),
    re.compile(r'" Has Received Messages ', re.IGNORECASE): (
        '"<device>" Should Receive Messages <first> To <last> Of "<conversation>" In Order'
    ),
}

QUOTED_NUMBER = re.compile(r'"\d+"')
# An embedded argument with a numeric pattern: ``${seq:\d+}``.
NUMERIC_EMBEDDED = re.compile(r"\$\{\w+:\\d\+\}")
QUOTED_NUMERIC_EMBEDDED = re.compile(r'"\$\{\w+:\\d\+\}"')
# Embedded arguments that always stand for a number in this vocabulary.
NUMBER_NAMES = frozenset(
    {"seq", "count", "first", "last", "limit", "delivered", "read", "seconds", "rounds"}
    | {"rooms", "members", "users", "rate"}
)
EMBEDDED = re.compile(r"(\"?)\$\{(\w+)(:[^}]*)?\}(\"?)")
GLOBAL_VARIABLE = re.compile(r"\$\{[A-Z][A-Z0-9_]*\}")


class RemovedSynonymRule(Rule):
    """A step uses a phrasing the vocabulary removed in favour of one word per action.

    Use the kept step instead, e.g. ``"alice-phone" Sends 3 Messages To "team-room"`` rather
    than ``"alice-phone" Has Sent 3 Messages To "team-room"``.
    """

    name = "removed-synonym-step"
    rule_id = "CCS01"
    message = "Step '{step}' uses a removed synonym: write {kept}"
    severity = RuleSeverity.ERROR
    added_in_version = "9.0.0"


class QuotedNumberInStepRule(Rule):
    """A number is quoted in a step (``Message "1" …``), or a numeric embedded argument is
    quoted or has no ``\\d+`` pattern in a keyword name.

    Quotes mark names and texts; numbers stay bare: ``Message 1 Of "team-room" Should Reach``,
    defined as ``Message ${seq:\\d+} Of "${conversation}" Should Reach``.
    """

    name = "quoted-number-in-step"
    rule_id = "CCS02"
    message = "{what}: numbers are written bare ({hint})"
    severity = RuleSeverity.ERROR
    added_in_version = "9.0.0"


class GlobalVariableInStepNameRule(Rule):
    """A test's step name holds a global variable (``… Under ${LATENCY_LIMIT_MS} Milliseconds``):
    the log shows the variable's name, not its value. Write the value in the step.
    """

    name = "global-variable-in-step-name"
    rule_id = "CCS03"
    message = "Step '{step}' shows {variable} unresolved in the log: write its value"
    severity = RuleSeverity.WARNING
    added_in_version = "9.0.0"


class VocabularyChecker(VisitorChecker):
    """Checks step names in tests and keyword names in resources against the conventions."""

    removed_synonym_step: RemovedSynonymRule
    quoted_number_in_step: QuotedNumberInStepRule
    global_variable_in_step_name: GlobalVariableInStepNameRule

    def __init__(self) -> None:
        self.in_test = False
        super().__init__()

    def visit_TestCase(self, node: TestCase) -> None:
        self.in_test = True
        self.generic_visit(node)
        self.in_test = False

    def visit_Keyword(self, node: Keyword) -> None:
        self._check_definition(node)
        self.generic_visit(node)

    def visit_KeywordCall(self, node: KeywordCall) -> None:
        name = node.keyword
        if not name:
            return
        step = BDD_PREFIX.sub("", name)
        token = node.get_token("KEYWORD")
        where = {"node": token or node, "col": token.col_offset + 1 if token else 1}
        for pattern, kept in REMOVED_SYNONYMS.items():
            if pattern.search(step):
                self.report(self.removed_synonym_step, step=step, kept=kept, **where)
        if QUOTED_NUMBER.search(step):
            self.report(
                self.quoted_number_in_step,
                what=f"Step '{step}' quotes a number",
                hint='Message 1 Of "team-room"',
                **where,
            )
        if self.in_test:
            for variable in GLOBAL_VARIABLE.findall(step):
                self.report(
                    self.global_variable_in_step_name, step=step, variable=variable, **where
                )

    def _check_definition(self, node: Keyword) -> None:
        name = node.name
        for pattern, kept in REMOVED_SYNONYMS.items():
            if pattern.search(name):
                self.report(
                    self.removed_synonym_step, step=name, kept=kept, node=node.header, col=1
                )
        for open_quote, arg, pattern, close_quote in EMBEDDED.findall(name):
            numeric = pattern == ":\\d+" or arg in NUMBER_NAMES
            if not numeric:
                continue
            if open_quote and close_quote:
                problem = f"Keyword '{name}' quotes the number ${{{arg}}}"
            elif pattern != ":\\d+":
                problem = f"Keyword '{name}' takes the number ${{{arg}}} without a \\d+ pattern"
            else:
                continue
            self.report(
                self.quoted_number_in_step,
                what=problem,
                hint=f"${{{arg}:\\d+}}, unquoted",
                node=node.header,
                col=1,
            )
