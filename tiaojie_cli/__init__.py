"""The ``tiaojie`` command."""
