"""Suyuan (溯源): a verifiable, append-only traceability ledger.

The core library: statements, entries, the RFC 9162 Merkle log, C2SP notes,
storage and the ``suyuan`` command. It imports nothing from the web layer.
"""

__version__ = "0.1.0"
