"""The dialogue: fill an operation's parameters, ask, confirm, cancel, correct, execute.

One call to :meth:`DialogueEngine.respond` handles one user turn against a loaded
conversation and returns the replies. The engine never raises for a backend problem:
every failure class becomes a reply, and the call is audited by the integration layer.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import jmespath

from intentbridge.conversation.state import Conversation, Frame, encode_value
from intentbridge.dialogue.amounts import Unclear, pick_amount, read_free_text, unread_amount
from intentbridge.dialogue.values import Invalid, coerce
from intentbridge.integration.templates import format_money, render
from intentbridge.project.schema import BotConfig, Operation, Parameter
from intentbridge.stores.base import PendingOperation, Store
from intentbridge.types import (
    FALLBACK_INTENT,
    Button,
    Entity,
    Identity,
    Interpretation,
    Money,
    Reply,
    Result,
)

Execute = Callable[..., Awaitable[Result]]
SWITCH_CONFIDENCE = 0.6
"""An intent this sure may abandon the frame being filled and start its own operation."""
_NUMERIC = ("money", "number", "integer")


@dataclass(frozen=True, slots=True)
class _LookupFailed:
    """A lookup that could not check a value: the request cannot go on."""

    outcome: str


@dataclass
class Turn:
    """What one turn works with."""

    conversation: Conversation
    identity: Identity
    interpretation: Interpretation
    profile: Mapping[str, Any]
    replies: list[Reply] = field(default_factory=list)
    lookups: dict[str, Result] = field(default_factory=dict)

    def say(self, text: str, buttons: tuple[Button, ...] = ()) -> None:
        if text.strip():
            self.replies.append(Reply(text=text.strip(), buttons=buttons))


class DialogueEngine:
    """Decides what to do with an interpretation, given the conversation so far.

    ``execute`` is the integration layer's ``execute(op_name, params, *,
    conversation_id, user_id, idempotency_key)``; ``store`` is where money-moving keys
    are recorded before a call is sent.
    """

    def __init__(self, config: BotConfig, execute: Execute, store: Store) -> None:
        self.config = config
        self.execute = execute
        self.store = store
        d = config.dialogue
        self._affirm = set(d.affirm_intents)
        self._deny = set(d.deny_intents)
        self._cancel = set(d.cancel_intents)
        self._help = set(d.help_intents)
        self._inform = set(d.inform_intents)
        self._responses = config.responses.model_dump()

    # --- entry point -------------------------------------------------------------------

    async def respond(self, turn: Turn) -> list[Reply]:
        conv = turn.conversation
        intent = turn.interpretation.intent
        frame = conv.frame
        if frame is not None and frame.status == "executing":
            # a previous turn stopped between sending and recording: finish it first
            await self._execute(turn, frame)
            if intent in self._affirm:
                return turn.replies  # most likely the "yes" again: the answer is that reply
            frame = conv.frame
        if frame is not None and frame.operation not in self.config.operations:
            conv.frame = frame = None  # the project changed under a stored conversation
        if intent in self._cancel:
            self._cancel_frame(turn)
        elif frame is not None and frame.status == "confirming":
            await self._confirming(turn, frame)
        elif frame is not None:
            await self._filling(turn, frame)
        else:
            await self._idle(turn)
        return turn.replies

    # --- states ------------------------------------------------------------------------

    async def _idle(self, turn: Turn) -> None:
        interp = turn.interpretation
        intent = interp.intent
        started = self.config.operation_for_intent(intent)
        if started is not None and intent != FALLBACK_INTENT:
            await self._start(turn, started[0])
            return
        if intent in self._help:
            turn.say(self._help_text())
            return
        if intent in self._affirm and not isinstance(self._responses.get(intent), str):
            self._nothing_to_confirm(turn)
            return
        if await self._carry_over(turn):
            if turn.conversation.frame is not None:
                await self._advance(turn, turn.conversation.frame)
            return
        response = self._responses.get(intent)
        if isinstance(response, str) and intent not in (FALLBACK_INTENT, "help"):
            turn.say(self._render(response, turn))
            return
        turn.say(self._render(self._responses["fallback"], turn))

    async def _confirming(self, turn: Turn, frame: Frame) -> None:
        interp = turn.interpretation
        op = self.config.operations[frame.operation]
        if interp.intent in self._affirm:
            shown = interp.entity("confirm_digest")
            if shown is not None and shown.value != frame.confirm_digest:
                # a stale button from an earlier question: ask about what is current
                await self._ask_confirmation(turn, frame, op)
                return
            if frame.digest() != frame.confirm_digest:
                await self._ask_confirmation(turn, frame, op)
                return
            await self._execute(turn, frame)
            return
        if interp.intent in self._deny:
            turn.conversation.frame = None
            turn.say(self._render(self._responses["declined"], turn))
            return
        if interp.intent in self._help:
            turn.say(self._help_text())
            await self._ask_confirmation(turn, frame, op)
            return
        # a correction ("make it 30", "from savings instead") changes the parameters
        # and needs a new confirmation of exactly what will happen
        changed = await self._fill(turn, frame, op, free_text=False)
        if turn.conversation.frame is not frame:
            return  # too many invalid corrections: the request was dropped
        if changed or turn.replies:
            # a valid correction, or an invalid one just explained: ask about what is current
            await self._ask_confirmation(turn, frame, op)
            return
        if self._switches(turn, frame):
            await self._start(turn, self._op_for(interp.intent))
            return
        turn.say(
            self._render(self._responses["confirm_reask"], turn),
            buttons=self._confirm_buttons(frame, op),
        )

    async def _filling(self, turn: Turn, frame: Frame) -> None:
        interp = turn.interpretation
        op = self.config.operations[frame.operation]
        if interp.intent in self._help:
            turn.say(self._help_text())
            await self._advance(turn, frame)
            return
        if self._switches(turn, frame) and not self._entities_fit(turn, op):
            await self._start(turn, self._op_for(interp.intent))
            return
        asked = op.parameters.get(frame.asking) if frame.asking is not None else None
        if (
            interp.intent in self._deny
            and not (asked is not None and asked.type == "boolean")
            and not _assign_entities(op, interp, frame)
        ):
            # "no" to "From which account?": the user does not want this any more
            self._cancel_frame(turn)
            return
        await self._fill(turn, frame, op, free_text=True)
        await self._advance(turn, frame)

    # --- frames ------------------------------------------------------------------------

    async def _start(self, turn: Turn, op_name: str) -> None:
        frame = Frame(operation=op_name)
        turn.conversation.frame = frame
        turn.conversation.completed_reply = None  # a new request: a later "yes" is about it
        op = self.config.operations[op_name]
        await self._fill(turn, frame, op, free_text=False)
        await self._advance(turn, frame)

    def _nothing_to_confirm(self, turn: Turn) -> None:
        """A "yes" with no question open; maybe a retry of one already acted on."""
        done = turn.conversation.completed_reply
        if done is not None:
            turn.say(self._render(self._responses["already_done"], turn, reply=done))
            return
        turn.say(self._render(self._responses["nothing_to_confirm"], turn))

    def _cancel_frame(self, turn: Turn) -> None:
        if turn.conversation.frame is None:
            turn.say(self._render(self._responses["nothing_to_cancel"], turn))
            return
        turn.conversation.frame = None
        turn.say(self._render(self._responses["cancelled"], turn))

    async def _fill(self, turn: Turn, frame: Frame, op: Operation, *, free_text: bool) -> bool:
        """Put values from this message into the frame; True when anything changed.

        Invalid values are not stored: the parameter is asked again with the reason.
        """
        values = _assign_entities(op, turn.interpretation, frame)
        asking = frame.asking
        if free_text and asking is not None and asking not in values:
            param = op.parameters.get(asking)
            text = turn.interpretation.text.strip()
            if param is not None and text and self._takes_free_text(turn, param):
                values[asking] = read_free_text(text) if param.type == "money" else text
        changed = False
        refused: tuple[str, Any, Invalid] | None = None
        unclear: tuple[str, Unclear] | None = None
        for name, raw in values.items():
            param = op.parameters[name]
            if isinstance(raw, Unclear):
                if raw.is_choice:
                    unclear = unclear or (name, raw)
                else:
                    refused = refused or (name, raw, Invalid(""))
                continue
            value = coerce(param, raw, previous=frame.params.get(name))
            if not isinstance(value, Invalid) and param.lookup is not None:
                value = await self._resolve(turn, frame, name, param, value)
            if isinstance(value, _LookupFailed):
                self._stop_for_lookup(turn, value)
                return changed
            if isinstance(value, Invalid):
                refused = refused or (name, raw, value)
                continue  # the other values of the same message still count
            if frame.params.get(name) != value:
                changed = True
            frame.params[name] = value
            if frame.asking == name:
                frame.asking = None
        if refused is not None:
            name, raw, why = refused
            if self._count_attempt(turn, frame, op, name):
                self._say_invalid(turn, name, op.parameters[name], raw, why)
                frame.asking = name
        if unclear is not None and turn.conversation.frame is frame:
            # not the user's mistake: asked which, and no attempt is counted
            name, which = unclear
            options = [_show(o, op.parameters[name]) for o in which.options]
            turn.say(
                self._render(self._responses["which_value"], turn, parameter=name, options=options)
            )
            frame.asking = name
        return changed

    def _takes_free_text(self, turn: Turn, param: Parameter) -> bool:
        # a whole message is taken as the answer unless it is clearly something else
        intent = turn.interpretation.intent
        if intent in self._affirm or intent in self._deny:
            return param.type == "boolean"
        return param.source == "entity"

    async def _advance(self, turn: Turn, frame: Frame) -> None:
        """Ask for the next missing value, ask for confirmation, or execute."""
        if turn.conversation.frame is not frame:
            return
        op = self.config.operations[frame.operation]
        if frame.asking is not None and frame.asking not in frame.params:
            self._ask(turn, frame.asking, op.parameters[frame.asking])
            return
        for name, param in op.parameters.items():
            if param.source != "entity" or name in frame.params:
                continue
            if param.default is not None:
                value = coerce(param, param.default)
                if not isinstance(value, Invalid) and param.lookup is not None:
                    value = await self._resolve(turn, frame, name, param, value)
                if isinstance(value, _LookupFailed):
                    self._stop_for_lookup(turn, value)
                    return
                if isinstance(value, Invalid):
                    # the project's default is not one of this user's: say so, not nothing
                    turn.conversation.frame = None
                    self._say_invalid(turn, name, param, param.default, value)
                    return
                frame.params[name] = value
                continue
            if not param.required:
                continue
            frame.asking = name
            self._ask(turn, name, param)
            return
        frame.asking = None
        if turn.conversation.frame is not frame:
            return
        if op.confirm is not None:
            await self._ask_confirmation(turn, frame, op)
            return
        await self._execute(turn, frame)

    async def _ask_confirmation(self, turn: Turn, frame: Frame, op: Operation) -> None:
        assert op.confirm is not None
        frame.status = "confirming"
        frame.confirm_digest = frame.digest()
        # New parameters, new key; made now, with the question, so that every "yes" to
        # this question (a double tap, a client retry, two workers that each loaded the
        # conversation before the other saved it) carries the same key and the backend
        # acts once.
        frame.idempotency_key = f"ib-{uuid.uuid4().hex}" if op.moves_money else None
        text = self._render(op.confirm.text, turn, params=frame.params)
        turn.say(text, buttons=self._confirm_buttons(frame, op))

    def _confirm_buttons(self, frame: Frame, op: Operation) -> tuple[Button, ...]:
        assert op.confirm is not None
        digest = frame.confirm_digest or ""
        yes = self.config.dialogue.affirm_intents[0]
        no = self.config.dialogue.deny_intents[0]
        return (
            Button(op.confirm.accept, f'/{yes}{{"confirm_digest": "{digest}"}}'),
            Button(op.confirm.decline, f"/{no}"),
        )

    def _ask(self, turn: Turn, name: str, param: Parameter) -> None:
        template = param.ask or self._responses["ask_default"]
        turn.say(self._render(template, turn, parameter=name))

    def _say_invalid(self, turn: Turn, name: str, param: Parameter, raw: Any, why: Invalid) -> None:
        if isinstance(raw, Unclear):
            # written so that it is no amount ("7*7 euros", "1e-3 euros")
            template = self._responses["unreadable"]
            turn.say(self._render(template, turn, parameter=name, value=raw.shown))
            return
        template = param.invalid or self._responses["invalid_default"]
        shown_value = _show(raw, param)
        turn.say(self._render(template, turn, parameter=name, value=shown_value, reason=why.reason))

    def _stop_for_lookup(self, turn: Turn, failed: _LookupFailed) -> None:
        """A value could not be checked against the user's data: stop, and say why."""
        turn.conversation.frame = None
        if failed.outcome == "not_found":
            # the backend does not know this user: there is nothing of theirs to use
            turn.say(self._render(self._responses["lookup_not_found"], turn))
            return
        template = self._responses.get(failed.outcome)
        if not isinstance(template, str):
            template = self._responses["error"]
        turn.say(self._render(template, turn, outcome=failed.outcome, reason=None))

    def _count_attempt(self, turn: Turn, frame: Frame, op: Operation, name: str) -> bool:
        """Count a failed attempt; False (and the frame dropped) when too many."""
        frame.attempts[name] = frame.attempts.get(name, 0) + 1
        if frame.attempts[name] >= op.max_attempts_per_parameter:
            turn.conversation.frame = None
            turn.say(self._render(self._responses["too_many_attempts"], turn, parameter=name))
            return False
        return True

    # --- lookups and execution ------------------------------------------------------------

    async def _resolve(
        self, turn: Turn, frame: Frame, name: str, param: Parameter, value: Any
    ) -> Any:
        """Check a spoken value against the user's own data.

        Returns the value, :class:`Invalid` (not one of the user's), or
        :class:`_LookupFailed` when the check itself failed (no internal outcome
        codes ever reach the user).
        """
        lookup = param.lookup
        assert lookup is not None
        result = turn.lookups.get(lookup.operation)
        if result is None:
            lookup_op = self.config.operations[lookup.operation]
            params = self._context_params(turn, lookup_op)
            result = await self.execute(
                lookup.operation,
                params,
                conversation_id=turn.conversation.id,
                user_id=turn.identity.user_id,
            )
            turn.lookups[lookup.operation] = result
        if not result.ok:
            return _LookupFailed(result.outcome)
        items = jmespath.search(lookup.items, result.data) if result.data is not None else None
        if not isinstance(items, list):
            return _LookupFailed("error")
        wanted = str(value).strip().lower()
        options = []
        for item in items:
            if not isinstance(item, dict):
                continue
            options.append(str(item.get(lookup.match, "")))
            candidates = {str(item.get(lookup.match, "")).lower(), str(item.get(lookup.value, ""))}
            if wanted in {c.lower() for c in candidates}:
                frame.resolved[name] = item.get(lookup.value)
                return item.get(lookup.match, value)
        return Invalid("the options are " + ", ".join(o for o in options if o))

    def _context_params(self, turn: Turn, op: Operation) -> dict[str, Any]:
        """Parameters that come from the user, the conversation or constants."""
        out: dict[str, Any] = {}
        for name, param in op.parameters.items():
            if param.source == "user":
                assert param.field is not None
                out[name] = turn.profile.get(param.field)
            elif param.source == "conversation":
                assert param.slot is not None
                out[name] = turn.conversation.slots.get(param.slot, param.default)
            elif param.source == "constant":
                out[name] = param.value
        return out

    async def _execute(self, turn: Turn, frame: Frame) -> None:
        conv = turn.conversation
        op = self.config.operations[frame.operation]
        params = {**self._context_params(turn, op), **frame.params, **frame.resolved}
        missing = [
            n
            for n, p in op.parameters.items()
            if p.required and p.source != "entity" and params.get(n) is None
        ]
        if missing:
            conv.frame = None
            turn.say(self._render(self._responses["denied"], turn))
            return
        key = None
        if op.moves_money:
            # the key made with the confirmation question, or kept from a crashed attempt
            key = frame.idempotency_key or f"ib-{uuid.uuid4().hex}"
            frame.idempotency_key = key
            frame.status = "executing"
            assert key is not None
            # the key is durable before the request leaves: a crash now cannot lead to
            # a second transfer, because the retry after restart reuses this key
            await self.store.put_pending(
                PendingOperation(
                    idempotency_key=key,
                    conversation_id=conv.id,
                    operation=frame.operation,
                    params={
                        "call": encode_value(params),
                        "shown": encode_value(frame.params),
                        "user_id": turn.identity.user_id,
                    },
                    created_at=time.time(),
                )
            )
            await self.store.save_conversation(conv.id, conv.to_json())
        result = await self.execute(
            frame.operation,
            params,
            conversation_id=conv.id,
            user_id=turn.identity.user_id,
            idempotency_key=key,
        )
        if key is not None:
            status = {"ok": "done", "outcome_unknown": "unknown"}.get(result.outcome, "failed")
            await self.store.finish_pending(key, status, result.outcome)  # type: ignore[arg-type]
        conv.frame = None
        if result.ok:
            conv.last_operation = frame.operation
            conv.last_params = dict(frame.params)
            for name, param in op.parameters.items():
                if param.remember and name in frame.params:
                    conv.slots[param.remember] = frame.params[name]
        template = op.reply.get(result.outcome) or self._outcome_template(result, op)
        text = self._render(
            template,
            turn,
            params=frame.params,
            resolved=frame.resolved,
            data=result.data,
            reason=result.error,
            outcome=result.outcome,
        )
        turn.say(text)
        if result.ok and op.moves_money:
            # a later stray "yes" (a client that lost this answer and retries) is told
            # it was done, not sent to the fallback, and nothing runs twice
            conv.completed_reply = text.strip()

    def _outcome_template(self, result: Result, op: Operation) -> str:
        if result.ok:
            return "Done."
        name: str = result.outcome
        if name == "not_found" and op.is_about_the_user:
            name = "user_not_found"  # the backend does not know this user at all
        template = self._responses.get(name)
        return template if isinstance(template, str) else self._responses["error"]

    # --- helpers ----------------------------------------------------------------------------

    async def _carry_over(self, turn: Turn) -> bool:
        """'and savings?' after a balance: the last operation again with the new value."""
        conv = turn.conversation
        interp = turn.interpretation
        if conv.last_operation is None or conv.last_operation not in self.config.operations:
            return False
        if interp.intent not in self._inform and interp.intent != FALLBACK_INTENT:
            return False
        op = self.config.operations[conv.last_operation]
        frame = Frame(operation=conv.last_operation)
        if not _assign_entities(op, interp, frame):
            return False
        conv.frame = frame
        conv.completed_reply = None
        await self._fill(turn, frame, op, free_text=False)
        if conv.frame is not frame:
            return True
        for name, value in conv.last_params.items():
            param = op.parameters.get(name)
            if param is None or name in frame.params or frame.asking == name:
                continue
            carried = value
            if param.lookup is not None:
                # resolved ids are not carried: the spoken value is checked again
                carried = await self._resolve(turn, frame, name, param, value)
                if isinstance(carried, Invalid | _LookupFailed):
                    continue
            frame.params[name] = carried
        return True

    def _switches(self, turn: Turn, frame: Frame) -> bool:
        interp = turn.interpretation
        target = self.config.operation_for_intent(interp.intent)
        return (
            target is not None
            and target[0] != frame.operation
            and interp.confidence >= SWITCH_CONFIDENCE
        )

    def _entities_fit(self, turn: Turn, op: Operation) -> bool:
        """Whether every entity of the message is something ``op`` takes.

        "from savings" while a payment is being filled is an answer, even if the NLU
        leans towards "transfer"; "pay Mallory 10 euros" while a transfer is being filled
        is a new request, because no parameter of a transfer takes a payee.
        """
        entities = turn.interpretation.entities
        if not entities:
            return False
        used = _assignment(op, turn.interpretation, Frame(operation=""))[1]
        return used >= len(entities)

    def _op_for(self, intent: str) -> str:
        found = self.config.operation_for_intent(intent)
        assert found is not None
        return found[0]

    def _help_text(self) -> str:
        described = [
            op.description or name.replace("_", " ")
            for name, op in self.config.operations.items()
            if op.intent is not None
        ]
        return render(self._responses["help"], operations=described)

    def _render(self, template: str, turn: Turn, **extra: Any) -> str:
        context: dict[str, Any] = {
            "user": dict(turn.profile),
            "slots": turn.conversation.slots,
            "params": {},
        }
        context.update(extra)
        return render(template, **context)


def _assign_entities(op: Operation, interp: Interpretation, frame: Frame) -> dict[str, Any]:
    """Which parameter each entity of the message fills (raw values, not yet checked).

    A numeric parameter takes all the mentions meant for it and
    :func:`~intentbridge.dialogue.amounts.pick_amount` reads them in the message: its
    value may be an :class:`~intentbridge.dialogue.amounts.Unclear` to ask about.
    """
    return _assignment(op, interp, frame)[0]


def _assignment(op: Operation, interp: Interpretation, frame: Frame) -> tuple[dict[str, Any], int]:
    """:func:`_assign_entities`, and how many of the message's entities it used."""
    entities = interp.entities
    out: dict[str, Any] = {}
    used: set[int] = set()
    entity_params = {n: p for n, p in op.parameters.items() if p.source == "entity"}

    def take(name: str, match: Callable[[Entity], bool]) -> None:
        found = [i for i, ent in enumerate(entities) if i not in used and match(ent)]
        if not found:
            return
        param = entity_params[name]
        if param.type not in _NUMERIC:
            used.add(found[0])
            out[name] = entities[found[0]].value
            return
        # every mention meant for a number is weighed, not just the first one
        used.update(found)
        value = pick_amount(interp.text, [entities[i] for i in found], money=param.type == "money")
        if value is not None:
            out[name] = value

    # exact entity + role first, then entities for parameters without a role
    for name, p in entity_params.items():
        if p.role is not None:
            take(name, _is(p.entity or name, p.role))
    for name, p in entity_params.items():
        if name not in out and p.role is None:
            take(name, _is(p.entity or name))
    # role-less mentions go to the parameter being asked, then to the missing ones in order
    order = sorted(
        (n for n in entity_params if n not in out),
        key=lambda n: (n != frame.asking, n in frame.params),
    )
    for name in order:
        take(name, _is(entity_params[name].entity or name, None, exact_role=True))
    # a bare number or amount corrects the one numeric parameter ("make it 30")
    numeric = [n for n, p in entity_params.items() if p.type in _NUMERIC]
    if len(numeric) == 1 and numeric[0] not in out:
        take(numeric[0], _is_numeric)
    for name in numeric:
        if entity_params[name].type == "money" and name not in out:
            # "move 1e-3 euros": no entity, but the user did give an amount; say why
            # it is not taken rather than just ask for one
            unread = unread_amount(interp.text, entities)
            if unread is not None:
                out[name] = unread
            break
    return out, len(used)


def _show(value: Any, param: Parameter) -> Any:
    """A value as a reply shows it: amounts in plain decimals, never "1E-27"."""
    if isinstance(value, Money):
        return format_money(value, param.default_currency)
    if isinstance(value, float):
        value = Decimal(str(value))
    if isinstance(value, Decimal):
        return format(value, "f")
    return value


def _is(
    entity: str, role: str | None = None, *, exact_role: bool = False
) -> Callable[[Entity], bool]:
    """A test for entities called ``entity`` (with ``role``, when one is asked for)."""

    def match(ent: Entity) -> bool:
        if ent.entity != entity:
            return False
        return ent.role == role if (role is not None or exact_role) else True

    return match


def _is_numeric(ent: Entity) -> bool:
    return isinstance(ent.value, Money | int | float) or ent.entity in {"number", "amount", "money"}
