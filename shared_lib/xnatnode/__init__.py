"""xnatnode: Container Service commands that look after the data of an XNAT imaging node."""

__version__ = "0.1.0"
