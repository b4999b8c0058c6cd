"""Transmission adapters (适配器): each drives one kind of transmission system or terminal."""
