"""SysOps Agent: a lightweight, security-minded monitoring daemon for Linux servers."""

__version__ = "0.1.0"
