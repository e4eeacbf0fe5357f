"""Post check results to a patchwork instance through its REST API.

Patchwork keeps checks per patch (POST /api/1.2/patches/{id}/checks/ with
state, target_url, context and description; a user token with the
add_check permission in an `Authorization: Token ...` header) and finds a
patch by its Message-Id without angle brackets (GET
/api/1.2/patches/?msgid=...; API 1.2, patchwork 2.2 and later).  It has
no checks on a series or a cover letter, so a series-level result is
posted on every patch of the series, the way the kernel's CI bots post
theirs (netdev's, for one).  Nothing here knows check's checks: it posts
what `patchgen check --json` lists.
"""

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from patchgen.infra.errors import PatchworkFailed, PatchworkPatchMissing

API = "/api/1.2"
TIMEOUT = 60


@dataclass(frozen=True)
class Posted:
    message_id: str
    patch_id: int
    context: str
    state: str


def _request(url: str, token: str | None, data: dict | None = None):
    body = json.dumps(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body,
                                     method="POST" if body is not None else "GET")
    request.add_header("Accept", "application/json")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Token {token}")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode("utf-8", "replace").strip()
        what = {401: "the token was refused", 403: "the token may not add checks "
                "(patchwork's add_check permission)", 404: "no such page"}.get(
                    exc.code, "it refused the request")
        raise PatchworkFailed(f"patchwork at {url} answered HTTP {exc.code}: {what}"
                              + (f" ({detail})" if detail else "")) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise PatchworkFailed(f"cannot reach patchwork at {url}: {reason}: check "
                              "the URL and the network") from None


def find_patch(base: str, message_id: str, token: str | None) -> int:
    query = urllib.parse.urlencode({"msgid": message_id})
    found = _request(f"{base}{API}/patches/?{query}", token)
    if not isinstance(found, list) or not found or "id" not in found[0]:
        raise PatchworkPatchMissing(
            f"patchwork at {base} has no patch with Message-Id <{message_id}>: "
            "post after the series reached it (the list's archive feeds it)")
    return int(found[0]["id"])


def post_results(base: str, token: str, report: dict, notify=None) -> list[Posted]:
    """Post every result of *report* (check's JSON document) on its patch;
    series-level results on each patch of the series.  Returns what was
    posted, in order."""
    base = base.rstrip("/")
    patch_ids: dict[str, int] = {}
    patches = [m["message_id"] for m in report["series"]["mails"]
               if m["kind"] == "patch" and m["message_id"]]
    posted = []
    for result in report["results"]:
        targets = patches if result["patch"] is None else [result["message_id"]]
        for message_id in targets:
            if not message_id:
                continue        # a range of the tree: no mail, nothing to post on
            if message_id not in patch_ids:
                patch_ids[message_id] = find_patch(base, message_id, token)
            patch_id = patch_ids[message_id]
            url = result["target_url"]
            # patchwork's target_url is a URL field: http(s), not the local
            # log's file:// URI.
            if url is not None and not url.startswith(("http://", "https://")):
                url = None
            _request(f"{base}{API}/patches/{patch_id}/checks/", token, {
                "state": result["state"], "target_url": url,
                "context": result["context"],
                "description": result["description"][:255] if result["description"] else ""})
            posted.append(Posted(message_id, patch_id, result["context"],
                                 result["state"]))
            if notify is not None and len(posted) % 10 == 0:
                notify(f"posted {len(posted)} checks to {base}")
    return posted
