"""The controller's HTTP face: the REST API, the operator console, and the audio files terminals fetch.

Route modules only: each is given the parts it uses when it registers its routes and never reaches a
composition root; ``broadcast.app.web`` assembles them. Never holds business rules.
"""
