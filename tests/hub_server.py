"""A local stand-in for the Hugging Face Hub: the part of its HTTP API that `huggingface_hub` uses to publish and fetch.

The Hub cannot be reached from the machines this project is tested on, and no package on PyPI serves this
protocol (hf-local-hub needs a Go binary it does not ship; olah is a read-only mirror of the real Hub), so
publishing is tested end to end against this server on 127.0.0.1:

* create a repo (`POST /api/repos/create`), a branch (`POST /api/{type}s/{id}/branch/{name}`);
* upload: `preupload` (regular or LFS per file, with the remote oid so unchanged files are skipped), the Git LFS
  batch API with the "basic" transfer (PUT, then verify), and the ndjson `commit` endpoint (also `create_pr`);
* read: repo info (`/api/{type}s/{id}[/revision/{rev}]`), `tree`, `paths-info`, `refs`, and
  `HEAD`/`GET /{id}/resolve/{rev}/{path}` with the `X-Repo-Commit`, `ETag`/`X-Linked-Etag`, `X-Linked-Size`
  headers and `X-Error-Code` errors that `hf_hub_download` and transformers rely on.

It does not speak Xet, the Hub's newer storage protocol: clients must set `HF_HUB_DISABLE_XET=1` (read when
`huggingface_hub` is imported), which makes `huggingface_hub` upload through Git LFS, as it does when `hf_xet`
is not installed. Downloads never use Xet here because the server never advertises it (no `X-Xet-Hash`).

Run it alone with `python -m hub_server --port 8999` and point clients at it with
`HF_ENDPOINT=http://127.0.0.1:8999 HF_HUB_DISABLE_XET=1`.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

# Files the real Hub stores through LFS whatever their size (its default .gitattributes), plus any binary or
# large file: the same decision `preupload` makes there.
LFS_SUFFIXES = (
    ".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx", ".npy", ".npz", ".pkl",
    ".model", ".tflite", ".gguf", ".zip", ".tar", ".gz", ".png", ".jpg", ".jpeg", ".wav", ".flac", ".mp3",
)
LFS_MIN_SIZE = 10 * 1024 * 1024
GITATTRIBUTES = "".join(f"*{s} filter=lfs diff=lfs merge=lfs -text\n" for s in LFS_SUFFIXES).encode()
REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}


def git_blob_oid(data: bytes) -> str:
    """Git's object id of a blob, which the Hub reports for regular files."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Entry:
    """One file of a commit: its content is the blob stored under `sha256`."""

    sha256: str
    size: int
    git_oid: str
    lfs: bool


@dataclass
class Commit:
    oid: str
    parent: str | None
    summary: str
    files: dict[str, Entry]


@dataclass
class Repo:
    repo_id: str
    repo_type: str
    private: bool
    gated: bool = False  # files need a token (the repo's info and file list do not), as on the Hub
    refs: dict[str, str] = field(default_factory=dict)  # branch or refs/pr/N -> commit oid
    commits: dict[str, Commit] = field(default_factory=dict)
    num_prs: int = 0

    def resolve(self, revision: str) -> Commit | None:
        """A branch, a PR ref or a (possibly short) commit oid -> the commit, or None."""
        oid = self.refs.get(revision)
        if oid is None:
            matches = [o for o in self.commits if o.startswith(revision)] if len(revision) >= 7 else []
            oid = matches[0] if len(matches) == 1 else None
        return self.commits.get(oid) if oid else None


class HubError(Exception):
    """An HTTP error answered the way the Hub does (status, `X-Error-Code`, JSON `error`)."""

    def __init__(self, status: int, message: str, code: str | None = None, **extra):
        super().__init__(message)
        self.status, self.message, self.code, self.extra = status, message, code, extra


class LocalHub:
    """The state of the server: repos, their commits, and content-addressed blobs on disk."""

    def __init__(self, storage: Path):
        self.blobs = Path(storage) / "blobs"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lock = threading.Lock()
        self.commit_log: list[tuple[str, str, str]] = []  # (repo_id, ref, commit oid), one per commit made
        self.uploads: list[str] = []  # sha256 of each LFS object received

    # --- blobs -------------------------------------------------------------------------------------
    def put_blob(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        path = self.blobs / sha
        if not path.exists():
            tmp = path.with_suffix(".tmp%d" % threading.get_ident())
            tmp.write_bytes(data)
            tmp.replace(path)
        return sha

    def receive_blob(self, expected_sha256: str, blocks) -> str:
        """Store streamed content under its sha256 if it matches `expected_sha256`; return the actual sha256."""
        digest = hashlib.sha256()
        tmp = self.blobs / f"incoming-{expected_sha256}.tmp{threading.get_ident()}"
        with open(tmp, "wb") as f:
            for block in blocks:
                digest.update(block)
                f.write(block)
        if digest.hexdigest() == expected_sha256:
            tmp.replace(self.blob_path(expected_sha256))
        else:
            tmp.unlink()
        return digest.hexdigest()

    def has_blob(self, sha256: str) -> bool:
        return (self.blobs / sha256).exists()

    def blob_path(self, sha256: str) -> Path:
        return self.blobs / sha256

    # --- repos -------------------------------------------------------------------------------------
    def repo(self, repo_type: str, repo_id: str, authorized: bool) -> Repo:
        repo = self.repos.get((repo_type, repo_id))
        if repo is None or (repo.private and not authorized):  # the Hub hides private repos from anonymous users
            raise HubError(404 if repo is None else 401, f"Repository {repo_id} not found", "RepoNotFound")
        return repo

    def create_repo(self, repo_type: str, repo_id: str, private: bool, url: str) -> Repo:
        with self.lock:
            if (repo_type, repo_id) in self.repos:  # the Hub's 409 carries the url, which `exist_ok=True` returns
                raise HubError(409, f"You already created this {repo_type} repo", url=url)
            repo = Repo(repo_id, repo_type, private)
            self.repos[(repo_type, repo_id)] = repo
            sha = self.put_blob(GITATTRIBUTES)
            entry = Entry(sha, len(GITATTRIBUTES), git_blob_oid(GITATTRIBUTES), lfs=False)
            self._commit(repo, "main", None, "initial commit", {".gitattributes": entry})
            return repo

    def add_folder(self, repo_type: str, repo_id: str, folder: Path, *, gated: bool = False) -> Repo:
        """A repo holding the files of a local folder in one commit (no upload round trip: test fixtures)."""
        repo = self.create_repo(repo_type, repo_id, False, "")
        repo.gated = gated
        files = {}
        for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
            data = path.read_bytes()
            lfs = _upload_mode(path.name, len(data), data[:512]) == "lfs"
            git_oid = git_blob_oid(_lfs_pointer(hashlib.sha256(data).hexdigest(), len(data)) if lfs else data)
            files[path.relative_to(folder).as_posix()] = Entry(self.put_blob(data), len(data), git_oid, lfs)
        with self.lock:
            base = repo.resolve("main")
            self._commit(repo, "main", base, "add files", {**base.files, **files})
        return repo

    def _commit(self, repo: Repo, ref: str, parent: Commit | None, summary: str, files: dict[str, Entry]) -> Commit:
        seed = f"{repo.repo_id}\n{parent.oid if parent else ''}\n{summary}\n{time.time_ns()}\n{sorted(files)}"
        commit = Commit(hashlib.sha1(seed.encode()).hexdigest(), parent.oid if parent else None, summary, files)
        repo.commits[commit.oid] = commit
        repo.refs[ref] = commit.oid
        self.commit_log.append((repo.repo_id, ref, commit.oid))
        return commit

    def commit(self, repo: Repo, revision: str, lines: list[dict], create_pr: bool) -> tuple[Commit, str]:
        """Apply an ndjson commit payload (header, file, lfsFile, deletedFile, deletedFolder); return the new commit
        and the ref it landed on."""
        with self.lock:
            base = repo.resolve(revision)
            if base is None:
                raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
            header = next((line["value"] for line in lines if line.get("key") == "header"), {})
            parent_commit = header.get("parentCommit")
            if parent_commit and not create_pr and not base.oid.startswith(parent_commit):
                raise HubError(412, "A commit has happened since. Please refresh and try again.")
            files = dict(base.files)
            for line in lines:
                key, value = line.get("key"), line.get("value", {})
                if key == "file":
                    data = base64.b64decode(value["content"]) if value.get("encoding") == "base64" else value[
                        "content"].encode()
                    files[value["path"]] = Entry(self.put_blob(data), len(data), git_blob_oid(data), lfs=False)
                elif key == "lfsFile":
                    if not self.has_blob(value["oid"]):
                        raise HubError(422, f"LFS object {value['oid']} of {value['path']} was never uploaded")
                    size = self.blob_path(value["oid"]).stat().st_size
                    files[value["path"]] = Entry(value["oid"], size, git_blob_oid(_lfs_pointer(value["oid"], size)),
                                                 lfs=True)
                elif key == "deletedFile":
                    if files.pop(value["path"], None) is None:
                        raise HubError(404, "A file with this name doesn't exist", "EntryNotFound")
                elif key == "deletedFolder":
                    prefix = value["path"].rstrip("/") + "/"
                    files = {p: e for p, e in files.items() if not p.startswith(prefix)}
                elif key != "header":
                    raise HubError(400, f"Unknown commit operation {key!r}")
            ref = revision
            if create_pr:
                repo.num_prs += 1
                ref = f"refs/pr/{repo.num_prs}"
            commit = self._commit(repo, ref, base, header.get("summary", ""), files)
            return commit, ref


def _lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def _upload_mode(path: str, size: int, sample: bytes) -> str:
    lfs = path.lower().endswith(LFS_SUFFIXES) or size >= LFS_MIN_SIZE or b"\0" in sample
    return "lfs" if lfs else "regular"


def _file_json(path: str, entry: Entry) -> dict:
    info = {"type": "file", "path": path, "size": entry.size, "oid": entry.git_oid}
    if entry.lfs:
        info["lfs"] = {"oid": entry.sha256, "size": entry.size, "pointerSize": len(_lfs_pointer(entry.sha256, 0))}
    return info


_REPO = r"(?P<type>models|datasets|spaces)/(?P<repo>[^/]+/[^/]+)"
_FILE_PREFIX = r"(?:(?P<type>datasets|spaces)/)?(?P<repo>[^/]+/[^/]+)"
ROUTES = [  # (method, regex over the raw URL path, handler name)
    ("POST", r"/api/repos/create", "create_repo"),
    ("GET", r"/api/whoami-v2", "whoami"),
    ("POST", r"/api/validate-yaml", "validate_yaml"),
    ("POST", rf"/api/{_REPO}/preupload/(?P<rev>[^/]+)", "preupload"),
    ("POST", rf"/api/{_REPO}/commit/(?P<rev>[^/]+)", "commit"),
    ("POST", rf"/api/{_REPO}/branch/(?P<rev>[^/]+)", "create_branch"),
    ("POST", rf"/api/{_REPO}/paths-info/(?P<rev>[^/]+)", "paths_info"),
    ("GET", rf"/api/{_REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?", "tree"),
    ("GET", rf"/api/{_REPO}/refs", "refs"),
    ("GET", rf"/api/{_REPO}(?:/revision/(?P<rev>[^/]+))?", "repo_info"),
    ("POST", rf"/{_FILE_PREFIX}\.git/info/lfs/objects/batch", "lfs_batch"),
    ("PUT", r"/lfs-objects/(?P<oid>[0-9a-f]{64})", "lfs_put"),
    ("POST", r"/lfs-objects/(?P<oid>[0-9a-f]{64})/verify", "lfs_verify"),
    ("GET", rf"/{_FILE_PREFIX}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "resolve"),
]


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.1"

    # --- plumbing ----------------------------------------------------------------------------------
    def log_message(self, format: str, *args) -> None:  # quiet: requests are recorded in `server.requests`
        pass

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        self.query = parse_qs(url.query)
        self.server.requests.append((method, url.path))
        self._body: bytes | None = None
        try:
            for route_method, pattern, name in ROUTES:
                if route_method == ("GET" if method == "HEAD" else method):
                    # Match the raw path, then unquote each part: revisions arrive quoted ("refs%2Fpr%2F1").
                    match = re.fullmatch(pattern, url.path)
                    if match:
                        args = {k: unquote(v) if v else v for k, v in match.groupdict().items()}
                        return getattr(self, "h_" + name)(**args)
            raise HubError(404, f"No route for {method} {url.path}")
        except HubError as err:
            headers = {"X-Error-Message": err.message}
            if err.code:
                headers["X-Error-Code"] = err.code
            self._reply(err.status, {"error": err.message, **err.extra}, headers)

    do_GET = lambda self: self._dispatch("GET")  # noqa: E731
    do_HEAD = lambda self: self._dispatch("HEAD")  # noqa: E731
    do_POST = lambda self: self._dispatch("POST")  # noqa: E731
    do_PUT = lambda self: self._dispatch("PUT")  # noqa: E731

    def body(self) -> bytes:
        """The request body, with or without chunked transfer encoding (httpx streams file uploads chunked)."""
        if self._body is None:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                parts = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        break
                    parts.append(self.rfile.read(size))
                    self.rfile.readline()
                self._body = b"".join(parts)
            else:
                self._body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        return self._body

    def json_body(self):
        return json.loads(self.body() or b"{}")

    def _reply(self, status: int, payload=None, headers: dict | None = None, raw: bytes | None = None) -> None:
        data = raw if raw is not None else (b"" if payload is None else json.dumps(payload).encode())
        if self.command != "HEAD" or status >= 400:
            self.body()  # drain the request so that the connection can be reused
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream" if raw is not None else "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    @property
    def authorized(self) -> bool:
        return self.headers.get("Authorization", "").startswith("Bearer ")

    def _repo(self, type: str | None, repo: str) -> Repo:
        repo_type = REPO_TYPES.get(type or "models", "model")
        return self.server.hub.repo(repo_type, repo, self.authorized)

    def _require_write(self) -> None:
        if not self.authorized:
            raise HubError(401, "Invalid credentials in Authorization header")

    def _commit_of(self, repo: Repo, rev: str | None) -> Commit:
        commit = repo.resolve(rev or "main")
        if commit is None:
            raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        return commit

    # --- endpoints -----------------------------------------------------------------------------------
    def h_whoami(self) -> None:
        self._require_write()
        self._reply(200, {"type": "user", "name": "local-user", "fullname": "Local User", "orgs": [],
                          "auth": {"type": "access_token", "accessToken": {"role": "write"}}})

    def h_validate_yaml(self) -> None:
        """Check a README's metadata as the Hub does before an upload: YAML that parses, a valid model-index."""
        from huggingface_hub import ModelCard

        payload = self.json_body()
        try:
            card = ModelCard(payload["content"], ignore_metadata_errors=False)
            if payload.get("repoType", "model") == "model":
                card.data.__class__(**card.data.to_dict())  # re-validates eval results / model-index
        except Exception as err:  # noqa: BLE001 - any parse failure is the client's metadata error
            return self._reply(400, {"errors": [{"message": str(err)}]})
        warnings = [] if card.data.to_dict() else [{"message": "Empty metadata"}]
        self._reply(200, {"errors": [], "warnings": warnings})

    def h_create_repo(self) -> None:
        self._require_write()
        payload = self.json_body()
        name, org = payload["name"], payload.get("organization") or "local-user"
        repo_type = payload.get("type") or "model"
        private = bool(payload.get("private")) or payload.get("visibility") == "private"
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        url = f"{self.server.url}/{prefix}{org}/{name}"
        repo = self.server.hub.create_repo(repo_type, f"{org}/{name}", private, url)
        self._reply(200, {"url": url, "name": repo.repo_id})

    def h_create_branch(self, type: str, repo: str, rev: str) -> None:
        self._require_write()
        r = self._repo(type, repo)
        start = self._commit_of(r, self.json_body().get("startingPoint"))
        with self.server.hub.lock:
            if rev in r.refs:
                raise HubError(409, f"Reference already exists: refs/heads/{rev}")
            r.refs[rev] = start.oid
        self._reply(200, {})

    def h_preupload(self, type: str, repo: str, rev: str) -> None:
        self._require_write()
        r = self._repo(type, repo)
        existing = r.resolve(rev)
        files = []
        for f in self.json_body()["files"]:
            mode = _upload_mode(f["path"], int(f["size"]), base64.b64decode(f.get("sample", "")))
            entry = existing.files.get(f["path"]) if existing else None
            oid = None if entry is None else (entry.sha256 if entry.lfs else entry.git_oid)
            files.append({"path": f["path"], "uploadMode": mode, "shouldIgnore": False, "oid": oid})
        self._reply(200, {"files": files, "commitOid": existing.oid if existing else None})

    def h_lfs_batch(self, type: str | None, repo: str) -> None:
        self._require_write()
        self._repo(type, repo)
        objects = []
        for obj in self.json_body()["objects"]:
            item = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if not self.server.hub.has_blob(obj["oid"]):  # no "actions": the client skips what is already here
                href = f"{self.server.url}/lfs-objects/{obj['oid']}"
                item["actions"] = {"upload": {"href": href}, "verify": {"href": href + "/verify"}}
            objects.append(item)
        self._reply(200, {"transfer": "basic", "objects": objects, "hash_algo": "sha256"})

    def h_lfs_put(self, oid: str) -> None:
        if self.server.hub.receive_blob(oid, self._body_blocks()) != oid:
            raise HubError(400, "Uploaded content does not match its sha256 oid")
        self.server.hub.uploads.append(oid)
        self._reply(200, raw=b"")

    def _body_blocks(self):
        """The request body in blocks (a large upload is never held in memory whole)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            yield self.body()
            return
        left = int(self.headers.get("Content-Length") or 0)
        while left > 0:
            block = self.rfile.read(min(left, 1 << 20))
            if not block:
                break
            left -= len(block)
            yield block
        self._body = b""  # consumed

    def h_lfs_verify(self, oid: str) -> None:
        payload = self.json_body()
        if not self.server.hub.has_blob(oid) or self.server.hub.blob_path(oid).stat().st_size != payload.get("size"):
            raise HubError(422, f"LFS object {oid} is missing or has the wrong size")
        self._reply(200, {})

    def h_commit(self, type: str, repo: str, rev: str) -> None:
        self._require_write()
        r = self._repo(type, repo)
        lines = [json.loads(line) for line in self.body().splitlines() if line.strip()]
        create_pr = self.query.get("create_pr", ["0"])[0] in ("1", "true")
        commit, ref = self.server.hub.commit(r, rev, lines, create_pr)
        prefix = "" if r.repo_type == "model" else f"{r.repo_type}s/"
        base = f"{self.server.url}/{prefix}{r.repo_id}"
        pr_url = f"{base}/discussions/{ref.rsplit('/', 1)[1]}" if create_pr else None
        self._reply(200, {"success": True, "commitOid": commit.oid, "commitUrl": f"{base}/commit/{commit.oid}",
                          "pullRequestUrl": pr_url})

    def h_repo_info(self, type: str, repo: str, rev: str | None = None) -> None:
        r = self._repo(type, repo)
        commit = self._commit_of(r, rev)
        self._reply(200, {
            "id": r.repo_id, "_id": r.repo_id, "author": r.repo_id.split("/")[0], "sha": commit.oid,
            "private": r.private, "gated": "auto" if r.gated else False, "disabled": False, "downloads": 0,
            "likes": 0, "tags": [],
            "siblings": [{"rfilename": p} for p in sorted(commit.files)],
            "lastModified": "2026-01-01T00:00:00.000Z", "createdAt": "2026-01-01T00:00:00.000Z",
        })

    def h_tree(self, type: str, repo: str, rev: str, path: str | None = None) -> None:
        commit = self._commit_of(self._repo(type, repo), rev)
        prefix = (path or "").strip("/")
        recursive = self.query.get("recursive", ["false"])[0] in ("1", "true", "True")
        items, folders = [], set()
        for p in sorted(commit.files):
            if prefix and not p.startswith(prefix + "/"):
                continue
            rest = p[len(prefix) + 1:] if prefix else p
            if "/" in rest and not recursive:
                folders.add((prefix + "/" if prefix else "") + rest.split("/")[0])
                continue
            if recursive:
                parts = rest.split("/")[:-1]
                for i in range(1, len(parts) + 1):
                    folders.add((prefix + "/" if prefix else "") + "/".join(parts[:i]))
            items.append(_file_json(p, commit.files[p]))
        items += [{"type": "directory", "path": f, "oid": hashlib.sha1(f.encode()).hexdigest(), "size": 0}
                  for f in sorted(folders)]
        if prefix and not items:
            raise HubError(404, f"{prefix} does not exist", "EntryNotFound")
        self._reply(200, items)

    def h_paths_info(self, type: str, repo: str, rev: str) -> None:
        commit = self._commit_of(self._repo(type, repo), rev)
        raw = self.body()
        try:
            paths = json.loads(raw)["paths"]
        except ValueError:  # sent as a form
            paths = parse_qs(raw.decode()).get("paths", [])
        self._body = raw
        self._reply(200, [_file_json(p, commit.files[p]) for p in paths if p in commit.files])

    def h_refs(self, type: str, repo: str) -> None:
        r = self._repo(type, repo)
        branches = [{"name": n, "ref": f"refs/heads/{n}", "targetCommit": o} for n, o in r.refs.items()
                    if not n.startswith("refs/")]
        self._reply(200, {"branches": branches, "tags": [], "converts": []})

    def h_resolve(self, type: str | None, repo: str, rev: str, path: str) -> None:
        r = self._repo(type, repo)
        if r.gated and not self.authorized:
            raise HubError(401, f"Access to dataset {r.repo_id} is restricted. You must have access to it and be "
                           "authenticated to access it. Please log in.", "GatedRepo")
        commit = self._commit_of(r, rev)
        entry = commit.files.get(path)
        if entry is None:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound")
        headers = {"X-Repo-Commit": commit.oid, "ETag": f'"{entry.git_oid}"', "Accept-Ranges": "bytes"}
        if entry.lfs:  # the Hub names an LFS file by the sha256 of its content
            headers.update({"X-Linked-Etag": f'"{entry.sha256}"', "X-Linked-Size": str(entry.size),
                            "ETag": f'"{entry.sha256}"'})
        start, end, status = 0, entry.size - 1, 200
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if match:  # resumed downloads ask for the rest of a file
            start, end, status = int(match[1]), min(int(match[2] or entry.size - 1), entry.size - 1), 206
            headers["Content-Range"] = f"bytes {start}-{end}/{entry.size}"
        self.send_response(status)
        for key, value in {"Content-Type": "application/octet-stream", "Content-Length": str(end - start + 1),
                           **headers}.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command == "GET":  # streamed in blocks: weights can be gigabytes
            self.server.served.append((path, end - start + 1))
            with open(self.server.hub.blob_path(entry.sha256), "rb") as f:
                f.seek(start)
                left = end - start + 1
                while left > 0:
                    block = f.read(min(left, 1 << 20))
                    self.wfile.write(block)
                    left -= len(block)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    hub: LocalHub
    url: str
    requests: list[tuple[str, str]]
    served: list[tuple[str, int]]


class HubServer:
    """A local Hub on 127.0.0.1 in a background thread; a context manager.

    `url` is the value for HF_ENDPOINT; `commits` and `requests` record what clients did (to check, for example,
    that nothing was committed).
    """

    def __init__(self, storage: str | Path | None = None, port: int = 0):
        self._tmp = tempfile.TemporaryDirectory(prefix="local-hub-") if storage is None else None
        self.hub = LocalHub(Path(storage) if storage is not None else Path(self._tmp.name))
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.hub = self.hub
        self._server.requests = []
        self._server.served = []
        self._server.url = self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-hub", daemon=True)

    @property
    def commits(self) -> list[tuple[str, str, str]]:
        """(repo_id, ref, commit oid) for every commit, the initial one of each new repo included."""
        return list(self.hub.commit_log)

    @property
    def requests(self) -> list[tuple[str, str]]:
        return list(self._server.requests)

    @property
    def served(self) -> list[tuple[str, int]]:
        """(file path, bytes sent) for every file download (GET resolve, whole or a byte range)."""
        return list(self._server.served)

    def add_folder(self, repo_id: str, folder: str | Path, repo_type: str = "dataset", gated: bool = False) -> None:
        """Serve the files of `folder` as a repo (e.g. a dataset's parquet shards and README)."""
        self.hub.add_folder(repo_type, repo_id, Path(folder), gated=gated)

    def client_env(self, token: str = "hf_local_test_token") -> dict[str, str]:
        """Environment variables that point a `huggingface_hub` client (in a fresh process) at this server."""
        return {"HF_ENDPOINT": self.url, "HF_HUB_DISABLE_XET": "1", "HF_TOKEN": token,
                "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "0"}

    def start(self) -> "HubServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> "HubServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a local stand-in for the Hugging Face Hub API.")
    parser.add_argument("--port", type=int, default=8999)
    parser.add_argument("--storage", type=Path, default=None, help="folder for the blobs (default: a temp dir)")
    args = parser.parse_args(argv)
    server = HubServer(args.storage, args.port).start()
    print(f"Local Hub at {server.url}  (clients: HF_ENDPOINT={server.url} HF_HUB_DISABLE_XET=1 HF_TOKEN=<any>)")
    try:
        server._thread.join()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
