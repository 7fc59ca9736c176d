"""Device leases through etcd: runs on several controller machines exclude each other.

File locks (:mod:`pytest_collab.leases.files`) only bind the processes of one machine;
a lab shared by controllers on several machines needs one place that grants leases.
``--collab-leases etcd://HOST:PORT[/PREFIX][?ttl=SECONDS]`` selects this backend.

How: one etcd *lease* (a TTL, default 10 s) per acquisition, kept alive by a thread of
this process; one key per device, ``<prefix>/<profile>/<device>``, put in a single
transaction only if none of the keys exists, attached to that lease. So the test gets
all its devices or none, and when this process dies (even ``kill -9``) its keep-alives
stop and etcd drops the keys after the TTL: a dead controller never keeps a device.
A lease is lost when a keep-alive finds it expired or a key no longer belongs to it.

Talks to etcd's v3 HTTP/JSON gateway (``/v3/kv/txn``, ``/v3/lease/grant``...), present
in every etcd 3.x, with the stdlib only: no gRPC client library version to match.
"""
from __future__ import annotations

import base64
import json
import threading
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pytest_collab.errors import CollabError
from pytest_collab.lan.profile import LAN

DEFAULT_PREFIX = "/pytest-collab/leases"
DEFAULT_TTL_S = 10
HTTP_TIMEOUT_S = 5.0


class EtcdError(CollabError):
    """etcd did not answer or refused a request."""


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _unb64(text: str) -> str:
    return base64.b64decode(text).decode()


def _prefix_end(key: str) -> str:
    """The range end that selects every key starting with ``key`` (etcd's prefix idiom)."""
    raw = bytearray(key.encode())
    raw[-1] += 1
    return base64.b64encode(bytes(raw)).decode()


class Etcd:
    """The few v3 gateway calls leases need, over HTTP with the stdlib."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(f"{self.base}{path}", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:  # noqa: S310
                text = response.read().decode() or "{}"
        except urllib.error.HTTPError as exc:
            raise EtcdError(f"etcd at {self.base}{path}: HTTP {exc.code}: {exc.read()[:300]!r}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise EtcdError(f"etcd at {self.base} does not answer ({exc}); is it running? "
                            "check --collab-leases") from None
        first = text.splitlines()[0] if text.strip() else "{}"  # keepalive streams one object per line
        return json.loads(first)

    def grant(self, ttl: int) -> str:
        return str(self.call("/v3/lease/grant", {"TTL": ttl})["ID"])

    def keepalive(self, lease: str) -> int:
        """Renew ``lease``; its remaining TTL (0: it expired or was revoked)."""
        result = self.call("/v3/lease/keepalive", {"ID": lease}).get("result", {})
        return int(result.get("TTL", 0))

    def revoke(self, lease: str) -> None:
        try:
            self.call("/v3/lease/revoke", {"ID": lease})
        except EtcdError:
            pass  # expired already, or etcd is gone: the TTL ends it either way

    def put_all_if_absent(self, values: dict[str, str], lease: str) -> bool:
        """Put every key (attached to ``lease``) only if none exists: one transaction."""
        body = {"compare": [{"key": _b64(k), "result": "EQUAL", "target": "CREATE", "create_revision": "0"}
                            for k in values],
                "success": [{"request_put": {"key": _b64(k), "value": _b64(v), "lease": lease}}
                            for k, v in values.items()]}
        return bool(self.call("/v3/kv/txn", body).get("succeeded"))

    def range_prefix(self, prefix: str) -> list[dict[str, Any]]:
        kvs = self.call("/v3/kv/range", {"key": _b64(prefix), "range_end": _prefix_end(prefix)}).get("kvs", [])
        return [{"key": _unb64(kv["key"]), "value": _unb64(kv.get("value", "")), "lease": kv.get("lease")}
                for kv in kvs]


class EtcdLocks:
    """Keys of one acquisition, alive while this process renews their etcd lease."""

    def __init__(self, etcd: Etcd, lease: str, keys: list[str], ttl: int) -> None:
        self.etcd, self.lease, self.keys, self.ttl = etcd, lease, keys, ttl
        self._why: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"collab-etcd-{lease}", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(max(0.5, self.ttl / 3)):
            try:
                if self.etcd.keepalive(self.lease) <= 0:
                    self._why = f"etcd lease {self.lease} expired (keep-alives came too late)"
                    return
            except EtcdError as exc:
                self._why = f"can not renew the etcd lease: {exc}"
                return

    def lost(self) -> str | None:
        if self._why or self._stop.is_set():
            return self._why
        try:
            ours = {kv["key"] for kv in self.etcd.range_prefix(self.keys[0].rsplit("/", 1)[0] + "/")
                    if kv.get("lease") == self.lease}
        except EtcdError as exc:
            return f"etcd unreachable while holding the lease: {exc}"
        gone = sorted(set(self.keys) - ours)
        if gone:
            self._why = f"etcd key(s) {', '.join(gone)} deleted or taken over"
        return self._why

    def release(self) -> None:
        if not self._stop.is_set():
            self._stop.set()
            self.etcd.revoke(self.lease)


class EtcdBackend:
    """Leases of one profile as etcd keys under ``<prefix>/<profile>/``."""

    def __init__(self, url: str, lan_name: str, ttl: int | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme != "etcd" or not parts.hostname:
            raise CollabError(f"--collab-leases {url!r}: expected etcd://HOST:PORT[/PREFIX] or 'files'")
        query = parse_qs(parts.query)
        try:
            ttl = ttl or int(query.get("ttl", [DEFAULT_TTL_S])[0])
        except ValueError:
            raise CollabError(f"--collab-leases {url!r}: ttl must be whole seconds, e.g. ?ttl=10") from None
        self.etcd = Etcd(f"http://{parts.hostname}:{parts.port or 2379}")
        self.prefix = f"{(parts.path.rstrip('/') or DEFAULT_PREFIX)}/{lan_name}/"
        self.ttl = ttl
        self.where = f"{parts.scheme}://{parts.netloc}{parts.path} (keys {self.prefix}*, TTL {ttl} s)"

    def busy(self, lan: LAN) -> dict[str, dict[str, Any]]:
        found = {}
        for kv in self.etcd.range_prefix(self.prefix):
            try:
                owner = json.loads(kv["value"])
            except ValueError:
                owner = {}
            found[kv["key"][len(self.prefix):]] = owner
        return {d.name: found[d.name] for d in lan.devices if d.name in found}

    def try_lock(self, names: list[str], owner: dict[str, Any]) -> EtcdLocks | None:
        lease = self.etcd.grant(self.ttl)
        keys = [self.prefix + n for n in sorted(names)]
        record = json.dumps(owner, sort_keys=True)
        if not self.etcd.put_all_if_absent({k: record for k in keys}, lease):
            self.etcd.revoke(lease)
            return None
        return EtcdLocks(self.etcd, lease, keys, self.ttl)
