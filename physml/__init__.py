"""The front door: the ``physml`` command and the demo that runs every part of the suite."""
