"""An example of your own tool code for a toolsets file (see toolsets-own-code.yaml).

A tool is a plain function called with the call's arguments as keyword arguments, after they
were validated against the tool's JSON schema. Return something JSON can encode; raise an
exception for a failed call (the model is shown the error message). Keep it deterministic and
quick: the service runs it with a time limit (`tool_timeout_s`, 2 s by default).
"""


def word_count(text: str) -> int:
    """How many whitespace-separated words `text` has."""
    return len(text.split())
