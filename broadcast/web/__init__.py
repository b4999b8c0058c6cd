"""The controller's HTTP face: REST API, audio files for terminals, and (later) the console."""
