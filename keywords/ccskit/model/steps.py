"""A walk as people read it: numbered plain-English steps and a ready-to-paste Robot test.

The Robot test uses the kit's vocabulary (``resources/ccs.resource``: `Create User`, `Connect
Device`, `Send Command` …) plus `Model Token` (ModelKeywords of the CCS library) for tokens the
other keywords do not mint (expired, not yet valid, badly signed, another user's device). It
asserts, at each step, the reply the model predicted, so it fails on the server that failed the
walk and passes on one that behaves as documented.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from .state import Expect

SEP = "    "
HTTP_STATUS = {
    "bad_request": 400,
    "invalid_json": 400,
    "forbidden": 403,
    "not_found": 404,
    "too_large": 413,
    "idempotency_conflict": 409,
    "conflict": 409,
}


@dataclass
class Step:
    """One action of a walk: its rule, its English sentence and what is needed to replay it."""

    rule: str
    english: str
    kind: str = ""
    expect: Expect | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __init__(
        self, rule: str, english: str, kind: str = "", expect: Expect | None = None, **details: Any
    ) -> None:
        self.rule, self.english, self.kind, self.expect = rule, english, kind, expect
        self.details = details


@dataclass
class Walk:
    """The steps of one walk, the problems that ended it, and the fixture names."""

    names: dict[str, str]  # real id -> logical name
    steps: list[Step] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    #: Robot lines checking, after the last step, what the model expected (frames, rows).
    final_checks: list[str] = field(default_factory=list)
    users: dict[str, list[str]] = field(default_factory=dict)
    conversations: dict[str, list[str]] = field(default_factory=dict)
    seed: str = ""

    def setup(self, users: dict[str, list[str]], conversations: dict[str, list[str]]) -> None:
        self.users, self.conversations = users, conversations

    def add(self, step: Step) -> None:
        self.steps.append(step)

    def fail(self, problems: list[str], checks: list[str] | None = None) -> None:
        self.problems = [self.names_in(p) for p in problems]
        self.final_checks = list(checks or [])

    def value(self, value: Any) -> str:
        """A Robot cell for ``value`` (public form of ``_value`` for the walk's machine)."""
        return self._value(value)

    def stream_check(
        self, device_id: str, key: tuple[str, str], want: list[Any], got: list[Any]
    ) -> list[str]:
        """Lines asserting the frames of one category and conversation a device received:
        each missing one awaited, each unexpected one refused, then the order compared."""
        device, conv = self.names_in(device_id), self._value(key[1])
        lines = [
            f"Wait For Frame{SEP}{device}{SEP}{w[0]}{SEP}conversation_id={conv}"
            + "".join(f"{SEP}{k}={self._value(v)}" for k, v in _fields(w).items())
            for w in want
            if w not in got
        ]
        lines += [
            f"Should Not Receive Frame{SEP}{device}{SEP}{g[0]}{SEP}window=1s{SEP}"
            f"conversation_id={conv}"
            + "".join(f"{SEP}{k}={self._value(v)}" for k, v in _fields(g).items())
            for g in got
            if g not in want
        ]
        if not lines and want and key[0] == "messages":
            order = [(w[0], w[2], w[3]) for w in want]
            lines = [
                f"${{frames}}{SEP}Received Frames{SEP}{device}{SEP}*{SEP}conversation_id={conv}",
                f"${{seen}}{SEP}Evaluate{SEP}[(f['type'], f['seq'], f['version']) for f in "
                "$frames if f['type'] in ('message', 'message_updated')]",
                f"Should Be Equal{SEP}${{seen}}{SEP}${{{{ {order!r} }}}}",
            ]
        return lines

    def rows_check(self, conversation_id: str, rows: list[tuple[int, int, bool]]) -> list[str]:
        """Lines asserting the stored (seq, version, deleted) of a conversation."""
        return [
            f"${{rows}}{SEP}Query As Dictionaries{SEP}SELECT seq, version, deleted FROM "
            f"messages WHERE conversation_id = %s ORDER BY seq{SEP}"
            f"{self._value(conversation_id)}",
            f"${{stored}}{SEP}Evaluate{SEP}[(r['seq'], r['version'], r['deleted']) for r in $rows]",
            f"Should Be Equal{SEP}${{stored}}{SEP}${{{{ {rows!r} }}}}",
        ]

    def names_in(self, text: str) -> str:
        """``text`` with every real id replaced by its logical name (longest first)."""
        for real in sorted(self.names, key=len, reverse=True):
            text = text.replace(real, self.names[real])
        return text

    # ----- plain English -----------------------------------------------------------------------
    def english(self) -> str:
        cast = "; ".join(f"{u} with {', '.join(d)}" for u, d in self.users.items())
        convs = "; ".join(f"{c} with members {', '.join(m)}" for c, m in self.conversations.items())
        lines = [f"Given users {cast}", f"and conversations {convs}:"]
        lines += [f"{i}. {self.names_in(s.english)}" for i, s in enumerate(self.steps, 1)]
        if self.problems:
            lines.append(f"-> after step {len(self.steps)} the server disagrees with the model:")
            lines += [f"   - {p}" for p in self.problems]
        return "\n".join(lines)

    def report(self) -> str:
        return "model walk failed\n" + self.english()

    # ----- Robot Framework ---------------------------------------------------------------------
    def robot(self, name: str = "") -> str:
        """A Robot test (with its settings) that replays the walk and asserts the prediction."""
        title = name or f"Model Walk {self.seed or ''} Reproduces".replace("  ", " ")
        out = [
            "*** Settings ***",
            "Documentation       Reproduction of a failed model walk: paste into suites/05_model/",
            "...                 (its suite setup starts the node with the model's limits).",
            "Resource            ../../resources/ccs.resource",
            "",
            "*** Test Cases ***",
            title,
            f"{SEP}[Documentation]{SEP}" + " ".join(self.problems)[:500].replace("  ", " "),
            f"{SEP}[Tags]{SEP}model",
        ]
        for user, devices in self.users.items():
            out.append(f'{SEP}User "{user}" With Devices{SEP}' + SEP.join(devices))
            out.append(f"{SEP}${{{user}}}{SEP}User Id{SEP}{user}")
            out += [f"{SEP}${{{_var(d)}}}{SEP}Device Id{SEP}{d}" for d in devices]
        for conv, members in self.conversations.items():
            out.append(f"{SEP}Create Conversation{SEP}{conv}{SEP}" + SEP.join(members))
            out.append(f"{SEP}${{{conv}}}{SEP}Conversation Id{SEP}{conv}")
        for number, step in enumerate(self.steps, 1):
            out.append(f"{SEP}# {number}. {self.names_in(step.english)}")
            out += [SEP + line for line in self._robot_step(step)]
        if self.final_checks:
            out.append(f"{SEP}# then what the model expected after step {len(self.steps)}:")
            out += [SEP + line for line in self.final_checks]
        return "\n".join(out) + "\n"

    def _robot_step(self, step: Step) -> list[str]:
        d = step.details
        render = getattr(self, f"_robot_{step.kind.replace('-', '_')}", None)
        if render is None:
            return [f"# (not expressible with the kit's keywords: {step.kind})"]
        lines: list[str] = render(step, d)
        return lines

    def _value(self, value: Any) -> str:
        """A Robot cell holding ``value`` (ids replaced by their fixture variables)."""
        if isinstance(value, str) and value in self.names:
            return f"${{{_var(self.names[value])}}}"
        if value is None or isinstance(value, (bool, int)):
            return f"${{{value}}}"
        if (
            isinstance(value, str)
            and value
            and value.isprintable()
            and value.strip() == value
            and not any(c in value for c in "$@&%#=\\")
        ):
            return value
        return "${{ " + self._python(value) + " }}"

    def _python(self, value: Any) -> str:
        if isinstance(value, str):
            if value in self.names:
                return f"${_var(self.names[value])}"
            return _python_str(value)
        if isinstance(value, dict):
            items = ", ".join(f"{self._python(k)}: {self._python(v)}" for k, v in value.items())
            return "{" + items + "}"
        if isinstance(value, list):
            return "[" + ", ".join(self._python(v) for v in value) + "]"
        return repr(value)

    def _assert_reply(self, expect: Expect | None, var: str = "${reply}") -> list[str]:
        if expect is None:
            return []
        if not expect.ok:
            return [
                f"Should Be Equal{SEP}{var}[type]{SEP}error",
                f"Should Contain{SEP}{self._value(list(expect.codes))}{SEP}{var}[code]",
            ]
        lines = []
        for key, value in expect.fields.items():
            if key == "conversations":
                for conv, info in value.items():
                    for k, v in info.items():
                        lines.append(
                            f"Should Be Equal{SEP}{var}[conversations][{self._value(conv)}]"
                            f"[{k}]{SEP}{self._value(v)}"
                        )
            else:
                lines.append(f"Should Be Equal{SEP}{var}[{key}]{SEP}{self._value(value)}")
        return lines

    def _robot_connect(self, step: Step, d: dict[str, Any]) -> list[str]:
        device, user = d["device"], d["device"].split("-")[0]
        expect = step.expect
        if d["token"] != "valid":
            code = expect.codes[0] if expect else ""
            return [
                f"${{token}}{SEP}Model Token{SEP}{device}{SEP}{d['token']}",
                f"${{how}}{SEP}Connect Device Expecting Failure{SEP}{device}{SEP}token=${{token}}",
                f"Should Start With{SEP}${{how}}{SEP}{code}",
            ]
        resume = f"{SEP}resume={self._value(d['resume'])}" if d["resume"] else ""
        if expect is not None and not expect.ok:
            return [
                f"${{how}}{SEP}Connect Device Expecting Failure{SEP}{device}{resume}",
                f"Should Start With{SEP}${{how}}{SEP}{expect.codes[0]}",
            ]
        del user
        lines = [f"${{reply}}{SEP}Connect Device{SEP}{device}{resume}"]
        return lines + self._assert_reply(expect)

    def _robot_rest(self, step: Step, d: dict[str, Any]) -> list[str]:
        expect, status = step.expect, 200
        if expect is not None and not expect.ok:
            status = HTTP_STATUS.get(expect.codes[0], 400)
        path = self.names_in_path(d["path"])
        body = f"{SEP}body={self._value(d['body'])}" if d["body"] is not None else ""
        return [
            f"${{token}}{SEP}Model Token{SEP}{d['device']}{SEP}valid",
            f"${{reply}}{SEP}Call Api{SEP}{d['method']}{SEP}{path}{body}{SEP}"
            f"expected_status={status}{SEP}token=${{token}}",
            *(
                [f"Should Contain{SEP}{self._value(list(expect.codes))}{SEP}${{reply}}[code]"]
                if expect is not None and not expect.ok
                else self._assert_reply(expect)
            ),
        ]

    def names_in_path(self, path: str) -> str:
        """A REST path with each real id replaced by its fixture variable."""
        for real in sorted(self.names, key=len, reverse=True):
            path = path.replace(real, f"${{{_var(self.names[real])}}}")
        return path

    def _robot_big_frame(self, step: Step, d: dict[str, Any]) -> list[str]:
        # Braces spelled chr(123)/chr(125): Robot would end ${{ }} at a literal "}}".
        size, conv = d["size"], d["conv"]
        head = (
            f'chr(123) + \'"type":"send","ref":"big","conversation_id":"\' + '
            f'${conv} + \'","client_msg_id":"big-key-{size}","body":\' + chr(123) + '
            '\'"text":"\''
        )
        frame = f"${{{{ ({head}).ljust({size} - 3, 'x') + '\"' + chr(125) * 2 }}}}"
        if d["over"]:
            return [
                f"Send Raw{SEP}{d['device']}{SEP}{frame}",
                f"${{how}}{SEP}Device Close Code{SEP}{d['device']}",
                f"Should Start With{SEP}${{how}}{SEP}1009",
            ]
        return [
            f"Send Raw{SEP}{d['device']}{SEP}{frame}",
            f"Wait For Frame{SEP}{d['device']}{SEP}error{SEP}code=too_large",
        ]

    def _robot_short_token(self, step: Step, d: dict[str, Any]) -> list[str]:
        device = d["device"]
        return [
            f"${{token}}{SEP}Model Token{SEP}{device}{SEP}expires-in-2s",
            f"Connect Device{SEP}{device}{SEP}token=${{token}}",
            f"${{error}}{SEP}Wait For Frame{SEP}{device}{SEP}error{SEP}timeout=6s{SEP}"
            "code=token_expired",
            f"Should Be Equal{SEP}${{error}}[ref]{SEP}${{None}}",
            f"${{how}}{SEP}Device Close Code{SEP}{device}",
            f"Should Start With{SEP}${{how}}{SEP}4003",
        ]

    def _robot_close(self, step: Step, d: dict[str, Any]) -> list[str]:
        return [f"Disconnect Device{SEP}{d['device']}"]

    def _robot_drop(self, step: Step, d: dict[str, Any]) -> list[str]:
        return [f"Drop Device{SEP}{d['device']}"]

    def _robot_send(self, step: Step, d: dict[str, Any]) -> list[str]:
        expect = step.expect
        if d.get("rest"):
            status = 201
            if expect is not None and not expect.ok:
                status = HTTP_STATUS.get(expect.codes[0], 400)
            elif expect is not None and expect.fields.get("duplicate"):
                status = 200
            body = self._value({"client_msg_id": d["cmid"], "body": d["body"]})
            return [
                f"${{token}}{SEP}Model Token{SEP}{d['device']}{SEP}valid",
                f"Call Api{SEP}POST{SEP}/v1/conversations/${{{d['conv']}}}/messages{SEP}"
                f"body={body}{SEP}expected_status={status}{SEP}token=${{token}}",
            ]
        return [
            f"${{reply}}{SEP}Send Message Expecting Reply{SEP}{d['device']}{SEP}{d['conv']}"
            f"{SEP}{self._value(d['body'])}{SEP}client_msg_id={self._value(d['cmid'])}",
            *self._assert_reply(expect),
        ]

    def _robot_raw(self, step: Step, d: dict[str, Any]) -> list[str]:
        depth = d["depth"]
        text = (
            f'\'{{"type":"send","ref":"deep","conversation_id":"\' + ${d["conv"]} '
            f'+ \'","client_msg_id":"deep-key","body":\' + \'[\' * {depth} + \']\' * '
            f"{depth} + '}}'"
        )
        return [
            f"Send Raw{SEP}{d['device']}{SEP}${{{{ {text} }}}}",
            f"${{reply}}{SEP}Wait For Frame{SEP}{d['device']}{SEP}error{SEP}code=bad_request",
            f"Should Be Equal{SEP}${{reply}}[ref]{SEP}deep",
        ]

    def _robot_command(self, step: Step, d: dict[str, Any]) -> list[str]:
        frame = dict(d["frame"])
        kind = frame.pop("type")
        frame.pop("ref", None)
        cells = [
            f"{k}={d['conv'] if k == 'conversation_id' else self._value(v)}"
            for k, v in frame.items()
        ]
        lines = [
            f"${{reply}}{SEP}Send Command{SEP}{d['device']}{SEP}{kind}"
            + "".join(SEP + c for c in cells)
        ]
        if kind == "presence_query" and "answers" in d:
            for user, answer in d["answers"].items():
                lines.append(
                    f"Should Be Equal{SEP}${{reply}}[users][${{{user}}}][status]"
                    f"{SEP}{answer['status']}"
                )
            return lines
        return lines + self._assert_reply(step.expect)

    def _robot_rest_presence(self, step: Step, d: dict[str, Any]) -> list[str]:
        lines = [f"${{token}}{SEP}Model Token{SEP}{d['device']}{SEP}valid"]
        for user, answer in d["answers"].items():
            lines += [
                f"${{answer}}{SEP}Call Api{SEP}GET{SEP}/v1/users/${{{user}}}/presence"
                f"{SEP}token=${{token}}",
                f"Should Be Equal{SEP}${{answer}}[status]{SEP}{answer['status']}",
            ]
            if answer["stranger"]:  # §8.4-e: answered like an unknown user, nothing listed
                lines.append(f"Should Be Empty{SEP}${{answer}}[devices]")
        return lines

    def _robot_sql(self, step: Step, d: dict[str, Any]) -> list[str]:
        return [
            f"Insert Message As Another Program{SEP}{d['conv']}{SEP}{d['device']}{SEP}"
            f"{self._value(d['body'])}{SEP}client_msg_id={self._value(d['cmid'])}"
        ]

    def _robot_sql_update(self, step: Step, d: dict[str, Any]) -> list[str]:
        sql = (
            "UPDATE messages SET body = %s::json, version = version + 1 WHERE "
            "conversation_id = %s AND seq = %s RETURNING id"
        )
        return [
            f"Query As Dictionaries{SEP}{sql}{SEP}{self._value(json.dumps(d['body']))}"
            f"{SEP}${{{d['conv']}}}{SEP}{self._value(d['seq'])}"
        ]

    def _robot_add(self, step: Step, d: dict[str, Any]) -> list[str]:
        return [f"Add Member{SEP}{d['conv']}{SEP}{d['user']}"]

    def _robot_remove(self, step: Step, d: dict[str, Any]) -> list[str]:
        return [f"Remove Member{SEP}{d['conv']}{SEP}{d['user']}"]


def _python_str(value: str) -> str:
    """A Python expression for ``value`` that stays short (runs of one char as ``'é' * 90``)
    and survives Robot's own escaping (backslashes doubled)."""
    parts = [(m.group(0)[0], len(m.group(0))) for m in re.finditer(r"(.)\1*", value, re.S)]
    if len(value) > 40 and len(parts) <= 4:
        expr = " + ".join(_literal(c) + (f" * {n}" if n > 1 else "") for c, n in parts)
    else:
        expr = _literal(value)
    return expr.replace("\\", "\\\\")


def _literal(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _var(name: str) -> str:
    """A Robot variable name for a fixture (``u0-d1`` -> ``u0_d1``: ``-`` would be arithmetic)."""
    return name.replace("-", "_")


def _fields(item: tuple[Any, ...]) -> dict[str, Any]:
    """The frame fields that identify a canonical stream item (see ``received_streams``)."""
    if item[0] in ("message", "message_updated"):
        return {"seq": item[2], "version": item[3], "deleted": item[4]}
    if item[0] == "receipt":
        return {"device_id": item[2], "delivered_upto": item[3], "read_upto": item[4]}
    return {"user_id": item[2]}
