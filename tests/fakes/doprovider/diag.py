"""Diagnostics as the provider reports them to Terraform (typed, tfplugin6 messages)."""

from __future__ import annotations

from dataclasses import dataclass, field

from tf.gen import tfplugin_pb2 as pb

Path = tuple[str | int, ...]
"""Attribute path: names are attribute steps, ints index list elements."""


@dataclass(frozen=True)
class Diagnostic:
    """One error or warning, optionally pointing at an attribute."""

    severity: str
    summary: str
    detail: str = ""
    path: Path = ()

    def to_pb(self) -> pb.Diagnostic:
        """The tfplugin6 message; Terraform shows `path` as a source location."""
        msg = pb.Diagnostic(
            severity=pb.Diagnostic.ERROR if self.severity == "error" else pb.Diagnostic.WARNING,
            summary=self.summary,
            detail=self.detail,
        )
        if self.path:
            msg.attribute.CopyFrom(attribute_path(self.path))
        return msg


def attribute_path(path: Path) -> pb.AttributePath:
    """Encode a path of attribute names and list indexes."""
    steps = [
        pb.AttributePath.Step(element_key_int=s)
        if isinstance(s, int)
        else pb.AttributePath.Step(attribute_name=s)
        for s in path
    ]
    return pb.AttributePath(steps=steps)


@dataclass
class Diagnostics:
    """Collects diagnostics for one RPC."""

    items: list[Diagnostic] = field(default_factory=list)

    def error(self, summary: str, detail: str = "", path: Path = ()) -> None:
        """Add an error; the operation fails."""
        self.items.append(Diagnostic("error", summary, detail, path))

    def warning(self, summary: str, detail: str = "", path: Path = ()) -> None:
        """Add a warning; Terraform prints it and carries on."""
        self.items.append(Diagnostic("warning", summary, detail, path))

    def has_errors(self) -> bool:
        """Whether any error was added."""
        return any(d.severity == "error" for d in self.items)

    def to_pb(self) -> list[pb.Diagnostic]:
        """All diagnostics as tfplugin6 messages."""
        return [d.to_pb() for d in self.items]
