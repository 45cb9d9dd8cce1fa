"""The interpreter protocol: what the dialogue layer calls to understand a message.

Anything with ``async def interpret(text) -> Interpretation`` is an interpreter: the
in-process model below, an LLM tool-calling interpreter, or a remote NLU service.

>>> interpreter = ModelInterpreter(NluModel.load("models/nlu"))
>>> (await interpreter.interpret("move 50 euros to savings")).intent
'transfer_money'
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from intentbridge.types import Interpretation
from intentbridge.understanding.model import NluModel


@runtime_checkable
class Interpreter(Protocol):
    """Turns message text into an :class:`~intentbridge.types.Interpretation`.

    >>> class Echo:
    ...     async def interpret(self, text: str) -> Interpretation:
    ...         return Interpretation(text=text, intent="echo", confidence=1.0)
    """

    async def interpret(self, text: str) -> Interpretation:
        """Understand ``text``."""
        ...


class ModelInterpreter:
    """An :class:`Interpreter` backed by an in-process :class:`NluModel`.

    Parsing takes about a millisecond, so it runs inline on the event loop; handing
    it to a thread would cost more than it saves.
    """

    def __init__(self, model: NluModel) -> None:
        self.model = model

    @classmethod
    def from_directory(cls, directory: Path | str) -> ModelInterpreter:
        """Load the model saved in ``directory``."""
        return cls(NluModel.load(directory))

    async def interpret(self, text: str) -> Interpretation:
        """Understand ``text`` with the model."""
        return self.model.parse(text)
