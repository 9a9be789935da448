"""Starts moto's server with S3 objects already stored, put through moto's own S3 backend.

Used by tests that need tens of thousands of objects: moto serves a PUT over HTTP in several
milliseconds (50,000 take minutes on a busy machine), while its backend stores one in well under a
millisecond. The objects are moto's own (the same FakeKey a PUT makes, with a version id in a
versioned bucket and the SHA-256 checksum a PUT with x-amz-checksum-sha256 leaves), served by the
same server code over HTTP; only the transport of the seeding requests is skipped.

Usage: moto_seeded.py SEED_JSON OUT_JSON [moto_server arguments...]
SEED_JSON: {"buckets": [{"name": str, "versioned": bool,
                         "objects": [{"prefix": str, "count": int, "body": str,
                                      "tags": {str: str} (optional)}]}]}
  each object group makes `count` keys `prefix + 6-digit index`, body `body + index + "\\n"`,
  tagged with `tags` as a PUT with an x-amz-tagging header tags it (the runner's "retention=pending").
OUT_JSON receives [{"key", "versionId", "size", "sha256" (hex), "checksumSHA256" (base64)}].
"""

import base64
import hashlib
import json
import sys

from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends
from moto.server import main


def seed(spec_file: str, out_file: str) -> None:
    with open(spec_file, encoding="utf-8") as f:
        spec = json.load(f)
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    written = []
    for bucket in spec["buckets"]:
        backend.create_bucket(bucket["name"], "us-east-1")
        if bucket.get("versioned"):
            backend.put_bucket_versioning(bucket["name"], "Enabled")
        for group in bucket.get("objects", []):
            for i in range(group["count"]):
                key = f"{group['prefix']}{i:06d}"
                body = f"{group['body']}{i}\n".encode()
                digest = hashlib.sha256(body).digest()
                checksum = base64.b64encode(digest).decode()
                stored = backend.put_object(bucket["name"], key, body, checksum_value=checksum)
                stored.checksum_algorithm = "SHA256"
                if group.get("tags"):
                    backend.put_object_tagging(stored, group["tags"])
                written.append(
                    {
                        "key": key,
                        "versionId": stored.version_id,
                        "size": len(body),
                        "sha256": digest.hex(),
                        "checksumSHA256": checksum,
                    }
                )
    with open(out_file, "w", encoding="utf-8") as f:
        json.dump(written, f)


if __name__ == "__main__":
    seed(sys.argv[1], sys.argv[2])
    main(sys.argv[3:])
