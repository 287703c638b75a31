"""musebridge: a realtime bridge between a DAW and neural music models."""

__version__ = "0.1.0"
