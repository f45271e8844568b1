"""The thin Click layer: parse options, call one core function, map errors to exit codes."""
