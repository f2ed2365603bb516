"""The compile flow's error type (its own module, so the config and the build layout can both raise it)."""


class FlowError(RuntimeError):
    """A build that cannot go on; the message names the file, node, layer or step and says what to do."""
