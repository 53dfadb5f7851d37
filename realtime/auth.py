"""Who may open a price stream (PROTOCOL.md "Who may connect")."""

from channels.auth import AuthMiddlewareStack

RealtimeAuthMiddlewareStack = AuthMiddlewareStack
