"""Proves harness/moto_server.py's faster ListObjectVersions answers as moto's own does.

Builds a versioned bucket in moto's S3 backend (keys under several prefixes, several versions each,
delete markers, names that sort around the prefixes) and asks both implementations the same
questions: every prefix, with and without a delimiter, every key marker and version id marker a
real walk through the pages produces, and page sizes from 1 to past the bucket. Compares the whole
answer (versions, common prefixes, delete markers, next markers). Prints "ok N" with the number of
questions, or the first difference and exits 1.

Usage: moto_server_check.py [SEED]
"""

import hashlib
import random
import sys
import threading
import time

import moto_server
from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends


def answer(result: tuple) -> tuple:
    versions, prefixes, markers, next_key, next_version = result
    return (
        [
            (v.name, v.version_id, v.is_latest, v.size, v.etag, v.last_modified_ISO8601, v.storage_class)
            for v in versions
        ],
        list(prefixes),
        [(m.name, m.version_id, m.is_latest, m.last_modified_ISO8601) for m in markers],
        next_key,
        next_version,
    )


def main() -> None:
    rng = random.Random(int(sys.argv[1]) if len(sys.argv) > 1 else 19)
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    bucket = "check-bucket"
    backend.create_bucket(bucket, "us-east-1")
    backend.put_bucket_versioning(bucket, "Enabled")
    names = [
        f"{top}/{sub}/{i:03d}"
        for top in ("a", "a-b", "b", "t-0001", "t-0002")
        for sub in ("x", "y")
        for i in range(rng.randint(0, 4))
    ] + ["a", "a/", "b/y", "z"]
    for name in names:
        for _ in range(rng.randint(1, 3)):
            backend.put_object(bucket, name, b"v")
        if rng.random() < 0.25:
            backend.delete_object(bucket, name)

    original = moto_server._original_list_object_versions
    moto_server.faster()
    faster = moto_server._list_object_versions
    asked = 0
    for prefix in ("", "a", "a/", "a/x/", "b", "t-000", "t-0002/", "zz"):
        for delimiter in (None, "/"):
            for max_keys in (1, 4, 1000):
                key_marker, version_marker = None, None
                while True:
                    args = (bucket, delimiter, key_marker, max_keys, prefix, version_marker)
                    expected = answer(original(backend, *args))
                    got = answer(faster(backend, *args))
                    asked += 1
                    if got != expected:
                        print(f"differs for {args}:\n  moto:   {expected}\n  faster: {got}")
                        sys.exit(1)
                    next_key, next_version = expected[3], expected[4]
                    if next_key is None:
                        break
                    key_marker, version_marker = next_key, next_version
                # A marker no page gave: the name of each key, and an empty one, without a version id.
                for name in ["", *names[:: max(1, len(names) // 9)]]:
                    args = (bucket, delimiter, name, max_keys, prefix, None)
                    asked += 1
                    if answer(faster(backend, *args)) != answer(original(backend, *args)):
                        print(f"differs for {args}")
                        sys.exit(1)
    races = concurrent_reads(backend)
    print(f"ok {asked}, {races} listings beside GetObject")


def concurrent_reads(backend) -> int:  # type: ignore[no-untyped-def]
    """Listings of an object seeded through the backend (its ETag not computed yet) while GetObject
    reads its body, for 3 s: every listed ETag and every body read must be the object's (found in
    review: shallow copies once read the shared body outside its lock). Returns the listings made."""
    sys.setswitchinterval(1e-6)
    backend.create_bucket("check-race", "us-east-1")
    backend.put_bucket_versioning("check-race", "Enabled")
    body = b"x" * 200_000
    stored = backend.put_object("check-race", "k", body)
    etag = f'"{hashlib.md5(body).hexdigest()}"'
    stop = time.time() + 3
    counts = {"listings": 0, "wrong": 0}

    def lister() -> None:
        while time.time() < stop:
            listed = moto_server._list_object_versions(backend, "check-race", None, None, 1000, "k", None)
            counts["listings"] += 1
            if listed[0][0].etag != etag:
                counts["wrong"] += 1

    def getter() -> None:
        while time.time() < stop:
            if stored.value != body:
                counts["wrong"] += 1

    threads = [threading.Thread(target=f) for f in (lister, lister, getter)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sys.setswitchinterval(0.005)
    if counts["wrong"]:
        print(f"{counts['wrong']} wrong ETags or bodies in {counts['listings']} listings beside GetObject")
        sys.exit(1)
    return counts["listings"]


if __name__ == "__main__":
    main()
