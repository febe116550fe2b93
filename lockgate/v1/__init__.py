"""Generated from proto/lockgate/v1 by scripts/gen_proto.py."""
