"""A running bot: one message in, replies out, along DESIGN.md's path.

channel → identity → conversation (locked, loaded) → understanding → dialogue →
integration → reply; the conversation is saved after every turn.

>>> bot = await Bot.from_project(load_project("examples/banking"))
>>> await bot.handle(Message(text="what's my balance?", sender="alice"))
[Reply(text='checking: 1,250.50 EUR ...')]
>>> await bot.aclose()
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from intentbridge.conversation.locks import ConversationLocks
from intentbridge.conversation.pending import PendingResolver
from intentbridge.conversation.shared_locks import RedisConversationLock
from intentbridge.conversation.state import Conversation, Turn
from intentbridge.dialogue.engine import DialogueEngine
from intentbridge.dialogue.engine import Turn as DialogueTurn
from intentbridge.dialogue.payload import parse_payload
from intentbridge.errors import StoreError
from intentbridge.integration.deadline import deadline_scope
from intentbridge.integration.executor import Integrations
from intentbridge.integration.rate_limits import IncomingLimiter
from intentbridge.integration.records import CallRecord
from intentbridge.integration.redis import is_redis_url
from intentbridge.integration.templates import render
from intentbridge.observability import metrics
from intentbridge.observability.hooks import LoggingHook, MetricsHook
from intentbridge.observability.tracing import current_trace_id, span
from intentbridge.project.loader import BotProject
from intentbridge.project.model import load_or_train
from intentbridge.project.schema import BotConfig
from intentbridge.stores import AuditEntry, Store, open_store
from intentbridge.types import (
    FALLBACK_INTENT,
    Button,
    Identity,
    Interpretation,
    Message,
    Middleware,
    Reply,
)
from intentbridge.understanding.interpreter import Interpreter

log = structlog.get_logger("intentbridge.bot")

STORE_ENV = "INTENTBRIDGE_STORE"


@dataclass(frozen=True)
class BotSettings:
    """Knobs that are about running, not about the bot itself."""

    store_url: str | None = None
    lock_timeout: float = 10.0
    retrain: bool = False


class Bot:
    """Understands messages, keeps conversations, calls backends, answers."""

    def __init__(
        self,
        project: BotProject,
        interpreter: Interpreter,
        integrations: Integrations,
        store: Store,
        settings: BotSettings | None = None,
    ) -> None:
        self.project = project
        self.config = project.config
        self.interpreter = interpreter
        self.integrations = integrations
        self.store = store
        self.settings = settings or BotSettings()
        self.dialogue = DialogueEngine(self.config, integrations.execute, store)
        self.locks = ConversationLocks(
            timeout=self.settings.lock_timeout, shared=_shared_lock(self.config, integrations)
        )
        self._intents = _known_intents(self.config, interpreter)
        self.pending = PendingResolver(self.config, store, integrations.execute, self.notify)
        self.incoming = IncomingLimiter(
            self.config.limits, integrations.rate_limits, hooks=(MetricsHook(), LoggingHook())
        )

    @classmethod
    async def from_project(
        cls,
        project: BotProject,
        settings: BotSettings | None = None,
        *,
        middleware: Sequence[Middleware] = (),
    ) -> Bot:
        """Assemble a bot: train or load the NLU, open the store, prepare backends.

        ``middleware`` runs around every backend call, after the built-in observers.
        """
        settings = settings or BotSettings()
        # custom middleware named in bot.yaml (package.module:factory) lives in the project
        if str(project.root) not in sys.path:
            sys.path.append(str(project.root))
        store_url = settings.store_url or os.environ.get(STORE_ENV) or project_store_url(project)
        store = open_store(store_url)
        observers = (MetricsHook(), LoggingHook())  # take call records and decisions alike
        # built first: it checks templates and middleware, so a mistake in bot.yaml is
        # reported before the store is opened or the NLU trained
        integrations = Integrations.from_config(
            project.config,
            middleware=middleware,
            hooks=[_AuditHook(store), *observers],
            decision_hooks=observers,
        )
        await store.open()
        model = await asyncio.to_thread(load_or_train, project, force=settings.retrain)
        return cls(project, model, integrations, store, settings)

    def start_background(self) -> None:
        """Start settling unknown outcomes (at once for what a restart left behind)."""
        self.pending.start()

    async def aclose(self) -> None:
        await self.pending.stop()
        await self.incoming.aclose()
        await self.integrations.aclose()
        await self.store.close()

    async def ready(self) -> dict[str, bool]:
        """Whether the store and each backend answer."""
        checks = {"store": await self.store.ping()}
        for name, ok in (await self.integrations.check_ready()).items():
            checks[f"backend:{name}"] = ok
        return checks

    async def handle(self, message: Message) -> list[Reply]:
        """Handle one message; never raises for backend problems.

        The whole turn runs under the channel's deadline: backend timeouts are clipped
        to what is left, and retries never wait past it. With tracing on it is one
        trace: ``intentbridge.turn`` → understanding, dialogue → each call attempt.
        """
        with span("intentbridge.turn", attributes={"intentbridge.channel": message.channel}):
            return await self._handle(message)

    async def _handle(self, message: Message) -> list[Reply]:
        identity = message.identity or Identity(user_id=message.sender, channel=message.channel)
        conversation_id = conversation_key(message.channel, message.sender)
        if not await self.incoming.allow(conversation_id):
            text = render(self.config.responses.too_many_messages)
            return [Reply(text=text, recipient_id=message.sender)]
        deadline = self.config.channel(message.channel).deadline
        async with self.locks.hold(conversation_id):
            conv = await self._load(conversation_id, identity)
            if message.message_id:
                seen = conv.replies_for(message.message_id)
                if seen is not None:
                    # a client retry of a message already answered: same answer, no new work
                    return [_reply_from_json(r, message.sender) for r in seen]
            started = time.perf_counter()
            with deadline_scope(deadline):
                with span("intentbridge.understanding") as understanding:
                    interpretation = await self._understand(message.text)
                    understanding.set_attribute("intentbridge.intent", interpretation.intent)
                    understanding.set_attribute(
                        "intentbridge.confidence", interpretation.confidence
                    )
                turn = DialogueTurn(
                    conversation=conv,
                    identity=identity,
                    interpretation=interpretation,
                    profile=self._profile(identity),
                )
                with span("intentbridge.dialogue"):
                    replies = await self.dialogue.respond(turn)
            # news that arrived since the last turn (a resolved transfer, an incoming
            # payment) is delivered before the answer to this message
            replies = [Reply(m["text"]) for m in conv.take_outbox()] + replies
            keep = self.config.dialogue.history_turns
            now = time.time()
            conv.turn_count += 1
            conv.remember_turn(Turn("user", message.text, now, interpretation.intent), keep)
            for reply in replies:
                conv.remember_turn(Turn("bot", reply.text, now), keep)
            if message.message_id:
                conv.mark_handled(message.message_id, [_reply_json(r) for r in replies])
            await self.store.save_conversation(conversation_id, conv.to_json())
            latency = time.perf_counter() - started
            metrics.observe_turn(
                latency,
                intent=metrics.intent_label(interpretation.intent, self._intents),
                fallback=interpretation.intent == FALLBACK_INTENT,
            )
            log.info(
                "turn",
                conversation_id=conversation_id,
                intent=interpretation.intent,
                confidence=round(interpretation.confidence, 3),
                replies=len(replies),
                latency_ms=round(latency * 1000, 2),
                trace_id=current_trace_id(),
            )
        return [Reply(text=r.text, buttons=r.buttons, recipient_id=message.sender) for r in replies]

    async def notify(
        self,
        conversation_id: str,
        user_id: str,
        text: str,
        *,
        message_id: str,
        settles_key: str | None = None,
        done_reply: str | None = None,
    ) -> None:
        """Queue a proactive message in a conversation's outbox.

        ``settles_key``: the message reports the outcome of the money-moving call with
        this idempotency key, so a frame still waiting on that call is closed.
        ``done_reply``: that call was carried out, and this is its reply; while no other
        request is open, a later "yes" is told it was already done (``already_done``)
        rather than that nothing is waiting — however the news itself is delivered.
        """
        async with self.locks.hold(conversation_id):
            conv = await self._load(conversation_id, Identity(user_id=user_id))
            if settles_key is not None:
                if conv.frame is not None and conv.frame.idempotency_key == settles_key:
                    conv.frame = None
                if done_reply and conv.frame is None:
                    conv.completed_reply = done_reply
            conv.notify(text, now=time.time(), message_id=message_id)
            await self.store.save_conversation(conversation_id, conv.to_json())

    async def take_outbox(self, conversation_id: str, user_id: str) -> list[Reply]:
        """Deliver (and remove) the proactive messages waiting in a conversation."""
        async with self.locks.hold(conversation_id):
            raw = await self.store.load_conversation(conversation_id)
            if raw is None:
                return []
            conv = Conversation.from_json(raw)
            messages = conv.take_outbox()
            if messages:
                await self.store.save_conversation(conversation_id, conv.to_json())
        return [Reply(m["text"], recipient_id=user_id) for m in messages]

    async def _load(self, conversation_id: str, identity: Identity) -> Conversation:
        try:
            raw = await self.store.load_conversation(conversation_id)
        except StoreError:
            log.exception("conversation_load_failed", conversation_id=conversation_id)
            raise
        if raw is None:
            return Conversation(id=conversation_id, user_id=identity.user_id)
        return Conversation.from_json(raw)

    async def _understand(self, text: str) -> Interpretation:
        payload = parse_payload(text)
        if payload is not None:
            return payload
        interpretation = await self.interpreter.interpret(text)
        metrics.NLU_CONFIDENCE.observe(interpretation.confidence)  # payloads would skew it
        threshold = self.config.nlu.threshold
        if threshold is not None and interpretation.confidence < threshold:
            return Interpretation(
                text=interpretation.text,
                intent=FALLBACK_INTENT,
                confidence=interpretation.confidence,
                entities=interpretation.entities,
                ranking=interpretation.ranking,
            )
        return interpretation

    def _profile(self, identity: Identity) -> Mapping[str, Any]:
        profile: dict[str, Any] = dict(self.config.users.get(identity.user_id, {}))
        profile["user_id"] = identity.user_id
        profile["channel"] = identity.channel
        return profile


class _AuditHook:
    """Writes every backend call to the store's audit trail."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def __call__(self, record: CallRecord) -> None:
        try:
            await self.store.add_audit(
                AuditEntry(
                    conversation_id=record.conversation_id,
                    user_id=record.user_id,
                    operation=record.operation,
                    backend=record.backend,
                    method=record.method,
                    path=record.path,
                    outcome=record.outcome,
                    params=dict(record.params),
                    idempotency_key=record.idempotency_key,
                    status_code=record.status_code,
                    latency_ms=record.latency_ms,
                    attempts=record.attempts,
                    error=record.error,
                    trace_id=record.trace_id,
                    timestamp=record.timestamp.timestamp(),
                )
            )
        except StoreError:
            # an audit write must not break the conversation; it is logged loudly instead
            log.exception("audit_write_failed", operation=record.operation)


def _known_intents(config: BotConfig, interpreter: Interpreter) -> frozenset[str]:
    """Intents metrics may name: the model's, the operations' and the fallback."""
    model = getattr(interpreter, "model", None)
    names = {str(name) for name in getattr(model, "classes", ())}
    names.update(op.intent for op in config.operations.values() if op.intent)
    names.add(FALLBACK_INTENT)
    return frozenset(names)


def conversation_key(channel: str, sender: str) -> str:
    """The id of the conversation of ``sender`` on ``channel``."""
    return f"{channel}:{sender}"


def _reply_json(reply: Reply) -> dict[str, Any]:
    return {"text": reply.text, "buttons": [[b.title, b.payload] for b in reply.buttons]}


def _reply_from_json(data: dict[str, Any], recipient: str) -> Reply:
    buttons = tuple(Button(title, payload) for title, payload in data.get("buttons", []))
    return Reply(text=data["text"], buttons=buttons, recipient_id=recipient)


def project_store_url(project: BotProject) -> str:
    """The store URL of a project, a relative SQLite path taken from the project folder."""
    url = project.config.store.url
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        relative = url.removeprefix("sqlite:///")
        return f"sqlite:///{project.root / relative}"
    return url


def _shared_lock(config: BotConfig, integrations: Integrations) -> RedisConversationLock | None:
    """Workers share conversation locks where they share limits: in Redis, if set."""
    url = config.limits.storage_url
    if not is_redis_url(url):
        return None
    return RedisConversationLock(
        integrations.redis.get(url), prefix=f"{config.limits.key_prefix}:lock:{config.name}"
    )
