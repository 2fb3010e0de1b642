"""Line positions of YAML keys, for the stack file's errors and lint findings (:mod:`kms.yamlpos`)."""

from kms.yamlpos import positions

__all__ = ["positions"]
