"""Bot projects: ``bot.yaml`` schema and loading."""

from intentbridge.project.loader import BotProject, load_project, parse_config
from intentbridge.project.schema import BotConfig, Operation, Parameter

__all__ = ["BotConfig", "BotProject", "Operation", "Parameter", "load_project", "parse_config"]
