"""Starts moto's server for the tests, faster where moto's cost grows with the whole bucket.

The tests' S3, Secrets Manager, SNS and EventBridge are moto in server mode (harness/s3.ts). This
wrapper changes how fast moto answers, never what it answers:

1. ListObjectVersions. moto 5 deep-copies every version of every key in the bucket for each request
   (moto/s3/models.py, S3Backend.list_object_versions), then drops those outside the prefix and the
   page. A fleet of 1,000 targets, each listing its own backup's prefix, made that quadratic (17
   minutes for the 1,000-target fleet test), and each page of a 50,000-object backup copied all
   50,000. Here the call sees only the keys it could return: those under the prefix, from the key
   marker on, and, when no delimiter folds keys into common prefixes, only as many keys (in name
   order) as fill the page and tell whether another follows. The keys it skips are the ones the
   original loop skips (`name < key_marker`, `not name.startswith(prefix)`) or never reaches (past
   `max_keys`), so its answer, markers included, is the same.
2. Finding the service of each request. moto's dispatcher lists its own package folder and stats
   each of its 150-odd entries for every request (moto/backends.py, list_of_moto_modules, called by
   moto_server/werkzeug_app.py under a lock every request takes): most of the CPU of a PutObjectTagging.
   The list never changes while the server runs, so it is read once; and the service each host name
   maps to (a match against every service's URL patterns, also for every request) is kept per name.
3. Request logging. werkzeug logs one line per request; at tens of thousands of requests that is a
   tenth of moto's time. Warnings and errors are still logged.

One change makes it answer as S3 does where moto does not: conditional writes are atomic. S3 lets
only one of concurrent conditional writes to a key succeed, the others failing with 412 (or 409)
(S3 User Guide, "How to prevent object overwrites with conditional writes"). moto's PutObject checks
If-None-Match / If-Match and then stores the object in two steps, each request in its own thread, so
two racing `If-None-Match: *` PUTs could both succeed (seen: two executions both took a target's
lock). Here every conditional PutObject runs its check and its write under one lock.

With SEED_JSON, objects are stored through moto's own S3 backend before the server answers: moto
serves a PUT over HTTP in several milliseconds (50,000 take minutes on a busy machine), while its
backend stores one in well under a millisecond. The objects are moto's own (the same FakeKey a PUT
makes, with a version id in a versioned bucket and the SHA-256 checksum a PUT with
x-amz-checksum-sha256 leaves), served by the same server code over HTTP; only the transport of the
seeding requests is skipped.

Usage: moto_server.py [--seed SEED_JSON OUT_JSON] [moto_server arguments...]
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
import logging
import sys
import threading
from collections.abc import Iterator
from typing import Any

import moto.backends as moto_backends
from moto.core import DEFAULT_ACCOUNT_ID
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.s3.models import S3Backend, s3_backends
from moto.s3.responses import S3Response
from moto.s3.utils import _VersionedKeyStore
from moto.server import main

# The keys one ListObjectVersions request may return, set for the length of that request in the
# thread that serves it (moto's server answers each request in its own thread).
_listing = threading.local()
_original_iterlists = _VersionedKeyStore.iterlists
_original_list_object_versions = S3Backend.list_object_versions


class _ListedVersions(list):  # type: ignore[type-arg]
    """A key's versions as one listing sees them.

    moto deep-copies each version it lists only to set `is_latest` on the copy; a deep copy of a
    FakeKey reads its whole body out of its buffer and writes it into a new temporary file (its
    __getstate__ and __setstate__), about a millisecond a version. Here each is a shallow copy: the
    same attributes, sharing the body's buffer and lock, with an `is_latest` of its own. The copy's
    class is the version's own class (isinstance checks hold) without its __del__ and dispose, which
    would close the shared buffer, the stored object's body, when the copy is collected.
    """

    _classes: dict[type, type] = {}

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        copies = []
        for version in self:
            kind = type(version)
            if kind not in self._classes:
                self._classes[kind] = type(
                    kind.__name__,
                    (kind,),
                    {"__del__": lambda _self: None, "dispose": lambda _self, garbage=False: None},
                )
            listed = object.__new__(self._classes[kind])
            listed.__dict__.update(version.__dict__)
            if getattr(version, "_etag", False) is None:
                # An ETag not computed yet (an object seeded through the backend) would be read from
                # the shared buffer while the answer is built, outside the lock a GetObject takes.
                # It is computed here under that lock; a version deleted meanwhile (its buffer
                # closed) gets the empty body's, as moto's deep copy of it would.
                with version.lock:
                    try:
                        listed._etag = version.etag.strip('"')
                    except ValueError:
                        listed._etag = hashlib.md5(b"").hexdigest()
            copies.append(listed)
        return copies


def _iterlists(self: _VersionedKeyStore) -> Iterator[tuple[str, list[Any]]]:
    window = getattr(_listing, "window", None)
    if window is None:
        yield from _original_iterlists(self)
        return
    prefix, key_marker, max_keys, delimiter = window
    # The names alone first (a copy, as moto's own iteration takes one): a key's versions are read
    # only for the keys the page can reach.
    names = sorted(name for name in list(dict.keys(self)) if key_marker is None or name >= key_marker)
    # The original loop un-skips at the first version from the key marker on, whatever its prefix
    # (the marker's own key when a version id marker is given; otherwise that version is dropped):
    # that key is kept, and not counted below.
    first = names[0] if key_marker is not None and names else None
    entries = 0
    for name in names:
        if name != first and not name.startswith(prefix):
            continue
        versions = _ListedVersions(self.getlist(name))
        yield name, versions
        # Without a delimiter each version is one entry of the page: the first keys in name order
        # whose versions exceed max_keys are all the original loop reaches before it stops.
        if delimiter or max_keys is None or name == first:
            continue
        entries += len(versions)
        if entries > max_keys:
            return


def _list_object_versions(
    self: S3Backend,
    bucket_name: str,
    delimiter: str | None = None,
    key_marker: str | None = None,
    max_keys: int | None = 1000,
    prefix: str = "",
    version_id_marker: str | None = None,
) -> Any:
    # An empty key marker is a marker (moto drops the first version from it on), not none.
    _listing.window = (prefix or "", key_marker, max_keys, delimiter)
    try:
        return _original_list_object_versions(
            self,
            bucket_name,
            delimiter=delimiter,
            key_marker=key_marker,
            max_keys=max_keys,
            prefix=prefix,
            version_id_marker=version_id_marker,
        )
    finally:
        _listing.window = None


def faster() -> None:
    """Applies the three changes above; they change no answer."""
    modules = tuple(moto_backends.list_of_moto_modules())
    moto_backends.list_of_moto_modules = lambda: modules
    backend_for_host = DomainDispatcherApplication.get_backend_for_host
    known: dict[str | None, Any] = {}

    def cached_backend_for_host(self: DomainDispatcherApplication, host: str | None) -> Any:
        # Called under the dispatcher's lock; a host no service matches is asked again each time.
        if host not in known:
            backend = backend_for_host(self, host)
            if backend is None:
                return None
            known[host] = backend
        return known[host]

    DomainDispatcherApplication.get_backend_for_host = cached_backend_for_host
    _VersionedKeyStore.iterlists = _iterlists
    S3Backend.list_object_versions = _list_object_versions
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


_conditional_writes = threading.Lock()


def atomic_conditional_writes() -> None:
    """Serializes every conditional PutObject (If-None-Match or If-Match): its check and its write as one step, as S3's are."""
    original = S3Response.put_object

    def put_object(self: S3Response) -> Any:
        if self.headers.get("If-None-Match") or self.headers.get("If-Match"):
            with _conditional_writes:
                return original(self)
        return original(self)

    S3Response.put_object = put_object  # type: ignore[method-assign]


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
    args = sys.argv[1:]
    faster()
    atomic_conditional_writes()
    if args[:1] == ["--seed"]:
        seed(args[1], args[2])
        args = args[3:]
    main(args)
