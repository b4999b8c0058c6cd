"""Information sources (信息源): CAP feeds and other inputs turned into message drafts.

Modules here parse and convert; they never dispatch, render audio or decide policy.
"""
