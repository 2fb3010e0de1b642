"""OTLP receivers (gRPC and HTTP) and body handling. Knows nothing of storage or the server."""

from kms.otlp.body import content_kind, decompress, json_to_protobuf
from kms.otlp.grpc import OtlpGrpcServer
from kms.otlp.http import otlp_routes, read_body

__all__ = ["OtlpGrpcServer", "otlp_routes", "read_body", "content_kind", "decompress", "json_to_protobuf"]
