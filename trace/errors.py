"""The error family of the Suyuan core: every failure a caller may see is one of these."""

from __future__ import annotations


class SuyuanError(Exception):
    """Base of every error raised by the Suyuan core."""


class NotFound(SuyuanError, LookupError):
    """Something asked for (an entry, a key, an actor, a checkpoint) does not exist."""


class ConfigError(SuyuanError):
    """The installation is not set up as the command needs (no log, no key, bad URL)."""


class KeyStoreError(SuyuanError):
    """A key file is missing, unreadable, would be overwritten, or the passphrase is wrong."""


class MalformedInput(SuyuanError, ValueError):
    """Input that cannot be parsed or has the wrong shape or types."""


class Rejected(SuyuanError):
    """A well-formed statement the log refuses to append.

    ``reason`` is a short machine-readable code; the message is for people.
    """

    reason = "rejected"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class UnknownKey(Rejected):
    """The statement names an actor or key the registry does not know."""

    reason = "unknown_key"


class RevokedKey(Rejected):
    """The statement was signed with a key revoked before this point of the log."""

    reason = "revoked_key"


class Duplicate(Rejected):
    """The statement is already in the log (a replay); ``index`` is where it is."""

    reason = "duplicate"

    def __init__(self, message: str, *, index: int) -> None:
        super().__init__(message)
        self.index = index


class NotPermitted(Rejected):
    """The actor's role does not allow this statement."""

    reason = "not_permitted"


class UnknownReference(Rejected):
    """The statement names a lot, product, location, shipment or actor the log does not know."""

    reason = "unknown_reference"


class CustodyViolation(Rejected):
    """The actor does not hold what it ships, transforms or sells, or receives what was not
    shipped to it."""

    reason = "custody"


class ChronologyViolation(Rejected):
    """The event is dated before something it depends on (the lot's creation, a shipment)."""

    reason = "chronology"


class QuantityExceeded(Rejected):
    """More is shipped, transformed or sold than the actor holds."""

    reason = "mass_balance"


class VerificationError(SuyuanError):
    """An integrity check failed. ``index`` names the first bad entry when there is one;
    ``checkpoint`` names the size of a bad checkpoint when the fault is in a checkpoint."""

    def __init__(
        self, message: str, *, index: int | None = None, checkpoint: int | None = None
    ) -> None:
        super().__init__(message)
        self.index = index
        self.checkpoint = checkpoint


class BadSignature(VerificationError):
    """A signature does not verify under the key it claims."""


class ChainBroken(VerificationError):
    """An entry's index or prev hash does not follow from the entry before it."""


class RootMismatch(VerificationError):
    """A Merkle root or stored tree node differs from the one recomputed from the leaves."""


class ProofError(VerificationError):
    """An inclusion or consistency proof is malformed or does not verify."""


class InclusionProofError(ProofError):
    """An inclusion proof does not prove the leaf is in the tree."""


class ConsistencyProofError(ProofError):
    """A consistency proof does not prove the older tree is a prefix of the newer one."""


class NoteError(VerificationError):
    """A signed note, checkpoint, cosignature or tlog-proof is malformed or not validly signed."""


class DamagedRecord(VerificationError):
    """A stored value is not of the type the log writes (a hash stored as text or a number,
    say): the database was changed outside the log."""


class InconsistentCheckpoint(VerificationError):
    """A checkpoint is not consistent with an earlier one (a fork, or a log that shrank)."""
