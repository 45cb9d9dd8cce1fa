"""A small stand-in for a bank's core system, used by the IntentBridge banking example.

It is a separate FastAPI + SQLite service: the chatbot reaches it over HTTP with OAuth2
client credentials, exactly as it would reach a real core bank.
"""

from .app import app_from_env, create_app

__all__ = ["app_from_env", "create_app"]
