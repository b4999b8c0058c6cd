"""Security core of the operator console (安全服务): accounts, roles, sessions, CSRF, login rate limiting,
API tokens and the tamper-evident audit ledger.

Wiring is one call: ``broadcast.security.install.install(app, engine, clock)``. Owns authentication and
authorisation; must never hold broadcast business rules.
"""
