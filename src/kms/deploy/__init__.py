"""Kubernetes rendering of the stack: the stack file, profiles, values per chart, own manifests,
lint and image lists. ``kms init|render|lint|images`` are in :mod:`kms.deploy.commands`."""

from kms.deploy.load import StackFileError, load_stack
from kms.deploy.model import PROFILES, Stack
from kms.deploy.profiles import Part, build
from kms.deploy.render import RenderRefused, render

__all__ = ["PROFILES", "Stack", "StackFileError", "load_stack", "Part", "build", "render", "RenderRefused"]
